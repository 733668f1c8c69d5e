"""Exports (`circuitatlas export`, `to_networkx`, `write_graphml`) on a real embedded store: the
DiGraph equals the store's ordinary reads exactly (nodes, edges, every property), τ filters as
the reads do, GraphML reads back equal (a component name full of XML and Cypher included), a
file is written whole or not at all, the CLI, and bad input."""

import math
import os
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
from click.testing import CliRunner

import circuitatlas
from circuitatlas.analytics.analyze import analyze
from circuitatlas.cli import main
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.export import graphml_ready, to_networkx, write_graphml
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

STEPS = [0, 10, 20]
HARD = '<m1 & "x"> \') RETURN 1 //'  # a component name that XML and Cypher would both choke on
EDGE_ATTRIBUTES = {
    "step",
    "similarity",
    "weight",
    "std",
    "direct_similarity",
    "direct_weight",
    "direct_std",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """An analyzed 3-layer synthetic run (nulls: the sink's effect, every non-head's head and
    scores, roles of components that have none)."""
    sweep = synthetic_sweep(3, 2, STEPS, seed=11, names={"m1": HARD})
    path = tmp_path_factory.mktemp("export") / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
        analyze(store, sweep.run_id, 0.7)
    return {"path": Path(path), "run": sweep.run_id}


@pytest.fixture(scope="module")
def store(world):
    with open_store(world["path"]) as store:
        yield store


def present(value):
    return value is not None and value is not pd.NA and value == value


def expected_nodes(store, run, step):
    """name → the component's non-null properties, from the store's read."""
    comps = store.components(run, step)
    return {
        row["name"]: {k: v for k, v in row.items() if present(v)}
        for row in comps.astype(object).to_dict("records")
    }


def expected_edges(store, run, step, tau=None, measure="total"):
    """(source, target) → the edge's non-null properties (scores not computed are NaN), from
    the store's read."""
    edges = store.edges(run, step, tau=tau, measure=measure)
    return {
        (row.pop("source"), row.pop("target")): {k: v for k, v in row.items() if present(v)}
        for row in edges.astype(object).to_dict("records")
    }


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize(("measure", "tau"), [("total", None), ("total", 0.7), ("direct", 0.9)])
def test_graph_equals_the_store_reads(store, world, step, measure, tau):
    graph = to_networkx(store, world["run"], step, measure, tau)
    assert isinstance(graph, nx.DiGraph)
    assert graph.graph == {"run_id": world["run"], "step": step, "measure": measure, "tau": tau}
    assert dict(graph.nodes(data=True)) == expected_nodes(store, world["run"], step)
    edges = expected_edges(store, world["run"], step, tau, measure)
    assert {(s, t): a for s, t, a in graph.edges(data=True)} == edges
    assert all(set(a) == EDGE_ATTRIBUTES for a in edges.values()) and edges


def test_values_are_plain_python_and_nulls_are_left_out(store, world):
    graph = to_networkx(store, world["run"], 10)
    for _, attributes in [*graph.nodes(data=True), *((s, a) for s, _, a in graph.edges(data=True))]:
        for value in attributes.values():
            assert type(value) in (str, int, float, bool), (attributes, value)
            assert not (isinstance(value, float) and math.isnan(value))
    assert "effect" not in graph.nodes["logits"] and "head" not in graph.nodes[HARD]
    assert graph.nodes["a1.h1"]["head"] == 1 and graph.nodes["a1.h1"]["kind"] == "attn_head"
    roles = [a["role"] for _, a in graph.nodes(data=True) if "role" in a]
    assert 0 < len(roles) < graph.number_of_nodes() and all(roles)  # some have no role


def test_tau_keeps_the_edges_whose_measure_similarity_is_below_it(store, world):
    every = to_networkx(store, world["run"], 20)
    n = every.number_of_nodes()
    assert every.number_of_edges() == len(expected_edges(store, world["run"], 20)) > n
    cases = [("total", "similarity", (0.3, 0.7, 0.95)), ("direct", "direct_similarity", (0.6, 0.9))]
    for measure, similarity, taus in cases:
        for tau in taus:
            graph = to_networkx(store, world["run"], 20, measure, tau)
            kept = {(s, t) for s, t, a in every.edges(data=True) if a[similarity] < tau}
            assert set(graph.edges) == kept and 0 < len(kept) < every.number_of_edges()
            assert set(graph.nodes) == set(every.nodes)  # every component stays


def test_circuitatlas_exposes_to_networkx():
    assert circuitatlas.to_networkx is to_networkx


def read_back(path):
    graph = nx.read_graphml(path)
    graph.graph.pop("node_default", None)
    graph.graph.pop("edge_default", None)
    return graph


@pytest.mark.parametrize("tau", [None, 0.7])
def test_graphml_reads_back_equal(store, world, tmp_path, tau):
    out = tmp_path / "step10.graphml"
    written = write_graphml(store, world["run"], 10, out, "total", tau)
    graph = read_back(out)
    assert isinstance(graph, nx.DiGraph)
    assert dict(graph.nodes(data=True)) == dict(written.nodes(data=True))
    assert {(s, t): a for s, t, a in graph.edges(data=True)} == {
        (s, t): a for s, t, a in written.edges(data=True)
    }
    attributes = {k: v for k, v in written.graph.items() if v is not None}
    assert graph.graph == attributes and ("tau" in graph.graph) == (tau is not None)
    assert HARD in graph and os.listdir(tmp_path) == [out.name]


def test_lists_and_nulls_are_made_graphml_safe(tmp_path):
    graph = nx.DiGraph(tau=None, steps=[0, 10])
    graph.add_node("a", paths=["input→a", "a→logits"], role=None, layer=0)
    graph.add_edge("a", "b", strengths=(0.5, 0.25), std=None, weight=0.5)
    out = tmp_path / "g.graphml"
    nx.write_graphml(graphml_ready(graph), out)
    back = read_back(out)
    assert back.graph == {"steps": "[0, 10]"}
    assert back.nodes["a"] == {"paths": '["input→a", "a→logits"]', "layer": 0}
    assert back.edges["a", "b"] == {"strengths": "[0.5, 0.25]", "weight": 0.5}
    assert graph.nodes["a"]["role"] is None  # the graph given is left as it was


def test_an_existing_file_is_replaced_only_on_success(store, world, tmp_path, monkeypatch):
    out = tmp_path / "graph.graphml"
    out.write_text("old")
    write_graphml(store, world["run"], 0, out)
    assert read_back(out).graph["step"] == 0
    before = out.read_bytes()

    def half_then_fail(graph, path, **kwargs):
        Path(path).write_text("<graphml>half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nx, "write_graphml", half_then_fail)
    with pytest.raises(CircuitAtlasError, match="No space left on device"):
        write_graphml(store, world["run"], 10, out)
    assert out.read_bytes() == before and os.listdir(tmp_path) == [out.name]


def test_bad_measure_in_the_api(store, world):
    with pytest.raises(CircuitAtlasError, match="--edges both: give one of total, direct"):
        to_networkx(store, world["run"], 0, measure="both")


# --- the command -------------------------------------------------------------------------------
def export(world, *args):
    return CliRunner().invoke(main, ["export", "--store", str(world["path"]), *args])


def test_cli_writes_the_graph(store, world, tmp_path):
    out = tmp_path / "sub" / "step20.graphml"
    result = export(world, "--step", "20", "--tau", "0.7", "--edges", "direct", "--out", str(out))
    assert result.exit_code == 0, result.output
    graph = to_networkx(store, world["run"], 20, "direct", 0.7)
    assert result.stdout.strip() == (
        f"run {world['run']}, step 20 (direct similarity < 0.7): {graph.number_of_nodes()} "
        f"components, {graph.number_of_edges()} edges → {out}"
    )
    back = read_back(out)
    assert set(back.edges) == set(graph.edges) and set(back.nodes) == set(graph.nodes)
    assert back.graph == {"run_id": world["run"], "step": 20, "measure": "direct", "tau": 0.7}


def test_cli_exports_every_edge_by_default(store, world, tmp_path):
    out = tmp_path / "all.graphml"
    result = export(world, "--run", world["run"], "--step", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "(every edge)" in result.stdout
    assert read_back(out).number_of_edges() == len(store.edges(world["run"], 0))


def test_cli_help_has_examples():
    result = CliRunner().invoke(main, ["export", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "--tau" in result.output


BAD = [
    (["--run", "nope", "--step", "0"], "error: unknown run 'nope'"),
    (["--step", "7"], "error: step 7 is not stored for run {run} (steps: 0, 10, 20)"),
    (["--step", "0", "--tau", "0"], "error: --tau 0.0: give a threshold in (0, 2]"),
    (["--step", "0", "--tau", "nan"], "error: --tau nan: give a threshold in (0, 2]"),
    (["--step", "0", "--tau", "2.5"], "error: --tau 2.5: give a threshold in (0, 2]"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_cli_bad_input_is_one_line_and_writes_nothing(world, tmp_path, args, message):
    out = tmp_path / "graph.graphml"
    result = export(world, *args, "--out", str(out))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(message.format(run=world["run"])), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert result.stdout == "" and os.listdir(tmp_path) == []


def test_cli_out_that_is_a_directory(world, tmp_path):
    result = export(world, "--step", "0", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: --out {tmp_path}: is a directory; give a file path, e.g. "
        f"{tmp_path / 'graph.graphml'}\n"
    )
    assert os.listdir(tmp_path) == []


def test_cli_out_below_a_file(world, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep")
    result = export(world, "--step", "0", "--out", str(blocker / "graph.graphml"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: --out {blocker / 'graph.graphml'}: {blocker} is not")
    assert os.listdir(tmp_path) == ["notes.txt"] and blocker.read_text() == "keep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a read-only directory")
def test_cli_out_in_a_directory_it_cannot_write(world, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = export(world, "--step", "0", "--out", str(locked / "graph.graphml"))
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: --out {locked / 'graph.graphml'}: cannot write")
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)
