"""`neurflow export` end to end: circuit-tracer's own code reads the circuit-tracer export (its pydantic graph
schema, its local server and its viewer page in Debian's headless Chromium), and neurflow's JSON document goes
back through `neurflow-ingest --from` to the same graph.

The viewer's page loads its libraries from CDNs this machine cannot reach; scripts/circuit-tracer-viewer.sh
fetches the same libraries from npm (their d3-jetpack helper build is unpublished: npm's d3-jetpack with
d3-collection stands in, plus `conventions().drawAxis`, which only their build has). docs/export.md says what
that leaves unchecked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import neo4j
import pytest
from click.testing import CliRunner

from neurflow.cli.main import main
from neurflow.format import load_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.deletion import clear_graph
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.labels import write_caption

REPO = Path(__file__).parents[2]
VIEWER = Path(os.environ.get("NEURFLOW_CIRCUIT_TRACER_VIEWER", REPO / ".neurflow" / "circuit-tracer-viewer"))
CDN_LIBS = {"d3.js": "d3-7.9.0.js", "dagre.min.js": "dagre-0.8.5.js", "pako.min.js": "pako-2.1.0.js"}
DRAW_AXIS = ("(function(){var c0 = d3.conventions; d3.conventions = function(o){var c = c0(o); c.drawAxis ="
             " function(svg){ d3.drawAxis(Object.assign({}, c, svg ? {svg: svg} : {})); return c; }; return c;};})();")
VOLATILE = {"folder", "thumbnailUri", "ingestedAt", "ingestStartedAt", "heartbeatAt", "replacingAt", "refreshedAt",
            "writeId", "writer",
            "lastCompletionAt", "createdAt"}  # where a folder lies, when and by which process it was written


def viewer() -> Path:
    if not (VIEWER / "ready").is_file():
        subprocess.run(["bash", str(REPO / "scripts" / "circuit-tracer-viewer.sh"), str(VIEWER)], check=True)
    if str(VIEWER) not in sys.path:
        sys.path.insert(0, str(VIEWER))
    return VIEWER


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
@pytest.mark.slow
def test_circuit_tracers_schema_server_and_viewer_read_the_export(real_circuit_dirs: list[Path],
                                                                   tmp_path: Path) -> None:
    root = viewer()
    from circuit_tracer.frontend.graph_models import Model  # circuit-tracer's own schema of the viewer's JSON
    from circuit_tracer.frontend.local_server import serve
    from playwright.sync_api import sync_playwright

    data = tmp_path / "data"
    for folder in real_circuit_dirs:
        result = CliRunner().invoke(main, ["export", str(folder), "--format", "circuit-tracer", "--no-graph",
                                           "--out", str(data)])
        assert result.exit_code == 0, result.output
    listed = json.loads((data / "graph-metadata.json").read_text())["graphs"]
    assert len(listed) == 2
    for entry in listed:
        Model.model_validate(json.loads((data / f"{entry['slug']}.json").read_text()))
    port = free_port()
    server = serve(data_dir=str(data), port=port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=os.environ.get("NEURFLOW_CHROMIUM", "/usr/bin/chromium"),
                                                 args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))

            def from_npm(route) -> None:  # noqa: ANN001 - Playwright's Route
                name = route.request.url.rsplit("/", 1)[-1]
                if name.startswith("jetpack"):
                    body = "\n".join([(root / "lib" / "d3-collection-1.0.7.js").read_text(),
                                      (root / "lib" / "d3-jetpack-2.2.0.js").read_text(), DRAW_AXIS])
                    route.fulfill(body=body, content_type="application/javascript")
                elif name in CDN_LIBS:
                    route.fulfill(path=str(root / "lib" / CDN_LIBS[name]), content_type="application/javascript")
                else:  # their dev-reload and .npy helpers: the graph page does not use them
                    route.fulfill(body="", content_type="application/javascript")

            page.route("https://transformer-circuits.pub/**", from_npm)
            page.route("https://unpkg.com/**", from_npm)
            for entry in listed:
                page.goto(f"http://localhost:{port}/index.html?slug={entry['slug']}")
                page.wait_for_selector(".cg svg", timeout=30_000)  # the viewer's graph panel, after it parsed the JSON
                assert entry["prompt"] in page.inner_text("select")
            browser.close()
    finally:
        server.stop()
    assert not errors, errors  # the viewer's code read both exports without an error


def dump(driver: neo4j.Driver, database: str) -> tuple[Counter, Counter]:
    """Every node and relationship with its properties (VOLATILE ones left out), as multisets."""
    nodes, _, _ = driver.execute_query("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props",
                                       database_=database)
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN type(r) AS type, properties(r) AS props, "
        "coalesce(a.key, a.id, a.sha256, a.name) AS a, coalesce(b.key, b.id, b.sha256, b.name) AS b",
        database_=database)

    def clean(props: dict) -> str:
        return json.dumps({k: str(v) for k, v in props.items() if k not in VOLATILE}, sort_keys=True)

    return (Counter((tuple(sorted(r["labels"])), clean(r["props"])) for r in nodes),
            Counter((r["type"], r["a"], r["b"], clean(r["props"])) for r in rels))


def test_the_json_export_goes_back_to_the_same_graph(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings,
                                                     real_circuit_dirs: list[Path], tmp_path: Path) -> None:
    db = neo4j_settings.database
    clear_graph(neo4j_driver, db)
    folder = real_circuit_dirs[0]
    circuit = load_circuit(folder)
    write_circuit(neo4j_driver, circuit, folder, database=db)
    group = circuit.groups_of_layer(circuit.layers[1])[0]
    write_caption(neo4j_driver, circuit.id, group.id, label="fur", caption="white fur", common_features=["fur"],
                  model="test", prompt_version="v2", at="2026-12-06T08:00:00+00:00", raw=None, database=db)
    before = dump(neo4j_driver, db)
    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
           "NEO4J_PASSWORD": neo4j_settings.password or "", "NEO4J_DATABASE": db}
    exported = CliRunner(env=env).invoke(main, ["export", circuit.id, "--format", "json",
                                                "--out", str(tmp_path / "samoyed.json")])
    assert exported.exit_code == 0 and "1 label(s)" in exported.output, exported.output
    clear_graph(neo4j_driver, db)
    ingested = subprocess.run([sys.executable, "-m", "neurflow.ingest.cli", "--from", str(tmp_path / "samoyed.json"),
                               "--out", str(tmp_path / "unpacked")], env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                              capture_output=True, text=True, timeout=300)
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    assert "restored 1 label(s)" in ingested.stdout
    assert dump(neo4j_driver, db) == before
