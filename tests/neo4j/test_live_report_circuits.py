"""The report's "Circuits" part on a live Neo4j equals the embedded store's: the same saved edge
circuits shown (setting, steps, edges, emergence), the same figures byte for byte, the same
final-circuit table; a run without edge circuits has no such part on either backend.

A synthetic run is ingested into both stores, analyzed, and given the same edge-circuit records
of two settings (the eap-ig ones saved later); a second run has none.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import pandas as pd
import pytest
from circuit_records import edge_circuit, with_scores

from circuitatlas.analytics.analyze import analyze
from circuitatlas.graph.paths import ARROW
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.report import write_report
from circuitatlas.report.circuit_figures import CIRCUIT_FIGURES
from circuitatlas.report.data import gather
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

STEPS = [0, 10, 20, 40]
PREV, INDUCTION = "a0.h1", "a1.h0"
EARLY = [("input", "a0.h0"), ("a0.h0", "logits")]
LATE = [("input", PREV), (PREV, INDUCTION), (INDUCTION, "logits")]
STAMPS = {"exact": "2026-01-01T00:00:00+00:00", "eap-ig": "2026-01-02T00:00:00+00:00"}
SECTION = re.compile(r'<h2 id="circuits">Circuits</h2>(.*?)(?=<h2 )', re.S)


def records(run_id: str) -> list[dict[str, Any]]:
    """Exact circuits holding a0.h1 → a1.h0 from step 20; eap-ig ones from step 10."""
    out = []
    for kind, emerges in (("exact", 20), ("eap-ig", 10)):
        for step in STEPS:
            edges = LATE if step >= emerges else EARLY
            scores = [(-1) ** (i + 1) * 0.3 / (i + 1) for i in range(len(edges))]
            record = edge_circuit(run_id, step, edges, scores, kind, 0.8 + step / 400)
            out.append(record | {"created_at": STAMPS[kind]})
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory, delete_module_runs):
    tag = uuid.uuid4()
    run = with_scores(synthetic_sweep(2, 2, STEPS, seed=7, model=f"live-rc-{tag}"), seed=7)
    names = run.components["name"]
    run.components["prev_token_score"] = (names == PREV).astype(float) * 0.9
    run.components["induction_score"] = (names == INDUCTION).astype(float) * 0.9
    bare = synthetic_sweep(2, 2, STEPS, seed=8, model=f"live-rc-bare-{tag}")
    delete_module_runs += [run.run_id, bare.run_id]
    path = tmp_path_factory.mktemp("live-report-circuits") / "store.lbdb"
    url = os.environ["NEO4J_URI"]
    with open_store(url, writable=True) as live, open_store(path, writable=True) as embedded:
        for store in (live, embedded):
            ingest_sweep(store, run, progress=False)
            ingest_sweep(store, bare, progress=False)
            analyze(store, run.run_id, 0.7, progress=False)
            store.write_circuits(records(run.run_id))
    return url, path, run.run_id, bare.run_id


@pytest.fixture(scope="module")
def reports(world, tmp_path_factory):
    url, path, run_id, bare = world
    out = tmp_path_factory.mktemp("live-report-circuits-out")
    found = {}
    with open_store(url) as live, open_store(path) as embedded:
        for name, store in (("neo4j", live), ("embedded", embedded)):
            found[name] = {
                run: (
                    gather(store, run),
                    write_report(store, run, out / name / run, progress=False),
                )
                for run in (run_id, bare)
            }
    return found


def test_the_circuits_shown_on_neo4j_equal_the_embedded_stores(world, reports):
    _, _, run_id, bare = world
    got, expected = reports["neo4j"][run_id][0].circuits, reports["embedded"][run_id][0].circuits
    assert (got.scores, got.target, got.ablation) == ("eap-ig", 0.8, "zero")
    assert (got.setting, got.others) == (expected.setting, expected.others)
    assert got.emergence == expected.emergence == 10
    for a, b in ((got.steps, expected.steps), (got.edges, expected.edges)):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(got.events, expected.events)
    assert reports["neo4j"][bare][0].circuits is None
    assert reports["embedded"][bare][0].circuits is None


def test_the_circuits_part_on_neo4j_draws_what_the_embedded_store_draws(world, reports):
    _, _, run_id, bare = world
    pages = {}
    for name in ("neo4j", "embedded"):
        written = reports[name][run_id][1]
        assert [p.name for p in written.figures][-2:] == [f"{n}.png" for n in CIRCUIT_FIGURES]
        [pages[name]] = SECTION.findall(written.index.read_text(encoding="utf-8"))
        assert 'id="circuits"' not in reports[name][bare][1].index.read_text(encoding="utf-8")
    got, expected = reports["neo4j"][run_id][1], reports["embedded"][run_id][1]
    for g, e in zip(got.figures, expected.figures, strict=True):
        assert g.read_bytes() == e.read_bytes(), g.name
    assert pages["neo4j"] == pages["embedded"]
    final = ", ".join(f"{a}{ARROW}{b}" for a, b in LATE)
    assert f"<td>{final}</td>" in pages["neo4j"]
