"""Analytics results → keyed rows for the write-back (pure, no database).

The properties an analysis writes, per node kind (their types are declared with the embedded
store's columns in ``cypher/ladybug/schema.cypher``; Neo4j is schemaless). Every analysis writes
every property of every node of the run, so a later analysis with another τ replaces them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.store.rows import checkpoint_key, component_keys

COMPONENT_ANALYSIS = (
    "in_degree",
    "out_degree",
    "in_strength",
    "out_strength",
    "betweenness",
    "closeness",
    "pagerank",
    "role",
)
CHECKPOINT_ANALYSIS = (
    "tau",
    "measure",
    "cost",
    "top_k",
    "n_nodes",
    "n_edges",
    "density",
    "mean_weight",
    "weight_gini",
    "weight_tail_index",
    "spreader_jaccard",
    "gatherer_jaccard",
    "gatekeeper_jaccard",
    "role_stability",
    "reconfiguration",
    "phase",
)
RUN_ANALYSIS = (
    "analysis_tau",
    "analysis_measure",
    "analysis_cost",
    "analysis_top_k",
    "phase_boundaries",
    "phase_labels",
    "reconfigurations",
    "analyzed_at",
)


@dataclass(frozen=True)
class AnalysisRows:
    """What an analysis writes back: keyed component and checkpoint rows, and the run's values.

    ``components`` and ``checkpoints`` hold ``key`` plus properties (a subset of
    ``COMPONENT_ANALYSIS`` / all of ``CHECKPOINT_ANALYSIS``); ``run`` all of ``RUN_ANALYSIS``.
    """

    run_id: str
    components: pd.DataFrame
    checkpoints: pd.DataFrame
    run: dict[str, Any]


def analysis_rows(
    run_id: str, components: pd.DataFrame, checkpoints: pd.DataFrame, run: dict[str, Any]
) -> AnalysisRows:
    """Check the frames (``step, name`` + component properties; ``step`` + checkpoint ones) and key
    them. ``components`` may carry only some of ``COMPONENT_ANALYSIS`` (a backend that computed
    the centralities in the database wrote those already)."""
    _check_columns(components, ["step", "name"], COMPONENT_ANALYSIS, "component", subset=True)
    _check_columns(checkpoints, ["step"], CHECKPOINT_ANALYSIS, "checkpoint", subset=False)
    missing = sorted(set(RUN_ANALYSIS) - set(run))
    if missing:
        raise CircuitAtlasError(f"run analysis lacks {', '.join(missing)}")
    comp = components.drop(columns=["step", "name"])
    comp.insert(0, "key", component_keys(run_id, components["step"], components["name"]))
    ckpt = checkpoints.drop(columns=["step"])
    ckpt.insert(0, "key", [checkpoint_key(run_id, int(s)) for s in checkpoints["step"]])
    return AnalysisRows(
        run_id,
        comp.reset_index(drop=True),
        ckpt.reset_index(drop=True),
        {k: run[k] for k in RUN_ANALYSIS},
    )


def _check_columns(
    frame: pd.DataFrame, index: list[str], properties: tuple[str, ...], what: str, subset: bool
) -> None:
    extra = sorted(set(frame.columns) - set(index) - set(properties))
    missing = sorted(set(index) - set(frame.columns))
    if not subset:
        missing += sorted(set(properties) - set(frame.columns))
    if extra or missing:
        raise CircuitAtlasError(
            f"{what} analysis frame: missing {missing or 'nothing'}, unknown {extra or 'nothing'}"
        )
