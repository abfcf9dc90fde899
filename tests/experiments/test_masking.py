"""Masking experiments on the pretrained model: it is left as it was, and the masked logits are the model's."""

from __future__ import annotations

import pytest
import torch

from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import list_images, load_views, normalise
from neurflow.experiments.masking import masking_experiment
from tests.circuit_fixtures import SMALL_IMAGES
from tests.experiments.support import SAMOYED, all_hooks


def test_masking_experiment_on_the_pretrained_model_leaves_it_as_it_was(pretrained: LoadedModel) -> None:
    views, _ = load_views([f for f in list_images(SMALL_IMAGES) if f.label == SAMOYED][:3], pretrained.preprocessing)
    target = pretrained.resolve_class("Samoyed")
    x = normalise(torch.stack([v.view for v in views]), pretrained.preprocessing)
    state = {k: v.clone() for k, v in pretrained.module.state_dict().items()}
    hooks = all_hooks(pretrained.module)
    with torch.no_grad():
        before = pretrained.module(x)
    channels = {"_blocks.15": [3, 17, 101], "_blocks.14": [5]}
    result = masking_experiment(pretrained, target, views, channels, draws=2, seed=1, patch_images=1,
                                top_patches=4)
    with torch.no_grad():
        after = pretrained.module(x)
    assert torch.equal(before, after)
    assert all_hooks(pretrained.module) == hooks
    assert all(torch.equal(state[k], v) for k, v in pretrained.module.state_dict().items())
    assert result.runner_reused
    assert result.effect.images == 3 and result.effect.neurons == 4
    assert result.effect.accuracy_before == float((before.argmax(1) == target.index).float().mean())
    assert len(result.random.per_draw) == 2
    for drawn in result.random.channels:
        assert {k: len(v) for k, v in drawn.items()} == {"_blocks.15": 3, "_blocks.14": 1}
        assert not set(drawn["_blocks.15"]) & {3, 17, 101}
    drops = [i.drop for i in result.images]
    assert drops == sorted(drops, reverse=True)
    assert len(result.patches) == 4 and all(p.path == result.images[0].path for p in result.patches)
    # The masked logits are those of the whole model with the same hooks.
    from neurflow.engine.segments import channel_hooks

    with channel_hooks(pretrained.module, channels), torch.no_grad():
        masked = pretrained.module(x)[:, target.index]
    by_path = {i.path: i.logit_after for i in result.images}
    for view, value in zip(views, masked, strict=True):
        assert by_path[str(view.file.path)] == pytest.approx(float(value), abs=1e-4)
