"""Benchmark: one run's checkpoints swept by one process, by 1 Ray worker and by 2 Ray workers on
this machine, side by side in one run; then a projection of 143 checkpoints of Pythia-160M and
Pythia-1.4B on 1, 8 and 64 GPUs from the measured per-checkpoint cost.

The run: ``--checkpoints`` (default 16) random GPT-NeoX models of the Pythia-14M shape (6 layers,
d_model 128, 4 heads, d_mlp 512, parallel residual; ``benchmarks/sweep.py``'s
``save_random_model``, seed = checkpoint index), saved as ``step<N>/`` directories, so every
checkpoint is loaded, swept and written exactly as ``circuitatlas ingest --model DIR`` does it:
``--prompts`` (16) induction prompts of ``--seq-len`` (33) tokens, zero ablation, CPU, and EAP-IG
edge scores (``--edge-scores eap-ig``: what ``auto`` picks for any model over 2 000 edges, so
for every Pythia from 160M up).

Variants, each into a fresh embedded store, each timed from the plan to the last write:

* **one process**: ``ingest_plan``, the single-process ``circuitatlas ingest`` (torch uses every
  core);
* **ray ×1** / **ray ×2**: ``ingest_ray`` on a local Ray cluster of 1 or 2 CPUs, one task per
  checkpoint with one CPU each (Ray gives each worker one thread); the workers send their frames
  back and the driver writes them. The time includes starting the cluster and its workers
  (torch imported in each), which a long run pays once.

The three stores must hold the same edges (compared exactly); ``check=ok`` or ``failed`` (exit
status 1). The machine's limit is its core count: 2 workers on 2 cores are at best 2× one.

The projection (``--no-projection`` skips it) starts from the ray ×1 tasks' mean seconds per
checkpoint on one CPU thread (load, sweep, edge scores) and assumes: the compute of a bigger
model scales with the sweep's matmul FLOPs (``benchmarks/sweep.py``'s ``ours_flops``, counted
from the shapes) and reaches the same fraction of a GPU's peak as of this CPU thread's measured
float32 matmul peak (``--gpu-tflops``, default 67: an H100's FP32 peak); the fp16 checkpoint is
read at ``--load-gbps`` (default 1 GB/s: local NVMe or a fast shared file system); its edges are
written at ``--write-edges-per-s`` (default 45 000, the Neo4j figure of ``benchmarks/store.py``)
with all workers' writes serialized on the one database. Wall time on ``n`` GPUs is then
``max(ceil(143 / n) × (load + compute + write), 143 × write)`` plus 15 s for the cluster's start.

    python benchmarks/scale.py                   # 16 checkpoints, 1 vs 2 workers, projection
    python benchmarks/scale.py --quick           # 4 checkpoints, a smoke run
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import SHAPES, Shape, matmul_peak, ours_flops, save_random_model

from circuitatlas.ingest.components import all_components, is_downstream
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_plan
from circuitatlas.store.ray_ingest import RaySettings, ingest_ray

PYTHIA = {  # the Pythia shapes projected (EleutherAI's configurations)
    "160m": (Shape("160m", n_layers=12, d_model=768, n_heads=12, d_mlp=3072), 162e6),
    "1.4b": (Shape("1.4b", n_layers=24, d_model=2048, n_heads=16, d_mlp=8192), 1.41e9),
}
RUN_CHECKPOINTS = 143
GPU_COUNTS = (1, 8, 64)
START_S = 15.0  # a cluster's start and its workers' first import of torch (measured here: ~10 s)


@dataclass
class Timing:
    """One variant's wall time and what it stored."""

    name: str
    wall_s: float
    edges: pd.DataFrame
    busy_s: float = 0.0  # ray: the tasks' sweep + write seconds, summed


def main() -> int:
    args = parse_args()
    n = 4 if args.quick else args.checkpoints
    settings = SweepSettings(
        n_prompts=args.prompts, seq_len=args.seq_len, device="cpu", edge_scores="eap-ig"
    )
    with tempfile.TemporaryDirectory(prefix="circuitatlas-scale-") as tmp:
        work = Path(tmp)
        run_dir = work / "run"
        for i in range(n):
            save_random_model(SHAPES["14m"], run_dir / f"step{i * 1000}", seed=i)
        print(f"saved {n} random Pythia-14M-shaped checkpoints", file=sys.stderr)
        timings = [
            one_process(run_dir, settings, work / "one.lbdb"),
            with_ray(run_dir, settings, work / "ray1.lbdb", cpus=1),
            with_ray(run_dir, settings, work / "ray2.lbdb", cpus=2),
        ]
    ok = all(t.edges.equals(timings[0].edges) for t in timings[1:])
    print_table(timings, n)
    one, ray1, ray2 = (t.wall_s for t in timings)
    pairs = {
        "checkpoints": n,
        "one_process_s": f"{one:.1f}",
        "ray1_s": f"{ray1:.1f}",
        "ray2_s": f"{ray2:.1f}",
        "speedup_2_vs_1_workers": f"{ray1 / ray2:.2f}",
        "speedup_ray2_vs_one_process": f"{one / ray2:.2f}",
        "limit": "2.00",
    }
    if not args.no_projection:
        pairs |= project(args, timings[1].busy_s / n)
    pairs["check"] = "ok" if ok else "failed"
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))
    return 0 if ok else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="4 checkpoints")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=33)
    parser.add_argument("--no-projection", action="store_true")
    parser.add_argument("--gpu-tflops", type=float, default=67.0, help="the GPU's FP32 peak")
    parser.add_argument("--load-gbps", type=float, default=1.0, help="checkpoint read, GB/s")
    parser.add_argument("--write-edges-per-s", type=float, default=45_000.0)
    return parser.parse_args()


def one_process(run_dir: Path, settings: SweepSettings, store_path: Path) -> Timing:
    """The single-process ingest."""
    start = time.perf_counter()
    plan = plan_run(str(run_dir), None, settings)
    with open_store(store_path, writable=True) as store:
        report = ingest_plan(store, plan, progress=False)
        wall = time.perf_counter() - start
        edges = sorted_edges(store, report.run_id)
    print(f"one process: {wall:.1f} s", file=sys.stderr)
    return Timing("one process", wall, edges)


def with_ray(run_dir: Path, settings: SweepSettings, store_path: Path, cpus: int) -> Timing:
    """``ingest --ray`` on a local cluster of ``cpus`` CPUs, one CPU per task."""
    start = time.perf_counter()
    plan = plan_run(str(run_dir), None, settings)
    with open_store(store_path, writable=True) as store:
        ray_settings = RaySettings(local_cpus=cpus, cpus_per_task=1.0)
        report = ingest_ray(store, plan, ray_settings, str(store_path), progress=False)
        wall = time.perf_counter() - start
        edges = sorted_edges(store, report.run_id)
    if report.failed:
        raise SystemExit(f"ray ×{cpus}: {report.failure()}")
    busy = sum(p.sweep_s + p.write_s for p in report.placements)
    print(f"ray ×{cpus}: {wall:.1f} s ({report.workers})", file=sys.stderr)
    return Timing(f"ray ×{cpus}", wall, edges, busy)


def sorted_edges(store: object, run_id: str) -> pd.DataFrame:
    edges = store.edges(run_id)  # type: ignore[attr-defined]
    return edges.sort_values(["step", "source", "target"]).reset_index(drop=True)


def print_table(timings: list[Timing], n: int) -> None:
    ray1 = timings[1].wall_s
    print(f"{'variant':<12} {'wall s':>8} {'s/ckpt':>8} {'task s/ckpt':>12} {'vs ray ×1':>10}")
    for t in timings:
        task = f"{t.busy_s / n:.2f}" if t.busy_s else "-"
        print(
            f"{t.name:<12} {t.wall_s:8.1f} {t.wall_s / n:8.2f} {task:>12} {ray1 / t.wall_s:9.2f}×"
        )


def project(args: argparse.Namespace, task_s: float) -> dict[str, str]:
    """Print the projection table from ``task_s``, one 14M task's measured seconds on one CPU
    thread (load, sweep, edge scores); its figures as key=value pairs."""
    torch.set_num_threads(1)  # the ray ×1 worker's one thread
    cpu_peak = matmul_peak()
    tokens, n_scored = args.seq_len, (args.seq_len - 1) // 2  # induction: the second copy
    f14 = ours_flops(SHAPES["14m"], args.prompts, tokens, n_scored * args.prompts)
    gpu_per_cpu = args.gpu_tflops * 1e12 / cpu_peak
    print(
        f"\nprojection from one 14M task: {task_s:.2f} s on one CPU thread ({cpu_peak / 1e9:.0f} "
        f"GFLOP/s matmul peak); assumed: compute scales with the sweep's matmul FLOPs and runs "
        f"at the same fraction of a {args.gpu_tflops:.0f} TFLOP/s GPU's peak; fp16 checkpoints "
        f"read at {args.load_gbps:g} GB/s; {args.write_edges_per_s:,.0f} edges/s into one Neo4j"
    )
    print(f"{'model':<6} {'compute s':>9} {'load s':>7} {'write s':>8} " + " ".join(
        f"{g:>4} GPU{'s' if g > 1 else ' '}" for g in GPU_COUNTS
    ))  # fmt: skip
    out: dict[str, str] = {}
    for name, (shape, params) in PYTHIA.items():
        flops = ours_flops(shape, args.prompts, tokens, n_scored * args.prompts)
        compute_s = task_s * flops / f14 / gpu_per_cpu
        load_s = 2 * params / (args.load_gbps * 1e9)
        write_s = downstream_pairs(shape) / args.write_edges_per_s
        per = load_s + compute_s + write_s
        walls = [
            max(math.ceil(RUN_CHECKPOINTS / g) * per, RUN_CHECKPOINTS * write_s) + START_S
            for g in GPU_COUNTS
        ]
        cells = " ".join(f"{_duration(w):>8}" for w in walls)
        print(f"{name:<6} {compute_s:9.2f} {load_s:7.2f} {write_s:8.2f} {cells}")
        for g, w in zip(GPU_COUNTS, walls, strict=True):
            out[f"pythia_{name}_{g}gpu_min"] = f"{w / 60:.1f}"
    return out


def downstream_pairs(shape: Shape) -> int:
    """The (source, target) pairs a sweep of ``shape`` measures: its edges per checkpoint."""
    components = all_components(shape.n_layers, shape.n_heads)
    return sum(is_downstream(a, b, True) for a in components for b in components)


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


if __name__ == "__main__":
    sys.exit(main())
