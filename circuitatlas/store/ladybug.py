"""The embedded store: a LadybugDB database file (the maintained Kùzu fork).

Writes go through ``COPY … FROM`` Arrow tables inside one transaction per batch of checkpoints
(one ``COPY`` per table for the whole batch); a killed ingest leaves the transaction
uncommitted, and LadybugDB's write-ahead log drops it on the next open. User Cypher runs on a
second, read-only handle of the same file, so it cannot write.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.store.analysis_rows import AnalysisRows
from circuitatlas.store.base import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    AlreadyStored,
    StoreBase,
)
from circuitatlas.store.rows import BatchRows, PreparedBatch, RunRecord
from circuitatlas.store.statements import statement, statements

DEFAULT_STORE = "circuitatlas.lbdb"
_WRITE_REFUSED = "Cannot execute write operations in a read-only database"
# Reads of a store written before INFLUENCES had the task-metric scores, opened read-only (a
# writable open adds the columns and tables of later schemas): the statement read instead, or
# None when the store holds nothing it would return (no CIRCUIT_EDGE table).
_UNSCORED_READS: dict[str, str | None] = {
    "edges_of_step": "edges_of_step_unscored",
    "edges_of_run": "edges_of_run_unscored",
    "ask_edge": "ask_edge_unscored",
    "path_scores": None,  # no scores: paths on them are refused with one line
}
_NO_CIRCUIT_EDGE_READS: dict[str, str | None] = {"circuit_edges": None}


def _ladybug() -> Any:
    import ladybug

    return ladybug


class LadybugStore(StoreBase):
    """A circuitatlas store in one LadybugDB file.

    ``writable=False`` opens an existing store read-only (a missing file is an error, nothing is
    created); ``writable=True`` creates the file and its tables when needed.
    """

    dialect = "ladybug"

    def __init__(self, path: str | os.PathLike[str], writable: bool = False) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self.writable = writable
        self._instead: dict[str, str | None] = {}
        self._check_path()
        if writable and self.path.exists():
            # check an existing file read-only first: a writable open rewrites the file even
            # when it is then refused (another kind of database, another schema version)
            LadybugStore(self.path, writable=False).close()
        self._db, self._conn = self._open(read_only=not writable)
        try:
            self._check_schema()
        except BaseException:
            self.close()
            raise

    def _open(self, read_only: bool) -> tuple[Any, Any]:
        lb = _ladybug()
        try:
            db = lb.Database(str(self.path), read_only=read_only)
        except RuntimeError as e:
            raise CircuitAtlasError(self._open_error(str(e))) from None
        return db, lb.Connection(db)

    # --- opening -----------------------------------------------------------------------------
    def _check_path(self) -> None:
        if self.path.is_dir():
            raise CircuitAtlasError(
                f"store {self.path}: is a directory; give a store file such as {DEFAULT_STORE}"
            )
        if not self.writable and not self.path.exists():
            raise CircuitAtlasError(
                f"store {self.path}: no such store; ingest a run first (`circuitatlas ingest`)"
            )

    def _open_error(self, message: str) -> str:
        if "not a valid" in message:
            return (
                f"store {self.path}: not a LadybugDB store (a file of another kind); "
                f"give another path"
            )
        if "lock" in message.lower():
            return f"store {self.path}: another process is writing it; wait for it to finish"
        return f"store {self.path}: cannot open ({message.splitlines()[0]})"

    def _tables(self) -> set[str]:
        frame = self._read("tables")
        return set(frame["name"])

    def _check_schema(self) -> None:
        tables = self._tables()
        if "CircuitAtlasSchema" in tables:
            found = self._read("schema_version", name=SCHEMA_NAME)
            version = int(found["version"].iloc[0]) if len(found) else None
            if version != SCHEMA_VERSION:
                raise CircuitAtlasError(
                    f"store {self.path}: written with store schema version {version}, this "
                    f"circuitatlas reads version {SCHEMA_VERSION}; use a new store path or the "
                    f"matching circuitatlas"
                )
            if self.writable:  # add what later versions declare (analytics columns)
                self._transaction(self._create_schema, False)
            else:
                self._read_older_schema(tables)
            return
        if tables:
            raise CircuitAtlasError(
                f"store {self.path}: a LadybugDB database but not a circuitatlas store "
                f"(tables {sorted(tables)[:5]}); give another path"
            )
        if self.writable:
            self._transaction(self._create_schema)

    def _read_older_schema(self, tables: set[str]) -> None:
        """Read a store opened read-only that lacks what later schemas added: the task-metric
        edge scores (read as NaN) and edge-level circuits (none)."""
        if not {"patch_effect", "eap_ig"} <= set(self._read("influences_columns")["name"]):
            self._instead.update(_UNSCORED_READS)
        if "CIRCUIT_EDGE" not in tables:
            self._instead.update(_NO_CIRCUIT_EDGE_READS)

    def _create_schema(self, new: bool = True) -> None:
        """Every statement of ``schema.cypher`` (each idempotent); a new store gets its version."""
        for text in statements(self.dialect, "schema"):
            self._conn.execute(text)
        if new:
            self._run("schema_version_write", name=SCHEMA_NAME, version=SCHEMA_VERSION)

    # --- primitives --------------------------------------------------------------------------
    def _run(self, name: str, /, **params: Any) -> Any:
        return self._conn.execute(statement(self.dialect, name), params)

    def _read(self, name: str, /, **params: Any) -> pd.DataFrame:
        instead = self._instead.get(name, name)
        if instead is None:
            return pd.DataFrame()
        return self._run(instead, **params).get_as_df()

    def _transaction(self, body: Any, *args: Any) -> Any:
        self._conn.execute("BEGIN TRANSACTION")
        try:
            out = body(*args)
        except BaseException:
            try:
                self._conn.execute("ROLLBACK")
            except RuntimeError as e:  # a failed statement has rolled the transaction back
                if "No active transaction" not in str(e):
                    raise
            raise
        self._conn.execute("COMMIT")
        return out

    # --- writing -----------------------------------------------------------------------------
    def _write_batch(self, run: RunRecord, batch: PreparedBatch) -> int:
        if not self.writable:
            raise CircuitAtlasError(f"store {self.path} was opened read-only")
        try:
            return int(
                self._transaction(self._write_statements, self._read, self._copy_rows, run, batch)
            )
        except AlreadyStored:
            return 0

    def _copy_rows(self, rows: BatchRows) -> None:
        """``COPY`` each table from an Arrow table, nodes before the relationships they join."""
        for name, frame in (
            ("copy_checkpoint", rows.checkpoints),
            ("copy_has_checkpoint", rows.has_checkpoint),
            ("copy_component", rows.components),
            ("copy_has_component", rows.has_component),
            ("copy_influences", rows.edges),
            ("copy_next", rows.next),
        ):
            if len(frame):
                self._run(name, rows=pa.Table.from_pandas(frame, preserve_index=False))

    def _write_transaction(self, body: Any) -> Any:
        return self._transaction(body, self._run)

    def _write_analysis(self, rows: AnalysisRows) -> None:
        self._transaction(self._write_analysis_rows, rows)

    def _write_analysis_rows(self, rows: AnalysisRows) -> None:
        for name, frame in (
            ("analysis_components_write", rows.components),
            ("analysis_checkpoints_write", rows.checkpoints),
        ):
            if len(frame):
                self._run(name, rows=pa.Table.from_pandas(frame, preserve_index=False))
        self._run("analysis_run_write", run_id=rows.run_id, **rows.run)

    # --- user Cypher -------------------------------------------------------------------------
    def cypher(self, query: str, **params: Any) -> pd.DataFrame:
        """Run user Cypher read-only; a statement that writes is refused and changes nothing.

        A writable store runs it on a fresh read-only handle of the same file (so it sees every
        committed write); statements that write files (``COPY … TO``, ``EXPORT DATABASE``, …),
        which a read-only database still runs, are refused before they reach it.
        """
        _refuse_file_writes(query)
        missing = sorted(set(_PARAMETER.findall(_without_literals(query))) - set(params))
        if missing:
            raise CircuitAtlasError(
                f"query: no value for ${', $'.join(missing)}; pass --param {missing[0]}=VALUE"
            )
        db, conn = self._open(read_only=True) if self.writable else (None, self._conn)
        try:
            return conn.execute(query, params).get_as_df()
        except RuntimeError as e:
            message = str(e).splitlines()[0]
            if _WRITE_REFUSED in message:
                raise CircuitAtlasError(_READ_ONLY) from None
            raise CircuitAtlasError(f"query: {message}") from None
        finally:
            if db is not None:
                conn.close()
                db.close()

    def close(self) -> None:
        """Close the connection and the database."""
        for handle in (getattr(self, "_conn", None), getattr(self, "_db", None)):
            if handle is not None:
                handle.close()
        self._conn = self._db = None


_READ_ONLY = (
    "query: the store is opened read-only for user Cypher; statements that write (CREATE, "
    "MERGE, SET, DELETE, COPY, EXPORT, …) are refused and nothing was changed"
)
_LITERALS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*[\s\S]*?\*/")
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_FILE_WRITES = re.compile(
    r"\bCOPY\b[\s\S]*\bTO\b|\b(?:EXPORT|IMPORT)\s+DATABASE\b|\bINSTALL\b|\bLOAD\s+EXTENSION\b"
    r"|\bATTACH\b",
    re.IGNORECASE,
)


def _without_literals(query: str) -> str:
    """``query`` with string literals, quoted names and comments blanked out."""
    return _LITERALS.sub(" ", query)


def _refuse_file_writes(query: str) -> None:
    if _FILE_WRITES.search(_without_literals(query)):
        raise CircuitAtlasError(_READ_ONLY)
