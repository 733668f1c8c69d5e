"""What the ingest hands to the stores and the CLI: the sweep settings, the frames' columns and
one checkpoint's frames.

Kept apart from the sweep itself (torch, transformers), so that opening or reading a store and
parsing a command line import neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

ABLATIONS = ("zero", "mean", "resample")
# What a component's output O_j is (circuitatlas.ingest.outputs): what it writes into the residual
# stream, or the residual stream right after it writes. The default enters no run id.
OUTPUTS = ("write", "resid")
DEFAULT_OUTPUT = "write"
DEFAULT_MEMORY_BUDGET_MB = 2048
# Task-metric edge scores (circuitatlas.ingest.edge_scores): which to compute. "auto" is "both"
# while the model has at most AUTO_EXACT_EDGES edges, else "eap-ig".
EDGE_SCORES = ("auto", "exact", "eap-ig", "both", "none")
AUTO_EXACT_EDGES = 2000
DEFAULT_IG_STEPS = 8
EDGE_COLUMNS = [
    "source",
    "target",
    "similarity",
    "weight",
    "std",
    "direct_similarity",
    "direct_weight",
    "direct_std",
    "patch_effect",
    "eap_ig",
]
# Task-metric scores of an edge (NaN: not computed for the run; stored as null): the change of the
# task metric (ablated − clean) when only j's read of the residual stream loses i's write (exact
# edge patching), and its integrated-gradients approximation (EAP-IG).
EDGE_SCORE_COLUMNS = ["patch_effect", "eap_ig"]
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
    edge_scores: str = "auto"  # one of EDGE_SCORES
    ig_steps: int = DEFAULT_IG_STEPS
    output: str = DEFAULT_OUTPUT  # one of OUTPUTS
