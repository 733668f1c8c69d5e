"""Candidate-circuit pathfinding: the strongest source → sink paths of a checkpoint's graph.

One definition everywhere (both backends, the CLI, the circuits built from the paths):

* an edge's **distance** is ``−log(min(weight, 1))``: its weight (total or direct effect,
  ``measure``) clipped to (0, 1]. An edge whose weight is ≤ 0 carries no influence and is left
  out, as is, when a threshold τ is given, one whose similarity is not below τ;
* a path's distance is the sum of its edges' distances and its **strength** ``exp(−distance)``:
  the product of its clipped weights;
* the strongest path is the shortest one (Dijkstra) and the k strongest loopless paths are Yen's
  k shortest (our graphs are DAGs, so every path is loopless);
* paths are ranked by strength, then by the component names along them (distances compared to
  12 decimals, so a last-digit rounding difference between two backends does not reorder them);
* when paths tie in strength at the k-th place, the names decide which are kept, the same on
  every backend: :func:`strongest_of_step` asks the backend for more paths until the last one is
  weaker than the k-th, at most ``TIE_LIMIT`` more (beyond that, which of the tied paths are
  returned is the backend's choice: e.g. hundreds of paths of strength 1 through edges clipped
  to 1).

The embedded store computes them with igraph's C core on the checkpoint's edges; Neo4j with GDS
in the database (:mod:`circuitatlas.store.gds`). Across checkpoints, :func:`persistence` and
:func:`emergence` summarize when each path is among the strongest.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from circuitatlas.analytics.centrality import Graph
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.components import INPUT, LOGITS, Component, is_downstream

if TYPE_CHECKING:
    from circuitatlas.store.base import StoreBase

DISTANCE = "-log(min(weight, 1))"
DEFAULT_K = 5
DEFAULT_MEASURE = "direct"
ARROW = "→"
RANK_DECIMALS = 12
TIE_LIMIT = 64  # the most paths beyond k asked for to settle a tie at the k-th place
PATH_COLUMNS = ["step", "rank", "path", "strength", "distance", "hops"]
PERSISTENCE_COLUMNS = [
    "path",
    "first_step",
    "last_step",
    "n_checkpoints",
    "fraction",
    "best_rank",
    "top1_checkpoints",
]
EMERGENCE_COLUMNS = ["step", "path", "strength", "replaced"]


@dataclass(frozen=True)
class PathSettings:
    """What paths are searched for: ``k`` strongest from ``source`` to ``sink``."""

    source: str = INPUT
    sink: str = LOGITS
    k: int = DEFAULT_K
    measure: str = DEFAULT_MEASURE
    tau: float | None = None  # None: every edge with a positive weight

    def check(self) -> None:
        """Raise a one-line error for a setting out of range."""
        from circuitatlas.analytics.analyze import check_tau
        from circuitatlas.store.base import MEASURES

        if self.k < 1:
            raise CircuitAtlasError(f"-k {self.k}: give a positive number of paths")
        if self.measure not in MEASURES:
            raise CircuitAtlasError(f"--edges {self.measure}: give one of {', '.join(MEASURES)}")
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
        """The product of the path's clipped edge weights, ``exp(−distance)``."""
        return math.exp(-self.distance)

    @property
    def text(self) -> str:
        """``input→a0.h2→a1.h1→logits``."""
        return ARROW.join(self.components)


def edge_distances(weights: np.ndarray) -> np.ndarray:
    """``−log(min(weight, 1))`` of positive weights (the caller leaves out weights ≤ 0)."""
    return -np.log(np.minimum(np.asarray(weights, dtype=np.float64), 1.0))


def _rank(path: FoundPath) -> float:
    return round(path.distance, RANK_DECIMALS)


def ranked(paths: Iterable[FoundPath]) -> list[FoundPath]:
    """Paths strongest first; equal strengths (to 12 decimals of distance) by their names."""
    return sorted(paths, key=lambda p: (_rank(p), p.components))


def strongest_of_step(
    store: StoreBase, run_id: str, step: int, settings: PathSettings
) -> list[FoundPath]:
    """The ``settings.k`` strongest paths of one checkpoint, ranked, with a tie at the k-th place
    settled by the names: more paths are asked for (k + 1, then twice as many, up to k +
    ``TIE_LIMIT``) until the last one found is weaker than the k-th or no more exist."""
    k = settings.k
    ask = k + 1
    while True:
        found = ranked(store.strongest_paths(run_id, step, replace(settings, k=ask)))
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


def paths_frame(step: int, paths: Sequence[FoundPath]) -> pd.DataFrame:
    """One checkpoint's ranked paths as rows of ``PATH_COLUMNS``."""
    return pd.DataFrame(
        {
            "step": [int(step)] * len(paths),
            "rank": range(1, len(paths) + 1),
            "path": [p.text for p in paths],
            "strength": [p.strength for p in paths],
            "distance": [p.distance for p in paths],
            "hops": [len(p.components) - 1 for p in paths],
        },
        columns=PATH_COLUMNS,
    ).astype({"step": "int64", "rank": "int64", "hops": "int64", "strength": "float64"})


def persistence(paths: pd.DataFrame, steps: Sequence[int]) -> pd.DataFrame:
    """Each path seen in any checkpoint's top-k: first and last step there, in how many of the
    ``steps`` (and which fraction), its best rank and at how many checkpoints it was the top 1."""
    if paths.empty:
        return pd.DataFrame(columns=PERSISTENCE_COLUMNS)
    grouped = paths.groupby("path", sort=False)
    frame = pd.DataFrame(
        {
            "first_step": grouped["step"].min(),
            "last_step": grouped["step"].max(),
            "n_checkpoints": grouped["step"].nunique(),
            "best_rank": grouped["rank"].min(),
            "top1_checkpoints": grouped["rank"].apply(lambda r: int((r == 1).sum())),
        }
    )
    frame["fraction"] = frame["n_checkpoints"] / len(steps)
    frame = frame.reset_index().sort_values(
        ["fraction", "best_rank", "first_step", "path"], ascending=[False, True, True, True]
    )
    return frame[PERSISTENCE_COLUMNS].reset_index(drop=True)


def emergence(paths: pd.DataFrame, steps: Sequence[int]) -> pd.DataFrame:
    """Events of a path entering the top 1: a checkpoint whose strongest path was not the
    strongest at the previous checkpoint (``replaced``: that one; none at the first)."""
    top = paths[paths["rank"] == 1].set_index("step")
    rows = []
    previous: str | None = None
    for i, step in enumerate(steps):
        current = top["path"].get(step)
        if current is not None and current != previous and i > 0:
            rows.append([step, current, float(top.loc[step, "strength"]), previous])
        previous = current
    return pd.DataFrame(rows, columns=EMERGENCE_COLUMNS)


@dataclass
class PathResult:
    """The strongest paths of a run's checkpoints (``paths``: ``PATH_COLUMNS``)."""

    run_id: str
    settings: PathSettings
    steps: list[int]
    paths: pd.DataFrame
    notes: list[str] = field(default_factory=list)  # checkpoints without a path, and why

    def persistence(self) -> pd.DataFrame:
        """See :func:`persistence`."""
        return persistence(self.paths, self.steps)

    def emergence(self) -> pd.DataFrame:
        """See :func:`emergence`."""
        return emergence(self.paths, self.steps)

    def of_step(self, step: int) -> list[FoundPath]:
        """The ranked paths of one checkpoint."""
        rows = self.paths[self.paths["step"] == step]
        return [
            FoundPath(tuple(text.split(ARROW)), float(d))
            for text, d in zip(rows["path"], rows["distance"], strict=True)
        ]


def check_endpoints(
    store: StoreBase, run_id: str, step: int, settings: PathSettings
) -> pd.DataFrame:
    """The checkpoint's components, after checking that source and sink are among them (else
    an error listing close matches) and that the source is upstream of the sink."""
    comps = store.components(run_id, step)
    names = comps["name"].tolist()
    for option, name in (("--source", settings.source), ("--sink", settings.sink)):
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"components: {_some(names)}"
            raise CircuitAtlasError(f"{option} {name!r}: no such component in run {run_id}; {hint}")
    parallel = bool(store.run_config(run_id).get("arch", {}).get("parallel_blocks", False))
    by_name = {
        row.name: Component(row.name, row.kind, int(row.layer))
        for row in comps[["name", "kind", "layer"]].itertuples(index=False)
    }
    if not is_downstream(by_name[settings.source], by_name[settings.sink], parallel):
        raise CircuitAtlasError(
            f"--source {settings.source} is not upstream of --sink {settings.sink}: no influence "
            f"can flow from it there (a component reaches later layers only); swap them or pick "
            f"an earlier source"
        )
    return comps


def _some(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (" …" if len(names) > n else "")


def no_path_note(store: StoreBase, run_id: str, step: int, settings: PathSettings) -> str:
    """Why a checkpoint has no path, naming a τ at which one exists."""
    edges = store.path_edges(run_id, step, settings.measure)
    bound = edges.tau_with_path(settings.source, settings.sink)
    where = f"step {step}: no {settings.source}→{settings.sink} path"
    at = f"at τ={settings.tau:g} ({settings.measure} effects)"
    if bound is None:
        return f"{where} at any τ: no chain of edges with a positive {settings.measure} weight"
    suggestion = math.floor(bound * 100) / 100 + 0.01
    return f"{where} {at}; one exists at τ > {bound:.4g} (e.g. --tau {suggestion:.2f})"


def find_paths(
    store: StoreBase,
    run_id: str,
    steps: Sequence[int] | None = None,
    settings: PathSettings | None = None,
    progress: bool = False,
) -> PathResult:
    """The ``k`` strongest paths at each of ``steps`` (default: every stored checkpoint)."""
    from tqdm.auto import tqdm

    settings = settings or PathSettings()
    settings.check()
    stored = store.stored_steps(run_id)
    if not stored:
        store.run_config(run_id)  # an unknown run is the clearer message
        raise CircuitAtlasError(f"run {run_id} has no stored checkpoint; ingest it first")
    steps = stored if steps is None else [int(s) for s in steps]
    for step in set(steps) - set(stored):
        store.check_step(run_id, step)  # raises, naming the stored steps
    check_endpoints(store, run_id, steps[0], settings)
    frames, notes = [], []
    for step in tqdm(steps, desc="paths", unit="ckpt", disable=not progress):
        found = strongest_of_step(store, run_id, step, settings)
        if found:
            frames.append(paths_frame(step, found))
        else:
            notes.append(no_path_note(store, run_id, step, settings))
    paths = pd.concat(frames, ignore_index=True) if frames else paths_frame(0, [])
    return PathResult(run_id, settings, steps, paths, notes)
