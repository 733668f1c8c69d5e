"""Candidate-circuit pathfinding over a stored run: the strongest source → sink paths of its
checkpoints, and when each path is among them.

What a path, its distance, strength and rank are, and how ties are settled, is
:mod:`circuitatlas.graph.paths` (one definition for both backends). Here: :func:`find_paths`
searches a run's checkpoints in a store (checking the endpoints first, and saying for a
checkpoint without a path at which τ one exists); across checkpoints, :func:`persistence` and
:func:`emergence` summarize when each path is among the strongest.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.paths import ARROW, SCORES, FoundPath, PathSettings, strongest_of_step
from circuitatlas.ingest.components import Component, is_downstream

if TYPE_CHECKING:
    from circuitatlas.store.base import StoreBase

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
    where = f"step {step}: no {settings.source}→{settings.sink} path"
    if settings.scored:  # no τ: every edge with a nonzero score
        return f"{where}: no chain of edges with a nonzero {SCORES[settings.measure]} score"
    edges = store.path_edges(run_id, step, settings.measure)
    bound = edges.tau_with_path(settings.source, settings.sink)
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
    if settings.scored:  # a run without the score: one line before any progress is shown
        store.path_edges(run_id, steps[0], settings.measure)
    frames, notes = [], []
    for step in tqdm(steps, desc="paths", unit="ckpt", disable=not progress):
        found = strongest_of_step(store, run_id, step, settings)
        if found:
            frames.append(paths_frame(step, found))
        else:
            notes.append(no_path_note(store, run_id, step, settings))
    paths = pd.concat(frames, ignore_index=True) if frames else paths_frame(0, [])
    return PathResult(run_id, settings, steps, paths, notes)
