"""Effects of a mask: logits before and after compared."""

from __future__ import annotations

import pytest
import torch

from neurflow.experiments.effects import effect_of


def test_effect_of_hand_computed_logits() -> None:
    before = torch.tensor([[2.0, 0.0, 0.0], [3.0, 1.0, 0.0]])
    after = torch.tensor([[0.0, 2.0, 0.0], [3.0, 1.0, 0.0]])
    effect = effect_of(before, after, 0, ["x", "y", "z"], neurons=4)
    p = torch.softmax(torch.tensor([2.0, 0.0, 0.0]), 0)[0].item()
    q = torch.softmax(torch.tensor([0.0, 2.0, 0.0]), 0)[0].item()
    assert effect.accuracy_before == 1.0 and effect.accuracy_after == 0.5
    assert effect.changed == 1 and effect.changed_to == {"y": 1}
    assert effect.mean_logit_change == pytest.approx(-1.0)
    assert effect.mean_prob_change == pytest.approx((q - p) / 2, abs=1e-6)
    assert effect.relative_accuracy == 0.5
