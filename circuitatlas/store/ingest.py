"""Ingest a run into a store, checkpoint by checkpoint, resumably.

Two sources: a live sweep of a model's checkpoints (:func:`ingest_plan`) or the Parquet output of
``circuitatlas sweep`` (:func:`ingest_sweep`). Either way the run id comes from the configuration,
the store is asked which steps it holds, and only the others are swept and written; each write is
one transaction, so a killed ingest resumes where it stopped. ``shard=(i, n)`` takes the i-th of
every n checkpoints (1-based), so n machines can ingest one run into one Neo4j.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.pipeline import (
    CheckpointFrames,
    RunPlan,
    SweepResult,
    run_id_of,
    sweep_checkpoints,
)
from circuitatlas.store.base import StoreBase
from circuitatlas.store.rows import RunRecord, edge_batches

# Checkpoints are written in batches of at most this many edges per transaction: one commit
# per checkpoint costs a LadybugDB checkpoint (~0.1–0.4 s) each, and LadybugDB 0.x keeps about
# 50 MiB of its buffer pool per committed transaction until the file is closed (measured: 60
# one-checkpoint commits of 436 edges grew the process by 3 GiB; a 1 GiB pool was full after
# ~20), so a live sweep of hundreds of checkpoints must not commit each alone. Neo4j splits a
# batch further (``MAX_TRANSACTION_EDGES``).
DEFAULT_BATCH_EDGES = 1_000_000
# A live sweep's batch is written this many seconds after its first checkpoint was swept, so a
# killed ingest loses at most about this much sweeping, and the store shows progress.
FLUSH_S = 30.0


@dataclass
class IngestReport:
    """What an ingest did."""

    run_id: str
    store: str
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # already in the store

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"run {self.run_id}: wrote {len(self.written)} checkpoints, skipped "
            f"{len(self.skipped)} already stored → {self.store}"
        )


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` → ``(i, n)`` with 1 ≤ i ≤ n; ``None`` → ``(1, 1)``."""
    if text is None:
        return (1, 1)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise CircuitAtlasError(
            f"--shard {text!r}: give i/n with 1 ≤ i ≤ n, e.g. 1/4 for the first of four machines"
        )
    return int(match.group(1)), int(match.group(2))


def shard_steps(steps: list[int], shard: tuple[int, int]) -> list[int]:
    """The i-th of every n steps, in run order."""
    i, n = shard
    return steps[i - 1 :: n]


def start_report(
    store: StoreBase, run: RunRecord, shard: tuple[int, int]
) -> tuple[IngestReport, list[int]]:
    """The report so far (this shard's stored steps skipped) and the steps left to write."""
    mine = shard_steps(list(run.planned_steps), shard)
    stored = set(store.stored_steps(run.run_id))
    report = IngestReport(run.run_id, store.url, skipped=[s for s in mine if s in stored])
    return report, [s for s in mine if s not in stored]


def ingest_plan(
    store: StoreBase,
    plan: RunPlan,
    shard: tuple[int, int] = (1, 1),
    progress: bool = True,
    batch_edges: int = DEFAULT_BATCH_EDGES,
    flush_s: float = FLUSH_S,
) -> IngestReport:
    """Sweep the plan's checkpoints that the store lacks and write them as they come, in
    batches of whole checkpoints: a batch is written once it holds ``batch_edges`` edges or
    ``flush_s`` seconds after its first checkpoint was swept."""
    from tqdm.auto import tqdm

    run = RunRecord.from_config(plan.config)
    report, steps = start_report(store, run, shard)
    todo = [r for r in plan.refs if r.step in set(steps)]
    with tqdm(total=len(todo), desc="ingest", unit="ckpt", disable=not progress) as bar:

        def swept() -> Iterator[CheckpointFrames]:
            for frames in sweep_checkpoints(plan, todo, progress=False):
                bar.set_postfix_str(f"step {frames.step}")
                bar.update()
                yield frames

        for batch in edge_batches(swept(), _n_edges, batch_edges, flush_s):
            _write(store, run, report, batch)
    return report


def check_sweep(result: SweepResult, directory: str) -> None:
    """Refuse a sweep directory whose frames or configuration do not belong together."""
    config = result.config
    if "run_id" not in config or run_id_of(config) != config["run_id"]:
        raise CircuitAtlasError(
            f"--from {directory}: config.json's run_id does not match its configuration; "
            f"sweep again"
        )
    planned = [int(s) for s in config.get("steps", [])]
    for name in ("checkpoints", "components", "edges"):
        frame = getattr(result, name)
        if "step" not in frame.columns:
            raise CircuitAtlasError(f"--from {directory}: {name}.parquet has no step column")
        steps = sorted(int(s) for s in frame.step.unique())
        if steps != sorted(planned):
            raise CircuitAtlasError(
                f"--from {directory}: {name}.parquet holds steps {steps[:6]}, config.json "
                f"plans {planned[:6]}; the files come from different sweeps — sweep again"
            )


def sweep_frames(result: SweepResult, steps: list[int]) -> Iterator[CheckpointFrames]:
    """Each of ``steps`` of a read sweep as one checkpoint's frames."""
    groups = {
        name: dict(iter(getattr(result, name).groupby("step", sort=False)))
        for name in ("checkpoints", "components", "edges")
    }
    for step in steps:
        yield CheckpointFrames(
            step, *(groups[name][step] for name in ("checkpoints", "components", "edges"))
        )


def ingest_sweep(
    store: StoreBase,
    result: SweepResult,
    shard: tuple[int, int] = (1, 1),
    progress: bool = True,
    batch_edges: int = DEFAULT_BATCH_EDGES,
) -> IngestReport:
    """Write a read sweep's checkpoints that the store lacks, in batches of ≤ ``batch_edges``."""
    from tqdm.auto import tqdm

    run = RunRecord.from_config(result.config)
    report, todo = start_report(store, run, shard)
    with tqdm(total=len(todo), desc="ingest", unit="ckpt", disable=not progress) as bar:
        for batch in edge_batches(sweep_frames(result, todo), _n_edges, batch_edges):
            _write(store, run, report, batch)
            bar.update(len(batch))
    return report


def _n_edges(frames: CheckpointFrames) -> int:
    return len(frames.edges)


def _write(
    store: StoreBase, run: RunRecord, report: IngestReport, batch: list[CheckpointFrames]
) -> None:
    """Write ``batch`` in one transaction and record which steps were new in ``report``."""
    steps = [f.step for f in batch]
    stored_before = set(store.stored_steps(run.run_id))
    store.write_checkpoints(run, batch)
    # another writer (a shard) may have stored some of them meanwhile: they count as skipped
    report.written.extend(s for s in steps if s not in stored_before)
    report.skipped.extend(s for s in steps if s in stored_before)
