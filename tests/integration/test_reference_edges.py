"""The edge-patching and circuit-run references agree with each other and with the bridge.

Two independent implementations: hooked ``TransformerBridge`` passes (``reference_patch_effects``)
and a hand-written forward on the standard weights (``reference_circuit_metric``). Patching one
edge ``i → j`` is the circuit run of every edge but ``(i, j)``.
"""

import pytest
import torch
from reference_edges import (
    all_edges,
    reference_circuit_metric,
    reference_circuit_metrics,
    reference_faithfulness,
    reference_patch_effects,
)
from reference_sweep import _metric

from circuitatlas.ingest.sweep import ABLATIONS, replacement

TOL = 1e-5
ARCHS = ["gpt2", "neox", "neox-seq"]


def clean_metric(bridge, prompts) -> float:
    with torch.no_grad():
        logits = bridge(prompts.tokens)
    return float(_metric(logits, prompts.tokens, prompts.metric_mask).mean())


def all_ablated_metric(bridge, prompts, ablation) -> float:
    """Metric with every component's output replaced, through the bridge's hooks."""
    cfg = bridge.cfg
    with torch.no_grad():
        _, cache = bridge.run_with_cache(prompts.tokens)

        def put(value):
            value = value.contiguous()  # a mean replacement is an expanded view
            return lambda x, hook: value

        hooks = [
            (
                "blocks.0.hook_resid_pre",
                put(replacement(cache["blocks.0.hook_resid_pre"], ablation)),
            )
        ]
        for layer in range(cfg.n_layers):
            z = f"blocks.{layer}.attn.hook_z"
            mlp = f"blocks.{layer}.hook_mlp_out"
            hooks += [
                (z, put(replacement(cache[z], ablation))),
                (mlp, put(replacement(cache[mlp], ablation))),
            ]
        logits = bridge.run_with_hooks(prompts.tokens, fwd_hooks=hooks)
    return float(_metric(logits, prompts.tokens, prompts.metric_mask).mean())


@pytest.mark.parametrize("arch", ARCHS)
def test_substituting_one_heads_z_changes_only_its_output(models, prompts, arch):
    bridge, _ = models[arch]
    layer, head = 1, 2
    was = bool(bridge.cfg.use_attn_result)
    bridge.set_use_attn_result(True)
    try:
        with torch.no_grad():
            _, clean = bridge.run_with_cache(prompts.tokens)

            def zero_head(z, hook):
                z = z.clone()
                z[:, :, head] = 0.0
                return z

            seen = {}

            def record(x, hook):
                seen["out"] = x.clone()
                return x

            bridge.run_with_hooks(
                prompts.tokens,
                fwd_hooks=[
                    (f"blocks.{layer}.attn.hook_z", zero_head),
                    (f"blocks.{layer}.hook_attn_out", record),
                ],
            )
    finally:
        bridge.set_use_attn_result(was)
    change = seen["out"] - clean[f"blocks.{layer}.hook_attn_out"]
    own = clean[f"blocks.{layer}.attn.hook_result"][:, :, head]
    assert own.abs().max() > 1e-2
    torch.testing.assert_close(change, -own, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("ablation", ABLATIONS)
def test_circuit_run_ends_match_the_bridge(models, prompts, arch, ablation):
    bridge, weights = models[arch]
    tokens, mask = prompts.tokens, prompts.metric_mask
    full = reference_circuit_metric(weights, tokens, mask, ablation, all_edges(weights))
    assert abs(full - clean_metric(bridge, prompts)) < TOL
    empty = reference_circuit_metric(weights, tokens, mask, ablation, set())
    assert abs(empty - all_ablated_metric(bridge, prompts, ablation)) < TOL
    assert abs(full - empty) > 1e-2


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("ablation", ABLATIONS)
def test_patching_an_edge_is_the_circuit_without_it(models, prompts, arch, ablation):
    bridge, weights = models[arch]
    tokens, mask = prompts.tokens, prompts.metric_mask
    effects = reference_patch_effects(bridge, tokens, mask, ablation)
    edges = all_edges(weights)
    assert list(effects.columns) == ["source", "target", "patch_effect"]
    assert set(zip(effects.source, effects.target, strict=True)) == edges
    assert len(effects) == len(edges)
    pairs = list(zip(effects.source, effects.target, strict=True))
    clean, *circuits = reference_circuit_metrics(
        weights, tokens, mask, ablation, [edges] + [edges - {pair} for pair in pairs]
    )
    for (src, dst), effect, circuit in zip(pairs, effects.patch_effect, circuits, strict=True):
        assert abs(effect - (circuit - clean)) < TOL, f"{src}->{dst}: {effect} vs {circuit - clean}"
    # every kind of target is covered, and the scores are not all trivially zero
    assert {"logits", "m1", "a1.h0"} <= set(effects.target)
    assert effects.patch_effect.abs().max() > 1e-2


def test_faithfulness(models, prompts):
    _, weights = models["gpt2"]
    tokens, mask = prompts.tokens, prompts.metric_mask
    edges = all_edges(weights)
    assert abs(reference_faithfulness(weights, tokens, mask, "mean", edges) - 1) < 1e-9
    assert abs(reference_faithfulness(weights, tokens, mask, "mean", set())) < 1e-9
    direct = {(src, dst) for src, dst in edges if dst == "logits"}
    value = reference_faithfulness(weights, tokens, mask, "mean", direct)
    assert value == value  # finite, not NaN
    with pytest.raises(ValueError, match="not edges"):
        reference_circuit_metric(weights, tokens, mask, "mean", {("a1.h0", "a0.h1")})
