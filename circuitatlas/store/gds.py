"""Centralities and strongest paths of one checkpoint computed in Neo4j with the Graph Data
Science library (GDS).

Through the official ``graphdatascience`` client, over the store's own driver (Bolt only, no
Arrow). Constructing the client sends one query, ``RETURN gds.version()`` (through
``driver.execute_query``); it fails there when the server has no GDS.

Per checkpoint and call: a Cypher projection (``cypher/neo4j/gds_project.cypher``) puts the graph
into the GDS catalog under a name unique to the call (:meth:`Gds.projection`), the algorithms run
on it, and the projection is dropped whatever happens.

Centralities run on the graph at τ (write mode stores each metric as a ``Component`` property,
stream mode returns them). The calls and how their semantics meet the definitions of
:mod:`circuitatlas.graph.centrality`:

* ``gds.degree`` with ``orientation`` NATURAL (out) / REVERSE (in), and with
  ``relationshipWeightProperty: 'weight'`` for the strengths. GDS returns (and writes) degrees
  as floats: they are cast back to integers here and, in write mode, stored back as integers
  (``gds_written.cypher``).
* ``gds.betweenness`` with ``relationshipWeightProperty: 'cost'`` (cost = 1 / weight): raw
  Brandes betweenness over ordered pairs of a directed graph, ties split, not normalized.
  (GDS compares path lengths exactly, igraph within a relative epsilon: two different paths
  whose float lengths differ only by rounding count as a tie in igraph alone.)
* ``gds.closeness`` (unweighted, ``useWassermanFaust: false``, its default): GDS runs a BFS from
  every node along the relationships and gives each node the number of nodes that reached it
  divided by the sum of their hop distances, 0 when none reaches it: incoming distances, our
  definition.
* ``gds.pageRank`` with ``relationshipWeightProperty: 'weight'``, damping 0.85, up to
  ``PAGERANK_MAX_ITERATIONS`` iterations at tolerance ``PAGERANK_TOLERANCE`` and
  ``scaler: 'L1Norm'``; see :data:`PAGERANK_CONFIG` for why that is our PageRank.

A checkpoint without an edge at τ projects no relationship (and so no relationship property):
the algorithms then run without a weight property, which on an edgeless graph gives the same
values (zeros, PageRank 1/n).

Paths (:mod:`circuitatlas.graph.paths`) run on the graph at τ, or on every edge with a positive
weight when no τ is given, with the projection's ``distance`` = −log(min(weight, 1)):
``gds.shortestPath.dijkstra.stream`` for the strongest path, ``gds.shortestPath.yens.stream``
(Yen's k shortest, in order of increasing cost) for k > 1, each in one named statement
(``gds_path_dijkstra``, ``gds_path_yens``) that matches the source and sink components by key and
returns each path's ``totalCost`` (its distance) and component names. An edgeless projection has
no ``distance`` property, and no path: the algorithm is not called.

Paths on a task-metric score (``patch``, ``eap_ig``) run on distances computed by the caller:
each edge's share of its target's total absolute score is computed once, in Python, for both
backends (:func:`circuitatlas.graph.paths.score_shares`, from the scores read with
``path_scores``), and its −log passed as a parameter to another Cypher projection
(``gds_project_distances.cypher``, the same relationship property ``distance``); the path
statements are the same.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.centrality import DAMPING, DEGREE_METRICS, FLOAT_METRICS, METRICS
from circuitatlas.graph.paths import FoundPath, PathSettings, ranked
from circuitatlas.store.statements import statement

DIALECT = "neo4j"
WEIGHT = "weight"  # relationship properties of the projection (gds_project.cypher)
COST = "cost"
GRAPH_NAME_PREFIX = "circuitatlas-"
# metric: (orientation, weighted) of its gds.degree call
DEGREES = {
    "out_degree": ("NATURAL", False),
    "in_degree": ("REVERSE", False),
    "out_strength": ("NATURAL", True),
    "in_strength": ("REVERSE", True),
}
# Our graphs are DAGs (influence only flows downstream), where PageRank is exact after depth + 1
# iterations (depth ≤ 2·n_layers + 2): GDS propagates score changes and a node stops sending once
# its change is at most the tolerance, which on a DAG it reaches exactly (0) after its last
# predecessor has settled. The iteration cap is only a bound.
PAGERANK_MAX_ITERATIONS = 1000
PAGERANK_TOLERANCE = 1e-15
# GDS PageRank iterates x ← (1 − d)·1 + d·Pᵀx, P the weight-normalized adjacency, and drops the
# mass of dangling nodes (no out-edge) instead of spreading it. The standard PageRank (igraph's,
# our definition) solves π = c·1 + d·Pᵀπ with the uniform c = ((1 − d) + d·Σ_dangling π)/n.
# Both solve x = c·1 + d·Pᵀx for a uniform c, whose solution c·(I − d·Pᵀ)⁻¹·1 is proportional to
# c; so the converged GDS scores scaled to sum 1 (the L1Norm scaler) are the standard PageRank.
PAGERANK_CONFIG: dict[str, Any] = {
    "damping_factor": DAMPING,
    "max_iterations": PAGERANK_MAX_ITERATIONS,
    "tolerance": PAGERANK_TOLERANCE,
    "scaler": "L1Norm",
}
NO_GDS = "has no Graph Data Science library; install the GDS plugin (docker/compose.yml has it)"


def gds_missing(e: BaseException) -> bool:
    """Whether ``e`` says the server has no GDS (the client's check, or an unknown gds.* call)."""
    from graphdatascience.error.gds_not_installed import GdsNotFound

    if isinstance(e, GdsNotFound):
        return True
    message = str(getattr(e, "message", None) or e)
    code = getattr(e, "code", None) or ""
    return "gds." in message and (
        "Unknown function" in message or code.endswith(("ProcedureNotFound", "FunctionNotFound"))
    )


def unwrap(e: BaseException) -> BaseException:
    """The driver error inside the client's ``UnableToConnectError`` (else ``e`` itself)."""
    from graphdatascience.error.unable_to_connect import UnableToConnectError

    if isinstance(e, UnableToConnectError):
        inner = e.args[0] if e.args and isinstance(e.args[0], BaseException) else e.__cause__
        return inner if inner is not None else e
    return e


@dataclass(frozen=True)
class Projection:
    """A checkpoint's graph in the GDS catalog: the client's graph object, its catalog name and
    how many relationships it holds."""

    graph: Any
    name: str
    n_relationships: int


class Gds:
    """A ``graphdatascience`` client over ``driver`` that computes one checkpoint's centralities
    or strongest paths, each on a projection of its own.

    ``driver`` is a ``neo4j.Driver`` (the client refuses anything else); it stays the caller's:
    :meth:`close` releases the client, not the driver.
    """

    def __init__(self, driver: Any, database: str | None) -> None:
        from graphdatascience import GraphDataScience

        self.client = GraphDataScience(driver, database=database, arrow=False, show_progress=False)

    def close(self) -> None:
        """Release the client (the driver stays open)."""
        self.client.close()

    @contextlib.contextmanager
    def projection(
        self,
        checkpoint_key: str,
        measure: str,
        tau: float | None,
        distances: dict[str, dict[str, float]] | None = None,
    ) -> Iterator[Projection]:
        """The checkpoint's graph at ``tau`` (every edge with a positive weight when None) in the
        catalog under a name unique to the call, dropped on leaving, whatever happens. With
        ``distances`` (``{source name: {target name: distance}}``) the graph of those edges
        instead, with those distances (``measure`` and ``tau`` unused)."""
        graph_name = f"{GRAPH_NAME_PREFIX}{uuid.uuid4().hex}"
        try:
            yield self._project(graph_name, checkpoint_key, measure, tau, distances)
        except BaseException:
            self._drop_after_error(graph_name)
            raise
        self.client.graph.drop(graph_name, fail_if_missing=False)

    def centralities(
        self, checkpoint_key: str, tau: float, measure: str, write: bool
    ) -> pd.DataFrame:
        """``name`` + ``METRICS`` of the checkpoint's graph at ``tau``, one row per component in
        name order; with ``write`` the values are also stored on the ``Component`` nodes."""
        with self.projection(checkpoint_key, measure, float(tau)) as projected:
            weighted = projected.n_relationships > 0
            if write:
                self._write(projected.graph, weighted)
                frame = self.client.run_cypher(
                    statement(DIALECT, "gds_written"),
                    {"checkpoint_key": checkpoint_key},
                    mode="WRITE",
                )
            else:
                frame = self._stream(projected.graph, weighted)
        return _typed(frame)

    def strongest_paths(
        self,
        checkpoint_key: str,
        settings: PathSettings,
        distances: dict[str, dict[str, float]] | None = None,
    ) -> list[FoundPath]:
        """The ``settings.k`` strongest ``settings.source`` → ``settings.sink`` paths of the
        checkpoint's graph (at ``settings.tau``; ``settings.measure`` weights), ranked; with
        ``distances``, of the graph of those edges and distances (see :meth:`projection`)."""
        measure, tau = settings.measure, settings.tau
        with self.projection(checkpoint_key, measure, tau, distances) as projected:
            if projected.n_relationships == 0:
                return []  # no relationship: no `distance` property, and no path
            params: dict[str, Any] = {
                "graph_name": projected.name,
                "checkpoint_key": checkpoint_key,
                "source": settings.source,
                "sink": settings.sink,
            }
            name = "gds_path_dijkstra"
            if settings.k > 1:
                name, params["k"] = "gds_path_yens", int(settings.k)
            rows = self.client.run_cypher(statement(DIALECT, name), params, mode="READ")
        return ranked(
            FoundPath(tuple(names), float(cost))
            for names, cost in zip(rows["names"], rows["totalCost"], strict=True)
        )

    # --- steps -------------------------------------------------------------------------------
    def _project(
        self,
        graph_name: str,
        checkpoint_key: str,
        measure: str,
        tau: float | None,
        distances: dict[str, dict[str, float]] | None = None,
    ) -> Projection:
        name, params = "gds_project_distances", {"distances": distances}
        if distances is None:
            name = "gds_project"
            params = {
                "tau": float(tau) if tau is not None else 0.0,
                "unfiltered": tau is None,
                "measure": measure,
            }
        try:
            projected = self.client.graph.project.cypher(
                statement(DIALECT, name),
                graph_name=graph_name,
                checkpoint_key=checkpoint_key,
                **params,
            )
        except ValueError as e:
            # the client's words when the aggregation saw no row (and so returned null)
            if "Cypher projection query" not in str(e):
                raise
            raise CircuitAtlasError(
                f"checkpoint {checkpoint_key}: no component to project into GDS"
            ) from None
        relationships = int(projected.result.relationship_count)
        return Projection(projected.graph, graph_name, relationships)

    @staticmethod
    def _calls(weighted: bool) -> list[tuple[str, str, dict[str, Any]]]:
        """(metric, client endpoint, keyword arguments) of every algorithm call."""
        weight = {"relationship_weight_property": WEIGHT} if weighted else {}
        cost = {"relationship_weight_property": COST} if weighted else {}
        calls = [
            (metric, "degree", {"orientation": orientation, **(weight if strength else {})})
            for metric, (orientation, strength) in DEGREES.items()
        ]
        return [
            *calls,
            ("betweenness", "betweenness", cost),
            ("closeness", "closeness", {"use_wasserman_faust": False}),
            ("pagerank", "page_rank", {**PAGERANK_CONFIG, **weight}),
        ]

    def _write(self, graph: Any, weighted: bool) -> None:
        for metric, endpoint, kwargs in self._calls(weighted):
            getattr(self.client, endpoint).write(
                graph, write_property=metric, log_progress=False, **kwargs
            )

    def _stream(self, graph: Any, weighted: bool) -> pd.DataFrame:
        scores: dict[str, pd.Series] = {}
        for metric, endpoint, kwargs in self._calls(weighted):
            rows = getattr(self.client, endpoint).stream(graph, log_progress=False, **kwargs)
            scores[metric] = pd.Series(
                rows["score"].to_numpy(dtype=np.float64),
                index=rows["nodeId"].to_numpy(dtype=np.int64),
            )
        frame = pd.DataFrame(scores)
        names = self.client.run_cypher(
            statement(DIALECT, "gds_node_names"),
            {"node_ids": [int(i) for i in frame.index]},
            mode="READ",
        )
        by_id = dict(zip(names["node_id"].astype("int64"), names["name"], strict=True))
        frame.insert(0, "name", [by_id[int(i)] for i in frame.index])
        return frame.sort_values("name").reset_index(drop=True)

    def _drop_after_error(self, graph_name: str) -> None:
        """Drop the projection while another error propagates (which stays the one raised)."""
        with contextlib.suppress(Exception):
            self.client.graph.drop(graph_name, fail_if_missing=False)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``name`` + ``METRICS`` with integer degrees and float scores."""
    missing = [c for c in ("name", *METRICS) if c not in frame.columns]
    if missing:
        raise CircuitAtlasError(f"GDS returned no {', '.join(missing)}")
    out = frame[["name", *METRICS]].copy()
    out["name"] = out["name"].astype(str)
    for metric in DEGREE_METRICS:
        out[metric] = out[metric].astype("float64").round().astype("int64")
    for metric in FLOAT_METRICS:
        out[metric] = out[metric].astype("float64")
    return out.reset_index(drop=True)
