"""The source paper's findings, checked on a run's measurements (pure: frames in, records out).

The paper (arXiv 2509.15269: 143 checkpoints of Pythia-14M, an induction prompt, zero ablation,
total effects, τ 0.7) reports four findings, checked here on what an analysis produces:

* (a) :func:`check_phases`: phases exploration → consolidation → refinement, in that order;
* (b) :func:`check_spreaders`: the spreaders are the embedding and early MLPs, stable over
  training;
* (c) :func:`check_reconfiguration`: gatherers and gatekeepers reconfigure at learning junctures
  (near the largest gain of the task metric);
* (d) :func:`check_weight_tail`: a long-tailed edge-weight distribution. Long-tailed, here:
  the largest ``TAIL_FRACTION`` of a checkpoint's weights fit a power law (a Pareto above the
  next weight; its exponent is the Hill estimate) better than an exponential, by a
  log-likelihood ratio > 0 with Vuong's p < ``TAIL_P`` (:func:`tail_fit`).

The three checks the paper names and did not do are in :mod:`.claims_checks`. Every check
returns a :class:`Claim`: what the paper reports, what this run shows (a short text and the raw
numbers), and a verdict in ``VERDICTS`` by the rule its docstring states (also in
``Claim.rule``). :func:`claims_table` and :func:`claims_markdown` lay the records out.

Inputs are plain frames: a stored analysis's checkpoints (``step, metric, phase``), its roles
(:data:`RoleSets`, from :func:`role_sets` on stored components or an ``Analysis.roles``) and the
edge weights of the graph at τ (``step, weight``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from circuitatlas.analytics.phases import MIN_SIZE, PHASES, segment_table
from circuitatlas.analytics.roles import DEFAULT_RECONFIGURATION, ROLE_METRICS, ROLES, jaccard

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "not testable here"
VERDICTS = (HOLDS, FAILS, UNTESTABLE)
TABLE_COLUMNS = ["claim", "paper", "this_run", "verdict"]

RoleSets = dict[int, dict[str, list[str]]]  # step → role → top-k names, best first

# (b) spreaders
TOP_SPREADER_SHARE = 0.8  # of the steps with a spreader, where the first one is expected
MEMBER_SHARE = 0.5  # mean share of expected components among the top-k spreaders
STABLE_JACCARD = DEFAULT_RECONFIGURATION  # mean consecutive Jaccard over the last half
# (c) reconfiguration
JUNCTURE_WINDOW = 1  # checkpoints either side of the largest metric gain
RECONFIGURING = ("gatherer", "gatekeeper")
# (d) weight tail
TAIL_FRACTION = 0.2  # the k = max(MIN_TAIL, ⌈0.2 n⌉) largest weights form the tail
MIN_TAIL = 5
TAIL_P = 0.1  # significance of the power law's better fit (Vuong's test)
LONG_TAILED_SHARE = 0.5  # of the fitted checkpoints


@dataclass(frozen=True)
class Claim:
    """One row of the claims table: ``numbers`` holds the raw values ``this_run`` states."""

    claim: str
    paper: str
    this_run: str
    verdict: str
    rule: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r}: give one of {', '.join(VERDICTS)}")


def claims_table(claims: Iterable[Claim], *, rules: bool = False) -> pd.DataFrame:
    """``TABLE_COLUMNS`` (and ``rule`` with ``rules``), one row per claim, in the given order."""
    columns = [*TABLE_COLUMNS, "rule"] if rules else TABLE_COLUMNS
    return pd.DataFrame([[getattr(c, col) for col in columns] for c in claims], columns=columns)


def claims_markdown(claims: Iterable[Claim], *, rules: bool = False) -> str:
    """The table as GitHub markdown (``|`` in a cell escaped, line breaks made spaces)."""
    table = claims_table(claims, rules=rules)
    header = ["claim", "what the paper reports", "what this run shows", "verdict"]
    header += ["rule"] if rules else []

    def cell(value: object) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    lines += [f"| {' | '.join(cell(v) for v in row)} |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def role_sets(components: pd.DataFrame) -> RoleSets:
    """Per step, per role, the components carrying it (``role`` holds roles joined by ``+``),
    best first by the role's metric (``ROLE_METRICS``), ties by name; every step is listed,
    with empty lists where no component has the role."""
    out: RoleSets = {}
    for step, group in components.groupby("step", sort=True):
        held = group["role"].fillna("").astype(str).str.split("+").map(set)
        out[int(step)] = {}
        for role, metric in ROLE_METRICS.items():
            ranked = group[held.map(lambda roles, r=role: r in roles)].sort_values(
                [metric, "name"], ascending=[False, True], kind="stable"
            )
            out[int(step)][role] = ranked["name"].tolist()
    return out


def fmt(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, ``n/a`` for None, NaN or infinity."""
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def mean_defined(values: Iterable[float]) -> float:
    """The mean of the values that are not NaN (NaN when none is)."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def _ordered_within(labels: Sequence[str], order: Sequence[str]) -> bool:
    """Whether ``order`` is a subsequence of ``labels`` (each next one found later)."""
    remaining = iter(labels)
    return all(any(label == wanted for label in remaining) for wanted in order)


def check_phases(checkpoints: pd.DataFrame) -> Claim:
    """(a) The three phases in the paper's order.

    ``checkpoints``: ``step`` and ``phase`` (the label of each checkpoint's segment). Segments are
    the runs of equal labels in step order. Rule: **holds** when exploration, consolidation and
    refinement appear in that order (some exploration segment, a later consolidation segment, a
    later refinement segment; other segments may come between); **does not hold** otherwise;
    **not testable here** with fewer than 3 × ``MIN_SIZE`` labelled checkpoints (three segments
    of the minimum size cannot be found). ``numbers["exact"]`` says whether the sequence is
    exactly the three.
    """
    segments = segment_table(checkpoints)
    labels = segments["label"].tolist()
    n = int(segments["n_checkpoints"].sum())
    numbers: dict[str, Any] = {
        "labels": labels,
        "first_steps": segments["first_step"].tolist(),
        "last_steps": segments["last_step"].tolist(),
        "n_checkpoints": n,
        "exact": labels == list(PHASES),
    }
    shown = " → ".join(
        f"{s.label} [{s.first_step}–{s.last_step}]" for s in segments.itertuples(index=False)
    )
    if n < 3 * MIN_SIZE:
        verdict = UNTESTABLE
    else:
        verdict = HOLDS if _ordered_within(labels, PHASES) else FAILS
    return Claim(
        claim="(a) three phases in order",
        paper="exploration → consolidation → refinement",
        this_run=f"{len(labels)} segments over {n} checkpoints: {shown or 'none'}",
        verdict=verdict,
        rule="the three labels appear as an ordered subsequence of the segments",
        numbers=numbers,
    )


def expected_spreaders(n_layers: int, early_layers: int | None = None) -> list[str]:
    """``input`` and the MLPs of the first ``early_layers`` layers (default ⌈n_layers / 3⌉,
    at least 1: m0 of a 2-layer model, m0 and m1 of a 6-layer one)."""
    early = max(1, math.ceil(n_layers / 3)) if early_layers is None else early_layers
    return ["input", *(f"m{layer}" for layer in range(min(early, n_layers)))]


def check_spreaders(roles: RoleSets, n_layers: int, early_layers: int | None = None) -> Claim:
    """(b) Spreaders are the embedding and early MLPs (:func:`expected_spreaders`), stably.

    Over the steps with at least one spreader: ``top_share`` is the fraction whose first spreader
    is expected, ``member_share`` the mean fraction of expected components among the spreaders;
    ``late_jaccard`` is the mean Jaccard index of the spreader sets of consecutive steps whose
    later step lies in the second half of the run. Rule: **holds** when ``top_share`` ≥
    ``TOP_SPREADER_SHARE``, ``member_share`` ≥ ``MEMBER_SHARE`` and ``late_jaccard`` ≥
    ``STABLE_JACCARD``; **not testable here** with fewer than two steps with a spreader or no
    defined ``late_jaccard``; **does not hold** otherwise.
    """
    expected = set(expected_spreaders(n_layers, early_layers))
    steps = sorted(roles)
    sets = [roles[s]["spreader"] for s in steps]
    present = [s for s in sets if s]
    top_share = float(np.mean([s[0] in expected for s in present])) if present else math.nan
    member_share = mean_defined(len(expected & set(s)) / len(s) for s in present)
    late = range(max(1, len(steps) // 2), len(steps))
    late_jaccard = mean_defined(jaccard(sets[i - 1], sets[i]) for i in late)
    last = sets[-1] if sets else []
    numbers = {
        "expected": sorted(expected),
        "steps_with_spreaders": len(present),
        "top_share": top_share,
        "member_share": member_share,
        "late_jaccard": late_jaccard,
        "last_spreaders": last,
    }
    if len(present) < 2 or math.isnan(late_jaccard):
        verdict = UNTESTABLE
    else:
        met = (
            top_share >= TOP_SPREADER_SHARE
            and member_share >= MEMBER_SHARE
            and late_jaccard >= STABLE_JACCARD
        )
        verdict = HOLDS if met else FAILS
    return Claim(
        claim="(b) spreaders: embedding + early MLPs, stable",
        paper="the embedding and the first MLP spread most, at every stage of training",
        this_run=(
            f"first spreader in {{{', '.join(sorted(expected))}}} at {fmt(top_share)} of "
            f"{len(present)} steps; expected share of the spreaders {fmt(member_share)}; "
            f"Jaccard of consecutive sets, last half {fmt(late_jaccard)}; "
            f"last step: {', '.join(last) or 'none'}"
        ),
        verdict=verdict,
        rule=(
            f"first spreader expected at ≥ {TOP_SPREADER_SHARE:g} of the steps, expected share ≥ "
            f"{MEMBER_SHARE:g}, late Jaccard ≥ {STABLE_JACCARD:g}"
        ),
        numbers=numbers,
    )


def largest_gain(metric: pd.DataFrame) -> tuple[int, float] | None:
    """The step ending the largest rise of ``metric`` (``step, metric``) between consecutive
    checkpoints, and the rise (``None``: fewer than two values or no rise). NaN rows are left
    out; on a tie the earliest step."""
    frame = metric[["step", "metric"]].dropna().sort_values("step")
    rises = frame["metric"].diff().to_numpy()[1:]
    if rises.size == 0 or not (rises > 0).any():
        return None
    i = int(np.argmax(rises)) + 1
    return int(frame["step"].iloc[i]), float(rises[i - 1])


def _juncture(
    changes: list[float], steps: list[int], gain: int | None, window: int
) -> dict[str, Any]:
    """One role at the juncture: ``changes[i]`` is its change between checkpoints i − 1 and i
    (NaN: undefined), ``gain`` the juncture's position (``None``: no juncture)."""
    defined = [i for i, c in enumerate(changes) if not math.isnan(c)]
    peak = max(defined, key=lambda i: (changes[i], -i)) if defined else None
    out = {
        "testable": bool(defined),
        "at_juncture": False,
        "near": math.nan,
        "far": math.nan,
        "peak_step": None if peak is None else steps[peak],
    }
    if gain is None or not defined:
        return out
    near = [changes[i] for i in defined if abs(i - gain) <= window]
    far = [changes[i] for i in defined if abs(i - gain) > window]
    out["near"], out["far"] = max(near, default=math.nan), max(far, default=math.nan)
    out["at_juncture"] = bool(near) and out["near"] > 0 and (not far or out["near"] > out["far"])
    return out


def check_reconfiguration(
    roles: RoleSets, metric: pd.DataFrame, window: int = JUNCTURE_WINDOW
) -> Claim:
    """(c) Gatherers and gatekeepers reconfigure near the largest gain of the task metric.

    On the steps in both ``roles`` and ``metric`` (``step, metric``; higher is better), the
    juncture is the checkpoint ending the largest rise of the metric (:func:`largest_gain`). A
    role's change at checkpoint i is 1 − the Jaccard index of its top-k sets at i − 1 and i
    (undefined when both are empty); its peak is the step of its largest change (the earliest
    on a tie). The role reconfigures at the juncture when its largest change within ``window``
    checkpoints of the juncture is positive and exceeds its largest change anywhere else (a tie
    is not a juncture). Rule: **holds** when both roles do; **does not hold** when a role with
    a defined change does not; **not testable here** when the metric never rises, or when a
    role is empty at every step (as gatekeepers are on total-effect graphs) and the other does
    not fail.
    """
    steps = sorted(set(roles) & {int(s) for s in metric["step"]})
    gain = largest_gain(metric[metric["step"].isin(steps)])
    at = None if gain is None else steps.index(gain[0])
    per_role = {}
    for role in RECONFIGURING:
        sets = [roles[s][role] for s in steps]
        changes = [math.nan, *(1 - jaccard(a, b) for a, b in pairwise(sets))]
        per_role[role] = _juncture(changes, steps, at, window)
    numbers: dict[str, Any] = {
        "gain_step": None if gain is None else gain[0],
        "gain": None if gain is None else gain[1],
        **per_role,
    }
    testable = [v for v in per_role.values() if v["testable"]]
    if gain is None:
        verdict = UNTESTABLE
    elif any(not v["at_juncture"] for v in testable):
        verdict = FAILS
    else:
        verdict = HOLDS if len(testable) == len(per_role) else UNTESTABLE

    def said(role: str) -> str:
        v = per_role[role]
        if not v["testable"]:
            return f"{role}s: no change defined (empty at every step)"
        near, far = fmt(v["near"]), fmt(v["far"])
        return (
            f"{role}s: largest change {near} near the gain vs {far} elsewhere "
            f"(peak at step {v['peak_step']})"
        )

    shown = (
        "no rise of the metric"
        if gain is None
        else f"largest metric gain +{gain[1]:.3g} at step {gain[0]}; "
        + "; ".join(said(r) for r in per_role)
    )
    return Claim(
        claim="(c) gatherers/gatekeepers reconfigure at junctures",
        paper="gatherers and gatekeepers change at learning junctures (≈10k and 80k steps)",
        this_run=shown,
        verdict=verdict,
        rule=(
            f"each role's largest set change within {window} checkpoint(s) of the largest "
            "metric gain exceeds its largest change elsewhere"
        ),
        numbers=numbers,
    )


@dataclass(frozen=True)
class TailFit:
    """The upper tail of a sample: the ``k`` largest values above ``threshold`` (the next one).

    ``alpha``: Hill estimate (the Pareto maximum-likelihood exponent with x_min = threshold),
    k / Σ log(xᵢ / threshold); ``rate``: the exponential's maximum-likelihood rate on the
    exceedances, k / Σ (xᵢ − threshold); ``log_ratio``: Σ (log-likelihood of the Pareto − of the
    exponential) over the tail; ``p``: Vuong's two-sided p-value of that ratio (its normal
    statistic R / (σ √k), σ the standard deviation of the pointwise differences; 1 when σ = 0).
    """

    k: int
    threshold: float
    alpha: float
    rate: float
    log_ratio: float
    p: float

    @property
    def long_tailed(self) -> bool:
        """The power law fits the tail significantly better than an exponential: log_ratio > 0
        and p < ``TAIL_P``."""
        return self.log_ratio > 0 and self.p < TAIL_P


def tail_fit(
    values: np.ndarray | Sequence[float], fraction: float = TAIL_FRACTION
) -> TailFit | None:
    """Fit the upper tail of ``values`` (see :class:`TailFit`): the k = max(``MIN_TAIL``,
    ⌈fraction · n⌉) largest (at most n − 1), the threshold the (k + 1)-th largest. ``None``:
    fewer than ``MIN_TAIL`` + 1 values, a threshold ≤ 0, or a tail all equal to it."""
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    x = x[np.isfinite(x)]
    n = x.size
    if n < MIN_TAIL + 1:
        return None
    k = min(max(MIN_TAIL, math.ceil(fraction * n)), n - 1)
    threshold, tail = float(x[k]), x[:k]
    if threshold <= 0 or not (tail > threshold).any():
        return None
    logs, excess = np.log(tail / threshold), tail - threshold
    alpha, rate = k / float(logs.sum()), k / float(excess.sum())
    pareto = math.log(alpha / threshold) - (alpha + 1) * logs
    exponential = math.log(rate) - rate * excess
    diff = pareto - exponential
    ratio, sigma = float(diff.sum()), float(diff.std())
    p = math.erfc(abs(ratio / (sigma * math.sqrt(k))) / math.sqrt(2)) if sigma > 0 else 1.0
    return TailFit(k, threshold, alpha, rate, ratio, p)


def tail_index(values: np.ndarray | Sequence[float], fraction: float = TAIL_FRACTION) -> float:
    """The Hill tail index α of :func:`tail_fit` (NaN where it gives none); a smaller α is a
    heavier tail."""
    fit = tail_fit(values, fraction)
    return fit.alpha if fit is not None else float("nan")


def check_weight_tail(weights: pd.DataFrame, fraction: float = TAIL_FRACTION) -> Claim:
    """(d) A long-tailed edge-weight distribution.

    ``weights``: ``step, weight`` (the edges of each checkpoint's graph at τ). Per checkpoint
    :func:`tail_fit`; a checkpoint is long-tailed when its tail follows a power law
    significantly better than an exponential (:attr:`TailFit.long_tailed`); the share where the
    exponential is significantly better is reported as ``exponential_share``. Rule: **holds** when
    at least ``LONG_TAILED_SHARE`` of the fitted checkpoints are long-tailed; **does not hold**
    otherwise; **not testable here** when no checkpoint gets a fit (fewer than ``MIN_TAIL`` + 1
    weights, or a tail all equal).
    """
    fits = {int(s): tail_fit(g["weight"].to_numpy(), fraction) for s, g in weights.groupby("step")}
    fitted = {s: f for s, f in fits.items() if f is not None}
    share = float(np.mean([f.long_tailed for f in fitted.values()])) if fitted else math.nan
    lighter = [f.log_ratio < 0 and f.p < TAIL_P for f in fitted.values()]
    alphas = [f.alpha for f in fitted.values()]
    numbers = {
        "steps": len(fits),
        "fitted": len(fitted),
        "long_tailed_share": share,
        "exponential_share": float(np.mean(lighter)) if fitted else math.nan,
        "median_alpha": float(np.median(alphas)) if alphas else math.nan,
        "median_log_ratio": (
            float(np.median([f.log_ratio for f in fitted.values()])) if fitted else math.nan
        ),
        "alpha": {s: f.alpha for s, f in fitted.items()},
        "p": {s: f.p for s, f in fitted.items()},
    }
    verdict = UNTESTABLE if not fitted else HOLDS if share >= LONG_TAILED_SHARE else FAILS
    return Claim(
        claim="(d) long-tailed edge weights",
        paper="a long-tailed (heavy-tailed) distribution of edge weights",
        this_run=(
            f"power law beats exponential (p < {TAIL_P:g}) at {fmt(share)} of {len(fitted)} "
            f"fitted checkpoints (of {len(fits)}), the exponential significantly better at "
            f"{fmt(numbers['exponential_share'])}; median Hill α "
            f"{fmt(numbers['median_alpha'])}, median log-likelihood ratio "
            f"{fmt(numbers['median_log_ratio'])}"
        ),
        verdict=verdict,
        rule=(
            f"the top {fraction:.0%} of weights fit a power law significantly better than an "
            f"exponential at ≥ {LONG_TAILED_SHARE:g} of the checkpoints"
        ),
        numbers=numbers,
    )


def check_run(
    checkpoints: pd.DataFrame, roles: RoleSets, weights: pd.DataFrame, n_layers: int
) -> list[Claim]:
    """Claims (a)–(d) of one analyzed run: ``checkpoints`` with ``step, metric, phase``."""
    return [
        check_phases(checkpoints),
        check_spreaders(roles, n_layers),
        check_reconfiguration(roles, checkpoints),
        check_weight_tail(weights),
    ]


def role_agreement(a: RoleSets, b: RoleSets, roles: Sequence[str] = ROLES) -> float:
    """Mean Jaccard index of the top-k sets of ``a`` and ``b`` over their common steps and
    ``roles``, where either set is non-empty (NaN when none is)."""
    common = sorted(set(a) & set(b))
    return mean_defined(jaccard(a[s][r], b[s][r]) for s in common for r in roles)


def role_agreements(a: RoleSets, b: RoleSets) -> dict[str, float]:
    """:func:`role_agreement` per role, and over all roles as ``"all"``."""
    return {**{r: role_agreement(a, b, [r]) for r in ROLES}, "all": role_agreement(a, b)}


def describe_roles(named: Mapping[str, float]) -> str:
    """``spreader 0.50, gatherer n/a, …`` for a mapping of role → value."""
    return ", ".join(f"{name} {fmt(value)}" for name, value in named.items())
