"""The synthetic Pythia-1.4B-sized run that benchmarks/analytics.py and benchmarks/paths.py share:
24 layers × 16 heads, parallel blocks (410 components, 80 581 downstream pairs per checkpoint),
seeded random similarities, ingested into a fresh LadybugDB store (not timed)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep


def checkpoint_steps(description: str) -> list[int]:
    """The steps ``--checkpoints N`` (default 143) or ``--quick`` (8) ask for."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--checkpoints", type=int, default=143)
    parser.add_argument("--quick", action="store_true", help="8 checkpoints")
    args = parser.parse_args()
    n = 8 if args.quick else args.checkpoints
    return [i * 1000 for i in range(n)]


def ingested_run(path: Path, steps: list[int]) -> str:
    """Build the run's checkpoints at ``steps`` into a new store at ``path``; its run id."""
    t0 = time.perf_counter()
    sweep = synthetic_sweep(24, 16, steps, seed=0)
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
    took = time.perf_counter() - t0
    print(f"built and ingested {len(steps)} checkpoints in {took:.1f} s", file=sys.stderr)
    return sweep.run_id
