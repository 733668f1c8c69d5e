"""``analyze``: centralities, roles and phases of a stored run, written back to the store.

For each stored checkpoint, the graph at τ (see :mod:`circuitatlas.graph.network`) gives
per-component centralities (in the database with GDS on Neo4j, with igraph beside the embedded
store) and per-checkpoint statistics; roles and their stability (:mod:`.roles`) and phases
(:mod:`.phases`) follow from those. ``write=True`` stores everything on the run's nodes, with τ,
the measure, the cost transform and k recorded on every Checkpoint and on the Run, so a later
analysis with another τ replaces every value.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from circuitatlas.analytics.phases import DEFAULT_PENALTY, Phases, phases
from circuitatlas.analytics.roles import (
    DEFAULT_RECONFIGURATION,
    DEFAULT_TOP_K,
    ROLES,
    role_labels,
    stability,
    top_sets,
)
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.centrality import METRICS
from circuitatlas.graph.network import COST, MEASURES, check_tau
from circuitatlas.graph.statistics import graph_stats
from circuitatlas.store.analysis_rows import CHECKPOINT_ANALYSIS, analysis_rows
from circuitatlas.store.base import StoreBase

DEFAULT_TAU = 0.7


@dataclass(frozen=True)
class AnalysisSettings:
    """What an analysis is computed with (all recorded in the store)."""

    tau: float = DEFAULT_TAU
    measure: str = "total"
    top_k: int = DEFAULT_TOP_K
    reconfiguration: float = DEFAULT_RECONFIGURATION
    penalty: float = DEFAULT_PENALTY

    def check(self) -> None:
        """Raise a one-line error for a setting out of range."""
        check_tau(self.tau)
        if self.measure not in MEASURES:
            raise CircuitAtlasError(f"--edges {self.measure}: give one of {', '.join(MEASURES)}")
        if self.top_k < 1:
            raise CircuitAtlasError(f"--top-k {self.top_k}: give a positive number")
        if not 0 <= self.reconfiguration <= 1:
            raise CircuitAtlasError(
                f"--reconfiguration {self.reconfiguration}: give a Jaccard threshold in [0, 1]"
            )
        if self.penalty <= 0:
            raise CircuitAtlasError(f"--penalty {self.penalty}: give a positive number")


@dataclass(frozen=True)
class Analysis:
    """An analysis of one run: per-component and per-checkpoint frames, roles and phases."""

    run_id: str
    settings: AnalysisSettings
    components: pd.DataFrame  # step, name, METRICS, role
    checkpoints: pd.DataFrame  # step, loss, metric, CHECKPOINT_ANALYSIS
    roles: dict[int, dict[str, list[str]]]  # step → role → top-k names
    phases: Phases
    warnings: list[str] = field(default_factory=list)

    @property
    def reconfigurations(self) -> list[int]:
        """Steps flagged as reconfiguration events."""
        flagged = self.checkpoints[self.checkpoints["reconfiguration"]]
        return [int(s) for s in flagged["step"]]

    def last_roles(self) -> dict[str, list[str]]:
        """The top-k sets of the last checkpoint."""
        return self.roles[max(self.roles)] if self.roles else {r: [] for r in ROLES}

    def summary(self) -> str:
        """Phases, boundaries, reconfiguration events and the last checkpoint's roles, as text."""
        steps = self.checkpoints["step"].tolist()
        starts = [steps[0], *self.phases.boundaries]
        ends = [steps[steps.index(b) - 1] for b in self.phases.boundaries] + [steps[-1]]
        segments = " → ".join(
            f"{label} [{lo}–{hi}]" if lo != hi else f"{label} [{lo}]"
            for label, lo, hi in zip(self.phases.labels, starts, ends, strict=True)
        )
        events = ", ".join(map(str, self.reconfigurations)) or "none"
        bounds = ", ".join(map(str, self.phases.boundaries)) or "none"
        last = self.last_roles()
        roles = " · ".join(f"{role}s {', '.join(last[role]) or '(none)'}" for role in ROLES)
        return (
            f"phases: {segments}\n"
            f"phase boundaries at steps: {bounds}; reconfiguration events at steps: {events}\n"
            f"last checkpoint (step {steps[-1]}): {roles}"
        )


def analyze(
    store: StoreBase | str | Path,
    run_id: str,
    tau: float = DEFAULT_TAU,
    *,
    measure: str = "total",
    top_k: int = DEFAULT_TOP_K,
    reconfiguration: float = DEFAULT_RECONFIGURATION,
    penalty: float = DEFAULT_PENALTY,
    write: bool = True,
    progress: bool = False,
) -> Analysis:
    """Analyze ``run_id`` at ``tau`` and (with ``write``) store the results on its nodes.

    ``store`` is an open store or a store URL (opened writable when ``write``).
    """
    settings = AnalysisSettings(tau, measure, top_k, reconfiguration, penalty)
    settings.check()  # before a store URL is opened (a writable open may create the file)
    with using_store(store, write) as opened:
        return run_analysis(opened, run_id, settings, write, progress)


@contextmanager
def using_store(store: StoreBase | str | Path, writable: bool) -> Iterator[StoreBase]:
    """``store`` itself when it is open, else the store at that URL, opened and closed here."""
    if isinstance(store, StoreBase):
        yield store
        return
    from circuitatlas.store import open_store

    opened = open_store(store, writable=writable)
    try:
        yield opened
    finally:
        opened.close()


def run_analysis(
    store: StoreBase,
    run_id: str,
    settings: AnalysisSettings,
    write: bool = True,
    progress: bool = False,
) -> Analysis:
    """:func:`analyze` on an open store with its settings in one value."""
    settings.check()
    checkpoints = store.checkpoints(run_id)  # raises for an unknown run
    if checkpoints.empty:
        raise CircuitAtlasError(
            f"run {run_id} has no stored checkpoint; ingest some first (`circuitatlas ingest`)"
        )
    if write and not getattr(store, "writable", False):
        raise CircuitAtlasError(f"store {store.url} was opened read-only; open it writable")
    steps = sorted(int(s) for s in checkpoints["step"])
    if write:
        store.begin_analysis(run_id)
    metric_frames, stats = [], []
    for step in tqdm(steps, desc=f"analyze τ={settings.tau:g}", unit="ckpt", disable=not progress):
        graph = store.analysis_graph(run_id, step, settings.tau, settings.measure)
        frame = store.centralities_of(
            run_id, step, graph, settings.tau, settings.measure, write=write
        )
        metric_frames.append(frame.assign(step=step))
        stats.append({"step": step, **graph_stats(graph)})
    components = pd.concat(metric_frames, ignore_index=True)[["step", "name", *METRICS]]
    components = components.astype({"in_degree": "int64", "out_degree": "int64"})
    sets = top_sets(components, settings.top_k)
    # typed columns, so an all-null column keeps its type on the way to the store
    components["role"] = role_labels(components, sets).astype("string")
    trajectory = pd.DataFrame(stats).merge(checkpoints[["step", "loss", "metric"]], on="step")
    found = phases(trajectory, settings.penalty)
    table = trajectory.merge(stability(sets, settings.reconfiguration), on="step")
    table["phase"] = table["step"].map(found.per_step)
    table = table.assign(
        tau=settings.tau, measure=settings.measure, cost=COST, top_k=settings.top_k
    )[["step", "loss", "metric", *CHECKPOINT_ANALYSIS]]
    floats = ["weight_tail_index", "role_stability", *(f"{r}_jaccard" for r in ROLES)]
    table = table.astype({**dict.fromkeys(floats, "float64"), "reconfiguration": bool})
    empty = table.loc[table["n_edges"] == 0, "step"].tolist()
    notes = []
    if empty:
        notes.append(
            f"at τ={settings.tau:g} ({settings.measure}) {len(empty)} of {len(steps)} "
            f"checkpoints have no edge (steps {_shorten(empty)}); their metrics are zero"
        )
        warnings.warn(notes[-1], stacklevel=3)
    analysis = Analysis(run_id, settings, components, table, sets, found, notes)
    if write:
        _write_back(store, analysis)
    return analysis


def _write_back(store: StoreBase, analysis: Analysis) -> None:
    settings = analysis.settings
    if store.computes_in_database:  # the centralities are stored already
        components = analysis.components[["step", "name", "role"]]
    else:
        components = analysis.components
    run: dict[str, Any] = {
        "analysis_tau": settings.tau,
        "analysis_measure": settings.measure,
        "analysis_cost": COST,
        "analysis_top_k": settings.top_k,
        "phase_boundaries": analysis.phases.boundaries,
        "phase_labels": analysis.phases.labels,
        "reconfigurations": analysis.reconfigurations,
        "analyzed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    checkpoints = analysis.checkpoints.drop(columns=["loss", "metric"])
    store.write_analysis(analysis_rows(analysis.run_id, components, checkpoints, run))


def analysis_table(checkpoints: pd.DataFrame) -> pd.DataFrame:
    """A compact view of an analysis's checkpoint frame for printing."""
    view = pd.DataFrame(
        {
            "step": checkpoints["step"],
            "metric": checkpoints["metric"].round(3),
            "|V|": checkpoints["n_nodes"],
            "|E|": checkpoints["n_edges"],
            "density": checkpoints["density"].round(3),
            "mean_w": checkpoints["mean_weight"].round(3),
            "gini": checkpoints["weight_gini"].round(3),
            "tail": checkpoints["weight_tail_index"].astype(float).round(2),
            "stability": checkpoints["role_stability"].astype(float).round(2),
            "event": checkpoints["reconfiguration"].map({True: "reconf", False: ""}),
            "phase": checkpoints["phase"],
        }
    )
    return view


def _shorten(steps: list[int], n: int = 8) -> str:
    return ", ".join(map(str, steps[:n])) + (" …" if len(steps) > n else "")
