"""Trajectory questions (`circuitatlas ask`) on the embedded store: every answer against a plain
pandas computation on the store's ordinary reads (`components`, `edges`), with ties, nulls and a
component name full of Cypher, the CLI in every format, and bad input."""

import json
from dataclasses import replace
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from circuitatlas.analytics.analyze import analyze
from circuitatlas.cli import main
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries import trajectory as tj
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

STEPS = [0, 10, 20, 40]
HARD = 'm1\') RETURN 1 // "x"'  # a component name that would break formatted Cypher
TIED_EFFECT = ("a2.h0", "a0.h3", "m2")  # effect 5.0 at step 10: the largest, tied
CROSSING = ("a0.h2", "a2.h1")  # total weights 0.25, 0.75, 1.5, 1.5 over STEPS
TIED_DELTA = [("input", "a1.h0"), ("a0.h0", "m2"), ("a0.h0", "a2.h3")]  # +0.9375, 10 → 40
UNCHANGED = ("a0.h1", "m2")  # weight 0.5 (present) at steps 10 and 40: in no change class


def _sweep():
    """A synthetic run with planted ties and nulls (see the constants above)."""
    sweep = synthetic_sweep(3, 4, STEPS, seed=5, names={"m1": HARD})
    comps, edges = sweep.components.copy(), sweep.edges.copy()
    comps.loc[(comps.step == 10) & comps.name.isin(TIED_EFFECT), "effect"] = 5.0
    comps.loc[(comps.step == 20) & (comps.name == "a1.h1"), "induction_score"] = np.nan

    def set_weight(step, source, target, weight):
        row = (edges.step == step) & (edges.source == source) & (edges.target == target)
        assert row.sum() == 1
        edges.loc[row, ["weight", "similarity"]] = [weight, 1.0 - weight]

    for step, weight in zip(STEPS, [0.25, 0.75, 1.5, 1.5], strict=True):
        set_weight(step, *CROSSING, weight)
    for source, target in TIED_DELTA:  # present at both steps (similarity < 0.7)
        set_weight(10, source, target, 0.3125)
        set_weight(40, source, target, 1.25)
    for step in (10, 40):
        set_weight(step, *UNCHANGED, 0.5)
    return replace(sweep, components=comps, edges=edges)


@pytest.fixture(scope="module")
def sweep():
    return _sweep()


@pytest.fixture(scope="module")
def plain_path(tmp_path_factory, sweep):
    """A store holding the run, never analyzed."""
    path = tmp_path_factory.mktemp("ask") / "plain.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
    return path


@pytest.fixture(scope="module")
def path(tmp_path_factory, sweep):
    """A store holding the run, analyzed at τ 0.7 (total effects, top-3)."""
    path = tmp_path_factory.mktemp("ask") / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
        analyze(store, sweep.run_id, 0.7)
    return path


@pytest.fixture(scope="module")
def store(path):
    with open_store(path) as store:
        yield store


@pytest.fixture(scope="module")
def comps(store, sweep):
    return store.components(sweep.run_id)


@pytest.fixture(scope="module")
def edges(store, sweep):
    return store.edges(sweep.run_id)


def same(ours, reference):
    """Equal values and column names (dtypes may differ: str vs object, int vs Int64)."""
    pd.testing.assert_frame_equal(
        ours.reset_index(drop=True),
        reference.reset_index(drop=True),
        check_dtype=False,
        check_exact=True,
    )


# --- top ---------------------------------------------------------------------------------------
def reference_top(comps, metric, k):
    kept = comps.dropna(subset=[metric])
    kept = kept.sort_values(["step", metric, "name"], ascending=[True, False, True])
    kept = kept.assign(rank=kept.groupby("step")[metric].rank(method="min", ascending=False))
    top = kept.groupby("step").head(k)
    return top[["step", "rank", "name", metric]].rename(columns={metric: "value"})


@pytest.mark.parametrize("metric", tj.NUMERIC_PROPERTIES)
@pytest.mark.parametrize("k", [1, 3, 100])
def test_top_equals_pandas(store, sweep, comps, metric, k):
    ours = tj.top_components(store, sweep.run_id, metric, k)
    same(ours, reference_top(comps, metric, k).astype({"rank": "int64"}))
    assert list(ours.columns) == ["step", "rank", "name", "value"]
    assert ours.groupby("step").size().max() == min(k, comps.groupby("step")[metric].count().max())


def test_top_ties_share_a_rank_and_go_by_name(store, sweep):
    ours = tj.top_components(store, sweep.run_id, "effect", 2)
    at_10 = ours[ours.step == 10]
    assert at_10[["rank", "name", "value"]].values.tolist() == [
        [1, "a0.h3", 5.0],
        [1, "a2.h0", 5.0],
    ]
    third = tj.top_components(store, sweep.run_id, "effect", 4)
    assert third[third.step == 10]["rank"].tolist() == [1, 1, 1, 4]


def test_top_leaves_nulls_out(store, sweep, comps):
    ours = tj.top_components(store, sweep.run_id, "prev_token_score", 100)
    heads = comps[comps.kind == "attn_head"]
    assert sorted(zip(ours.step, ours.name, strict=True)) == sorted(
        zip(heads.step, heads.name, strict=True)
    )
    assert ours["value"].notna().all()
    induction = tj.top_components(store, sweep.run_id, "induction_score", 100)
    assert "a1.h1" not in induction[induction.step == 20].name.tolist()
    assert "a1.h1" in induction[induction.step == 10].name.tolist()


def test_degree_values_are_integers(store, sweep):
    ours = tj.top_components(store, sweep.run_id, "in_degree", 3)
    assert str(ours["value"].dtype) == "Int64"


# --- history -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a1.h1", HARD, "logits"])
def test_history_equals_pandas(store, sweep, comps, name):
    ours = tj.component_history(store, sweep.run_id, name)
    rows = comps[comps.name == name].sort_values("step")
    stored = [m for m in tj.NUMERIC_PROPERTIES if rows[m].notna().any()]
    same(ours, rows[["step", *stored]])
    if name == "logits":  # effect and the scores are null for the sink: not shown
        assert "effect" not in ours.columns and "pagerank" in ours.columns
    if name == "a1.h1":  # null at one step, shown
        assert ours["induction_score"].isna().tolist() == [False, False, True, False]


def test_history_of_chosen_metrics(store, sweep, comps):
    ours = tj.component_history(store, sweep.run_id, "a0.h2", ["pagerank", "effect"])
    rows = comps[comps.name == "a0.h2"].sort_values("step")
    same(ours, rows[["step", "pagerank", "effect"]])


def test_history_of_a_run_never_analyzed_shows_the_sweep_values(plain_path, sweep):
    ours = tj.component_history(plain_path, sweep.run_id, "a0.h2")
    assert list(ours.columns) == ["step", "effect", "prev_token_score", "induction_score"]


# --- edge and first ----------------------------------------------------------------------------
@pytest.mark.parametrize(("source", "target"), [CROSSING, ("input", HARD), (HARD, "logits")])
def test_edge_equals_pandas(store, sweep, edges, source, target):
    ours = tj.edge_history(store, sweep.run_id, source, target)
    rows = edges[(edges.source == source) & (edges.target == target)].sort_values("step")
    same(ours, rows.drop(columns=["source", "target"]))
    assert len(ours) == len(STEPS)


def reference_first(edges, source, target, value, measure):
    weight = "direct_weight" if measure == "direct" else "weight"
    rows = edges[(edges.source == source) & (edges.target == target)].sort_values("step")
    above = rows[rows[weight] > value]
    return above[["step", weight]].head(1).set_axis(["step", "weight"], axis=1)


@pytest.mark.parametrize("measure", ["total", "direct"])
@pytest.mark.parametrize("value", [-1.0, 0.1, 0.2, 0.5])
@pytest.mark.parametrize("pair", [("input", "a1.h0"), ("a0.h0", HARD), ("a1.h3", "logits")])
def test_first_equals_pandas(store, sweep, edges, pair, value, measure):
    ours = tj.first_exceeding(store, sweep.run_id, *pair, value, measure)
    same(ours, reference_first(edges, *pair, value, measure))


def test_first_is_strictly_above(store, sweep):
    answers = [
        tj.first_exceeding(store, sweep.run_id, *CROSSING, value).values.tolist()
        for value in (0.5, 0.75, 1.4)
    ]
    assert answers == [[[10, 0.75]], [[20, 1.5]], [[20, 1.5]]]


def test_first_never_says_how_high_and_when(store, sweep):
    ours = tj.first_exceeding(store, sweep.run_id, *CROSSING, 1.5)
    assert ours.empty and list(ours.columns) == ["step", "weight"]
    assert ours.attrs["note"] == (
        f"the total weight of a0.h2 → a2.h1 never exceeds 1.5 in run {sweep.run_id}; its "
        f"largest is 1.5, first reached at step 20"
    )


# --- roles -------------------------------------------------------------------------------------
def reference_roles(comps, step_a, step_b):
    a = comps[comps.step == step_a][["name", "role"]]
    b = comps[comps.step == step_b][["name", "role"]]
    both = a.merge(b, on="name", suffixes=("_before", "_after"), sort=False)
    changed = both[both.role_before.fillna("") != both.role_after.fillna("")]
    return changed.astype(object).where(changed.notna(), None)


@pytest.mark.parametrize(("step_a", "step_b"), [(0, 40), (10, 20), (40, 0), (20, 20)])
def test_roles_equal_pandas(store, sweep, comps, step_a, step_b):
    ours = tj.role_changes(store, sweep.run_id, step_a, step_b)
    same(ours, reference_roles(comps, step_a, step_b))
    assert ours.attrs["note"] == "roles of the analysis at τ=0.7 (total effects, top-3)"


def test_roles_include_gaining_and_losing_one(store, sweep):
    """The planted run has components that gain a role and that lose one (null on a side)."""
    ours = pd.concat(tj.role_changes(store, sweep.run_id, a, b) for a, b in [(0, 40), (10, 20)])
    assert ours.role_before.isna().any() and ours.role_after.isna().any()
    assert (ours.role_before.notna() & ours.role_after.notna()).any()


# --- diff --------------------------------------------------------------------------------------
def reference_diff(edges, step_a, step_b, tau, measure, k):
    similarity, weight = ("similarity", "weight")
    if measure == "direct":
        similarity, weight = ("direct_similarity", "direct_weight")
    a, b = (edges[edges.step == s] for s in (step_a, step_b))
    both = a.merge(b, on=["source", "target"], suffixes=("_a", "_b"))
    before, after = both[f"{similarity}_a"] < tau, both[f"{similarity}_b"] < tau
    delta = both[f"{weight}_b"] - both[f"{weight}_a"]
    conditions = [after & ~before, before & ~after, before & after & (delta > 0)]
    conditions.append(before & after & (delta < 0))
    frame = pd.DataFrame(
        {
            "change": np.select(conditions, tj.CHANGES, default=""),
            "source": both.source,
            "target": both.target,
            "weight_before": both[f"{weight}_a"],
            "weight_after": both[f"{weight}_b"],
            "delta": delta,
            "order": np.select(conditions, range(4), default=-1),
            "size": delta.abs(),
        }
    )
    frame = frame[frame.order >= 0].sort_values(
        ["order", "size", "source", "target"], ascending=[True, False, True, True]
    )
    return frame.groupby("order").head(k).drop(columns=["order", "size"])


@pytest.mark.parametrize(
    ("step_a", "step_b", "tau", "measure", "k"),
    [
        (10, 40, 0.7, "total", 2),
        (10, 40, 0.7, "total", 10),
        (10, 40, 0.7, "total", 1000),
        (0, 20, 0.3, "total", 5),
        (40, 0, 1.5, "total", 3),  # every edge present at both: no appearing or vanishing
        (0, 40, 0.75, "direct", 4),
        (20, 10, 0.7, "direct", 1000),  # more than every class holds
        (20, 20, 0.7, "total", 10),  # a step with itself: nothing changes
    ],
)
def test_diff_equals_pandas(store, sweep, edges, step_a, step_b, tau, measure, k):
    ours = tj.checkpoint_diff(store, sweep.run_id, step_a, step_b, tau, measure, k)
    reference = reference_diff(edges, step_a, step_b, tau, measure, k)
    same(ours, reference)
    assert list(ours.columns) == list(tj.DIFF_COLUMNS)
    if step_a == step_b:
        assert ours.empty


def test_diff_ties_go_by_source_then_target(store, sweep):
    ours = tj.checkpoint_diff(store, sweep.run_id, 10, 40, 0.7, "total", 2)
    strengthened = ours[ours.change == "strengthened"]
    assert strengthened[["source", "target", "delta"]].values.tolist() == [
        ["a0.h0", "a2.h3", 0.9375],
        ["a0.h0", "m2", 0.9375],
    ]
    assert ours.change.tolist() == [c for c in tj.CHANGES for _ in range(2)]
    every = tj.checkpoint_diff(store, sweep.run_id, 10, 40, 0.7, "total", 1000)
    assert len(every) > 100 and UNCHANGED not in set(zip(every.source, every.target, strict=True))


# --- the command -------------------------------------------------------------------------------
def ask(path, *args):
    return CliRunner().invoke(main, ["ask", *args, "--store", str(path)], catch_exceptions=False)


QUESTIONS = {  # CLI arguments → the same question through the API
    "top": (["top", "effect", "-k", "2"], lambda s, r: tj.top_components(s, r, "effect", 2)),
    "history": (
        ["history", HARD, "--metric", "pagerank", "--metric", "effect"],
        lambda s, r: tj.component_history(s, r, HARD, ["pagerank", "effect"]),
    ),
    "edge": (["edge", *CROSSING], lambda s, r: tj.edge_history(s, r, *CROSSING)),
    "first": (
        ["first", *CROSSING, "--above", "0.5", "--edges", "total"],
        lambda s, r: tj.first_exceeding(s, r, *CROSSING, 0.5),
    ),
    "roles": (["roles", "0", "40"], lambda s, r: tj.role_changes(s, r, 0, 40)),
    "diff": (
        ["diff", "10", "40", "--tau", "0.7", "--edges", "direct", "-k", "3"],
        lambda s, r: tj.checkpoint_diff(s, r, 10, 40, 0.7, "direct", 3),
    ),
}


def nulls_as_none(frame):
    return frame.astype(object).where(frame.notna(), None)


@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_cli_prints_the_api_answer_in_every_format(path, store, sweep, question):
    args, api = QUESTIONS[question]
    expected = api(store, sweep.run_id)
    assert len(expected) > 0
    as_csv = ask(path, *args, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    same(nulls_as_none(pd.read_csv(StringIO(as_csv.stdout))), nulls_as_none(expected))
    records = json.loads(ask(path, *args, "--format", "json").stdout)
    assert [list(r) for r in records] == [list(expected.columns)] * len(expected)
    same(nulls_as_none(pd.DataFrame(records)), nulls_as_none(expected))
    table = ask(path, *args)
    lines = table.stdout.splitlines()
    assert lines[0].split() == list(expected.columns) and len(lines) == len(expected) + 1
    assert table.stderr == ("" if "note" not in expected.attrs else expected.attrs["note"] + "\n")


def test_cli_first_that_never_happens_prints_no_rows_and_the_note(path, sweep):
    out = ask(path, "first", *CROSSING, "--above", "2", "--format", "json")
    assert out.exit_code == 0 and json.loads(out.stdout) == []
    assert out.stderr.strip().endswith("its largest is 1.5, first reached at step 20")
    assert ask(path, "first", *CROSSING, "--above", "2").stdout.strip() == "(no rows)"


def test_cli_help_has_examples():
    for question in [[], *([q] for q in QUESTIONS)]:
        out = CliRunner().invoke(main, ["ask", *question, "--help"])
        assert out.exit_code == 0 and "Examples:" in out.output


BAD = [
    (
        ["top", "pagernk"],
        "error: metric 'pagernk': not a numeric component property; did you mean pagerank? "
        "give one of effect, prev_token_score,",
    ),
    (["top", "xyz"], "error: metric 'xyz': not a numeric component property; give one of"),
    (["top", "effect", "-k", "0"], "error: -k 0: give a positive number of rows"),
    (["top", "effect", "--run", "nope"], "error: unknown run 'nope'"),
    (["history", "a0.h9"], "error: component 'a0.h9': no such component in run {run}; did you"),
    (["history", "zzz"], "error: component 'zzz': no such component in run {run}; it has a0.h0,"),
    (["history", "a0.h1", "--metric", "pr"], "error: metric 'pr': not a numeric component"),
    (["edge", "a0.h1", "a2.h9"], "error: target 'a2.h9': no such component in run {run}; did"),
    (["edge", "a9.h1", "m2"], "error: source 'a9.h1': no such component in run {run}; did you"),
    (["edge", "m2", "a0.h1"], "error: no edge m2 → a0.h1 in run {run}: m2 is not upstream"),
    (["first", "a0.h1", "m2", "--above", "nan"], "error: --above nan: give a finite weight"),
    (["first", "m2", "a0.h1", "--above", "0.5"], "error: no edge m2 → a0.h1"),
    (["roles", "0", "7"], "error: step 7 is not stored for run {run} (steps: 0, 10, 20, 40)"),
    (["roles", "0", "10", "--run", "nope"], "error: unknown run 'nope'"),
    (["diff", "5", "10"], "error: step 5 is not stored for run {run}"),
    (["diff", "0", "10", "--tau", "0"], "error: --tau 0.0: give a threshold in (0, 2]"),
    (["diff", "0", "10", "--tau", "-1"], "error: --tau -1.0: give a threshold in (0, 2]"),
    (["diff", "0", "10", "--tau", "nan"], "error: --tau nan: give a threshold in (0, 2]"),
    (["diff", "0", "10", "--tau", "inf"], "error: --tau inf: give a threshold in (0, 2]"),
    (["diff", "0", "10", "-k", "-2"], "error: -k -2: give a positive number of rows"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_cli_bad_input_is_one_line(path, sweep, args, message):
    out = CliRunner().invoke(main, ["ask", *args, "--store", str(path)])
    assert out.exit_code == 1, out.output
    assert out.stderr.startswith(message.format(run=sweep.run_id)), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.output
    assert out.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["roles", "0", "10"], "error: roles: run {run} has not been analyzed; run `circuitatlas"),
        (["top", "pagerank"], "error: metric 'pagerank': run {run} has not been analyzed"),
        (["history", "a0.h1", "--metric", "betweenness"], "error: metric 'betweenness': run {run}"),
    ],
)
def test_cli_analysis_questions_on_a_run_never_analyzed(plain_path, sweep, args, message):
    out = CliRunner().invoke(main, ["ask", *args, "--store", str(plain_path)])
    assert out.exit_code == 1
    assert out.stderr.startswith(message.format(run=sweep.run_id)), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert ask(plain_path, "top", "effect", "-k", "1").exit_code == 0  # sweep values need none


def test_cli_needs_run_when_the_store_has_several(tmp_path, sweep):
    path = tmp_path / "two.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
        ingest_sweep(store, synthetic_sweep(2, 2, [0, 5], seed=9, model="other"), progress=False)
    out = CliRunner().invoke(main, ["ask", "top", "effect", "--store", str(path)])
    assert out.exit_code == 1 and out.stderr.startswith("error: --run: give the run")
    assert ask(path, "top", "effect", "--run", sweep.run_id, "-k", "1").exit_code == 0


def test_the_api_takes_a_store_url_and_refuses_bad_values(path, sweep):
    frame = tj.top_components(str(path), sweep.run_id, "pagerank", 1)
    assert len(frame) == len(STEPS)
    with pytest.raises(CircuitAtlasError, match="--edges both: give one of total, direct"):
        tj.checkpoint_diff(path, sweep.run_id, 0, 10, measure="both")
    with pytest.raises(CircuitAtlasError, match="--edges both"):
        tj.first_exceeding(path, sweep.run_id, *CROSSING, 0.5, measure="both")
