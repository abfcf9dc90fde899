"""Channel sets: parsed from text, merged, and drawn at random away from the chosen ones."""

from __future__ import annotations

import numpy as np
import pytest

from neurflow.experiments.channels import (
    check_channels,
    merge_channels,
    neuron_count,
    parse_neurons,
    random_channels,
)
from neurflow.registry import ModelError


def test_parse_and_merge_neurons() -> None:
    assert parse_neurons("_blocks.15:3, _blocks.15:17,_blocks.14:5,_blocks.15:3") == {
        "_blocks.15": [3, 17], "_blocks.14": [5]}
    for bad in ("", "_blocks.15", "_blocks.15:x", ":4"):
        with pytest.raises(ModelError):
            parse_neurons(bad)
    assert merge_channels({"a": [3, 1]}, {"a": [2, 3], "b": [0]}) == {"a": [1, 2, 3], "b": [0]}
    assert neuron_count({"a": [1, 2, 3], "b": [0]}) == 4


def test_random_channels_avoid_the_chosen_ones_and_are_seeded() -> None:
    chosen = {"a": [0, 1, 2], "b": [5]}
    widths = {"a": 10, "b": 6}
    draws = [random_channels(chosen, widths, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    for _ in range(20):
        drawn = random_channels(chosen, widths, rng)
        assert {k: len(v) for k, v in drawn.items()} == {"a": 3, "b": 1}
        assert not set(drawn["a"]) & {0, 1, 2} and drawn["b"] != [5]
        assert len(set(drawn["a"])) == 3


def test_check_channels_names_the_layer_width() -> None:
    check_channels({"a": [0, 9]}, {"a": 10})
    with pytest.raises(ModelError, match="channels 0..9"):
        check_channels({"a": [10]}, {"a": 10})
