"""Contract tests of pathfinding in Neo4j with GDS: what the Neo4j backend sends for the strongest
paths of a checkpoint (a projection, GDS's Dijkstra for k = 1 or Yen's for k > 1 in a named
statement, the drop), recorded by a stand-in driver that computes the paths GDS would return with
networkx; and, the main point, ``find_paths`` over it equal to ``find_paths`` on the embedded
store (igraph) holding the same ingested sweep.
"""

from __future__ import annotations

import re

import pytest
from cypher_lint import lint
from neo4j_recording import assert_same_paths, gds_paths, ingested_store

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.paths import PathSettings, find_paths
from circuitatlas.store import open_store
from circuitatlas.store.base import MEASURES
from circuitatlas.store.gds import GRAPH_NAME_PREFIX
from circuitatlas.store.ingest import ingest_sweep
from circuitatlas.store.rows import checkpoint_key
from circuitatlas.store.statements import statement

RUN_STEPS = [0, 1357, 2468, 3579, 4680, 5791]  # no statement text holds these
TAU = 0.6  # direct effects: some checkpoints have paths at it, some none
KS = (1, 5)
PATH_STATEMENTS = {1: "gds_path_dijkstra", 5: "gds_path_yens"}
PROJECT = statement("neo4j", "gds_project")
# the configuration map of a path statement's procedure call
PATH_CALL = re.compile(
    r"CALL (gds\.shortestPath\.\w+\.stream)\(\$graph_name, \{(?P<config>[^}]*)\}\)\s*"
    r"YIELD (?P<yield>[\w, ]+)\n"
)


@pytest.fixture(scope="module")
def run_sweep():
    return synthetic_sweep(n_layers=3, n_heads=2, steps=RUN_STEPS, seed=1)


@pytest.fixture(scope="module")
def embedded(run_sweep, tmp_path_factory):
    """The embedded store holding the same sweep (paths computed with igraph)."""
    store = open_store(tmp_path_factory.mktemp("embedded") / "x.lbdb", writable=True)
    ingest_sweep(store, run_sweep, progress=False)
    yield store
    store.close()


def texts(name: str) -> str:
    return statement("neo4j", name)


def sent(driver, name: str) -> list:
    """The calls of statement ``name``."""
    return [c for c in driver.calls() if c.query == texts(name)]


def drops(driver) -> list:
    return [c for c in driver.calls() if c.query.startswith("CALL gds.graph.drop(")]


def config_of(text: str) -> tuple[str, dict[str, str], list[str]]:
    """A path statement's procedure, configuration map (key → Cypher expression) and YIELD."""
    match = PATH_CALL.search(text)
    assert match is not None, text
    entries = [e.split(":", 1) for e in match["config"].split(",")]
    config = {key.strip(): value.strip() for key, value in entries}
    return match[1], config, [c.strip() for c in match["yield"].split(",")]


def test_the_path_statements_call_gds_with_the_documented_configuration():
    procedure, config, yielded = config_of(texts("gds_path_dijkstra"))
    assert procedure == "gds.shortestPath.dijkstra.stream"
    ends = {"sourceNode": "source", "targetNode": "sink"}
    assert config == {**ends, "relationshipWeightProperty": "'distance'"}
    assert yielded == ["index", "totalCost", "nodeIds"]
    procedure, config, yielded = config_of(texts("gds_path_yens"))
    assert procedure == "gds.shortestPath.yens.stream"
    assert config == {**ends, "k": "$k", "relationshipWeightProperty": "'distance'"}
    assert yielded == ["index", "totalCost", "nodeIds"]
    for name in PATH_STATEMENTS.values():
        text = texts(name)
        # the ends are matched by key in the same statement; names come from the node ids
        assert "(source:Component {key: $checkpoint_key + '/' + $source})" in text
        assert "(sink:Component {key: $checkpoint_key + '/' + $sink})" in text
        assert "gds.util.asNode(node_id).name] AS names" in text
        assert text.endswith("ORDER BY index")
    # the projection gives every relationship the distance the paths run on
    assert "distance: -log(CASE WHEN weight > 1.0 THEN 1.0 ELSE weight END)" in PROJECT
    assert "($unfiltered\n" in PROJECT


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("tau", [None, TAU], ids=["unfiltered", "tau"])
def test_each_step_projects_runs_its_path_statement_and_drops(run_sweep, k, tau):
    store, driver = ingested_store(run_sweep, writable=False)
    settings = PathSettings(k=k, measure="total", tau=tau)
    find_paths(store, run_sweep.run_id, settings=settings)
    projections, paths = sent(driver, "gds_project"), sent(driver, PATH_STATEMENTS[k])
    other = PATH_STATEMENTS[1 if k > 1 else 5]
    assert len(projections) == len(paths) == len(drops(driver)) == len(RUN_STEPS)
    assert sent(driver, other) == []
    for projection, path, drop, step in zip(
        projections, paths, drops(driver), RUN_STEPS, strict=True
    ):
        key = checkpoint_key(run_sweep.run_id, step)
        graph_name = projection.params["graph_name"]
        assert graph_name.startswith(GRAPH_NAME_PREFIX)
        assert projection.params == {
            "graph_name": graph_name,
            "checkpoint_key": key,
            "tau": 0.0 if tau is None else tau,
            "unfiltered": tau is None,
            "measure": "total",
        }
        expected = {"graph_name": graph_name, "checkpoint_key": key}
        expected |= {"source": "input", "sink": "logits", **({"k": k} if k > 1 else {})}
        assert path.params == expected
        assert drop.params == {"graphName": [graph_name], "failIfMissing": False}
    assert driver.catalog == {}
    # the path statements read, through the client, in transactions of their own
    runs = [t for t in driver.transactions if t.calls[0] in paths]
    assert {(t.kind, t.mode, t.database, len(t.calls)) for t in runs} == {
        ("execute_query", "READ", "atlas", 1)
    }


def test_every_text_is_a_named_statement_or_a_client_call_with_parameters_only(run_sweep):
    store, driver = ingested_store(run_sweep, writable=False)
    for k in KS:
        for measure in MEASURES:
            settings = PathSettings(k=k, measure=measure, tau=TAU)
            find_paths(store, run_sweep.run_id, settings=settings)
    names = set(run_sweep.components.name)
    sent_texts = {c.query for c in driver.calls()}
    assert {PROJECT, *(texts(n) for n in PATH_STATEMENTS.values())} <= sent_texts
    assert texts("path_edges") in sent_texts  # the notes of checkpoints without a path
    for text in sent_texts:
        assert run_sweep.run_id not in text and str(TAU) not in text
        assert not any(str(step) in text for step in RUN_STEPS[1:])
        assert not any(re.search(rf"['\"]{re.escape(n)}['\"]", text) for n in names), text
    results = lint({f"sent{i}": q for i, q in enumerate(sorted(sent_texts))})
    assert not {name: diags for name, diags in results.items() if diags}


@pytest.mark.parametrize("k", KS)
def test_the_projection_is_dropped_after_an_error_which_is_one_line(run_sweep, k):
    store, driver = ingested_store(run_sweep, writable=False)
    driver.fail_on = texts(PATH_STATEMENTS[k])
    with pytest.raises(CircuitAtlasError) as info:
        store.strongest_paths(run_sweep.run_id, RUN_STEPS[1], PathSettings(k=k))
    message = str(info.value)
    assert "\n" not in message and "injected failure" in message
    assert message.startswith("Neo4j at neo4j://localhost:")
    driver.fail_on = None
    [projection], [drop] = sent(driver, "gds_project"), drops(driver)
    assert drop.params["graphName"] == [projection.params["graph_name"]]
    assert driver.catalog == {}
    # the store stays usable: the next checkpoint runs
    assert store.strongest_paths(run_sweep.run_id, RUN_STEPS[2], PathSettings(k=k))


def test_an_edgeless_projection_runs_no_algorithm(run_sweep, embedded):
    """No direct similarity is below 0.5: no relationship, no ``distance`` property, no path."""
    store, driver = ingested_store(run_sweep, writable=False)
    settings = PathSettings(measure="direct", tau=0.5)
    got = find_paths(store, run_sweep.run_id, settings=settings)
    assert got.paths.empty and len(got.notes) == len(RUN_STEPS)
    assert got.notes == find_paths(embedded, run_sweep.run_id, settings=settings).notes
    assert not any(sent(driver, name) for name in PATH_STATEMENTS.values())
    assert len(sent(driver, "gds_project")) == len(drops(driver)) == len(RUN_STEPS)
    assert driver.catalog == {}


def test_a_server_without_gds_is_named_in_one_line(run_sweep):
    store, driver = ingested_store(run_sweep, writable=False, gds_version=None)
    with pytest.raises(CircuitAtlasError) as info:
        find_paths(store, run_sweep.run_id)
    assert str(info.value) == (
        "Neo4j at neo4j://localhost has no Graph Data Science library; install the GDS plugin "
        "(docker/compose.yml has it)"
    )
    gds = [c.query for c in driver.calls() if "gds" in c.query]
    assert gds == ["RETURN gds.version()"]


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("tau", [None, TAU], ids=["unfiltered", "tau"])
@pytest.mark.parametrize("measure", MEASURES)
def test_find_paths_on_neo4j_equals_the_embedded_store(run_sweep, embedded, measure, tau, k):
    """GDS's paths (as the stand-in computes them, with networkx) are igraph's: the same paths
    in the same ranks, strengths to 1e-12, the same notes for checkpoints without a path."""
    store, _ = ingested_store(run_sweep, writable=False)
    settings = PathSettings(k=k, measure=measure, tau=tau)
    got = find_paths(store, run_sweep.run_id, settings=settings)
    expected = find_paths(embedded, run_sweep.run_id, settings=settings)
    assert_same_paths(got, expected)
    assert got.steps == RUN_STEPS and not expected.paths.empty
    if (measure, tau) == ("direct", TAU):  # the sweep has checkpoints with and without paths
        assert expected.notes and len(set(expected.paths.step)) < len(RUN_STEPS)
    if tau is None and k > 1:
        assert (expected.paths.groupby("step").size() == k).all()


def test_the_stand_in_returns_the_published_yens_example():
    """The GDS manual's Yen's example (yens.adoc: k = 3 from A to F on `cost`), which has two
    paths of equal cost: rows in order of increasing cost, cumulative costs from 0.0."""
    names = "ABCDEF"
    roads = [
        ("A", "B", 50),
        ("A", "C", 50),
        ("A", "D", 100),
        ("B", "D", 40),
        ("C", "D", 40),
        ("C", "E", 80),
        ("D", "E", 30),
        ("D", "F", 80),
        ("E", "F", 40),
    ]
    edges = [(names.index(s), names.index(t), float(c)) for s, t, c in roads]
    rows = gds_paths(list(range(6)), edges, 0, 5, 3)
    published = [
        (160.0, "ABDEF", [0.0, 50.0, 90.0, 120.0, 160.0]),
        (160.0, "ACDEF", [0.0, 50.0, 90.0, 120.0, 160.0]),
        (170.0, "ABDF", [0.0, 50.0, 90.0, 170.0]),
    ]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert [r["totalCost"] for r in rows] == sorted(r["totalCost"] for r in rows)
    got = sorted(
        (r["totalCost"], "".join(names[i] for i in r["nodeIds"]), r["costs"]) for r in rows
    )
    assert got == published
    assert {(r["sourceNode"], r["targetNode"]) for r in rows} == {(0, 5)}
    # Dijkstra (k = 1): one of the two cheapest; none without a path
    [shortest] = gds_paths(list(range(6)), edges, 0, 5, 1)
    assert shortest["totalCost"] == 160.0
    assert gds_paths(list(range(6)), edges, 5, 0, 3) == []
