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
