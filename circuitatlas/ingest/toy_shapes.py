"""The toy run's model shapes and checkpoint schedules (no training: see :mod:`toy`).

Two shapes (``--shape``):

- ``toy`` (the default): a 2-layer, 4-head, d_model 64 GPT-2 (or GPT-NeoX with ``--arch``) with an
  MLP width of 4, initializer range 0.1; 1200 steps, 15 checkpoints (:func:`checkpoint_steps`).
- ``pythia-14m``: a GPT-NeoX of Pythia-14M's shape (6 layers, d_model 128, 4 heads, d_mlp 512,
  rotary_pct 0.25, parallel residual, initializer range 0.02, untied embeddings) with the toy's
  vocabulary of 64 ids, AdamW lr 1e-3 (constant), batch 32; 800 steps, 143 checkpoints spaced
  like Pythia's revisions (:func:`pythia_checkpoint_steps`). Its block style is fixed: ``neox``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from circuitatlas.errors import CircuitAtlasError

ARCHES = ("gpt2", "neox", "neox-seq")


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
    mix_share: float = 0.25  # a mixture's further task: rows per batch and loss weight, relative


def _check_schedule(steps: int, k: int) -> None:
    if steps < 0 or k < 2 or k > steps + 1:
        raise CircuitAtlasError(
            f"cannot place {k} distinct checkpoints in steps 0..{steps}: "
            "use at least 2 checkpoints and at most steps + 1"
        )


def checkpoint_steps(steps: int, k: int) -> list[int]:
    """``k`` distinct sorted steps in ``[0, steps]``, always with 0 and ``steps``.

    About a third are log-spaced early (``0, 1, ...`` growing geometrically, dense where learning is
    fast, like Pythia's ``step0, 1, 2, 4, ...``), the rest evenly spaced up to ``steps``.
    """
    _check_schedule(steps, k)
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


def pythia_checkpoint_steps(steps: int, k: int = 143) -> list[int]:
    """``k`` distinct sorted steps ending at ``steps``, placed by Pythia's revision rule.

    Pythia's revisions are ``step0``, the powers of two ``1, 2, 4, ..., 512``, then every 1000th
    step up to 143000. Here: ``0`` and the powers of two ``1, 2, 4, ..., 2**(n - 2)`` (``n`` points
    in all), then ``k - n`` evenly spaced steps ``round(i * steps / (k - n))`` for ``i = 1 .. k -
    n``, with the largest ``n`` whose last power of two is at most two thirds of the first even
    step (so no gap is shorter than the one before it, as in Pythia's 256, 488, 1000).
    ``pythia_checkpoint_steps(143000, 154)`` gives Pythia's 154 revisions. Needs ``2 <= k <=
    steps + 1``.
    """
    _check_schedule(steps, k)

    def even(n_log: int) -> list[int]:
        n_lin = k - n_log
        return [round(i * steps / n_lin) for i in range(1, n_lin + 1)]

    n_log = 1  # step 0 alone: the even part's spacing is steps / (k - 1) >= 1
    while n_log + 1 < k and 3 * 2 ** (n_log - 1) <= 2 * even(n_log + 1)[0]:
        n_log += 1
    return [0] + [2**j for j in range(n_log - 1)] + even(n_log)


@dataclass(frozen=True)
class ToyShape:
    """A named model shape of the toy run: its settings, default length and schedule."""

    name: str
    settings: ToySettings  # with the shape's default block style
    steps: int  # default training steps
    checkpoints: int  # default number of checkpoints
    schedule: Callable[[int, int], list[int]]  # (steps, checkpoints) -> checkpoint steps
    arches: tuple[str, ...]  # the block styles it can be built with
    about: str  # one line for messages and --help

    def settings_for(self, arch: str | None) -> ToySettings:
        """The shape's settings with block style ``arch`` (``None``: the shape's own).

        Raises :class:`CircuitAtlasError` for an unknown or, for a fixed-architecture shape,
        conflicting ``arch``.
        """
        if arch is None:
            return self.settings
        if arch not in ARCHES:
            raise CircuitAtlasError(f"--arch {arch}: choose one of {', '.join(ARCHES)}")
        if arch not in self.arches:
            raise CircuitAtlasError(
                f"--arch {arch} conflicts with --shape {self.name}, which is {self.about}: "
                f"leave --arch out or give --arch {' or '.join(self.arches)}"
            )
        return replace(self.settings, arch=arch)


TOY_DEFAULT_STEPS = 1200
TOY_DEFAULT_CHECKPOINTS = 15
PYTHIA_DEFAULT_STEPS = 800  # the phase change came at steps 320-500 (seeds 0, 1, 2)
PYTHIA_CHECKPOINTS = 143

SHAPES: dict[str, ToyShape] = {
    "toy": ToyShape(
        name="toy",
        settings=ToySettings(),
        steps=TOY_DEFAULT_STEPS,
        checkpoints=TOY_DEFAULT_CHECKPOINTS,
        schedule=checkpoint_steps,
        arches=ARCHES,
        about="a 2-layer, 4-head GPT-2 (or GPT-NeoX) with near-empty MLPs",
    ),
    "pythia-14m": ToyShape(
        name="pythia-14m",
        settings=ToySettings(
            arch="neox",
            n_layer=6,
            n_head=4,
            d_model=128,
            n_inner=512,
            initializer_range=0.02,
            batch_size=32,
            eval_batch_size=32,
            lr=1e-3,
        ),
        steps=PYTHIA_DEFAULT_STEPS,
        checkpoints=PYTHIA_CHECKPOINTS,
        schedule=pythia_checkpoint_steps,
        arches=("neox",),
        about="a GPT-NeoX with parallel blocks like Pythia-14M (neox)",
    ),
}
DEFAULT_SHAPE = "toy"


def get_shape(name: str) -> ToyShape:
    """The shape called ``name``; raises :class:`CircuitAtlasError` listing the shapes."""
    try:
        return SHAPES[name]
    except KeyError:
        raise CircuitAtlasError(
            f"--shape {name}: unknown shape; choose one of {', '.join(SHAPES)}"
        ) from None
