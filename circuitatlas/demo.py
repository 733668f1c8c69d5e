"""The demo: train the toy run, ingest and analyze it in the store, summarize what formed when,
find the circuit of every checkpoint and write the report.

The run is swept once with the default settings (zero ablation, the source paper's, with both
task-metric edge scores); the network analytics read its similarity edges, the circuits its exact
patch effects (the smallest faithful prefix of the ranked edges, pruned to be 1-minimal), and
the trajectory of those circuits says when the induction mechanism entered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from circuitatlas.analytics.analyze import DEFAULT_TAU, analyze
from circuitatlas.ingest import toy
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.queries.circuit_trajectory import Trajectory, circuit_trajectory
from circuitatlas.queries.edge_circuits import CircuitSettings, StepCircuit, find_circuits
from circuitatlas.report import write_report
from circuitatlas.store import check_store, open_store
from circuitatlas.store.ingest import ingest_plan

STORE_NAME = "circuitatlas.lbdb"
REPORT_DIR = "report"


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


def summary_table(
    checkpoints: pd.DataFrame,
    comps: pd.DataFrame,
    edges: pd.DataFrame,
    training_log: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per checkpoint: loss, metric, best previous-token and induction heads, strongest edge."""
    rows = []
    for step, ck in checkpoints.set_index("step").iterrows():
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


def run_demo(out: Path, seed: int = 0, store_url: str | None = None) -> str:
    """Train (or reuse) the toy run under ``out/toy``, ingest, analyze, find its circuits and
    write the report (``out/report``); returns a summary.

    The store is ``out/circuitatlas.lbdb`` unless ``store_url`` names another (e.g. Neo4j).
    """
    out = Path(out)
    run_dir = out / "toy"
    url = store_url or str(out / STORE_NAME)
    check_store(url)
    if _trained(run_dir, seed):
        log = pd.read_csv(run_dir / toy.LOG_NAME)
        note = f"reusing the toy run in {run_dir}"
    else:
        log = toy.train_toy(run_dir, seed=seed)
        note = f"trained the toy run in {run_dir} ({log.wall_time_s.iloc[-1]:.0f} s)"
    plan = plan_run(str(run_dir), None, SweepSettings())
    with open_store(url, writable=True) as store:
        ingested = ingest_plan(store, plan)
        counts = store.counts(plan.run_id)
        checkpoints = store.checkpoints(plan.run_id)
        table = summary_table(
            checkpoints, store.components(plan.run_id), store.edges(plan.run_id), log
        )
        analysis = analyze(store, plan.run_id, DEFAULT_TAU, progress=True)
        steps = store.stored_steps(plan.run_id)
        circuits = find_circuits(store, plan.run_id, steps, CircuitSettings(), progress=True)
        store.write_circuits([c.record() for c in circuits])
        trajectory = circuit_trajectory(circuits, store.components(plan.run_id))
        report = write_report(store, plan.run_id, out / REPORT_DIR)
    jump = checkpoints.set_index("step").metric.diff().idxmax()
    lines = [
        note,
        ingested.summary(),
        f"stored for run {plan.run_id}: {counts['checkpoints']} checkpoints, "
        f"{counts['components']} components, {counts['edges']} edges",
        "",
        table.to_string(index=False),
        "",
        f"largest gain of the task metric (mean log-prob on the repeat) ends at step {jump}.",
        "",
        f"analyzed at τ={DEFAULT_TAU:g} (total effects) and written back to the store:",
        analysis.summary(),
        *(f"warning: {note}" for note in analysis.warnings),
        "",
        *circuit_summary(circuits, trajectory),
        "",
        f"report of run {plan.run_id} (phases, roles, circuits, the graph): {report.index}",
        "",
        f"try: circuitatlas circuits --store {url} --run {plan.run_id} --all-steps",
        f"     circuitatlas analyze --store {url} --run {plan.run_id} --tau-sweep 0.3,0.5,0.7,0.9",
        f"     circuitatlas paths --store {url} --run {plan.run_id} --scores patch --step "
        f"{steps[-1]}",
        f"     circuitatlas runs --store {url}   (and `circuitatlas query --help`)",
    ]
    return "\n".join(lines)


def circuit_summary(circuits: list[StepCircuit], trajectory: Trajectory) -> list[str]:
    """Lines for the demo: the final circuit (its edges, size and faithfulness), how it grew
    over training and when the induction mechanism entered it."""
    final = circuits[-1]
    lines = [
        f"circuits (target faithfulness {final.settings.target:g}, {final.settings.scores} edge "
        f"scores, {final.ablation} ablation; the smallest faithful prefix of the edges ranked by "
        f"|score|, pruned to 1-minimal):",
        trajectory.steps.drop(columns=["edges", "reached"]).round(3).to_string(index=False),
        "",
        f"final circuit (step {final.step}): {len(final.edges)} of {final.n_model_edges} edges, "
        f"{len(final.components)} components, faithfulness {final.faithfulness:.3f}",
        *(
            f"  {name}  {score:+.3f}"
            for name, score in zip(final.edge_names, final.edge_scores, strict=True)
        ),
    ]
    if trajectory.emergence is None:
        lines.append("no previous-token → induction edge entered the circuit at any checkpoint")
    else:
        first = trajectory.events[trajectory.events.step == trajectory.emergence]
        lines.append(
            f"emergence: step {trajectory.emergence}, when {', '.join(first.edge)} (previous-token "
            f"head → induction head) entered the circuit"
        )
    return lines
