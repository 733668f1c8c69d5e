"""The production store: Neo4j through the official driver.

Writes: one managed transaction per batch of checkpoints (``session.execute_write``, so the
driver retries transient failures), a batch of more than ``MAX_TRANSACTION_EDGES`` edges split
into several of whole checkpoints; each table sent as ``UNWIND $rows`` batches of
``batch_size`` rows, the edges column by column per checkpoint. Constraints are created
idempotently on a writable open. Reads and user Cypher run in READ access mode, so Neo4j itself
refuses a write.

Analytics: centralities and strongest paths are computed in the database with the Graph Data
Science library (:mod:`circuitatlas.store.gds`, through the official ``graphdatascience`` client
on this store's driver) and centralities, for an analysis that writes, stored there by GDS
itself; the rest of the analysis is written back in one managed transaction.

Credentials come from ``NEO4J_USERNAME`` / ``NEO4J_PASSWORD`` (or ``user:password@`` in the URL)
and never appear in output: messages show the URL without its user info.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.network import Graph
from circuitatlas.graph.paths import FoundPath, PathSettings
from circuitatlas.store.analysis_rows import AnalysisRows
from circuitatlas.store.base import SCHEMA_NAME, SCHEMA_VERSION, AlreadyStored, StoreBase
from circuitatlas.store.rows import (
    EDGE_PROPERTIES,
    BatchRows,
    PreparedBatch,
    RunRecord,
    checkpoint_key,
    plain_records,
)
from circuitatlas.store.statements import statement, statements

if TYPE_CHECKING:
    from circuitatlas.store.gds import Gds

T = TypeVar("T")
DEFAULT_BATCH_SIZE = 10_000
# Edges per write transaction at most (a checkpoint is never split): Neo4j holds a transaction's
# changes on the heap, about 1–3 KiB per new relationship with its properties, and refuses one
# past dbms.memory.transaction.total.max (70% of a 2 GiB heap). Each checkpoint is still written
# whole or not at all, and an ingest resumes by checkpoint.
MAX_TRANSACTION_EDGES = 100_000
READ, WRITE = "READ", "WRITE"  # the driver's access-mode values (neo4j.READ_ACCESS/WRITE_ACCESS)
_ACCESS_MODE_CODE = "Neo.ClientError.Statement.AccessMode"
# Driver timeouts, in seconds. The driver's defaults (30 s of transaction retries, 30 s to
# connect, 60 s to get a connection from the pool) keep a command silent for a minute or more
# once the server is gone. Ours: retries still outlast what is really transient (a deadlock
# retried, a cluster electing a leader: a few seconds), and the retry loop's last backoff
# (about 8 s) ends a lost server's command within about 20 s; connecting (TCP, TLS, Bolt
# handshake) takes milliseconds to a server that answers, even across continents, so a
# host that does not answer within 10 s is reported as unreachable; a connection from the pool
# (one session at a time here, so never exhausted) may take that connect time and a retry.
DRIVER_CONFIG = {
    "max_transaction_retry_time": 10.0,
    "connection_timeout": 10.0,
    "connection_acquisition_timeout": 20.0,
}
# The driver logs connection failures itself; we report them as one line instead.
logging.getLogger("neo4j").addHandler(logging.NullHandler())


def redact(url: str) -> str:
    """``url`` without user info (``neo4j://user:pw@host`` → ``neo4j://host``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def credentials(url: str) -> tuple[str, str | None]:
    """User and password: from the URL's user info, else ``NEO4J_USERNAME``/``NEO4J_PASSWORD``."""
    parts = urlsplit(url)
    user = parts.username or os.environ.get("NEO4J_USERNAME") or "neo4j"
    password = parts.password or os.environ.get("NEO4J_PASSWORD")
    return user, password


def batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """``rows`` in consecutive slices of at most ``size``."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Neo4jStore(StoreBase):
    """A circuitatlas store in a Neo4j database.

    ``driver`` may be given (tests pass a recording driver); otherwise one is made from ``url``
    and the environment, and connectivity is checked at once.
    """

    dialect = "neo4j"
    computes_in_database = True

    def __init__(
        self,
        url: str,
        writable: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        driver: Any = None,
        database: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise CircuitAtlasError(f"--batch-size {batch_size}: give a positive number of rows")
        self.url = redact(url)
        self.writable = writable
        self.batch_size = batch_size
        self.database = database or os.environ.get("NEO4J_DATABASE") or None
        self._user = credentials(url)[0]
        self._gds: Gds | None = None  # the GDS client, made on first use
        self._driver = driver if driver is not None else self._connect(url)
        try:
            self._check_schema()
        except BaseException:
            self.close()
            raise

    # --- opening -----------------------------------------------------------------------------
    def _connect(self, url: str) -> Any:
        import neo4j

        user, password = credentials(url)
        auth = (user, password) if password is not None else None
        try:
            driver = neo4j.GraphDatabase.driver(redact(url), auth=auth, **DRIVER_CONFIG)
        except (ValueError, neo4j.exceptions.ConfigurationError) as e:
            raise CircuitAtlasError(f"store {self.url}: not a usable Neo4j URL ({e})") from None
        try:
            driver.verify_connectivity()
        except BaseException as e:
            driver.close()
            raise self._error(e) from None
        return driver

    def _error(self, e: BaseException) -> BaseException:
        """A driver error as one clear line (never with credentials); others unchanged."""
        import neo4j.exceptions as ne

        if isinstance(e, ne.AuthError):
            return CircuitAtlasError(
                f"Neo4j at {self.url} refused the credentials of user {self._user!r}; "
                f"set NEO4J_USERNAME and NEO4J_PASSWORD"
            )
        if isinstance(e, ne.ServiceUnavailable | ne.SessionExpired | OSError):
            return CircuitAtlasError(
                f"cannot reach Neo4j at {self.url}; start it (make neo4j, or docker compose "
                f"-f docker/compose.yml up -d) or check the URL"
            )
        code = getattr(e, "code", None) or ""
        if code.endswith("DatabaseNotFound"):
            return CircuitAtlasError(
                f"Neo4j at {self.url} has no database {self.database!r}; set NEO4J_DATABASE"
            )
        if code == _ACCESS_MODE_CODE:
            return CircuitAtlasError(
                "query: user Cypher runs in a READ session; statements that write (CREATE, "
                "MERGE, SET, DELETE, …) are refused by Neo4j and nothing was changed"
            )
        if isinstance(e, ne.Neo4jError):
            message = (getattr(e, "message", None) or str(e)).splitlines()[0]
            return CircuitAtlasError(f"Neo4j at {self.url}: {message}")
        return e

    def _check_schema(self) -> None:
        found = self._read("schema_version", name=SCHEMA_NAME)
        if len(found):
            version = found["version"].iloc[0]
            if version != SCHEMA_VERSION:
                raise CircuitAtlasError(
                    f"Neo4j at {self.url}: written with store schema version {version}, this "
                    f"circuitatlas reads version {SCHEMA_VERSION}; use another database "
                    f"(NEO4J_DATABASE) or the matching circuitatlas"
                )
            return
        if self.writable:
            for text in statements(self.dialect, "schema"):
                self._session_call(WRITE, _consume, text, {})
            self._session_call(
                WRITE,
                _consume,
                statement(self.dialect, "schema_version_write"),
                {"name": SCHEMA_NAME, "version": SCHEMA_VERSION},
            )

    # --- primitives --------------------------------------------------------------------------
    def _session_call(self, mode: str, work: Any, *args: Any) -> Any:
        """Run ``work(tx, *args)`` in a managed transaction of ``mode`` (retried by the driver)."""
        try:
            with self._driver.session(database=self.database, default_access_mode=mode) as s:
                run = s.execute_read if mode == READ else s.execute_write
                return run(work, *args)
        except AlreadyStored:
            raise
        except Exception as e:
            raise self._error(e) from None

    def _read(self, name: str, /, **params: Any) -> pd.DataFrame:
        return self._session_call(READ, _fetch, statement(self.dialect, name), params)

    # --- writing -----------------------------------------------------------------------------
    def _write_batch(self, run: RunRecord, batch: PreparedBatch) -> int:
        if not self.writable:
            raise CircuitAtlasError(f"store {self.url} was opened read-only")
        written = 0
        for part in batch.parts(MAX_TRANSACTION_EDGES):
            with contextlib.suppress(AlreadyStored):  # every checkpoint of it stored already
                written += int(self._session_call(WRITE, self._write_in_transaction, run, part))
        return written

    def _write_in_transaction(self, tx: Any, run: RunRecord, batch: PreparedBatch) -> int:
        def run_statement(name: str, /, **params: Any) -> pd.DataFrame:
            return _fetch(tx, statement(self.dialect, name), params)

        def write_bulk(rows: BatchRows) -> None:
            checkpoints = plain_records(rows.checkpoints)
            self._unwind(tx, "checkpoints_write", checkpoints, run_id=run.run_id)
            component_rows = [
                {"checkpoint_key": ck, "properties": props}
                for ck, props in zip(
                    rows.has_component.from_key, plain_records(rows.components), strict=True
                )
            ]
            self._unwind(tx, "components_write", component_rows)
            self._write_edges(tx, rows.edges)
            self._unwind(tx, "next_write", plain_records(rows.next))

        return self._write_statements(run_statement, write_bulk, run, batch)

    def _write_edges(self, tx: Any, edges: pd.DataFrame) -> None:
        """The batch's edges, per checkpoint in chunks of ``batch_size``, sent column by column.

        Raises (so the transaction rolls back) unless Neo4j created every edge of a chunk.
        """
        text = statement(self.dialect, "edges_write")
        for (run_id, step), group in edges.groupby(["run_id", "step"], sort=False):
            ends = pd.concat([group["source_key"], group["target_key"]], ignore_index=True)
            positions, keys = pd.factorize(ends)
            source, target = positions[: len(group)], positions[len(group) :]
            columns = {p: group[p].to_numpy(np.float64) for p in EDGE_PROPERTIES}
            for start in range(0, len(group), self.batch_size):
                part = slice(start, start + self.batch_size)
                params = {
                    "keys": _Quiet(keys.tolist()),
                    "run_id": run_id,
                    "step": int(step),
                    "source": _Quiet(source[part].tolist()),
                    "target": _Quiet(target[part].tolist()),
                    **{p: _column(values[part]) for p, values in columns.items()},
                }
                created = int(tx.run(text, params).data()[0]["created"])
                if created != len(params["source"]):
                    raise CircuitAtlasError(
                        f"Neo4j at {self.url}: checkpoint {run_id}/{step}: {created} of "
                        f"{len(params['source'])} edges created (a component key is missing)"
                    )

    def _unwind(self, tx: Any, name: str, rows: list[dict[str, Any]], **params: Any) -> None:
        text = statement(self.dialect, name)
        for chunk in batches(rows, self.batch_size):
            tx.run(text, {**params, "rows": _Quiet(chunk)}).consume()

    # --- analytics ---------------------------------------------------------------------------
    def _graph_edges(self, checkpoint_key: str, tau: float, measure: str) -> pd.DataFrame:
        """The checkpoint's graph edges, received as one row of three lists (``graph_edges``)."""
        row = self._read(
            "graph_edges", checkpoint_key=checkpoint_key, tau=tau, measure=measure
        ).iloc[0]
        return pd.DataFrame(
            {"source": row["sources"], "target": row["targets"], "weight": row["weights"]}
        )

    def centralities_of(
        self, run_id: str, step: int, graph: Graph, tau: float, measure: str, write: bool
    ) -> pd.DataFrame:
        """``name`` + ``METRICS`` of one checkpoint at ``tau``, computed in Neo4j with GDS.

        ``graph`` (the same graph, read by the caller) is not used: GDS projects it from the
        database. With ``write`` GDS also stores every metric on the ``Component`` nodes.
        """
        if write and not self.writable:
            raise CircuitAtlasError(f"store {self.url} was opened read-only")
        key = checkpoint_key(run_id, step)
        return self._in_gds(lambda gds: gds.centralities(key, float(tau), measure, write))

    def strongest_paths(self, run_id: str, step: int, settings: PathSettings) -> list[FoundPath]:
        """The ``settings.k`` strongest paths of one checkpoint, ranked, computed in Neo4j with
        GDS (Dijkstra for k = 1, Yen's k shortest paths otherwise) on its projection. On a
        task-metric score the shares are computed here, as the embedded store does
        (:meth:`path_edges`), and projected as distances."""
        key = checkpoint_key(run_id, step)
        distances = None
        if settings.scored:
            distances = self.path_edges(run_id, step, settings.measure).distances_by_name()
        return self._in_gds(lambda gds: gds.strongest_paths(key, settings, distances))

    def _in_gds(self, work: Callable[[Gds], T]) -> T:
        """``work(client)`` with the GDS client, its errors as one clear line."""
        try:
            return work(self._gds_client())
        except CircuitAtlasError:
            raise
        except Exception as e:
            raise self._gds_error(e) from None

    def _gds_client(self) -> Gds:
        if self._gds is None:
            from circuitatlas.store.gds import Gds

            self._gds = Gds(self._driver, self.database)
        return self._gds

    def _gds_error(self, e: BaseException) -> BaseException:
        """An error of the GDS client as one clear line (a server without GDS named as such)."""
        from circuitatlas.store.gds import NO_GDS, gds_missing, unwrap

        e = unwrap(e)
        if gds_missing(e):
            return CircuitAtlasError(f"Neo4j at {self.url} {NO_GDS}")
        return self._error(e)

    def begin_analysis(self, run_id: str) -> None:
        """Mark the run's stored analysis incomplete (its settings and every checkpoint's τ
        removed, in one transaction) before GDS writes centralities checkpoint by checkpoint."""
        if not self.writable:
            raise CircuitAtlasError(f"store {self.url} was opened read-only")
        self._in_gds(lambda gds: None)  # a server without GDS fails here, with nothing cleared
        self._session_call(
            WRITE, _consume, statement(self.dialect, "analysis_clear"), {"run_id": run_id}
        )

    def _write_analysis(self, rows: AnalysisRows) -> None:
        self._session_call(WRITE, self._write_analysis_in_transaction, rows)

    def _write_analysis_in_transaction(self, tx: Any, rows: AnalysisRows) -> None:
        for name, frame in (
            ("analysis_components_write", rows.components),
            ("analysis_checkpoints_write", rows.checkpoints),
        ):
            records = [
                {"key": record.pop("key"), "properties": record} for record in plain_records(frame)
            ]
            self._unwind(tx, name, records)
        properties = {k: _plain(v) for k, v in rows.run.items()}
        _consume(
            tx,
            statement(self.dialect, "analysis_run_write"),
            {"run_id": rows.run_id, "properties": properties},
        )

    def _write_transaction(self, body: Any) -> Any:
        if not self.writable:
            raise CircuitAtlasError(f"store {self.url} was opened read-only")

        def work(tx: Any) -> Any:
            return body(lambda name, **params: _consume(tx, statement(self.dialect, name), params))

        return self._session_call(WRITE, work)

    # --- user Cypher -------------------------------------------------------------------------
    def cypher(self, query: str, **params: Any) -> pd.DataFrame:
        """Run user Cypher in a READ session; Neo4j refuses writes and nothing changes."""
        return self._session_call(READ, _fetch, query, params)

    def close(self) -> None:
        """Close the GDS client and the driver."""
        gds = getattr(self, "_gds", None)
        if gds is not None:
            self._gds = None
            gds.close()
        driver = getattr(self, "_driver", None)
        if driver is not None:
            driver.close()
            self._driver = None


def _fetch(tx: Any, query: str, params: dict[str, Any]) -> pd.DataFrame:
    """Run ``query`` in ``tx``; rows as a frame (nodes and relationships as property dicts)."""
    result = tx.run(query, params)
    keys = list(result.keys())
    return pd.DataFrame(result.data(), columns=keys)


def _consume(tx: Any, query: str, params: dict[str, Any]) -> None:
    tx.run(query, params).consume()


class _Quiet(list[Any]):
    """A parameter list with a short ``repr``, packed exactly as a list.

    The driver formats a debug line of every statement, the ``repr`` of all its parameters, even
    when nothing is logged; for the bulk rows that took as long as packing them.
    """

    def __repr__(self) -> str:
        return f"[{len(self)} values]"


def _column(values: np.ndarray) -> list[float | None]:
    """A float column as a parameter list (NaN → None, so the property is not set)."""
    nan = np.isnan(values)
    if not nan.any():
        return _Quiet(values.tolist())
    if nan.all():
        return _Quiet([None] * len(values))
    return _Quiet(None if gone else v for v, gone in zip(values.tolist(), nan, strict=True))


def _plain(value: Any) -> Any:
    """A parameter value as plain Python (numpy scalars and arrays, lists, NaN → None)."""
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value
