"""Checkpoint sources: a local run directory of ``step<N>/`` checkpoints, or hub revisions.

A **local run** is a directory whose subdirectories ``step<N>/`` each hold a checkpoint written by
``save_pretrained`` (``config.json`` plus ``model.safetensors`` or ``pytorch_model.bin``), as
``circuitatlas train-toy --out DIR`` writes them. A **hub model** is an id ``owner/name`` whose
training checkpoints are revisions named ``step<N>`` (EleutherAI's Pythia convention).

``--revisions`` grammar (see :func:`parse_revisions`): comma-separated items, each ``N``, ``stepN``,
a range ``start:stop:step`` (stop included when the range lands on it), ``all`` or ``paper``.
With no ``--revisions``, a local run takes every ``step<N>/`` it holds and a Pythia hub model takes
``paper`` (the source paper's 143 checkpoints); any other hub model needs ``--revisions``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from circuitatlas.errors import CircuitAtlasError

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

PYTHIA_ALL_STEPS: list[int] = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, *range(1000, 143001, 1000)]
PYTHIA_PAPER_STEPS: list[int] = list(range(1000, 143001, 1000))

GRAMMAR = (
    "comma-separated N, stepN, start:stop:step, 'all' or 'paper' (e.g. 'step0,1000:143000:1000')"
)
HUB_PROBE_TIMEOUT_S = 3.0

_STEP_DIR = re.compile(r"step(\d+)")
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_LOCAL_FIX = (
    "point --model at a directory of step<N>/ checkpoints "
    "(`circuitatlas train-toy --out DIR` makes one)"
)


@dataclass(frozen=True)
class CheckpointRef:
    """One checkpoint of a training run."""

    step: int
    model: str  # the --model value: a local run directory or a hub model id
    path: Path | None  # local step<N> directory; None for the hub
    revision: str | None  # hub revision such as "step1000"; None for local

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"{self.model}@{self.revision}"


def _format_steps(steps: Sequence[int]) -> str:
    """Steps written back in the --revisions grammar, arithmetic runs of 3+ as ``a:b:d``."""
    parts: list[str] = []
    i = 0
    while i < len(steps):
        j = i + 1
        if j < len(steps):
            diff = steps[j] - steps[i]
            while j + 1 < len(steps) and steps[j + 1] - steps[j] == diff:
                j += 1
            if j - i >= 2:
                parts.append(f"{steps[i]}:{steps[j]}:{diff}")
                i = j + 1
                continue
        parts.append(str(steps[i]))
        i += 1
    return ",".join(parts)


def _bad_spec(spec: str, why: str) -> CircuitAtlasError:
    return CircuitAtlasError(f"--revisions {spec!r}: {why}; give {GRAMMAR}")


def _parse_int(text: str, spec: str) -> int:
    text = text.strip()
    if text.lower().startswith("step"):
        text = text[4:]
    if not text.isdigit():
        raise _bad_spec(spec, f"cannot read {text!r} as a step")
    return int(text)


def parse_revisions(spec: str | None, available: Sequence[int] | None = None) -> list[int]:
    """Steps selected by a ``--revisions`` spec, sorted and deduplicated.

    ``all`` means ``available`` when given, else Pythia's 154 revisions; ``paper`` means the source
    paper's 143 (1000..143000 every 1000). ``spec=None`` selects every available step. When
    ``available`` is given, asking for a step outside it is an error naming the missing steps.
    """
    if spec is None:
        if available is None:
            raise CircuitAtlasError(f"give --revisions: {GRAMMAR}")
        return sorted(set(available))
    steps: set[int] = set()
    items = [item.strip() for item in spec.split(",")]
    if not any(items):
        raise _bad_spec(spec, "empty")
    for item in items:
        word = item.lower()
        if not item:
            raise _bad_spec(spec, "empty item")
        if word == "all":
            steps.update(available if available is not None else PYTHIA_ALL_STEPS)
        elif word == "paper":
            steps.update(PYTHIA_PAPER_STEPS)
        elif ":" in item:
            parts = item.split(":")
            if len(parts) != 3:
                raise _bad_spec(spec, f"range {item!r} needs start:stop:step")
            start, stop, stride = (_parse_int(p, spec) for p in parts)
            if stride < 1 or stop < start:
                raise _bad_spec(spec, f"range {item!r} needs start <= stop and step >= 1")
            steps.update(range(start, stop + 1, stride))
        else:
            steps.add(_parse_int(item, spec))
    if available is not None:
        missing = sorted(steps - set(available))
        if missing:
            have = _format_steps(sorted(set(available)))
            raise CircuitAtlasError(
                f"--revisions {spec!r}: no checkpoint for step(s) {_format_steps(missing)}; "
                f"available: {have}"
            )
    return sorted(steps)


def _local_steps(run_dir: Path) -> dict[int, Path]:
    """The ``step<N>/`` subdirectories of a local run, by step."""
    if not run_dir.is_dir():
        raise CircuitAtlasError(f"--model {run_dir}: not a directory; {_LOCAL_FIX}")
    entries = list(run_dir.iterdir())
    if not entries:
        raise CircuitAtlasError(f"--model {run_dir}: the directory is empty; {_LOCAL_FIX}")
    found: dict[int, Path] = {}
    for entry in entries:
        match = _STEP_DIR.fullmatch(entry.name)
        if match and entry.is_dir():
            found[int(match.group(1))] = entry
    if not found:
        raise CircuitAtlasError(
            f"--model {run_dir}: no step<N>/ checkpoint directories in it; {_LOCAL_FIX}"
        )
    return found


def _is_pythia(model: str) -> bool:
    return model.lower().startswith("eleutherai/pythia")


def list_checkpoints(model: str, revisions: str | None = None) -> list[CheckpointRef]:
    """The checkpoints of ``model`` selected by ``revisions``, in step order.

    ``model`` is a local run directory (when the path exists) or a hub id ``owner/name``.
    """
    run_dir = Path(model).expanduser()
    if run_dir.exists():
        found = _local_steps(run_dir)
        try:
            steps = parse_revisions(revisions, sorted(found))
        except CircuitAtlasError as e:
            raise CircuitAtlasError(f"--model {run_dir}: {e}") from None
        refs = []
        for step in steps:
            if not (found[step] / "config.json").is_file():
                raise CircuitAtlasError(
                    f"{found[step]}: no config.json; re-save that checkpoint with "
                    f"save_pretrained or leave it out with --revisions"
                )
            refs.append(CheckpointRef(step, model, found[step], None))
        return refs

    if model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") > 1:
        raise CircuitAtlasError(f"--model {model}: no such directory; {_LOCAL_FIX}")
    if not _HUB_ID.fullmatch(model):
        raise CircuitAtlasError(
            f"--model {model}: no such directory, and not a hub model id (owner/name); {_LOCAL_FIX}"
        )
    if _is_pythia(model):
        available = PYTHIA_PAPER_STEPS if "-v0" in model.lower() else PYTHIA_ALL_STEPS
        try:
            steps = parse_revisions("paper" if revisions is None else revisions, available)
        except CircuitAtlasError as e:
            raise CircuitAtlasError(f"--model {model}: {e}") from None
    else:
        if revisions is None:
            raise CircuitAtlasError(
                f"--model {model}: give --revisions (hub checkpoints are revisions stepN): "
                f"{GRAMMAR}"
            )
        if any(item.strip().lower() == "all" for item in revisions.split(",")):
            raise _bad_spec(
                revisions, f"'all' is known only for Pythia and local runs, not {model}"
            )
        steps = parse_revisions(revisions)
    return [CheckpointRef(step, model, None, f"step{step}") for step in steps]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers / transformer-lens progress bars, warnings and log lines."""
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars_on = hf_logging.is_progress_bar_enabled()
    hub_bars_off = are_progress_bars_disabled()
    disabled = logging.root.manager.disable
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)
        hf_logging.set_verbosity(verbosity)
        if bars_on:
            hf_logging.enable_progress_bar()
        if not hub_bars_off:
            enable_progress_bars()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _check_local_files(step_dir: Path) -> None:
    """Fail with one line naming the file when a checkpoint's config or weights are unreadable."""
    config = step_dir / "config.json"
    try:
        json.loads(config.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CircuitAtlasError(
            f"{config}: not a readable JSON config ({_first_line(e)}); re-save the checkpoint "
            f"or leave it out with --revisions"
        ) from None
    if not any((step_dir / name).is_file() for name in _WEIGHT_FILES):
        raise CircuitAtlasError(
            f"{step_dir}: no weights file ({', '.join(_WEIGHT_FILES)}); re-save the checkpoint "
            f"or leave it out with --revisions"
        )
    from safetensors import safe_open

    for weights in sorted(step_dir.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as e:  # SafetensorError and OSError, both mean an unusable file
            raise CircuitAtlasError(
                f"{weights}: corrupt or truncated ({_first_line(e)}); re-save the checkpoint "
                f"or leave it out with --revisions"
            ) from None


def _offline_env() -> bool:
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any(
        (f or "").strip().upper() in {"1", "ON", "YES", "TRUE"} for f in flags
    )


def _cached_snapshot(model: str, revision: str) -> Path | None:
    """The local hub-cache snapshot of ``model@revision`` when it holds config and weights."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(model, "config.json", revision=revision)
    if not isinstance(config, str):
        return None
    snapshot = Path(config).parent
    return snapshot if any((snapshot / n).exists() for n in _WEIGHT_FILES) else None


def _probe_hub(model: str, revision: str) -> None:
    """One short request to the hub (no retries): fail at once when it is unreachable."""
    import httpx
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers

    url = f"{constants.ENDPOINT}/api/models/{model}/revision/{revision}"
    outcome: list[object] = []

    def request() -> None:
        try:
            outcome.append(httpx.get(url, headers=build_hf_headers(), timeout=HUB_PROBE_TIMEOUT_S))
        except Exception as e:  # any transport failure means "unreachable"
            outcome.append(e)

    # DNS lookups ignore socket timeouts, so the request runs in a thread we stop waiting for.
    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    thread.join(HUB_PROBE_TIMEOUT_S + 0.5)
    result = outcome[0] if outcome else TimeoutError(f"no answer in {HUB_PROBE_TIMEOUT_S:.0f} s")
    if isinstance(result, BaseException):
        raise CircuitAtlasError(
            f"--model {model}: no such local directory, and the Hugging Face hub is "
            f"unreachable for revision {revision} "
            f"({_first_line(result)}); {_LOCAL_FIX}"
        )
    status = getattr(result, "status_code", 200)
    if status in (401, 403, 404):
        raise CircuitAtlasError(
            f"--model {model}: the hub has no revision {revision} of it (HTTP {status}; a gated "
            f"model needs `hf auth login`); check --model and --revisions, or {_LOCAL_FIX}"
        )


def load_checkpoint(ref: CheckpointRef, device: str = "cpu") -> TransformerBridge:
    """Load one checkpoint as a TransformerLens ``TransformerBridge`` in eval mode.

    A local checkpoint's files are checked first, so a corrupt one fails with one line naming the
    file. A hub checkpoint loads from the local Hugging Face cache when it is there; otherwise one
    short request checks that the hub answers, so offline (or with ``HF_HUB_OFFLINE=1``) it fails
    at once instead of retrying for half a minute.
    """
    source: str
    revision: str | None = None
    if ref.path is not None:
        _check_local_files(ref.path)
        source = str(ref.path)
    else:
        assert ref.revision is not None
        snapshot = _cached_snapshot(ref.model, ref.revision)
        if snapshot is not None:
            source = str(snapshot)
        else:
            if _offline_env():
                raise CircuitAtlasError(
                    f"--model {ref.model}: no such local directory, and revision {ref.revision} "
                    f"is not in the Hugging Face cache (HF_HUB_OFFLINE is set); {_LOCAL_FIX}"
                )
            _probe_hub(ref.model, ref.revision)
            source, revision = ref.model, ref.revision

    from transformer_lens.model_bridge import TransformerBridge

    try:
        with _quiet():
            bridge = TransformerBridge.boot_transformers(source, device=device, revision=revision)
    except Exception as e:  # whatever the loader raises, the user needs the source and a fix
        raise CircuitAtlasError(
            f"{ref}: cannot load the checkpoint ({_first_line(e)}); re-save it or leave it out "
            f"with --revisions"
        ) from e
    bridge.eval()
    return bridge
