"""Synthetic sweeps: frames with the exact shape of a real sweep, random values, no model.

For benchmarks and tests of everything downstream of the sweep (the store, analytics) at sizes no
toy model reaches, e.g. Pythia-1.4B's 24 layers × 16 heads (410 components, ~80 000 edges per
checkpoint) over 143 checkpoints.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from circuitatlas._version import __version__
from circuitatlas.ingest.components import all_components, is_downstream
from circuitatlas.ingest.pipeline import SweepResult, run_id_of
from circuitatlas.ingest.sweep import COMPONENT_COLUMNS, EDGE_COLUMNS
from circuitatlas.ingest.tasks import PromptSet


def synthetic_sweep(
    n_layers: int,
    n_heads: int,
    steps: list[int],
    seed: int = 0,
    parallel_blocks: bool = True,
    model: str = "synthetic",
    names: dict[str, str] | None = None,
) -> SweepResult:
    """A sweep of ``steps`` checkpoints of a model of this shape, values drawn from ``seed``.

    ``names`` renames components (old name → new), to test names that are hard to store.
    """
    rng = np.random.default_rng(seed)
    comps = all_components(n_layers, n_heads)
    pairs = [(a, b) for a in comps for b in comps if is_downstream(a, b, parallel_blocks)]
    rename = names or {}
    source = np.array([rename.get(a.name, a.name) for a, _ in pairs], dtype=object)
    target = np.array([rename.get(b.name, b.name) for _, b in pairs], dtype=object)
    checkpoints, components, edges = [], [], []
    for step in steps:
        checkpoints.append({"step": step, "loss": float(rng.uniform(1, 5)), "metric": -1.0})
        for c in comps:
            is_head = c.kind == "attn_head"
            components.append(
                {
                    "step": step,
                    "name": rename.get(c.name, c.name),
                    "kind": c.kind,
                    "layer": c.layer,
                    "head": c.head if is_head else None,
                    "effect": float(rng.normal()) if c.kind != "logits" else np.nan,
                    "prev_token_score": float(rng.uniform()) if is_head else np.nan,
                    "induction_score": float(rng.uniform()) if is_head else np.nan,
                }
            )
        similarity = rng.uniform(-0.2, 1.0, len(pairs))
        direct_similarity = rng.uniform(0.5, 1.0, len(pairs))
        edges.append(
            pd.DataFrame(
                {
                    "step": step,
                    "source": source,
                    "target": target,
                    "similarity": similarity,
                    "weight": 1 - similarity,
                    "std": rng.uniform(0, 0.1, len(pairs)),
                    "direct_similarity": direct_similarity,
                    "direct_weight": 1 - direct_similarity,
                    "direct_std": rng.uniform(0, 0.1, len(pairs)),
                    "patch_effect": np.nan,  # task-metric scores: not computed here
                    "eap_ig": np.nan,
                }
            )
        )
    tokens = torch.zeros((2, 5), dtype=torch.long)
    prompts = PromptSet("induction", tokens, torch.ones((2, 5), dtype=torch.bool))
    config: dict[str, Any] = {
        "model": model,
        "steps": list(steps),
        "prompts": prompts.to_config(),
        "ablation": "zero",
        "arch": {"arch": "synthetic", "n_layers": n_layers, "n_heads": n_heads, "seed": seed},
        "settings": {"seed": seed},
        "version": __version__,
    }
    config["run_id"] = run_id_of(config)
    return SweepResult(
        pd.DataFrame(checkpoints),
        pd.DataFrame(components, columns=["step", *COMPONENT_COLUMNS]).astype({"head": "Int64"}),
        pd.concat(edges, ignore_index=True)[["step", *EDGE_COLUMNS]],
        prompts,
        config,
    )
