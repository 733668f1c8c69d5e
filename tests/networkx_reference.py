"""The plain reference for the centralities: networkx on the definitions of
``circuitatlas/graph/centrality.py`` (used by the tests and by benchmarks/analytics.py)."""

from __future__ import annotations

import networkx as nx
import pandas as pd

from circuitatlas.graph.centrality import DAMPING, METRICS
from circuitatlas.graph.network import Graph


def networkx_centralities(graph: Graph) -> pd.DataFrame:
    """``name`` + ``METRICS`` of ``graph``, one row per node in ``graph.names`` order."""
    g = nx.DiGraph()
    g.add_nodes_from(graph.names)
    for s, t, w in zip(graph.sources, graph.targets, graph.weights, strict=True):
        assert not g.has_edge(graph.names[s], graph.names[t])  # a DiGraph would merge them
        g.add_edge(graph.names[s], graph.names[t], weight=float(w), cost=1.0 / float(w))
    betweenness = nx.betweenness_centrality(g, weight="cost", normalized=False)
    closeness = nx.closeness_centrality(g, wf_improved=False)
    pagerank = nx.pagerank(g, alpha=DAMPING, weight="weight", tol=1e-14, max_iter=10000)
    rows = [
        {
            "name": name,
            "in_degree": g.in_degree(name),
            "out_degree": g.out_degree(name),
            "in_strength": float(g.in_degree(name, weight="weight")),
            "out_strength": float(g.out_degree(name, weight="weight")),
            "betweenness": betweenness[name],
            "closeness": closeness[name],
            "pagerank": pagerank[name],
        }
        for name in graph.names
    ]
    return pd.DataFrame(rows, columns=["name", *METRICS])
