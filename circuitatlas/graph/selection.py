"""Circuit selection: the smallest faithful prefix of the ranked edges, pruned to be 1-minimal.

Pure: the faithfulness of candidate circuits comes from a callable that scores a batch of edge
sets (``[C, E]`` booleans → ``[C]`` floats), so the same search runs on any model or store.

:func:`select_circuit` ranks the edges by ``|score|`` (descending; ties by edge index), finds the
shortest prefix of that ranking whose faithfulness reaches the target — lengths on a doubling
grid first, then every length of the bracket the grid finds, each stage one batch — and prunes it
greedily: edges are tried from the weakest, each removed when the rest keeps the target. Then
every single-edge removal is checked in one batch, and while one keeps the target the weakest such
edge goes. The result is 1-minimal: no single edge can be removed while staying at the target.
When no prefix reaches the target (faithfulness is undefined when the clean and the all-ablated
metric coincide), the whole edge set is returned with ``reached`` false.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Faithfulness = Callable[[np.ndarray], np.ndarray]
BRACKET_BATCH = 64  # the most prefix lengths scored in one batch inside the grid's bracket


@dataclass(frozen=True)
class Selection:
    """A selected circuit: edge indices in rank order, its faithfulness and how it was found."""

    edges: tuple[int, ...]
    faithfulness: float
    prefix: int  # length of the shortest prefix that reaches the target (before pruning)
    reached: bool  # false: nothing reaches the target; ``edges`` is then every edge
    evaluations: int  # candidate circuits scored


def select_circuit(scores: np.ndarray, faithfulness: Faithfulness, target: float) -> Selection:
    """The 1-minimal pruning of the shortest faithful prefix of ``scores``' ranking (module
    docstring); ``faithfulness`` scores a ``[C, E]`` boolean batch of edge sets."""
    if not 0 < target <= 1:
        raise ValueError(f"target {target} is outside (0, 1]")
    oracle = _Counted(faithfulness, len(scores))
    ranking = rank_edges(scores)
    k = _shortest_prefix(ranking, oracle, target)
    if k is None:
        everything = tuple(int(e) for e in ranking)
        value = float(oracle.score([everything])[0])
        return Selection(everything, value, len(ranking), False, oracle.count)
    kept = _prune(list(ranking[:k]), oracle, target)
    value = float(oracle.score([kept])[0])
    return Selection(tuple(int(e) for e in kept), value, k, True, oracle.count)


def rank_edges(scores: np.ndarray) -> np.ndarray:
    """Edge indices by ``|score|``, largest first; ties (and NaN, ranked last) by index."""
    magnitude = np.nan_to_num(np.abs(np.asarray(scores, dtype=float)), nan=-1.0)
    return np.lexsort((np.arange(len(magnitude)), -magnitude))


def is_one_minimal(
    edges: tuple[int, ...] | list[int], n_edges: int, faithfulness: Faithfulness, target: float
) -> bool:
    """Whether no single edge of ``edges`` can be removed while keeping ``target``."""
    oracle = _Counted(faithfulness, n_edges)
    without = [[e for e in edges if e != drop] for drop in edges]
    return not without or bool((oracle.score(without) < target).all())


class _Counted:
    """The faithfulness callable on lists of edge indices, counting what it scores."""

    def __init__(self, faithfulness: Faithfulness, n_edges: int) -> None:
        self.faithfulness, self.n_edges, self.count = faithfulness, n_edges, 0

    def score(self, circuits: list[list[int]] | list[tuple[int, ...]]) -> np.ndarray:
        masks = np.zeros((len(circuits), self.n_edges), dtype=bool)
        for row, edges in enumerate(circuits):
            masks[row, list(edges)] = True
        self.count += len(circuits)
        return np.asarray(self.faithfulness(masks), dtype=float)

    def prefixes(self, ranking: np.ndarray, lengths: list[int]) -> np.ndarray:
        return self.score([list(ranking[:k]) for k in lengths])


def _shortest_prefix(ranking: np.ndarray, oracle: _Counted, target: float) -> int | None:
    """The shortest prefix length reaching ``target`` within the doubling grid's first bracket."""
    n = len(ranking)
    if n == 0:
        return None
    grid = sorted({*(2**p for p in range(int(np.log2(n)) + 1)), n})
    reached = np.flatnonzero(oracle.prefixes(ranking, grid) >= target)
    if not len(reached):
        return None
    at = int(reached[0])
    lo, hi = (grid[at - 1] + 1 if at else 1), grid[at]
    while hi - lo + 1 > BRACKET_BATCH:  # narrow a wide bracket, a batch of lengths at a time
        lengths = sorted({int(x) for x in np.linspace(lo, hi - 1, BRACKET_BATCH)})
        hits = np.flatnonzero(oracle.prefixes(ranking, lengths) >= target)
        if not len(hits):
            lo = lengths[-1] + 1
            break
        first = int(hits[0])
        lo, hi = (lengths[first - 1] + 1 if first else lo), lengths[first]
    lengths = list(range(lo, hi))
    if lengths:
        hits = np.flatnonzero(oracle.prefixes(ranking, lengths) >= target)
        if len(hits):
            return lengths[int(hits[0])]
    return hi


def _prune(kept: list[int], oracle: _Counted, target: float) -> list[int]:
    """Greedy removal from the weakest edge, then single removals until 1-minimal."""
    for edge in reversed(list(kept)):
        trial = [e for e in kept if e != edge]
        if trial and oracle.score([trial])[0] >= target:
            kept = trial
    while len(kept) > 1:
        without = [[e for e in kept if e != drop] for drop in kept]
        ok = np.flatnonzero(oracle.score(without) >= target)
        if not len(ok):
            break
        kept = without[int(ok[-1])]  # the weakest removable edge goes
    return kept
