"""Neo4j Browser, served by the live server on its HTTP port, in Debian's chromium (Playwright):
it connects with the generated credentials, runs the README's first Browser query on a run of
this test and shows that run's checkpoints as result rows. Screenshots are saved (to
``$CIRCUITATLAS_ARTIFACTS`` when set, else the test's temporary directory)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from readme_examples import parameters, readme_blocks

from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

TIMEOUT_MS = 60_000
STEPS = [0, 10, 20, 40]


def browser_query() -> str:
    """The README's first Neo4j example that takes only ``$run_id``: what the test runs."""
    for dialects, query in readme_blocks():
        if "neo4j" in dialects and parameters(query) == {"run_id"}:
            return query
    raise AssertionError("README.md has no Neo4j example that takes only $run_id")


@pytest.fixture
def run(neo4j_url, delete_runs):
    sweep = synthetic_sweep(2, 2, STEPS, seed=3, model=f"live-browser-{uuid.uuid4()}")
    delete_runs.append(sweep.run_id)
    with open_store(neo4j_url, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
    return sweep


@pytest.fixture
def page(tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("no chromium on PATH: `make install` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def _artifacts(tmp_path: Path) -> Path:
    out = Path(os.environ.get("CIRCUITATLAS_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _run_command(page, command: str) -> None:
    """Type ``command`` into Browser's main editor and run it (a new result frame opens)."""
    frames = page.locator("[data-testid=frame]").count()
    page.locator("#monaco-main-editor").click()
    page.keyboard.type(command)
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=frame]').length > n", arg=frames
    )


def test_browser_connects_and_shows_the_readme_query_rows(run, page, tmp_path, neo4j_url):
    browser_url = os.environ.get("NEO4J_BROWSER_URL")
    assert browser_url, "no NEO4J_BROWSER_URL: `make neo4j` writes it to .neo4j/env"
    bolt = urlsplit(os.environ["NEO4J_URI"])
    shots = _artifacts(tmp_path)

    page.goto(browser_url)
    page.select_option("select", "bolt://")
    page.fill("[data-testid=boltaddress]", f"{bolt.hostname}:{bolt.port}")
    page.fill("[data-testid=username]", os.environ.get("NEO4J_USERNAME", "neo4j"))
    page.fill("[data-testid=password]", os.environ["NEO4J_PASSWORD"])
    page.click("[data-testid=connect]")
    page.wait_for_selector("text=You are connected as user")
    page.screenshot(path=str(shots / "browser-connected.png"))

    _run_command(page, f":param run_id => {json.dumps(run.run_id)}")
    query = browser_query()
    _run_command(page, " ".join(query.split()))
    frame = page.locator("[data-testid=frame]").first
    table = frame.locator("[data-testid=cypherFrameSidebarTable]")
    table.click()
    cells = frame.locator("table tbody tr")
    cells.first.wait_for()
    rows = [
        [c.strip() for c in cells.nth(i).locator("td").all_inner_texts()]
        for i in range(cells.count())
    ]
    page.screenshot(path=str(shots / "browser-readme-query.png"))
    with open_store(neo4j_url) as store:
        expected = store.cypher(query, run_id=run.run_id)
    assert list(expected.step) == STEPS
    # each row: Browser's row number, then the query's columns
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(STEPS) + 1)], rows
    shown = [[float(v) for v in r[1:]] for r in rows]
    assert shown == expected.astype(float).to_numpy().tolist(), rows
