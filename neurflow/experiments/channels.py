"""Sets of channels (neurons) per layer: parsed from text, merged, checked and drawn at random.

A channel set maps a layer to its chosen channels, e.g. ``{"_blocks.15": [3, 17]}``. Pure functions of
plain values and numpy's random generator.
"""

from __future__ import annotations

import numpy as np

from neurflow.registry import ModelError

Channels = dict[str, list[int]]
"""Channels per layer, e.g. ``{"_blocks.15": [3, 17]}``."""


def parse_neurons(text: str) -> Channels:
    """``"_blocks.15:3, _blocks.15:17,_blocks.14:5"`` -> ``{"_blocks.15": [3, 17], "_blocks.14": [5]}``."""
    channels: Channels = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        layer, sep, channel = part.rpartition(":")
        if not sep or not layer or not channel.strip().isdigit():
            raise ModelError(f"bad neuron {part!r}: write LAYER:CHANNEL, e.g. _blocks.15:42")
        channels.setdefault(layer.strip(), [])
        if int(channel) not in channels[layer.strip()]:
            channels[layer.strip()].append(int(channel))
    if not channels:
        raise ModelError("no neuron given: write LAYER:CHANNEL,... e.g. _blocks.15:42,_blocks.15:7")
    return channels


def merge_channels(*sets: Channels) -> Channels:
    """Union of channel sets, layers in first-seen order, channels sorted."""
    merged: dict[str, set[int]] = {}
    for channels in sets:
        for layer, chosen in channels.items():
            merged.setdefault(layer, set()).update(int(c) for c in chosen)
    return {layer: sorted(chosen) for layer, chosen in merged.items()}


def neuron_count(channels: Channels) -> int:
    return sum(len(c) for c in channels.values())


def random_channels(chosen: Channels, widths: dict[str, int], rng: np.random.Generator) -> Channels:
    """As many channels per layer as ``chosen`` has there, drawn without replacement from that layer's
    channels that are *not* chosen (all of them when every channel is chosen)."""
    drawn: Channels = {}
    for layer, picked in chosen.items():
        excluded = set(picked)
        pool = np.array([c for c in range(widths[layer]) if c not in excluded], dtype=np.int64)
        if len(pool) < len(picked):
            pool = np.arange(widths[layer], dtype=np.int64)
        drawn[layer] = sorted(int(c) for c in rng.choice(pool, size=len(picked), replace=False))
    return drawn


def check_channels(channels: Channels, widths: dict[str, int]) -> None:
    """A ModelError naming the layer's width when a channel is out of range."""
    for layer, chosen in channels.items():
        bad = [c for c in chosen if not 0 <= c < widths[layer]]
        if bad:
            raise ModelError(f"layer {layer!r} has channels 0..{widths[layer] - 1}; {bad} are out of range")
