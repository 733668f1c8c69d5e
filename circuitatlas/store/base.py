"""The one seam between the math and the databases: the ``GraphStore`` protocol.

Both backends (embedded LadybugDB, Neo4j) store the schema of the design note and answer the same
reads with the same frames; everything above this module is backend-agnostic.

Keys: a checkpoint is ``"{run_id}/{step}"``, a component ``"{run_id}/{step}/{name}"`` (the run id
is hex and the step an integer, so the key is unique whatever the name holds).

Frames returned by the reads:

* ``runs()``: ``RUN_COLUMNS``;
* ``checkpoints(run_id)``: ``step, loss, metric`` (and any analytics properties written later);
* ``components(run_id, step)``: ``step, name, kind, layer, head, effect, prev_token_score,
  induction_score`` (and any analytics properties);
* ``edges(run_id, step, tau)``: ``step, source, target, similarity, weight, std,
  direct_similarity, direct_weight, direct_std, patch_effect, eap_ig`` (the task-metric scores NaN
  where not computed; Neo4j stores no null property, the embedded store a null: both read NaN);
* ``circuits(run_id)``: ``CIRCUIT_COLUMNS`` (in that order, whatever the backend), then any other
  stored property alphabetically;
* ``circuit_edges(run_id, key)``: ``CIRCUIT_EDGE_COLUMNS``, by circuit and rank.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.centrality import centralities
from circuitatlas.graph.network import MEASURES, Graph
from circuitatlas.graph.paths import (
    SCORE_INGEST,
    SCORES,
    CheckpointEdges,
    FoundPath,
    PathSettings,
    k_strongest,
)
from circuitatlas.ingest.contract import CheckpointFrames
from circuitatlas.store.analysis_rows import AnalysisRows
from circuitatlas.store.circuit_rows import (
    CIRCUIT_COLUMNS,  # noqa: F401 (re-exported: the column order of circuits())
    CIRCUIT_EDGE_COLUMNS,
    circuit_frame,
    circuit_parts,
    node_frame,
)
from circuitatlas.store.rows import (
    CHECKPOINT_COLUMNS,
    COMPONENT_FRAME_COLUMNS,
    EDGE_FRAME_COLUMNS,
    EDGE_PROPERTIES,
    BatchRows,
    PreparedBatch,
    RunRecord,
    checkpoint_key,
    prepare_batch,
)

SCHEMA_NAME = "circuitatlas"
SCHEMA_VERSION = 1

RUN_COLUMNS = [
    "run_id",
    "model",
    "task",
    "ablation",
    "n_prompts",
    "seq_len",
    "seed",
    "n_checkpoints",
    "n_planned",
    "created_at",
    "version",
]
_KIND_ORDER = {"input": 0, "attn_head": 1, "mlp": 2, "logits": 3}


class AlreadyStored(Exception):
    """Raised inside a checkpoint's transaction when its step is stored already (rolls back)."""


@runtime_checkable
class GraphStore(Protocol):
    """A store of swept runs (see the module docstring for the frames)."""

    url: str

    def runs(self) -> pd.DataFrame:
        """One row per run."""
        ...

    def checkpoints(self, run_id: str) -> pd.DataFrame:
        """The run's stored checkpoints, by step."""
        ...

    def components(self, run_id: str, step: int | None = None) -> pd.DataFrame:
        """Components of the run (of one step when given)."""
        ...

    def edges(
        self, run_id: str, step: int | None = None, tau: float | None = None, measure: str = "total"
    ) -> pd.DataFrame:
        """INFLUENCES edges; at ``tau`` only those whose ``measure`` similarity is below it."""
        ...

    def cypher(self, query: str, **params: Any) -> pd.DataFrame:
        """Run read-only user Cypher; values only as parameters."""
        ...

    def stored_steps(self, run_id: str) -> list[int]:
        """Steps of the run that are wholly in the store."""
        ...

    def write_checkpoints(self, run: RunRecord, batch: list[CheckpointFrames]) -> int:
        """Write checkpoints in one transaction; returns how many were not stored yet."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class StoreBase(ABC):
    """Reads and the write protocol shared by both backends.

    A backend provides ``_read`` (run a named read statement, rows as a frame or dicts) and
    ``_write_batch`` (a prepared batch of checkpoints in one transaction); the rest is here, once.
    """

    dialect: str
    url: str

    # --- what a backend provides -------------------------------------------------------------
    @abstractmethod
    def _read(self, name: str, /, **params: Any) -> pd.DataFrame:
        """Run the named read statement; its rows as a frame (columns as the statement names)."""

    @abstractmethod
    def _write_batch(self, run: RunRecord, batch: PreparedBatch) -> int:
        """In one transaction, :meth:`_write_statements` with the backend's bulk writer."""

    @abstractmethod
    def _write_analysis(self, rows: AnalysisRows) -> None:
        """Write an analysis's rows in one transaction (see :meth:`write_analysis`)."""

    @abstractmethod
    def _write_transaction(self, body: Callable[[Callable[..., Any]], Any]) -> Any:
        """``body(run)`` inside one write transaction; ``run(name, **params)`` runs a named
        statement in it."""

    @abstractmethod
    def cypher(self, query: str, **params: Any) -> pd.DataFrame:
        """Run read-only user Cypher."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    # --- shared ------------------------------------------------------------------------------
    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_checkpoint(self, run: RunRecord, frames: CheckpointFrames) -> bool:
        """Write one checkpoint whole; False when it was stored already."""
        return self.write_checkpoints(run, [frames]) == 1

    def write_checkpoints(self, run: RunRecord, batch: list[CheckpointFrames]) -> int:
        """Validate, then write ``batch`` in one transaction; returns how many were new.

        The whole batch is validated and keyed first (:func:`prepare_batch`), so bad input raises
        before anything is written. Checkpoints already stored are skipped, so writing the same
        batch again changes nothing.
        """
        return self._write_batch(run, prepare_batch(run.run_id, batch))

    @staticmethod
    def _write_statements(
        run_statement: Callable[..., pd.DataFrame],
        write_bulk: Callable[[BatchRows], None],
        run: RunRecord,
        batch: PreparedBatch,
    ) -> int:
        """The statements that write a batch, in order, inside the caller's transaction.

        ``run_statement(name, **params)`` runs a named statement and ``write_bulk(rows)`` writes
        the batch's nodes and relationships (COPY or UNWIND batches). The Run is written first:
        in Neo4j that takes its write lock, so writers of one run (shards) see each other's
        checkpoints when they plan ``NEXT``. Raises :class:`AlreadyStored` (roll back) when every
        checkpoint of the batch is stored already.
        """
        run_statement("run_merge", **run.parameters())
        found = run_statement("checkpoint_steps", run_id=run.run_id)
        stored = [int(s) for s in found["step"]] if len(found) else []
        rows = batch.rows(stored)
        if rows.n_checkpoints == 0:
            raise AlreadyStored
        write_bulk(rows)
        for key in rows.next_unlink:
            run_statement("next_unlink", from_key=key)
        for from_key, to_key in rows.next_link:
            run_statement("next_link", from_key=from_key, to_key=to_key)
        run_statement("run_count", run_id=run.run_id)
        return rows.n_checkpoints

    def read_named(self, name: str, /, **params: Any) -> pd.DataFrame:
        """Run the named read statement ``cypher/{dialect}/NAME.cypher`` with ``params``."""
        return self._read(name, **params)

    def stored_steps(self, run_id: str) -> list[int]:
        """Steps of the run that are wholly in the store (each is written in one transaction)."""
        frame = self._read("checkpoint_steps", run_id=run_id)
        return [int(s) for s in frame["step"]] if len(frame) else []

    def runs(self) -> pd.DataFrame:
        """One row per run: ``RUN_COLUMNS``."""
        frame = self._read("runs")
        if frame.empty:
            return pd.DataFrame(columns=RUN_COLUMNS)
        frame["n_planned"] = [len(p) if p is not None else 0 for p in frame.pop("planned_steps")]
        return frame[RUN_COLUMNS].reset_index(drop=True)

    def run_config(self, run_id: str) -> dict[str, Any]:
        """The configuration the run was swept with (raises for an unknown run id)."""
        frame = self._read("run_config", run_id=run_id)
        if frame.empty:
            known = self.runs().run_id.tolist()
            hint = f"known runs: {', '.join(known)}" if known else "the store holds no run yet"
            raise CircuitAtlasError(
                f"unknown run {run_id!r} in {self.url} ({hint}; see `circuitatlas runs`)"
            )
        return json.loads(frame["config"].iloc[0])

    def counts(self, run_id: str) -> dict[str, int]:
        """How many checkpoints, components and edges of the run are stored."""
        self.run_config(run_id)
        row = self._read("run_counts", run_id=run_id).iloc[0]
        return {k: int(row[k]) for k in ("checkpoints", "components", "edges")}

    def checkpoints(self, run_id: str) -> pd.DataFrame:
        """The run's stored checkpoints: ``step, loss, metric`` and analytics properties."""
        self.run_config(run_id)
        return node_frame(
            self._read("checkpoints", run_id=run_id)["checkpoint"], CHECKPOINT_COLUMNS
        )

    def components(self, run_id: str, step: int | None = None) -> pd.DataFrame:
        """Components of the run, or of one stored step."""
        if step is None:
            self.run_config(run_id)
            column = self._read("components_of_run", run_id=run_id)["component"]
        else:
            self.check_step(run_id, step)
            key = checkpoint_key(run_id, step)
            column = self._read("components_of_step", checkpoint_key=key)["component"]
        frame = node_frame(column, COMPONENT_FRAME_COLUMNS).astype({"head": "Int64"})
        order = frame.assign(_kind=frame.kind.map(_KIND_ORDER))
        order = order.sort_values(["step", "layer", "_kind", "head"], kind="stable")
        return frame.loc[order.index].reset_index(drop=True)

    def edges(
        self, run_id: str, step: int | None = None, tau: float | None = None, measure: str = "total"
    ) -> pd.DataFrame:
        """INFLUENCES edges of the run (or one step); at ``tau`` only similarity < ``tau``.

        ``measure`` picks which similarity the threshold reads: ``total`` (the default, the
        source paper's) or ``direct``.
        """
        if measure not in MEASURES:
            raise CircuitAtlasError(f"measure {measure!r}: give one of {', '.join(MEASURES)}")
        if tau is not None and not math.isfinite(tau):
            raise CircuitAtlasError(f"tau {tau}: give a finite number (or none for every edge)")
        params = {
            "measure": measure,
            "unfiltered": tau is None,
            "tau": float(tau) if tau is not None else 0.0,
        }
        if step is None:
            self.run_config(run_id)
            frame = self._read("edges_of_run", run_id=run_id, **params)
        else:
            self.check_step(run_id, step)
            key = checkpoint_key(run_id, step)
            frame = self._read("edges_of_step", checkpoint_key=key, **params)
        types = {"step": "int64", **dict.fromkeys(EDGE_PROPERTIES, "float64")}
        if frame.empty:
            return pd.DataFrame(columns=EDGE_FRAME_COLUMNS).astype(types)
        # a property no edge has (Neo4j: never set; a store read before the scores existed) is
        # a column of NaN, as the embedded store's nulls are
        return frame.reindex(columns=EDGE_FRAME_COLUMNS).astype(types).reset_index(drop=True)

    # --- analytics ---------------------------------------------------------------------------
    #: True when :meth:`centralities_of` computes (and with ``write`` stores) the centralities in
    #: the database itself; the write-back then leaves them out.
    computes_in_database = False

    def analysis_graph(self, run_id: str, step: int, tau: float, measure: str) -> Graph:
        """The graph of one stored checkpoint at ``tau`` (every component; edges whose
        ``measure`` similarity is below ``tau`` and whose weight is positive)."""
        key = checkpoint_key(run_id, step)
        nodes = self._read("component_names", checkpoint_key=key)
        edges = self._graph_edges(key, tau, measure)
        return Graph.from_edges(nodes["name"].tolist(), edges, ids=nodes["id"].tolist())

    def _graph_edges(self, checkpoint_key: str, tau: float, measure: str) -> pd.DataFrame:
        """``source, target, weight`` (ends as ``component_names``' ids) of ``graph_edges``, a
        row per edge; a backend whose statement returns columns overrides this."""
        return self._read("graph_edges", checkpoint_key=checkpoint_key, tau=tau, measure=measure)

    def centralities_of(
        self, run_id: str, step: int, graph: Graph, tau: float, measure: str, write: bool
    ) -> pd.DataFrame:
        """``name`` + ``METRICS`` of one checkpoint's ``graph`` (computed here with igraph).

        A backend that computes in the database (Neo4j with GDS) overrides this, reads the
        checkpoint from the database instead of ``graph`` and, with ``write``, stores the values.
        """
        return centralities(graph)

    def begin_analysis(self, run_id: str) -> None:  # noqa: B027 (a hook; most backends need none)
        """Called before an analysis that writes: a backend that writes centralities as it
        computes them marks the run's stored analysis as incomplete here."""

    def write_analysis(self, rows: AnalysisRows) -> None:
        """Write an analysis back (component, checkpoint and run properties) in one transaction."""
        if not getattr(self, "writable", False):
            raise CircuitAtlasError(f"store {self.url} was opened read-only")
        self._write_analysis(rows)

    # --- pathfinding -------------------------------------------------------------------------
    def path_edges(self, run_id: str, step: int, measure: str) -> CheckpointEdges:
        """Every stored edge of one checkpoint with its ``measure`` weight and similarity; on a
        task-metric score (``SCORES``) its share of its target's total absolute score, computed
        here for every backend (raises when the checkpoint has no such score)."""
        key = checkpoint_key(run_id, step)
        nodes = self._read("component_names", checkpoint_key=key)
        if measure not in SCORES:
            edges = self._read("path_edges", checkpoint_key=key, measure=measure)
            return CheckpointEdges.from_frames(nodes, edges)
        edges = self._read("path_scores", checkpoint_key=key, measure=measure)
        scores = edges["score"] if "score" in edges else pd.Series(dtype="float64")
        if not scores.astype("float64").notna().any():
            raise CircuitAtlasError(
                f"run {run_id} has no {SCORES[measure]} scores; re-ingest with --edge-scores "
                f"{SCORE_INGEST[measure]}"
            )
        return CheckpointEdges.from_scores(nodes, edges)

    def strongest_paths(self, run_id: str, step: int, settings: PathSettings) -> list[FoundPath]:
        """The ``settings.k`` strongest paths of one checkpoint, ranked (computed here with
        igraph; a backend that computes in the database overrides this)."""
        graph = self.path_edges(run_id, step, settings.measure).graph(settings.tau)
        return k_strongest(graph, settings.source, settings.sink, settings.k)

    def write_circuits(self, circuits: list[dict[str, Any]]) -> None:
        """Store circuits in one transaction, each replacing a stored one of its key whole (its
        links and CIRCUIT_EDGE relationships too).

        A circuit is a dict of the ``circuit_create`` parameters (those of one kind of circuit
        only, the paths' ``source`` … ``strengths`` and the edge circuits' ``kind`` … ``n_edges``,
        null when absent) plus ``component_keys`` (the keys of its
        components) and ``edge_keys``: for an edge-level circuit a list of
        ``{"source_key", "target_key", "score", "rank"}`` (component keys; empty or absent for a
        paths circuit), each end among ``component_keys``. Scores (``edge_scores`` and each
        edge's) are numbers, never null: a circuit's edges are ranked by them.
        """
        if not getattr(self, "writable", False):
            raise CircuitAtlasError(f"store {self.url} was opened read-only")
        prepared = [circuit_parts(c) for c in circuits]

        def body(run: Callable[..., Any]) -> None:
            for properties, members, edges in prepared:
                key = properties["key"]
                run("circuit_delete", key=key)
                run("circuit_create", **properties)
                run("circuit_members", key=key, component_keys=members)
                if edges:  # an empty list has no type for LadybugDB to bind
                    run(
                        "circuit_edges_write",
                        key=key,
                        run_id=properties["run_id"],
                        step=properties["step"],
                        edges=edges,
                    )

        self._write_transaction(body)

    def circuits(self, run_id: str) -> pd.DataFrame:
        """The run's stored circuits, by step: ``CIRCUIT_COLUMNS`` in that order (null where a
        circuit has no such property), then any other stored property alphabetically."""
        self.run_config(run_id)
        frame = self._read("circuits_of_run", run_id=run_id)
        return circuit_frame(frame["circuit"] if len(frame) else pd.Series(dtype=object))

    def circuit_edges(self, run_id: str, key: str | None = None) -> pd.DataFrame:
        """The edges of the run's edge-level circuits (of circuit ``key`` when given):
        ``CIRCUIT_EDGE_COLUMNS``, by circuit and rank."""
        self.run_config(run_id)
        frame = self._read("circuit_edges", run_id=run_id, every=key is None, key=key or "")
        types = {"step": "int64", "score": "float64", "rank": "int64"}
        if frame.empty:
            return pd.DataFrame(columns=CIRCUIT_EDGE_COLUMNS).astype(types)
        return frame[CIRCUIT_EDGE_COLUMNS].astype(types).reset_index(drop=True)

    def check_step(self, run_id: str, step: int) -> None:
        """Raise a one-line error unless ``step`` is stored for the run."""
        steps = self.stored_steps(run_id)
        if int(step) not in steps:
            self.run_config(run_id)  # an unknown run is the clearer message
            shown = ", ".join(map(str, steps[:8])) + (" …" if len(steps) > 8 else "")
            raise CircuitAtlasError(f"step {step} is not stored for run {run_id} (steps: {shown})")
