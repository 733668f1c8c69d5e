"""Benchmark: exact edge patching and EAP-IG against the naive hooked loop, and the circuit search.

One run measures two models, each loaded through ``TransformerBridge.boot_transformers`` as the
product loads checkpoints:

* **14m**: the random GPT-NeoX model of Pythia-14M's shape from ``benchmarks/sweep.py``
  (``SHAPES["14m"]``, ``save_random_model``, ``load_bridge``) on its 16 induction prompts of 32
  tokens (``benchmark_prompts``); one checkpoint;
* **toy**: both checkpoints (initialization and the last step) of a toy induction run, trained
  here with ``train_toy(out, steps=..., checkpoints=2)`` in a temporary directory, or an existing
  run given with ``--toy DIR``; the product's default prompts (16 induction prompts, ``seq_len``
  21).

Ablation is ``zero``. Per checkpoint it times (best of the repeats):

* ``patch_s``: ``EdgeScorer.patch_effects()``, the exact patch effect of every edge;
* ``naive_patch_s``: ``tests/integration/reference_edges.py``'s ``reference_patch_effects``, one
  hooked ``run_with_hooks`` per edge (two when the target is a head), on the same prompts. When
  the loop over all edges would take longer than ``--naive-budget`` seconds (estimated from a
  probe of a few edges), it runs on an evenly spaced, deterministic subset of the edges (the
  reference itself, restricted to those pairs) and its time is extrapolated to all edges by the
  number of hooked passes; the output says so;
* ``eap_ig_s``: ``EdgeScorer.eap_ig(8)``;
* ``circuit_search_s``: ``select_circuit`` on the exact scores (mean over prompts) with the
  ``EdgeScorer.faithfulness`` oracle and target 0.8 (a fresh scorer each repeat, so the oracle's
  two reference runs, every edge and none, are part of the search), and the number of candidate
  circuits it scored (``evaluations``).

Before any fast path is timed, ``patch_effects`` (mean over prompts) is compared with the naive
values on every edge the naive loop measured: ``check=ok`` when they agree to 1e-4, else
``check=FAIL`` and the script exits with status 1. It also prints the Spearman rank correlation
of ``patch_effect`` and ``eap_ig`` (means over prompts) and whether each speedup target is met:
``speedup_patch_vs_naive`` ≥ 10 and ``speedup_eap_ig_vs_exact`` (``patch_s / eap_ig_s``) ≥ 20 on
the 14M shape. The last line printed is one line of ``key=value`` pairs.

    python benchmarks/circuits.py                      # both models, default repeats
    python benchmarks/circuits.py --quick              # CI-sized: few prompts, short toy run
    python benchmarks/circuits.py --models 14m --repeats 5 --threads 2
    python benchmarks/circuits.py --toy runs/toy --naive-budget 300
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # the reference loop lives with the tests

import reference_edges  # noqa: E402
from reference_edges import reference_patch_effects  # noqa: E402
from sweep import SHAPES, benchmark_prompts, load_bridge, save_random_model  # noqa: E402

from circuitatlas.graph.selection import select_circuit  # noqa: E402
from circuitatlas.ingest.checkpoints import list_checkpoints, load_checkpoint  # noqa: E402
from circuitatlas.ingest.contract import SweepSettings  # noqa: E402
from circuitatlas.ingest.edge_scores import EdgeScorer  # noqa: E402
from circuitatlas.ingest.model import ForwardPieces, weights_from_bridge  # noqa: E402
from circuitatlas.ingest.tasks import PromptSet, load_prompts  # noqa: E402
from circuitatlas.ingest.toy import train_toy  # noqa: E402

ABLATION = "zero"
CHECK_TOL = 1e-4
IG_STEPS = 8
TARGET_FAITHFULNESS = 0.8
TARGET_PATCH_VS_NAIVE = 10.0
TARGET_EAP_IG_VS_EXACT = 20.0  # on the 14M shape
PROBE_EDGES = 8  # edges timed first to estimate the naive loop over all edges


@dataclass
class Result:
    """The figures of one checkpoint."""

    label: str
    edges: int
    prompts: int
    patch: list[float] = field(default_factory=list)
    eap_ig: list[float] = field(default_factory=list)
    search: list[float] = field(default_factory=list)
    naive: list[float] = field(default_factory=list)  # extrapolated to all edges when subset
    naive_edges: int = 0  # edges the naive loop measured
    check: float = math.nan
    evaluations: int = 0
    circuit_edges: int = 0
    faithfulness: float = math.nan
    reached: bool = False
    spearman: float = math.nan


# -- the naive loop ----------------------------------------------------------------------------
@contextlib.contextmanager
def only_pairs(pairs: set[tuple[str, str]] | None) -> Iterator[None]:
    """Within the block, ``reference_patch_effects`` loops over ``pairs`` only (all when None):
    the reference itself, with its edge test restricted to those pairs."""
    if pairs is None:
        yield
        return
    original = reference_edges.is_downstream
    reference_edges.is_downstream = lambda i, j, parallel: (i.name, j.name) in pairs
    try:
        yield
    finally:
        reference_edges.is_downstream = original


def naive(bridge, prompts: PromptSet, pairs: set[tuple[str, str]] | None) -> pd.DataFrame:
    with only_pairs(pairs):
        return reference_patch_effects(bridge, prompts.tokens, prompts.metric_mask, ABLATION)


def spaced_subset(edges: list[tuple[str, str]], k: int) -> list[tuple[str, str]]:
    """``k`` edges evenly spaced over the edge order (deterministic; covers every target kind)."""
    if k >= len(edges):
        return list(edges)
    picks = sorted({round(float(x)) for x in np.linspace(0, len(edges) - 1, k)})
    return [edges[i] for i in picks]


def passes(edges: list[tuple[str, str]], head_targets: set[str]) -> int:
    """Hooked forward passes of the naive loop over ``edges``: its clean run, one per edge, two
    when the target is a head."""
    return 1 + sum(2 if dst in head_targets else 1 for _, dst in edges)


# -- timing ------------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def new_scorer(bridge, prompts: PromptSet) -> EdgeScorer:
    weights = weights_from_bridge(bridge)
    fp = ForwardPieces(weights, prompts.tokens.shape[1])
    return EdgeScorer(fp, prompts.tokens, prompts.metric_mask, ABLATION)


def run_checkpoint(
    label: str, bridge, prompts: PromptSet, args: argparse.Namespace
) -> Result | None:
    """Every figure of one checkpoint; None when the check fails."""
    scorer = new_scorer(bridge, prompts)
    names = [(scorer.names[i], scorer.names[j]) for i, j in scorer.pairs]
    heads = {c.name for c in scorer.comps if c.kind == "attn_head"}
    r = Result(label, scorer.n_edges, scorer.n)
    fast = scorer.patch_effects().mean(dim=1).double().cpu().numpy()  # also the warm-up
    fast_by_edge = dict(zip(names, fast, strict=True))

    # the naive loop: all edges when it fits the budget, else a deterministic subset
    probe = spaced_subset(names, PROBE_EDGES)
    naive(bridge, prompts, set(probe[:1]))  # warm-up (the bridge's first hooked passes)
    t_probe, _ = timed(lambda: naive(bridge, prompts, set(probe)))
    estimate = t_probe * passes(names, heads) / passes(probe, heads)
    if estimate <= args.naive_budget:
        measured, pairs = names, None
    else:
        k = max(PROBE_EDGES, int(len(names) * args.naive_budget / estimate))
        measured = spaced_subset(names, k)
        pairs = set(measured)
    r.naive_edges = len(measured)
    scale = passes(names, heads) / passes(measured, heads)
    note = (
        "all edges"
        if pairs is None
        else f"{len(measured)} of {len(names)} edges (evenly spaced), extrapolated ×{scale:.2f} "
        f"by hooked passes ({passes(measured, heads)} of {passes(names, heads)})"
    )
    print(
        f"[{label}] naive loop: probe of {len(probe)} edges {t_probe:.2f} s, all edges estimated "
        f"{estimate:.0f} s (budget {args.naive_budget:g} s) -> measuring {note}",
        flush=True,
    )
    worst = 0.0
    for i in range(args.naive_repeats):
        t, ref = timed(lambda: naive(bridge, prompts, pairs))
        r.naive.append(t * scale)
        diffs = [abs(fast_by_edge[s, d] - v) for s, d, v in ref.itertuples(index=False)]
        if len(diffs) != len(measured):
            raise RuntimeError("the naive loop measured other edges than asked")  # a bug
        worst = max(worst, max(diffs))
        print(f"[{label}] naive repeat {i + 1}: {t:.2f} s measured", flush=True)
    r.check = worst
    ok = worst < CHECK_TOL
    print(
        f"[{label}] check={'ok' if ok else 'FAIL'}: max |patch_effects - naive| = {worst:.2e} "
        f"over {len(measured)} edges (tolerance {CHECK_TOL:g})",
        flush=True,
    )
    if not ok:
        return None

    for _ in range(args.repeats):
        r.patch.append(timed(scorer.patch_effects)[0])
    scorer.eap_ig(IG_STEPS)  # warm-up (autograd)
    ig = None
    for _ in range(args.repeats):
        t, ig = timed(lambda: scorer.eap_ig(IG_STEPS))
        r.eap_ig.append(t)
    r.spearman = spearman(fast, ig.mean(dim=1).double().cpu().numpy())
    for _ in range(args.repeats):
        fresh = new_scorer(bridge, prompts)  # nothing cached from an earlier search

        def oracle(masks: np.ndarray, scorer: EdgeScorer = fresh) -> np.ndarray:
            return scorer.faithfulness(torch.as_tensor(masks)).cpu().numpy()

        t, sel = timed(lambda: select_circuit(fast, oracle, TARGET_FAITHFULNESS))
        r.search.append(t)
    r.evaluations, r.circuit_edges = sel.evaluations, len(sel.edges)
    r.faithfulness, r.reached = sel.faithfulness, sel.reached
    print(
        f"[{label}] patch {min(r.patch):.3f} s, eap_ig {min(r.eap_ig):.3f} s, circuit search "
        f"{min(r.search):.3f} s ({r.evaluations} circuits scored)",
        flush=True,
    )
    return r


# -- models --------------------------------------------------------------------------------------
def run_14m(args: argparse.Namespace, workdir: Path) -> list[Result | None]:
    shape = SHAPES["14m"]
    directory = workdir / "14m"
    params = save_random_model(shape, directory, args.seed)
    print(f"[14m] random GPT-NeoX, {params / 1e6:.1f}M parameters", flush=True)
    bridge = load_bridge(directory)
    return [run_checkpoint("14m", bridge, benchmark_prompts(args.prompts, args.seed), args)]


def run_toy(args: argparse.Namespace, workdir: Path) -> list[Result | None]:
    run_dir = args.toy
    if run_dir is None:
        run_dir = workdir / "toy"
        t, _ = timed(
            lambda: train_toy(
                run_dir, steps=args.toy_steps, checkpoints=2, seed=args.seed, progress=False
            )
        )
        print(f"[toy] trained {args.toy_steps} steps in {t:.1f} s", flush=True)
    out = []
    for ref in list_checkpoints(str(run_dir)):
        bridge = load_checkpoint(ref)
        cfg = bridge.cfg
        defaults = SweepSettings()
        prompts = load_prompts(
            "induction", args.prompts, defaults.seq_len, cfg.d_vocab, args.seed, bos_token_id=0
        )
        out.append(run_checkpoint(f"toy@{ref.step}", bridge, prompts, args))
    return out


# -- report --------------------------------------------------------------------------------------
def verdict(value: float, target: float) -> str:
    return "met" if value >= target else f"missed by ×{target / value:.1f}"


def report(results: list[Result], threads: int, args: argparse.Namespace) -> None:
    keys: dict[str, str] = {}
    print()
    for r in results:
        patch, ig, search = min(r.patch), min(r.eap_ig), min(r.search)
        naive_s = min(r.naive)
        vs_naive, vs_exact = naive_s / patch, patch / ig
        subset = r.naive_edges < r.edges
        how = f"extrapolated from {r.naive_edges} of {r.edges} edges" if subset else "all edges"
        ig_target = (
            verdict(vs_exact, TARGET_EAP_IG_VS_EXACT) if r.label == "14m" else "(target: 14m)"
        )
        print(f"== {r.label}: {r.edges} edges, {r.prompts} prompts, {threads} threads")
        print(f"  patch_s                 {patch:9.3f}   (median {statistics.median(r.patch):.3f})")
        print(f"  naive_patch_s           {naive_s:9.3f}   ({how})")
        patch_target = verdict(vs_naive, TARGET_PATCH_VS_NAIVE)
        print(f"  speedup_patch_vs_naive  {vs_naive:9.1f}   target ≥ 10: {patch_target}")
        print(f"  eap_ig_s                {ig:9.3f}   ({IG_STEPS} steps)")
        print(f"  speedup_eap_ig_vs_exact {vs_exact:9.1f}   target ≥ 20: {ig_target}")
        print(f"  circuit_search_s        {search:9.3f}   target {TARGET_FAITHFULNESS:g}")
        print(
            f"  evaluations             {r.evaluations:9d}   circuit of {r.circuit_edges} edges, "
            f"faithfulness {r.faithfulness:.3f}{'' if r.reached else ' (target not reached)'}"
        )
        print(f"  spearman(patch, eap_ig) {r.spearman:9.3f}")
        print(f"  check                   {'ok':>9}   max abs diff {r.check:.2e}")
        name = r.label.replace("@", "_")
        keys |= {
            f"patch_s_{name}": f"{patch:.4f}",
            f"naive_patch_s_{name}": f"{naive_s:.3f}",
            f"naive_edges_{name}": f"{r.naive_edges}/{r.edges}",
            f"speedup_patch_vs_naive_{name}": f"{vs_naive:.1f}",
            f"eap_ig_s_{name}": f"{ig:.4f}",
            f"speedup_eap_ig_vs_exact_{name}": f"{vs_exact:.2f}",
            f"circuit_search_s_{name}": f"{search:.3f}",
            f"evaluations_{name}": str(r.evaluations),
            f"spearman_{name}": f"{r.spearman:.3f}",
            f"edges_{name}": str(r.edges),
            f"prompts_{name}": str(r.prompts),
        }
    print()
    print(
        f"Times: best of {args.repeats} (naive: of {args.naive_repeats}); "
        f"naive_patch_s over a subset is scaled by hooked passes to all edges."
    )
    keys["threads"] = str(threads)
    keys["check"] = "ok"
    print(" ".join(f"{k}={v}" for k, v in keys.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n\n" + __doc__.rsplit("\n\n", 1)[1],
    )
    parser.add_argument("--models", default="14m,toy", help="comma-separated of: 14m, toy")
    parser.add_argument("--quick", action="store_true", help="CI-sized: see the defaults below")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs of each fast path (3; quick 1)"
    )
    parser.add_argument(
        "--naive-repeats", type=int, default=1, help="timed runs of the naive loop (default 1)"
    )
    parser.add_argument(
        "--naive-budget",
        type=float,
        default=None,
        help="seconds the naive loop may take per checkpoint before it is run on a subset of "
        "the edges and extrapolated (120; quick 10)",
    )
    parser.add_argument("--prompts", type=int, default=None, help="prompts (16; quick 4)")
    parser.add_argument("--toy", type=Path, default=None, help="an existing toy run to use")
    parser.add_argument(
        "--toy-steps", type=int, default=None, help="steps of the toy run trained (600; quick 50)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"repeats": (3, 1), "naive_budget": (120.0, 10.0), "prompts": (16, 4)}
    defaults["toy_steps"] = (600, 50)
    for name, (full, small) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in ("14m", "toy")]
    if unknown or not models:
        parser.error(f"--models: unknown {unknown}; choose from 14m, toy")
    if min(args.repeats, args.naive_repeats, args.prompts, args.toy_steps) < 1:
        parser.error("--repeats, --naive-repeats, --prompts and --toy-steps must be at least 1")
    if args.toy is not None and not args.toy.is_dir():
        parser.error(f"--toy {args.toy}: no such directory")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    results: list[Result | None] = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            run = run_14m if model == "14m" else run_toy
            results += run(args, Path(tmp))
            if any(r is None for r in results):
                print("check=FAIL: the fast patch effects disagree with the naive loop")
                return 1
    report([r for r in results if r is not None], threads, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
