"""The atlas in a real browser: Debian's headless Chromium, driven by Playwright, against `neurflow serve`'s app on
the test Neo4j. The class page draws the circuit (its nodes and edges, as many as the API sends), the slider
changes what is shown, search by words finds the labelled group's class, a group page shows its patches.

Screenshots go to $NEURFLOW_SCREENSHOTS when it is set (docs/img/serve-*.png were made so).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurflow.format import load_circuit
from tests.serve.conftest import LABEL

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = os.environ.get("NEURFLOW_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def page(served: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/test.sh does), or set "
                    "NEURFLOW_CHROMIUM", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        browser.close()
        assert not errors, errors  # no script error on any page


def shot(page: object, name: str, full: bool = False) -> None:
    folder = os.environ.get("NEURFLOW_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"serve-{name}.png"), full_page=full)  # type: ignore[attr-defined]


def api(served: str, cid: str, prune: float) -> dict:
    with urllib.request.urlopen(f"{served}/api/circuit/{cid}?prune={prune}") as reply:
        return json.load(reply)


def test_the_class_page_draws_the_circuit_and_the_slider_changes_it(page, served: str,
                                                                    atlas_graph: dict[str, Path]) -> None:
    cid = load_circuit(atlas_graph["Samoyed"]).id
    page.goto(served + "/")
    assert page.locator("a.class-link").all_inner_texts() == ["golden retriever", "Samoyed"]
    shot(page, "atlas")
    page.click("text=Samoyed")
    page.wait_for_selector("#circuit[data-loaded='0.8']")
    drawn = page.evaluate("() => { const b = document.getElementById('circuit');"
                          " return [b.querySelectorAll('canvas').length, +b.dataset.nodes, +b.dataset.edges]; }")
    expected = api(served, cid, 0.8)
    assert drawn[0] > 0 and drawn[1:] == [len(expected["nodes"]), len(expected["edges"])] and drawn[1] > 1
    shot(page, "class", full=True)
    page.fill("#prune", "1")  # the slider moved to keep everything
    page.dispatch_event("#prune", "change")
    page.wait_for_selector("#circuit[data-loaded='1']")
    everything = api(served, cid, 1.0)
    assert int(page.get_attribute("#circuit", "data-nodes")) == len(everything["nodes"]) > drawn[1]
    assert page.inner_text("#prune-value") == "1"
    page.fill("#prune", "0.2")
    page.dispatch_event("#prune", "change")
    page.wait_for_selector("#circuit[data-loaded='0.2']")
    assert int(page.get_attribute("#circuit", "data-nodes")) == len(api(served, cid, 0.2)["nodes"]) < drawn[1]


def test_search_by_words_finds_the_labelled_group_and_its_page_shows_its_patches(page, served: str) -> None:
    page.goto(served + "/")
    page.fill("input[aria-label='search concepts']", "fluffy")
    page.press("input[aria-label='search concepts']", "Enter")
    page.wait_for_selector("#results")
    rows = page.locator("#results tbody tr").all_inner_texts()
    assert rows and "Samoyed" in rows[0] and LABEL in rows[0]
    shot(page, "search")
    page.locator("#results tbody tr a").first.click()
    page.wait_for_selector(".montage")
    page.wait_for_function("() => [...document.querySelectorAll('.montage img')].every(i => i.complete)")
    loaded = page.evaluate("() => [...document.querySelectorAll('.montage img')]"
                           ".map(i => i.complete && i.naturalWidth > 0)")
    assert loaded and all(loaded)  # every patch's thumbnail arrived and decoded
    assert LABEL in page.inner_text("main")
    shot(page, "group", full=True)


def test_search_by_image_uploads_a_photo_and_lists_the_groups_it_triggers(page, served: str,
                                                                          atlas_graph: dict[str, Path]) -> None:
    image = Path(load_circuit(atlas_graph["Samoyed"]).images[0].path)
    page.goto(served + "/")
    page.click("text=search by image")
    page.set_input_files("input[type=file]", str(image))
    page.click("#image-form button")
    page.wait_for_selector("#image-results", timeout=120_000)  # the model loads on the first search
    rows = page.locator("#image-results tbody tr").all_inner_texts()
    assert rows and "Samoyed" in rows[0]
    assert page.evaluate("() => document.querySelector('.preview').naturalWidth") > 0
    shot(page, "search-image", full=True)
