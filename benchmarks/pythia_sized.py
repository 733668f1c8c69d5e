"""What the benchmarks share: the synthetic Pythia-1.4B-sized run of benchmarks/analytics.py and
benchmarks/paths.py (24 layers × 16 heads, parallel blocks: 410 components, 80 581 downstream
pairs per checkpoint, seeded random similarities, ingested into a fresh LadybugDB store, not
timed), and the live Neo4j that benchmarks/store.py and benchmarks/analytics.py also measure
when ``NEO4J_URI`` is set: a driver, and the deletion of what a benchmark wrote there."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep


def checkpoint_steps(description: str) -> list[int]:
    """The steps ``--checkpoints N`` (default 143) or ``--quick`` (8) ask for."""
    return benchmark_args(description).steps


def benchmark_args(description: str, neo4j: bool = False) -> argparse.Namespace:
    """``--checkpoints N`` (default 143) or ``--quick`` (8), as ``steps``; with ``neo4j`` also
    ``--no-neo4j`` and ``--scratch-neo4j`` (as ``no_neo4j``, ``scratch_neo4j``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--checkpoints", type=int, default=143)
    parser.add_argument("--quick", action="store_true", help="8 checkpoints")
    if neo4j:
        parser.add_argument("--no-neo4j", action="store_true", help="the embedded store only")
        parser.add_argument(
            "--scratch-neo4j",
            action="store_true",
            help="start a Neo4j of its own (tools/neo4j/local.py, 2g heap) instead of NEO4J_URI's",
        )
    args = parser.parse_args()
    n = 8 if args.quick else args.checkpoints
    args.steps = [i * 1000 for i in range(n)]
    return args


def ingested_run(path: Path, steps: list[int]) -> str:
    """Build the run's checkpoints at ``steps`` into a new store at ``path``; its run id."""
    t0 = time.perf_counter()
    sweep = synthetic_sweep(24, 16, steps, seed=0)
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
    took = time.perf_counter() - t0
    print(f"built and ingested {len(steps)} checkpoints in {took:.1f} s", file=sys.stderr)
    return sweep.run_id


# -- the live Neo4j --------------------------------------------------------------------------
# Deleting a run: its INFLUENCES relationships through their (run_id, step) index, then its
# components (with their HAS_COMPONENT and NEXT), then its checkpoints and the Run, each in
# batches from one auto-commit transaction, so no transaction holds a whole run.
DELETE_RUN = (
    "MATCH ()-[e:INFLUENCES]->() WHERE e.run_id = $run_id AND e.step IS NOT NULL "
    "CALL (e) { DELETE e } IN TRANSACTIONS OF 10000 ROWS",
    "MATCH (c:Component) WHERE c.run_id = $run_id AND c.step IS NOT NULL "
    "CALL (c) { DETACH DELETE c } IN TRANSACTIONS OF 10000 ROWS",
    "MATCH (c:Checkpoint) WHERE c.run_id = $run_id "
    "CALL (c) { DETACH DELETE c } IN TRANSACTIONS OF 10000 ROWS",
    "MATCH (r:Run {run_id: $run_id}) DETACH DELETE r",
)


def neo4j_url() -> str | None:
    """``NEO4J_URI``, or None (then the benchmarks say so and skip Neo4j)."""
    return os.environ.get("NEO4J_URI") or None


@contextmanager
def neo4j_driver(url: str) -> Iterator[Any]:
    """A driver for the benchmarks' own statements (deleting what they wrote)."""
    import neo4j

    from circuitatlas.store.neo4j import credentials, redact

    user, password = credentials(url)
    with neo4j.GraphDatabase.driver(redact(url), auth=(user, password or "")) as driver:
        yield driver


def delete_run(driver: Any, run_id: str) -> float:
    """Delete every node and relationship of ``run_id``; the seconds it took."""
    t0 = time.perf_counter()
    with driver.session(database=os.environ.get("NEO4J_DATABASE") or None) as session:
        for text in DELETE_RUN:
            session.run(text, {"run_id": run_id}).consume()
    return time.perf_counter() - t0


@contextmanager
def deleting_runs(url: str) -> Iterator[list[str]]:
    """A list to add run ids to; each is deleted from Neo4j on leaving, also after an error,
    Ctrl-C or SIGTERM (turned into SystemExit here)."""
    run_ids: list[str] = []
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        yield run_ids
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the cleanup
        try:
            with neo4j_driver(url) as driver:
                for run_id in run_ids:
                    took = delete_run(driver, run_id)
                    print(f"deleted run {run_id} from Neo4j in {took:.1f} s", file=sys.stderr)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
