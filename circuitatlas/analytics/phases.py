"""Training phases: change points of the trajectory, and a label per segment.

The trajectory is the sequence of checkpoints (in step order) of |V|, |E| and the task metric,
each standardized to zero mean and unit variance (a constant series stays 0). ``ruptures``' PELT
search with a least-squares cost and a penalty finds the change points; every segment then gets
a label from how the graph and the metric move across it (least-squares slope × segment span):

* ``exploration``: the graph grows (|E| rises by more than ``grow`` of the run's largest |E|);
* ``refinement``: otherwise, the metric improves by more than ``improve`` of the run's metric
  range while the graph prunes or holds;
* ``consolidation``: otherwise (the graph prunes or holds while the metric holds).

The task metric is higher-is-better (a mean log-prob).
"""

from __future__ import annotations

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


def phases(trajectory: pd.DataFrame, penalty: float = DEFAULT_PENALTY) -> Phases:
    """Segment and label ``trajectory`` (``step`` + ``SIGNALS``, any order; NaN metric → 0)."""
    frame = trajectory.sort_values("step").reset_index(drop=True)
    signals = frame[list(SIGNALS)].astype(np.float64).fillna(0.0).to_numpy()
    starts = change_points(signals, penalty)
    edges, metric = signals[:, 1], signals[:, 2]
    edge_scale = float(edges.max()) if edges.size else 0.0
    metric_scale = float(metric.max() - metric.min()) if metric.size else 0.0
    bounds = [0, *starts, len(frame)]
    labels, per_step = [], []
    for lo, hi in pairwise(bounds):
        label = label_segment(edges[lo:hi], metric[lo:hi], edge_scale, metric_scale)
        labels.append(label)
        per_step += [label] * (hi - lo)
    return Phases(
        boundaries=[int(frame["step"].iloc[i]) for i in starts],
        labels=labels if len(frame) else [],
        per_step=pd.Series(per_step, index=frame["step"].astype(int), dtype=object),
    )
