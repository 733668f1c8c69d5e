"""``circuitatlas ingest --ray`` into the live Neo4j, the workers writing, under faults: on the
session's Ray cluster on 127.0.0.1 (a head and a worker node, tests/ray_cluster.py), a toy run's
checkpoints swept while the test

* SIGKILLs a worker process in the middle of a task: Ray retries it;
* kills a whole worker node (every process of it) while it runs a task: Ray runs it elsewhere;
* sends the driver SIGINT (Ctrl-C) once a checkpoint is stored: only whole checkpoints stay,
  and the same command resumes;
* gives it a corrupt checkpoint among good ones: that one fails with its name, the others stored.

After each, the run's whole dump (every node and relationship with all properties, NEXT links
included) must equal that of an uninterrupted single-process ingest.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_process import Ingested, circuitatlas, circuitatlas_process, finish
from ray_cluster import (
    SWEEP_OPTIONS,
    TOY_CHECKPOINTS,
    TOY_STEPS,
    RayCluster,
    client_env,
    task_workers,
    train_ray_toy,
)
from store_dump import dump_neo4j, without_created_at

from circuitatlas.store import open_store

pytestmark = pytest.mark.ray

TASK = "_sweep_task"  # the Ray task's name, which its worker process takes as its title
WAIT_S = 120.0


class Single:
    """The toy run as one ``circuitatlas ingest`` process stores it."""

    def __init__(self, url: str, model: Path, checkpoints: int) -> None:
        self.model = model
        self.run_id = Ingested.of(
            circuitatlas("ingest", "--model", str(model), "--store", url, *SWEEP_OPTIONS)
        ).run_id
        with open_store(url) as live:
            self.dump = without_created_at(dump_neo4j(live, [self.run_id]))
            self.steps = live.stored_steps(self.run_id)
            self.components = {s: len(live.components(self.run_id, s)) for s in self.steps}
            self.edges = {s: len(live.edges(self.run_id, step=s)) for s in self.steps}
        assert len(self.steps) == checkpoints


def _reference(
    tmp_path_factory: pytest.TempPathFactory, delete_module_runs: list[str], checkpoints: int
) -> Single:
    url = os.environ["NEO4J_URI"]
    model = train_ray_toy(tmp_path_factory.mktemp("live-ray") / "toy", checkpoints)
    reference = Single(url, model, checkpoints)
    delete_module_runs.append(reference.run_id)
    return reference


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, delete_module_runs: list[str]) -> Single:
    """The reference ingest; its run is deleted when the module ends."""
    return _reference(tmp_path_factory, delete_module_runs, TOY_CHECKPOINTS)


# the Ctrl-C test's run: a checkpoint of the toy takes a fraction of a second once the workers
# have started, and the tasks run side by side, so with 9 checkpoints the rest were all stored
# before the interrupt could land (seen under CI's load); with one per training step the run goes
# on for several seconds after its first checkpoint is stored
LONG_CHECKPOINTS = TOY_STEPS + 1


@pytest.fixture(scope="module")
def long_single(tmp_path_factory: pytest.TempPathFactory, delete_module_runs: list[str]) -> Single:
    """The reference ingest of the run with a checkpoint at every step."""
    return _reference(tmp_path_factory, delete_module_runs, LONG_CHECKPOINTS)


def start_ray_ingest(
    cluster: RayCluster, url: str, model: Path, cwd: Path
) -> subprocess.Popen[str]:
    """Start ``circuitatlas ingest --ray ADDRESS`` of ``model`` into ``url``."""
    return circuitatlas_process(
        "ingest", "--model", str(model), "--store", url, "--ray", cluster.address,
        *SWEEP_OPTIONS, env=client_env(), cwd=cwd,
    )  # fmt: skip


def wait_for(what: str, found: Callable[[], object], driver: subprocess.Popen[str]) -> object:
    """Poll ``found`` until it returns something true, while the driver runs."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if value := found():
            return value
        if driver.poll() is not None:
            pytest.fail(f"the ingest ended before {what}:\n{finish(driver).stderr}")
        time.sleep(0.02)
    driver.kill()
    pytest.fail(f"no {what} within {WAIT_S:.0f} s")


def assert_stored_like(single: Single, url: str, done: subprocess.CompletedProcess[str]) -> None:
    """The ingest succeeded, wrote every checkpoint once, and the store equals the reference."""
    got = Ingested.of(done)
    assert got.run_id == single.run_id
    # a worker killed after its commit leaves the retry nothing to write: skipped, not twice
    assert got.written + got.skipped == len(single.steps)
    with open_store(url) as live:
        assert without_created_at(dump_neo4j(live, [single.run_id])) == single.dump


def test_a_killed_worker_is_retried_and_its_checkpoint_stored_once(
    single: Single,
    ray_cluster: RayCluster,
    neo4j_url: str,
    tmp_path: Path,
    delete_now: Callable[[list[str]], None],
) -> None:
    delete_now([single.run_id])
    driver = start_ray_ingest(ray_cluster, neo4j_url, single.model, tmp_path)
    victims = wait_for("a running task", lambda: task_workers(ray_cluster, TASK), driver)
    os.kill(victims[0], signal.SIGKILL)  # type: ignore[index]
    assert_stored_like(single, neo4j_url, finish(driver))


def test_a_dead_nodes_tasks_run_on_the_others(
    single: Single,
    ray_cluster: RayCluster,
    neo4j_url: str,
    tmp_path: Path,
    delete_now: Callable[[list[str]], None],
) -> None:
    """A third node joins; once it runs a task, every process of it is SIGKILLed."""
    delete_now([single.run_id])
    node = ray_cluster.add_worker()
    driver = start_ray_ingest(ray_cluster, neo4j_url, single.model, tmp_path)
    wait_for("a task on the new node", lambda: task_workers(ray_cluster, TASK, [node]), driver)
    ray_cluster.kill_node(node)
    done = finish(driver)
    assert_stored_like(single, neo4j_url, done)


def test_ctrl_c_leaves_whole_checkpoints_and_the_same_command_resumes(
    long_single: Single,
    ray_cluster: RayCluster,
    neo4j_url: str,
    tmp_path: Path,
    delete_now: Callable[[list[str]], None],
) -> None:
    delete_now([long_single.run_id])
    driver = start_ray_ingest(ray_cluster, neo4j_url, long_single.model, tmp_path)

    # one open connection polled every 20 ms, so the interrupt comes right after the first
    with open_store(neo4j_url) as live:
        wait_for("a stored checkpoint", lambda: live.stored_steps(long_single.run_id), driver)
        driver.send_signal(signal.SIGINT)
        done = finish(driver)
        assert done.returncode == 130, done.stderr
        lines = [s for s in done.stderr.splitlines() if s.startswith("interrupted")]
        assert len(lines) == 1 and "run the same command again to resume" in lines[0], done.stderr
        kept = live.stored_steps(long_single.run_id)
        assert 1 <= len(kept) < LONG_CHECKPOINTS, kept
        for step in kept:  # each stored checkpoint whole: every component and every edge
            assert len(live.components(long_single.run_id, step)) == long_single.components[step]
            assert len(live.edges(long_single.run_id, step=step)) == long_single.edges[step]
    again = finish(start_ray_ingest(ray_cluster, neo4j_url, long_single.model, tmp_path))
    assert Ingested.of(again).skipped == len(kept)
    assert_stored_like(long_single, neo4j_url, again)


_RUN = re.compile(r"^run (\w+): wrote (\d+) checkpoints, skipped (\d+)", re.M)


def test_a_corrupt_checkpoint_fails_alone_with_its_name(
    single: Single,
    ray_cluster: RayCluster,
    neo4j_url: str,
    tmp_path: Path,
    delete_runs: list[str],
) -> None:
    """A copy of the run with garbage in one (not the first) checkpoint's weights: that one is
    listed with its reason and exit status 1; every other checkpoint is stored whole."""
    model = tmp_path / "toy"
    shutil.copytree(single.model, model)
    bad = single.steps[3]
    (model / f"step{bad}" / "model.safetensors").write_bytes(b"not a safetensors file" * 100)
    done = finish(start_ray_ingest(ray_cluster, neo4j_url, model, tmp_path))
    match = _RUN.search(done.stdout)
    assert match, done.stdout + done.stderr
    run_id = match.group(1)
    delete_runs.append(run_id)
    assert done.returncode == 1, done.stderr
    assert int(match.group(2)) == TOY_CHECKPOINTS - 1
    errors = [s for s in done.stderr.splitlines() if s.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert f"1 checkpoint(s) failed, the others are stored — step {bad}: " in errors[0]
    assert f"step{bad}" in errors[0], errors[0]  # the reason names the file
    with open_store(neo4j_url) as live:
        assert live.stored_steps(run_id) == [s for s in single.steps if s != bad]
        for step in live.stored_steps(run_id):
            assert len(live.edges(run_id, step=step)) == single.edges[step]
