"""Commands that make a run's data: ``train-toy``, ``sweep`` and ``ingest``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from circuitatlas.cli import main
from circuitatlas.cli.options import CONTEXT, friendly, length_options, seed_option, store_option
from circuitatlas.errors import CircuitAtlasError


def _sweep_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that sweeps checkpoints."""
    from circuitatlas.ingest.contract import (
        ABLATIONS,
        AUTO_EXACT_EDGES,
        EDGE_SCORES,
        OUTPUTS,
        SweepSettings,
    )

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
        click.option(
            "--output",
            type=click.Choice(OUTPUTS),
            default=d.output,
            show_default=True,
            help="A component's output O_j, compared clean vs ablated: what it writes into the "
            "residual stream (write), or the residual stream right after it writes (resid: "
            "resid_mid of a head's layer, resid_post in parallel blocks; an MLP's resid_post). "
            "A resid run has its own run id. Example: --output resid.",
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
        click.option(
            "--edge-scores",
            type=click.Choice(EDGE_SCORES),
            default=d.edge_scores,
            show_default=True,
            help="Task-metric edge scores: exact patching (patch_effect), EAP-IG (eap_ig), both "
            f"or none; auto: both up to {AUTO_EXACT_EDGES} edges, else eap-ig.",
        ),
        click.option(
            "--ig-steps",
            type=click.IntRange(min=1),
            default=d.ig_steps,
            show_default=True,
            help="EAP-IG interpolation steps between the clean and the ablated input.",
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
@click.option(
    "--shape",
    default="toy",
    show_default=True,
    help="Model: toy (2 layers, 4 heads, d_model 64) | pythia-14m (Pythia-14M's shape: GPT-NeoX, "
    "6 layers, 4 heads, d_model 128, d_mlp 512).",
)
@length_options(
    steps="default: toy 1200, pythia-14m 800",
    checkpoints="default: toy 15, pythia-14m 143, spaced like Pythia's revisions",
)
@seed_option
@click.option(
    "--arch",
    default=None,
    help="Block style: gpt2 | neox (Pythia-style) | neox-seq (default: the shape's, toy gpt2; "
    "pythia-14m is neox only).",
)
@click.option(
    "--tasks",
    default="induction",
    show_default=True,
    help="Tasks to train on, comma-separated: induction, successor (a mixture adds a quarter "
    "batch of the second task, its loss weighted 1/4).",
)
@friendly
def train_toy_cmd(
    out: Path,
    shape: str,
    steps: int | None,
    checkpoints: int | None,
    seed: int,
    arch: str | None,
    tasks: str,
) -> None:
    """Train the toy induction model and save step<N>/ checkpoints.

    A 2-layer, 4-head GPT-2 learns to copy repeated segments; its induction circuit (a
    previous-token head in layer 0, induction heads in layer 1) forms a few hundred steps in.
    Checkpoints are log-spaced early, where learning is fast. Writes OUT/step<N>/,
    OUT/training_log.csv and OUT/toy_config.json.

    --shape pythia-14m trains a GPT-NeoX of Pythia-14M's shape on the same task (143 checkpoints
    at Pythia's spacing: 0, 1, 2, 4, ... then even). --tasks induction,successor adds counting
    rows (x, x+1, x+2, ...: the next token follows from the current one alone), a quarter batch
    weighted 1/4; sweep them with `circuitatlas sweep --task successor`.

    \b
    Examples:
      circuitatlas train-toy --out runs/toy
      circuitatlas train-toy --out runs/toy-s2 --seed 2 --steps 3000 --checkpoints 24
      circuitatlas train-toy --out runs/toy-pythia --arch neox
      circuitatlas train-toy --out runs/pythia-shape --shape pythia-14m
      circuitatlas train-toy --out runs/mix --shape pythia-14m --tasks induction,successor
    """
    from circuitatlas.ingest import toy

    log = toy.train_toy(
        out, steps=steps, checkpoints=checkpoints, seed=seed, arch=arch, shape=shape, tasks=tasks
    )
    first, last = log.iloc[0], log.iloc[-1]
    others = [c for c in log.columns if c.endswith("_loss") and c not in ("train_loss", "icl_loss")]
    losses = "".join(f"; {c[: -len('_loss')]} loss {first[c]:.2f} → {last[c]:.2f}" for c in others)
    click.echo(
        f"trained {int(last['step'])} steps in {last['wall_time_s']:.0f} s; "
        f"loss on the repeated half {first['icl_loss']:.2f} → {last['icl_loss']:.2f}{losses}; "
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
@friendly
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
@store_option
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
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Sweep one Ray task per checkpoint: alone, on a local cluster; with HOST:PORT (or "
    "ray://HOST:PORT, auto) on that cluster. Needs the [ray] extra.",
)
@click.option(
    "--ray-cpus-per-task",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="CPUs each task takes when the cluster has no GPUs (with GPUs: one GPU each).",
)
@click.option(
    "--ray-retries",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Times a task is retried when its worker or node dies.",
)
@friendly
def ingest_cmd(
    model: str | None,
    revisions: str | None,
    from_dir: Path | None,
    store_url: str | None,
    shard: str | None,
    batch_size: int,
    ray_address: str | None,
    ray_cpus_per_task: float,
    ray_retries: int,
    **kw: Any,
) -> None:
    """Sweep a run's checkpoints into the graph store, checkpoint by checkpoint.

    Each checkpoint is written in one transaction, so it is wholly in the store or not at all.
    The run id comes from the configuration: running the same command again skips what is
    stored and resumes an interrupted ingest.

    With --ray each checkpoint is one Ray task: with Neo4j the worker writes it, with the
    embedded store the worker sends its frames back and this process writes them.

    \b
    Examples:
      circuitatlas ingest --model runs/toy
      circuitatlas ingest --model runs/toy --ablation mean --store runs/toy.lbdb
      circuitatlas ingest --from runs/toy-sweep --store neo4j://localhost:7687
      circuitatlas ingest --model EleutherAI/pythia-14m --revisions paper --shard 2/4 \\
          --store neo4j://db.lab:7687
      circuitatlas ingest --model runs/toy --ray
      circuitatlas ingest --model EleutherAI/pythia-1.4b --revisions all \\
          --ray head.lab:6379 --store neo4j://db.lab:7687
    """
    from circuitatlas.store import check_store, open_store
    from circuitatlas.store.ingest import check_sweep, ingest_plan, ingest_sweep, parse_shard

    if (model is None) == (from_dir is None):
        raise CircuitAtlasError("ingest: give either --model (sweep now) or --from DIR (a sweep)")
    if ray_address is not None and from_dir is not None:
        raise CircuitAtlasError(
            "--ray with --from: a read sweep needs no workers; leave --ray out to store it"
        )
    part = parse_shard(shard)
    check_store(store_url)
    if ray_address is not None:
        _ingest_ray(
            model,
            revisions,
            store_url,
            part,
            batch_size,
            ray_address,
            ray_cpus_per_task,
            ray_retries,
            kw,
        )
        return
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


def _ingest_ray(
    model: str | None,
    revisions: str | None,
    store_url: str | None,
    part: tuple[int, int],
    batch_size: int,
    address: str,
    cpus_per_task: float,
    retries: int,
    kw: dict[str, Any],
) -> None:
    """``ingest --ray``: plan here, sweep on the cluster, print where each checkpoint ran."""
    from circuitatlas.ingest.pipeline import plan_run
    from circuitatlas.store import default_store_url, open_store
    from circuitatlas.store.ray_ingest import (
        LOCAL,
        RaySettings,
        check_reachable,
        import_ray,
        ingest_ray,
    )

    import_ray()  # before the plan loads a checkpoint: a missing extra fails at once,
    check_reachable(address)  # and so does an address nothing listens at
    settings = RaySettings(address, cpus_per_task, retries)
    url = store_url or default_store_url()
    assert model is not None
    plan = plan_run(model, revisions, _settings(**kw))
    with open_store(url, writable=True, batch_size=batch_size) as store:
        if store.dialect != "neo4j" and address != LOCAL:
            click.echo(
                f"note: the embedded store {store.url} is a file on this machine: the workers "
                f"send their frames back and this process writes them",
                err=True,
            )
        report = ingest_ray(store, plan, settings, url, part)
        counts = store.counts(report.run_id)
    if report.workers:
        click.echo(f"swept on {report.workers}")
    for line in report.where():
        click.echo(f"  {line}")
    click.echo(report.summary())
    click.echo(
        f"stored for run {report.run_id}: {counts['checkpoints']} checkpoints, "
        f"{counts['components']} components, {counts['edges']} edges"
    )
    failure = report.failure()
    if failure is not None:
        raise failure
