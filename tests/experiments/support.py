"""Helpers of the experiment tests."""

from __future__ import annotations

from torch import nn

SAMOYED, BEAGLE = "n02111889", "n02088364"


def all_hooks(module: nn.Module) -> int:
    """Forward and forward-pre hooks registered anywhere in ``module``."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())
