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
batched over sources. Rows are chunked to a memory budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.components import Component, all_components, is_downstream
from circuitatlas.ingest.head_scores import induction_scores, previous_token_scores
from circuitatlas.ingest.model import ForwardPieces, TransformerWeights
from circuitatlas.ingest.tasks import PromptSet, task_metric

ABLATIONS = ("zero", "mean", "resample")
DEFAULT_MEMORY_BUDGET_MB = 2048

EDGE_COLUMNS = [
    "source",
    "target",
    "similarity",
    "weight",
    "std",
    "direct_similarity",
    "direct_weight",
    "direct_std",
]
COMPONENT_COLUMNS = [
    "name",
    "kind",
    "layer",
    "head",
    "effect",
    "prev_token_score",
    "induction_score",
]


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


def replacement(outputs: Tensor, ablation: str) -> Tensor:
    """What an ablated component writes instead of ``outputs`` (``[N, T, d]``, one per prompt)."""
    if ablation == "zero":
        return torch.zeros_like(outputs)
    if ablation == "mean":
        return outputs.mean(dim=0, keepdim=True).expand_as(outputs)
    return outputs[resample_order(outputs.shape[0]).to(outputs.device)]


def row_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity over the last axis, averaged over positions (axis 1)."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1).mean(dim=1)


@dataclass
class CleanRun:
    """Everything the ablated passes start from or compare with, for ``N`` prompts."""

    resid_pre: list[Tensor]  # residual entering each layer, and the final residual: n_layers + 1
    resid_mid: list[Tensor]  # residual after each layer's attention (what a sequential MLP reads)
    head_out: list[Tensor]  # [N, T, H, d] per layer
    mlp_out: list[Tensor]  # [N, T, d] per layer
    patterns: list[Tensor]  # [N, H, T, T] per layer
    final: Tensor  # final normalized residual [N, T, d]

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
    run = CleanRun([x], [], [], [], [], x)
    for layer in range(fp.w.n_layers):
        heads, pattern = fp.heads(layer, x, want_pattern=True)
        attn = heads.sum(dim=2) + fp.attn_bias(layer)
        mid = x + attn
        mlp = fp.mlp(layer, x if fp.w.parallel else mid)
        x = mid + mlp
        run.resid_mid.append(mid)
        run.head_out.append(heads)
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


def read_groups(n_layers: int, parallel: bool) -> list[tuple[str, int]]:
    """The reads of the residual stream: ``("attn", L)``, ``("mlp", L)`` and ``("final", n)``."""
    groups = []
    for layer in range(n_layers):
        groups += [("attn", layer), ("mlp", layer)]
    return [*groups, ("final", n_layers)]


def estimate_row_bytes(w: TransformerWeights, seq_len: int, n_scored: int) -> int:
    """Rough peak bytes of one ablated row (one prompt × one source) in a batched pass."""
    t, h, d = seq_len, w.n_heads, w.d_model
    d_mlp = w.layers[0].w_in.shape[1] if w.layers else 0
    floats = (
        t * d * 8  # residuals, norms, deltas, gathered clean values
        + 4 * t * h * w.d_head  # q, k, v, z
        + 4 * h * t * t  # scores, mask, softmax
        + 3 * t * h * d  # per-head outputs, clean values, cosine temporaries
        + 3 * t * d_mlp  # MLP hidden
        + 2 * n_scored * w.d_vocab  # logits and log-softmax at the scored positions
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


def _chunks(n_sources: int, n_prompts: int, rows_per_chunk: int, device: torch.device) -> Iterator:
    total = n_sources * n_prompts
    for start in range(0, total, rows_per_chunk):
        r = torch.arange(start, min(total, start + rows_per_chunk), device=device)
        yield r // n_prompts, r % n_prompts


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
        n_scored = int(self.mask.sum(dim=1).max().item())
        row_bytes = estimate_row_bytes(weights, seq_len, n_scored)
        self.rows_per_chunk = int(memory_budget_mb * 2**20 // row_bytes)
        if self.rows_per_chunk < 1:
            raise CircuitAtlasError(
                f"memory budget {memory_budget_mb:g} MiB is too small for one ablated row "
                f"(needs about {row_bytes / 2**20:.2f} MiB); raise --memory-budget"
            )

    @torch.no_grad()
    def run(self) -> CheckpointSweep:
        """Sweep this checkpoint."""
        clean = clean_run(self.fp, self.tokens)
        acc = _Accumulator(self.comps, self.n, self.dev)
        clean_lp = self.fp.target_log_probs(clean.final, self.tokens, self.mask)
        clean_metric = task_metric(clean_lp, self.mask)
        sources = [c for c in self.comps if c.kind != "logits"]
        self._total_effects(clean, sources, acc, clean_metric)
        self._direct_effects(clean, sources, acc)
        return self._frames(clean, acc, clean_metric)

    # -- ablated rows -------------------------------------------------------------------------
    def _delta(
        self, clean: CleanRun, sources: list[Component], src: Tensor, prompt: Tensor
    ) -> Tensor:
        """What ablating each row's source adds to the residual stream, ``[R, T, d]``."""
        out = torch.empty((src.numel(), self.tokens.shape[1], self.w.d_model), device=self.dev)
        for k in torch.unique(src).tolist():
            sel = src == k
            o = clean.output(sources[k])
            out[sel] = (replacement(o, self.ablation) - o)[prompt[sel]]
        return out

    # -- total effects ------------------------------------------------------------------------
    def _total_effects(
        self, clean: CleanRun, sources: list[Component], acc: _Accumulator, clean_metric: Tensor
    ) -> None:
        groups: dict[tuple[int, bool], list[Component]] = {}
        for comp in sources:
            groups.setdefault(start_point(comp, self.w.parallel), []).append(comp)
        for (layer, at_mlp), group in groups.items():
            ids = torch.tensor([acc.index[c.name] for c in group], device=self.dev)
            for src, prompt in _chunks(len(group), self.n, self.rows_per_chunk, self.dev):
                delta = self._delta(clean, group, src, prompt)
                base = (clean.resid_mid[layer] if at_mlp else clean.resid_pre[layer])[prompt]
                final = self._forward_from(
                    base + delta, layer, at_mlp, clean, prompt, ids[src], acc
                )
                lp = self.fp.target_log_probs(final, self.tokens[prompt], self.mask[prompt])
                metric = task_metric(lp, self.mask[prompt])
                acc.metric[ids[src], prompt] = metric - clean_metric[prompt]

    def _forward_from(
        self,
        x: Tensor,
        layer: int,
        at_mlp: bool,
        clean: CleanRun,
        prompt: Tensor,
        src_ids: Tensor,
        acc: _Accumulator,
    ) -> Tensor:
        """Run ablated rows from a start point to the final norm, recording total effects."""
        idx = acc.index
        n_heads = self.w.n_heads
        if at_mlp:
            mlp = self.fp.mlp(layer, x)
            acc.total[src_ids, idx[f"m{layer}"], prompt] = row_similarity(
                mlp, clean.mlp_out[layer][prompt]
            )
            x = x + mlp
            layer += 1
        for lyr in range(layer, self.w.n_layers):
            heads, _ = self.fp.heads(lyr, x)
            sims = row_similarity(heads, clean.head_out[lyr][prompt])  # [R, H]
            first = idx[f"a{lyr}.h0"]
            acc.total[
                src_ids[:, None],
                torch.arange(first, first + n_heads, device=self.dev),
                prompt[:, None],
            ] = sims
            mid = x + heads.sum(dim=2) + self.fp.attn_bias(lyr)
            mlp = self.fp.mlp(lyr, x if self.w.parallel else mid)
            acc.total[src_ids, idx[f"m{lyr}"], prompt] = row_similarity(
                mlp, clean.mlp_out[lyr][prompt]
            )
            x = mid + mlp
        final = self.fp.final(x)
        acc.total[src_ids, idx["logits"], prompt] = row_similarity(final, clean.final[prompt])
        return final

    # -- direct effects -----------------------------------------------------------------------
    def _direct_effects(self, clean: CleanRun, sources: list[Component], acc: _Accumulator) -> None:
        idx = acc.index
        n_heads = self.w.n_heads
        for kind, layer in read_groups(self.w.n_layers, self.w.parallel):
            if kind == "attn":
                reader = self.comps[idx[f"a{layer}.h0"]]
                base = clean.resid_pre[layer]
            elif kind == "mlp":
                reader = self.comps[idx[f"m{layer}"]]
                base = clean.resid_pre[layer] if self.w.parallel else clean.resid_mid[layer]
            else:
                reader = self.comps[idx["logits"]]
                base = clean.resid_pre[layer]
            group = [c for c in sources if is_downstream(c, reader, self.w.parallel)]
            ids = torch.tensor([idx[c.name] for c in group], device=self.dev)
            for src, prompt in _chunks(len(group), self.n, self.rows_per_chunk, self.dev):
                x = base[prompt] + self._delta(clean, group, src, prompt)
                rows = ids[src]
                if kind == "attn":
                    heads, _ = self.fp.heads(layer, x)
                    sims = row_similarity(heads, clean.head_out[layer][prompt])
                    first = idx[reader.name]
                    cols = torch.arange(first, first + n_heads, device=self.dev)
                    acc.direct[rows[:, None], cols, prompt[:, None]] = sims
                elif kind == "mlp":
                    sims = row_similarity(self.fp.mlp(layer, x), clean.mlp_out[layer][prompt])
                    acc.direct[rows, idx[reader.name], prompt] = sims
                else:
                    sims = row_similarity(self.fp.final(x), clean.final[prompt])
                    acc.direct[rows, idx[reader.name], prompt] = sims

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
        pairs = [
            (i, j)
            for i, a in enumerate(self.comps)
            for j, b in enumerate(self.comps)
            if is_downstream(a, b, self.w.parallel)
        ]
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
        full = self.fp.logits(clean.final[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            full.reshape(-1, full.shape[-1]), self.tokens[:, 1:].reshape(-1)
        )
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
