"""The fast task-metric edge scores and circuit runs against the plain references.

On the short toy runs of the three block styles and every ablation: exact patch effects against
the hooked-bridge reference, circuit runs against the hand-written float64 circuit run and (for
node-level circuits) against ``CircuitScorer``, the two fast paths against each other, EAP-IG
against its own definition, and ``scored_sweep``'s columns against the scorer and the sweep.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from reference_edges import reference_circuit_metrics, reference_patch_effects
from scipy.stats import spearmanr

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.contract import AUTO_EXACT_EDGES
from circuitatlas.ingest.edge_scores import (
    EdgeScorer,
    check_edge_scores,
    resolve_edge_scores,
    scored_sweep,
)
from circuitatlas.ingest.model import ForwardPieces
from circuitatlas.ingest.sweep import ABLATIONS, ablation_delta, sweep_checkpoint
from circuitatlas.ingest.tasks import task_metric
from circuitatlas.queries.faithfulness import CircuitScorer, ablatable_names

TOL = 1e-5
ARCHS = ["gpt2", "neox", "neox-seq"]
IG_STEPS = 1  # the sweep's EAP-IG steps in the scored_sweep test

parametrize_models = pytest.mark.parametrize(
    ("arch", "ablation"), [(a, b) for a in ARCHS for b in ABLATIONS]
)


class Cached:
    """Scorers and their (slow-ish) results, computed once per arch and ablation."""

    def __init__(self, models, prompts):
        self.models, self.prompts = models, prompts
        self._scorers, self._results = {}, {}

    def scorer(self, arch, ablation) -> EdgeScorer:
        if (arch, ablation) not in self._scorers:
            _, weights = self.models[arch]
            fp = ForwardPieces(weights, self.prompts.seq_len)
            p = self.prompts
            self._scorers[arch, ablation] = EdgeScorer(fp, p.tokens, p.metric_mask, ablation)
        return self._scorers[arch, ablation]

    def patch(self, arch, ablation) -> torch.Tensor:
        return self._get(("patch", arch, ablation), lambda s: s.patch_effects(), arch, ablation)

    def ig(self, arch, ablation, steps) -> torch.Tensor:
        return self._get(("ig", arch, ablation, steps), lambda s: s.eap_ig(steps), arch, ablation)

    def _get(self, key, compute, arch, ablation):
        if key not in self._results:
            self._results[key] = compute(self.scorer(arch, ablation))
        return self._results[key]


@pytest.fixture(scope="module")
def cached(models, prompts):
    return Cached(models, prompts)


def edge_names(scorer: EdgeScorer) -> list[tuple[str, str]]:
    return [(scorer.names[i], scorer.names[j]) for i, j in scorer.pairs]


def edge_sets(scorer: EdgeScorer, masks: torch.Tensor) -> list[set[tuple[str, str]]]:
    names = edge_names(scorer)
    return [{names[e] for e in row.nonzero()[:, 0].tolist()} for row in masks]


def random_masks(n_circuits: int, n_edges: int, seed: int = 0) -> torch.Tensor:
    """Deterministic pseudo-random edge sets of several densities, ``[C, E]`` booleans."""
    gen = torch.Generator().manual_seed(seed)
    density = torch.linspace(0.15, 0.85, n_circuits)[:, None]
    return torch.rand((n_circuits, n_edges), generator=gen) < density


# -- exact patch effects and circuit runs -------------------------------------------------------


@parametrize_models
def test_patch_effects_match_the_bridge_reference(models, prompts, cached, arch, ablation):
    bridge, _ = models[arch]
    scorer = cached.scorer(arch, ablation)
    fast = cached.patch(arch, ablation)
    assert fast.shape == (scorer.n_edges, prompts.n_prompts)
    ref = reference_patch_effects(bridge, prompts.tokens, prompts.metric_mask, ablation)
    expected = dict(zip(zip(ref.source, ref.target, strict=True), ref.patch_effect, strict=True))
    names = edge_names(scorer)
    assert sorted(names) == sorted(expected)
    got = fast.mean(dim=1).tolist()
    for (src, dst), value in zip(names, got, strict=True):
        assert abs(value - expected[src, dst]) < TOL, (
            f"{src}->{dst}: {value} vs {expected[src, dst]}"
        )
    assert max(map(abs, got)) > 1e-2  # not trivially zero


@parametrize_models
def test_circuit_metrics_match_the_reference_circuit_run(models, prompts, cached, arch, ablation):
    _, weights = models[arch]
    scorer = cached.scorer(arch, ablation)
    e = scorer.n_edges
    every, none = torch.ones((1, e), dtype=torch.bool), torch.zeros((1, e), dtype=torch.bool)
    masks = torch.cat([random_masks(3, e), every, none])
    got = scorer.circuit_metrics(masks)
    assert got.shape == (5, prompts.n_prompts)
    ref = reference_circuit_metrics(
        weights, prompts.tokens, prompts.metric_mask, ablation, edge_sets(scorer, masks)
    )
    for row, (value, expected) in enumerate(zip(got.mean(dim=1).tolist(), ref, strict=True)):
        assert abs(value - expected) < TOL, f"circuit {row}: {value} vs {expected}"
    # every edge is the clean run, prompt by prompt; no edge the run with everything ablated
    torch.testing.assert_close(got[3], scorer.clean_metric, atol=TOL, rtol=0)
    node_level = CircuitScorer(weights, prompts, ablation)
    assert abs(float(got[4].mean()) - node_level.ablated) < TOL
    assert abs(float(got[3].mean()) - float(got[4].mean())) > 1e-2
    faith = scorer.faithfulness(torch.cat([every, none]))
    torch.testing.assert_close(faith, torch.tensor([1.0, 0.0]), atol=1e-6, rtol=0)
    # prompt weights: the weighted means of the same per-prompt metrics
    w = torch.linspace(1.0, 2.0, prompts.n_prompts)
    w = w / w.sum()
    full, empty = float(got[3] @ w), float(got[4] @ w)
    weighted = scorer.faithfulness(masks[:3], prompt_weights=w)
    expected = (got[:3] @ w - empty) / (full - empty)
    torch.testing.assert_close(weighted, expected, atol=1e-5, rtol=0)


@parametrize_models
def test_a_node_circuit_is_every_edge_between_its_nodes(models, prompts, cached, arch, ablation):
    _, weights = models[arch]
    scorer = cached.scorer(arch, ablation)
    node_level = CircuitScorer(weights, prompts, ablation)
    names = ablatable_names(weights.n_layers, weights.n_heads)
    gen = torch.Generator().manual_seed(1)
    picks = [
        {
            n
            for n, keep in zip(names, torch.rand(len(names), generator=gen) < 0.6, strict=True)
            if keep
        }
        for _ in range(3)
    ]
    picks += [{"input", "a0.h1", "a1.h2"}, set()]
    masks = torch.tensor(
        [
            [
                src in nodes | {"logits"} and dst in nodes | {"logits"}
                for src, dst in edge_names(scorer)
            ]
            for nodes in picks
        ]
    )
    got = scorer.circuit_metrics(masks).mean(dim=1).tolist()
    for nodes, value in zip(picks, got, strict=True):
        expected = node_level.metric(set(names) - nodes)
        assert abs(value - expected) < TOL, f"{sorted(nodes)}: {value} vs {expected}"


@parametrize_models
def test_patch_effects_are_circuits_missing_one_edge(cached, arch, ablation):
    scorer = cached.scorer(arch, ablation)
    without_one = ~torch.eye(scorer.n_edges, dtype=torch.bool)
    via_circuits = scorer.circuit_metrics(without_one) - scorer.clean_metric
    torch.testing.assert_close(cached.patch(arch, ablation), via_circuits, atol=TOL, rtol=0)


# -- EAP-IG -------------------------------------------------------------------------------------


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# With a zero ablation the interpolated input x_α = (1 − α) x shrinks to nothing: the layer-0
# reads pass through their layer norm's ε regime in a sliver of α next to 1, which uniform
# midpoints miss (measured with them: input → a0.h3 on neox -0.38, -0.57, -0.69, -0.70 at 64,
# 128, 256, 512 steps). EdgeScorer._ig_schedule integrates over −ln(1 − α) there, and the test
# holds for all three ablations.
CONVERGENCE = [(arch, ablation) for arch in ARCHS for ablation in ABLATIONS]


@pytest.mark.parametrize(("arch", "ablation"), CONVERGENCE)
def test_eap_ig_converges_in_the_number_of_steps(prompts, cached, arch, ablation):
    scorer = cached.scorer(arch, ablation)
    fine = cached.ig(arch, ablation, 32)
    for steps in (1, 16, 32):
        ig = cached.ig(arch, ablation, steps)
        assert ig.shape == (scorer.n_edges, prompts.n_prompts)
        assert torch.isfinite(ig).all()
    coarse = relative(cached.ig(arch, ablation, 1), fine)
    assert coarse > 1e-2  # the interpolation matters
    assert relative(cached.ig(arch, ablation, 16), fine) < 0.02 * coarse


def test_eap_ig_needs_a_step(cached):
    with pytest.raises(ValueError, match="at least one"):
        cached.scorer("gpt2", "mean").eap_ig(0)


def read_gradients(scorer: EdgeScorer, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the summed per-prompt metric with respect to the last MLP's read and the
    final residual, at the input embedding ``x + α Δ_input``: a plain forward, by hand."""
    fp, w, tokens, mask = scorer.fp, scorer.w, scorer.tokens, scorer.mask
    with torch.no_grad():
        embed = fp.embed(tokens)
        x = embed + alpha * ablation_delta(embed, scorer.ablation, slice(None))
        for layer in range(w.n_layers):
            z, _ = fp.attention(layer, x)
            mid = x + fp.attn_out(layer, z)
            if layer == w.n_layers - 1:
                break
            x = mid + fp.mlp(layer, x if w.parallel else mid)
    mlp_read = (x if w.parallel else mid).clone().requires_grad_(True)
    final_read = mid + fp.mlp(w.n_layers - 1, mlp_read)
    logits = fp.final(final_read) @ w.w_u
    if w.b_u is not None:
        logits = logits + w.b_u
    log_probs = logits[:, :-1].log_softmax(dim=-1).gather(-1, tokens[:, 1:, None])[..., 0]
    metric = task_metric(log_probs, mask).sum()
    g_mlp, g_final = torch.autograd.grad(metric, [mlp_read, final_read])
    return g_mlp, g_final


@parametrize_models
@pytest.mark.parametrize("steps", [1, 2])
def test_eap_ig_is_delta_times_the_interpolated_gradient(cached, arch, ablation, steps):
    scorer = cached.scorer(arch, ablation)
    fp, w = scorer.fp, scorer.w
    last = w.n_layers - 1
    with torch.no_grad():  # the clean outputs of input and of head a0.h1, by hand
        embed = fp.embed(scorer.tokens)
        head = fp.head_outputs(0, fp.attention(0, embed)[0])[:, :, 1]
    d_input = ablation_delta(embed, scorer.ablation, slice(None))
    d_head = ablation_delta(head, scorer.ablation, slice(None))
    schedule = scorer._ig_schedule(steps, embed)  # midpoints, or midpoints in −ln(1 − α)
    grads = [(weight, read_gradients(scorer, alpha)) for alpha, weight in schedule]
    g_mlp = sum(weight * g for weight, (g, _) in grads)
    g_final = sum(weight * g for weight, (_, g) in grads)
    expected = {
        ("input", "logits"): (d_input * g_final).sum(dim=(-1, -2)),
        ("a0.h1", "logits"): (d_head * g_final).sum(dim=(-1, -2)),
        ("a0.h1", f"m{last}"): (d_head * g_mlp).sum(dim=(-1, -2)),
        ("input", f"m{last}"): (d_input * g_mlp).sum(dim=(-1, -2)),
    }
    ig = cached.ig(arch, ablation, steps) if steps == 1 else scorer.eap_ig(steps)
    index = {name: e for e, name in enumerate(edge_names(scorer))}
    for edge, value in expected.items():
        assert value.abs().max() > 1e-4, edge  # a real check, not 0 == 0
        torch.testing.assert_close(ig[index[edge]], value, atol=1e-5, rtol=1e-4, msg=str(edge))


# Measured on the short runs (6 induction prompts), Spearman of patch_effect vs eap_ig(8):
#   gpt2      zero 0.570  mean 0.900  resample 0.839
#   neox      zero 0.695  mean 0.942  resample 0.951
#   neox-seq  zero 0.598  mean 0.938  resample 0.952
# with uniform midpoints; with the −ln(1 − α) schedule zero ablation gives neox 0.774.
@parametrize_models
def test_eap_ig_ranks_edges_like_patching(cached, arch, ablation):
    patch = cached.patch(arch, ablation).mean(dim=1).double().numpy()
    ig = cached.ig(arch, ablation, 8).mean(dim=1).double().numpy()
    rho = float(spearmanr(patch, ig).statistic)
    print(f"\nspearman(patch_effect, eap_ig(8)) {arch:8s} {ablation:8s} {rho:.3f}")
    assert rho > 0


# -- the sweep with edge scores -----------------------------------------------------------------

FILLED = {
    "none": set(),
    "exact": {"patch_effect"},
    "eap-ig": {"eap_ig"},
    "both": {"patch_effect", "eap_ig"},
}


@parametrize_models
def test_scored_sweep_fills_the_chosen_columns(models, prompts, cached, arch, ablation):
    _, weights = models[arch]
    plain = sweep_checkpoint(weights, prompts, ablation)
    means = {
        "patch_effect": cached.patch(arch, ablation).mean(dim=1).double().numpy(),
        "eap_ig": cached.ig(arch, ablation, IG_STEPS).mean(dim=1).double().numpy(),
    }
    scored_columns = list(means)
    others = [c for c in plain.edges.columns if c not in scored_columns]
    assert plain.edges[scored_columns].isna().all().all()
    for mode, filled in FILLED.items():
        result = scored_sweep(weights, prompts, ablation, edge_scores=mode, ig_steps=IG_STEPS)
        assert list(result.edges.columns) == list(plain.edges.columns)
        pd.testing.assert_frame_equal(result.edges[others], plain.edges[others], rtol=0, atol=1e-9)
        pd.testing.assert_frame_equal(result.components, plain.components, rtol=0, atol=1e-9)
        assert math.isclose(result.metric, plain.metric, abs_tol=1e-9)
        assert math.isclose(result.loss, plain.loss, abs_tol=1e-9)
        for column in scored_columns:
            values = result.edges[column].to_numpy()
            if column in filled:
                np.testing.assert_allclose(values, means[column], rtol=0, atol=1e-6)
            else:
                assert np.isnan(values).all(), (mode, column)


def test_edge_score_modes_and_their_errors():
    assert AUTO_EXACT_EDGES == 2000
    assert resolve_edge_scores("auto", 2000) == "both"
    assert resolve_edge_scores("auto", 2001) == "eap-ig"
    for mode in ("exact", "eap-ig", "both", "none"):
        assert resolve_edge_scores(mode, 10**6) == mode
        check_edge_scores(mode, 1)
    for bad, steps, words in [("bogus", 8, "unknown --edge-scores"), ("both", 0, "--ig-steps")]:
        with pytest.raises(CircuitAtlasError, match=words) as caught:
            check_edge_scores(bad, steps)
        assert "\n" not in str(caught.value)


# -- CUDA ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("arch", ARCHS)
def test_cuda_matches_cpu(models, prompts, cached, arch):
    ablation = "mean"
    _, weights = models[arch]
    cpu = cached.scorer(arch, ablation)
    gpu_weights = weights.to("cuda")
    fp = ForwardPieces(gpu_weights, prompts.seq_len)
    tokens, mask = prompts.tokens.to("cuda"), prompts.metric_mask.to("cuda")
    gpu = EdgeScorer(fp, tokens, mask, ablation)
    torch.testing.assert_close(
        gpu.patch_effects().cpu(), cached.patch(arch, ablation), atol=1e-4, rtol=0
    )
    masks = torch.cat([random_masks(4, cpu.n_edges, seed=2), ~torch.eye(cpu.n_edges).bool()])
    torch.testing.assert_close(
        gpu.circuit_metrics(masks).cpu(), cpu.circuit_metrics(masks), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        gpu.faithfulness(masks).cpu(), cpu.faithfulness(masks), atol=1e-4, rtol=0
    )
