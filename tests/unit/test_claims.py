"""The paper's claims checked on small constructed inputs: each rule, its thresholds and its edge
cases (empty roles, a single phase, ties, missing settings), against values worked by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from circuitatlas.analytics.claims import (
    FAILS,
    HOLDS,
    LONG_TAILED_SHARE,
    MIN_TAIL,
    TABLE_COLUMNS,
    TAIL_P,
    UNTESTABLE,
    VERDICTS,
    Claim,
    check_phases,
    check_reconfiguration,
    check_run,
    check_spreaders,
    check_weight_tail,
    claims_markdown,
    claims_table,
    expected_spreaders,
    largest_gain,
    role_agreement,
    role_agreements,
    role_sets,
    tail_fit,
    tail_index,
)
from circuitatlas.analytics.claims_checks import (
    check_ablations,
    check_second_task,
    check_thresholds,
    circuit_overlap,
    weight_correlations,
)
from circuitatlas.analytics.roles import top_sets


def sets(spreader=(), gatherer=(), gatekeeper=()):
    return {"spreader": list(spreader), "gatherer": list(gatherer), "gatekeeper": list(gatekeeper)}


# --- the record and the table ------------------------------------------------------------------


def test_a_claim_refuses_an_unknown_verdict():
    assert VERDICTS == ("holds", "does not hold", "not testable here")
    with pytest.raises(ValueError, match="verdict 'maybe'"):
        Claim("c", "p", "r", "maybe", "rule")


def test_table_and_markdown():
    claims = [
        Claim("(x) one", "paper says a | b", "1.00 of 3\nsteps", HOLDS, "r1", {"v": 1.0}),
        Claim("(y) two", "p", "n/a", UNTESTABLE, "r2"),
    ]
    table = claims_table(claims)
    assert table.columns.tolist() == TABLE_COLUMNS == ["claim", "paper", "this_run", "verdict"]
    assert table["verdict"].tolist() == [HOLDS, UNTESTABLE]
    assert claims_table(claims, rules=True)["rule"].tolist() == ["r1", "r2"]
    lines = claims_markdown(claims).splitlines()
    assert lines[0] == "| claim | what the paper reports | what this run shows | verdict |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2] == "| (x) one | paper says a \\| b | 1.00 of 3 steps | holds |"
    assert len(lines) == 4
    assert claims_markdown(claims, rules=True).splitlines()[3].endswith("| r2 |")


# --- roles read back from stored components ------------------------------------------------------


def components_frame():
    rows = [
        # step, name, role, out_strength, in_strength, betweenness
        (20, "b", "spreader", 2.0, 0.0, 0.0),
        (20, "a", "spreader+gatherer", 2.0, 3.0, 0.0),  # tie with b on out-strength: a first
        (20, "c", None, 9.0, 0.0, 0.0),  # a larger metric but no role: left out
        (10, "a", "gatherer", 0.0, 1.0, 0.0),
        (10, "d", "gatherer+gatekeeper", 0.0, 4.0, 1.0),
        (30, "a", None, 0.0, 0.0, 0.0),
    ]
    return pd.DataFrame(
        rows, columns=["step", "name", "role", "out_strength", "in_strength", "betweenness"]
    )


def test_role_sets_from_the_role_column_ordered_by_metric():
    got = role_sets(components_frame())
    assert list(got) == [10, 20, 30]
    assert got[10] == sets([], ["d", "a"], ["d"])
    assert got[20] == sets(["a", "b"], ["a"], [])
    assert got[30] == sets()  # a step without roles keeps empty sets


def test_role_sets_equal_the_analysis_top_sets():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "step": np.repeat([0, 5, 9], 6),
            "name": list("abcdef") * 3,
            "out_strength": rng.integers(0, 4, 18).astype(float),
            "in_strength": rng.integers(0, 4, 18).astype(float),
            "betweenness": rng.integers(0, 3, 18).astype(float),
        }
    )
    from circuitatlas.analytics.roles import role_labels

    top = top_sets(frame, 2)
    frame["role"] = role_labels(frame, top)
    assert role_sets(frame) == top


# --- (a) phases ----------------------------------------------------------------------------------


def phase_frame(labels):
    return pd.DataFrame({"step": np.arange(len(labels)) * 10, "phase": labels})


@pytest.mark.parametrize(
    ("labels", "verdict", "exact"),
    [
        (["exploration"] * 2 + ["consolidation"] * 2 + ["refinement"] * 2, HOLDS, True),
        # other segments between: still in order
        (["consolidation"] * 2 + ["exploration"] * 2 + ["consolidation"] * 2 + ["refinement"] * 2,
         HOLDS, False),
        (["consolidation"] * 2 + ["exploration"] * 2 + ["consolidation"] * 2, FAILS, False),
        (["refinement"] * 2 + ["consolidation"] * 2 + ["exploration"] * 2, FAILS, False),
        (["exploration"] * 2 + ["refinement"] * 2 + ["consolidation"] * 2, FAILS, False),
        (["consolidation"] * 8, FAILS, False),  # a single phase
        (["exploration", "consolidation", "refinement", "refinement", "refinement"], UNTESTABLE,
         True),  # 5 < 3 x MIN_SIZE checkpoints
        ([], UNTESTABLE, False),
    ],
)  # fmt: skip
def test_check_phases(labels, verdict, exact):
    claim = check_phases(phase_frame(labels))
    assert claim.verdict == verdict
    assert claim.numbers["exact"] is exact
    assert claim.numbers["n_checkpoints"] == len(labels)


def test_check_phases_segments_and_nulls():
    frame = phase_frame(["exploration", "exploration", None, "consolidation", "consolidation"])
    frame = pd.concat([frame, pd.DataFrame({"step": [50, 60], "phase": ["refinement"] * 2})])
    claim = check_phases(frame.sample(frac=1.0, random_state=0))
    assert claim.numbers["labels"] == ["exploration", "consolidation", "refinement"]
    assert claim.numbers["first_steps"] == [0, 30, 50]
    assert claim.numbers["last_steps"] == [10, 40, 60]
    assert claim.numbers["n_checkpoints"] == 6 and claim.verdict == HOLDS
    assert "exploration [0–10] → consolidation [30–40] → refinement [50–60]" in claim.this_run


# --- (b) spreaders -------------------------------------------------------------------------------


def test_expected_spreaders():
    assert expected_spreaders(2) == ["input", "m0"]
    assert expected_spreaders(6) == ["input", "m0", "m1"]
    assert expected_spreaders(7) == ["input", "m0", "m1", "m2"]
    assert expected_spreaders(1) == ["input", "m0"]
    assert expected_spreaders(6, early_layers=1) == ["input", "m0"]
    assert expected_spreaders(2, early_layers=5) == ["input", "m0", "m1"]


def spread(*per_step):
    return {10 * i: sets(s) for i, s in enumerate(per_step)}


def test_spreaders_hold_when_expected_first_and_stable():
    roles = spread(["a0.h1", "input"], ["input", "m0"], ["input", "m0", "a0.h1"],
                   ["input", "m0"], ["input", "m0"])  # fmt: skip
    claim = check_spreaders(roles, n_layers=2)
    n = claim.numbers
    assert n["top_share"] == pytest.approx(4 / 5)  # the first step's top is a head
    assert n["member_share"] == pytest.approx((1 / 2 + 1 + 2 / 3 + 1 + 1) / 5)
    # last half: pairs ending at steps 2, 3, 4: J = 2/3, 2/3, 1
    assert n["late_jaccard"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert n["last_spreaders"] == ["input", "m0"] and n["expected"] == ["input", "m0"]
    assert claim.verdict == HOLDS


@pytest.mark.parametrize(
    "roles",
    [
        # the top spreader is a head at 2 of 5 steps: top share 0.6 < 0.8
        spread(["a0.h1"], ["a0.h1", "input"], ["input"], ["input"], ["input"]),
        # expected first everywhere, but mostly heads around them: member share 1/3 < 0.5
        spread(*[["input", "a0.h1", "a0.h2"]] * 4),
        # unstable in the last half: J 0 between the last steps
        spread(["input"], ["input"], ["input"], ["m0"], ["input"], ["m0"]),
    ],
)
def test_spreaders_do_not_hold(roles):
    assert check_spreaders(roles, n_layers=2).verdict == FAILS


def test_spreaders_not_testable_without_spreaders():
    assert check_spreaders(spread([], [], []), n_layers=2).verdict == UNTESTABLE
    assert check_spreaders(spread(["input"]), n_layers=2).verdict == UNTESTABLE  # one step
    assert check_spreaders({}, n_layers=2).verdict == UNTESTABLE
    # 5 steps, the last half's pairs end at indices 2-4: {input} -> {} counts (J 0) and fails
    claim = check_spreaders(spread(["input"], ["input"], [], [], []), n_layers=2)
    assert claim.numbers["late_jaccard"] == 0.0 and claim.verdict == FAILS
    # 6 steps, spreaders only at indices 0, 1: the pairs ending at 3-5 are all empty: undefined
    claim = check_spreaders(spread(["input"], ["input"], [], [], [], []), n_layers=2)
    assert math.isnan(claim.numbers["late_jaccard"]) and claim.verdict == UNTESTABLE


def test_spreaders_early_mlp_counts_only_when_early():
    roles = spread(*[["m1", "input"]] * 4)
    assert check_spreaders(roles, n_layers=6).verdict == HOLDS  # m1 is early in 6 layers
    assert check_spreaders(roles, n_layers=2).verdict == FAILS  # not in 2


# --- (c) reconfiguration -------------------------------------------------------------------------


def metric_frame(values):
    return pd.DataFrame({"step": np.arange(len(values)) * 10, "metric": values})


def test_largest_gain():
    assert largest_gain(metric_frame([0.0, 0.1, 0.9, 1.0])) == (20, pytest.approx(0.8))
    assert largest_gain(metric_frame([0.0, 0.5, 0.5, 1.0])) == (10, 0.5)  # tie: the earliest
    assert largest_gain(metric_frame([0.0, np.nan, 0.7])) == (20, 0.7)  # NaN left out
    assert largest_gain(metric_frame([1.0, 0.5, 0.2])) is None
    assert largest_gain(metric_frame([1.0])) is None


def roles_over(gatherers, gatekeepers):
    pairs = enumerate(zip(gatherers, gatekeepers, strict=True))
    return {10 * i: sets(["input"], g, k) for i, (g, k) in pairs}


METRIC = metric_frame([0.0, 0.0, 0.1, 1.0, 1.1, 1.1])  # largest gain at step 30 (index 3)


def test_reconfiguration_holds_when_both_change_most_at_the_gain():
    g = [["a"], ["a"], ["a"], ["b"], ["b"], ["b"]]  # changes only at index 3
    k = [["x"], ["x"], ["x", "y"], ["y"], ["y"], ["y"]]  # 0.5 at 2 and at 3 (both near)
    claim = check_reconfiguration(roles_over(g, k), METRIC)
    assert claim.numbers["gain_step"] == 30
    assert claim.numbers["gatherer"]["at_juncture"] and claim.numbers["gatekeeper"]["at_juncture"]
    assert claim.numbers["gatherer"]["peak_step"] == 30
    assert claim.numbers["gatekeeper"]["near"] == pytest.approx(0.5)
    assert claim.numbers["gatekeeper"]["far"] == 0.0
    assert claim.verdict == HOLDS


def test_reconfiguration_fails_when_a_role_changes_more_elsewhere():
    g = [["a"], ["c"], ["c"], ["c", "b"], ["c", "b"], ["c", "b"]]  # 1.0 at 1 (far), 0.5 at 3
    k = [["x"], ["x"], ["x"], ["y"], ["y"], ["y"]]
    claim = check_reconfiguration(roles_over(g, k), METRIC, window=1)
    assert not claim.numbers["gatherer"]["at_juncture"]
    assert claim.numbers["gatherer"]["peak_step"] == 10
    assert claim.verdict == FAILS
    # a window of 2 reaches index 1
    assert check_reconfiguration(roles_over(g, k), METRIC, window=2).verdict == HOLDS


def test_reconfiguration_tie_between_near_and_far_is_not_at_the_juncture():
    g = [["a"], ["b"], ["b"], ["c"], ["c"], ["c"]]  # 1.0 at 1 (far) and at 3 (near)
    k = [["x"], ["x"], ["x"], ["y"], ["y"], ["y"]]
    claim = check_reconfiguration(roles_over(g, k), METRIC)
    assert claim.numbers["gatherer"]["near"] == claim.numbers["gatherer"]["far"] == 1.0
    assert claim.verdict == FAILS


def test_reconfiguration_with_gatekeepers_empty_everywhere():
    empty = [[]] * 6
    at_gain = [["a"], ["a"], ["a"], ["b"], ["b"], ["b"]]
    claim = check_reconfiguration(roles_over(at_gain, empty), METRIC)
    assert claim.numbers["gatekeeper"]["testable"] is False
    assert "gatekeepers: no change defined (empty at every step)" in claim.this_run
    assert claim.verdict == UNTESTABLE  # half of the claim cannot be tested, the other holds
    elsewhere = [["a"], ["b"], ["b"], ["b"], ["b"], ["b"]]
    assert check_reconfiguration(roles_over(elsewhere, empty), METRIC).verdict == FAILS
    assert check_reconfiguration(roles_over(empty, empty), METRIC).verdict == UNTESTABLE


def test_reconfiguration_never_changing_role_fails_and_flat_metric_untestable():
    same = [["a"]] * 6
    changing = [["a"], ["a"], ["a"], ["b"], ["b"], ["b"]]
    assert check_reconfiguration(roles_over(same, changing), METRIC).verdict == FAILS
    flat = metric_frame([1.0] * 6)
    claim = check_reconfiguration(roles_over(changing, changing), flat)
    assert claim.verdict == UNTESTABLE and claim.numbers["gain_step"] is None
    assert "no rise of the metric" in claim.this_run


def test_reconfiguration_uses_only_common_steps():
    g = [["a"], ["a"], ["a"], ["b"], ["b"], ["b"]]
    roles = roles_over(g, g)
    metric = pd.concat([METRIC, pd.DataFrame({"step": [25], "metric": [5.0]})])  # not in roles
    assert check_reconfiguration(roles, metric).numbers["gain_step"] == 30


# --- (d) weight tail -----------------------------------------------------------------------------


def test_tail_fit_by_hand():
    x = [math.e**5, math.e**4, math.e**3, math.e**2, math.e, 1.0]
    fit = tail_fit(x[::-1])  # any order
    assert (fit.k, fit.threshold) == (MIN_TAIL, 1.0)
    assert fit.alpha == pytest.approx(1 / 3)  # 1 / mean(5, 4, 3, 2, 1)
    excess = np.array(x[:5]) - 1.0
    assert fit.rate == pytest.approx(5 / excess.sum())
    logs = np.arange(5, 0, -1.0)
    diff = (math.log(1 / 3) - (4 / 3) * logs) - (math.log(fit.rate) - fit.rate * excess)
    assert fit.log_ratio == pytest.approx(diff.sum())
    z = diff.sum() / (diff.std() * math.sqrt(5))
    assert fit.p == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    assert tail_index(x) == pytest.approx(1 / 3)


def test_tail_fit_k_from_fraction_and_scale_free_alpha():
    x = np.arange(1.0, 101.0)
    assert tail_fit(x).k == 20 and tail_fit(x).threshold == 80.0  # ⌈0.2 x 100⌉
    assert tail_fit(x, fraction=0.5).k == 50
    assert tail_fit(x[:8]).k == MIN_TAIL  # ⌈1.6⌉ = 2 < MIN_TAIL
    assert tail_index(x * 37.0) == pytest.approx(tail_index(x))


@pytest.mark.parametrize(
    "values",
    [[1.0] * 5, [3.0, 2.0, 1.0], [0.0] * 10 + [1.0, 2.0], [2.0] * 12, [5.0, np.nan] * 3],
)
def test_tail_fit_undefined(values):
    # too few, a threshold of 0, a tail equal to its threshold, too few finite values
    assert tail_fit(values) is None
    assert math.isnan(tail_index(values))


def test_power_law_tail_is_long_and_exponential_is_not():
    rng = np.random.default_rng(0)
    pareto = tail_fit(rng.pareto(1.5, 2000) + 1.0)
    assert pareto.alpha == pytest.approx(1.5, rel=0.15)
    assert pareto.long_tailed and pareto.p < TAIL_P
    exponential = tail_fit(rng.exponential(1.0, 2000) + 0.3)
    assert exponential.log_ratio < 0 and not exponential.long_tailed


def weights_frame(samples):
    return pd.concat(
        [pd.DataFrame({"step": step, "weight": w}) for step, w in samples.items()],
        ignore_index=True,
    )


def test_check_weight_tail():
    rng = np.random.default_rng(1)
    heavy = {s: rng.pareto(1.2, 400) + 1.0 for s in (0, 10, 20)}
    light = {s: rng.exponential(1.0, 400) + 0.3 for s in (30, 40)}
    claim = check_weight_tail(weights_frame({**heavy, 50: [1.0, 2.0]}))
    assert claim.numbers["fitted"] == 3 and claim.numbers["steps"] == 4  # step 50: 2 weights
    assert claim.numbers["long_tailed_share"] == 1.0 and claim.verdict == HOLDS
    mixed = check_weight_tail(weights_frame({**light, 0: heavy[0]}))
    assert mixed.numbers["long_tailed_share"] == pytest.approx(1 / 3)
    assert LONG_TAILED_SHARE > 1 / 3
    assert mixed.verdict == FAILS
    assert set(mixed.numbers["alpha"]) == {0, 30, 40}
    few = check_weight_tail(weights_frame({0: [1.0, 2.0, 3.0]}))
    assert few.verdict == UNTESTABLE and few.numbers["fitted"] == 0
    assert check_weight_tail(pd.DataFrame(columns=["step", "weight"])).verdict == UNTESTABLE


def test_check_run_gives_a_to_d():
    labels = ["exploration"] * 2 + ["consolidation"] * 2 + ["refinement"] * 2
    checkpoints = phase_frame(labels).assign(metric=[0, 0, 0.1, 1.0, 1.1, 1.1])
    roles = roles_over([["a"], ["a"], ["a"], ["b"], ["b"], ["b"]], [[]] * 6)
    weights = weights_frame({0: np.arange(1.0, 20.0)})
    claims = check_run(checkpoints, roles, weights, n_layers=2)
    assert [c.claim[:3] for c in claims] == ["(a)", "(b)", "(c)", "(d)"]
    assert claims[0].verdict == HOLDS and claims[2].verdict == UNTESTABLE


# --- role agreement ------------------------------------------------------------------------------


def test_role_agreement_by_hand():
    a = {0: sets(["x", "y"], [], ["k"]), 5: sets(["x"], ["g"], []), 9: sets(["z"])}
    b = {0: sets(["x"], [], ["j"]), 5: sets(["x"], ["g", "h"], []), 7: sets(["q"])}
    # common steps 0, 5: spreader 1/2, 1; gatherer (both empty at 0, skipped) 1/2; gatekeeper 0
    agree = role_agreements(a, b)
    assert agree["spreader"] == pytest.approx(0.75)
    assert agree["gatherer"] == pytest.approx(0.5)
    assert agree["gatekeeper"] == 0.0  # step 5 both empty: skipped
    assert agree["all"] == pytest.approx((0.5 + 1 + 0.5 + 0) / 4)
    assert role_agreement(a, a) == 1.0
    assert math.isnan(role_agreement({0: sets()}, {0: sets()}))
    assert math.isnan(role_agreement(a, {1: sets(["x"])}))  # no common step


# --- (e) thresholds ------------------------------------------------------------------------------


def sweep_frame(rows):
    columns = ["tau", "reference", "boundaries", "phases", "boundary_shift", "role_agreement",
               "mean_edges"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


REF = (0.7, True, [60], ["consolidation", "exploration"], 0.0, 1.0, 10.0)


def test_thresholds_hold_within_tolerance():
    claim = check_thresholds(
        sweep_frame(
            [
                (0.3, False, [50], ["consolidation", "exploration"], 1.0, 0.5, 3.0),
                REF,
                (0.9, False, [60], ["consolidation", "exploration"], 0.0, math.nan, 30.0),
            ]
        )
    )
    per = claim.numbers["per_tau"]
    assert list(per) == [0.3, 0.9] and claim.numbers["reference_tau"] == 0.7
    assert per[0.3]["robust"] and per[0.3]["same_labels"]  # at the limits: shift 1, J 0.5
    assert per[0.9]["robust"] and per[0.9]["same_labels"]  # no roles at either: on the phases
    assert claim.verdict == HOLDS
    assert "τ 0.3: boundaries moved 1.0 ckpt, roles J 0.50, 2 phases, mean |E| 3.0" in (
        claim.this_run
    )
    assert "(other labels)" not in claim.this_run


@pytest.mark.parametrize(
    "row",
    [
        (0.5, False, [90], ["consolidation", "exploration"], 1.5, 0.9, 9.0),  # moved too far
        (0.5, False, [60], ["consolidation", "exploration"], 0.0, 0.49, 9.0),  # roles differ
        (0.5, False, [], ["consolidation"], math.nan, 0.9, 9.0),  # a phase vanished
        (0.5, False, [60], ["consolidation", "refinement"], 0.0, 0.9, 9.0),  # relabelled
    ],
)
def test_thresholds_do_not_hold(row):
    claim = check_thresholds(sweep_frame([REF, row]))
    assert claim.verdict == FAILS and not claim.numbers["per_tau"][0.5]["robust"]
    assert ("(other labels)" in claim.this_run) is (row[3] != REF[3])


def test_thresholds_not_testable_with_the_reference_alone():
    claim = check_thresholds(sweep_frame([REF]))
    assert claim.verdict == UNTESTABLE and "no other τ" in claim.this_run


# --- (f) ablations -------------------------------------------------------------------------------


def edge_frame(step_weights):
    rows = [
        (step, f"s{i}", f"t{i}", w)
        for step, weights in step_weights.items()
        for i, w in enumerate(weights)
    ]
    return pd.DataFrame(rows, columns=["step", "source", "target", "weight"])


def test_weight_correlations_on_common_edges():
    a = edge_frame({0: [1, 2, 3, 4], 5: [1, 2, 3, 4], 7: [1, 2], 8: [1, 1, 1]})
    b = edge_frame({0: [10, 20, 30, 40], 5: [4, 3, 2, 1], 7: [2, 1], 8: [1, 2, 3]})
    b = pd.concat([b, pd.DataFrame([(0, "s9", "t9", 0.0)], columns=b.columns)])  # not in a
    rho = weight_correlations(a, b)
    assert rho[0] == pytest.approx(1.0) and rho[5] == pytest.approx(-1.0)
    assert math.isnan(rho[7]) and math.isnan(rho[8])  # 2 common edges; a constant side
    # a tie ranks as a tie (Spearman on average ranks)
    tie = weight_correlations(edge_frame({0: [1, 1, 2, 3]}), edge_frame({0: [1, 2, 3, 4]}))
    assert tie[0] == pytest.approx(np.corrcoef([1.5, 1.5, 3, 4], [1, 2, 3, 4])[0, 1])


def test_check_ablations():
    zero = edge_frame({0: [1, 2, 3, 4, 5], 5: [5, 4, 3, 2, 1]})
    mean = edge_frame({0: [1, 2, 3, 5, 4], 5: [5, 4, 3, 2, 1]})  # ρ 0.9 and 1: median 0.95
    shuffled = edge_frame({0: [5, 4, 3, 2, 1], 5: [1, 2, 3, 4, 5]})  # ρ −1 at both
    roles = {"zero": spread(["input"], ["input"]), "mean": spread(["input"], ["m0", "input"])}
    claim = check_ablations({"zero": zero, "mean": mean}, roles)
    per = claim.numbers["per_ablation"]["mean"]
    assert per["median_rho"] == pytest.approx(0.95) and per["min_rho"] == pytest.approx(0.9)
    assert per["role_agreement"]["spreader"] == pytest.approx(0.75)
    assert claim.verdict == HOLDS
    low = check_ablations({"zero": zero, "mean": mean, "resample": shuffled}, None)
    assert low.numbers["per_ablation"]["resample"]["median_rho"] == pytest.approx(-1.0)
    assert low.verdict == FAILS
    other_roles = {**roles, "mean": spread(["a0.h0"], ["a0.h1"])}
    assert check_ablations({"zero": zero, "mean": mean}, other_roles).verdict == FAILS


def test_check_ablations_not_testable():
    zero = edge_frame({0: [1, 2, 3]})
    assert check_ablations({"zero": zero}).verdict == UNTESTABLE
    # no comparable step: too few common edges
    assert check_ablations({"zero": edge_frame({0: [1, 2]}), "mean": zero}).verdict == UNTESTABLE
    with pytest.raises(ValueError, match="reference ablation 'zero'"):
        check_ablations({"mean": zero})


# --- (g) a second task ---------------------------------------------------------------------------


def circuit_frame(step_edges):
    rows = [(step, s, t) for step, edges in step_edges.items() for s, t in edges]
    return pd.DataFrame(rows, columns=["step", "source", "target"])


def test_circuit_overlap_by_hand():
    a = circuit_frame({0: [("input", "a0.h1"), ("a0.h1", "logits")], 5: [("input", "logits")]})
    b = circuit_frame({0: [("input", "a0.h1"), ("m0", "logits")], 9: [("input", "logits")]})
    got = circuit_overlap(a, b)
    # step 0 only: edges 1 of 3; components {input, a0.h1, logits} vs {input, a0.h1, m0, logits}
    assert got == {"edges": pytest.approx(1 / 3), "components": pytest.approx(3 / 4), "steps": 1}


def test_check_second_task():
    induction = spread(["input", "m0"], ["input", "m0"])
    assert check_second_task({"induction": induction}).verdict == UNTESTABLE
    assert check_second_task({}).verdict == UNTESTABLE
    same = check_second_task({"induction": induction, "copy": induction})
    assert same.verdict == HOLDS and same.numbers["per_task"]["copy"]["role_agreement"]["all"] == 1
    other = check_second_task({"induction": induction, "copy": spread(["a1.h0"], ["a1.h0"])})
    assert other.verdict == FAILS and other.numbers["reference"] == "induction"
    # the reference may be named; circuits are reported, not judged
    circuits = {
        "induction": circuit_frame({0: [("input", "logits")]}),
        "copy": circuit_frame({0: [("m0", "logits")]}),
    }
    named = check_second_task(
        {"copy": induction, "induction": induction}, circuits, reference="induction"
    )
    assert named.verdict == HOLDS
    assert named.numbers["per_task"]["copy"]["circuits"]["edges"] == 0.0
    assert "circuits J edges 0.00, components 0.33" in named.this_run
    # no common step with a role: not comparable
    empty = check_second_task({"induction": spread([]), "copy": spread([])})
    assert empty.verdict == UNTESTABLE
