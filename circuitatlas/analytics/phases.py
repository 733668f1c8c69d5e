"""Training phases: change points of the trajectory, and a label per segment.

The trajectory is the sequence of checkpoints (in step order) of |V|, |E| and the task metric,
each standardized to zero mean and unit variance (a constant series stays 0). ``ruptures``' PELT
search with a least-squares cost and a penalty finds the change points; every segment then gets
a label from how the graph and the metric move across it (least-squares slope × segment span),
defined in ``PHASE_DEFINITIONS``:

* ``exploration``: the graph grows (|E| rises by more than ``GROW`` of the run's largest |E|);
* ``refinement``: otherwise, the metric improves by more than ``IMPROVE`` of the run's metric
  range while the graph prunes or holds;
* ``consolidation``: otherwise (the graph prunes or holds while the metric holds).

No two consecutive segments share a label. A change point found between two segments of one
label marks a change the labels do not tell apart (a jump of |V|, or of a signal's level with no
trend on either side), so such segments are merged: every run of consecutive segments with one
label becomes one segment, which is labelled again from its whole span by the same rule (its
change is recomputed over the merged series, so a level jump inside it now counts); this repeats
until every two neighbours differ. Each round merges at least two segments, so it ends.

The task metric is higher-is-better (a mean log-prob).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

PHASES = ("exploration", "consolidation", "refinement")
SIGNALS = ("n_nodes", "n_edges", "metric")
DEFAULT_PENALTY = 3.0
MIN_SIZE = 2
GROW = 0.05
IMPROVE = 0.10
PHASE_DEFINITIONS = {
    "exploration": (
        f"The graph grows: across the segment |E| rises (least-squares slope × span) by more "
        f"than {GROW:.0%} of the run's largest |E|."
    ),
    "consolidation": (
        f"The graph prunes or holds while the metric holds: |E| rises by at most {GROW:.0%} of "
        f"the run's largest |E| and the task metric improves by at most {IMPROVE:.0%} of its "
        f"range over the run."
    ),
    "refinement": (
        f"The task metric improves while the graph prunes or holds: |E| rises by at most "
        f"{GROW:.0%} of the run's largest |E| and the metric improves by more than "
        f"{IMPROVE:.0%} of its range over the run."
    ),
}
SEGMENT_COLUMNS = ["label", "first_step", "last_step", "n_checkpoints"]


@dataclass(frozen=True)
class Phases:
    """Segments of a run: ``boundaries`` are the steps where a new segment starts (the first
    segment starts at the first step and is not listed), ``labels`` one per segment, and
    ``per_step`` the label of every checkpoint in step order."""

    boundaries: list[int]
    labels: list[str]
    per_step: pd.Series


def change_points(signals: np.ndarray, penalty: float = DEFAULT_PENALTY) -> list[int]:
    """Indices where a new segment starts (PELT, least-squares cost, standardized columns)."""
    import ruptures as rpt

    n = signals.shape[0]
    if n < 2 * MIN_SIZE:
        return []
    std = signals.std(axis=0)
    z = (signals - signals.mean(axis=0)) / np.where(std > 0, std, 1.0)
    ends = rpt.Pelt(model="l2", min_size=MIN_SIZE, jump=1).fit(z).predict(pen=penalty)
    return [int(e) for e in ends[:-1]]


def _change(values: np.ndarray) -> float:
    """Change across a segment: least-squares slope per checkpoint × (length − 1)."""
    if values.size < 2:
        return 0.0
    x = np.arange(values.size, dtype=np.float64)
    slope = np.polyfit(x, values.astype(np.float64), 1)[0]
    return float(slope * (values.size - 1))


def label_segment(
    n_edges: np.ndarray, metric: np.ndarray, edge_scale: float, metric_scale: float
) -> str:
    """The phase of one segment from its |E| and metric series (see the module docstring)."""
    if edge_scale > 0 and _change(n_edges) > GROW * edge_scale:
        return "exploration"
    if metric_scale > 0 and _change(metric) > IMPROVE * metric_scale:
        return "refinement"
    return "consolidation"


def merge_equal(bounds: list[int], label: Callable[[int, int], str]) -> tuple[list[int], list[str]]:
    """Segments ``bounds`` (positions: 0, the starts, the end) with runs of equal labels merged.

    ``label(lo, hi)`` labels the segment of positions ``lo`` … ``hi − 1``. Each round labels
    every segment, merges each run of consecutive equal labels into one segment, and relabels;
    it stops when neighbours differ. Returns the merged bounds and one label per segment.
    """
    while True:
        labels = [label(lo, hi) for lo, hi in pairwise(bounds)]
        keep = [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
        if len(keep) == len(labels) - 1:
            return bounds, labels
        bounds = [bounds[0], *(bounds[i] for i in keep), bounds[-1]]


def phases(trajectory: pd.DataFrame, penalty: float = DEFAULT_PENALTY) -> Phases:
    """Segment and label ``trajectory`` (``step`` + ``SIGNALS``, any order; NaN metric → 0);
    consecutive segments of one label are merged and relabelled (see the module docstring)."""
    frame = trajectory.sort_values("step").reset_index(drop=True)
    if frame.empty:
        return Phases([], [], pd.Series([], index=pd.Index([], dtype=int), dtype=object))
    signals = frame[list(SIGNALS)].astype(np.float64).fillna(0.0).to_numpy()
    edges, metric = signals[:, 1], signals[:, 2]
    edge_scale = float(edges.max())
    metric_scale = float(metric.max() - metric.min())

    def label(lo: int, hi: int) -> str:
        return label_segment(edges[lo:hi], metric[lo:hi], edge_scale, metric_scale)

    bounds, labels = merge_equal([0, *change_points(signals, penalty), len(frame)], label)
    per_step = [
        lab for lab, (lo, hi) in zip(labels, pairwise(bounds), strict=True) for _ in range(hi - lo)
    ]
    return Phases(
        boundaries=[int(frame["step"].iloc[i]) for i in bounds[1:-1]],
        labels=labels,
        per_step=pd.Series(per_step, index=frame["step"].astype(int), dtype=object),
    )


def segment_table(per_step: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """``SEGMENT_COLUMNS``: one row per run of equal labels in step order.

    ``per_step`` is a :class:`Phases` ``per_step`` series (step → label) or a frame with
    ``step`` and ``phase`` (as a stored analysis's checkpoints); null labels are left out.
    """
    if isinstance(per_step, pd.DataFrame):
        per_step = per_step.set_index("step")["phase"]
    labels = per_step.dropna().sort_index()
    runs = labels.groupby(labels.ne(labels.shift()).cumsum(), sort=True)
    rows = [[run.iloc[0], int(run.index[0]), int(run.index[-1]), len(run)] for _, run in runs]
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
