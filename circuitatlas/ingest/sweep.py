"""The batched ablation sweep of one checkpoint: component outputs, edges and effects.

For every component *i* (``input``, each head, each MLP) and every component *j* downstream of it
(each later head or MLP, the same layer's MLP in sequential blocks, and ``logits``):

* **total effect** — *i*'s output is ablated in the whole forward pass; ``similarity`` is the mean
  over prompts and positions of ``cos(O_j clean, O_j ablated)``, ``weight = 1 - similarity``,
  ``std`` the standard deviation over prompts (ddof 0) of the per-prompt mean over positions;
* **direct effect** — only *j*'s own read of the residual stream loses *i*'s write; every other
  route from *i* to *j* stays clean (``direct_similarity``, ``direct_weight``, ``direct_std``).

``effect`` of a component is the change of the task metric when it is ablated (ablated − clean).
A component's output is what it writes into the residual stream: ``input`` the embedding (with
learned positions), a head ``z_h @ W_O[h]`` without bias, an MLP its output; the ``logits`` sink is
the final normalized residual stream. Ablations replace the output by zero (``zero``), by its mean
over the prompt set at each position (``mean``) or by its value on the next prompt of the set,
cyclically (``resample``).

Fast path: an ablated pass starts from the clean residual stream where the ablated component
writes (nothing upstream is recomputed), many ablated rows share one batched pass, and direct
effects recompute only the sub-module that reads (one layer's attention, one MLP, the final norm),
batched over sources. The first reads of a total pass are direct reads too, so they are not
recomputed; a head's write has rank ``d_head``, so its direct reads go through ``d_head``-wide
products (see ``ForwardPieces.centered_read``); heads' outputs are compared through
``W_O W_Oᵀ`` without materializing them; the metric's log-sum-exp over the vocabulary runs block
by block. Rows are chunked to a memory budget (and to a cache-friendly size below it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.components import (
    Component,
    all_components,
    downstream_pairs,
    is_downstream,
)
from circuitatlas.ingest.contract import (
    ABLATIONS,
    COMPONENT_COLUMNS,
    DEFAULT_MEMORY_BUDGET_MB,
    EDGE_COLUMNS,
)
from circuitatlas.ingest.head_scores import induction_scores, previous_token_scores
from circuitatlas.ingest.model import VOCAB_BLOCK, ForwardPieces, TransformerWeights
from circuitatlas.ingest.tasks import PromptSet, task_metric


@dataclass
class CheckpointSweep:
    """The sweep of one checkpoint.

    ``components``: ``COMPONENT_COLUMNS``; ``edges``: ``EDGE_COLUMNS``, one row per downstream pair;
    ``loss``: clean next-token cross-entropy over all positions; ``metric``: clean task metric.
    """

    components: pd.DataFrame
    edges: pd.DataFrame
    loss: float
    metric: float


def check_ablation(ablation: str, n_prompts: int) -> None:
    """Raise a clear error for an unknown ablation or a resample ablation of one prompt."""
    if ablation not in ABLATIONS:
        raise CircuitAtlasError(
            f"unknown ablation {ablation!r}; choose one of {', '.join(ABLATIONS)}"
        )
    if ablation == "resample" and n_prompts < 2:
        raise CircuitAtlasError(
            "--ablation resample takes each prompt's output from another prompt; "
            "give at least 2 prompts"
        )


def resample_order(n_prompts: int) -> Tensor:
    """Prompt whose output replaces prompt ``p``'s in a resample ablation: ``(p + 1) % n``."""
    return torch.roll(torch.arange(n_prompts), -1)


def replacement(outputs: Tensor, ablation: str, prompts: slice = slice(None)) -> Tensor:
    """What an ablated component writes instead of ``outputs[prompts]``.

    ``outputs`` holds the component's output on every prompt (``[N, ...]``): the mean and the
    resample ablation read other prompts than the ones replaced.
    """
    own = outputs[prompts]
    if ablation == "zero":
        return torch.zeros_like(own)
    if ablation == "mean":
        return outputs.mean(dim=0, keepdim=True).expand_as(own)
    order = resample_order(outputs.shape[0]).to(outputs.device)
    return outputs[order[prompts]]


def row_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of ``[..., T, d]`` outputs over ``d``, averaged over positions ``T``."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1).mean(dim=-1)


def ablation_delta(outputs: Tensor, ablation: str, prompts: slice) -> Tensor:
    """What the ablation adds to the residual stream on ``prompts``: replacement − output."""
    return replacement(outputs, ablation, prompts) - outputs[prompts]


def _cos_mean(dot: Tensor, sq: Tensor, ref_sq: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean over the last axis of ``dot / (|a| |b|)``, norms clamped like ``cosine_similarity``."""
    return (dot / (sq.sqrt().clamp_min(eps) * ref_sq.sqrt().clamp_min(eps))).mean(dim=-1)


@dataclass
class CleanRun:
    """Everything the ablated passes start from or compare with, for ``N`` prompts."""

    resid_pre: list[Tensor]  # residual entering each layer, and the final residual: n_layers + 1
    resid_mid: list[Tensor]  # residual after each layer's attention (what a sequential MLP reads)
    z: list[Tensor]  # [N, H, T, dh] per layer: what each head mixes, before W_O
    head_out: list[Tensor]  # [N, T, H, d] per layer
    head_sq: list[Tensor]  # [N, H, T] per layer: squared norm of each head's output
    mlp_out: list[Tensor]  # [N, T, d] per layer
    patterns: list[Tensor]  # [N, H, T, T] per layer
    final: Tensor  # final normalized residual [N, T, d]

    def residual(self, layer: int, at_mlp: bool) -> Tensor:
        """The clean residual at a :func:`start_point` / :func:`read_point`."""
        return (self.resid_mid if at_mlp else self.resid_pre)[layer]

    def output(self, comp: Component) -> Tensor:
        """Output ``[N, T, d]`` of a component."""
        if comp.kind == "input":
            return self.resid_pre[0]
        if comp.kind == "attn_head":
            return self.head_out[comp.layer][:, :, comp.head]
        if comp.kind == "mlp":
            return self.mlp_out[comp.layer]
        return self.final


def clean_run(fp: ForwardPieces, tokens: Tensor) -> CleanRun:
    """The clean forward pass, recording every component's output."""
    x = fp.embed(tokens)
    run = CleanRun([x], [], [], [], [], [], [], x)
    for layer in range(fp.w.n_layers):
        z, pattern = fp.attention(layer, x, want_pattern=True)
        mid = x + fp.attn_out(layer, z)
        mlp = fp.mlp(layer, x if fp.w.parallel else mid)
        x = mid + mlp
        run.resid_mid.append(mid)
        run.z.append(z)
        run.head_out.append(fp.head_outputs(layer, z))
        run.head_sq.append(fp.head_dots(layer, z, z)[1])
        run.mlp_out.append(mlp)
        run.patterns.append(pattern)
        run.resid_pre.append(x)
    run.final = fp.final(x)
    return run


def start_point(comp: Component, parallel: bool) -> tuple[int, bool]:
    """Where the ablated pass of ``comp`` starts: (layer, starts at that layer's MLP).

    ``(L, False)``: the residual entering layer ``L`` changes (``L == n_layers``: the final one);
    ``(L, True)``: the residual a sequential layer-``L`` MLP reads changes.
    """
    if comp.kind == "input":
        return 0, False
    if comp.kind == "attn_head" and not parallel:
        return comp.layer, True
    return comp.layer + 1, False


def read_groups(n_layers: int) -> list[tuple[str, int]]:
    """The reads of the residual stream: ``("attn", L)``, ``("mlp", L)`` and ``("final", n)``."""
    groups = []
    for layer in range(n_layers):
        groups += [("attn", layer), ("mlp", layer)]
    return [*groups, ("final", n_layers)]


def read_point(kind: str, layer: int, parallel: bool) -> tuple[int, bool]:
    """The residual a read group reads, in :func:`start_point`'s terms."""
    return layer, kind == "mlp" and not parallel


# Below the memory budget, rows per chunk are capped at about this many MiB of temporaries:
# bigger chunks no longer speed up the matrix products, they only take memory (measured on two
# CPU cores with a 77M model: 24 → 128 MiB gained 18%, 128 → 256 MiB nothing).
CHUNK_TARGET_MB = 128


def estimate_row_bytes(w: TransformerWeights, seq_len: int, n_scored: int) -> int:
    """Rough peak bytes of one ablated row (one prompt × one source) in a batched pass."""
    t, h, d = seq_len, w.n_heads, w.d_model
    d_mlp = w.layers[0].w_in.shape[1] if w.layers else 0
    floats = (
        t * d * 10  # residuals, norms, deltas, attention output, gathered clean values
        + 6 * t * d  # q, k, v (and their rotated copies), z, z @ Gram
        + 2 * h * t * t  # attention scores and softmax
        + 2 * t * d_mlp  # MLP hidden
        + 2 * n_scored * min(w.d_vocab, VOCAB_BLOCK)  # a logits block at the scored positions
    )
    return 4 * floats


class _Accumulator:
    """Per-prompt similarities of every (source, target) pair and per-prompt metrics."""

    def __init__(self, comps: list[Component], n_prompts: int, device: torch.device) -> None:
        self.index = {c.name: i for i, c in enumerate(comps)}
        shape = (len(comps), len(comps), n_prompts)
        self.total = torch.full(shape, float("nan"), device=device)
        self.direct = torch.full(shape, float("nan"), device=device)
        self.metric = torch.full((len(comps), n_prompts), float("nan"), device=device)


@dataclass
class _Block:
    """One batched chunk of ablated rows: ``k`` sources × the prompts ``prompts`` (``p`` of them).

    Rows are ordered source-major: row ``s * p + q`` ablates ``sources[s]`` on prompt ``q``.
    """

    sources: Tensor  # component indices, [k]
    prompts: slice

    @property
    def k(self) -> int:
        return self.sources.numel()

    def put(self, into: Tensor, target: int, sims: Tensor) -> None:
        """Record ``sims`` (``[k, p]``) as ``into[source, target, prompt]``."""
        into[:, target][self.sources, self.prompts] = sims

    def put_heads(self, into: Tensor, first: int, sims: Tensor) -> None:
        """Record ``sims`` (``[k, p, H]``) for the ``H`` heads numbered from ``first``."""
        h = sims.shape[-1]
        into[:, first : first + h][self.sources, :, self.prompts] = sims.transpose(1, 2)


class Sweeper:
    """Runs the sweep of one checkpoint for one prompt set."""

    def __init__(
        self,
        weights: TransformerWeights,
        prompts: PromptSet,
        ablation: str = "zero",
        memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    ) -> None:
        check_ablation(ablation, prompts.tokens.shape[0])
        self.w = weights
        self.dev = weights.device
        self.tokens = prompts.tokens.to(self.dev)
        self.mask = prompts.metric_mask.to(self.dev)
        self.ablation = ablation
        self.n, seq_len = self.tokens.shape
        self.fp = ForwardPieces(weights, seq_len)
        self.comps = all_components(weights.n_layers, weights.n_heads)
        self.index = {c.name: i for i, c in enumerate(self.comps)}
        n_scored = int(self.mask.sum(dim=1).max().item())
        row_bytes = estimate_row_bytes(weights, seq_len, n_scored)
        budget_rows = int(memory_budget_mb * 2**20 // row_bytes)
        if budget_rows < 1:
            raise CircuitAtlasError(
                f"memory budget {memory_budget_mb:g} MiB is too small for one ablated row "
                f"(needs about {row_bytes / 2**20:.2f} MiB); raise --memory-budget"
            )
        cache_rows = max(1, CHUNK_TARGET_MB * 2**20 // row_bytes)
        self.rows_per_chunk = min(budget_rows, cache_rows)
        self.clean: CleanRun | None = None  # the last run's clean pass

    def run(self) -> CheckpointSweep:
        """Sweep this checkpoint."""
        with torch.inference_mode():
            clean = clean_run(self.fp, self.tokens)
            acc = _Accumulator(self.comps, self.n, self.dev)
            clean_lp = self.fp.target_log_probs(clean.final, self.tokens, self.mask)
            clean_metric = task_metric(clean_lp, self.mask)
            self._total_effects(clean, acc, clean_metric)
            self._direct_effects(clean, acc)
            self.clean = clean  # for the edge scores (circuitatlas.ingest.edge_scores)
            return self._frames(clean, acc, clean_metric)

    # -- ablated rows -------------------------------------------------------------------------
    def _blocks(self, sources: list[int]) -> Iterator[_Block]:
        """Chunks of at most ``rows_per_chunk`` rows: sources × prompts, or part of a source."""
        ids = torch.tensor(sources, dtype=torch.long, device=self.dev)
        if self.rows_per_chunk >= self.n:
            step = self.rows_per_chunk // self.n
            for s in range(0, len(sources), step):
                yield _Block(ids[s : s + step], slice(0, self.n))
        else:
            for s in range(len(sources)):
                for p in range(0, self.n, self.rows_per_chunk):
                    yield _Block(ids[s : s + 1], slice(p, min(self.n, p + self.rows_per_chunk)))

    def _ablated_read(self, clean: CleanRun, base: Tensor, block: _Block) -> Tensor:
        """The residual ``base`` plus each row's ablation delta, ``[k · p, T, d]``."""
        deltas = [
            ablation_delta(clean.output(self.comps[i]), self.ablation, block.prompts)
            for i in block.sources.tolist()
        ]
        return (base[block.prompts] + torch.stack(deltas)).flatten(0, 1)

    def _head_sims(self, clean: CleanRun, layer: int, z: Tensor, block: _Block) -> Tensor:
        """Similarity of every head's output to its clean output, ``[k, p, H]``."""
        ps = block.prompts
        z = z.view(block.k, -1, *z.shape[1:])
        dot, sq = self.fp.head_dots(layer, z, clean.z[layer][ps])
        return _cos_mean(dot, sq, clean.head_sq[layer][ps])

    @staticmethod
    def _sims(out: Tensor, clean_out: Tensor, block: _Block) -> Tensor:
        """Similarity of each row's ``[T, d]`` output to its prompt's clean one, ``[k, p]``."""
        return row_similarity(out.view(block.k, -1, *out.shape[1:]), clean_out[block.prompts])

    # -- total effects ------------------------------------------------------------------------
    def _total_effects(self, clean: CleanRun, acc: _Accumulator, clean_metric: Tensor) -> None:
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, comp in enumerate(self.comps[:-1]):  # every component but the logits sink
            groups.setdefault(start_point(comp, self.w.parallel), []).append(i)
        for (layer, at_mlp), sources in groups.items():
            base = clean.residual(layer, at_mlp)
            for block in self._blocks(sources):
                x = self._ablated_read(clean, base, block)
                final = self._forward_from(x, layer, at_mlp, clean, block, acc)
                tokens = self.tokens[block.prompts].repeat(block.k, 1)
                mask = self.mask[block.prompts].repeat(block.k, 1)
                metric = task_metric(self.fp.target_log_probs(final, tokens, mask), mask)
                acc.metric[block.sources, block.prompts] = (
                    metric.view(block.k, -1) - clean_metric[block.prompts]
                )

    def _forward_from(
        self, x: Tensor, layer: int, at_mlp: bool, clean: CleanRun, block: _Block, acc: _Accumulator
    ) -> Tensor:
        """Run ablated rows from a start point to the final norm, recording total effects.

        The first reads of the pass see the clean stream plus the ablation delta and nothing
        else, which is the definition of a direct effect: they are recorded as direct effects too
        (and :meth:`_direct_effects` leaves them out).
        """
        idx = self.index
        first = True
        if at_mlp:
            mlp = self.fp.mlp(layer, x)
            sims = self._sims(mlp, clean.mlp_out[layer], block)
            block.put(acc.total, idx[f"m{layer}"], sims)
            block.put(acc.direct, idx[f"m{layer}"], sims)
            x = x + mlp
            layer += 1
            first = False
        for lyr in range(layer, self.w.n_layers):
            z, _ = self.fp.attention(lyr, x)
            sims = self._head_sims(clean, lyr, z, block)
            block.put_heads(acc.total, idx[f"a{lyr}.h0"], sims)
            if first:
                block.put_heads(acc.direct, idx[f"a{lyr}.h0"], sims)
            mid = x + self.fp.attn_out(lyr, z)
            mlp = self.fp.mlp(lyr, x if self.w.parallel else mid)
            sims = self._sims(mlp, clean.mlp_out[lyr], block)
            block.put(acc.total, idx[f"m{lyr}"], sims)
            if first and self.w.parallel:
                block.put(acc.direct, idx[f"m{lyr}"], sims)
            x = mid + mlp
            first = False
        final = self.fp.final(x)
        sims = self._sims(final, clean.final, block)
        block.put(acc.total, idx["logits"], sims)
        if first:
            block.put(acc.direct, idx["logits"], sims)
        return final

    # -- direct effects -----------------------------------------------------------------------
    def _direct_effects(self, clean: CleanRun, acc: _Accumulator) -> None:
        idx = self.index
        parallel = self.w.parallel
        for kind, layer in read_groups(self.w.n_layers):
            target = idx[{"attn": f"a{layer}.h0", "mlp": f"m{layer}", "final": "logits"}[kind]]
            point = read_point(kind, layer, parallel)
            base = clean.residual(*point)
            sources = [  # a source starting where the reader reads was measured by its total pass
                i
                for i, c in enumerate(self.comps[:-1])
                if is_downstream(c, self.comps[target], parallel)
                and start_point(c, parallel) != point
            ]
            heads = [i for i in sources if kind != "final" and self.comps[i].kind == "attn_head"]
            if heads:
                self._direct_head_reads(clean, acc, kind, layer, target, base, heads)
            for block in self._blocks([i for i in sources if i not in heads]):
                x = self._ablated_read(clean, base, block)
                if kind == "attn":
                    z, _ = self.fp.attention(layer, x)
                    block.put_heads(acc.direct, target, self._head_sims(clean, layer, z, block))
                elif kind == "mlp":
                    sims = self._sims(self.fp.mlp(layer, x), clean.mlp_out[layer], block)
                    block.put(acc.direct, target, sims)
                else:
                    sims = self._sims(self.fp.final(x), clean.final, block)
                    block.put(acc.direct, target, sims)

    def _direct_head_reads(
        self,
        clean: CleanRun,
        acc: _Accumulator,
        kind: str,
        layer: int,
        target: int,
        base: Tensor,
        sources: list[int],
    ) -> None:
        """Direct effects of heads on a layer's attention or MLP, through their rank-dh writes.

        The read's projection is ``rstd · (centered clean read + Δz_h @ A_h) + constant`` (see
        ``ForwardPieces.centered_read``): only the norm statistics use the full residual.
        """
        clean_read, const = self.fp.centered_read(layer, kind, base)
        for block in self._blocks(sources):
            comps = [self.comps[i] for i in block.sources.tolist()]
            ps = block.prompts
            dz = torch.stack(  # [k, p, T, dh]
                [ablation_delta(clean.z[c.layer][:, c.head], self.ablation, ps) for c in comps]
            )
            a = self.fp.head_read_weights([(c.layer, c.head) for c in comps], layer, kind)
            k, p, t, dh = dz.shape
            read = torch.baddbmm(clean_read[ps].view(1, p * t, -1), dz.view(k, p * t, dh), a)
            rstd = self.fp.rstd(self._ablated_read(clean, base, block)).view(k, p * t, 1)
            read = torch.addcmul(const, read, rstd).view(k * p, t, -1)
            if kind == "attn":
                z, _ = self.fp.attend(read)
                block.put_heads(acc.direct, target, self._head_sims(clean, layer, z, block))
            else:
                sims = self._sims(self.fp.mlp_from_pre(layer, read), clean.mlp_out[layer], block)
                block.put(acc.direct, target, sims)

    # -- frames -------------------------------------------------------------------------------
    def _frames(self, clean: CleanRun, acc: _Accumulator, clean_metric: Tensor) -> CheckpointSweep:
        prev = torch.stack([previous_token_scores(p) for p in clean.patterns])  # [L, H]
        ind = torch.stack([induction_scores(p, self.tokens) for p in clean.patterns])
        effect = acc.metric.mean(dim=1).cpu().numpy()
        rows = []
        for i, c in enumerate(self.comps):
            is_head = c.kind == "attn_head"
            rows.append(
                {
                    "name": c.name,
                    "kind": c.kind,
                    "layer": c.layer,
                    "head": c.head,
                    "effect": float(effect[i]) if c.kind != "logits" else float("nan"),
                    "prev_token_score": float(prev[c.layer, c.head]) if is_head else float("nan"),
                    "induction_score": float(ind[c.layer, c.head]) if is_head else float("nan"),
                }
            )
        components = pd.DataFrame(rows, columns=COMPONENT_COLUMNS).astype({"head": "Int64"})
        pairs = downstream_pairs(self.comps, self.w.parallel)
        src = torch.tensor([p[0] for p in pairs], dtype=torch.long)
        dst = torch.tensor([p[1] for p in pairs], dtype=torch.long)
        total = acc.total.cpu()[src, dst]  # [E, N]
        direct = acc.direct.cpu()[src, dst]
        if torch.isnan(total).any() or torch.isnan(direct).any():
            raise RuntimeError("sweep left a downstream pair unmeasured")  # a bug, not bad input
        edges = pd.DataFrame(
            {
                "source": [self.comps[i].name for i, _ in pairs],
                "target": [self.comps[j].name for _, j in pairs],
                "similarity": total.mean(dim=1).double().numpy(),
                "std": total.std(dim=1, correction=0).double().numpy(),
                "direct_similarity": direct.mean(dim=1).double().numpy(),
                "direct_std": direct.std(dim=1, correction=0).double().numpy(),
            }
        )
        edges["weight"] = 1.0 - edges["similarity"]
        edges["direct_weight"] = 1.0 - edges["direct_similarity"]
        if "patch_effect" not in edges:
            edges["patch_effect"] = float("nan")
        if "eap_ig" not in edges:
            edges["eap_ig"] = float("nan")
        log_probs = self.fp.log_probs(
            clean.final[:, :-1].reshape(-1, self.w.d_model), self.tokens[:, 1:].reshape(-1)
        )
        loss = -log_probs.mean()
        return CheckpointSweep(
            components=components,
            edges=edges[EDGE_COLUMNS],
            loss=float(loss),
            metric=float(np.float64(clean_metric.mean().item())),
        )


def sweep_checkpoint(
    weights: TransformerWeights,
    prompts: PromptSet,
    ablation: str = "zero",
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
) -> CheckpointSweep:
    """Sweep one checkpoint's weights on a prompt set (see the module docstring)."""
    return Sweeper(weights, prompts, ablation, memory_budget_mb).run()
