"""A toy training run in which an induction circuit forms, saved as Hugging Face checkpoints.

A 2-layer attention-dominated GPT-2 learns to complete the second copy of a repeated random
segment: ``[start] + prefix + seg + seg``, loss on the predictable tokens of the second copy only.
Between steps ~300 and ~700 the loss on the repeat drops sharply (the induction phase change) while
a layer-0 head becomes a previous-token head and layer-1 heads become induction heads.

Three choices make the standard two-head circuit form rather than some other solution (measured:
with GPT-2's default init the task is learned by heads that attend a fixed far offset and score
< 0.16 on both scores): a larger initialization (``initializer_range=0.1``), a literal MLP width of
4 (the MLPs can barely compute, so the attention heads must) and untied embeddings.

``shape="pythia-14m"`` trains a GPT-NeoX of Pythia-14M's shape on the same data and loop instead
(:mod:`circuitatlas.ingest.toy_shapes` holds the shapes and their checkpoint schedules), and
``tasks=("induction", "successor")`` trains on a mixture: each batch holds ``batch_size``
induction rows plus a quarter as many counting rows ``[start] + x, s(x), s(s(x)), ...`` (the
``successor`` task of :mod:`circuitatlas.ingest.tasks`, rows as long as the induction rows), whose
loss counts a quarter as much (``mix_share``). Why not an even mixture: the successor's answer
never occurs earlier in its row, so that task penalizes copying from the context, the precursor of
the induction heads; measured with an even split of a batch of 32 and equal weights, the loss on the
repeat stayed near chance through 1000 steps (4.18 → 4.05), and with 32 + 8 rows at equal weights
through 300 steps (where it has already fallen to 3.8 without the second task).

Output layout of :func:`train_toy`::

    out/step{N}/          save_pretrained: config.json + model.safetensors, one per checkpoint
    out/training_log.csv  step, train_loss, icl_loss, wall_time_s (+ successor_loss if trained)
    out/toy_config.json   the run's settings (seed, steps, shape, tasks, model and data, token ids)

Token ids: 0 is the start token (``bos_token_id``, also ``eos_token_id``), ``vocab_size - 1`` pads
batches (``pad_token_id``), random tokens are ``1 .. vocab_size - 2``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from circuitatlas.atomic_dir import atomic_directory
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.head_scores import induction_scores, previous_token_scores
from circuitatlas.ingest.tasks import INDUCTION, SUCCESSOR, successor_cycle
from circuitatlas.ingest.toy_shapes import (
    ARCHES,
    DEFAULT_SHAPE,
    SHAPES,
    TOY_DEFAULT_CHECKPOINTS,
    TOY_DEFAULT_STEPS,
    ToySettings,
    checkpoint_steps,
    get_shape,
    pythia_checkpoint_steps,
)

__all__ = [
    "ARCHES",
    "DEFAULT_SHAPE",
    "SHAPES",
    "ToySettings",
    "checkpoint_steps",
    "parse_tasks",
    "pythia_checkpoint_steps",
    "toy_head_scores",
    "train_toy",
]

DEFAULT_STEPS = TOY_DEFAULT_STEPS  # of the default shape, ``toy``
DEFAULT_CHECKPOINTS = TOY_DEFAULT_CHECKPOINTS
TRAIN_TASKS = (INDUCTION, SUCCESSOR)  # the tasks a toy run can train on, in canonical order
LOG_EVERY = 10
CONFIG_NAME = "toy_config.json"
LOG_NAME = "training_log.csv"
LOG_COLUMNS = ["step", "train_loss", "icl_loss", "wall_time_s"]
TOY_KIND = "circuitatlas-toy"
_EVAL_SEED = 1_000_003  # the held-out batch is the same for every training seed


def _row_lengths(
    settings: ToySettings, size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded ``prefix``, ``seg`` and row ``length = 1 + prefix + 2 * seg``, each ``[size, 1]``."""
    s = settings
    prefix = torch.randint(0, s.prefix_max + 1, (size, 1), generator=gen)
    seg = torch.randint(s.seg_min, s.seg_max + 1, (size, 1), generator=gen)
    return prefix, seg, 1 + prefix + 2 * seg


def _induction_batch(
    settings: ToySettings, size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``[size, T]`` (padded at the end) and the loss mask ``[size, T - 1]`` on the targets.

    Each row is ``[start] + prefix + seg + seg`` of random tokens (neither start nor pad), padded at
    the end; the mask marks targets in the second copy that are predictable (all but its first
    token). Causal attention never looks right, so end padding changes no real position.
    """
    s = settings
    prefix, seg, length = _row_lengths(s, size, gen)
    width = int(length.max())
    raw = torch.randint(1, s.vocab_size - 1, (size, width), generator=gen)
    pos = torch.arange(width)[None, :]
    second = (pos >= 1 + prefix + seg) & (pos < length)
    tokens = raw.gather(1, torch.where(second, pos - seg, pos))
    tokens[:, 0] = s.start_token_id
    tokens[pos >= length] = s.pad_token_id
    target_mask = second & (pos >= 2 + prefix + seg)
    return tokens, target_mask[:, 1:]


def _successor_batch(
    settings: ToySettings, size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Counting rows ``[start] + x, s(x), ...`` as long as induction rows, padded at the end.

    ``s`` is the successor on :func:`~circuitatlas.ingest.tasks.successor_cycle` (the random
    tokens ``1 .. vocab_size - 2``), ``x`` a random start; rows are at most ``1 + prefix_max +
    2 * seg_max`` long, shorter than the cycle, so no token repeats. The mask marks every target
    after the first counted token (each a function of the token before it).
    """
    s = settings
    cycle = successor_cycle(s.vocab_size, s.start_token_id)
    _, _, length = _row_lengths(s, size, gen)
    width = int(length.max())
    first = torch.randint(0, len(cycle), (size, 1), generator=gen)
    pos = torch.arange(width)[None, :]
    tokens = cycle[(first + pos - 1) % len(cycle)]
    tokens[:, 0] = s.start_token_id
    tokens[pos >= length] = s.pad_token_id
    target_mask = (pos >= 2) & (pos < length)
    return tokens, target_mask[:, 1:]


_TASK_BATCHES = {INDUCTION: _induction_batch, SUCCESSOR: _successor_batch}


def parse_tasks(tasks: str | Sequence[str]) -> tuple[str, ...]:
    """The training tasks of ``tasks`` (``"induction,successor"`` or a sequence of names), in
    :data:`TRAIN_TASKS` order; raises :class:`CircuitAtlasError` on an unknown, repeated or
    missing name."""
    names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)
    unknown = [t for t in names if t not in TRAIN_TASKS]
    if unknown or not names or len(set(names)) < len(names):
        why = f"unknown task {unknown[0]!r}" if unknown else "give each task once"
        raise CircuitAtlasError(
            f"--tasks {','.join(names)}: {why}; choose one or more of {', '.join(TRAIN_TASKS)} "
            f"(comma-separated)"
        )
    return tuple(t for t in TRAIN_TASKS if t in names)


def _batch(
    settings: ToySettings, tasks: tuple[str, ...], size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, list[tuple[slice, float]]]:
    """A batch of ``size`` rows of the first task plus ``mix_share * size`` rows of each further
    task, padded to one width: tokens, loss mask and each task's rows with its loss weight (the
    first task's 1, each further task's ``mix_share``)."""
    share = settings.mix_share
    counts = [size] + [max(1, round(share * size))] * (len(tasks) - 1)
    parts = [_TASK_BATCHES[t](settings, n, gen) for t, n in zip(tasks, counts, strict=True)]
    width = max(tokens.shape[1] for tokens, _ in parts)
    groups: list[tuple[slice, float]] = []
    for i, n in enumerate(counts):
        begin = groups[-1][0].stop if groups else 0
        groups.append((slice(begin, begin + n), 1.0 if i == 0 else share))
    tokens = torch.cat(
        [F.pad(t, (0, width - t.shape[1]), value=settings.pad_token_id) for t, _ in parts]
    )
    mask = torch.cat([F.pad(m, (0, width - t.shape[1]), value=False) for t, m in parts])
    return tokens, mask, groups


def _loss(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    groups: list[tuple[slice, float]],
) -> torch.Tensor:
    """Weighted mean over the tasks' ``(rows, weight)`` groups of each task's mean cross-entropy
    on its masked targets (pad tokens masked out of attention)."""
    attention_mask = (tokens != model.config.pad_token_id).long()
    logits = model(input_ids=tokens, attention_mask=attention_mask).logits[:, :-1]
    ce = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none") * mask
    total = sum(w * (ce[r].sum() / mask[r].sum()) for r, w in groups)
    return total / sum(w for _, w in groups)


def _make_model(settings: ToySettings) -> torch.nn.Module:
    """The untrained toy model: a GPT-2 or, for the other block style, a GPT-NeoX."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

    s = settings
    tokens = {
        "bos_token_id": s.start_token_id,
        "eos_token_id": s.start_token_id,
        "pad_token_id": s.pad_token_id,
    }
    if s.arch.startswith("neox"):
        neox = GPTNeoXConfig(
            vocab_size=s.vocab_size,
            max_position_embeddings=s.n_positions,
            hidden_size=s.d_model,
            num_hidden_layers=s.n_layer,
            num_attention_heads=s.n_head,
            intermediate_size=s.n_inner,
            rotary_pct=0.25,
            use_parallel_residual=s.arch == "neox",
            initializer_range=s.initializer_range,
            tie_word_embeddings=s.tie_word_embeddings,
            attention_dropout=0.0,
            hidden_dropout=0.0,
            **tokens,
        )
        return GPTNeoXForCausalLM(neox)
    config = GPT2Config(
        vocab_size=s.vocab_size,
        n_positions=s.n_positions,
        n_embd=s.d_model,
        n_layer=s.n_layer,
        n_head=s.n_head,
        n_inner=s.n_inner,
        initializer_range=s.initializer_range,
        tie_word_embeddings=s.tie_word_embeddings,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **tokens,
    )
    return GPT2LMHeadModel(config)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' own progress bars (per saved or loaded file) for the duration."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _is_toy_run(path: Path) -> bool:
    """Whether ``path`` holds only what a previous :func:`train_toy` wrote."""
    try:
        kind = json.loads((path / CONFIG_NAME).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return False
    own = {CONFIG_NAME, LOG_NAME}
    return kind == TOY_KIND and all(
        p.name in own or (p.is_dir() and p.name.startswith("step")) for p in path.iterdir()
    )


def _check_args(out: Path, steps: int, checkpoints: int) -> None:
    if steps < 1:
        raise CircuitAtlasError(f"steps must be at least 1, got {steps}")
    if checkpoints < 2 or checkpoints > steps + 1:
        raise CircuitAtlasError(
            f"checkpoints must be between 2 and steps + 1 = {steps + 1}, got {checkpoints}"
        )
    if out.exists() and not out.is_dir():
        raise CircuitAtlasError(f"output {out} is a file: choose a directory path")
    if out.is_dir() and any(out.iterdir()) and not _is_toy_run(out):
        raise CircuitAtlasError(
            f"output directory {out} is not empty and holds no previous toy run: "
            "choose an empty or new directory"
        )


def loss_column(task: str) -> str:
    """The log column of ``task``'s held-out loss: ``icl_loss`` (induction) or ``{task}_loss``."""
    return "icl_loss" if task == INDUCTION else f"{task}_loss"


def train_toy(
    out: Path,
    steps: int | None = None,
    checkpoints: int | None = None,
    seed: int = 0,
    progress: bool = True,
    arch: str | None = None,
    shape: str = DEFAULT_SHAPE,
    tasks: str | Sequence[str] = (INDUCTION,),
) -> pd.DataFrame:
    """Train the toy model on the CPU and save ``checkpoints`` checkpoints under ``out``.

    ``shape`` names the model (:data:`SHAPES`: ``toy``, the default, or ``pythia-14m``); ``steps``
    and ``checkpoints`` default to the shape's (``toy``: 1200 steps, 15 checkpoints at
    :func:`checkpoint_steps`; ``pythia-14m``: 143 checkpoints at :func:`pythia_checkpoint_steps`).
    ``step0`` is the initialization. ``arch`` picks the block style: ``gpt2`` (the toy's default,
    whose circuit the tests check), ``neox`` (GPT-NeoX/Pythia-style parallel blocks, rotary) or
    ``neox-seq`` (sequential NeoX); ``None`` takes the shape's, and ``pythia-14m`` allows ``neox``
    only. ``tasks`` (:func:`parse_tasks`) are trained on together: a batch holds ``batch_size``
    rows of the first task and ``mix_share`` as many of each further one, whose loss has weight
    ``mix_share`` (the first task's 1).

    The log has a row every ``LOG_EVERY`` steps and at every checkpoint step, each of the model
    after ``step`` updates (the one saved as ``step{step}``): ``train_loss`` on that step's
    training batch, ``icl_loss`` on a fixed held-out induction batch (both: mean loss on the
    predictable tokens of the repeat; with several tasks the train loss is the weighted mean of
    the tasks' losses), ``{task}_loss`` on a fixed held-out batch of each other trained task,
    ``wall_time_s`` since training began. One CPU thread; a seed reproduces the run exactly.

    ``out`` must be new, empty, or a previous toy run (``toy_config.json``, ``training_log.csv`` and
    ``step*`` dirs only), which is replaced as a whole. The run is written beside ``out`` and moved
    into place at the end, so a failure leaves nothing half-written. Returns the log frame
    (columns ``LOG_COLUMNS`` and the other tasks' losses); raises :class:`CircuitAtlasError` on
    bad arguments, before anything is written.
    """
    out = Path(out)
    spec = get_shape(shape)
    settings = spec.settings_for(arch)
    task_names = parse_tasks(tasks)
    steps = spec.steps if steps is None else steps
    checkpoints = spec.checkpoints if checkpoints is None else checkpoints
    _check_args(out, steps, checkpoints)
    ckpt = spec.schedule(steps, checkpoints)
    log_at = sorted(set(range(0, steps + 1, LOG_EVERY)) | set(ckpt) | {steps})
    config = {
        "kind": TOY_KIND,
        "seed": seed,
        "steps": steps,
        "shape": spec.name,
        "tasks": list(task_names),
        "checkpoint_steps": ckpt,
        "log_every": LOG_EVERY,
        "eval_seed": _EVAL_SEED,
        **asdict(settings),
        "random_tokens": [1, settings.vocab_size - 2],
        "torch": torch.__version__,
    }

    threads = torch.get_num_threads()
    # One thread: the model is so small that a second thread saves ~15% alone, but on 2 busy
    # cores two threads were measured 5x slower than one (threads spin waiting for each other).
    torch.set_num_threads(1)
    try:
        with atomic_directory(out) as tmp:
            run = _Run(settings, task_names, steps, set(ckpt), set(log_at), seed)
            log = _train(tmp, run, progress, desc=f"train {spec.name}")
            log.to_csv(tmp / LOG_NAME, index=False)
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    finally:
        torch.set_num_threads(threads)
    return log


@dataclass(frozen=True)
class _Run:
    """What :func:`_train` trains: settings, tasks, step count, checkpoint and log steps, seed."""

    settings: ToySettings
    tasks: tuple[str, ...]
    steps: int
    ckpt: set[int]
    log_at: set[int]
    seed: int


def _train(tmp: Path, run: _Run, progress: bool, desc: str = "train toy") -> pd.DataFrame:
    s = run.settings
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(run.seed)
        model = _make_model(s)
    gen = torch.Generator().manual_seed(run.seed)
    evals = {  # each task's held-out batch: the same for every training seed
        task: _batch(s, (task,), s.eval_batch_size, torch.Generator().manual_seed(_EVAL_SEED))
        for task in dict.fromkeys((INDUCTION, *run.tasks))
    }
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    columns = ["step", "train_loss", *(loss_column(t) for t in evals), "wall_time_s"]
    rows: list[dict[str, float]] = []
    start = time.perf_counter()
    bar = tqdm(total=run.steps, desc=desc, unit="step", disable=not progress)
    with bar:
        for step in range(run.steps + 1):
            # every measure at row `step` is of the model after `step` updates, as is step{step}
            if step in run.ckpt:
                with _quiet_transformers():
                    model.save_pretrained(tmp / f"step{step}")
            if step in run.log_at:
                model.eval()
                with torch.no_grad():
                    held_out = {loss_column(t): _loss(model, *b).item() for t, b in evals.items()}
            batch = _batch(s, run.tasks, s.batch_size, gen)
            if step == run.steps:  # no update follows the last checkpoint
                with torch.no_grad():
                    loss = _loss(model, *batch)
            else:
                model.train()
                loss = _loss(model, *batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if step in run.log_at:
                elapsed = time.perf_counter() - start
                rows.append(
                    {"step": step, "train_loss": loss.item(), **held_out, "wall_time_s": elapsed}
                )
                bar.set_postfix(
                    loss=f"{loss.item():.3f}", **{k: f"{v:.3f}" for k, v in held_out.items()}
                )
            if step < run.steps:
                bar.update(1)
    return pd.DataFrame(rows, columns=columns)


def toy_head_scores(
    model_dir: Path, n_prompts: int = 32, seg_len: int = 10, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Previous-token and induction scores, each ``[n_layers, n_heads]``, of a saved checkpoint.

    Measured on ``n_prompts`` prompts ``[start] + seg + seg`` of random non-start tokens (eager
    attention, ``output_attentions=True``).
    """
    from transformers import AutoModelForCausalLM

    with _quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(Path(model_dir), attn_implementation="eager")
    model.eval()
    cfg = model.config
    start_id = cfg.bos_token_id if cfg.bos_token_id is not None else 0
    gen = torch.Generator().manual_seed(seed)
    special = {start_id, cfg.pad_token_id}
    allowed = torch.tensor([t for t in range(cfg.vocab_size) if t not in special])
    seg = allowed[torch.randint(0, len(allowed), (n_prompts, seg_len), generator=gen)]
    start = torch.full((n_prompts, 1), start_id, dtype=torch.long)
    tokens = torch.cat([start, seg, seg], dim=1)
    with torch.no_grad():
        attns = model(
            input_ids=tokens, attention_mask=torch.ones_like(tokens), output_attentions=True
        ).attentions
    prev = torch.stack([previous_token_scores(a) for a in attns])
    ind = torch.stack([induction_scores(a, tokens) for a in attns])
    return prev, ind
