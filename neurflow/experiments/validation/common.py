"""What every validation study shares: its layer pairs, its targets, a builder and the class's recording.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from neurflow.circuit import Circuit
from neurflow.engine.builder import CircuitBuilder
from neurflow.engine.recording import Recording
from neurflow.errors import NeurflowError
from neurflow.experiments.validation.inputs import StudyInputs, class_recording


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


def study_recording(inputs: StudyInputs, builder: CircuitBuilder) -> Recording:
    """The class's recording (:func:`~neurflow.experiments.validation.inputs.class_recording`), made with the
    builder's progress setting when no study of these inputs made it yet."""
    return class_recording(inputs, builder.progress)


def mean_interval(values: np.ndarray, confidence: float = 0.99) -> tuple[float, float, float]:
    """Mean and its two-sided t-interval; (mean, mean, mean) when the values do not vary, NaNs when empty."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2 or np.ptp(values) == 0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)
