"""The same ingest and reads as the embedded store's tests, against a live Neo4j."""

from __future__ import annotations

import threading
from itertools import pairwise

import pandas as pd
import pytest

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def _next_links(store, run_id: str) -> set[tuple[str, int, int]]:
    frame = store.cypher(
        "MATCH (a:Component)-[:NEXT]->(b:Component) WHERE a.run_id = $run_id "
        "RETURN a.name AS name, a.step AS a, b.step AS b",
        run_id=run_id,
    )
    return set(zip(frame.name, frame.a, frame.b, strict=True))


def test_ingest_round_trips_and_resumes(neo4j_url, sweep, delete_runs):
    delete_runs.append(sweep.run_id)
    with open_store(neo4j_url, writable=True, batch_size=5) as store:
        assert ingest_sweep(store, sweep, progress=False).written == [0, 10, 20, 40]
        assert ingest_sweep(store, sweep, progress=False).written == []
        keys = ["step", "source", "target"]
        pd.testing.assert_frame_equal(
            _sorted(store.edges(sweep.run_id), keys), _sorted(sweep.edges, keys)
        )
        got = store.components(sweep.run_id)[list(sweep.components.columns)]
        pd.testing.assert_frame_equal(
            _sorted(got, ["step", "name"]), _sorted(sweep.components, ["step", "name"])
        )
        expected = sweep.edges[sweep.edges.similarity < 0.7]
        assert len(store.edges(sweep.run_id, tau=0.7)) == len(expected)
        assert store.counts(sweep.run_id) == {
            "checkpoints": 4,
            "components": len(sweep.components),
            "edges": len(sweep.edges),
        }


def test_concurrent_shards_link_next_like_one_ingest(neo4j_url, sweep, delete_runs):
    delete_runs.append(sweep.run_id)
    errors: list[BaseException] = []

    def shard(i: int) -> None:
        try:
            with open_store(neo4j_url, writable=True) as store:
                ingest_sweep(store, sweep, shard=(i, 2), progress=False, batch_edges=1)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=shard, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    names = set(sweep.components.name)
    steps = [0, 10, 20, 40]
    expected = {(n, a, b) for n in names for a, b in pairwise(steps)}
    with open_store(neo4j_url) as store:
        assert _next_links(store, sweep.run_id) == expected


def test_user_cypher_cannot_write(neo4j_url, sweep, delete_runs):
    delete_runs.append(sweep.run_id)
    with open_store(neo4j_url, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
        with pytest.raises(CircuitAtlasError, match="READ session"):
            store.cypher("MATCH (c:Component {run_id: $r}) SET c.name = 'x'", r=sweep.run_id)
        assert set(store.components(sweep.run_id).name) == set(sweep.components.name)


def test_hard_names_round_trip(neo4j_url, delete_runs):
    import uuid

    from circuitatlas.ingest.synthetic import synthetic_sweep

    hard = {"a0.h0": 'it\'s "quoted" \\ MATCH (n) DETACH DELETE n //', "m1": "RETURN ünï"}
    sweep = synthetic_sweep(2, 2, [0, 1], model=f"live-'{uuid.uuid4()}' RETURN 1", names=hard)
    delete_runs.append(sweep.run_id)
    with open_store(neo4j_url, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
        assert set(hard.values()) <= set(store.components(sweep.run_id).name)
        assert sweep.config["model"] in set(store.runs().model)
