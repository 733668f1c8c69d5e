"""The ``circuits`` command: the faithful, 1-minimal edge circuit of each checkpoint, and its
trajectory over training."""

from __future__ import annotations

import json
from typing import Any

import click

from circuitatlas.cli import main
from circuitatlas.cli.options import (
    CONTEXT,
    echo_frame,
    format_option,
    friendly,
    pick_run,
    store_option,
)
from circuitatlas.errors import CircuitAtlasError


@main.command("circuits", context_settings=CONTEXT)
@click.option("--run", "run_id", default=None, help="Run id (default: the store's only run).")
@store_option
@click.option("--step", type=int, default=None, help="The checkpoint whose circuit to find.")
@click.option("--all-steps", is_flag=True, help="Every checkpoint, and the circuit's trajectory.")
@click.option(
    "--target",
    type=float,
    default=0.8,
    show_default=True,
    help="Share of the model's task performance the circuit must keep (faithfulness).",
)
@click.option(
    "--scores",
    type=click.Choice(["exact", "eap-ig"]),
    default="exact",
    show_default=True,
    help="Which edge score ranks the edges: exact patching (patch_effect) or EAP-IG (eap_ig).",
)
@click.option(
    "--ablation",
    default=None,
    help="What an edge outside the circuit carries: zero | mean | resample (default: the "
    "run's; another one recomputes the scores from the run's configuration).",
)
@click.option(
    "--bootstrap",
    type=int,
    default=None,
    metavar="B",
    help="Also find the circuit on B resamples of the prompts: mean Jaccard and spread.",
)
@click.option("--save", is_flag=True, help="Store each step's circuit as a Circuit node.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@format_option
@friendly
def circuits_cmd(
    run_id: str | None,
    store_url: str | None,
    step: int | None,
    all_steps: bool,
    target: float,
    scores: str,
    ablation: str | None,
    bootstrap: int | None,
    save: bool,
    device: str,
    fmt: str,
) -> None:
    """Find the circuit that carries the task at a checkpoint (or at every one).

    The edges are ranked by |score| (exact edge patching or EAP-IG, stored by the ingest); the
    circuit is the shortest prefix of that ranking whose faithfulness reaches --target, pruned
    until no single edge can go without falling below it. Faithfulness reruns the model with
    every edge outside the circuit carrying its source's ablated value. --all-steps adds the
    trajectory: Jaccard with the previous and the final circuit, when each edge first and last
    appears, and when a previous-token → induction edge enters (the emergence).

    \b
    Examples:
      circuitatlas circuits --step 1200
      circuitatlas circuits --all-steps --save
      circuitatlas circuits --all-steps --scores eap-ig --format json
      circuitatlas circuits --step 1200 --target 0.9 --bootstrap 20
      circuitatlas circuits --store neo4j://localhost:7687 --run 3f2a… --step 600 --ablation mean
    """
    from circuitatlas.queries import edge_circuits
    from circuitatlas.queries.circuit_trajectory import circuit_trajectory
    from circuitatlas.store import open_store

    if (step is None) == (not all_steps):
        raise CircuitAtlasError("give --step S or --all-steps (one of them)")
    if bootstrap is not None and bootstrap < 1:
        raise CircuitAtlasError(f"--bootstrap {bootstrap}: give at least 1 resample")
    settings = edge_circuits.CircuitSettings(target, scores, ablation, bootstrap or 0)
    settings.check()
    with open_store(store_url, writable=save) as store:
        run = pick_run(store, run_id)
        steps = store.stored_steps(run) if all_steps else [int(step)]  # type: ignore[arg-type]
        found = edge_circuits.find_circuits(store, run, steps, settings, device, progress=True)
        if save:
            store.write_circuits([c.record() for c in found])
        trajectory = circuit_trajectory(found, store.components(run)) if all_steps else None
    for circuit in found:
        for note in circuit.notes:
            click.echo(f"note: {note}", err=True)
    table = edge_circuits.circuits_frame(found)
    if trajectory is not None:
        table = table.merge(
            trajectory.steps[["step", "jaccard_previous", "jaccard_final"]], on="step"
        )
    if fmt == "json":
        click.echo(json.dumps(_json(table, trajectory), default=str))
    elif fmt == "csv" or trajectory is None:
        echo_frame(table, fmt)
    else:
        echo_frame(table.drop(columns=["edges"]), fmt)
        click.echo(f"\nfinal circuit (step {found[-1].step}): {' '.join(found[-1].edge_names)}")
        click.echo("\nedges, by first appearance:")
        echo_frame(trajectory.edges, fmt)
        click.echo("\nemergence events (previous-token head → later induction head enters):")
        echo_frame(trajectory.events, fmt)
        when = trajectory.emergence
        click.echo(
            f"\nemergence: step {when}" if when is not None else "\nemergence: none at any step"
        )
    if save:
        click.echo(f"saved {len(found)} circuit(s) to {store_url or 'the store'}", err=True)


def _json(table: Any, trajectory: Any) -> dict[str, Any]:
    from circuitatlas.store.rows import plain_records

    out: dict[str, Any] = {"circuits": plain_records(table)}
    if trajectory is not None:
        out["edges"] = plain_records(trajectory.edges)
        out["components"] = plain_records(trajectory.components)
        out["events"] = plain_records(trajectory.events)
        out["emergence"] = trajectory.emergence
    return out
