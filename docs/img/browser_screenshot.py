"""Screenshot of a class circuit in Neo4j Browser (docs/img/browser-circuit.png), taken in headless Chromium.

Opens Neo4j Browser, logs in, turns Browser's "Connect result nodes" off (only the returned edges are drawn;
``--connect-result-nodes`` keeps it), applies neurflow's stylesheet with ``:style URL`` (served here, with the
CORS headers of ``neurflow browser serve``), runs the guide's class-circuit query for one class, shows the
result frame full screen, waits for the layout to settle, zooms to fit and saves a screenshot.

Usage (a running server with ingested circuits)::

    apt-get install -y chromium                  # or Playwright's own: playwright install chromium, --chromium
    pip install playwright                       # the Python package only: --chromium names the browser
    neurflow db start --data-dir /tmp/nf-browser-neo4j --bolt-port 7690 --http-port 7477
    python docs/img/browser_screenshot.py --browser-url http://127.0.0.1:7477/browser/ \\
        --bolt bolt://127.0.0.1:7690 --data-dir /tmp/nf-browser-neo4j --class Samoyed

The password comes from ``$NEO4J_PASSWORD`` or the local server's data folder (``--data-dir``); it is typed
into the login form only, never printed.
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import os
import sys
import threading
import time
from pathlib import Path

from neurflow.cli.query import BROWSER_DIR, GUIDE, STYLE, _CorsHandler
from neurflow.graph.server_config import read_password

HERE = Path(__file__).parent


class _Query(html.parser.HTMLParser):
    """Text of the guide's ``<pre data-query=NAME>``."""

    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name, self.inside, self.parts = name, False, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = self.inside or (tag == "pre" and dict(attrs).get("data-query") == self.name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.parts.append(data)


def guide_query(name: str, class_name: str) -> str:
    parser = _Query(name)
    parser.feed((BROWSER_DIR / GUIDE).read_text(encoding="utf-8"))
    text = "".join(parser.parts).strip()
    if not text:
        sys.exit(f"the guide has no query {name!r}")
    return text.replace("'Samoyed'", "'" + class_name.replace("'", "\\'") + "'")


def serve_browser_files(port: int) -> http.server.ThreadingHTTPServer:
    """What ``neurflow browser serve --port PORT`` does, in a thread."""
    handler = functools.partial(_CorsHandler, directory=str(BROWSER_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--browser-url", default="http://127.0.0.1:7474/browser/")
    parser.add_argument("--bolt", default="bolt://127.0.0.1:7687")
    parser.add_argument("--user", default="neo4j")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="Local server's data folder (its password file); default: $NEO4J_PASSWORD.")
    parser.add_argument("--class", dest="class_name", default="Samoyed")
    parser.add_argument("--style-port", type=int, default=8011, help="Port to serve the stylesheet on.")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable.")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=6.0, help="Seconds for the graph layout to settle.")
    parser.add_argument("--connect-result-nodes", action="store_true",
                        help="Keep Browser's 'Connect result nodes' (adds every edge among the nodes shown).")
    parser.add_argument("--out", type=Path, default=HERE / "browser-circuit.png")
    args = parser.parse_args()

    password = os.environ.get("NEO4J_PASSWORD") or read_password(args.data_dir)
    if not password:
        sys.exit("no password: set NEO4J_PASSWORD or give --data-dir of a local server")
    query = guide_query("class-circuit", args.class_name)

    from playwright.sync_api import sync_playwright

    styles = serve_browser_files(args.style_port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height}, device_scale_factor=1)
            page.goto(f"{args.browser_url}?connectURL={args.bolt}", wait_until="networkidle")
            page.get_by_test_id("username").fill(args.user)
            page.get_by_test_id("password").fill(password)
            page.get_by_test_id("connect").click()
            page.get_by_test_id("disconnectedBanner").wait_for(state="detached", timeout=60_000)

            def run(command: str, wait: float = 1.0) -> None:
                editor = page.get_by_test_id("activeEditor")
                editor.click()
                page.keyboard.press("Control+A")
                page.keyboard.press("Delete")
                page.keyboard.insert_text(command)  # no key events: no auto-closed brackets
                page.get_by_test_id("editor-Run").click()
                time.sleep(wait)

            run(":clear")
            run(f':config "autoComplete": {"true" if args.connect_result_nodes else "false"}')
            run(f":style http://localhost:{args.style_port}/{STYLE}", wait=2.0)
            run(":clear")
            run(query)
            frame = page.get_by_test_id("frame").first
            frame.locator("svg g.node").first.wait_for(timeout=60_000)
            frame.get_by_title("Fullscreen").click()
            time.sleep(args.settle)
            frame.get_by_title("Collapse the node properties display").click()
            time.sleep(1.0)
            frame.get_by_label("zoom-to-fit").click()  # fills the frame with the graph
            time.sleep(1.0)
            page.mouse.move(0, 0)  # no hover highlight
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            nodes = frame.locator("svg g.node").count()
            rels = frame.locator("svg g.relationship").count()
            browser.close()
    finally:
        styles.shutdown()
        styles.server_close()
    print(f"{args.out}: {nodes} nodes, {rels} relationships")


if __name__ == "__main__":
    main()
