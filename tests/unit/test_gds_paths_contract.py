"""Contract tests of pathfinding in Neo4j with GDS, recorded by a stand-in driver: only what a
live server cannot show (tests/neo4j/test_live_paths.py compares GDS's paths with the embedded
store's): every text sent is a named statement or a client call with every value a parameter,
and linted; an edgeless projection runs no algorithm; a server without GDS is named as such.
"""

from __future__ import annotations

import re

import pytest
from cypher_lint import lint
from neo4j_recording import ingested_store

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.paths import PathSettings
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.paths import find_paths
from circuitatlas.store import open_store
from circuitatlas.store.base import MEASURES
from circuitatlas.store.ingest import ingest_sweep
from circuitatlas.store.statements import statement

RUN_STEPS = [0, 1357, 2468, 3579, 4680, 5791]  # no statement text holds these
TAU = 0.6  # direct effects: some checkpoints have paths at it, some none
KS = (1, 5)
PATH_STATEMENTS = {1: "gds_path_dijkstra", 5: "gds_path_yens"}
PROJECT = statement("neo4j", "gds_project")


@pytest.fixture(scope="module")
def run_sweep():
    return synthetic_sweep(n_layers=3, n_heads=2, steps=RUN_STEPS, seed=1)


def texts(name: str) -> str:
    return statement("neo4j", name)


def sent(driver, name: str) -> list:
    """The calls of statement ``name``."""
    return [c for c in driver.calls() if c.query == texts(name)]


def drops(driver) -> list:
    return [c for c in driver.calls() if c.query.startswith("CALL gds.graph.drop(")]


def test_every_text_is_a_named_statement_or_a_client_call_with_parameters_only(run_sweep):
    store, driver = ingested_store(run_sweep, writable=False)
    for k in KS:
        for measure in MEASURES:
            settings = PathSettings(k=k, measure=measure, tau=TAU)
            find_paths(store, run_sweep.run_id, settings=settings)
    names = set(run_sweep.components.name)
    sent_texts = {c.query for c in driver.calls()}
    # find_paths asks for k + 1 paths (a tie at the k-th place is settled by names): Yen's
    assert {PROJECT, texts("gds_path_yens")} <= sent_texts
    assert texts("path_edges") in sent_texts  # the notes of checkpoints without a path
    for text in sent_texts:
        assert run_sweep.run_id not in text and str(TAU) not in text
        assert not any(str(step) in text for step in RUN_STEPS[1:])
        assert not any(re.search(rf"['\"]{re.escape(n)}['\"]", text) for n in names), text
    results = lint({f"sent{i}": q for i, q in enumerate(sorted(sent_texts))})
    assert not {name: diags for name, diags in results.items() if diags}


def test_an_edgeless_projection_runs_no_algorithm(run_sweep, tmp_path):
    """No direct similarity is below 0.5: no relationship, no ``distance`` property, no path
    (what a live server cannot show: that no algorithm is called)."""
    store, driver = ingested_store(run_sweep, writable=False)
    settings = PathSettings(measure="direct", tau=0.5)
    got = find_paths(store, run_sweep.run_id, settings=settings)
    assert got.paths.empty and len(got.notes) == len(RUN_STEPS)
    with open_store(tmp_path / "x.lbdb", writable=True) as embedded:
        ingest_sweep(embedded, run_sweep, progress=False)
        assert got.notes == find_paths(embedded, run_sweep.run_id, settings=settings).notes
    assert not any(sent(driver, name) for name in PATH_STATEMENTS.values())
    assert len(sent(driver, "gds_project")) == len(drops(driver)) == len(RUN_STEPS)
    assert driver.catalog == {}


def test_a_server_without_gds_is_named_in_one_line(run_sweep):
    store, driver = ingested_store(run_sweep, writable=False, gds_version=None)
    with pytest.raises(CircuitAtlasError) as info:
        find_paths(store, run_sweep.run_id)
    assert str(info.value) == (
        "Neo4j at neo4j://localhost has no Graph Data Science library; install the GDS plugin "
        "(docker/compose.yml has it)"
    )
    gds = [c.query for c in driver.calls() if "gds" in c.query]
    assert gds == ["RETURN gds.version()"]
