"""A real, non-editable install: what a user gets from `pip install .`, run away from the repository.

The package list in pyproject.toml is explicit (queries/ ships as `neurflow.queries`), so these tests check it
against the folders, then install neurflow into a fresh virtual environment and look at what it holds and
runs: the graph's Cypher files, the named queries, the prompts and the other resources, the `neurflow`
command with `query --list`, and (with a server) `query graph-stats`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from neurflow.graph.connection import ConnectionSettings

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest brings tomli there
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
# What the build reads (and the Dockerfile copies); copied elsewhere so that the build leaves nothing behind.
BUILD_INPUTS = ("pyproject.toml", "README.md", "neurflow", "ingest", "queries")


def setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_folder(package: str, package_dir: dict[str, str]) -> Path:
    return ROOT / package_dir.get(package, package.replace(".", "/"))


def files_under(folder: Path, pattern: str = "**/*") -> set[str]:
    files = (p for p in folder.glob(pattern) if p.is_file() and "__pycache__" not in p.parts)
    return {str(p.relative_to(folder)) for p in files}


def test_every_package_folder_is_listed_and_every_listed_package_exists() -> None:
    config = setuptools_config()
    listed, package_dir = set(config["packages"]), config.get("package-dir", {})
    # ingest/ is installed as neurflow.ingest (neurflow/ingest links to it).
    found = {
        ".".join(("neurflow", *init.parent.relative_to(ROOT).parts) if root == "ingest"
                 else init.parent.relative_to(ROOT).parts)
        for root in ("neurflow", "ingest")
        for init in (ROOT / root).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set(), "package folders missing from [tool.setuptools] packages"
    for package in listed:
        assert (package_folder(package, package_dir) / "__init__.py").is_file(), package


def test_the_docker_image_copies_what_the_build_reads() -> None:
    copied = {
        source.rstrip("/").removeprefix("./")
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    }
    # The Dockerfile copies README* (README.md).
    missing = [name for name in BUILD_INPUTS if name not in copied and f"{name.split('.')[0]}*" not in copied]
    assert not missing, f"the Dockerfile does not copy {missing}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with neurflow installed from a copy of the sources (not editable); returns the venv."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    venv = base / "venv"
    # Reuse the test environment's packages (torch, neo4j, setuptools, ...): the system's through
    # --system-site-packages, the test venv's through a plain path entry, whose folder's .pth files (the
    # repository's editable neurflow) are not processed. The venv's own site-packages, which will hold the
    # installed neurflow, comes first.
    python = str(venv / "bin" / "python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                   check=True)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    reused = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(site) / "reuse-test-environment.pth").write_text("".join(f"{path}\n" for path in reused))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
         "--no-build-isolation", "--no-index", "--disable-pip-version-check", str(source)],
        check=True, cwd=base, env=clean_env(),
    )
    return venv


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points Python or neurflow elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "NEURFLOW_QUERIES") and not k.startswith("NEO4J_")}
    return {**env, **extra}


def run_installed(venv: Path, tool: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``venv/bin/<tool> args`` in ``cwd``, away from the repository."""
    return subprocess.run([str(venv / "bin" / tool), *args], cwd=cwd, env=clean_env(**env),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_install_holds_the_package_and_its_data(installed: Path, tmp_path: Path) -> None:
    code = ("import importlib.util, neurflow.ingest.cli, neurflow, neurflow.queries as q; "
            "print(neurflow.__file__); print(q.__file__); print(importlib.util.find_spec('ingest'))")
    result = run_installed(installed, "python", "-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    package_file, queries_file, top_level_ingest = result.stdout.splitlines()
    assert top_level_ingest == "None", "a top-level `ingest` module is installed"
    package, queries = Path(package_file).parent, Path(queries_file).parent
    assert package.is_relative_to(installed), f"{package}: the repository's neurflow shadows the install"
    assert queries == package / "queries"
    source = ROOT / "neurflow"
    assert files_under(package / "graph" / "cypher", "*/*.cypher") == files_under(source / "graph" / "cypher")
    assert files_under(queries, "*.cypher") == files_under(ROOT / "queries", "*.cypher")
    resources = files_under(package / "resources")
    assert resources == files_under(source / "resources")
    assert {"prompts/group-caption-v1.txt", "prompts/group-caption-v2.txt", "prompts/feature-evolution-v1.txt", "neo4j/pom.xml"} <= resources


@pytest.mark.slow
def test_the_installed_commands_run_away_from_the_repository(installed: Path, tmp_path: Path) -> None:
    listing = run_installed(installed, "neurflow", "query", "--list", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    for query in (ROOT / "queries").glob("*.cypher"):
        assert f"\n{query.stem}\n" in f"\n{listing.stdout}", query.stem
    ingest = run_installed(installed, "neurflow-ingest", "--help", cwd=tmp_path)
    assert ingest.returncode == 0 and "--from" in ingest.stdout, ingest.stderr


@pytest.mark.slow
def test_the_installed_command_queries_the_graph(installed: Path, tmp_path: Path,
                                                 neo4j_settings: ConnectionSettings) -> None:
    server = dict(NEO4J_URI=neo4j_settings.uri, NEO4J_USER=neo4j_settings.user,
                  NEO4J_PASSWORD=neo4j_settings.password or "", NEO4J_DATABASE=neo4j_settings.database)
    result = run_installed(installed, "neurflow", "query", "graph-stats", "--format", "json", cwd=tmp_path,
                           **server)
    assert result.returncode == 0, result.stderr
    assert '"kind": "circuits"' in result.stdout and '"name": "Circuit"' in result.stdout
