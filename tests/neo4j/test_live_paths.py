"""Strongest paths computed in a live Neo4j with GDS equal the embedded store's (igraph)."""

from __future__ import annotations

import uuid

import pytest
from neo4j_recording import assert_same_paths

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.paths import PathSettings, find_paths
from circuitatlas.store import gds, open_store
from circuitatlas.store.base import MEASURES
from circuitatlas.store.ingest import ingest_sweep
from circuitatlas.store.statements import statement

STEPS = [0, 100, 200, 300]
TAU = 0.6  # direct effects: some checkpoints have paths at it, some none
KS = (1, 5)


@pytest.fixture
def run():
    return synthetic_sweep(
        n_layers=3, n_heads=2, steps=STEPS, seed=1, model=f"live-paths-{uuid.uuid4()}"
    )


def test_gds_paths_equal_the_embedded_paths(neo4j_url, run, delete_runs, tmp_path, our_projections):
    delete_runs.append(run.run_id)
    with (
        open_store(neo4j_url, writable=True) as store,
        open_store(tmp_path / "x.lbdb", writable=True) as embedded,
    ):
        ingest_sweep(store, run, progress=False)
        ingest_sweep(embedded, run, progress=False)
        for measure in MEASURES:
            for tau in (None, TAU):
                for k in KS:
                    settings = PathSettings(k=k, measure=measure, tau=tau)
                    got = find_paths(store, run.run_id, settings=settings)
                    assert_same_paths(got, find_paths(embedded, run.run_id, settings=settings))
        # no relationship at all (no direct similarity is below 0.5): no path, no algorithm call
        settings = PathSettings(measure="direct", tau=0.5)
        got = find_paths(store, run.run_id, settings=settings)
        assert got.paths.empty
        assert_same_paths(got, find_paths(embedded, run.run_id, settings=settings))
        assert our_projections(store) == []


@pytest.mark.parametrize("k", KS)
def test_an_error_in_the_path_call_drops_the_projection(
    neo4j_url, run, delete_runs, monkeypatch, k, our_projections
):
    delete_runs.append(run.run_id)

    def failing(dialect: str, name: str) -> str:  # the path statement divides by zero
        return "RETURN 1 / 0 AS x" if name.startswith("gds_path_") else statement(dialect, name)

    monkeypatch.setattr(gds, "statement", failing)
    with open_store(neo4j_url, writable=True) as store:
        ingest_sweep(store, run, progress=False)
        with pytest.raises(CircuitAtlasError, match="/ by zero") as info:
            store.strongest_paths(run.run_id, STEPS[0], PathSettings(k=k))
        assert "\n" not in str(info.value)
        assert our_projections(store) == []
