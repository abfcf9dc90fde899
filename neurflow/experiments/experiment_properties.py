"""Experiment results as graph records: the flat properties of MaskingExperiment, FidelityStudy and
FidelityResult nodes, and the calls that write them (:mod:`neurflow.graph.experiment_records`).

Neo4j properties are numbers, strings and lists of them, never maps: nested results (per draw, per image) are
kept as JSON text (``resultJson``) and NaN is stored as null.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import neo4j

from neurflow.circuit import ClassInfo
from neurflow.engine.models import LoadedModel
from neurflow.experiments.fidelity import FidelityRow, evidences_of, images_per_evidence, summarise_fidelity
from neurflow.experiments.masking import MaskingResult
from neurflow.format import strict_json
from neurflow.graph.circuits import CircuitRef
from neurflow.graph.experiment_records import GroupRef, write_fidelity_study, write_masking_experiment


def model_key_of(loaded: LoadedModel) -> str:
    """The Model node key of a loaded model: ``name@weightsId`` (as the store writes it)."""
    return loaded.info.key


def neurflow_version() -> str:
    try:
        return version("neurflow")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "unknown"


def _clean(value: float) -> float | None:
    """NaN is not a useful graph property: store null instead."""
    return None if isinstance(value, float) and math.isnan(value) else value


def model_node(name: str, weights_id: str) -> dict[str, Any]:
    """The Model node's properties (merged by key)."""
    return {"key": f"{name}@{weights_id}", "name": name, "weightsId": weights_id}


def class_node(target: ClassInfo) -> dict[str, Any]:
    """The Class node's properties (merged by index)."""
    return {"index": target.index, "name": target.name, "wnid": target.wnid}


# --------------------------------------------------------------------------- masking


def masking_properties(result: MaskingResult, circuit: CircuitRef | None, groups: Sequence[GroupRef],
                       images_source: str) -> dict[str, Any]:
    """The MaskingExperiment node's properties (flat: numbers, strings and lists of them)."""
    e, r = result.effect, result.random
    return {
        "id": uuid.uuid4().hex,
        "mode": result.mode,
        "ablation": result.ablation,
        "ablationReference": result.ablation_reference,
        "ablationInputs": result.ablation_inputs,
        "modelKey": result.model.key,
        "modelName": result.model.name,
        "weightsId": result.model.weights_id,
        "classIndex": result.target.index,
        "className": result.target.name,
        "circuitId": circuit.id if circuit else None,
        "groupIds": [g.group_id for g in groups],
        "layers": list(result.channels),
        "neurons": [f"{layer}:{c}" for layer, chosen in result.channels.items() for c in chosen],
        "neuronCount": e.neurons,
        "images": e.images,
        "imagesSource": images_source,
        "accuracyBefore": e.accuracy_before,
        "accuracyAfter": e.accuracy_after,
        "meanProbBefore": e.mean_prob_before,
        "meanProbAfter": e.mean_prob_after,
        "meanProbChange": e.mean_prob_change,
        "meanLogitChange": e.mean_logit_change,
        "changed": e.changed,
        "changedToJson": json.dumps(e.changed_to),
        "randomDraws": r.draws,
        "seed": r.seed,
        "randomAccuracyAfterMean": _clean(r.accuracy_after_mean),
        "randomAccuracyAfterStd": _clean(r.accuracy_after_std),
        "randomProbChangeMean": _clean(r.prob_change_mean),
        "randomProbChangeStd": _clean(r.prob_change_std),
        "randomLogitChangeMean": _clean(r.logit_change_mean),
        "randomLogitChangeStd": _clean(r.logit_change_std),
        "topImages": [i.path for i in result.images[:5]],
        "topImageDrops": [i.drop for i in result.images[:5]],
        "resultJson": strict_json(result.to_dict()),
        "neurflowVersion": neurflow_version(),
    }


def masked_neuron_rows(model_key: str, channels: dict[str, list[int]]) -> list[dict[str, Any]]:
    """The Neuron (and Layer) keys of masked channels, as the store keys them."""
    return [
        {"key": f"{model_key}|{layer}:{c}", "layer": layer, "channel": c, "layerKey": f"{model_key}|{layer}"}
        for layer, chosen in channels.items() for c in chosen
    ]


def record_masking_experiment(
    driver: neo4j.Driver,
    result: MaskingResult,
    circuit: CircuitRef | None = None,
    groups: Sequence[GroupRef] = (),
    images_source: str = "circuit",
    database: str | None = None,
) -> str:
    """Writes a MaskingExperiment linked to its model, class, circuit and the groups (or, without groups,
    the neurons) it masked; returns its id."""
    props = masking_properties(result, circuit, groups, images_source)
    return write_masking_experiment(
        driver, props, model_node(result.model.name, result.model.weights_id), class_node(result.target),
        [g.key for g in groups], masked_neuron_rows(props["modelKey"], result.channels), database,
    )


# --------------------------------------------------------------------------- fidelity


def fidelity_properties(rows: Sequence[FidelityRow], loaded_name: str, weights_id: str, draws: int, seed: int,
                        csv_path: str | None, png_path: str | None, ablation: str = "zero",
                        ablation_reference: str | None = None) -> dict[str, Any]:
    """The FidelityStudy node's properties, with one summary number per panel of the plot."""
    summary = summarise_fidelity(rows)
    props: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "ablation": ablation,
        "ablationReference": ablation_reference,
        "modelKey": f"{loaded_name}@{weights_id}",
        "modelName": loaded_name,
        "weightsId": weights_id,
        "classes": list(dict.fromkeys(r.class_name for r in rows)),
        "classIndices": list(dict.fromkeys(r.class_index for r in rows)),
        "layers": list(dict.fromkeys(r.layer for r in rows)),
        "randomDraws": draws,
        "seed": seed,
        "csvPath": csv_path,
        "pngPath": png_path,
        "summaryJson": strict_json([s.__dict__ for s in summary]),
        "neurflowVersion": neurflow_version(),
    }
    # One number per panel: relative accuracy averaged over layers and classes (core and random), on the held-out
    # images when there are some (``evidence``), and on the circuits' own beside them (``...InSample``).
    shown = evidences_of(rows)
    props["evidence"] = shown[0] if shown else None
    props["images"] = images_per_evidence(rows).get(shown[0], 0) if shown else 0
    for evidence in shown:
        suffix = "" if evidence == shown[0] else "InSample"
        for scope in ("single", "cumulative"):
            for mode in ("mask", "retain"):
                chosen = [s for s in summary if s.scope == scope and s.mode == mode and s.evidence == evidence]
                core = [s.core_relative for s in chosen if not math.isnan(s.core_relative)]
                rand = [s.random_relative for s in chosen if not math.isnan(s.random_relative)]
                name = f"{scope}{mode.capitalize()}"
                props[f"{name}Core{suffix}"] = sum(core) / len(core) if core else None
                props[f"{name}Random{suffix}"] = sum(rand) / len(rand) if rand else None
    return props


def fidelity_result_rows(rows: Sequence[FidelityRow], study_id: str, model_key: str,
                         circuits: Sequence[CircuitRef]) -> list[dict[str, Any]]:
    """The FidelityResult nodes' properties: one per class, layer, scope and mode."""
    circuit_of = {c.class_index: c.id for c in circuits}
    result_rows = []
    for row in rows:
        data = {k: _clean(v) for k, v in row.to_dict().items()}
        result_rows.append({
            "studyId": study_id, "modelKey": model_key, "circuitId": circuit_of.get(row.class_index),
            "classIndex": row.class_index, "className": row.class_name, "layer": row.layer, "depth": row.depth,
            "scope": row.scope, "mode": row.mode, "ablation": row.ablation, "neurons": row.neurons,
            "images": row.images,
            "baseAccuracy": data["base_accuracy"], "coreAccuracy": data["core_accuracy"],
            "randomAccuracyMean": data["random_accuracy_mean"], "randomAccuracyStd": data["random_accuracy_std"],
            "coreRelative": data["core_relative"], "randomRelative": data["random_relative"],
            "randomRelativeStd": data["random_relative_std"], "coreProb": data["core_prob"],
            "randomProbMean": data["random_prob_mean"], "evidence": row.evidence,
            "coreAccuracyLow": data["core_accuracy_low"], "coreAccuracyHigh": data["core_accuracy_high"],
            "randomAccuracyMin": data["random_accuracy_min"], "randomAccuracyMax": data["random_accuracy_max"],
            "pValue": data["p_value"],
        })
    return result_rows


def record_fidelity_study(
    driver: neo4j.Driver,
    rows: Sequence[FidelityRow],
    circuits: Sequence[CircuitRef],
    loaded_name: str,
    weights_id: str,
    draws: int,
    seed: int,
    csv_path: str | None = None,
    png_path: str | None = None,
    database: str | None = None,
    ablation: str = "zero",
    ablation_reference: str | None = None,
) -> str:
    """Writes a FidelityStudy with one FidelityResult per class, layer, scope and mode; returns its id.
    ``ablation``: what masked neurons were set to (``zero`` or ``mean``), ``ablation_reference`` the inputs
    the means were taken over, in words."""
    props = fidelity_properties(rows, loaded_name, weights_id, draws, seed, csv_path, png_path, ablation,
                                ablation_reference)
    results = fidelity_result_rows(rows, props["id"], props["modelKey"], circuits)
    classes = [{"index": c.class_index, "name": c.class_name} for c in circuits]
    return write_fidelity_study(driver, props, model_node(loaded_name, weights_id), classes,
                                [c.id for c in circuits], results, database)
