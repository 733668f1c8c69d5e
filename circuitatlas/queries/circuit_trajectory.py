"""The circuit's trajectory over training.

From the circuits of consecutive checkpoints (:mod:`circuitatlas.queries.edge_circuits`):

* per step: faithfulness, size, and the Jaccard similarity of its edge set with the previous
  step's circuit and with the final one;
* per edge and per component: the first and the last step it is in the circuit, and how often;
* emergence events: a *mechanism edge* — from a head whose previous-token score is at least
  ``threshold`` (0.3) to a head of a later layer whose induction score is at least ``threshold`` —
  entering the circuit: a mechanism edge of this step's circuit that was not one of the previous
  step's (not in its circuit, or its heads below the thresholds there). The circuit's *emergence*
  is the step of the first event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from circuitatlas.graph.paths import ARROW

if TYPE_CHECKING:
    from circuitatlas.queries.edge_circuits import StepCircuit

MECHANISM_THRESHOLD = 0.3
STEP_COLUMNS = [
    "step",
    "faithfulness",
    "n_edges",
    "n_components",
    "jaccard_previous",
    "jaccard_final",
    "reached",
    "edges",
]
SPAN_COLUMNS = ["first_step", "last_step", "n_steps"]
EVENT_COLUMNS = ["step", "edge", "prev_token_score", "induction_score"]


@dataclass(frozen=True)
class Trajectory:
    """The circuit over training (module docstring)."""

    steps: pd.DataFrame  # STEP_COLUMNS
    edges: pd.DataFrame  # edge, SPAN_COLUMNS
    components: pd.DataFrame  # component, SPAN_COLUMNS
    events: pd.DataFrame  # EVENT_COLUMNS
    emergence: int | None


def circuit_trajectory(
    circuits: list[StepCircuit], components: pd.DataFrame, threshold: float = MECHANISM_THRESHOLD
) -> Trajectory:
    """The trajectory of ``circuits`` (one per step, any order); ``components``: the run's
    components with their head scores (``store.components(run_id)``)."""
    circuits = sorted(circuits, key=lambda c: c.step)
    final = set(circuits[-1].edges) if circuits else set()
    rows, previous = [], None
    for c in circuits:
        edges = set(c.edges)
        rows.append(
            {
                "step": c.step,
                "faithfulness": c.faithfulness,
                "n_edges": len(c.edges),
                "n_components": len(c.components),
                "jaccard_previous": None if previous is None else jaccard(previous, edges),
                "jaccard_final": jaccard(final, edges),
                "reached": c.reached,
                "edges": " ".join(c.edge_names),
            }
        )
        previous = edges
    events = emergence_events({c.step: c.edges for c in circuits}, components, threshold)
    return Trajectory(
        pd.DataFrame(rows, columns=STEP_COLUMNS),
        _spans({c.step: [f"{a}{ARROW}{b}" for a, b in c.edges] for c in circuits}, "edge"),
        _spans({c.step: list(c.components) for c in circuits}, "component"),
        events,
        int(events["step"].min()) if len(events) else None,
    )


def jaccard(a: set[Any], b: set[Any]) -> float:
    """|a ∩ b| / |a ∪ b| (1 for two empty sets)."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def mechanism_edges(
    step: int,
    edges: Iterable[tuple[str, str]],
    components: pd.DataFrame,
    threshold: float = MECHANISM_THRESHOLD,
) -> list[tuple[str, str, float, float]]:
    """The mechanism edges among ``edges`` (a circuit's at ``step``) with the source's
    previous-token and the target's induction score (``components``: the run's components)."""
    heads = components[(components["kind"] == "attn_head") & (components["step"] == step)]
    by_name = heads.set_index("name")
    out = []
    for a, b in edges:
        if a not in by_name.index or b not in by_name.index:
            continue
        src, dst = by_name.loc[a], by_name.loc[b]
        prev, ind = float(src["prev_token_score"]), float(dst["induction_score"])
        if dst["layer"] > src["layer"] and prev >= threshold and ind >= threshold:
            out.append((a, b, prev, ind))
    return out


def emergence_events(
    circuits: Mapping[int, Iterable[tuple[str, str]]],
    components: pd.DataFrame,
    threshold: float = MECHANISM_THRESHOLD,
) -> pd.DataFrame:
    """``EVENT_COLUMNS`` of the circuits' edges by step (module docstring): each mechanism edge
    of a step's circuit that was not one of the previous step's."""
    rows, previous = [], set()
    for step in sorted(circuits):
        found = mechanism_edges(step, circuits[step], components, threshold)
        for a, b, prev, ind in found:
            if (a, b) not in previous:
                rows.append([step, f"{a}{ARROW}{b}", prev, ind])
        previous = {(a, b) for a, b, _, _ in found}
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def _spans(members: dict[int, list[str]], what: str) -> pd.DataFrame:
    """First step, last step and number of steps of each member, by first appearance."""
    seen: dict[str, list[int]] = {}
    for step in sorted(members):
        for name in members[step]:
            seen.setdefault(name, []).append(step)
    rows = [[name, steps[0], steps[-1], len(steps)] for name, steps in seen.items()]
    frame = pd.DataFrame(rows, columns=[what, *SPAN_COLUMNS])
    return frame.sort_values(["first_step", what], kind="stable").reset_index(drop=True)
