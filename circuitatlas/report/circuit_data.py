"""The run's edge-level circuits as the report shows them, read from the store.

``circuitatlas circuits --save`` stores one ``Circuit`` of kind ``edges`` per checkpoint and
setting (``scores``, ``target``, ``ablation``), its edges as ``CIRCUIT_EDGE`` relationships. The
report shows **one setting**: the one saved most recently (the latest ``created_at`` of its
circuits; ties go to the setting that sorts last by scores, target and ablation). Within it each
step has one circuit (the most recently saved where a step has several).

The **emergence** is that of :mod:`circuitatlas.queries.circuit_trajectory`: the first step whose
circuit holds an edge from a head with a previous-token score of at least 0.3 to a later-layer
head with an induction score of at least 0.3 (the scores of the stored components at that step).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from circuitatlas.graph.paths import ARROW
from circuitatlas.queries.circuit_trajectory import emergence_events
from circuitatlas.store.base import StoreBase

EDGE_KIND = "edges"
SETTING_COLUMNS = ["scores", "target", "ablation"]
STEP_COLUMNS = ["step", "key", "faithfulness", "n_edges", "n_components", "created_at"]
EDGE_COLUMNS = ["step", "rank", "source", "target", "score"]


@dataclass(frozen=True, eq=False)
class CircuitData:
    """The edge circuits of one setting over training (see the module docstring)."""

    scores: str  # "exact" | "eap-ig"
    target: float  # the faithfulness the circuits were asked to reach
    ablation: str
    steps: pd.DataFrame  # STEP_COLUMNS, one row per step with a circuit, by step
    edges: pd.DataFrame  # EDGE_COLUMNS, by step and rank (rank 1 the largest |score|)
    emergence: int | None
    events: pd.DataFrame  # the trajectory's emergence events: step, edge, scores
    others: tuple[str, ...]  # the settings also stored but not shown, as text

    @property
    def setting(self) -> str:
        """The setting shown, as text."""
        return setting_text(self.scores, self.target, self.ablation)

    @property
    def final_step(self) -> int:
        """The last step with a circuit."""
        return int(self.steps["step"].iloc[-1])

    def edges_at(self, step: int) -> pd.DataFrame:
        """The circuit's edges at ``step``, by rank."""
        return self.edges[self.edges["step"] == step].reset_index(drop=True)

    def step_at_or_before(self, first: int, last: int) -> int | None:
        """The last step in ``first``…``last`` with a circuit (None: none there)."""
        within = self.steps.loc[self.steps["step"].between(first, last), "step"]
        return int(within.iloc[-1]) if len(within) else None

    def final_table(self) -> pd.DataFrame:
        """The final circuit, one row: its step, faithfulness, size and its edges."""
        row = self.steps.iloc[-1]
        names = [
            f"{e.source}{ARROW}{e.target}" for e in self.edges_at(self.final_step).itertuples()
        ]
        return pd.DataFrame(
            {
                "step": [int(row["step"])],
                "faithfulness": [float(row["faithfulness"])],
                "n_edges": [int(row["n_edges"])],
                "n_components": [int(row["n_components"])],
                "edges (by |score|)": [", ".join(names)],
            }
        )

    def final_edges_table(self) -> pd.DataFrame:
        """The final circuit's edges: rank, edge and score."""
        at = self.edges_at(self.final_step)
        return pd.DataFrame(
            {
                "rank": at["rank"].astype("int64"),
                "edge": at["source"] + ARROW + at["target"],
                "score": at["score"].astype("float64"),
            }
        )


def setting_text(scores: str, target: float, ablation: str) -> str:
    return f"{scores} scores, target {float(target):g}, {ablation} ablation"


def gather_circuits(store: StoreBase, run_id: str, components: pd.DataFrame) -> CircuitData | None:
    """The run's edge circuits of the setting shown (None: the run has none); ``components``
    are the run's components with their head scores."""
    frame = store.circuits(run_id)
    frame = frame[frame["kind"] == EDGE_KIND]
    if frame.empty:
        return None
    frame = frame.assign(created_at=frame["created_at"].fillna("").astype(str))
    latest = frame.groupby(SETTING_COLUMNS, dropna=False)["created_at"].max().reset_index()
    latest = latest.sort_values(["created_at", *SETTING_COLUMNS], kind="stable")
    scores, target, ablation = (latest.iloc[-1][c] for c in SETTING_COLUMNS)
    others = tuple(setting_text(*s) for s in latest.iloc[:-1][SETTING_COLUMNS].itertuples(False))
    chosen = frame[
        (frame["scores"] == scores) & (frame["target"] == target) & (frame["ablation"] == ablation)
    ]
    chosen = chosen.sort_values(["step", "created_at", "key"], kind="stable")
    chosen = chosen.drop_duplicates("step", keep="last").reset_index(drop=True)
    steps = pd.DataFrame(
        {
            "step": chosen["step"].astype("int64"),
            "key": chosen["key"].astype(str),
            "faithfulness": chosen["faithfulness"].astype("float64"),
            "n_edges": chosen["n_edges"].fillna(0).astype("int64"),
            "n_components": chosen["n_components"].fillna(0).astype("int64"),
            "created_at": chosen["created_at"],
        }
    )
    stored = store.circuit_edges(run_id)
    edges = stored[stored["circuit"].isin(set(steps["key"]))]
    edges = edges.sort_values(["step", "rank"], kind="stable")[EDGE_COLUMNS].reset_index(drop=True)
    emergence, events = _emergence(steps, edges, components)
    return CircuitData(
        scores=str(scores),
        target=float(target),
        ablation=str(ablation),
        steps=steps,
        edges=edges,
        emergence=emergence,
        events=events,
        others=others,
    )


def _emergence(
    steps: pd.DataFrame, edges: pd.DataFrame, components: pd.DataFrame
) -> tuple[int | None, pd.DataFrame]:
    """The emergence step and events (:func:`emergence_events`) of the stored circuits."""
    by_step: dict[int, list[tuple[str, str]]] = {int(step): [] for step in steps["step"]}
    for step, source, target in zip(edges["step"], edges["source"], edges["target"], strict=True):
        by_step.setdefault(int(step), []).append((source, target))
    events = emergence_events(by_step, components)
    return (int(events["step"].min()) if len(events) else None), events
