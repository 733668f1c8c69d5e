"""Per-node centralities of one checkpoint's graph at τ (:class:`~.network.Graph`).

Both backends compute exactly these definitions (Neo4j through GDS,
:mod:`circuitatlas.store.gds`; the embedded store here, with igraph's C core):

* ``in_degree`` / ``out_degree``: number of incoming / outgoing edges;
* ``in_strength`` / ``out_strength``: sum of their weights;
* ``betweenness``: raw directed Brandes betweenness (number of shortest source→target paths
  through the node, ties split, not normalized), with edge cost ``1 / weight``
  (:data:`~.network.COST`): a stronger influence is a shorter distance;
* ``closeness``: unweighted, on incoming distances (as GDS and networkx define it for directed
  graphs): the number of components that reach the node divided by the sum of their hop
  distances to it, 0 when none reaches it;
* ``pagerank``: weighted PageRank with damping 0.85 (``DAMPING``), run to its fixed point,
  teleport and the mass of dangling nodes spread uniformly, scores summing to 1 over the
  checkpoint's components.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from circuitatlas.graph.network import Graph

DAMPING = 0.85
DEGREE_METRICS = ("in_degree", "out_degree")
FLOAT_METRICS = ("in_strength", "out_strength", "betweenness", "closeness", "pagerank")
METRICS = DEGREE_METRICS + FLOAT_METRICS


def centralities(graph: Graph) -> pd.DataFrame:
    """``name`` plus every metric of ``METRICS`` (defined in the module docstring), one row per
    node, in ``graph.names`` order. Without edges: degrees, strengths, betweenness and
    closeness 0, PageRank ``1 / n``."""
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
