"""Bad input, table-driven: every command refuses each bad value with exit != 0, one line naming it and no
traceback, before any work (no model is loaded for the settings the library checks, no server is reached).

The checks themselves live in the library (BuildConfig, MaskSettings, FidelitySettings, bind_params,
resolve_connection, CircuitBuilder, load_views), so the API refuses the same values; tests/engine and
tests/graph test them one rule at a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from neurflow.cli.main import main
from tests.circuit_fixtures import SMALL_IMAGES

RESNET = ["-m", "resnet18", "--random-weights", "--device", "cpu", "-c", "Samoyed", "--images", str(SMALL_IMAGES)]
NOWHERE = ["--uri", "bolt://127.0.0.1:1"]  # nothing listens: a command that connected would fail otherwise

CASES: list[tuple[str, list[str], str]] = [
    ("layers in reverse order", ["build", *RESNET, "--layers", "layer4.0,layer4.1,fc"],
     "layer 'layer4.0' is not computed from 'layer4.1', listed after it: list them from the logit down, "
     "--layers fc,layer4.1,layer4.0"),
    ("a misspelt layer", ["build", *RESNET, "--layers", "fc,layer4.l"], "closest: layer4.1"),
    ("steps beyond memory", ["build", *RESNET, "--steps", "99999999999"], "GiB"),
    ("no images", ["build", *RESNET, "--max-images", "0"], "max_images must be at least 1"),
    ("a negative image count", ["build", *RESNET, "--max-images", "-1"], "max_images must be at least 1"),
    ("mask: no images", ["mask", "-m", "efficientnet-lite0", "-c", "Samoyed", "-g", "_blocks.15/g0",
                         "--max-images", "0", *NOWHERE], "max_images must be at least 1"),
    ("mask: negative draws", ["mask", "-m", "efficientnet-lite0", "-c", "Samoyed", "-g", "_blocks.15/g0",
                              "--random-draws", "-2", *NOWHERE], "random_draws must not be negative"),
    ("fidelity: no images", ["fidelity", "-m", "efficientnet-lite0", "-c", "Samoyed", "--max-images", "0",
                             *NOWHERE], "--max-images"),
    ("prune above 1", ["query", "class-specific", "-p", "class=Samoyed", "-p", "prune=2", *NOWHERE],
     "prune = 2.0 is outside its range"),
    ("prune below 0", ["query", "class-specific", "-p", "class=Samoyed", "-p", "prune=-1", *NOWHERE],
     "prune = -1.0 is outside its range"),
    ("no rows", ["query", "class-similarity", "-p", "class=Samoyed", "-p", "limit=0", *NOWHERE],
     "limit = 0 is outside its range"),
    ("a malformed neuron", ["query", "neuron-classes", "-p", "neuron=foo", *NOWHERE], "neuron must be LAYER:CHANNEL"),
    ("an http URI", ["query", "graph-stats", "--uri", "http://127.0.0.1:7474"], "the driver speaks Bolt"),
    ("a URI without scheme", ["query", "graph-stats", "--uri", "127.0.0.1:7687"], "the URI must start with"),
    ("an unknown model", ["classes", "--model", "resnet5"], "unknown model 'resnet5'; did you mean resnet50"),
    ("held-out cap of 0", ["validate", "optimality", "-c", "Samoyed", "--held-out-max", "0", *NOWHERE],
     "--held-out-max"),
    ("export: no such circuit", ["export", "/no/such/folder", *NOWHERE], "neither a circuit folder nor a circuit id"),
    ("a 1x1-pixel image", ["build", *RESNET[:-1], "{tiny}"], "under 32 pixels on a side"),
    ("a class with no images", ["build", *RESNET[:-3], "Shih-Tzu", "--label-source", "folder", "--images",
                                str(SMALL_IMAGES)], "Shih-Tzu"),
]


@pytest.mark.parametrize("what,args,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line_and_a_non_zero_exit(what: str, args: list[str], expected: str,
                                                     tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "out")] if args[0] in ("build", "fidelity") else []
    tiny = tmp_path / "tiny" / "n02111889"  # a folder whose only image is one pixel
    tiny.mkdir(parents=True)
    Image.new("RGB", (1, 1)).save(tiny / "dot.png")
    args = [str(tiny.parent) if a == "{tiny}" else a for a in args]
    result = CliRunner().invoke(main, [*args, *out])
    output = result.output
    assert result.exit_code != 0, f"{what}: exit 0\n{output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{what}: {result.exception!r}"
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, f"{what}: {output}"
    assert expected in " ".join(output.split()), f"{what}: {output}"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no work was done


def test_an_output_folder_under_a_file_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(main, ["build", *RESNET, "--out", str(tmp_path / "file" / "circuits")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "is a file, not a folder" in result.output
    assert (tmp_path / "file").read_text() == "not a folder"  # nothing lost


def test_classes_search_finds_an_index() -> None:
    result = CliRunner().invoke(main, ["classes", "--search", "207"])
    assert result.exit_code == 0 and result.output.split() == ["207", "n02099601", "golden", "retriever"]
