"""Contract tests of the Neo4j analytics: what the Neo4j backend and the graphdatascience client
send for centralities computed with GDS, and the analysis write-back, recorded by a stand-in
driver (no Neo4j runs here). The stand-in answers the GDS procedures the way GDS defines them,
so the frames that come back are compared with the embedded computation too; and ``analyze()``
end to end, on a sweep ingested through the backend into the stand-in, against the embedded
store's analysis of the same sweep.

Every recorded statement is also linted with Neo4j's own linter.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from cypher_lint import lint
from neo4j_recording import RecordingDriver, gds_scores, ingested_store

from circuitatlas.analytics.analyze import analyze
from circuitatlas.analytics.centrality import COST, DEGREE_METRICS, METRICS, Graph, centralities
from circuitatlas.analytics.roles import DEFAULT_TOP_K
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store as open_embedded
from circuitatlas.store.analysis_rows import (
    CHECKPOINT_ANALYSIS,
    RUN_ANALYSIS,
    analysis_rows,
)
from circuitatlas.store.base import MEASURES, SCHEMA_VERSION
from circuitatlas.store.gds import GRAPH_NAME_PREFIX, PAGERANK_MAX_ITERATIONS, PAGERANK_TOLERANCE
from circuitatlas.store.ingest import ingest_sweep
from circuitatlas.store.neo4j import Neo4jStore
from circuitatlas.store.rows import checkpoint_key, component_keys
from circuitatlas.store.statements import statement, statement_names, statements

TAU = 0.7
STEPS = [0, 100]
BATCH = 4
# configuration keys the client adds to every algorithm call, with the values it sends
CLIENT_KEYS = {"relationshipTypes": ["*"], "nodeLabels": ["*"], "sudo": False, "logProgress": False}
ALGORITHMS = [
    "gds.degree",
    "gds.degree",
    "gds.degree",
    "gds.degree",
    "gds.betweenness",
    "gds.closeness",
    "gds.pageRank",
]
PAGERANK = {
    "dampingFactor": 0.85,
    "maxIterations": PAGERANK_MAX_ITERATIONS,
    "tolerance": PAGERANK_TOLERANCE,
    "scaler": "L1Norm",
}


def expected_configs(weighted: bool) -> list[dict]:
    """Our part of each algorithm's configuration, in call order (ALGORITHMS)."""
    weight = {"relationshipWeightProperty": "weight"} if weighted else {}
    cost = {"relationshipWeightProperty": "cost"} if weighted else {}
    return [
        {"orientation": "NATURAL"},
        {"orientation": "REVERSE"},
        {"orientation": "NATURAL", **weight},
        {"orientation": "REVERSE", **weight},
        cost,
        {"useWassermanFaust": False},
        {**PAGERANK, **weight},
    ]


WRITE_PROPERTIES = [
    "out_degree",
    "in_degree",
    "out_strength",
    "in_strength",
    "betweenness",
    "closeness",
    "pagerank",
]


@pytest.fixture
def sweep():
    return synthetic_sweep(n_layers=2, n_heads=2, steps=STEPS, seed=0)


def graph_at(sweep, step: int, tau: float = TAU) -> Graph:
    """The step's graph at ``tau`` from the sweep's frames (as the store would read it)."""
    names = sorted(sweep.components.loc[sweep.components.step == step, "name"])
    edges = sweep.edges[
        (sweep.edges.step == step) & (sweep.edges.similarity < tau) & (sweep.edges.weight > 0)
    ]
    return Graph.from_edges(names, edges[["source", "target", "weight"]])


def open_store(sweep, writable=True, tau=TAU, **driver_options):
    driver = RecordingDriver(schema_version=SCHEMA_VERSION, **driver_options)
    for step in STEPS:
        driver.add_graph(checkpoint_key(sweep.run_id, step), graph_at(sweep, step, tau))
    store = Neo4jStore(
        "neo4j://localhost", writable=writable, batch_size=BATCH, driver=driver, database="atlas"
    )
    driver.transactions.clear()
    return store, driver


def gds_calls(driver) -> list:
    """Every call the GDS client sent (those carry its transaction metadata)."""
    return [c for c in driver.calls() if c.metadata is not None]


def procedure(call) -> str:
    """``gds.pageRank.stream`` of ``CALL gds.pageRank.stream($graph_name, $config)``."""
    return call.query.removeprefix("CALL ").split("(", 1)[0]


def algorithm_calls(driver) -> list:
    return [c for c in gds_calls(driver) if procedure(c).rsplit(".", 1)[0] in ALGORITHMS]


def our_config(call) -> dict:
    """The call's configuration without what the client adds (checked once, in the test)."""
    return {k: v for k, v in call.params["config"].items() if k not in CLIENT_KEYS and k != "jobId"}


def expected_frame(sweep, step: int, tau: float = TAU) -> pd.DataFrame:
    return centralities(graph_at(sweep, step, tau)).sort_values("name").reset_index(drop=True)


def test_the_client_is_made_once_and_sends_only_the_version_check(sweep):
    store, driver = open_store(sweep)
    store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0), TAU, "total", write=False)
    store.centralities_of(sweep.run_id, 100, graph_at(sweep, 100), TAU, "total", write=False)
    versions = [c for c in driver.calls() if c.query == "RETURN gds.version()"]
    assert len(versions) == 1
    first = driver.transactions[0]
    assert first.kind == "execute_query" and first.mode == "READ"
    assert first.calls[0].query == "RETURN gds.version()" and first.calls[0].params == {}
    # every statement of the client goes to the store's database
    assert {t.database for t in driver.transactions} == {"atlas"}


def test_the_projection_is_the_named_statement_with_parameters_only(sweep):
    store, driver = open_store(sweep)
    for step in STEPS:
        store.centralities_of(sweep.run_id, step, graph_at(sweep, step), TAU, "direct", False)
    text = statement("neo4j", "gds_project")
    projections = [c for c in driver.calls() if c.query == text]
    assert len(projections) == 2
    names = [c.params["graph_name"] for c in projections]
    assert all(n.startswith(GRAPH_NAME_PREFIX) for n in names) and len(set(names)) == 2
    for call, step in zip(projections, STEPS, strict=True):
        assert call.params == {
            "graph_name": call.params["graph_name"],
            "checkpoint_key": checkpoint_key(sweep.run_id, step),
            "tau": TAU,
            "unfiltered": False,
            "measure": "direct",
        }
    assert sweep.run_id not in text and str(TAU) not in text
    params = ("graph_name", "checkpoint_key", "tau", "unfiltered", "measure")
    assert all(f"${p}" in text for p in params)
    modes = {t.mode for t in driver.transactions if t.calls[0].query == text}
    assert modes == {"READ"}


@pytest.mark.parametrize("write", [False, True], ids=["stream", "write"])
def test_the_algorithm_calls_and_their_configuration(sweep, write):
    store, driver = open_store(sweep)
    store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0), TAU, "total", write=write)
    calls = algorithm_calls(driver)
    mode = "write" if write else "stream"
    assert [procedure(c) for c in calls] == [f"{a}.{mode}" for a in ALGORITHMS]
    graph_names = {c.params["graph_name"] for c in calls}
    assert len(graph_names) == 1 and graph_names.pop().startswith(GRAPH_NAME_PREFIX)
    for call in calls:
        assert call.query == f"CALL {procedure(call)}($graph_name, $config)"
        assert set(call.params) == {"graph_name", "config"}
        for key, value in CLIENT_KEYS.items():
            assert call.params["config"][key] == value
    configs = [our_config(c) for c in calls]
    if write:
        assert [c.pop("writeProperty") for c in configs] == WRITE_PROPERTIES
    assert configs == expected_configs(weighted=True)
    # algorithm calls run in sessions of their own, never inside a store transaction
    kinds = {t.kind for t in driver.transactions if t.calls[0] in calls}
    assert kinds == {"auto-commit"}


def test_stream_mode_writes_nothing_and_returns_the_definitions(sweep):
    store, driver = open_store(sweep, writable=False)
    for step in STEPS:
        frame = store.centralities_of(
            sweep.run_id, step, graph_at(sweep, step), TAU, "total", False
        )
        assert list(frame.columns) == ["name", *METRICS]
        assert all(frame[m].dtype == np.int64 for m in DEGREE_METRICS)
        pd.testing.assert_frame_equal(frame, expected_frame(sweep, step), rtol=1e-9, atol=1e-12)
    sent = [c.query for c in driver.calls()]
    assert not any(".write(" in q for q in sent)
    assert statement("neo4j", "gds_written") not in sent
    # names come from the node ids the streams yield, in a read
    names = [c for c in driver.calls() if c.query == statement("neo4j", "gds_node_names")]
    assert len(names) == 2 and all(len(c.params["node_ids"]) == 8 for c in names)
    assert {t.mode for t in driver.transactions if t.calls[0] in names} == {"READ"}


def test_write_mode_reads_the_written_properties_back(sweep):
    store, driver = open_store(sweep)
    frame = store.centralities_of(sweep.run_id, 100, graph_at(sweep, 100), TAU, "total", True)
    pd.testing.assert_frame_equal(frame, expected_frame(sweep, 100), rtol=1e-9, atol=1e-12)
    assert all(frame[m].dtype == np.int64 for m in DEGREE_METRICS)
    written = [c for c in driver.calls() if c.query == statement("neo4j", "gds_written")]
    assert [c.params for c in written] == [{"checkpoint_key": checkpoint_key(sweep.run_id, 100)}]
    # the read-back also stores the degrees GDS wrote as floats as integers: a write
    assert {t.mode for t in driver.transactions if t.calls[0] in written} == {"WRITE"}
    assert "toInteger(c.in_degree)" in written[0].query
    assert statement("neo4j", "gds_node_names") not in [c.query for c in driver.calls()]


def test_write_mode_needs_a_writable_store(sweep):
    store, driver = open_store(sweep, writable=False)
    with pytest.raises(CircuitAtlasError, match="read-only"):
        store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0), TAU, "total", write=True)
    assert driver.transactions == []


def drops(driver) -> list:
    return [c for c in gds_calls(driver) if procedure(c) == "gds.graph.drop"]


@pytest.mark.parametrize("write", [False, True], ids=["stream", "write"])
def test_the_projection_is_dropped_after_success(sweep, write):
    store, driver = open_store(sweep)
    store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0), TAU, "total", write=write)
    [projection] = [c for c in driver.calls() if c.query == statement("neo4j", "gds_project")]
    [drop] = drops(driver)
    assert drop.params == {"graphName": [projection.params["graph_name"]], "failIfMissing": False}
    assert driver.calls()[-1] is drop
    assert driver.catalog == {}


@pytest.mark.parametrize("failing", ["gds.betweenness", "gds.pageRank", "gds_written"])
def test_the_projection_is_dropped_after_an_error_which_is_one_line(sweep, failing):
    store, driver = open_store(sweep)
    driver.fail_on = failing if failing.startswith("gds.") else statement("neo4j", failing)
    with pytest.raises(CircuitAtlasError) as info:
        store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0), TAU, "total", write=True)
    message = str(info.value)
    assert "\n" not in message and "injected failure" in message
    assert message.startswith("Neo4j at neo4j://localhost:")
    driver.fail_on = None
    [drop] = drops(driver)
    [projection] = [c for c in driver.calls() if c.query == statement("neo4j", "gds_project")]
    assert drop.params["graphName"] == [projection.params["graph_name"]]
    assert driver.catalog == {}
    # the store stays usable: the next checkpoint runs
    store.centralities_of(sweep.run_id, 100, graph_at(sweep, 100), TAU, "total", write=False)


def test_an_edgeless_graph_runs_without_weight_properties(sweep):
    store, driver = open_store(sweep, tau=-1.0)  # no cosine similarity is below -1
    frame = store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0, -1.0), -1.0, "total", False)
    configs = [our_config(c) for c in algorithm_calls(driver)]
    assert configs == expected_configs(weighted=False)
    pd.testing.assert_frame_equal(frame, expected_frame(sweep, 0, -1.0), rtol=1e-12)
    assert frame.pagerank.tolist() == pytest.approx([1 / 8] * 8)


def test_a_checkpoint_without_components_is_a_clear_error(sweep):
    store, driver = open_store(sweep)
    with pytest.raises(CircuitAtlasError, match="no component to project") as info:
        store.centralities_of(sweep.run_id, 5, graph_at(sweep, 0), TAU, "total", write=False)
    assert "\n" not in str(info.value)
    assert len(drops(driver)) == 1 and driver.catalog == {}


def test_a_server_without_gds_is_named_in_one_line(sweep):
    store, driver = open_store(sweep, gds_version=None)
    with pytest.raises(CircuitAtlasError) as info:
        store.centralities_of(sweep.run_id, 0, graph_at(sweep, 0), TAU, "total", write=False)
    assert str(info.value) == (
        "Neo4j at neo4j://localhost has no Graph Data Science library; install the GDS plugin "
        "(docker/compose.yml has it)"
    )
    assert [c.query for c in driver.calls()] == ["RETURN gds.version()"]


def test_gds_pagerank_scaled_to_one_is_the_standard_pagerank(sweep):
    """The claim behind ``scaler: 'L1Norm'``: GDS's PageRank (no dangling redistribution, teleport
    1 − d per node) is proportional to the standard one, on our DAGs with dangling sinks."""
    graph = graph_at(sweep, 0)
    config = {"dampingFactor": 0.85, "maxIterations": 1000, "tolerance": 0.0, "scaler": "NONE"}
    raw = gds_scores("pageRank", graph, {**config, "relationshipWeightProperty": "weight"})
    standard = centralities(graph).pagerank.to_numpy()
    assert raw.sum() < graph.n * 0.999  # mass is lost at the dangling nodes ...
    np.testing.assert_allclose(raw / raw.sum(), standard, rtol=1e-12)  # ... but not the shape


def run_values() -> dict:
    return {
        "analysis_tau": 0.7,
        "analysis_measure": "total",
        "analysis_cost": "1/weight",
        "analysis_top_k": np.int64(3),
        "phase_boundaries": np.array([100], dtype=np.int64),
        "phase_labels": ["exploration", "consolidation"],
        "reconfigurations": [np.int64(100)],
        "analyzed_at": "2025-01-01T00:00:00+00:00",
    }


def analysis(sweep):
    components = sweep.components[["step", "name"]].copy()
    components["role"] = ["spreader" if i % 3 == 0 else None for i in range(len(components))]
    checkpoints = pd.DataFrame({"step": STEPS})
    for column in CHECKPOINT_ANALYSIS:
        checkpoints[column] = np.nan
    checkpoints["tau"], checkpoints["measure"], checkpoints["n_edges"] = 0.7, "total", [35, 31]
    checkpoints["reconfiguration"] = [False, True]
    return analysis_rows(sweep.run_id, components, checkpoints, run_values())


BY_TEXT = {text: n for n in statement_names("neo4j") for text in statements("neo4j", n)}


def named(calls) -> list[str]:
    for call in calls:
        assert call.query in BY_TEXT, f"statement not from a .cypher file: {call.query[:80]}"
    return [BY_TEXT[c.query] for c in calls]


def test_write_analysis_is_one_transaction_of_parameterized_batches(sweep):
    store, driver = open_store(sweep)
    rows = analysis(sweep)
    store.write_analysis(rows)
    [tx] = driver.transactions
    assert (tx.kind, tx.mode, tx.outcome, tx.database) == ("managed", "WRITE", "committed", "atlas")
    n_comp, n_ckpt = len(rows.components), len(rows.checkpoints)
    assert named(tx.calls) == (
        ["analysis_components_write"] * math.ceil(n_comp / BATCH)
        + ["analysis_checkpoints_write"] * math.ceil(n_ckpt / BATCH)
        + ["analysis_run_write"]
    )
    sent = {"analysis_components_write": [], "analysis_checkpoints_write": []}
    for call, name in zip(tx.calls[:-1], named(tx.calls[:-1]), strict=True):
        assert set(call.params) == {"rows"} and 0 < len(call.params["rows"]) <= BATCH
        sent[name] += call.params["rows"]
    components = sent["analysis_components_write"]
    assert [r["key"] for r in components] == rows.components.key.tolist()
    assert components[0]["properties"] == {"role": "spreader"}
    assert components[1]["properties"] == {"role": None}  # removes a stale role
    checkpoints = sent["analysis_checkpoints_write"]
    assert [r["key"] for r in checkpoints] == [f"{sweep.run_id}/{s}" for s in STEPS]
    first = checkpoints[0]["properties"]
    assert set(first) == set(CHECKPOINT_ANALYSIS)
    assert first["tau"] == 0.7 and first["n_edges"] == 35 and first["density"] is None
    assert (
        type(first["n_edges"]) is int
        and type(checkpoints[1]["properties"]["reconfiguration"]) is bool
    )
    run = tx.calls[-1].params
    assert run == {
        "run_id": sweep.run_id,
        "properties": {
            "analysis_tau": 0.7,
            "analysis_measure": "total",
            "analysis_cost": "1/weight",
            "analysis_top_k": 3,
            "phase_boundaries": [100],
            "phase_labels": ["exploration", "consolidation"],
            "reconfigurations": [100],
            "analyzed_at": "2025-01-01T00:00:00+00:00",
        },
    }
    assert set(run["properties"]) == set(RUN_ANALYSIS)
    plain = run["properties"]
    assert type(plain["analysis_top_k"]) is int and type(plain["phase_boundaries"][0]) is int


def test_write_analysis_needs_a_writable_store(sweep):
    store, driver = open_store(sweep, writable=False)
    with pytest.raises(CircuitAtlasError, match="read-only"):
        store.write_analysis(analysis(sweep))
    assert driver.transactions == []


def test_begin_analysis_clears_the_run_marker_in_one_transaction(sweep):
    store, driver = open_store(sweep)
    store.begin_analysis(sweep.run_id)
    check, tx = driver.transactions  # GDS first: a server without it has nothing cleared
    assert [c.query for c in check.calls] == ["RETURN gds.version()"]
    assert (tx.kind, tx.mode, tx.outcome) == ("managed", "WRITE", "committed")
    assert named(tx.calls) == ["analysis_clear"]
    assert tx.calls[0].params == {"run_id": sweep.run_id}
    text = tx.calls[0].query
    assert all(f"r.{p} = null" in text for p in RUN_ANALYSIS) and "c.tau = null" in text
    reader, _ = open_store(sweep, writable=False)
    with pytest.raises(CircuitAtlasError, match="read-only"):
        reader.begin_analysis(sweep.run_id)


def test_every_statement_of_an_analysis_passes_the_linter(sweep):
    store, driver = open_store(sweep)
    store.begin_analysis(sweep.run_id)
    for step in STEPS:
        store.centralities_of(sweep.run_id, step, graph_at(sweep, step), TAU, "total", True)
        store.centralities_of(sweep.run_id, step, graph_at(sweep, step), TAU, "direct", False)
    store.write_analysis(analysis(sweep))
    sent = {c.query for c in driver.calls()}
    assert {"RETURN gds.version()", statement("neo4j", "gds_project")} <= sent
    assert any(q.startswith("CALL gds.graph.drop(") for q in sent)
    results = lint({f"sent{i}": q for i, q in enumerate(sorted(sent))})
    problems = {name: diags for name, diags in results.items() if diags}
    assert not problems, problems


# --- analyze() end to end: a sweep ingested through the backend, analyzed over the stand-in ----
RUN_STEPS = [0, 1357, 2468, 3579, 4680, 5791, 6802, 7913]  # no statement text holds these
RUN_TAU = 0.73
# how the GDS client calls a procedure: every value a parameter
CLIENT_CALL = re.compile(r"CALL gds(\.\w+)+\((\$\w+(, \$\w+)*)?\)( YIELD \w+(, \w+)*)?")


@pytest.fixture(scope="module")
def run_sweep():
    return synthetic_sweep(n_layers=2, n_heads=2, steps=RUN_STEPS, seed=1)


@pytest.fixture(scope="module")
def embedded(run_sweep, tmp_path_factory):
    """The embedded store's analysis of the same sweep, per measure (igraph's centralities)."""
    store = open_embedded(tmp_path_factory.mktemp("embedded") / "x.lbdb", writable=True)
    ingest_sweep(store, run_sweep, progress=False)
    out = {m: analyze(store, run_sweep.run_id, RUN_TAU, measure=m, write=False) for m in MEASURES}
    store.close()
    return out


def ingested(run_sweep, writable: bool = True):
    """A Neo4j store over the stand-in, holding ``run_sweep`` ingested through the backend."""
    return ingested_store(run_sweep, writable, batch_size=BATCH)


def call_name(call) -> str:
    """The call's statement name (its ``.cypher`` file), else what the GDS client called."""
    if call.query == "RETURN gds.version()":
        return "gds.version"
    return BY_TEXT.get(call.query) or procedure(call)


def first_names(driver) -> list[str]:
    """The name of each transaction's first call, in order."""
    return [call_name(t.calls[0]) for t in driver.transactions]


def expected_names(write: bool) -> list[str]:
    """``first_names`` of an analysis of RUN_STEPS: the reads, the GDS check and the clear
    (write), per step the graph read then GDS (project, algorithms, read-back or names, drop),
    the write-back."""
    mode = "write" if write else "stream"
    gds = ["gds_project", *(f"{a}.{mode}" for a in ALGORITHMS)]
    gds += ["gds_written" if write else "gds_node_names", "gds.graph.drop"]
    names = ["run_config", "checkpoints", *(["gds.version", "analysis_clear"] if write else [])]
    for i in range(len(RUN_STEPS)):
        check = ["gds.version"] if i == 0 and not write else []
        names += ["component_names", "graph_columns", *check, *gds]
    return names + (["analysis_components_write"] if write else [])


def steps_of(driver) -> list[list]:
    """The first calls of the transactions of each step (from its ``component_names`` read)."""
    groups: list[list] = []
    for call in (t.calls[0] for t in driver.transactions):
        if call_name(call) == "component_names":
            groups.append([])
        if groups and not call_name(call).startswith("analysis_"):
            groups[-1].append(call)
    return groups


def graph_of(call) -> str | None:
    """The projected graph a GDS call names (the drop names a list of them)."""
    name = call.params.get("graph_name") or call.params.get("graphName")
    return name[0] if isinstance(name, list) else name


def rows_of(calls, name: str) -> list[dict]:
    """Every row sent with statement ``name``."""
    return [r for c in calls if call_name(c) == name for r in c.params["rows"]]


def test_analyze_on_neo4j_clears_runs_gds_per_step_then_writes_back_once(run_sweep):
    store, driver = ingested(run_sweep)
    result = analyze(store, run_sweep.run_id, RUN_TAU)
    assert first_names(driver) == expected_names(write=True)
    assert {(t.outcome, t.database) for t in driver.transactions} == {("committed", "atlas")}
    # the store's own transactions: reads, the clear, two reads a step, the write-back
    managed = [t.mode for t in driver.transactions if t.kind == "managed"]
    step_reads = ["READ", "READ"] * len(RUN_STEPS)
    assert managed == ["READ", "READ", "WRITE", *step_reads, "WRITE"]

    # each step reads and projects its own checkpoint, and GDS runs on what it projected
    for step, calls in zip(RUN_STEPS, steps_of(driver), strict=True):
        keys = {c.params["checkpoint_key"] for c in calls if "checkpoint_key" in c.params}
        assert keys == {checkpoint_key(run_sweep.run_id, step)}
        [projection] = [c for c in calls if call_name(c) == "gds_project"]
        assert {graph_of(c) for c in calls if graph_of(c)} == {projection.params["graph_name"]}
    assert driver.catalog == {}
    # GDS stored every metric on every component of the run
    assert set(driver.written) == set(driver.id_of.values())
    assert all(set(props) == set(WRITE_PROPERTIES) for props in driver.written.values())

    # one write-back transaction: roles only, the checkpoint analysis, the run's settings
    calls = driver.transactions[-1].calls
    n_components = len(run_sweep.components)
    assert named(calls) == (
        ["analysis_components_write"] * math.ceil(n_components / BATCH)
        + ["analysis_checkpoints_write"] * math.ceil(len(RUN_STEPS) / BATCH)
        + ["analysis_run_write"]
    )
    components = rows_of(calls, "analysis_components_write")
    frame = result.components
    keys = component_keys(run_sweep.run_id, frame.step, frame.name)
    assert [r["key"] for r in components] == keys.tolist()
    roles = [None if pd.isna(role) else role for role in frame.role]
    assert [r["properties"] for r in components] == [{"role": role} for role in roles]
    assert any(roles) and None in roles  # a stale role is removed too

    checkpoints = rows_of(calls, "analysis_checkpoints_write")
    assert [r["key"] for r in checkpoints] == [
        checkpoint_key(run_sweep.run_id, s) for s in RUN_STEPS
    ]
    for row, n_edges, phase in zip(
        checkpoints, result.checkpoints.n_edges, result.checkpoints.phase, strict=True
    ):
        properties = row["properties"]
        assert set(properties) == set(CHECKPOINT_ANALYSIS)
        settings = [properties[k] for k in ("tau", "measure", "cost", "top_k")]
        assert settings == [RUN_TAU, "total", COST, DEFAULT_TOP_K]
        assert (properties["n_edges"], properties["phase"]) == (n_edges, phase)

    assert result.phases.boundaries and result.reconfigurations  # the run has both to record
    run = calls[-1].params
    assert run["run_id"] == run_sweep.run_id and set(run["properties"]) == set(RUN_ANALYSIS)
    assert {k: v for k, v in run["properties"].items() if k != "analyzed_at"} == {
        "analysis_tau": RUN_TAU,
        "analysis_measure": "total",
        "analysis_cost": COST,
        "analysis_top_k": DEFAULT_TOP_K,
        "phase_boundaries": result.phases.boundaries,
        "phase_labels": result.phases.labels,
        "reconfigurations": result.reconfigurations,
    }


def test_analyze_on_neo4j_sends_every_value_as_a_parameter(run_sweep):
    store, driver = ingested(run_sweep)
    analyze(store, run_sweep.run_id, RUN_TAU)
    texts = {c.query for c in driver.calls()}
    for text in texts:
        assert text in BY_TEXT or text == "RETURN gds.version()" or CLIENT_CALL.fullmatch(text)
        assert run_sweep.run_id not in text and str(RUN_TAU) not in text
        assert not any(str(step) in text for step in RUN_STEPS[1:])

    params: dict[str, list[dict]] = {}
    for call in driver.calls():
        params.setdefault(call_name(call), []).append(call.params)
    run = {"run_id": run_sweep.run_id}
    assert params["run_config"] == params["checkpoints"] == params["analysis_clear"] == [run]
    keys = [checkpoint_key(run_sweep.run_id, step) for step in RUN_STEPS]
    assert (
        params["component_names"]
        == params["gds_written"]
        == [{"checkpoint_key": key} for key in keys]
    )
    at_tau = [(key, RUN_TAU, "total") for key in keys]
    for name in ("graph_columns", "gds_project"):
        assert [(p["checkpoint_key"], p["tau"], p["measure"]) for p in params[name]] == at_tau
    assert [p["unfiltered"] for p in params["gds_project"]] == [False] * len(keys)
    results = lint({f"sent{i}": q for i, q in enumerate(sorted(texts))})
    assert not {name: diags for name, diags in results.items() if diags}


@pytest.mark.parametrize("write", [True, False], ids=["write", "stream"])
@pytest.mark.parametrize("measure", MEASURES)
def test_analyze_on_neo4j_returns_the_embedded_analysis(run_sweep, embedded, measure, write):
    """GDS's centralities (as the stand-in computes them) are the embedded store's igraph ones,
    so the whole analysis agrees: frames, top-k sets, phases."""
    store, _ = ingested(run_sweep, writable=write)
    got = analyze(store, run_sweep.run_id, RUN_TAU, measure=measure, write=write)
    expected = embedded[measure]
    for frame in ("components", "checkpoints"):
        pd.testing.assert_frame_equal(
            getattr(got, frame), getattr(expected, frame), rtol=1e-9, atol=1e-12
        )
    assert got.roles == expected.roles and got.settings == expected.settings
    assert (got.phases.boundaries, got.phases.labels) == (
        expected.phases.boundaries,
        expected.phases.labels,
    )
    pd.testing.assert_series_equal(got.phases.per_step, expected.phases.per_step)
    assert got.warnings == expected.warnings


def test_analyze_without_write_on_neo4j_streams_and_stores_nothing(run_sweep):
    store, driver = ingested(run_sweep, writable=False)
    analyze(store, run_sweep.run_id, RUN_TAU, write=False)
    # stream procedures only; no clear, no read-back of written values, no write-back
    assert first_names(driver) == expected_names(write=False)
    assert driver.written == {}
    assert all(len(t.calls) == 1 for t in driver.transactions)
    assert {t.mode for t in driver.transactions if t.kind == "managed"} == {"READ"}
    # the WRITE access mode left is the GDS client's default for its procedures: streams and the
    # catalog drop, which store nothing
    writes = {call_name(t.calls[0]) for t in driver.transactions if t.mode == "WRITE"}
    assert writes == {*(f"{a}.stream" for a in ALGORITHMS), "gds.graph.drop"}
