"""The batched ablation sweep of one checkpoint: component outputs, edges and effects.

For every component *i* (``input``, each head, each MLP) and every component *j* downstream of it
(each later head or MLP, the same layer's MLP in sequential blocks, and ``logits``):

* **total effect** — *i*'s output is ablated in the whole forward pass; ``similarity`` is the mean
  over prompts and positions of ``cos(O_j clean, O_j ablated)``, ``weight = 1 - similarity``,
  ``std`` the standard deviation over prompts (ddof 0) of the per-prompt mean over positions;
* **direct effect** — only *j*'s own read of the residual stream loses *i*'s write; every other
  route from *i* to *j* stays clean (``direct_similarity``, ``direct_weight``, ``direct_std``).

``O_j`` follows the output definition (:mod:`circuitatlas.ingest.outputs`): ``write`` (the
default), what *j* writes into the residual stream — ``input`` the embedding (with learned
positions), a head ``z_h @ W_O[h]`` without bias, an MLP its output, the ``logits`` sink the final
normalized residual stream; or ``resid``, the residual stream right after *j* writes. Both
effects are measured on the chosen definition. ``effect`` of a component is the change of the task
metric when it is ablated (ablated − clean), whatever the definition. Ablations
(:mod:`circuitatlas.ingest.ablation`) replace *i*'s write by zero, its mean over the prompt set at
each position, or its value on the next prompt, cyclically.

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
from functools import partial

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.ablation import (
    CleanRun,
    ablation_delta,
    check_ablation,
    clean_run,
    read_groups,
    read_point,
    replacement,
    start_point,
)
from circuitatlas.ingest.components import all_components, downstream_pairs, is_downstream
from circuitatlas.ingest.contract import (
    ABLATIONS,
    COMPONENT_COLUMNS,
    DEFAULT_MEMORY_BUDGET_MB,
    DEFAULT_OUTPUT,
    EDGE_COLUMNS,
)
from circuitatlas.ingest.head_scores import induction_scores, previous_token_scores
from circuitatlas.ingest.model import VOCAB_BLOCK, ForwardPieces, TransformerWeights
from circuitatlas.ingest.outputs import (
    RowBlock,
    WriteMeasure,
    check_output,
    output_measure,
    row_similarity,
)
from circuitatlas.ingest.tasks import PromptSet, task_metric

# The names other modules import from here (the sweep's public surface, wherever defined).
__all__ = [
    "ABLATIONS",
    "COMPONENT_COLUMNS",
    "EDGE_COLUMNS",
    "CheckpointSweep",
    "CleanRun",
    "Sweeper",
    "ablation_delta",
    "check_ablation",
    "clean_run",
    "read_groups",
    "read_point",
    "replacement",
    "row_similarity",
    "start_point",
    "sweep_checkpoint",
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


# Below the memory budget, rows per chunk are capped at about this many MiB of temporaries:
# bigger chunks no longer speed up the matrix products, they only take memory (measured on two
# CPU cores with a 77M model: 24 → 128 MiB gained 18%, 128 → 256 MiB nothing).
CHUNK_TARGET_MB = 128


def estimate_row_bytes(
    w: TransformerWeights, seq_len: int, n_scored: int, output: str = DEFAULT_OUTPUT
) -> int:
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
    if output == "resid":
        floats += 3 * t * d  # the changed stream, Δz and its products with the clean stream
    return 4 * floats


class _Accumulator:
    """Per-prompt similarities of every (source, target) pair and per-prompt metrics."""

    def __init__(self, n_comps: int, n_prompts: int, device: torch.device) -> None:
        shape = (n_comps, n_comps, n_prompts)
        self.total = torch.full(shape, float("nan"), device=device)
        self.direct = torch.full(shape, float("nan"), device=device)
        self.metric = torch.full((n_comps, n_prompts), float("nan"), device=device)


class Sweeper:
    """Runs the sweep of one checkpoint for one prompt set.

    ``output``: the output definition (one of ``OUTPUTS``).
    """

    def __init__(
        self,
        weights: TransformerWeights,
        prompts: PromptSet,
        ablation: str = "zero",
        memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
        output: str = DEFAULT_OUTPUT,
    ) -> None:
        check_ablation(ablation, prompts.tokens.shape[0])
        check_output(output)
        self.output = output
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
        row_bytes = estimate_row_bytes(weights, seq_len, n_scored, self.output)
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
            measure = output_measure(self.output, self.fp, clean)
            acc = _Accumulator(len(self.comps), self.n, self.dev)
            clean_lp = self.fp.target_log_probs(clean.final, self.tokens, self.mask)
            clean_metric = task_metric(clean_lp, self.mask)
            self._total_effects(measure, acc, clean_metric)
            self._direct_effects(measure, acc)
            self.clean = clean  # for the edge scores (circuitatlas.ingest.edge_scores)
            return self._frames(clean, acc, clean_metric)

    # -- ablated rows -------------------------------------------------------------------------
    def _blocks(self, sources: list[int]) -> Iterator[RowBlock]:
        """Chunks of at most ``rows_per_chunk`` rows: sources × prompts, or part of a source."""
        ids = torch.tensor(sources, dtype=torch.long, device=self.dev)
        if self.rows_per_chunk >= self.n:
            step = self.rows_per_chunk // self.n
            for s in range(0, len(sources), step):
                yield RowBlock(ids[s : s + step], slice(0, self.n))
        else:
            for s in range(len(sources)):
                for p in range(0, self.n, self.rows_per_chunk):
                    yield RowBlock(ids[s : s + 1], slice(p, min(self.n, p + self.rows_per_chunk)))

    def _ablated_read(self, clean: CleanRun, base: Tensor, block: RowBlock) -> Tensor:
        """The residual ``base`` plus each row's ablation delta, ``[k · p, T, d]``."""
        deltas = [
            ablation_delta(clean.output(self.comps[i]), self.ablation, block.prompts)
            for i in block.sources.tolist()
        ]
        return (base[block.prompts] + torch.stack(deltas)).flatten(0, 1)

    # -- total effects ------------------------------------------------------------------------
    def _total_effects(
        self, measure: WriteMeasure, acc: _Accumulator, clean_metric: Tensor
    ) -> None:
        clean = measure.clean
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, comp in enumerate(self.comps[:-1]):  # every component but the logits sink
            groups.setdefault(start_point(comp, self.w.parallel), []).append(i)
        for (layer, at_mlp), sources in groups.items():
            base = clean.residual(layer, at_mlp)
            for block in self._blocks(sources):
                x = self._ablated_read(clean, base, block)
                final = self._forward_from(x, layer, at_mlp, measure, block, acc)
                tokens = self.tokens[block.prompts].repeat(block.k, 1)
                mask = self.mask[block.prompts].repeat(block.k, 1)
                metric = task_metric(self.fp.target_log_probs(final, tokens, mask), mask)
                acc.metric[block.sources, block.prompts] = (
                    metric.view(block.k, -1) - clean_metric[block.prompts]
                )

    def _forward_from(
        self,
        x: Tensor,
        layer: int,
        at_mlp: bool,
        measure: WriteMeasure,
        block: RowBlock,
        acc: _Accumulator,
    ) -> Tensor:
        """Run ablated rows from a start point to the final norm, recording total effects.

        The first reads of the pass see the clean stream plus the ablation delta and nothing
        else, which is the definition of a direct effect: they are recorded as direct effects too
        (and :meth:`_direct_effects` leaves them out).
        """
        idx, parallel = self.index, self.w.parallel
        first = True
        if at_mlp:
            mlp = self.fp.mlp(layer, x)
            x = x + mlp
            total, direct = measure.first_read(partial(measure.mlp, layer, mlp, block), x)
            block.put(acc.total, idx[f"m{layer}"], total)
            block.put(acc.direct, idx[f"m{layer}"], direct)
            layer += 1
            first = False
        for lyr in range(layer, self.w.n_layers):
            z, _ = self.fp.attention(lyr, x)
            mid = x + self.fp.attn_out(lyr, z)
            mlp = self.fp.mlp(lyr, x if parallel else mid)
            post = mid + mlp
            heads = partial(measure.heads, lyr, z, block)
            after_heads = post if parallel else mid
            if first:
                total, direct = measure.first_read(heads, after_heads)
                block.put_heads(acc.direct, idx[f"a{lyr}.h0"], direct)
            else:
                total = heads(after_heads)
            block.put_heads(acc.total, idx[f"a{lyr}.h0"], total)
            mlps = partial(measure.mlp, lyr, mlp, block)
            if first and parallel:
                total, direct = measure.first_read(mlps, post)
                block.put(acc.direct, idx[f"m{lyr}"], direct)
            else:
                total = mlps(post)
            block.put(acc.total, idx[f"m{lyr}"], total)
            x = post
            first = False
        final = self.fp.final(x)
        sims = measure.final(final, block)
        block.put(acc.total, idx["logits"], sims)
        if first:
            block.put(acc.direct, idx["logits"], sims)
        return final

    # -- direct effects -----------------------------------------------------------------------
    def _direct_effects(self, measure: WriteMeasure, acc: _Accumulator) -> None:
        idx, clean = self.index, measure.clean
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
                self._direct_head_reads(measure, acc, kind, layer, target, base, heads)
            for block in self._blocks([i for i in sources if i not in heads]):
                x = self._ablated_read(clean, base, block)
                if kind == "attn":
                    z, _ = self.fp.attention(layer, x)
                    block.put_heads(acc.direct, target, measure.heads(layer, z, block))
                elif kind == "mlp":
                    block.put(acc.direct, target, measure.mlp(layer, self.fp.mlp(layer, x), block))
                else:
                    block.put(acc.direct, target, measure.final(self.fp.final(x), block))

    def _direct_head_reads(
        self,
        measure: WriteMeasure,
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
        clean = measure.clean
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
                block.put_heads(acc.direct, target, measure.heads(layer, z, block))
            else:
                out = self.fp.mlp_from_pre(layer, read)
                block.put(acc.direct, target, measure.mlp(layer, out, block))

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
    output: str = DEFAULT_OUTPUT,
) -> CheckpointSweep:
    """Sweep one checkpoint's weights on a prompt set, measuring the output definition
    ``output`` (one of ``OUTPUTS``; see the module docstring)."""
    return Sweeper(weights, prompts, ablation, memory_budget_mb, output).run()
