"""A transformer's weights in one standard layout, and the pieces of its forward pass.

The sweep needs to recompute single sub-modules (one layer's attention, one MLP, the final norm)
on batches of modified residual streams, and to read every head's output separately. This module
takes the weights out of the Hugging Face model inside a TransformerLens ``TransformerBridge`` and
exposes exactly those pieces. Two block styles are covered:

* GPT-2 (``GPT2LMHeadModel``): sequential blocks, learned positions;
* GPT-NeoX / Pythia (``GPTNeoXForCausalLM``): parallel (or sequential) blocks, rotary positions.

Shapes: ``R`` rows (prompts, or prompt × ablated component), ``T`` positions, ``H`` heads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn
from transformers.activations import ACT2FN

from circuitatlas.errors import CircuitAtlasError


@dataclass
class LayerWeights:
    """One block: norms, attention (per head) and MLP."""

    ln1_w: Tensor  # [d]
    ln1_b: Tensor
    ln2_w: Tensor
    ln2_b: Tensor
    w_qkv: Tensor  # [d, 3, H, dh]: one matmul gives q, k and v of every head
    b_qkv: Tensor  # [3, H, dh]
    w_o: Tensor  # [H, dh, d]
    b_o: Tensor  # [d]
    w_in: Tensor  # [d, d_mlp]
    b_in: Tensor
    w_out: Tensor  # [d_mlp, d]
    b_out: Tensor


@dataclass
class TransformerWeights:
    """Everything the sweep's forward pieces read, on one device, in float32."""

    arch: str  # "gpt2" | "gpt_neox"
    parallel: bool  # attention and MLP read the same residual stream
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_vocab: int
    eps: float
    act: Callable[[Tensor], Tensor]
    w_e: Tensor  # [V, d]
    w_pos: Tensor | None  # [n_ctx, d] learned positions (GPT-2)
    inv_freq: Tensor | None  # rotary inverse frequencies (GPT-NeoX)
    rotary_scale: float
    layers: list[LayerWeights]
    lnf_w: Tensor
    lnf_b: Tensor
    w_u: Tensor  # [d, V]
    b_u: Tensor | None

    @property
    def device(self) -> torch.device:
        """Device the weights live on."""
        return self.w_e.device

    def to(self, device: str | torch.device) -> TransformerWeights:
        """A copy on ``device``."""

        def move(value: object) -> object:
            if isinstance(value, Tensor):
                return value.to(device)
            if isinstance(value, LayerWeights):
                return LayerWeights(**{f.name: move(getattr(value, f.name)) for f in fields(value)})
            if isinstance(value, list):
                return [move(v) for v in value]
            return value

        return TransformerWeights(**{f.name: move(getattr(self, f.name)) for f in fields(self)})


def weights_from_bridge(bridge: nn.Module) -> TransformerWeights:
    """Weights of the Hugging Face model a TransformerLens ``TransformerBridge`` wraps."""
    return weights_from_hf(bridge.original_model)


def weights_from_hf(model: nn.Module) -> TransformerWeights:
    """Weights of a Hugging Face GPT-2 or GPT-NeoX causal LM, in the standard layout."""
    model_type = getattr(model.config, "model_type", "?")
    with torch.no_grad():
        if model_type == "gpt2":
            return _from_gpt2(model)
        if model_type == "gpt_neox":
            return _from_gpt_neox(model)
    raise CircuitAtlasError(
        f"model type {model_type!r} is not supported by the sweep; "
        "use a GPT-2-style or GPT-NeoX/Pythia-style checkpoint"
    )


def _f32(t: Tensor) -> Tensor:
    return t.detach().to(torch.float32).clone()


def _from_gpt2(model: nn.Module) -> TransformerWeights:
    cfg = model.config
    n_heads, d = cfg.n_head, cfg.n_embd
    dh = d // n_heads
    if getattr(cfg, "scale_attn_by_inverse_layer_idx", False) or getattr(
        cfg, "reorder_and_upcast_attn", False
    ):
        raise CircuitAtlasError(
            "GPT-2 attention variants (inverse-layer scaling) are not supported"
        )
    layers = []
    for blk in model.transformer.h:
        # Conv1D computes x @ weight + bias; c_attn's columns are [q | k | v], each [H, dh]
        w = _f32(blk.attn.c_attn.weight).view(d, 3, n_heads, dh)
        b = _f32(blk.attn.c_attn.bias).view(3, n_heads, dh)
        layers.append(
            LayerWeights(
                ln1_w=_f32(blk.ln_1.weight),
                ln1_b=_f32(blk.ln_1.bias),
                ln2_w=_f32(blk.ln_2.weight),
                ln2_b=_f32(blk.ln_2.bias),
                w_qkv=w,
                b_qkv=b,
                w_o=_f32(blk.attn.c_proj.weight).view(n_heads, dh, d),
                b_o=_f32(blk.attn.c_proj.bias),
                w_in=_f32(blk.mlp.c_fc.weight),
                b_in=_f32(blk.mlp.c_fc.bias),
                w_out=_f32(blk.mlp.c_proj.weight),
                b_out=_f32(blk.mlp.c_proj.bias),
            )
        )
    head = model.get_output_embeddings()
    return TransformerWeights(
        arch="gpt2",
        parallel=False,
        n_layers=cfg.n_layer,
        n_heads=n_heads,
        d_model=d,
        d_head=dh,
        d_vocab=cfg.vocab_size,
        eps=cfg.layer_norm_epsilon,
        act=ACT2FN[cfg.activation_function],
        w_e=_f32(model.transformer.wte.weight),
        w_pos=_f32(model.transformer.wpe.weight),
        inv_freq=None,
        rotary_scale=1.0,
        layers=layers,
        lnf_w=_f32(model.transformer.ln_f.weight),
        lnf_b=_f32(model.transformer.ln_f.bias),
        w_u=_f32(head.weight).T.contiguous(),
        b_u=_f32(head.bias) if head.bias is not None else None,
    )


def _from_gpt_neox(model: nn.Module) -> TransformerWeights:
    cfg = model.config
    n_heads, d = cfg.num_attention_heads, cfg.hidden_size
    dh = d // n_heads
    layers = []
    for blk in model.gpt_neox.layers:
        att = blk.attention
        # Linear computes x @ weight.T; output features are laid out [H, (q|k|v), dh]
        w = _f32(att.query_key_value.weight).view(n_heads, 3, dh, d).permute(3, 1, 0, 2)
        b = _f32(att.query_key_value.bias).view(n_heads, 3, dh).permute(1, 0, 2)
        layers.append(
            LayerWeights(
                ln1_w=_f32(blk.input_layernorm.weight),
                ln1_b=_f32(blk.input_layernorm.bias),
                ln2_w=_f32(blk.post_attention_layernorm.weight),
                ln2_b=_f32(blk.post_attention_layernorm.bias),
                w_qkv=w.contiguous(),
                b_qkv=b.contiguous(),
                w_o=_f32(att.dense.weight).T.contiguous().view(n_heads, dh, d),
                b_o=_f32(att.dense.bias),
                w_in=_f32(blk.mlp.dense_h_to_4h.weight).T.contiguous(),
                b_in=_f32(blk.mlp.dense_h_to_4h.bias),
                w_out=_f32(blk.mlp.dense_4h_to_h.weight).T.contiguous(),
                b_out=_f32(blk.mlp.dense_4h_to_h.bias),
            )
        )
    rotary = model.gpt_neox.rotary_emb
    head = model.get_output_embeddings()
    return TransformerWeights(
        arch="gpt_neox",
        parallel=bool(cfg.use_parallel_residual),
        n_layers=cfg.num_hidden_layers,
        n_heads=n_heads,
        d_model=d,
        d_head=dh,
        d_vocab=cfg.vocab_size,
        eps=cfg.layer_norm_eps,
        act=ACT2FN[cfg.hidden_act],
        w_e=_f32(model.gpt_neox.embed_in.weight),
        w_pos=None,
        inv_freq=_f32(rotary.inv_freq),
        rotary_scale=float(getattr(rotary, "attention_scaling", 1.0)),
        layers=layers,
        lnf_w=_f32(model.gpt_neox.final_layer_norm.weight),
        lnf_b=_f32(model.gpt_neox.final_layer_norm.bias),
        w_u=_f32(head.weight).T.contiguous(),
        b_u=_f32(head.bias) if head.bias is not None else None,
    )


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


# The log-sum-exp over the vocabulary runs over blocks of this many vectors × unembedding columns,
# so the logits never exist in full and each block (2 MiB) stays in the CPU's cache (measured on
# 2 cores: 512 × 1024 takes 25 % less time than 2048 × 1024 on a 50 304-token vocabulary).
VECTOR_BLOCK = 512
VOCAB_BLOCK = 1024


class ForwardPieces:
    """The sub-modules of one model's forward pass, for prompts of a fixed length ``seq_len``.

    Attention is split in two: :meth:`attention` gives what each head mixes, ``z`` (``[R, H, T,
    dh]``, before ``W_O``); :meth:`attn_out` the block's attention output and :meth:`head_outputs`
    each head's output from it. :meth:`head_dots` compares heads' outputs through the Gram matrix
    ``W_O[h] W_O[h]ᵀ`` without materializing them (``[R, T, H, d]`` is ``H`` times a residual).
    :meth:`centered_read` and :meth:`head_read_weights` give a layer's read of a change of one
    head's write in rank ``d_head``; :meth:`log_probs` never holds the full-vocabulary logits.
    """

    def __init__(self, weights: TransformerWeights, seq_len: int) -> None:
        self.w = weights
        self.seq_len = seq_len
        dev = weights.device
        causal = torch.ones(seq_len, seq_len, dtype=torch.bool, device=dev).tril()
        self._masked = ~causal
        self._scale = weights.d_head**-0.5
        d, n_heads = weights.d_model, weights.n_heads
        # per layer: W_qkv as one [d, 3·H·dh] matrix (columns ordered q|k|v, head, dh), W_O as
        # one [H·dh, d] matrix, and each head's Gram matrix W_O[h] W_O[h]ᵀ, [H, dh, dh]
        self._w_qkv = [lw.w_qkv.reshape(d, -1) for lw in weights.layers]
        self._b_qkv = [lw.b_qkv.reshape(-1) for lw in weights.layers]
        self._w_o = [lw.w_o.reshape(n_heads * weights.d_head, d) for lw in weights.layers]
        self._gram = [lw.w_o @ lw.w_o.transpose(1, 2) for lw in weights.layers]
        self._w_o_centered = [lw.w_o - lw.w_o.mean(dim=-1, keepdim=True) for lw in weights.layers]
        if weights.inv_freq is not None:
            pos = torch.arange(seq_len, device=dev, dtype=torch.float32)
            freqs = pos[:, None] * weights.inv_freq[None, :]
            emb = torch.cat((freqs, freqs), dim=-1)  # [T, rot]
            self._cos = emb.cos() * weights.rotary_scale  # broadcasts over [R, H, T, rot]
            self._sin = emb.sin() * weights.rotary_scale
            self._rot = emb.shape[-1]

    def embed(self, tokens: Tensor) -> Tensor:
        """The ``input`` component's output: token (+ learned position) embedding, ``[R, T, d]``."""
        x = self.w.w_e[tokens]
        if self.w.w_pos is not None:
            x = x + self.w.w_pos[: tokens.shape[1]]
        return x

    def _norm(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, self.w.eps)

    def qkv(self, layer: int, resid: Tensor) -> Tensor:
        """Queries, keys and values of every head, ``[R, T, 3·H·dh]``, from the residual read."""
        lw = self.w.layers[layer]
        r, t, d = resid.shape
        x = self._norm(resid, lw.ln1_w, lw.ln1_b).reshape(r * t, d)
        return torch.addmm(self._b_qkv[layer], x, self._w_qkv[layer]).view(r, t, -1)

    def head_qkv(self, layer: int, reads: Tensor) -> Tensor:
        """Like :meth:`qkv`, but each head from its own read: ``reads`` ``[R, H, T, d]``."""
        lw = self.w.layers[layer]
        x = self._norm(reads, lw.ln1_w, lw.ln1_b)
        qkv = torch.einsum("rhtd,dkhe->rtkhe", x, lw.w_qkv) + lw.b_qkv  # [R, T, 3, H, dh]
        return qkv.flatten(2)

    def attend(self, qkv: Tensor, want_pattern: bool = False) -> tuple[Tensor, Tensor | None]:
        """What every head mixes, ``z`` ``[R, H, T, dh]``, from :meth:`qkv`'s output.

        With ``want_pattern`` also the attention pattern ``[R, H, T, T]`` (computed explicitly);
        without it the fused scaled-dot-product kernel runs.
        """
        r, t, _ = qkv.shape
        q, k, v = qkv.view(r, t, 3, self.w.n_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        if self.w.inv_freq is not None:
            q, k = self._rotary(q), self._rotary(k)
        if not want_pattern:
            z = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=self._scale
            )
            return z, None
        scores = (q @ k.transpose(-1, -2)) * self._scale
        scores = scores.masked_fill(self._masked, torch.finfo(scores.dtype).min)
        pattern = torch.softmax(scores, dim=-1)
        return pattern @ v, pattern

    def attention(
        self, layer: int, resid: Tensor, want_pattern: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """What every head mixes, ``z`` ``[R, H, T, dh]``, from the residual read ``[R, T, d]``.

        With ``want_pattern`` also the attention pattern ``[R, H, T, T]``.
        """
        return self.attend(self.qkv(layer, resid), want_pattern)

    def _rotary(self, x: Tensor) -> Tensor:
        rot = self._rot
        x_rot, x_pass = x[..., :rot], x[..., rot:]
        x_rot = x_rot * self._cos + _rotate_half(x_rot) * self._sin
        return torch.cat((x_rot, x_pass), dim=-1)

    def attn_out(self, layer: int, z: Tensor) -> Tensor:
        """The attention output, every head's output plus ``b_O``, ``[R, T, d]``."""
        r, h, t, dh = z.shape
        flat = z.transpose(1, 2).reshape(r * t, h * dh)
        return torch.addmm(self.w.layers[layer].b_o, flat, self._w_o[layer]).view(r, t, -1)

    def head_outputs(self, layer: int, z: Tensor) -> Tensor:
        """Every head's output ``z_h @ W_O[h]`` (no bias), ``[R, T, H, d]``."""
        return torch.einsum("rhtk,hkd->rthd", z, self.w.layers[layer].w_o)

    def head_dots(self, layer: int, z: Tensor, z_ref: Tensor) -> tuple[Tensor, Tensor]:
        """Per head and position, ``<o_h, o_ref_h>`` and ``|o_h|²`` for head outputs ``o = z W_O``.

        ``z``: ``[..., H, T, dh]``; ``z_ref`` broadcasts against it. Both results ``[..., H, T]``.
        """
        zg = torch.einsum("...htk,hkl->...htl", z, self._gram[layer])
        return (zg * z_ref).sum(dim=-1), (zg * z).sum(dim=-1)

    def mlp(self, layer: int, resid: Tensor) -> Tensor:
        """The MLP's output ``[R, T, d]`` from the residual read."""
        lw = self.w.layers[layer]
        x = self._norm(resid, lw.ln2_w, lw.ln2_b).flatten(0, -2)
        return self.mlp_from_pre(
            layer, torch.addmm(lw.b_in, x, lw.w_in).view(*resid.shape[:-1], -1)
        )

    def mlp_from_pre(self, layer: int, pre: Tensor) -> Tensor:
        """The MLP's output ``[..., d]`` from its pre-activation ``[..., d_mlp]``."""
        lw = self.w.layers[layer]
        hidden = self.w.act(pre.flatten(0, -2))
        return torch.addmm(lw.b_out, hidden, lw.w_out).view(*pre.shape[:-1], -1)

    # -- a read of one head's write, in rank d_head ----------------------------------------------
    # A read ``LN(x) @ W + b`` (the attention's q, k, v or the MLP's pre-activation) of a residual
    # ``x = base + Δz_h @ W_O[h]`` (head h's write changed by Δz_h) equals
    # ``rstd(x) · ((c(base) ⊙ γ) @ W + Δz_h @ A_h) + β @ W + b``, with ``c`` the centering over d,
    # ``rstd(x)`` the norm's 1 / σ and ``A_h = (c(W_O[h]) ⊙ γ) @ W`` (``[dh, F]``). So the change
    # reaches the read through a ``dh``-wide product instead of a ``d``-wide one; only the norm
    # statistics need the full residual.
    def _read(self, layer: int, kind: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        lw = self.w.layers[layer]
        if kind == "attn":
            return lw.ln1_w, lw.ln1_b, self._w_qkv[layer], self._b_qkv[layer]
        return lw.ln2_w, lw.ln2_b, lw.w_in, lw.b_in

    def centered_read(self, layer: int, kind: str, resid: Tensor) -> tuple[Tensor, Tensor]:
        """``(c(resid) ⊙ γ) @ W`` ``[R, T, F]`` of the read ``kind`` ("attn" | "mlp"), and its
        constant part ``β @ W + b`` ``[F]``."""
        gamma, beta, w, b = self._read(layer, kind)
        centered = (resid - resid.mean(dim=-1, keepdim=True)) * gamma
        return centered @ w, torch.addmm(b[None], beta[None], w)[0]

    def head_read_weights(self, heads: list[tuple[int, int]], layer: int, kind: str) -> Tensor:
        """``A_h`` ``[k, dh, F]`` of the heads ``(source layer, head)`` for a read of ``layer``."""
        gamma, _, w, _ = self._read(layer, kind)
        w_o = torch.stack([self._w_o_centered[src][h] for src, h in heads])  # [k, dh, d]
        return (w_o * gamma) @ w

    def rstd(self, resid: Tensor) -> Tensor:
        """The layer norm's ``1 / sqrt(var + eps)`` per vector, ``[..., 1]``."""
        return torch.native_layer_norm(resid, (resid.shape[-1],), None, None, self.w.eps)[2]

    def final(self, resid: Tensor) -> Tensor:
        """The final normalized residual stream (what the unembedding reads), ``[R, T, d]``."""
        return self._norm(resid, self.w.lnf_w, self.w.lnf_b)

    def logits(self, normed: Tensor) -> Tensor:
        """Full-vocabulary logits of normalized residual vectors ``[..., d]``."""
        out = normed @ self.w.w_u
        return out + self.w.b_u if self.w.b_u is not None else out

    def log_probs(self, normed: Tensor, targets: Tensor) -> Tensor:
        """``log p(targets)`` under the logits of normalized vectors ``[M, d]``, shape ``[M]``.

        The log-sum-exp over the vocabulary is taken block by block (``VECTOR_BLOCK`` vectors ×
        ``VOCAB_BLOCK`` columns), so the ``[M, V]`` logits are never held at once.
        """
        w_u, b_u = self.w.w_u, self.w.b_u
        picked = (normed * w_u[:, targets].T).sum(dim=-1)
        if b_u is not None:
            picked = picked + b_u[targets]
        lse = []
        for start in range(0, normed.shape[0], VECTOR_BLOCK):
            h = normed[start : start + VECTOR_BLOCK]
            parts = []
            for col in range(0, w_u.shape[1], VOCAB_BLOCK):
                cols = slice(col, col + VOCAB_BLOCK)
                block = h @ w_u[:, cols] if b_u is None else torch.addmm(b_u[cols], h, w_u[:, cols])
                top = block.amax(dim=-1, keepdim=True)  # log-sum-exp, in place on the block
                parts.append(block.sub_(top).exp_().sum(dim=-1).log_() + top[:, 0])
            lse.append(torch.logsumexp(torch.stack(parts), dim=0))
        return picked - torch.cat(lse) if lse else picked

    def log_prob_grads(self, normed: Tensor, targets: Tensor) -> Tensor:
        """``∇ log p(targets)`` with respect to normalized vectors ``[M, d]``, shape ``[M, d]``:
        ``W_U[:, t] − Σ_v p_v W_U[:, v]``, in one pass over the vocabulary in blocks (an online
        softmax: the running sum and the weighted sum of unembedding columns are rescaled when
        the running maximum grows), so the ``[M, V]`` logits are never held at once."""
        w_u, b_u = self.w.w_u, self.w.b_u
        grad = w_u[:, targets].T.clone()
        for start in range(0, normed.shape[0], VECTOR_BLOCK):
            h = normed[start : start + VECTOR_BLOCK]
            top = torch.full((h.shape[0], 1), -torch.inf, dtype=h.dtype, device=h.device)
            total = torch.zeros_like(top)
            weighted = torch.zeros_like(h)
            for col in range(0, w_u.shape[1], VOCAB_BLOCK):
                cols = slice(col, col + VOCAB_BLOCK)
                block = h @ w_u[:, cols] if b_u is None else torch.addmm(b_u[cols], h, w_u[:, cols])
                new_top = torch.maximum(top, block.amax(dim=-1, keepdim=True))
                shrink = (top - new_top).exp_()
                probs = block.sub_(new_top).exp_()
                total = total * shrink + probs.sum(dim=-1, keepdim=True)
                weighted = torch.addmm(weighted * shrink, probs, w_u[:, cols].T)
                top = new_top
            grad[start : start + VECTOR_BLOCK] -= weighted / total
        return grad

    def target_log_probs(self, normed: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        """``log p(tokens[t+1])`` at the positions of ``mask`` (others 0), ``[R, T]``.

        Only the masked positions go through the unembedding.
        """
        out = torch.zeros(mask.shape, dtype=normed.dtype, device=normed.device)
        rows, cols = mask.nonzero(as_tuple=True)
        if rows.numel():
            out[rows, cols] = self.log_probs(normed[rows, cols], tokens[rows, cols + 1])
        return out
