"""`neurflow mask | fidelity | debug` against the real Neo4j with two real circuits ingested by the store."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import neo4j
import pytest
from click.testing import CliRunner, Result

from neurflow.classes import imagenet_categories, resolve_class
from neurflow.cli.main import main
from neurflow.engine.patches import list_images
from neurflow.format import load_circuit
from neurflow.graph.circuits import CircuitNotFoundError, find_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.deletion import clear_graph, delete_circuit
from neurflow.graph.experiment_records import ExperimentError, circuit_groups, core_neurons, resolve_groups
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.named_queries import run_query
from neurflow.synthetic import synthetic_circuit

pytestmark = pytest.mark.neo4j

SAMOYED, BEAGLE = "n02111889", "n02088364"
MODEL = ["-m", "efficientnet-lite0", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def fresh_graph(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings) -> neo4j.Driver:
    clear_graph(neo4j_driver, neo4j_settings.database)
    return neo4j_driver


@pytest.fixture
def graph(fresh_graph: neo4j.Driver, neo4j_settings: ConnectionSettings, real_circuit_dirs: list[Path]) -> dict[str, Path]:
    """The two real circuits, ingested with the store (a no-op when they are already there)."""
    folders = {}
    for folder in real_circuit_dirs:
        circuit = load_circuit(folder)
        write_circuit(fresh_graph, circuit, folder, database=neo4j_settings.database)
        folders[circuit.target.name] = folder
    return folders


def invoke(command: str, args: Sequence[str], settings: ConnectionSettings) -> Result:
    """``neurflow COMMAND ARGS`` against the test server, as a user runs it (errors mapped by the main group)."""
    conn = ["--uri", settings.uri, "--user", settings.user, "--database", settings.database]
    if settings.password:
        conn += ["--password", settings.password]
    result = CliRunner().invoke(main, [command, *args, *conn])
    assert "Traceback" not in result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def first_group(folder: Path, depth: int = 1) -> str:
    circuit = load_circuit(folder)
    return circuit.groups_of_layer(circuit.layers[depth])[0].id


def test_mask_records_an_experiment_that_its_query_finds(graph: dict[str, Path], neo4j_driver: neo4j.Driver,
                                                          neo4j_settings: ConnectionSettings) -> None:
    folder = graph["Samoyed"]
    circuit = load_circuit(folder)
    gid = first_group(folder)
    result = invoke("mask", [*MODEL, "-c", "samoyed", "-g", gid, "--random-draws", "2", "--patch-images", "0",
                             "--json"], neo4j_settings)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["groups"] == [gid] and data["circuit_id"] == circuit.id
    group = next(g for g in circuit.neuron_groups if g.id == gid)
    assert data["channels"] == {group.layer: sorted(int(n.rpartition(":")[2]) for n in group.neurons)}
    assert data["effect"]["images"] == len(circuit.images)
    assert len(data["random"]["per_draw"]) == 2
    eid = data["experiment_id"]

    db = neo4j_settings.database
    _, rows = run_query(neo4j_driver, "masking-experiments", {"class": "Samoyed"}, db)
    row = next(r for r in rows if r["experiment"] == eid)
    assert row["groups"] == [gid] and row["mode"] == "mask" and row["circuit"] == circuit.id
    assert row["accuracyAfter"] == pytest.approx(data["effect"]["accuracy_after"])
    assert row["randomAccuracyAfter"] == pytest.approx(data["random"]["accuracy_after_mean"])
    assert any(r["experiment"] == eid for r in run_query(neo4j_driver, "masking-experiments", {"group": gid}, db)[1])
    assert not any(r["experiment"] == eid
                   for r in run_query(neo4j_driver, "masking-experiments", {"class": "golden retriever"}, db)[1])
    records, _, _ = neo4j_driver.execute_query(
        """
        MATCH (e:MaskingExperiment {id: $id})
        MATCH (e)-[:OF_MODEL]->(m:Model), (e)-[:FOR_CLASS]->(cl:Class), (e)-[:ON_CIRCUIT]->(c:Circuit)
        RETURN m.key AS model, cl.index AS class, c.id AS circuit,
               COLLECT { MATCH (e)-[:MASKED]->(g:NeuronGroup) RETURN g.groupId } AS groups,
               e.createdAt IS NOT NULL AS timed, e.weightsId AS weights
        """,
        id=eid, database_=db,
    )
    assert records[0]["model"] == f"efficientnet-lite0@{circuit.model.weights_id}"
    assert records[0]["class"] == 258 and records[0]["circuit"] == circuit.id
    assert records[0]["groups"] == [gid] and records[0]["timed"]

    # From the circuit's folder without recording: no graph at all (nothing listens on port 1), same effect.
    alone = CliRunner().invoke(main, ["mask", *MODEL, "-c", "samoyed", "-g", gid, "--random-draws", "2",
                                      "--patch-images", "0", "--json", "--circuit-dir", str(folder), "--no-record",
                                      "--uri", "bolt://127.0.0.1:1"])
    assert alone.exit_code == 0, alone.output
    same = json.loads(alone.stdout)
    assert same["experiment_id"] is None and same["effect"] == data["effect"]


def test_mask_neurons_on_an_image_folder_in_retain_mode(graph: dict[str, Path], neo4j_driver: neo4j.Driver,
                                                         neo4j_settings: ConnectionSettings,
                                                         small_images: Path) -> None:
    result = invoke("mask", [*MODEL, "-c", "Samoyed", "--neurons", "_blocks.15:1,_blocks.15:2,_blocks.14:7",
                             "--images", str(small_images), "--mode", "retain", "--random-draws", "1",
                             "--patch-images", "0"], neo4j_settings)
    assert result.exit_code == 0, result.output
    assert "Retaining the given neurons of 'Samoyed'" in result.stdout
    assert "top-1 accuracy" in result.stdout and "predicted as the class in" in result.stdout
    eid = result.stdout.split("Recorded MaskingExperiment ")[1].split()[0]
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (e:MaskingExperiment {id: $id})-[:MASKED]->(n:Neuron) RETURN n.layer + ':' + n.channel AS n "
        "ORDER BY n",
        id=eid, database_=neo4j_settings.database,
    )
    assert [r["n"] for r in records] == ["_blocks.14:7", "_blocks.15:1", "_blocks.15:2"]
    _, rows = run_query(neo4j_driver, "masking-experiments", {"mode": "retain"}, neo4j_settings.database)
    assert any(r["experiment"] == eid and r["neurons"] == 3 for r in rows)


def test_mask_with_mean_ablation_records_it(graph: dict[str, Path], neo4j_driver: neo4j.Driver,
                                            neo4j_settings: ConnectionSettings, small_images: Path) -> None:
    args = [*MODEL, "-c", "Samoyed", "--neurons", "_blocks.15:1,_blocks.15:2", "--images", str(small_images),
            "--max-images", "1", "--random-draws", "1", "--patch-images", "0"]
    result = invoke("mask", [*args, "--ablation", "mean"], neo4j_settings)
    assert result.exit_code == 0, result.output
    assert "Ablation: mean (masked neurons set to their mean over 59 class patches)" in result.stdout
    eid = result.stdout.split("Recorded MaskingExperiment ")[1].split()[0]
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (e:MaskingExperiment {id: $id}) RETURN e.ablation AS ablation, e.ablationReference AS reference, "
        "e.ablationInputs AS inputs", id=eid, database_=neo4j_settings.database)
    assert (records[0]["ablation"], records[0]["reference"], records[0]["inputs"]) == ("mean", "class patches", 59)

    result = invoke("mask", [*args, "--json", "--no-record", "--reference-images", str(small_images)],
                    neo4j_settings)
    assert result.exit_code == 2 and "--reference-images is for --ablation mean" in result.output


def test_bad_input_gives_one_clear_error(graph: dict[str, Path], neo4j_settings: ConnectionSettings) -> None:
    circuit = load_circuit(graph["Samoyed"])
    result = invoke("mask", [*MODEL, "-c", "Samoyed", "-g", "_blocks.15/g99", "--no-record"], neo4j_settings)
    assert result.exit_code == 1
    assert "unknown group(s) '_blocks.15/g99'" in result.output
    assert all(g.id in result.output for g in circuit.neuron_groups)

    result = invoke("mask", [*MODEL, "-c", "Samoyd", "-g", "_blocks.15/g0"], neo4j_settings)
    assert result.exit_code == 1 and "unknown class 'Samoyd'" in result.output and "Samoyed" in result.output

    result = invoke("mask", [*MODEL, "-c", "Samoyed", "--circuit", "feedfacefeedface", "-g", "x"], neo4j_settings)
    assert result.exit_code == 1 and "no circuit 'feedfacefeedface'" in result.output

    result = invoke("mask", [*MODEL, "-c", "beagle", "-g", "_blocks.15/g0"], neo4j_settings)
    assert result.exit_code == 1 and "no complete circuit of 'beagle'" in result.output
    assert "Samoyed" in result.output  # the classes that have circuits

    result = invoke("mask", [*MODEL, "-c", "Samoyed", "--neurons", "_blocks.15"], neo4j_settings)
    assert result.exit_code == 2 and "LAYER:CHANNEL" in result.output  # a bad parameter, before any work

    result = invoke("mask", [*MODEL, "-c", "Samoyed"], neo4j_settings)
    assert result.exit_code == 2 and "either --group" in result.output

    result = invoke("debug", [str(graph["Samoyed"]), *MODEL, "-c", "golden retrievr"], neo4j_settings)
    assert result.exit_code != 0 and "unknown class" in result.output


def test_fidelity_writes_csv_png_and_a_study(graph: dict[str, Path], neo4j_driver: neo4j.Driver,
                                             neo4j_settings: ConnectionSettings, tmp_path: Path) -> None:
    result = invoke("fidelity", [*MODEL, "-c", "Samoyed,golden retriever", "--random-draws", "1", "--max-images", "2",
                                 "--out", str(tmp_path), "--json"], neo4j_settings)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    layers = load_circuit(graph["Samoyed"]).layers[1:]
    # 2 classes x (held-out, in-sample) x layers x 4 settings: the circuits' folders hold other images of
    # their classes, 2 of each measured (--max-images) beside 2 of the circuit's own.
    assert len(data["rows"]) == 2 * 2 * len(layers) * 4
    assert {(r["evidence"], r["images"]) for r in data["rows"]} == {("held-out", 2), ("in-sample", 2)}
    with open(data["csv"]) as handle:
        assert len(list(csv.DictReader(handle))) == len(data["rows"])
    assert Path(data["png"]).read_bytes()[:4] == b"\x89PNG"
    _, rows = run_query(neo4j_driver, "fidelity-summary", {"study": data["study_id"]}, neo4j_settings.database)
    assert len(rows) == 2 * len(layers) * 4
    assert all(r["classCount"] == 2 and sorted(r["classes"]) == ["Samoyed", "golden retriever"] and r["images"] == 4
               for r in rows)
    assert all(r["coreLow"] <= r["coreRelative"] <= r["coreHigh"] for r in rows if r["coreLow"] is not None)
    _, samoyed = run_query(neo4j_driver, "fidelity-summary", {"study": data["study_id"], "class": SAMOYED},
                           neo4j_settings.database)
    mine = [r for r in data["rows"] if r["class_name"] == "Samoyed"]
    for row in samoyed:
        match = next(r for r in mine if (r["evidence"], r["layer"], r["scope"], r["mode"])
                     == (row["evidence"], row["layer"], row["scope"], row["mode"]))
        assert row["coreRelative"] == pytest.approx(match["core_relative"])
        assert row["pValue"] == pytest.approx(match["p_value"])


def test_fidelity_with_mean_ablation_over_a_reference_folder(graph: dict[str, Path], neo4j_driver: neo4j.Driver,
                                                             neo4j_settings: ConnectionSettings, small_images: Path,
                                                             tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    for f in list_images(small_images)[:2]:
        os.symlink(f.path, reference / f.path.name)
    result = invoke("fidelity", [*MODEL, "-c", "Samoyed", "--random-draws", "1", "--max-images", "2",
                                 "--ablation", "mean", "--reference-images", str(reference), "--out", str(tmp_path),
                                 "--json"], neo4j_settings)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ablation"] == "mean" and data["ablation_reference"] == f"reference images ({reference})"
    assert {r["ablation"] for r in data["rows"]} == {"mean"}
    with open(data["csv"]) as handle:
        assert {line["ablation"] for line in csv.DictReader(handle)} == {"mean"}
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (s:FidelityStudy {id: $id})-[:HAS_RESULT]->(r:FidelityResult) "
        "RETURN s.ablation AS ablation, s.ablationReference AS reference, collect(DISTINCT r.ablation) AS rows",
        id=data["study_id"], database_=neo4j_settings.database)
    assert records[0]["ablation"] == "mean" and records[0]["rows"] == ["mean"]
    assert records[0]["reference"] == data["ablation_reference"]


def test_debug_one_image_and_a_folder(graph: dict[str, Path], neo4j_settings: ConnectionSettings,
                                      small_images: Path, tmp_path: Path) -> None:
    circuit = load_circuit(graph["Samoyed"])
    samoyeds = [f for f in list_images(small_images) if f.label == SAMOYED]
    png = tmp_path / "one.png"
    gid = first_group(graph["Samoyed"])
    result = invoke("debug", [str(samoyeds[0].path), *MODEL, "-c", "Samoyed", "--out", str(png),
                              "--group-threshold", f"{gid}=0.25"], neo4j_settings)
    assert result.exit_code == 0, result.output
    assert "predicted 'Samoyed'" in result.stdout
    assert all(g.id in result.stdout for g in circuit.neuron_groups)
    assert png.read_bytes()[:4] == b"\x89PNG"
    # The table's threshold column: the group's own, the default for the others.
    thresholds = {line.split()[0]: line.split()[3] for line in result.stdout.splitlines()
                  if line.split() and line.split()[0] in {g.id for g in circuit.neuron_groups}}
    assert thresholds[gid] == "0.25" and {v for k, v in thresholds.items() if k != gid} == {"0.8"}
    result = invoke("debug", [str(samoyeds[0].path), *MODEL, "-c", "Samoyed", "--group-threshold", "g0"],
                    neo4j_settings)
    assert result.exit_code == 2 and "GROUP=VALUE" in result.output
    # From a circuit folder, no graph at all: nothing listens on port 1.
    alone = CliRunner().invoke(main, ["debug", str(samoyeds[0].path), *MODEL, "-c", "Samoyed", "--circuit-dir",
                                      str(graph["Samoyed"]), "--out", str(tmp_path / "alone.png"),
                                      "--uri", "bolt://127.0.0.1:1"])
    assert alone.exit_code == 0, alone.output
    assert "predicted 'Samoyed'" in alone.stdout and circuit.id in alone.stdout

    folder = tmp_path / "images"
    (folder / BEAGLE).mkdir(parents=True)
    os.symlink(samoyeds[1].path, folder / BEAGLE / samoyeds[1].path.name)  # a Samoyed labelled beagle
    result = invoke("debug", [str(folder), *MODEL, "-c", "Samoyed", "--out", str(tmp_path / "fp"), "--json",
                              "--random-draws", "1"], neo4j_settings)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["false_positives"]) == 1
    fp = report["false_positives"][0]
    assert fp["debug"]["label"] == BEAGLE and fp["masked_groups"]
    assert fp["prob_after"] < fp["prob_before"]
    assert Path(report["pictures"][0]).is_file()


def test_the_newest_complete_circuit_is_chosen_and_groups_resolve(fresh_graph: neo4j.Driver,
                                                                   neo4j_settings: ConnectionSettings) -> None:
    db = neo4j_settings.database
    layers = ["_fc", "_blocks.15", "_blocks.14"]
    old = synthetic_circuit(207, tau=3, k=6, layers=layers, images=4)
    new = synthetic_circuit(207, tau=4, k=6, layers=layers, images=4)
    # Built in the other order: the rule is the ingestion time, not the circuits' own createdAt.
    old.created, new.created = "2026-02-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"
    assert old.id != new.id
    try:
        for circuit in (old, new):
            write_circuit(fresh_graph, circuit, database=db)
        key = f"{new.model.name}@{new.model.weights_id}"
        assert find_circuit(fresh_graph, key, 207, database=db).id == new.id
        assert find_circuit(fresh_graph, key, 207, old.id, database=db).id == old.id
        samoyed = resolve_class("Samoyed", imagenet_categories())
        with pytest.raises(CircuitNotFoundError, match="not of 'Samoyed'"):
            find_circuit(fresh_graph, key, samoyed.index, old.id, database=db, class_name=samoyed.name)

        groups = circuit_groups(fresh_graph, new.id, db)
        assert [g.group_id for g in groups] == [g.id for layer in layers for g in sorted(
            new.groups_of_layer(layer), key=lambda g: g.id)]
        for ref in groups:
            group = next(g for g in new.neuron_groups if g.id == ref.group_id)
            assert ref.channels == sorted(int(n.rpartition(":")[2]) for n in group.neurons)
        chosen = resolve_groups(groups, [groups[1].group_id, groups[1].key, groups[2].group_id])
        assert chosen == [groups[1], groups[2]]
        with pytest.raises(ExperimentError, match="unknown group") as error:
            resolve_groups(groups, ["_blocks.15/g"])
        assert groups[1].group_id in str(error.value)
        assert core_neurons(fresh_graph, new.id, db) == {
            layer: sorted(n.channel for n in new.neurons[layer]) for layer in layers}

        # An incomplete circuit (an ingestion still running or dead) is never chosen.
        fresh_graph.execute_query("MATCH (c:Circuit {id: $id}) SET c.complete = false", id=new.id, database_=db)
        assert find_circuit(fresh_graph, key, 207, database=db).id == old.id
        with pytest.raises(CircuitNotFoundError, match="incomplete"):
            find_circuit(fresh_graph, key, 207, new.id, database=db)
    finally:
        for circuit in (new, old):
            delete_circuit(fresh_graph, circuit.id, db)

