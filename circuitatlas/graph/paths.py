"""Strongest source → sink paths of one checkpoint's graph: the pathfinding primitives.

One definition everywhere (both backends, the CLI, the circuits built from the paths):

* an edge's **distance** is ``−log(min(weight, 1))`` (``DISTANCE``): its weight clipped to
  (0, 1]. An edge whose weight is ≤ 0 carries no influence and is left out, as is, when a
  threshold τ is given, one whose similarity is not below τ. The weight (``measure``) is a
  similarity measure's (``total`` or ``direct`` effect) or, on a task-metric score (``patch``:
  ``patch_effect``, ``eap_ig``: ``eap_ig``; ``SCORES``), the edge's **share** of its target's
  total absolute score (:func:`score_shares`), which is ≤ 1: its distance is ``−log(share)``;
* a path's distance is the sum of its edges' distances and its **strength** ``exp(−distance)``:
  the product of its clipped weights. On shares: read backwards from the sink, the shares into
  each node sum to 1, so the strengths of all source → sink paths sum to at most 1 (to 1 when
  every node upstream of the sink but the source has a nonzero score in, as from ``logits``
  down to ``input``, which every component reads): a path's strength is the share of the
  task-relevant flow it carries, whatever its length;
* the strongest path is the shortest one (Dijkstra) and the k strongest loopless paths are Yen's
  k shortest (our graphs are DAGs, so every path is loopless);
* paths are ranked by strength, then by the component names along them (distances compared to
  ``RANK_DECIMALS`` = 12 decimals, so a last-digit rounding difference between two backends does
  not reorder them);
* when paths tie in strength at the k-th place, the names decide which are kept, the same on
  every backend: :func:`strongest_of_step` asks the backend for more paths until the last one is
  weaker than the k-th, at most ``TIE_LIMIT`` more (beyond that, which of the tied paths are
  returned is the backend's choice: e.g. hundreds of paths of strength 1 through edges clipped
  to 1).

The embedded store computes them with igraph's C core (:func:`k_strongest`); Neo4j with GDS in
the database (:mod:`circuitatlas.store.gds`). Shares are computed here, once, for both: from the
scores read for the search (:meth:`CheckpointEdges.from_scores`), which Neo4j then projects as
distances passed as a parameter. Searching a stored run's checkpoints, and the
summaries across them, are :mod:`circuitatlas.queries.paths`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.network import MEASURES, Graph, check_tau

DISTANCE = "-log(min(weight, 1))"
DEFAULT_K = 5
DEFAULT_MEASURE = "direct"
# the component names of the design's contract (circuitatlas.ingest.components.INPUT, LOGITS)
DEFAULT_SOURCE = "input"
DEFAULT_SINK = "logits"
ARROW = "→"
RANK_DECIMALS = 12
TIE_LIMIT = 64  # the most paths beyond k asked for to settle a tie at the k-th place
# path measures on a task-metric score: the INFLUENCES property each reads, and the ingest
# option (--edge-scores) that computes it
SCORES = {"patch": "patch_effect", "eap_ig": "eap_ig"}
SCORE_INGEST = {"patch": "exact|both", "eap_ig": "eap-ig|both"}
PATH_MEASURES = (*MEASURES, *SCORES)


@dataclass(frozen=True)
class PathSettings:
    """What paths are searched for: ``k`` strongest from ``source`` to ``sink``."""

    source: str = DEFAULT_SOURCE
    sink: str = DEFAULT_SINK
    k: int = DEFAULT_K
    measure: str = DEFAULT_MEASURE  # a similarity measure (MEASURES) or a score (SCORES)
    tau: float | None = None  # None: every edge with a positive weight

    @property
    def scored(self) -> bool:
        """Whether the weights are shares of a task-metric score (``SCORES``)."""
        return self.measure in SCORES

    def check(self) -> None:
        """Raise a one-line error for a setting out of range."""
        if self.k < 1:
            raise CircuitAtlasError(f"-k {self.k}: give a positive number of paths")
        if self.measure not in PATH_MEASURES:
            raise CircuitAtlasError(
                f"--edges {self.measure}: give one of {', '.join(MEASURES)} (or a score: "
                f"{', '.join(SCORES)})"
            )
        if self.tau is not None and self.scored:
            raise CircuitAtlasError(
                f"--tau {self.tau:g}: a threshold on similarities; paths on {self.measure} "
                f"scores use every edge with a nonzero score, drop --tau"
            )
        if self.tau is not None:
            check_tau(self.tau)
        if self.source == self.sink:
            raise CircuitAtlasError(
                f"--source and --sink are both {self.source!r}; give two different components"
            )


@dataclass(frozen=True)
class FoundPath:
    """One path: its components in order and its distance (sum of edge distances)."""

    components: tuple[str, ...]
    distance: float

    @property
    def strength(self) -> float:
        """The product of the path's clipped edge weights (or shares), ``exp(−distance)``."""
        return math.exp(-self.distance)

    @property
    def text(self) -> str:
        """``input→a0.h2→a1.h1→logits``."""
        return ARROW.join(self.components)


class PathBackend(Protocol):
    """What :func:`strongest_of_step` asks paths of (every graph store is one)."""

    def strongest_paths(
        self, run_id: str, step: int, settings: PathSettings
    ) -> list[FoundPath]: ...


def edge_distances(weights: np.ndarray) -> np.ndarray:
    """``−log(min(weight, 1))`` of positive weights (the caller leaves out weights ≤ 0)."""
    return -np.log(np.minimum(np.asarray(weights, dtype=np.float64), 1.0))


def score_shares(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each edge's share of its target's total absolute score: ``w_ij = |s_ij| / Σ_k |s_kj|``
    over the edges into ``j`` (``targets``: each edge's target, as indices); 0 where the score
    is null (NaN) or the target's sum is 0. The shares into a target with any nonzero score sum
    to 1. The sum is exactly rounded (``math.fsum``), so the shares do not depend on the order
    the edges were read in (each backend reads them in its own)."""
    targets = np.asarray(targets, dtype=np.int64)
    magnitudes = np.abs(np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0))
    shares = np.zeros(len(magnitudes), dtype=np.float64)
    order = np.argsort(targets, kind="stable")
    starts = np.flatnonzero(np.diff(targets[order], prepend=-1))
    for group in np.split(order, starts[1:]) if len(order) else []:
        total = math.fsum(magnitudes[group].tolist())
        if total > 0:
            shares[group] = magnitudes[group] / total
    return shares


def _rank(path: FoundPath) -> float:
    return round(path.distance, RANK_DECIMALS)


def ranked(paths: Iterable[FoundPath]) -> list[FoundPath]:
    """Paths strongest first; equal strengths (to 12 decimals of distance) by their names."""
    return sorted(paths, key=lambda p: (_rank(p), p.components))


def strongest_of_step(
    backend: PathBackend, run_id: str, step: int, settings: PathSettings
) -> list[FoundPath]:
    """The ``settings.k`` strongest paths of one checkpoint, ranked, with a tie at the k-th place
    settled by the names: more paths are asked for (k + 1, then twice as many, up to k +
    ``TIE_LIMIT``) until the last one found is weaker than the k-th or no more exist."""
    k = settings.k
    ask = k + 1
    while True:
        found = ranked(backend.strongest_paths(run_id, step, replace(settings, k=ask)))
        if len(found) < ask or _rank(found[-1]) > _rank(found[k - 1]) or ask >= k + TIE_LIMIT:
            return found[:k]
        ask = min(2 * ask, k + TIE_LIMIT)


@dataclass(frozen=True)
class CheckpointEdges:
    """Every stored edge of one checkpoint for one measure: ends as indices into ``names``."""

    names: list[str]
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    similarities: np.ndarray

    @classmethod
    def from_frames(cls, nodes: pd.DataFrame, edges: pd.DataFrame) -> CheckpointEdges:
        """``nodes``: ``id, name``; ``edges``: ``source, target, weight, similarity`` (ids)."""
        graph = Graph.from_edges(nodes["name"].tolist(), edges, ids=nodes["id"].tolist())
        similarities = edges["similarity"].to_numpy(dtype=np.float64)
        return cls(graph.names, graph.sources, graph.targets, graph.weights, similarities)

    @classmethod
    def from_scores(cls, nodes: pd.DataFrame, edges: pd.DataFrame) -> CheckpointEdges:
        """``nodes``: ``id, name``; ``edges``: ``source, target, score`` (ids; a null score
        NaN): every edge weighted by its share of its target's total absolute score
        (:func:`score_shares`). Such a graph has no τ: its similarities are NaN."""
        frame = pd.DataFrame(
            {"source": edges["source"], "target": edges["target"], "weight": edges["score"]}
        )
        graph = Graph.from_edges(nodes["name"].tolist(), frame, ids=nodes["id"].tolist())
        shares = score_shares(graph.targets, graph.weights)
        similarities = np.full(len(shares), np.nan)
        return cls(graph.names, graph.sources, graph.targets, shares, similarities)

    def distances_by_name(self) -> dict[str, dict[str, float]]:
        """``{source name: {target name: distance}}`` of every edge with a positive weight
        (``edge_distances``), e.g. to project them into another backend."""
        keep = self.weights > 0
        out: dict[str, dict[str, float]] = {}
        distances = edge_distances(self.weights[keep])
        ends = zip(self.sources[keep].tolist(), self.targets[keep].tolist(), strict=True)
        for (s, t), d in zip(ends, distances.tolist(), strict=True):
            out.setdefault(self.names[s], {})[self.names[t]] = float(d)
        return out

    def kept(self, tau: float | None) -> np.ndarray:
        """Which edges exist at ``tau``: positive weight and, with τ, similarity below it."""
        keep = self.weights > 0
        return keep if tau is None else keep & (self.similarities < tau)

    def graph(self, tau: float | None) -> Graph:
        """The graph at ``tau`` (every component, the edges that exist there)."""
        return self._subgraph(self.kept(tau))

    def _subgraph(self, keep: np.ndarray) -> Graph:
        return Graph(self.names, self.sources[keep], self.targets[keep], self.weights[keep])

    def tau_with_path(self, source: str, sink: str) -> float | None:
        """The largest similarity on the best bottleneck path from ``source`` to ``sink``: a
        path exists at every τ above it (None when none exists at any τ)."""
        keep = self.weights > 0
        bounds = np.unique(self.similarities[keep])
        if not len(bounds) or not reaches(self._subgraph(keep), source, sink):
            return None
        lo, hi = 0, len(bounds) - 1  # the smallest bound whose edges (similarity ≤ it) connect
        while lo < hi:
            mid = (lo + hi) // 2
            if reaches(self._subgraph(keep & (self.similarities <= bounds[mid])), source, sink):
                hi = mid
            else:
                lo = mid + 1
        return float(bounds[lo])


def _igraph(graph: Graph) -> Any:
    import igraph as ig

    pairs = list(zip(graph.sources.tolist(), graph.targets.tolist(), strict=True))
    return ig.Graph(n=graph.n, edges=pairs, directed=True)


def reaches(graph: Graph, source: str, sink: str, g: Any = None) -> bool:
    """Whether a path leads from ``source`` to ``sink`` in ``graph`` (``g``: its igraph)."""
    g = _igraph(graph) if g is None else g
    return graph.names.index(sink) in g.subcomponent(graph.names.index(source), mode="out")


def k_strongest(graph: Graph, source: str, sink: str, k: int) -> list[FoundPath]:
    """The ``k`` strongest ``source`` → ``sink`` paths of ``graph``, ranked (igraph: Dijkstra
    for k = 1, Yen's algorithm otherwise); fewer when fewer exist, none when none does."""
    g = _igraph(graph)
    distances = edge_distances(graph.weights)
    src, dst = graph.names.index(source), graph.names.index(sink)
    if not reaches(graph, source, sink, g):
        return []  # (igraph would warn that it cannot reach the sink)
    if k == 1:
        found = [g.get_shortest_path(src, dst, weights=distances.tolist(), output="epath")]
    else:
        found = g.get_k_shortest_paths(
            src, to=dst, k=k, weights=distances.tolist(), mode="out", output="epath"
        )
    paths = []
    for edge_ids in found:
        names = [source, *(graph.names[graph.targets[e]] for e in edge_ids)]
        paths.append(FoundPath(tuple(names), float(distances[edge_ids].sum())))
    return ranked(paths)
