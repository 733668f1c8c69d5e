"""Output definitions: what a component's output ``O_j`` is, and how ablated rows are compared
with the clean run on it (cosine over ``d``, averaged over positions).

``write`` (the default): ``O_j`` is what *j* writes into the residual stream — ``input`` the
embedding (with learned positions), a head ``z_h @ W_O[h]`` without bias, an MLP its output; the
``logits`` sink the final normalized residual stream.

``resid``: ``O_j`` is the residual stream right after *j* writes, what the next reader reads:

* ``input``: the residual entering block 0, i.e. the embedding (as under ``write``);
* a head of layer ``l``, sequential (GPT-2-style) block: ``resid_mid[l] = resid_pre[l] +``
  the attention output (every head's write and ``b_O``), which the layer's MLP reads;
  parallel (GPT-NeoX) block: ``resid_post[l] = resid_pre[l] +`` attention output ``+`` MLP
  output, which layer ``l + 1`` reads. A parallel block's MLP reads ``resid_pre[l]`` like its
  heads, so no component ever reads a stream that holds the heads' writes without the MLP's
  (TransformerLens has no ``hook_resid_mid`` there): ``resid_post`` is where their writes land;
* the MLP of layer ``l``: ``resid_post[l] = resid_pre[l + 1]`` (both block styles);
* ``logits``: the final normalized residual stream, as under ``write`` (the sink writes nothing).

So all heads of a layer share one ``O_j`` (as targets, every source gives them one similarity),
and in a parallel block they share it with the layer's MLP. The edges are the same downstream
pairs under both definitions.

A *total effect* measures ``O_j`` in the pass where *i* is ablated throughout. A *direct effect*
changes only *j*'s read (it loses *i*'s write); the rest of the stream stays clean, *i*'s own
write included. Under ``resid`` that is ``O_j = clean O_j + (j's write from the changed read −
j's clean write)`` (``logits``: the final norm of the clean final residual plus *i*'s ablation
delta, as under ``write``). A head's write changes in rank ``d_head``: ``cos(C + Δz W_O, C)`` is
taken from ``⟨Δz, C W_Oᵀ⟩`` and ``|Δz W_O|²`` (through the Gram matrix ``W_O W_Oᵀ``), so no
head's ``[T, d]`` output is materialized.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.ablation import CleanRun
from circuitatlas.ingest.contract import OUTPUTS
from circuitatlas.ingest.model import ForwardPieces


def check_output(output: str) -> None:
    """Raise a clear error for an unknown output definition."""
    if output not in OUTPUTS:
        raise CircuitAtlasError(f"unknown --output {output!r}; choose one of {', '.join(OUTPUTS)}")


def row_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of ``[..., T, d]`` outputs over ``d``, averaged over positions ``T``."""
    return torch.nn.functional.cosine_similarity(a, b, dim=-1).mean(dim=-1)


def cos_mean(dot: Tensor, sq: Tensor, ref_sq: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean over the last axis of ``dot / (|a| |b|)``, norms clamped like ``cosine_similarity``."""
    return (dot / (sq.sqrt().clamp_min(eps) * ref_sq.sqrt().clamp_min(eps))).mean(dim=-1)


@dataclass
class RowBlock:
    """One batched chunk of ablated rows: ``k`` sources × the prompts ``prompts`` (``p`` of them).

    Rows are ordered source-major: row ``s * p + q`` ablates ``sources[s]`` on prompt ``q``.
    """

    sources: Tensor  # component indices, [k]
    prompts: slice

    @property
    def k(self) -> int:
        """Number of sources."""
        return self.sources.numel()

    def sims(self, out: Tensor, clean_out: Tensor) -> Tensor:
        """Similarity of each row's ``[T, d]`` output to its prompt's clean one, ``[k, p]``."""
        return row_similarity(out.view(self.k, -1, *out.shape[1:]), clean_out[self.prompts])

    def put(self, into: Tensor, target: int, sims: Tensor) -> None:
        """Record ``sims`` (``[k, p]``) as ``into[source, target, prompt]``."""
        into[:, target][self.sources, self.prompts] = sims

    def put_heads(self, into: Tensor, first: int, sims: Tensor) -> None:
        """Record ``sims`` (``[k, p, H]``) for the ``H`` heads numbered from ``first``."""
        h = sims.shape[-1]
        into[:, first : first + h][self.sources, :, self.prompts] = sims.transpose(1, 2)


class WriteMeasure:
    """Similarities of ablated rows' outputs under ``write`` (the base of the other definitions).

    Every method compares the rows of a :class:`RowBlock` with their prompts' clean outputs and
    takes what the pass computed at one read (a layer's ``z``, an MLP's output). ``after`` is the
    ablated residual stream right after the read's writes, for a total effect; ``None`` asks for
    a direct effect (the rest of the stream clean). A write does not depend on the stream, so
    both are the same here (``stream_free``).
    """

    stream_free = True

    def __init__(self, fp: ForwardPieces, clean: CleanRun) -> None:
        self.fp = fp
        self.clean = clean

    def heads(self, layer: int, z: Tensor, block: RowBlock, after: Tensor | None = None) -> Tensor:
        """Similarity of every head of ``layer`` from the rows' ``z`` ``[k·p, H, T, dh]``,
        ``[k, p, H]``; heads' outputs are compared through ``W_O W_Oᵀ``."""
        ps = block.prompts
        z = z.view(block.k, -1, *z.shape[1:])
        dot, sq = self.fp.head_dots(layer, z, self.clean.z[layer][ps])
        return cos_mean(dot, sq, self.clean.head_sq[layer][ps])

    def mlp(self, layer: int, out: Tensor, block: RowBlock, after: Tensor | None = None) -> Tensor:
        """Similarity of the MLP of ``layer`` from the rows' output ``[k·p, T, d]``, ``[k, p]``."""
        return block.sims(out, self.clean.mlp_out[layer])

    def final(self, final: Tensor, block: RowBlock) -> Tensor:
        """Similarity of ``logits`` from the rows' final normalized residual, ``[k, p]``."""
        return block.sims(final, self.clean.final)

    def first_read(
        self, sims: Callable[[Tensor | None], Tensor], after: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Total and direct similarities of a read that sees the clean stream plus one ablation
        delta and nothing else (the first reads of a total pass): ``sims(after)``, ``sims(None)``,
        computed once where the definition does not depend on the stream."""
        total = sims(after)
        return total, total if self.stream_free else sims(None)


class ResidMeasure(WriteMeasure):
    """Similarities under ``resid``: the residual stream right after each component's write."""

    stream_free = False

    def __init__(self, fp: ForwardPieces, clean: CleanRun) -> None:
        super().__init__(fp, clean)
        # where a layer's heads' writes land: resid_mid (sequential), resid_post (parallel)
        self.after_heads = clean.resid_pre[1:] if fp.w.parallel else clean.resid_mid
        self._projected: dict[int, tuple[Tensor, Tensor]] = {}

    def _stream_through_w_o(self, layer: int) -> tuple[Tensor, Tensor]:
        """``C W_O[h]ᵀ`` ``[N, H, T, dh]`` and ``|C|²`` ``[N, T]`` of the clean stream ``C`` after
        the heads of ``layer`` (computed once per layer)."""
        if layer not in self._projected:
            stream = self.after_heads[layer]
            proj = torch.einsum("ntd,hkd->nhtk", stream, self.fp.w.layers[layer].w_o)
            self._projected[layer] = proj, (stream * stream).sum(dim=-1)
        return self._projected[layer]

    def heads(self, layer: int, z: Tensor, block: RowBlock, after: Tensor | None = None) -> Tensor:
        """Total: the ablated stream after the heads, one similarity for every head. Direct:
        ``cos(C + Δz_h W_O[h], C)`` per head, in rank ``d_head``."""
        if after is not None:
            sims = block.sims(after, self.after_heads[layer])
            return sims[..., None].expand(-1, -1, self.fp.w.n_heads)
        proj, stream_sq = self._stream_through_w_o(layer)
        ps = block.prompts
        dz = z.view(block.k, -1, *z.shape[1:]) - self.clean.z[layer][ps]  # [k, p, H, T, dh]
        cross = (dz * proj[ps]).sum(dim=-1)  # ⟨Δo_h, C⟩, [k, p, H, T]
        change_sq = self.fp.head_dots(layer, dz, dz)[1]  # |Δo_h|²
        ref = stream_sq[ps][:, None]  # [p, 1, T]
        return cos_mean(ref + cross, (ref + 2 * cross + change_sq).clamp_min(0), ref)

    def mlp(self, layer: int, out: Tensor, block: RowBlock, after: Tensor | None = None) -> Tensor:
        """Total: the ablated ``resid_post``. Direct: the clean ``resid_post`` plus the change of
        the MLP's output."""
        stream = self.clean.resid_pre[layer + 1]
        if after is not None:
            return block.sims(after, stream)
        ps = block.prompts
        changed = out.view(block.k, -1, *out.shape[1:]) - self.clean.mlp_out[layer][ps]
        return row_similarity(changed + stream[ps], stream[ps])


MEASURES: dict[str, type[WriteMeasure]] = {"write": WriteMeasure, "resid": ResidMeasure}


def output_measure(output: str, fp: ForwardPieces, clean: CleanRun) -> WriteMeasure:
    """The measure of an output definition (one of ``OUTPUTS``) against a clean run."""
    check_output(output)
    return MEASURES[output](fp, clean)
