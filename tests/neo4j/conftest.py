"""Live Neo4j tests: they run where NEO4J_URI is set. `make test` starts the local server
(`make neo4j`, tools/neo4j/local.py) and sets it from `.neo4j/env`; by hand:
`make neo4j && . .neo4j/env && .venv/bin/python -m pytest tests/neo4j`. Elsewhere they are
skipped, except in CI, where a skip fails the run (tests/conftest.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from circuitatlas.ingest.synthetic import synthetic_sweep

URI = os.environ.get("NEO4J_URI")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if URI:
        return
    skip = pytest.mark.skip(
        reason="no NEO4J_URI: `make neo4j && . .neo4j/env` to run the live tests"
    )
    for item in items:
        if "tests/neo4j/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture
def neo4j_url() -> str:
    """The live Neo4j's URL (the tests are skipped without one)."""
    assert URI is not None
    return URI


@pytest.fixture
def our_projections() -> Callable[[Any], list[str]]:
    """``names(store)``: the GDS graphs circuitatlas projected that are still in the catalog."""
    from circuitatlas.store.gds import GRAPH_NAME_PREFIX

    def names(store: Any) -> list[str]:
        found = store.cypher("CALL gds.graph.list() YIELD graphName RETURN graphName")
        return [n for n in found["graphName"] if n.startswith(GRAPH_NAME_PREFIX)]

    return names


@pytest.fixture
def sweep():
    """A small synthetic run with a model name unique to this test, so runs never collide."""
    return synthetic_sweep(
        n_layers=2, n_heads=2, steps=[0, 10, 20, 40], seed=1, model=f"live-{uuid.uuid4()}"
    )


def delete_from_neo4j(run_ids: list[str]) -> None:
    """Delete every node (and its relationships) of ``run_ids`` from the live Neo4j."""
    import neo4j

    from circuitatlas.store.neo4j import credentials, redact

    user, password = credentials(URI or "")
    with neo4j.GraphDatabase.driver(redact(URI or ""), auth=(user, password)) as driver:
        for run_id in run_ids:
            driver.execute_query(
                "MATCH (n) WHERE n.run_id = $run_id DETACH DELETE n",
                {"run_id": run_id},
                database_=os.environ.get("NEO4J_DATABASE"),
            )


@pytest.fixture
def delete_runs() -> Iterator[list[str]]:
    """Run ids to delete from Neo4j after the test."""
    run_ids: list[str] = []
    yield run_ids
    delete_from_neo4j(run_ids)


@pytest.fixture(scope="module")
def delete_module_runs() -> Iterator[list[str]]:
    """Run ids to delete from Neo4j after the module's tests (for module-scoped data)."""
    run_ids: list[str] = []
    yield run_ids
    delete_from_neo4j(run_ids)


@pytest.fixture(scope="module")
def neo4j_driver() -> Iterator[Any]:
    """An official driver on the live Neo4j, for tests that need what the store's frames drop
    (node labels, relationship ends)."""
    import neo4j

    from circuitatlas.store.neo4j import credentials, redact

    user, password = credentials(URI or "")
    with neo4j.GraphDatabase.driver(redact(URI or ""), auth=(user, password)) as driver:
        yield driver


# --- runs shared by a module: a short real toy run and a random DAG of ≥ 300 components ------
TOY_STEPS = 250  # past initialization, short enough to train in about half a minute
TOY_CHECKPOINTS = 6
DAG_SHAPE = (6, 49)  # layers × heads: 302 components a checkpoint, ~38 000 stored edges
DAG_STEPS = [0, 10, 20]
# similarities drawn from these exact values make exact ties (in strength, cost and distance);
# 0.7 sits on the default τ, −0.5 and −1 give weights above 1 (clipped to 1 for paths), 1 none
TIED_SIMILARITIES = (-1.0, -0.5, 0.0, 0.5, 0.7, 0.75, 1.0)


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A short toy run trained here and swept (CPU) from its checkpoint directory, which stays
    in place for the session so that ``--validate`` can rerun its model."""
    from circuitatlas.ingest.pipeline import SweepSettings, sweep_run
    from circuitatlas.ingest.toy import train_toy

    out = tmp_path_factory.mktemp("live-toy") / "run"
    train_toy(out, steps=TOY_STEPS, checkpoints=TOY_CHECKPOINTS, seed=0, progress=False)
    settings = SweepSettings(n_prompts=6, seq_len=17, device="cpu")
    return sweep_run(str(out), None, settings, progress=False)


def _tied(rng: Any, n: int, low: float) -> Any:
    """``n`` similarities: a tenth from ``TIED_SIMILARITIES``, a tenth uniform below 0.7, the
    rest uniform in [``low``, 1) (mostly absent at τ 0.7)."""
    import numpy as np

    kind = rng.choice(3, n, p=[0.1, 0.1, 0.8])
    return np.select(
        [kind == 0, kind == 1],
        [rng.choice(TIED_SIMILARITIES, n), rng.uniform(-0.2, 0.7, n)],
        rng.uniform(low, 1.0, n),
    )


@pytest.fixture(scope="session")
def random_dag() -> Any:
    """A synthetic run of ``DAG_SHAPE`` whose similarities (total and direct) are redrawn with
    exact ties, under a model name unique to the session."""
    import numpy as np

    run = synthetic_sweep(*DAG_SHAPE, DAG_STEPS, seed=5, model=f"live-dag-{uuid.uuid4()}")
    rng = np.random.default_rng(5)
    for prefix, low in (("", 0.7), ("direct_", 0.5)):
        similarity = _tied(rng, len(run.edges), low)
        run.edges[f"{prefix}similarity"] = similarity
        run.edges[f"{prefix}weight"] = 1.0 - similarity
    return run


@pytest.fixture(scope="module")
def both_stores(
    tmp_path_factory: pytest.TempPathFactory, delete_module_runs: list[str]
) -> Iterator[Callable[[Any], tuple[Any, Any]]]:
    """``stores(run)``: (live Neo4j store, embedded store), both writable and holding ``run``
    (a ``SweepResult``), ingested once per module; they close after the module."""
    from circuitatlas.store import open_store
    from circuitatlas.store.ingest import ingest_sweep

    opened: dict[str, tuple[Any, Any]] = {}

    def stores(run: Any) -> tuple[Any, Any]:
        if run.run_id not in opened:
            delete_module_runs.append(run.run_id)
            path = tmp_path_factory.mktemp("embedded") / "store.lbdb"
            pair = (open_store(URI or "", writable=True), open_store(path, writable=True))
            for store in pair:
                ingest_sweep(store, run, progress=False)
            opened[run.run_id] = pair
        return opened[run.run_id]

    yield stores
    for pair in opened.values():
        for store in pair:
            store.close()


@pytest.fixture
def delete_now() -> Callable[[list[str]], None]:
    """``delete_now(run_ids)``: delete those runs from Neo4j at once (to ingest one again)."""
    return delete_from_neo4j


# --- a private server without GDS (tests/neo4j_servers.py), shared by the session -----------
@pytest.fixture(scope="session")
def no_gds_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private server without the GDS plugin, for the session (started once)."""
    from neo4j_servers import private_server

    with private_server(tmp_path_factory.mktemp("neo4j-no-gds") / "home", gds=False) as server:
        yield server
