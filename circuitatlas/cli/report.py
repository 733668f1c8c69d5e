"""Commands that write a run out: ``report`` (HTML), ``export`` (GraphML), ``demo`` and
``reproduce``."""

from __future__ import annotations

from pathlib import Path

import click

from circuitatlas.cli import main
from circuitatlas.cli.options import (
    CONTEXT,
    edges_option,
    friendly,
    length_options,
    own_store_option,
    pick_run,
    seed_option,
    store_option,
)
from circuitatlas.paper import CHECK_STEPS, CIRCUIT_STEPS


@main.command("report", context_settings=CONTEXT)
@click.option("--run", "run_id", default=None, help="Run id (default: the store's only run).")
@store_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory for index.html and the PNGs (new, empty or an earlier report).",
)
@click.option("-k", "--k", "k", type=int, default=5, show_default=True, help="Paths per step.")
@click.option(
    "--tau",
    type=float,
    default=None,
    help="Analysis threshold to show (default: the stored analysis, else 0.7 computed).",
)
@friendly
def report_cmd(
    run_id: str | None, store_url: str | None, out: Path, k: int, tau: float | None
) -> None:
    """Write a run's report: figures, the path persistence table and the interactive graph.

    OUT/index.html opens from disk with no network (everything is inlined); each figure is
    also a PNG beside it. The report reads the store and never writes to it: a run that was
    not analyzed (or not at --tau) is analyzed for the report only.

    \b
    Examples:
      circuitatlas report --store demo-run/circuitatlas.lbdb --out demo-run/report
      circuitatlas report --run 4800ca1244c7 --out reports/toy -k 8
      circuitatlas report --store neo4j://localhost:7687 --run r1 --out reports/r1 --tau 0.5
    """
    from circuitatlas.graph.network import check_tau
    from circuitatlas.graph.paths import PathSettings
    from circuitatlas.report import write_report
    from circuitatlas.store import open_store

    if tau is not None:
        check_tau(tau)
    PathSettings(k=k).check()
    with open_store(store_url) as store:
        run_id = pick_run(store, run_id)
        written = write_report(store, run_id, out, k=k, tau=tau)
    for note in written.warnings:
        click.echo(f"note: {note}", err=True)
    click.echo(f"report of run {run_id}: {written.index} ({len(written.figures)} figures)")


@main.command("export", context_settings=CONTEXT)
@click.option("--run", "run_id", default=None, help="Run id (default: the store's only run).")
@click.option("--step", type=int, required=True, help="The checkpoint to export.")
@store_option
@edges_option(help="Which effect's similarity --tau applies to (every edge carries both).")
@click.option(
    "--tau",
    type=float,
    default=None,
    help="Keep only edges whose similarity is below TAU, in (0, 2] (default: every edge).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="GraphML file to write (replaced whole if it exists).",
)
@friendly
def export_cmd(
    run_id: str | None,
    step: int,
    store_url: str | None,
    measure: str,
    tau: float | None,
    out: Path,
) -> None:
    """Write one checkpoint's graph as GraphML, for Gephi, Cytoscape or networkx.

    Nodes are the checkpoint's components (id = name) with every stored property (kind,
    layer, head, effect, scores and, once analyzed, centralities and role); edges are its
    INFLUENCES edges with similarity, weight and std of both effects. The file is written
    whole or not at all.

    \b
    Examples:
      circuitatlas export --step 1200 --out step1200.graphml
      circuitatlas export --store demo-run/circuitatlas.lbdb --run 4800ca1244c7 --step 300 \\
          --tau 0.7 --out graphs/step300.graphml
      circuitatlas export --step 1200 --edges direct --tau 0.9 --out direct.graphml
      circuitatlas export --store neo4j://localhost:7687 --step 1200 --out step1200.graphml
    """
    from circuitatlas.export import write_graphml
    from circuitatlas.graph.network import check_tau
    from circuitatlas.store import open_store

    if tau is not None:
        check_tau(tau)
    with open_store(store_url) as store:
        run_id = pick_run(store, run_id)
        graph = write_graphml(store, run_id, step, out, measure, tau)
    where = "every edge" if tau is None else f"{measure} similarity < {tau:g}"
    click.echo(
        f"run {run_id}, step {step} ({where}): {graph.number_of_nodes()} components, "
        f"{graph.number_of_edges()} edges → {out}"
    )


@main.command("demo", context_settings=CONTEXT)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-run"),
    show_default=True,
    help="Directory for the toy run and the store (OUT/circuitatlas.lbdb).",
)
@seed_option
@own_store_option
@friendly
def demo_cmd(out: Path, seed: int, store_url: str | None) -> None:
    """Train the toy run, ingest and analyze it in the store, and print what formed when.

    \b
    Examples:
      circuitatlas demo
      circuitatlas demo --out /tmp/demo --seed 1
      circuitatlas demo --store neo4j://localhost:7687
    """
    from circuitatlas.demo import run_demo

    click.echo(run_demo(out, seed, store_url))


@main.command("reproduce", context_settings=CONTEXT)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("reproduce-run"),
    show_default=True,
    help="Directory for the run, the store, claims.md and report/ (new, empty or an earlier "
    "reproduction's).",
)
@click.option(
    "--model",
    default=None,
    help="Checkpoints to use instead of training (a directory or a hub id such as "
    "EleutherAI/pythia-14m); default: train the Pythia-14M-shaped run in OUT/run.",
)
@click.option("--revisions", default=None, help="With --model: which checkpoints, e.g. paper.")
@own_store_option
@seed_option
@length_options(steps="default: the shape's, 800", checkpoints="default: 143")
@click.option(
    "--check-steps",
    type=int,
    default=CHECK_STEPS,
    show_default=True,
    help="Checkpoints, evenly spread over training, swept also with mean and resample ablation "
    "and on the second task.",
)
@click.option(
    "--circuit-steps",
    type=int,
    default=CIRCUIT_STEPS,
    show_default=True,
    help="Checkpoints of that spread whose circuits are found, for both tasks.",
)
@friendly
def reproduce_cmd(
    out: Path,
    model: str | None,
    revisions: str | None,
    store_url: str | None,
    seed: int,
    steps: int | None,
    checkpoints: int | None,
    check_steps: int,
    circuit_steps: int,
) -> None:
    """Run the source paper's experiment and check its claims one by one.

    Trains (or reuses) a Pythia-14M-shaped model on induction and a second task, sweeps every
    checkpoint with the paper's settings (zero ablation, total effects, τ 0.7) under both
    output definitions, with mean and resample ablation and on the second task, analyzes, and
    writes OUT/report/index.html whose first section is the table of the paper's claims.

    \b
    Examples:
      circuitatlas reproduce
      circuitatlas reproduce --out /tmp/repro --seed 1
      circuitatlas reproduce --check-steps 143 --circuit-steps 24
      circuitatlas reproduce --model EleutherAI/pythia-14m --revisions paper --store neo4j://db:7687
    """
    from circuitatlas.reproduce import run_reproduce

    if model is None and revisions is not None:
        raise click.UsageError("--revisions needs --model (the trained run has its own steps)")
    if model is not None and (steps is not None or checkpoints is not None):
        raise click.UsageError(
            "--steps and --checkpoints shape the trained run; leave them out with --model"
        )
    result = run_reproduce(
        out,
        model,
        revisions,
        store_url,
        seed,
        steps,
        checkpoints,
        check_steps=check_steps,
        circuit_steps=circuit_steps,
    )
    click.echo(result.summary())
