"""The ``circuitatlas`` command run as a user runs it, in a process of its own: start it, wait
for it, and read an ingest's summary line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_SUMMARY = re.compile(r"^run (\w+): wrote (\d+) checkpoints, skipped (\d+) already stored", re.M)


def circuitatlas_process(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """Start ``circuitatlas ARGS`` in this environment (its NEO4J_* included) plus ``env``,
    without progress bars."""
    full = {**os.environ, "TQDM_DISABLE": "1", **(env or {})}
    command = [sys.executable, "-m", "circuitatlas.cli", *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full, cwd=cwd
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a started command; its exit status and output."""
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def circuitatlas(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``circuitatlas ARGS`` to the end, whatever its exit status."""
    return finish(circuitatlas_process(*args, env=env, cwd=cwd))


@dataclass(frozen=True)
class Ingested:
    """What one ``circuitatlas ingest`` reported."""

    run_id: str
    written: int
    skipped: int

    @classmethod
    def of(cls, done: subprocess.CompletedProcess[str]) -> Ingested:
        """Parse a finished ingest's summary line (it must have succeeded)."""
        assert done.returncode == 0, done.stderr
        match = _SUMMARY.search(done.stdout)
        assert match, done.stdout
        return cls(match.group(1), int(match.group(2)), int(match.group(3)))
