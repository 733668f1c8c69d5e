"""The read side on a live Neo4j equals the embedded store on the same run: the trajectory
questions (`ask`, library and CLI), the report (its gathered data, figures and per-step graphs),
the GraphML export, every search phrase of the Bloom perspective and every README Browser query.

One synthetic run is ingested into both stores and analyzed the same way (direct effects, τ
0.9), with two circuits saved per checkpoint (the same records in both); a second run, never
analyzed, gives the report that computes its analysis.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j
import networkx as nx
import pandas as pd
import pytest
from click.testing import CliRunner
from cypher_lint import REPO_ROOT
from cypher_values import assert_close, embedded_graph, neo4j_graph, plain
from neo4j_recording import assert_same_paths
from readme_examples import EXAMPLE_VALUES, parameters, readme_blocks
from store_dump import dump_neo4j

from circuitatlas.analytics.analyze import analyze
from circuitatlas.cli import main
from circuitatlas.graph.paths import PathSettings
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries import trajectory as tj
from circuitatlas.queries.circuits import circuits_of
from circuitatlas.queries.paths import find_paths
from circuitatlas.report import write_report
from circuitatlas.report.data import ReportData, gather
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

STEPS = [0, 10, 20, 40]
BARE_STEPS = [0, 10, 20]
TAU, MEASURE = 0.9, "direct"
SAVED = ["2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"]  # two circuits per step
FLOAT_TOL = 1e-9
CLOCK = ("created_at", "analyzed_at")  # Run properties that read the clock
PERSPECTIVE = json.loads(
    (REPO_ROOT / "docker" / "bloom" / "circuitatlas-perspective.json").read_text("utf-8")
)


@dataclass
class World:
    """The two runs in both stores: Neo4j's URL and store, the embedded store's path."""

    url: str
    neo4j: Any  # an open read-only Neo4j store
    embedded_path: Path
    run: str  # analyzed, with circuits
    bare: str  # never analyzed

    def embedded(self) -> Any:
        return open_store(self.embedded_path)


@pytest.fixture(scope="module")
def world(tmp_path_factory, delete_module_runs) -> Any:
    url = os.environ["NEO4J_URI"]
    tag = uuid.uuid4()
    sweep = synthetic_sweep(3, 2, STEPS, seed=3, model=f"live-queries-{tag}")
    bare = synthetic_sweep(2, 2, BARE_STEPS, seed=1, model=f"live-queries-bare-{tag}")
    delete_module_runs += [sweep.run_id, bare.run_id]
    path = tmp_path_factory.mktemp("live-queries") / "store.lbdb"
    with open_store(url, writable=True) as live, open_store(path, writable=True) as embedded:
        for store in (live, embedded):
            ingest_sweep(store, sweep, progress=False)
            ingest_sweep(store, bare, progress=False)
            analyze(store, sweep.run_id, TAU, measure=MEASURE, progress=False)
        records = []
        for created_at, source, k in zip(SAVED, ("input", "a0.h1"), (3, 2), strict=True):
            found = find_paths(embedded, sweep.run_id, None, PathSettings(source, k=k))
            records += [c.record() | {"created_at": created_at} for c in circuits_of(found)]
        for store in (live, embedded):
            store.write_circuits(records)
    with open_store(url) as reader:
        yield World(url, reader, path, sweep.run_id, bare.run_id)


@pytest.fixture(scope="module")
def embedded(world) -> Any:
    with world.embedded() as store:
        yield store


def live_records(driver: Any, query: str, **params: Any) -> list[Any]:
    """The official driver's records of a READ query on the live database."""
    found = driver.execute_query(
        query,
        params,
        routing_=neo4j.RoutingControl.READ,
        database_=os.environ.get("NEO4J_DATABASE"),
    )
    return list(found.records)


# --- ask -----------------------------------------------------------------------------------------
ASKED = [  # (CLI arguments after `ask`, the library function, its keyword arguments)
    (["top", "effect", "-k", "3"], "top_components", {"metric": "effect", "k": 3}),
    (
        ["top", "induction_score", "-k", "2"],
        "top_components",
        {"metric": "induction_score", "k": 2},
    ),
    (["top", "pagerank", "-k", "3"], "top_components", {"metric": "pagerank", "k": 3}),
    (["top", "in_degree", "-k", "5"], "top_components", {"metric": "in_degree", "k": 5}),
    (["top", "betweenness", "-k", "4"], "top_components", {"metric": "betweenness", "k": 4}),
    (["top", "closeness"], "top_components", {"metric": "closeness"}),
    (["history", "a1.h0"], "component_history", {"name": "a1.h0"}),
    (["history", "input"], "component_history", {"name": "input"}),
    (
        ["history", "logits", "--metric", "pagerank", "--metric", "in_degree"],
        "component_history",
        {"name": "logits", "metrics": ["pagerank", "in_degree"]},
    ),
    (["edge", "a0.h1", "a1.h0"], "edge_history", {"source": "a0.h1", "target": "a1.h0"}),
    (["edge", "input", "logits"], "edge_history", {"source": "input", "target": "logits"}),
    (
        ["first", "a0.h1", "a1.h0", "--above", "0.05"],
        "first_exceeding",
        {"source": "a0.h1", "target": "a1.h0", "value": 0.05},
    ),
    (
        ["first", "a0.h1", "m2", "--above", "100", "--edges", "direct"],
        "first_exceeding",
        {"source": "a0.h1", "target": "m2", "value": 100.0, "measure": "direct"},
    ),
    (
        ["first", "input", "logits", "--above", "0.5", "--edges", "direct"],
        "first_exceeding",
        {"source": "input", "target": "logits", "value": 0.5, "measure": "direct"},
    ),
    (["roles", "0", "40"], "role_changes", {"step_a": 0, "step_b": 40}),
    (["roles", "10", "20"], "role_changes", {"step_a": 10, "step_b": 20}),
    (["roles", "20", "20"], "role_changes", {"step_a": 20, "step_b": 20}),
    (
        ["diff", "0", "40", "--tau", "0.7", "-k", "3"],
        "checkpoint_diff",
        {"step_a": 0, "step_b": 40, "tau": 0.7, "k": 3},
    ),
    (
        ["diff", "10", "40", "--tau", "0.9", "--edges", "direct"],
        "checkpoint_diff",
        {"step_a": 10, "step_b": 40, "tau": 0.9, "measure": "direct"},
    ),
    (
        ["diff", "40", "0", "--tau", "0.5"],
        "checkpoint_diff",
        {"step_a": 40, "step_b": 0, "tau": 0.5},
    ),
]
REFUSED = [  # questions both stores refuse with the same one-line message
    ["edge", "input", "a1.h9"],
    ["edge", "a1.h0", "a0.h1"],
    ["history", "zz"],
    ["first", "nosuch", "logits", "--above", "0.1"],
    ["roles", "0", "5"],
    ["top", "pagerankk"],
    ["diff", "0", "40", "--tau", "3"],
]


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(("args", "question", "kwargs"), ASKED, ids=[" ".join(a[0]) for a in ASKED])
def test_ask_on_neo4j_equals_the_embedded_store(world, embedded, args, question, kwargs):
    ask = getattr(tj, question)
    got, expected = ask(world.neo4j, world.run, **kwargs), ask(embedded, world.run, **kwargs)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=FLOAT_TOL)
    assert got.attrs == expected.attrs
    outputs = {}
    for name, url in (("neo4j", world.url), ("embedded", str(world.embedded_path))):
        result = cli("ask", *args, "--run", world.run, "--store", url, "--format", "json")
        assert result.exit_code == 0, result.output
        outputs[name] = (json.loads(result.stdout), result.stderr)
    assert_close(outputs["neo4j"][0], outputs["embedded"][0])
    assert outputs["neo4j"][1] == outputs["embedded"][1]


@pytest.mark.parametrize("args", REFUSED, ids=" ".join)
def test_ask_refuses_alike(world, args):
    messages = []
    for url in (world.url, str(world.embedded_path)):
        result = cli("ask", *args, "--run", world.run, "--store", url)
        assert result.exit_code != 0 and result.stdout == ""
        messages.append(result.stderr)
    assert messages[0] == messages[1] and messages[0].count("\n") == 1, messages


def test_roles_of_an_unanalyzed_run_are_refused_alike(world):
    messages = []
    for url in (world.url, str(world.embedded_path)):
        result = cli("ask", "roles", "0", "10", "--run", world.bare, "--store", url)
        assert result.exit_code != 0
        messages.append(result.stderr)
    assert messages[0] == messages[1] and "has not been analyzed" in messages[0]


# --- report --------------------------------------------------------------------------------------
GRAPH_STEPS = re.compile(r'<script type="application/json" id="graph-steps">(.*?)</script>', re.S)
VIZ_DATA = re.compile(r'<script type="application/json" id="neo4j-viz-data">(.*?)</script>', re.S)


@dataclass
class Reports:
    """The gathered data and the written report of one run, per backend."""

    data: dict[str, ReportData]
    written: dict[str, Any]


@pytest.fixture(scope="module", params=["analysed", "computed"])
def reports(request, world, embedded, tmp_path_factory) -> Reports:
    run = world.run if request.param == "analysed" else world.bare
    out = tmp_path_factory.mktemp(f"report-{request.param}")
    stores = {"neo4j": world.neo4j, "embedded": embedded}
    data = {name: gather(store, run) for name, store in stores.items()}
    before = dump_neo4j(world.neo4j, [run])
    written = {
        name: write_report(store, run, out / name, progress=False) for name, store in stores.items()
    }
    assert dump_neo4j(world.neo4j, [run]) == before  # the report never writes
    return Reports(data, written)


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """The same columns, types and rows (sorted by ``keys``; column order is the embedded
    store's), floats to 1e-9."""
    assert sorted(got.columns) == sorted(expected.columns)

    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[list(expected.columns)]
        return frame.sort_values(keys, kind="stable").reset_index(drop=True)

    pd.testing.assert_frame_equal(
        ordered(got), ordered(expected), check_exact=False, rtol=0, atol=FLOAT_TOL
    )


def plain_run(run: dict[str, Any]) -> dict[str, Any]:
    """The Run properties both backends share: Neo4j keeps no null property (the embedded store
    returns every column of its table); ``created_at`` and ``analyzed_at`` read the clock."""
    return {k: plain(v) for k, v in run.items() if v is not None and k not in CLOCK}


def test_gather_on_neo4j_equals_the_embedded_store(reports):
    got, expected = reports.data["neo4j"], reports.data["embedded"]
    assert got.run_id == expected.run_id
    assert_close(plain_run(got.run), plain_run(expected.run))
    assert got.analysed is expected.analysed
    assert (got.steps, got.tau, got.measure) == (expected.steps, expected.tau, expected.measure)
    assert got.reconfigurations == expected.reconfigurations
    assert got.warnings == expected.warnings
    assert_same_frame(got.checkpoints, expected.checkpoints, ["step"])
    assert_same_frame(got.components, expected.components, ["step", "name"])
    assert_same_frame(got.edges, expected.edges, ["step", "source", "target"])
    pd.testing.assert_frame_equal(got.phases, expected.phases)
    assert_same_paths(got.paths, expected.paths)
    assert_same_frame(got.persistence, expected.persistence, ["path"])
    assert_same_frame(got.phase_paths, expected.phase_paths, ["phase"])
    assert not expected.paths.paths.empty and len(expected.edges)
    assert expected.components["role"].notna().any()


def graph_blocks(index: Path) -> dict[str, Any]:
    """Step → the parsed neo4j-viz data of that step's graph (from the page's #graph-steps)."""
    [payload] = GRAPH_STEPS.findall(index.read_text(encoding="utf-8"))
    out = {}
    for step, block in json.loads(payload).items():
        [data] = VIZ_DATA.findall(block)
        out[step] = json.loads(data)
    return out


def test_the_report_on_neo4j_draws_what_the_embedded_store_draws(reports):
    got, expected = reports.written["neo4j"], reports.written["embedded"]
    assert got.graph_steps == expected.graph_steps and got.graph_steps
    assert (got.kinds, got.warnings) == (expected.kinds, expected.warnings)
    assert [p.name for p in got.figures] == [p.name for p in expected.figures] and got.figures
    for g, e in zip(got.figures, expected.figures, strict=True):
        assert g.read_bytes() == e.read_bytes(), g.name
    blocks, expected_blocks = graph_blocks(got.index), graph_blocks(expected.index)
    assert list(blocks) == list(expected_blocks) == [str(s) for s in got.graph_steps]
    for step, data in expected_blocks.items():
        assert data["nodes"] and data["relationships"]
        assert_close(blocks[step], data, f"step {step}")


# --- export --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [["--step", "20"], ["--step", "40", "--tau", "0.7"], ["--step", "0", "--edges", "direct"]],
    ids=" ".join,
)
def test_export_on_neo4j_equals_the_embedded_store(world, tmp_path, options):
    graphs, lines = {}, {}
    for name, url in (("neo4j", world.url), ("embedded", str(world.embedded_path))):
        out = tmp_path / f"{name}.graphml"
        result = cli("export", "--run", world.run, "--store", url, *options, "--out", str(out))
        assert result.exit_code == 0, result.output
        lines[name] = result.stdout.replace(str(out), "OUT")
        graphs[name] = (nx.read_graphml(out), graphml_keys(out))
    assert lines["neo4j"] == lines["embedded"]
    (got, got_keys), (expected, expected_keys) = graphs["neo4j"], graphs["embedded"]
    assert got_keys == expected_keys  # every attribute, with its GraphML type
    assert_close(got.graph, expected.graph)
    assert list(got.nodes) == list(expected.nodes)
    assert_close(dict(got.nodes(data=True)), dict(expected.nodes(data=True)))
    assert sorted(got.edges) == sorted(expected.edges) and got.number_of_edges()
    for s, t, attributes in expected.edges(data=True):
        assert_close(got.edges[s, t], attributes, f"{s}→{t}")


def graphml_keys(path: Path) -> set[tuple[str, str, str]]:
    """The (for, name, type) of every attribute key a GraphML file declares."""
    text = path.read_text(encoding="utf-8")
    keys = re.findall(r'<key [^>]*for="(\w+)" attr.name="([^"]+)" attr.type="(\w+)"', text)
    assert keys
    return set(keys)


# --- the Bloom perspective -----------------------------------------------------------------------
def phrase_values(world: World, template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of values the test gives a phrase's parameters."""
    choices = {
        "$run": [world.run],
        "$step": STEPS,
        "$component": ["input", "a1.h0", "m1", "logits"],
        "$tau": [0.7, 2.0],
    }
    combos: list[dict[str, Any]] = [{}]
    for param in template["params"]:
        name = param["name"]
        combos = [{**c, name[1:]: v} for c in combos for v in choices[name]]
    return combos


def embedded_phrase(store: Any, cypher: str, values: dict[str, Any]) -> Any:
    """A phrase's graph on the embedded store: a UNION's branches run one by one (LadybugDB
    cannot union columns of two relationship tables)."""
    graph = embedded_graph(store.cypher(cypher.split("\nUNION\n")[0], **values))
    for branch in cypher.split("\nUNION\n")[1:]:
        more = embedded_graph(store.cypher(branch, **values))
        graph.nodes |= more.nodes
        graph.edges |= more.edges
    return graph


def unclocked(nodes: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Nodes without the Run's clock readings (``created_at``, ``analyzed_at``)."""
    return {
        ident: {k: v for k, v in props.items() if k not in CLOCK}
        if ident[1:] == ("Run",)
        else props
        for ident, props in nodes.items()
    }


@pytest.mark.parametrize(
    "template", PERSPECTIVE["templates"], ids=[t["text"] for t in PERSPECTIVE["templates"]]
)
def test_bloom_phrase_on_neo4j_returns_what_the_embedded_store_returns(
    world, embedded, neo4j_driver, template
):
    found = 0
    for values in phrase_values(world, template):
        got = neo4j_graph(live_records(neo4j_driver, template["cypher"], **values))
        expected = embedded_phrase(embedded, template["cypher"], values)
        assert got.shape() == expected.shape(), values
        assert_close(unclocked(got.nodes), unclocked(expected.nodes), str(values))
        assert_close(got.edges, expected.edges, str(values))
        found += len(expected.edges)
    assert found  # the phrase shows relationships for some values


def test_bloom_suggestions_on_neo4j_offer_what_the_embedded_store_offers(
    world, embedded, neo4j_driver
):
    """A suggestion query reads the whole database: Neo4j's offers include the embedded
    store's (other runs may add more)."""
    asked = 0
    for template in PERSPECTIVE["templates"]:
        for param in template["params"]:
            if param["cypher"] is None:
                continue
            live = [plain(list(r.values())) for r in live_records(neo4j_driver, param["cypher"])]
            ours = [plain(list(row)) for row in embedded.cypher(param["cypher"]).values.tolist()]
            assert ours and set(map(tuple, ours)) <= set(map(tuple, live)), param["name"]
            assert live == sorted(live), param["name"]  # the suggestions come ordered
            asked += 1
    assert asked


# --- README Browser queries ----------------------------------------------------------------------
BLOCKS = readme_blocks()
NEO4J_BLOCKS = [i for i, (dialects, _) in enumerate(BLOCKS) if "neo4j" in dialects]


def readme_values(world: World) -> dict[str, Any]:
    return {"run_id": world.run, **EXAMPLE_VALUES}


def the_embedded_counterpart(index: int) -> str:
    """The embedded query a README block answers alike: itself when marked for both, else the
    embedded-only block right after it (the README writes the LadybugDB form next)."""
    dialects, query = BLOCKS[index]
    if "embedded" in dialects:
        return query
    after, counterpart = BLOCKS[index + 1]
    assert after == {"embedded"}, f"README block {index} has no embedded counterpart after it"
    return counterpart


def comparable_rows(rows: list[list[Any]], ordered: bool) -> list[Any]:
    """Rows as plain values, lists of names sorted (``collect()`` keeps no order in either
    store), in a canonical order unless the query orders them."""

    def cell(value: Any) -> Any:
        names = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return sorted(value) if names else value

    out = [[cell(v) for v in plain(row)] for row in rows]
    return out if ordered else sorted(out, key=lambda r: json.dumps(r, sort_keys=True, default=str))


@pytest.mark.parametrize("index", NEO4J_BLOCKS)
def test_readme_query_on_neo4j_returns_what_the_embedded_store_returns(
    world, embedded, neo4j_driver, index
):
    query = BLOCKS[index][1]
    values = readme_values(world)
    live = live_records(neo4j_driver, query, **{p: values[p] for p in parameters(query)})
    counterpart = the_embedded_counterpart(index)
    rows = embedded.cypher(counterpart, **{p: values[p] for p in parameters(counterpart)})
    assert len(live) > 0 and list(live[0].keys()) == list(rows.columns)
    ordered = "ORDER BY" in query and "RETURN s, e, t" not in query
    assert_close(
        comparable_rows([list(r.values()) for r in live], ordered),
        comparable_rows(rows.values.tolist(), ordered),
    )
