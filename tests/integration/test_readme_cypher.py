"""The Cypher examples of README.md work: each ```cypher block after a line
``<!-- cypher: embedded -->`` runs on an analyzed embedded store and returns rows; each after
``<!-- cypher: neo4j -->`` passes Neo4j's linter clean; ``<!-- cypher: neo4j embedded -->`` both."""

from pathlib import Path

import pytest
from cypher_lint import lint
from readme_examples import EXAMPLE_VALUES, README, cypher_blocks, parameters, readme_blocks

from circuitatlas.analytics.analyze import analyze
from circuitatlas.graph.paths import PathSettings
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.circuits import circuits_of, save
from circuitatlas.queries.paths import find_paths
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

BLOCKS = readme_blocks()


def of(dialect: str) -> list[str]:
    return [query for dialects, query in BLOCKS if dialect in dialects]


def test_the_readme_has_checked_examples_of_both_dialects():
    assert of("embedded"), f"{README.name}: no ```cypher block after <!-- cypher: embedded -->"
    assert of("neo4j"), f"{README.name}: no ```cypher block after <!-- cypher: neo4j -->"


def test_markers_are_read():
    text = (
        "<!-- cypher: neo4j -->\n```cypher\nMATCH (a) RETURN a\n```\n"
        "<!-- cypher: neo4j embedded -->\n\n```cypher\nMATCH (b)\nRETURN b\n```\n"
        "```cypher\nMATCH (unmarked) RETURN 1\n```\n"
    )
    assert cypher_blocks(text) == [
        ({"neo4j"}, "MATCH (a) RETURN a"),
        ({"neo4j", "embedded"}, "MATCH (b)\nRETURN b"),
    ]


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    """An analyzed synthetic run and the values the examples' $parameters take."""
    sweep = synthetic_sweep(3, 4, [0, 10, 20, 40, 80], seed=1)
    path = tmp_path_factory.mktemp("readme") / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
        analyze(store, sweep.run_id, 0.7)
        found = find_paths(store, sweep.run_id, None, PathSettings(k=3))
        save(store, circuits_of(found))  # the circuit examples read stored circuits
    params = {"run_id": sweep.run_id, **EXAMPLE_VALUES}
    return Path(path), params


@pytest.mark.parametrize("index", range(len(of("embedded"))))
def test_embedded_example_returns_rows(analyzed, index):
    path, values = analyzed
    query = of("embedded")[index]
    used = parameters(query)
    assert used <= set(values), f"give the test a value for {sorted(used - set(values))}"
    with open_store(path) as store:
        rows = store.cypher(query, **{name: values[name] for name in used})
    assert len(rows) > 0, query


def test_neo4j_examples_lint_clean():
    queries = {f"readme_{i}": query for i, query in enumerate(of("neo4j"))}
    for name, diagnostics in lint(queries).items():
        assert diagnostics == [], f"{queries[name]}\n" + "\n".join(map(str, diagnostics))
