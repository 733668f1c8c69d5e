"""Shared fixtures: short real toy runs of both block styles, trained here on the CPU."""

from pathlib import Path

import pytest

from circuitatlas.ingest.checkpoints import list_checkpoints, load_checkpoint
from circuitatlas.ingest.model import weights_from_bridge
from circuitatlas.ingest.tasks import induction_prompts
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


@pytest.fixture(scope="module")
def prompts():
    """Six induction prompts of the short runs' vocabulary: [bos] + 3 tokens + the same 3."""
    return induction_prompts(6, 7, vocab_size=64, seed=3, bos_token_id=0)


@pytest.fixture(scope="module")
def models(short_runs):
    """``arch`` → (bridge, weights) of the last checkpoint of each short run."""
    out = {}
    for arch, run in short_runs.items():
        bridge = load_checkpoint(list_checkpoints(str(run))[-1])
        out[arch] = (bridge, weights_from_bridge(bridge))
    return out


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
