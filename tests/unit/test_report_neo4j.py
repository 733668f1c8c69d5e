"""The report on the Neo4j backend, through the recording driver (no Neo4j runs here): one sweep
ingested into the stand-in and into a real embedded store, analysed on both (stored) or not (the
report computes the analysis, GDS streaming, without writing); then ``gather()`` agrees between
the two, ``write_report`` draws the same graphs and the same figure bytes, and everything the
report sends to Neo4j is a named read statement (or the GDS client's parameterised calls) with
every value a parameter, which Neo4j's own linter accepts. The report never writes.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cypher_lint import lint
from neo4j_recording import RecordingDriver, assert_same_paths, ingested_store

from circuitatlas.analytics.analyze import DEFAULT_TAU, analyze
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.report import write_report
from circuitatlas.report.build import ALL_POSITIVE, INDEX, WrittenReport
from circuitatlas.report.data import ReportData, gather
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep
from circuitatlas.store.neo4j import Neo4jStore
from circuitatlas.store.rows import checkpoint_key
from circuitatlas.store.statements import statement, statement_names

RUN_STEPS = [0, 1357, 2468, 3579, 4680, 5791]  # no statement text holds these
TAU = 0.73  # the stored analysis's; the computed one is at DEFAULT_TAU
SCENARIOS = ["analysed", "computed"]
FLOAT_TOL = 1e-9
NAMED = {statement("neo4j", n): n for n in statement_names("neo4j") if n != "schema"}
# how the GDS client calls a procedure or the catalog: every value a parameter
CLIENT_CALL = re.compile(r"CALL gds(\.\w+)+\((\$\w+(, \$\w+)*)?\)( YIELD \w+(, \w+)*)?")
WRITE_CLAUSE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|DETACH|REMOVE|FOREACH|LOAD\s+CSV)\b")
GRAPH_STEPS = re.compile(r'<script type="application/json" id="graph-steps">(.*?)</script>', re.S)
VIZ_DATA = re.compile(r'<script type="application/json" id="neo4j-viz-data">(.*?)</script>', re.S)


@dataclass
class Reports:
    """One scenario on both backends: the gathered data, the written reports and what the
    report sent to Neo4j (with the stand-in's stored state before and after)."""

    run_id: str
    sweep_names: set[str]
    embedded: ReportData
    neo4j: ReportData
    written: dict[str, WrittenReport]  # backend → what write_report returned
    driver: RecordingDriver
    before: Any  # the stand-in's stored state before the report
    after: Any


def stored_state(driver: RecordingDriver) -> Any:
    """Everything the stand-in holds that a write could change."""
    parts = (
        "schema_version",
        "configs",
        "run_nodes",
        "steps",
        "checkpoint_nodes",
        "components",
        "component_nodes",
        "edge_rows",
        "written",
        "catalog",
    )
    return copy.deepcopy({p: getattr(driver, p) for p in parts})


def reader(driver: RecordingDriver) -> Neo4jStore:
    """A read-only store over the stand-in's database."""
    return Neo4jStore("neo4j://localhost", writable=False, driver=driver, database="atlas")


@pytest.fixture(scope="module", params=SCENARIOS)
def reports(request, tmp_path_factory) -> Reports:
    analysed = request.param == "analysed"
    sweep = synthetic_sweep(n_layers=2, n_heads=2, steps=RUN_STEPS, seed=1)
    run_id = sweep.run_id
    tmp = tmp_path_factory.mktemp(request.param)

    embedded = open_store(tmp / "x.lbdb", writable=True)
    ingest_sweep(embedded, sweep, progress=False)
    writer, driver = ingested_store(sweep, writable=True)
    if analysed:
        analyze(embedded, run_id, TAU)
        analyze(writer, run_id, TAU)
    try:
        data = {"embedded": gather(embedded, run_id), "neo4j": gather(reader(driver), run_id)}
        report_store = reader(driver)  # a fresh one: everything the report sends is recorded
        driver.transactions.clear()
        before = stored_state(driver)
        written = {"neo4j": write_report(report_store, run_id, tmp / "neo4j", progress=False)}
        after = stored_state(driver)
        written["embedded"] = write_report(embedded, run_id, tmp / "embedded", progress=False)
    finally:
        embedded.close()
    return Reports(
        run_id,
        set(sweep.components.name),
        data["embedded"],
        data["neo4j"],
        written,
        driver,
        before,
        after,
    )


# --- gather() ----------------------------------------------------------------------------------
def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """The same columns and rows (sorted by ``keys``; column order is the embedded store's),
    floats to 1e-9."""
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
    clock = ("created_at", "analyzed_at")
    return {k: v for k, v in run.items() if v is not None and k not in clock}


def test_gather_on_neo4j_equals_the_embedded_store(reports):
    got, expected = reports.neo4j, reports.embedded
    assert got.run_id == expected.run_id == reports.run_id
    assert plain_run(got.run) == plain_run(expected.run)
    assert got.analysed is expected.analysed is (expected.tau == TAU)
    assert (got.steps, got.tau, got.measure) == (expected.steps, expected.tau, expected.measure)
    assert got.steps == RUN_STEPS
    assert got.reconfigurations == expected.reconfigurations
    assert got.warnings == expected.warnings
    assert_same_frame(got.checkpoints, expected.checkpoints, ["step"])
    assert_same_frame(got.components, expected.components, ["step", "name"])
    assert_same_frame(got.edges, expected.edges, ["step", "source", "target"])
    pd.testing.assert_frame_equal(got.phases, expected.phases)
    assert_same_paths(got.paths, expected.paths)
    assert_same_frame(got.persistence, expected.persistence, ["path"])
    assert_same_frame(got.phase_paths, expected.phase_paths, ["phase"])
    # the scenario has something to compare
    assert not expected.paths.paths.empty and len(expected.edges)
    assert expected.components["role"].notna().any()


# --- write_report() ----------------------------------------------------------------------------
def graph_blocks(index: Path) -> dict[str, Any]:
    """Step → the parsed neo4j-viz data of that step's graph (from the page's #graph-steps)."""
    [payload] = GRAPH_STEPS.findall(index.read_text(encoding="utf-8"))
    blocks = json.loads(payload)
    out = {}
    for step, block in blocks.items():
        [data] = VIZ_DATA.findall(block)
        out[step] = json.loads(data)
    return out


def assert_close(got: Any, expected: Any, where: str = "") -> None:
    """Parsed JSON equal, floats to 1e-9."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(expected), where
        for key in expected:
            assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_close(g, e, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(got, bool):
        assert isinstance(got, int | float), where
        assert math.isclose(got, expected, rel_tol=0, abs_tol=FLOAT_TOL), (where, got, expected)
    else:
        assert got == expected and type(got) is type(expected), (where, got, expected)


def test_write_report_on_neo4j_draws_what_the_embedded_store_draws(reports):
    got, expected = reports.written["neo4j"], reports.written["embedded"]
    assert got.graph_steps == expected.graph_steps == RUN_STEPS
    assert (got.kinds, got.warnings) == (expected.kinds, expected.warnings)
    assert [p.name for p in got.figures] == [p.name for p in expected.figures]
    assert got.figures and got.index.name == expected.index.name == INDEX
    # the figures are the same PNG bytes
    for g, e in zip(got.figures, expected.figures, strict=True):
        assert g.read_bytes() == e.read_bytes(), g.name
    # the interactive graph: the same nodes, edges and properties per step
    blocks, expected_blocks = graph_blocks(got.index), graph_blocks(expected.index)
    assert list(blocks) == [str(s) for s in RUN_STEPS] == list(expected_blocks)
    for step, data in expected_blocks.items():
        assert data["nodes"] and data["relationships"]
        assert_close(blocks[step], data, f"step {step}")


# --- what the report sends to Neo4j ------------------------------------------------------------
def report_calls(reports: Reports) -> list:
    return reports.driver.calls()


def name_of(text: str) -> str:
    """The statement's file name, else what the GDS client called."""
    if text == "RETURN gds.version()":
        return "gds.version"
    if text in NAMED:
        return NAMED[text]
    return text.removeprefix("CALL ").split("(", 1)[0]


def test_the_report_sends_named_read_statements_with_parameters_only(reports):
    calls = report_calls(reports)
    sent = {name_of(c.query) for c in calls}
    reads = {"ask_run", "run_config", "checkpoints", "components_of_run", "edges_of_run"}
    reads |= {"circuits_of_run", "component_names", "graph_edges"}
    paths = {"gds_project", "gds_path_yens", "gds.version", "gds.graph.drop"}
    assert reads | paths <= sent
    for call in calls:
        text = call.query
        # a named statement, text equal to its file (comments dropped), or the client's call
        assert text in NAMED or text == "RETURN gds.version()" or CLIENT_CALL.fullmatch(text), text
        # every value a parameter: every $name is given, no value in the text
        assert set(re.findall(r"\$(\w+)", text)) <= set(call.params), text
        assert reports.run_id not in text and str(TAU) not in text and str(DEFAULT_TAU) not in text
        assert not any(str(step) in text for step in RUN_STEPS[1:]), text
        assert not any(re.search(rf"['\"]{re.escape(n)}['\"]", text) for n in reports.sweep_names)
    # the graph drawn of each step: every positive direct edge (a computed analysis reads its
    # graphs at its τ on total effects first)
    keys = [checkpoint_key(reports.run_id, s) for s in RUN_STEPS]
    graphs = [c.params for c in calls if name_of(c.query) == "graph_edges"]
    drawn = [{"checkpoint_key": k, "tau": ALL_POSITIVE, "measure": "direct"} for k in keys]
    analysed = [] if reports.neo4j.analysed else [{**p, "tau": DEFAULT_TAU} for p in drawn]
    assert graphs == [{**p, "measure": "total"} for p in analysed] + drawn


def test_the_report_never_writes(reports):
    driver = reports.driver
    for call in driver.calls():
        name = name_of(call.query)
        if call.query in NAMED:
            assert not WRITE_CLAUSE.search(call.query), name  # gds_written, *_write, … not sent
        else:  # the GDS client: streams, the version and the catalog only
            assert not name.endswith((".write", ".mutate")), name
    assert not any(name_of(c.query).endswith("_write") for c in driver.calls())
    # the store's own transactions are READ ones; every projection is dropped
    managed = {t.mode for t in driver.transactions if t.kind == "managed"}
    assert managed == {"READ"}
    assert {t.outcome for t in driver.transactions} == {"committed"}
    assert driver.catalog == {}
    assert reports.after == reports.before


def test_every_statement_the_report_sends_passes_the_linter(reports):
    texts = sorted({c.query for c in report_calls(reports)})
    results = lint({f"sent{i}": q for i, q in enumerate(texts)})
    problems = {name: diags for name, diags in results.items() if diags}
    assert not problems, problems
