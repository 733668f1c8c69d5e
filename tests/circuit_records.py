"""Records for ``StoreBase.write_circuits`` and runs with task-metric edge scores, shared by the
embedded and the live store tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from circuitatlas.store.rows import checkpoint_key

ARROW = "→"
STAMP = "2026-01-01T00:00:00+00:00"


def with_scores(run: Any, seed: int = 0) -> Any:
    """``run`` (a ``SweepResult``) with ``patch_effect`` and ``eap_ig`` drawn at random, each
    NaN (not computed) on its own share of the edges, and NaN for every edge of the first
    step's ``eap_ig`` (a checkpoint scored by exact patching only)."""
    rng = np.random.default_rng(seed)
    n = len(run.edges)
    patch = rng.normal(0, 0.1, n)
    patch[rng.random(n) < 0.2] = np.nan
    eap = patch + rng.normal(0, 0.01, n)
    eap[(rng.random(n) < 0.1) | (run.edges["step"] == run.edges["step"].min()).to_numpy()] = np.nan
    run.edges["patch_effect"] = patch
    run.edges["eap_ig"] = eap
    return run


def edge_circuit(
    run_id: str,
    step: int,
    edges: list[tuple[str, str]],
    scores: list[float | None],
    kind_of_scores: str = "exact",
    faithfulness: float | None = 0.85,
) -> dict[str, Any]:
    """The record of an edge-level circuit of ``edges`` (in rank order) at ``step``."""
    ck = checkpoint_key(run_id, step)
    names = list(dict.fromkeys(n for edge in edges for n in edge))
    return {
        "checkpoint_key": ck,
        "key": f"{ck}/circuit/edges-{kind_of_scores}",
        "run_id": run_id,
        "step": int(step),
        "kind": "edges",
        "components": names,
        "n_components": len(names),
        "scores": kind_of_scores,
        "target": 0.8,
        "edges": [f"{s}{ARROW}{t}" for s, t in edges],
        "edge_scores": scores,
        "n_edges": len(edges),
        "faithfulness": faithfulness,
        "ablation": "zero",
        "clean_metric": -1.5,
        "circuit_metric": -1.9,
        "ablated_metric": -4.2,
        "created_at": STAMP,
        "component_keys": [f"{ck}/{n}" for n in names],
        "edge_keys": [
            {"source_key": f"{ck}/{s}", "target_key": f"{ck}/{t}", "score": score, "rank": rank}
            for rank, ((s, t), score) in enumerate(zip(edges, scores, strict=True), start=1)
        ],
    }


def strongest_edges(run: Any, step: int, n: int) -> tuple[list[tuple[str, str]], list[float]]:
    """The ``n`` edges of ``step`` with the largest |patch_effect|, ranked (ties by name)."""
    at = run.edges[(run.edges["step"] == step) & run.edges["patch_effect"].notna()]
    at = at.assign(size=at["patch_effect"].abs()).sort_values(
        ["size", "source", "target"], ascending=[False, True, True]
    )
    top = at.head(n)
    return list(zip(top["source"], top["target"], strict=True)), top["patch_effect"].tolist()
