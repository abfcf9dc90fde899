"""Mean ablation: channel means by hand on a tiny network, the masked runner with replacement values, and the
pretrained model (the values are the channels' means over the class's patches; masking with them runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import DataError, PatchSet, list_images, load_views
from neurflow.engine.segments import channel_hooks, record_activations
from neurflow.experiments.ablation import Ablation, channel_means, mean_ablation, view_means
from neurflow.experiments.masking import masking_experiment
from neurflow.experiments.runner import MaskedRunner, view_inputs
from neurflow.experiments.sources import experiment_ablation
from neurflow.registry import ModelError
from tests.circuit_fixtures import SMALL_IMAGES
from tests.experiments.support import SAMOYED, all_hooks
from tests.experiments.test_runner import tiny_loaded

# Tiny (tests/experiments/test_runner.py): conv 1 -> 3 channels with weights 1, 2, 3, mix the identity,
# head the spatial means -> [c0 + c1 + c2, c0 - c1].
IMAGES = torch.stack([
    torch.ones(1, 2, 2),                                  # mean 1
    torch.tensor([[[0.0, 2.0], [4.0, 6.0]]]),             # mean 3
    torch.tensor([[[-1.0, -1.0], [-1.0, 7.0]]]),          # mean 1
])


def test_channel_means_are_the_mean_over_inputs_and_positions_whatever_the_batches() -> None:
    loaded = tiny_loaded()
    # Each conv channel is weight x pixel: its mean over the 3 images and 4 positions is weight x 5/3.
    expected = torch.tensor([1.0, 2.0, 3.0]) * 5 / 3
    one_batch = channel_means(loaded.module, [IMAGES], ["conv", "head"])
    torch.testing.assert_close(one_batch["conv"], expected)
    torch.testing.assert_close(one_batch["head"], torch.tensor([6.0 * 5 / 3, -1.0 * 5 / 3]))
    split = channel_means(loaded.module, [IMAGES[:1], IMAGES[1:]], ["conv"])
    torch.testing.assert_close(split["conv"], expected)
    assert one_batch["conv"].dtype == torch.float32 and all_hooks(loaded.module) == 0
    with pytest.raises(ValueError, match="no inputs"):
        channel_means(loaded.module, [], ["conv"])


@pytest.mark.parametrize("reuse", [True, False])
def test_runner_sets_masked_channels_to_their_values(reuse: bool) -> None:
    loaded = tiny_loaded()
    x = torch.ones(2, 1, 2, 2)  # conv maps 1, 2, 3
    values = {"conv": torch.tensor([10.0, 20.0, 30.0]), "mix": torch.tensor([-1.0, -2.0, -3.0])}
    runner = MaskedRunner(loaded, x, ["mix", "conv"], batch_size=1, reuse=reuse, replacement=values)
    assert runner.reusing is reuse
    expected = [
        ({"conv": [1]}, "mask", [1 + 20 + 3, 1 - 20]),
        ({"conv": [1]}, "retain", [10 + 2 + 30, 10 - 2]),
        ({"mix": [0, 2]}, "mask", [-1 + 2 - 3, -1 - 2]),
        ({"conv": [0], "mix": [2]}, "mask", [10 + 2 - 3, 10 - 2]),
        ({}, "mask", [6, -1]),
    ]
    for channels, mode, logits in expected:
        assert runner(channels, mode).tolist() == [logits, logits], (channels, mode)
    assert all_hooks(loaded.module) == 0
    with pytest.raises(ModelError, match="'conv' has 3 channels but 2 ablation values"):
        MaskedRunner(loaded, x, ["conv"], replacement={"conv": torch.zeros(2)})


def test_an_ablation_is_zero_or_mean_with_values() -> None:
    assert Ablation().replacement is None and "zero" in Ablation().describe()
    mean = Ablation("mean", "class patches", {"conv": torch.ones(3)}, 59)
    assert mean.replacement is not None and torch.equal(mean.replacement["conv"], torch.ones(3))
    assert "59 class patches" in mean.describe()
    with pytest.raises(ValueError, match="ablation must be one of"):
        Ablation("median")
    with pytest.raises(ValueError, match="no values"):
        Ablation("zero", values={"conv": torch.ones(3)})


def test_mean_ablation_on_the_pretrained_model(pretrained: LoadedModel) -> None:
    views, _ = load_views([f for f in list_images(SMALL_IMAGES) if f.label == SAMOYED][:1], pretrained.preprocessing)
    layers = ["_blocks.15", "_blocks.14"]
    ablation = mean_ablation(pretrained, layers, views, batch_size=64)
    assert ablation.kind == "mean" and ablation.reference == "class patches" and ablation.inputs == 59
    # The values are the channels' means over the 59 patches, recorded independently in one pass.
    patches = PatchSet(views, pretrained.preprocessing)
    recorded = record_activations(pretrained.module, patches.inputs(range(len(patches))), layers)
    for layer in layers:
        assert ablation.values[layer].shape == (recorded[layer].shape[1],)
        torch.testing.assert_close(ablation.values[layer], recorded[layer].mean(0), rtol=1e-5, atol=1e-5)
    # Patch 0 is the whole view: the reference-set mean of one image is its activation.
    torch.testing.assert_close(view_means(pretrained, views, ["_blocks.15"])["_blocks.15"], recorded["_blocks.15"][0],
                               rtol=1e-5, atol=1e-5)

    channels = {"_blocks.15": [3, 17, 101], "_blocks.14": [5]}
    result = masking_experiment(pretrained, pretrained.resolve_class("Samoyed"), views, channels, draws=1,
                                patch_images=0, ablation=ablation)
    assert (result.ablation, result.ablation_reference, result.ablation_inputs) == ("mean", "class patches", 59)
    # The masked logits are those of the whole model with the same values in place of the channels ...
    x = view_inputs(views, pretrained)
    with channel_hooks(pretrained.module, channels, replacement=ablation.values), torch.no_grad():
        expected = pretrained.module(x)[:, 258]
    assert result.images[0].logit_after == pytest.approx(float(expected[0]), abs=1e-4)
    # ... and not those of zero ablation.
    zero = masking_experiment(pretrained, pretrained.resolve_class("Samoyed"), views, channels, draws=0,
                              patch_images=0)
    assert zero.ablation == "zero" and zero.effect.mean_logit_change != pytest.approx(result.effect.mean_logit_change)
    assert all_hooks(pretrained.module) == 0
    with pytest.raises(ModelError, match="no values for layer"):
        masking_experiment(pretrained, pretrained.resolve_class("Samoyed"), views, {"_blocks.13": [0]},
                           draws=0, patch_images=0, ablation=ablation)


def test_experiment_ablation_reads_a_reference_folder(pretrained: LoadedModel, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    files = list_images(SMALL_IMAGES)[:2]
    for f in files:
        (reference / f.path.name).symlink_to(f.path)
    ablation = experiment_ablation(pretrained, "mean", ["_blocks.15"], [], reference)
    assert ablation.inputs == 2 and ablation.reference == f"reference images ({reference})"
    views, _ = load_views(files, pretrained.preprocessing)
    torch.testing.assert_close(ablation.values["_blocks.15"], view_means(pretrained, views, ["_blocks.15"])["_blocks.15"])
    assert experiment_ablation(pretrained, "zero", ["_blocks.15"], []).replacement is None
    with pytest.raises(ValueError, match="mean ablation"):
        experiment_ablation(pretrained, "zero", ["_blocks.15"], [], reference)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images in"):
        experiment_ablation(pretrained, "mean", ["_blocks.15"], [], tmp_path / "empty")
