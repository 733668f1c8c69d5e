"""The embedded store (a real LadybugDB file) end to end: what goes in comes out exactly.

Synthetic sweeps (seeded random values, a valid configuration with its ``run_id``, as
``circuitatlas sweep`` writes) are ingested in every order the ingest allows (shuffled, one by
one, in batches, as shards); the store must end up the same whatever the order, refuse what
writes through user Cypher, and refuse bad stores and bad inputs with one clear line.
"""

import itertools
import json
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import ladybug
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from store_dump import dump, without_created_at

from circuitatlas.cli import main
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.pipeline import (
    SweepResult,
    SweepSettings,
    run_id_of,
    sweep_run,
    write_sweep,
)
from circuitatlas.ingest.tasks import PromptSet
from circuitatlas.ingest.toy import train_toy
from circuitatlas.store import check_store, open_store
from circuitatlas.store.base import RUN_COLUMNS
from circuitatlas.store.ingest import check_sweep, ingest_sweep, sweep_frames
from circuitatlas.store.rows import EDGE_PROPERTIES, RunRecord

CHECKPOINT_COLUMNS = ["step", "loss", "metric"]
COMPONENT_COLUMNS = [
    "step", "name", "kind", "layer", "head", "effect", "prev_token_score", "induction_score",
]  # fmt: skip
EDGE_COLUMNS = [
    "step", "source", "target", "similarity", "weight", "std", "direct_similarity",
    "direct_weight", "direct_std", "patch_effect", "eap_ig",
]  # fmt: skip
NAMES = ("input", "a0.h0", "a0.h1", "m0", "a1.h0", "m1", "logits")
STEPS = [0, 10, 20, 50, 100, 250, 500]
N_EDGES = len(NAMES) * (len(NAMES) - 1) // 2
UNKNOWN_RUN = "ffffffffffff"


# --- synthetic sweeps -------------------------------------------------------------------------


def _meta(name):
    if name == "input":
        return "input", -1, None
    if name == "logits":
        return "logits", 2, None
    if name.startswith("a") and ".h" in name:
        layer, head = name[1:].split(".h")
        if layer.isdigit() and head.isdigit():
            return "attn_head", int(layer), int(head)
    if name.startswith("m") and name[1:].isdigit():
        return "mlp", int(name[1:]), None
    return "mlp", 1, None  # an awkward name: any kind will do


def make_sweep(steps=STEPS, names=NAMES, seed=0, model="runs/toy", missing=None):
    """A SweepResult of ``steps`` × ``names`` with random values; ``missing``: {step: names}."""
    rng = np.random.default_rng(seed)
    scores = np.random.default_rng([seed, 1])  # task-metric scores: some not computed (NaN)
    missing = missing or {}
    ckpts, comps, edges = [], [], []
    for step in steps:
        here = [n for n in names if n not in missing.get(step, ())]
        ckpts.append({"step": step, "loss": rng.uniform(1, 5), "metric": -rng.uniform(0, 5)})
        for name in here:
            kind, layer, head = _meta(name)
            is_head = head is not None
            comps.append(
                {
                    "step": step,
                    "name": name,
                    "kind": kind,
                    "layer": layer,
                    "head": head,
                    "effect": rng.normal() if kind != "logits" else np.nan,
                    "prev_token_score": rng.uniform() if is_head else np.nan,
                    "induction_score": rng.uniform() if is_head else np.nan,
                }
            )
        for i, source in enumerate(here):
            for target in here[i + 1 :]:
                edges.append(
                    {
                        "step": step,
                        "source": source,
                        "target": target,
                        "similarity": rng.uniform(-1, 1),
                        "weight": rng.uniform(0, 2),
                        "std": rng.uniform(0, 0.1),
                        "direct_similarity": rng.uniform(-1, 1),
                        "direct_weight": rng.uniform(0, 2),
                        "direct_std": rng.uniform(0, 0.1),
                        "patch_effect": np.nan if i % 3 == 0 else scores.normal(),
                        "eap_ig": np.nan if step == steps[0] else scores.normal(),
                    }
                )
    edges = pd.DataFrame(edges, columns=EDGE_COLUMNS)
    tokens = torch.tensor([[0, 3, 4, 3, 4], [0, 5, 1, 5, 1]], dtype=torch.int64)
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, 2:4] = True
    prompts = PromptSet("induction", tokens, mask, {"seg_len": 2, "seed": seed})
    settings = SweepSettings(n_prompts=2, seq_len=5, seed=seed)
    config = {
        "model": model,
        "steps": list(steps),
        "prompts": prompts.to_config(),
        "ablation": "zero",
        "arch": {"arch": "gpt2", "parallel_blocks": False, "n_layers": 2, "n_heads": 2,
                 "d_model": 8, "d_vocab": 16},
        "settings": asdict(settings),
        "version": "0.1.0",
    }  # fmt: skip
    config["run_id"] = run_id_of(config)
    return SweepResult(
        pd.DataFrame(ckpts, columns=CHECKPOINT_COLUMNS),
        pd.DataFrame(comps, columns=COMPONENT_COLUMNS).astype({"head": "Int64"}),
        edges,
        prompts,
        config,
    )


def renamed(result, mapping):
    """``result`` with component names replaced (run id unchanged: names are not in it)."""
    comps = result.components.assign(name=result.components.name.map(mapping))
    edges = result.edges.assign(
        source=result.edges.source.map(mapping), target=result.edges.target.map(mapping)
    )
    return SweepResult(result.checkpoints, comps, edges, result.prompts, result.config)


# --- helpers -----------------------------------------------------------------------------------


def ingest(path, result, **kw):
    with open_store(path, writable=True) as store:
        return ingest_sweep(store, result, progress=False, **kw)


def frames_of(result, steps):
    return list(sweep_frames(result, steps))


def by(frame, keys):
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def assert_same(got, expected, keys):
    """Same rows, same columns in the same order, values exactly equal."""
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(
        by(got, keys), by(expected, keys), check_exact=True, check_dtype=False
    )


def dump_at(path):
    """The dump of the store file at ``path``, through a freshly opened read-only store."""
    with open_store(path) as store:
        return dump(store)


def next_triples(path, run_id=None):
    """NEXT links as (name, from step, to step), sorted, duplicates kept."""
    with open_store(path) as store:
        found = store.cypher(
            "MATCH (a:Component)-[:NEXT]->(b:Component) "
            "RETURN a.name AS name, a.step AS a, b.step AS b, a.run_id AS ra, b.run_id AS rb, "
            "b.name AS nb"
        )
    if run_id is not None:
        found = found[found.ra == run_id]
    assert (found.ra == found.rb).all(), "a NEXT link joins two runs"
    assert (found.name == found.nb).all(), "a NEXT link joins two names"
    return sorted(zip(found.name, found.a.astype(int), found.b.astype(int), strict=True))


def expected_next(result):
    """Every component linked to the same name at the next stored step."""
    names = result.components.groupby("step")["name"].apply(set)
    steps = sorted(names.index)
    return sorted(
        (n, int(a), int(b)) for a, b in itertools.pairwise(steps) for n in names[a] & names[b]
    )


def listing(directory):
    return sorted(p.name for p in Path(directory).iterdir())


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def one_error_line(res):
    assert res.exit_code == 1, (res.exit_code, res.output)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert res.stdout == ""
    return lines[0]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep():
    return make_sweep()


@pytest.fixture(scope="module")
def stored(tmp_path_factory, sweep):
    """A store holding ``sweep``, ingested once in order; tests only read it."""
    path = tmp_path_factory.mktemp("stored") / "store.lbdb"
    report = ingest(path, sweep)
    assert report.written == STEPS
    return path


@pytest.fixture(scope="module")
def stored_dump(stored):
    return dump_at(stored)


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """A real toy run swept once: two checkpoints of a 30-step GPT-2 toy, four prompts.

    Its own run rather than the session's ``short_runs``: those train three 250-step runs, 30 to
    45 s on a two-core machine, more than this whole file; this one trains and sweeps in ~3 s.
    """
    run = tmp_path_factory.mktemp("toy") / "gpt2"
    train_toy(run, steps=30, checkpoints=2, seed=0, arch="gpt2", progress=False)
    return sweep_run(str(run), None, SweepSettings(n_prompts=4), progress=False)


# --- round trip --------------------------------------------------------------------------------


def test_round_trip_is_exact(stored, sweep):
    run_id = sweep.run_id
    with open_store(stored) as store:
        ckpts = store.checkpoints(run_id)
        comps = store.components(run_id)
        edges = store.edges(run_id)
    assert list(ckpts.columns) == CHECKPOINT_COLUMNS
    assert list(comps.columns) == COMPONENT_COLUMNS
    assert list(edges.columns) == EDGE_COLUMNS
    assert_same(ckpts, sweep.checkpoints, ["step"])
    assert ckpts.step.tolist() == STEPS  # by step
    assert_same(comps, sweep.components, ["step", "name"])
    assert_same(edges, sweep.edges, ["step", "source", "target"])
    assert str(comps["head"].dtype) == "Int64"
    assert comps["head"].isna().sum() == sweep.components["head"].isna().sum() > 0
    assert comps.step.dtype == np.int64 and comps.layer.dtype == np.int64
    for col in ("effect", "prev_token_score", "induction_score"):
        assert comps[col].dtype == np.float64
    for col in ("step", *EDGE_PROPERTIES):
        assert edges[col].dtype == (np.int64 if col == "step" else np.float64)
    # components come by step, then layer
    assert comps.step.is_monotonic_increasing
    for _, group in comps.groupby("step"):
        assert group.layer.is_monotonic_increasing


def test_runs_counts_and_config(stored, sweep):
    with open_store(stored) as store:
        runs = store.runs()
        counts = store.counts(sweep.run_id)
        config = store.run_config(sweep.run_id)
        steps = store.stored_steps(sweep.run_id)
    assert list(runs.columns) == RUN_COLUMNS
    assert len(runs) == 1
    row = runs.iloc[0].to_dict()
    created_at = row.pop("created_at")
    assert row == {
        "run_id": sweep.run_id,
        "model": "runs/toy",
        "task": "induction",
        "ablation": "zero",
        "n_prompts": 2,
        "seq_len": 5,
        "seed": 0,
        "n_checkpoints": len(STEPS),
        "n_planned": len(STEPS),
        "version": "0.1.0",
    }
    assert datetime.fromisoformat(created_at).tzinfo is not None
    assert counts == {
        "checkpoints": len(STEPS),
        "components": len(STEPS) * len(NAMES),
        "edges": len(STEPS) * N_EDGES,
    }
    assert config == sweep.config
    assert RunRecord.from_config(config) == RunRecord.from_config(sweep.config)
    assert steps == STEPS


def test_one_step_reads(stored, sweep):
    with open_store(stored) as store:
        for step in (0, 250, 500):
            comps = store.components(sweep.run_id, step)
            edges = store.edges(sweep.run_id, step)
            assert_same(comps, sweep.components[sweep.components.step == step], ["name"])
            assert_same(edges, sweep.edges[sweep.edges.step == step], ["source", "target"])
            assert str(comps["head"].dtype) == "Int64"


def test_empty_store_reads(tmp_path):
    path = tmp_path / "empty.lbdb"
    open_store(path, writable=True).close()
    with open_store(path) as store:
        runs = store.runs()
        assert list(runs.columns) == RUN_COLUMNS and runs.empty
        with pytest.raises(CircuitAtlasError, match="holds no run yet"):
            store.checkpoints(UNKNOWN_RUN)
        assert store.stored_steps(UNKNOWN_RUN) == []


def test_round_trip_of_a_real_sweep(real_sweep, tmp_path):
    check_sweep(real_sweep, "real")
    path = tmp_path / "real.lbdb"
    report = ingest(path, real_sweep)
    assert report.written == real_sweep.config["steps"] and len(report.written) == 2
    run_id = real_sweep.run_id
    with open_store(path) as store:
        assert_same(store.checkpoints(run_id), real_sweep.checkpoints, ["step"])
        assert_same(store.components(run_id), real_sweep.components, ["step", "name"])
        assert_same(store.edges(run_id), real_sweep.edges, ["step", "source", "target"])
        assert store.run_config(run_id) == json.loads(json.dumps(real_sweep.config, default=str))
        assert store.counts(run_id) == {
            "checkpoints": 2,
            "components": len(real_sweep.components),
            "edges": len(real_sweep.edges),
        }
    assert next_triples(path) == expected_next(real_sweep)


@pytest.mark.parametrize("which", ["synthetic", "real"])
def test_stored_properties_by_name(which, request, tmp_path):
    """Each property read by name in raw Cypher is the frame column of that name (COPY matches
    columns by position: this once caught similarity and weight swapped)."""
    sweep = make_sweep(STEPS[:2]) if which == "synthetic" else request.getfixturevalue("real_sweep")
    path = tmp_path / "values.lbdb"
    ingest(path, sweep)
    step = sweep.config["steps"][-1]
    with open_store(path) as store:
        raw = store.cypher(
            "MATCH (c:Checkpoint) RETURN c.step AS step, c.loss AS loss, c.metric AS metric"
        )
        assert_same(raw, sweep.checkpoints, ["step"])
        raw = store.cypher(
            "MATCH (c:Component) RETURN c.step AS step, c.name AS name, c.kind AS kind, "
            "c.layer AS layer, c.head AS head, c.effect AS effect, "
            "c.prev_token_score AS prev_token_score, c.induction_score AS induction_score"
        )
        assert_same(raw.astype({"head": "Int64"}), sweep.components, ["step", "name"])
        raw = store.cypher(
            "MATCH (c:Component) RETURN c.key AS key, c.run_id AS run_id, c.step AS step, "
            "c.name AS name"
        )
        assert (raw.key == sweep.run_id + "/" + raw.step.astype(str) + "/" + raw.name).all()
        assert set(raw.run_id) == {sweep.run_id}
        raw = store.cypher(
            "MATCH (s:Component)-[e:INFLUENCES]->(t:Component) RETURN e.step AS step, "
            "s.name AS source, t.name AS target, e.similarity AS similarity, e.weight AS weight, "
            "e.std AS std, e.direct_similarity AS direct_similarity, "
            "e.direct_weight AS direct_weight, e.direct_std AS direct_std, "
            "e.patch_effect AS patch_effect, e.eap_ig AS eap_ig"
        )
        assert_same(raw, sweep.edges, ["step", "source", "target"])
        assert_same(store.edges(sweep.run_id), sweep.edges, ["step", "source", "target"])
        assert_same(
            store.edges(sweep.run_id, step),
            sweep.edges[sweep.edges.step == step],
            ["source", "target"],
        )


# --- thresholds --------------------------------------------------------------------------------


def test_edges_at_tau_equal_a_pandas_filter(stored, sweep):
    sims = np.sort(sweep.edges.similarity.to_numpy())
    directs = np.sort(sweep.edges.direct_similarity.to_numpy())
    # taus that equal stored values test that the comparison is strict
    taus = [-2.0, float(sims[0]), float(sims[10]), 0.0, float(directs[40]), 0.5, 2.0]
    with open_store(stored) as store:
        for tau in taus:
            for measure, column in (("total", "similarity"), ("direct", "direct_similarity")):
                want = sweep.edges[sweep.edges[column] < tau]
                got = store.edges(sweep.run_id, tau=tau, measure=measure)
                assert_same(got, want, ["step", "source", "target"])
                for step in (0, 100):
                    got = store.edges(sweep.run_id, step, tau=tau, measure=measure)
                    assert_same(got, want[want.step == step], ["source", "target"])
        # the two measures pick different edges here, and the default measure is total
        total = store.edges(sweep.run_id, tau=0.0, measure="total")
        direct = store.edges(sweep.run_id, tau=0.0, measure="direct")
        assert set(zip(total.step, total.source, total.target, strict=True)) != set(
            zip(direct.step, direct.source, direct.target, strict=True)
        )
        pd.testing.assert_frame_equal(
            by(store.edges(sweep.run_id, tau=0.0), ["step", "source", "target"]),
            by(store.edges(sweep.run_id, tau=0.0, measure="total"), ["step", "source", "target"]),
        )
        none = store.edges(sweep.run_id, 10, tau=-2.0)
    assert none.empty and list(none.columns) == EDGE_COLUMNS
    assert none.step.dtype == np.int64 and none.similarity.dtype == np.float64


def test_bad_threshold_arguments(stored, sweep):
    with open_store(stored) as store:
        with pytest.raises(CircuitAtlasError, match="measure 'indirect'"):
            store.edges(sweep.run_id, tau=0.5, measure="indirect")
        for tau in (float("nan"), float("inf")):
            with pytest.raises(CircuitAtlasError, match="finite"):
                store.edges(sweep.run_id, tau=tau)


# --- NEXT links whatever the write order ---------------------------------------------------------


def test_next_links_and_store_are_the_same_whatever_the_write_order(tmp_path):
    steps = [0, 10, 20, 50, 100]
    sweep = make_sweep(steps, seed=3)
    reference = tmp_path / "reference.lbdb"
    ingest(reference, sweep)
    want = next_triples(reference)
    assert want == expected_next(sweep)
    assert len(want) == (len(steps) - 1) * len(NAMES)
    want_dump = without_created_at(dump_at(reference))
    run = RunRecord.from_config(sweep.config)
    frames = {f.step: f for f in frames_of(sweep, steps)}
    rng = np.random.default_rng(1)
    variants = {}

    def variant(name, write):
        path = tmp_path / f"{name}.lbdb"
        with open_store(path, writable=True) as store:
            write(store)
        variants[name] = path

    def in_chunks(chunks):
        def write(store):
            for chunk in chunks:
                assert store.write_checkpoints(run, [frames[s] for s in chunk]) == len(chunk)

        return write

    for k in range(2):  # shuffled, one checkpoint per transaction
        order = [int(s) for s in rng.permutation(steps)]
        variant(f"one-by-one-{k}", in_chunks([[s] for s in order]))
    for k, sizes in enumerate([(2, 3), (1, 3, 1)]):  # shuffled, in batches
        order = [int(s) for s in rng.permutation(steps)]
        cuts = np.cumsum((0, *sizes))
        variant(f"batches-{k}", in_chunks([order[a:b] for a, b in itertools.pairwise(cuts)]))
    # ingest_sweep in batches of two checkpoints
    variant(
        "ingest-batched",
        lambda s: ingest_sweep(s, sweep, progress=False, batch_edges=2 * N_EDGES),
    )
    # shards 1/3, 2/3, 3/3 in every order
    for perm in itertools.permutations((1, 2, 3)):

        def shards(store, perm=perm):
            for i in perm:
                ingest_sweep(store, sweep, shard=(i, 3), progress=False)

        variant("shards-" + "".join(map(str, perm)), shards)

    # a batch mixing stored and new checkpoints
    def mixed(store):
        assert store.write_checkpoints(run, [frames[10], frames[50]]) == 2
        assert store.write_checkpoints(run, [frames[s] for s in (100, 50, 20, 10, 0)]) == 3

    variant("mixed", mixed)

    for name, path in variants.items():
        assert next_triples(path) == want, name
        assert without_created_at(dump_at(path)) == want_dump, name


def test_shards_written_by_separate_store_handles(tmp_path, sweep):
    """Each shard in its own open/close, as separate `circuitatlas ingest --shard` runs would."""
    reference = tmp_path / "reference.lbdb"
    ingest(reference, sweep)
    path = tmp_path / "shards.lbdb"
    written = []
    for i in (3, 1, 2):
        written += ingest(path, sweep, shard=(i, 3)).written
    assert sorted(written) == STEPS
    assert next_triples(path) == next_triples(reference)
    assert without_created_at(dump_at(path)) == without_created_at(dump_at(reference))


def test_next_links_follow_names_when_components_differ(tmp_path):
    """A component missing at one step: its earlier one links to nothing past the gap."""
    steps = [0, 10, 20, 30]
    missing = {10: ("a0.h1", "m1"), 30: ("a1.h0",)}
    sweep = make_sweep(steps, missing=missing)
    path = tmp_path / "gaps.lbdb"
    ingest(path, sweep, shard=(2, 2))  # 10 and 30
    assert next_triples(path) == expected_next(make_sweep([10, 30], missing=missing))
    ingest(path, sweep)  # 0 and 20, around and between
    got = next_triples(path)
    assert got == expected_next(sweep)
    assert ("a0.h1", 0, 20) not in got and ("a0.h1", 20, 30) in got
    assert ("m1", 0, 10) not in got and ("a1.h0", 20, 30) not in got


def test_next_links_stay_within_their_run(tmp_path):
    a = make_sweep([0, 10, 20, 30], model="run-a", seed=1)
    b = make_sweep([5, 10, 15, 30], model="run-b", seed=2)
    assert a.run_id != b.run_id
    path = tmp_path / "two.lbdb"
    ingest(path, a, shard=(2, 2))
    ingest(path, b, shard=(1, 2))
    ingest(path, a)
    ingest(path, b)
    assert next_triples(path, a.run_id) == expected_next(a)
    assert next_triples(path, b.run_id) == expected_next(b)
    assert len(next_triples(path)) == len(expected_next(a)) + len(expected_next(b))
    with open_store(path) as store:
        runs = store.runs().set_index("run_id")
        assert runs.loc[a.run_id, "n_checkpoints"] == runs.loc[b.run_id, "n_checkpoints"] == 4
        assert_same(store.components(a.run_id), a.components, ["step", "name"])
        assert_same(store.edges(b.run_id, 10), b.edges[b.edges.step == 10], ["source", "target"])


# --- idempotence and resume -----------------------------------------------------------------------


def test_ingesting_again_writes_nothing_and_changes_nothing(tmp_path, sweep):
    path = tmp_path / "again.lbdb"
    ingest(path, sweep)
    before = dump_at(path)
    assert sum(len(v) for v in before.values()) > 0
    report = ingest(path, sweep)
    assert report.written == [] and report.skipped == STEPS
    run = RunRecord.from_config(sweep.config)
    with open_store(path, writable=True) as store:
        assert store.write_checkpoints(run, frames_of(sweep, STEPS)) == 0
        assert store.write_checkpoint(run, frames_of(sweep, [20])[0]) is False
    assert dump_at(path) == before  # created_at included


def test_resume_after_a_partial_ingest_equals_one_shot(tmp_path, sweep):
    one_shot = tmp_path / "one-shot.lbdb"
    ingest(one_shot, sweep)
    resumed = tmp_path / "resumed.lbdb"
    first = ingest(resumed, sweep, shard=(2, 3))
    assert first.written == [10, 100]
    with open_store(resumed) as store:
        assert store.runs().n_checkpoints.tolist() == [2]
        assert store.runs().n_planned.tolist() == [len(STEPS)]
    second = ingest(resumed, sweep)
    assert second.skipped == [10, 100]
    assert second.written == [0, 20, 50, 250, 500]
    assert without_created_at(dump_at(resumed)) == without_created_at(dump_at(one_shot))


def test_a_write_killed_before_commit_leaves_nothing(tmp_path, sweep, monkeypatch):
    """Every statement of a batch ran (COPY, NEXT unlink/link), then the write fails: rolled
    back whole, and the same handle then resumes to the one-shot store."""
    one_shot = tmp_path / "one-shot.lbdb"
    ingest(one_shot, sweep)
    path = tmp_path / "killed.lbdb"
    ingest(path, sweep, shard=(1, 2))  # 0, 20, 100, 500: the rest cut their NEXT links
    before = dump_at(path)
    with open_store(path, writable=True) as store:
        real_read = store._read

        def failing_read(name, /, **params):
            if name == "run_count":
                raise RuntimeError("killed")
            return real_read(name, **params)

        monkeypatch.setattr(store, "_read", failing_read)
        with pytest.raises(RuntimeError, match="killed"):
            ingest_sweep(store, sweep, progress=False)
        monkeypatch.undo()
        assert store.stored_steps(sweep.run_id) == [0, 20, 100, 500]
        report = ingest_sweep(store, sweep, progress=False)
        assert report.written == [10, 50, 250]
    assert without_created_at(dump_at(path)) == without_created_at(dump_at(one_shot))
    assert before != dump_at(path)


def test_an_invalid_checkpoint_fails_its_batch_before_writing(tmp_path, sweep):
    path = tmp_path / "invalid.lbdb"
    ingest(path, sweep, shard=(1, 2))
    before = dump_at(path)
    run = RunRecord.from_config(sweep.config)
    good, bad = frames_of(sweep, [10, 50])
    bad.edges = bad.edges.assign(target="nowhere")
    with (
        open_store(path, writable=True) as store,
        pytest.raises(CircuitAtlasError, match="nowhere"),
    ):
        store.write_checkpoints(run, [good, bad])
    assert dump_at(path) == before


# --- awkward names --------------------------------------------------------------------------------

AWKWARD = (
    "it's",
    'say "hi"',
    "back\\slash\\",
    "'; MATCH (n) DETACH DELETE n //",
    "ünïcødé ∑ 頭 🙂",
    "MATCH",
    "RETURN",
)
AWKWARD_MODEL = "it's \"a\" \\model\\ '; MATCH (n) DETACH DELETE n // ∑ 頭"


def test_awkward_names_round_trip(tmp_path):
    base = make_sweep([0, 10, 20], model=AWKWARD_MODEL)
    sweep = renamed(base, dict(zip(NAMES, AWKWARD, strict=True)))
    path = tmp_path / "names.lbdb"
    ingest(path, sweep)
    with open_store(path) as store:
        assert store.runs().model.tolist() == [AWKWARD_MODEL]
        assert store.run_config(sweep.run_id)["model"] == AWKWARD_MODEL
        assert_same(store.components(sweep.run_id), sweep.components, ["step", "name"])
        assert_same(store.edges(sweep.run_id), sweep.edges, ["step", "source", "target"])
        assert set(store.components(sweep.run_id, 10).name) == set(AWKWARD)
        for name in AWKWARD:
            found = store.cypher(
                "MATCH (c:Component {name: $name}) RETURN c.step AS step ORDER BY step", name=name
            )
            assert found.step.tolist() == [0, 10, 20], name
        found = store.cypher("MATCH (r:Run {model: $m}) RETURN r.run_id AS id", m=AWKWARD_MODEL)
        assert found.id.tolist() == [sweep.run_id]
    assert next_triples(path) == expected_next(sweep)
    assert {n for n, _, _ in next_triples(path)} == set(AWKWARD)


def test_awkward_names_through_the_cli(tmp_path):
    sweep = renamed(
        make_sweep([0, 10], model=AWKWARD_MODEL), dict(zip(NAMES, AWKWARD, strict=True))
    )
    write_sweep(sweep, tmp_path / "sweep")
    store = tmp_path / "names.lbdb"
    assert invoke("ingest", "--from", tmp_path / "sweep", "--store", store).exit_code == 0
    res = invoke("runs", "--store", store, "--format", "json")
    assert [r["model"] for r in json.loads(res.stdout)] == [AWKWARD_MODEL]
    for name in AWKWARD:
        res = invoke(
            "query", "MATCH (c:Component {name: $n}) RETURN c.name AS name, c.step AS step "
            "ORDER BY step", "--param", f"n={json.dumps(name)}", "--store", store,
            "--format", "json",
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout) == [{"name": name, "step": 0}, {"name": name, "step": 10}]


# --- user Cypher ----------------------------------------------------------------------------------

WRITES = [
    "CREATE (:Run {run_id: 'x'})",
    "MATCH (r:Run) SET r.model = 'changed'",
    "MATCH (c:Checkpoint) SET c.loss = 0.0 RETURN c.step",
    "MATCH (n) DETACH DELETE n",
    "MATCH ()-[e:INFLUENCES]->() DELETE e",
    "MERGE (r:Run {run_id: 'y'}) RETURN r",
    "MATCH (a:Component), (b:Component) WHERE a.step = 0 AND b.step = 10 CREATE (a)-[:NEXT]->(b)",
    "COPY Run FROM $file",
    "CREATE NODE TABLE Extra(a INT64, PRIMARY KEY(a))",
    "DROP TABLE NEXT",
    "ALTER TABLE Run ADD extra INT64",
]


@pytest.mark.parametrize("query", WRITES)
def test_user_cypher_cannot_write(stored, stored_dump, query, tmp_path):
    csv = tmp_path / "runs.csv"
    csv.write_text("run_id\nzzz\n")
    data = stored.read_bytes()
    with open_store(stored) as store:
        with pytest.raises(CircuitAtlasError) as e:
            store.cypher(query, file=str(csv))
        assert len(store.runs()) == 1
    message = str(e.value)
    assert message.startswith("query: ") and "\n" not in message
    assert "read-only" in message and "nothing was changed" in message
    assert dump_at(stored) == stored_dump
    assert stored.read_bytes() == data


def test_user_cypher_cannot_write_through_a_writable_store(tmp_path, sweep):
    path = tmp_path / "w.lbdb"
    ingest(path, sweep, shard=(1, 3))
    before = dump_at(path)
    with open_store(path, writable=True) as store:
        for query in WRITES[:6]:
            with pytest.raises(CircuitAtlasError, match="read-only"):
                store.cypher(query)
    assert dump_at(path) == before


@pytest.mark.parametrize(
    "query",
    ["COPY (MATCH (r:Run) RETURN r.run_id) TO '{out}/runs.csv'", "EXPORT DATABASE '{out}/export'"],
)
def test_user_cypher_cannot_write_files(stored, query, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    try:
        with open_store(stored) as store, pytest.raises(CircuitAtlasError, match="read-only"):
            store.cypher(query.format(out=out))
    finally:
        assert listing(out) == []


def test_user_cypher_parameters(stored, sweep):
    e = sweep.edges
    with open_store(stored) as store:
        got = store.cypher(
            "MATCH (s:Component)-[e:INFLUENCES]->(t:Component) "
            "WHERE e.step = $step AND e.similarity < $tau AND s.name IN $names "
            "RETURN s.name AS source, t.name AS target, e.weight AS weight",
            step=100,
            tau=0.25,
            names=["a0.h0", "m0"],
        )
        want = e[(e.step == 100) & (e.similarity < 0.25) & e.source.isin(["a0.h0", "m0"])]
        assert 0 < len(want) < len(e[(e.step == 100) & e.source.isin(["a0.h0", "m0"])])
        assert_same(got, want[["source", "target", "weight"]], ["source", "target"])
        got = store.cypher("RETURN $text AS text, $n AS n", text="'; DROP //", n=3)
        assert got.to_dict("records") == [{"text": "'; DROP //", "n": 3}]
        with pytest.raises(CircuitAtlasError, match=r"^query: .*(Parser|syntax)"):
            store.cypher("MATCH (n RETURN n")
        with pytest.raises(CircuitAtlasError, match=r"^query: "):
            store.cypher("MATCH (n:NoSuchTable) RETURN n")
        # a parameter without a value is an error, not a silent NULL; '$x' in a string is text
        with pytest.raises(CircuitAtlasError, match=r"no value for \$step; pass --param step="):
            store.cypher("MATCH (c:Component) WHERE c.step = $step RETURN c.name")
        got = store.cypher("RETURN '$notaparam' AS text // $nor_this")
        assert got.text.tolist() == ["$notaparam"]


def test_user_cypher_sees_what_the_same_store_wrote(tmp_path, sweep):
    run = RunRecord.from_config(sweep.config)
    with open_store(tmp_path / "s.lbdb", writable=True) as store:
        store.write_checkpoints(run, frames_of(sweep, [0]))
        assert store.cypher("MATCH (c:Checkpoint) RETURN count(*) AS n").n.tolist() == [1]
        store.write_checkpoints(run, frames_of(sweep, [10, 20]))
        assert len(store.checkpoints(sweep.run_id)) == 3
        assert store.cypher("MATCH (c:Checkpoint) RETURN count(*) AS n").n.tolist() == [3]


# --- bad stores -----------------------------------------------------------------------------------


@pytest.mark.parametrize("writable", [False, True])
def test_a_directory_is_not_a_store(tmp_path, writable):
    (tmp_path / "inside").write_text("x")
    with pytest.raises(CircuitAtlasError, match="is a directory"):
        open_store(tmp_path, writable=writable)
    with pytest.raises(CircuitAtlasError, match="is a directory"):
        check_store(tmp_path)
    assert listing(tmp_path) == ["inside"]


@pytest.mark.parametrize("writable", [False, True])
def test_a_text_file_is_not_a_store(tmp_path, writable):
    text = tmp_path / "notes.lbdb"
    text.write_text("not a database\n" * 100)
    with pytest.raises(CircuitAtlasError, match="not a LadybugDB store") as e:
        open_store(text, writable=writable)
    assert str(text) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(CircuitAtlasError, match="not a LadybugDB store"):
        check_store(text)
    assert text.read_text() == "not a database\n" * 100
    assert listing(tmp_path) == ["notes.lbdb"]


def _raw(path, *queries, read_only=False):
    db = ladybug.Database(str(path), read_only=read_only)
    conn = ladybug.Connection(db)
    try:
        return [conn.execute(q).get_as_df() for q in queries]
    finally:
        conn.close()
        db.close()


def test_a_foreign_ladybug_database_is_refused(tmp_path):
    path = tmp_path / "other.lbdb"
    _raw(
        path,
        "CREATE NODE TABLE Person(name STRING, PRIMARY KEY(name))",
        "CREATE (:Person {name: 'ada'})",
    )
    data = path.read_bytes()
    files = listing(tmp_path)
    with pytest.raises(CircuitAtlasError, match=r"not a circuitatlas store.*Person"):
        open_store(path)
    with pytest.raises(CircuitAtlasError, match="not a circuitatlas store"):
        check_store(path)
    assert path.read_bytes() == data  # read-only opens leave the file as it was
    with pytest.raises(CircuitAtlasError, match="not a circuitatlas store"):
        open_store(path, writable=True)
    assert listing(tmp_path) == files
    tables, people = _raw(
        path, "CALL show_tables() RETURN name", "MATCH (p:Person) RETURN p.name AS name",
        read_only=True,
    )  # fmt: skip
    assert tables.name.tolist() == ["Person"] and people.name.tolist() == ["ada"]


def test_a_store_of_another_schema_version_is_refused(tmp_path, sweep):
    path = tmp_path / "v999.lbdb"
    ingest(path, sweep, shard=(1, 3))
    _raw(path, "MATCH (s:CircuitAtlasSchema) SET s.version = 999")
    data = path.read_bytes()
    before = _raw(path, "MATCH (n) RETURN count(*) AS n", read_only=True)[0].n.tolist()
    for open_it in (lambda: open_store(path), lambda: check_store(path)):
        with pytest.raises(CircuitAtlasError, match="schema version 999") as e:
            open_it()
        assert "reads version 1" in str(e.value)
    assert path.read_bytes() == data
    with pytest.raises(CircuitAtlasError, match="schema version 999"):
        ingest(path, sweep)
    version, count = _raw(
        path,
        "MATCH (s:CircuitAtlasSchema) RETURN s.version AS v",
        "MATCH (n) RETURN count(*) AS n",
        read_only=True,
    )
    assert version.v.tolist() == [999] and count.n.tolist() == before


def test_reading_a_missing_store_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "missing.lbdb"
    with pytest.raises(CircuitAtlasError, match="no such store") as e:
        open_store(path)
    assert str(path) in str(e.value)
    check_store(path)  # a new path is fine for writing, and left alone
    monkeypatch.delenv("CIRCUITATLAS_STORE", raising=False)
    with pytest.raises(CircuitAtlasError, match=r"circuitatlas\.lbdb: no such store"):
        open_store()
    assert listing(tmp_path) == []


def test_unknown_run_lists_the_known_ones(stored, sweep):
    with open_store(stored) as store:
        for read in (
            lambda s: s.checkpoints(UNKNOWN_RUN),
            lambda s: s.components(UNKNOWN_RUN),
            lambda s: s.components(UNKNOWN_RUN, 10),
            lambda s: s.edges(UNKNOWN_RUN),
            lambda s: s.edges(UNKNOWN_RUN, 10, tau=0.5),
            lambda s: s.counts(UNKNOWN_RUN),
            lambda s: s.run_config(UNKNOWN_RUN),
        ):
            with pytest.raises(CircuitAtlasError) as e:
                read(store)
            assert f"unknown run '{UNKNOWN_RUN}'" in str(e.value)
            assert f"known runs: {sweep.run_id}" in str(e.value)


def test_a_step_not_stored(stored, sweep):
    with open_store(stored) as store:
        for read in (
            lambda s: s.components(sweep.run_id, 15),
            lambda s: s.edges(sweep.run_id, 15),
            lambda s: s.edges(sweep.run_id, 15, tau=0.5, measure="direct"),
        ):
            with pytest.raises(CircuitAtlasError) as e:
                read(store)
            assert f"step 15 is not stored for run {sweep.run_id}" in str(e.value)
            assert "0, 10, 20, 50, 100, 250, 500" in str(e.value)


@pytest.mark.parametrize("url", ["http://x", "s3://bucket/store.lbdb", "file:///tmp/x.lbdb"])
def test_an_unknown_scheme_is_refused(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for writable in (False, True):
        with pytest.raises(CircuitAtlasError, match="unknown scheme"):
            open_store(url, writable=writable)
    with pytest.raises(CircuitAtlasError, match="unknown scheme"):
        check_store(url)
    assert listing(tmp_path) == []


def test_an_unreachable_neo4j_fails_in_one_line_without_credentials(monkeypatch):
    with pytest.raises(CircuitAtlasError) as e:
        open_store("bolt://127.0.0.1:1")
    assert "127.0.0.1:1" in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setenv("NEO4J_USERNAME", "user")
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret")
    url = "neo4j://user:s3cret@127.0.0.1:1"
    for open_it in (
        lambda: open_store(url),
        lambda: open_store(url, writable=True),
        lambda: check_store(url),
        lambda: open_store("bolt://127.0.0.1:1", writable=True),
    ):
        with pytest.raises(CircuitAtlasError) as e:
            open_it()
        message = str(e.value)
        assert "s3cret" not in message and "user:" not in message, message
        assert "\n" not in message and "127.0.0.1:1" in message
    res = invoke("runs", "--store", url)
    line = one_error_line(res)
    assert "s3cret" not in res.output and "127.0.0.1:1" in line


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_ingest_runs_and_query(tmp_path, sweep):
    write_sweep(sweep, tmp_path / "sweep")
    store = tmp_path / "cli.lbdb"
    res = invoke("ingest", "--from", tmp_path / "sweep", "--store", store)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == (
        f"run {sweep.run_id}: wrote {len(STEPS)} checkpoints, skipped 0 already stored → {store}"
    )
    assert lines[1] == (
        f"stored for run {sweep.run_id}: {len(STEPS)} checkpoints, "
        f"{len(STEPS) * len(NAMES)} components, {len(STEPS) * N_EDGES} edges"
    )
    res = invoke("ingest", "--from", tmp_path / "sweep", "--store", store)
    assert res.exit_code == 0 and f"wrote 0 checkpoints, skipped {len(STEPS)}" in res.stdout

    res = invoke("runs", "--store", store, "--format", "json")
    assert res.exit_code == 0, res.output
    runs = json.loads(res.stdout)
    assert len(runs) == 1 and list(runs[0]) == RUN_COLUMNS
    assert runs[0]["run_id"] == sweep.run_id and runs[0]["n_checkpoints"] == len(STEPS)
    res = invoke("runs", "--store", store)
    assert res.exit_code == 0 and sweep.run_id in res.stdout and "run_id" in res.stdout

    query = (
        "MATCH (s:Component)-[e:INFLUENCES]->(t:Component) "
        "WHERE e.step = $step AND e.similarity < $tau AND s.name = $name "
        "RETURN s.name AS source, t.name AS target, e.weight AS weight ORDER BY target"
    )
    params = ["--param", "step=100", "--param", "tau=0.0", "--param", "name=a0.h0"]
    e = sweep.edges
    want = by(
        e[(e.step == 100) & (e.similarity < 0.0) & (e.source == "a0.h0")][
            ["source", "target", "weight"]
        ],
        ["target"],
    )
    assert 0 < len(want) < len(e[(e.step == 100) & (e.source == "a0.h0")])
    res = invoke("query", query, *params, "--store", store, "--format", "csv")
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_csv(pd.io.common.StringIO(res.stdout)), want,
                                  check_dtype=False)  # fmt: skip
    res = invoke("query", query, *params, "--store", store, "--format", "json")
    got = json.loads(res.stdout)
    assert [[r["source"], r["target"]] for r in got] == want[["source", "target"]].values.tolist()
    assert [r["weight"] for r in got] == pytest.approx(want.weight.tolist(), rel=1e-9, abs=0)
    res = invoke("query", query, *params, "--store", store, "--format", "table")
    assert res.exit_code == 0
    assert res.stdout.split()[:3] == ["source", "target", "weight"]
    assert len(res.stdout.splitlines()) == len(want) + 1
    res = invoke("query", query, *params[:-1], "name=nobody", "--store", store)
    assert res.exit_code == 0 and res.stdout == "(no rows)\n"
    res = invoke(
        "query", "RETURN $xs AS xs, $s AS s", "--param", "xs=[1,2]", "--param", 's="500"',
        "--store", store, "--format", "json",
    )  # fmt: skip
    assert json.loads(res.stdout) == [{"xs": [1, 2], "s": "500"}]
    # $CIRCUITATLAS_STORE is the default store
    res = invoke("runs", "--format", "json", env={"CIRCUITATLAS_STORE": str(store)})
    assert res.exit_code == 0 and json.loads(res.stdout) == runs


def test_cli_json_keeps_floats_exact(stored, sweep):
    e = sweep.edges
    want = e[e.step == 50].sort_values(["source", "target"])
    res = invoke(
        "query",
        "MATCH (s:Component)-[e:INFLUENCES]->(t:Component) WHERE e.step = 50 "
        "RETURN s.name AS source, t.name AS target, e.similarity AS similarity "
        "ORDER BY source, target",
        "--store",
        stored,
        "--format",
        "json",
    )
    assert res.exit_code == 0, res.output
    assert [r["similarity"] for r in json.loads(res.stdout)] == want.similarity.tolist()


def _sweep_dir(tmp_path, name, result):
    return write_sweep(result, tmp_path / name)


def _bad_from_dirs(tmp_path, sweep):
    """Sweep directories that must be refused, by case name."""
    dirs = {"missing": tmp_path / "no-such-sweep"}
    d = _sweep_dir(tmp_path, "no-edges", sweep)
    (d / "edges.parquet").unlink()
    dirs["no-edges"] = d
    d = _sweep_dir(tmp_path, "mixed", sweep)
    other = make_sweep([0, 10, 30], seed=5)
    other.components.to_parquet(d / "components.parquet", index=False)
    dirs["mixed"] = d
    d = _sweep_dir(tmp_path, "tampered", sweep)
    config = json.loads((d / "config.json").read_text())
    config["run_id"] = "0123456789ab"
    (d / "config.json").write_text(json.dumps(config))
    dirs["tampered"] = d
    d = _sweep_dir(tmp_path, "steps-edited", sweep)
    config = json.loads((d / "config.json").read_text())
    config["steps"] = config["steps"][:-1]  # run_id no longer matches
    (d / "config.json").write_text(json.dumps(config))
    dirs["steps-edited"] = d
    return dirs


BAD_FROM = {
    "missing": "no config.json",
    "no-edges": "unreadable sweep output",
    "mixed": "come from different sweeps",
    "tampered": "run_id does not match",
    "steps-edited": "run_id does not match",
}


@pytest.fixture
def stores(tmp_path, sweep):
    """A store path that does not exist and an existing store, to check nothing is written."""
    existing = tmp_path / "existing.lbdb"
    ingest(existing, make_sweep([0, 10], model="other"))
    return tmp_path / "new.lbdb", existing


def _assert_untouched(stores, data, files):
    new, existing = stores
    assert not new.exists()
    assert existing.read_bytes() == data
    assert listing(existing.parent) == files


def test_cli_bad_ingest_inputs(tmp_path, sweep, stores):
    good = _sweep_dir(tmp_path, "good", sweep)
    dirs = _bad_from_dirs(tmp_path, sweep)
    new, existing = stores
    data, files = existing.read_bytes(), listing(tmp_path)
    cases = {name: (["--from", dirs[name]], BAD_FROM[name]) for name in BAD_FROM}
    cases["both"] = (["--from", good, "--model", tmp_path / "toy"], "either --model")
    cases["neither"] = ([], "either --model")
    cases["shard-0"] = (["--from", good, "--shard", "0/2"], "--shard '0/2'")
    cases["shard-3"] = (["--from", good, "--shard", "3/2"], "--shard '3/2'")
    cases["shard-x"] = (["--from", good, "--shard", "x"], "--shard 'x'")
    for name, (args, expected) in cases.items():
        for store in (new, existing):
            line = one_error_line(invoke("ingest", *args, "--store", store))
            assert expected in line, (name, line)
            _assert_untouched(stores, data, files)


def test_cli_ingest_into_bad_stores(tmp_path, sweep):
    good = _sweep_dir(tmp_path, "good", sweep)
    foreign = tmp_path / "foreign.lbdb"
    _raw(foreign, "CREATE NODE TABLE Person(name STRING, PRIMARY KEY(name))")
    v999 = tmp_path / "v999.lbdb"
    ingest(v999, make_sweep([0, 10], model="other"))
    _raw(v999, "MATCH (s:CircuitAtlasSchema) SET s.version = 999")
    text = tmp_path / "text.lbdb"
    text.write_text("hello\n")
    cases = {
        foreign: "not a circuitatlas store",
        v999: "schema version 999",
        text: "not a LadybugDB store",
        tmp_path / "adir": "is a directory",
        "http://x": "unknown scheme",
        "bolt://127.0.0.1:1": "cannot reach Neo4j",
    }
    (tmp_path / "adir").mkdir()
    contents = {p: p.read_bytes() for p in (foreign, v999, text)}
    files = listing(tmp_path)
    for store, expected in cases.items():
        line = one_error_line(invoke("ingest", "--from", good, "--store", store))
        assert expected in line, (store, line)
        assert {p: p.read_bytes() for p in contents} == contents
        assert listing(tmp_path) == files
        assert listing(tmp_path / "adir") == []


@pytest.mark.parametrize("config", ["{}", "[]", '{"run_id": "x", "steps": [0]}'])
def test_cli_ingest_from_a_config_without_prompts(tmp_path, sweep, config):
    d = _sweep_dir(tmp_path, "sweep", sweep)
    (d / "config.json").write_text(config)
    line = one_error_line(invoke("ingest", "--from", d, "--store", tmp_path / "s.lbdb"))
    assert "config.json" in line
    assert not (tmp_path / "s.lbdb").exists()


def test_cli_bad_query_and_runs_inputs(tmp_path, stored, stored_dump):
    data = stored.read_bytes()
    files = listing(stored.parent)
    missing = tmp_path / "missing.lbdb"
    cases = [
        (["query", "RETURN 1", "--param", "s", "--store", stored], "--param 's'"),
        (["query", "RETURN 1", "--param", "1x=2", "--store", stored], "--param '1x=2'"),
        (["query", "RETURN 1", "--param", "=3", "--store", stored], "--param '=3'"),
        (["query", "RETURN 1", "--param", "a-b=3", "--store", stored], "--param 'a-b=3'"),
        (["query", "MATCH (r:Run) SET r.model = 'x'", "--store", stored], "read-only"),
        (["query", "CREATE (:Run {run_id: $id})", "--param", "id=x", "--store", stored],
         "read-only"),
        (["query", "MATCH (n RETURN n", "--store", stored], "query: Parser exception"),
        (["query", "RETURN 1", "--store", missing], "no such store"),
        (["runs", "--store", missing], "no such store"),
        (["runs", "--store", tmp_path], "is a directory"),
        (["runs", "--store", "http://x"], "unknown scheme"),
    ]  # fmt: skip
    for args, expected in cases:
        line = one_error_line(invoke(*args))
        assert expected in line, (args, line)
        assert not missing.exists()
        assert stored.read_bytes() == data and listing(stored.parent) == files
    assert dump_at(stored) == stored_dump


def test_cli_error_is_one_line_from_the_real_process(tmp_path, stored):
    """Through the installed command: nothing else (LadybugDB, warnings) reaches stderr."""
    exe = Path(sys.executable).parent / "circuitatlas"
    command = [str(exe)] if exe.is_file() else [sys.executable, "-m", "circuitatlas.cli"]
    proc = subprocess.run(
        [*command, "query", "MATCH (n RETURN n", "--store", str(stored)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: query: "), proc.stderr
