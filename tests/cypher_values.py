"""Cypher answers of either backend as comparable plain values.

The embedded store returns nodes and relationships as dicts with ``_ID``, ``_LABEL`` (and
``_SRC``/``_DST``), paths as dicts with ``_NODES``/``_RELS``; the official Neo4j driver returns
``Node``, ``Relationship`` and ``Path`` objects. Both reduce here to the same values: a node to
``("node", label, properties)``, a relationship to ``("rel", type, properties)``, a path to
``("path", its nodes and relationships)``, properties without nulls (Neo4j stores none; the
embedded store returns every column of its table) and without the embedded store's internals;
a NaN or NA (a null in a frame's column) is None.
A result's *graph* is its nodes by identity and its relationships by (from, to, type).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import neo4j.graph
import pandas as pd

FLOAT_TOL = 1e-9


def identity(label: str, props: dict[str, Any]) -> Any:
    """A node as something comparable across stores: a component as (step, name); a run by its
    id, a checkpoint by its step, anything else by its label alone."""
    if label == "Component":
        return (props["step"], props["name"])
    return {"Run": props.get("run_id"), "Checkpoint": props.get("step")}.get(label, label), label


def _properties(props: dict[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in props.items() if not k.startswith("_") and v is not None}


def _label(labels: Iterable[str]) -> str:
    [label] = list(labels)  # every node of the schema has one label
    return label


def plain(value: Any) -> Any:
    """A cell of either backend as plain values (see the module docstring)."""
    if isinstance(value, neo4j.graph.Node):
        return ("node", _label(value.labels), _properties(dict(value)))
    if isinstance(value, neo4j.graph.Relationship):
        return ("rel", value.type, _properties(dict(value)))
    if isinstance(value, neo4j.graph.Path):
        return ("path", [plain(n) for n in value.nodes], [plain(r) for r in value.relationships])
    if isinstance(value, dict) and "_NODES" in value:
        return ("path", [plain(n) for n in value["_NODES"]], [plain(r) for r in value["_RELS"]])
    if isinstance(value, dict) and "_LABEL" in value:
        kind = "rel" if "_SRC" in value else "node"
        return (kind, value["_LABEL"], _properties(value))
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if value is pd.NA:
        return None
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None  # a null of a frame's float column
    return value


def assert_close(got: Any, expected: Any, where: str = "") -> None:
    """Plain values equal, floats to ``FLOAT_TOL`` (an int equals the same float: Neo4j keeps
    what was written, the embedded store its column's type)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (where, got, expected)
        for key in expected:
            assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(expected), (where, got, expected)
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_close(g, e, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(got, bool):
        assert isinstance(got, int | float), (where, got, expected)
        assert math.isclose(got, expected, rel_tol=0, abs_tol=FLOAT_TOL), (where, got, expected)
    else:
        assert got == expected and type(got) is type(expected), (where, got, expected)


@dataclass
class ResultGraph:
    """The nodes (identity → properties) and relationships ((from, to, type) → properties) of
    a result's cells; the nulls of optional matches left out."""

    nodes: dict[Any, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[Any, Any, str], dict[str, Any]] = field(default_factory=dict)

    def shape(self) -> tuple[set[Any], set[tuple[Any, Any, str]]]:
        """The node identities and the (from, to, type) of the relationships."""
        return set(self.nodes), set(self.edges)


def embedded_graph(rows: Any) -> ResultGraph:
    """The graph of an embedded store's result frame."""
    nodes: dict[str, tuple[Any, dict[str, Any]]] = {}
    rels: list[dict[str, Any]] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict) and "_NODES" in value:
            for item in value["_NODES"] + value["_RELS"]:
                visit(item)
        elif isinstance(value, dict) and "_SRC" in value:
            rels.append(value)
        elif isinstance(value, dict) and "_ID" in value:
            props = _properties(value)
            nodes[json.dumps(value["_ID"], sort_keys=True)] = (
                identity(value["_LABEL"], props),
                props,
            )

    for row in rows.itertuples(index=False):
        for value in row:
            visit(value)
    out = ResultGraph(dict(nodes.values()))
    for rel in rels:
        ends = (nodes[json.dumps(rel[end], sort_keys=True)][0] for end in ("_SRC", "_DST"))
        out.edges[(*ends, rel["_LABEL"])] = _properties(rel)
    return out


def neo4j_graph(records: Iterable[Any]) -> ResultGraph:
    """The graph of the official driver's records."""
    nodes: dict[str, tuple[Any, dict[str, Any]]] = {}
    rels: list[neo4j.graph.Relationship] = []

    def visit(value: Any) -> None:
        if isinstance(value, neo4j.graph.Path):
            for item in (*value.nodes, *value.relationships):
                visit(item)
        elif isinstance(value, neo4j.graph.Relationship):
            rels.append(value)
        elif isinstance(value, neo4j.graph.Node):
            props = _properties(dict(value))
            nodes[value.element_id] = (identity(_label(value.labels), props), props)

    for record in records:
        for value in record.values():
            visit(value)
    out = ResultGraph(dict(nodes.values()))
    for rel in rels:
        assert rel.start_node is not None and rel.end_node is not None
        ends = (nodes[end.element_id][0] for end in (rel.start_node, rel.end_node))
        out.edges[(*ends, rel.type)] = _properties(dict(rel))
    return out
