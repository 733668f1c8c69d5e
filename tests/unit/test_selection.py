"""Circuit selection on faithfulness oracles built from numpy (no model).

Checked by brute force on small cases: the result reaches the target, no single removal keeps it
(1-minimal), and for a monotone oracle the prefix found is the shortest one of the ranking that
reaches the target; ties and NaN scores rank deterministically; the oracle is called in a few
batches, not once per edge.
"""

import itertools
import math

import numpy as np
import pytest

from circuitatlas.graph import selection
from circuitatlas.graph.selection import is_one_minimal, rank_edges, select_circuit


class Oracle:
    """A faithfulness callable ``[C, E]`` booleans → ``[C]`` that counts its calls and rows."""

    def __init__(self, value, n: int = 0, batched=None):
        self.value, self.n, self.batched = value, n, batched
        self.calls, self.rows = 0, 0

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        assert masks.dtype == bool and masks.ndim == 2
        self.calls += 1
        self.rows += len(masks)
        if self.batched is not None:
            return self.batched(masks)
        return np.array([self.value(row) for row in masks], dtype=float)

    def of(self, edges) -> float:
        return self.value(to_mask(edges, self.n))


def to_mask(edges, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[list(edges)] = True
    return mask


def additive(weights: np.ndarray) -> Oracle:
    """Faithfulness = sum of the chosen edges' weights ÷ the total (monotone for weights ≥ 0)."""
    total = weights.sum()
    return Oracle(
        lambda row: float(weights[row].sum() / total),
        len(weights),
        lambda masks: masks @ weights / total,
    )


def redundant_or(n: int, a: int, b: int) -> Oracle:
    """Faithful (1) as soon as edge ``a`` or edge ``b`` is in; nothing else matters."""
    return Oracle(lambda row: float(row[a] or row[b]), n)


def non_monotone(weights: np.ndarray, inhibitor: int) -> Oracle:
    """Additive, but edge ``inhibitor`` cancels the half of the rest when present."""
    total = weights.sum()

    def value(row):
        got = weights[row].sum()
        return float((got * 0.5 if row[inhibitor] else got) / total)

    return Oracle(value, len(weights))


def brute_one_minimal(edges, oracle: Oracle, target: float) -> bool:
    return all(oracle.of([e for e in edges if e != drop]) < target for drop in edges)


def shortest_prefix(scores: np.ndarray, oracle: Oracle, target: float) -> int | None:
    """Every prefix of the ranking scored, the shortest reaching ``target``."""
    ranking = rank_edges(scores)
    prefixes = np.tril(np.ones((len(ranking), len(ranking)), dtype=bool))[:, np.argsort(ranking)]
    hits = np.flatnonzero(oracle.batched(prefixes) >= target)
    return int(hits[0]) + 1 if len(hits) else None


def check_selected(result, scores, oracle: Oracle, target: float) -> None:
    """The common checks: reached, in rank order, 1-minimal (both ways), value as reported."""
    n = len(scores)
    assert result.reached
    assert result.faithfulness >= target
    assert math.isclose(result.faithfulness, oracle.of(result.edges), abs_tol=1e-12)
    assert len(set(result.edges)) == len(result.edges) >= 1
    assert all(type(e) is int for e in result.edges)
    order = {int(e): r for r, e in enumerate(rank_edges(scores))}
    assert [order[e] for e in result.edges] == sorted(order[e] for e in result.edges)
    assert all(order[e] < result.prefix for e in result.edges)  # pruned from the prefix
    assert brute_one_minimal(result.edges, oracle, target)
    assert is_one_minimal(result.edges, n, oracle, target)
    assert result.evaluations >= 1


# -- ranking ------------------------------------------------------------------------------------


def test_rank_by_magnitude_ties_by_index_nan_last():
    scores = np.array([np.nan, 1.0, -3.0, np.nan, 0.0, -1.0, 1.0])
    assert rank_edges(scores).tolist() == [2, 1, 5, 6, 4, 0, 3]
    assert rank_edges(np.array([])).tolist() == []
    assert rank_edges(np.full(4, np.nan)).tolist() == [0, 1, 2, 3]


def test_ties_are_broken_by_index_deterministically():
    scores = np.array([0.5, 2.0, 2.0, 2.0, 0.1])
    oracle = redundant_or(5, 3, 2)  # both tied at the top with edge 1
    first = select_circuit(scores, oracle, 1.0)
    assert first.edges == (2,)  # 1 is useless; 2 comes before 3 among the ties
    assert first.prefix == 2
    again = select_circuit(scores.copy(), redundant_or(5, 3, 2), 1.0)
    assert again == first


def test_nan_scores_rank_last_in_the_selection():
    scores = np.array([np.nan, 0.1, np.nan, 0.2])
    weights = np.array([1.0, 1.0, 1.0, 1.0])
    result = select_circuit(scores, additive(weights), 0.75)
    assert result.prefix == 3  # ranking 3, 1, 0, 2
    assert result.edges == (3, 1, 0)


# -- the oracles --------------------------------------------------------------------------------


def test_additive_oracle():
    weights = np.array([0.05, 0.4, 0.1, 0.3, 0.15])
    scores = weights.copy()  # ranked by the true weights
    oracle = additive(weights)
    result = select_circuit(scores, oracle, 0.8)
    check_selected(result, scores, oracle, 0.8)
    assert result.edges == (1, 3, 4)  # 0.85; dropping any falls below 0.8
    assert result.prefix == 3


def test_additive_oracle_with_misleading_scores_prunes_the_prefix():
    weights = np.array([0.0, 0.0, 0.5, 0.5, 0.0, 0.0])
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    oracle = additive(weights)
    result = select_circuit(scores, oracle, 1.0)
    check_selected(result, scores, oracle, 1.0)
    assert result.prefix == 4
    assert result.edges == (2, 3)


def test_redundant_or_oracle_keeps_one_of_the_two():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    oracle = redundant_or(6, 4, 2)
    result = select_circuit(scores, oracle, 1.0)
    check_selected(result, scores, oracle, 1.0)
    assert result.edges == (2,)  # the better ranked of the two sufficient edges
    assert result.prefix == 3


def test_non_monotone_oracle_still_reaches_and_is_one_minimal():
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(2, 12))
        weights = rng.random(n)
        scores = rng.normal(size=n)
        inhibitor = int(rng.integers(n))
        oracle = non_monotone(weights, inhibitor)
        target = float(rng.uniform(0.05, 0.9))
        result = select_circuit(scores, oracle, target)
        if result.reached:
            check_selected(result, scores, oracle, target)
        else:  # no prefix of the doubling grid reached it
            assert result.edges == tuple(rank_edges(scores).tolist())


def test_brute_force_on_small_cases():
    """Every 1-minimal check by brute force against all subsets on tiny cases."""
    rng = np.random.default_rng(11)
    for _ in range(40):
        n = int(rng.integers(1, 8))
        weights = rng.random(n) * (rng.random(n) < 0.7)
        if weights.sum() == 0:
            weights[0] = 1.0
        scores = np.round(rng.normal(size=n), 1)  # rounding makes ties
        oracle = additive(weights)
        target = float(rng.uniform(0.1, 1.0))
        result = select_circuit(scores, oracle, target)
        check_selected(result, scores, oracle, target)
        # the result is a 1-minimal set, but nothing smaller inside the prefix need be optimal;
        # it is at least as small as the pruned prefix's smallest 1-minimal subset can be
        prefix = rank_edges(scores)[: result.prefix].tolist()
        sizes = [
            len(sub)
            for r in range(1, len(prefix) + 1)
            for sub in itertools.combinations(prefix, r)
            if oracle.of(sub) >= target
        ]
        assert min(sizes) <= len(result.edges)


def test_the_prefix_is_the_shortest_for_monotone_oracles():
    rng = np.random.default_rng(3)
    sizes = [*rng.integers(1, 70, size=120), *rng.integers(130, 400, size=12)]
    for n in map(int, sizes):
        weights = rng.random(n) ** 3
        scores = np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
        scores = np.round(scores, 1)
        oracle = additive(weights)
        target = float(rng.uniform(0.01, 1.0))
        result = select_circuit(scores, oracle, target)
        assert result.reached
        assert result.prefix == shortest_prefix(scores, oracle, target), n
        assert oracle.of(rank_edges(scores)[: result.prefix]) >= target


# -- targets and unreachable oracles ------------------------------------------------------------


@pytest.mark.parametrize("target", [0.0, -0.5, 1.0001, 2.0, float("nan")])
def test_target_outside_zero_one_raises(target):
    with pytest.raises(ValueError, match="outside"):
        select_circuit(np.ones(3), additive(np.ones(3)), target)


def test_target_one_is_allowed():
    result = select_circuit(np.array([3.0, 2.0, 1.0]), additive(np.ones(3)), 1.0)
    assert result.reached and result.edges == (0, 1, 2)


def test_an_oracle_of_nan_never_reaches():
    scores = np.array([0.1, 0.5, 0.3, np.nan])
    oracle = Oracle(lambda row: math.nan, 4)
    result = select_circuit(scores, oracle, 0.5)
    assert not result.reached
    assert result.edges == (1, 2, 0, 3)  # every edge, in rank order
    assert result.prefix == 4
    assert math.isnan(result.faithfulness)


def test_an_oracle_below_the_target_never_reaches():
    oracle = Oracle(lambda row: 0.5 * row.mean(), 10)
    result = select_circuit(np.arange(10.0), oracle, 0.9)
    assert not result.reached
    assert sorted(result.edges) == list(range(10))
    assert result.faithfulness == 0.5


# -- batching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "most"), [(400, 4), (4000, 5)])
def test_the_prefix_search_takes_a_few_batches(n, most):
    rng = np.random.default_rng(n)
    for k in (1, 2, n // 3, n // 2 + 1, n - 1, n):
        weights = np.zeros(n)
        scores = rng.permutation(n).astype(float)
        ranking = rank_edges(scores)
        weights[ranking[:k]] = 1.0  # the target is first reached by the prefix of length k
        oracle = additive(weights)
        counted = selection._Counted(oracle, n)
        found = selection._shortest_prefix(ranking, counted, 1.0)
        assert found == k
        assert oracle.calls <= most, (n, k, oracle.calls)
        assert counted.count == oracle.rows


def test_select_circuit_calls_count_batches_not_rows():
    n = 400
    scores = np.linspace(1.0, 2.0, n)
    weights = np.zeros(n)
    weights[rank_edges(scores)[:3]] = [0.5, 0.3, 0.2]
    oracle = additive(weights)
    result = select_circuit(scores, oracle, 0.75)
    assert result.evaluations == oracle.rows
    assert oracle.calls < 10 < oracle.rows  # whole batches of prefixes, far fewer than n calls
    check_selected(result, scores, oracle, 0.75)
    assert result.prefix == 2
