"""The report in a real browser: Debian's chromium, driven by Playwright, offline.

The report of the default toy run, swept as the demo sweeps it for its report, is opened from
disk. Every request the page makes is recorded (anything but the file itself, ``data:``,
``blob:`` and ``about:`` is aborted and fails the test), the graph's canvas must show pixels in
the component colours, the step selector must redraw it, and screenshots are saved (to
``$CIRCUITATLAS_ARTIFACTS`` when set, else beside the report).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from circuitatlas.analytics.analyze import DEFAULT_TAU, analyze
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.report import write_report
from circuitatlas.report.figures import KIND_COLOURS
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_plan

CIRCUIT_ABLATION = "resample"  # the report is drawn from a resample-ablation run
LOCAL = ("file:", "data:", "blob:", "about:")
DRAW_TIMEOUT_MS = 30_000

# Counts canvas pixels within a small distance of any of the given colours, over every canvas of
# the document it runs in (the graph draws nodes on a 2D canvas).
COUNT_PIXELS = """
(colours) => {
  let hits = 0;
  for (const canvas of document.querySelectorAll("canvas")) {
    if (!canvas.width || !canvas.height) continue;
    const ctx = canvas.getContext("2d");
    if (!ctx) continue;
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] < 200) continue;
      for (const [r, g, b] of colours) {
        if (Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 24) {
          hits++;
          break;
        }
      }
    }
  }
  return hits;
}
"""


def _rgb(hex_colour: str) -> list[int]:
    h = hex_colour.lstrip("#")
    return [int(h[i : i + 2], 16) for i in (0, 2, 4)]


@pytest.fixture(scope="module")
def report(default_toy_runs, tmp_path_factory):
    run_dir, _ = default_toy_runs(0)
    plan = plan_run(str(run_dir), None, SweepSettings(ablation=CIRCUIT_ABLATION))
    root = tmp_path_factory.mktemp("report")
    with open_store(root / "store.lbdb", writable=True) as store:
        ingest_plan(store, plan, progress=False)
        analyze(store, plan.run_id, DEFAULT_TAU, progress=False)
        written = write_report(store, plan.run_id, root / "report", progress=False)
    return written


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("no chromium on PATH: `make install` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


def _artifacts(report) -> Path:
    out = Path(os.environ.get("CIRCUITATLAS_ARTIFACTS", report.index.parent / "screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _graph_pixels(frame, colours) -> int:
    """Pixels in ``colours`` on the frame's canvases, once drawing has begun (polled)."""
    frame.wait_for_selector("canvas", timeout=DRAW_TIMEOUT_MS)
    hits = 0
    for _ in range(DRAW_TIMEOUT_MS // 500):
        hits = frame.evaluate(COUNT_PIXELS, colours)
        if hits > 0:
            break
        frame.page.wait_for_timeout(500)
    return hits


@pytest.mark.slow
def test_the_report_draws_the_graph_offline_and_the_selector_redraws_it(report, browser):
    external: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    def guard(route) -> None:
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.index.as_uri())

    images = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
    assert len(images) == len(report.figures) and all(w > 0 for w in images)

    page.locator("#graph").scroll_into_view_if_needed()
    frame = page.locator("#graph").element_handle().content_frame()
    kinds = set(report.kinds)
    colours = [_rgb(KIND_COLOURS[k]) for k in sorted(kinds)]
    hits = _graph_pixels(frame, colours)
    assert hits > 20 * len(kinds), f"the graph drew {hits} pixels in the component colours"

    shots = _artifacts(report)
    page.locator("#graph").screenshot(path=str(shots / "graph-last-step.png"))
    page.screenshot(path=str(shots / "report-top.png"))

    first = str(report.graph_steps[0])
    page.select_option("#graph-step", first)
    page.wait_for_function(f"() => document.getElementById('graph').dataset.step === '{first}'")
    frame = page.locator("#graph").element_handle().content_frame()
    assert _graph_pixels(frame, colours) > 0
    page.locator("#graph").screenshot(path=str(shots / f"graph-step{first}.png"))

    assert external == [], f"the report requested {external}"
    assert errors == [], errors
    context.close()
