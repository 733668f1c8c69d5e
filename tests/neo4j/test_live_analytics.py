"""Centralities computed in a live Neo4j with GDS equal the embedded definitions (igraph)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from circuitatlas.analytics.analyze import Analysis, AnalysisSettings, run_analysis
from circuitatlas.cli import main
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.centrality import DEGREE_METRICS, FLOAT_METRICS, METRICS, centralities
from circuitatlas.graph.network import Graph
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import gds, open_store
from circuitatlas.store.analysis_rows import (
    CHECKPOINT_ANALYSIS,
    COMPONENT_ANALYSIS,
    RUN_ANALYSIS,
    analysis_rows,
)
from circuitatlas.store.ingest import ingest_sweep
from circuitatlas.store.statements import statement

STEPS = [0, 100]
# (τ, measure): the default graph, the direct-effect one, one without any edge
SETTINGS = [(0.7, "total"), (0.9, "direct"), (-1.0, "total")]


@pytest.fixture
def run():
    return synthetic_sweep(
        n_layers=2, n_heads=2, steps=STEPS, seed=0, model=f"live-analytics-{uuid.uuid4()}"
    )


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == ["name", *METRICS]
    assert got.name.tolist() == expected.name.tolist()
    for metric in DEGREE_METRICS:
        assert got[metric].dtype == np.int64
        assert got[metric].tolist() == expected[metric].tolist(), metric
    for metric in FLOAT_METRICS:
        atol = 1e-9 if metric == "pagerank" else 1e-12
        np.testing.assert_allclose(got[metric], expected[metric], rtol=1e-9, atol=atol)


def test_gds_centralities_equal_the_definitions(neo4j_url, run, delete_runs, our_projections):
    delete_runs.append(run.run_id)
    with open_store(neo4j_url, writable=True) as store:
        ingest_sweep(store, run, progress=False)
        store.begin_analysis(run.run_id)
        for step in STEPS:
            for tau, measure in SETTINGS:
                graph = store.analysis_graph(run.run_id, step, tau, measure)
                expected = centralities(graph).sort_values("name").reset_index(drop=True)
                for write in (False, True):
                    got = store.centralities_of(run.run_id, step, graph, tau, measure, write)
                    _assert_same(got, expected)
            # the last write (τ without edges) is what the components hold, degrees as integers
            stored = store.components(run.run_id, step).sort_values("name")
            assert stored.in_degree.tolist() == [0] * len(stored)
            assert all(isinstance(v, int | np.integer) for v in stored.out_degree)
            np.testing.assert_allclose(stored.pagerank, 1 / len(stored))
        assert our_projections(store) == []


def test_an_error_drops_the_projection(neo4j_url, run, delete_runs, monkeypatch, our_projections):
    delete_runs.append(run.run_id)
    monkeypatch.setitem(gds.PAGERANK_CONFIG, "damping_factor", 1.5)  # GDS refuses it
    with open_store(neo4j_url, writable=True) as store:
        ingest_sweep(store, run, progress=False)
        graph = store.analysis_graph(run.run_id, 0, 0.7, "total")
        with pytest.raises(CircuitAtlasError, match="dampingFactor") as info:
            store.centralities_of(run.run_id, 0, graph, 0.7, "total", write=False)
        assert "\n" not in str(info.value)
        assert our_projections(store) == []


def test_analysis_write_back_and_its_marker(neo4j_url, run, delete_runs):
    delete_runs.append(run.run_id)
    with open_store(neo4j_url, writable=True) as store:
        ingest_sweep(store, run, progress=False)
        components = run.components[["step", "name"]].assign(role="gatherer")
        checkpoints = pd.DataFrame({"step": STEPS})
        for column in CHECKPOINT_ANALYSIS:
            checkpoints[column] = None
        checkpoints["tau"], checkpoints["measure"], checkpoints["n_edges"] = 0.7, "total", 9
        values = {
            "analysis_tau": 0.7,
            "analysis_measure": "total",
            "analysis_cost": "1/weight",
            "analysis_top_k": 3,
            "phase_boundaries": np.array([100]),
            "phase_labels": ["exploration", "refinement"],
            "reconfigurations": [],
            "analyzed_at": "2025-01-01T00:00:00+00:00",
        }
        store.write_analysis(analysis_rows(run.run_id, components, checkpoints, values))
        assert store.checkpoints(run.run_id).tau.tolist() == [0.7, 0.7]
        assert set(store.components(run.run_id).role) == {"gatherer"}
        stored = store.cypher(
            "MATCH (r:Run {run_id: $run_id}) RETURN r.phase_boundaries AS b, r.analysis_tau AS t",
            run_id=run.run_id,
        ).iloc[0]
        assert list(stored.b) == [100] and stored.t == 0.7
        store.begin_analysis(run.run_id)
        after = store.checkpoints(run.run_id)
        assert "tau" not in after or after.tau.isna().all()
        cleared = store.cypher(
            "MATCH (r:Run {run_id: $run_id}) RETURN r.analysis_tau AS t", run_id=run.run_id
        )
        assert cleared.t.isna().all()


# --- whole analyses on a real toy run and a random DAG of ≥ 300 components, against the
# embedded store holding the same sweep ---------------------------------------------------------
DAG_TAUS = "0.3,0.5,0.9"  # the τ sweep (the reference τ 0.7 is added)
# (τ, measure) of the analyses compared: the default one and a direct-effect one
ANALYSES = [(0.7, "total"), (0.9, "direct")]
VOLATILE = {"analyzed_at"}  # a time stamp: differs between any two analyses


@pytest.fixture(scope="module", params=["toy_run", "random_dag"])
def stores(request, both_stores):
    """(run, live Neo4j store, embedded store path) for the toy run and the random DAG."""
    run = request.getfixturevalue(request.param)
    return (run, *both_stores(run))


def test_the_random_dag_is_large_and_tied(random_dag):
    components = random_dag.components.groupby("step").size()
    assert (components >= 300).all()
    kept = random_dag.edges[random_dag.edges.similarity < 0.7]
    assert kept.groupby("step").size().min() > 1000
    assert kept.weight.duplicated().sum() > 1000  # exact ties in weight, so in strength and cost


def assert_same_analysis(got: Analysis, expected: Analysis) -> None:
    """Two backends' analyses agree: frames to 1e-9, top-k sets, phases, events, notes."""
    for frame in ("components", "checkpoints"):
        pd.testing.assert_frame_equal(
            getattr(got, frame), getattr(expected, frame), rtol=1e-9, atol=1e-12
        )
    assert got.roles == expected.roles and got.settings == expected.settings
    assert (got.phases.boundaries, got.phases.labels) == (
        expected.phases.boundaries,
        expected.phases.labels,
    )
    assert got.reconfigurations == expected.reconfigurations
    assert got.warnings == expected.warnings


RUN_QUERY = "MATCH (r:Run {run_id: $run_id}) RETURN " + ", ".join(
    f"r.{p} AS {p}" for p in RUN_ANALYSIS
)


def stored_analysis(store, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """What an analysis stored for the run: component and checkpoint frames (step, name and the
    analysis columns, in a fixed order) and the run's analysis properties."""
    components = store.components(run_id).reindex(columns=["step", "name", *COMPONENT_ANALYSIS])
    components = components.sort_values(["step", "name"], ignore_index=True)
    components["role"] = components["role"].astype("object").where(components["role"].notna())
    checkpoints = store.checkpoints(run_id).reindex(columns=["step", *CHECKPOINT_ANALYSIS])
    checkpoints = checkpoints.sort_values("step", ignore_index=True)
    [run] = store.cypher(RUN_QUERY, run_id=run_id).to_dict("records")
    plain = {k: list(v) if isinstance(v, list | np.ndarray) else v for k, v in run.items()}
    return components, checkpoints, plain


def assert_same_stored(store, embedded: Path, run_id: str) -> None:
    """The store holds the same analysis of ``run_id`` as the embedded store at ``embedded``
    (but for the time stamps)."""
    with open_store(embedded) as expected_store:
        expected = stored_analysis(expected_store, run_id)
    got = stored_analysis(store, run_id)
    for frame, other in zip(got[:2], expected[:2], strict=True):
        pd.testing.assert_frame_equal(
            frame, other, check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-12
        )
    assert {k: v for k, v in got[2].items() if k not in VOLATILE} == {
        k: v for k, v in expected[2].items() if k not in VOLATILE
    }


@pytest.mark.parametrize(("tau", "measure"), ANALYSES)
def test_analyze_in_write_and_stream_mode_equals_the_embedded_store(
    stores, tau, measure, our_projections
):
    run, store, embedded = stores
    settings = AnalysisSettings(tau=tau, measure=measure)
    with open_store(embedded, writable=True) as opened:
        expected = run_analysis(opened, run.run_id, settings, write=True)
    assert not expected.components.empty and expected.checkpoints.n_edges.gt(0).any()
    assert_same_analysis(run_analysis(store, run.run_id, settings, write=True), expected)
    assert_same_stored(store, embedded, run.run_id)
    before = stored_analysis(store, run.run_id)
    assert_same_analysis(run_analysis(store, run.run_id, settings, write=False), expected)
    after = stored_analysis(store, run.run_id)  # the stream wrote nothing
    for frame, other in zip(before[:2], after[:2], strict=True):
        pd.testing.assert_frame_equal(frame, other)
    assert before[2] == after[2]
    assert our_projections(store) == []


def cli(*args: str) -> Any:
    """``circuitatlas ARGS`` (the live Neo4j's credentials come from the environment)."""
    result = CliRunner().invoke(main, [*args])
    assert result.exit_code == 0, result.output
    return result


def test_cli_analyze_and_its_tau_sweep_equal_the_embedded_store(stores, our_projections):
    run, store, embedded = stores
    outputs = []
    for url in (store.url, str(embedded)):
        common = ["--store", url, "--run", run.run_id, "--format", "json"]
        analyzed = json.loads(cli("analyze", *common).stdout)
        swept = json.loads(cli("analyze", *common, "--tau-sweep", DAG_TAUS).stdout)
        outputs.append((pd.DataFrame(analyzed), pd.DataFrame(swept)))
    for got, expected in zip(*outputs, strict=True):
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-12)
    assert len(outputs[0][1]) == 4 and outputs[0][1].reference.sum() == 1
    assert_same_stored(store, embedded, run.run_id)
    assert our_projections(store) == []


def test_a_failure_mid_analysis_drops_the_projection_and_marks_the_analysis_incomplete(
    toy_run, both_stores, monkeypatch, our_projections
):
    store, embedded = both_stores(toy_run)
    settings = AnalysisSettings()
    run_analysis(store, toy_run.run_id, settings)  # a complete analysis is stored first
    assert store.checkpoints(toy_run.run_id).tau.eq(settings.tau).all()
    read_backs = []

    def failing(dialect: str, name: str) -> str:  # the third checkpoint's read-back fails
        if name == "gds_written":
            read_backs.append(name)
            if len(read_backs) == 3:
                return "RETURN 1 / 0 AS x"
        return statement(dialect, name)

    monkeypatch.setattr(gds, "statement", failing)
    with pytest.raises(CircuitAtlasError, match="/ by zero") as info:
        run_analysis(store, toy_run.run_id, settings)
    assert "\n" not in str(info.value) and len(read_backs) == 3
    assert our_projections(store) == []
    # what begin_analysis promises: no stored τ, no run settings, until an analysis completes
    _, checkpoints, run = stored_analysis(store, toy_run.run_id)
    assert checkpoints.tau.isna().all()
    assert all(value is None for value in run.values()), run
    monkeypatch.undo()
    with open_store(embedded, writable=True) as opened:
        expected = run_analysis(opened, toy_run.run_id, settings)
    assert_same_analysis(run_analysis(store, toy_run.run_id, settings), expected)
    assert_same_stored(store, embedded, toy_run.run_id)


def test_a_checkpoint_without_components_is_a_clear_error(toy_run, both_stores, our_projections):
    store, _ = both_stores(toy_run)
    graph = Graph.from_edges([], pd.DataFrame(columns=["source", "target", "weight"]))
    with pytest.raises(CircuitAtlasError, match="no component to project") as info:
        store.centralities_of(toy_run.run_id, 999_999, graph, 0.7, "total", write=False)
    assert "\n" not in str(info.value)
    assert our_projections(store) == []


@pytest.mark.parametrize(
    "query", ["RETURN gds.noSuchFunction() AS x", "CALL gds.noSuchProcedure.stream('g', {})"]
)
def test_the_servers_errors_for_an_unknown_gds_call_read_as_no_gds(neo4j_driver, query):
    """What :func:`gds.gds_missing` looks for is what this server says for a missing gds.*."""
    import neo4j

    with pytest.raises(neo4j.exceptions.Neo4jError) as info:
        neo4j_driver.execute_query(query, database_=os.environ.get("NEO4J_DATABASE"))
    assert gds.gds_missing(info.value)
