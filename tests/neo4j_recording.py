"""A recording stand-in for the neo4j driver: it keeps every statement, parameter set and
transaction boundary the Neo4j backend sends, and answers reads from a small in-memory table.

Only what cannot run here (a live Neo4j) is replaced; the backend code under test is the real
one. Answers: ``schema_version``, ``run_config``, ``ask_run``, ``checkpoint_steps``,
``checkpoints``, ``components_of_step``, ``components_of_run``, ``component_names``,
``graph_edges``, ``path_edges`` and ``edges_of_run`` come from what was
"committed" so far (the analysis write-back and what GDS wrote included), so an ingest through it
behaves like one against an empty database, an analysis reads back what was ingested and a report
reads back the analysis.

It is a ``neo4j.Driver`` (the graphdatascience client accepts nothing else) and also answers what
that client sends, auto-commit ``session.run`` and ``execute_query`` included: ``gds.version()``,
the Cypher projection of a checkpoint (the graph a test gave with :meth:`add_graph`, else the
ingested one at the τ and measure asked for, or unfiltered), the graph catalog procedures, the
centrality procedures in stream and write mode, computed here the way GDS defines them (see
:mod:`circuitatlas.store.gds`; PageRank unnormalized, without dangling redistribution, unless the
L1Norm scaler is asked for), and the path statements (``gds_path_dijkstra``, ``gds_path_yens``):
the k shortest paths on the projection's ``distance`` computed with networkx, independently of
the igraph code under test (:func:`gds_paths`).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import neo4j
import numpy as np
import pandas as pd
from neo4j.exceptions import Neo4jError

from circuitatlas.graph.centrality import METRICS
from circuitatlas.graph.network import Graph
from circuitatlas.store.rows import EDGE_PROPERTIES, checkpoint_key
from circuitatlas.store.statements import statement

if TYPE_CHECKING:
    from circuitatlas.ingest.pipeline import SweepResult
    from circuitatlas.queries.paths import PathResult
    from circuitatlas.store.neo4j import Neo4jStore

GDS_VERSION = "2.13.2"
_PROCEDURE = re.compile(r"^CALL (gds\.[\w.]+)\(")
PATH_STATEMENTS = {"gds_path_dijkstra": False, "gds_path_yens": True}  # name: whether it takes $k


@dataclass
class Call:
    """One statement run inside a transaction."""

    query: str
    params: dict[str, Any]
    metadata: dict[str, Any] | None = None  # transaction metadata (the GDS client sends some)


@dataclass
class Transaction:
    """One transaction: its access mode, its statements and how it ended.

    ``kind`` is how it was run: ``managed`` (``session.execute_read/write``), ``auto-commit``
    (``session.run``) or ``execute_query``.
    """

    mode: str
    database: str | None
    calls: list[Call] = field(default_factory=list)
    outcome: str = "open"  # committed | rolled back
    kind: str = "managed"


class _Summary:
    notifications = None
    gql_status_objects: tuple = ()


def edge_rows(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The edges of one ``edges_write`` chunk (sent column by column) as one dict per edge."""
    keys = params["keys"]
    return [
        {
            "source_key": keys[s],
            "target_key": keys[t],
            "run_id": params["run_id"],
            "step": params["step"],
            **{p: params[p][i] for p in EDGE_PROPERTIES},
        }
        for i, (s, t) in enumerate(zip(params["source"], params["target"], strict=True))
    ]


class _Result:
    def __init__(self, keys: list[str], rows: list[dict[str, Any]]) -> None:
        self._keys, self._rows = keys, rows

    def keys(self) -> list[str]:
        return self._keys

    def data(self) -> list[dict[str, Any]]:
        return self._rows

    def consume(self) -> _Summary:
        return _Summary()

    def to_df(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return pd.DataFrame(self._rows, columns=self._keys)


def _text(query: Any) -> tuple[str, dict[str, Any] | None]:
    """A query's text and metadata (the GDS client sends ``neo4j.Query`` objects)."""
    if isinstance(query, neo4j.Query):
        return str(query.text), dict(query.metadata or {})
    return query, None


class _Tx:
    def __init__(self, driver: RecordingDriver, record: Transaction) -> None:
        self._driver, self._record = driver, record

    def run(self, query: Any, parameters: dict[str, Any] | None = None, **kw: Any) -> _Result:
        params = {**(parameters or {}), **kw}
        text, metadata = _text(query)
        self._record.calls.append(Call(text, params, metadata))
        return self._driver.answer(text, params, self._record)


class _Session:
    def __init__(self, driver: RecordingDriver, database: str | None, mode: str) -> None:
        self._driver, self._database, self._mode = driver, database, mode

    def run(self, query: Any, parameters: dict[str, Any] | None = None, **kw: Any) -> _Result:
        """An auto-commit transaction of one statement."""
        mode = "READ" if self._mode in ("READ", "r") else "WRITE"
        return self._driver.one_statement("auto-commit", mode, self._database, query, parameters)

    def last_bookmarks(self) -> neo4j.Bookmarks:
        return neo4j.Bookmarks()

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _managed(self, mode: str, work: Any, *args: Any) -> Any:
        record = Transaction(mode, self._database)
        self._driver.transactions.append(record)
        try:
            out = work(_Tx(self._driver, record), *args)
        except BaseException:
            record.outcome = "rolled back"
            raise
        record.outcome = "committed"
        self._driver.commit(record)
        return out

    def execute_read(self, work: Any, *args: Any) -> Any:
        return self._managed("READ", work, *args)

    def execute_write(self, work: Any, *args: Any) -> Any:
        return self._managed("WRITE", work, *args)


class RecordingDriver(neo4j.Driver):
    """Records sessions (access mode, database) and transactions; answers as described above.

    ``gds_version=None`` answers ``gds.version()`` as a server without GDS does; ``fail_on``
    makes every statement that contains it fail with a client error.
    """

    def __init__(
        self,
        schema_version: int | None = None,
        gds_version: str | None = GDS_VERSION,
        fail_on: str | None = None,
    ) -> None:
        # no connection pool: every method the code under test uses is answered here
        self.transactions: list[Transaction] = []
        self.sessions: list[dict[str, Any]] = []
        self.schema_version = schema_version
        self.steps: dict[str, set[int]] = {}
        self.configs: dict[str, str] = {}
        self.run_nodes: dict[str, dict[str, Any]] = {}  # run id → the Run node's properties
        self.closed = False
        self._closed = False
        self.gds_version = gds_version
        self.fail_on = fail_on
        # what ingests committed: checkpoint key → its properties, its component names, its edges
        self.checkpoint_nodes: dict[str, dict[str, Any]] = {}
        self.components: dict[str, list[str]] = {}
        self.component_nodes: dict[tuple[str, str], dict[str, Any]] = {}  # its properties
        self.edge_rows: dict[str, list[dict[str, Any]]] = {}
        self.given: dict[str, Graph] = {}  # checkpoint key → the graph add_graph gave
        self.graphs: dict[str, Graph] = {}  # checkpoint key → the graph it last projected
        self.node_ids: dict[str, list[int]] = {}  # checkpoint key → node id of each graph name
        self.names_by_id: dict[int, tuple[str, str]] = {}  # node id → (checkpoint key, name)
        self.id_of: dict[tuple[str, str], int] = {}  # (checkpoint key, name) → Neo4j node id
        self.catalog: dict[str, str] = {}  # projected graph name → checkpoint key
        self.written: dict[int, dict[str, Any]] = {}  # node id → properties written by GDS

    def __del__(self) -> None:
        return None

    @property
    def encrypted(self) -> bool:
        return False

    def session(
        self, database: str | None = None, default_access_mode: str = "WRITE", **config: Any
    ) -> _Session:
        self.sessions.append({"database": database, "mode": default_access_mode})
        return _Session(self, database, default_access_mode)

    def verify_connectivity(self, **config: Any) -> None:
        return None

    def execute_query(
        self,
        query_: Any,
        parameters_: dict[str, Any] | None = None,
        routing_: Any = neo4j.RoutingControl.WRITE,
        database_: str | None = None,
        impersonated_user_: str | None = None,
        bookmark_manager_: Any = None,
        auth_: Any = None,
        result_transformer_: Any = None,
        **kwargs: Any,
    ) -> Any:
        mode = "READ" if routing_ == neo4j.RoutingControl.READ else "WRITE"
        result = self.one_statement(
            "execute_query", mode, database_, query_, {**(parameters_ or {}), **kwargs}
        )
        if result_transformer_ is None or result_transformer_ is neo4j.Result.to_df:
            return result.to_df()
        return result_transformer_(result)

    def close(self) -> None:
        self.closed = True
        self._closed = True

    def one_statement(
        self, kind: str, mode: str, database: str | None, query: Any, params: dict[str, Any] | None
    ) -> _Result:
        """Run one statement in a transaction of its own (auto-commit or execute_query)."""
        record = Transaction(mode, database, kind=kind)
        self.transactions.append(record)
        try:
            result = _Tx(self, record).run(query, dict(params or {}))
        except BaseException:
            record.outcome = "rolled back"
            raise
        record.outcome = "committed"
        self.commit(record)
        return result

    def calls(self) -> list[Call]:
        """Every statement sent, in order."""
        return [c for t in self.transactions for c in t.calls]

    def commit(self, record: Transaction) -> None:
        """Apply what a committed transaction wrote that later reads look at."""
        for call in record.calls:
            if "CircuitAtlasSchema" in call.query and "MERGE" in call.query:
                self.schema_version = call.params["version"]
            if call.query.startswith("MERGE (r:Run"):
                self.configs[call.params["run_id"]] = call.params["config"]
                # ON CREATE SET: the first MERGE sets the properties (a null one is not stored)
                created = {k: v for k, v in call.params.items() if v is not None}
                self.run_nodes.setdefault(call.params["run_id"], created | {"n_checkpoints": 0})
            if call.query == statement("neo4j", "run_count"):
                run_id = call.params["run_id"]
                self.run_nodes[run_id]["n_checkpoints"] = len(self.steps.get(run_id, ()))
            if call.query == statement("neo4j", "analysis_clear"):
                run_id = call.params["run_id"]
                for prop in re.findall(r"\br\.(\w+) = null", call.query):
                    self.run_nodes.get(run_id, {}).pop(prop, None)
                for checkpoint in self.checkpoint_nodes.values():
                    if checkpoint["run_id"] == run_id:
                        for prop in re.findall(r"\bc\.(\w+) = null", call.query):
                            checkpoint.pop(prop, None)
            run = self.run_nodes.get(call.params.get("run_id"))
            if call.query == statement("neo4j", "analysis_run_write") and run is not None:
                _set_plus(run, call.params["properties"])  # `SET r += $properties`
            if call.query == statement("neo4j", "analysis_checkpoints_write"):
                for row in call.params["rows"]:
                    if row["key"] in self.checkpoint_nodes:
                        _set_plus(self.checkpoint_nodes[row["key"]], row["properties"])
            if call.query == statement("neo4j", "analysis_components_write"):
                for row in call.params["rows"]:
                    run_id, step, name = row["key"].split("/", 2)
                    node = self.component_nodes.get((checkpoint_key(run_id, int(step)), name))
                    if node is not None:  # a component of a test's graph has no key
                        _set_plus(node, row["properties"])
            if "CREATE (r)-[:HAS_CHECKPOINT]->" in call.query:
                for row in call.params["rows"]:
                    self.steps.setdefault(row["run_id"], set()).add(row["step"])
                    self.checkpoint_nodes[row["key"]] = dict(row)
            if call.query == statement("neo4j", "components_write"):
                for row in call.params["rows"]:
                    key, name = row["checkpoint_key"], row["properties"]["name"]
                    self._add_node(key, name)
                    # `SET c = row.properties` stores no null property
                    properties = {k: v for k, v in row["properties"].items() if v is not None}
                    self.component_nodes[(key, name)] = properties
            if call.query == statement("neo4j", "edges_write"):
                for row in edge_rows(call.params):
                    key = checkpoint_key(row["run_id"], row["step"])
                    self.edge_rows.setdefault(key, []).append(row)

    def answer(self, query: str, params: dict[str, Any], record: Transaction) -> _Result:
        if self.fail_on is not None and self.fail_on in query:
            raise Neo4jError._hydrate_neo4j(
                code="Neo.ClientError.Procedure.ProcedureCallFailed",
                message="injected failure\nmore detail",
            )
        gds = self.answer_gds(query, params)
        if gds is not None:
            return gds
        if query == statement("neo4j", "edges_write"):
            return _Result(["created"], [{"created": len(params["source"])}])
        if "RETURN s.version AS version" in query:
            rows = [] if self.schema_version is None else [{"version": self.schema_version}]
            return _Result(["version"], rows)
        if "RETURN c.step AS step" in query:
            steps = sorted(self.steps.get(params["run_id"], set()))
            return _Result(["step"], [{"step": s} for s in steps])
        if "RETURN r.config AS config" in query:
            config = self.configs.get(params["run_id"])
            return _Result(["config"], [] if config is None else [{"config": config}])
        stored = self.answer_stored(query, params)
        if stored is not None:
            return stored
        # any other read: no rows, with the columns the statement names (as a server would)
        return _Result(re.findall(r"\bAS (\w+)", query.split("RETURN")[-1]), [])

    # --- what an ingest stored -----------------------------------------------------------------
    def _add_node(self, key: str, name: str) -> None:
        """A new ``Component`` node of checkpoint ``key`` (its id unlike any position)."""
        node_id = 1000 + 7 * len(self.names_by_id)
        self.components.setdefault(key, []).append(name)
        self.names_by_id[node_id] = (key, name)
        self.id_of[(key, name)] = node_id

    def element_id(self, key: str, name: str) -> str:
        """The component's ``elementId`` (a string, as Neo4j 5 gives, unlike its name)."""
        return f"4:circuitatlas:{self.id_of[(key, name)]}"

    def stored_edges(self, key: str, measure: str) -> list[tuple[str, str, Any, Any]]:
        """Every ingested edge of ``key``: (source, target, weight, similarity) of ``measure``."""
        prefix = "direct_" if measure == "direct" else ""
        return [
            (
                *(row[k].split("/", 2)[2] for k in ("source_key", "target_key")),
                row[f"{prefix}weight"],
                row[f"{prefix}similarity"],
            )
            for row in self.edge_rows.get(key, [])
        ]

    def kept_edges(self, key: str, tau: float | None, measure: str) -> list[tuple[str, str, float]]:
        """The ingested edges of ``key`` at ``tau``: (source, target, weight), as ``graph_edges``
        and ``gds_project`` select them (weight positive; with ``tau``, ``measure`` similarity
        below it)."""
        return [
            (source, target, float(weight))
            for source, target, weight, similarity in self.stored_edges(key, measure)
            if weight is not None
            and weight > 0
            and (tau is None or (similarity is not None and similarity < tau))
        ]

    def ingested_graph(self, key: str, tau: float | None, measure: str) -> Graph:
        """The ingested graph of ``key`` at ``tau`` (None: unfiltered): every component, the
        kept edges."""
        edges = pd.DataFrame(
            self.kept_edges(key, tau, measure), columns=["source", "target", "weight"]
        )
        return Graph.from_edges(sorted(self.components[key]), edges)

    def component_properties(self, key: str, name: str) -> dict[str, Any]:
        """The properties of a component of checkpoint ``key``: ingested, then analysed (the
        write-back's and what GDS wrote)."""
        properties = dict(self.component_nodes.get((key, name), {"name": name}))
        return properties | self.written.get(self.id_of[(key, name)], {})

    def run_checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        """The properties of every checkpoint of ``run_id``, in step order."""
        nodes = [c for c in self.checkpoint_nodes.values() if c["run_id"] == run_id]
        return sorted(nodes, key=lambda c: c["step"])

    def answer_stored(self, query: str, params: dict[str, Any]) -> _Result | None:
        """The answer to a read of what was ingested, or None when ``query`` is none."""
        if query == statement("neo4j", "ask_run"):
            run = self.run_nodes.get(params["run_id"])
            return _Result(["run"], [] if run is None else [{"run": dict(run)}])
        if query == statement("neo4j", "checkpoints"):
            nodes = self.run_checkpoints(params["run_id"])
            return _Result(["checkpoint"], [{"checkpoint": dict(c)} for c in nodes])
        if query == statement("neo4j", "components_of_run"):
            rows = [
                {"component": self.component_properties(c["key"], name)}
                for c in self.run_checkpoints(params["run_id"])
                for name in self.components.get(c["key"], [])
            ]
            return _Result(["component"], rows)
        if query == statement("neo4j", "edges_of_run"):
            return self._edges_of_run(params)
        key = params.get("checkpoint_key")
        if query == statement("neo4j", "components_of_step"):
            rows = [
                {"component": self.component_properties(key, name)}
                for name in self.components.get(key, [])
            ]
            return _Result(["component"], rows)
        if query == statement("neo4j", "component_names"):
            rows = [
                {"id": self.element_id(key, name), "name": name}
                for name in sorted(self.components.get(key, []))
            ]
            return _Result(["id", "name"], rows)
        if query == statement("neo4j", "graph_edges"):
            kept = self.kept_edges(key, params["tau"], params["measure"])
            row = {
                "sources": [self.element_id(key, e[0]) for e in kept],
                "targets": [self.element_id(key, e[1]) for e in kept],
                "weights": [e[2] for e in kept],
            }
            return _Result(list(row), [row])
        if query == statement("neo4j", "path_edges"):
            rows = [
                {
                    "source": self.element_id(key, source),
                    "target": self.element_id(key, target),
                    "weight": weight,
                    "similarity": similarity,
                }
                for source, target, weight, similarity in self.stored_edges(key, params["measure"])
            ]
            return _Result(["source", "target", "weight", "similarity"], rows)
        return None

    def _edges_of_run(self, params: dict[str, Any]) -> _Result:
        """``edges_of_run``: every ingested edge of the run, unless ``unfiltered`` those whose
        ``measure`` similarity is below ``tau`` (a null one is not)."""
        prefix = "direct_" if params["measure"] == "direct" else ""
        columns = ["step", "source", "target", *EDGE_PROPERTIES]
        rows = []
        for checkpoint in self.run_checkpoints(params["run_id"]):
            for row in self.edge_rows.get(checkpoint["key"], []):
                similarity = row.get(f"{prefix}similarity")
                if not params["unfiltered"] and not (
                    similarity is not None and similarity < params["tau"]
                ):
                    continue
                names = (row[k].split("/", 2)[2] for k in ("source_key", "target_key"))
                ends = dict(zip(("source", "target"), names, strict=True))
                rows.append({"step": row["step"], **ends, **{p: row.get(p) for p in columns[3:]}})
        return _Result(columns, rows)

    # --- the GDS side --------------------------------------------------------------------------
    def add_graph(self, checkpoint_key: str, graph: Graph) -> None:
        """What the projection of ``checkpoint_key`` yields, whatever τ it asks for (a test's
        graph, with nodes of its own; without one, the projection reads what was ingested)."""
        for name in graph.names:
            self._add_node(checkpoint_key, name)
        self.given[checkpoint_key] = graph
        self._set_projection(checkpoint_key, graph)

    def _set_projection(self, key: str, graph: Graph) -> None:
        self.graphs[key] = graph
        self.node_ids[key] = [self.id_of[(key, name)] for name in graph.names]

    def answer_gds(self, query: str, params: dict[str, Any]) -> _Result | None:
        """The answer to a GDS statement, or None when ``query`` is none."""
        if query.strip() == "RETURN gds.version()":
            if self.gds_version is None:
                raise Neo4jError._hydrate_neo4j(
                    code="Neo.ClientError.Statement.SyntaxError",
                    message="Unknown function 'gds.version' (line 1, column 8 (offset: 7))",
                )
            return _Result(["gds.version()"], [{"gds.version()": self.gds_version}])
        if query == statement("neo4j", "gds_project"):
            return self._project(params)
        for name, takes_k in PATH_STATEMENTS.items():
            if query == statement("neo4j", name):
                return self._paths(params, params["k"] if takes_k else 1)
        if query == statement("neo4j", "gds_node_names"):
            rows = [
                {"node_id": i, "name": self.names_by_id[i][1]}
                for i in params["node_ids"]
                if i in self.names_by_id
            ]
            return _Result(["node_id", "name"], rows)
        if query == statement("neo4j", "gds_written"):
            key = params["checkpoint_key"]
            rows = []
            for node_id, name in zip(
                self.node_ids.get(key, []), self.graphs[key].names, strict=True
            ):
                props = self.written.get(node_id, {})
                for degree in ("in_degree", "out_degree"):  # the statement stores them as integers
                    if props.get(degree) is not None:
                        props[degree] = int(props[degree])
                rows.append({"name": name, **{m: props.get(m) for m in METRICS}})
            rows.sort(key=lambda r: r["name"])
            return _Result(["name", *METRICS], rows)
        match = _PROCEDURE.match(query.strip())
        if match is None:
            return None
        procedure = match.group(1)
        if procedure == "gds.graph.drop":
            return self._drop(params)
        if procedure == "gds.graph.list":
            asked = params.get("graphName", params.get("graph_name"))
            names = [asked] if asked else list(self.catalog)
            rows = [
                _graph_info(n, self.graphs[self.catalog[n]]) for n in names if n in self.catalog
            ]
            for row in rows:
                row["degreeDistribution"] = {"min": 0, "max": 0, "mean": 0.0}
            return _Result([*_GRAPH_INFO_KEYS, "degreeDistribution"], rows)
        algorithm, mode = procedure.removeprefix("gds.").rsplit(".", 1)
        return self._algorithm(algorithm, mode, params["graph_name"], params["config"])

    def _project(self, params: dict[str, Any]) -> _Result:
        key, name = params["checkpoint_key"], params["graph_name"]
        graph = self.given.get(key)
        if graph is None and key in self.components:
            tau = None if params["unfiltered"] else params["tau"]
            graph = self.ingested_graph(key, tau, params["measure"])
        if graph is None or graph.n == 0:  # no row aggregated: the function returns null
            return _Result(["graph"], [{"graph": None}])
        if name in self.catalog:
            raise Neo4jError._hydrate_neo4j(
                code="Neo.ClientError.Procedure.ProcedureCallFailed",
                message=f"Graph {name} already exists",
            )
        self.catalog[name] = key
        self._set_projection(key, graph)
        result = {
            "graphName": name,
            "nodeCount": graph.n,
            "relationshipCount": int(graph.weights.size),
            "projectMillis": 3,
            "configuration": {"readConcurrency": 4},
            "query": statement("neo4j", "gds_project"),
        }
        return _Result(["graph"], [{"graph": result}])

    def _drop(self, params: dict[str, Any]) -> _Result:
        asked = params.get("graph_name", params.get("graphName"))
        rows = []
        for name in asked if isinstance(asked, list) else [asked]:
            key = self.catalog.pop(name, None)
            if key is not None:
                rows.append(_graph_info(name, self.graphs[key]))
            elif params.get("failIfMissing", True):
                raise Neo4jError._hydrate_neo4j(
                    code="Neo.ClientError.Procedure.ProcedureCallFailed",
                    message=f"Graph with name `{name}` does not exist",
                )
        return _Result(_GRAPH_INFO_KEYS, rows)

    def _catalog_graph(self, graph_name: str, weight_property: str | None) -> tuple[str, Graph]:
        """(checkpoint key, graph) of a projection an algorithm runs on, failing as GDS does for
        an unknown name or a weight property that an edgeless projection does not have."""
        key = self.catalog.get(graph_name)
        if key is None:
            raise Neo4jError._hydrate_neo4j(
                code="Neo.ClientError.Procedure.ProcedureCallFailed",
                message=f"Graph with name `{graph_name}` does not exist",
            )
        graph = self.graphs[key]
        if weight_property is not None and graph.weights.size == 0:
            raise Neo4jError._hydrate_neo4j(
                code="Neo.ClientError.Procedure.ProcedureCallFailed",
                message=f"Relationship weight property `{weight_property}` not found",
            )
        return key, graph

    def _paths(self, params: dict[str, Any], k: int) -> _Result:
        """A path statement: its MATCH of the source and sink components by key, then GDS's
        rows (:func:`gds_paths`) with the node ids turned into names."""
        columns = ["index", "totalCost", "names"]
        key, graph = self._catalog_graph(params["graph_name"], "distance")
        ends = [(params["checkpoint_key"], params[end]) for end in ("source", "sink")]
        if not all(end in self.id_of for end in ends):
            return _Result(columns, [])  # the MATCH found no row
        if params["checkpoint_key"] != key:
            raise Neo4jError._hydrate_neo4j(
                code="Neo.ClientError.Procedure.ProcedureCallFailed",
                message="Source node does not exist in the in-memory graph",
            )
        ids = self.node_ids[key]
        edges = [
            (ids[s], ids[t], projected_distance(w))
            for s, t, w in zip(
                graph.sources.tolist(), graph.targets.tolist(), graph.weights.tolist(), strict=True
            )
        ]
        source, sink = (self.id_of[end] for end in ends)
        rows = [
            {
                "index": row["index"],
                "totalCost": row["totalCost"],
                "names": [self.names_by_id[i][1] for i in row["nodeIds"]],
            }
            for row in gds_paths(ids, edges, source, sink, k)
        ]
        return _Result(columns, rows)

    def _algorithm(
        self, algorithm: str, mode: str, graph_name: str, config: dict[str, Any]
    ) -> _Result:
        key, graph = self._catalog_graph(graph_name, config.get("relationshipWeightProperty"))
        scores = gds_scores(algorithm, graph, config)
        ids = self.node_ids[key]
        if mode == "stream":
            rows = [{"nodeId": i, "score": float(v)} for i, v in zip(ids, scores, strict=True)]
            return _Result(["nodeId", "score"], rows)
        if mode != "write":
            raise NotImplementedError(f"gds.{algorithm}.{mode}")
        for node_id, value in zip(ids, scores, strict=True):
            self.written.setdefault(node_id, {})[config["writeProperty"]] = float(value)
        row = {
            "nodePropertiesWritten": graph.n,
            "preProcessingMillis": 0,
            "computeMillis": 1,
            "postProcessingMillis": 0,
            "writeMillis": 1,
            "centralityDistribution": {"min": float(scores.min()), "max": float(scores.max())},
            "configuration": config,
        }
        if algorithm == "pageRank":
            row |= {"ranIterations": 5, "didConverge": True}
        return _Result(list(row), [row])


def _set_plus(properties: dict[str, Any], update: dict[str, Any]) -> None:
    """``SET n += $update`` on a node's ``properties``: a null value removes the property."""
    for name, value in update.items():
        if value is None:
            properties.pop(name, None)
        else:
            properties[name] = value


_GRAPH_INFO_KEYS = [
    "graphName",
    "database",
    "databaseLocation",
    "configuration",
    "memoryUsage",
    "sizeInBytes",
    "nodeCount",
    "relationshipCount",
    "creationTime",
    "modificationTime",
    "schemaWithOrientation",
    "density",
]


def _graph_info(name: str, graph: Graph) -> dict[str, Any]:
    return {
        "graphName": name,
        "database": "neo4j",
        "databaseLocation": "local",
        "configuration": {},
        "memoryUsage": "1 KiB",
        "sizeInBytes": 1024,
        "nodeCount": graph.n,
        "relationshipCount": int(graph.weights.size),
        "creationTime": "2025-01-01T00:00:00Z",
        "modificationTime": "2025-01-01T00:00:00Z",
        "schemaWithOrientation": {"nodes": {}, "relationships": {}, "graphProperties": {}},
        "density": 0.0,
    }


def ingested_store(
    sweep: SweepResult, writable: bool = True, batch_size: int = 10_000, **driver_options: Any
) -> tuple[Neo4jStore, RecordingDriver]:
    """(Neo4j store on database ``atlas``, recording driver) holding ``sweep`` ingested through
    the backend, the ingest's transactions cleared (``driver_options``: the driver's)."""
    from circuitatlas.store.ingest import ingest_sweep
    from circuitatlas.store.neo4j import Neo4jStore

    driver = RecordingDriver(**driver_options)
    url = "neo4j://localhost"

    def opened(writable: bool) -> Neo4jStore:
        return Neo4jStore(
            url, writable=writable, batch_size=batch_size, driver=driver, database="atlas"
        )

    ingest_sweep(opened(True), sweep, progress=False)
    store = opened(writable)
    driver.transactions.clear()
    return store, driver


def gds_scores(algorithm: str, graph: Graph, config: dict[str, Any]) -> np.ndarray:
    """One GDS algorithm's scores on ``graph`` (node order), as GDS defines them."""
    import igraph as ig

    n = graph.n
    g = ig.Graph(n=n, edges=np.column_stack([graph.sources, graph.targets]), directed=True)
    weight_property = config.get("relationshipWeightProperty")
    values = {"weight": graph.weights, "cost": graph.costs(), None: None}[weight_property]
    if algorithm == "degree":
        orientation = config.get("orientation", "NATURAL")
        index = graph.sources if orientation == "NATURAL" else graph.targets
        contribution = np.ones(index.size) if values is None else values
        return np.bincount(index, weights=contribution, minlength=n).astype(np.float64)
    if algorithm == "betweenness":
        weights = None if values is None else values.tolist()
        return np.asarray(g.betweenness(directed=True, weights=weights), dtype=np.float64)
    if algorithm == "closeness":
        distances = np.asarray(g.distances(mode="out"), dtype=np.float64)  # [source, target]
        np.fill_diagonal(distances, np.inf)
        reached = np.isfinite(distances)
        component = reached.sum(axis=0)
        farness = np.where(reached, distances, 0.0).sum(axis=0)
        closeness = np.divide(component, farness, out=np.zeros(n), where=farness > 0)
        if config.get("useWassermanFaust", False):
            closeness *= component / max(n - 1, 1)
        return closeness
    if algorithm == "pageRank":
        d = config.get("dampingFactor", 0.85)
        w = np.ones(graph.sources.size) if values is None else values
        out = np.bincount(graph.sources, weights=w, minlength=n)
        x = np.full(n, 1.0 - d)
        for _ in range(config.get("maxIterations", 20)):
            share = np.divide(x, out, out=np.zeros(n), where=out > 0)[graph.sources] * w
            new = (1.0 - d) + d * np.bincount(graph.targets, weights=share, minlength=n)
            done = np.abs(new - x).max() <= config.get("tolerance", 1e-7)
            x = new
            if done:
                break
        scaler = str(config.get("scaler", "NONE")).lower()
        if scaler == "l1norm":
            x = x / np.abs(x).sum()
        elif scaler != "none":
            raise NotImplementedError(f"scaler {scaler}")
        return x
    raise NotImplementedError(f"gds.{algorithm}")


def projected_distance(weight: float) -> float:
    """The projection's ``distance`` of an edge: ``-log(CASE WHEN weight > 1.0 THEN 1.0 ELSE
    weight END)`` (gds_project.cypher)."""
    return -math.log(1.0 if weight > 1.0 else weight)


def gds_paths(
    node_ids: list[int], edges: list[tuple[int, int, float]], source: int, target: int, k: int
) -> list[dict[str, Any]]:
    """The rows GDS streams for the ``k`` shortest ``source`` → ``target`` paths of a projection
    with ``node_ids`` and ``edges`` (source id, target id, length of the weight property):
    Dijkstra's for k = 1, Yen's otherwise; ``index`` (in order of increasing cost),
    ``sourceNode``, ``targetNode``, ``totalCost``, ``nodeIds`` and ``costs`` (cumulative, from
    0.0); none without a path. Computed with networkx's ``shortest_simple_paths``, independently
    of the igraph code under test."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(node_ids)
    g.add_weighted_edges_from(edges, weight="length")
    assert g.number_of_edges() == len(edges)  # a DiGraph would merge parallel relationships
    try:
        found = list(itertools.islice(nx.shortest_simple_paths(g, source, target, "length"), k))
    except nx.NetworkXNoPath:
        return []
    rows = []
    for index, path in enumerate(found):
        costs = [0.0]
        for a, b in itertools.pairwise(path):
            costs.append(costs[-1] + g.edges[a, b]["length"])
        rows.append(
            {
                "index": index,
                "sourceNode": source,
                "targetNode": target,
                "totalCost": costs[-1],
                "nodeIds": list(path),
                "costs": costs,
            }
        )
    return rows


def assert_same_paths(got: PathResult, expected: PathResult) -> None:
    """Two backends' ``find_paths`` agree: the same steps, paths in the same ranks, strengths and
    distances to 1e-12, the same notes for checkpoints without a path."""
    from circuitatlas.queries.paths import PATH_COLUMNS

    assert got.steps == expected.steps
    floats = ["strength", "distance"]
    exact = [c for c in PATH_COLUMNS if c not in floats]
    pd.testing.assert_frame_equal(got.paths[exact], expected.paths[exact])
    np.testing.assert_allclose(got.paths[floats], expected.paths[floats], rtol=0, atol=1e-12)
    assert got.notes == expected.notes
