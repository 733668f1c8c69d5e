"""Live Neo4j tests: they run where NEO4J_URI is set (e.g. after
`docker compose -f docker/compose.yml up -d --wait`, NEO4J_URI=neo4j://localhost:7687 and
NEO4J_PASSWORD), and are skipped elsewhere."""

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
    skip = pytest.mark.skip(reason="set NEO4J_URI (and NEO4J_PASSWORD) to run the live Neo4j tests")
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


@pytest.fixture
def delete_runs() -> Iterator[list[str]]:
    """Run ids to delete from Neo4j after the test."""
    import neo4j

    from circuitatlas.store.neo4j import credentials, redact

    run_ids: list[str] = []
    yield run_ids
    user, password = credentials(URI or "")
    with neo4j.GraphDatabase.driver(redact(URI or ""), auth=(user, password)) as driver:
        for run_id in run_ids:
            driver.execute_query(
                "MATCH (n) WHERE n.run_id = $run_id DETACH DELETE n",
                {"run_id": run_id},
                database_=os.environ.get("NEO4J_DATABASE"),
            )
