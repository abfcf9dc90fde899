"""`neurflow validate ...` end to end on two tiny real circuits (one image each from tests/data/imagewoof, the
pretrained EfficientNet-Lite0, tiny settings: 59 patches keep every pass short): each study writes its CSV and PNG and a ValidationStudy the `validation-summary` query lists;
errors are one line and exit 1. Also `study_inputs`: the circuit's own weights, images and patches, and the
mean-ablation values, checked against an independent computation of the layer's full maps."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import neo4j
import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from neurflow.cli.main import main
from neurflow.engine.segments import layer_output
from neurflow.errors import CircuitLookupError
from neurflow.experiments.validation.inputs import (
    StudyInputError,
    circuit_config,
    study_inputs,
)
from neurflow.format import load_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.deletion import clear_graph
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.named_queries import run_query
from neurflow.graph.study_records import circuit_validation_studies
from neurflow.workbench.locate import circuit_in_folder
from tests.circuit_fixtures import REAL_CLASSES, SMALL_IMAGES, small_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST = ["--device", "cpu", "--no-progress", "--targets", "1"]


@pytest.fixture(scope="module")
def tiny_circuit_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Samoyed and golden retriever, each from its most confident image (layers _fc, _blocks.15, _blocks.14)."""
    from neurflow.engine.plans import build_circuits

    return build_circuits(small_config(max_images=1), list(REAL_CLASSES), SMALL_IMAGES,
                          tmp_path_factory.mktemp("tiny-circuits"), echo=lambda _: None, progress=False)


@pytest.fixture(scope="module")
def fresh_graph(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings) -> neo4j.Driver:
    clear_graph(neo4j_driver, neo4j_settings.database)
    return neo4j_driver


@pytest.fixture
def graph(fresh_graph: neo4j.Driver, neo4j_settings: ConnectionSettings, tiny_circuit_dirs: list[Path]) -> dict[str, Path]:
    """The two real circuits (Samoyed, golden retriever) in the graph (a no-op when they are there)."""
    folders = {}
    for folder in tiny_circuit_dirs:
        circuit = load_circuit(folder)
        write_circuit(fresh_graph, circuit, folder, database=neo4j_settings.database)
        folders[circuit.target.name] = folder
    return folders


def connection(settings: ConnectionSettings) -> list[str]:
    args = ["--uri", settings.uri, "--user", settings.user, "--database", settings.database]
    return args + (["--password", settings.password] if settings.password else [])


def invoke(args: Sequence[str], settings: ConnectionSettings | None = None) -> Result:
    """``neurflow validate ARGS`` as a user runs it (errors mapped to one line by the main group)."""
    result = CliRunner().invoke(main, ["validate", *args, *(connection(settings) if settings else [])])
    assert "Traceback" not in result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def recorded_id(result: Result) -> str:
    found = re.search(r"Recorded ValidationStudy ([0-9a-f]{32})", result.output)
    assert found, result.output
    return found.group(1)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def check_files(out: Path, study: str) -> list[dict[str, str]]:
    assert (out / f"{study}.png").read_bytes()[:8] == PNG_MAGIC
    rows = read_csv(out / f"{study}.csv")
    assert rows
    return rows


def listed(settings: ConnectionSettings, driver: neo4j.Driver, **params: object) -> list[dict]:
    return run_query(driver, "validation-summary", params, settings.database)[1]


# --------------------------------------------------------------------------- each study, end to end


def test_correlation_with_mean_ablation_is_recorded_and_listed(graph: dict[str, Path], neo4j_driver: neo4j.Driver,
                                                               neo4j_settings: ConnectionSettings,
                                                               tmp_path: Path) -> None:
    circuit = load_circuit(graph["Samoyed"])
    result = invoke(["correlation", "-m", "efficientnet-lite0", "-c", "samoyed", *FAST, "--layers", "_blocks.15",
                     "--sizes", "1,2", "--sets-per-size", "3", "--singles", "6", "--ablation", "mean",
                     "--out", str(tmp_path)], neo4j_settings)
    assert result.exit_code == 0, result.output
    rows = check_files(tmp_path, "correlation")
    core = {n.key for n in circuit.neurons["_blocks.15"]}
    assert {r["layer"] for r in rows} == {"_blocks.15"} and {r["target"] for r in rows} <= core
    assert sorted(int(r["size"]) for r in rows) == [1, 2] and {r["n_sets"] for r in rows} == {"6", "3"}
    study_id = recorded_id(result)
    [record] = [r for r in circuit_validation_studies(neo4j_driver, circuit.id, database=neo4j_settings.database)
                if r.id == study_id]
    assert record.study == "correlation" and record.linked_layers == ["_blocks.15"]
    assert record.properties["ablation"] == "mean" and record.parameters["ablation"] == "mean"
    assert record.properties["csvPath"] == str((tmp_path / "correlation.csv").resolve())
    assert record.parameters["sizes"] == [1, 2] and record.parameters["singles"] == 6
    for name, value in record.summary.items():  # the summary printed is the summary stored
        assert f"{name}: " in result.output and (np.isnan(value) or value == pytest.approx(value))
    [row] = [r for r in listed(neo4j_settings, neo4j_driver, study="correlation") if r["id"] == study_id]
    assert row["class"] == "Samoyed" and row["circuit"] == circuit.id and row["ablation"] == "mean"


def test_optimality_from_a_folder_needs_no_graph(graph: dict[str, Path], neo4j_driver: neo4j.Driver,
                                                 neo4j_settings: ConnectionSettings, tmp_path: Path) -> None:
    before = len(listed(neo4j_settings, neo4j_driver, limit=1000))
    folder = graph["Samoyed"]
    # Nothing listens on port 1: the command must not try to connect.
    result = invoke(["optimality", "--circuit-dir", str(folder), *FAST, "--layers", "_blocks.15", "--taus", "2,4",
                     "--random-sets", "4", "--no-record", "--out", str(tmp_path), "--uri", "bolt://127.0.0.1:1"])
    assert result.exit_code == 0, result.output
    rows = check_files(tmp_path, "optimality")
    assert {r["layer"] for r in rows} == {"_blocks.15"}
    # By default also on held-out Samoyeds: from the folder of the circuit's images, none of them the circuit's.
    assert {r["evidence"] for r in rows} == {"held-out", "in-sample"}
    held = [r for r in rows if r["evidence"] == "held-out"]
    assert int(held[0]["images"]) == len(load_circuit(folder).images)
    assert "Recorded" not in result.output
    assert len(listed(neo4j_settings, neo4j_driver, limit=1000)) == before


def test_k_sensitivity_from_a_folder_of_circuits_is_recorded(graph: dict[str, Path], neo4j_driver: neo4j.Driver,
                                                             neo4j_settings: ConnectionSettings,
                                                             tmp_path: Path) -> None:
    circuit = load_circuit(graph["golden retriever"])
    result = invoke(["k-sensitivity", "--circuit-dir", str(graph["Samoyed"].parent), "-c", "golden retriever",
                     *FAST, "--layers", "_fc", "--ks", "6,12,24", "--reference-k", "12", "--out", str(tmp_path)],
                    neo4j_settings)
    assert result.exit_code == 0, result.output
    rows = check_files(tmp_path, "k-sensitivity")
    tau = circuit.params["tau"]
    assert {int(r["k"]) for r in rows} == {6, 12, 24}
    # the reference k against itself: the same core set, all tau neurons shared
    assert [int(r["overlap"]) for r in rows if r["k"] == "12"] == [tau]
    assert all(0 <= int(r["overlap"]) <= tau for r in rows)
    study_id = recorded_id(result)
    [row] = [r for r in listed(neo4j_settings, neo4j_driver, **{"class": "golden retriever"}) if r["id"] == study_id]
    assert row["study"] == "k-sensitivity" and row["layers"] == ["_fc"] and row["ablation"] is None  # nothing knocked out


def test_crops_is_recorded_for_the_graphs_circuit(graph: dict[str, Path], neo4j_driver: neo4j.Driver,
                                                  neo4j_settings: ConnectionSettings, tmp_path: Path) -> None:
    circuit = load_circuit(graph["Samoyed"])
    result = invoke(["crops", "-c", "Samoyed", "--circuit-id", circuit.id, *FAST, "--layers", "_fc",
                     "--mixes", "1,0.5,0.25;1", "--out", str(tmp_path)], neo4j_settings)
    assert result.exit_code == 0, result.output
    rows = check_files(tmp_path, "crops")
    tau = circuit.params["tau"]
    default = [r for r in rows if re.sub(r"[^0-9.]+", " ", r["mix"]).split() == ["1", "0.5", "0.25"]]
    assert default and all(int(r["overlap"]) == tau for r in default), rows
    study_id = recorded_id(result)
    [record] = [r for r in circuit_validation_studies(neo4j_driver, circuit.id, "crops", neo4j_settings.database)
                if r.id == study_id]
    assert json.loads(record.properties["parametersJson"]) == record.parameters
    assert record.linked_layers == ["_fc"]


# --------------------------------------------------------------------------- errors: one line, exit 1


def test_errors_are_one_line(graph: dict[str, Path], neo4j_settings: ConnectionSettings, tmp_path: Path) -> None:
    def fails(args: list[str], message: str, code: int = 1) -> None:
        result = invoke(args, neo4j_settings)
        assert result.exit_code == code, result.output
        assert re.search(message, result.output), result.output
        if code == 1:
            assert len(result.output.strip().splitlines()) == 1, result.output

    fails(["k-sensitivity", "-c", "Samoyd", "--no-progress"], r"unknown class 'Samoyd'.*Samoyed")
    fails(["k-sensitivity", "-m", "efficientnet-lite0", "-c", "Shih-Tzu", "--no-progress"],
          r"no complete circuit of 'Shih-Tzu'")
    fails(["k-sensitivity", "-c", "Samoyed", "--circuit-id", "0123456789abcdef"], r"no circuit '0123456789abcdef'")
    fails(["k-sensitivity", "--circuit-dir", str(tmp_path)], r"no circuit under")
    fails(["k-sensitivity", "--circuit-dir", str(graph["Samoyed"].parent), "--no-record"],
          r"2 circuits under .* Pass the class \(-c\)")
    fails(["k-sensitivity", "--circuit-dir", str(graph["Samoyed"]), "--layers", "_blocks.14", "--no-record"],
          r"'_blocks.14' is not an upper layer .* choose from _fc, _blocks.15")
    fails(["k-sensitivity", "--no-record"], r"give --circuit-dir DIR, or -c CLASS", code=2)
    fails(["correlation", "-c", "Samoyed", "--sizes", "1,x"], r"not a comma-separated list of ints", code=2)
    fails(["crops", "-c", "Samoyed", "--mixes", "1;;0.5"], r"empty mix", code=2)


def test_a_circuit_outside_the_graph_is_refused_before_the_work(graph: dict[str, Path],
                                                                neo4j_settings: ConnectionSettings,
                                                                tmp_path: Path) -> None:
    copy = tmp_path / "circuit"
    shutil.copytree(graph["Samoyed"], copy)
    data = json.loads((copy / "circuit.json").read_text())
    data["params"]["seed"] = 12345  # another circuit id: not in the graph
    (copy / "circuit.json").write_text(json.dumps(data))
    result = invoke(["k-sensitivity", "--circuit-dir", str(copy), "--no-progress"], neo4j_settings)
    assert result.exit_code == 1 and "pass --no-record" in result.output, result.output
    assert "k-sensitivity of" not in result.output  # refused before any study ran


# --------------------------------------------------------------------------- study_inputs


def test_study_inputs_reproduce_the_circuit_and_its_mean_ablation(tiny_circuit_dirs: list[Path]) -> None:
    folder = tiny_circuit_dirs[0]
    circuit = load_circuit(folder)
    inputs = study_inputs(folder, device="cpu", ablation="mean", progress=False)
    assert inputs.loaded.weights_id == circuit.model.weights_id and inputs.circuit.id == circuit.id
    assert inputs.config.layers == circuit.layers
    assert (inputs.config.tau, inputs.config.k, inputs.config.steps) == (circuit.params["tau"], circuit.params["k"],
                                                                         circuit.params["steps"])
    assert [v.sha256 for v in inputs.views] == [im.sha256 for im in circuit.images]
    assert len(inputs.patches) == len(circuit.patches) == 59 * len(circuit.images)
    assert set(inputs.replacement) == set(circuit.layers[1:])
    # The mean over every patch and position of the bottom layer's full maps, computed here from the maps.
    bottom = circuit.layers[-1]
    with torch.no_grad():
        maps = torch.cat([layer_output(inputs.loaded.module, inputs.patches.inputs(batch), bottom).float()
                          for batch in inputs.patches.batches(64)])
    assert inputs.replacement[bottom].shape == (maps.shape[1],)
    np.testing.assert_allclose(inputs.replacement[bottom].numpy(), maps.mean((0, 2, 3)).numpy(), rtol=1e-4,
                               atol=1e-5)
    # the recorded activations are the circuit's own (its vectors hold the core neurons' columns)
    core = [n.channel for n in circuit.neurons[bottom]]
    stored = np.array([[n.max_activation for n in circuit.neurons[bottom]]])
    np.testing.assert_allclose(inputs.recorded[0].means[bottom][:, core].max(0, keepdims=True), stored, rtol=1e-4,
                               atol=1e-5)


def test_study_inputs_refuse_other_weights_and_changed_images(tiny_circuit_dirs: list[Path], tmp_path: Path) -> None:
    folder = tiny_circuit_dirs[0]
    circuit = load_circuit(folder)
    with pytest.raises(StudyInputError, match=rf"weights {re.escape(circuit.model.weights_id)}.*random:seed=0"):
        study_inputs(folder, random_weights=True, device="cpu", progress=False)

    copy = tmp_path / "circuit"
    shutil.copytree(folder, copy)
    moved = tmp_path / "moved"
    moved.mkdir()
    data = json.loads((copy / "circuit.json").read_text())
    for record in data["images"]:
        target = moved / Path(record["path"]).name
        shutil.copy(record["path"], target)
        record["path"] = str(tmp_path / "gone" / Path(record["path"]).name)
    (copy / "circuit.json").write_text(json.dumps(data))
    with pytest.raises(StudyInputError, match="is missing.*pass --images DIR"):
        study_inputs(copy, device="cpu", progress=False)
    found = study_inputs(copy, device="cpu", images=moved, progress=False)
    assert [v.file.path.parent for v in found.views] == [moved.resolve()] * len(circuit.images)
    assert found.replacement == {} and found.recorded == []  # zero ablation: nothing recorded, nothing to set

    first = moved / Path(data["images"][0]["path"]).name
    first.write_bytes(first.read_bytes() + b"\0")  # other bytes under the recorded name
    data["images"][0]["path"] = str(first)
    (copy / "circuit.json").write_text(json.dumps(data))
    with pytest.raises(StudyInputError, match="image 0 of circuit .* has changed"):
        study_inputs(copy, device="cpu", progress=False)


def test_the_one_circuit_of_a_folder_is_found(tiny_circuit_dirs: list[Path]) -> None:
    root = tiny_circuit_dirs[0].parent
    by_class = {load_circuit(f).target.index: f for f in tiny_circuit_dirs}
    for index, folder in by_class.items():
        assert circuit_in_folder(root, index)[1] == folder
        assert circuit_in_folder(root, circuit_id=load_circuit(folder).id)[1] == folder
    assert circuit_in_folder(tiny_circuit_dirs[0])[1] == tiny_circuit_dirs[0]
    with pytest.raises(CircuitLookupError, match="2 circuits under"):
        circuit_in_folder(root)
    with pytest.raises(CircuitLookupError, match="no circuit under .* fits"):
        circuit_in_folder(root, model="resnet50")


def test_the_circuits_build_settings_round_trip(tiny_circuit_dirs: list[Path]) -> None:
    """The BuildConfig rebuilt from a circuit gives back exactly its params (so the studies recompute with the
    circuit's settings); a circuit from before `group_space` existed was grouped in the core spaces."""
    circuit = load_circuit(tiny_circuit_dirs[0])
    config = circuit_config(circuit, device="cpu")
    assert config.circuit_params() == circuit.params and config.device == "cpu"
    old = dict(circuit.params)
    old.pop("group_space", None)
    circuit.params = old
    assert circuit_config(circuit).group_space == "core" and circuit_config(circuit).circuit_params() == old
    circuit.params = old | {"future_setting": 3}
    assert circuit_config(circuit).extra == {"future_setting": 3}
    # an auto circuit from before nested levels (no steps_rule): the doubling rule, and the same params
    legacy_auto = old | {"steps": "auto", "steps_start": 4, "steps_max": 64, "steps_tolerance": 0.05, "steps_tie": 0.01}
    circuit.params = legacy_auto
    assert circuit_config(circuit).steps_rule == "doubling" and circuit_config(circuit).circuit_params() == legacy_auto
