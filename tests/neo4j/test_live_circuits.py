"""Live Neo4j: task-metric edge scores (``patch_effect``, ``eap_ig``; NaN stored as no property)
and edge-level circuits (``CIRCUIT_EDGE``) read back as the embedded store reads them."""

from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest
from circuit_records import edge_circuit, strongest_edges, with_scores

from circuitatlas.ingest.contract import EDGE_SCORE_COLUMNS
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.circuits import circuits_of
from circuitatlas.queries.paths import find_paths
from circuitatlas.queries.trajectory import edge_history
from circuitatlas.store import open_store
from circuitatlas.store.base import CIRCUIT_COLUMNS, CIRCUIT_EDGE_COLUMNS

STEPS = [0, 10, 20]


@pytest.fixture(scope="module")
def scored():
    run = synthetic_sweep(2, 2, STEPS, seed=6, model=f"live-scored-{uuid.uuid4()}")
    return with_scores(run, seed=6)


def by_edge(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["step", "source", "target"], ignore_index=True)


def test_edge_scores_round_trip_and_equal_the_embedded_store(both_stores, scored):
    store, embedded = both_stores(scored)
    with open_store(embedded) as local:
        expected = local.edges(scored.run_id)
        expected_step = local.edges(scored.run_id, step=10, tau=0.7, measure="direct")
        expected_history = edge_history(local, scored.run_id, "input", "logits")
    got = store.edges(scored.run_id)
    pd.testing.assert_frame_equal(by_edge(got), by_edge(scored.edges), check_exact=True)
    pd.testing.assert_frame_equal(by_edge(got), by_edge(expected), check_exact=True)
    got_step = store.edges(scored.run_id, step=10, tau=0.7, measure="direct")
    pd.testing.assert_frame_equal(by_edge(got_step), by_edge(expected_step), check_exact=True)
    history = edge_history(store, scored.run_id, "input", "logits")
    pd.testing.assert_frame_equal(history, expected_history, check_exact=True)
    assert history["eap_ig"].isna().iloc[0]  # the first step has no EAP-IG score


def test_a_score_not_computed_is_no_property(both_stores, scored):
    store, _ = both_stores(scored)
    found = store.cypher(
        "MATCH (:Component {run_id: $run_id})-[e:INFLUENCES]->() "
        "RETURN count(e.patch_effect) AS set, sum(CASE WHEN e.patch_effect IS NULL THEN 1 "
        "ELSE 0 END) AS unset",
        run_id=scored.run_id,
    )
    assert found["unset"].iloc[0] == scored.edges["patch_effect"].isna().sum() > 0
    assert found["set"].iloc[0] == scored.edges["patch_effect"].notna().sum()


def test_a_run_whose_edges_have_no_score_reads_nan_columns(both_stores):
    run = synthetic_sweep(1, 2, [0], seed=7, model=f"live-unscored-{uuid.uuid4()}")
    store, embedded = both_stores(run)
    with open_store(embedded) as local:
        expected = local.edges(run.run_id)
    got = store.edges(run.run_id)
    assert got[EDGE_SCORE_COLUMNS].isna().all().all()
    pd.testing.assert_frame_equal(by_edge(got), by_edge(expected), check_exact=True)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists as plain lists (the driver's and LadybugDB's alike), rows by key."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = [list(v) if isinstance(v, list | tuple) else v for v in frame[column]]
    return frame.sort_values("key", ignore_index=True)


def test_circuits_and_circuit_edges_equal_the_embedded_store_and_replace_whole(
    both_stores, scored, neo4j_driver
):
    store, embedded = both_stores(scored)
    with open_store(embedded) as local:
        paths = [c.record() for c in circuits_of(find_paths(local, scored.run_id, [0, 20]))]
    edges, scores = strongest_edges(scored, 20, 5)
    records = [
        *paths,
        edge_circuit(scored.run_id, 20, edges, scores),
        edge_circuit(scored.run_id, 10, *strongest_edges(scored, 10, 3), "eap-ig", None),
    ]
    replacement = edge_circuit(scored.run_id, 20, edges[1:3], [scores[1], -0.25])
    with open_store(embedded, writable=True) as local:
        local.write_circuits(records)
        local.write_circuits([replacement])
        expected = local.circuits(scored.run_id)
        expected_edges = local.circuit_edges(scored.run_id)
        expected_one = local.circuit_edges(scored.run_id, replacement["key"])
    store.write_circuits(records)
    first = store.circuit_edges(scored.run_id, records[-2]["key"])
    assert first["rank"].tolist() == [1, 2, 3, 4, 5] and first["score"].tolist() == scores
    store.write_circuits([replacement])  # the same key: replaced, its old CIRCUIT_EDGE gone
    got = store.circuits(scored.run_id)
    assert list(got.columns) == CIRCUIT_COLUMNS
    pd.testing.assert_frame_equal(plain(got), plain(expected), check_exact=True)
    assert sorted(got["kind"]) == ["edges", "edges", "paths", "paths"]
    got_edges = store.circuit_edges(scored.run_id)
    assert list(got_edges.columns) == CIRCUIT_EDGE_COLUMNS
    pd.testing.assert_frame_equal(got_edges, expected_edges, check_exact=True)
    one = store.circuit_edges(scored.run_id, replacement["key"])
    pd.testing.assert_frame_equal(one, expected_one, check_exact=True)
    assert list(zip(one.source, one.target, strict=True)) == edges[1:3]
    assert one["score"].tolist() == [scores[1], -0.25]
    count = store.cypher(
        "MATCH (:Component {run_id: $run_id})-[e:CIRCUIT_EDGE]->() "
        "RETURN e.circuit AS circuit, count(*) AS n ORDER BY circuit",
        run_id=scored.run_id,
    )
    assert count["n"].tolist() == [3, 2]  # the eap-ig circuit of step 10, the replacement
    members = store.cypher(
        "MATCH (m:Component)-[:IN_CIRCUIT]->(:Circuit {key: $key}) RETURN m.name AS name",
        key=replacement["key"],
    )
    assert sorted(members["name"]) == sorted({n for e in edges[1:3] for n in e})

    # properties the schema does not know come after CIRCUIT_COLUMNS, alphabetically
    neo4j_driver.execute_query(
        "MATCH (c:Circuit {key: $key}) SET c.zeta = 1, c.alpha = 'a'",
        {"key": replacement["key"]},
        database_=os.environ.get("NEO4J_DATABASE"),
    )
    extra = store.circuits(scored.run_id)
    assert list(extra.columns) == [*CIRCUIT_COLUMNS, "alpha", "zeta"]
    assert extra.set_index("key").loc[replacement["key"], "alpha"] == "a"
