"""A killed ingest, and a killed server, against real Neo4j servers: the same command run again
leaves the database exactly as an uninterrupted ingest does (every node, relationship and
property), and an ingest whose server dies ends at once with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j_servers import CLI, PrivateServer, delete_run, error_lines, gone, private_server
from store_dump import dump_neo4j, without_created_at

from circuitatlas.ingest.pipeline import write_sweep
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store

URI = os.environ.get("NEO4J_URI")

STEPS = [0, 5, 10, 20, 40, 80]
KILL_IN = 4  # the 4th checkpoint's transaction: its components written, its edges not yet
EXIT_WITHIN_S = 30

# Runs the CLI with one checkpoint per transaction (as a live sweep writes them); inside the
# KILL_IN-th, once its components are written, it writes FLAG and waits (until GO exists, if
# given, else until it is killed).
VICTIM = textwrap.dedent(
    """
    import functools, sys, time
    from pathlib import Path
    import circuitatlas.store.ingest as ingest
    from circuitatlas.cli import main
    from circuitatlas.store.neo4j import Neo4jStore

    flag, go, kill_in, *args = sys.argv[1:]
    real_unwind, seen = Neo4jStore._unwind, []

    def unwind(self, tx, name, rows, **params):
        real_unwind(self, tx, name, rows, **params)
        if name == "components_write":
            seen.append(name)
            if len(seen) == int(kill_in):
                Path(flag).write_text("inside a checkpoint's transaction")
                deadline = time.monotonic() + 600
                while not (go and Path(go).exists()) and time.monotonic() < deadline:
                    time.sleep(0.05)

    Neo4jStore._unwind = unwind
    ingest.ingest_sweep = functools.partial(ingest.ingest_sweep, batch_edges=1)
    main(args, prog_name="circuitatlas")
    """
)


def _ingest(sweep_dir: Path, url: str, env: dict[str, str] | None = None) -> str:
    """``circuitatlas ingest --from SWEEP_DIR --store URL``; its stdout (it must succeed)."""
    args = [*CLI, "ingest", "--from", str(sweep_dir), "--store", url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _victim(
    sweep_dir: Path, url: str, flag: Path, go: Path | None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """The victim ingest, started; returns once it waits inside the KILL_IN-th checkpoint."""
    args = [sys.executable, "-c", VICTIM, str(flag), str(go or ""), str(KILL_IN)]
    args += ["ingest", "--from", str(sweep_dir), "--store", url]
    victim = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 180
    while not flag.exists():
        assert victim.poll() is None, victim.communicate()[1]
        assert time.monotonic() < deadline, f"the ingest never reached checkpoint {KILL_IN}"
        time.sleep(0.05)
    return victim


def _dump(url: str, run_id: str) -> dict[str, list[str]]:
    """Everything of ``run_id`` in the Neo4j at ``url``, without the volatile stamps."""
    with open_store(url) as store:
        found = dump_neo4j(store, [run_id])
    return without_created_at(found) if found else {}


def _stored(url: str, run_id: str) -> tuple[list[int], int]:
    """The run's stored steps and how many Component nodes it has."""
    with open_store(url) as store:
        found = store.cypher("MATCH (c:Component {run_id: $r}) RETURN count(c) AS n", r=run_id)
        return store.stored_steps(run_id), int(found["n"].iloc[0])


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """A sweep directory of a run unique to this module: (directory, run id, components per
    checkpoint)."""
    sweep = synthetic_sweep(2, 3, STEPS, seed=11, model=f"live-kill-{uuid.uuid4()}")
    out = write_sweep(sweep, tmp_path_factory.mktemp("kill") / "sweep")
    return out, sweep.run_id, len(sweep.components) // len(STEPS)


@pytest.fixture
def shared_url() -> Iterator[str]:
    """The shared server's URL."""
    assert URI is not None
    yield URI


def test_killed_ingest_resumes_to_the_same_database(
    sweep_dir: tuple[Path, str, int], shared_url: str, tmp_path: Path
) -> None:
    directory, run_id, per_checkpoint = sweep_dir
    database = os.environ.get("NEO4J_DATABASE")
    try:
        # the reference: an uninterrupted ingest of the same run (same run id), then removed
        _ingest(directory, shared_url)
        reference = _dump(shared_url, run_id)
        delete_run(shared_url, run_id, database)
        assert _dump(shared_url, run_id) == {}

        victim = _victim(directory, shared_url, tmp_path / "flag", None)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        assert victim.returncode == -signal.SIGKILL

        # what the killed process committed is there, the checkpoint it was writing is not
        assert _stored(shared_url, run_id) == (STEPS[: KILL_IN - 1], (KILL_IN - 1) * per_checkpoint)

        out = _ingest(directory, shared_url)
        assert f"wrote {len(STEPS) - KILL_IN + 1} checkpoints, skipped {KILL_IN - 1}" in out
        assert _dump(shared_url, run_id) == reference
        assert len(reference["INFLUENCES"]) > 0 and len(reference["NEXT"]) > 0
    finally:
        delete_run(shared_url, run_id, database)


# --- a server killed in the middle of an ingest --------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServer]:
    """A private server (this module kills and restarts it)."""
    with private_server(tmp_path_factory.mktemp("neo4j-kill") / "home", gds=False) as s:
        yield s


@pytest.mark.private_server
def test_killed_server_ends_the_ingest_and_a_restart_resumes_it(
    server: PrivateServer, sweep_dir: tuple[Path, str, int], tmp_path: Path
) -> None:
    directory, run_id, per_checkpoint = sweep_dir
    env, url = server.env(), server.url_with_credentials
    password = env["NEO4J_PASSWORD"]
    # the reference: an uninterrupted ingest of the same run into this server, then removed
    _ingest(directory, server.url, env)
    reference = _dump(url, run_id)
    delete_run(url, run_id)
    assert _dump(url, run_id) == {}

    flag, go = tmp_path / "flag", tmp_path / "go"
    victim = _victim(directory, server.url, flag, go, env)
    pid = server.pid()
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    while not gone(pid):
        assert time.monotonic() - killed < 30, "the server outlived SIGKILL"
        time.sleep(0.05)
    go.write_text("go on")  # the ingest's next statement meets the dead server
    out, err = victim.communicate(timeout=120)
    took = time.monotonic() - killed
    print(f"the ingest exited {took:.1f} s after the server was killed")

    assert victim.returncode == 1, err
    assert took < EXIT_WITHIN_S
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and server.url in lines[0]
    assert "Traceback" not in err + out and password not in err + out

    restarted = server.start()
    assert password not in restarted.stdout + restarted.stderr
    # a crash loses nothing committed: the checkpoints before the one being written survive
    assert _stored(url, run_id) == (STEPS[: KILL_IN - 1], (KILL_IN - 1) * per_checkpoint)

    out = _ingest(directory, server.url, env)
    assert f"wrote {len(STEPS) - KILL_IN + 1} checkpoints, skipped {KILL_IN - 1}" in out
    assert _dump(url, run_id) == reference
    assert len(reference["INFLUENCES"]) > 0 and len(reference["NEXT"]) > 0
