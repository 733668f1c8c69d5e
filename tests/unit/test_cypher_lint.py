"""The Cypher linter (Neo4j's own, via tools/cypher-lint) and the project's Neo4j statements."""

import pytest
from cypher_lint import Diagnostic, lint, neo4j_statement_files

# All probes go through one linter process: starting node costs about a second.
PROBES = {
    "syntax_error": "MATCH (n:Component RETURN n",
    "unknown_procedure": "CALL gds.nosuch.stream('g') YIELD x RETURN x",
    "wrong_yield": "CALL gds.pageRank.stream('g') YIELD nodeId, nonsense RETURN nodeId",
    "right_yield": "CALL gds.pageRank.stream('g') YIELD nodeId, score RETURN nodeId, score",
    "too_many_arguments": "CALL gds.pageRank.stream('g', {}, 3) YIELD nodeId RETURN nodeId",
    "unknown_label": "MATCH (n:Componnet) RETURN n",
    "unknown_relationship_type": "MATCH (:Component)-[r:INFLUENCE]->(:Component) RETURN r",
    "unknown_property": "MATCH (c:Component) RETURN c.efect",
    "unwind_write": "UNWIND $rows AS row MERGE (c:Component {key: row.key}) SET c += row.props",
    # A map field inside a pattern's property map: no graph property (lint.mjs works around
    # the package attributing `source_key` to the node `s`) ...
    "map_field_in_pattern": (
        "UNWIND $rows AS row MATCH (s:Component {key: row.source_key}) RETURN s.key"
    ),
    # ... while a node's property there is still checked.
    "node_property_in_pattern": (
        "MATCH (a:Component) MATCH (b:Component {key: a.kye}) RETURN b.key"
    ),
    "multi_statement": "MATCH (r:Run) RETURN r;\nMATCH (c:Componnet) RETURN c;\nMATCH (x RETURN x",
}

FILES = neo4j_statement_files()


@pytest.fixture(scope="module")
def probes() -> dict[str, list[Diagnostic]]:
    return lint(PROBES)


@pytest.fixture(scope="module")
def file_diagnostics() -> dict[str, list[Diagnostic]]:
    return lint(FILES)


def severities(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.severity for d in diagnostics]


def test_syntax_error_is_an_error(probes):
    assert "error" in severities(probes["syntax_error"])
    first = probes["syntax_error"][0]
    assert (first.line, first.column) == (1, 20)  # at RETURN, where `)` was expected
    assert "Invalid input 'RETURN'" in first.message


def test_unknown_procedure_is_an_error(probes):
    [diagnostic] = probes["unknown_procedure"]
    assert diagnostic.severity == "error"
    assert "Procedure gds.nosuch.stream is not present" in diagnostic.message


def test_wrong_yield_column_is_an_error(probes):
    [diagnostic] = probes["wrong_yield"]
    assert diagnostic.severity == "error"
    assert "Unknown procedure output: `nonsense`" in diagnostic.message
    assert probes["right_yield"] == []


def test_procedure_arguments_are_checked(probes):
    [diagnostic] = probes["too_many_arguments"]
    assert diagnostic.severity == "error"
    assert "too many arguments" in diagnostic.message


@pytest.mark.parametrize(
    ("probe", "name"),
    [
        ("unknown_label", "Label Componnet"),
        ("unknown_relationship_type", "Relationship type INFLUENCE"),
        ("unknown_property", "efect"),
    ],
)
def test_names_outside_the_schema_are_warnings(probes, probe, name):
    [diagnostic] = probes[probe]
    assert diagnostic.severity == "warning"
    assert diagnostic.message.startswith(f"{name} is not present in the database")


def test_parameterized_unwind_write_is_clean(probes):
    assert probes["unwind_write"] == []


def test_only_node_and_relationship_properties_are_checked(probes):
    assert probes["map_field_in_pattern"] == []
    [diagnostic] = probes["node_property_in_pattern"]
    assert diagnostic.severity == "warning"
    assert diagnostic.message.startswith("kye is not present in the database")


def test_statements_separated_by_semicolons_are_linted_each(probes):
    found = [(d.severity, d.line) for d in probes["multi_statement"]]
    assert found == [("warning", 2), ("error", 3)]


@pytest.mark.parametrize(
    "name",
    sorted(FILES) or [pytest.param(None, id="no-statement-files-yet")],
)
def test_neo4j_statement_file_lints_clean(name, file_diagnostics):
    if name is None:
        assert neo4j_statement_files() == {}
        return
    diagnostics = file_diagnostics[name]
    assert diagnostics == [], f"{name}.cypher:\n" + "\n".join(map(str, diagnostics))
