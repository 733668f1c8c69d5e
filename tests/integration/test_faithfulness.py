"""Circuit faithfulness by rerunning the model, on real toy runs of the three block styles.

Checked against the sweep (a circuit missing one component reproduces that component's stored
``effect``; the full circuit its stored clean ``metric``), against an independent reference (the
real Hugging Face model run through TransformerLens hooks with many components ablated at once),
and from a stored run configuration, with every error case.
"""

import json
import math
import random
import shutil

import pytest
import torch
from reference_sweep import _metric

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.checkpoints import list_checkpoints, load_checkpoint
from circuitatlas.ingest.model import weights_from_bridge
from circuitatlas.ingest.pipeline import SweepSettings, plan_run, sweep_run
from circuitatlas.ingest.sweep import ABLATIONS, replacement
from circuitatlas.ingest.tasks import induction_prompts, load_prompts
from circuitatlas.queries import faithfulness as faith
from circuitatlas.queries.faithfulness import (
    CircuitScorer,
    ablatable_names,
    circuit_faithfulness,
    run_faithfulness,
)
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_plan

TOL = 1e-5
ARCHS = ["gpt2", "neox", "neox-seq"]


def bridges(run):
    """The run's checkpoints as TransformerBridges, by step."""
    return {ref.step: load_checkpoint(ref) for ref in list_checkpoints(str(run))}


@pytest.fixture(scope="module")
def sweeps(short_runs):
    """``get(arch, ablation)``: the short run swept with that ablation (5 prompts), cached."""
    cache = {}

    def get(arch, ablation):
        if (arch, ablation) not in cache:
            settings = SweepSettings(n_prompts=5, seq_len=15, ablation=ablation)
            cache[arch, ablation] = sweep_run(str(short_runs[arch]), None, settings, False)
        return cache[arch, ablation]

    return get


@pytest.fixture(scope="module")
def weights(short_runs):
    """The short runs' weights, by arch and step."""
    return {
        arch: {step: weights_from_bridge(b) for step, b in bridges(short_runs[arch]).items()}
        for arch in ARCHS
    }


# --- against the sweep -------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("ablation", ABLATIONS)
def test_leaving_one_out_reproduces_the_sweeps_effects(sweeps, weights, arch, ablation):
    result = sweeps(arch, ablation)
    for step, w in weights[arch].items():
        stored = result.components[result.components.step == step].set_index("name")["effect"]
        metric = float(result.checkpoints.set_index("step").loc[step, "metric"])
        scorer = CircuitScorer(w, result.prompts, ablation)
        names = ablatable_names(w.n_layers, w.n_heads)
        full = scorer.score([*names, "logits"])
        assert full.circuit == full.clean and full.value == 1.0
        assert abs(full.clean - metric) < TOL
        assert full.kept == tuple(names)
        empty = scorer.score([])
        assert empty.circuit == empty.ablated and empty.value == 0.0 and empty.kept == ()
        assert scorer.score(["logits"]).value == 0.0  # the sink is not ablatable
        for name in names:
            out = scorer.score([n for n in names if n != name])
            assert abs((out.circuit - out.clean) - stored[name]) < TOL, (step, name)
        # the ablations do something here: some component changes the metric
        assert stored.abs().max() > 1e-3
        assert full.clean != full.ablated


def test_circuit_faithfulness_equals_the_scorer(sweeps, weights):
    result = sweeps("gpt2", "mean")
    w = weights["gpt2"][250]
    circuit = {"input", "a0.h1", "a1.h0", "m1", "logits"}
    one = circuit_faithfulness(w, result.prompts, circuit)
    assert one == CircuitScorer(w, result.prompts, "mean").score(circuit)
    assert one.ablation == "mean" and one.kept == ("input", "a0.h1", "a1.h0", "m1")
    assert one.value == pytest.approx((one.circuit - one.ablated) / (one.clean - one.ablated))


# --- against the real model through TransformerLens hooks --------------------------------------


@torch.no_grad()
def hooked_metric(bridge, tokens, mask, ablated, ablation):
    """The task metric with ``ablated`` ablated together, on the real model through hooks.

    Each ablated output is replaced by the replacement of its clean output: ``input`` at the
    residual entering block 0, a head at its ``hook_z`` slice, an MLP at ``hook_mlp_out``.
    """
    cfg = bridge.cfg
    _, cache = bridge.run_with_cache(tokens)
    hooks = []

    def replace_all(r):
        return lambda x, hook: r

    if "input" in ablated:
        r = replacement(cache["blocks.0.hook_resid_pre"], ablation)
        hooks.append(("blocks.0.hook_resid_pre", replace_all(r)))
    for layer in range(cfg.n_layers):
        heads = [h for h in range(cfg.n_heads) if f"a{layer}.h{h}" in ablated]
        if heads:
            r = replacement(cache[f"blocks.{layer}.attn.hook_z"][:, :, heads], ablation)

            def patch_z(x, hook, heads=heads, r=r):
                x = x.clone()
                x[:, :, heads] = r
                return x

            hooks.append((f"blocks.{layer}.attn.hook_z", patch_z))
        if f"m{layer}" in ablated:
            r = replacement(cache[f"blocks.{layer}.hook_mlp_out"], ablation)
            hooks.append((f"blocks.{layer}.hook_mlp_out", replace_all(r)))
    logits = bridge.run_with_hooks(tokens, fwd_hooks=hooks)
    return float(_metric(logits, tokens, mask).mean())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("ablation", ABLATIONS)
def test_random_circuits_equal_the_hooked_model(short_runs, arch, ablation):
    bridge = bridges(short_runs[arch])[250]
    prompts = induction_prompts(6, 7, vocab_size=64, seed=3, bos_token_id=0)
    tokens, mask = prompts.tokens, prompts.metric_mask
    scorer = CircuitScorer(weights_from_bridge(bridge), prompts, ablation)
    names = scorer.names
    assert abs(scorer.clean - hooked_metric(bridge, tokens, mask, set(), ablation)) < TOL
    assert abs(scorer.ablated - hooked_metric(bridge, tokens, mask, set(names), ablation)) < TOL
    rng = random.Random(f"{arch}-{ablation}")
    for size in (2, len(names) // 2, len(names) - 2):
        circuit = rng.sample(names, size)
        out = scorer.score(circuit)
        ref = hooked_metric(bridge, tokens, mask, set(names) - set(circuit), ablation)
        assert abs(out.circuit - ref) < TOL, (circuit, out.circuit, ref)
        assert out.kept == tuple(n for n in names if n in circuit)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu(weights):
    prompts = induction_prompts(6, 7, vocab_size=64, seed=3, bos_token_id=0)
    w = weights["neox"][250]
    circuit = {"input", "a0.h0", "a1.h2", "m0"}
    cpu = circuit_faithfulness(w, prompts, circuit, "resample")
    gpu = circuit_faithfulness(w.to("cuda"), prompts, circuit, "resample")
    for field in ("clean", "circuit", "ablated", "value"):
        assert getattr(gpu, field) == pytest.approx(getattr(cpu, field), abs=1e-4), field


# --- from a stored run configuration -----------------------------------------------------------


@pytest.fixture(scope="module")
def stored(short_runs, tmp_path_factory):
    """A copy of the GPT-2 short run swept on a prompt file and ingested into an embedded store:
    ``(run directory, prompt file, stored configuration)``."""
    root = tmp_path_factory.mktemp("faithfulness")
    run = root / "run"
    shutil.copytree(short_runs["gpt2"], run)
    prompt_file = root / "prompts.jsonl"
    rng = random.Random(5)
    lines = [
        {"tokens": [0, *rng.sample(range(1, 63), 11)], "positions": [4, 7, 9]} for _ in range(4)
    ]
    prompt_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    plan = plan_run(str(run), None, SweepSettings(task=str(prompt_file), n_prompts=4))
    with open_store(root / "store.lbdb", writable=True) as store:
        ingest_plan(store, plan, progress=False)
        config = store.run_config(plan.run_id)
    return run, prompt_file, config


CIRCUITS = [
    {"input", "a0.h1", "a1.h0", "m1", "logits"},
    ["a0.h0", "a0.h2", "m0", "a1.h3"],
    [],
    ["input", "a0.h0", "a0.h1", "a0.h2", "a0.h3", "m0", "a1.h0", "a1.h1", "a1.h2", "a1.h3", "m1"],
]


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_stored_config_equals_the_directly_loaded_weights(stored, weights, ablation, monkeypatch):
    _, prompt_file, config = stored
    loads = []
    load = faith.load_weights
    monkeypatch.setattr(faith, "load_weights", lambda *a: loads.append(a) or load(*a))
    got = run_faithfulness(config, 250, CIRCUITS, ablation)
    assert len(loads) == 1  # one model load for every circuit
    prompts = load_prompts(str(prompt_file), 4, 21, 64, 0, 0)
    want = [circuit_faithfulness(weights["gpt2"][250], prompts, c, ablation) for c in CIRCUITS]
    assert got == want
    assert [f.value for f in got[2:]] == [0.0, 1.0]
    assert not math.isnan(got[0].value)


def test_induction_config_rebuilds_the_same_prompts(short_runs, weights):
    plan = plan_run(str(short_runs["neox"]), None, SweepSettings(n_prompts=4))
    circuit = ["input", "a0.h3", "a1.h1"]
    (got,) = run_faithfulness(plan.config, 0, [circuit], device="cpu")
    assert got == circuit_faithfulness(weights["neox"][0], plan.prompts, circuit)


def message(config, *args, **kw):
    with pytest.raises(CircuitAtlasError) as err:
        run_faithfulness(config, *args, **kw)
    text = str(err.value)
    assert "\n" not in text
    return text


def test_unknown_components_name_close_matches(stored):
    config = stored[2]
    text = message(config, 250, [["input", "a0.h9"]])
    assert "'a0.h9' is not a component of this model" in text and "did you mean a0.h" in text
    assert "did you mean logits" in message(config, 250, [["input"], ["logit"]])
    assert "not one string" in message(config, 250, ["m0"])


def test_moved_checkpoints_are_named(stored):
    run, _, config = stored
    moved = run.with_name("moved")
    run.rename(moved)
    try:
        text = message(config, 250, CIRCUITS)
    finally:
        moved.rename(run)
    assert f"checkpoint step 250 of {run} is no longer reachable" in text
    assert f"restore {run} or re-sweep" in text


def test_a_run_swept_from_relative_paths_reruns_from_any_working_directory(
    stored, weights, tmp_path, monkeypatch
):
    run, prompt_file, config = stored
    monkeypatch.chdir(run.parent)
    settings = SweepSettings(task=prompt_file.name, n_prompts=4)
    relative = plan_run(run.name, None, settings).config
    assert relative["model"] == "run" and relative["settings"]["task"] == "prompts.jsonl"
    assert relative["local_paths"] == {"model": str(run), "task": str(prompt_file)}
    monkeypatch.chdir(tmp_path)  # neither path resolves from here
    got = run_faithfulness(relative, 250, CIRCUITS)
    assert got == run_faithfulness(config, 250, CIRCUITS)
    # a store written before paths were recorded reads them from the working directory
    old = {k: v for k, v in relative.items() if k != "local_paths"}
    text = message(old, 250, CIRCUITS)
    assert "checkpoint step 250 of run (a local path is read from the working dir)" in text


def test_a_step_outside_the_run(stored):
    text = message(stored[2], 100, CIRCUITS)
    assert "step 100 is not a step of run" in text and "steps: 0, 250" in text


def test_a_changed_prompt_file(stored):
    _, prompt_file, config = stored
    original = prompt_file.read_text()
    prompt_file.write_text(original.replace('"positions": [4, 7, 9]', '"positions": [4, 8]', 1))
    try:
        text = message(config, 250, CIRCUITS)
    finally:
        prompt_file.write_text(original)
    assert f"the prompt file {prompt_file} changed since the run was swept" in text
    prompt_file.rename(prompt_file.with_suffix(".bak"))
    try:
        text = message(config, 250, CIRCUITS)
    finally:
        prompt_file.with_suffix(".bak").rename(prompt_file)
    assert "cannot rebuild its prompts" in text and "no such file" in text


def test_bad_ablation_and_bad_config(stored, weights):
    config = stored[2]
    assert "unknown ablation 'half'" in message(config, 250, CIRCUITS, "half")
    assert "no settings.task" in message({**config, "settings": {}}, 250, CIRCUITS)
    one = induction_prompts(1, 4, vocab_size=64, seed=0, bos_token_id=0)
    with pytest.raises(CircuitAtlasError, match="unknown ablation 'half'"):
        circuit_faithfulness(weights["gpt2"][250], one, [], "half")
    with pytest.raises(CircuitAtlasError, match="at least 2 prompts"):
        circuit_faithfulness(weights["gpt2"][250], one, [], "resample")
