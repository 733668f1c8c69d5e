"""Threshold sensitivity: how far phase boundaries and role sets move when τ changes.

Each τ of the sweep is analyzed without writing anything; the reference is the analysis at the
reference τ (default 0.7). Per τ:

* ``boundaries`` / ``phases``: the phase boundaries (steps) and segment labels;
* ``boundary_shift``: how far the boundaries moved, in checkpoints: the mean, over the boundaries
  of both analyses, of the distance to the nearest boundary of the other (0 when both have none,
  NaN when only one has);
* ``role_agreement``: the mean Jaccard index between this τ's and the reference's top-k sets over
  every checkpoint and role where either set is non-empty (1 = the same roles everywhere);
* ``spreaders`` / ``gatherers`` / ``gatekeepers``: the top-k sets of the last checkpoint;
* ``reconfigurations``: the steps flagged as reconfiguration events; ``mean_edges``: mean |E|.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from circuitatlas.analytics.analyze import (
    DEFAULT_TAU,
    Analysis,
    AnalysisSettings,
    run_analysis,
    using_store,
)
from circuitatlas.analytics.roles import ROLES, jaccard
from circuitatlas.store.base import StoreBase

SWEEP_COLUMNS = [
    "tau",
    "reference",
    "boundaries",
    "phases",
    "boundary_shift",
    "role_agreement",
    "spreaders",
    "gatherers",
    "gatekeepers",
    "reconfigurations",
    "mean_edges",
]


def boundary_shift(steps: list[int], found: list[int], reference: list[int]) -> float:
    """Mean distance, in checkpoints, from each boundary to the nearest one of the other set."""
    if not found and not reference:
        return 0.0
    if not found or not reference:
        return float("nan")
    position = {s: i for i, s in enumerate(steps)}
    a = np.array([position[s] for s in found], dtype=np.float64)
    b = np.array([position[s] for s in reference], dtype=np.float64)
    to_b = np.abs(a[:, None] - b[None, :]).min(axis=1)
    to_a = np.abs(b[:, None] - a[None, :]).min(axis=1)
    return float(np.concatenate([to_b, to_a]).mean())


def role_agreement(found: Analysis, reference: Analysis) -> float:
    """Mean Jaccard of the top-k sets of two analyses over steps and roles (NaN if none)."""
    values = [
        jaccard(found.roles[step][role], reference.roles[step][role])
        for step in reference.roles
        for role in ROLES
    ]
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def tau_sweep(
    store: StoreBase | str | Path,
    run_id: str,
    taus: list[float],
    reference_tau: float = DEFAULT_TAU,
    *,
    settings: AnalysisSettings | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per τ (``SWEEP_COLUMNS``), the reference τ included; nothing is written."""
    base = settings or AnalysisSettings()
    each = {
        tau: replace(base, tau=tau) for tau in sorted({*map(float, taus), float(reference_tau)})
    }
    for one in each.values():  # every τ checked before the first is analyzed
        one.check()
    with using_store(store, writable=False) as opened:
        results = {
            tau: run_analysis(opened, run_id, one, False, progress) for tau, one in each.items()
        }
    reference = results[float(reference_tau)]
    steps = sorted(reference.roles)
    rows = []
    for tau, found in results.items():
        last = found.last_roles()
        rows.append(
            {
                "tau": tau,
                "reference": tau == float(reference_tau),
                "boundaries": found.phases.boundaries,
                "phases": found.phases.labels,
                "boundary_shift": boundary_shift(
                    steps, found.phases.boundaries, reference.phases.boundaries
                ),
                "role_agreement": role_agreement(found, reference),
                "spreaders": last["spreader"],
                "gatherers": last["gatherer"],
                "gatekeepers": last["gatekeeper"],
                "reconfigurations": found.reconfigurations,
                "mean_edges": float(found.checkpoints["n_edges"].mean()),
            }
        )
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)
