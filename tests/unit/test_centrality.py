"""Centralities and weight statistics: the GDS manual's published examples, networkx on the same
definitions, hand-computed direction conventions, and the distribution statistics."""

import math

import numpy as np
import pandas as pd
import pytest
from gds_doc_graphs import BETWEENNESS, CLOSENESS, DEGREE, PAGERANK, DocGraph
from networkx_reference import networkx_centralities

from circuitatlas.graph.centrality import DAMPING, METRICS, centralities
from circuitatlas.graph.network import Graph
from circuitatlas.graph.statistics import gini, graph_stats, hill_tail_index

EXACT = {"rtol": 1e-9, "atol": 1e-9}


def make_graph(names, edges) -> Graph:
    frame = pd.DataFrame(list(edges), columns=["source", "target", "weight"], dtype=object)
    frame["weight"] = frame["weight"].astype(np.float64)
    return Graph.from_edges(list(names), frame)


def doc_graph(doc: DocGraph, weight=None) -> Graph:
    """The page's graph; ``weight`` maps a published weight (None: no property) to ours."""
    weight = weight or (lambda w: 1.0 if w is None else w)
    return make_graph(doc.nodes, [(s, t, weight(w)) for s, t, w in doc.edges])


def column(frame: pd.DataFrame, metric: str) -> dict[str, float]:
    return dict(zip(frame["name"], frame[metric], strict=True))


def assert_scores(frame: pd.DataFrame, metric: str, expected: dict[str, float], **tol) -> None:
    ours = column(frame, metric)
    names = sorted(expected)
    np.testing.assert_allclose(
        [ours[n] for n in names], [expected[n] for n in names], **(tol or EXACT), err_msg=metric
    )


# --- the GDS manual's examples ---------------------------------------------------------------


def test_degree_matches_gds_followers_and_followees():
    # The page projects FOLLOWS REVERSED. Its default (NATURAL) run therefore counts relationships
    # pointing at a node in the CREATE direction: our in_degree; its REVERSE run reverses the
    # reversed projection: our out_degree. Unweighted degree ignores weights, so every edge gets
    # weight 1 here (ours requires positive weights for its shortest paths and PageRank).
    frame = centralities(doc_graph(DEGREE, weight=lambda w: 1.0))
    assert_scores(frame, "in_degree", DEGREE.tables["followers"].scores)
    assert_scores(frame, "out_degree", DEGREE.tables["followees"].scores)


def test_weighted_degree_matches_gds_weighted_followers():
    # GDS ignores non-positive weights; our graph at τ never holds an edge of non-positive weight
    # in the first place, so the Alice→Bridget edge (score −2) is left out.
    table = DEGREE.tables["weighted_followers"]
    edges = [(s, t, w) for s, t, w in DEGREE.edges if w > 0]
    assert len(edges) == len(DEGREE.edges) - 1
    frame = centralities(make_graph(DEGREE.nodes, edges))
    assert_scores(frame, "in_strength", table.scores)


def test_betweenness_matches_gds_unweighted():
    # Unweighted: every weight 1, so every cost 1/w is 1 and paths are counted by hops. Dan and
    # Eve lie on the two tied Carol→Frank paths and get half of each pair through them.
    frame = centralities(doc_graph(BETWEENNESS, weight=lambda w: 1.0))
    assert_scores(frame, "betweenness", BETWEENNESS.tables["unweighted"].scores)


def test_betweenness_matches_gds_weighted():
    # GDS uses the weight itself as the length of a relationship; ours uses the cost 1/weight.
    # Feeding weight 1/w makes our cost equal to their weight w, i.e. the same shortest paths:
    # Carol→Eve→Frank (1.3 + 0.5) beats Carol→Dan→Frank (1 + 1), so Dan drops to 0.
    frame = centralities(doc_graph(BETWEENNESS, weight=lambda w: 1.0 / w))
    assert_scores(frame, "betweenness", BETWEENNESS.tables["weighted"].scores)


def test_betweenness_on_both_directions_is_twice_gds_undirected():
    # With every relationship present both ways, our directed betweenness counts the ordered
    # pairs (s, t) and (t, s) separately, whose shortest paths are each other's reverses; GDS's
    # undirected score counts each unordered pair once. Carol gets 0.5 from Dan–Eve's two ties.
    both = [(s, t, 1.0) for s, t, _ in BETWEENNESS.edges] + [
        (t, s, 1.0) for s, t, _ in BETWEENNESS.edges
    ]
    frame = centralities(make_graph(BETWEENNESS.nodes, both))
    doubled = {n: 2.0 * v for n, v in BETWEENNESS.tables["undirected"].scores.items()}
    assert_scores(frame, "betweenness", doubled)


def test_closeness_matches_gds_default():
    # GDS's default (useWassermanFaust false) on a directed graph: (#nodes reaching v) / (sum of
    # their hop distances to v), our definition exactly.
    frame = centralities(doc_graph(CLOSENESS))
    assert_scores(frame, "closeness", CLOSENESS.tables["default"].scores)


def pagerank_matrix(doc: DocGraph, weighted: bool) -> np.ndarray:
    """Pᵀ: column j holds node j's out-edge weights over its out-strength (column-stochastic)."""
    index = {name: i for i, name in enumerate(doc.nodes)}
    p = np.zeros((len(doc.nodes), len(doc.nodes)))
    for s, t, w in doc.edges:
        p[index[s], index[t]] += w if weighted else 1.0
    assert (p.sum(axis=1) > 0).all()  # no dangling page: nothing to redistribute
    return (p / p.sum(axis=1, keepdims=True)).T


PAGERANK_CASES = [("unweighted", False), ("weighted", True)]


@pytest.mark.parametrize(("table", "weighted"), PAGERANK_CASES)
def test_pagerank_matches_gds_normalized_within_twenty_iterations(table, weighted):
    # Same definition once converged: GDS's scores solve x = (1−d)·1 + d·Pᵀx, ours solve
    # x = ((1−d)/n)·1 + d·Pᵀx (every page here has an out-link, so no dangling mass to spread).
    # Both are x = c·1 + d·Pᵀx; since d·Pᵀ has spectral radius ≤ d < 1 the solution is unique and
    # linear in c, so GDS's is n times ours, and summing its equation (Pᵀ column-stochastic) gives
    # Σx = n(1−d) + dΣx, i.e. Σx = n. Normalizing GDS's converged scores to sum 1 gives ours.
    #
    # But GDS stopped at maxIterations = 20 without meeting its tolerance 1e-7 (ranIterations 20),
    # so its scores are the 20th iterate x₂₀ = (1−d)·Σ_{j<20} dʲ(Pᵀ)ʲ·1 (the next test checks
    # this exactly). Unrolling our equation 20 times gives ours = (1−d²⁰)·a + d²⁰·(Pᵀ)²⁰·ours,
    # where a = x₂₀ normalized to sum 1. Hence a − ours = d²⁰·(a − (Pᵀ)²⁰·ours), d²⁰ times a
    # difference of two probability vectors: every entry is within d²⁰ = 0.85²⁰ ≈ 0.039. That
    # a-priori bound is the tolerance (the actual gap on this graph is at most about 2e-3).
    published = PAGERANK.tables[table].scores
    weight = None if weighted else (lambda w: 1.0)
    frame = centralities(doc_graph(PAGERANK, weight=weight))
    total = sum(published.values())
    normalized = {name: score / total for name, score in published.items()}
    assert_scores(frame, "pagerank", normalized, rtol=0.0, atol=DAMPING**20)
    assert frame["pagerank"].sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("table", "weighted"), PAGERANK_CASES)
def test_pagerank_unrolled_twenty_times_reproduces_gds_exactly(table, weighted):
    # The exact form of the previous bound: with x = ours (sum 1, n pages), GDS's 20th iterate is
    # x₂₀ = n·(x − d²⁰·(Pᵀ)²⁰·x). Reproducing the published unnormalized scores to 1e-9 checks
    # our converged PageRank against them without any truncation slack, and confirms that the
    # published tables are GDS's iteration stopped after exactly 20 steps.
    published = PAGERANK.tables[table].scores
    weight = None if weighted else (lambda w: 1.0)
    frame = centralities(doc_graph(PAGERANK, weight=weight))
    x = frame["pagerank"].to_numpy()
    transition = pagerank_matrix(PAGERANK, weighted)
    pushed = x.copy()
    for _ in range(20):
        pushed = transition @ pushed
    iterate = len(x) * (x - DAMPING**20 * pushed)
    assert_scores(frame.assign(iterate=iterate), "iterate", published)


# --- networkx on the same definitions --------------------------------------------------------


def assert_matches_networkx(graph: Graph) -> None:
    ours = centralities(graph)
    theirs = networkx_centralities(graph)
    assert list(ours.columns) == ["name", *METRICS]
    assert ours["name"].tolist() == graph.names
    for metric in ("in_degree", "out_degree"):
        assert ours[metric].tolist() == theirs[metric].tolist(), metric
    for metric in ("in_strength", "out_strength", "betweenness", "closeness", "pagerank"):
        np.testing.assert_allclose(ours[metric], theirs[metric], **EXACT, err_msg=metric)


DOC_GRAPHS = {
    "degree_positive_weights": make_graph(
        DEGREE.nodes, [(s, t, w) for s, t, w in DEGREE.edges if w > 0]
    ),
    "degree_unit_weights": doc_graph(DEGREE, weight=lambda w: 1.0),
    "betweenness_weights": doc_graph(BETWEENNESS),
    "betweenness_inverse_weights": doc_graph(BETWEENNESS, weight=lambda w: 1.0 / w),
    "closeness": doc_graph(CLOSENESS),
    "pagerank_weights": doc_graph(PAGERANK),
    "pagerank_unit_weights": doc_graph(PAGERANK, weight=lambda w: 1.0),
}


@pytest.mark.parametrize("key", list(DOC_GRAPHS))
def test_doc_graphs_match_networkx(key):
    assert_matches_networkx(DOC_GRAPHS[key])


SMALL_DAGS = {
    "chain": (["a", "b", "c", "d"], [("a", "b", 1.0), ("b", "c", 0.5), ("c", "d", 2.0)]),
    # two shortest s→t paths of equal hop count and equal cost (0.5 + 2 = 2 + 0.5, exact floats)
    "diamond_tied": (
        ["s", "a", "b", "t"],
        [("s", "a", 2.0), ("s", "b", 0.5), ("a", "t", 0.5), ("b", "t", 2.0)],
    ),
    "diamond_unit": (
        ["s", "a", "b", "t"],
        [("s", "a", 1.0), ("s", "b", 1.0), ("a", "t", 1.0), ("b", "t", 1.0)],
    ),
    # "lonely" has no edge; "root" is reached by nothing
    "isolated_and_unreached": (
        ["lonely", "x", "root", "y", "z"],
        [("root", "x", 0.3), ("x", "y", 0.7), ("root", "y", 0.2), ("y", "z", 1.0)],
    ),
    # three dangling nodes (no out-edge) whose PageRank mass is spread uniformly
    "dangling": (
        ["a", "b", "c", "d", "e", "f"],
        [("a", "b", 0.4), ("a", "c", 0.9), ("b", "d", 0.1), ("b", "e", 0.6), ("a", "f", 0.2)],
    ),
    # weights above 1: the direct a→d edge (cost 1/1.5) loses to a→b→c→d (1/4 + 1/8 + 1/5)
    "heavy_weights": (
        ["a", "b", "c", "d", "e"],
        [
            ("a", "b", 4.0),
            ("b", "c", 8.0),
            ("c", "d", 5.0),
            ("a", "d", 1.5),
            ("d", "e", 3.0),
            ("b", "e", 1.2),
        ],
    ),
}


@pytest.mark.parametrize("key", list(SMALL_DAGS))
def test_small_dags_match_networkx(key):
    names, edges = SMALL_DAGS[key]
    assert_matches_networkx(make_graph(names, edges))


def random_dag(seed: int, n: int = 30, p: float = 0.15) -> Graph:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)  # topological order, unrelated to the name order
    names = [f"n{i:02d}" for i in range(n)]
    edges = [
        (names[order[i]], names[order[j]], float(rng.uniform(0.05, 2.0)))
        for i in range(n)
        for j in range(i + 1, n)
        if rng.random() < p
    ]
    return make_graph(names, edges)


@pytest.mark.parametrize("seed", range(6))
def test_random_dags_match_networkx(seed):
    graph = random_dag(seed)
    assert graph.weights.size > 30
    assert_matches_networkx(graph)


def test_graph_without_edges_is_all_zero_but_uniform_pagerank():
    graph = make_graph(["a", "b", "c", "d"], [])
    frame = centralities(graph)
    assert_matches_networkx(graph)
    for metric in METRICS:
        expected = 0.25 if metric == "pagerank" else 0.0
        assert frame[metric].tolist() == [expected] * 4, metric


def test_graph_without_nodes_gives_an_empty_frame():
    frame = centralities(make_graph([], []))
    assert list(frame.columns) == ["name", *METRICS]
    assert frame.empty


# --- direction conventions, by hand ----------------------------------------------------------


def test_chain_pins_every_direction_convention():
    frame = centralities(make_graph(["a", "b", "c"], [("a", "b", 2.0), ("b", "c", 3.0)]))
    assert column(frame, "in_degree") == {"a": 0, "b": 1, "c": 1}
    assert column(frame, "out_degree") == {"a": 1, "b": 1, "c": 0}
    assert column(frame, "in_strength") == {"a": 0.0, "b": 2.0, "c": 3.0}
    assert column(frame, "out_strength") == {"a": 2.0, "b": 3.0, "c": 0.0}
    # only a→c passes through anything
    assert column(frame, "betweenness") == {"a": 0.0, "b": 1.0, "c": 0.0}
    # incoming distances: c is reached by b (1 hop) and a (2 hops); b by a; a by nothing
    assert_scores(frame, "closeness", {"a": 0.0, "b": 1.0, "c": 2.0 / 3.0})
    # x_a = t, x_b = t + d·x_a, x_c = t + d·x_b with t = (1−d)/3 + d·x_c/3 (c is dangling);
    # solving: x ∝ (1, 1+d, 1+d+d²), normalized by 3 + 2d + d²
    d = DAMPING
    norm = 3 + 2 * d + d * d
    expected = {"a": 1 / norm, "b": (1 + d) / norm, "c": (1 + d + d * d) / norm}
    assert_scores(frame, "pagerank", expected)


def test_betweenness_cost_is_inverse_weight():
    # a→b→c with strong edges (cost 1/4 + 1/4) is shorter than the weak direct a→c (cost 1);
    # with the weight as the cost it would be the other way round and b would score 0
    frame = centralities(
        make_graph(["a", "b", "c"], [("a", "b", 4.0), ("b", "c", 4.0), ("a", "c", 1.0)])
    )
    assert column(frame, "betweenness") == {"a": 0.0, "b": 1.0, "c": 0.0}


def test_ties_are_split():
    names, edges = SMALL_DAGS["diamond_tied"]
    frame = centralities(make_graph(names, edges))
    assert column(frame, "betweenness") == {"s": 0.0, "a": 0.5, "b": 0.5, "t": 0.0}


# --- weight statistics -----------------------------------------------------------------------


def test_graph_stats_by_hand():
    # d and e have no edge: they are not counted in |V|
    graph = make_graph(
        ["a", "b", "c", "d", "e"], [("a", "b", 1.0), ("b", "c", 2.0), ("a", "c", 3.0)]
    )
    stats = graph_stats(graph)
    assert stats["n_nodes"] == 3
    assert stats["n_edges"] == 3
    assert stats["density"] == pytest.approx(3 / (3 * 2))
    assert stats["mean_weight"] == pytest.approx(2.0)
    # Gini of (1, 2, 3): Σ|xi − xj| over ordered pairs = 8, over 2·n²·mean = 36
    assert stats["weight_gini"] == pytest.approx(8 / 36)
    # three weights: k = 2 top values (3, 2) over the threshold 1
    assert stats["weight_tail_index"] == pytest.approx(1 / ((math.log(3) + math.log(2)) / 2))


def test_graph_stats_of_one_edge_and_of_none():
    one = graph_stats(make_graph(["a", "b", "c"], [("a", "b", 0.5)]))
    assert one == {
        "n_nodes": 2,
        "n_edges": 1,
        "density": 0.5,
        "mean_weight": 0.5,
        "weight_gini": 0.0,
        "weight_tail_index": None,
    }
    none = graph_stats(make_graph(["a", "b"], []))
    assert none == {
        "n_nodes": 0,
        "n_edges": 0,
        "density": 0.0,
        "mean_weight": 0.0,
        "weight_gini": 0.0,
        "weight_tail_index": None,
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 1, 1, 1], 0.0),
        ([0, 0, 0, 1], 0.75),
        ([1, 0, 0, 0], 0.75),  # order does not matter
        ([1, 2, 3, 4], 20 / (2 * 16 * 2.5)),  # Σ|xi − xj| / (2·n²·mean)
        ([5.0], 0.0),
        ([], 0.0),
        ([0, 0], 0.0),
    ],
)
def test_gini_by_hand(values, expected):
    assert gini(np.asarray(values, dtype=np.float64)) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # n = 4: k = 2 largest (8, 4) over the threshold 2: logs ln 4, ln 2, mean 1.5·ln 2
        ([1, 2, 4, 8], 1 / (1.5 * math.log(2))),
        # n = 9: k = 3 largest e⁸, e⁷, e⁶ over e⁵: logs 3, 2, 1, mean 2
        ([math.exp(i) for i in range(9)], 0.5),
        # n = 10: k = ⌈√10⌉ = 4 largest 2¹⁰…2⁷ over 2⁶: logs (4+3+2+1)·ln 2 / 4
        ([2.0**i for i in range(1, 11)], 1 / (2.5 * math.log(2))),
    ],
)
def test_hill_tail_index_by_hand(values, expected):
    assert hill_tail_index(np.asarray(values, dtype=np.float64)) == pytest.approx(expected)


@pytest.mark.parametrize(
    "values",
    [
        [],
        [3.0],
        [3.0, 1.0],  # fewer than 3 values
        [5.0, 5.0, 5.0, 1.0],  # the top values equal the threshold: no tail to measure
        [2.0, 2.0, 2.0],
        [3.0, 2.0, 0.0, 0.0],  # threshold 0
    ],
)
def test_hill_tail_index_undefined(values):
    assert hill_tail_index(np.asarray(values, dtype=np.float64)) is None
