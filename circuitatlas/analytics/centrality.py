"""Centralities and weight-distribution statistics of one checkpoint's graph at a threshold.

Definitions (both backends compute exactly these; Neo4j through GDS, the embedded store here with
igraph's C core):

* the graph at τ: every component of the checkpoint is a node; an edge i→j is an INFLUENCES edge
  whose similarity (total or direct) is below τ and whose weight is positive (for τ ≤ 1 every
  such edge has a positive weight; above 1 a weight-0 edge would be no influence at all);
* ``in_degree`` / ``out_degree``: number of incoming / outgoing edges;
* ``in_strength`` / ``out_strength``: sum of their weights;
* ``betweenness``: raw directed Brandes betweenness (number of shortest source→target paths
  through the node, ties split, not normalized), with edge cost ``1 / weight`` (``COST``): a
  stronger influence is a shorter distance;
* ``closeness``: unweighted, on incoming distances (as GDS and networkx define it for directed
  graphs): the number of components that reach the node divided by the sum of their hop
  distances to it, 0 when none reaches it;
* ``pagerank``: weighted PageRank with damping 0.85, run to its fixed point, teleport and the
  mass of dangling nodes spread uniformly, scores summing to 1 over the checkpoint's components.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

COST = "1/weight"
DAMPING = 0.85
DEGREE_METRICS = ("in_degree", "out_degree")
FLOAT_METRICS = ("in_strength", "out_strength", "betweenness", "closeness", "pagerank")
METRICS = DEGREE_METRICS + FLOAT_METRICS
STATS = ("n_nodes", "n_edges", "density", "mean_weight", "weight_gini", "weight_tail_index")


@dataclass(frozen=True)
class Graph:
    """One checkpoint's graph at τ: node names, and edges as index arrays with their weights."""

    names: list[str]
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_edges(
        cls, names: list[str], edges: pd.DataFrame, ids: list[Any] | None = None
    ) -> Graph:
        """``names`` (every component) and a frame of ``source, target, weight`` (kept edges).

        The edges name their ends by name, or by ``ids`` (one per name) when given.
        """
        index = pd.Index(names if ids is None else ids)
        if not index.is_unique or len(set(names)) != len(names):
            raise ValueError("component names (and ids) must be unique")
        sources = index.get_indexer(edges["source"])
        targets = index.get_indexer(edges["target"])
        if (sources < 0).any() or (targets < 0).any():
            raise ValueError("an edge names a component that is not in the node list")
        weights = edges["weight"].to_numpy(dtype=np.float64)
        return cls(list(names), sources.astype(np.int64), targets.astype(np.int64), weights)

    @property
    def n(self) -> int:
        """Number of nodes (every component, with or without edges)."""
        return len(self.names)

    def costs(self) -> np.ndarray:
        """Edge costs for shortest paths: ``1 / weight``."""
        return 1.0 / self.weights


def centralities(graph: Graph) -> pd.DataFrame:
    """``name`` plus every metric of ``METRICS``, one row per node, in ``graph.names`` order."""
    import igraph as ig

    # a list of pairs builds the graph several times faster than an ndarray does
    pairs = list(zip(graph.sources.tolist(), graph.targets.tolist(), strict=True))
    g = ig.Graph(n=graph.n, edges=pairs, directed=True)
    weights = graph.weights.tolist()
    frame = pd.DataFrame({"name": graph.names})
    frame["in_degree"] = np.asarray(g.indegree(), dtype=np.int64)
    frame["out_degree"] = np.asarray(g.outdegree(), dtype=np.int64)
    if g.ecount() == 0:
        for metric in FLOAT_METRICS:
            frame[metric] = 0.0
        frame["pagerank"] = 1.0 / graph.n if graph.n else 0.0
        return frame
    frame["in_strength"] = g.strength(mode="in", weights=weights)
    frame["out_strength"] = g.strength(mode="out", weights=weights)
    frame["betweenness"] = g.betweenness(directed=True, weights=graph.costs().tolist())
    closeness = np.asarray(g.closeness(mode="in", normalized=True), dtype=np.float64)
    frame["closeness"] = np.nan_to_num(closeness, nan=0.0)
    frame["pagerank"] = g.pagerank(weights=weights, directed=True, damping=DAMPING)
    return frame


def graph_stats(graph: Graph) -> dict[str, float | int | None]:
    """|V| (nodes with an edge), |E|, density, mean weight, Gini and tail index of the weights.

    ``density`` is |E| / (|V|(|V|−1)); ``weight_gini`` the Gini coefficient of the weights;
    ``weight_tail_index`` the Hill estimate α of the upper tail from the k = ⌈√|E|⌉ largest
    weights (``None`` when there are fewer than 3 edges or those weights are all equal).
    """
    active = np.union1d(graph.sources, graph.targets)
    n_nodes, n_edges = int(active.size), int(graph.weights.size)
    pairs = n_nodes * (n_nodes - 1)
    return {
        "n_nodes": n_nodes,
        "n_edges": n_edges,
        "density": n_edges / pairs if pairs else 0.0,
        "mean_weight": float(graph.weights.mean()) if n_edges else 0.0,
        "weight_gini": gini(graph.weights),
        "weight_tail_index": hill_tail_index(graph.weights),
    }


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values`` (0 for none or all zero)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = x.size, float(x.sum()) if x.size else 0.0
    if n == 0 or total <= 0.0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(((2.0 * ranks - n - 1.0) * x).sum() / (n * total))


def hill_tail_index(values: np.ndarray) -> float | None:
    """Hill estimate α of the upper tail from the ⌈√n⌉ largest values (``None``: undefined)."""
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    n = x.size
    if n < 3:
        return None
    k = min(max(2, math.ceil(math.sqrt(n))), n - 1)
    threshold = x[k]
    if threshold <= 0.0:
        return None
    xi = float(np.mean(np.log(x[:k] / threshold)))
    return 1.0 / xi if xi > 0.0 else None
