"""A real Ray cluster on 127.0.0.1 for the tests: a head node and extra worker nodes, each a
``ray start --block`` process of its own (its own process group, so that stopping a node, or the
whole cluster, ends exactly the processes the test started: never ``ray stop``, which would end
every Ray process of the machine).

Every node has one CPU and a small object store. The head's health checks are fast, so that a
node the test kills is declared dead, and its tasks retried elsewhere, within a few seconds.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

_TOKEN = secrets.token_hex(32)
RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE_BYTES = 200 * 1024 * 1024
START_TIMEOUT_S = 90.0
# the head declares a silent node dead after 3 missed checks 0.5 s apart (default: 5 × 3 s)
FAST_HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


@dataclass
class RayCluster:
    """The running cluster: its address, its node processes, and the session's temp dir."""

    address: str
    head: subprocess.Popen[bytes]
    temp_dir: str
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """Every node's ``ray start`` process, the head first."""
        return [self.head, *self.workers]

    def add_worker(self, cpus: int = 1) -> subprocess.Popen[bytes]:
        """Start one more worker node and wait until the cluster counts it. Each worker node has
        a loopback address of its own (127.0.0.2, 127.0.0.3, …): a driver on 127.0.0.1 attaches
        to the head, so a worker node can be killed under it."""
        expected = len(self.processes) + 1
        log = Path(self.temp_dir) / f"node-{expected}.log"
        ip = f"127.0.0.{expected}"
        command = [RAY, "start", "--address", self.address, *_node_options(cpus, ip)]
        node = _start(command, self.env, log)
        self.workers.append(node)
        wait_for_nodes(self.address, expected, self.env, node, log)
        return node

    def kill_node(self, node: subprocess.Popen[bytes]) -> None:
        """SIGKILL every process of one node (its raylet, object store and workers)."""
        _end_group(node, signal.SIGKILL)
        self.workers.remove(node)

    def stop(self) -> None:
        """End every node the cluster started, workers first."""
        for node in reversed(self.processes):
            _end_group(node, signal.SIGTERM)
        self.workers.clear()


def start_cluster(extra_workers: int = 1, env: dict[str, str] | None = None) -> RayCluster:
    """A head on a free port of 127.0.0.1 plus ``extra_workers`` worker nodes, all started.

    ``env``: the nodes' environment (default: this process's); the workers' Python is the one
    of the nodes' environment, so its ``PYTHONPATH`` decides what the tasks can import.
    """
    base = dict(os.environ if env is None else env)
    base |= FAST_HEALTH_CHECKS | {"RAY_USAGE_STATS_ENABLED": "0"} | client_env()
    temp_dir = tempfile.mkdtemp(prefix="ca-ray-")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = _start(
        [
            RAY, "start", "--head", "--port", str(port), "--temp-dir", temp_dir,
            "--include-dashboard=false", "--dashboard-port", str(_free_port()),
            "--disable-usage-stats",
            *_node_options(1),
        ],
        base,
        Path(temp_dir) / "head.log",
    )  # fmt: skip
    cluster = RayCluster(address, head, temp_dir, base)
    try:
        wait_for_nodes(address, 1, base, head, Path(temp_dir) / "head.log")
        for _ in range(extra_workers):
            cluster.add_worker()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def client_env() -> dict[str, str]:
    """The environment a driver needs to join the test clusters: token authentication (Ray's
    default for clusters on one machine) with a token of the test session's own."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": _TOKEN}


def wait_for_nodes(
    address: str, count: int, env: dict[str, str], node: subprocess.Popen[bytes], log: Path
) -> None:
    """Wait until ``ray status`` at ``address`` lists ``count`` alive nodes (fail at once, with
    its log, when the node just started exits)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    seen = ""
    while time.monotonic() < deadline:
        if node.poll() is not None:
            raise RuntimeError(f"ray start exited with {node.returncode}:\n{log.read_text()}")
        done = subprocess.run(
            [RAY, "status", "--address", address], capture_output=True, text=True, env=env
        )
        seen = done.stdout + done.stderr
        if done.returncode == 0 and _alive_nodes(seen) >= count:
            return
        time.sleep(1.0)
    raise TimeoutError(f"the Ray cluster at {address} did not reach {count} nodes:\n{seen}")


def task_workers(
    cluster: RayCluster, task: str, nodes: list[subprocess.Popen[bytes]] | None = None
) -> list[int]:
    """The pids of the worker processes now running ``task`` (by process title) on ``nodes``
    (default: every node of the cluster)."""
    ours = {p.pid for p in (cluster.processes if nodes is None else nodes)}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if title.startswith(f"ray::{task}") and _descends_from(int(entry.name), ours):
            found.append(int(entry.name))
    return found


# the toy run the Ray tests sweep: a fresh worker's first checkpoint takes seconds (it starts and
# imports torch), so a test can kill a task while it runs; later ones take a fraction of a second
TOY_STEPS, TOY_CHECKPOINTS = 40, 9
SWEEP_OPTIONS = ("--prompts", "16", "--seq-len", "33", "--device", "cpu")


def train_ray_toy(out: Path, checkpoints: int = TOY_CHECKPOINTS) -> Path:
    """Train the Ray tests' toy run, with ``checkpoints`` checkpoints, into ``out``."""
    from circuitatlas.ingest.toy import train_toy

    train_toy(out, steps=TOY_STEPS, checkpoints=checkpoints, seed=0, progress=False)
    return out


def _node_options(cpus: int, ip: str = "127.0.0.1") -> list[str]:
    return [
        "--node-ip-address", ip, "--num-cpus", str(cpus), "--num-gpus", "0",
        "--object-store-memory", str(OBJECT_STORE_BYTES), "--block",
    ]  # fmt: skip


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _end_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group the node's ``ray start`` leads, then make sure it and
    its children are gone (SIGKILL after 20 s)."""
    with _gone_ok():
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with _gone_ok():
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    with _gone_ok():  # children that outlived their parent, still in the group
        os.killpg(process.pid, signal.SIGKILL)


class _gone_ok:
    """Ignore ProcessLookupError: the group is already gone."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> bool:
        return kind is ProcessLookupError


def _descends_from(pid: int, ancestors: set[int]) -> bool:
    while pid > 1:
        if pid in ancestors:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _alive_nodes(status: str) -> int:
    """The number of active nodes in ``ray status`` output (the lines under ``Active:``)."""
    lines = status.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Active:")
    except StopIteration:
        return 0
    count = 0
    for line in lines[start + 1 :]:
        if not line.strip().startswith("1 node_"):
            break
        count += 1
    return count


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
