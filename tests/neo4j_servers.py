"""Private Neo4j servers started with ``tools/neo4j/local.py``, for live tests that kill, stop or
break a server (the shared one must keep running for everyone else)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCAL = Path(__file__).resolve().parents[1] / "tools" / "neo4j" / "local.py"
CLI = [sys.executable, "-m", "circuitatlas.cli"]
# small, so that a private server beside the shared one fits a small machine
PRIVATE_MEMORY = {"CIRCUITATLAS_NEO4J_HEAP": "512m", "CIRCUITATLAS_NEO4J_PAGECACHE": "128m"}


def free_port_pair() -> int:
    """A port P in 30000–39999 with P (Bolt) and P + 1 (HTTP) free on 127.0.0.1."""
    for port in random.sample(range(30000, 39998, 2), 200):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair in 30000-39999")


def without_neo4j_env() -> dict[str, str]:
    """The environment without the shared server's settings, the store and the port override."""
    drop = {"NEO4J_URI", "NEO4J_USERNAME", "NEO4J_PASSWORD", "NEO4J_DATABASE"}
    drop |= {"CIRCUITATLAS_STORE", "CIRCUITATLAS_NEO4J_PORT"}
    return {k: v for k, v in os.environ.items() if k not in drop}


@dataclass
class PrivateServer:
    """A Neo4j server of its own home and port, started by ``tools/neo4j/local.py``."""

    home: Path
    port: int
    gds: bool
    started: subprocess.CompletedProcess[str] | None = None  # its first ``start``
    memory: dict[str, str] | None = None  # heap and page cache (default PRIVATE_MEMORY)

    @property
    def url(self) -> str:
        """Its Bolt URL (no credentials)."""
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def url_with_credentials(self) -> str:
        """Its Bolt URL with user and password, to open a store in this process."""
        s = self.settings()
        return f"bolt://{s['NEO4J_USERNAME']}:{s['NEO4J_PASSWORD']}@127.0.0.1:{self.port}"

    def settings(self) -> dict[str, str]:
        """``NEO4J_*`` from its ``env`` file."""
        found = re.findall(r"^export (NEO4J_\w+)=(.*)$", (self.home / "env").read_text(), re.M)
        return dict(found)

    def env(self, **overrides: str) -> dict[str, str]:
        """An environment for the CLI on this server (``overrides`` replace settings)."""
        return {**without_neo4j_env(), **self.settings(), **overrides}

    def local(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``local.py COMMAND`` on this home and port."""
        args = [sys.executable, str(LOCAL), command, "--home", str(self.home)]
        args += ["--port", str(self.port)] + ([] if self.gds else ["--no-gds"])
        return subprocess.run(
            args,
            env={**without_neo4j_env(), **(self.memory or PRIVATE_MEMORY)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def pid(self) -> int:
        """The server's process id (from its pid file)."""
        return int((self.home / "run" / "neo4j.pid").read_text().strip())

    def start(self) -> subprocess.CompletedProcess[str]:
        """Start it (or reuse it) and fail the test unless it answers."""
        done = self.local("start")
        assert done.returncode == 0, done.stderr
        if self.started is None:
            self.started = done
        return done

    def driver(self) -> Any:
        """An official driver on it with its credentials (close it after use)."""
        import neo4j

        s = self.settings()
        return neo4j.GraphDatabase.driver(self.url, auth=(s["NEO4J_USERNAME"], s["NEO4J_PASSWORD"]))

    def shut(self) -> None:
        """Stop it gracefully; SIGKILL its own process if that fails."""
        done = self.local("stop", timeout=120)
        if done.returncode != 0 and (self.home / "run" / "neo4j.pid").exists():
            with contextlib.suppress(OSError, ValueError):
                os.kill(self.pid(), signal.SIGKILL)


@contextlib.contextmanager
def private_server(
    home: Path, gds: bool, memory: dict[str, str] | None = None
) -> Iterator[PrivateServer]:
    """A started private server in ``home`` on a free port (``memory``: heap and page cache
    settings, default ``PRIVATE_MEMORY``), stopped on exit."""
    server = PrivateServer(home, free_port_pair(), gds, memory=memory)
    try:
        server.start()
        yield server
    finally:
        server.shut()


def delete_run(url: str, run_id: str, database: str | None = None) -> None:
    """Delete every node of ``run_id`` (and their relationships) from the Neo4j at ``url``
    (credentials as the store takes them: the URL's user info, else the environment)."""
    import neo4j

    from circuitatlas.store.neo4j import credentials, redact

    with neo4j.GraphDatabase.driver(redact(url), auth=credentials(url)) as driver:
        driver.execute_query(
            "MATCH (n) WHERE n.run_id = $run_id DETACH DELETE n",
            {"run_id": run_id},
            database_=database,
        )


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie not yet reaped counts as ended)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def error_lines(err: str) -> list[str]:
    """The lines of a command's stderr, without the progress bar's carriage-return updates."""
    lines = [part.split("\r")[-1].strip() for part in err.split("\n")]
    return [ln for ln in lines if ln and not re.search(r"\d+%\|.*\| *\d+/\d+ \[", ln)]
