"""Paths on task-metric scores: each edge's share of its target's total absolute score, and the
strengths of paths built from the shares."""

import math
from itertools import pairwise

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.paths import (
    CheckpointEdges,
    PathSettings,
    edge_distances,
    k_strongest,
    score_shares,
)


def test_shares_of_a_hand_computed_graph():
    targets = np.array([0, 0, 1, 1, 1, 2, 2, 0])
    scores = np.array([-1.0, 3.0, np.nan, 0.0, 2.0, 0.0, np.nan, 0.0])
    shares = score_shares(targets, scores)
    # into 0: |−1| + |3| + |0| = 4; into 1: a null (0), 0 and 2; into 2: a zero sum
    assert shares.tolist() == [0.25, 0.75, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    sums = np.bincount(targets, weights=shares)
    assert sums.tolist() == [1.0, 1.0, 0.0]


def test_shares_sum_to_one_per_target_and_ignore_the_edge_order():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 7, 300)
    scores = rng.normal(size=300) * 10.0 ** rng.integers(-8, 3, 300)
    scores[rng.choice(300, 30, replace=False)] = np.nan
    shares = score_shares(targets, scores)
    assert (shares >= 0).all() and (shares <= 1).all()
    np.testing.assert_allclose(np.bincount(targets, weights=shares), 1.0, rtol=0, atol=1e-12)
    assert (shares[np.isnan(scores)] == 0).all()
    order = rng.permutation(300)
    assert score_shares(targets[order], scores[order]).tolist() == shares[order].tolist()


def test_no_edge_and_no_score():
    assert score_shares(np.array([], dtype=np.int64), np.array([])).tolist() == []
    assert score_shares(np.array([3, 3]), np.array([np.nan, np.nan])).tolist() == [0.0, 0.0]


def random_dag(seed: int, n: int = 8) -> tuple[list[str], pd.DataFrame]:
    """Components ``input, c1 … c{n-2}, logits`` in order; every forward pair an edge with a
    random signed score (some null, some zero); every component reads ``input``."""
    rng = np.random.default_rng(seed)
    names = ["input", *(f"c{i}" for i in range(1, n - 1)), "logits"]
    rows = []
    for i in range(n):
        for j in range(i + 1, n):
            if i > 0 and rng.random() < 0.3:
                continue
            score = rng.normal()
            if i > 0 and rng.random() < 0.15:
                score = rng.choice([0.0, np.nan])
            rows.append((names[i], names[j], score))
    return names, pd.DataFrame(rows, columns=["source", "target", "score"])


def from_scores(names: list[str], edges: pd.DataFrame) -> CheckpointEdges:
    return CheckpointEdges.from_scores(pd.DataFrame({"id": names, "name": names}), edges)


@pytest.mark.parametrize("seed", range(5))
def test_strengths_of_every_input_logits_path_sum_to_one(seed):
    names, edges = random_dag(seed)
    checkpoint = from_scores(names, edges)
    graph = checkpoint.graph(None)
    assert (graph.weights > 0).all()  # shares of 0 (null and zero scores) are left out
    found = k_strongest(graph, "input", "logits", 10_000)
    scored = edges[edges.score.abs() > 0]  # null and zero scores: no edge
    g = nx.DiGraph(list(zip(scored.source, scored.target, strict=True)))
    every = {tuple(p) for p in nx.all_simple_paths(g, "input", "logits")}
    assert {p.components for p in found} == every and len(found) == len(every) > 3
    assert math.fsum(p.strength for p in found) == pytest.approx(1.0, abs=1e-12)
    # each strength is the product of the paths' shares, computed here by hand
    magnitudes = edges.assign(m=edges.score.abs().fillna(0.0))
    totals = magnitudes.groupby("target")["m"].sum()
    share = {(s, t): m / totals[t] for s, t, m in magnitudes[["source", "target", "m"]].values}
    for p in found:
        expected = math.prod(share[a, b] for a, b in pairwise(p.components))
        assert p.strength == pytest.approx(expected, rel=1e-12)


def test_a_chain_that_carries_everything_has_strength_one_whatever_its_length():
    names = ["input", "a", "b", "c", "logits"]
    chain = list(pairwise(names))
    edges = pd.DataFrame(
        [(s, t, -0.01 * (i + 1)) for i, (s, t) in enumerate(chain)]
        + [("input", "logits", 0.0), ("input", "c", np.nan)],
        columns=["source", "target", "score"],
    )
    [path] = k_strongest(from_scores(names, edges).graph(None), "input", "logits", 5)
    assert path.text == "input→a→b→c→logits" and path.strength == 1.0 and path.distance == 0.0


def test_distances_by_name_are_minus_log_of_the_positive_shares():
    names = ["input", "a", "logits"]
    edges = pd.DataFrame(
        [("input", "a", 2.0), ("input", "logits", -1.0), ("a", "logits", 3.0), ("a", "a", 0.0)],
        columns=["source", "target", "score"],
    )
    edges = edges[edges.source != edges.target]
    distances = from_scores(names, edges).distances_by_name()
    assert distances == {
        "input": {"a": 0.0, "logits": float(edge_distances(np.array([0.25]))[0])},
        "a": {"logits": float(edge_distances(np.array([0.75]))[0])},
    }


def test_score_settings():
    PathSettings(measure="patch").check()
    PathSettings(measure="eap_ig", k=3).check()
    assert PathSettings(measure="patch").scored and not PathSettings().scored
    with pytest.raises(CircuitAtlasError, match=r"--tau 0\.7: a threshold on similarities"):
        PathSettings(measure="patch", tau=0.7).check()
    with pytest.raises(CircuitAtlasError, match="--edges bogus: give one of total, direct"):
        PathSettings(measure="bogus").check()
