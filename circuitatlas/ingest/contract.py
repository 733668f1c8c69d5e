"""What the ingest hands to the stores and the CLI: the sweep settings, the frames' columns and
one checkpoint's frames.

Kept apart from the sweep itself (torch, transformers), so that opening or reading a store and
parsing a command line import neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

ABLATIONS = ("zero", "mean", "resample")
DEFAULT_MEMORY_BUDGET_MB = 2048
EDGE_COLUMNS = [
    "source",
    "target",
    "similarity",
    "weight",
    "std",
    "direct_similarity",
    "direct_weight",
    "direct_std",
]
COMPONENT_COLUMNS = [
    "name",
    "kind",
    "layer",
    "head",
    "effect",
    "prev_token_score",
    "induction_score",
]


@dataclass
class CheckpointFrames:
    """One checkpoint's frames: a one-row ``checkpoints`` frame, its components and its edges."""

    step: int
    checkpoint: pd.DataFrame
    components: pd.DataFrame
    edges: pd.DataFrame


@dataclass
class SweepSettings:
    """How a run is swept (everything but the checkpoints)."""

    task: str = "induction"
    n_prompts: int = 16
    seq_len: int = 21  # induction: [bos] + two copies of a 10-token segment
    ablation: str = "zero"
    seed: int = 0
    tokenizer: str | None = None
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB
    device: str = "auto"
