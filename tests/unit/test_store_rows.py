"""Sweep frames → keyed store rows, NEXT planning and shards (pure: no database)."""

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.pipeline import CheckpointFrames
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store.ingest import parse_shard, shard_steps, sweep_frames
from circuitatlas.store.rows import (
    EDGE_PROPERTIES,
    EDGE_SCORE_COLUMNS,
    CheckpointRowsBatch,
    KeyedBatch,
    batch_rows,
    checkpoint_key,
    checkpoint_rows,
    component_keys,
    prepare_batch,
)

RUN = "0123456789ab"
NAMES = ("input", "a0.h0", "m0", "logits")
_META = {
    "input": ("input", -1, None),
    "a0.h0": ("attn_head", 0, 0),
    "a0.h1": ("attn_head", 0, 1),
    "m0": ("mlp", 0, None),
    "logits": ("logits", 1, None),
}


def frames(step, names=NAMES, seed=0):
    """One checkpoint's frames: ``names`` as components, every ordered pair i<j as an edge."""
    rng = np.random.default_rng(seed + step)
    comps = pd.DataFrame(
        {
            "step": step,
            "name": list(names),
            "kind": [_META.get(n, ("mlp", 0, None))[0] for n in names],
            "layer": [_META.get(n, ("mlp", 0, None))[1] for n in names],
            "head": pd.array([_META.get(n, ("mlp", 0, None))[2] for n in names], dtype="Int64"),
            "effect": rng.normal(size=len(names)),
            "prev_token_score": rng.normal(size=len(names)),
            "induction_score": rng.normal(size=len(names)),
        }
    )
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    edges = pd.DataFrame(
        {
            "step": step,
            "source": [a for a, _ in pairs],
            "target": [b for _, b in pairs],
            **{c: rng.random(len(pairs)) for c in EDGE_PROPERTIES},
        }
    )
    ckpt = pd.DataFrame({"step": [step], "loss": [rng.random()], "metric": [-rng.random()]})
    return CheckpointFrames(step, ckpt, comps, edges)


def batch_of(*steps, names=NAMES):
    return [frames(s, names) for s in steps]


def ck(step):
    return f"{RUN}/{step}"


def next_pairs(batch, names=NAMES):
    """Expected NEXT rows between consecutive steps of ``batch`` (component keys)."""
    return {(f"{RUN}/{a}/{n}", f"{RUN}/{b}/{n}") for a, b in batch for n in names}


def next_set(plan):
    assert list(plan.next.columns) == ["from_key", "to_key"]
    pairs = list(zip(plan.next.from_key, plan.next.to_key, strict=True))
    assert len(pairs) == len(set(pairs)), "a NEXT row is planned twice"
    return set(pairs)


# --- checkpoint_rows: validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "column"),
    [("checkpoint", "loss"), ("checkpoint", "metric"), ("components", "name"),
     ("components", "head"), ("components", "induction_score"), ("edges", "target"),
     ("edges", "direct_std"), ("edges", "step")],
)  # fmt: skip
def test_missing_column_is_named(frame, column):
    f = frames(10)
    setattr(f, frame, getattr(f, frame).drop(columns=[column]))
    with pytest.raises(CircuitAtlasError, match="missing columns") as e:
        checkpoint_rows(RUN, f)
    assert f"missing columns [{column!r}]" in str(e.value)
    assert str(e.value).startswith(f"checkpoint 10 {frame}")


def test_duplicate_component_is_named():
    f = frames(10)
    f.components = pd.concat([f.components, f.components.iloc[[1]]], ignore_index=True)
    with pytest.raises(CircuitAtlasError, match=r"component 'a0\.h0' appears twice"):
        checkpoint_rows(RUN, f)


def test_edge_naming_an_unknown_component_is_named():
    f = frames(10)
    f.edges.loc[0, "target"] = "a7.h9"
    with pytest.raises(CircuitAtlasError, match=r"not in its components.*a7\.h9"):
        checkpoint_rows(RUN, f)
    f = frames(10)
    f.edges.loc[2, "source"] = "ghost"
    with pytest.raises(CircuitAtlasError, match="ghost"):
        checkpoint_rows(RUN, f)


def test_duplicate_edge_is_refused():
    f = frames(10)
    f.edges = pd.concat([f.edges, f.edges.iloc[[3]]], ignore_index=True)
    with pytest.raises(CircuitAtlasError, match="an edge appears twice"):
        checkpoint_rows(RUN, f)


@pytest.mark.parametrize("frame", ["components", "edges"])
def test_rows_of_another_step_are_refused(frame):
    f = frames(10)
    getattr(f, frame).loc[0, "step"] = 20
    with pytest.raises(CircuitAtlasError, match=f"{frame} rows of other steps"):
        checkpoint_rows(RUN, f)
    f = frames(10)
    getattr(f, frame)["step"] = 20  # every row of another step
    with pytest.raises(CircuitAtlasError, match="other steps"):
        checkpoint_rows(RUN, f)


def test_checkpoint_row_of_another_step_is_refused():
    f = frames(10)
    f.checkpoint["step"] = 20
    with pytest.raises(CircuitAtlasError, match="other steps"):
        checkpoint_rows(RUN, f)


def test_checkpoint_frame_must_have_one_row_and_components_some():
    f = frames(10)
    f.checkpoint = pd.concat([f.checkpoint, f.checkpoint], ignore_index=True)
    with pytest.raises(CircuitAtlasError, match="2 checkpoint rows, expected 1"):
        checkpoint_rows(RUN, f)
    f = frames(10)
    f.components = f.components.iloc[:0]
    f.edges = f.edges.iloc[:0]
    with pytest.raises(CircuitAtlasError, match="no components"):
        checkpoint_rows(RUN, f)


def test_validation_does_not_modify_the_input_frames():
    f = frames(10)
    before = [x.copy() for x in (f.checkpoint, f.components, f.edges)]
    checkpoint_rows(RUN, f)
    for a, b in zip(before, (f.checkpoint, f.components, f.edges), strict=True):
        pd.testing.assert_frame_equal(a, b)


# --- checkpoint_rows: keys and rows -----------------------------------------------------------


def test_keys():
    assert checkpoint_key(RUN, 250) == f"{RUN}/250"
    assert checkpoint_key(RUN, np.int64(7)) == f"{RUN}/7"
    names = pd.Series(["a0.h0", "x/y", "it's"])
    assert component_keys(RUN, 5, names).tolist() == [
        f"{RUN}/5/a0.h0", f"{RUN}/5/x/y", f"{RUN}/5/it's",
    ]  # fmt: skip


def test_checkpoint_rows_keys_and_values():
    f = frames(30)
    r = checkpoint_rows(RUN, f)
    assert r.step == 30 and r.key == f"{RUN}/30"
    assert r.checkpoint == {
        "key": f"{RUN}/30",
        "run_id": RUN,
        "step": 30,
        "loss": float(f.checkpoint.loss.iloc[0]),
        "metric": float(f.checkpoint.metric.iloc[0]),
    }
    c = r.components
    assert list(c.columns) == [
        "key", "run_id", "step", "name", "kind", "layer", "head", "effect", "prev_token_score",
        "induction_score",
    ]  # fmt: skip
    assert c.key.tolist() == [f"{RUN}/30/{n}" for n in NAMES]
    assert set(c.run_id) == {RUN} and set(c.step) == {30}
    assert c.step.dtype == np.int64 and c.layer.dtype == np.int64
    assert str(c["head"].dtype) == "Int64"
    assert c["head"].isna().tolist() == [True, False, True, True]
    assert c["head"].iloc[1] == 0
    for col in ("effect", "prev_token_score", "induction_score"):
        assert c[col].tolist() == f.components[col].tolist()  # exact
    assert r.has_component.from_key.tolist() == [f"{RUN}/30"] * len(NAMES)
    assert r.has_component.to_key.tolist() == c.key.tolist()
    e = r.edges
    assert list(e.columns) == ["source_key", "target_key", "run_id", "step", *EDGE_PROPERTIES]
    assert e.source_key.tolist() == [f"{RUN}/30/{s}" for s in f.edges.source]
    assert e.target_key.tolist() == [f"{RUN}/30/{t}" for t in f.edges.target]
    for col in EDGE_PROPERTIES:
        assert e[col].dtype == np.float64
        assert e[col].tolist() == f.edges[col].tolist()  # exact


def test_checkpoint_rows_accept_unordered_and_reindexed_frames():
    f = frames(10)
    f.components = f.components.iloc[::-1].set_axis([7, 3, 99, 4])
    f.edges = f.edges.sample(frac=1, random_state=1).set_axis(range(100, 100 + len(f.edges)))
    r = checkpoint_rows(RUN, f)
    assert r.components.index.tolist() == list(range(len(NAMES)))
    assert r.components.key.tolist() == [f"{RUN}/10/{n}" for n in reversed(NAMES)]
    assert r.edges.source_key.tolist() == [f"{RUN}/10/{s}" for s in f.edges.source]
    assert r.edges.similarity.tolist() == f.edges.similarity.tolist()


def test_checkpoint_with_no_edges_is_valid():
    f = frames(10, names=("input",))
    assert f.edges.empty
    r = checkpoint_rows(RUN, f)
    assert r.edges.empty and r.components.key.tolist() == [f"{RUN}/10/input"]


# --- batch rows: NEXT planning, the plain way and the vectorized way ----------------------------


@pytest.fixture(params=["plain", "vectorized"])
def plan_of(request):
    """``plan_of(batch, stored)``: the batch's rows, checkpoint by checkpoint (the reference) or
    vectorized over the whole batch."""

    def plan(batch, stored):
        if request.param == "plain":
            return batch_rows(RUN, [checkpoint_rows(RUN, f) for f in batch], stored)
        prepared = prepare_batch(RUN, batch)
        assert isinstance(prepared, KeyedBatch)  # valid frames take the vectorized way
        return prepared.rows(stored)

    return plan


def test_fresh_run_links_consecutive_new_steps(plan_of):
    plan = plan_of(batch_of(20, 0, 10), stored=[])
    assert plan.n_checkpoints == 3
    assert plan.checkpoints.step.tolist() == [0, 10, 20]
    assert plan.checkpoints.key.tolist() == [ck(0), ck(10), ck(20)]
    assert plan.has_checkpoint.from_key.tolist() == [RUN] * 3
    assert plan.has_checkpoint.to_key.tolist() == [ck(0), ck(10), ck(20)]
    assert next_set(plan) == next_pairs([(0, 10), (10, 20)])
    assert plan.next_unlink == []
    assert plan.next_link == []
    assert len(plan.components) == 3 * len(NAMES)
    assert len(plan.has_component) == 3 * len(NAMES)
    assert len(plan.edges) == 3 * 6


def test_single_new_checkpoint_links_nothing(plan_of):
    plan = plan_of(batch_of(0), stored=[])
    assert plan.n_checkpoints == 1
    assert plan.next.empty and list(plan.next.columns) == ["from_key", "to_key"]
    assert plan.next_unlink == [] and plan.next_link == []


def test_appending_after_stored_steps(plan_of):
    plan = plan_of(batch_of(20, 30), stored=[0, 10])
    assert plan.checkpoints.step.tolist() == [20, 30]
    assert next_set(plan) == next_pairs([(20, 30)])
    assert plan.next_unlink == []
    assert plan.next_link == [(ck(10), ck(20))]


def test_prepending_before_stored_steps(plan_of):
    plan = plan_of(batch_of(0), stored=[10, 20])
    assert next_set(plan) == set()
    assert plan.next_unlink == []
    assert plan.next_link == [(ck(0), ck(10))]


def test_inserting_between_stored_steps(plan_of):
    plan = plan_of(batch_of(10), stored=[0, 20])
    assert plan.checkpoints.step.tolist() == [10]
    assert next_set(plan) == set()
    assert plan.next_unlink == [ck(0)]
    assert plan.next_link == [(ck(0), ck(10)), (ck(10), ck(20))]


def test_inserting_two_consecutive_steps_between_stored_ones(plan_of):
    plan = plan_of(batch_of(15, 12), stored=[10, 20])
    assert next_set(plan) == next_pairs([(12, 15)])
    assert plan.next_unlink == [ck(10)]
    assert plan.next_link == [(ck(10), ck(12)), (ck(15), ck(20))]


def test_batch_mixing_stored_and_new_steps(plan_of):
    plan = plan_of(batch_of(0, 10, 20, 30), stored=[0, 20])
    assert plan.n_checkpoints == 2
    assert plan.checkpoints.step.tolist() == [10, 30]
    assert set(plan.components.step) == {10, 30}
    assert set(plan.edges.step) == {10, 30}
    assert set(plan.has_component.from_key) == {ck(10), ck(30)}
    assert next_set(plan) == set()  # 10 and 30 are not consecutive: 20 is stored between
    assert plan.next_unlink == [ck(0)]
    assert plan.next_link == [(ck(0), ck(10)), (ck(10), ck(20)), (ck(20), ck(30))]


def test_new_steps_on_both_sides_of_stored_ones(plan_of):
    plan = plan_of(batch_of(30, 0, 25, 5, 15), stored=[20, 10])
    assert plan.checkpoints.step.tolist() == [0, 5, 15, 25, 30]
    assert next_set(plan) == next_pairs([(0, 5), (25, 30)])
    assert plan.next_unlink == [ck(10)]
    assert plan.next_link == [
        (ck(5), ck(10)), (ck(10), ck(15)), (ck(15), ck(20)), (ck(20), ck(25)),
    ]  # fmt: skip


def test_several_gaps_cut_at_once(plan_of):
    plan = plan_of(batch_of(5, 25), stored=[0, 10, 20, 30])
    assert next_set(plan) == set()
    assert plan.next_unlink == [ck(0), ck(20)]
    assert plan.next_link == [(ck(0), ck(5)), (ck(5), ck(10)), (ck(20), ck(25)), (ck(25), ck(30))]


def test_every_step_stored_plans_nothing(plan_of):
    plan = plan_of(batch_of(0, 10), stored=[0, 10, 20])
    assert plan.n_checkpoints == 0
    assert plan.components.empty and plan.edges.empty and plan.next.empty
    assert plan.has_checkpoint.empty and plan.has_component.empty
    assert plan.next_unlink == [] and plan.next_link == []


def test_next_links_only_names_present_at_both_steps(plan_of):
    batch = [
        frames(0, ("input", "a0.h0", "logits")),
        frames(10, ("input", "a0.h1", "logits")),
    ]
    plan = plan_of(batch, stored=[])
    assert next_set(plan) == next_pairs([(0, 10)], names=("input", "logits"))


def test_names_that_look_like_keys_do_not_cross_link(plan_of):
    batch = [frames(0, ("a", "10/a")), frames(10, ("a", "10/a"))]
    plan = plan_of(batch, stored=[])
    assert next_set(plan) == {
        (f"{RUN}/0/a", f"{RUN}/10/a"),
        (f"{RUN}/0/10/a", f"{RUN}/10/10/a"),
    }


def test_planning_matches_a_brute_force_model(plan_of):
    """Random stored/new splits: the planned links give exactly consecutive-step links."""
    rng = np.random.default_rng(0)
    all_steps = list(range(0, 100, 10))
    cache = {s: frames(s) for s in all_steps}
    for _ in range(40):
        stored = sorted(int(s) for s in all_steps if rng.random() < 0.4)
        batch_steps = [int(s) for s in rng.permutation(all_steps) if rng.random() < 0.5]
        plan = plan_of([cache[s] for s in batch_steps], stored)
        new = sorted(set(batch_steps) - set(stored))
        assert plan.checkpoints.step.tolist() == new
        # apply the plan to the stored run's checkpoint-level links and compare
        links = set(itertools.pairwise(stored))
        links -= {(a, b) for a, b in links if ck(a) in plan.next_unlink}
        links |= {(int(a.split("/")[1]), int(b.split("/")[1])) for a, b in plan.next_link}
        links |= {(int(a.split("/")[1]), int(b.split("/")[1])) for a, b in next_set(plan)}
        order = sorted(set(stored) | set(new))
        assert links == set(itertools.pairwise(order))
        unlinked = {int(k.split("/")[1]) for k in plan.next_unlink}
        cut = {a for a, b in itertools.pairwise(stored) if any(a < s < b for s in new)}
        assert unlinked == cut


# --- the vectorized batch equals the plain rows exactly --------------------------------------

TABLES = ("checkpoints", "has_checkpoint", "components", "has_component", "edges", "next")


def assert_same_rows(got, want):
    """Every table equal (values, column order, dtypes, index), and the same NEXT statements."""
    for table in TABLES:
        pd.testing.assert_frame_equal(getattr(got, table), getattr(want, table), check_exact=True)
    assert got.next_unlink == want.next_unlink
    assert got.next_link == want.next_link


def plain(batch, stored):
    return batch_rows(RUN, [checkpoint_rows(RUN, f) for f in batch], stored)


def vectorized(batch, stored):
    prepared = prepare_batch(RUN, batch)
    assert isinstance(prepared, KeyedBatch)
    return prepared.rows(stored)


@pytest.mark.parametrize(
    ("steps", "stored"),
    [([0, 10, 20], []), ([20, 0, 10], []), ([30, 0, 25, 5, 15], []), ([0], []),
     ([20, 30], [0, 10]), ([30, 20], [0, 10]), ([0], [10, 20]), ([10], [0, 20]),
     ([15, 12], [10, 20]), ([0, 10, 20, 30], [0, 20]), ([30, 0, 25, 5, 15], [20, 10]),
     ([5, 25], [0, 10, 20, 30]), ([0, 10], [0, 10, 20]), ([10, 0], [0, 10])],
)  # fmt: skip
def test_vectorized_rows_equal_the_plain_rows(steps, stored):
    """In order, out of order, after / before / between stored steps, partly or wholly stored."""
    batch = batch_of(*steps)
    assert_same_rows(vectorized(batch, stored), plain(batch, stored))


def test_vectorized_rows_equal_the_plain_rows_for_unusual_frames():
    f0 = frames(0, ("input", "a0.h0", "logits"))
    f1 = frames(10, ("input", "a0.h1", "m0", "logits"))
    f1.components = f1.components.iloc[::-1].set_axis([7, 3, 99, 4])  # unordered, reindexed
    f1.edges = f1.edges.sample(frac=1, random_state=1).set_axis(range(100, 100 + len(f1.edges)))
    f2 = frames(20, ("a", "10/a", "it's", "input"))  # names that look like keys, no shared
    f3 = frames(30, ("input",))  # no edges
    f4 = frames(40, ("a", "10/a", "x/y"))
    batch = [f2, f4, f0, f3, f1]
    for stored in ([], [5], [20], [10, 35]):
        assert_same_rows(vectorized(batch, stored), plain(batch, stored))


def test_vectorized_rows_equal_the_plain_rows_with_missing_scores():
    batch = batch_of(10, 0, 20)
    for f in batch:
        f.edges.loc[f.edges.index[::2], "patch_effect"] = np.nan  # some not computed
        f.edges["eap_ig"] = np.nan
        f.components.loc[0, "effect"] = np.nan
    assert_same_rows(vectorized(batch, []), plain(batch, []))
    for f in batch:  # score columns absent: stored as null
        f.edges = f.edges.drop(columns=EDGE_SCORE_COLUMNS)
    assert_same_rows(vectorized(batch, [10]), plain(batch, [10]))
    assert vectorized(batch, []).edges[EDGE_SCORE_COLUMNS].isna().all().all()


def test_random_batches_equal_the_plain_rows():
    rng = np.random.default_rng(1)
    all_steps = list(range(0, 120, 10))
    for _ in range(30):
        stored = sorted(int(s) for s in all_steps if rng.random() < 0.3)
        steps = [int(s) for s in rng.permutation(all_steps) if rng.random() < 0.6] or [0]
        batch = []
        for s in steps:
            f = frames(s, names=tuple(n for n in _META if rng.random() < 0.8) or ("input",))
            f.edges = f.edges.sample(frac=1, random_state=int(s))
            batch.append(f)
        assert_same_rows(vectorized(batch, stored), plain(batch, stored))


def test_sweep_frames_take_the_vectorized_way_and_equal_the_plain_rows():
    sweep = synthetic_sweep(n_layers=2, n_heads=2, steps=[0, 10, 20, 30], seed=3)
    batch = list(sweep_frames(sweep, [30, 0, 20, 10]))
    for stored in ([], [10], [0, 30]):
        assert_same_rows(vectorized(batch, stored), plain(batch, stored))


def test_parts_split_the_batch_by_checkpoint_and_keep_its_rows():
    batch = batch_of(40, 0, 30, 10, 20)  # 6 edges each
    prepared = prepare_batch(RUN, batch)
    parts = prepared.parts(13)
    assert [p.steps.tolist() for p in parts] == [[0, 10], [20, 30], [40]]
    assert prepared.parts(1000) == [prepared]
    assert [p.steps.tolist() for p in prepared.parts(1)] == [[s] for s in (0, 10, 20, 30, 40)]
    stored = []  # each part written in turn: the later ones see the earlier ones stored
    for part in parts:
        want = plain(batch, stored)
        got = part.rows(stored)
        mine = set(part.steps.tolist())
        for table in ("components", "edges"):
            pd.testing.assert_frame_equal(
                getattr(got, table),
                getattr(want, table)[getattr(want, table).step.isin(mine)].reset_index(drop=True),
            )
        stored += sorted(mine)
    plain_parts = CheckpointRowsBatch(RUN, [checkpoint_rows(RUN, f) for f in batch]).parts(13)
    assert [[r.step for r in p.checkpoints] for p in plain_parts] == [[40, 0], [30, 10], [20]]


def _first(values, value):
    """``values`` (a column) with its first entry replaced by ``value``."""
    return [value, *values.tolist()[1:]]


# Changes of a valid checkpoint's frames that the plain way refuses.
BAD = {
    "no loss": lambda f: replace(f, checkpoint=f.checkpoint.drop(columns=["loss"])),
    "no name": lambda f: replace(f, components=f.components.drop(columns=["name"])),
    "no head": lambda f: replace(f, components=f.components.drop(columns=["head"])),
    "no target": lambda f: replace(f, edges=f.edges.drop(columns=["target"])),
    "no direct_std": lambda f: replace(f, edges=f.edges.drop(columns=["direct_std"])),
    "no edge step": lambda f: replace(f, edges=f.edges.drop(columns=["step"])),
    "component twice": lambda f: replace(
        f, components=pd.concat([f.components, f.components.iloc[[1]]], ignore_index=True)
    ),
    "unknown target": lambda f: replace(
        f, edges=f.edges.assign(target=_first(f.edges.target, "a7.h9"))
    ),
    "unknown source": lambda f: replace(
        f, edges=f.edges.assign(source=_first(f.edges.source, "ghost"))
    ),
    "edge twice": lambda f: replace(
        f, edges=pd.concat([f.edges, f.edges.iloc[[3]]], ignore_index=True)
    ),
    "component of another step": lambda f: replace(
        f, components=f.components.assign(step=_first(f.components.step, 20))
    ),
    "edge of another step": lambda f: replace(
        f, edges=f.edges.assign(step=_first(f.edges.step, 20))
    ),
    "checkpoint of another step": lambda f: replace(f, checkpoint=f.checkpoint.assign(step=20)),
    "two checkpoint rows": lambda f: replace(
        f, checkpoint=pd.concat([f.checkpoint, f.checkpoint], ignore_index=True)
    ),
    "no components": lambda f: replace(f, components=f.components.iloc[:0], edges=f.edges.iloc[:0]),
    "missing name": lambda f: replace(
        f, components=f.components.assign(name=_first(f.components.name, None))
    ),
    "missing source": lambda f: replace(
        f, edges=f.edges.assign(source=_first(f.edges.source, None))
    ),
    # not ours but pandas' error, the same either way
    "missing layer": lambda f: replace(
        f, components=f.components.assign(layer=_first(f.components.layer, np.nan))
    ),
    "a loss that is no number": lambda f: replace(f, checkpoint=f.checkpoint.assign(loss="low")),
}


def _bad_batches():
    """Batches the plain way refuses: one bad checkpoint among valid ones, or two bad ones."""
    for name, change in BAD.items():
        yield pytest.param([frames(0), change(frames(10)), frames(20)], id=name)
    two = [frames(20), BAD["no target"](frames(0)), BAD["no name"](frames(10))]
    yield pytest.param(two, id="two bad checkpoints")


@pytest.mark.parametrize("batch", list(_bad_batches()))
def test_bad_input_gives_the_plain_error(batch):
    """The batch names bad input exactly as checkpoint by checkpoint does (first bad one)."""
    with pytest.raises(Exception) as want:
        [checkpoint_rows(RUN, f) for f in batch]
    with pytest.raises(type(want.value)) as got:
        prepare_batch(RUN, batch)
    assert str(got.value) == str(want.value)
    assert "\n" not in str(got.value)


def test_frames_of_different_columns_take_the_plain_way_and_give_its_rows():
    batch = batch_of(0, 10)
    batch[1].edges = batch[1].edges.drop(columns=EDGE_SCORE_COLUMNS)  # one without scores
    prepared = prepare_batch(RUN, batch)
    assert isinstance(prepared, CheckpointRowsBatch)
    assert_same_rows(prepared.rows([]), plain(batch, []))


def test_a_step_twice_in_one_batch_is_refused():
    for batch in (batch_of(0, 10, 0), [frames(0), frames(0, names=("input", "logits"))]):
        with pytest.raises(CircuitAtlasError, match=r"checkpoint 0: given twice in one write"):
            prepare_batch(RUN, batch)


def test_preparing_a_batch_does_not_modify_its_frames():
    batch = batch_of(10, 0)
    before = [[x.copy() for x in (f.checkpoint, f.components, f.edges)] for f in batch]
    prepare_batch(RUN, batch).rows([0])
    for f, frames_before in zip(batch, before, strict=True):
        for a, b in zip(frames_before, (f.checkpoint, f.components, f.edges), strict=True):
            pd.testing.assert_frame_equal(a, b)


def test_an_empty_batch_has_no_rows():
    assert prepare_batch(RUN, []).rows([0]).n_checkpoints == 0


# --- shards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, (1, 1)), ("1/1", (1, 1)), ("1/2", (1, 2)), ("2/2", (2, 2)), (" 3 / 4 ", (3, 4)),
     ("10/12", (10, 12))],
)  # fmt: skip
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "x", "", "1/0", "0/0", "-1/2", "1/2/3", "1", "a/b"])
def test_parse_shard_refuses(text):
    with pytest.raises(CircuitAtlasError, match=r"--shard .*give i/n with 1 ≤ i ≤ n"):
        parse_shard(text)


def test_shard_steps_are_one_based_and_partition_the_run():
    steps = [0, 10, 20, 30, 40, 50, 60]
    assert shard_steps(steps, (1, 1)) == steps
    assert shard_steps(steps, (1, 2)) == [0, 20, 40, 60]
    assert shard_steps(steps, (2, 2)) == [10, 30, 50]
    assert shard_steps(steps, (1, 3)) == [0, 30, 60]
    assert shard_steps(steps, (2, 3)) == [10, 40]
    assert shard_steps(steps, (3, 3)) == [20, 50]
    assert shard_steps(steps[:2], (3, 3)) == []
    for n in range(1, 9):
        parts = [shard_steps(steps, (i, n)) for i in range(1, n + 1)]
        assert sorted(s for p in parts for s in p) == steps
