"""A recording stand-in for the neo4j driver: it keeps every statement, parameter set and
transaction boundary the Neo4j backend sends, and answers reads from a small in-memory table.

Only what cannot run here (a live Neo4j) is replaced; the backend code under test is the real
one. Answers: ``schema_version`` and ``checkpoint_steps`` come from what was "committed" so far,
so an ingest through it behaves like one against an empty database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One statement run inside a transaction."""

    query: str
    params: dict[str, Any]


@dataclass
class Transaction:
    """One managed transaction: its access mode, its statements and how it ended."""

    mode: str
    database: str | None
    calls: list[Call] = field(default_factory=list)
    outcome: str = "open"  # committed | rolled back


class _Result:
    def __init__(self, keys: list[str], rows: list[dict[str, Any]]) -> None:
        self._keys, self._rows = keys, rows

    def keys(self) -> list[str]:
        return self._keys

    def data(self) -> list[dict[str, Any]]:
        return self._rows

    def consume(self) -> None:
        return None


class _Tx:
    def __init__(self, driver: RecordingDriver, record: Transaction) -> None:
        self._driver, self._record = driver, record

    def run(self, query: str, parameters: dict[str, Any] | None = None, **kw: Any) -> _Result:
        params = {**(parameters or {}), **kw}
        self._record.calls.append(Call(query, params))
        return self._driver.answer(query, params, self._record)


class _Session:
    def __init__(self, driver: RecordingDriver, database: str | None, mode: str) -> None:
        self._driver, self._database, self._mode = driver, database, mode

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


class RecordingDriver:
    """Records sessions (access mode, database) and managed transactions."""

    def __init__(self, schema_version: int | None = None) -> None:
        self.transactions: list[Transaction] = []
        self.sessions: list[dict[str, Any]] = []
        self.schema_version = schema_version
        self.steps: dict[str, set[int]] = {}
        self.configs: dict[str, str] = {}
        self.closed = False

    def session(self, database: str | None = None, default_access_mode: str = "WRITE") -> _Session:
        self.sessions.append({"database": database, "mode": default_access_mode})
        return _Session(self, database, default_access_mode)

    def close(self) -> None:
        self.closed = True

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
            if "CREATE (r)-[:HAS_CHECKPOINT]->" in call.query:
                for row in call.params["rows"]:
                    self.steps.setdefault(row["run_id"], set()).add(row["step"])

    def answer(self, query: str, params: dict[str, Any], record: Transaction) -> _Result:
        if "RETURN s.version AS version" in query:
            rows = [] if self.schema_version is None else [{"version": self.schema_version}]
            return _Result(["version"], rows)
        if "RETURN c.step AS step" in query:
            steps = sorted(self.steps.get(params["run_id"], set()))
            return _Result(["step"], [{"step": s} for s in steps])
        if "RETURN r.config AS config" in query:
            config = self.configs.get(params["run_id"])
            return _Result(["config"], [] if config is None else [{"config": config}])
        # any other read: no rows, with the columns the statement names (as a server would)
        return _Result(re.findall(r"\bAS (\w+)", query.split("RETURN")[-1]), [])
