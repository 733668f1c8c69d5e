"""``circuitatlas ingest --ray`` into the embedded store, on real Ray clusters: a local one the
command starts itself, and the session's cluster on 127.0.0.1 (a head and a worker node, each a
process of its own) joined by address. Either way the workers send each checkpoint's frames back
and the driver writes them, so the store must equal a single-process ingest of the same run.

Then what is refused, each with one line and exit status 1, before anything is stored: an
address nothing answers at, the [ray] extra missing, and clusters whose workers have no
circuitatlas or another version of it (each a small head of its own, started with a
``PYTHONPATH`` that puts a stand-in package first).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from cli_process import Ingested, circuitatlas
from ray_cluster import (
    SWEEP_OPTIONS,
    TOY_CHECKPOINTS,
    RayCluster,
    client_env,
    start_cluster,
    train_ray_toy,
)
from store_dump import dump, without_created_at

from circuitatlas._version import __version__
from circuitatlas.store import open_store

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real toy run's checkpoint directory."""
    return train_ray_toy(tmp_path_factory.mktemp("ray-toy") / "toy")


@pytest.fixture(scope="module")
def reference(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """The run id and whole-store dump of a single-process ingest of the toy run."""
    store = tmp_path_factory.mktemp("ray-reference") / "one.lbdb"
    one = Ingested.of(
        circuitatlas("ingest", "--model", str(toy), "--store", str(store), *SWEEP_OPTIONS)
    )
    assert one.written == TOY_CHECKPOINTS
    with open_store(str(store)) as s:
        return one.run_id, without_created_at(dump(s))


def test_a_local_cluster_stores_what_one_process_stores(
    toy: Path, reference: tuple[str, dict], tmp_path: Path
) -> None:
    """``--ray`` alone: a local cluster with every core, the driver writing each checkpoint."""
    store = tmp_path / "ray.lbdb"
    args = ("ingest", "--model", str(toy), "--store", str(store), "--ray", *SWEEP_OPTIONS)
    done = circuitatlas(*args, cwd=tmp_path)
    run_id, expected = reference
    assert Ingested.of(done) == Ingested(run_id, TOY_CHECKPOINTS, 0)
    assert "swept on a local Ray cluster: 1 node(s)" in done.stdout
    with open_store(str(store)) as s:
        assert without_created_at(dump(s)) == expected
    again = circuitatlas(*args, cwd=tmp_path)  # all stored: no cluster is started
    assert Ingested.of(again) == Ingested(run_id, 0, TOY_CHECKPOINTS)
    assert "swept on" not in again.stdout


def test_a_remote_cluster_sends_the_frames_back_to_the_driver(
    ray_cluster: RayCluster, toy: Path, reference: tuple[str, dict], tmp_path: Path
) -> None:
    """``--ray HOST:PORT`` with the embedded store: one note line says who writes; each node
    ran some checkpoints, each listed once with its time."""
    store = tmp_path / "ray.lbdb"
    done = circuitatlas(
        "ingest", "--model", str(toy), "--store", str(store), "--ray", ray_cluster.address,
        *SWEEP_OPTIONS, env=client_env(), cwd=tmp_path,
    )  # fmt: skip
    run_id, expected = reference
    assert Ingested.of(done) == Ingested(run_id, TOY_CHECKPOINTS, 0)
    said = [s for s in done.stderr.splitlines() if s.strip() and not s.startswith("ingest:")]
    assert said == [
        f"note: the embedded store {store} is a file on this machine: the workers send their "
        f"frames back and this process writes them"
    ]
    assert f"swept on the Ray cluster at {ray_cluster.address}: 2 node(s), 2 CPUs" in done.stdout
    nodes = [line for line in done.stdout.splitlines() if line.startswith("  node ")]
    assert len(nodes) == 2, done.stdout
    listed = sorted(int(s.split()[0]) for line in nodes for s in line.split(": ", 2)[2].split(", "))
    with open_store(str(store)) as s:
        assert listed == sorted(s.stored_steps(run_id))
        assert without_created_at(dump(s)) == expected


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _refused(done: object, *parts: str) -> None:
    assert done.returncode == 1, done.stderr  # type: ignore[attr-defined]
    lines = done.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for part in parts:
        assert part in lines[0]


def test_an_address_nothing_answers_at_fails_fast_in_one_line(toy: Path, tmp_path: Path) -> None:
    store = tmp_path / "never.lbdb"
    address = f"127.0.0.1:{_free_port()}"
    start = time.monotonic()
    done = circuitatlas("ingest", "--model", str(toy), "--store", str(store), "--ray", address)
    assert time.monotonic() - start < 20
    _refused(done, f"--ray {address}: nothing answers there", "ray start --head")
    assert not store.exists()
    malformed = circuitatlas("ingest", "--model", str(toy), "--store", str(store), "--ray", "head")
    _refused(malformed, "--ray head: give HOST:PORT")


def test_without_the_extra_it_says_how_to_install_it(toy: Path, tmp_path: Path) -> None:
    """A ``ray`` package that cannot be imported, first on the path, stands for the missing
    extra."""
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    store = tmp_path / "never.lbdb"
    done = circuitatlas(
        "ingest", "--model", str(toy), "--store", str(store), "--ray",
        env={"PYTHONPATH": str(fake.parent)},
    )  # fmt: skip
    _refused(done, "pip install 'circuitatlas[ray]'")
    assert not store.exists()


STAND_INS = {
    "another version": ("__version__ = '0.0.1'\n", "has circuitatlas 0.0.1"),
    "none": ("raise ImportError('No module named circuitatlas')\n", "has no circuitatlas"),
}


@pytest.mark.parametrize("case", sorted(STAND_INS))
def test_workers_without_this_version_are_refused_naming_both(
    case: str, toy: Path, tmp_path: Path
) -> None:
    """The nodes' Python finds a stand-in ``circuitatlas`` first: one whose ``_version`` says
    0.0.1, or one that cannot be imported. Nothing is stored."""
    code, says = STAND_INS[case]
    package = tmp_path / "stand-in" / "circuitatlas"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("" if case == "another version" else code)
    (package / "_version.py").write_text(code)
    cluster = start_cluster(0, env={**os.environ, "PYTHONPATH": str(package.parent)})
    try:
        store = tmp_path / "never.lbdb"
        done = circuitatlas(
            "ingest", "--model", str(toy), "--store", str(store), "--ray", cluster.address,
            *SWEEP_OPTIONS, env=client_env(), cwd=tmp_path,
        )  # fmt: skip
    finally:
        cluster.stop()
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert says in errors[0] and f"this driver circuitatlas {__version__}" in errors[0]
    with open_store(str(store)) as s:
        assert s.runs().empty
