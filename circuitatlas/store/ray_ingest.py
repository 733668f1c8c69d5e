"""Ingest a run's checkpoints as Ray tasks, one task per checkpoint, on a local or remote cluster.

The run is planned once on the driver, as :func:`circuitatlas.store.ingest.ingest_plan` plans it:
the run id from the configuration, the steps the store holds skipped, this shard's steps kept.
Each task loads its checkpoint, sweeps it on the worker's device and then

* with Neo4j, writes it from the worker (one transaction per checkpoint, as a single process
  does: a retried task finds its checkpoint stored and writes nothing, so it is stored once);
* with the embedded store (a file only the driver can open), returns the frames, and the driver
  writes them, one transaction per checkpoint.

``NEXT`` links are planned inside each checkpoint's transaction from what is stored then, so the
order in which tasks finish changes nothing. A task whose worker process or node dies is retried
by Ray up to ``max_retries`` times; a checkpoint that fails for a reason of its own (a corrupt
file) fails alone and is reported with its reason while the others go on. Ctrl-C cancels the
outstanding tasks (a cancelled write is a transaction never committed) and leaves only whole
checkpoints in the store.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from circuitatlas._version import __version__
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.checkpoints import CheckpointRef
from circuitatlas.ingest.contract import CheckpointFrames
from circuitatlas.ingest.pipeline import RunPlan, resolve_device, sweep_checkpoints
from circuitatlas.store.base import StoreBase
from circuitatlas.store.ingest import IngestReport, start_report
from circuitatlas.store.rows import RunRecord

INSTALL_RAY = "pip install 'circuitatlas[ray]'"
LOCAL = "local"  # the --ray value that starts a local cluster
CONNECT_TIMEOUT_S = 3.0
LOCAL_OBJECT_STORE_BYTES = 1 << 30  # a local cluster's object store: frames are megabytes
WAIT_S = 0.5  # the driver wakes this often, so that Ctrl-C is seen at once
_NEO4J_ENV = ("NEO4J_USERNAME", "NEO4J_PASSWORD", "NEO4J_DATABASE")


@dataclass(frozen=True)
class RaySettings:
    """Where and how the tasks run.

    ``address``: ``None`` (or ``"local"``) starts a local cluster; ``host:port`` joins the cluster
    whose head was started with ``ray start --head``; ``ray://host:port`` connects through Ray
    Client; ``auto`` uses ``RAY_ADDRESS`` or the cluster on this machine.
    """

    address: str | None = None
    cpus_per_task: float = 1.0
    max_retries: int = 3
    local_cpus: int | None = None  # CPUs of a local cluster (default: every core)


@dataclass(frozen=True)
class Placement:
    """Where one checkpoint was swept and how long it took."""

    step: int
    node: str  # the node's IP and the first 8 hex digits of its id
    pid: int
    device: str
    sweep_s: float
    write_s: float  # written by the worker (Neo4j), else by the driver


@dataclass
class RayReport(IngestReport):
    """An ingest's report plus where each checkpoint ran and which failed."""

    placements: list[Placement] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (step, reason)
    workers: str = ""  # the cluster the tasks ran on, in words

    def where(self) -> list[str]:
        """One line per node: its checkpoints and how long each took (sweep + write)."""
        by_node: dict[str, list[Placement]] = {}
        for p in sorted(self.placements, key=lambda p: p.step):
            by_node.setdefault(p.node, []).append(p)
        lines = []
        for node, done in sorted(by_node.items()):
            busy = sum(p.sweep_s + p.write_s for p in done)
            steps = ", ".join(f"{p.step} ({p.sweep_s + p.write_s:.1f} s)" for p in done)
            lines.append(
                f"node {node} ({done[0].device}): {len(done)} checkpoints, {busy:.1f} s busy: "
                f"{steps}"
            )
        return lines

    def failure(self) -> CircuitAtlasError | None:
        """The error listing the checkpoints that failed (None when none did)."""
        if not self.failed:
            return None
        listed = "; ".join(f"step {step}: {reason}" for step, reason in sorted(self.failed))
        return CircuitAtlasError(
            f"{len(self.failed)} checkpoint(s) failed, the others are stored — {listed}; fix "
            f"them and run the same command again to ingest only those"
        )


def ingest_ray(
    store: StoreBase,
    plan: RunPlan,
    settings: RaySettings,
    store_url: str,
    shard: tuple[int, int] = (1, 1),
    progress: bool = True,
) -> RayReport:
    """Sweep the plan's checkpoints the store lacks as Ray tasks and store each as it is done.

    ``store`` is the driver's open store; ``store_url`` the URL it was opened from (with Neo4j
    the workers connect to it, with the credentials of the driver's environment).
    """
    ray = import_ray()
    run = RunRecord.from_config(plan.config)
    base, steps = start_report(store, run, shard)
    report = RayReport(base.run_id, base.store, skipped=base.skipped)
    refs = {r.step: r for r in plan.refs if r.step in set(steps)}
    if not refs:
        return report
    report.workers = start_cluster(ray, settings)
    try:
        check_versions(ray)
        target = _worker_target(store, store_url)
        _run_tasks(ray, store, run, plan, refs, target, settings, report, progress)
    finally:
        ray.shutdown()
    return report


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise CircuitAtlasError(f"--ray needs Ray, an optional extra: {INSTALL_RAY}") from None
    return ray


def start_cluster(ray: Any, settings: RaySettings) -> str:
    """Join the cluster at ``settings.address`` (or start a local one); the cluster in words."""
    address = settings.address
    local = address in (None, LOCAL)
    if not local:
        check_reachable(address)
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "error",
        "configure_logging": True,
    }
    if local:
        kwargs.update(num_cpus=settings.local_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    else:
        kwargs = {k: v for k, v in kwargs.items() if k != "include_dashboard"}
    try:
        with _quiet_stderr():  # Ray's core logs each failed try to join; the error says it once
            ray.init(address=None if local else address, **kwargs)
    except ray.exceptions.AuthenticationError:
        raise CircuitAtlasError(
            f"--ray {address}: the cluster asks for its token; give this process the one its "
            f"nodes use (RAY_AUTH_MODE=token with RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
            f"~/.ray/auth_token)"
        ) from None
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise CircuitAtlasError(
            f"--ray {address}: cannot join the Ray cluster ({_first_line(e)}); is its head "
            f"running there (`ray start --head`), and, if its nodes use token authentication, "
            f"does this process have their token (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN)?"
        ) from None
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    where = "a local Ray cluster" if local else f"the Ray cluster at {address}"
    return (
        f"{where}: {len(nodes)} node(s), {total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs"
    )


def check_reachable(address: str | None) -> None:
    """Fail in seconds, with one line, when nothing listens at a ``host:port`` address."""
    if address in (None, LOCAL, "auto"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise CircuitAtlasError(
            f"--ray {address}: give HOST:PORT of the head (ray start --head prints it), "
            f"ray://HOST:PORT, auto, or no value for a local cluster"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise CircuitAtlasError(
            f"--ray {address}: nothing answers there ({e.strerror or e}); start the head with "
            f"`ray start --head --port {port}` on {host}, or leave the address out for a local "
            f"cluster"
        ) from None


def check_versions(ray: Any) -> None:
    """Refuse a cluster whose nodes lack circuitatlas or hold another version of it."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_version_probe())
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    pending = [
        probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote()
        for n in nodes
    ]
    for node, version in zip(nodes, ray.get(pending), strict=True):
        if version != __version__:
            found = "no circuitatlas" if version is None else f"circuitatlas {version}"
            raise CircuitAtlasError(
                f"Ray node {node['NodeManagerAddress']} has {found}, this driver circuitatlas "
                f"{__version__}; install circuitatlas=={__version__} with its [ray] extra on "
                f"every node"
            )


def _version_probe() -> Callable[[], str | None]:
    """A function that returns the worker's circuitatlas version (None without it).

    Made here, not at module level, so Ray ships it by value: a worker without circuitatlas
    can run it.
    """

    def probe() -> str | None:
        try:
            from circuitatlas._version import __version__ as found
        except ImportError:
            return None
        return str(found)

    return probe


@dataclass(frozen=True)
class _Target:
    """Where a worker writes: a Neo4j URL and credentials, or nowhere (the driver writes)."""

    url: str | None
    env: dict[str, str]
    batch_size: int


def _worker_target(store: StoreBase, store_url: str) -> _Target:
    """Neo4j: the workers connect with the driver's URL and NEO4J_* settings; embedded: none."""
    if store.dialect != "neo4j":
        return _Target(None, {}, 0)
    env = {k: os.environ[k] for k in _NEO4J_ENV if k in os.environ}
    return _Target(store_url, env, int(getattr(store, "batch_size", 10_000)))


def _run_tasks(
    ray: Any,
    store: StoreBase,
    run: RunRecord,
    plan: RunPlan,
    refs: dict[int, CheckpointRef],
    target: _Target,
    settings: RaySettings,
    report: RayReport,
    progress: bool,
) -> None:
    """Submit one task per checkpoint, store or record each as it finishes."""
    from tqdm.auto import tqdm

    gpus = ray.cluster_resources().get("GPU", 0) > 0
    task = ray.remote(_sweep_task).options(
        num_cpus=settings.cpus_per_task,
        num_gpus=1 if gpus else 0,
        max_retries=settings.max_retries,
        retry_exceptions=False,  # a checkpoint's own error is not retried; a dead worker is
    )
    shipped = ray.put(replace(plan, _first=None))
    pending = {task.remote(shipped, ref, run, target): step for step, ref in refs.items()}
    with tqdm(total=len(pending), desc="ingest", unit="ckpt", disable=not progress) as bar:
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                if not ready:
                    continue
                step = pending.pop(ready[0])
                _finish(ray, ready[0], step, store, run, report)
                bar.set_postfix_str(f"step {step}")
                bar.update()
        except KeyboardInterrupt:
            # not force=True: killing workers while their replies arrive trips an internal
            # check of Ray 2.60's driver (it aborts); a KeyboardInterrupt in the task is enough,
            # and a write it interrupts is a transaction never committed
            for ref in pending:
                ray.cancel(ref)
            raise KeyboardInterrupt(
                f"{len(report.written)} checkpoints stored, {len(pending)} cancelled; run the "
                f"same command again to resume"
            ) from None


def _finish(
    ray: Any, ref: Any, step: int, store: StoreBase, run: RunRecord, report: RayReport
) -> None:
    """Take one finished task's result: store the frames it returned, or record its failure."""
    try:
        done: _Done = ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = e.cause if isinstance(e.cause, BaseException) else e
        report.failed.append((step, _first_line(cause)))
        return
    except ray.exceptions.RayError as e:  # the worker or its node died after every retry
        report.failed.append((step, f"{type(e).__name__}: {_first_line(e)}"))
        return
    write_s = done.write_s
    if done.frames is not None:
        start = time.perf_counter()
        wrote = store.write_checkpoint(run, done.frames)
        write_s = time.perf_counter() - start
    else:
        wrote = done.wrote
    (report.written if wrote else report.skipped).append(step)
    report.placements.append(
        Placement(step, _node_name(ray, done.node), done.pid, done.device, done.sweep_s, write_s)
    )


def _node_name(ray: Any, node_id: str) -> str:
    """A node in words: its address and the first 8 hex digits of its id."""
    address = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id), "?")
    return f"{address}/{node_id[:8]}"


@dataclass
class _Done:
    """What a task sends back."""

    node: str  # the node's id
    pid: int
    device: str
    sweep_s: float
    write_s: float
    wrote: bool
    frames: CheckpointFrames | None  # for the driver to write (embedded store)


def _sweep_task(plan: RunPlan, ref: CheckpointRef, run: RunRecord, target: _Target) -> _Done:
    """On a worker: sweep one checkpoint on the worker's device and write it (Neo4j) or return
    its frames."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    device = resolve_device(plan.settings.device)
    start = time.perf_counter()
    frames = next(sweep_checkpoints(replace(plan, device=device), [ref], progress=False))
    sweep_s = time.perf_counter() - start
    if target.url is None:
        return _Done(node, os.getpid(), device, sweep_s, 0.0, False, frames)
    from circuitatlas.store import open_store

    os.environ.update(target.env)
    start = time.perf_counter()
    with open_store(target.url, writable=True, batch_size=target.batch_size) as store:
        wrote = store.write_checkpoint(run, frames)
    return _Done(node, os.getpid(), device, sweep_s, time.perf_counter() - start, wrote, None)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send what is written to file descriptor 2 (C++ logs included) nowhere, for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
