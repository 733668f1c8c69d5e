"""Contract tests of the Neo4j analytics, recorded by a stand-in driver: only what a live server
cannot show (tests/neo4j/test_live_analytics.py compares GDS's centralities and whole analyses
with the embedded store's, in write and stream mode, and checks that projections are dropped):
every statement is a named file with every value a parameter, and linted; the client is made
once; the write-back is one transaction of batches; refusals before anything is sent (a
read-only store, a server without GDS).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from cypher_lint import lint
from neo4j_recording import RecordingDriver, ingested_store

from circuitatlas.analytics.analyze import analyze
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.network import Graph
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store.analysis_rows import (
    CHECKPOINT_ANALYSIS,
    RUN_ANALYSIS,
    analysis_rows,
)
from circuitatlas.store.base import SCHEMA_VERSION
from circuitatlas.store.gds import GRAPH_NAME_PREFIX
from circuitatlas.store.neo4j import Neo4jStore
from circuitatlas.store.rows import checkpoint_key
from circuitatlas.store.statements import statement, statement_names, statements

TAU = 0.7
STEPS = [0, 100]
BATCH = 4
# configuration keys the client adds to every algorithm call, with the values it sends


@pytest.fixture
def sweep():
    return synthetic_sweep(n_layers=2, n_heads=2, steps=STEPS, seed=0)


def graph_at(sweep, step: int, tau: float = TAU) -> Graph:
    """The step's graph at ``tau`` from the sweep's frames (as the store would read it)."""
    names = sorted(sweep.components.loc[sweep.components.step == step, "name"])
    edges = sweep.edges[
        (sweep.edges.step == step) & (sweep.edges.similarity < tau) & (sweep.edges.weight > 0)
    ]
    return Graph.from_edges(names, edges[["source", "target", "weight"]])


def open_store(sweep, writable=True, tau=TAU, **driver_options):
    driver = RecordingDriver(schema_version=SCHEMA_VERSION, **driver_options)
    for step in STEPS:
        driver.add_graph(checkpoint_key(sweep.run_id, step), graph_at(sweep, step, tau))
    store = Neo4jStore(
        "neo4j://localhost", writable=writable, batch_size=BATCH, driver=driver, database="atlas"
    )
    driver.transactions.clear()
    return store, driver


def gds_calls(driver) -> list:
    """Every call the GDS client sent (those carry its transaction metadata)."""
    return [c for c in driver.calls() if c.metadata is not None]


def procedure(call) -> str:
    """``gds.pageRank.stream`` of ``CALL gds.pageRank.stream($graph_name, $config)``."""
    return call.query.removeprefix("CALL ").split("(", 1)[0]


def test_the_client_is_made_once_and_sends_only_the_version_check(sweep):
    store, driver = open_store(sweep)
    store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0), TAU, "total", write=False)
    store.centralities_of(sweep.run_id, 100, graph_at(sweep, 100), TAU, "total", write=False)
    versions = [c for c in driver.calls() if c.query == "RETURN gds.version()"]
    assert len(versions) == 1
    first = driver.transactions[0]
    assert first.kind == "execute_query" and first.mode == "READ"
    assert first.calls[0].query == "RETURN gds.version()" and first.calls[0].params == {}
    # every statement of the client goes to the store's database
    assert {t.database for t in driver.transactions} == {"atlas"}


def test_the_projection_is_the_named_statement_with_parameters_only(sweep):
    store, driver = open_store(sweep)
    for step in STEPS:
        store.centralities_of(sweep.run_id, step, graph_at(sweep, step), TAU, "direct", False)
    text = statement("neo4j", "gds_project")
    projections = [c for c in driver.calls() if c.query == text]
    assert len(projections) == 2
    names = [c.params["graph_name"] for c in projections]
    assert all(n.startswith(GRAPH_NAME_PREFIX) for n in names) and len(set(names)) == 2
    for call, step in zip(projections, STEPS, strict=True):
        assert call.params == {
            "graph_name": call.params["graph_name"],
            "checkpoint_key": checkpoint_key(sweep.run_id, step),
            "tau": TAU,
            "unfiltered": False,
            "measure": "direct",
        }
    assert sweep.run_id not in text and str(TAU) not in text
    params = ("graph_name", "checkpoint_key", "tau", "unfiltered", "measure")
    assert all(f"${p}" in text for p in params)
    modes = {t.mode for t in driver.transactions if t.calls[0].query == text}
    assert modes == {"READ"}


def test_write_mode_needs_a_writable_store(sweep):
    store, driver = open_store(sweep, writable=False)
    with pytest.raises(CircuitAtlasError, match="read-only"):
        store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0), TAU, "total", write=True)
    assert driver.transactions == []


def test_a_server_without_gds_is_named_in_one_line(sweep):
    store, driver = open_store(sweep, gds_version=None)
    with pytest.raises(CircuitAtlasError) as info:
        store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0), TAU, "total", write=False)
    assert str(info.value) == (
        "Neo4j at neo4j://localhost has no Graph Data Science library; install the GDS plugin "
        "(docker/compose.yml has it)"
    )
    assert [c.query for c in driver.calls()] == ["RETURN gds.version()"]


def run_values() -> dict:
    return {
        "analysis_tau": 0.7,
        "analysis_measure": "total",
        "analysis_cost": "1/weight",
        "analysis_top_k": np.int64(3),
        "phase_boundaries": np.array([100], dtype=np.int64),
        "phase_labels": ["exploration", "consolidation"],
        "reconfigurations": [np.int64(100)],
        "analyzed_at": "2025-01-01T00:00:00+00:00",
    }


def analysis(sweep):
    components = sweep.components[["step", "name"]].copy()
    components["role"] = ["spreader" if i % 3 == 0 else None for i in range(len(components))]
    checkpoints = pd.DataFrame({"step": STEPS})
    for column in CHECKPOINT_ANALYSIS:
        checkpoints[column] = np.nan
    checkpoints["tau"], checkpoints["measure"], checkpoints["n_edges"] = 0.7, "total", [35, 31]
    checkpoints["reconfiguration"] = [False, True]
    return analysis_rows(sweep.run_id, components, checkpoints, run_values())


BY_TEXT = {text: n for n in statement_names("neo4j") for text in statements("neo4j", n)}


def named(calls) -> list[str]:
    for call in calls:
        assert call.query in BY_TEXT, f"statement not from a .cypher file: {call.query[:80]}"
    return [BY_TEXT[c.query] for c in calls]


def test_write_analysis_is_one_transaction_of_parameterized_batches(sweep):
    store, driver = open_store(sweep)
    rows = analysis(sweep)
    store.write_analysis(rows)
    [tx] = driver.transactions
    assert (tx.kind, tx.mode, tx.outcome, tx.database) == ("managed", "WRITE", "committed", "atlas")
    n_comp, n_ckpt = len(rows.components), len(rows.checkpoints)
    assert named(tx.calls) == (
        ["analysis_components_write"] * math.ceil(n_comp / BATCH)
        + ["analysis_checkpoints_write"] * math.ceil(n_ckpt / BATCH)
        + ["analysis_run_write"]
    )
    sent = {"analysis_components_write": [], "analysis_checkpoints_write": []}
    for call, name in zip(tx.calls[:-1], named(tx.calls[:-1]), strict=True):
        assert set(call.params) == {"rows"} and 0 < len(call.params["rows"]) <= BATCH
        sent[name] += call.params["rows"]
    components = sent["analysis_components_write"]
    assert [r["key"] for r in components] == rows.components.key.tolist()
    assert components[0]["properties"] == {"role": "spreader"}
    assert components[1]["properties"] == {"role": None}  # removes a stale role
    checkpoints = sent["analysis_checkpoints_write"]
    assert [r["key"] for r in checkpoints] == [f"{sweep.run_id}/{s}" for s in STEPS]
    first = checkpoints[0]["properties"]
    assert set(first) == set(CHECKPOINT_ANALYSIS)
    assert first["tau"] == 0.7 and first["n_edges"] == 35 and first["density"] is None
    assert (
        type(first["n_edges"]) is int
        and type(checkpoints[1]["properties"]["reconfiguration"]) is bool
    )
    run = tx.calls[-1].params
    assert run == {
        "run_id": sweep.run_id,
        "properties": {
            "analysis_tau": 0.7,
            "analysis_measure": "total",
            "analysis_cost": "1/weight",
            "analysis_top_k": 3,
            "phase_boundaries": [100],
            "phase_labels": ["exploration", "consolidation"],
            "reconfigurations": [100],
            "analyzed_at": "2025-01-01T00:00:00+00:00",
        },
    }
    assert set(run["properties"]) == set(RUN_ANALYSIS)
    plain = run["properties"]
    assert type(plain["analysis_top_k"]) is int and type(plain["phase_boundaries"][0]) is int


def test_write_analysis_needs_a_writable_store(sweep):
    store, driver = open_store(sweep, writable=False)
    with pytest.raises(CircuitAtlasError, match="read-only"):
        store.write_analysis(analysis(sweep))
    assert driver.transactions == []


def test_begin_analysis_clears_the_run_marker_in_one_transaction(sweep):
    store, driver = open_store(sweep)
    store.begin_analysis(sweep.run_id)
    check, tx = driver.transactions  # GDS first: a server without it has nothing cleared
    assert [c.query for c in check.calls] == ["RETURN gds.version()"]
    assert (tx.kind, tx.mode, tx.outcome) == ("managed", "WRITE", "committed")
    assert named(tx.calls) == ["analysis_clear"]
    assert tx.calls[0].params == {"run_id": sweep.run_id}
    text = tx.calls[0].query
    assert all(f"r.{p} = null" in text for p in RUN_ANALYSIS) and "c.tau = null" in text
    reader, _ = open_store(sweep, writable=False)
    with pytest.raises(CircuitAtlasError, match="read-only"):
        reader.begin_analysis(sweep.run_id)


def test_every_statement_of_an_analysis_passes_the_linter(sweep):
    store, driver = open_store(sweep)
    store.begin_analysis(sweep.run_id)
    for step in STEPS:
        store.centralities_of(sweep.run_id, step, graph_at(sweep, step), TAU, "total", True)
        store.centralities_of(sweep.run_id, step, graph_at(sweep, step), TAU, "direct", False)
    store.write_analysis(analysis(sweep))
    sent = {c.query for c in driver.calls()}
    assert {"RETURN gds.version()", statement("neo4j", "gds_project")} <= sent
    assert any(q.startswith("CALL gds.graph.drop(") for q in sent)
    results = lint({f"sent{i}": q for i, q in enumerate(sorted(sent))})
    problems = {name: diags for name, diags in results.items() if diags}
    assert not problems, problems


# --- analyze() end to end: a sweep ingested through the backend, analyzed over the stand-in ----
RUN_STEPS = [0, 1357, 2468, 3579, 4680, 5791, 6802, 7913]  # no statement text holds these
RUN_TAU = 0.73
# how the GDS client calls a procedure: every value a parameter
CLIENT_CALL = re.compile(r"CALL gds(\.\w+)+\((\$\w+(, \$\w+)*)?\)( YIELD \w+(, \w+)*)?")


@pytest.fixture(scope="module")
def run_sweep():
    return synthetic_sweep(n_layers=2, n_heads=2, steps=RUN_STEPS, seed=1)


def ingested(run_sweep, writable: bool = True):
    """A Neo4j store over the stand-in, holding ``run_sweep`` ingested through the backend."""
    return ingested_store(run_sweep, writable, batch_size=BATCH)


def call_name(call) -> str:
    """The call's statement name (its ``.cypher`` file), else what the GDS client called."""
    if call.query == "RETURN gds.version()":
        return "gds.version"
    return BY_TEXT.get(call.query) or procedure(call)


def test_analyze_on_neo4j_sends_every_value_as_a_parameter(run_sweep):
    store, driver = ingested(run_sweep)
    analyze(store, run_sweep.run_id, RUN_TAU)
    texts = {c.query for c in driver.calls()}
    for text in texts:
        assert text in BY_TEXT or text == "RETURN gds.version()" or CLIENT_CALL.fullmatch(text)
        assert run_sweep.run_id not in text and str(RUN_TAU) not in text
        assert not any(str(step) in text for step in RUN_STEPS[1:])

    results = lint({f"sent{i}": q for i, q in enumerate(sorted(texts))})
    assert not {name: diags for name, diags in results.items() if diags}
