"""The trajectory questions on the Neo4j backend, through the recording driver: each sends its
named statement, exactly the file's text, in a READ transaction, with every value as a
parameter (a component name that reads like Cypher included). The recording driver answers the
questions with no rows, so an edge question ends in the store's diagnosis. What the answers and
the messages are on a real server, equal to the embedded store's, is checked on a live Neo4j
(``tests/neo4j/test_live_queries.py``)."""

import pytest
from neo4j_recording import RecordingDriver

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries import trajectory as tj
from circuitatlas.store.ingest import ingest_sweep
from circuitatlas.store.neo4j import Neo4jStore
from circuitatlas.store.statements import statement, statement_names

STEPS = [0, 10, 20]
HARD = "a0.h1' }) DETACH DELETE n //"


@pytest.fixture
def ingested():
    driver = RecordingDriver()
    store = Neo4jStore("neo4j://localhost:7687", writable=True, driver=driver)
    sweep = synthetic_sweep(2, 2, STEPS, seed=3, names={"a0.h1": HARD})
    ingest_sweep(store, sweep, progress=False)
    driver.transactions.clear()
    return store, driver, sweep.run_id


def sent(driver, name):
    """The parameters of every call of statement ``name``."""
    return [c.params for c in driver.calls() if c.query == statement("neo4j", name)]


def test_every_statement_is_named_and_read_only(ingested):
    store, driver, run = ingested
    tj.top_components(store, run, "effect", 3)
    tj.component_history(store, run, HARD)
    tj.checkpoint_diff(store, run, 0, 20, 0.5, "direct", 4)
    known = {statement("neo4j", n) for n in statement_names("neo4j") if n != "schema"}
    assert all(c.query in known for c in driver.calls())
    assert {t.mode for t in driver.transactions} == {"READ"}
    assert sent(driver, "ask_run") == [{"run_id": run}] * 3


@pytest.mark.parametrize(
    ("ask", "name", "params"),
    [
        (
            lambda s, r: tj.top_components(s, r, "induction_score", 2),
            "ask_top",
            {"metric": "induction_score", "k": 2},
        ),
        (lambda s, r: tj.component_history(s, r, HARD), "ask_history", {"name": HARD}),
        (
            lambda s, r: tj.checkpoint_diff(s, r, 10, 0, 0.7, "total", 10),
            "ask_diff",
            {"tau": 0.7, "measure": "total", "k": 10},
        ),
    ],
)
def test_question_parameters(ingested, ask, name, params):
    store, driver, run = ingested
    frame = ask(store, run)
    assert frame.empty
    [got] = sent(driver, name)
    if name == "ask_diff":
        params = {**params, "checkpoint_a": f"{run}/10", "checkpoint_b": f"{run}/0"}
    else:
        params = {**params, "run_id": run}
    assert got == params


@pytest.mark.parametrize(
    ("ask", "name", "params"),
    [
        (lambda s, r: tj.edge_history(s, r, HARD, "logits"), "ask_edge", {}),
        (
            lambda s, r: tj.first_exceeding(s, r, HARD, "logits", 0.25, "direct"),
            "ask_first",
            {"value": 0.25, "measure": "direct"},
        ),
    ],
)
def test_an_edge_question_without_rows_is_diagnosed(ingested, ask, name, params):
    store, driver, run = ingested
    with pytest.raises(CircuitAtlasError, match=rf"no edge a0\.h1' .* → logits in run {run}"):
        ask(store, run)
    [got] = sent(driver, name)
    assert got == {"run_id": run, "source": HARD, "target": "logits", **params}
