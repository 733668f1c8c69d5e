"""Roles (top-k sets, labels, Jaccard stability) and training phases (change points, segment
labels), checked against values computed by hand from the modules' documented rules."""

import math
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from circuitatlas.analytics.phases import (
    GROW,
    IMPROVE,
    MIN_SIZE,
    PHASE_DEFINITIONS,
    PHASES,
    SEGMENT_COLUMNS,
    SIGNALS,
    change_points,
    label_segment,
    merge_equal,
    phases,
    segment_table,
)
from circuitatlas.analytics.roles import (
    DEFAULT_RECONFIGURATION,
    ROLE_METRICS,
    ROLES,
    jaccard,
    role_labels,
    stability,
    top_sets,
)

# ---------------------------------------------------------------------------------------------
# roles
# ---------------------------------------------------------------------------------------------


def metrics_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["step", "name", "out_strength", "in_strength", "betweenness"]
    ).astype({"out_strength": float, "in_strength": float, "betweenness": float})


# Step 10: out-strength a=5 > b=c=3 (tie, c listed first) > d=0, e<0; in-strength d=2 > b=1,
# the rest 0; betweenness b=0.5 > e=0.2, the rest 0.
# Step 20 (listed first): only x spreads; nothing gathers (NaN and 0); y and z tie on betweenness.
ROLE_ROWS = [
    (20, "z", 0.0, math.nan, 1.0),
    (20, "x", 4.0, 0.0, 0.0),
    (20, "y", -2.0, 0.0, 1.0),
    (10, "a", 5.0, 0.0, 0.0),
    (10, "c", 3.0, 0.0, 0.0),
    (10, "b", 3.0, 1.0, 0.5),
    (10, "d", 0.0, 2.0, 0.0),
    (10, "e", -1.0, 0.0, 0.2),
]


def test_role_constants():
    assert ROLE_METRICS == {
        "spreader": "out_strength",
        "gatherer": "in_strength",
        "gatekeeper": "betweenness",
    }
    assert ROLES == ("spreader", "gatherer", "gatekeeper")
    assert DEFAULT_RECONFIGURATION == 0.5


def test_top_sets_by_metric_positive_only_ties_by_name():
    sets = top_sets(metrics_frame(ROLE_ROWS), k=3)
    assert list(sets) == [10, 20]  # sorted steps, whatever the row order
    assert all(type(step) is int for step in sets)
    assert sets[10] == {
        "spreader": ["a", "b", "c"],  # b before c: tie broken by name, not row order
        "gatherer": ["d", "b"],  # k larger than the positive candidates
        "gatekeeper": ["b", "e"],  # e has negative out-strength but positive betweenness
    }
    assert sets[20] == {
        "spreader": ["x"],  # y (negative) and z (zero) spread nothing
        "gatherer": [],  # zero and NaN in-strength never count
        "gatekeeper": ["y", "z"],
    }


def test_top_sets_k_cuts_after_tie_break():
    sets = top_sets(metrics_frame(ROLE_ROWS), k=2)
    assert sets[10]["spreader"] == ["a", "b"]
    assert sets[10]["gatherer"] == ["d", "b"]
    assert sets[20]["gatekeeper"] == ["y", "z"]
    sets = top_sets(metrics_frame(ROLE_ROWS), k=1)
    assert sets[10] == {"spreader": ["a"], "gatherer": ["d"], "gatekeeper": ["b"]}
    assert sets[20] == {"spreader": ["x"], "gatherer": [], "gatekeeper": ["y"]}


def test_role_labels_joined_in_roles_order():
    frame = metrics_frame(ROLE_ROWS)
    frame.index = [f"r{i}" for i in range(len(frame))]
    labels = role_labels(frame, top_sets(frame, k=3))
    assert labels.index.tolist() == frame.index.tolist()
    assert dict(zip(frame["name"], labels, strict=True)) == {
        "z": "gatekeeper",
        "x": "spreader",
        "y": "gatekeeper",
        "a": "spreader",
        "c": "spreader",
        "b": "spreader+gatherer+gatekeeper",
        "d": "gatherer",
        "e": "gatekeeper",
    }


def test_role_labels_none_and_order_independent_of_set_order():
    frame = metrics_frame([(1, "p", 0, 0, 0), (1, "q", 0, 0, 0), (2, "p", 0, 0, 0)])
    # gatekeeper listed before spreader in the dict: the label still follows ROLES order
    sets = {1: {"gatekeeper": ["q"], "spreader": ["q"], "gatherer": []}}
    labels = role_labels(frame, sets)
    assert labels.tolist() == [None, "spreader+gatekeeper", None]  # step 2 has no sets at all
    assert labels.dtype == object


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (["a", "b"], ["b", "c"], 1 / 3),
        (["a", "b", "c"], ["c", "b", "a"], 1.0),
        (["a"], ["b"], 0.0),
        ([], ["a"], 0.0),
        (["a", "a"], ["a"], 1.0),
        (["a", "b", "c", "d"], ["a", "b"], 0.5),
    ],
)
def test_jaccard(a, b, expected):
    assert jaccard(a, b) == pytest.approx(expected, abs=1e-12)


def test_jaccard_both_empty_is_nan():
    assert math.isnan(jaccard([], []))


def role_sets(spreader, gatherer, gatekeeper) -> dict[str, list[str]]:
    return {"spreader": spreader, "gatherer": gatherer, "gatekeeper": gatekeeper}


# Given out of order on purpose.
SETS = {
    30: role_sets(["a", "b", "d"], ["e", "f"], ["x"]),
    10: role_sets(["a", "b", "c"], ["d"], []),
    50: role_sets([], [], []),
    20: role_sets(["a", "b", "d"], ["e"], []),
    40: role_sets([], [], []),
}


def test_stability_by_hand():
    table = stability(SETS)
    assert table.columns.tolist() == [
        "step",
        "spreader_jaccard",
        "gatherer_jaccard",
        "gatekeeper_jaccard",
        "role_stability",
        "reconfiguration",
    ]
    assert table["step"].tolist() == [10, 20, 30, 40, 50]
    nan = float("nan")
    expected = {
        # step: spreader, gatherer, gatekeeper, role_stability, reconfiguration
        10: (nan, nan, nan, nan, False),  # first step: no previous one
        # {a,b}/{a,b,c,d}; {}/{d,e}; both empty -> skipped: mean(0.5, 0) = 0.25 < 0.5
        20: (0.5, 0.0, nan, 0.25, True),
        # {a,b,d}/{a,b,d}; {e}/{e,f}; {}/{x}: mean(1, 0.5, 0) = 0.5, not below 0.5
        30: (1.0, 0.5, 0.0, 0.5, False),
        # everything emptied: all three defined and 0
        40: (0.0, 0.0, 0.0, 0.0, True),
        # empty at both steps for every role: nothing defined, no event
        50: (nan, nan, nan, nan, False),
    }
    for row in table.itertuples(index=False):
        want = expected[row.step]
        got = (
            row.spreader_jaccard,
            row.gatherer_jaccard,
            row.gatekeeper_jaccard,
            row.role_stability,
        )
        for g, w in zip(got, want[:4], strict=True):
            if math.isnan(w):
                assert math.isnan(g), row
            else:
                assert g == pytest.approx(w, abs=1e-12), row
        assert bool(row.reconfiguration) is want[4], row
    assert table["reconfiguration"].dtype == bool


def test_stability_threshold_parameter():
    low = stability(SETS, threshold=0.2).set_index("step")["reconfiguration"]
    assert low.to_dict() == {10: False, 20: False, 30: False, 40: True, 50: False}
    high = stability(SETS, threshold=0.6).set_index("step")["reconfiguration"]
    assert high.to_dict() == {10: False, 20: True, 30: True, 40: True, 50: False}
    default = stability(SETS).set_index("step")["reconfiguration"]
    assert default.to_dict() == {10: False, 20: True, 30: False, 40: True, 50: False}


def test_stability_single_step_and_from_top_sets():
    single = stability({7: role_sets(["a"], [], [])})
    assert single["step"].tolist() == [7]
    assert math.isnan(single["role_stability"].iloc[0])
    assert not single["reconfiguration"].iloc[0]

    table = stability(top_sets(metrics_frame(ROLE_ROWS), k=3))
    assert table["step"].tolist() == [10, 20]
    second = table.iloc[1]
    # spreader {a,b,c} -> {x}: 0; gatherer {d,b} -> {}: 0; gatekeeper {b,e} -> {y,z}: 0
    assert second["spreader_jaccard"] == 0.0
    assert second["gatherer_jaccard"] == 0.0
    assert second["gatekeeper_jaccard"] == 0.0
    assert second["role_stability"] == 0.0
    assert bool(second["reconfiguration"]) is True


# ---------------------------------------------------------------------------------------------
# phases
# ---------------------------------------------------------------------------------------------


def three_phase_trajectory() -> pd.DataFrame:
    """30 checkpoints, steps 0, 100, ..., 2900; |V| constant.

    * 0-9: |E| 100, 102, ..., 118 (grows), metric flat at -2;
    * 10-19: |E| 60, 59.5, ..., 55.5 (shrinks), metric flat at -2;
    * 20-29: |E| 30, 29.5, ..., 25.5 (shrinks), metric -1.0, -0.9, ..., -0.1 (rises).

    Largest |E| 118 -> grow threshold 0.05 * 118 = 5.9; metric range -0.1 - (-2) = 1.9 ->
    improve threshold 0.19. Slope × span: segment 1 |E| 2 * 9 = 18 > 5.9 (exploration);
    segment 2 |E| -4.5, metric 0 (consolidation); segment 3 |E| -4.5, metric 0.1 * 9 = 0.9 > 0.19
    (refinement).
    """
    i = np.arange(10, dtype=float)
    edges = np.concatenate([100 + 2 * i, 60 - 0.5 * i, 30 - 0.5 * i])
    metric = np.concatenate([np.full(10, -2.0), np.full(10, -2.0), -1.0 + 0.1 * i])
    return pd.DataFrame(
        {"step": np.arange(30) * 100, "n_nodes": 50, "n_edges": edges, "metric": metric}
    )


def test_phase_constants():
    assert PHASES == ("exploration", "consolidation", "refinement")
    assert SIGNALS == ("n_nodes", "n_edges", "metric")
    assert (MIN_SIZE, GROW, IMPROVE) == (2, 0.05, 0.10)


def test_change_points_on_three_phase_trajectory():
    signals = three_phase_trajectory()[list(SIGNALS)].to_numpy(dtype=float)
    assert change_points(signals) == [10, 20]


def test_phases_three_phase_trajectory():
    result = phases(three_phase_trajectory())
    assert result.boundaries == [1000, 2000]
    assert result.labels == ["exploration", "consolidation", "refinement"]
    assert result.per_step.index.tolist() == list(range(0, 3000, 100))
    assert result.per_step.tolist() == (
        ["exploration"] * 10 + ["consolidation"] * 10 + ["refinement"] * 10
    )


def test_phases_unsorted_steps():
    frame = three_phase_trajectory()
    shuffled = frame.sample(frac=1.0, random_state=3)
    assert shuffled["step"].tolist() != frame["step"].tolist()
    result = phases(shuffled)
    assert result.boundaries == [1000, 2000]
    assert result.labels == ["exploration", "consolidation", "refinement"]
    assert result.per_step.index.tolist() == list(range(0, 3000, 100))
    assert result.per_step.loc[900] == "exploration"
    assert result.per_step.loc[1000] == "consolidation"
    assert result.per_step.loc[2000] == "refinement"


def test_phases_flat_trajectory_is_one_segment():
    frame = pd.DataFrame(
        {"step": [5, 10, 15, 20, 25, 30], "n_nodes": 8, "n_edges": 20.0, "metric": -1.5}
    )
    result = phases(frame)
    assert result.boundaries == []
    assert result.labels == ["consolidation"]
    assert result.per_step.to_dict() == dict.fromkeys([5, 10, 15, 20, 25, 30], "consolidation")


def test_change_points_too_few_checkpoints():
    # 3 < 2 * MIN_SIZE checkpoints: no change point however large the jump and small the penalty
    signals = np.array([[0.0, 0.0, 0.0], [1e6, 1e6, 1e6], [0.0, -1e6, 5.0]])
    assert change_points(signals, penalty=1e-9) == []
    frame = pd.DataFrame(
        {"step": [3, 1, 2], "n_nodes": [1, 100, 1], "n_edges": [1, 100, 1], "metric": 0.0}
    )
    result = phases(frame, penalty=1e-9)
    assert result.boundaries == []
    assert len(result.labels) == 1
    assert result.per_step.index.tolist() == [1, 2, 3]


def test_change_points_min_size_and_penalty_by_hand():
    # 0, 10, 10, 10 standardized: z = (-sqrt(3), 1/sqrt(3) x 3), total l2 cost 4. The best split
    # (after index 1) is forbidden by MIN_SIZE = 2; the split at 2 leaves costs (4/sqrt(3))^2 / 2
    # = 8/3 and 0, a gain of 4/3. A split is kept exactly when the penalty is below the gain.
    signals = np.array([[0.0], [10.0], [10.0], [10.0]])
    assert change_points(signals, penalty=1e-9) == [2]
    assert change_points(signals, penalty=1.3) == [2]
    assert change_points(signals, penalty=1.4) == []


def test_change_points_constant_columns():
    step = np.r_[np.zeros(6), np.ones(6)]
    with np.errstate(all="raise"):  # no 0/0 from a zero standard deviation
        assert change_points(np.zeros((12, 3))) == []
        assert change_points(np.full((12, 3), 7.0)) == []
        with_constant = np.column_stack([np.full(12, 42.0), step, np.full(12, -3.0)])
        assert change_points(with_constant) == [6]
    # a constant column contributes nothing: same as the step column alone
    assert change_points(step[:, None]) == [6]


def test_change_points_standardized_columns_scale_free():
    rng = np.random.default_rng(0)
    signals = np.cumsum(rng.normal(size=(40, 3)), axis=0)
    scaled = signals * np.array([1e-3, 1.0, 1e4]) + np.array([5.0, -7.0, 1e3])
    assert change_points(signals) == change_points(scaled)


def test_larger_penalty_no_more_change_points():
    rng = np.random.default_rng(1)
    signals = np.cumsum(rng.normal(size=(60, 3)), axis=0)
    penalties = [0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0, 1e4]
    counts = [len(change_points(signals, penalty)) for penalty in penalties]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[-1]
    assert counts[-1] == 0

    frame = three_phase_trajectory()
    small, large = phases(frame, penalty=1.0), phases(frame, penalty=1e4)
    assert len(large.boundaries) <= len(small.boundaries)
    assert large.boundaries == []
    assert len(large.labels) == 1


def test_phases_nan_metric_treated_as_zero():
    frame = pd.DataFrame(
        {"step": [0, 1, 2, 3], "n_nodes": 4, "n_edges": 10.0, "metric": [-1.0, -1.0, -1.0, np.nan]}
    )
    # with 0 in place of NaN: metric -1, -1, -1, 0, range 1, slope 0.3 -> change 0.9 > 0.1
    result = phases(frame, penalty=1e6)
    assert result.labels == ["refinement"]
    zero = phases(frame.fillna({"metric": 0.0}), penalty=1e6)
    assert zero.labels == result.labels
    assert zero.boundaries == result.boundaries


def test_phases_nan_metric_same_segmentation_as_zero():
    frame = three_phase_trajectory()
    frame.loc[[3, 12, 25], "metric"] = np.nan
    filled = frame.fillna({"metric": 0.0})
    got, want = phases(frame), phases(filled)
    assert got.boundaries == want.boundaries
    assert got.labels == want.labels
    assert got.per_step.tolist() == want.per_step.tolist()


def test_phases_per_step_and_boundaries_consistent():
    frame = three_phase_trajectory()
    frame["step"] = frame["step"] * 3 + 7  # irregular-looking but increasing steps
    result = phases(frame)
    assert result.boundaries == [3007, 6007]
    steps = result.per_step.index.tolist()
    assert steps == frame["step"].tolist()
    # boundaries are exactly the steps where the label sequence starts a new segment
    starts = [
        steps[i]
        for i in range(1, len(steps))
        if result.per_step.iloc[i] != result.per_step.iloc[i - 1]
    ]
    assert starts == result.boundaries
    assert steps[0] not in result.boundaries
    assert len(result.labels) == len(result.boundaries) + 1


@pytest.mark.parametrize(
    ("edges", "metric", "edge_scale", "metric_scale", "expected"),
    [
        # |E| +10 over the segment, threshold 0.05 * 100 = 5: exploration
        ([0, 5, 10], [0, 0, 0], 100.0, 1.0, "exploration"),
        # |E| +4.9 < 5 does not count as growth
        ([0, 4.9], [0, 0], 100.0, 1.0, "consolidation"),
        # |E| +5.1 > 5 does
        ([0, 5.1], [0, 0], 100.0, 1.0, "exploration"),
        # growth wins over improvement
        ([0, 10], [0, 1], 100.0, 1.0, "exploration"),
        # no growth, metric +0.5 > 0.1 * 1: refinement (graph pruning)
        ([10, 5, 0], [0, 0.25, 0.5], 100.0, 1.0, "refinement"),
        # no growth, metric +0.09 < 0.1: consolidation
        ([10, 10], [0, 0.09], 100.0, 1.0, "consolidation"),
        # metric falling (higher is better): not an improvement
        ([10, 10], [0, -0.5], 100.0, 1.0, "consolidation"),
        # |E| shrinking with flat metric: consolidation
        ([10, 0], [1, 1], 100.0, 1.0, "consolidation"),
        # zero scales never label growth or improvement
        ([0, 10], [0, 1], 0.0, 0.0, "consolidation"),
        # a single checkpoint has no change
        ([5], [1], 100.0, 1.0, "consolidation"),
    ],
)
def test_label_segment(edges, metric, edge_scale, metric_scale, expected):
    got = label_segment(
        np.array(edges, dtype=float), np.array(metric, dtype=float), edge_scale, metric_scale
    )
    assert got == expected


def test_label_segment_uses_slope_times_span_not_endpoints():
    # 0, 10, 10, 10, 10: endpoints differ by 10, but the least-squares slope is 2 -> change 8.
    # Threshold 0.05 * 180 = 9: 10 > 9 would say exploration, 8 < 9 does not.
    edges = np.array([0.0, 10.0, 10.0, 10.0, 10.0])
    flat = np.zeros(5)
    assert label_segment(edges, flat, 180.0, 1.0) == "consolidation"
    assert label_segment(edges, flat, 150.0, 1.0) == "exploration"  # threshold 7.5 < 8
    # same for the metric: change 8 vs threshold 0.1 * 90 = 9 and 0.1 * 70 = 7
    assert label_segment(np.zeros(5), edges, 100.0, 90.0) == "consolidation"
    assert label_segment(np.zeros(5), edges, 100.0, 70.0) == "refinement"
    # a rise then a fall back: endpoints equal, slope 0
    assert label_segment(np.array([0.0, 50.0, 0.0]), np.zeros(3), 10.0, 1.0) == "consolidation"


def test_phases_edge_scale_is_largest_edge_count():
    # One segment (huge penalty). |E| 100 -> 104: +4 > 0.05 * 100 = 5? no -> not exploration.
    # If the scale were the |E| range (4) it would be. The metric is flat: consolidation.
    frame = pd.DataFrame(
        {"step": range(5), "n_nodes": 3, "n_edges": [100.0, 101, 102, 103, 104], "metric": 0.0}
    )
    assert phases(frame, penalty=1e6).labels == ["consolidation"]
    # 100 -> 108: +8 > 0.05 * 108 = 5.4: exploration
    frame["n_edges"] = [100.0, 102, 104, 106, 108]
    assert phases(frame, penalty=1e6).labels == ["exploration"]


# ---------------------------------------------------------------------------------------------
# no two consecutive segments with one label
# ---------------------------------------------------------------------------------------------


def raw_labels(frame: pd.DataFrame) -> tuple[list[int], list[str]]:
    """The change points and per-segment labels before any merge (each segment labelled alone)."""
    signals = frame.sort_values("step")[list(SIGNALS)].to_numpy(dtype=float)
    starts = change_points(signals)
    edges, metric = signals[:, 1], signals[:, 2]
    bounds = [0, *starts, len(signals)]
    labels = [
        label_segment(edges[lo:hi], metric[lo:hi], edges.max(), metric.max() - metric.min())
        for lo, hi in pairwise(bounds)
    ]
    return starts, labels


def test_a_node_jump_alone_gives_one_consolidation_not_two():
    # |V| jumps 5 -> 20 at checkpoint 6 while |E| and the metric hold: PELT splits there, and
    # each half alone is consolidation. Merged: one consolidation segment, no boundary.
    frame = pd.DataFrame(
        {"step": np.arange(12) * 10, "n_nodes": [5] * 6 + [20] * 6, "n_edges": 30.0, "metric": -1}
    )
    assert raw_labels(frame) == ([6], ["consolidation", "consolidation"])
    result = phases(frame)
    assert result.boundaries == []
    assert result.labels == ["consolidation"]
    assert set(result.per_step) == {"consolidation"}


def test_a_level_jump_of_edges_is_relabelled_over_the_merged_span():
    # |E| flat at 10, then flat at 40: each half alone holds (consolidation), the merged span
    # rises by far more than 5 % of 40 (the least-squares change over 12 checkpoints is ~33).
    frame = pd.DataFrame(
        {"step": np.arange(12) * 10, "n_nodes": 8, "n_edges": [10.0] * 6 + [40.0] * 6, "metric": 0}
    )
    assert raw_labels(frame) == ([6], ["consolidation", "consolidation"])
    result = phases(frame)
    assert result.boundaries == [] and result.labels == ["exploration"]


def test_merge_keeps_distinct_neighbours_and_drops_only_the_shared_boundary():
    # flat |E| 10, flat 40, then growing from 40 by 8 a checkpoint: PELT splits at 6 and 14,
    # labels consolidation, exploration, exploration. The last two merge (into exploration);
    # the boundary at 6, between different labels, stays.
    edges = np.r_[np.full(6, 10.0), np.full(6, 40.0), 40 + 8 * np.arange(6.0)]
    frame = pd.DataFrame({"step": np.arange(18) * 10, "n_nodes": 8, "n_edges": edges, "metric": 0})
    starts, labels = raw_labels(frame)
    assert (starts, labels) == ([6, 14], ["consolidation", "exploration", "exploration"])
    result = phases(frame)
    assert result.boundaries == [60]
    assert result.labels == ["consolidation", "exploration"]


def test_merge_equal_repeats_until_neighbours_differ():
    # round 1: [0,2) and [2,4) are both c -> merged [0,4) is e, equal to [4,6) -> round 2: one e
    table = {(0, 2): "c", (2, 4): "c", (4, 6): "e", (0, 4): "e", (0, 6): "e"}
    calls = []

    def label(lo, hi):
        calls.append((lo, hi))
        return table[(lo, hi)]

    assert merge_equal([0, 2, 4, 6], label) == ([0, 6], ["e"])
    assert calls == [(0, 2), (2, 4), (4, 6), (0, 4), (4, 6), (0, 6)]
    # a merged segment relabelled apart from its neighbours stops there
    table = {(0, 2): "c", (2, 4): "c", (4, 6): "e", (0, 4): "r"}
    assert merge_equal([0, 2, 4, 6], lambda lo, hi: table[(lo, hi)]) == ([0, 4, 6], ["r", "e"])
    # already distinct, and a single segment: unchanged
    assert merge_equal([0, 3, 5], lambda lo, hi: "ab"[lo > 0]) == ([0, 3, 5], ["a", "b"])
    assert merge_equal([0, 5], lambda lo, hi: "x") == ([0, 5], ["x"])


def test_random_trajectories_never_give_equal_neighbours():
    rng = np.random.default_rng(5)
    for _ in range(30):
        n = int(rng.integers(4, 40))
        frame = pd.DataFrame(
            {
                "step": np.arange(n),
                "n_nodes": rng.integers(1, 6, n).cumsum(),
                "n_edges": rng.normal(size=n).cumsum() * 5 + 50,
                "metric": rng.normal(size=n).cumsum(),
            }
        )
        result = phases(frame, penalty=1.0)
        assert all(a != b for a, b in pairwise(result.labels))
        assert len(result.labels) == len(result.boundaries) + 1
        assert segment_table(result.per_step)["label"].tolist() == result.labels


def test_empty_trajectory():
    result = phases(pd.DataFrame(columns=["step", *SIGNALS]))
    assert result.boundaries == [] and result.labels == [] and result.per_step.empty


def test_segment_table_from_series_and_stored_frame():
    per_step = pd.Series(["a", "a", "b", "a"], index=[30, 10, 40, 20])  # out of order
    table = segment_table(per_step)
    assert table.columns.tolist() == SEGMENT_COLUMNS
    assert table.values.tolist() == [["a", 10, 30, 3], ["b", 40, 40, 1]]
    stored = pd.DataFrame({"step": [1, 2, 3, 4, 5], "phase": ["x", None, "x", "y", "y"]})
    assert segment_table(stored).values.tolist() == [["x", 1, 3, 2], ["y", 4, 5, 2]]
    assert segment_table(pd.Series([], dtype=object)).empty


def test_phase_definitions_state_each_label_and_threshold():
    assert list(PHASE_DEFINITIONS) == ["exploration", "consolidation", "refinement"]
    assert set(PHASE_DEFINITIONS) == set(PHASES)
    for label, text in PHASE_DEFINITIONS.items():
        assert text.count(".") == 1 and text.endswith("."), label  # one sentence
        assert f"{GROW:.0%}" in text, label
    assert f"{IMPROVE:.0%}" in PHASE_DEFINITIONS["refinement"]
    assert f"{IMPROVE:.0%}" in PHASE_DEFINITIONS["consolidation"]
    assert "more than 5%" in PHASE_DEFINITIONS["exploration"]
    assert "more than 10%" in PHASE_DEFINITIONS["refinement"]
