"""Neo4j Browser files: every runnable query of the guide runs (read-only) against a real graph of synthetic
circuits, the GraSS stylesheet names every label and relationship type neurflow writes and parses the way
Browser parses it, and `neurflow browser serve` serves both files with CORS headers."""

from __future__ import annotations

import html.parser
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import neo4j
import pytest

from neurflow.cli.query import BROWSER_DIR, GUIDE, STYLE
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.reads import LABELS, RELATIONSHIP_TYPES
from neurflow.synthetic import synthetic_circuit

CYPHER_DIR = Path(__file__).resolve().parents[2] / "neurflow" / "graph" / "cypher"
GUIDE_PATH = BROWSER_DIR / GUIDE
STYLE_PATH = BROWSER_DIR / STYLE

#: Guide queries that must return rows on the synthetic graph (the others may be empty: no experiments,
#: no LLM labels, no foreign patches in a circuit).
NON_EMPTY = (
    "schema", "overview", "circuits", "scaffold", "class-circuit", "group-inside", "shared-neurons",
    "reused-neurons", "strongest-paths", "foreign-groups", "top-groups", "top-groups-graph", "labels",
    "constraints", "indexes",
)
#: Weighted relationships: their caption must show this property.
WEIGHT_CAPTIONS = {
    "FLOWS_TO": "influenceLabel", "CONTRIBUTES_TO": "weight", "HAS_CORE_NEURON": "influenceLabel",
    "FAMILY_INFLUENCE": "influenceLabel", "OVERLAPS": "jaccard",
    "EXEMPLIFIES": "activation",
}


# --------------------------------------------------------------------------- the guide


class _GuideParser(html.parser.HTMLParser):
    """Collects (data-query name, text) of every ``<pre class="... runnable ...">`` (its textContent, which is
    what Browser copies into the editor) and the tags seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.runnables: list[tuple[str | None, str]] = []
        self.tags: list[str] = []
        self._current: tuple[str | None, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "pre" and "runnable" in (values.get("class") or "").split():
            self._current = (values.get("data-query"), [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self._current is not None:
            name, parts = self._current
            self.runnables.append((name, "".join(parts).strip()))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current[1].append(data)


def parse_guide(path: Path = GUIDE_PATH) -> _GuideParser:
    parser = _GuideParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def guide_queries() -> dict[str, str]:
    """The guide's Cypher queries by their data-query name (Browser commands such as `:style` left out)."""
    queries: dict[str, str] = {}
    for name, text in parse_guide().runnables:
        if text.startswith(":"):
            continue
        assert name, f"a runnable query has no data-query name: {text[:80]!r}"
        assert name not in queries, f"two queries are named {name!r}"
        queries[name] = text
    return queries


def test_guide_has_browser_guide_structure() -> None:
    parser = parse_guide()
    assert parser.tags[:2] == ["article", "carousel"]
    assert parser.tags.count("slide") >= 7
    queries = guide_queries()
    assert set(NON_EMPTY) <= set(queries)
    for name, text in queries.items():
        # Parameter-free: runnable with one click, no :param needed.
        assert "$" not in text, f"guide query {name!r} uses a parameter"
        assert not text.endswith(";"), name


def test_guide_browser_commands_point_at_the_served_files() -> None:
    commands = [text for _, text in parse_guide().runnables if text.startswith(":")]
    assert commands, "the guide should show how to apply the stylesheet"
    for command in commands:
        match = re.fullmatch(r":(style|play) http://localhost:8001/(\S+)", command)
        assert match, f"unexpected Browser command {command!r}"
        assert (BROWSER_DIR / match.group(2)).is_file(), command


@pytest.fixture
def synthetic_graph(clean_graph: neo4j.Driver, neo4j_settings, tmp_path: Path) -> neo4j.Driver:
    """Two synthetic circuits (Samoyed, golden retriever) with many foreign-labelled images."""
    for index in (258, 207):
        circuit = synthetic_circuit(index, layers=["_fc", "_blocks.15", "_blocks.14", "_blocks.13"], tau=5, k=10,
                                    images=12, max_neuron_groups=3, max_semantic_groups=3, foreign_fraction=0.7)
        result = write_circuit(clean_graph, circuit, tmp_path / str(index), database=neo4j_settings.database)
        assert result.status == "written"
    return clean_graph


def read_all(driver: neo4j.Driver, database: str, query: str) -> list[neo4j.Record]:
    def work(tx: neo4j.ManagedTransaction) -> list[neo4j.Record]:
        return list(tx.run(query))  # type: ignore[arg-type]  # text of the shipped guide

    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        return session.execute_read(work)


def test_every_guide_query_runs_read_only(synthetic_graph: neo4j.Driver, neo4j_settings) -> None:
    failures, rows = [], {}
    for name, query in guide_queries().items():
        try:
            rows[name] = read_all(synthetic_graph, neo4j_settings.database, query)
        except neo4j.exceptions.Neo4jError as error:
            failures.append(f"{name}: {error.code}: {error.message}")
    assert not failures, "guide queries failed:\n" + "\n".join(failures)
    empty = [name for name in NON_EMPTY if not rows[name]]
    assert not empty, f"guide queries returned no rows on the synthetic graph: {empty}"
    # Foreign-labelled images (70%) make foreign groups and bias paths.
    assert rows["bias-paths"] and rows["bias-evidence"]


def test_class_circuit_query_draws_the_group_circuit(synthetic_graph: neo4j.Driver, neo4j_settings) -> None:
    records = read_all(synthetic_graph, neo4j_settings.database, guide_queries()["class-circuit"])
    paths = [value for record in records for value in record.values() if isinstance(value, neo4j.graph.Path)]
    assert paths and len(paths) == len(records)
    labels = {label for path in paths for node in path.nodes for label in node.labels}
    types = {rel.type for path in paths for rel in path.relationships}
    assert {"Class", "Circuit", "Neuron", "NeuronGroup"} <= labels
    assert {"FOR_CLASS", "HAS_LOGIT", "HAS_MEMBER", "FLOWS_TO"} <= types
    classes = {node["name"] for path in paths for node in path.nodes if "Class" in node.labels}
    assert classes == {"Samoyed"}
    flows = [rel for path in paths for rel in path.relationships if rel.type == "FLOWS_TO"]
    assert all(rel["share"] >= 0.1 and rel["weight"] is not None for rel in flows)


# --------------------------------------------------------------------------- the stylesheet


def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """Browser's own GraSS parser (parseGrass in neo4j-browser), ported: quotes are dropped and protect braces,
    whitespace outside rules is dropped, and a property is kept only when it has exactly one ':'."""
    rules: dict[str, str] = {}
    in_string = in_rule = in_brace = False
    selector = body = ""
    for ch in text:
        special = True
        if ch == "{":
            if in_string:
                special = False
            elif in_rule:
                in_brace = True
            else:
                in_rule = True
        elif ch == "}":
            if in_string:
                special = False
            elif in_brace:
                in_brace = False
            else:
                in_rule = False
                rules[selector] = body
                selector = body = ""
        elif ch in "'\"":
            in_string = not in_string
        else:
            special = False
        if not special:
            if in_rule:
                body += ch
            elif not ch.isspace():
                selector += ch
    parsed: dict[str, dict[str, str]] = {}
    for sel, content in rules.items():
        props = {}
        for declaration in content.split(";"):
            parts = declaration.split(":")
            if len(parts) == 2:
                props[parts[0].strip()] = parts[1].strip()
        parsed[sel] = props
    return parsed


def written_names() -> tuple[set[str], set[str]]:
    """Labels and relationship types in neurflow's write Cypher (every file of neurflow/graph/cypher that
    creates or merges), and the lists of neurflow.graph.reads."""
    labels, types = set(LABELS), set(RELATIONSHIP_TYPES)
    for path in CYPHER_DIR.glob("*/*.cypher"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"\b(CREATE|MERGE)\b", text):
            labels.update(re.findall(r"\(\w*:(\w+)", text))
            types.update(re.findall(r"\[\w*:(\w+)", text))
    return labels, types


def test_grass_names_every_label_and_relationship_type() -> None:
    text = STYLE_PATH.read_text(encoding="utf-8")
    assert "/*" not in text and "//" not in text.replace("http://", ""), "Browser's GraSS parser has no comments"
    style = parse_grass(text)
    labels, types = written_names()
    assert {"MaskingExperiment", "FidelityStudy", "FidelityResult"} <= labels
    assert {"MASKED", "ON_CIRCUIT", "HAS_RESULT", "AT_LAYER"} <= types
    assert "node" in style and "relationship" in style
    missing = sorted(({f"node.{x}" for x in labels} | {f"relationship.{x}" for x in types}) - set(style))
    assert not missing, f"the stylesheet misses {missing}"
    for selector, props in style.items():
        assert re.fullmatch(r"(node|relationship)(\.\w+)?", selector), selector
        for key, value in props.items():
            if "color" in key:
                assert re.fullmatch(r"#[0-9A-Fa-f]{6}", value), (selector, key, value)
            if key in ("diameter", "shaft-width", "font-size", "border-width", "padding"):
                assert re.fullmatch(r"\d+px", value), (selector, key, value)
        if selector.startswith("node."):
            assert {"color", "diameter", "caption"} <= set(props), selector
            assert re.search(r"\{\w+\}", props["caption"]), f"{selector} should caption a property"
        if selector.startswith("relationship."):
            assert "caption" in props, selector
    for rel, prop in WEIGHT_CAPTIONS.items():
        assert style[f"relationship.{rel}"]["caption"] == f"{{{prop}}}", rel


def test_grass_captions_name_written_properties(synthetic_graph: neo4j.Driver, neo4j_settings) -> None:
    """Every property a caption interpolates exists on some node or relationship of that label or type."""
    style = parse_grass(STYLE_PATH.read_text(encoding="utf-8"))
    keys_of: dict[str, set[str]] = {}
    for record in read_all(synthetic_graph, neo4j_settings.database,
                           "MATCH (n) UNWIND labels(n) AS label UNWIND keys(n) AS key "
                           "RETURN DISTINCT 'node.' + label AS selector, key"):
        keys_of.setdefault(record["selector"], set()).add(record["key"])
    for record in read_all(synthetic_graph, neo4j_settings.database,
                           "MATCH ()-[r]->() UNWIND keys(r) AS key "
                           "RETURN DISTINCT 'relationship.' + type(r) AS selector, key"):
        keys_of.setdefault(record["selector"], set()).add(record["key"])
    checked = 0
    for selector, keys in keys_of.items():
        for prop in re.findall(r"\{(\w+)\}", style[selector]["caption"]):
            assert prop in keys, f"{selector} captions {prop!r}, which it does not have ({sorted(keys)})"
            checked += 1
    assert checked >= 10


# --------------------------------------------------------------------------- packaging and serving


def test_browser_files_are_package_data() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["neurflow"]
    package = BROWSER_DIR.parents[1]
    shipped = {p for pattern in globs for p in package.glob(pattern) if p.is_file()}
    assert {STYLE_PATH, GUIDE_PATH} <= shipped


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served_port() -> Iterator[int]:
    """`neurflow browser serve` on a free port, stopped after the module's tests."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "neurflow.cli.main", "browser", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120  # the CLI imports torch: slow on a busy machine
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert server.poll() is None, f"neurflow browser serve exited: {server.stderr.read()!r}"  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "neurflow browser serve did not listen within 120 s"
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()


def test_browser_serve_serves_both_files_with_cors(served_port: int) -> None:
    for name in (STYLE, GUIDE):
        with urllib.request.urlopen(f"http://localhost:{served_port}/{name}", timeout=10) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert response.read() == (BROWSER_DIR / name).read_bytes()


def test_browser_serve_answers_cors_preflight(served_port: int) -> None:
    """What Chromium sends before Browser's cross-origin fetch of `:style URL` / `:play URL`."""
    request = urllib.request.Request(
        f"http://localhost:{served_port}/{STYLE}", method="OPTIONS",
        headers={"Origin": "http://127.0.0.1:7474", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "cache-control,pragma,sentry-trace"},
    )
    try:
        response = urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        pytest.fail(f"preflight answered {error.code}")
    with response:
        assert 200 <= response.status < 300
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        allowed = (response.headers["Access-Control-Allow-Headers"] or "").lower()
        assert allowed == "*" or {"cache-control", "pragma", "sentry-trace"} <= {h.strip() for h in allowed.split(",")}
