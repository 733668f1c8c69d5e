"""Benchmark: analyzing a Pythia-1.4B-sized run in the embedded store, against networkx.

A synthetic run of ``--checkpoints`` (default 143) checkpoints of a Pythia-1.4B-shaped model
(24 layers × 16 heads, parallel blocks: 410 components, 80 581 downstream pairs per checkpoint;
seeded random similarities, so about 60 000 edges per checkpoint are below τ = 0.7) is ingested
into a fresh LadybugDB store (not timed). Then, side by side in one run:

* **ours**: ``analyze(store, run_id, 0.7)``: for every checkpoint read its graph from the store,
  compute every centrality with igraph and the weight statistics, then roles, stability and
  phases, and write everything back in one transaction. ``seconds_143_ckpts`` is its wall time
  (the target is < 60 s on 2 cores);
* **reads only** (the floor of any in-process analysis): reading every checkpoint's graph;
* **networkx** (the naive way): the same metrics, same definitions, on one checkpoint
  (the median checkpoint), with networkx; ``speedup_vs_networkx`` is networkx's time over
  igraph's on that checkpoint, and ``networkx_143_ckpts_est`` extrapolates networkx to the run.

Checks: on that checkpoint igraph's values equal networkx's to 1e-9 (relative), and the values
read back from the store equal the returned frame; ``check=ok`` or ``failed`` (exit status 1).

Progress goes to stderr; the table and, last, one ``key=value`` line to stdout.

    python benchmarks/analytics.py
    python benchmarks/analytics.py --quick          # 8 checkpoints, a smoke run
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from circuitatlas.analytics.analyze import analyze
from circuitatlas.analytics.centrality import METRICS, centralities
from circuitatlas.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the reference
from networkx_reference import networkx_centralities
from pythia_sized import checkpoint_steps, ingested_run

TAU = 0.7


def main() -> int:
    steps = checkpoint_steps(__doc__.splitlines()[0])
    n = len(steps)
    log = sys.stderr
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.lbdb"
        run_id = ingested_run(path, steps)

        with open_store(path, writable=True) as store:
            t0 = time.perf_counter()
            result = analyze(store, run_id, TAU, progress=True)
            ours = time.perf_counter() - t0

            t0 = time.perf_counter()
            graphs = {s: store.analysis_graph(run_id, s, TAU, "total") for s in steps}
            reads = time.perf_counter() - t0

            stored = store.components(run_id)

        step = steps[len(steps) // 2]
        graph = graphs[step]
        t0 = time.perf_counter()
        fast = centralities(graph)
        igraph_s = time.perf_counter() - t0
        print(f"networkx on step {step} ({len(graph.weights)} edges) …", file=log)
        t0 = time.perf_counter()
        slow = networkx_centralities(graph)
        networkx_s = time.perf_counter() - t0

    equal = all(
        np.allclose(fast[m].to_numpy(float), slow[m].to_numpy(float), rtol=1e-9, atol=1e-12)
        for m in METRICS
    )
    merged = stored.merge(result.components, on=["step", "name"], suffixes=("_db", ""))
    written = len(merged) == len(result.components) and all(
        np.allclose(merged[f"{m}_db"].to_numpy(float), merged[m].to_numpy(float), rtol=0)
        for m in METRICS
    )
    ok = equal and written
    edges = int(result.checkpoints["n_edges"].sum())
    table = pd.DataFrame(
        [
            ["ours: analyze, 143-style run (read + compute + write)", ours, n],
            ["reads only (every checkpoint's graph)", reads, n],
            ["igraph centralities, one checkpoint", igraph_s, 1],
            ["networkx centralities, one checkpoint", networkx_s, 1],
        ],
        columns=["what", "seconds", "checkpoints"],
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"edges analyzed: {edges} ({edges / n:.0f} per checkpoint); "
        f"reads are {reads / ours:.0%} of ours"
    )
    print(
        f"seconds_{n}_ckpts={ours:.2f} reads_s={reads:.2f} igraph_ckpt_s={igraph_s:.4f} "
        f"networkx_ckpt_s={networkx_s:.2f} speedup_vs_networkx={networkx_s / igraph_s:.1f} "
        f"networkx_{n}_ckpts_est_s={networkx_s * n:.0f} check={'ok' if ok else 'failed'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
