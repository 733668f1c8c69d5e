"""Commands that compute on a stored run: ``analyze`` (centralities, roles, phases) and
``paths`` (strongest paths, candidate circuits)."""

from __future__ import annotations

from typing import Any

import click

from circuitatlas.cli import main
from circuitatlas.cli.options import (
    CONTEXT,
    echo_frame,
    edges_option,
    format_option,
    friendly,
    pick_run,
    store_option,
)
from circuitatlas.errors import CircuitAtlasError

# paths --scores: its choice → the path measure (similarity: the --edges one)
SCORE_MEASURES = {"patch": "patch", "eap-ig": "eap_ig"}
SCORE_CHOICES = ["similarity", *SCORE_MEASURES]


def _parse_taus(text: str) -> list[float]:
    """``0.3,0.5,0.7`` → thresholds (each checked by the analysis)."""
    try:
        taus = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CircuitAtlasError(
            f"--tau-sweep {text!r}: give thresholds separated by commas, e.g. 0.3,0.5,0.7,0.9"
        ) from None
    if not taus:
        raise CircuitAtlasError("--tau-sweep: give at least one threshold, e.g. 0.3,0.5,0.7,0.9")
    return taus


def _listed(frame: Any) -> Any:
    """List cells as space-separated text, for a table or CSV."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, list)).any():
            out[column] = out[column].map(lambda v: " ".join(map(str, v)) if v else "-")
    return out


@main.command("analyze", context_settings=CONTEXT)
@click.option("--run", "run_id", default=None, help="Run id (default: the store's only run).")
@store_option
@click.option(
    "--tau",
    type=float,
    default=0.7,
    show_default=True,
    help="Keep an edge when its similarity is below TAU, in (0, 2].",
)
@edges_option(help="Which effect the graph is built from.")
@click.option("--top-k", type=int, default=3, show_default=True, help="Members of each role.")
@click.option(
    "--reconfiguration",
    type=float,
    default=0.5,
    show_default=True,
    help="Flag a checkpoint when its role stability (mean Jaccard) falls below this.",
)
@click.option(
    "--penalty",
    type=float,
    default=3.0,
    show_default=True,
    help="Change-point penalty (higher: fewer phases).",
)
@click.option(
    "--tau-sweep",
    default=None,
    metavar="T1,T2,…",
    help="Report phases and roles per threshold against --tau instead; writes nothing.",
)
@format_option
@friendly
def analyze_cmd(
    run_id: str | None,
    store_url: str | None,
    tau: float,
    measure: str,
    top_k: int,
    reconfiguration: float,
    penalty: float,
    tau_sweep: str | None,
    fmt: str,
) -> None:
    """Centralities, roles and training phases of a stored run, written back to the store.

    Per checkpoint, on the graph of edges whose similarity is below TAU: in/out degree and
    strength, betweenness (edge cost 1/weight), closeness, PageRank per component; |V|, |E|,
    density, mean weight, Gini and tail index of the weights per checkpoint; the top-k spreaders,
    gatherers and gatekeepers, their stability and reconfiguration events; phases from change
    points of |V|, |E| and the task metric. On Neo4j the centralities run in the database (GDS).
    A later analysis with another TAU replaces every value.

    \b
    Examples:
      circuitatlas analyze --store demo-run/circuitatlas.lbdb
      circuitatlas analyze --run 4800ca1244c7 --tau 0.5 --edges direct --top-k 5
      circuitatlas analyze --tau-sweep 0.3,0.5,0.7,0.9 --format csv > tau-sweep.csv
      circuitatlas analyze --store neo4j://localhost:7687 --run 4800ca1244c7
    """
    import warnings

    from circuitatlas.analytics.analyze import AnalysisSettings, analysis_table, run_analysis
    from circuitatlas.analytics.thresholds import tau_sweep as sweep_taus
    from circuitatlas.store import open_store

    settings = AnalysisSettings(tau, measure, top_k, reconfiguration, penalty)
    settings.check()
    taus = _parse_taus(tau_sweep) if tau_sweep is not None else None
    with (
        open_store(store_url, writable=taus is None) as store,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        run_id = pick_run(store, run_id)
        if taus is not None:
            frame = sweep_taus(store, run_id, taus, tau, settings=settings, progress=True)
        else:
            result = run_analysis(store, run_id, settings, progress=True)
    for note in caught:
        click.echo(f"warning: {note.message}", err=True)
    if taus is not None:
        echo_frame(frame if fmt == "json" else _listed(frame), fmt)
    elif fmt != "table":
        echo_frame(result.checkpoints, fmt)
    else:
        click.echo(
            f"run {run_id}: analyzed {len(result.checkpoints)} checkpoints at τ={tau:g} "
            f"({measure} effects, edge cost 1/weight, top-{top_k}) → {store.url}\n"
        )
        echo_frame(analysis_table(result.checkpoints), fmt)
        click.echo("\n" + result.summary())


@main.command("paths", context_settings=CONTEXT)
@click.option("--run", "run_id", default=None, help="Run id (default: the store's only run).")
@store_option
@click.option("--step", type=int, default=None, help="The checkpoint to search.")
@click.option("--all-steps", is_flag=True, help="Search every checkpoint; adds persistence.")
@click.option("-k", "--k", "k", type=int, default=5, show_default=True, help="Paths per step.")
@edges_option("direct", "Which effect the edges carry (direct: the circuit view).")
@click.option(
    "--scores",
    type=click.Choice(SCORE_CHOICES),
    default="similarity",
    show_default=True,
    help="Edge weights: similarity (the --edges effect's weight), or each edge's share of its "
    "target's total |patch_effect| (patch) or |eap_ig| (eap-ig).",
)
@click.option(
    "--tau",
    type=float,
    default=None,
    help="Keep only edges whose similarity is below TAU (default: every positive weight).",
)
@click.option("--source", default="input", show_default=True, help="Where paths start.")
@click.option("--sink", default="logits", show_default=True, help="Where paths end.")
@click.option("--save", is_flag=True, help="Store each step's candidate circuit as a Circuit node.")
@click.option(
    "--validate",
    is_flag=True,
    help="Rerun the model: the faithfulness of each step's circuit (the run's checkpoints "
    "must still be where they were swept from).",
)
@click.option(
    "--ablation",
    type=click.Choice(["mean", "zero", "resample"]),
    default="mean",
    show_default=True,
    help="How --validate removes the components outside the circuit.",
)
@click.option(
    "--grow-to",
    type=float,
    default=None,
    metavar="F",
    help="With --validate: where a step's circuit falls short of faithfulness F, take the "
    "fewest top paths (up to 20) whose circuit reaches it.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option(
    "--show",
    type=click.Choice(["paths", "persistence", "emergence", "circuits"]),
    default=None,
    help="Print only this table (csv prints paths unless told).",
)
@format_option
@friendly
def paths_cmd(
    run_id: str | None,
    store_url: str | None,
    step: int | None,
    all_steps: bool,
    k: int,
    measure: str,
    scores: str,
    tau: float | None,
    source: str,
    sink: str,
    save: bool,
    validate: bool,
    ablation: str,
    grow_to: float | None,
    device: str,
    show: str | None,
    fmt: str,
) -> None:
    """The strongest SOURCE→SINK paths of a run's checkpoints: candidate circuits.

    A path's strength is the product of its edge weights (distance −log of the weight clipped
    to 1, summed): the strongest path (Dijkstra) and the k strongest loopless paths (Yen), in
    the database with GDS on Neo4j, with igraph on the embedded store. Direct-effect edges by
    default: total effects out of `input` sit near 1, so the one-edge path would always win.
    --scores patch|eap-ig weighs each edge by its share of its target's total absolute
    task-metric score (patch_effect or eap_ig) instead: the strengths of all input→logits
    paths then sum to 1, each the share of the task-relevant flow that path carries.
    With --all-steps also each path's persistence (first and last step in the top-k, fraction
    of checkpoints) and emergence events (a path entering the top 1). A step's candidate
    circuit is the union of the components on its top-k paths; --validate computes its
    faithfulness ((metric with all else ablated − all ablated) ÷ (clean − all ablated)), and
    --grow-to F adds top paths to a circuit that falls short of F until it reaches it.

    \b
    Examples:
      circuitatlas paths --store demo-run/circuitatlas.lbdb --run 4800ca1244c7 --step 1200
      circuitatlas paths --step 1200 --validate --grow-to 0.8
      circuitatlas paths --all-steps -k 5 --show persistence
      circuitatlas paths --step 1200 --edges total --tau 0.7 --source a0.h2 --sink logits
      circuitatlas paths --step 1200 --scores patch --validate
      circuitatlas paths --all-steps --save --validate --ablation mean --format json
      circuitatlas paths --store neo4j://localhost:7687 --run 4800ca1244c7 --all-steps
    """
    from circuitatlas.graph.paths import SCORES, PathSettings
    from circuitatlas.queries import circuits as circuit_lib
    from circuitatlas.queries.paths import find_paths
    from circuitatlas.store import open_store

    if (step is None) == (not all_steps):
        raise CircuitAtlasError("give --step S (one checkpoint) or --all-steps, not both")
    if scores != "similarity":
        given = click.get_current_context().get_parameter_source("measure")
        if given == click.core.ParameterSource.COMMANDLINE:
            raise CircuitAtlasError(
                f"--edges {measure}: picks a similarity measure; --scores {scores} weighs edges "
                f"by their {scores} scores, drop one of the two"
            )
        measure = SCORE_MEASURES[scores]
    settings = PathSettings(source, sink, k, measure, tau)
    settings.check()
    if show in ("persistence", "emergence") and not all_steps:
        raise CircuitAtlasError(f"--show {show}: compares checkpoints; add --all-steps")
    if show == "circuits" and not (save or validate):
        raise CircuitAtlasError("--show circuits: add --save or --validate")
    if grow_to is not None and not validate:
        raise CircuitAtlasError("--grow-to: measures faithfulness; add --validate")
    if grow_to is not None and not 0 < grow_to <= 1:
        raise CircuitAtlasError(f"--grow-to {grow_to}: give a faithfulness in (0, 1], e.g. 0.8")
    with open_store(store_url, writable=save) as store:
        run_id = pick_run(store, run_id)
        result = find_paths(store, run_id, None if all_steps else [step], settings, progress=True)
        circuits = circuit_lib.circuits_of(result)
        notes = list(result.notes)
        if validate:
            circuits = circuit_lib.validate(store, circuits, ablation, device, progress=True)
        if grow_to is not None:
            circuits, grown = circuit_lib.grow(store, circuits, grow_to, ablation, device, True)
            notes += grown
        if save:
            circuit_lib.save(store, circuits)
        emerged = circuit_lib.induction_emergence(result, store.components(run_id))
    for note in notes:
        click.echo(f"note: {note}", err=True)
    tables = {"paths": result.paths}
    if all_steps:
        tables |= {"persistence": result.persistence(), "emergence": result.emergence()}
    if validate or save:
        tables["circuits"] = circuit_lib.circuits_table(circuits)
    if show is not None:
        tables = {show: tables[show]}
    if fmt == "csv":
        echo_frame(next(iter(tables.values())), fmt)
    elif fmt == "json":
        import json

        from circuitatlas.store.rows import plain_records

        out: dict[str, Any] = {name: plain_records(frame) for name, frame in tables.items()}
        out |= {"run_id": run_id, "induction_emergence": emerged, "notes": notes}
        click.echo(json.dumps(out, default=str))
    else:
        where = "every edge with a positive weight" if tau is None else f"τ={tau:g}"
        what = (
            f"{measure} effects, {where}; strength = product of the edge weights clipped to 1"
            if not settings.scored
            else f"{scores} scores; strength = product of each edge's share of its target's "
            f"total |{SCORES[measure]}|"
        )
        click.echo(f"run {run_id}: the {k} strongest {source}→{sink} paths ({what})")
        for name, frame in tables.items():
            click.echo(f"\n{name}:")
            echo_frame(frame, fmt)
        if emerged is not None and show is None:
            click.echo(
                f"\ninduction path (top previous-token head → induction head) first among the "
                f"top-{k} at step {emerged}"
            )
        if save:
            click.echo(f"\nstored {len(circuits)} candidate circuit(s) in {store.url}")
