"""Benchmark: the 5 strongest input→logits paths of a Pythia-1.4B-sized run, against networkx.

A synthetic run of ``--checkpoints`` (default 143) checkpoints of a Pythia-1.4B-shaped model
(24 layers × 16 heads, parallel blocks: 410 components, 80 581 downstream pairs per checkpoint,
every one a direct-effect edge with a positive weight) is ingested into a fresh LadybugDB store
(not timed). Then, side by side in one run:

* **ours**: ``find_paths(store, run_id)`` with the defaults (direct effects, every edge, k = 5):
  per checkpoint read its edges from the store and run Yen's algorithm in igraph;
  ``seconds_all_ckpts`` is its wall time;
* **reads only** (the floor of any in-process search): reading every checkpoint's edges;
* **networkx** (the naive way): ``shortest_simple_paths`` on the median checkpoint, the first 5;
  ``speedup_vs_networkx`` is networkx's time over igraph's on that checkpoint.

Check: on that checkpoint the two give the same paths and strengths (rtol 1e-12); ``check=ok``
or ``failed`` (exit status 1). Progress goes to stderr; the table and, last, one ``key=value``
line to stdout.

    python benchmarks/paths.py
    python benchmarks/paths.py --quick          # 8 checkpoints, a smoke run
"""

from __future__ import annotations

import itertools
import math
import sys
import tempfile
import time
from pathlib import Path

import networkx as nx
import numpy as np
from pythia_sized import checkpoint_steps, ingested_run

from circuitatlas.graph.paths import PathSettings, edge_distances, k_strongest
from circuitatlas.queries.paths import find_paths
from circuitatlas.store import open_store


def networkx_paths(names, sources, targets, weights, k):
    g = nx.DiGraph()
    for s, t, d in zip(sources, targets, edge_distances(weights), strict=True):
        g.add_edge(names[s], names[t], d=d)
    found = itertools.islice(nx.shortest_simple_paths(g, "input", "logits", weight="d"), k)
    return [(tuple(p), nx.path_weight(g, p, "d")) for p in found]


def main() -> int:
    steps = checkpoint_steps(__doc__.splitlines()[0])
    n = len(steps)
    settings = PathSettings()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.lbdb"
        run_id = ingested_run(path, steps)
        with open_store(path) as store:
            t0 = time.perf_counter()
            result = find_paths(store, run_id, None, settings)
            ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            edges = [store.path_edges(run_id, s, settings.measure) for s in steps]
            reads = time.perf_counter() - t0
        median = edges[n // 2]
        graph = median.graph(None)
        t0 = time.perf_counter()
        igraph_found = k_strongest(graph, "input", "logits", settings.k)
        igraph_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        nx_found = networkx_paths(
            graph.names, graph.sources, graph.targets, graph.weights, settings.k
        )
        networkx_s = time.perf_counter() - t0
    same = [p.components for p in igraph_found] == [p for p, _ in nx_found] and np.allclose(
        [p.distance for p in igraph_found], [d for _, d in nx_found], rtol=1e-12
    )
    stored = result.paths[result.paths.step == steps[n // 2]]
    same = same and stored["strength"].tolist() == [p.strength for p in igraph_found]
    print(f"{'what':<44}{'seconds':>10}")
    print(f"{f'ours, {n} checkpoints (read + Yen, k=5)':<44}{ours:>10.3f}")
    print(f"{'reading every checkpoint edges alone':<44}{reads:>10.3f}")
    print(f"{'igraph, one checkpoint':<44}{igraph_s:>10.4f}")
    print(f"{'networkx, one checkpoint':<44}{networkx_s:>10.4f}")
    top = igraph_found[0]
    print(f"strongest path at step {steps[n // 2]}: {top.text} ({math.exp(-top.distance):.3g})")
    print(
        f"seconds_all_ckpts={ours:.3f} reads_s={reads:.3f} "
        f"speedup_vs_networkx={networkx_s / igraph_s:.1f} check={'ok' if same else 'failed'}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
