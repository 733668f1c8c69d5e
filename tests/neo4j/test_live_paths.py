"""Strongest paths computed in a live Neo4j with GDS equal the embedded store's (igraph)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from neo4j_recording import assert_same_paths

from circuitatlas.cli import main
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.paths import RANK_DECIMALS, SCORES, TIE_LIMIT, FoundPath, PathSettings
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.paths import PathResult, find_paths
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


# --- a real toy run, a random DAG of ≥ 300 components and a graph of exact ties, each against
# the embedded store holding the same sweep ---------------------------------------------------
SWEEP_KS = (1, 5)
VOLATILE = {"created_at"}  # a time stamp: differs between any two saves


@pytest.fixture(scope="module", params=["toy_run", "random_dag"])
def stores(request, both_stores):
    """(run, live Neo4j store, embedded store path) for the toy run and the random DAG."""
    run = request.getfixturevalue(request.param)
    return (run, *both_stores(run))


def embedded_paths(path: Path, run_id: str, settings: PathSettings, steps=None) -> PathResult:
    """``find_paths`` on the embedded store at ``path``."""
    with open_store(path) as embedded:
        return find_paths(embedded, run_id, steps, settings)


@pytest.mark.parametrize("tau", [None, 0.7], ids=["unfiltered", "tau"])
@pytest.mark.parametrize("measure", MEASURES)
def test_gds_dijkstra_and_yens_equal_the_embedded_store(stores, measure, tau, our_projections):
    run, store, embedded = stores
    for k in SWEEP_KS:
        settings = PathSettings(k=k, measure=measure, tau=tau)
        expected = embedded_paths(embedded, run.run_id, settings)
        got = find_paths(store, run.run_id, settings=settings)
        assert_same_but_for_large_ties(got, expected, embedded)
    assert our_projections(store) == []


def _distance(path: FoundPath) -> float:
    return round(path.distance, RANK_DECIMALS)


def assert_same_but_for_large_ties(got: PathResult, expected: PathResult, embedded: Path) -> None:
    """The same paths and strengths, except where more than ``TIE_LIMIT`` paths beyond k tie
    with the k-th (which of them come back is each backend's choice): there the paths stronger
    than the k-th are the same, and every rank has the same strength."""
    assert got.steps == expected.steps and got.notes == expected.notes
    np.testing.assert_allclose(got.paths.strength, expected.paths.strength, rtol=0, atol=1e-12)
    k = expected.settings.k
    for step in expected.steps:
        ours, theirs = got.of_step(step), expected.of_step(step)
        if [p.components for p in ours] == [p.components for p in theirs]:
            continue
        last = _distance(theirs[-1])
        stronger = [
            [p.components for p in found if _distance(p) < last] for found in (ours, theirs)
        ]
        assert stronger[0] == stronger[1], step
        wide = replace(expected.settings, k=k + TIE_LIMIT)
        tied = embedded_paths(embedded, expected.run_id, wide, [step]).of_step(step)
        assert len(tied) == k + TIE_LIMIT and _distance(tied[-1]) == last, step


def tied_run() -> Any:
    """A run of one checkpoint (2 layers × 3 heads) whose only direct edges (every similarity
    set here) give many input → logits paths of strength exactly 1/4, some of them through edges
    whose weight is clipped to 1, and one stronger path."""
    run = synthetic_sweep(
        n_layers=2, n_heads=3, steps=[0], seed=2, model=f"live-ties-{uuid.uuid4()}"
    )
    weights = {
        ("input", "logits"): 0.25,
        ("input", "a0.h0"): 0.5,
        ("a0.h0", "logits"): 0.5,
        ("input", "a0.h1"): 0.5,
        ("a0.h1", "logits"): 0.5,
        ("input", "a0.h2"): 0.25,
        ("a0.h2", "logits"): 1.0,
        ("a0.h0", "a1.h0"): 2.0,  # clipped: a0.h0→a1.h0→logits ties with a0.h0→logits
        ("a1.h0", "logits"): 0.5,
        ("input", "a1.h1"): 1.5,  # clipped: input→a1.h1→logits ties too
        ("a1.h1", "logits"): 0.25,
        ("input", "m0"): 0.9,  # the strongest path: input→m0→logits, 0.81
        ("m0", "logits"): 0.9,
        ("a0.h1", "m1"): 0.5,  # weaker: input→a0.h1→m1→logits, 0.125
        ("m1", "logits"): 0.5,
    }
    pairs = list(zip(run.edges.source, run.edges.target, strict=True))
    direct = np.array([weights.get(pair, 0.0) for pair in pairs])
    assert np.count_nonzero(direct) == len(weights)  # every edge above is a downstream pair
    run.edges["direct_weight"], run.edges["direct_similarity"] = direct, 1.0 - direct
    return run


TIES = [  # the paths of tied_run, strongest first, equal strengths by their names
    "input→m0→logits",
    "input→a0.h0→a1.h0→logits",
    "input→a0.h0→logits",
    "input→a0.h1→logits",
    "input→a0.h2→logits",
    "input→a1.h1→logits",
    "input→logits",
    "input→a0.h1→m1→logits",
]


@pytest.fixture(scope="module")
def ties(both_stores):
    """(run, live Neo4j store, embedded store path) of :func:`tied_run`."""
    run = tied_run()
    return (run, *both_stores(run))


@pytest.mark.parametrize("k", range(1, len(TIES) + 2))
def test_exact_ties_rank_alike_on_both_backends(ties, k, our_projections):
    """Every k, those that cut through the paths of strength 1/4 included: the same paths in
    the same order, equal strengths ranked by their component names."""
    run, store, embedded = ties
    settings = PathSettings(k=k)
    got = find_paths(store, run.run_id, settings=settings)
    assert_same_paths(got, embedded_paths(embedded, run.run_id, settings))
    assert got.paths.path.tolist() == TIES[:k]
    np.testing.assert_allclose(got.paths.strength[1:7], 0.25, rtol=0, atol=1e-15)
    assert our_projections(store) == []


def paths_cli(url: str, run_id: str, *args: Any) -> dict:
    """``circuitatlas paths --store URL --run RUN ARGS --format json``, parsed."""
    argv = ["paths", "--store", url, "--run", run_id, *map(str, args), "--format", "json"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored_circuits(store, run_id: str) -> pd.DataFrame:
    """The run's stored circuits with plain lists, without their time stamps, by step."""
    frame = store.circuits(run_id).drop(columns=[*VOLATILE])
    for column in frame.columns:
        frame[column] = [list(v) if isinstance(v, list | np.ndarray) else v for v in frame[column]]
    return frame.sort_values("step", ignore_index=True)[sorted(frame.columns)]


@pytest.mark.parametrize("runs", ["toy_run", "ties"])
def test_saved_circuits_read_back_equal_on_both_backends(
    request, both_stores, runs, our_projections
):
    """On runs whose ties at the k-th place are settled (a random DAG's hundreds of paths of
    strength 1 are not: they would make different, equally strong circuits)."""
    run = request.getfixturevalue(runs)
    run, store, embedded = run if isinstance(run, tuple) else (run, *both_stores(run))
    args = ("--all-steps", "-k", 3, "--save")
    got = paths_cli(store.url, run.run_id, *args)
    expected = paths_cli(str(embedded), run.run_id, *args)
    assert got == expected and len(got["circuits"]) == len(run.checkpoints)
    with open_store(embedded) as opened:
        saved = stored_circuits(opened, run.run_id)
    assert len(saved) == len(run.checkpoints)
    pd.testing.assert_frame_equal(stored_circuits(store, run.run_id), saved)
    assert our_projections(store) == []


def test_validate_on_neo4j_equals_the_embedded_store(toy_run, both_stores):
    """Faithfulness reruns the toy model from its checkpoint directory: the same circuits, the
    same values, saved alike."""
    store, embedded = both_stores(toy_run)
    args = ("--all-steps", "-k", 2, "--validate", "--save", "--device", "cpu")
    got = paths_cli(store.url, toy_run.run_id, *args)
    expected = paths_cli(str(embedded), toy_run.run_id, *args)
    assert got == expected
    values = [c["faithfulness"] for c in got["circuits"]]
    assert len(values) == len(toy_run.checkpoints) and all(np.isfinite(values))
    with open_store(embedded) as opened:
        saved = stored_circuits(opened, toy_run.run_id)
    pd.testing.assert_frame_equal(stored_circuits(store, toy_run.run_id), saved)
    assert saved[saved.k == 2].faithfulness.notna().sum() == len(toy_run.checkpoints)


# --- paths on task-metric scores: shares computed once, in Python, for both backends ----------
@pytest.mark.parametrize("measure", SCORES)
def test_gds_paths_on_scores_equal_the_embedded_store(
    toy_run, both_stores, measure, our_projections
):
    """The toy run was swept with both scores (``--edge-scores auto``)."""
    store, embedded = both_stores(toy_run)
    for k in SWEEP_KS:
        settings = PathSettings(k=k, measure=measure)
        got = find_paths(store, toy_run.run_id, settings=settings)
        assert len(got.paths) == k * len(toy_run.checkpoints)
        assert_same_paths(got, embedded_paths(embedded, toy_run.run_id, settings))
    assert our_projections(store) == []


def tied_scores_run() -> Any:
    """A run of one checkpoint (2 layers × 3 heads) whose patch scores (the others null) give
    three input → logits paths of share 1/4 each and two of 1/8 each."""
    run = synthetic_sweep(
        n_layers=2, n_heads=3, steps=[0], seed=2, model=f"live-score-ties-{uuid.uuid4()}"
    )
    scores = {
        ("input", "a0.h0"): -0.3,  # the only edge into a0.h0: share 1
        ("input", "a0.h1"): 0.2,
        ("input", "a0.h2"): -5.0,
        ("input", "a1.h0"): -1.0,  # a1.h0 reads input and a0.h0 alike: 1/2 each
        ("a0.h0", "a1.h0"): 1.0,
        ("a0.h0", "logits"): -2.0,  # four edges into logits of 1/4 each
        ("a0.h1", "logits"): 2.0,
        ("a0.h2", "logits"): -2.0,
        ("a1.h0", "logits"): -2.0,
        ("input", "logits"): 0.0,  # a zero score: no edge
    }
    pairs = list(zip(run.edges.source, run.edges.target, strict=True))
    run.edges["patch_effect"] = [scores.get(pair, np.nan) for pair in pairs]
    return run


SCORE_TIES = [
    "input→a0.h0→logits",
    "input→a0.h1→logits",
    "input→a0.h2→logits",
    "input→a0.h0→a1.h0→logits",
    "input→a1.h0→logits",
]


@pytest.fixture(scope="module")
def score_ties(both_stores):
    run = tied_scores_run()
    return (run, *both_stores(run))


@pytest.mark.parametrize("k", range(1, len(SCORE_TIES) + 2))
def test_exact_ties_of_shares_rank_alike_on_both_backends(score_ties, k, our_projections):
    run, store, embedded = score_ties
    settings = PathSettings(k=k, measure="patch")
    got = find_paths(store, run.run_id, settings=settings)
    assert_same_paths(got, embedded_paths(embedded, run.run_id, settings))
    assert got.paths.path.tolist() == SCORE_TIES[:k]
    expected = [0.25, 0.25, 0.25, 0.125, 0.125][:k]
    np.testing.assert_allclose(got.paths.strength, expected, rtol=0, atol=1e-15)
    assert our_projections(store) == []


def test_saved_score_circuits_read_back_equal_on_both_backends(toy_run, both_stores):
    store, embedded = both_stores(toy_run)
    args = ("--all-steps", "-k", 3, "--scores", "eap-ig", "--save")
    got = paths_cli(store.url, toy_run.run_id, *args)
    assert got == paths_cli(str(embedded), toy_run.run_id, *args)
    with open_store(embedded) as opened:
        saved = stored_circuits(opened, toy_run.run_id)
    pd.testing.assert_frame_equal(stored_circuits(store, toy_run.run_id), saved)
    assert (saved.measure == "eap_ig").sum() == len(toy_run.checkpoints)


def test_a_run_without_the_scores_is_one_line_on_neo4j(score_ties):
    run, store, _ = score_ties  # patch scores only
    argv = ["paths", "--store", store.url, "--run", run.run_id, "--step", 0, "--scores", "eap-ig"]
    result = CliRunner().invoke(main, [str(a) for a in argv])
    assert result.exit_code == 1
    assert result.output == (
        f"error: run {run.run_id} has no eap_ig scores; re-ingest with --edge-scores eap-ig|both\n"
    )
