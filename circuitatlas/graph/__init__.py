"""Pure graph algorithms on one checkpoint's graph, below every other layer.

Nothing here reads a store, a model or a file: the modules take arrays and frames and return
numbers and frames, so the stores, the analytics, the queries and the report share one
definition of each quantity. One module per family, each function's definition in its docstring:

* :mod:`.network`: the graph at τ (:class:`~.network.Graph`), the two measures and the τ range;
* :mod:`.centrality`: per-node degrees, strengths, betweenness, closeness and PageRank;
* :mod:`.statistics`: per-graph |V|, |E|, density and weight-distribution statistics;
* :mod:`.paths`: edge distances, the k strongest source → sink paths and their ranking;
* :mod:`.attributes`: node and edge property rows as plain Python values.

The only import of the package outside itself is :mod:`circuitatlas.errors`
(``tests/unit/test_layering.py`` checks it).
"""
