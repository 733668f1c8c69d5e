"""The three checks the source paper names and did not do, as :class:`~.claims.Claim` records.

* (e) :func:`check_thresholds`: do phases and roles stay put when τ moves from 0.7 to 0.3, 0.5,
  0.9? (input: the frame :func:`~.thresholds.tau_sweep` returns);
* (f) :func:`check_ablations`: do zero, mean and resample ablation give the same graph (rank
  correlation of edge weights) and the same roles?
* (g) :func:`check_second_task`: are the roles (and circuits) the same on a second task over the
  same checkpoints?

Each is phrased as "the paper's single-setting results carry over": **holds** when every other
setting stays within the stated tolerance of the reference one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from circuitatlas.analytics.claims import (
    FAILS,
    HOLDS,
    UNTESTABLE,
    Claim,
    RoleSets,
    describe_roles,
    fmt,
    mean_defined,
    role_agreements,
)
from circuitatlas.analytics.roles import jaccard

MAX_SHIFT = 1.0  # checkpoints a phase boundary may move
MIN_AGREEMENT = 0.5  # mean Jaccard of the role sets
MIN_RHO = 0.7  # median Spearman rank correlation of the edge weights
EDGE_KEY = ["step", "source", "target"]


def _verdict(robust: Mapping[Any, bool | None]) -> str:
    """HOLDS when every setting is robust, FAILS when one is not (``False``), else
    UNTESTABLE (no setting, or ``None``: not comparable)."""
    if any(value is False for value in robust.values()):
        return FAILS
    if robust and all(robust.values()):
        return HOLDS
    return UNTESTABLE


def check_thresholds(
    sweep: pd.DataFrame, max_shift: float = MAX_SHIFT, min_agreement: float = MIN_AGREEMENT
) -> Claim:
    """(e) Threshold sensitivity: phases and roles at each τ against the reference τ.

    ``sweep``: one row per τ with ``tau, reference, boundaries, phases, boundary_shift,
    role_agreement, mean_edges`` (as :func:`~.thresholds.tau_sweep` returns). ``boundary_shift``
    is the mean distance in checkpoints between the two τ's phase boundaries (NaN when only one
    has any), ``role_agreement`` the mean Jaccard of the top-k sets. A τ is robust when its
    phase labels are the reference's (the same sequence), its shift ≤ ``max_shift`` and its
    agreement ≥ ``min_agreement`` (a NaN shift is not robust: a phase appeared or vanished; a
    NaN agreement, no role at either τ, is judged on the phases alone).
    Rule: **holds** when every other τ is robust; **does not hold** when one is not; **not
    testable here** without a τ besides the reference.
    """
    reference = sweep[sweep["reference"]].iloc[0]
    others = sweep[~sweep["reference"]].sort_values("tau")
    per_tau: dict[float, dict[str, Any]] = {}
    for row in others.itertuples(index=False):
        shift, agreement = float(row.boundary_shift), float(row.role_agreement)
        same_labels = list(row.phases) == list(reference["phases"])
        robust = same_labels and not math.isnan(shift) and shift <= max_shift
        robust = robust and (math.isnan(agreement) or agreement >= min_agreement)
        per_tau[float(row.tau)] = {
            "boundary_shift": shift,
            "role_agreement": agreement,
            "same_labels": same_labels,
            "n_phases": len(row.phases),
            "mean_edges": float(row.mean_edges),
            "robust": robust,
        }
    shown = "; ".join(
        f"τ {tau:g}: boundaries moved {fmt(v['boundary_shift'], 1)} ckpt, roles J "
        f"{fmt(v['role_agreement'])}, {v['n_phases']} phases"
        f"{'' if v['same_labels'] else ' (other labels)'}, mean |E| {v['mean_edges']:.1f}"
        for tau, v in per_tau.items()
    )
    ref_tau = float(reference["tau"])
    return Claim(
        claim="(e) threshold sensitivity",
        paper=f"not checked: τ fixed at {ref_tau:g}",
        this_run=(
            f"against τ {ref_tau:g} ({len(reference['phases'])} phases, mean |E| "
            f"{float(reference['mean_edges']):.1f}): {shown or 'no other τ'}"
        ),
        verdict=_verdict({tau: v["robust"] for tau, v in per_tau.items()}),
        rule=(
            f"at every other τ the same phase labels, boundaries moved ≤ {max_shift:g} "
            f"checkpoint(s), roles agreeing with Jaccard ≥ {min_agreement:g}"
        ),
        numbers={"reference_tau": ref_tau, "per_tau": per_tau},
    )


def weight_correlations(reference: pd.DataFrame, other: pd.DataFrame) -> pd.Series:
    """Per step, the Spearman rank correlation of ``weight`` over the edges (``step, source,
    target``) both frames hold; NaN where fewer than 3 edges are common or either side is
    constant."""
    merged = reference[[*EDGE_KEY, "weight"]].merge(
        other[[*EDGE_KEY, "weight"]], on=EDGE_KEY, suffixes=("_a", "_b")
    )
    rho = {}
    for step, group in merged.groupby("step", sort=True):
        a, b = group["weight_a"].to_numpy(), group["weight_b"].to_numpy()
        constant = np.ptp(a) == 0 or np.ptp(b) == 0
        rho[int(step)] = math.nan if len(group) < 3 or constant else spearmanr(a, b).statistic
    return pd.Series(rho, dtype="float64", name="rho")


def check_ablations(
    edges: Mapping[str, pd.DataFrame],
    roles: Mapping[str, RoleSets] | None = None,
    reference: str = "zero",
    min_rho: float = MIN_RHO,
    min_agreement: float = MIN_AGREEMENT,
) -> Claim:
    """(f) Zero vs mean vs resample ablation.

    ``edges``: ablation → ``step, source, target, weight`` (every stored edge of the run, not
    only those at τ); ``roles``: ablation → :data:`~.claims.RoleSets` (optional). Against the
    ``reference`` ablation, per other ablation: the median over steps of the Spearman
    correlation of the common edges' weights (:func:`weight_correlations`) and the role
    agreement (mean Jaccard of the top-k sets, per role and over all). An ablation is robust when
    the median ρ ≥ ``min_rho`` and the agreement ≥ ``min_agreement`` (a NaN agreement, no roles
    at either, is judged on ρ; no comparable step makes it not comparable). Rule: **holds** when
    every other ablation is robust; **does not hold** when one is not; **not testable here** with
    no other ablation or none comparable.
    """
    if reference not in edges:
        raise ValueError(f"reference ablation {reference!r} not among {sorted(edges)}")
    per: dict[str, dict[str, Any]] = {}
    for name in sorted(set(edges) - {reference}):
        rho = weight_correlations(edges[reference], edges[name]).dropna()
        agree = (
            role_agreements(roles[reference], roles[name])
            if roles is not None and reference in roles and name in roles
            else {}
        )
        median = float(rho.median()) if len(rho) else math.nan
        overall = agree.get("all", math.nan)
        robust: bool | None = None
        if len(rho):
            robust = median >= min_rho and (math.isnan(overall) or overall >= min_agreement)
        per[name] = {
            "median_rho": median,
            "min_rho": float(rho.min()) if len(rho) else math.nan,
            "steps": len(rho),
            "role_agreement": agree,
            "robust": robust,
        }
    shown = "; ".join(
        f"{name}: median ρ {fmt(v['median_rho'])} (min {fmt(v['min_rho'])}, "
        f"{v['steps']} steps)"
        + (f", roles J {describe_roles(v['role_agreement'])}" if v["role_agreement"] else "")
        for name, v in per.items()
    )
    return Claim(
        claim="(f) zero vs mean vs resample ablation",
        paper=f"not checked: {reference} ablation only",
        this_run=f"against {reference}: {shown or 'no other ablation'}",
        verdict=_verdict({n: v["robust"] for n, v in per.items()}),
        rule=(
            f"every other ablation: median Spearman ρ of edge weights ≥ {min_rho:g} and role "
            f"Jaccard ≥ {min_agreement:g}"
        ),
        numbers={"reference": reference, "per_ablation": per},
    )


def circuit_overlap(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float]:
    """Mean over common steps of the Jaccard index of two circuits' edge sets (``step, source,
    target``) and of their component sets (what the edges touch)."""
    edge_j, node_j = [], []
    for step in sorted(set(a["step"]) & set(b["step"])):
        ea, eb = (
            set(f.loc[f["step"] == step, ["source", "target"]].itertuples(index=False, name=None))
            for f in (a, b)
        )
        edge_j.append(jaccard(list(ea), list(eb)))
        node_j.append(jaccard([n for e in ea for n in e], [n for e in eb for n in e]))
    return {"edges": mean_defined(edge_j), "components": mean_defined(node_j), "steps": len(edge_j)}


def check_second_task(
    roles: Mapping[str, RoleSets],
    circuits: Mapping[str, pd.DataFrame] | None = None,
    reference: str | None = None,
    min_agreement: float = MIN_AGREEMENT,
) -> Claim:
    """(g) A second task on the same checkpoints.

    ``roles``: task → :data:`~.claims.RoleSets` of the same run's checkpoints swept on that
    task; ``circuits``: task → circuit edges (``step, source, target``), optional. Against the
    ``reference`` task (default: the first given), per other task: the role agreement (mean
    Jaccard of the top-k sets over common steps, per role and over all) and, with circuits, the
    overlap of circuit edges and components (:func:`circuit_overlap`; reported, not judged: a task
    with another mechanism should have another circuit). Rule: **holds** when every other task's
    overall role agreement ≥ ``min_agreement`` (the role hierarchy is not the induction task's
    alone); **does not hold** when one is below; **not testable here** with one task, or no
    common step with a role.
    """
    names = list(roles)
    ref = reference if reference is not None else (names[0] if names else "")
    per: dict[str, dict[str, Any]] = {}
    for name in [n for n in names if n != ref]:
        agree = role_agreements(roles[ref], roles[name])
        overall = agree["all"]
        overlap = (
            circuit_overlap(circuits[ref], circuits[name])
            if circuits is not None and ref in circuits and name in circuits
            else None
        )
        robust = None if math.isnan(overall) else overall >= min_agreement
        per[name] = {"role_agreement": agree, "circuits": overlap, "robust": robust}
    shown = "; ".join(
        f"{name}: roles J {describe_roles(v['role_agreement'])}"
        + (
            f"; circuits J edges {fmt(v['circuits']['edges'])}, components "
            f"{fmt(v['circuits']['components'])}"
            if v["circuits"]
            else ""
        )
        for name, v in per.items()
    )
    return Claim(
        claim="(g) a second task",
        paper="not checked: one induction prompt",
        this_run=f"against {ref or 'no task'}: {shown or 'no second task'}",
        verdict=_verdict({n: v["robust"] for n, v in per.items()}),
        rule=f"every other task's roles agree with the reference's: Jaccard ≥ {min_agreement:g}",
        numbers={"reference": ref, "per_task": per},
    )
