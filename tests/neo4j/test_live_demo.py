"""`circuitatlas demo --store $NEO4J_URI` end to end against a live Neo4j, and the same demo on
the embedded store as its reference.

The demo runs once against Neo4j (training the toy run), then once more in the same directory on
the embedded store, reusing that toy run: the same configuration, so the same run ids. Then the
two printed summaries agree line by line (but for where the store is), the two stores hold the
same runs (checkpoints, components, edges, circuits) and the two reports draw the same figures.
The demo's runs are deleted from Neo4j afterwards (found by the toy run's path, so also when the
demo fails half-way).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cypher_values import assert_close, plain

from circuitatlas.demo import REPORT_DIR, STORE_NAME
from circuitatlas.report.build import INDEX
from circuitatlas.store import open_store

DEMO_TIMEOUT_S = 900
FLOAT_TOL = 1e-9
RUN_LINE = re.compile(r"^stored for run (\w+):", re.M)
REPORT_LINE = re.compile(r"^report of run (\w+) .*: (.+)$", re.M)


@dataclass
class Demos:
    """The two demos: their printed summaries, their report directories and run ids."""

    out: Path
    printed: dict[str, str]  # backend → stdout
    reports: dict[str, Path]  # backend → report directory
    run_ids: list[str]  # the demo's run


def demo(out: Path, *store: str) -> str:
    """Run `circuitatlas demo --out OUT [--store URL]` in a process of its own; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "circuitatlas.cli", "demo", "--out", str(out), *store],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def demo_runs(url: str, out: Path) -> list[str]:
    """The ids of the Neo4j runs swept from the demo's toy run under ``out``."""
    with open_store(url) as store:
        found = store.cypher(
            "MATCH (r:Run) WHERE r.model STARTS WITH $prefix RETURN r.run_id AS run_id",
            prefix=str(out),
        )
    return found["run_id"].tolist()


@pytest.fixture(scope="module")
def demos(tmp_path_factory, delete_module_runs) -> Any:
    url = os.environ["NEO4J_URI"]
    out = tmp_path_factory.mktemp("demo")
    try:
        printed = {"neo4j": demo(out, "--store", url)}
    finally:
        delete_module_runs += demo_runs(url, out)
    reports = {"neo4j": out / "report-neo4j"}
    (out / REPORT_DIR).rename(reports["neo4j"])
    printed["embedded"] = demo(out)
    reports["embedded"] = out / REPORT_DIR
    [(report_run, _)] = REPORT_LINE.findall(printed["neo4j"])
    assert RUN_LINE.findall(printed["neo4j"]) == [report_run]  # one run, reported
    return Demos(out, printed, reports, [report_run])


def test_the_demo_on_neo4j_prints_its_tables_and_writes_its_report(demos):
    printed = demos.printed["neo4j"]
    assert printed.startswith(f"trained the toy run in {demos.out / 'toy'}")
    assert len(demos.run_ids) == 1
    assert "prev_head" in printed and "induction_head" in printed  # the per-checkpoint table
    assert "analyzed at τ=0.7" in printed and "jaccard_previous" in printed
    assert "final circuit (step" in printed and "faithfulness" in printed
    assert "emergence: step" in printed
    [(_, index)] = REPORT_LINE.findall(printed)
    assert Path(index) == demos.out / REPORT_DIR / INDEX  # the report, renamed after the demo
    assert (demos.reports["neo4j"] / INDEX).stat().st_size > 0
    assert sorted(demos.reports["neo4j"].glob("*.png"))
    assert os.environ["NEO4J_URI"] in printed  # the `try:` lines name the store


def comparable(text: str, store: str, out: Path) -> list[str]:
    """The printed lines without the store's location and the training note."""
    lines = text.replace(store, "STORE").splitlines()
    return [line for line in lines[1:] if not line.startswith(f"reusing the toy run in {out}")]


def test_the_demo_prints_on_neo4j_what_it_prints_on_the_embedded_store(demos):
    got = comparable(demos.printed["neo4j"], os.environ["NEO4J_URI"], demos.out)
    expected = comparable(demos.printed["embedded"], str(demos.out / STORE_NAME), demos.out)
    assert demos.printed["embedded"].startswith(f"reusing the toy run in {demos.out / 'toy'}")
    assert got == expected


def assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """The same columns and rows (by ``keys``), cells as plain values, floats to 1e-9."""
    assert set(got.columns) == set(expected.columns)

    def rows(frame: pd.DataFrame) -> list[Any]:
        ordered = frame.sort_values(keys, kind="stable")[sorted(expected.columns)]
        return plain(ordered.astype(object).values.tolist())

    assert_close(rows(got), rows(expected))


def test_the_demo_stores_in_neo4j_what_it_stores_in_the_embedded_store(demos):
    with (
        open_store(os.environ["NEO4J_URI"]) as live,
        open_store(demos.out / STORE_NAME) as embedded,
    ):
        for run_id in demos.run_ids:
            assert live.counts(run_id) == embedded.counts(run_id)
            assert live.run_config(run_id) == embedded.run_config(run_id)
            assert_same_rows(live.checkpoints(run_id), embedded.checkpoints(run_id), ["step"])
            keys = ["step", "name"]
            assert_same_rows(live.components(run_id), embedded.components(run_id), keys)
            keys = ["step", "source", "target"]
            assert_same_rows(live.edges(run_id), embedded.edges(run_id), keys)
        circuits = [
            s.circuits(demos.run_ids[0])
            .drop(columns="created_at")
            .assign(text=lambda f: f["edges"].map(" ".join))
            for s in (live, embedded)
        ]
        assert len(circuits[1]) and circuits[1]["faithfulness"].notna().all()
        assert (circuits[1]["kind"] == "edges").all()
        assert_same_rows(*circuits, ["step", "text"])  # a circuit by its edges
        edges = [s.circuit_edges(demos.run_ids[0]) for s in (live, embedded)]
        assert len(edges[1]) == int(circuits[1]["n_edges"].sum())
        assert_same_rows(*edges, ["circuit", "rank"])


def test_the_demo_reports_draw_the_same_figures(demos):
    figures = {name: sorted(d.glob("*.png")) for name, d in demos.reports.items()}
    assert [p.name for p in figures["neo4j"]] == [p.name for p in figures["embedded"]]
    for got, expected in zip(figures["neo4j"], figures["embedded"], strict=True):
        assert got.read_bytes() == expected.read_bytes(), got.name
