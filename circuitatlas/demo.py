"""The demo: train the toy run, sweep it, and summarize what formed when."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from circuitatlas.ingest import toy
from circuitatlas.ingest.pipeline import SweepResult, SweepSettings, sweep_run, write_sweep


def _trained(run_dir: Path, seed: int) -> bool:
    """Whether ``run_dir`` already holds a complete default toy run of ``seed``."""
    try:
        cfg = json.loads((run_dir / toy.CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    return (
        cfg.get("seed") == seed
        and cfg.get("steps") == toy.DEFAULT_STEPS
        and all((run_dir / f"step{s}").is_dir() for s in cfg.get("checkpoint_steps", [None]))
    )


def summary_table(result: SweepResult, training_log: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per checkpoint: loss, metric, best previous-token and induction heads, strongest edge."""
    comps, edges = result.components, result.edges
    rows = []
    for step, ck in result.checkpoints.set_index("step").iterrows():
        heads = comps[(comps.step == step) & (comps.kind == "attn_head")]
        prev = heads.loc[heads.prev_token_score.idxmax()]
        ind = heads[heads.layer > 0]
        ind = ind.loc[ind.induction_score.idxmax()] if len(ind) else prev
        e = edges[(edges.step == step) & (edges.source != "input")]
        top = e.loc[e.direct_weight.idxmax()]
        row = {
            "step": step,
            "metric": round(ck.metric, 3),
            "prev_head": f"{prev['name']} {prev.prev_token_score:.2f}",
            "induction_head": f"{ind['name']} {ind.induction_score:.2f}",
            "top_direct_edge": f"{top.source}→{top.target} {top.direct_weight:.2f}",
        }
        if training_log is not None:
            near = training_log.iloc[(training_log.step - step).abs().argmin()]
            row["icl_loss"] = round(float(near.icl_loss), 3)
        rows.append(row)
    return pd.DataFrame(rows)


def run_demo(out: Path, seed: int = 0) -> str:
    """Train (or reuse) the toy run under ``out/toy``, sweep it into ``out/sweep``; a summary."""
    out = Path(out)
    run_dir, sweep_dir = out / "toy", out / "sweep"
    if _trained(run_dir, seed):
        log = pd.read_csv(run_dir / toy.LOG_NAME)
        note = f"reusing the toy run in {run_dir}"
    else:
        log = toy.train_toy(run_dir, seed=seed)
        note = f"trained the toy run in {run_dir} ({log.wall_time_s.iloc[-1]:.0f} s)"
    result = sweep_run(str(run_dir), None, SweepSettings())
    write_sweep(result, sweep_dir)
    table = summary_table(result, log)
    jump = result.checkpoints.set_index("step").metric.diff().idxmax()
    n_ckpt = len(result.checkpoints)
    lines = [
        note,
        f"swept {n_ckpt} checkpoints × {len(result.edges) // n_ckpt} edges"
        f" (run {result.run_id}) → {sweep_dir}",
        "",
        table.to_string(index=False),
        "",
        f"largest gain of the task metric (mean log-prob on the repeat) ends at step {jump}.",
    ]
    return "\n".join(lines)
