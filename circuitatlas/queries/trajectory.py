"""Trajectory questions: named questions over a run's training trajectory, answered in Cypher.

Each question is one named statement per dialect (``cypher/{dialect}/ask_*.cypher``) that does the
work in the database (ordering, top-k per checkpoint, the join of two checkpoints, the change
classes); this module checks the input, sends it as parameters and types the frame.

======================  =======================================================================
question                frame
======================  =======================================================================
``top_components``      ``step, rank, name, value``: the k largest values of a numeric property
                        at every checkpoint (ties by name; tied values share a rank)
``component_history``   ``step`` + the chosen numeric properties of one component
``edge_history``        ``step`` + ``EDGE_PROPERTIES`` of one edge
``first_exceeding``     ``step, weight``: the first step where an edge's weight exceeds a value;
                        empty, with ``frame.attrs["note"]`` saying how high it got, if never
``role_changes``        ``name, role_before, role_after``: roles that differ between two steps
``checkpoint_diff``     ``change, source, target, weight_before, weight_after, delta``: edges
                        that appeared, vanished, strengthened or weakened between two steps at τ
======================  =======================================================================

``store`` is an open store or a store URL. A frame may carry a one-line ``attrs["note"]`` about
the answer (the CLI prints it to stderr). Bad input raises one :class:`CircuitAtlasError` line.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from circuitatlas.analytics.analyze import DEFAULT_TAU, using_store
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.centrality import DEGREE_METRICS, METRICS
from circuitatlas.graph.network import MEASURES, check_tau
from circuitatlas.store.base import StoreBase
from circuitatlas.store.rows import EDGE_PROPERTIES, checkpoint_key

#: Numeric Component properties a question can read: the sweep's, then the analysis's.
NUMERIC_PROPERTIES = ("effect", "prev_token_score", "induction_score", *METRICS)
CHANGES = ("appeared", "vanished", "strengthened", "weakened")
DEFAULT_TOP_K = 5
DEFAULT_DIFF_K = 10

TOP_COLUMNS = {"step": "int64", "rank": "int64", "name": "object", "value": "float64"}
EDGE_COLUMNS = {"step": "int64", **dict.fromkeys(EDGE_PROPERTIES, "float64")}
FIRST_COLUMNS = {"step": "int64", "weight": "float64"}
ROLE_COLUMNS = {"name": "object", "role_before": "object", "role_after": "object"}
DIFF_COLUMNS = {
    "change": "object",
    "source": "object",
    "target": "object",
    "weight_before": "float64",
    "weight_after": "float64",
    "delta": "float64",
}

StoreLike = StoreBase | str | Path


def top_components(
    store: StoreLike, run_id: str, metric: str, k: int = DEFAULT_TOP_K
) -> pd.DataFrame:
    """The ``k`` components with the largest ``metric`` at every checkpoint (nulls left out).

    Rows are the first ``k`` by value, ties by name; ``rank`` is 1 + the number of the
    checkpoint's components with a larger value, so tied values share it.
    """
    _check_metric(metric)
    _check_k(k)
    with using_store(store, writable=False) as opened:
        _require_analysis(_run(opened, run_id), run_id, [metric])
        frame = opened.read_named("ask_top", run_id=run_id, metric=metric, k=int(k))
    dtypes = {**TOP_COLUMNS, "value": "Int64" if metric in DEGREE_METRICS else "float64"}
    return _typed(frame, dtypes)


def component_history(
    store: StoreLike, run_id: str, name: str, metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """``step`` + ``metrics`` of component ``name`` at every checkpoint.

    By default every numeric property that is not null at some checkpoint.
    """
    for metric in metrics or ():
        _check_metric(metric)
    with using_store(store, writable=False) as opened:
        _require_analysis(_run(opened, run_id), run_id, metrics or [])
        frame = opened.read_named("ask_history", run_id=run_id, name=name)
        if frame.empty:
            _check_names(opened, run_id, {"component": name})
    frame = _typed(frame, {"step": "int64", **_metric_dtypes(NUMERIC_PROPERTIES)})
    chosen = list(metrics) if metrics else [m for m in NUMERIC_PROPERTIES if frame[m].notna().any()]
    return frame[["step", *dict.fromkeys(chosen)]]


def edge_history(store: StoreLike, run_id: str, source: str, target: str) -> pd.DataFrame:
    """The edge ``source → target`` at every checkpoint: ``step`` + ``EDGE_PROPERTIES``."""
    with using_store(store, writable=False) as opened:
        _run(opened, run_id)
        frame = opened.read_named("ask_edge", run_id=run_id, source=source, target=target)
        if frame.empty:
            _no_edge(opened, run_id, source, target)
    return _typed(frame, EDGE_COLUMNS)


def first_exceeding(
    store: StoreLike, run_id: str, source: str, target: str, value: float, measure: str = "total"
) -> pd.DataFrame:
    """The first step at which the ``measure`` weight of ``source → target`` exceeds ``value``.

    One row (``step, weight``), or none with ``attrs["note"]`` naming the largest weight the edge
    reached and the first step it reached it.
    """
    if not math.isfinite(value):
        raise CircuitAtlasError(f"--above {value}: give a finite weight")
    _check_measure(measure)
    with using_store(store, writable=False) as opened:
        _run(opened, run_id)
        found = opened.read_named(
            "ask_first",
            run_id=run_id,
            source=source,
            target=target,
            value=float(value),
            measure=measure,
        )
        if found.empty:
            _no_edge(opened, run_id, source, target)
    row = found.iloc[0]
    frame = _typed(found[["step", "weight"]], FIRST_COLUMNS)
    if bool(row["crossed"]):
        return frame
    empty = frame.iloc[:0]
    empty.attrs["note"] = (
        f"the {measure} weight of {source} → {target} never exceeds {value:g} in run {run_id}; "
        f"its largest is {row['weight']:.4g}, first reached at step {int(row['step'])}"
    )
    return empty


def role_changes(store: StoreLike, run_id: str, step_a: int, step_b: int) -> pd.DataFrame:
    """Components whose role (spreader, gatherer, gatekeeper, joined by ``+``; null for none)
    differs between ``step_a`` and ``step_b``, as the run's last analysis wrote them."""
    with using_store(store, writable=False) as opened:
        run = _run(opened, run_id)
        for step in (step_a, step_b):
            opened.check_step(run_id, step)
        _require_analysis(run, run_id, ["role"])
        frame = opened.read_named(
            "ask_roles",
            checkpoint_a=checkpoint_key(run_id, step_a),
            checkpoint_b=checkpoint_key(run_id, step_b),
        )
    frame = _typed(frame, ROLE_COLUMNS)
    frame = frame.where(frame.notna(), None)  # no role: None (null in JSON), not NaN
    frame.attrs["note"] = (
        f"roles of the analysis at τ={run['analysis_tau']:g} ({run['analysis_measure']} effects, "
        f"top-{run['analysis_top_k']})"
    )
    return frame


def checkpoint_diff(
    store: StoreLike,
    run_id: str,
    step_a: int,
    step_b: int,
    tau: float = DEFAULT_TAU,
    measure: str = "total",
    k: int = DEFAULT_DIFF_K,
) -> pd.DataFrame:
    """How the graph at ``tau`` changes from ``step_a`` to ``step_b``, ``k`` rows per change.

    An edge is present when its ``measure`` similarity is below ``tau``. ``appeared``: absent
    at ``step_a``, present at ``step_b``; ``vanished``: the reverse; ``strengthened`` and
    ``weakened``: present at both, weight up or down. ``delta`` = ``weight_after`` −
    ``weight_before`` (the measure's weight); each class keeps its ``k`` largest ``|delta|``,
    ties by source then target.
    """
    check_tau(tau)
    _check_measure(measure)
    _check_k(k)
    with using_store(store, writable=False) as opened:
        _run(opened, run_id)
        for step in (step_a, step_b):
            opened.check_step(run_id, step)
        frame = opened.read_named(
            "ask_diff",
            checkpoint_a=checkpoint_key(run_id, step_a),
            checkpoint_b=checkpoint_key(run_id, step_b),
            tau=float(tau),
            measure=measure,
            k=int(k),
        )
    return _typed(frame, DIFF_COLUMNS)


# --- checks ----------------------------------------------------------------------------------
def _run(store: StoreBase, run_id: str) -> dict[str, Any]:
    """The run's properties; raises for an unknown run."""
    found = store.read_named("ask_run", run_id=run_id)
    if found.empty:
        store.run_config(run_id)  # raises: unknown run, naming the known ones
    return dict(found["run"].iloc[0]) if len(found) else {}


def _require_analysis(run: dict[str, Any], run_id: str, properties: Sequence[str]) -> None:
    """Raise when one of ``properties`` is written by an analysis and the run has none."""
    needed = [p for p in properties if p in (*METRICS, "role")]
    if needed and run.get("analysis_tau") is None:
        what = "roles" if needed[0] == "role" else f"metric {needed[0]!r}"
        raise CircuitAtlasError(
            f"{what}: run {run_id} has not been analyzed; run `circuitatlas analyze --run "
            f"{run_id}` first"
        )


def _check_metric(metric: str) -> None:
    if metric not in NUMERIC_PROPERTIES:
        close = difflib.get_close_matches(metric, NUMERIC_PROPERTIES, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise CircuitAtlasError(
            f"metric {metric!r}: not a numeric component property; {hint}"
            f"give one of {', '.join(NUMERIC_PROPERTIES)}"
        )


def _check_k(k: int) -> None:
    if k < 1:
        raise CircuitAtlasError(f"-k {k}: give a positive number of rows")


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise CircuitAtlasError(f"--edges {measure}: give one of {', '.join(MEASURES)}")


def _check_names(store: StoreBase, run_id: str, names: dict[str, str]) -> None:
    """Raise for the first of ``names`` (what → component name) that the run does not have."""
    steps = store.stored_steps(run_id)
    if not steps:
        raise CircuitAtlasError(f"run {run_id} has no stored checkpoint; ingest it first")
    known = store.read_named("component_names", checkpoint_key=checkpoint_key(run_id, steps[0]))
    known_names = known["name"].tolist()
    for what, name in names.items():
        if name not in known_names:
            close = difflib.get_close_matches(name, known_names, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"it has {_some(known_names)}"
            raise CircuitAtlasError(f"{what} {name!r}: no such component in run {run_id}; {hint}")


def _no_edge(store: StoreBase, run_id: str, source: str, target: str) -> None:
    """Raise why the run has no edge ``source → target``."""
    _check_names(store, run_id, {"source": source, "target": target})
    raise CircuitAtlasError(
        f"no edge {source} → {target} in run {run_id}: {source} is not upstream of {target} "
        f"(influence flows to later layers only); swap them or pick another pair"
    )


def _some(names: list[str], n: int = 6) -> str:
    return ", ".join(names[:n]) + (" …" if len(names) > n else "")


# --- frames ----------------------------------------------------------------------------------
def _metric_dtypes(metrics: Sequence[str]) -> dict[str, str]:
    return {m: "Int64" if m in DEGREE_METRICS else "float64" for m in metrics}


def _typed(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """``frame`` with exactly these columns and types (either backend, empty or not)."""
    out = frame.reindex(columns=list(dtypes))
    return out.astype(dtypes).reset_index(drop=True)
