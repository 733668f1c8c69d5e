"""What the report shows of one run, gathered from the store in one pass (never writing to it).

:func:`gather` reads the run's properties, checkpoints, components and edge weights, its stored
analysis (or, when none is stored, one computed here at the default τ without writing it), and
the ``k`` strongest ``input → logits`` paths of every checkpoint (direct effects, every edge with a
positive weight, see :mod:`circuitatlas.graph.paths`) and the saved edge-level circuits, when the
run has some (:mod:`circuitatlas.report.circuit_data`).

**Phases** are the analysis's segments: ``phase`` (0, 1, …), ``label``, ``first_step``,
``last_step``, ``n_checkpoints``. Two adjacent segments can carry the same label; they stay two
phases.

**The strongest path of a phase** is the path ranked 1st at the most checkpoints of the phase;
between paths ranked 1st equally often, the one ranked 1st at the later checkpoint wins. Its
``strength`` and ``step`` are those of the last checkpoint of the phase where it is ranked 1st,
``top1_checkpoints`` counts the checkpoints of the phase where it is. A phase none of whose
checkpoints has a path gets no path (``path`` null, ``strength`` NaN, ``step`` null).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd

from circuitatlas.analytics.analyze import DEFAULT_TAU, Analysis, analyze, using_store
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.centrality import METRICS
from circuitatlas.graph.paths import DEFAULT_K, PathSettings
from circuitatlas.queries.paths import PathResult, find_paths
from circuitatlas.report.circuit_data import CircuitData, gather_circuits
from circuitatlas.store.base import StoreBase

PHASE_COLUMNS = ["phase", "label", "first_step", "last_step", "n_checkpoints"]
PHASE_PATH_COLUMNS = [
    "phase",
    "label",
    "first_step",
    "last_step",
    "path",
    "strength",
    "step",
    "top1_checkpoints",
    "n_checkpoints",
]
EDGE_WEIGHT_COLUMNS = ["step", "source", "target", "weight", "direct_weight"]


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything the report shows of one run (frames as documented in the module docstring)."""

    run_id: str
    run: dict[str, Any]  # the Run node's properties, ``config`` parsed
    checkpoints: pd.DataFrame  # step, loss, metric and the analysis's checkpoint columns
    components: pd.DataFrame  # the store's component columns and the analysis's metrics, role
    edges: pd.DataFrame  # EDGE_WEIGHT_COLUMNS, every stored edge, by step, source, target
    phases: pd.DataFrame  # PHASE_COLUMNS
    paths: PathResult  # the k strongest paths of every checkpoint
    persistence: pd.DataFrame  # paths.persistence()
    phase_paths: pd.DataFrame  # PHASE_PATH_COLUMNS, the strongest path of each phase
    analysed: bool  # whether the analysis shown is the one stored with the run
    warnings: tuple[str, ...] = ()
    circuits: CircuitData | None = None  # the saved edge circuits of one setting (None: none)

    @property
    def steps(self) -> list[int]:
        """The run's checkpoints, in step order."""
        return [int(s) for s in self.checkpoints["step"]]

    @property
    def reconfigurations(self) -> list[int]:
        """Steps flagged as reconfiguration events."""
        flagged = self.checkpoints["reconfiguration"].fillna(False).astype(bool)
        return [int(s) for s in self.checkpoints.loc[flagged, "step"]]

    @property
    def tau(self) -> float:
        """The threshold τ of the analysis shown."""
        return float(self.checkpoints["tau"].iloc[0])

    @property
    def measure(self) -> str:
        """The edge measure of the analysis shown (``total`` or ``direct``)."""
        return str(self.checkpoints["measure"].iloc[0])


def gather(
    store: StoreBase | str | Path, run_id: str, k: int = DEFAULT_K, tau: float | None = None
) -> ReportData:
    """The report's data for ``run_id``, read from ``store`` (an open store or a URL).

    ``tau`` picks the analysis: ``None`` shows the stored one, or computes one at the default τ
    when the run has none; another τ than the stored one is computed. A computed analysis is
    never written, and a warning says it was computed. ``k`` paths are kept per checkpoint.
    """
    with using_store(store, writable=False) as opened:
        return _gather(opened, run_id, k, tau)


def _gather(store: StoreBase, run_id: str, k: int, tau: float | None) -> ReportData:
    run = run_properties(store, run_id)
    checkpoints = store.checkpoints(run_id)
    if checkpoints.empty:
        raise CircuitAtlasError(
            f"run {run_id} has no stored checkpoint; ingest some first (`circuitatlas ingest`)"
        )
    notes: list[str] = []
    stored_tau = run.get("analysis_tau")
    analysed = has_analysis(checkpoints) and (tau is None or _same(tau, stored_tau))
    if analysed:
        components = store.components(run_id)
        phases = _stored_phases(run, checkpoints)
    else:
        chosen = DEFAULT_TAU if tau is None else tau
        analysis = _analysis(store, run_id, chosen)
        checkpoints, components = analysis.checkpoints, _with_metrics(store, run_id, analysis)
        phases = phase_segments(
            analysis.checkpoints["step"], analysis.phases.boundaries, analysis.phases.labels
        )
        notes += [_computed_note(run_id, chosen, stored_tau), *analysis.warnings]
    paths = find_paths(store, run_id, None, PathSettings(k=k), progress=False)
    notes += paths.notes
    return ReportData(
        run_id=run_id,
        run=run,
        checkpoints=_sorted(checkpoints, ["step"]),
        components=components,
        edges=_sorted(store.edges(run_id)[EDGE_WEIGHT_COLUMNS], ["step", "source", "target"]),
        phases=phases,
        paths=paths,
        persistence=paths.persistence(),
        phase_paths=strongest_per_phase(paths.paths, phases),
        analysed=analysed,
        warnings=tuple(notes),
        circuits=gather_circuits(store, run_id, components),
    )


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame`` in the order of ``keys`` (a backend may return rows in any order)."""
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def run_properties(store: StoreBase, run_id: str) -> dict[str, Any]:
    """The Run node's properties (storage details left out, ``config`` parsed); raises for an
    unknown run."""
    found = store.read_named("ask_run", run_id=run_id)
    if found.empty:
        store.run_config(run_id)  # raises, naming the known runs
    props = {k: v for k, v in dict(found["run"].iloc[0]).items() if not k.startswith("_")}
    if isinstance(props.get("config"), str):
        props["config"] = json.loads(props["config"])
    return props


def has_analysis(checkpoints: pd.DataFrame) -> bool:
    """Whether an analysis is stored: some checkpoint has a phase."""
    return "phase" in checkpoints and bool(checkpoints["phase"].notna().any())


def _same(tau: float, stored: Any) -> bool:
    return stored is not None and math.isclose(float(tau), float(stored), abs_tol=1e-12)


def _analysis(store: StoreBase, run_id: str, tau: float) -> Analysis:
    with warnings.catch_warnings():  # its warnings are in Analysis.warnings too
        warnings.simplefilter("ignore")
        return analyze(store, run_id, tau, write=False)


def _with_metrics(store: StoreBase, run_id: str, analysis: Analysis) -> pd.DataFrame:
    """The stored components with the (not stored) analysis's metrics and roles."""
    stored = store.components(run_id)
    stored = stored.drop(columns=[c for c in (*METRICS, "role") if c in stored])
    return stored.merge(analysis.components, on=["step", "name"], how="left")


def _computed_note(run_id: str, tau: float, stored_tau: Any) -> str:
    if stored_tau is None:
        why = f"run {run_id} has no stored analysis"
    else:
        why = f"the stored analysis of run {run_id} is at τ={float(stored_tau):g}"
    return (
        f"{why}: the report shows one computed at τ={tau:g} (total effects) without storing it "
        f"(`circuitatlas analyze --run {run_id} --tau {tau:g}` stores one)"
    )


def _stored_phases(run: dict[str, Any], checkpoints: pd.DataFrame) -> pd.DataFrame:
    """The stored segments (the Run's boundaries and labels), else runs of equal labels."""
    boundaries, labels = run.get("phase_boundaries"), run.get("phase_labels")
    steps = checkpoints["step"]
    if labels is not None and boundaries is not None and len(labels) == len(boundaries) + 1:
        return phase_segments(steps, [int(b) for b in boundaries], list(labels))
    frame = checkpoints.sort_values("step")
    new = frame["phase"].ne(frame["phase"].shift())
    starts = frame.loc[new, "step"].tolist()[1:]
    return phase_segments(steps, starts, frame.loc[new, "phase"].tolist())


def phase_segments(
    steps: Sequence[int] | pd.Series, boundaries: Sequence[int], labels: Sequence[str]
) -> pd.DataFrame:
    """``PHASE_COLUMNS`` from the checkpoint steps, the steps where a new phase starts (the
    first phase's is not listed) and one label per phase."""
    ordered = sorted(int(s) for s in steps)
    starts = [0, *(ordered.index(int(b)) for b in boundaries), len(ordered)]
    rows = [
        [i, label, ordered[lo], ordered[hi - 1], hi - lo]
        for i, (label, (lo, hi)) in enumerate(zip(labels, pairwise(starts), strict=True))
    ]
    return pd.DataFrame(rows, columns=PHASE_COLUMNS)


def strongest_per_phase(paths: pd.DataFrame, phases: pd.DataFrame) -> pd.DataFrame:
    """The strongest path of each phase (see the module docstring): ``PHASE_PATH_COLUMNS``.

    ``paths`` has ``PATH_COLUMNS`` (a :class:`PathResult`'s ``paths``), ``phases``
    ``PHASE_COLUMNS``.
    """
    top = paths[paths["rank"] == 1]
    rows = []
    for phase in phases.itertuples(index=False):
        within = top[top["step"].between(phase.first_step, phase.last_step)]
        where = [phase.phase, phase.label, phase.first_step, phase.last_step]
        rows.append([*where, *_phase_winner(within), phase.n_checkpoints])
    frame = pd.DataFrame(rows, columns=PHASE_PATH_COLUMNS)
    return frame.astype({"strength": "float64", "step": "Int64", "top1_checkpoints": "int64"})


def _phase_winner(top: pd.DataFrame) -> tuple[str | None, float, int | None, int]:
    """``path, strength, step, top1_checkpoints`` of the phase's rank-1 rows ``top``."""
    if top.empty:
        return None, math.nan, None, 0
    counts = top.groupby("path")["step"].agg(["size", "max"])
    best = counts.sort_values(["size", "max"], ascending=False).iloc[0]
    row = top[top["step"] == best["max"]].iloc[0]
    return str(row["path"]), float(row["strength"]), int(row["step"]), int(best["size"])
