"""The fast sweep equals the plain TransformerLens-hook reference on real toy checkpoints, under
every output definition."""

import pytest
import torch
from reference_sweep import reference_sweep

from circuitatlas.ingest.checkpoints import list_checkpoints, load_checkpoint
from circuitatlas.ingest.components import all_components, is_downstream
from circuitatlas.ingest.contract import OUTPUTS
from circuitatlas.ingest.head_scores import induction_scores, previous_token_scores
from circuitatlas.ingest.model import weights_from_bridge
from circuitatlas.ingest.sweep import ABLATIONS, sweep_checkpoint

TOL = 1e-5


def last_checkpoint(run):
    return load_checkpoint(list_checkpoints(str(run))[-1])


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("arch", ["gpt2", "neox", "neox-seq"])
@pytest.mark.parametrize("ablation", ABLATIONS)
def test_fast_path_equals_reference(short_runs, prompts, arch, ablation, output):
    bridge = last_checkpoint(short_runs[arch])
    # a tiny budget forces many chunks, so chunk boundaries inside a source are exercised too
    weights = weights_from_bridge(bridge)
    fast = sweep_checkpoint(weights, prompts, ablation, memory_budget_mb=0.3, output=output)
    ref, effects = reference_sweep(
        bridge, prompts.tokens, prompts.metric_mask, ablation, output=output
    )
    merged = fast.edges.merge(ref, on=["source", "target"], suffixes=("", "_ref"))
    assert len(merged) == len(ref) == len(fast.edges)
    for col in ("similarity", "std", "direct_similarity", "direct_std"):
        diff = (merged[col] - merged[f"{col}_ref"]).abs().max()
        assert diff < TOL, f"{col} differs by {diff:.2e}"
    got = fast.components.set_index("name")["effect"]
    for name, value in effects.items():
        assert abs(got[name] - value) < TOL, f"effect of {name}: {got[name]} vs {value}"
    # the ablations change something: not every similarity is 1
    assert (merged["similarity"] < 0.999).any() and (merged["direct_similarity"] < 0.999).any()


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("arch", ["gpt2", "neox"])
def test_edges_are_exactly_the_downstream_pairs(short_runs, prompts, arch, output):
    bridge = last_checkpoint(short_runs[arch])
    out = sweep_checkpoint(weights_from_bridge(bridge), prompts, output=output)
    cfg = bridge.cfg
    comps = all_components(cfg.n_layers, cfg.n_heads)
    expected = {
        (a.name, b.name)
        for a in comps
        for b in comps
        if is_downstream(a, b, bool(cfg.parallel_attn_mlp))
    }
    assert set(zip(out.edges.source, out.edges.target, strict=True)) == expected
    assert (out.edges.weight == 1 - out.edges.similarity).all()
    assert (out.edges.direct_weight == 1 - out.edges.direct_similarity).all()
    assert out.edges["std"].ge(0).all()
    assert list(out.components.name) == [c.name for c in comps]


@pytest.mark.parametrize("output", OUTPUTS)
def test_chunking_does_not_change_results(short_runs, prompts, output):
    weights = weights_from_bridge(last_checkpoint(short_runs["gpt2"]))
    one = sweep_checkpoint(weights, prompts, "mean", memory_budget_mb=4096, output=output)
    many = sweep_checkpoint(weights, prompts, "mean", memory_budget_mb=0.3, output=output)
    cols = ["similarity", "direct_similarity", "std", "direct_std"]
    assert (one.edges[cols] - many.edges[cols]).abs().max().max() < 1e-6


def test_head_scores_match_the_bridge_patterns(short_runs, prompts):
    bridge = last_checkpoint(short_runs["gpt2"])
    out = sweep_checkpoint(weights_from_bridge(bridge), prompts)
    _, cache = bridge.run_with_cache(prompts.tokens)
    heads = out.components[out.components.kind == "attn_head"]
    for layer in range(bridge.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        prev = previous_token_scores(pattern)
        ind = induction_scores(pattern, prompts.tokens)
        mine = heads[heads.layer == layer].sort_values("head")
        torch.testing.assert_close(torch.tensor(mine.prev_token_score.values), prev.double())
        torch.testing.assert_close(torch.tensor(mine.induction_score.values), ind.double())


def test_clean_loss_and_metric_match_the_bridge(short_runs, prompts):
    bridge = last_checkpoint(short_runs["neox"])
    out = sweep_checkpoint(weights_from_bridge(bridge), prompts)
    with torch.no_grad():
        logits = bridge(prompts.tokens)
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), prompts.tokens[:, 1:].reshape(-1)
    )
    assert abs(out.loss - float(loss)) < 1e-5
