"""The embedded store with task-metric edge scores (``patch_effect``, ``eap_ig``) and edge-level
circuits (``Circuit`` of kind "edges" with its ``CIRCUIT_EDGE`` relationships); a store written
before them opens, reads them as NaN / none, and gets them on a writable open."""

from __future__ import annotations

import json

import ladybug
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from circuit_records import ARROW, STAMP, edge_circuit, strongest_edges, with_scores
from store_dump import dump

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.paths import PathSettings
from circuitatlas.ingest.contract import EDGE_SCORE_COLUMNS
from circuitatlas.ingest.pipeline import read_sweep, write_sweep
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.circuits import circuits_of
from circuitatlas.queries.paths import find_paths
from circuitatlas.queries.trajectory import edge_history
from circuitatlas.store import open_store
from circuitatlas.store.base import (
    CIRCUIT_COLUMNS,
    CIRCUIT_EDGE_COLUMNS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
)
from circuitatlas.store.ingest import ingest_sweep, sweep_frames
from circuitatlas.store.rows import (
    EDGE_FRAME_COLUMNS,
    RunRecord,
    batch_rows,
    checkpoint_rows,
)
from circuitatlas.store.statements import statement, statements

STEPS = [0, 10, 20]


@pytest.fixture(scope="module")
def run():
    return with_scores(synthetic_sweep(2, 2, STEPS, seed=4), seed=4)


@pytest.fixture(scope="module")
def stored(tmp_path_factory, run):
    path = tmp_path_factory.mktemp("scored") / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, run, progress=False)
    return path


def by_edge(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["step", "source", "target"], ignore_index=True)


def test_edge_scores_and_their_nans_round_trip_exactly(stored, run):
    assert run.edges["patch_effect"].isna().any() and run.edges["patch_effect"].notna().any()
    with open_store(stored) as store:
        edges = store.edges(run.run_id)
        at = store.edges(run.run_id, step=10, tau=0.7)
        nulls = store.cypher(
            "MATCH ()-[e:INFLUENCES]->() WHERE e.patch_effect IS NULL RETURN count(*) AS n"
        )
        history = edge_history(store, run.run_id, "input", "logits")
    assert list(edges.columns) == EDGE_FRAME_COLUMNS
    pd.testing.assert_frame_equal(by_edge(edges), by_edge(run.edges), check_exact=True)
    want = run.edges[(run.edges.step == 10) & (run.edges.similarity < 0.7)]
    pd.testing.assert_frame_equal(by_edge(at), by_edge(want), check_exact=True)
    # NaN is stored as null, not as a NaN value
    assert nulls["n"].iloc[0] == run.edges["patch_effect"].isna().sum()
    one = run.edges[(run.edges.source == "input") & (run.edges.target == "logits")]
    assert history[EDGE_SCORE_COLUMNS].equals(one[EDGE_SCORE_COLUMNS].reset_index(drop=True))


def test_frames_without_score_columns_store_them_as_nan(tmp_path):
    run = synthetic_sweep(1, 2, [0], seed=2)
    run.edges = run.edges.drop(columns=EDGE_SCORE_COLUMNS)
    with open_store(tmp_path / "s.lbdb", writable=True) as store:
        ingest_sweep(store, run, progress=False)
        edges = store.edges(run.run_id)
    assert edges[EDGE_SCORE_COLUMNS].isna().all().all() and len(edges) == len(run.edges)
    assert edges[EDGE_SCORE_COLUMNS].dtypes.eq(np.float64).all()


def test_similarity_columns_stay_required(tmp_path):
    run = synthetic_sweep(1, 2, [0], seed=2)
    run.edges = run.edges.drop(columns=["direct_std"])
    with (
        open_store(tmp_path / "s.lbdb", writable=True) as store,
        pytest.raises(CircuitAtlasError, match=r"missing columns \['direct_std'\]"),
    ):
        ingest_sweep(store, run, progress=False)


def test_sweeps_on_disk_keep_scores_and_older_ones_read_as_nan(tmp_path, run):
    out = write_sweep(run, tmp_path / "sweep")
    back = read_sweep(out)
    pd.testing.assert_frame_equal(back.edges, run.edges, check_exact=True)
    older = pd.read_parquet(out / "edges.parquet").drop(columns=EDGE_SCORE_COLUMNS)
    older.to_parquet(out / "edges.parquet", index=False)
    back = read_sweep(out)
    assert list(back.edges.columns) == EDGE_FRAME_COLUMNS
    assert back.edges[EDGE_SCORE_COLUMNS].isna().all().all()


# --- edge-level circuits ------------------------------------------------------------------------
def circuit_edge_rows(store) -> list[str]:
    return dump(store)["CIRCUIT_EDGE"]


def test_an_edge_circuit_is_written_read_back_and_replaced_whole(tmp_path, run):
    path = tmp_path / "c.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, run, progress=False)
        paths = [c.record() for c in circuits_of(find_paths(store, run.run_id, [10]))]
        edges, scores = strongest_edges(run, 10, 4)
        first = edge_circuit(run.run_id, 10, edges, scores)
        store.write_circuits([*paths, first])
        circuits = store.circuits(run.run_id)
        found = store.circuit_edges(run.run_id)
        assert len(circuit_edge_rows(store)) == 4
        # the same key again, fewer edges: replaced, no stale CIRCUIT_EDGE or IN_CIRCUIT
        second = edge_circuit(run.run_id, 10, edges[:2], [scores[0], 0.5])
        store.write_circuits([second])
        again = store.circuits(run.run_id)
        found_again = store.circuit_edges(run.run_id, second["key"])
        members = store.cypher(
            "MATCH (m:Component)-[:IN_CIRCUIT]->(c:Circuit {key: $key}) RETURN m.name AS name",
            key=second["key"],
        )
        links = store.cypher(
            "MATCH (:Checkpoint)-[:HAS_CIRCUIT]->(c:Circuit {key: $key}) RETURN count(*) AS n",
            key=second["key"],
        )
        assert len(circuit_edge_rows(store)) == 2
        assert store.circuit_edges(run.run_id, "no such circuit").empty
    assert list(circuits.columns) == CIRCUIT_COLUMNS
    assert sorted(circuits["kind"]) == ["edges", "paths"]
    row = circuits.set_index("key").loc[first["key"]]
    assert row["edges"] == [f"{s}{ARROW}{t}" for s, t in edges] and row["n_edges"] == 4
    assert row["edge_scores"] == scores and row["scores"] == "exact" and row["target"] == 0.8
    assert pd.isna(row["source"]) and row["paths"] is None and pd.isna(row["k"])
    assert row["faithfulness"] == 0.85 and row["created_at"] == STAMP
    path_row = circuits[circuits["kind"] == "paths"].iloc[0]
    assert path_row["source"] == "input" and pd.isna(path_row["n_edges"])
    assert path_row["edges"] is None and pd.isna(path_row["target"])
    assert list(found.columns) == CIRCUIT_EDGE_COLUMNS
    assert found["circuit"].eq(first["key"]).all() and found["rank"].tolist() == [1, 2, 3, 4]
    assert list(zip(found.source, found.target, strict=True)) == edges
    assert found["score"].tolist() == scores and found["step"].eq(10).all()
    assert found[["step", "score", "rank"]].dtypes.astype(str).tolist() == [
        "int64",
        "float64",
        "int64",
    ]
    assert len(again) == len(circuits)
    assert again.set_index("key").loc[second["key"], "edges"] == [
        f"{s}{ARROW}{t}" for s, t in edges[:2]
    ]
    assert found_again["rank"].tolist() == [1, 2] and found_again["score"].tolist() == [
        scores[0],
        0.5,
    ]
    assert sorted(members["name"]) == sorted({n for e in edges[:2] for n in e})
    assert links["n"].iloc[0] == 1


def test_edges_outside_the_component_keys_are_refused_and_nothing_is_written(tmp_path, run):
    path = tmp_path / "c.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, run, progress=False)
        before = dump(store)
        edges, scores = strongest_edges(run, 0, 2)
        bad = edge_circuit(run.run_id, 0, edges, scores)
        bad["component_keys"] = bad["component_keys"][:1]
        with pytest.raises(CircuitAtlasError, match="not among its component_keys"):
            store.write_circuits([edge_circuit(run.run_id, 10, edges, scores), bad])
        assert dump(store) == before


@pytest.mark.parametrize("missing", [None, float("nan")])
@pytest.mark.parametrize("where", ["edge_scores", "edge_keys"])
def test_an_edge_without_a_score_is_refused_and_nothing_is_written(tmp_path, run, missing, where):
    path = tmp_path / "c.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, run, progress=False)
        before = dump(store)
        edges, scores = strongest_edges(run, 0, 2)
        bad = edge_circuit(run.run_id, 0, edges, scores)
        if where == "edge_scores":
            bad["edge_scores"] = [scores[0], missing]
        else:
            bad["edge_keys"][1]["score"] = missing
        with pytest.raises(CircuitAtlasError, match="an edge without a score"):
            store.write_circuits([bad])
        assert dump(store) == before


def test_a_failed_circuit_write_rolls_back_its_circuit_edges(tmp_path, run):
    path = tmp_path / "c.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, run, progress=False)
        edges, scores = strongest_edges(run, 0, 2)
        good = edge_circuit(run.run_id, 0, edges, scores)
        store.write_circuits([good])
        before = dump(store)
        broken = {**edge_circuit(run.run_id, 10, edges, scores), "step": "not a number"}
        with pytest.raises(RuntimeError):
            store.write_circuits([edge_circuit(run.run_id, 0, edges[:1], scores[:1]), broken])
        assert dump(store) == before


def test_circuits_of_a_run_without_any_are_an_empty_frame_of_the_columns(stored, run):
    with open_store(stored) as store:
        circuits = store.circuits(run.run_id)
        found = store.circuit_edges(run.run_id)
    assert circuits.empty and list(circuits.columns) == CIRCUIT_COLUMNS
    assert found.empty and list(found.columns) == CIRCUIT_EDGE_COLUMNS


# --- a store written before the scores and edge-level circuits ---------------------------------
_INFLUENCES_BEFORE = """CREATE REL TABLE IF NOT EXISTS INFLUENCES(
  FROM Component TO Component, run_id STRING, step INT64, weight DOUBLE, similarity DOUBLE,
  std DOUBLE, direct_weight DOUBLE, direct_similarity DOUBLE, direct_std DOUBLE
)"""
_CIRCUIT_BEFORE = """CREATE NODE TABLE IF NOT EXISTS Circuit(
  key STRING, run_id STRING, step INT64, source STRING, sink STRING, k INT64, measure STRING,
  tau DOUBLE, distance STRING, components STRING[], paths STRING[], strengths DOUBLE[],
  n_components INT64, faithfulness DOUBLE, ablation STRING, clean_metric DOUBLE,
  circuit_metric DOUBLE, ablated_metric DOUBLE, created_at STRING, PRIMARY KEY(key)
)"""
_COPY_INFLUENCES_BEFORE = """COPY INFLUENCES FROM (
  LOAD FROM $rows
  RETURN source_key, target_key, run_id, step, weight, similarity, std,
         direct_weight, direct_similarity, direct_std
)"""
_CIRCUIT_CREATE_BEFORE = """MATCH (ck:Checkpoint {key: $checkpoint_key})
CREATE (c:Circuit {
  key: $key, run_id: $run_id, step: $step, source: $source, sink: $sink, k: $k,
  measure: $measure, tau: $tau, distance: $distance, components: $components, paths: $paths,
  strengths: $strengths, n_components: $n_components, faithfulness: $faithfulness,
  ablation: $ablation, clean_metric: $clean_metric, circuit_metric: $circuit_metric,
  ablated_metric: $ablated_metric, created_at: $created_at
})
CREATE (ck)-[:HAS_CIRCUIT]->(c)"""


def previous_schema() -> list[str]:
    """The schema of the version before the scores: today's statements with INFLUENCES and
    Circuit as they were, no CIRCUIT_EDGE and none of the columns added with them."""
    out = []
    for text in statements("ladybug", "schema"):
        if "TABLE IF NOT EXISTS INFLUENCES(" in text:
            text = _INFLUENCES_BEFORE
        elif "TABLE IF NOT EXISTS Circuit(" in text:
            text = _CIRCUIT_BEFORE
        elif "CIRCUIT_EDGE" in text or text.startswith(
            ("ALTER TABLE INFLUENCES", "ALTER TABLE Circuit")
        ):
            continue
        out.append(text)
    return out


def write_previous_store(path, run, circuit) -> None:
    """A store as the previous version wrote it: its schema, ``run`` and one paths circuit."""
    db = ladybug.Database(str(path))
    conn = ladybug.Connection(db)
    try:
        for text in previous_schema():
            conn.execute(text)
        conn.execute(
            statement("ladybug", "schema_version_write"),
            {"name": SCHEMA_NAME, "version": SCHEMA_VERSION},
        )
        record = RunRecord.from_config(run.config)
        frames = [checkpoint_rows(record.run_id, f) for f in sweep_frames(run, STEPS)]
        rows = batch_rows(record.run_id, frames, [])
        conn.execute("BEGIN TRANSACTION")
        conn.execute(statement("ladybug", "run_merge"), record.parameters())
        for name, frame in (
            ("copy_checkpoint", rows.checkpoints),
            ("copy_has_checkpoint", rows.has_checkpoint),
            ("copy_component", rows.components),
            ("copy_has_component", rows.has_component),
            ("copy_next", rows.next),
        ):
            conn.execute(
                statement("ladybug", name),
                {"rows": pa.Table.from_pandas(frame, preserve_index=False)},
            )
        old_edges = rows.edges.drop(columns=EDGE_SCORE_COLUMNS)
        conn.execute(
            _COPY_INFLUENCES_BEFORE, {"rows": pa.Table.from_pandas(old_edges, preserve_index=False)}
        )
        conn.execute(statement("ladybug", "run_count"), {"run_id": record.run_id})
        added = ("component_keys", "edge_keys", "kind", "scores", "target", "edges")
        properties = {
            k: v for k, v in circuit.items() if k not in (*added, "edge_scores", "n_edges")
        }
        conn.execute(_CIRCUIT_CREATE_BEFORE, properties)
        conn.execute(statement("ladybug", "circuit_members"), {
            "key": circuit["key"], "component_keys": circuit["component_keys"]
        })  # fmt: skip
        conn.execute("COMMIT")
    finally:
        conn.close()
        db.close()


@pytest.fixture
def previous(tmp_path, run, stored):
    """(path of a store of the previous version holding ``run`` and a paths circuit, that
    circuit's record)."""
    with open_store(stored) as store:
        [circuit] = circuits_of(find_paths(store, run.run_id, [20], PathSettings(k=2)))
    record = circuit.record()
    path = tmp_path / "previous.lbdb"
    write_previous_store(path, run, record)
    return path, record


def test_a_previous_store_opens_read_only_and_reads_nan_scores_and_no_circuit_edges(previous, run):
    path, record = previous
    data = path.read_bytes()
    with open_store(path) as store:
        edges = store.edges(run.run_id)
        at = store.edges(run.run_id, step=0)
        history = edge_history(store, run.run_id, "input", "logits")
        circuits = store.circuits(run.run_id)
        found = store.circuit_edges(run.run_id)
    assert path.read_bytes() == data  # a read-only open changed nothing
    want = run.edges.assign(patch_effect=np.nan, eap_ig=np.nan)
    pd.testing.assert_frame_equal(by_edge(edges), by_edge(want), check_exact=True)
    assert at[EDGE_SCORE_COLUMNS].isna().all().all() and len(at) == (want.step == 0).sum()
    assert history[EDGE_SCORE_COLUMNS].isna().all().all() and len(history) == len(STEPS)
    assert list(circuits.columns) == CIRCUIT_COLUMNS and len(circuits) == 1
    row = circuits.iloc[0]
    assert row["key"] == record["key"] and row["paths"] == record["paths"]
    assert pd.isna(row["kind"]) and row["edges"] is None and pd.isna(row["n_edges"])
    assert found.empty and list(found.columns) == CIRCUIT_EDGE_COLUMNS


def test_a_previous_store_gets_the_new_columns_on_a_writable_open_and_keeps_its_data(previous, run):
    path, _ = previous
    with open_store(path) as store:
        before_edges = store.edges(run.run_id)
        before_circuits = store.circuits(run.run_id)
    with open_store(path, writable=True) as store:
        columns = set(store.cypher("CALL table_info('INFLUENCES') RETURN name")["name"])
        tables = set(store.cypher("CALL show_tables() RETURN name")["name"])
        pd.testing.assert_frame_equal(store.edges(run.run_id), before_edges)
        pd.testing.assert_frame_equal(store.circuits(run.run_id), before_circuits)
        # a new checkpoint with scores, and an edge circuit, go in beside the old data
        more = with_scores(synthetic_sweep(2, 2, [30], seed=4), seed=5)
        more.config = {**run.config, "steps": [*STEPS, 30]}
        frames = next(sweep_frames(more, [30]))
        assert store.write_checkpoint(RunRecord.from_config(more.config), frames)
        edges, scores = strongest_edges(more, 30, 3)
        store.write_circuits([edge_circuit(run.run_id, 30, edges, scores)])
        stored = store.edges(run.run_id, step=30)
        found = store.circuit_edges(run.run_id)
        circuits = store.circuits(run.run_id)
    assert set(EDGE_SCORE_COLUMNS) <= columns and "CIRCUIT_EDGE" in tables
    pd.testing.assert_frame_equal(
        by_edge(stored), by_edge(more.edges.reset_index(drop=True)), check_exact=True
    )
    assert len(found) == 3 and sorted(circuits["kind"].fillna("")) == ["", "edges"]
    with open_store(path) as store:  # read-only again, now with everything
        assert store.edges(run.run_id)["patch_effect"].notna().any()
        assert len(store.circuit_edges(run.run_id)) == 3


def test_the_circuits_frame_is_json_ready(tmp_path, run):
    """Lists stay lists, nulls are None/NaN: what ``--format json`` and the report read."""
    path = tmp_path / "c.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, run, progress=False)
        edges, scores = strongest_edges(run, 20, 2)
        store.write_circuits([edge_circuit(run.run_id, 20, edges, scores, "eap-ig")])
        circuits = store.circuits(run.run_id)
    text = circuits.to_json(orient="records")
    [back] = json.loads(text)
    assert back["scores"] == "eap-ig" and back["edges"] == [f"{s}{ARROW}{t}" for s, t in edges]
