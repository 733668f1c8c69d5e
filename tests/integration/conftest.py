"""Shared fixtures: short real toy runs of both block styles, trained here on the CPU."""

from pathlib import Path

import pytest

from circuitatlas.ingest.toy import train_toy

# 250 steps: past initialization (biases, norms and attention are no longer at their init values)
# but short enough to train in seconds.
SHORT_STEPS = 250


@pytest.fixture(scope="session")
def short_runs(tmp_path_factory) -> dict[str, Path]:
    """Toy runs with two checkpoints each: GPT-2 (sequential), GPT-NeoX parallel and sequential."""
    root = tmp_path_factory.mktemp("short-runs")
    runs = {}
    for arch in ("gpt2", "neox", "neox-seq"):
        runs[arch] = root / arch
        train_toy(runs[arch], steps=SHORT_STEPS, checkpoints=2, seed=0, arch=arch, progress=False)
    return runs


@pytest.fixture(scope="session")
def default_toy_runs(tmp_path_factory):
    """``get(seed)`` → (run directory, training log) of the default toy run of that seed,
    trained once per session on first use (about a minute each on 2 CPU cores)."""
    runs: dict[int, tuple[Path, object]] = {}

    def get(seed: int) -> tuple[Path, object]:
        if seed not in runs:
            out = tmp_path_factory.mktemp(f"toy{seed}") / "run"
            runs[seed] = (out, train_toy(out, seed=seed, progress=False))
        return runs[seed]

    return get
