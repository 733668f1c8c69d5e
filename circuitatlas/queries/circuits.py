"""Candidate circuits: the union of the components on a checkpoint's strongest paths.

A circuit is stored as a ``Circuit`` node, ``(:Checkpoint)-[:HAS_CIRCUIT]->(:Circuit)`` and
``(:Component)-[:IN_CIRCUIT]->(:Circuit)``, keyed by its checkpoint and the path settings, so
finding it again with the same settings replaces it. :func:`validate` checks that a circuit
carries the task by rerunning the model with everything outside it ablated
(:mod:`circuitatlas.queries.faithfulness`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import pandas as pd

from circuitatlas.graph.paths import ARROW, DISTANCE, FoundPath, PathSettings
from circuitatlas.ingest.components import order_key
from circuitatlas.queries.paths import PathResult
from circuitatlas.store.rows import checkpoint_key

if TYPE_CHECKING:
    from circuitatlas.queries.faithfulness import Faithfulness
    from circuitatlas.store.base import StoreBase

INDUCTION_THRESHOLD = 0.3
CIRCUIT_COLUMNS = ["step", "k", "n_components", "components", "faithfulness"]
K_MAX = 20  # the most top paths a circuit grows to (smallest_faithful, paths --grow-to)


@dataclass(frozen=True)
class Circuit:
    """The candidate circuit of one checkpoint: its ranked paths and, once validated, how
    faithfully it carries the task."""

    run_id: str
    step: int
    settings: PathSettings
    paths: tuple[FoundPath, ...]
    faithfulness: Faithfulness | None = None

    @property
    def components(self) -> tuple[str, ...]:
        """Every component on the paths, in computation order."""
        names = {name for path in self.paths for name in path.components}
        return tuple(sorted(names, key=order_key))

    @property
    def key(self) -> str:
        """``{run_id}/{step}/circuit/{digest of the settings}``."""
        s = self.settings
        digest = hashlib.sha256(json.dumps([s.source, s.sink, s.k, s.measure, s.tau]).encode())
        return f"{checkpoint_key(self.run_id, self.step)}/circuit/{digest.hexdigest()[:12]}"

    def record(self) -> dict[str, Any]:
        """The store's parameters for this circuit (``circuit_create`` + ``component_keys`` and
        ``edge_keys``): a circuit of kind "paths", its edge-circuit properties null."""
        s, f = self.settings, self.faithfulness
        ck = checkpoint_key(self.run_id, self.step)
        return {
            "checkpoint_key": ck,
            "key": self.key,
            "run_id": self.run_id,
            "step": int(self.step),
            "kind": "paths",
            "source": s.source,
            "sink": s.sink,
            "k": int(s.k),
            "measure": s.measure,
            "tau": s.tau,
            "distance": DISTANCE,
            "components": list(self.components),
            "paths": [p.text for p in self.paths],
            "strengths": [p.strength for p in self.paths],
            "n_components": len(self.components),
            "faithfulness": None if f is None else _finite(f.value),
            "ablation": None if f is None else f.ablation,
            "clean_metric": None if f is None else f.clean,
            "circuit_metric": None if f is None else f.circuit,
            "ablated_metric": None if f is None else f.ablated,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "component_keys": [f"{ck}/{name}" for name in self.components],
            "edge_keys": [],
        }


def _finite(value: float) -> float | None:
    return None if value != value else float(value)  # NaN (clean == all ablated) → null


def circuits_of(result: PathResult) -> list[Circuit]:
    """One circuit per checkpoint that has a path."""
    found = ((step, tuple(result.of_step(step))) for step in result.steps)
    return [Circuit(result.run_id, step, result.settings, paths) for step, paths in found if paths]


def validate(
    store: StoreBase,
    circuits: list[Circuit],
    ablation: str = "mean",
    device: str = "auto",
    progress: bool = False,
) -> list[Circuit]:
    """The circuits with their faithfulness, from the model rerun at each circuit's checkpoint
    (loaded from the run's stored configuration)."""
    from tqdm.auto import tqdm

    from circuitatlas.queries.faithfulness import run_faithfulness

    out = []
    configs: dict[str, dict[str, Any]] = {}
    for circuit in tqdm(circuits, desc="faithfulness", unit="ckpt", disable=not progress):
        config = configs.setdefault(circuit.run_id, store.run_config(circuit.run_id))
        [faith] = run_faithfulness(config, circuit.step, [circuit.components], ablation, device)
        out.append(replace(circuit, faithfulness=faith))
    return out


def save(store: StoreBase, circuits: list[Circuit]) -> None:
    """Store the circuits (one transaction; each replaces a stored circuit of its key)."""
    store.write_circuits([c.record() for c in circuits])


def circuits_table(circuits: list[Circuit]) -> pd.DataFrame:
    """One row per circuit: ``CIRCUIT_COLUMNS``."""
    return pd.DataFrame(
        [
            {
                "step": c.step,
                "k": c.settings.k,
                "n_components": len(c.components),
                "components": " ".join(c.components),
                "faithfulness": None if c.faithfulness is None else c.faithfulness.value,
            }
            for c in circuits
        ],
        columns=CIRCUIT_COLUMNS,
    )


def induction_paths(
    paths: pd.DataFrame, components: pd.DataFrame, threshold: float = INDUCTION_THRESHOLD
) -> pd.DataFrame:
    """The rows of ``paths`` that are induction paths at their step: they go through the
    layer-0 head with the highest previous-token score and, next, a layer-1 head whose induction
    score is at least ``threshold`` (``components``: the run's components with their scores)."""
    heads = components[components["kind"] == "attn_head"]
    keep = []
    for step, path in zip(paths["step"], paths["path"], strict=True):
        at = heads[heads["step"] == step]
        layer0 = at[at["layer"] == 0]
        if layer0.empty or layer0["prev_token_score"].isna().all():
            keep.append(False)
            continue
        prev = layer0.loc[layer0["prev_token_score"].idxmax(), "name"]
        inducers = set(at[(at["layer"] == 1) & (at["induction_score"] >= threshold)]["name"])
        keep.append(any(a == prev and b in inducers for a, b in pairwise(path.split(ARROW))))
    return paths[keep]


def induction_emergence(result: PathResult, components: pd.DataFrame) -> int | None:
    """The first checkpoint at which an induction path (:func:`induction_paths`) is among its
    top-k paths: the circuit's emergence (None when none ever is)."""
    found = induction_paths(result.paths, components)
    return int(found["step"].min()) if len(found) else None


def smallest_faithful(
    store: StoreBase,
    run_id: str,
    step: int,
    settings: PathSettings,
    target: float = 0.8,
    k_max: int = K_MAX,
    ablation: str = "mean",
    device: str = "auto",
) -> Circuit | None:
    """The circuit of the fewest top paths (k from ``settings.k`` up to ``k_max``) whose
    faithfulness reaches ``target``; None when none does. The model is loaded once."""
    from circuitatlas.queries.faithfulness import run_faithfulness
    from circuitatlas.queries.paths import find_paths

    wide = find_paths(store, run_id, [step], replace(settings, k=k_max))
    ranked_paths = wide.of_step(step)
    candidates = [
        Circuit(run_id, step, replace(settings, k=k), tuple(ranked_paths[:k]))
        for k in range(settings.k, min(k_max, len(ranked_paths)) + 1)
    ]
    if not candidates:
        return None
    config = store.run_config(run_id)
    scores = run_faithfulness(config, step, [c.components for c in candidates], ablation, device)
    for circuit, faith in zip(candidates, scores, strict=True):
        if faith.value >= target:
            return replace(circuit, faithfulness=faith)
    return None


def grow(
    store: StoreBase,
    circuits: list[Circuit],
    target: float,
    ablation: str = "mean",
    device: str = "auto",
    progress: bool = False,
) -> tuple[list[Circuit], list[str]]:
    """Each validated circuit below ``target`` replaced by :func:`smallest_faithful` (the fewest
    top paths, up to ``K_MAX``, that reach it), and a note for each step where none does."""
    from tqdm.auto import tqdm

    out, notes = [], []
    for circuit in tqdm(circuits, desc="grow", unit="ckpt", disable=not progress):
        f = circuit.faithfulness
        if f is None:
            raise ValueError("grow() takes validated circuits")
        if f.value >= target:
            out.append(circuit)
            continue
        wider = replace(circuit.settings, k=circuit.settings.k + 1)
        found = smallest_faithful(
            store, circuit.run_id, circuit.step, wider, target, K_MAX, ablation, device
        )
        if found is None:
            notes.append(
                f"step {circuit.step}: no circuit of at most {K_MAX} top paths reaches "
                f"faithfulness {target:g}; kept the top-{circuit.settings.k} one ({f.value:.3g})"
            )
        out.append(found or circuit)
    return out, notes
