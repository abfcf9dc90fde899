"""Every command line of README's usage block and of every ``--help`` example, run as a user runs it (in order,
in a fresh working folder, against the test Neo4j, with the pretrained EfficientNet-Lite0): each exits 0 with
no traceback. Docs cannot drift from what the commands do.

What a line is run with, and why (nothing else is changed):
- the working folder holds ``../shared/data/imagewoof-val`` (the README's path), here a link to the 30 test
  images of tests/data/imagewoof (3 breeds), ``photo.jpg`` (one of them) and what earlier lines made
  (``circuits/``); globs are expanded there as a shell would;
- ``DIR`` (a folder of yours) is that image folder; ``neurflow mask ...`` is the README's mask line above it
  with the options after ``...``; ``neurflow db start | status | password | stop`` is four commands, of which
  ``stop`` is not run (it would stop the server every other test uses; tests/graph/test_server.py stops its
  own);
- ``OPENAI_API_KEY=...`` and ``--base-url`` point at the local fake endpoint of tests/labelling/fake_openai.py,
  ``--open`` at a browser command that opens nothing (``BROWSER=true``); ``neurflow browser serve`` runs until
  its stylesheet has been fetched from it, ``neurflow serve`` until its atlas page lists a class;
- CAPS (below) are appended to the commands that run the model: smaller settings, so that the whole file
  takes minutes, not hours (click keeps an option's last value).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurflow.cli.main import main
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.deletion import clear_graph
from tests.circuit_fixtures import SMALL_IMAGES
from tests.cli.test_examples import help_lines, readme_lines
from tests.labelling.fake_openai import FakeOpenAI

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

REPO = Path(__file__).parents[2]
IMAGES = "../shared/data/imagewoof-val"
BUILD_CAPS = ["--layers", "_fc,_blocks.15,_blocks.14", "--tau", "6", "--k", "12", "--steps", "8", "--max-images",
              "4", "--max-neuron-groups", "4", "--device", "cpu", "--no-progress"]  # 4 images: 236 patches >= k 190
RUN_CAPS = ["--device", "cpu", "--no-progress"]
CAPS: dict[str, list[str]] = {
    "build": BUILD_CAPS,
    "neurflow-ingest": BUILD_CAPS,
    "mask": [*RUN_CAPS, "--random-draws", "2", "--patch-images", "0"],
    "fidelity": [*RUN_CAPS, "--random-draws", "2", "--max-images", "2"],
    "debug": [*RUN_CAPS, "--random-draws", "1"],
    "search-image": ["--device", "cpu"],
    "validate correlation": [*RUN_CAPS, "--targets", "1", "--sets-per-size", "2"],
    "validate optimality": [*RUN_CAPS, "--targets", "1", "--random-sets", "4"],
    "validate k-sensitivity": [*RUN_CAPS, "--targets", "1"],
    "validate crops": [*RUN_CAPS, "--targets", "1"],
}
NOT_RUN = {"neurflow db stop": "it would stop the server the other tests use (tests/graph/test_server.py stops its own)"}


def example_lines() -> list[str]:
    """README's lines then the help examples, each once, placeholders expanded."""
    lines: list[str] = []
    last_mask = ""
    for line in [*readme_lines(), *help_lines()]:
        if " | " in line:  # neurflow db start | status | password | stop
            head, *rest = line.split(" | ")
            stem = head.rsplit(" ", 1)[0]
            lines += [head, *(f"{stem} {word}" for word in rest)]
            continue
        if line.startswith("neurflow mask ") and "..." not in line and not last_mask:
            last_mask = line
        if line.startswith("neurflow mask ..."):
            line = last_mask + line.removeprefix("neurflow mask ...")
        lines.append(re.sub(r"(?<=\s)DIR(?=\s|$)", IMAGES, line))
    return list(dict.fromkeys(lines))


@dataclass
class Ran:
    code: int
    output: str


def command_key(words: list[str]) -> str:
    """``build``, ``validate crops``, ``neurflow-ingest`` ...: what CAPS is keyed by."""
    if words[0] == "neurflow-ingest":
        return "neurflow-ingest"
    return " ".join(words[1:3]) if words[1] == "validate" else words[1]


def expand(words: list[str], cwd: Path) -> list[str]:
    """Globs as a shell expands them (a pattern that matches nothing stays as it is)."""
    out = []
    for word in words:
        matches = sorted(glob.glob(word, root_dir=cwd)) if any(c in word for c in "*?[") else []
        out += matches or [word]
    return out


def run_line(line: str, cwd: Path, env: dict[str, str], fake_url: str) -> Ran:
    words = shlex.split(line)
    variables = {}
    while "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        variables[name] = value
    if "OPENAI_API_KEY" in variables:
        variables["OPENAI_BASE_URL"] = fake_url  # the key "..." goes to the fake endpoint
    if "--base-url" in words:
        words[words.index("--base-url") + 1] = fake_url
    words = expand(words, cwd)
    has_from = "--from" in words
    caps = [] if has_from else CAPS.get(command_key(words), [])
    args = [*words[1:], *caps]
    environment = {**env, **variables}
    if words[0] == "neurflow-ingest" or words[1:3] == ["browser", "serve"] or words[1:2] == ["serve"]:
        module = "neurflow.ingest.cli" if words[0] == "neurflow-ingest" else "neurflow.cli"
        serves = "atlas" if words[1:2] == ["serve"] else "browser" if words[0] != "neurflow-ingest" else None
        return run_process([sys.executable, "-m", module, *args], cwd, environment, serves)
    with contextlib.chdir(cwd):
        result = CliRunner(env=environment).invoke(main, args)
    return Ran(result.exit_code, result.output + (repr(result.exception) if result.exit_code else ""))


def run_process(args: list[str], cwd: Path, env: dict[str, str], serves: str | None) -> Ran:
    """A command in its own process; ``serves``: a server (``atlas``, ``browser``) run until a page came from it."""
    environment = {**os.environ, **env, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled"}
    if serves is None:
        done = subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=900)
        return Ran(done.returncode, done.stdout + done.stderr)
    process = subprocess.Popen(args, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        assert process.stdout is not None
        heard = [process.stdout.readline() for _ in range(1 if serves == "atlas" else 3)]
        pattern, expected = ((r"http://\S+?/(?=\s)", "class-link") if serves == "atlas"
                             else (r"http://\S+?/neurflow\.grass", "node.NeuronGroup"))
        url = re.search(pattern, "".join(heard))
        assert url, heard
        with urllib.request.urlopen(url.group(0), timeout=30) as reply:
            body = reply.read().decode()
        return Ran(0 if expected in body else 1, "".join(heard) + body[:200])
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, neo4j_settings: ConnectionSettings) -> Iterator[dict[str, Ran]]:
    """Every example line run in order in one working folder (each after the lines it needs)."""
    import neo4j

    root = tmp_path_factory.mktemp("examples")
    work = root / "work"
    work.mkdir()
    (root / "shared" / "data").mkdir(parents=True)
    (root / "shared" / "data" / "imagewoof-val").symlink_to(SMALL_IMAGES.resolve())
    (work / "photo.jpg").write_bytes(next(iter(sorted((SMALL_IMAGES / "n02111889").iterdir()))).read_bytes())
    with neo4j.GraphDatabase.driver(neo4j_settings.uri, auth=(neo4j_settings.user, neo4j_settings.password or "")) \
            as driver:
        clear_graph(driver, neo4j_settings.database)
    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
           "NEO4J_PASSWORD": neo4j_settings.password or "", "NEO4J_DATABASE": neo4j_settings.database,
           "BROWSER": "true", "COLUMNS": "120"}
    results = {}
    with FakeOpenAI() as fake, (root / "outputs.txt").open("w") as log:  # what each line printed, for a reader
        for line in example_lines():
            if line not in NOT_RUN:
                results[line] = run_line(line, work, env, fake.base_url)
                log.write(f"$ {line}\n[exit {results[line].code}]\n{results[line].output}\n")
                log.flush()
    yield results


@pytest.mark.parametrize("line", example_lines())
def test_the_example_runs(line: str, ran: dict[str, Ran]) -> None:
    if line in NOT_RUN:
        assert "neurflow db stop" == line  # the one line not run, for the reason NOT_RUN gives
        return
    result = ran[line]
    assert "Traceback" not in result.output, result.output
    assert result.code == 0, f"{line}\n{result.output}"
    assert result.output.strip(), line


def test_every_example_line_is_run_once_with_placeholders_expanded() -> None:
    lines = example_lines()
    assert len(lines) == len(set(lines)) >= 40
    assert not [line for line in lines if "..." in line.split("neurflow", 1)[1] or " | " in line]
    assert f"neurflow-ingest --model efficientnet-lite0 --classes all --images {IMAGES} --workers 2" in lines
    assert {"neurflow db start", "neurflow db status", "neurflow db password", "neurflow db stop"} <= set(lines)
    mask = [line for line in lines if line.startswith("neurflow mask ") and "--reference-images" in line]
    assert mask and mask[0].startswith("neurflow mask -m efficientnet-lite0 -c Samoyed -g _blocks.14/g1 --images")
