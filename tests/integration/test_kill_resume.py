"""SIGKILL an ingest in the middle of a checkpoint, run the same command again: the store ends
identical (nodes, relationships, properties) to an uninterrupted ingest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from store_dump import dump, without_created_at

from circuitatlas.ingest.pipeline import write_sweep
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store

CLI = [sys.executable, "-m", "circuitatlas.cli"]
STEPS = [0, 5, 10, 20, 40, 80, 160]
KILL_IN = 4  # the 4th checkpoint's transaction: components copied, edges not yet

# Ingest one checkpoint per transaction (a live sweep does the same); in the KILL_IN-th one,
# after the Component COPY, say so and wait to be killed.
VICTIM = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from circuitatlas.ingest.pipeline import read_sweep
    from circuitatlas.store import open_store
    from circuitatlas.store.ingest import ingest_sweep
    from circuitatlas.store.ladybug import LadybugStore

    sweep_dir, store_path, flag, kill_in = sys.argv[1:5]
    real_run, calls = LadybugStore._run, []

    def run(self, name, /, **params):
        out = real_run(self, name, **params)
        if name == "copy_component":
            calls.append(name)
            if len(calls) == int(kill_in):
                Path(flag).write_text("in the middle of a checkpoint")
                time.sleep(600)
        return out

    LadybugStore._run = run
    with open_store(store_path, writable=True) as store:
        ingest_sweep(store, read_sweep(Path(sweep_dir)), progress=False, batch_edges=1)
    """
)


def _ingest(sweep_dir: Path, store: Path) -> subprocess.CompletedProcess:
    args = [*CLI, "ingest", "--from", str(sweep_dir), "--store", str(store)]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kill") / "sweep"
    write_sweep(synthetic_sweep(n_layers=3, n_heads=4, steps=STEPS, seed=7), out)
    return out


def test_killed_ingest_resumes_to_the_same_store(sweep_dir: Path, tmp_path: Path) -> None:
    reference, killed, flag = tmp_path / "ref.lbdb", tmp_path / "killed.lbdb", tmp_path / "flag"
    assert _ingest(sweep_dir, reference).returncode == 0

    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, str(sweep_dir), str(killed), str(flag), str(KILL_IN)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not flag.exists():
        assert victim.poll() is None, victim.stderr.read().decode()
        assert time.monotonic() < deadline, "the ingest never reached the 4th checkpoint"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL

    # what the killed process committed is there, the checkpoint it was writing is not
    with open_store(killed) as store:
        run_id = store.runs().run_id.iloc[0]
        assert store.stored_steps(run_id) == STEPS[: KILL_IN - 1]
        assert store.counts(run_id)["components"] == len(store.components(run_id))

    resumed = _ingest(sweep_dir, killed)
    assert resumed.returncode == 0, resumed.stderr
    assert f"wrote {len(STEPS) - KILL_IN + 1} checkpoints, skipped {KILL_IN - 1}" in resumed.stdout
    with open_store(reference) as a, open_store(killed) as b:
        left, right = without_created_at(dump(a)), without_created_at(dump(b))
    assert left == right
    assert len(left["INFLUENCES"]) > 0 and len(left["NEXT"]) > 0
