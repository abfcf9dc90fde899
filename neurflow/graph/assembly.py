"""Assembling the local Neo4j server without Docker: Java and Maven, and the jars from Maven Central.

``mvn dependency:copy-dependencies`` copies Neo4j and Neo4j Browser into a cache folder once
(``neurflow.graph.server_config.neo4j_home``); the packaged ``pom.xml`` and ``neo4j.conf`` templates live in
``neurflow/resources/neo4j/``.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from neurflow.graph.server_config import BROWSER_VERSION, NEO4J_VERSION, Neo4jServerError, neo4j_home

MIN_JAVA = 17

INSTALL_HINT = (
    "Install them with `apt-get install openjdk-17-jre-headless maven`, "
    "or run Neo4j with Docker instead: `docker compose up neo4j`."
)


def resource_template(name: str) -> str:
    """The text of a packaged template, ``neurflow/resources/neo4j/<name>``."""
    return resources.files("neurflow").joinpath("resources", "neo4j", name).read_text()


def fill(template: str, values: dict[str, str]) -> str:
    """``@KEY@`` placeholders of a template replaced by ``values``."""
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


def find_java() -> str:
    """Path of a Java >= 17 executable (``$JAVA_HOME/bin/java`` first); raises with an install hint."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if not java:
        raise Neo4jServerError(f"Java {MIN_JAVA}+ is needed to run the local Neo4j server. {INSTALL_HINT}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise Neo4jServerError(
            f"Neo4j {NEO4J_VERSION} needs Java {MIN_JAVA}+, but {java} is Java {major or '?'}. {INSTALL_HINT}"
        )
    return java


def find_maven() -> str:
    """Path of ``mvn``; raises with an install hint."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise Neo4jServerError(
            f"Maven is needed once, to download Neo4j {NEO4J_VERSION} from Maven Central. {INSTALL_HINT}"
        )
    return mvn


def is_assembled(home: Path | None = None) -> bool:
    """True when the jars for ``NEO4J_VERSION`` are complete in ``home``."""
    home = home or neo4j_home()
    marker = home / ".assembled"
    return marker.is_file() and marker.read_text().strip() == NEO4J_VERSION


def assemble(home: Path | None = None, progress: Callable[[str], None] | None = None) -> Path:
    """Download Neo4j and Neo4j Browser jars into ``home/lib`` unless already there; return the lib folder.

    Runs ``mvn -B -q dependency:copy-dependencies`` on the packaged pom.xml. A lock file makes
    concurrent callers wait for one download; a marker file is written last, so an interrupted
    download is redone rather than used.
    """
    home = home or neo4j_home()
    lib = home / "lib"
    if is_assembled(home):
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_assembled(home):
            return lib
        mvn = find_maven()
        find_java()
        if progress:
            progress(
                f"Assembling Neo4j {NEO4J_VERSION} from Maven Central into {home} (first use, ~140 MB)..."
            )
        pom = home / "pom.xml"
        pom.write_text(
            fill(resource_template("pom.xml"), {"NEO4J_VERSION": NEO4J_VERSION, "BROWSER_VERSION": BROWSER_VERSION})
        )
        partial = home / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        cmd = [
            mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={partial}", "-DincludeScope=runtime",
        ]  # fmt: skip
        result = subprocess.run(cmd, cwd=home, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
            raise Neo4jServerError(
                f"Maven could not download Neo4j {NEO4J_VERSION} (exit {result.returncode}):\n{tail}"
            )
        shutil.rmtree(lib, ignore_errors=True)
        partial.rename(lib)
        (home / ".assembled").write_text(NEO4J_VERSION + "\n")
    return lib
