"""Plain, slow references for edge scores and circuit runs, to test the fast implementations.

Definitions (component names as in :mod:`circuitatlas.ingest.components`: ``input``,
``a{L}.h{H}``, ``m{L}``, ``logits``; ``i → j`` is an edge when ``is_downstream(i, j, parallel)``):

* A component's **output** is what it writes into the residual stream: ``input`` the embedding
  (with learned positions), a head ``z_h @ W_O[h]`` (no bias), an MLP its output with its output
  bias. The **residual stream** is the sum of all outputs so far plus the attention output biases
  ``b_O`` of the layers passed.
* A component's **read**: a head of layer ``L`` reads the residual entering layer ``L`` (each head
  separately); an MLP reads the residual entering its layer (parallel blocks) or the one after its
  layer's attention (sequential blocks); ``logits`` reads the final residual (then the final layer
  norm, the unembedding).
* The **ablated value** of ``i`` is ``a_i = replacement(o_i, ablation)`` of its clean output
  ``o_i`` (zero; mean over prompts; resample: the output on prompt ``(p + 1) % n``), always from
  the clean run; ``Δ_i = a_i − o_i``.
* The **task metric** is ``task_metric`` of the log-probs of the scored tokens, averaged over
  prompts.

:func:`reference_patch_effects` runs the model through the ``TransformerBridge`` hooks, one
forward pass per edge ``i → j`` (two when ``j`` is a head) in which only ``j``'s read becomes its
value in that pass plus ``Δ_i``; everything downstream of ``j`` is recomputed and sees ``j``'s
changed output, every other read still sees ``i``'s clean write. ``patch_effect`` is the mean over
prompts of (metric of that pass − clean metric). Heads of a layer share ``ln1.hook_in``, so for a
head ``h`` of layer ``L`` the first pass adds ``Δ_i`` there and records head ``h``'s slice of
``blocks.{L}.attn.hook_z`` (the input of the attention's output projection); the second pass
substitutes only that slice, leaving every other head and read clean.

:func:`reference_circuit_metric` computes the **circuit run** of an edge set by hand on the
standard weights (``TransformerWeights``), one component at a time, in float64: every reader
``j``'s read is ``Σ_{parents i of j} (o_i^circuit if (i, j) in edges else a_i) + Σ b_O`` of the
layers before the read (for a sequential MLP of layer ``L`` the parents include layer ``L``'s
heads and the sum includes ``b_O[L]``), where ``o_i^circuit`` is ``i``'s output computed from its
own read in the same circuit run (``input``'s output is the clean embedding). Faithfulness of an
edge set is ``(metric(edges) − metric(∅)) / (metric(all edges) − metric(∅))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import fields, replace

import pandas as pd
import torch
from reference_sweep import _metric, _out_hook, _take
from torch import Tensor

from circuitatlas.ingest.components import Component, all_components, is_downstream
from circuitatlas.ingest.model import LayerWeights, TransformerWeights
from circuitatlas.ingest.sweep import ablation_delta, replacement
from circuitatlas.ingest.tasks import task_metric

Edge = tuple[str, str]
PATCH_COLUMNS = ["source", "target", "patch_effect"]


def downstream_pairs(n_layers: int, n_heads: int, parallel: bool) -> set[Edge]:
    """Every edge ``(i, j)`` of a model: the pairs with ``is_downstream(i, j, parallel)``."""
    comps = all_components(n_layers, n_heads)
    return {(i.name, j.name) for i in comps for j in comps if is_downstream(i, j, parallel)}


def all_edges(weights: TransformerWeights) -> set[Edge]:
    """Every edge of the model whose weights are ``weights``."""
    return downstream_pairs(weights.n_layers, weights.n_heads, weights.parallel)


# -- edge patching through the bridge's hooks ---------------------------------------------------


def _add(delta: Tensor) -> Callable[[Tensor, object], Tensor]:
    return lambda x, hook: x + delta


def _patched_logits(
    bridge: torch.nn.Module, tokens: Tensor, target: Component, delta: Tensor
) -> Tensor:
    """Logits of the pass in which only ``target``'s read gains ``delta``."""
    if target.kind == "logits":
        return bridge.run_with_hooks(tokens, fwd_hooks=[("ln_final.hook_in", _add(delta))])
    if target.kind == "mlp":
        read = f"blocks.{target.layer}.ln2.hook_in"
        return bridge.run_with_hooks(tokens, fwd_hooks=[(read, _add(delta))])
    # a head: its layer's heads share one read, so first compute this head's z from the patched
    # read, then substitute only this head's z
    read = f"blocks.{target.layer}.ln1.hook_in"
    z_hook = f"blocks.{target.layer}.attn.hook_z"
    recorded: list[Tensor] = []

    def record(z: Tensor, hook: object) -> Tensor:
        recorded.append(z[:, :, target.head].clone())
        return z

    bridge.run_with_hooks(tokens, fwd_hooks=[(read, _add(delta)), (z_hook, record)])
    (z_head,) = recorded

    def substitute(z: Tensor, hook: object) -> Tensor:
        z = z.clone()
        z[:, :, target.head] = z_head
        return z

    return bridge.run_with_hooks(tokens, fwd_hooks=[(z_hook, substitute)])


@torch.no_grad()
def reference_patch_effects(
    bridge: torch.nn.Module, tokens: Tensor, mask: Tensor, ablation: str
) -> pd.DataFrame:
    """``patch_effect`` of every edge (columns ``source``, ``target``, ``patch_effect``)."""
    cfg = bridge.cfg
    parallel = bool(cfg.parallel_attn_mlp)
    comps = all_components(cfg.n_layers, cfg.n_heads)
    was = bool(cfg.use_attn_result)
    bridge.set_use_attn_result(True)
    try:
        logits, cache = bridge.run_with_cache(tokens)
    finally:
        bridge.set_use_attn_result(was)
    clean_metric = _metric(logits, tokens, mask)
    deltas = {
        c.name: ablation_delta(_take(c, cache[_out_hook(c)]), ablation, slice(None))
        for c in comps
        if c.kind != "logits"
    }
    rows = []
    for src in comps:
        for dst in comps:
            if not is_downstream(src, dst, parallel):
                continue
            out = _patched_logits(bridge, tokens, dst, deltas[src.name])
            effect = float((_metric(out, tokens, mask) - clean_metric).mean())
            rows.append({"source": src.name, "target": dst.name, "patch_effect": effect})
    return pd.DataFrame(rows, columns=PATCH_COLUMNS)


# -- the circuit run, by hand -------------------------------------------------------------------


def _float64(weights: TransformerWeights) -> TransformerWeights:
    def cast(value: object) -> object:
        return value.double() if isinstance(value, Tensor) else value

    layers = [
        LayerWeights(**{f.name: cast(getattr(lw, f.name)) for f in fields(lw)})
        for lw in weights.layers
    ]
    tensors = {
        f.name: cast(getattr(weights, f.name))
        for f in fields(weights)
        if isinstance(getattr(weights, f.name), Tensor)
    }
    return replace(weights, layers=layers, **tensors)


def _layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _embed(w: TransformerWeights, tokens: Tensor) -> Tensor:
    x = w.w_e[tokens]
    if w.w_pos is not None:
        x = x + w.w_pos[: tokens.shape[1]]
    return x


def _rotary(w: TransformerWeights, x: Tensor) -> Tensor:
    """GPT-NeoX rotary embedding of the first ``2 · len(inv_freq)`` dims (rotate-half layout)."""
    assert w.inv_freq is not None
    rot = 2 * w.inv_freq.numel()
    positions = torch.arange(x.shape[-2], dtype=w.inv_freq.dtype, device=x.device)
    freqs = positions[:, None] * w.inv_freq[None, :]
    angles = torch.cat((freqs, freqs), dim=-1)  # [T, rot]
    cos, sin = angles.cos() * w.rotary_scale, angles.sin() * w.rotary_scale
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    half = rot // 2
    rotated_half = torch.cat((-x_rot[..., half:], x_rot[..., :half]), dim=-1)
    return torch.cat((x_rot * cos + rotated_half * sin, x_pass), dim=-1)


def _head_output(w: TransformerWeights, layer: int, head: int, read: Tensor) -> Tensor:
    """Head ``head`` of ``layer``'s output ``z @ W_O[head]`` from its read ``[N, T, d]``."""
    lw = w.layers[layer]
    x = _layer_norm(read, lw.ln1_w, lw.ln1_b, w.eps)
    q = x @ lw.w_qkv[:, 0, head] + lw.b_qkv[0, head]  # [N, T, dh]
    k = x @ lw.w_qkv[:, 1, head] + lw.b_qkv[1, head]
    v = x @ lw.w_qkv[:, 2, head] + lw.b_qkv[2, head]
    if w.inv_freq is not None:
        q, k = _rotary(w, q), _rotary(w, k)
    scores = q @ k.transpose(-1, -2) / math.sqrt(w.d_head)  # [N, T(query), T(key)]
    t = read.shape[1]
    future = torch.ones(t, t, dtype=torch.bool, device=read.device).triu(diagonal=1)
    pattern = torch.softmax(scores.masked_fill(future, -math.inf), dim=-1)
    return (pattern @ v) @ lw.w_o[head]


def _mlp_output(w: TransformerWeights, layer: int, read: Tensor) -> Tensor:
    lw = w.layers[layer]
    x = _layer_norm(read, lw.ln2_w, lw.ln2_b, w.eps)
    return w.act(x @ lw.w_in + lw.b_in) @ lw.w_out + lw.b_out


def _metric_by_hand(w: TransformerWeights, read: Tensor, tokens: Tensor, mask: Tensor) -> float:
    """Task metric, averaged over prompts, of the final residual ``read``."""
    logits = _layer_norm(read, w.lnf_w, w.lnf_b, w.eps) @ w.w_u
    if w.b_u is not None:
        logits = logits + w.b_u
    top = logits.amax(dim=-1, keepdim=True)
    log_probs = logits - top - (logits - top).exp().sum(dim=-1, keepdim=True).log()
    targets = log_probs[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
    return float(task_metric(targets, mask).mean())


def _bias_layers(reader: Component, parallel: bool) -> range:
    """Layers whose ``b_O`` the residual read by ``reader`` contains."""
    if reader.kind == "mlp" and not parallel:
        return range(reader.layer + 1)
    return range(reader.layer)


def _circuit_run(
    w: TransformerWeights,
    tokens: Tensor,
    mask: Tensor,
    edges: set[Edge] | None,
    ablated: dict[str, Tensor] | None,
) -> tuple[dict[str, Tensor], float]:
    """Every component's output and the metric of the circuit run of ``edges``.

    ``edges=None`` keeps every edge: the clean run (``ablated`` is then unused).
    """
    comps = all_components(w.n_layers, w.n_heads)
    outputs: dict[str, Tensor] = {}
    metric = math.nan
    for reader in comps:
        if reader.kind == "input":
            outputs[reader.name] = _embed(w, tokens)
            continue
        read = torch.zeros_like(outputs["input"])
        for layer in _bias_layers(reader, w.parallel):
            read = read + w.layers[layer].b_o
        for parent in comps:
            if not is_downstream(parent, reader, w.parallel):
                continue
            if edges is None or (parent.name, reader.name) in edges:
                read = read + outputs[parent.name]
            else:
                assert ablated is not None
                read = read + ablated[parent.name]
        if reader.kind == "attn_head":
            assert reader.head is not None
            outputs[reader.name] = _head_output(w, reader.layer, reader.head, read)
        elif reader.kind == "mlp":
            outputs[reader.name] = _mlp_output(w, reader.layer, read)
        else:
            metric = _metric_by_hand(w, read, tokens, mask)
    return outputs, metric


@torch.no_grad()
def reference_circuit_metrics(
    weights: TransformerWeights,
    tokens: Tensor,
    mask: Tensor,
    ablation: str,
    edge_sets: Sequence[set[Edge]],
) -> list[float]:
    """:func:`reference_circuit_metric` of each edge set (the clean run is computed once)."""
    known = all_edges(weights)
    for edges in edge_sets:
        unknown = set(edges) - known
        if unknown:
            raise ValueError(f"not edges of this model (no downstream pair): {sorted(unknown)}")
    w = _float64(weights)
    tokens, mask = tokens.to(w.device), mask.to(w.device)
    clean, _ = _circuit_run(w, tokens, mask, None, None)
    ablated = {name: replacement(out, ablation) for name, out in clean.items()}
    return [_circuit_run(w, tokens, mask, set(edges), ablated)[1] for edges in edge_sets]


def reference_circuit_metric(
    weights: TransformerWeights, tokens: Tensor, mask: Tensor, ablation: str, edges: set[Edge]
) -> float:
    """Task metric of the circuit run of ``edges`` (every other edge carries its ablated value)."""
    return reference_circuit_metrics(weights, tokens, mask, ablation, [edges])[0]


def reference_faithfulness(
    weights: TransformerWeights, tokens: Tensor, mask: Tensor, ablation: str, edges: set[Edge]
) -> float:
    """``(metric(edges) − metric(∅)) / (metric(all edges) − metric(∅))``."""
    empty, full, circuit = reference_circuit_metrics(
        weights, tokens, mask, ablation, [set(), all_edges(weights), edges]
    )
    return (circuit - empty) / (full - empty)
