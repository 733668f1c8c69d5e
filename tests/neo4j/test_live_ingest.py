"""The ingest path against a live Neo4j, through the ``circuitatlas`` command where a user would
use it: a real toy checkpoint directory (``--model``) and a sweep directory (``--from``), each
read back equal to the same ingest into an embedded LadybugDB store; resume; two concurrent shard
processes; read-only user Cypher; names that are hard to quote.

Floats are compared exactly: both backends store IEEE doubles and the read path does no
arithmetic on them, so nothing may differ (the order of rows may: frames are sorted first).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from cli_process import Ingested, circuitatlas, circuitatlas_process, finish
from store_dump import dump_neo4j, without_created_at

from circuitatlas.ingest.pipeline import SweepResult, write_sweep
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store
from circuitatlas.store.base import StoreBase
from circuitatlas.store.ingest import ingest_sweep, sweep_frames
from circuitatlas.store.rows import RunRecord

# a tiny real run: 4 checkpoints of the toy model after 20 training steps, swept on 4 prompts
TOY_STEPS, TOY_CHECKPOINTS = 20, 4
SWEEP_OPTIONS = ("--prompts", "4", "--seq-len", "9", "--device", "cpu")
# names a statement built by formatting would break: quotes, backslashes, keywords, unicode
HARD_NAMES = {
    "a0.h0": 'it\'s "quoted" \\ back\\slash',
    "a0.h1": "MATCH (n) DETACH DELETE n //",
    "m0": "RETURN ünï 🧠 $name {x: 1}",
    "m1": "`tick`; CREATE (:Run)",
}
WRITES = {
    "CREATE": "CREATE (:Run {run_id: $run_id + '-copy'})",
    "SET": "MATCH (c:Component {run_id: $run_id}) SET c.name = 'x'",
    "DELETE": "MATCH (c:Component {run_id: $run_id}) DETACH DELETE c",
    "MERGE": "MERGE (r:Run {run_id: $run_id}) SET r.model = 'x'",
}


def ingest(store: str, *source: str) -> Ingested:
    """``circuitatlas ingest SOURCE --store STORE``."""
    return Ingested.of(circuitatlas("ingest", *source, "--store", store))


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def assert_same_reads(got: StoreBase, expected: StoreBase, run_id: str) -> None:
    """Every read of the run equal in both stores: its ``runs()`` row (``created_at`` aside),
    counts, checkpoints, components and edges, unfiltered and at τ on both measures, of the run
    and of one step. τ is the median similarity, so about half the edges pass."""
    runs = [s.runs() for s in (got, expected)]
    mine, reference = (r[r.run_id == run_id].drop(columns="created_at") for r in runs)
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), reference.reset_index(drop=True))
    assert got.counts(run_id) == expected.counts(run_id)
    edge_keys = ["step", "source", "target"]
    every = expected.edges(run_id)
    tau = float(every.similarity.median())
    direct_tau = float(every.direct_similarity.median())
    step = int(every.step.max())
    reads: list[tuple[Callable[[StoreBase], pd.DataFrame], list[str]]] = [
        (lambda s: s.checkpoints(run_id), ["step"]),
        (lambda s: s.components(run_id), ["step", "name"]),
        (lambda s: s.edges(run_id), edge_keys),
        (lambda s: s.edges(run_id, tau=tau), edge_keys),
        (lambda s: s.edges(run_id, tau=direct_tau, measure="direct"), edge_keys),
        (lambda s: s.edges(run_id, step=step, tau=tau), edge_keys),
    ]
    for read, keys in reads:
        mine, reference = _sorted(read(got), keys), _sorted(read(expected), keys)
        assert len(reference) > 0
        pd.testing.assert_frame_equal(mine, reference, check_exact=True)
    assert 0 < len(got.edges(run_id, tau=tau)) < len(every)


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint directory of a tiny real toy run, trained here (about a second)."""
    from circuitatlas.ingest.toy import train_toy

    out = tmp_path_factory.mktemp("live-ingest") / "toy"
    train_toy(out, steps=TOY_STEPS, checkpoints=TOY_CHECKPOINTS, seed=0, progress=False)
    return out


def sweep_dir(sweep: SweepResult, parent: Path) -> str:
    """``sweep`` written as ``circuitatlas sweep --out`` writes it; the directory."""
    return str(write_sweep(sweep, parent / f"sweep-{sweep.run_id}"))


@pytest.fixture(params=["model", "from"])
def source(
    request: pytest.FixtureRequest, toy_dir: Path, sweep: SweepResult, tmp_path: Path
) -> tuple[str, ...]:
    """The ingest's source options: the toy's checkpoints swept now, or a sweep directory
    (written in UNWIND batches of 7 rows, so every table takes several)."""
    if request.param == "model":
        return ("--model", str(toy_dir), *SWEEP_OPTIONS)
    return ("--from", sweep_dir(sweep, tmp_path), "--batch-size", "7")


def test_cli_ingest_equals_the_embedded_store_and_resumes(
    source: tuple[str, ...], neo4j_url: str, tmp_path: Path, delete_runs: list[str]
) -> None:
    embedded = str(tmp_path / "x.lbdb")
    reference = ingest(embedded, *source)
    delete_runs.append(reference.run_id)
    assert ingest(neo4j_url, *source) == reference
    assert reference.written > 1 and reference.skipped == 0
    run_id = reference.run_id
    with open_store(neo4j_url) as live, open_store(embedded) as ladybug:
        assert_same_reads(live, ladybug, run_id)
        before = dump_neo4j(live, [run_id])
    assert ingest(neo4j_url, *source) == Ingested(run_id, 0, reference.written)
    with open_store(neo4j_url) as live:
        assert dump_neo4j(live, [run_id]) == before  # created_at included: kept on resume


def test_concurrent_shard_processes_store_what_one_process_stores(
    toy_dir: Path,
    neo4j_url: str,
    delete_runs: list[str],
    delete_now: Callable[[list[str]], None],
) -> None:
    """One process first (its run id registered for deletion before anything can fail), then,
    the run deleted, shards 1/2 and 2/2 at once: each checkpoint its own transaction, so the
    shards' writes interleave and each plans NEXT from what the other committed."""
    # another prompt seed than the test above: another run id, same model
    source = ("--model", str(toy_dir), *SWEEP_OPTIONS, "--seed", "1", "--store", neo4j_url)
    one = ingest(neo4j_url, *source)
    delete_runs.append(one.run_id)
    assert one.written == TOY_CHECKPOINTS
    with open_store(neo4j_url) as live:
        single = without_created_at(dump_neo4j(live, [one.run_id]))
    n_components = len(single["Component"]) // TOY_CHECKPOINTS
    assert len(single["NEXT"]) == n_components * (TOY_CHECKPOINTS - 1)
    delete_now([one.run_id])
    shards = [circuitatlas_process("ingest", *source, "--shard", f"{i}/2") for i in (1, 2)]
    done = [Ingested.of(finish(p)) for p in shards]
    assert done == [Ingested(one.run_id, TOY_CHECKPOINTS // 2, 0)] * 2
    with open_store(neo4j_url) as live:
        assert without_created_at(dump_neo4j(live, [one.run_id])) == single


def test_checkpoints_written_out_of_order_link_next_as_in_order(
    sweep: SweepResult,
    neo4j_url: str,
    delete_runs: list[str],
    delete_now: Callable[[list[str]], None],
) -> None:
    """Each write plans NEXT from the steps stored: before, after and between stored ones (the
    link it cuts removed); writing a stored step again rolls back and changes nothing."""
    delete_runs.append(sweep.run_id)
    run = RunRecord.from_config(sweep.config)
    frames = {f.step: f for f in sweep_frames(sweep, [0, 10, 20, 40])}
    with open_store(neo4j_url, writable=True) as live:
        for step in (20, 0, 40, 10):
            assert live.write_checkpoint(run, frames[step])
        scattered = dump_neo4j(live, [run.run_id])
        assert not live.write_checkpoint(run, frames[10])
        assert dump_neo4j(live, [run.run_id]) == scattered
        delete_now([run.run_id])
        assert ingest_sweep(live, sweep, progress=False).written == [0, 10, 20, 40]
        assert without_created_at(dump_neo4j(live, [run.run_id])) == without_created_at(scattered)


def test_user_cypher_that_writes_is_refused_by_the_server(
    sweep: SweepResult, neo4j_url: str, delete_runs: list[str]
) -> None:
    """Each write (CREATE, SET, DELETE, MERGE) is one line and exit status 1, and the run is as
    it was: the READ session's access mode is enforced by Neo4j, circuitatlas parses nothing."""
    delete_runs.append(sweep.run_id)
    run_ids = [sweep.run_id, f"{sweep.run_id}-copy"]
    with open_store(neo4j_url, writable=True) as live:
        ingest_sweep(live, sweep, progress=False)
        before = dump_neo4j(live, run_ids)
    param = f"run_id={json.dumps(sweep.run_id)}"
    started = {
        clause: circuitatlas_process("query", text, "--param", param, "--store", neo4j_url)
        for clause, text in WRITES.items()
    }
    for clause, process in started.items():
        done = finish(process)
        assert (done.returncode, done.stdout) == (1, ""), clause
        assert done.stderr.count("\n") == 1 and "READ session" in done.stderr, done.stderr
    with open_store(neo4j_url) as live:
        assert dump_neo4j(live, run_ids) == before


def _json_rows(*args: str) -> list[dict[str, object]]:
    done = circuitatlas(*args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_hard_names_round_trip_through_the_cli(
    neo4j_url: str, tmp_path: Path, delete_runs: list[str]
) -> None:
    model = f"live-'{uuid.uuid4()}' \"RETURN 1\" \\ ünï"
    sweep = synthetic_sweep(2, 2, [0, 1], seed=2, model=model, names=HARD_NAMES)
    delete_runs.append(sweep.run_id)
    source = ("--from", sweep_dir(sweep, tmp_path))
    assert ingest(neo4j_url, *source).written == 2
    embedded = str(tmp_path / "x.lbdb")
    with open_store(neo4j_url) as live, open_store(embedded, writable=True) as ladybug:
        ingest_sweep(ladybug, sweep, progress=False)
        assert_same_reads(live, ladybug, sweep.run_id)
    runs = _json_rows("runs", "--store", neo4j_url)
    assert [r["model"] for r in runs if r["run_id"] == sweep.run_id] == [model]
    run_param = f"run_id={json.dumps(sweep.run_id)}"
    hard = sorted(HARD_NAMES.values())  # given as a parameter, each finds its own nodes
    found = _json_rows(
        "query",
        "MATCH (c:Component {run_id: $run_id}) "
        "RETURN c.name AS name, c.step AS step, c.name IN $names AS given",
        *("--param", run_param, "--param", f"names={json.dumps(hard)}", "--store", neo4j_url),
    )
    assert {r["name"] for r in found} == set(sweep.components.name)
    given = sorted((r["name"], r["step"]) for r in found if r["given"])
    assert given == [(n, s) for n in hard for s in (0, 1)]
