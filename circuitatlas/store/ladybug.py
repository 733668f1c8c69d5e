"""The embedded store: a LadybugDB database file (the maintained Kùzu fork).

Writes go through ``COPY … FROM`` Arrow tables inside one transaction per checkpoint; a killed
ingest leaves the transaction uncommitted, and LadybugDB's write-ahead log drops it on the next
open. User Cypher runs on a second, read-only handle of the same file, so it cannot write.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.store.base import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    AlreadyStored,
    StoreBase,
)
from circuitatlas.store.rows import BatchRows, CheckpointRows, RunRecord
from circuitatlas.store.statements import statement, statements

DEFAULT_STORE = "circuitatlas.lbdb"
_WRITE_REFUSED = "Cannot execute write operations in a read-only database"


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
        self._check_path()
        lb = _ladybug()
        try:
            self._db = lb.Database(str(self.path), read_only=not writable)
        except RuntimeError as e:
            raise CircuitAtlasError(self._open_error(str(e))) from None
        self._conn = lb.Connection(self._db)
        self._ro: tuple[Any, Any] | None = None
        try:
            self._check_schema()
        except BaseException:
            self.close()
            raise

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
        frame = self._conn.execute("CALL show_tables() RETURN name").get_as_df()
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
            return
        if tables:
            raise CircuitAtlasError(
                f"store {self.path}: a LadybugDB database but not a circuitatlas store "
                f"(tables {sorted(tables)[:5]}); give another path"
            )
        if self.writable:
            self._transaction(self._create_schema)

    def _create_schema(self) -> None:
        for text in statements(self.dialect, "schema"):
            self._conn.execute(text)
        self._run("schema_version_write", name=SCHEMA_NAME, version=SCHEMA_VERSION)

    # --- primitives --------------------------------------------------------------------------
    def _run(self, name: str, /, **params: Any) -> Any:
        return self._conn.execute(statement(self.dialect, name), params)

    def _read(self, name: str, /, **params: Any) -> pd.DataFrame:
        return self._run(name, **params).get_as_df()

    def _transaction(self, body: Any, *args: Any) -> Any:
        self._conn.execute("BEGIN TRANSACTION")
        try:
            out = body(*args)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return out

    # --- writing -----------------------------------------------------------------------------
    def _write_batch(self, run: RunRecord, batch: list[CheckpointRows]) -> int:
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

    # --- user Cypher -------------------------------------------------------------------------
    def cypher(self, query: str, **params: Any) -> pd.DataFrame:
        """Run user Cypher on a read-only handle; a write is refused and changes nothing."""
        if self._ro is None:
            lb = _ladybug()
            db = lb.Database(str(self.path), read_only=True)
            self._ro = (db, lb.Connection(db))
        try:
            return self._ro[1].execute(query, params).get_as_df()
        except RuntimeError as e:
            message = str(e).splitlines()[0]
            if _WRITE_REFUSED in message:
                raise CircuitAtlasError(
                    "query: the store is opened read-only for user Cypher; statements that write "
                    "(CREATE, MERGE, SET, DELETE, COPY, …) are refused and nothing was changed"
                ) from None
            raise CircuitAtlasError(f"query: {message}") from None

    def close(self) -> None:
        """Close both handles."""
        ro_db, ro_conn = self._ro or (None, None)
        for handle in (ro_conn, ro_db, getattr(self, "_conn", None), getattr(self, "_db", None)):
            if handle is not None:
                handle.close()
        self._ro = None
