"""The demo: train the toy run, ingest and analyze it in the store, summarize what formed when,
find the candidate circuits of its checkpoints and write the report of the circuit run.

The run is swept twice: with zero ablation (the source paper's) for the network analytics, and
with resample ablation (each component's output replaced by its output on another prompt, the
ablation circuit studies favour) for the pathfinding. Under zero ablation the direct edges from
``input`` into the layer-1 heads are strong enough that the three-hop induction path ranks just
below the top 5 at the last checkpoint; under resample ablation it ranks third.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from circuitatlas.analytics.analyze import DEFAULT_TAU, analyze
from circuitatlas.ingest import toy
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.queries import circuits as circuit_lib
from circuitatlas.queries.paths import PathResult, PathSettings, find_paths
from circuitatlas.report import write_report
from circuitatlas.store import StoreBase, check_store, open_store
from circuitatlas.store.ingest import ingest_plan

STORE_NAME = "circuitatlas.lbdb"
REPORT_DIR = "report"
CIRCUIT_ABLATION = "resample"  # how the demo's second sweep, the one for circuits, ablates
VALIDATION_ABLATION = "mean"  # how faithfulness removes what is outside a circuit
FAITHFUL = 0.8  # the faithfulness a circuit should reach to count as carrying the task


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
    """Train (or reuse) the toy run under ``out/toy``, ingest, analyze, find circuits and write
    the report (``out/report``); returns a summary.

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
    circuit_plan = plan_run(str(run_dir), None, SweepSettings(ablation=CIRCUIT_ABLATION))
    with open_store(url, writable=True) as store:
        ingested = ingest_plan(store, plan)
        counts = store.counts(plan.run_id)
        checkpoints = store.checkpoints(plan.run_id)
        table = summary_table(
            checkpoints, store.components(plan.run_id), store.edges(plan.run_id), log
        )
        analysis = analyze(store, plan.run_id, DEFAULT_TAU, progress=True)
        circuit_report = ingest_plan(store, circuit_plan)
        paths, circuit, emerged = find_circuits(store, circuit_plan.run_id)
        wider = faithful_circuit(store, circuit_plan.run_id, circuit.step)
        # the report shows the circuit run: its paths hold the induction circuit
        analyze(store, circuit_plan.run_id, DEFAULT_TAU, progress=False)
        report = write_report(store, circuit_plan.run_id, out / REPORT_DIR)
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
        f"candidate circuits: the same checkpoints swept with {CIRCUIT_ABLATION} ablation:",
        circuit_report.summary(),
        *circuit_summary(paths, circuit, emerged),
        _wider_line(wider, circuit),
        "",
        f"report of run {circuit_plan.run_id} (phases, roles, paths, the graph): {report.index}",
        "",
        f"try: circuitatlas analyze --store {url} --run {plan.run_id} --tau-sweep 0.3,0.5,0.7,0.9",
        f"     circuitatlas paths --store {url} --run {circuit_plan.run_id} --all-steps "
        f"--show persistence",
        f"     circuitatlas runs --store {url}   (and `circuitatlas query --help`)",
    ]
    return "\n".join(lines)


def find_circuits(
    store: StoreBase, run_id: str
) -> tuple[PathResult, circuit_lib.Circuit, int | None]:
    """The top-5 direct-effect ``input``→``logits`` paths of every checkpoint, the last
    checkpoint's candidate circuit (validated, stored) and the step the induction path emerged."""
    result = find_paths(store, run_id, None, PathSettings(), progress=True)
    circuits = circuit_lib.circuits_of(result)
    last = circuit_lib.validate(store, circuits[-1:], VALIDATION_ABLATION, progress=True)
    circuit_lib.save(store, circuits[:-1] + last)
    emerged = circuit_lib.induction_emergence(result, store.components(run_id))
    return result, last[0], emerged


def faithful_circuit(store: StoreBase, run_id: str, step: int) -> circuit_lib.Circuit | None:
    """The circuit of the fewest top paths at ``step`` whose faithfulness reaches 0.8."""
    return circuit_lib.smallest_faithful(
        store, run_id, step, PathSettings(), FAITHFUL, ablation=VALIDATION_ABLATION
    )


def circuit_summary(
    result: PathResult, circuit: circuit_lib.Circuit, emerged: int | None
) -> list[str]:
    """Lines for the demo: the strongest paths at the first and last checkpoints, the
    emergence of the induction path and the final circuit's faithfulness."""
    settings = result.settings
    lines = []
    for step in (result.steps[0], result.steps[-1]):
        frame = result.paths[result.paths.step == step][["rank", "path", "strength"]]
        lines += [
            "",
            f"strongest {settings.source}→{settings.sink} paths at step {step} "
            f"({settings.measure} effects; strength = product of the edge weights):",
            frame.to_string(index=False) if len(frame) else "(no path)",
        ]
    lines.append("")
    if emerged is None:
        lines.append(f"no induction path entered the top-{settings.k} at any checkpoint")
    else:
        lines.append(
            f"the induction path (top previous-token head → induction head) entered the "
            f"top-{settings.k} at step {emerged}: the circuit's emergence"
        )
    faith = circuit.faithfulness
    value = "not computed" if faith is None else f"{faith.value:.3f} ({faith.ablation} ablation)"
    lines.append(
        f"final circuit (step {circuit.step}, {len(circuit.components)} components: "
        f"{' '.join(circuit.components)}): faithfulness {value}"
    )
    return lines


def _wider_line(wider: circuit_lib.Circuit | None, circuit: circuit_lib.Circuit) -> str:
    if wider is None:
        return f"no circuit of up to 20 top paths reaches faithfulness {FAITHFUL}"
    if wider.settings.k == circuit.settings.k:
        return f"(it reaches the {FAITHFUL} faithfulness a circuit should have)"
    added = sorted(set(wider.components) - set(circuit.components))
    assert wider.faithfulness is not None
    return (
        f"below {FAITHFUL}: the top {wider.settings.k} paths reach it "
        f"({wider.faithfulness.value:.3f}), adding {' '.join(added)}"
    )
