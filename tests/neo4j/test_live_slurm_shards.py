"""The SLURM job-array script ``deploy/slurm/ingest-array.sbatch`` run as SLURM would run it:
three copies at once, each with its array task's environment, on a toy run against the live
Neo4j, must store what one ``circuitatlas ingest`` process stores. The array starts at index 4
(``--array=4-6``), so a script that took the task id for the shard would fail. Also: what the
script refuses before running anything, each with one line on stderr.

The shared helpers (the ingest command, its summary, the sweep options) come from
``test_live_ingest``, which holds the two-shard test of the command itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from store_dump import dump_neo4j, without_created_at
from test_live_ingest import SWEEP_OPTIONS, TOY_STEPS, Ingested, finish, ingest

from circuitatlas.store import open_store

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "slurm" / "ingest-array.sbatch"
FIRST, TASKS = 4, 3  # --array=4-6
TOY_CHECKPOINTS = 7  # the run's first checkpoint is left out with REVISIONS: 6 are swept
CLI = f"{sys.executable} -m circuitatlas.cli"


def array_env(task: int | None, **settings: str | None) -> dict[str, str]:
    """The environment of task ``task`` of the array (``None``: not an array task) with
    ``settings`` (a ``None`` value removes that variable), without progress bars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env |= {"TQDM_DISABLE": "1", "CIRCUITATLAS": CLI}
    if task is not None:
        env |= {
            "SLURM_ARRAY_JOB_ID": "4242",
            "SLURM_ARRAY_TASK_ID": str(task),
            "SLURM_ARRAY_TASK_MIN": str(FIRST),
            "SLURM_ARRAY_TASK_MAX": str(FIRST + TASKS - 1),
            "SLURM_ARRAY_TASK_STEP": "1",
            "SLURM_ARRAY_TASK_COUNT": str(TASKS),
        }
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start_task(env: dict[str, str]) -> subprocess.Popen[str]:
    """Start the script as a batch job's shell runs it."""
    return subprocess.Popen(
        ["bash", str(SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def run_task(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the script to the end, whatever its exit status."""
    return finish(start_task(env))


def runs_of(url: str, model: Path) -> list[str]:
    """The ids of the stored runs of ``model``."""
    with open_store(url) as store:
        runs = store.runs()
    return list(runs.run_id[runs.model == str(model)])


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny real toy run's checkpoint directory (a path unique to the session, so a run id
    no other session makes) and the revisions that select all but its first checkpoint."""
    from circuitatlas.ingest.toy import checkpoint_steps, train_toy

    out = tmp_path_factory.mktemp("live-slurm") / "toy"
    train_toy(out, steps=TOY_STEPS, checkpoints=TOY_CHECKPOINTS, seed=0, progress=False)
    steps = checkpoint_steps(TOY_STEPS, TOY_CHECKPOINTS)[1:]
    return out, ",".join(f"step{s}" for s in steps)


def test_array_tasks_store_what_one_process_stores(
    toy_run: tuple[Path, str],
    neo4j_url: str,
    delete_runs: list[str],
    delete_now: Callable[[list[str]], None],
) -> None:
    """One process first (its run id registered for deletion before anything can fail), then,
    the run deleted, the array's three tasks at once: each writes its third of the
    checkpoints, interleaved with the others, and the store ends the same, NEXT links too."""
    model, revisions = toy_run
    one = ingest(neo4j_url, "--model", str(model), "--revisions", revisions, *SWEEP_OPTIONS)
    delete_runs.append(one.run_id)
    checkpoints = TOY_CHECKPOINTS - 1
    assert one.written == checkpoints
    with open_store(neo4j_url) as live:
        single = without_created_at(dump_neo4j(live, [one.run_id]))
    n_components = len(single["Component"]) // checkpoints
    assert len(single["NEXT"]) == n_components * (checkpoints - 1)
    delete_now([one.run_id])

    settings = {"MODEL": str(model), "REVISIONS": revisions, "NEO4J_URI": neo4j_url}
    settings["CIRCUITATLAS_ARGS"] = " ".join(SWEEP_OPTIONS)
    tasks = [start_task(array_env(t, **settings)) for t in range(FIRST, FIRST + TASKS)]
    try:
        done = [finish(task) for task in tasks]
    finally:
        for task in tasks:
            if task.poll() is None:
                task.kill()
                task.wait()
        delete_runs.extend(runs_of(neo4j_url, model))  # another run id, were the tasks wrong
    for shard, task in enumerate(done, start=1):
        assert task.returncode == 0, task.stderr
        head = f"task {FIRST + shard - 1} of array job 4242: shard {shard}/{TASKS} of {model}"
        assert task.stdout.startswith(head), task.stdout
    per_task = checkpoints // TASKS
    assert [Ingested.of(task) for task in done] == [Ingested(one.run_id, per_task, 0)] * TASKS
    with open_store(neo4j_url) as live:
        assert without_created_at(dump_neo4j(live, [one.run_id])) == single


@pytest.mark.parametrize(
    ("task", "settings", "message"),
    [
        (None, {}, "not a SLURM array task"),
        (FIRST, {"MODEL": None}, "MODEL is not set"),
        (FIRST, {"MODEL": ""}, "MODEL is not set"),
        (FIRST, {"NEO4J_URI": None}, "NEO4J_URI is not set"),
        (FIRST, {"NEO4J_URI": "runs/toy.lbdb"}, "NEO4J_URI must be a neo4j:// or bolt:// URL"),
        (FIRST, {"SLURM_ARRAY_TASK_MAX": "9"}, "are not a range of 3 tasks"),  # --array=4,5,9
        (FIRST, {"SLURM_ARRAY_TASK_ID": "3"}, "task 3 is not in the array"),
    ],
)
def test_bad_input_is_refused_in_one_line_before_anything_runs(
    task: int | None, settings: dict[str, str | None], message: str, neo4j_url: str
) -> None:
    """``CIRCUITATLAS=true``: had the script gone on to run its command, it would exit 0."""
    good = {"MODEL": "runs/toy", "NEO4J_URI": neo4j_url, "CIRCUITATLAS": "true"}
    done = run_task(array_env(task, **{**good, **settings}))
    assert done.returncode != 0
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("ingest-array.sbatch: ") and message in done.stderr


@pytest.mark.parametrize(
    ("array", "shards"),
    [
        ((0, 15, 1, 16), [(0, "1/16"), (15, "16/16")]),  # --array=0-15
        ((101, 103, 1, 3), [(101, "1/3"), (102, "2/3"), (103, "3/3")]),  # --array=101-103
        ((0, 30, 2, 16), [(0, "1/16"), (2, "2/16"), (30, "16/16")]),  # --array=0-30:2
    ],
)
def test_the_shard_is_the_tasks_place_in_the_array(
    array: tuple[int, int, int, int], shards: list[tuple[int, str]], neo4j_url: str
) -> None:
    """The command each task runs, word for word (``CIRCUITATLAS`` prints its arguments)."""
    first, last, step, count = array
    for task, shard in shards:
        env = array_env(
            task,
            MODEL="runs/my toy",
            REVISIONS="0:20:5",
            NEO4J_URI=neo4j_url,
            CIRCUITATLAS="printf %s\\n",
            CIRCUITATLAS_ARGS="--device cpu  --prompts 4",
            SLURM_ARRAY_TASK_MIN=str(first),
            SLURM_ARRAY_TASK_MAX=str(last),
            SLURM_ARRAY_TASK_STEP=str(step),
            SLURM_ARRAY_TASK_COUNT=str(count),
        )
        done = run_task(env)
        assert done.returncode == 0, done.stderr
        words = done.stdout.splitlines()[1:]
        assert words == [
            "ingest",
            "--model",
            "runs/my toy",
            "--revisions",
            "0:20:5",
            "--store",
            neo4j_url,
            "--shard",
            shard,
            "--device",
            "cpu",
            "--prompts",
            "4",
        ]
