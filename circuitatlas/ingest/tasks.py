"""Prompt sets and the task metric.

A :class:`PromptSet` is a batch of equal-length token sequences plus a mask of the positions the
task scores: position ``t`` is scored by ``log p(tokens[t+1] | tokens[:t+1])``, so the last column
is never scored. The task metric of a prompt is the mean of those log-probs (:func:`task_metric`).

Tasks (the ``task`` argument of :func:`load_prompts`):

- ``induction``: seeded random prompts ``[bos] + seg + seg`` (see :func:`induction_prompts`).
- ``successor``: seeded counting prompts ``[bos] + x, s(x), s(s(x)), ...`` where ``s`` steps to
  the next id of a fixed cycle (see :func:`successor_prompts`): each next token is a function of
  the current token alone, so no attention to earlier tokens is needed (induction needs two heads
  composed: one that reads the previous token, one that finds its earlier copy).
- ``FILE.jsonl``: one JSON object per line, ``{"tokens": [ids...], "positions": [t...]}``;
  ``positions`` (optional) lists the scored ``t`` (each ``0 <= t <= len - 2``); without it every
  position but the last is scored. A bare JSON list on a line is a prompt with default positions.
- ``FILE.pt``: ``torch.save`` of an integer tensor ``[n, seq]`` (every position but the last
  scored), or of a dict ``{"tokens": LongTensor[n, seq], "metric_mask": BoolTensor[n, seq]}``.
- ``FILE.npy``: a 2-D integer array ``[n, seq]``; every position but the last is scored.
- ``FILE.txt``: one text prompt per line (blank lines skipped), tokenized by ``tokenizer`` (a
  local directory ``AutoTokenizer.from_pretrained`` reads); ``bos_token_id`` is put first when the
  tokenizer did not; every position but the last is scored.

Files are used as they are (no BOS added to token-id files; ``seq_len`` is ignored: the file sets
the length). All prompts of a set must have the same length, ids must lie in ``0..vocab_size-1``,
every prompt needs one scored position, and ``n_prompts`` takes the first N prompts.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circuitatlas.errors import CircuitAtlasError

INDUCTION = "induction"
SUCCESSOR = "successor"
NAMED_TASKS = (INDUCTION, SUCCESSOR)  # tasks given by name rather than by a file
TOKEN_SUFFIXES = (".jsonl", ".pt", ".npy")
TEXT_SUFFIX = ".txt"
ACCEPTED = (
    "give 'induction', 'successor', a token-id file (.jsonl, .pt, .npy) or a text file (.txt, "
    "with a tokenizer)"
)


@dataclass
class PromptSet:
    """Equal-length prompts and the positions the task scores."""

    task: str  # "induction", "successor", or the file it came from
    tokens: torch.Tensor  # [n_prompts, seq_len] int64
    metric_mask: torch.Tensor  # [n_prompts, seq_len] bool; t scores log p(tokens[t+1] | ..t)
    params: dict[str, Any] = field(default_factory=dict)  # how it was made (seed, seg_len, ...)

    @property
    def n_prompts(self) -> int:
        """Number of prompts."""
        return int(self.tokens.shape[0])

    @property
    def seq_len(self) -> int:
        """Tokens per prompt."""
        return int(self.tokens.shape[1])

    def to_config(self) -> dict[str, Any]:
        """Small JSON-able description for the run configuration.

        ``digest`` (sha256 of tokens and mask, 16 hex digits) identifies the exact prompts, so a
        changed prompt file gives a different run configuration.
        """
        blob = self.tokens.to(torch.int64).numpy().tobytes() + self.metric_mask.numpy().tobytes()
        return {
            "task": self.task,
            "n_prompts": self.n_prompts,
            "seq_len": self.seq_len,
            "n_scored": int(self.metric_mask.sum()),
            "digest": hashlib.sha256(blob).hexdigest()[:16],
            **self.params,
        }


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _check_n_prompts(n_prompts: int) -> None:
    if n_prompts < 1:
        raise CircuitAtlasError(f"--prompts {n_prompts}: give at least 1 prompt")


def induction_prompts(
    n_prompts: int, seg_len: int, vocab_size: int, seed: int, bos_token_id: int | None
) -> PromptSet:
    """Seeded induction prompts ``[bos] + seg + seg`` (no BOS when ``bos_token_id`` is None).

    Each ``seg`` holds ``seg_len`` distinct ids drawn from ``0..vocab_size-1`` without the BOS id,
    so every token of the second copy has exactly one earlier occurrence to copy from. With
    ``o = 1`` for a BOS (else 0) and ``L = seg_len``, the scored positions are ``t = o+L ..
    o+2L-2``: the tokens of the second copy whose next token ``seg[k+1]`` followed the same token
    in the first copy (``L-1`` positions per prompt). Position ``o+L-1``, which predicts the first
    repeated token, is not scored: nothing before it says the segment will repeat.
    """
    _check_n_prompts(n_prompts)
    if seg_len < 2:
        raise CircuitAtlasError(
            f"induction segment of {seg_len} token(s) is too short: give at least 2 "
            f"(a scored position needs a repeated token followed by another)"
        )
    if bos_token_id is not None and not 0 <= bos_token_id < vocab_size:
        raise CircuitAtlasError(
            f"bos_token_id {bos_token_id} is outside the model's vocabulary of {vocab_size} ids; "
            f"fix bos_token_id in the checkpoint's config.json"
        )
    candidates = torch.tensor(
        [i for i in range(vocab_size) if i != bos_token_id], dtype=torch.int64
    )
    if seg_len > len(candidates):
        raise CircuitAtlasError(
            f"induction segment of {seg_len} tokens needs {seg_len} distinct ids but the "
            f"vocabulary has {len(candidates)} besides BOS; use a shorter --seq-len"
        )
    gen = torch.Generator().manual_seed(seed)
    segs = torch.stack(
        [
            candidates[torch.randperm(len(candidates), generator=gen)[:seg_len]]
            for _ in range(n_prompts)
        ]
    )
    parts = [segs, segs]
    if bos_token_id is not None:
        parts.insert(0, torch.full((n_prompts, 1), bos_token_id, dtype=torch.int64))
    tokens = torch.cat(parts, dim=1)
    offset = 0 if bos_token_id is None else 1
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, offset + seg_len : offset + 2 * seg_len - 1] = True
    params = {"seg_len": seg_len, "seed": seed, "bos_token_id": bos_token_id}
    return PromptSet(INDUCTION, tokens, mask, params)


def successor_cycle(vocab_size: int, bos_token_id: int | None) -> torch.Tensor:
    """The ids the ``successor`` task counts through, in order: ``1 .. vocab_size - 2`` minus BOS.

    The successor of ``cycle[i]`` is ``cycle[(i + 1) % len(cycle)]``. Ids ``0`` and
    ``vocab_size - 1`` are left out, where models keep special tokens (the toy: start 0, pad
    ``vocab_size - 1``; GPT-2's BOS is its last id), and so is ``bos_token_id`` wherever it is.
    """
    cycle = [i for i in range(1, vocab_size - 1) if i != bos_token_id]
    if len(cycle) < 2:
        raise CircuitAtlasError(
            f"a vocabulary of {vocab_size} ids leaves {len(cycle)} to count through "
            f"(ids 1..{vocab_size - 2} without BOS); the successor task needs at least 2"
        )
    return torch.tensor(cycle, dtype=torch.int64)


def successor_prompts(
    n_prompts: int, run_len: int, vocab_size: int, seed: int, bos_token_id: int | None
) -> PromptSet:
    """Seeded counting prompts ``[bos] + run`` (no BOS when ``bos_token_id`` is None).

    ``run`` is ``run_len`` consecutive ids of :func:`successor_cycle` from a seeded random start
    (wrapping around), so no id occurs twice in a prompt. With ``o = 1`` for a BOS (else 0), the
    scored positions are ``t = o .. o+run_len-2``: every run token but the last, each predicting
    its successor (``run_len - 1`` positions per prompt). Position ``o-1`` (the BOS, which
    predicts the random start) is not scored.
    """
    _check_n_prompts(n_prompts)
    if run_len < 2:
        raise CircuitAtlasError(
            f"successor run of {run_len} token(s) is too short: give at least 2 "
            f"(a scored position needs a token followed by its successor)"
        )
    cycle = successor_cycle(vocab_size, bos_token_id)
    if run_len > len(cycle):
        raise CircuitAtlasError(
            f"successor run of {run_len} tokens would repeat ids (the vocabulary has "
            f"{len(cycle)} to count through); use a shorter --seq-len"
        )
    gen = torch.Generator().manual_seed(seed)
    start = torch.randint(0, len(cycle), (n_prompts, 1), generator=gen)
    tokens = cycle[(start + torch.arange(run_len)[None, :]) % len(cycle)]
    offset = 0
    if bos_token_id is not None:
        bos = torch.full((n_prompts, 1), bos_token_id, dtype=torch.int64)
        tokens, offset = torch.cat([bos, tokens], dim=1), 1
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, offset : offset + run_len - 1] = True
    params = {"run_len": run_len, "seed": seed, "bos_token_id": bos_token_id}
    return PromptSet(SUCCESSOR, tokens, mask, params)


def _length_report(lengths: list[int], first_line: list[int]) -> str:
    """``5 tokens: 3 prompts from line 1; 7 tokens: 1 prompt from line 4``."""
    counts = Counter(lengths)
    first: dict[int, int] = {}
    for length, line in zip(lengths, first_line, strict=True):
        first.setdefault(length, line)
    return "; ".join(
        f"{length} tokens: {n} prompt{'s' * (n != 1)} from line {first[length]}"
        for length, n in sorted(counts.items())
    )


def _stack_rows(source: str, rows: list[list[int]], lines: list[int], hint: str) -> torch.Tensor:
    lengths = [len(r) for r in rows]
    if len(set(lengths)) > 1:
        raise CircuitAtlasError(
            f"{source}: prompts of unequal length ({_length_report(lengths, lines)}); {hint}"
        )
    return torch.tensor(rows, dtype=torch.int64)


def _read_jsonl(path: Path, n_prompts: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    rows: list[list[int]] = []
    positions: list[list[int] | None] = []
    lines: list[int] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if len(rows) == n_prompts:
                break
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise CircuitAtlasError(f"{path}:{number}: not JSON ({e.msg})") from None
            toks, pos = (obj, None) if isinstance(obj, list) else (None, None)
            if isinstance(obj, dict):
                toks, pos = obj.get("tokens"), obj.get("positions")
            for name, value in (("tokens", toks), ("positions", pos)):
                ok = isinstance(value, list) and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value
                )
                if not ok and (name == "tokens" or value is not None):
                    raise CircuitAtlasError(
                        f"{path}:{number}: {name!r} must be a list of integers; write lines "
                        f'like {{"tokens": [5, 9, 2], "positions": [1]}}'
                    )
            assert toks is not None
            rows.append(toks)
            positions.append(pos)
            lines.append(number)
    if not rows:
        raise CircuitAtlasError(f"{path}: no prompts in the file; write one JSON object a line")
    tokens = _stack_rows(str(path), rows, lines, "every prompt of a set needs the same length")
    if all(p is None for p in positions):
        return tokens, None
    seq = tokens.shape[1]
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, :-1] = True
    for i, (pos, number) in enumerate(zip(positions, lines, strict=True)):
        if pos is None:
            continue
        bad = [t for t in pos if not 0 <= t <= seq - 2]
        if bad:
            raise CircuitAtlasError(
                f"{path}:{number}: position {bad[0]} out of range 0..{seq - 2} (a scored position "
                f"needs a next token)"
            )
        mask[i] = False
        mask[i, pos] = True
    return tokens, mask


def _read_pt(path: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors all mean an unreadable file
        raise CircuitAtlasError(
            f"{path}: cannot read it with torch.load ({_first_line(e)}); re-save it"
        ) from None
    if isinstance(obj, torch.Tensor):
        return obj, None
    if isinstance(obj, dict) and isinstance(obj.get("tokens"), torch.Tensor):
        mask = obj.get("metric_mask")
        if mask is not None and not (
            isinstance(mask, torch.Tensor)
            and mask.dtype == torch.bool
            and mask.shape == obj["tokens"].shape
        ):
            raise CircuitAtlasError(
                f"{path}: 'metric_mask' must be a bool tensor shaped like 'tokens' "
                f"{tuple(obj['tokens'].shape)}"
            )
        return obj["tokens"], mask
    raise CircuitAtlasError(
        f"{path}: expected a token tensor [n, seq] or a dict with 'tokens' (and optional "
        f"'metric_mask'), found {type(obj).__name__}"
    )


def _read_npy(path: Path) -> torch.Tensor:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as e:  # ValueError / OSError / EOFError for a bad or truncated file
        raise CircuitAtlasError(
            f"{path}: cannot read it with numpy.load ({_first_line(e)}); re-save it"
        ) from None
    if not np.issubdtype(array.dtype, np.integer):
        raise CircuitAtlasError(f"{path}: must hold integer token ids, found dtype {array.dtype}")
    return torch.from_numpy(array.astype(np.int64))


def _read_text(
    path: Path, n_prompts: int, tokenizer: str | None, bos_token_id: int | None
) -> torch.Tensor:
    if tokenizer is None:
        raise CircuitAtlasError(
            f"{path}: text prompts need a tokenizer; give --tokenizer DIR (a local directory "
            f"that transformers.AutoTokenizer can load)"
        )
    if not Path(tokenizer).is_dir():
        raise CircuitAtlasError(
            f"--tokenizer {tokenizer}: no such directory; give a local tokenizer directory "
            f"(tokenizer.json / tokenizer_config.json as save_pretrained writes them)"
        )
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    except Exception as e:  # transformers raises OSError / ValueError / others here
        raise CircuitAtlasError(
            f"--tokenizer {tokenizer}: cannot load a tokenizer from it ({_first_line(e)}); "
            f"re-save it with save_pretrained"
        ) from None
    rows: list[list[int]] = []
    lines: list[int] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if len(rows) == n_prompts:
            break
        if not text.strip():
            continue
        ids = list(tok(text)["input_ids"])
        if bos_token_id is not None and (not ids or ids[0] != bos_token_id):
            ids.insert(0, bos_token_id)
        rows.append(ids)
        lines.append(number)
    if not rows:
        raise CircuitAtlasError(f"{path}: no prompts in the file; write one prompt a line")
    return _stack_rows(
        str(path), rows, lines, "write prompts of equal token length (or pad them to one)"
    )


def _validated(
    source: str, tokens: torch.Tensor, mask: torch.Tensor | None, vocab_size: int, n_prompts: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cap to ``n_prompts``, check shape, ids and mask; default mask = all but the last column."""
    if tokens.dim() != 2 or tokens.shape[0] == 0:
        raise CircuitAtlasError(
            f"{source}: expected token ids shaped [n_prompts, seq_len], found {tuple(tokens.shape)}"
        )
    if tokens.is_floating_point() or tokens.dtype == torch.bool or tokens.is_complex():
        raise CircuitAtlasError(f"{source}: must hold integer token ids, found {tokens.dtype}")
    tokens = tokens[:n_prompts].to(torch.int64)
    if tokens.shape[1] < 2:
        raise CircuitAtlasError(
            f"{source}: prompts of {tokens.shape[1]} token(s); give at least 2 tokens a prompt"
        )
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise CircuitAtlasError(
            f"{source}: token id {bad} (ids span {low}..{high}) is outside the model's vocabulary "
            f"of {vocab_size} ids (0..{vocab_size - 1}); tokenize for this model"
        )
    if mask is None:
        mask = torch.ones_like(tokens, dtype=torch.bool)
        mask[:, -1] = False
    mask = mask[:n_prompts]
    if bool(mask[:, -1].any()):
        raise CircuitAtlasError(
            f"{source}: the last position is marked as scored, but no token follows it; "
            f"clear the mask's last column"
        )
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise CircuitAtlasError(
            f"{source}: prompt {empty[0]} has no scored position; mark at least one per prompt"
        )
    return tokens, mask


def load_prompts(
    task: str,
    n_prompts: int,
    seq_len: int,
    vocab_size: int,
    seed: int,
    bos_token_id: int | None,
    tokenizer: str | None = None,
) -> PromptSet:
    """The prompt set of ``task``: ``induction``, ``successor`` or a prompt file (formats in the
    module doc).

    For ``induction``, ``seq_len`` is the prompt length including the BOS and each segment has
    ``(seq_len - has_bos) // 2`` tokens: when ``seq_len - has_bos`` is odd the prompts are one
    token shorter than ``seq_len``. For ``successor``, the prompts are ``seq_len`` tokens long,
    the BOS included. For files, ``seq_len`` and ``seed`` are unused.
    """
    _check_n_prompts(n_prompts)
    if task == SUCCESSOR:
        n_bos = 0 if bos_token_id is None else 1
        if seq_len - n_bos < 2:
            raise CircuitAtlasError(
                f"--seq-len {seq_len} is too short for successor prompts: give at least "
                f"{2 + n_bos} ([bos] + a token and its successor)"
            )
        return successor_prompts(n_prompts, seq_len - n_bos, vocab_size, seed, bos_token_id)
    if task == INDUCTION:
        n_bos = 0 if bos_token_id is None else 1
        seg_len = (seq_len - n_bos) // 2
        if seg_len < 2:
            raise CircuitAtlasError(
                f"--seq-len {seq_len} is too short for induction prompts: give at least "
                f"{4 + n_bos} ([bos] + two copies of a 2-token segment)"
            )
        return induction_prompts(n_prompts, seg_len, vocab_size, seed, bos_token_id)
    path = Path(task)
    suffix = path.suffix.lower()
    if suffix not in (*TOKEN_SUFFIXES, TEXT_SUFFIX):
        raise CircuitAtlasError(f"unknown task {task!r}: {ACCEPTED}")
    if not path.is_file():
        raise CircuitAtlasError(f"prompt file {task}: no such file; {ACCEPTED}")
    mask: torch.Tensor | None = None
    try:
        if suffix == ".jsonl":
            tokens, mask = _read_jsonl(path, n_prompts)
        elif suffix == ".pt":
            tokens, mask = _read_pt(path)
        elif suffix == ".npy":
            tokens = _read_npy(path)
        else:
            tokens = _read_text(path, n_prompts, tokenizer, bos_token_id)
    except (OSError, UnicodeDecodeError) as e:
        raise CircuitAtlasError(f"{task}: cannot read the prompt file ({_first_line(e)})") from None
    tokens, mask = _validated(task, tokens, mask, vocab_size, n_prompts)
    params = {"tokenizer": tokenizer} if suffix == TEXT_SUFFIX else {}
    return PromptSet(task, tokens, mask, params)


def target_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``out[:, t] = log p(tokens[:, t+1] | tokens[:, :t+1])`` from logits ``[n, seq, vocab]``.

    Shape ``[n, seq]``, aligned with ``PromptSet.metric_mask``; the last column is 0 (no target).
    """
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = log_probs.gather(-1, tokens[:, 1:, None].to(torch.int64)).squeeze(-1)
    return torch.nn.functional.pad(picked, (0, 1))


def task_metric(log_probs_of_targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-prompt task metric: the mean log-prob of the scored next tokens, shape ``[n_prompts]``.

    ``log_probs_of_targets[:, t]`` is ``log p(tokens[t+1] | tokens[:t+1])`` (as from
    :func:`target_log_probs`), shaped ``[n, seq]`` like ``mask`` or ``[n, seq - 1]`` (the last
    column dropped). Higher is better (0 = certain and right). A prompt without a scored position
    gives NaN.
    """
    if log_probs_of_targets.shape[1] == mask.shape[1] - 1:
        mask = mask[:, :-1]
    if log_probs_of_targets.shape != mask.shape:
        raise ValueError(
            f"log-probs {tuple(log_probs_of_targets.shape)} do not match mask {tuple(mask.shape)}"
        )
    total = torch.where(mask, log_probs_of_targets, 0.0).sum(dim=1)
    return total / mask.sum(dim=1).to(total.dtype)
