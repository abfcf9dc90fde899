"""The `neurflow` command line as a user meets it: help, listings, a build, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from neurflow.cli.main import LAZY_COMMANDS, main
from neurflow.format import load_circuit
from neurflow.graph.named_queries import list_queries, load_query, query_columns
from tests.circuit_fixtures import SMALL_IMAGES


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_models_lists_registry_and_layers() -> None:
    code, out = run("models")
    assert code == 0
    assert "resnet50" in out and "layer4.2" in out and "googlenet" in out and "efficientnet-lite0" in out


def test_classes_search() -> None:
    code, out = run("classes", "--search", "retriever")
    assert code == 0 and "207  n02099601   golden retriever" in out
    code, out = run("classes", "--search", "retreiver")
    assert code != 0 and "golden retriever" in out


def test_commands_imported_on_use_are_listed_with_their_own_first_help_line() -> None:
    code, out = run("--help")
    assert code == 0 and all(f"  {name} " in out for name in LAZY_COMMANDS)
    context = click.Context(main)
    for name, (_, first_line) in LAZY_COMMANDS.items():
        command = main.get_command(context, name)
        assert command is not None and (command.help or "").splitlines()[0] == first_line


# What a command imports, in a fresh interpreter: the top-level packages of sys.modules and neurflow's modules.
IMPORTS = """
import json, sys
from click.testing import CliRunner
from neurflow.cli.main import main
CliRunner().invoke(main, sys.argv[1:])
print(json.dumps(sorted({m if m.startswith("neurflow.") else m.split(".")[0] for m in sys.modules})))
"""


def imported_by(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", IMPORTS, *args], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["query", "--list"], ["models"], ["classes", "-s", "terrier"],
                                  ["db", "--help"], ["browser", "--help"], ["query", "graph-stats", "--help"]])
def test_commands_that_run_no_model_import_no_torch(args: list[str]) -> None:
    modules = imported_by(*args)
    heavy = {"torch", "torchvision", "neurflow.engine.models", "neurflow.experiments", "openai"}
    assert modules & heavy == set()


@pytest.mark.parametrize("args", [["--help"], ["models"], ["classes", "-s", "terrier"]])
def test_commands_that_need_no_graph_import_no_driver(args: list[str]) -> None:
    assert "neo4j" not in imported_by(*args)


@pytest.mark.slow  # builds a circuit with the pretrained model, through the command line
def test_build_writes_circuit_and_picture(tmp_path: Path) -> None:
    code, out = run(
        "build", "--model", "efficientnet-lite0", "--classes", "Samoyed", "--images", str(SMALL_IMAGES / "n02111889"),
        "--out", str(tmp_path), "--layers", "_fc,_blocks.15", "--tau", "4", "--k", "8", "--steps", "4",
        "--max-images", "2", "--no-progress", "--device", "cpu",
    )
    assert code == 0, out
    assert "Samoyed (258): 2 images, 118 patches" in out and "1 circuit(s)" in out
    [folder] = tmp_path.glob("0258-samoyed.efficientnet-lite0.*")
    assert (folder / "circuit.png").stat().st_size > 10_000
    circuit = load_circuit(folder)
    assert circuit.params["tau"] == 4 and circuit.params["steps"] == 4


def test_build_bad_inputs_give_one_clear_line(tmp_path: Path) -> None:
    # Random weights: the errors come before any use of the weights, so the fast tier can run this.
    common = ["--images", str(SMALL_IMAGES), "--out", str(tmp_path), "--no-progress", "--random-weights"]
    code, out = run("build", "--model", "efficientnet-lite0", "--classes", "samoyd", *common)
    assert code == 1 and "unknown class 'samoyd'. Closest: Samoyed" in out and "Traceback" not in out
    code, out = run("build", "--model", "efficientnet-lite0", "--classes", "Samoyed", "--layers", "_fc,block9", *common)
    assert code == 1 and "has no module 'block9'; closest: _blocks.9" in out and "neurflow models" in out
    code, out = run("build", "--model", "efficientnet-lite0", "--classes", "Samoyed", "--images", str(tmp_path),
                    "--out", str(tmp_path / "o"), "--random-weights")
    assert code == 1 and "no images in" in out
    code, out = run("build", "--model", "efficientnet-lite0", "--classes", "Samoyed", "--tau", "0", *common)
    assert code == 2 and "tau must be at least 1" in out


@pytest.mark.parametrize("name", [info.name for info in list_queries()])
def test_every_query_has_its_own_help_with_parameters_and_columns(name: str) -> None:
    info = load_query(name)
    result = CliRunner().invoke(main, ["query", name, "--help"])
    assert result.exit_code == 0 and result.output.startswith(f"Usage: neurflow query {name} ")
    text = " ".join(result.output.split())
    assert f"columns: {', '.join(query_columns(info))}" in text
    assert all(f"--param {p.name} " in text for p in info.params)
    listed = CliRunner().invoke(main, ["query", name, "--list"])  # --list with a NAME: that query alone
    assert listed.exit_code == 0 and listed.output.splitlines()[0] == name and "columns:" in listed.output


def test_draw_takes_a_folder_of_circuits_as_ingest_and_validate_do(tmp_path: Path) -> None:
    from neurflow.synthetic import save_synthetic, synthetic_circuit

    circuits = [synthetic_circuit(index) for index in (258, 207)]
    folders = [save_synthetic(c, tmp_path / "circuits" / c.id) for c in circuits]
    result = CliRunner().invoke(main, ["draw", str(tmp_path / "circuits")])
    assert result.exit_code == 0, result.output
    assert all((folder / "circuit.png").is_file() for folder in folders)
    result = CliRunner().invoke(main, ["draw", str(tmp_path / "circuits" / circuits[0].id)])  # one circuit folder
    assert result.exit_code == 0
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["draw", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "no circuit.json in" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args", [[], ["build"], ["validate"], ["validate", "optimality"], ["db", "start"],
                                  ["query"], ["query", "top-groups"]])
def test_every_help_links_the_glossary(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0 and "README.md#glossary" in " ".join(result.output.split())
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "\n## Glossary\n" in readme
