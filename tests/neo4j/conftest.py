"""Live Neo4j tests: they run where NEO4J_URI is set. `make test` starts the local server
(`make neo4j`, tools/neo4j/local.py) and sets it from `.neo4j/env`; by hand:
`make neo4j && . .neo4j/env && .venv/bin/python -m pytest tests/neo4j`. Elsewhere they are
skipped, except in CI, where a skip fails the run (tests/conftest.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
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
def our_projections(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], list[str]]:
    """``names(store)``: the GDS graphs circuitatlas projected during this test that are still
    in the catalog (not those of other clients of the same server). The graph names are made
    from ``uuid.uuid4()`` in :mod:`circuitatlas.store.gds`, which is recorded here."""
    import types

    from circuitatlas.store import gds

    made: list[str] = []

    def uuid4() -> uuid.UUID:
        made.append(uuid.uuid4().hex)
        return uuid.UUID(made[-1])

    monkeypatch.setattr(gds, "uuid", types.SimpleNamespace(uuid4=uuid4))

    def names(store: Any) -> list[str]:
        found = store.cypher("CALL gds.graph.list() YIELD graphName RETURN graphName")
        return [n for n in found["graphName"] if any(n.endswith(m) for m in made)]

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


@pytest.fixture
def delete_now() -> Callable[[list[str]], None]:
    """``delete_now(run_ids)``: delete those runs from Neo4j at once (to ingest one again)."""
    return delete_from_neo4j


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
# similarities drawn from these exact values make exact ties in weight, so in strength and in
# path length: weights 2 (clipped to 1 for paths), 1, 0.5, 0.25 and none (0). Their costs
# 1 / weight are exact binary fractions, so lengths that tie in exact arithmetic tie in floating
# point too (a tie up to rounding only, such as 2/3 + 2/3 + 2/3 against 2, is one for igraph
# and not for GDS: see circuitatlas/store/gds.py)
TIED_SIMILARITIES = (-1.0, 0.0, 0.5, 0.75, 1.0)


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
) -> Iterator[Callable[[Any], tuple[Any, Path]]]:
    """``stores(run)``: (a writable live Neo4j store, the path of an embedded store), both
    holding ``run`` (a ``SweepResult``), ingested once per module. The embedded store is opened
    where it is used, so that what another opening (the CLI's) wrote is read back."""
    from circuitatlas.store import open_store
    from circuitatlas.store.ingest import ingest_sweep

    opened: dict[str, tuple[Any, Path]] = {}

    def stores(run: Any) -> tuple[Any, Path]:
        if run.run_id not in opened:
            delete_module_runs.append(run.run_id)
            path = tmp_path_factory.mktemp("embedded") / "store.lbdb"
            with open_store(path, writable=True) as embedded:
                ingest_sweep(embedded, run, progress=False)
            store = open_store(URI or "", writable=True)
            opened[run.run_id] = (store, path)
            ingest_sweep(store, run, progress=False)
        return opened[run.run_id]

    yield stores
    for store, _ in opened.values():
        store.close()


# --- a private server without GDS (tests/neo4j_servers.py), shared by the session -----------
@pytest.fixture(scope="session")
def no_gds_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private server without the GDS plugin, for the session (started once)."""
    from neo4j_servers import private_server

    with private_server(tmp_path_factory.mktemp("neo4j-no-gds") / "home", gds=False) as server:
        yield server
