"""The Neo4j Bloom perspective (docker/bloom/circuitatlas-perspective.json).

Checked here: its structure (categories for Run, Checkpoint, Component and Circuit; Component
coloured by ``kind`` and sized by ``betweenness``, INFLUENCES widened by ``weight``, each by
rule-based styling), that every label, relationship type and property it names is in the store's
schema (read from a real embedded store, with the schema's types), that every search phrase has
Cypher whose ``$parameters`` are exactly those its text declares, that all its Cypher passes
Neo4j's linter, and that every phrase, run on the embedded store too (the statements keep to the
Cypher both dialects share), returns exactly what the store's ordinary reads say it should.
``tests/neo4j/test_live_queries.py`` runs every phrase on a live Neo4j against this store.

The strongest path in a phrase: Bloom runs plain Cypher, and plain Cypher has no weighted
shortest path (GDS needs a projection; APOC's Dijkstra minimizes a sum of stored weights, not
``−log`` of the clipped weights), so there are two phrases:

* "strongest path at step $step of run $run" reads the top-ranked path of the circuit saved last
  for that checkpoint (``circuitatlas paths --save``): exactly the CLI's path (Dijkstra/Yen on
  ``−log(min(weight, 1))``), whatever the model's size, since nothing is searched in Bloom;
* "strongest path of at most 4 hops …" needs no saved circuit: a bounded variable-length match
  over that checkpoint's INFLUENCES edges with a positive direct weight, ordered by the product
  of the clipped direct weights (the sum of their logs), LIMIT 1. It enumerates every path of up
  to 4 hops, so it is exact where no longer path exists (here: 3 parallel-block layers, 4 hops
  at most) and meant for small models.
"""

import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from cypher_lint import REPO_ROOT, lint
from cypher_values import embedded_graph

from circuitatlas.analytics.analyze import analyze
from circuitatlas.graph.paths import ARROW, PathSettings
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.circuits import circuits_of
from circuitatlas.queries.paths import find_paths
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

PERSPECTIVE_FILE = REPO_ROOT / "docker" / "bloom" / "circuitatlas-perspective.json"
NEO4J_SCHEMA_FILE = REPO_ROOT / "circuitatlas" / "store" / "cypher" / "neo4j" / "schema.cypher"
PERSPECTIVE = json.loads(PERSPECTIVE_FILE.read_text(encoding="utf-8"))
CATEGORIES = {c["name"]: c for c in PERSPECTIVE["categories"]}
RELATIONSHIP_TYPES = {r["name"]: r for r in PERSPECTIVE["relationshipTypes"]}
TEMPLATES = {t["text"]: t for t in PERSPECTIVE["templates"]}
KINDS = ("input", "attn_head", "mlp", "logits")  # the design note's Component.kind values
PARAMETER_TYPES = {"String", "Integer", "Float", "Boolean"}
# the store's column types as Bloom names property data types
DATA_TYPES = {"STRING": "string", "INT64": "bigint", "DOUBLE": "number", "BOOL": "boolean"}
_PARAMETER = re.compile(r"\$(\w+)")

STRONGEST = "strongest path at step $step of run $run"
SHORT = "strongest path of at most 4 hops at step $step of run $run"
CIRCUIT = "circuit at step $step of run $run"
GATEKEEPERS = "top gatekeepers at step $step of run $run"
SPREADERS = "spreaders at step $step of run $run"
GATHERERS = "gatherers at step $step of run $run"
HISTORY = "history of $component in run $run"
EDGES_OF = "edges of $component at step $step of run $run"
GRAPH = "graph at step $step of run $run at tau $tau"
CHECKPOINTS = "checkpoints of run $run"


# --- structure ---------------------------------------------------------------------------------
def test_top_level_structure():
    for key in ("name", "id", "categories", "labels", "relationshipTypes", "templates"):
        assert key in PERSPECTIVE, key
    assert {"Run", "Checkpoint", "Component", "Circuit"} <= set(CATEGORIES)
    ids = [c["id"] for c in PERSPECTIVE["categories"]]
    assert len(set(ids)) == len(ids)
    for category in PERSPECTIVE["categories"]:
        assert category["labels"] == [category["name"]]
        names = {p["name"] for p in category["properties"]}
        assert category["captionKeys"] and set(category["captionKeys"]) <= names
        assert [c["key"] for c in category["captions"]] == category["captionKeys"]
        assert re.fullmatch(r"#[0-9A-F]{6}", category["color"]), category["color"]


def rules(owner: dict[str, Any], prop: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in owner["styleRules"] if r["basedOn"] == prop and r["type"] == kind]


def test_components_are_coloured_by_kind():
    by_kind = {r["value"]: r for r in rules(CATEGORIES["Component"], "kind", "single")}
    assert set(by_kind) == set(KINDS)
    for rule in by_kind.values():
        assert rule["condition"] == "equals" and rule["applyColor"] and not rule["applySize"]
    colours = [r["color"] for r in by_kind.values()]
    assert len(set(colours)) == len(KINDS) and CATEGORIES["Component"]["color"] not in colours


def range_rule(owner: dict[str, Any], prop: str) -> dict[str, Any]:
    [rule] = rules(owner, prop, "range")
    assert rule["applySize"] and not rule["applyColor"]
    assert rule["minValue"] < rule["maxValue"] and 0 < rule["minSize"] < rule["maxSize"]
    return rule


def test_components_are_sized_by_betweenness():
    assert range_rule(CATEGORIES["Component"], "betweenness")["minValue"] == 0


def test_influences_are_widened_by_weight():
    rule = range_rule(RELATIONSHIP_TYPES["INFLUENCES"], "weight")
    assert (rule["minValue"], rule["maxValue"]) == (0, 1)  # a weight above 1 gets the widest


def test_the_phrases_asked_for_are_there():
    assert {STRONGEST, SHORT, CIRCUIT, GATEKEEPERS, SPREADERS, GATHERERS, HISTORY} <= set(TEMPLATES)
    assert {EDGES_OF, GRAPH, CHECKPOINTS} <= set(TEMPLATES)
    ids = [t["id"] for t in PERSPECTIVE["templates"]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("text", sorted(TEMPLATES))
def test_phrase_has_cypher_and_declares_its_parameters(text):
    template = TEMPLATES[text]
    assert template["cypher"].strip() and template["description"].strip()
    assert not template["isUpdateQuery"]
    in_text = set(_PARAMETER.findall(text))
    declared = [p["name"] for p in template["params"]]
    assert len(set(declared)) == len(declared)
    assert {name.removeprefix("$") for name in declared} == in_text
    assert all(name.startswith("$") for name in declared)
    assert set(_PARAMETER.findall(template["cypher"])) == in_text
    for param in template["params"]:
        assert param["dataType"] in PARAMETER_TYPES, param
        if param["cypher"] is not None:  # a suggestion query takes no parameter
            assert not _PARAMETER.findall(param["cypher"]), param


def every_cypher() -> dict[str, str]:
    """Each phrase's statement and each parameter's suggestion query, by a readable name."""
    out = {}
    for i, template in enumerate(PERSPECTIVE["templates"]):
        out[f"phrase {i}: {template['text']}"] = template["cypher"]
        for param in template["params"]:
            if param["cypher"] is not None:
                out[f"phrase {i}: suggestions for {param['name']}"] = param["cypher"]
    return out


def test_every_cypher_passes_the_neo4j_linter():
    queries = every_cypher()
    for name, diagnostics in lint(queries).items():
        assert diagnostics == [], f"{name}:\n{queries[name]}\n" + "\n".join(map(str, diagnostics))


# --- names against the store's schema ----------------------------------------------------------
@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict[str, Any]:
    """Tables of a new embedded store: node and relationship columns with their types, and each
    relationship type's (from, to) labels."""
    path = tmp_path_factory.mktemp("schema") / "empty.lbdb"
    open_store(path, writable=True).close()
    with open_store(path) as store:
        tables = store.cypher("CALL show_tables() RETURN name, type")
        columns, ends = {}, {}
        for name, kind in zip(tables["name"], tables["type"], strict=True):
            info = store.cypher(f"CALL table_info('{name}') RETURN name, type")
            columns[name] = dict(zip(info["name"], info["type"], strict=True))
            if kind == "REL":
                [row] = store.cypher(f"CALL show_connection('{name}') RETURN *").values.tolist()
                ends[name] = (row[0], row[1])
    return {"columns": columns, "ends": ends}


def data_type(column_type: str) -> str:
    return "array" if column_type.endswith("[]") else DATA_TYPES[column_type]


def test_categories_name_labels_and_properties_of_the_schema(schema):
    for category in PERSPECTIVE["categories"]:
        [label] = category["labels"]
        assert label in schema["columns"], label
        stored = schema["columns"][label]
        properties = {p["name"]: p["dataType"] for p in category["properties"]}
        assert set(properties) == set(stored), label  # every property, none invented
        assert properties == {k: data_type(t) for k, t in stored.items()}, label
        listed = {p["propertyKey"]: p["dataType"] for p in PERSPECTIVE["labels"][label]}
        assert listed == properties, label
        assert all(p["type"] == label for p in PERSPECTIVE["labels"][label])


def test_relationship_types_and_their_ends_are_the_schema(schema):
    stored_types = set(schema["ends"])
    assert set(RELATIONSHIP_TYPES) == stored_types
    for name, rel in RELATIONSHIP_TYPES.items():
        stored = schema["columns"][name]
        assert {p["propertyKey"]: p["dataType"] for p in rel["properties"]} == {
            k: data_type(t) for k, t in stored.items()
        }, name
    segments = {
        (s["source"], s["relationshipType"], s["target"])
        for s in PERSPECTIVE["metadata"]["pathSegments"]
    }
    assert segments == {(a, name, b) for name, (a, b) in schema["ends"].items()}


def test_style_rules_read_properties_of_their_owner(schema):
    owners = [(c["labels"][0], c) for c in PERSPECTIVE["categories"]]
    owners += [(r["name"], r) for r in PERSPECTIVE["relationshipTypes"]]
    for table, owner in owners:
        for rule in owner["styleRules"]:
            column = schema["columns"][table].get(rule["basedOn"])
            assert column is not None, (table, rule["basedOn"])
            numeric = column in ("INT64", "DOUBLE")
            assert rule["dataType"] == ("number" if numeric else data_type(column)), rule
            if rule["type"] == "range":
                assert numeric, (table, rule["basedOn"])


def test_parameter_suggestions_read_the_schema(schema):
    for template in PERSPECTIVE["templates"]:
        for param in template["params"]:
            if param["suggestionLabel"] is not None:
                columns = schema["columns"][param["suggestionLabel"]]
                assert param["suggestionProp"] in columns, param


_INDEX = re.compile(
    r"FOR \(\w+:(\w+)\) (?:REQUIRE \w+\.(\w+) IS UNIQUE|ON \(([^)]*)\))", re.MULTILINE
)


def test_indexes_are_those_the_neo4j_store_creates():
    created = set()
    for label, unique, keys in _INDEX.findall(NEO4J_SCHEMA_FILE.read_text(encoding="utf-8")):
        names = [unique] if unique else [k.strip().split(".")[1] for k in keys.split(",")]
        created.add((label, tuple(names)))
    declared = {(i["label"], tuple(i["propertyKeys"])) for i in PERSPECTIVE["metadata"]["indexes"]}
    assert declared == created - {("CircuitAtlasSchema", ("name",))}


# --- every phrase on the embedded store, against the store's reads ------------------------------
STEPS = [0, 10, 20]
LATE = "2026-01-02T00:00:00+00:00"  # the circuit saved last (ISO text, as the store keeps it)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Any]:
    """A 3-layer synthetic run, analyzed (direct effects, τ 0.9), with two circuits per step:
    input→logits (k=3) saved first, a0.h1→logits (k=2) saved last."""
    sweep = synthetic_sweep(3, 2, STEPS, seed=3)
    path = tmp_path_factory.mktemp("bloom") / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
        analyze(store, sweep.run_id, 0.9, measure="direct")
        first = circuits_of(find_paths(store, sweep.run_id, None, PathSettings(k=3)))
        last = circuits_of(find_paths(store, sweep.run_id, None, PathSettings("a0.h1", k=2)))
        records = [c.record() | {"created_at": "2026-01-01T00:00:00+00:00"} for c in first]
        records += [c.record() | {"created_at": LATE} for c in last]
        store.write_circuits(records)
    return {"path": Path(path), "run": sweep.run_id}


@pytest.fixture(scope="module")
def store(world):
    with open_store(world["path"]) as store:
        yield store


def ask(store: Any, text: str, cypher: str | None = None, **values: Any) -> Any:
    query = TEMPLATES[text]["cypher"] if cypher is None else cypher
    return embedded_graph(store.cypher(query, **values)).shape()


def path_edges(step: int, text: str) -> set[tuple[Any, Any, str]]:
    names = text.split(ARROW)
    return {((step, a), (step, b), "INFLUENCES") for a, b in pairwise(names)}


def last_circuit(store: Any, run: str, step: int) -> Any:
    circuits = store.circuits(run)
    at = circuits[circuits.step == step].sort_values("created_at")
    assert at.iloc[-1]["created_at"] == LATE and len(at) == 2
    return at.iloc[-1]


@pytest.mark.parametrize("step", STEPS)
def test_strongest_path_is_the_top_path_of_the_circuit_saved_last(store, world, step):
    circuit = last_circuit(store, world["run"], step)
    nodes, edges = ask(store, STRONGEST, run=world["run"], step=step)
    assert edges == path_edges(step, circuit["paths"][0]) and edges
    assert nodes == {end for s, t, _ in edges for end in (s, t)}


@pytest.mark.parametrize("step", STEPS)
def test_short_strongest_path_is_the_pathfinding_top_path(store, world, step):
    """Without a saved circuit: equal to the CLI's strongest input→logits path (direct
    effects, every positive weight), 4 hops being the longest path of this model."""
    [top] = store.strongest_paths(world["run"], step, PathSettings(k=1))
    every = find_paths(store, world["run"], [step], PathSettings(k=1000)).paths
    assert every["hops"].max() <= 4 and top.text == every["path"].iloc[0]
    nodes, edges = ask(store, SHORT, run=world["run"], step=step)
    assert edges == path_edges(step, top.text)
    assert nodes == {(step, name) for name in top.components}


@pytest.mark.parametrize("step", STEPS)
def test_circuit_is_its_members_and_the_edges_of_its_paths(store, world, step):
    """LadybugDB cannot UNION columns of two relationship tables: each branch runs alone."""
    circuit = last_circuit(store, world["run"], step)
    members, along = TEMPLATES[CIRCUIT]["cypher"].split("\nUNION\n")
    nodes, edges = ask(store, CIRCUIT, members, run=world["run"], step=step)
    linked = {((step, name), ("Circuit", "Circuit"), "IN_CIRCUIT") for name in circuit.components}
    assert edges == linked and len(nodes) == len(circuit.components) + 1
    _, edges = ask(store, CIRCUIT, along, run=world["run"], step=step)
    assert edges == set().union(*(path_edges(step, text) for text in circuit["paths"]))
    assert len(circuit["paths"]) == 2


ROLE_PHRASES = {  # phrase → (role, which edges of each member: "out", "in" or both)
    GATEKEEPERS: ("gatekeeper", ("out", "in")),
    SPREADERS: ("spreader", ("out",)),
    GATHERERS: ("gatherer", ("in",)),
}


@pytest.mark.parametrize("text", sorted(ROLE_PHRASES))
@pytest.mark.parametrize("step", STEPS)
def test_role_phrases_show_the_members_and_their_edges_in_the_analyzed_graph(
    store, world, step, text
):
    role, sides = ROLE_PHRASES[text]
    comps = store.components(world["run"], step)
    members = set(comps.name[comps.role.fillna("").str.contains(role)])
    assert members
    graph = store.edges(world["run"], step, tau=0.9, measure="direct")  # the analyzed graph
    graph = graph[graph.direct_weight > 0]
    expected = {
        ((step, s), (step, t), "INFLUENCES")
        for s, t in zip(graph.source, graph.target, strict=True)
        if ("out" in sides and s in members) or ("in" in sides and t in members)
    }
    nodes, edges = ask(store, text, run=world["run"], step=step)
    assert edges == expected and expected
    assert nodes == {(step, m) for m in members} | {end for s, t, _ in edges for end in (s, t)}


@pytest.mark.parametrize("name", ["a1.h0", "m0", "logits"])
def test_history_is_the_component_at_every_checkpoint_linked_by_next(store, world, name):
    nodes, edges = ask(store, HISTORY, run=world["run"], component=name)
    assert nodes == {(step, name) for step in STEPS}
    assert edges == {((a, name), (b, name), "NEXT") for a, b in pairwise(STEPS)}


@pytest.mark.parametrize(("name", "step"), [("a1.h0", 10), ("input", 0), ("logits", 20)])
def test_edges_of_a_component_are_every_stored_edge_in_and_out(store, world, name, step):
    stored = store.edges(world["run"], step)
    touching = stored[(stored.source == name) | (stored.target == name)]
    expected = {
        ((step, s), (step, t), "INFLUENCES")
        for s, t in zip(touching.source, touching.target, strict=True)
    }
    nodes, edges = ask(store, EDGES_OF, run=world["run"], step=step, component=name)
    assert edges == expected and expected
    assert nodes == {end for s, t, _ in edges for end in (s, t)}


@pytest.mark.parametrize(("step", "tau"), [(0, 0.7), (20, 0.3), (10, 2.0)])
def test_graph_at_tau_is_the_store_read_at_tau(store, world, step, tau):
    kept = store.edges(world["run"], step, tau=tau)
    expected = {
        ((step, s), (step, t), "INFLUENCES") for s, t in zip(kept.source, kept.target, strict=True)
    }
    nodes, edges = ask(store, GRAPH, run=world["run"], step=step, tau=tau)
    assert edges == expected and expected
    assert nodes == {(step, name) for name in store.components(world["run"], step).name}


def test_checkpoints_of_a_run(store, world):
    nodes, edges = ask(store, CHECKPOINTS, run=world["run"])
    run = (world["run"], "Run")
    assert edges == {(run, (step, "Checkpoint"), "HAS_CHECKPOINT") for step in STEPS}
    assert nodes == {run} | {(step, "Checkpoint") for step in STEPS}


def test_the_kinds_styled_are_the_kinds_stored(store, world):
    assert set(store.components(world["run"]).kind) == set(KINDS)
