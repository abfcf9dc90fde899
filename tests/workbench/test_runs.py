"""Experiments and studies from Python on a real circuit (neurflow.workbench): the same results as the command
line's, a table, a picture and a record in the graph; and what a handle shows of its circuit."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import neo4j
import pytest
import torch
from click.testing import CliRunner
from matplotlib.figure import Figure

from neurflow.cli.main import main
from neurflow.engine.models import load_model
from neurflow.errors import CircuitLookupError
from neurflow.format import load_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.ingestion import write_circuit
from neurflow.workbench import GraphClient, open_circuit, queries
from neurflow.workbench.runs import (
    FidelitySettings,
    MaskSettings,
    StudySettings,
    run_fidelity,
    run_mask,
    run_study,
)

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


def connection(settings: ConnectionSettings) -> list[str]:
    args = ["--uri", settings.uri, "--user", settings.user, "--database", settings.database]
    return args + (["--password", settings.password] if settings.password else [])


@pytest.fixture
def graph(clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings, real_circuit_dirs: list[Path]) -> GraphClient:
    for folder in real_circuit_dirs:
        write_circuit(clean_graph, load_circuit(folder), folder, database=neo4j_settings.database)
    return GraphClient(neo4j_settings, clean_graph)


def test_a_handle_shows_its_circuit(graph: GraphClient, real_circuit_dirs: list[Path], tmp_path: Path) -> None:
    samoyed = open_circuit(graph, cls="n02111889", model="efficientnet-lite0", progress=False)
    assert samoyed.folder == real_circuit_dirs[0] and samoyed.entry is not None
    assert samoyed.circuit.id == load_circuit(real_circuit_dirs[0]).id and samoyed.target.index == 258
    groups = samoyed.groups()
    assert list(groups["group"])[0] == "_fc/g0" and groups["influence"].iloc[0] == pytest.approx(1.0)
    for layer, shares in groups.groupby("layer")["influence"]:
        assert shares.sum() == pytest.approx(1.0, abs=1e-6), layer  # every layer carries the logit's attribution
    assert set(samoyed.vectors) >= {"sg/_fc", "act/_blocks.15"}
    assert samoyed.model.weights_id == samoyed.circuit.model.weights_id
    other = tmp_path / "other.pth"
    torch.save(load_model("efficientnet-lite0", random_weights=True, device="cpu").module.state_dict(), other)
    with pytest.raises(CircuitLookupError, match=r"was built with efficientnet-lite0 weights sha256:.*, but the "
                                                 r"loaded weights are sha256:.*: pass --weights FILE"):
        open_circuit(graph, cls="Samoyed", weights=other, device="cpu").model  # noqa: B018


def test_a_study_from_python_is_the_command_lines(graph: GraphClient, tmp_path: Path) -> None:
    samoyed = open_circuit(graph, cls="Samoyed", model="efficientnet-lite0", device="cpu", progress=False)
    run = run_study(samoyed, StudySettings("k-sensitivity", layers=["_fc"], targets=1, ks=[6, 12], reference_k=12))
    table = run.table()
    assert list(table.columns) == run.result.columns and len(table) == 2
    assert isinstance(run.plot(), Figure) and run.plot().axes

    result = CliRunner().invoke(main, ["validate", "k-sensitivity", "-c", "Samoyed", "-m", "efficientnet-lite0",
                                       "--layers", "_fc", "--targets", "1", "--ks", "6,12", "--reference-k", "12",
                                       "--device", "cpu", "--no-progress", "--no-record", "--out", str(tmp_path),
                                       *connection(graph.settings)])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "k-sensitivity.csv") as file:
        from_cli = list(csv.DictReader(file))
    assert [{k: str(v) for k, v in row.items()} for row in table.to_dict("records")] == from_cli

    study_id = run.record()
    rows = queries.validation_summary(graph, class_="Samoyed")
    assert study_id in set(rows["id"])


def test_masking_from_python_is_the_command_lines(graph: GraphClient) -> None:
    samoyed = open_circuit(graph, cls="Samoyed", model="efficientnet-lite0", device="cpu", progress=False)
    group = samoyed.groups()["group"].iloc[1]  # the most influential group below the logit
    settings = MaskSettings(groups=[group], random_draws=2, patch_images=0)
    masked = run_mask(samoyed, settings)
    assert [g.group_id for g in masked.groups] == [group]
    table = masked.table()
    assert len(table) == masked.result.effect.images == len(samoyed.circuit.images)
    assert (table["drop"] == table["logitBefore"] - table["logitAfter"]).all()
    assert isinstance(masked.plot(), Figure)

    result = CliRunner().invoke(main, ["mask", "-m", "efficientnet-lite0", "-c", "Samoyed", "-g", group,
                                       "--random-draws", "2", "--patch-images", "0", "--device", "cpu",
                                       "--no-progress", "--json", "--no-record", *connection(graph.settings)])
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.stdout)
    from_python = json.loads(masked.to_json())
    assert from_python["channels"] == from_cli["channels"] and from_python["groups"] == from_cli["groups"]
    for key, value in from_cli["effect"].items():
        if isinstance(value, float):
            assert math.isclose(from_python["effect"][key], value, rel_tol=1e-5, abs_tol=1e-6), key
        else:
            assert from_python["effect"][key] == value, key

    experiment_id = masked.record()
    rows = queries.masking_experiments(graph, class_="Samoyed", raw=True)
    assert [r["experiment"] for r in rows] == [experiment_id]


def test_fidelity_from_python_has_a_table_a_plot_and_a_record(graph: GraphClient) -> None:
    loaded = open_circuit(graph, cls="Samoyed", model="efficientnet-lite0", device="cpu", progress=False).model
    run = run_fidelity(graph, loaded, ["Samoyed", "golden retriever"], FidelitySettings(random_draws=1),
                       progress=False)
    table = run.table()
    below = {"_blocks.15", "_blocks.14"}
    assert set(table["layer"]) == below and set(table["class_name"]) == {"Samoyed", "golden retriever"}
    assert {(s, m) for s, m in zip(table["scope"], table["mode"], strict=True)} == {
        (scope, mode) for scope in ("single", "cumulative") for mode in ("mask", "retain")}
    assert len(run.plot().axes) == 4
    study_id = run.record(graph)
    assert study_id in set(queries.fidelity_summary(graph)["study"])
