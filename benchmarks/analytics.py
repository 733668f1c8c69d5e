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

**Neo4j** (in the same run, when ``NEO4J_URI`` is set; skipped, and said so, when not): the run
is ingested into the live Neo4j under a run id of its own, its edges limited to those the
analysis at τ sees (similarity below τ, the rest is never read), timed apart
(``neo4j_ingest_s``); then ``analyze(store, run_id, 0.7)`` on it, the centralities computed and
written by GDS, projections included (``neo4j_seconds_143_ckpts``, the target is < 300 s on 2
cores), with where its time went (projections, algorithms, reading the graphs for the weight
statistics); its centralities must equal the embedded analysis's to 1e-9 (relative). The run
is deleted at the end (``neo4j_delete_s``), also when the benchmark is interrupted. With
``--scratch-neo4j`` the benchmark starts a Neo4j of its own instead (``tools/neo4j/local.py`` in a
temporary home, heap 2 GiB, page cache 1 GiB), where nothing needs deleting: the full 143
checkpoints (8.6 million edges) then cost their ingest but not their deletion.

Progress goes to stderr; the table and, last, one ``key=value`` line to stdout.

    python benchmarks/analytics.py
    python benchmarks/analytics.py --quick          # 8 checkpoints, a smoke run
    python benchmarks/analytics.py --no-neo4j       # the embedded store only
    python benchmarks/analytics.py --scratch-neo4j  # Neo4j: a server of its own, discarded
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from circuitatlas.analytics.analyze import analyze
from circuitatlas.graph.centrality import METRICS, centralities
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import gds, open_store
from circuitatlas.store.ingest import ingest_sweep
from circuitatlas.store.neo4j import Neo4jStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the reference
from neo4j_servers import private_server
from networkx_reference import networkx_centralities
from pythia_sized import benchmark_args, deleting_runs, ingested_run, neo4j_url

TAU = 0.7
SCRATCH_MEMORY = {"CIRCUITATLAS_NEO4J_HEAP": "2g", "CIRCUITATLAS_NEO4J_PAGECACHE": "1g"}


def main() -> int:
    args = benchmark_args(__doc__.splitlines()[0], neo4j=True)
    steps = args.steps
    n = len(steps)
    log = sys.stderr
    url = None if args.no_neo4j else neo4j_url()
    if args.scratch_neo4j and not args.no_neo4j:
        url = "scratch"
    if url is None:
        why = "--no-neo4j" if args.no_neo4j else "NEO4J_URI is not set"
        print(f"Neo4j: skipped ({why}); the embedded store only", file=log)
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

    neo = None
    if url == "scratch":
        with tempfile.TemporaryDirectory() as home:
            print("Neo4j: starting a server of its own …", file=log)
            with private_server(Path(home), gds=True, memory=SCRATCH_MEMORY) as server:
                neo = neo4j_analysis(server.url_with_credentials, steps, result.components, False)
    elif url:
        neo = neo4j_analysis(url, steps, result.components)
    equal = all(
        np.allclose(fast[m].to_numpy(float), slow[m].to_numpy(float), rtol=1e-9, atol=1e-12)
        for m in METRICS
    )
    merged = stored.merge(result.components, on=["step", "name"], suffixes=("_db", ""))
    written = len(merged) == len(result.components) and all(
        np.allclose(merged[f"{m}_db"].to_numpy(float), merged[m].to_numpy(float), rtol=0)
        for m in METRICS
    )
    ok = equal and written and (neo is None or neo["check"] == "ok")
    edges = int(result.checkpoints["n_edges"].sum())
    rows = [
        ["ours: analyze, 143-style run (read + compute + write)", ours, n],
        ["reads only (every checkpoint's graph)", reads, n],
        ["igraph centralities, one checkpoint", igraph_s, 1],
        ["networkx centralities, one checkpoint", networkx_s, 1],
    ]
    if neo is not None:
        rows += [
            ["Neo4j: ingest of the run (edges below τ), apart", neo["ingest_s"], n],
            ["Neo4j: analyze with GDS (projections included)", neo["seconds"], n],
            ["  of which: GDS projections", neo["project_s"], n],
            ["  of which: GDS algorithms and their writes", neo["algorithms_s"], n],
            ["  of which: reading the graphs (weight statistics)", neo["reads_s"], n],
            ["Neo4j: deleting the run, apart", neo["delete_s"], n],
        ]
    table = pd.DataFrame(rows, columns=["what", "seconds", "checkpoints"])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"edges analyzed: {edges} ({edges / n:.0f} per checkpoint); "
        f"reads are {reads / ours:.0%} of ours"
    )
    keys = (
        f"seconds_{n}_ckpts={ours:.2f} reads_s={reads:.2f} igraph_ckpt_s={igraph_s:.4f} "
        f"networkx_ckpt_s={networkx_s:.2f} speedup_vs_networkx={networkx_s / igraph_s:.1f} "
        f"networkx_{n}_ckpts_est_s={networkx_s * n:.0f}"
    )
    if neo is None:
        keys += " neo4j=skipped"
    else:
        keys += (
            f" neo4j_seconds_{n}_ckpts={neo['seconds']:.2f} neo4j_target_s=300"
            f" neo4j_project_s={neo['project_s']:.2f} neo4j_algorithms_s={neo['algorithms_s']:.2f}"
            f" neo4j_reads_s={neo['reads_s']:.2f} neo4j_ingest_s={neo['ingest_s']:.1f}"
            f" neo4j_ingest_edges_per_s={neo['ingest_rate']:.0f}"
            f" neo4j_delete_s={neo['delete_s']:.1f} neo4j_vs_embedded={neo['seconds'] / ours:.1f}"
            f" neo4j_max_rel_diff={neo['max_rel_diff']:.1e} neo4j_check={neo['check']}"
        )
    print(f"{keys} check={'ok' if ok else 'failed'}")
    return 0 if ok else 1


class Timers:
    """Seconds spent in some methods, by name (wrapped for one analysis, then restored)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._restore: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, method: str, name: str) -> None:
        original = getattr(owner, method)

        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

        self._restore.append((owner, method, original))
        setattr(owner, method, timed)

    def restore(self) -> None:
        for owner, method, original in reversed(self._restore):
            setattr(owner, method, original)


def neo4j_analysis(
    url: str, steps: list[int], expected: pd.DataFrame, delete: bool = True
) -> dict[str, Any]:
    """Ingest the run into Neo4j (timed apart), analyze it there with GDS, compare with the
    embedded analysis's components (``expected``), delete it (unless not ``delete``: a scratch
    server is discarded whole); the figures."""
    sweep = synthetic_sweep(24, 16, steps, seed=0, model=f"bench-analytics-{uuid.uuid4().hex}")
    sweep = replace(sweep, edges=sweep.edges[sweep.edges.similarity < TAU])
    out: dict[str, Any] = {}
    cleanup = deleting_runs(url) if delete else contextlib.nullcontext([])
    with cleanup as run_ids:
        run_ids.append(sweep.run_id)
        print(f"Neo4j: ingesting {len(sweep.edges):,} edges …", file=sys.stderr)
        t0 = time.perf_counter()
        with open_store(url, writable=True) as store:
            ingest_sweep(store, sweep, progress=True)
        out["ingest_s"] = time.perf_counter() - t0
        out["ingest_rate"] = len(sweep.edges) / out["ingest_s"]
        timers = Timers()
        timers.wrap(gds.Gds, "_project", "project")
        timers.wrap(gds.Gds, "_write", "algorithms")
        timers.wrap(gds.Gds, "_stream", "algorithms")
        timers.wrap(Neo4jStore, "analysis_graph", "reads")
        try:
            with open_store(url, writable=True) as store:
                t0 = time.perf_counter()
                result = analyze(store, sweep.run_id, TAU, progress=True)
                out["seconds"] = time.perf_counter() - t0
        finally:
            timers.restore()
        for name in ("project", "algorithms", "reads"):
            out[f"{name}_s"] = timers.seconds.get(name, 0.0)
        merged = expected.merge(result.components, on=["step", "name"], suffixes=("", "_neo4j"))
        diffs = [
            np.max(
                np.abs(merged[f"{m}_neo4j"].to_numpy(float) - merged[m].to_numpy(float))
                / np.maximum(np.abs(merged[m].to_numpy(float)), 1e-300),
                initial=0.0,
                where=np.abs(merged[m].to_numpy(float)) > 1e-12,
            )
            for m in METRICS
        ]
        same = len(merged) == len(expected) == len(result.components) and all(
            np.allclose(
                merged[f"{m}_neo4j"].to_numpy(float),
                merged[m].to_numpy(float),
                rtol=1e-9,
                atol=1e-12,
            )
            for m in METRICS
        )
        out["max_rel_diff"] = float(max(diffs))
        out["check"] = "ok" if same else "failed"
        t0 = time.perf_counter()
    out["delete_s"] = time.perf_counter() - t0
    return out


if __name__ == "__main__":
    sys.exit(main())
