"""Circuit files and folders that `neurflow-ingest` cannot use: a hand-edited or truncated circuit.json, an
unwritable --out. Each is one line that names the file and the problem, with a non-zero exit and nothing
written; an unwritable --out is no longer reported as a lost Neo4j connection. And `--no-progress`, as in
`neurflow build`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import neo4j
import pytest
from click.testing import CliRunner, Result

from neurflow.cli.errors import one_line
from neurflow.format import FormatError, load_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.reads import graph_counts
from neurflow.ingest.cli import main as ingest_main
from neurflow.synthetic import save_synthetic
from tests.circuit_fixtures import SMALL_IMAGES
from tests.helpers import small_synthetic

NOBODY = 65534


def _group_in_unknown_layer(data: dict[str, Any]) -> None:
    data["neuron_groups"][-1]["layer"] = "_blocks.99"


def _float_box(data: dict[str, Any]) -> None:
    data["patches"][3]["box"] = [0, 0, 112.5, 112]


def _text_box(data: dict[str, Any]) -> None:
    data["patches"][3]["box"] = "0,0,112,112"


def _no_layers(data: dict[str, Any]) -> None:
    data["layers"] = []


def _neurons_of_unknown_layer(data: dict[str, Any]) -> None:
    data["neurons"]["layer9"] = data["neurons"].pop(data["layers"][-1])


def _patch_of_missing_image(data: dict[str, Any]) -> None:
    data["patches"][0]["image"] = len(data["images"])


#: A hand edit, and what the error line says of it.
EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "group in a layer not in layers": (_group_in_unknown_layer,
                                       "is in layer '_blocks.99', which is not in 'layers' (_fc, _blocks.15, "),
    "box with a float": (_float_box, "patch 3 has box [0, 0, 112.5, 112], not four integers"),
    "box as text": (_text_box, "patch 3 has box '0,0,112,112', not four integers"),
    "empty layers": (_no_layers, "'layers' is empty"),
    "neurons of a layer not in layers": (_neurons_of_unknown_layer, "is in layer 'layer9', which is not in 'layers'"),
    "patch of a missing image": (_patch_of_missing_image, "patch 0 is of image 8, not one of the 8 images"),
}


def edited_folder(root: Path, edit: Callable[[dict[str, Any]], None] | None) -> Path:
    """A small synthetic circuit folder under ``root``, its circuit.json edited by ``edit`` (None: truncated)."""
    folder = save_synthetic(small_synthetic(207), root / "0207-golden-retriever")
    path = folder / "circuit.json"
    if edit is None:
        path.write_text(path.read_text()[:-500])
    else:
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("case", [*EDITS, "truncated"])
def test_load_circuit_names_the_file_and_the_problem(case: str, tmp_path: Path) -> None:
    edit, expected = EDITS.get(case, (None, "is not valid JSON, truncated or damaged"))
    folder = edited_folder(tmp_path, edit)
    with pytest.raises(FormatError) as caught:
        load_circuit(folder)
    message = str(caught.value)
    assert str(folder / "circuit.json") in message and expected in message and "\n" not in message


def test_an_untouched_circuit_still_loads(tmp_path: Path) -> None:
    circuit = small_synthetic(207)
    assert load_circuit(save_synthetic(circuit, tmp_path / "c")).id == circuit.id


@pytest.fixture
def env(neo4j_settings: ConnectionSettings) -> dict[str, str]:
    return {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
            "NEO4J_PASSWORD": neo4j_settings.password or "", "NEO4J_DATABASE": neo4j_settings.database}


def failed_line(result: Result, startswith: str = "Error: ") -> str:
    """The error line of a command that failed cleanly (exit 1, no traceback, no lost connection)."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and "lost the connection" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(startswith), result.stderr
    return lines[0]


@pytest.mark.parametrize("case", ["group in a layer not in layers", "box with a float", "empty layers", "truncated"])
def test_ingest_reports_a_bad_circuit_json_in_one_line_and_writes_nothing(
        case: str, clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings, env: dict[str, str],
        tmp_path: Path) -> None:
    edit, expected = EDITS.get(case, (None, "is not valid JSON, truncated or damaged"))
    folder = edited_folder(tmp_path / "circuits", edit)
    result = CliRunner().invoke(ingest_main, ["--from", str(tmp_path / "circuits")], env=env)
    failed_line(result)
    reported = [line for line in result.stdout.splitlines() if "cannot read the circuit" in line]
    assert len(reported) == 1 and str(folder / "circuit.json") in reported[0] and expected in reported[0]
    assert graph_counts(clean_graph, neo4j_settings.database)["Circuit"] == 0


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Runs the block as an ordinary user: root writes into read-only folders."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.mark.parametrize("case", ["read-only folder", "a file on the way"])
def test_an_unwritable_out_is_one_line_naming_it_not_a_lost_connection(case: str, tmp_path: Path,
                                                                       env: dict[str, str]) -> None:
    """Before: the PermissionError of the build was caught with the driver's errors and reported as "lost the
    connection to Neo4j". Now --out is checked first, before any connection or model."""
    if case == "read-only folder":
        parent = tmp_path / "read-only"
        parent.mkdir()
        parent.chmod(0o555)
        reason = "Permission denied"
    else:
        parent = tmp_path / "a-file"
        parent.write_text("not a folder")
        reason = "Not a directory"
    out = parent / "circuits"
    args = ["--model", "resnet18", "--random-weights", "--classes", "Samoyed", "--images", str(SMALL_IMAGES),
            "--out", str(out), "--no-progress"]
    with unprivileged() if case == "read-only folder" else contextlib.nullcontext():
        result = CliRunner().invoke(ingest_main, args, env=env)
    line = failed_line(result)
    assert line == f"Error: cannot write the circuits to --out {out}: {reason}; choose another folder with --out"
    assert not out.exists()


def test_a_file_error_anywhere_in_a_command_is_one_line_naming_the_file() -> None:
    """What `neurflow build` shows when its --out cannot be written (it has no early check)."""
    assert one_line(PermissionError(13, "Permission denied", "/data/circuits/0258-samoyed")) == (
        "cannot use /data/circuits/0258-samoyed: Permission denied")
    assert one_line(OSError(28, "No space left on device", "/data/circuits/x.npz")) == (
        "cannot use /data/circuits/x.npz: No space left on device")
    assert one_line(OSError("no file named")) is None  # not about a file: a bug, kept with its traceback


@pytest.mark.slow
def test_ingest_builds_without_progress_bars(clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings,
                                             env: dict[str, str], tmp_path: Path) -> None:
    """`--no-progress` as in `neurflow build`: the build prints its lines, but no progress bar."""
    args = ["--model", "resnet18", "--random-weights", "--layers", "fc,layer4.1", "--classes", "Samoyed",
            "--label-source", "folder", "--images", str(SMALL_IMAGES), "--tau", "2", "--k", "4", "--steps", "2",
            "--max-images", "1", "--max-neuron-groups", "2", "--device", "cpu", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(ingest_main, [*args, "--no-progress"], env=env)
    assert result.exit_code == 0, result.output
    assert "Samoyed: written" in result.stdout
    assert result.stderr.strip() == "" and "it/s" not in result.output and "%|" not in result.output
    assert graph_counts(clean_graph, neo4j_settings.database)["Circuit"] == 1
