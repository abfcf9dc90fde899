"""What every validation study shares: its layer pairs, its targets, a builder and the class's activations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from neurflow.circuit import Circuit
from neurflow.engine.builder import CircuitBuilder
from neurflow.errors import NeurflowError
from neurflow.experiments.validation.inputs import StudyInputs


class StudySettingsError(NeurflowError, ValueError):
    """Settings a validation study cannot run with (a k above the patches, an unknown layer); says why."""


def layer_pairs(circuit: Circuit, layers: Sequence[str] | None) -> list[tuple[str, str]]:
    """(upper, lower) pairs of the circuit for the upper ``layers`` (default: every layer but the bottom)."""
    uppers = circuit.layers[:-1]
    chosen = list(uppers if layers is None else layers)
    unknown = [layer for layer in chosen if layer not in uppers]
    if unknown:
        raise StudySettingsError(
            f"layer(s) {', '.join(unknown)} cannot be studied: an upper layer of the circuit is needed (one "
            f"with a layer below it): {', '.join(uppers)}"
        )
    if not chosen:
        raise StudySettingsError("no layer to study")
    below = dict(zip(circuit.layers, circuit.layers[1:], strict=False))
    return [(layer, below[layer]) for layer in uppers if layer in chosen]


def study_targets(circuit: Circuit, layer: str, cap: int | None) -> list[int]:
    """The circuit's core neurons of ``layer``, most important first, the first ``cap`` of them.

    Importance: the summed |edge weight| a neuron receives from the semantic groups of the layer above (each
    group's weights sum to 1 in absolute value), ties by channel. The logit layer holds the class alone.
    """
    if cap is not None and cap < 1:
        raise StudySettingsError(f"targets must be at least 1, not {cap}")
    weight = {neuron.channel: 0.0 for neuron in circuit.neurons[layer]}
    for edge in circuit.edges:
        lower_layer, _, channel = edge.lower.rpartition(":")
        if lower_layer == layer and int(channel) in weight:
            weight[int(channel)] += abs(edge.weight)
    ranked = sorted(weight, key=lambda channel: (-weight[channel], channel))
    return ranked[:cap] if cap is not None else ranked


def study_builder(inputs: StudyInputs, progress: bool) -> CircuitBuilder:
    """A builder with the circuit's settings and layers, on the model's device."""
    config = dataclasses.replace(inputs.config, layers=list(inputs.circuit.layers))
    return CircuitBuilder(inputs.loaded, config, progress=progress)


def study_activations(inputs: StudyInputs, builder: CircuitBuilder) -> dict[str, np.ndarray]:
    """Every circuit layer's spatial means over the class's patches: the inputs' cache, or one recording pass
    that fills it (and leaves the lower maps in the builder for attribution)."""
    if all(layer in inputs.activations for layer in inputs.circuit.layers):
        builder.maps = {}  # the builder's maps must belong to ``inputs.patches``: recompute rather than guess
        return inputs.activations
    inputs.activations.update(builder.record(inputs.patches))
    return inputs.activations
