"""Sweep frames → keyed rows for every node and relationship of the store (pure, no database).

Keys: a checkpoint is ``"{run_id}/{step}"``, a component ``"{run_id}/{step}/{name}"`` (the run id
is hex and the step an integer, so a key is unique whatever a name holds).

A *batch* is several checkpoints written in one transaction: each is then wholly in the store or
not at all. ``NEXT`` links are planned here from the steps already stored, so both backends link
the same way: consecutive new checkpoints are linked from the rows, and a link that touches a
stored checkpoint (or is cut by a new one in between) is left to a named statement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, TypeVar

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
    component_rows = pd.DataFrame(
        {
            "key": component_keys(run_id, step, comps.name),
            "run_id": run_id,
            "step": np.int64(step),
            **{c: comps[c] for c in COMPONENT_COLUMNS},
        }
    ).astype({"layer": "int64", "head": "Int64"})
    edge_rows = pd.DataFrame(
        {
            "source_key": component_keys(run_id, step, edges.source),
            "target_key": component_keys(run_id, step, edges.target),
            "run_id": run_id,
            "step": np.int64(step),
            **{c: _floats(edges, c) for c in EDGE_PROPERTIES},
        }
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
        components=component_rows.reset_index(drop=True),
        has_component=pd.DataFrame({"from_key": key, "to_key": component_rows.key.to_numpy()}),
        edges=edge_rows.reset_index(drop=True),
    )


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


def batch_rows(run_id: str, batch: list[CheckpointRows], stored: list[int]) -> BatchRows:
    """The rows of ``batch`` minus the steps in ``stored``, and the ``NEXT`` changes they need."""
    stored_set = set(stored)
    new = sorted((r for r in batch if r.step not in stored_set), key=lambda r: r.step)
    by_step = {r.step: r for r in new}
    order = sorted(stored_set | set(by_step))
    next_parts, links = [], []
    for a, b in pairwise(order):
        if a in by_step and b in by_step:
            pairs = (
                by_step[a]
                .components[["name", "key"]]
                .merge(by_step[b].components[["name", "key"]], on="name")
            )
            next_parts.append(pd.DataFrame({"from_key": pairs.key_x, "to_key": pairs.key_y}))
        elif a in by_step or b in by_step:
            links.append((checkpoint_key(run_id, a), checkpoint_key(run_id, b)))
    old = sorted(stored_set)
    unlink = [
        checkpoint_key(run_id, a) for a, b in pairwise(old) if any(a < s < b for s in by_step)
    ]
    checkpoints = pd.DataFrame(
        [r.checkpoint for r in new], columns=["key", "run_id", "step", "loss", "metric"]
    )
    return BatchRows(
        checkpoints=checkpoints,
        has_checkpoint=pd.DataFrame({"from_key": run_id, "to_key": checkpoints.key}),
        components=_concat([r.components for r in new]),
        has_component=_concat([r.has_component for r in new]),
        edges=_concat([r.edges for r in new]),
        next=_concat(next_parts, ["from_key", "to_key"]),
        next_unlink=unlink,
        next_link=links,
    )


def plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values; missing values (NaN, NA) become ``None``."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _concat(frames: list[pd.DataFrame], columns: list[str] | None = None) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def edge_batches(
    items: Iterable[T], n_edges: Callable[[T], int], max_edges: int
) -> Iterator[list[T]]:
    """``items`` (checkpoints, never split) in consecutive batches of at most ``max_edges``
    edges each (``n_edges(item)`` apiece), or of one checkpoint when it alone has more."""
    batch: list[T] = []
    size = 0
    for item in items:
        n = n_edges(item)
        if batch and size + n > max_edges:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch
