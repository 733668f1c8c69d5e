"""Task-metric edge scores and edge-level circuits of one checkpoint.

Every edge i→j (``j`` downstream of ``i``) gets two scores measured on the task metric (the mean
log-prob of the scored tokens), next to the sweep's similarity measures:

* ``patch_effect`` (exact edge patching, as ACDC does): the change of the metric (patched − clean)
  when only *j*'s read of the residual stream loses *i*'s write — it reads ``clean + Δ_i`` with
  ``Δ_i = a_i − o_i`` (*i*'s ablated value minus its clean output) — while every other read keeps
  *i*'s clean write and everything downstream of *j* is recomputed from *j*'s changed output;
* ``eap_ig`` (EAP-IG, Hanna et al. 2024): ``Δ_i · ḡ_j``, with ``ḡ_j`` the gradient of the metric
  with respect to *j*'s read averaged over ``m`` runs whose input embedding is interpolated between
  the clean and the ablated one, ``x_α = x + α Δ_input`` at the midpoints ``α = (k + ½) / m`` (under
  zero ablation, midpoints in ``−ln(1 − α)``: see :meth:`EdgeScorer._ig_schedule`). One
  forward and one backward pass give every edge's score at once.

A *circuit* is a set of edges. In its *circuit run* each reader *j* reads
``Σ_{parents i} (o_i^circuit if i→j is in the circuit else a_i) + Σ b_O`` (``o_i^circuit``: *i*'s
output computed from its own read in this run; ``a_i``: *i*'s ablated value, from the clean run).
Every edge gives the clean run, no edge the run with every component ablated; a node-level
circuit is the edge set "every edge between its nodes". :meth:`EdgeScorer.circuit_metrics` runs
many circuits as the rows of one batched pass.

The ablated values are those of the sweep (:func:`~circuitatlas.ingest.ablation.replacement`): zero,
the mean over the prompt set, or the output on the next prompt. Scores and circuit metrics are
returned per prompt (``[..., N]``); means over prompts are the stored values, and resampling the
prompts (the bootstrap of the circuit search) averages the same per-prompt values.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest import ablation as abl
from circuitatlas.ingest.components import all_components, downstream_pairs
from circuitatlas.ingest.contract import (
    AUTO_EXACT_EDGES,
    DEFAULT_IG_STEPS,
    DEFAULT_MEMORY_BUDGET_MB,
    EDGE_SCORES,
)
from circuitatlas.ingest.model import ForwardPieces, TransformerWeights
from circuitatlas.ingest.sweep import CheckpointSweep, Sweeper
from circuitatlas.ingest.tasks import PromptSet, task_metric

# Rows of one batched pass (an edge or a circuit × a prompt) when nobody gives a budget.
DEFAULT_ROWS = 2048


def scored_sweep(
    weights: TransformerWeights,
    prompts: PromptSet,
    ablation: str = "zero",
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    edge_scores: str = "auto",
    ig_steps: int = DEFAULT_IG_STEPS,
    output: str = "write",
) -> CheckpointSweep:
    """The sweep of one checkpoint with its task-metric edge scores (``edge_scores``: one of
    ``EDGE_SCORES``; NaN columns for the scores not computed), its similarities measured on the
    ``output`` definition (the scores do not depend on it)."""
    check_edge_scores(edge_scores, ig_steps)
    sweeper = Sweeper(weights, prompts, ablation, memory_budget_mb, output)
    result = sweeper.run()
    mode = resolve_edge_scores(edge_scores, len(result.edges))
    if mode == "none":
        return result
    scorer = EdgeScorer(
        sweeper.fp, sweeper.tokens, sweeper.mask, ablation, sweeper.rows_per_chunk, sweeper.clean
    )
    names = [(scorer.names[i], scorer.names[j]) for i, j in scorer.pairs]
    if names != list(zip(result.edges["source"], result.edges["target"], strict=True)):
        raise RuntimeError("edge scores and sweep rows are in different orders")  # a bug
    if mode in ("exact", "both"):
        result.edges["patch_effect"] = scorer.patch_effects().mean(dim=1).double().cpu().numpy()
    if mode in ("eap-ig", "both"):
        result.edges["eap_ig"] = scorer.eap_ig(ig_steps).mean(dim=1).double().cpu().numpy()
    return result


def check_edge_scores(edge_scores: str, ig_steps: int) -> None:
    """Raise a clear error for an unknown ``--edge-scores`` or fewer than one ``--ig-steps``."""
    if edge_scores not in EDGE_SCORES:
        raise CircuitAtlasError(
            f"unknown --edge-scores {edge_scores!r}; choose one of {', '.join(EDGE_SCORES)}"
        )
    if int(ig_steps) < 1:
        raise CircuitAtlasError(f"--ig-steps {ig_steps}: give at least 1 interpolation step")


def resolve_edge_scores(edge_scores: str, n_edges: int) -> str:
    """``auto`` made concrete: ``both`` up to ``AUTO_EXACT_EDGES`` edges, else ``eap-ig``."""
    if edge_scores != "auto":
        return edge_scores
    return "both" if n_edges <= AUTO_EXACT_EDGES else "eap-ig"


class EdgeScorer:
    """Edge scores and circuit metrics of one checkpoint on one prompt set (module docstring).

    ``pairs`` lists the edges as component indices in the sweep's edge order; ``names`` the
    components in model order. ``clean`` may be a clean run computed already (the sweep's).
    """

    def __init__(
        self,
        fp: ForwardPieces,
        tokens: Tensor,
        mask: Tensor,
        ablation: str,
        rows_per_chunk: int = DEFAULT_ROWS,
        clean: abl.CleanRun | None = None,
    ) -> None:
        abl.check_ablation(ablation, tokens.shape[0])
        self.fp, self.w = fp, fp.w
        self.tokens, self.mask, self.ablation = tokens, mask, ablation
        self.n = tokens.shape[0]
        self.rows = max(1, rows_per_chunk)
        self.comps = all_components(self.w.n_layers, self.w.n_heads)
        self.names = [c.name for c in self.comps]
        self.pairs = downstream_pairs(self.comps, self.w.parallel)
        self.edge_index = {pair: e for e, pair in enumerate(self.pairs)}
        self._src = torch.tensor([i for i, _ in self.pairs], device=tokens.device)
        self._dst = torch.tensor([j for _, j in self.pairs], device=tokens.device)
        self._ends: Tensor | None = None
        with torch.no_grad():
            self.clean = clean if clean is not None else abl.clean_run(fp, tokens)
            self.clean_metric = self._metric(self.clean.final, 1)  # [N]
            # Δ_i of every component but logits [n - 1, N, T, d]; ablated head and MLP outputs
            outputs = [self.clean.output(c) for c in self.comps[:-1]]
            self.deltas = torch.stack(
                [abl.ablation_delta(o, ablation, slice(None)) for o in outputs]
            )
            self._a_heads = [abl.replacement(h, ablation) for h in self.clean.head_out]
            self._a_mlps = [abl.replacement(m, ablation) for m in self.clean.mlp_out]

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return len(self.pairs)

    # -- shared pieces ------------------------------------------------------------------------
    def _metric(self, final: Tensor, reps: int) -> Tensor:
        """Per-row task metric of final normalized residuals of ``reps`` copies of the prompts."""
        tokens, mask = self.tokens.repeat(reps, 1), self.mask.repeat(reps, 1)
        return task_metric(self.fp.target_log_probs(final, tokens, mask), mask)

    def _run_from(self, x: Tensor, layer: int) -> Tensor:
        """The final normalized residual of rows ``x`` entering ``layer`` (plain forward)."""
        fp = self.fp
        for lyr in range(layer, self.w.n_layers):
            z, _ = fp.attention(lyr, x)
            mid = x + fp.attn_out(lyr, z)
            x = mid + fp.mlp(lyr, x if self.w.parallel else mid)
        return fp.final(x)

    def _group(self, kind: str, layer: int) -> tuple[list[int], list[int]]:
        """The targets of a read group (a layer's heads, an MLP or ``logits``) and the sources
        they share."""
        if kind == "attn":
            targets = [
                j for j, c in enumerate(self.comps) if c.kind == "attn_head" and c.layer == layer
            ]
        else:
            targets = [self.names.index(f"m{layer}" if kind == "mlp" else "logits")]
        sources = sorted({i for i, j in self.pairs if j == targets[0]})
        return targets, sources

    # -- exact patch effects ------------------------------------------------------------------
    def patch_effects(self) -> Tensor:
        """``patch_effect`` of every edge on every prompt, ``[E, N]`` (patched − clean metric).

        Batched by read group: the rows of one pass are (source, target) pairs × prompts; a pass
        starts at the read (nothing upstream is recomputed) and only the target's output changes
        there, so the next layer's residual is the clean one plus that change.
        """
        out = torch.full((self.n_edges, self.n), float("nan"), device=self.tokens.device)
        with torch.inference_mode():
            for kind, layer in abl.read_groups(self.w.n_layers):
                targets, sources = self._group(kind, layer)
                base = self.clean.residual(*abl.read_point(kind, layer, self.w.parallel))
                per_source = len(targets) * self.n
                step = max(1, self.rows // per_source)
                for s in range(0, len(sources), step):
                    chunk = sources[s : s + step]
                    read = base[None] + self.deltas[chunk]
                    effect = self._patched(kind, layer, read).view(len(chunk), len(targets), -1)
                    for a, i in enumerate(chunk):
                        for b, j in enumerate(targets):
                            out[self.edge_index[i, j]] = effect[a, b] - self.clean_metric
        return out

    def _patched(self, kind: str, layer: int, read: Tensor) -> Tensor:
        """Metric of each row when the group's targets read ``read`` (``[k, N, T, d]``), one
        target at a time: ``[k · n_targets · N]``, target-major within a source."""
        fp, clean, k = self.fp, self.clean, read.shape[0]
        flat = read.flatten(0, 1)
        if kind == "final":
            return self._metric(fp.final(flat), k)
        if kind == "mlp":
            change = fp.mlp(layer, flat).view_as(read) - clean.mlp_out[layer]
            x = (clean.resid_pre[layer + 1] + change).flatten(0, 1)
            return self._metric(self._run_from(x, layer + 1), k)
        z, _ = fp.attention(layer, flat)  # [k·N, H, T, dh]
        dz = z.view(k, self.n, *z.shape[1:]) - clean.z[layer]
        # head h's changed write, alone: [k, H, N, T, d]
        write = torch.einsum("knhte,hed->khntd", dz, self.w.layers[layer].w_o)
        if self.w.parallel:
            x = clean.resid_pre[layer + 1] + write
        else:
            mid = clean.resid_mid[layer] + write
            x = mid + fp.mlp(layer, mid.flatten(0, 2)).view_as(mid)
        reps = k * self.w.n_heads
        return self._metric(self._run_from(x.flatten(0, 2), layer + 1), reps)

    # -- EAP-IG -------------------------------------------------------------------------------
    def eap_ig(self, steps: int = DEFAULT_IG_STEPS) -> Tensor:
        """``eap_ig`` of every edge on every prompt, ``[E, N]`` (module docstring).

        The interpolation steps run as the rows of batched passes (as many steps per pass as the
        row budget holds); the gradient of the metric with respect to the final normalized
        residual is taken block by block over the vocabulary (``ForwardPieces.log_prob_grads``),
        so the logits never exist in full, and autograd carries it back through the layers.
        """
        if steps < 1:
            raise ValueError("EAP-IG needs at least one interpolation step")
        readers = [j for j in range(len(self.comps)) if self.comps[j].kind != "input"]
        embed = self.clean.resid_pre[0].clone()  # plain tensors: the sweep's are inference ones
        d_input = self.deltas[0].clone()
        schedule = self._ig_schedule(steps, embed)
        per_pass = max(1, self.rows // self.n)
        grads: list[Tensor] | None = None
        for s in range(0, steps, per_pass):
            part = schedule[s : s + per_pass]
            x = torch.cat([embed + a * d_input for a, _ in part])
            weights = torch.tensor([w for _, w in part], device=x.device)
            got = self._read_grads(x, weights)
            grads = got if grads is None else [g + h for g, h in zip(grads, got, strict=True)]
        assert grads is not None
        with torch.inference_mode():
            pos = {j: r for r, j in enumerate(readers)}
            dst = torch.tensor([pos[j] for _, j in self.pairs], device=self.deltas.device)
            # Δ_i · ḡ_j for every (source, reader) pair at once, then the edges among them
            every = torch.einsum("intd,jntd->ijn", self.deltas, torch.stack(grads))
            return every[self._src, dst]

    def _ig_schedule(self, steps: int, embed: Tensor) -> list[tuple[float, float]]:
        """The interpolation points ``α`` and their weights (summing to about 1).

        Midpoints ``α = (k + ½) / m``, each of weight ``1 / m`` — except under zero ablation,
        where the path ``x_α = (1 − α) x`` shrinks the input towards 0: the first layer norm is
        scale invariant, so the metric stays flat until ``(1 − α) σ(x)`` nears ``√eps`` and then
        changes within a sliver of ``α`` that midpoints miss. There the integral is taken over
        ``u = −ln(1 − α)`` (``dα = (1 − α) du``), midpoints in ``u ∈ [0, U]`` with
        ``U = ln(max σ(x) / √eps) + 6``, past that sliver for every position.
        """
        if self.ablation != "zero":
            return [((k + 0.5) / steps, 1 / steps) for k in range(steps)]
        sigma = float(embed.std(dim=-1, correction=0).max())
        span = max(1.0, math.log(max(sigma, 1e-12) / math.sqrt(self.w.eps)) + 6.0)
        out = []
        for k in range(steps):
            u = (k + 0.5) / steps * span
            out.append((1.0 - math.exp(-u), math.exp(-u) * span / steps))
        return out

    def _read_grads(self, x: Tensor, weights: Tensor) -> list[Tensor]:
        """Gradient of the per-prompt metric with respect to every reader's read (heads each
        their own), for the steps stacked in ``x`` (``[steps · N, T, d]`` input embeddings),
        summed over the steps with ``weights``: ``[N, T, d]`` per reader, in model order."""
        fp, w = self.fp, self.w
        reps = x.shape[0] // self.n
        reads: list[Tensor] = []
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            for layer in range(w.n_layers):
                heads = x[:, None].expand(-1, w.n_heads, -1, -1)
                z, _ = fp.attend(fp.head_qkv(layer, heads))
                mid = x + fp.attn_out(layer, z)
                mlp_read = (x if w.parallel else mid).clone()
                reads += [heads, mlp_read]
                x = mid + fp.mlp(layer, mlp_read)
            final_read = x.clone()
            reads.append(final_read)
            normed = fp.final(final_read)
            got = torch.autograd.grad(normed, reads, grad_outputs=self._metric_grad(normed, reps))
        out = []
        for layer in range(w.n_layers):
            out += [*got[2 * layer].unbind(1), got[2 * layer + 1]]
        w = weights.view(reps, *[1] * got[-1].dim())
        return [(g.view(reps, self.n, *g.shape[1:]) * w).sum(dim=0) for g in [*out, got[-1]]]

    def _metric_grad(self, normed: Tensor, reps: int) -> Tensor:
        """Gradient of the summed per-row task metric with respect to the final normalized
        residual ``normed`` (``[reps · N, T, d]``): each scored position's ``∇ log p`` divided by
        its row's number of scored positions, zero elsewhere."""
        mask = self.mask.repeat(reps, 1)
        tokens = self.tokens.repeat(reps, 1)
        rows, cols = mask.nonzero(as_tuple=True)
        with torch.no_grad():
            grad = self.fp.log_prob_grads(normed[rows, cols].detach(), tokens[rows, cols + 1])
            scale = mask.sum(dim=1).to(grad.dtype)[rows, None]
            out = torch.zeros_like(normed)
            out[rows, cols] = grad / scale
        return out

    # -- circuits -----------------------------------------------------------------------------
    def faithfulness(self, circuits: Tensor, prompt_weights: Tensor | None = None) -> Tensor:
        """Faithfulness of each circuit (``[C, E]`` booleans), ``[C]``: (circuit − none) ÷
        (every edge − none), metrics averaged over prompts with ``prompt_weights`` (``[N]``,
        summing to 1; default uniform). NaN where every edge and none give the same metric."""
        ends = self.end_metrics()
        w = prompt_weights if prompt_weights is not None else torch.full((self.n,), 1 / self.n)
        w = w.to(ends.device, ends.dtype)
        full, none = ends @ w
        metric = self.circuit_metrics(circuits) @ w
        span = full - none
        return (metric - none) / span if span != 0 else torch.full_like(metric, float("nan"))

    def end_metrics(self) -> Tensor:
        """Metrics of the circuit runs of every edge and of none on every prompt, ``[2, N]``
        (computed once)."""
        if self._ends is None:
            ends = torch.ones((2, self.n_edges), dtype=torch.bool)
            ends[1] = False
            self._ends = self.circuit_metrics(ends)
        return self._ends

    def circuit_metrics(self, circuits: Tensor) -> Tensor:
        """Metric of the circuit run of each circuit on every prompt, ``[C, N]``.

        ``circuits``: ``[C, E]`` booleans, edge ``e`` in circuit ``c`` (edges in ``pairs`` order).
        """
        if circuits.ndim != 2 or circuits.shape[1] != self.n_edges:
            raise ValueError(f"circuits must be [C, {self.n_edges}] booleans")
        per = max(1, self.rows // (self.n * self.w.n_heads))
        with torch.inference_mode():
            parts = [
                self._circuit_run(circuits[c : c + per].to(self.tokens.device))
                for c in range(0, circuits.shape[0], per)
            ]
        return torch.cat(parts) if parts else torch.empty((0, self.n))

    def _circuit_run(self, circuits: Tensor) -> Tensor:
        """:meth:`circuit_metrics` of one chunk of circuits."""
        fp, w, clean = self.fp, self.w, self.clean
        n_comp, c = len(self.comps), circuits.shape[0]
        gate = torch.zeros((c, n_comp, n_comp), device=circuits.device)
        gate[:, self._src, self._dst] = circuits.float()
        # change[:, i] = o_i(circuit run) − a_i; every read is its all-ablated value plus the
        # gated changes of its parents
        change = torch.zeros((c, n_comp - 1, *clean.resid_pre[0].shape), device=circuits.device)
        change[:, 0] = -self.deltas[0]
        ablated = clean.resid_pre[0] + self.deltas[0]  # the all-ablated residual, running
        h = w.n_heads
        for layer in range(w.n_layers):
            first = 1 + layer * (h + 1)  # index of a{layer}.h0; m{layer} is first + h
            heads = slice(first, first + h)
            reads = ablated + torch.einsum(
                "csh,csntd->chntd", gate[:, :first, heads], change[:, :first]
            )
            z, _ = fp.attend(fp.head_qkv(layer, reads.transpose(1, 2).flatten(0, 1)))
            out = fp.head_outputs(layer, z).view(c, self.n, -1, h, w.d_model)  # [c, N, T, H, d]
            a_heads = self._a_heads[layer]  # [N, T, H, d]
            change[:, heads] = (out - a_heads).permute(0, 3, 1, 2, 4)
            mid = ablated + a_heads.sum(dim=2) + w.layers[layer].b_o
            mlp_at = first + h
            parents = first if w.parallel else mlp_at
            read = (ablated if w.parallel else mid) + torch.einsum(
                "cs,csntd->cntd", gate[:, :parents, mlp_at], change[:, :parents]
            )
            a_mlp = self._a_mlps[layer]
            change[:, mlp_at] = fp.mlp(layer, read.flatten(0, 1)).view_as(read) - a_mlp
            ablated = mid + a_mlp
        final = ablated + torch.einsum("cs,csntd->cntd", gate[:, :-1, -1], change)
        return self._metric(fp.final(final.flatten(0, 1)), c).view(c, self.n)
