"""Centralities computed in a live Neo4j with GDS equal the embedded definitions (igraph)."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from circuitatlas.analytics.centrality import DEGREE_METRICS, FLOAT_METRICS, METRICS, centralities
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import gds, open_store
from circuitatlas.store.analysis_rows import CHECKPOINT_ANALYSIS, analysis_rows
from circuitatlas.store.ingest import ingest_sweep

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
