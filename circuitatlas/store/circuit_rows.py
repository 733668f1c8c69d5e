"""Store rows of circuits and node frames of the reads (pure, no database).

What :class:`circuitatlas.store.base.StoreBase` writes for a circuit (``circuit_create``
parameters, member keys, ``CIRCUIT_EDGE`` rows) and how it turns the node property dicts a read
returns into frames (circuits, checkpoints, components).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from circuitatlas.errors import CircuitAtlasError

# Node properties that are storage details, not data: left out of the frames.
_HIDDEN = {"key", "run_id"}
# A circuit's properties in the schema's order (circuit_create; ``run_id`` left out): a "paths"
# circuit has null edge properties (scores … n_edges), an "edges" one null path properties
# (source … strengths). ``key`` names the circuit in ``circuit_edges``.
CIRCUIT_COLUMNS = [
    "key",
    "step",
    "source",
    "sink",
    "k",
    "measure",
    "tau",
    "distance",
    "components",
    "paths",
    "strengths",
    "n_components",
    "faithfulness",
    "ablation",
    "clean_metric",
    "circuit_metric",
    "ablated_metric",
    "created_at",
    "kind",
    "scores",
    "target",
    "edges",
    "edge_scores",
    "n_edges",
]
CIRCUIT_TYPES = {
    "step": "int64",
    **dict.fromkeys(["k", "n_components", "n_edges"], "Int64"),
    **dict.fromkeys(
        ["tau", "faithfulness", "clean_metric", "circuit_metric", "ablated_metric", "target"],
        "float64",
    ),
}
# circuit_create parameters of one kind of circuit only (the paths' and the edge circuits'):
# null when a record lacks them.
KIND_CIRCUIT_PARAMETERS = (
    *("source", "sink", "k", "measure", "tau", "distance", "paths", "strengths"),
    *("kind", "scores", "target", "edges", "edge_scores", "n_edges"),
)
CIRCUIT_EDGE_COLUMNS = ["circuit", "step", "source", "target", "score", "rank"]


def present(value: Any) -> bool:
    """Whether a property value is set (not None, not NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def circuit_parts(
    circuit: dict[str, Any],
) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """A circuit record as (``circuit_create`` parameters, member keys, CIRCUIT_EDGE rows)."""
    properties = {k: v for k, v in circuit.items() if k not in ("component_keys", "edge_keys")}
    for name in KIND_CIRCUIT_PARAMETERS:
        properties.setdefault(name, None)
    members = list(circuit["component_keys"])
    edge_keys = circuit.get("edge_keys") or []
    listed = properties["edge_scores"]
    scores = [*(listed if listed is not None else []), *(e.get("score") for e in edge_keys)]
    if not all(present(v) for v in scores):
        # Neo4j stores no list holding a null, and an edge without a score has no rank
        raise CircuitAtlasError(
            f"circuit {circuit.get('key')!r}: an edge without a score (null or NaN); a circuit's "
            f"edges are ranked by their scores, give each one"
        )
    edges = [
        {
            "source_key": str(e["source_key"]),
            "target_key": str(e["target_key"]),
            "score": float(e["score"]),
            "rank": int(e["rank"]),
        }
        for e in edge_keys
    ]
    outside = {e[end] for e in edges for end in ("source_key", "target_key")} - set(members)
    if outside:
        raise CircuitAtlasError(
            f"circuit {circuit.get('key')!r}: edges touch components that are not among its "
            f"component_keys: {sorted(outside)[:3]}; list every component its edges touch"
        )
    return properties, members, edges


def node_frame(nodes: pd.Series, columns: list[str]) -> pd.DataFrame:
    """Node property dicts → a frame: ``columns`` first, then any other (analytics) properties."""
    records = [
        {k: v for k, v in node.items() if not k.startswith("_") and k not in _HIDDEN}
        for node in nodes
    ]
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    # other properties (analytics) only once written: the embedded store returns every column of
    # its table, null until set, where Neo4j returns only the properties a node has
    extra = [c for c in frame.columns if c not in columns and frame[c].notna().any()]
    return frame[columns + extra]


def circuit_frame(nodes: pd.Series) -> pd.DataFrame:
    """Circuit node property dicts → ``CIRCUIT_COLUMNS`` (null where a circuit has no such
    property), then any other stored property alphabetically."""
    if nodes.empty:
        return pd.DataFrame(columns=CIRCUIT_COLUMNS).astype(CIRCUIT_TYPES)
    records = [
        {k: v for k, v in node.items() if not k.startswith("_") and k != "run_id"} for node in nodes
    ]
    extra = sorted({k for r in records for k in r if k not in CIRCUIT_COLUMNS})
    extra = [c for c in extra if any(present(r.get(c)) for r in records)]
    columns = CIRCUIT_COLUMNS + extra
    # every cell from .get, so a property Neo4j does not store reads None as the embedded
    # store's null does
    rows = [[r.get(c) for c in columns] for r in records]
    return pd.DataFrame(rows, columns=columns).astype(CIRCUIT_TYPES)
