"""A live sweep is written in batches of whole checkpoints (by edge count and by time), and the
store ends the same as when each checkpoint is its own transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_dump import dump, without_created_at

from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.ingest.toy import train_toy
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_plan
from circuitatlas.store.rows import edge_batches

CHECKPOINTS = 4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batches") / "toy"
    train_toy(out, steps=30, checkpoints=CHECKPOINTS, progress=False)
    return out


def _ingest(run: Path, path: Path, **kw: float) -> tuple[list[int], dict, list[int]]:
    """Batch sizes written, the store's dump and the report's written steps."""
    plan = plan_run(str(run), None, SweepSettings(n_prompts=4, edge_scores="none"))
    sizes: list[int] = []
    with open_store(path, writable=True) as store:
        real = store.write_checkpoints

        def recording(record, batch):  # what reaches the store, transaction by transaction
            sizes.append(len(batch))
            return real(record, batch)

        store.write_checkpoints = recording
        report = ingest_plan(store, plan, progress=False, **kw)
        return sizes, without_created_at(dump(store)), report.written


def test_batched_equals_one_transaction_per_checkpoint(run: Path, tmp_path: Path) -> None:
    sizes, batched, written = _ingest(run, tmp_path / "batched.lbdb")
    assert sizes == [CHECKPOINTS]  # a short sweep: one transaction
    one_sizes, alone, one_written = _ingest(run, tmp_path / "alone.lbdb", batch_edges=1)
    assert one_sizes == [1] * CHECKPOINTS
    assert batched == alone
    assert written == one_written and len(written) == CHECKPOINTS


def test_a_batch_is_written_when_its_time_is_up(run: Path, tmp_path: Path) -> None:
    sizes, _, _ = _ingest(run, tmp_path / "timed.lbdb", flush_s=0.0)
    assert sizes == [1] * CHECKPOINTS


def test_a_rerun_writes_nothing(run: Path, tmp_path: Path) -> None:
    path = tmp_path / "again.lbdb"
    _ingest(run, path)
    sizes, _, written = _ingest(run, path)
    assert sizes == [] and written == []


def test_edge_batches_end_by_size_and_by_time() -> None:
    ticks = iter([0.0, 1.0, 5.0, 6.0, 7.0, 20.0, 21.0, 22.0, 23.0])
    items = [3, 3, 3, 3, 3, 3]
    by_size = list(edge_batches(items, lambda n: n, max_edges=7))
    assert by_size == [[3, 3], [3, 3], [3, 3]]
    by_time = list(
        edge_batches(items, lambda n: n, 100, max_seconds=5.0, clock=lambda: next(ticks))
    )
    # begun at 0, 5 s passed by the second item; begun at 6, 14 s by the next; the last two
    # within 2 s, so the end of the items ends their batch
    assert by_time == [[3, 3], [3, 3], [3, 3]]
