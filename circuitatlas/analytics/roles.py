"""Roles of components per checkpoint and how stable they stay across training.

* spreaders: the top-k components by out-strength; gatherers: by in-strength; gatekeepers: by
  betweenness. Only positive values count (a component with no outgoing edge spreads nothing);
  ties are broken by name so the sets are deterministic.
* stability: per role, the Jaccard index of the top-k sets of consecutive checkpoints (undefined,
  stored as null, when both sets are empty); ``role_stability`` is the mean over the roles where
  it is defined.
* a reconfiguration event is a checkpoint whose ``role_stability`` falls below a threshold
  (default 0.5: on average at least half of the top-k members changed since the previous one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ROLE_METRICS = {"spreader": "out_strength", "gatherer": "in_strength", "gatekeeper": "betweenness"}
ROLES = tuple(ROLE_METRICS)
DEFAULT_TOP_K = 3
DEFAULT_RECONFIGURATION = 0.5


def top_sets(metrics: pd.DataFrame, k: int) -> dict[int, dict[str, list[str]]]:
    """Per step, per role, the names of the top-``k`` components (best first).

    ``metrics`` has ``step, name`` and the role metrics (``ROLE_METRICS`` values).
    """
    out: dict[int, dict[str, list[str]]] = {}
    for step, group in metrics.groupby("step", sort=True):
        out[int(step)] = {}
        for role, metric in ROLE_METRICS.items():
            ranked = group[group[metric] > 0].sort_values(
                [metric, "name"], ascending=[False, True], kind="stable"
            )
            out[int(step)][role] = ranked["name"].head(k).tolist()
    return out


def role_labels(metrics: pd.DataFrame, sets: dict[int, dict[str, list[str]]]) -> pd.Series:
    """Each row's roles joined by ``+`` in ``ROLES`` order (``None`` when it has none)."""
    labels = []
    for step, name in zip(metrics["step"], metrics["name"], strict=True):
        roles = [r for r in ROLES if name in sets.get(int(step), {}).get(r, [])]
        labels.append("+".join(roles) if roles else None)
    return pd.Series(labels, index=metrics.index, dtype=object)


def jaccard(a: list[str], b: list[str]) -> float:
    """Jaccard index of two sets; NaN when both are empty."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return len(sa & sb) / len(union) if union else float("nan")


def stability(
    sets: dict[int, dict[str, list[str]]], threshold: float = DEFAULT_RECONFIGURATION
) -> pd.DataFrame:
    """Per step: ``{role}_jaccard`` with the previous step, ``role_stability`` and
    ``reconfiguration`` (the first step has no previous one: null Jaccards, no event)."""
    steps = sorted(sets)
    rows = []
    for i, step in enumerate(steps):
        row: dict[str, object] = {"step": step}
        values = []
        for role in ROLES:
            value = jaccard(sets[steps[i - 1]][role], sets[step][role]) if i else float("nan")
            row[f"{role}_jaccard"] = value
            values.append(value)
        defined = [v for v in values if not np.isnan(v)]
        row["role_stability"] = float(np.mean(defined)) if defined else float("nan")
        row["reconfiguration"] = bool(defined) and row["role_stability"] < threshold
        rows.append(row)
    columns = ["step", *(f"{r}_jaccard" for r in ROLES), "role_stability", "reconfiguration"]
    return pd.DataFrame(rows, columns=columns)
