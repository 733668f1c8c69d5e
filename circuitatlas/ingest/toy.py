"""A toy training run in which an induction circuit forms, saved as Hugging Face checkpoints.

A 2-layer attention-dominated GPT-2 learns to complete the second copy of a repeated random
segment: ``[start] + prefix + seg + seg``, loss on the predictable tokens of the second copy only.
Between steps ~300 and ~700 the loss on the repeat drops sharply (the induction phase change) while
a layer-0 head becomes a previous-token head and layer-1 heads become induction heads.

Three choices make the standard two-head circuit form rather than some other solution (measured:
with GPT-2's default init the task is learned by heads that attend a fixed far offset and score
< 0.16 on both scores): a larger initialization (``initializer_range=0.1``), a literal MLP width of
4 (the MLPs can barely compute, so the attention heads must) and untied embeddings.

Output layout of :func:`train_toy`::

    out/step{N}/          save_pretrained: config.json + model.safetensors, one per checkpoint
    out/training_log.csv  step, train_loss, icl_loss, wall_time_s
    out/toy_config.json   the run's settings (seed, steps, model and data shape, token ids)

Token ids: 0 is the start token (``bos_token_id``, also ``eos_token_id``), ``vocab_size - 1`` pads
batches (``pad_token_id``), random tokens are ``1 .. vocab_size - 2``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
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

DEFAULT_STEPS = 1200
DEFAULT_CHECKPOINTS = 15
LOG_EVERY = 10
CONFIG_NAME = "toy_config.json"
LOG_NAME = "training_log.csv"
LOG_COLUMNS = ["step", "train_loss", "icl_loss", "wall_time_s"]
TOY_KIND = "circuitatlas-toy"
_EVAL_SEED = 1_000_003  # the held-out batch is the same for every training seed


@dataclass(frozen=True)
class ToySettings:
    """Model, data and optimizer settings of the toy run (all but the seed and step count)."""

    arch: str = "gpt2"  # gpt2 | neox (GPT-NeoX, parallel blocks, rotary) | neox-seq (sequential)
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    n_inner: int = 4
    vocab_size: int = 64
    n_positions: int = 64
    initializer_range: float = 0.1
    tie_word_embeddings: bool = False
    start_token_id: int = 0  # also the eos id
    pad_token_id: int = 63  # pads batches only; random tokens are 1..vocab_size-2
    prefix_max: int = 16
    seg_min: int = 2
    seg_max: int = 20
    batch_size: int = 64
    eval_batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01


def checkpoint_steps(steps: int, k: int) -> list[int]:
    """``k`` distinct sorted steps in ``[0, steps]``, always with 0 and ``steps``.

    About a third are log-spaced early (``0, 1, ...`` growing geometrically, dense where learning is
    fast, like Pythia's ``step0, 1, 2, 4, ...``), the rest evenly spaced up to ``steps``.
    """
    if steps < 0 or k < 2 or k > steps + 1:
        raise CircuitAtlasError(
            f"cannot place {k} distinct checkpoints in steps 0..{steps}: "
            "use at least 2 checkpoints and at most steps + 1"
        )
    n_log = max(1, round(k / 3))  # 0 and the geometric points below the first even step
    n_lin = k - n_log
    spacing = steps / n_lin
    base = max(spacing, 1.0)
    ideal = [0.0] + [base ** (i / n_log) for i in range(1, n_log)]
    ideal += [spacing * i for i in range(1, n_lin + 1)]
    out: list[int] = []
    for i, x in enumerate(ideal):
        lo = out[-1] + 1 if out else 0
        out.append(min(max(round(x), lo), steps - (k - 1 - i)))
    return out


def _batch(
    settings: ToySettings, size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``[size, T]`` (padded at the end) and the loss mask ``[size, T - 1]`` on the targets.

    Each row is ``[start] + prefix + seg + seg`` of random tokens (neither start nor pad), padded at
    the end; the mask marks targets in the second copy that are predictable (all but its first
    token). Causal attention never looks right, so end padding changes no real position.
    """
    s = settings
    prefix = torch.randint(0, s.prefix_max + 1, (size, 1), generator=gen)
    seg = torch.randint(s.seg_min, s.seg_max + 1, (size, 1), generator=gen)
    length = 1 + prefix + 2 * seg
    width = int(length.max())
    raw = torch.randint(1, s.vocab_size - 1, (size, width), generator=gen)
    pos = torch.arange(width)[None, :]
    second = (pos >= 1 + prefix + seg) & (pos < length)
    tokens = raw.gather(1, torch.where(second, pos - seg, pos))
    tokens[:, 0] = s.start_token_id
    tokens[pos >= length] = s.pad_token_id
    target_mask = second & (pos >= 2 + prefix + seg)
    return tokens, target_mask[:, 1:]


def _loss(model: torch.nn.Module, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the masked targets (pad tokens masked out of attention)."""
    attention_mask = (tokens != model.config.pad_token_id).long()
    logits = model(input_ids=tokens, attention_mask=attention_mask).logits[:, :-1]
    ce = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
    return (ce * mask).sum() / mask.sum()


ARCHES = ("gpt2", "neox", "neox-seq")


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


def train_toy(
    out: Path,
    steps: int = DEFAULT_STEPS,
    checkpoints: int = DEFAULT_CHECKPOINTS,
    seed: int = 0,
    progress: bool = True,
    arch: str = "gpt2",
) -> pd.DataFrame:
    """Train the toy induction model on the CPU and save ``checkpoints`` checkpoints under ``out``.

    Checkpoints are at :func:`checkpoint_steps` (``step0`` is the initialization). The log has a row
    every ``LOG_EVERY`` steps and at every checkpoint step, each of the model after ``step`` updates
    (the one saved as ``step{step}``): ``train_loss`` on that step's training batch, ``icl_loss`` on
    a fixed held-out batch (both: mean loss on the predictable tokens of the repeat),
    ``wall_time_s`` since training began. One CPU thread; a seed reproduces the run exactly.
    ``arch`` picks the block style: ``gpt2`` (the default, whose circuit the tests check),
    ``neox`` (GPT-NeoX/Pythia-style parallel blocks, rotary) or ``neox-seq`` (sequential NeoX).

    ``out`` must be new, empty, or a previous toy run (``toy_config.json``, ``training_log.csv`` and
    ``step*`` dirs only), which is replaced as a whole. The run is written beside ``out`` and moved
    into place at the end, so a failure leaves nothing half-written. Returns the log frame
    (columns ``LOG_COLUMNS``); raises :class:`CircuitAtlasError` on bad arguments.
    """
    out = Path(out)
    _check_args(out, steps, checkpoints)
    if arch not in ARCHES:
        raise CircuitAtlasError(f"--arch {arch}: choose one of {', '.join(ARCHES)}")
    settings = ToySettings(arch=arch)
    ckpt = checkpoint_steps(steps, checkpoints)
    log_at = sorted(set(range(0, steps + 1, LOG_EVERY)) | set(ckpt) | {steps})
    config = {
        "kind": TOY_KIND,
        "seed": seed,
        "steps": steps,
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
            log = _train(tmp, settings, steps, set(ckpt), set(log_at), seed, progress)
            log.to_csv(tmp / LOG_NAME, index=False)
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    finally:
        torch.set_num_threads(threads)
    return log


def _train(
    tmp: Path,
    settings: ToySettings,
    steps: int,
    ckpt: set[int],
    log_at: set[int],
    seed: int,
    progress: bool,
) -> pd.DataFrame:
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(seed)
        model = _make_model(settings)
    gen = torch.Generator().manual_seed(seed)
    eval_tokens, eval_mask = _batch(
        settings, settings.eval_batch_size, torch.Generator().manual_seed(_EVAL_SEED)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    rows: list[dict[str, float]] = []
    start = time.perf_counter()
    bar = tqdm(total=steps, desc="train toy", unit="step", disable=not progress)
    with bar:
        for step in range(steps + 1):
            # every measure at row `step` is of the model after `step` updates, as is step{step}
            if step in ckpt:
                with _quiet_transformers():
                    model.save_pretrained(tmp / f"step{step}")
            if step in log_at:
                model.eval()
                with torch.no_grad():
                    icl = _loss(model, eval_tokens, eval_mask).item()
            tokens, mask = _batch(settings, settings.batch_size, gen)
            if step == steps:  # no update follows the last checkpoint
                with torch.no_grad():
                    loss = _loss(model, tokens, mask)
            else:
                model.train()
                loss = _loss(model, tokens, mask)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if step in log_at:
                elapsed = time.perf_counter() - start
                rows.append(
                    {
                        "step": step,
                        "train_loss": loss.item(),
                        "icl_loss": icl,
                        "wall_time_s": elapsed,
                    }
                )
                bar.set_postfix(loss=f"{loss.item():.3f}", icl=f"{icl:.3f}")
            if step < steps:
                bar.update(1)
    return pd.DataFrame(rows, columns=LOG_COLUMNS)


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
