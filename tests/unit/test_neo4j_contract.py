"""Contract tests of the Neo4j backend: what only a recording stand-in driver can observe (no
Neo4j runs here) — the statement texts (each a named statement, values only as parameters), the
batch sizes, the access mode and boundaries of each transaction, the opening of an empty
database and of one of another schema version (neither can be made on a shared live server).

What Neo4j answers (write refusal in READ sessions, rollback of a stored step, NEXT planning,
round trips) is proven on the live server in tests/neo4j/. Every recorded statement is also
linted with Neo4j's own linter.
"""

from __future__ import annotations

import math

import neo4j
import pandas as pd
import pytest
from cypher_lint import lint
from neo4j.exceptions import Neo4jError
from neo4j_recording import RecordingDriver, edge_rows

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store.base import SCHEMA_VERSION
from circuitatlas.store.ingest import ingest_sweep, sweep_frames
from circuitatlas.store.neo4j import Neo4jStore, redact
from circuitatlas.store.rows import EDGE_PROPERTIES, RunRecord
from circuitatlas.store.statements import statement, statements

STEPS = [0, 10, 20]
BATCH = 7


@pytest.fixture
def sweep():
    return synthetic_sweep(n_layers=2, n_heads=2, steps=STEPS, seed=3)


def _names_by_text() -> dict[str, str]:
    from circuitatlas.store.statements import statement_names

    out = {}
    for name in statement_names("neo4j"):
        for text in statements("neo4j", name):
            out[text] = name
    return out


def _named(calls) -> list[str]:
    """Each call's statement name; fails if a query is not exactly a named statement."""
    by_text = _names_by_text()
    names = []
    for call in calls:
        assert call.query in by_text, f"statement not from a .cypher file: {call.query[:80]}"
        names.append(by_text[call.query])
    return names


def _rows_sent(calls, names, which: str) -> list[dict]:
    """Every row of every batch sent with statement ``which`` (edges: sent column by column)."""

    def rows(params: dict) -> list[dict]:
        return edge_rows(params) if which == "edges_write" else params["rows"]

    return [r for c, n in zip(calls, names, strict=True) if n == which for r in rows(c.params)]


def test_open_empty_database_creates_constraints_then_marks_the_schema():
    driver = RecordingDriver()
    Neo4jStore("neo4j://localhost:7687", writable=True, driver=driver, database="atlas")
    modes = [t.mode for t in driver.transactions]
    schema = statements("neo4j", "schema")
    assert modes == ["READ"] + ["WRITE"] * (len(schema) + 1)
    assert all(t.database == "atlas" for t in driver.transactions)
    assert all(t.outcome == "committed" for t in driver.transactions)
    # each constraint/index in its own transaction (Neo4j refuses schema and data together)
    assert [t.calls[0].query for t in driver.transactions[1:-1]] == list(schema)
    assert all("IF NOT EXISTS" in q for q in schema)
    last = driver.transactions[-1].calls[0]
    assert last.query == statement("neo4j", "schema_version_write")
    assert last.params == {"name": "circuitatlas", "version": SCHEMA_VERSION}


def test_open_for_reading_writes_nothing():
    driver = RecordingDriver()
    Neo4jStore("neo4j://localhost:7687", driver=driver)
    assert [t.mode for t in driver.transactions] == ["READ"]


def test_other_schema_version_is_refused_before_any_write():
    driver = RecordingDriver(schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(CircuitAtlasError, match="schema version"):
        Neo4jStore("neo4j://localhost:7687", writable=True, driver=driver)
    assert [t.mode for t in driver.transactions] == ["READ"]
    assert driver.closed


def test_ingest_sends_one_transaction_of_named_unwind_batches(sweep):
    driver = RecordingDriver()
    store = Neo4jStore("bolt://localhost", writable=True, batch_size=BATCH, driver=driver)
    driver.transactions.clear()
    report = ingest_sweep(store, sweep, progress=False)
    assert report.written == STEPS

    writes = [t for t in driver.transactions if t.mode == "WRITE"]
    assert len(writes) == 1 and writes[0].outcome == "committed"
    names = _named(writes[0].calls)
    n_comp, n_edge = len(sweep.components), len(sweep.edges)
    n_next = n_comp - n_comp // len(STEPS)  # every component but the last step's links forward
    assert names == (
        ["run_merge", "checkpoint_steps", "checkpoints_write"]
        + ["components_write"] * math.ceil(n_comp / BATCH)
        + ["edges_write"] * sum(math.ceil(n / BATCH) for n in sweep.edges.groupby("step").size())
        + ["next_write"] * math.ceil(n_next / BATCH)
        + ["run_count"]
    )
    calls = writes[0].calls
    for call in calls:
        if "rows" in call.params:
            assert 0 < len(call.params["rows"]) <= BATCH
        if "source" in call.params:  # edges: one checkpoint's chunk, its endpoints by position
            assert 0 < len(call.params["source"]) <= BATCH
            assert len({k.rsplit("/", 1)[0] for k in call.params["keys"]}) == 1

    # the rows sent are the sweep's rows, values as parameters
    sent = pd.DataFrame(_rows_sent(calls, names, "edges_write"))
    assert len(sent) == n_edge
    assert sent.source_key.str.split("/").str[0].eq(sweep.run_id).all()
    expected = sweep.edges.sort_values(["step", "source", "target"]).reset_index(drop=True)
    sent["source"] = sent.source_key.str.split("/", n=2).str[2]
    sent["target"] = sent.target_key.str.split("/", n=2).str[2]
    got = sent.sort_values(["step", "source", "target"]).reset_index(drop=True)
    for column in ["step", *EDGE_PROPERTIES]:  # NaN (a score not computed) is sent as null
        want = expected[column].astype(object).where(expected[column].notna(), None)
        assert got[column].tolist() == want.tolist()
    run = calls[0].params
    assert run["run_id"] == sweep.run_id and run["planned_steps"] == STEPS
    rows = _rows_sent(calls, names, "components_write")
    assert len(rows) == n_comp
    heads = {r["properties"]["name"]: r["properties"]["head"] for r in rows}
    assert heads["a1.h1"] == 1 and heads["m0"] is None  # a null property is not set in Neo4j


def test_reads_and_user_cypher_run_in_read_sessions(sweep):
    driver = RecordingDriver()
    store = Neo4jStore("neo4j://localhost", driver=driver)
    driver.sessions.clear()
    store.runs()
    store.cypher("MATCH (c:Component {name: $name}) RETURN c.step", name="a0.h1")
    assert {s["mode"] for s in driver.sessions} == {"READ"}
    call = driver.transactions[-1].calls[-1]
    assert call.params == {"name": "a0.h1"}


class _FakeDriver:
    def __init__(self, error):
        self.error = error

    def verify_connectivity(self):
        raise self.error

    def close(self):
        pass


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            Neo4jError._hydrate_neo4j(
                code="Neo.ClientError.Security.Unauthorized",
                message="The client is unauthorized due to authentication failure.",
            ),
            "refused the credentials of user 'alice'",
        ),
        (neo4j.exceptions.ServiceUnavailable("Unable to retrieve routing information"), "reach"),
        (
            Neo4jError._hydrate_neo4j(
                code="Neo.ClientError.Database.DatabaseNotFound", message="no such db"
            ),
            "has no database 'atlas'",
        ),
    ],
)
def test_connection_errors_are_one_line_without_credentials(monkeypatch, error, expected):
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret-from-env")
    monkeypatch.setenv("NEO4J_DATABASE", "atlas")
    seen = {}

    def driver(url, auth=None, **config):  # config: the driver's timeouts
        seen["url"], seen["auth"] = url, auth
        return _FakeDriver(error)

    monkeypatch.setattr(neo4j.GraphDatabase, "driver", driver)
    with pytest.raises(CircuitAtlasError) as info:
        Neo4jStore("neo4j://alice:pw-in-url@db.example:7687")
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert "pw-in-url" not in message and "s3cret-from-env" not in message
    # the URL's user info is the credential that wins, and the URL sent has none
    assert seen == {"url": "neo4j://db.example:7687", "auth": ("alice", "pw-in-url")}


def test_redact_drops_user_info():
    assert redact("neo4j+s://u:p@host:7687/x") == "neo4j+s://host:7687/x"
    assert redact("bolt://host") == "bolt://host"


def test_every_statement_the_backend_sends_passes_the_linter(sweep):
    driver = RecordingDriver()
    store = Neo4jStore("neo4j://localhost", writable=True, batch_size=BATCH, driver=driver)
    run = RunRecord.from_config(sweep.config)
    frames = list(sweep_frames(sweep, STEPS))
    for i in (2, 0, 1):  # out of order, so NEXT is unlinked and linked in the database too
        store.write_checkpoint(run, frames[i])
    store.runs()
    store.checkpoints(sweep.run_id)
    store.components(sweep.run_id)
    store.components(sweep.run_id, 10)
    store.edges(sweep.run_id, tau=0.7)
    store.edges(sweep.run_id, 10, measure="direct", tau=0.9)
    sent = {c.query for c in driver.calls()}
    names = set(_named(c for c in driver.calls()))
    assert {"next_unlink", "next_link", "edges_of_run", "edges_of_step"} <= names
    results = lint({f"sent{i}": q for i, q in enumerate(sorted(sent))})
    problems = {name: diags for name, diags in results.items() if diags}
    assert not problems, problems
