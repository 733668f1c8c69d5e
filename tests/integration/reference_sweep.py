"""The plain reference sweep: one full TransformerLens forward pass per ablated component.

Independent of the fast path's forward pieces: it runs the model through the
``TransformerBridge`` with hooks, and only shares the definitions (component names, which pairs
are downstream, the replacement of an ablated output, cosine averaged over positions, the task
metric).

* Total effect of *i*: one ``run_with_hooks`` that replaces *i*'s output (the residual entering
  block 0 for ``input``, the head's ``hook_z`` slice, ``hook_mlp_out``) and records every output.
* Direct effect of *i*: one ``run_with_hooks`` in which every read of the residual stream
  (``ln1.hook_in``, ``ln2.hook_in``, ``ln_final.hook_in``) is set to its clean value, plus *i*'s
  ablation delta when the reader is downstream of *i*; so each reader sees a clean stream except
  for *i*'s write, and no change travels between readers.

``output`` picks the output definition. ``write``: outputs are the writes above (``hook_result``
per head, ``hook_mlp_out``; ``ln_final.hook_out`` for ``logits``). ``resid``: the residual stream
at the hook point right after the component writes — ``hook_resid_mid`` of its layer for a head of
a sequential block, ``hook_resid_post`` for a head of a parallel block and for an MLP,
``ln_final.hook_out`` for ``logits``. A total effect reads that hook in the ablated pass; a direct
effect is the clean stream at that hook plus the change of the component's own write in the
direct pass (the rest of the stream stays clean), ``logits`` again its final norm in that pass.

With ``stop_after_final_norm`` every hooked pass stops once the final norm is recorded (no
full-vocabulary unembedding): the naive loop's stronger variant, which gives no metric effects.
"""

from __future__ import annotations

import pandas as pd
import torch
from transformer_lens.model_bridge.exceptions import StopAtLayerException

from circuitatlas.ingest.components import Component, all_components, is_downstream
from circuitatlas.ingest.sweep import replacement, row_similarity
from circuitatlas.ingest.tasks import task_metric


def _out_hook(c: Component) -> str:
    """Where a component's write is (``write``)."""
    if c.kind == "input":
        return "blocks.0.hook_resid_pre"
    if c.kind == "attn_head":
        return f"blocks.{c.layer}.attn.hook_result"
    if c.kind == "mlp":
        return f"blocks.{c.layer}.hook_mlp_out"
    return "ln_final.hook_out"


def _resid_hook(c: Component, parallel: bool) -> str:
    """The residual stream right after a component writes (``resid``)."""
    if c.kind == "attn_head":
        return f"blocks.{c.layer}.hook_resid_{'post' if parallel else 'mid'}"
    if c.kind == "mlp":
        return f"blocks.{c.layer}.hook_resid_post"
    return _out_hook(c)  # input: the embedding; logits: the final normalized stream


def _take(c: Component, value: torch.Tensor) -> torch.Tensor:
    return value[:, :, c.head] if c.kind == "attn_head" else value


def _metric(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    lp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    tgt = lp.gather(-1, tokens[:, 1:, None])[..., 0].float()
    full = torch.zeros(mask.shape)
    full[:, :-1] = tgt
    return task_metric(full * mask, mask)


@torch.no_grad()
def reference_sweep(
    bridge: torch.nn.Module,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    ablation: str,
    stop_after_final_norm: bool = False,
    output: str = "write",
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Edges (source, target, similarity, std, direct_similarity, direct_std) and effects."""
    cfg = bridge.cfg
    parallel = bool(cfg.parallel_attn_mlp)
    comps = all_components(cfg.n_layers, cfg.n_heads)
    bridge.set_use_attn_result(True)
    logits, cache = bridge.run_with_cache(tokens)
    clean_metric = _metric(logits, tokens, mask)
    clean = {c.name: _take(c, cache[_out_hook(c)]).clone() for c in comps}
    clean_resid = {c.name: cache[_resid_hook(c, parallel)].clone() for c in comps}
    reads = {
        name: cache[name].clone()
        for name in cache
        if name.endswith(("ln1.hook_in", "ln2.hook_in")) or name == "ln_final.hook_in"
    }

    def recorder(store: dict[str, torch.Tensor]) -> list:
        def rec(hook_name: str):
            def fn(x, hook):
                store[hook_name] = x.detach().clone()
                if stop_after_final_norm and hook_name == "ln_final.hook_out":
                    raise StopAtLayerException(x)
                return x

            return fn

        hooks = {h for c in comps[1:] for h in (_out_hook(c), _resid_hook(c, parallel))}
        return [(h, rec(h)) for h in hooks]

    def measured(store: dict[str, torch.Tensor], c: Component, direct: bool) -> torch.Tensor:
        """``O_c`` in a recorded pass, under ``output``."""
        write = _take(c, store[_out_hook(c)])
        if output == "write" or c.kind == "logits":
            return write
        if not direct:
            return store[_resid_hook(c, parallel)]
        return clean_resid[c.name] + (write - clean[c.name])

    def sims(
        store: dict[str, torch.Tensor], src: Component, direct: bool
    ) -> dict[str, torch.Tensor]:
        ref = clean if output == "write" else clean_resid
        return {
            c.name: row_similarity(measured(store, c, direct), ref[c.name])
            for c in comps
            if is_downstream(src, c, parallel)
        }

    rows, effects = [], {}
    for src in comps:
        if src.kind == "logits":
            continue
        # total effect: ablate the source's output in the whole forward pass
        if src.kind == "input":
            repl = replacement(clean[src.name], ablation)
            hooks = [("blocks.0.hook_resid_pre", lambda x, hook, r=repl: r)]
        elif src.kind == "attn_head":
            z_clean = cache[f"blocks.{src.layer}.attn.hook_z"][:, :, src.head]
            z_repl = replacement(z_clean, ablation)

            def patch_z(x, hook, h=src.head, r=z_repl):
                x = x.clone()
                x[:, :, h] = r
                return x

            hooks = [(f"blocks.{src.layer}.attn.hook_z", patch_z)]
        else:
            repl = replacement(clean[src.name], ablation)
            hooks = [(f"blocks.{src.layer}.hook_mlp_out", lambda x, hook, r=repl: r)]
        store: dict[str, torch.Tensor] = {}
        out = bridge.run_with_hooks(tokens, fwd_hooks=hooks + recorder(store))
        total = sims(store, src, direct=False)
        if not stop_after_final_norm:
            effects[src.name] = float((_metric(out, tokens, mask) - clean_metric).mean())

        # direct effect: every read sees the clean stream, plus the source's delta if downstream
        delta = replacement(clean[src.name], ablation) - clean[src.name]

        def reader(name: str, c: Component, src: Component = src, delta=delta):
            add = delta if is_downstream(src, c, parallel) else 0.0
            return lambda x, hook: reads[name] + add

        read_hooks = []
        for layer in range(cfg.n_layers):
            head0 = Component(f"a{layer}.h0", "attn_head", layer, 0)
            mlp = Component(f"m{layer}", "mlp", layer)
            read_hooks.append(
                (f"blocks.{layer}.ln1.hook_in", reader(f"blocks.{layer}.ln1.hook_in", head0))
            )
            read_hooks.append(
                (f"blocks.{layer}.ln2.hook_in", reader(f"blocks.{layer}.ln2.hook_in", mlp))
            )
        final = Component("logits", "logits", cfg.n_layers)
        read_hooks.append(("ln_final.hook_in", reader("ln_final.hook_in", final)))
        store = {}
        bridge.run_with_hooks(tokens, fwd_hooks=read_hooks + recorder(store))
        direct = sims(store, src, direct=True)
        for name in total:
            rows.append(
                {
                    "source": src.name,
                    "target": name,
                    "similarity": float(total[name].mean()),
                    "std": float(total[name].std(correction=0)),
                    "direct_similarity": float(direct[name].mean()),
                    "direct_std": float(direct[name].std(correction=0)),
                }
            )
    return pd.DataFrame(rows), effects
