"""Benchmark: the batched ablation sweep against the plain TransformerLens loop, side by side.

One run builds random GPT-NeoX models of two shapes (Pythia-14M: 6 layers, d_model 128, 4 heads,
d_mlp 512; and a ~77M one: 8 layers, d_model 512, 8 heads, d_mlp 2048; both parallel residual,
rotary_pct 0.25, vocabulary 50304), saves each with ``save_pretrained`` and loads it through
``TransformerBridge.boot_transformers`` exactly as the product does
(``circuitatlas.ingest.checkpoints.load_checkpoint``). One model is one checkpoint; ablation is
``zero``. It times, per checkpoint:

* **naive**: ``tests/integration/reference_sweep.py``, the plain TransformerLens loop: one hooked
  full forward pass (``bridge.run_with_hooks``) per component for its total effects and the metric,
  and one per component for its direct effects, on all prompts at once;
* **naive, stop**: the same loop, but each pass stops once the final norm has run (a hook on
  ``ln_final.hook_out`` records it and raises TransformerLens' ``StopAtLayerException``), so the
  full-vocabulary unembedding is skipped. It cannot compute the effect on the task metric.
  ``stop_at_layer`` cannot do this in transformer-lens 4.x: the bridge stops *before* block
  ``stop_at_layer`` (``-1`` skips the last block), and ``stop_at_layer=n_layers`` silently runs
  the whole model and returns the logits (the script checks both and prints what it saw);
* **ours**: ``sweep_checkpoint(weights_from_bridge(bridge), prompts, "zero")``;
* torch's float32 matmul peak (``torch.mm`` of square matrices, best of several) with the same
  thread count, and the matmul FLOPs each variant performs (counted from the shapes, see
  :func:`ours_flops` and :func:`naive_flops`), giving achieved FLOP/s and its fraction of peak.

Prompts: 16 induction prompts of 32 tokens, ``[bos] + seg + seg + seg[0]`` with a 15-token
segment: ``induction_prompts(16, 15, 50304, seed, bos_token_id=0)`` (31 tokens, 14 scored
positions) plus one more repeated token, whose prediction (``seg[0]`` after ``seg[14]``, as in the
first copy) is scored too: 15 scored positions per prompt.

Before anything is timed, ours and the naive loop (stopping variant) are compared on the 14M
model (max abs difference of the similarities, total and direct, must be < 1e-4), and every timed
naive run is compared with ours again afterwards (similarities and metric effects).

The last line printed is one line of ``key=value`` pairs (speedups are ours vs the faster naive
variant; ``*_full`` vs the naive loop that computes everything ours computes).

    python benchmarks/sweep.py                 # both sizes, default repeats
    python benchmarks/sweep.py --sizes 14m --repeats 5 --naive-repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # the reference loop lives with the tests

from reference_sweep import reference_sweep  # noqa: E402

from circuitatlas.ingest.checkpoints import CheckpointRef, load_checkpoint  # noqa: E402
from circuitatlas.ingest.components import (  # noqa: E402
    Component,
    all_components,
    is_downstream,
)
from circuitatlas.ingest.model import weights_from_bridge  # noqa: E402
from circuitatlas.ingest.sweep import (  # noqa: E402
    read_groups,
    read_point,
    start_point,
    sweep_checkpoint,
)
from circuitatlas.ingest.tasks import PromptSet, induction_prompts  # noqa: E402

VOCAB = 50304
CHECK_TOL = 1e-4


@dataclass(frozen=True)
class Shape:
    """A GPT-NeoX shape."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    d_mlp: int
    d_vocab: int = VOCAB

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


SHAPES = {
    "14m": Shape("14m", n_layers=6, d_model=128, n_heads=4, d_mlp=512),
    "77m": Shape("77m", n_layers=8, d_model=512, n_heads=8, d_mlp=2048),
}


# -- models and prompts ----------------------------------------------------------------------------
def save_random_model(shape: Shape, directory: Path, seed: int) -> int:
    """Save a randomly initialized Pythia-style model; return its parameter count."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    config = GPTNeoXConfig(
        vocab_size=shape.d_vocab,
        hidden_size=shape.d_model,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        intermediate_size=shape.d_mlp,
        rotary_pct=0.25,
        use_parallel_residual=True,
        max_position_embeddings=2048,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = GPTNeoXForCausalLM(config).eval()
    model.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def load_bridge(directory: Path) -> torch.nn.Module:
    """Load a saved checkpoint the way the product does."""
    return load_checkpoint(
        CheckpointRef(step=0, model=str(directory), path=directory, revision=None)
    )


def benchmark_prompts(n_prompts: int, seed: int) -> PromptSet:
    """``[bos] + seg + seg + seg[0]``: 32 tokens, 15 scored positions per prompt."""
    base = induction_prompts(n_prompts, 15, VOCAB, seed, bos_token_id=0)
    tokens = torch.cat([base.tokens, base.tokens[:, 1:2]], dim=1)
    mask = torch.cat([base.metric_mask, torch.zeros(n_prompts, 1, dtype=torch.bool)], dim=1)
    mask[:, 30] = True  # predicts the appended seg[0], which followed seg[14] in the first copy
    return PromptSet("induction", tokens, mask, {**base.params, "appended": 1})


def naive_stop(bridge: torch.nn.Module, tokens: torch.Tensor, mask: torch.Tensor) -> tuple:
    """The reference loop with every pass stopped after the final norm (no metric effects)."""
    return reference_sweep(bridge, tokens, mask, "zero", stop_after_final_norm=True)


def stop_at_layer_behaviour(bridge: torch.nn.Module, tokens: torch.Tensor) -> str:
    """What ``run_with_hooks(stop_at_layer=...)`` returns for ``n_layers`` and ``-1``."""
    n = bridge.cfg.n_layers
    with torch.no_grad():
        at_n = bridge.run_with_hooks(tokens[:1], stop_at_layer=n)
        at_last = bridge.run_with_hooks(tokens[:1], stop_at_layer=-1)
    return (
        f"stop_at_layer={n} returns {tuple(at_n.shape)} "
        f"({'full logits: nothing skipped' if at_n.shape[-1] == VOCAB else 'a residual'}); "
        f"stop_at_layer=-1 returns {tuple(at_last.shape)} (the residual entering the last block)"
    )


# -- comparisons -------------------------------------------------------------------------------
def max_diff(ours, naive: tuple) -> float:
    """Max abs difference of similarities and metric effects (if any) between ours and a loop."""
    ref, effects = naive
    merged = ours.edges.merge(ref, on=["source", "target"], suffixes=("", "_ref"))
    assert len(merged) == len(ref) == len(ours.edges)
    worst = max(
        (merged[c] - merged[f"{c}_ref"]).abs().max() for c in ("similarity", "direct_similarity")
    )
    got = ours.components.set_index("name")["effect"]
    return max([float(worst), *(abs(got[k] - v) for k, v in effects.items())])


# -- FLOPs -------------------------------------------------------------------------------------
def _layer_flops(s: Shape, t: int) -> dict[str, int]:
    """Matmul FLOPs of one row (one prompt of ``t`` tokens) through the pieces of one block."""
    d, dh, h = s.d_model, s.d_head, s.n_heads
    return {
        "qkv": 2 * t * d * 3 * d,
        "scores_mix": 2 * 2 * t * t * d,  # q kᵀ and pattern @ v over all heads (full t × t)
        "w_o": 2 * t * d * d,  # z @ W_O: the block's attention output
        "gram": 2 * t * h * dh * dh,  # z @ (W_O[h] W_O[h]ᵀ): head-output dot products
        "mlp": 2 * 2 * t * d * s.d_mlp,
    }


def ours_flops(s: Shape, n_prompts: int, seq_len: int, n_scored: int) -> int:
    """Matmul FLOPs of ``sweep_checkpoint`` (zero ablation), counted from the shapes.

    * clean pass: every layer (attention with W_O, every head's output ``z_h @ W_O[h]``, the Gram
      products of the head norms, MLP) on ``N`` prompts; the unembedding at the ``n_scored``
      scored positions (clean metric) and at every position but the last (clean loss);
    * total effects: each source's ``N`` rows run from its start layer (the layer after it;
      ``input``: layer 0) to the final norm — attention with W_O, Gram, MLP per layer — and
      through the unembedding at the scored positions (the metric);
    * direct effects: for each read of the residual stream (a layer's attention, a layer's MLP;
      the final norm has no matmul) and each upstream source whose start point is not that read
      (those reads are the first reads of its total pass, recorded there), ``N`` rows recompute
      only that sub-module: attention without W_O (q, k, v, scores, mix, Gram) or the MLP. For a
      head source the read's input projection has rank ``dh``: ``N`` rows of ``Δz_h @ A_h``
      (``[t, dh] @ [dh, F]``) instead of ``[t, d] @ [d, F]``, plus ``A_h`` itself (``[dh, d] @
      [d, F]``, once per source and read: every chunk holds all prompts here) and, once per read,
      the clean centered projection (``N`` rows of ``[t, d] @ [d, F]``).

    Not counted: layer norms, softmax, GELU, the exp/log of the log-sum-exp, cosines, copies.
    """
    f = _layer_flops(s, seq_len)
    n, t, d, dh = n_prompts, seq_len, s.d_model, s.d_head
    attn_total = f["qkv"] + f["scores_mix"] + f["w_o"] + f["gram"]
    unembed = 2 * d * s.d_vocab  # per vector
    clean = n * s.n_layers * (attn_total + f["w_o"] + f["mlp"])  # + head outputs z_h @ W_O[h]
    clean += unembed * (n_scored + n * (t - 1))
    comps = all_components(s.n_layers, s.n_heads)
    sources = comps[:-1]
    total = 0
    for c in sources:
        layer, _ = start_point(c, True)
        total += n * (s.n_layers - layer) * (attn_total + f["mlp"]) + n_scored * unembed
    direct = 0
    for kind, layer in read_groups(s.n_layers):
        if kind == "final":
            continue
        if kind == "attn":
            reader = Component(f"a{layer}.h0", "attn_head", layer, 0)
            width, rest = 3 * d, f["scores_mix"] + f["gram"]  # F: q, k, v
        else:
            reader = Component(f"m{layer}", "mlp", layer)
            width, rest = s.d_mlp, f["mlp"] // 2  # F: the MLP's hidden layer; then W_out
        point = read_point(kind, layer, True)
        group = [
            c for c in sources if is_downstream(c, reader, True) and start_point(c, True) != point
        ]
        n_heads = sum(c.kind == "attn_head" for c in group)
        full_read = 2 * t * d * width
        direct += (len(group) - n_heads) * n * (full_read + rest)
        if n_heads:
            low_rank = n * (2 * t * dh * width + rest) + 2 * dh * d * width  # rows, then A_h
            direct += n_heads * low_rank + n * full_read  # + the clean centered projection
    return clean + total + direct


def naive_flops(s: Shape, n_prompts: int, seq_len: int, unembed: bool) -> int:
    """Matmul FLOPs of the naive loop: a clean pass plus two full passes per source.

    Each pass: every layer's q, k, v, scores, mix, W_O, every head's result (``hook_result``,
    another ``t · d · d``), MLP; with ``unembed`` the full-vocabulary unembedding at every
    position (TransformerBridge computes it even though only some positions are scored).
    """
    f = _layer_flops(s, seq_len)
    per_layer = f["qkv"] + f["scores_mix"] + 2 * f["w_o"] + f["mlp"]
    per_pass = n_prompts * (s.n_layers * per_layer)
    if unembed:
        per_pass += n_prompts * seq_len * 2 * s.d_model * s.d_vocab
    n_sources = 1 + s.n_layers * (s.n_heads + 1)
    return per_pass * (1 + 2 * n_sources)


# -- timing ------------------------------------------------------------------------------------
def matmul_peak(sizes: tuple[int, ...] = (2048, 3072, 4096), repeats: int = 5) -> float:
    """Best float32 ``torch.mm`` FLOP/s over square sizes."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


@dataclass
class Result:
    shape: Shape
    params: int
    naive: list[float]
    naive_stop: list[float]
    ours: list[float]
    flops: dict[str, int]
    check: float


def run_size(shape: Shape, args: argparse.Namespace, workdir: Path, check: bool) -> Result:
    directory = workdir / shape.name
    params = save_random_model(shape, directory, args.seed)
    bridge = load_bridge(directory)
    prompts = benchmark_prompts(args.prompts, args.seed)
    tokens, mask = prompts.tokens, prompts.metric_mask
    n_scored = int(mask.sum())
    behaviour = stop_at_layer_behaviour(bridge, tokens)
    print(f"[{shape.name}] {params / 1e6:.1f}M parameters; {behaviour}")

    def ours():
        return sweep_checkpoint(weights_from_bridge(bridge), prompts, "zero")

    worst = float("nan")
    if check:  # before timing: ours must agree with the naive loop
        worst = max_diff(ours(), naive_stop(bridge, tokens, mask))
        print(f"[{shape.name}] check before timing: max |ours - naive| = {worst:.2e}")
        if not worst < CHECK_TOL:
            raise SystemExit(f"ours disagrees with the naive loop by {worst:.2e}; not timing it")

    naive_s, stop_s, ours_s = [], [], []
    ours()  # warm-up (allocator, kernels)
    for i in range(max(args.repeats, args.naive_repeats)):
        if i < args.naive_repeats:
            t, _ = timed(lambda: naive_stop(bridge, tokens, mask))
            stop_s.append(t)
            t, ref = timed(lambda: reference_sweep(bridge, tokens, mask, "zero"))
            naive_s.append(t)
            diff = max_diff(ours(), ref)
            worst = diff if worst != worst else max(worst, diff)
            if not diff < CHECK_TOL:
                raise SystemExit(f"ours disagrees with the timed naive run by {diff:.2e}")
        if i < args.repeats:
            t, _ = timed(ours)
            ours_s.append(t)
        ran = [("naive", naive_s), ("naive stop", stop_s), ("ours", ours_s)]
        ran = [f"{label} {times[i]:.2f} s" for label, times in ran if len(times) > i]
        print(f"[{shape.name}] repeat {i + 1}: {', '.join(ran)}", flush=True)
    flops = {
        "naive": naive_flops(shape, args.prompts, tokens.shape[1], unembed=True),
        "naive_stop": naive_flops(shape, args.prompts, tokens.shape[1], unembed=False),
        "ours": ours_flops(shape, args.prompts, tokens.shape[1], n_scored),
    }
    return Result(shape, params, naive_s, stop_s, ours_s, flops, worst)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Timings are the best of the repeats (medians in the table too).",
    )
    parser.add_argument("--sizes", default="14m,77m", help="comma-separated of: 14m, 77m")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours (default 3)")
    parser.add_argument(
        "--naive-repeats", type=int, default=2, help="timed runs of each naive loop (default 2)"
    )
    parser.add_argument("--prompts", type=int, default=16, help="prompts (default 16)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SHAPES]
    if unknown or not sizes:
        parser.error(f"--sizes: unknown {unknown}; choose from {', '.join(SHAPES)}")
    if args.repeats < 1 or args.naive_repeats < 1:
        parser.error("--repeats and --naive-repeats must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    peak = matmul_peak()
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s (float32 torch.mm, {threads} threads)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            results.append(run_size(SHAPES[size], args, Path(tmp), check=size == "14m"))
    peak = max(peak, matmul_peak())  # measured again after the runs; the best counts

    header = f"{'model':<6}{'variant':<13}{'best s':>9}{'median s':>10}{'GFLOP':>9}"
    header += f"{'GFLOP/s':>9}{'÷ peak':>8}{'ours ×':>8}"
    print()
    print(header)
    print("-" * len(header))
    keys: dict[str, str] = {}
    for r in results:
        best = {"naive": min(r.naive), "naive_stop": min(r.naive_stop), "ours": min(r.ours)}
        median = {
            "naive": statistics.median(r.naive),
            "naive_stop": statistics.median(r.naive_stop),
            "ours": statistics.median(r.ours),
        }
        labels = {"naive": "naive", "naive_stop": "naive, stop", "ours": "ours"}
        for key, label in labels.items():
            rate = r.flops[key] / best[key]
            print(
                f"{r.shape.name:<6}{label:<13}{best[key]:>9.2f}{median[key]:>10.2f}"
                f"{r.flops[key] / 1e9:>9.1f}{rate / 1e9:>9.1f}{rate / peak:>8.2f}"
                f"{best[key] / best['ours']:>8.1f}"
            )
        name = r.shape.name
        stronger = min(best["naive"], best["naive_stop"])
        keys[f"speedup_naive_{name}"] = f"{stronger / best['ours']:.2f}"
        keys[f"speedup_naive_full_{name}"] = f"{best['naive'] / best['ours']:.2f}"
        keys[f"peak_fraction_{name}"] = f"{r.flops['ours'] / best['ours'] / peak:.3f}"
        keys[f"ours_s_{name}"] = f"{best['ours']:.3f}"
        keys[f"naive_s_{name}"] = f"{best['naive']:.3f}"
        keys[f"naive_stop_s_{name}"] = f"{best['naive_stop']:.3f}"
        keys[f"ours_gflop_{name}"] = f"{r.flops['ours'] / 1e9:.1f}"
        keys[f"naive_stop_gflop_{name}"] = f"{r.flops['naive_stop'] / 1e9:.1f}"
        if r.check == r.check:
            keys[f"max_abs_diff_{name}"] = f"{r.check:.2e}"
    print()
    print(
        "naive, stop: no metric effect (no logits). ours × = that row's time ÷ ours. "
        "GFLOP: matmul FLOPs counted from the shapes (see ours_flops / naive_flops)."
    )
    keys["matmul_peak_gflops"] = f"{peak / 1e9:.1f}"
    keys["threads"] = str(threads)
    print(" ".join(f"{k}={v}" for k, v in keys.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
