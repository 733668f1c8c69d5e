"""The graph of one checkpoint at a threshold τ, and the edge measures it is built from.

* an edge i→j carries two **measures** of influence (``MEASURES``): ``total`` (ablated in the
  whole forward pass) and ``direct`` (only j's read loses i's write), each a ``similarity`` (a
  cosine) and a ``weight`` (1 − similarity);
* the **graph at τ**: every component of the checkpoint is a node; an edge i→j is an INFLUENCES
  edge whose similarity (of the chosen measure) is below τ and whose weight is positive (for
  τ ≤ 1 every such edge has a positive weight; above 1 a weight-0 edge would be no influence at
  all); τ lies in ``TAU_RANGE`` = (0, 2] (:func:`check_tau`);
* an edge's **cost** for shortest paths between components is ``1 / weight`` (``COST``): a
  stronger influence is a shorter distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from circuitatlas.errors import CircuitAtlasError

MEASURES = ("total", "direct")
TAU_RANGE = (0.0, 2.0)
COST = "1/weight"


def check_tau(tau: float) -> None:
    """Raise a one-line error for a threshold outside ``TAU_RANGE`` (NaN included)."""
    lo, hi = TAU_RANGE
    if not lo < tau <= hi:
        raise CircuitAtlasError(
            f"--tau {tau}: give a threshold in (0, 2] (an edge is kept when its "
            f"similarity, a cosine, is below it; 0.7 is the source paper's)"
        )


@dataclass(frozen=True)
class Graph:
    """One checkpoint's graph at τ: node names, and edges as index arrays with their weights."""

    names: list[str]
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_edges(
        cls, names: list[str], edges: pd.DataFrame, ids: list[Any] | None = None
    ) -> Graph:
        """``names`` (every component) and a frame of ``source, target, weight`` (kept edges).

        The edges name their ends by name, or by ``ids`` (one per name) when given.
        """
        index = pd.Index(names if ids is None else ids)
        if not index.is_unique or len(set(names)) != len(names):
            raise ValueError("component names (and ids) must be unique")
        sources = index.get_indexer(edges["source"])
        targets = index.get_indexer(edges["target"])
        if (sources < 0).any() or (targets < 0).any():
            raise ValueError("an edge names a component that is not in the node list")
        weights = edges["weight"].to_numpy(dtype=np.float64)
        return cls(list(names), sources.astype(np.int64), targets.astype(np.int64), weights)

    @property
    def n(self) -> int:
        """Number of nodes (every component, with or without edges)."""
        return len(self.names)

    def costs(self) -> np.ndarray:
        """Edge costs for shortest paths: ``1 / weight`` (``COST``)."""
        return 1.0 / self.weights
