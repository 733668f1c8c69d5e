"""Per-graph statistics of one checkpoint's graph at τ: size and the weight distribution."""

from __future__ import annotations

import math

import numpy as np

from circuitatlas.graph.network import Graph

STATS = ("n_nodes", "n_edges", "density", "mean_weight", "weight_gini", "weight_tail_index")


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
    """Gini coefficient of non-negative ``values`` (0 for none or all zero):
    Σᵢ (2i − n − 1) xᵢ / (n Σᵢ xᵢ) over the values sorted ascending, i = 1 … n."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = x.size, float(x.sum()) if x.size else 0.0
    if n == 0 or total <= 0.0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(((2.0 * ranks - n - 1.0) * x).sum() / (n * total))


def hill_tail_index(values: np.ndarray) -> float | None:
    """Hill estimate α of the upper tail from the k = ⌈√n⌉ largest values (at least 2, at most
    n − 1): 1 / mean(log(x₍ᵢ₎ / x₍ₖ₊₁₎)) over the k largest, x₍ₖ₊₁₎ the next one (``None``:
    fewer than 3 values, a threshold x₍ₖ₊₁₎ ≤ 0, or the k largest all equal to it)."""
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
