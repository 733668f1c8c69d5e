"""Pathfinding finds the induction circuit of the default toy run, when it forms.

The default run (seed 0) is swept as the demo sweeps it for circuits (resample ablation); paths
are the top-5 direct-effect ``input``→``logits`` paths, validated with mean ablation.
"""

import pytest
from toy_training import drop_window

from circuitatlas.demo import (
    CIRCUIT_ABLATION,
    FAITHFUL,
    VALIDATION_ABLATION,
    faithful_circuit,
    find_circuits,
)
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.queries.circuits import INDUCTION_THRESHOLD, induction_paths
from circuitatlas.queries.faithfulness import run_faithfulness
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_plan


@pytest.fixture(scope="module")
def found(default_toy_runs, tmp_path_factory):
    out, log = default_toy_runs(0)
    plan = plan_run(str(out), None, SweepSettings(ablation=CIRCUIT_ABLATION))
    path = tmp_path_factory.mktemp("fidelity") / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_plan(store, plan, progress=False)
        result, circuit, emerged = find_circuits(store, plan.run_id)
        components = store.components(plan.run_id)
        stored = store.circuits(plan.run_id)
        wider = faithful_circuit(store, plan.run_id, circuit.step)
    return log, result, circuit, emerged, components, stored, wider


@pytest.mark.slow
def test_a_top5_path_at_the_last_checkpoint_is_the_induction_path(found):
    _, result, _, _, components, _, _ = found
    last = result.steps[-1]
    top = result.paths[result.paths.step == last]
    assert len(top) == 5
    hits = induction_paths(top, components)
    assert len(hits) >= 1, top
    heads = components[(components.step == last) & (components.kind == "attn_head")]
    layer0 = heads[heads.layer == 0]
    best_prev = layer0.loc[layer0.prev_token_score.idxmax(), "name"]
    names = hits.iloc[0].path.split("→")
    i = names.index(best_prev)  # through the layer-0 head with the top previous-token score
    nxt = heads.set_index("name").loc[names[i + 1]]
    assert nxt.layer == 1 and nxt.induction_score >= INDUCTION_THRESHOLD


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="measured 0.48 (mean ablation): the top-5 paths leave out the layer-0 heads a0.h0 "
    "and a0.h3, one of which the induction heads need (either lifts it to 0.95)",
)
def test_the_final_top5_circuit_carries_the_task(found):
    _, _, circuit, _, _, stored, _ = found
    assert circuit.faithfulness is not None
    row = stored.set_index("step").loc[circuit.step]
    assert row.faithfulness == pytest.approx(circuit.faithfulness.value)
    assert list(row.components) == list(circuit.components)
    assert circuit.faithfulness.ablation == VALIDATION_ABLATION
    assert circuit.faithfulness.value >= FAITHFUL, circuit.faithfulness


@pytest.mark.slow
def test_on_seed_0_two_interchangeable_layer0_heads_off_the_top5_paths_carry_the_missing_part(
    found, default_toy_runs
):
    """Why the top-5 circuit falls short on seed 0, checked: two layer-0 heads outside it do one
    job that either does alone (measured: removing a0.h0 or a0.h3 from the whole model keeps
    0.97 / 0.95, removing both 0.58; adding either to the circuit gives 0.95-0.97). A single
    ablation barely moves what either head feeds, so no strong path goes through them."""
    _, _, circuit, _, components, _, _ = found
    out, _ = default_toy_runs(0)
    config = plan_run(str(out), None, SweepSettings(ablation=CIRCUIT_ABLATION)).config
    names = components[components.step == circuit.step].name.tolist()
    outside = [n for n in names if n.startswith("a0.") and n not in circuit.components]
    pairs = [(a, b) for i, a in enumerate(outside) for b in outside[i + 1 :]]
    whole = [[n for n in names if n != a] for a in outside]
    whole += [[n for n in names if n not in pair] for pair in pairs]
    grown = [[*circuit.components, a] for a in outside]
    scores = run_faithfulness(config, circuit.step, whole + grown, VALIDATION_ABLATION)
    values = [f.value for f in scores]
    without = dict(zip(outside, values[: len(outside)], strict=True))
    without_pair = dict(zip(pairs, values[len(outside) : -len(outside)], strict=True))
    with_one = dict(zip(outside, values[-len(outside) :], strict=True))
    interchangeable = [
        (a, b)
        for (a, b), both in without_pair.items()
        if min(without[a], without[b]) >= 0.9
        and both <= 0.7
        and min(with_one[a], with_one[b]) >= FAITHFUL
    ]
    assert interchangeable, (without, without_pair, with_one)


@pytest.mark.slow
def test_a_few_more_paths_give_a_faithful_circuit_that_holds_the_induction_path(found):
    _, result, circuit, _, components, _, wider = found
    assert wider is not None and wider.faithfulness is not None
    assert 5 < wider.settings.k <= 10
    assert wider.faithfulness.value >= FAITHFUL
    assert set(circuit.components) < set(wider.components)
    on_induction = induction_paths(result.paths[result.paths.step == circuit.step], components)
    assert set(on_induction.iloc[0].path.split("→")) <= set(wider.components)


@pytest.mark.slow
def test_the_induction_path_emerges_where_the_loss_on_the_repeat_drops(found):
    log, result, _, emerged, _, _, _ = found
    start, end = drop_window(log)
    steps = result.steps
    before = max((s for s in steps if s < start), default=steps[0])  # one checkpoint either side
    after = min((s for s in steps if s > end), default=steps[-1])
    assert emerged is not None
    assert before <= emerged <= after, (emerged, start, end, steps)


@pytest.fixture(scope="module", params=[1, 2], ids=["seed1", "seed2"])
def other_seed(request, default_toy_runs, tmp_path_factory):
    """The same pipeline on the default toy run's other seeds (trained once per session)."""
    out, log = default_toy_runs(request.param)
    plan = plan_run(str(out), None, SweepSettings(ablation=CIRCUIT_ABLATION))
    path = tmp_path_factory.mktemp(f"fidelity-seed{request.param}") / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_plan(store, plan, progress=False)
        result, circuit, emerged = find_circuits(store, plan.run_id)
        components = store.components(plan.run_id)
    return log, result, circuit, emerged, components


@pytest.mark.slow
def test_on_seeds_1_and_2_the_top5_circuit_carries_the_task_and_holds_the_induction_path(
    other_seed,
):
    """Where layer 0 does not split its work over redundant heads, as on seed 0, the top-5 circuit
    is faithful (measured 0.987 and 0.984) and the emergence lies in the loss-drop window."""
    log, result, circuit, emerged, components = other_seed
    assert circuit.faithfulness is not None
    assert circuit.faithfulness.value >= FAITHFUL, circuit.faithfulness
    on_induction = induction_paths(result.paths[result.paths.step == circuit.step], components)
    assert len(on_induction) >= 1
    assert set(on_induction.iloc[0].path.split("→")) <= set(circuit.components)
    start, end = drop_window(log)
    steps = result.steps
    before = max((s for s in steps if s < start), default=steps[0])
    after = min((s for s in steps if s > end), default=steps[-1])
    assert emerged is not None and before <= emerged <= after, (emerged, start, end)
