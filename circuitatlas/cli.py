"""The ``circuitatlas`` command: thin, it parses, calls the library and prints."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from circuitatlas.errors import CircuitAtlasError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors into one line and a non-zero exit; tracebacks only with ``--debug``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except CircuitAtlasError as e:
            if debug:
                raise
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as e:
            if debug:
                raise
            first = str(e).splitlines()[0] if str(e) else ""
            click.echo(
                f"error: {type(e).__name__}: {first} (rerun with --debug for the traceback)",
                err=True,
            )
            sys.exit(2)

    return wrapper


@click.group(context_settings=CONTEXT)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="circuitatlas")
def main(debug: bool) -> None:
    """circuitatlas: a transformer's training run as a time-stamped causal graph of components.

    \b
    Examples:
      circuitatlas demo --out demo-run
      circuitatlas train-toy --out runs/toy --seed 1
      circuitatlas sweep --model runs/toy --revisions 0:2000:250 --out runs/toy-sweep
      circuitatlas sweep --model EleutherAI/pythia-14m --revisions paper --out runs/p14m
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _sweep_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that sweeps checkpoints."""
    from circuitatlas.ingest.contract import ABLATIONS, SweepSettings

    d = SweepSettings()
    options = [
        click.option(
            "--task",
            default=d.task,
            show_default=True,
            help="'induction', a token-id file (.jsonl/.pt/.npy) or a text file (.txt).",
        ),
        click.option(
            "--prompts",
            "n_prompts",
            type=int,
            default=d.n_prompts,
            show_default=True,
            help="Number of prompts.",
        ),
        click.option(
            "--seq-len",
            type=int,
            default=d.seq_len,
            show_default=True,
            help="Induction prompt length ([bos] + segment + segment).",
        ),
        click.option(
            "--ablation",
            default=d.ablation,
            show_default=True,
            help=f"How an ablated output is replaced: {' | '.join(ABLATIONS)}.",
        ),
        click.option("--seed", type=int, default=d.seed, show_default=True, help="Prompt seed."),
        click.option("--tokenizer", default=None, help="Local tokenizer directory for .txt tasks."),
        click.option(
            "--memory-budget",
            "memory_budget_mb",
            type=float,
            default=d.memory_budget_mb,
            show_default=True,
            help="MiB of activations per batched chunk of ablated rows.",
        ),
        click.option(
            "--device", default=d.device, show_default=True, help="auto, cpu or cuda[:N]."
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _settings(**kw: Any) -> Any:
    from circuitatlas.ingest.contract import SweepSettings

    return SweepSettings(**kw)


@main.command("train-toy", context_settings=CONTEXT)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run directory.")
@click.option("--steps", type=int, default=None, help="Training steps (default 1200).")
@click.option("--checkpoints", type=int, default=None, help="Checkpoints to save (default 15).")
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@click.option(
    "--arch", default="gpt2", show_default=True, help="gpt2 | neox (Pythia-style) | neox-seq."
)
@_friendly
def train_toy_cmd(
    out: Path, steps: int | None, checkpoints: int | None, seed: int, arch: str
) -> None:
    """Train the toy induction model and save step<N>/ checkpoints.

    A 2-layer, 4-head GPT-2 learns to copy repeated segments; its induction circuit (a
    previous-token head in layer 0, induction heads in layer 1) forms a few hundred steps in.
    Checkpoints are log-spaced early, where learning is fast. Writes OUT/step<N>/,
    OUT/training_log.csv and OUT/toy_config.json.

    \b
    Examples:
      circuitatlas train-toy --out runs/toy
      circuitatlas train-toy --out runs/toy-s2 --seed 2 --steps 3000 --checkpoints 24
      circuitatlas train-toy --out runs/toy-pythia --arch neox
    """
    from circuitatlas.ingest import toy

    log = toy.train_toy(
        out,
        steps=steps if steps is not None else toy.DEFAULT_STEPS,
        checkpoints=checkpoints if checkpoints is not None else toy.DEFAULT_CHECKPOINTS,
        seed=seed,
        arch=arch,
    )
    last = log.iloc[-1]
    click.echo(
        f"trained {int(last['step'])} steps in {last['wall_time_s']:.0f} s; "
        f"loss on the repeated half {log['icl_loss'].iloc[0]:.2f} → {last['icl_loss']:.2f}; "
        f"checkpoints in {out}"
    )


@main.command("sweep", context_settings=CONTEXT)
@click.option(
    "--model", required=True, help="Local directory of step<N>/ checkpoints, or a hub model id."
)
@click.option(
    "--revisions",
    default=None,
    help="step1000,step2000 | 1000:143000:1000 | all | paper (default: every local step).",
)
@_sweep_options
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output directory.")
@_friendly
def sweep_cmd(model: str, revisions: str | None, out: Path, **kw: Any) -> None:
    """Ablation sweep of every selected checkpoint, written as Parquet frames.

    For each component (input, every head aN.hM, every MLP mN) and each component downstream of
    it, measures the total effect (ablated in the whole pass) and the direct effect (only the
    reader's input loses the write) as cosine similarities of outputs, plus each component's
    effect on the task metric and every head's previous-token and induction scores.

    \b
    Examples:
      circuitatlas sweep --model runs/toy --out runs/toy-sweep
      circuitatlas sweep --model runs/toy --revisions 0:2000:500 --ablation mean --out sw
      circuitatlas sweep --model EleutherAI/pythia-14m --revisions step1000,step2000 --out sw
      circuitatlas sweep --model runs/toy --task prompts.jsonl --out sw
    """
    from circuitatlas.ingest.pipeline import sweep_run, write_sweep

    result = sweep_run(model, revisions, _settings(**kw))
    write_sweep(result, out)
    click.echo(
        f"swept {len(result.checkpoints)} checkpoints, {len(result.edges)} edges "
        f"(run {result.run_id}) → {out}"
    )


def _store_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store",
        "store_url",
        default=None,
        metavar="URL",
        help="Store: a .lbdb file path (default $CIRCUITATLAS_STORE or circuitatlas.lbdb) or "
        "neo4j:// | neo4j+s:// | bolt:// (NEO4J_USERNAME, NEO4J_PASSWORD, NEO4J_DATABASE).",
    )(fn)


def _edges_option(
    default: str = "total", help: str = "Which effect's weight (and similarity) to read."
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--edges total|direct`` (the ``measure`` argument), shared by every command that reads
    edges; ``help`` says what the choice changes there."""
    return click.option(
        "--edges",
        "measure",
        type=click.Choice(["total", "direct"]),
        default=default,
        show_default=True,
        help=help,
    )


def _format_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json"]),
        default="table",
        show_default=True,
        help="How to print the rows.",
    )(fn)


def _echo_frame(frame: Any, fmt: str) -> None:
    """Print a frame as an aligned table, CSV or JSON records."""
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        import json

        from circuitatlas.store.rows import plain_records

        click.echo(json.dumps(plain_records(frame), default=str))
    elif frame.empty:
        click.echo("(no rows)")
    else:
        click.echo(frame.to_string(index=False))


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs → parameters; a value is read as JSON when it parses, else as a string."""
    import json
    import re

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise CircuitAtlasError(
                f"--param {pair!r}: give name=value with a Cypher parameter name, e.g. step=500"
            )
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


@main.command("ingest", context_settings=CONTEXT)
@click.option("--model", default=None, help="Checkpoint directory or hub id to sweep and store.")
@click.option(
    "--revisions",
    default=None,
    help="step1000,step2000 | 1000:143000:1000 | all | paper (default: every local step).",
)
@click.option(
    "--from",
    "from_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Store the Parquet output of `circuitatlas sweep` instead of sweeping.",
)
@_sweep_options
@_store_option
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Take the I-th of every N checkpoints (1-based), so N machines share one run.",
)
@click.option(
    "--batch-size",
    type=int,
    default=10_000,
    show_default=True,
    help="Rows per UNWIND batch (Neo4j).",
)
@_friendly
def ingest_cmd(
    model: str | None,
    revisions: str | None,
    from_dir: Path | None,
    store_url: str | None,
    shard: str | None,
    batch_size: int,
    **kw: Any,
) -> None:
    """Sweep a run's checkpoints into the graph store, checkpoint by checkpoint.

    Each checkpoint is written in one transaction, so it is wholly in the store or not at all.
    The run id comes from the configuration: running the same command again skips what is
    stored and resumes an interrupted ingest.

    \b
    Examples:
      circuitatlas ingest --model runs/toy
      circuitatlas ingest --model runs/toy --ablation mean --store runs/toy.lbdb
      circuitatlas ingest --from runs/toy-sweep --store neo4j://localhost:7687
      circuitatlas ingest --model EleutherAI/pythia-14m --revisions paper --shard 2/4 \\
          --store neo4j://db.lab:7687
    """
    from circuitatlas.store import check_store, open_store
    from circuitatlas.store.ingest import check_sweep, ingest_plan, ingest_sweep, parse_shard

    if (model is None) == (from_dir is None):
        raise CircuitAtlasError("ingest: give either --model (sweep now) or --from DIR (a sweep)")
    part = parse_shard(shard)
    check_store(store_url)
    if from_dir is not None:
        from circuitatlas.ingest.pipeline import read_sweep

        result = read_sweep(from_dir)
        check_sweep(result, str(from_dir))
        with open_store(store_url, writable=True, batch_size=batch_size) as store:
            report = ingest_sweep(store, result, part)
            counts = store.counts(report.run_id)
    else:
        from circuitatlas.ingest.pipeline import plan_run

        assert model is not None
        plan = plan_run(model, revisions, _settings(**kw))
        with open_store(store_url, writable=True, batch_size=batch_size) as store:
            report = ingest_plan(store, plan, part)
            counts = store.counts(report.run_id)
    click.echo(report.summary())
    click.echo(
        f"stored for run {report.run_id}: {counts['checkpoints']} checkpoints, "
        f"{counts['components']} components, {counts['edges']} edges"
    )


@main.command("runs", context_settings=CONTEXT)
@_store_option
@_format_option
@_friendly
def runs_cmd(store_url: str | None, fmt: str) -> None:
    """List the runs in the store.

    \b
    Examples:
      circuitatlas runs
      circuitatlas runs --store runs/toy.lbdb --format json
      circuitatlas runs --store neo4j://localhost:7687
    """
    from circuitatlas.store import open_store

    with open_store(store_url) as store:
        _echo_frame(store.runs(), fmt)


@main.command("query", context_settings=CONTEXT)
@click.argument("cypher")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A query parameter ($NAME); VALUE is read as JSON when it parses (500, 0.7, "
    '"a0.h1", [1,2]), else as text. Repeat for several.',
)
@_store_option
@_format_option
@_friendly
def query_cmd(cypher: str, params: tuple[str, ...], store_url: str | None, fmt: str) -> None:
    """Run read-only Cypher on the store; values go in as parameters.

    Statements that write are refused (LadybugDB is opened read-only for it, Neo4j runs it in
    a READ session) and change nothing.

    \b
    Examples:
      circuitatlas query "MATCH (r:Run) RETURN r.run_id, r.model"
      circuitatlas query "MATCH (c:Component {name: \\$name}) RETURN c.step, c.effect
          ORDER BY c.step" --param name=a1.h0
      circuitatlas query "MATCH (s)-[e:INFLUENCES]->(t) WHERE e.step = \\$step AND
          e.similarity < \\$tau RETURN s.name, t.name, e.weight" --param step=500
          --param tau=0.7 --format csv
    """
    from circuitatlas.store import open_store

    values = _parse_params(params)
    with open_store(store_url) as store:
        _echo_frame(store.cypher(cypher, **values), fmt)


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


def _pick_run(store: Any, run_id: str | None) -> str:
    """``--run``, or the store's only run when it holds one."""
    if run_id is not None:
        return run_id
    known = store.runs().run_id.tolist()
    if len(known) == 1:
        return str(known[0])
    hint = f"one of {', '.join(known)}" if known else "the store holds no run; ingest one first"
    raise CircuitAtlasError(f"--run: give the run ({hint})")


def _listed(frame: Any) -> Any:
    """List cells as space-separated text, for a table or CSV."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, list)).any():
            out[column] = out[column].map(lambda v: " ".join(map(str, v)) if v else "-")
    return out


@main.command("analyze", context_settings=CONTEXT)
@click.option("--run", "run_id", default=None, help="Run id (default: the store's only run).")
@_store_option
@click.option(
    "--tau",
    type=float,
    default=0.7,
    show_default=True,
    help="Keep an edge when its similarity is below TAU, in (0, 2].",
)
@_edges_option(help="Which effect the graph is built from.")
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
@_format_option
@_friendly
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
        run_id = _pick_run(store, run_id)
        if taus is not None:
            frame = sweep_taus(store, run_id, taus, tau, settings=settings, progress=True)
        else:
            result = run_analysis(store, run_id, settings, progress=True)
    for note in caught:
        click.echo(f"warning: {note.message}", err=True)
    if taus is not None:
        _echo_frame(frame if fmt == "json" else _listed(frame), fmt)
    elif fmt != "table":
        _echo_frame(result.checkpoints, fmt)
    else:
        click.echo(
            f"run {run_id}: analyzed {len(result.checkpoints)} checkpoints at τ={tau:g} "
            f"({measure} effects, edge cost 1/weight, top-{top_k}) → {store.url}\n"
        )
        _echo_frame(analysis_table(result.checkpoints), fmt)
        click.echo("\n" + result.summary())


@main.command("paths", context_settings=CONTEXT)
@click.option("--run", "run_id", default=None, help="Run id (default: the store's only run).")
@_store_option
@click.option("--step", type=int, default=None, help="The checkpoint to search.")
@click.option("--all-steps", is_flag=True, help="Search every checkpoint; adds persistence.")
@click.option("-k", "--k", "k", type=int, default=5, show_default=True, help="Paths per step.")
@_edges_option("direct", "Which effect the edges carry (direct: the circuit view).")
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
@_format_option
@_friendly
def paths_cmd(
    run_id: str | None,
    store_url: str | None,
    step: int | None,
    all_steps: bool,
    k: int,
    measure: str,
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
      circuitatlas paths --all-steps --save --validate --ablation mean --format json
      circuitatlas paths --store neo4j://localhost:7687 --run 4800ca1244c7 --all-steps
    """
    from circuitatlas.queries import circuits as circuit_lib
    from circuitatlas.queries.paths import PathSettings, find_paths
    from circuitatlas.store import open_store

    if (step is None) == (not all_steps):
        raise CircuitAtlasError("give --step S (one checkpoint) or --all-steps, not both")
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
        run_id = _pick_run(store, run_id)
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
        _echo_frame(next(iter(tables.values())), fmt)
    elif fmt == "json":
        import json

        from circuitatlas.store.rows import plain_records

        out: dict[str, Any] = {name: plain_records(frame) for name, frame in tables.items()}
        out |= {"run_id": run_id, "induction_emergence": emerged, "notes": notes}
        click.echo(json.dumps(out, default=str))
    else:
        where = "every edge with a positive weight" if tau is None else f"τ={tau:g}"
        click.echo(
            f"run {run_id}: the {k} strongest {source}→{sink} paths ({measure} effects, {where}; "
            f"strength = product of the edge weights clipped to 1)"
        )
        for name, frame in tables.items():
            click.echo(f"\n{name}:")
            _echo_frame(frame, fmt)
        if emerged is not None and show is None:
            click.echo(
                f"\ninduction path (top previous-token head → induction head) first among the "
                f"top-{k} at step {emerged}"
            )
        if save:
            click.echo(f"\nstored {len(circuits)} candidate circuit(s) in {store.url}")


@main.group("ask", context_settings=CONTEXT)
def ask_group() -> None:
    """Named questions over a run's training trajectory, answered in the database.

    Each question is one parameterized Cypher statement per backend
    (circuitatlas/store/cypher/*/ask_*.cypher); `circuitatlas ask QUESTION --help` says more.

    \b
    Examples:
      circuitatlas ask top pagerank -k 3
      circuitatlas ask history a1.h0 --metric induction_score
      circuitatlas ask edge a0.h1 a1.h0 --format csv
      circuitatlas ask first a0.h1 a1.h0 --above 0.5 --edges direct
      circuitatlas ask roles 300 720
      circuitatlas ask diff 300 720 --tau 0.7 -k 5
    """


def _ask_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--run``, ``--store`` and ``--format``, shared by every question."""
    fn = _format_option(_store_option(fn))
    return click.option(
        "--run", "run_id", default=None, help="Run id (default: the store's only run)."
    )(fn)


def _answer(store_url: str | None, run_id: str | None, fmt: str, question: str, **kw: Any) -> None:
    """Ask ``question`` (a function of circuitatlas.queries.trajectory) of the run and print the
    frame; its note, if any, goes to stderr."""
    from circuitatlas.queries import trajectory
    from circuitatlas.store import open_store

    with open_store(store_url) as store:
        frame = getattr(trajectory, question)(store, _pick_run(store, run_id), **kw)
    _echo_frame(frame, fmt)
    if frame.attrs.get("note"):
        click.echo(frame.attrs["note"], err=True)


@ask_group.command("top", context_settings=CONTEXT)
@click.argument("metric")
@click.option("-k", "--k", "k", type=int, default=5, show_default=True, help="Rows per step.")
@_ask_options
@_friendly
def ask_top_cmd(metric: str, k: int, run_id: str | None, store_url: str | None, fmt: str) -> None:
    """The k components with the largest METRIC at every checkpoint: step, rank, name, value.

    METRIC is a numeric component property: effect, prev_token_score, induction_score (from the
    sweep) or in_degree, out_degree, in_strength, out_strength, betweenness, closeness, pagerank
    (from `circuitatlas analyze`). Ties go by name; tied values share a rank; nulls are left out.

    \b
    Examples:
      circuitatlas ask top induction_score
      circuitatlas ask top pagerank -k 3 --format csv
      circuitatlas ask top effect --run 4800ca1244c7 --store neo4j://localhost:7687
    """
    _answer(store_url, run_id, fmt, "top_components", metric=metric, k=k)


@ask_group.command("history", context_settings=CONTEXT)
@click.argument("name")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="METRIC",
    help="A numeric property to show (repeat for several; default: every one stored).",
)
@_ask_options
@_friendly
def ask_history_cmd(
    name: str, metrics: tuple[str, ...], run_id: str | None, store_url: str | None, fmt: str
) -> None:
    """Component NAME's numeric properties at every checkpoint.

    \b
    Examples:
      circuitatlas ask history a1.h0
      circuitatlas ask history a0.h1 --metric prev_token_score --metric out_strength
      circuitatlas ask history m0 --format json
    """
    _answer(store_url, run_id, fmt, "component_history", name=name, metrics=metrics or None)


@ask_group.command("edge", context_settings=CONTEXT)
@click.argument("source")
@click.argument("target")
@_ask_options
@_friendly
def ask_edge_cmd(
    source: str, target: str, run_id: str | None, store_url: str | None, fmt: str
) -> None:
    """The edge SOURCE → TARGET at every checkpoint: similarity, weight, std of both effects.

    \b
    Examples:
      circuitatlas ask edge a0.h1 a1.h0
      circuitatlas ask edge input logits --format csv > input-logits.csv
    """
    _answer(store_url, run_id, fmt, "edge_history", source=source, target=target)


@ask_group.command("first", context_settings=CONTEXT)
@click.argument("source")
@click.argument("target")
@click.option("--above", type=float, required=True, help="The weight to exceed.")
@_edges_option()
@_ask_options
@_friendly
def ask_first_cmd(
    source: str,
    target: str,
    above: float,
    measure: str,
    run_id: str | None,
    store_url: str | None,
    fmt: str,
) -> None:
    """The first step at which the weight of SOURCE → TARGET exceeds --above.

    When it never does, no row, and a note says the largest weight it reached and when.

    \b
    Examples:
      circuitatlas ask first a0.h1 a1.h0 --above 0.5
      circuitatlas ask first a0.h2 a1.h1 --above 0.2 --edges direct --format json
    """
    _answer(
        store_url,
        run_id,
        fmt,
        "first_exceeding",
        source=source,
        target=target,
        value=above,
        measure=measure,
    )


@ask_group.command("roles", context_settings=CONTEXT)
@click.argument("step_a", type=int)
@click.argument("step_b", type=int)
@_ask_options
@_friendly
def ask_roles_cmd(
    step_a: int, step_b: int, run_id: str | None, store_url: str | None, fmt: str
) -> None:
    """Components whose role (spreader, gatherer, gatekeeper) differs between STEP_A and STEP_B.

    The roles are those the run's last `circuitatlas analyze` wrote (None: no role).

    \b
    Examples:
      circuitatlas ask roles 300 720
      circuitatlas ask roles 0 1200 --format csv
    """
    _answer(store_url, run_id, fmt, "role_changes", step_a=step_a, step_b=step_b)


@ask_group.command("diff", context_settings=CONTEXT)
@click.argument("step_a", type=int)
@click.argument("step_b", type=int)
@click.option(
    "--tau",
    type=float,
    default=0.7,
    show_default=True,
    help="An edge is present when its similarity is below TAU.",
)
@_edges_option()
@click.option("-k", "--k", "k", type=int, default=10, show_default=True, help="Rows per change.")
@_ask_options
@_friendly
def ask_diff_cmd(
    step_a: int,
    step_b: int,
    tau: float,
    measure: str,
    k: int,
    run_id: str | None,
    store_url: str | None,
    fmt: str,
) -> None:
    """How the graph at TAU changes from STEP_A to STEP_B.

    Edges that appeared (absent at STEP_A, present at STEP_B), vanished, strengthened and
    weakened (present at both; weight up or down): per change the k with the largest |delta|,
    delta = weight_after − weight_before.

    \b
    Examples:
      circuitatlas ask diff 300 720
      circuitatlas ask diff 0 1200 --tau 0.9 --edges direct -k 5 --format csv
    """
    _answer(
        store_url,
        run_id,
        fmt,
        "checkpoint_diff",
        step_a=step_a,
        step_b=step_b,
        tau=tau,
        measure=measure,
        k=k,
    )


@main.command("report", context_settings=CONTEXT)
@click.option("--run", "run_id", default=None, help="Run id (default: the store's only run).")
@_store_option
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
@_friendly
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
    from circuitatlas.analytics.analyze import check_tau
    from circuitatlas.queries.paths import PathSettings
    from circuitatlas.report import write_report
    from circuitatlas.store import open_store

    if tau is not None:
        check_tau(tau)
    PathSettings(k=k).check()
    with open_store(store_url) as store:
        run_id = _pick_run(store, run_id)
        written = write_report(store, run_id, out, k=k, tau=tau)
    for note in written.warnings:
        click.echo(f"note: {note}", err=True)
    click.echo(f"report of run {run_id}: {written.index} ({len(written.figures)} figures)")


@main.command("export", context_settings=CONTEXT)
@click.option("--run", "run_id", default=None, help="Run id (default: the store's only run).")
@click.option("--step", type=int, required=True, help="The checkpoint to export.")
@_store_option
@_edges_option(help="Which effect's similarity --tau applies to (every edge carries both).")
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
@_friendly
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
    from circuitatlas.analytics.analyze import check_tau
    from circuitatlas.export import write_graphml
    from circuitatlas.store import open_store

    if tau is not None:
        check_tau(tau)
    with open_store(store_url) as store:
        run_id = _pick_run(store, run_id)
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
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Store to ingest into instead of OUT/circuitatlas.lbdb (a path or neo4j://…).",
)
@_friendly
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


if __name__ == "__main__":
    main()
