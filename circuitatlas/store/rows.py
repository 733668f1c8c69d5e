"""Sweep frames → keyed rows for every node and relationship of the store (pure, no database).

Keys: a checkpoint is ``"{run_id}/{step}"``, a component ``"{run_id}/{step}/{name}"`` (the run id
is hex and the step an integer, so a key is unique whatever a name holds).

A *batch* is several checkpoints written in one transaction: each is then wholly in the store or
not at all. :func:`prepare_batch` validates and keys a whole batch at once, before anything is
written: its frames concatenated once, then checked and keyed with whole-column operations
(:class:`KeyedBatch`). Frames that are not plainly valid go the plain way instead, checkpoint by
checkpoint (:func:`checkpoint_rows`, then :func:`batch_rows`), which names the problem; both ways
give the same rows. ``NEXT`` links are planned from the steps already stored, so both backends
link the same way: consecutive new checkpoints are linked from the rows, and a link that touches
a stored checkpoint (or is cut by a new one in between) is left to a named statement.
"""

from __future__ import annotations

import json
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.contract import (
    COMPONENT_COLUMNS,
    EDGE_COLUMNS,
    EDGE_SCORE_COLUMNS,
    CheckpointFrames,
)

T = TypeVar("T")
CHECKPOINT_COLUMNS = ["step", "loss", "metric"]
COMPONENT_FRAME_COLUMNS = ["step", *COMPONENT_COLUMNS]
EDGE_FRAME_COLUMNS = ["step", *EDGE_COLUMNS]
EDGE_PROPERTIES = [c for c in EDGE_COLUMNS if c not in ("source", "target")]
# Edge columns a frame must have; the task-metric scores (EDGE_SCORE_COLUMNS) may be absent or NaN
# (not computed: stored as null), the similarity columns may not be absent.
REQUIRED_EDGE_COLUMNS = [c for c in EDGE_FRAME_COLUMNS if c not in EDGE_SCORE_COLUMNS]
NEXT_COLUMNS = ["from_key", "to_key"]


def checkpoint_key(run_id: str, step: int) -> str:
    """Unique key of a checkpoint node."""
    return f"{run_id}/{int(step)}"


def component_keys(run_id: str, step: int | pd.Series, names: pd.Series) -> pd.Series:
    """Unique keys of component nodes (``step`` one step, or one per name)."""
    if isinstance(step, pd.Series):
        return f"{run_id}/" + step.astype("int64").astype(str) + "/" + names.astype(str)
    return f"{run_id}/{int(step)}/" + names.astype(str)


@dataclass(frozen=True)
class RunRecord:
    """What a ``Run`` node holds: the identity and configuration of one swept run."""

    run_id: str
    model: str
    task: str
    ablation: str
    n_prompts: int
    seq_len: int
    seed: int
    version: str
    config: str  # the run's configuration as JSON, enough to rerun the sweep
    planned_steps: tuple[int, ...]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RunRecord:
        """Build from a run configuration (``RunPlan.config`` or a sweep's ``config.json``)."""
        try:
            prompts = config["prompts"]
            return cls(
                run_id=str(config["run_id"]),
                model=str(config["model"]),
                task=str(prompts["task"]),
                ablation=str(config["ablation"]),
                n_prompts=int(prompts["n_prompts"]),
                seq_len=int(prompts["seq_len"]),
                seed=int(config.get("settings", {}).get("seed", 0)),
                version=str(config.get("version", "")),
                config=json.dumps(config, sort_keys=True, default=str),
                planned_steps=tuple(int(s) for s in config["steps"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CircuitAtlasError(
                f"run configuration lacks {e}; write it with `circuitatlas sweep`"
            ) from None

    def parameters(self) -> dict[str, Any]:
        """Parameters of the ``run_merge`` statement (``created_at`` is now, kept on resume)."""
        return {
            "run_id": self.run_id,
            "model": self.model,
            "task": self.task,
            "ablation": self.ablation,
            "n_prompts": self.n_prompts,
            "seq_len": self.seq_len,
            "seed": self.seed,
            "version": self.version,
            "config": self.config,
            "planned_steps": list(self.planned_steps),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


@dataclass
class CheckpointRows:
    """One checkpoint ready to write: validated, with keyed rows."""

    step: int
    key: str
    checkpoint: dict[str, Any]  # key, run_id, step, loss, metric
    components: pd.DataFrame  # key, run_id, step, COMPONENT_COLUMNS
    has_component: pd.DataFrame  # from_key (checkpoint key), to_key (component key)
    edges: pd.DataFrame  # source_key, target_key, run_id, step, EDGE_PROPERTIES


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CircuitAtlasError(f"{what}: missing columns {missing}; expected {columns}")


def checkpoint_rows(run_id: str, frames: CheckpointFrames) -> CheckpointRows:
    """Validate one checkpoint's frames and key their rows; raises before anything is written."""
    step = int(frames.step)
    where = f"checkpoint {step}"
    _require(frames.checkpoint, CHECKPOINT_COLUMNS, f"{where} checkpoints")
    _require(frames.components, COMPONENT_FRAME_COLUMNS, f"{where} components")
    _require(frames.edges, REQUIRED_EDGE_COLUMNS, f"{where} edges")
    if len(frames.checkpoint) != 1:
        raise CircuitAtlasError(f"{where}: {len(frames.checkpoint)} checkpoint rows, expected 1")
    for name, frame in (
        ("checkpoints", frames.checkpoint),
        ("components", frames.components),
        ("edges", frames.edges),
    ):
        if len(frame) and set(frame.step.unique()) != {step}:
            raise CircuitAtlasError(f"{where}: {name} rows of other steps; one step per write")
    comps, edges = frames.components, frames.edges
    if comps.empty:
        raise CircuitAtlasError(f"{where}: no components")
    if comps.name.duplicated().any():
        dup = comps.name[comps.name.duplicated()].iloc[0]
        raise CircuitAtlasError(f"{where}: component {dup!r} appears twice")
    unknown = (set(edges.source.unique()) | set(edges.target.unique())) - set(comps.name)
    if unknown:
        raise CircuitAtlasError(
            f"{where}: edges name components that are not in its components: {sorted(unknown)[:5]}"
        )
    if edges.duplicated(["source", "target"]).any():
        raise CircuitAtlasError(f"{where}: an edge appears twice")
    key = checkpoint_key(run_id, step)
    component_rows = _component_frame(
        component_keys(run_id, step, comps.name), run_id, np.int64(step), comps
    )
    ck = frames.checkpoint.iloc[0]
    return CheckpointRows(
        step=step,
        key=key,
        checkpoint={
            "key": key,
            "run_id": run_id,
            "step": step,
            "loss": float(ck["loss"]),
            "metric": float(ck["metric"]),
        },
        components=component_rows,
        has_component=_has_component(key, component_rows),
        edges=_edge_frame(
            component_keys(run_id, step, edges.source),
            component_keys(run_id, step, edges.target),
            run_id,
            np.int64(step),
            edges,
        ),
    )


def _component_frame(keys: Any, run_id: str, step: Any, comps: pd.DataFrame) -> pd.DataFrame:
    """Component rows (``key, run_id, step, COMPONENT_COLUMNS``) of validated components."""
    frame = pd.DataFrame(
        {
            "key": keys,
            "run_id": run_id,
            "step": step,
            **{c: comps[c] for c in COMPONENT_COLUMNS},
        }
    )
    return frame.astype({"layer": "int64", "head": "Int64"}).reset_index(drop=True)


def _has_component(from_key: Any, components: pd.DataFrame) -> pd.DataFrame:
    """``HAS_COMPONENT`` rows: checkpoint key(s) → each component row's key."""
    return pd.DataFrame({"from_key": from_key, "to_key": components.key.to_numpy()})


def _edge_frame(
    source_key: Any, target_key: Any, run_id: str, step: Any, edges: pd.DataFrame
) -> pd.DataFrame:
    """Edge rows (``source_key, target_key, run_id, step, EDGE_PROPERTIES``) of validated edges."""
    frame = pd.DataFrame(
        {
            "source_key": source_key,
            "target_key": target_key,
            "run_id": run_id,
            "step": step,
            **{c: _floats(edges, c) for c in EDGE_PROPERTIES},
        }
    )
    return frame.reset_index(drop=True)


def _floats(frame: pd.DataFrame, column: str) -> pd.Series | float:
    """``frame[column]`` as float64 (missing values NaN); NaN for an absent score column."""
    if column not in frame and column in EDGE_SCORE_COLUMNS:
        return np.nan
    return frame[column].astype("float64")


@dataclass
class BatchRows:
    """Rows of the checkpoints of one batch that are not stored yet, and how to link them."""

    checkpoints: pd.DataFrame  # key, run_id, step, loss, metric
    has_checkpoint: pd.DataFrame  # from_key (run id), to_key (checkpoint key)
    components: pd.DataFrame
    has_component: pd.DataFrame  # from_key (checkpoint key), to_key (component key)
    edges: pd.DataFrame
    next: pd.DataFrame  # from_key, to_key: component keys, between consecutive new checkpoints
    next_unlink: list[str]  # stored checkpoints whose outgoing NEXT a new checkpoint cuts
    next_link: list[tuple[str, str]]  # checkpoint key pairs with a stored end, to link by name

    @property
    def n_checkpoints(self) -> int:
        """Checkpoints in the batch."""
        return len(self.checkpoints)


@dataclass
class _NextPlan:
    """How new steps join the stored ones: consecutive new steps (linked from the rows), and
    :attr:`BatchRows.next_unlink` / :attr:`BatchRows.next_link`."""

    pairs: list[tuple[int, int]]
    unlink: list[str]
    link: list[tuple[str, str]]

    def rows(self, run_id: str, checkpoints: pd.DataFrame, *tables: pd.DataFrame) -> BatchRows:
        """The batch's rows: its new ``checkpoints``, then the ``components``,
        ``has_component``, ``edges`` and ``next`` tables of :class:`BatchRows`."""
        has_checkpoint = pd.DataFrame({"from_key": run_id, "to_key": checkpoints.key})
        return BatchRows(checkpoints, has_checkpoint, *tables, self.unlink, self.link)


def _next_plan(run_id: str, stored: Iterable[int], new: Iterable[int]) -> _NextPlan:
    """Plan ``NEXT`` for the ``new`` steps beside the ``stored`` ones (O(1) per checkpoint)."""
    stored_set, new_set = set(stored), set(new)
    pairs, links = [], []
    for a, b in pairwise(sorted(stored_set | new_set)):
        if a in new_set and b in new_set:
            pairs.append((a, b))
        elif a in new_set or b in new_set:
            links.append((checkpoint_key(run_id, a), checkpoint_key(run_id, b)))
    ordered = sorted(new_set)

    def cut(a: int, b: int) -> bool:  # a new step lies strictly between a and b
        i = bisect_right(ordered, a)
        return i < len(ordered) and ordered[i] < b

    unlink = [checkpoint_key(run_id, a) for a, b in pairwise(sorted(stored_set)) if cut(a, b)]
    return _NextPlan(pairs, unlink, links)


def batch_rows(run_id: str, batch: list[CheckpointRows], stored: list[int]) -> BatchRows:
    """The rows of ``batch`` minus the steps in ``stored``, and the ``NEXT`` changes they need
    (the plain way, checkpoint by checkpoint)."""
    stored_set = set(stored)
    new = sorted((r for r in batch if r.step not in stored_set), key=lambda r: r.step)
    by_step = {r.step: r for r in new}
    plan = _next_plan(run_id, stored_set, by_step)
    next_parts = []
    for a, b in plan.pairs:
        pairs = (
            by_step[a]
            .components[["name", "key"]]
            .merge(by_step[b].components[["name", "key"]], on="name")
        )
        next_parts.append(pd.DataFrame({"from_key": pairs.key_x, "to_key": pairs.key_y}))
    checkpoints = pd.DataFrame(
        [r.checkpoint for r in new], columns=["key", "run_id", "step", "loss", "metric"]
    )
    parts = [_concat([getattr(r, t) for r in new]) for t in ("components", "has_component")]
    edges, next_rows = _concat([r.edges for r in new]), _concat(next_parts, NEXT_COLUMNS)
    return plan.rows(run_id, checkpoints, *parts, edges, next_rows)


class PreparedBatch(Protocol):
    """A batch validated and keyed, before the store says which of its steps it holds."""

    def parts(self, max_edges: int) -> Sequence[PreparedBatch]:
        """Its checkpoints in consecutive parts of at most ``max_edges`` edges (never split)."""
        ...

    def rows(self, stored: list[int]) -> BatchRows:
        """The rows of its checkpoints not in ``stored``, and the ``NEXT`` changes they need."""
        ...


@dataclass
class CheckpointRowsBatch:
    """A batch keyed the plain way, checkpoint by checkpoint (in the order given)."""

    run_id: str
    checkpoints: list[CheckpointRows]

    def parts(self, max_edges: int) -> list[CheckpointRowsBatch]:
        """See :meth:`PreparedBatch.parts`."""
        split = edge_batches(self.checkpoints, lambda r: len(r.edges), max_edges)
        return [CheckpointRowsBatch(self.run_id, part) for part in split]

    def rows(self, stored: list[int]) -> BatchRows:
        """See :meth:`PreparedBatch.rows`."""
        return batch_rows(self.run_id, self.checkpoints, stored)


@dataclass
class KeyedBatch:
    """A batch validated and keyed in whole-column operations: the rows of all its checkpoints,
    by step (a checkpoint's rows in the order given)."""

    run_id: str
    steps: np.ndarray  # int64, ascending: one per checkpoint
    checkpoints: pd.DataFrame
    components: pd.DataFrame
    edges: pd.DataFrame
    name_codes: np.ndarray  # per component row, a code of its name: equal names, equal codes
    n_components: np.ndarray  # per checkpoint
    n_edges: np.ndarray  # per checkpoint

    def parts(self, max_edges: int) -> list[KeyedBatch]:
        """See :meth:`PreparedBatch.parts`."""
        index = np.arange(len(self.steps))
        split = list(edge_batches(index.tolist(), lambda i: int(self.n_edges[i]), max_edges))
        if len(split) <= 1:
            return [self]
        return [self._subset((index >= part[0]) & (index <= part[-1])) for part in split]

    def rows(self, stored: list[int]) -> BatchRows:
        """See :meth:`PreparedBatch.rows`."""
        new = self._subset(~np.isin(self.steps, np.asarray(stored, dtype=np.int64)))
        if not len(new.steps):
            return batch_rows(self.run_id, [], stored)
        plan = _next_plan(self.run_id, stored, new.steps.tolist())
        owners = np.repeat(new.checkpoints.key.to_numpy(), new.n_components)
        has_component = _has_component(owners, new.components)
        tables = (new.components, has_component, new.edges, new._next_rows(plan.pairs))
        return plan.rows(self.run_id, new.checkpoints, *tables)

    def _subset(self, keep: np.ndarray) -> KeyedBatch:
        """The checkpoints where ``keep`` (a mask over them) holds, with their rows."""
        if keep.all():
            return self
        comps, edges = np.repeat(keep, self.n_components), np.repeat(keep, self.n_edges)
        return KeyedBatch(
            self.run_id,
            self.steps[keep],
            self.checkpoints[keep].reset_index(drop=True),
            self.components[comps].reset_index(drop=True),
            self.edges[edges].reset_index(drop=True),
            self.name_codes[comps],
            self.n_components[keep],
            self.n_edges[keep],
        )

    def _next_rows(self, pairs: list[tuple[int, int]]) -> pd.DataFrame:
        """``NEXT`` rows between the steps of ``pairs`` (both in the batch): same names."""
        if not pairs:
            return _concat([], NEXT_COLUMNS)
        position = {step: i for i, step in enumerate(self.steps.tolist())}
        following = np.full(len(self.steps), -1)
        for a, b in pairs:
            following[position[a]] = position[b]
        owner = np.repeat(np.arange(len(self.steps)), self.n_components)
        width = int(self.name_codes.max()) + 1
        ids = pd.Index(owner * width + self.name_codes)
        source = np.flatnonzero(following[owner] >= 0)
        target = ids.get_indexer(following[owner[source]] * width + self.name_codes[source])
        keys, found = self.components["key"].array, target >= 0
        return pd.DataFrame(
            {"from_key": keys.take(source[found]), "to_key": keys.take(target[found])}
        )


# what whole-column operations raise on frames of unusual types (object columns, odd dtypes)
_UNUSUAL = (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError)


def prepare_batch(run_id: str, batch: list[CheckpointFrames]) -> PreparedBatch:
    """Validate and key ``batch`` before anything is written; raises on bad input.

    The whole batch at once (:class:`KeyedBatch`), or, when its frames are not plainly valid,
    checkpoint by checkpoint, so bad input gets the same one-line error as one checkpoint would.
    """
    twice = sorted(s for s, n in Counter(int(f.step) for f in batch).items() if n > 1)
    if twice:
        raise CircuitAtlasError(
            f"checkpoint {twice[0]}: given twice in one write; give each checkpoint once"
        )
    try:
        prepared: PreparedBatch | None = _keyed(run_id, batch)
    except _UNUSUAL:  # unusual frames: the plain way names the problem, or accepts them
        prepared = None
    if prepared is None:
        prepared = CheckpointRowsBatch(run_id, [checkpoint_rows(run_id, f) for f in batch])
    return prepared


def _keyed(run_id: str, batch: list[CheckpointFrames]) -> KeyedBatch | None:
    """``batch`` validated and keyed with whole-column operations, or None when anything is off
    (what :func:`checkpoint_rows` refuses, or frames of unusual types)."""
    frames = sorted(batch, key=lambda f: int(f.step))
    layouts = {
        tuple(tuple(x.columns) for x in (f.checkpoint, f.components, f.edges)) for f in frames
    }
    if len(layouts) != 1:
        return None  # an empty batch, or frames of different columns
    required = (CHECKPOINT_COLUMNS, COMPONENT_FRAME_COLUMNS, REQUIRED_EDGE_COLUMNS)
    if not all(set(r) <= set(c) for r, c in zip(required, layouts.pop(), strict=True)):
        return None  # a column missing
    sizes = np.array([(len(f.checkpoint), len(f.components), len(f.edges)) for f in frames])
    if (sizes[:, 0] != 1).any() or (sizes[:, 1] == 0).any():
        return None
    steps = np.array([int(f.step) for f in frames], dtype=np.int64)
    ck, comps, edges = (
        pd.concat([getattr(f, name) for f in frames], ignore_index=True)
        for name in ("checkpoint", "components", "edges")
    )
    _, in_comps, in_edges = owners = [np.repeat(np.arange(len(frames)), n) for n in sizes.T]
    for frame, owner in zip((ck, comps, edges), owners, strict=True):
        step = frame["step"]
        if not pd.api.types.is_integer_dtype(step.dtype) or (step.to_numpy() != steps[owner]).any():
            return None  # rows of another step
    codes, names = pd.factorize(comps["name"])
    if (codes < 0).any() or pd.api.types.infer_dtype(names, skipna=False) != "string":
        return None  # a missing name, or names that are not strings
    component_ids = pd.Index(in_comps * len(names) + codes)  # (checkpoint, name)
    if not component_ids.is_unique:
        return None  # a name twice in one checkpoint
    ends = []
    for column in ("source", "target"):
        end_codes, end_names = pd.factorize(edges[column])
        known = names.get_indexer(end_names)
        if (end_codes < 0).any() or (known < 0).any():
            return None
        ends.append(component_ids.get_indexer(in_edges * len(names) + known[end_codes]))
    if (ends[0] < 0).any() or (ends[1] < 0).any():
        return None  # an edge naming a component its checkpoint lacks
    if not pd.Index(ends[0] * len(comps) + ends[1]).is_unique:
        return None  # an edge twice in one checkpoint
    keys = component_keys(run_id, pd.Series(steps[in_comps]), comps["name"])
    components = _component_frame(keys, run_id, steps[in_comps], comps)
    checkpoints = pd.DataFrame(
        {
            "key": f"{run_id}/" + pd.Series(steps).astype(str),
            "run_id": run_id,
            "step": steps,
            **{c: ck[c].astype("float64") for c in ("loss", "metric")},
        }
    )
    key = components["key"].array
    edge_rows = _edge_frame(key.take(ends[0]), key.take(ends[1]), run_id, steps[in_edges], edges)
    return KeyedBatch(run_id, steps, checkpoints, components, edge_rows, codes, *sizes.T[1:])


def plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values; missing values (NaN, NA) become ``None``."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _concat(frames: list[pd.DataFrame], columns: list[str] | None = None) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def edge_batches(
    items: Iterable[T],
    n_edges: Callable[[T], int],
    max_edges: int,
    max_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[list[T]]:
    """``items`` (checkpoints, never split) in consecutive batches of at most ``max_edges``
    edges each (``n_edges(item)`` apiece), or of one checkpoint when it alone has more; with
    ``max_seconds``, a batch also ends once ``max_seconds`` have passed (by ``clock``) since its
    first item arrived, so a slow source is written as it goes."""
    batch: list[T] = []
    size, began = 0, 0.0
    for item in items:
        n = n_edges(item)
        if batch and size + n > max_edges:
            yield batch
            batch, size = [], 0
        if not batch:
            began = clock()
        batch.append(item)
        size += n
        if max_seconds is not None and clock() - began >= max_seconds:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
