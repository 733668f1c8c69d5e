"""What the report sends to Neo4j, through the recording driver: one sweep ingested into the
stand-in, analysed there (stored) or not (the report computes the analysis, GDS streaming,
without writing); everything ``write_report`` sends is a named read statement (or the GDS
client's parameterised calls) with every value a parameter, which Neo4j's own linter accepts,
and the report never writes. That the report on Neo4j equals the embedded one (its data, its
figures, its graphs) is checked on a live server (``tests/neo4j/test_live_queries.py``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import pytest
from cypher_lint import lint
from neo4j_recording import RecordingDriver, ingested_store

from circuitatlas.analytics.analyze import DEFAULT_TAU, analyze
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.report import write_report
from circuitatlas.report.build import ALL_POSITIVE
from circuitatlas.store.neo4j import Neo4jStore
from circuitatlas.store.rows import checkpoint_key
from circuitatlas.store.statements import statement, statement_names

RUN_STEPS = [0, 1357, 2468, 3579, 4680, 5791]  # no statement text holds these
TAU = 0.73  # the stored analysis's; the computed one is at DEFAULT_TAU
SCENARIOS = ["analysed", "computed"]
NAMED = {statement("neo4j", n): n for n in statement_names("neo4j") if n != "schema"}
# how the GDS client calls a procedure or the catalog: every value a parameter
CLIENT_CALL = re.compile(r"CALL gds(\.\w+)+\((\$\w+(, \$\w+)*)?\)( YIELD \w+(, \w+)*)?")
WRITE_CLAUSE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|DETACH|REMOVE|FOREACH|LOAD\s+CSV)\b")


@dataclass
class Reports:
    """One scenario: what the report sent to Neo4j, with the stand-in's stored state before
    and after."""

    run_id: str
    sweep_names: set[str]
    analysed: bool
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


@pytest.fixture(scope="module", params=SCENARIOS)
def reports(request, tmp_path_factory) -> Reports:
    analysed = request.param == "analysed"
    sweep = synthetic_sweep(n_layers=2, n_heads=2, steps=RUN_STEPS, seed=1)
    writer, driver = ingested_store(sweep, writable=True)
    if analysed:
        analyze(writer, sweep.run_id, TAU)
    # a fresh read-only store: everything the report sends is recorded
    report_store = Neo4jStore("neo4j://localhost", writable=False, driver=driver, database="atlas")
    driver.transactions.clear()
    before = stored_state(driver)
    out = tmp_path_factory.mktemp(request.param)
    written = write_report(report_store, sweep.run_id, out, progress=False)
    assert written.figures and written.graph_steps == RUN_STEPS
    return Reports(
        sweep.run_id, set(sweep.components.name), analysed, driver, before, stored_state(driver)
    )


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
    analysed = [] if reports.analysed else [{**p, "tau": DEFAULT_TAU} for p in drawn]
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
