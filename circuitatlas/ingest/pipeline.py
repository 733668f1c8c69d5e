"""Sweep a whole run: checkpoints → model → sweep → frames, and their Parquet form on disk.

Frames (the contract later stages read):

* ``checkpoints``: ``step, loss, metric`` — clean next-token loss over all prompt positions and
  the clean task metric (mean log-prob of the scored tokens);
* ``components``: ``step, name, kind, layer, head, effect, prev_token_score, induction_score``;
* ``edges``: ``step, source, target, similarity, weight, std, direct_similarity, direct_weight,
  direct_std, patch_effect, eap_ig`` — one row per downstream pair (dense; a threshold τ is
  applied when reading); the task-metric scores are NaN where they were not computed (and in a
  sweep written before they existed, read back).

``circuitatlas sweep --out DIR`` writes them as ``DIR/{checkpoints,components,edges}.parquet`` with
the prompts (``prompts.npy`` and the scored positions ``prompts_mask.npy``) and ``config.json``
(the run's configuration and its ``run_id``), so anyone can recompute an edge.

The output definition (``SweepSettings.output``, :mod:`circuitatlas.ingest.outputs`) is part of
the configuration when it is not the default ``write``: a ``resid`` run has an ``output`` key
(top level and in ``settings``) and its own run id; a ``write`` run's configuration, and so its
run id, is the one it had before output definitions existed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from circuitatlas._version import __version__
from circuitatlas.atomic_dir import atomic_directory
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.checkpoints import CheckpointRef, list_checkpoints, load_checkpoint
from circuitatlas.ingest.contract import (
    DEFAULT_OUTPUT,
    EDGE_SCORE_COLUMNS,
    CheckpointFrames,
    SweepSettings,
)
from circuitatlas.ingest.edge_scores import check_edge_scores, scored_sweep
from circuitatlas.ingest.model import TransformerWeights, weights_from_bridge
from circuitatlas.ingest.outputs import check_output
from circuitatlas.ingest.sweep import (
    COMPONENT_COLUMNS,
    EDGE_COLUMNS,
    check_ablation,
)
from circuitatlas.ingest.tasks import INDUCTION, PromptSet, load_prompts

FRAME_FILES = ("checkpoints", "components", "edges")


@dataclass
class SweepResult:
    """A swept run: its frames, its prompts and its configuration."""

    checkpoints: pd.DataFrame
    components: pd.DataFrame
    edges: pd.DataFrame
    prompts: PromptSet
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """Identifier derived from the configuration (same configuration, same id)."""
        return str(self.config["run_id"])


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; other values are checked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CircuitAtlasError(f"--device {device}: no CUDA device is visible; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise CircuitAtlasError(f"--device {device}: give auto, cpu or cuda[:N]")
    return device


def run_id_of(config: dict[str, Any]) -> str:
    """A short stable id of a run configuration (the fields that change the measured graph).

    ``output`` counts only where the configuration has it (a non-default output definition), so
    the ids of ``write`` runs are the ones they had before output definitions existed.
    """
    keys = ("model", "steps", "prompts", "ablation", "arch")
    fields = {k: config.get(k) for k in keys}
    if "output" in config:
        fields["output"] = config["output"]
    blob = json.dumps(fields, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def output_of(config: dict[str, Any]) -> str:
    """The output definition a run configuration was swept with."""
    return str(config.get("output", DEFAULT_OUTPUT))


def settings_config(settings: SweepSettings) -> dict[str, Any]:
    """The settings as stored in a configuration: ``output`` only when not the default."""
    stored = asdict(settings)
    if settings.output == DEFAULT_OUTPUT:
        del stored["output"]
    return stored


def bos_token_id_of(weights: TransformerWeights, bridge: torch.nn.Module) -> int | None:
    """The checkpoint's BOS id when its config names one inside the vocabulary, else None."""
    bos = getattr(bridge.original_model.config, "bos_token_id", None)
    return bos if isinstance(bos, int) and 0 <= bos < weights.d_vocab else None


@dataclass
class RunPlan:
    """A run ready to sweep: its checkpoints, prompts and configuration (so its ``run_id``).

    Making a plan loads the first checkpoint (for the model's shape and vocabulary), so the
    ``run_id`` is known before any checkpoint is swept; a store can then skip what it holds.
    """

    refs: list[CheckpointRef]
    prompts: PromptSet
    config: dict[str, Any]
    settings: SweepSettings
    device: str
    _first: tuple[int, TransformerWeights] | None = None

    @property
    def run_id(self) -> str:
        """Identifier derived from the configuration."""
        return str(self.config["run_id"])


def local_paths(model: str, settings: SweepSettings) -> dict[str, str]:
    """Absolute paths of the run's local inputs (model directory, prompt file, tokenizer), so a
    run swept from relative paths can be rerun from any working directory."""
    typed = {"model": model, "task": settings.task, "tokenizer": settings.tokenizer}
    return {
        key: str(Path(value).expanduser().absolute())
        for key, value in typed.items()
        if value is not None and value != INDUCTION and Path(value).expanduser().exists()
    }


def plan_run(model: str, revisions: str | None, settings: SweepSettings | None = None) -> RunPlan:
    """Resolve ``model``'s checkpoints and prompts and build the run configuration."""
    settings = settings or SweepSettings()
    check_ablation(settings.ablation, max(settings.n_prompts, 1))
    check_output(settings.output)
    check_edge_scores(settings.edge_scores, settings.ig_steps)
    device = resolve_device(settings.device)
    refs = list_checkpoints(model, revisions)
    weights, bridge = load_weights(refs[0], device)
    prompts = load_prompts(
        settings.task,
        settings.n_prompts,
        settings.seq_len,
        weights.d_vocab,
        settings.seed,
        bos_token_id_of(weights, bridge),
        settings.tokenizer,
    )
    check_ablation(settings.ablation, prompts.n_prompts)
    config = {
        "model": model,
        "steps": [r.step for r in refs],
        "prompts": prompts.to_config(),
        "ablation": settings.ablation,
        "arch": model_shape(weights),
        "settings": settings_config(settings),
        "local_paths": local_paths(model, settings),
        "version": __version__,
    }
    if settings.output != DEFAULT_OUTPUT:
        config["output"] = settings.output
    config["run_id"] = run_id_of(config)
    return RunPlan(refs, prompts, config, settings, device, (refs[0].step, weights))


def sweep_checkpoints(
    plan: RunPlan, refs: list[CheckpointRef] | None = None, progress: bool = True
) -> Iterator[CheckpointFrames]:
    """Sweep ``refs`` (default: all of the plan's), yielding each checkpoint's frames in turn."""
    from tqdm.auto import tqdm

    refs = plan.refs if refs is None else refs
    bar = tqdm(refs, desc="sweep", unit="ckpt", disable=not progress)
    for ref in bar:
        bar.set_postfix_str(f"step {ref.step}")
        if plan._first is not None and plan._first[0] == ref.step:
            weights = plan._first[1]
        else:
            weights, _ = load_weights(ref, plan.device)
        plan._first = None  # the first checkpoint's weights are used once, then freed
        shape = model_shape(weights)
        if shape != plan.config["arch"]:
            raise CircuitAtlasError(
                f"checkpoint {ref}: model shape {shape} differs from the run's first "
                f"checkpoint {plan.config['arch']}; sweep one model's checkpoints per run"
            )
        settings = plan.settings
        result = scored_sweep(
            weights,
            plan.prompts,
            settings.ablation,
            settings.memory_budget_mb,
            settings.edge_scores,
            settings.ig_steps,
            settings.output,
        )
        yield CheckpointFrames(
            ref.step,
            pd.DataFrame({"step": [ref.step], "loss": [result.loss], "metric": [result.metric]}),
            result.components.assign(step=ref.step)[["step", *COMPONENT_COLUMNS]],
            result.edges.assign(step=ref.step)[["step", *EDGE_COLUMNS]],
        )


def sweep_run(
    model: str,
    revisions: str | None = None,
    settings: SweepSettings | None = None,
    progress: bool = True,
) -> SweepResult:
    """Sweep every selected checkpoint of ``model`` (a local run directory or a hub id)."""
    plan = plan_run(model, revisions, settings)
    parts = list(sweep_checkpoints(plan, progress=progress))
    frames = {
        name: pd.concat([getattr(p, name) for p in parts], ignore_index=True)
        for name in ("checkpoint", "components", "edges")
    }
    return SweepResult(
        frames["checkpoint"], frames["components"], frames["edges"], plan.prompts, plan.config
    )


def load_weights(ref: CheckpointRef, device: str) -> tuple[TransformerWeights, Any]:
    """A checkpoint's weights on ``device`` and the bridge it was loaded through."""
    bridge = load_checkpoint(ref, device="cpu")
    return weights_from_bridge(bridge).to(device), bridge


def model_shape(w: TransformerWeights) -> dict[str, Any]:
    """The architecture facts a run's checkpoints must share (stored as ``arch``)."""
    return {
        "arch": w.arch,
        "parallel_blocks": w.parallel,
        "n_layers": w.n_layers,
        "n_heads": w.n_heads,
        "d_model": w.d_model,
        "d_vocab": w.d_vocab,
    }


def write_sweep(result: SweepResult, out: Path) -> Path:
    """Write a swept run to ``out`` (created; replaced whole if it holds an earlier sweep).

    Written through :func:`atomic_directory`, so ``out`` never holds half a sweep.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CircuitAtlasError(f"--out {out}: is a file; give a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise CircuitAtlasError(
            f"--out {out}: not empty and not an earlier sweep; give a new or empty directory"
        )
    with atomic_directory(out) as tmp:
        for name in FRAME_FILES:
            getattr(result, name).to_parquet(tmp / f"{name}.parquet", index=False)
        np.save(tmp / "prompts.npy", result.prompts.tokens.cpu().numpy())
        np.save(tmp / "prompts_mask.npy", result.prompts.metric_mask.cpu().numpy())
        (tmp / "config.json").write_text(json.dumps(result.config, indent=2, default=str) + "\n")
    return out


def read_sweep(directory: Path) -> SweepResult:
    """Read what :func:`write_sweep` wrote."""
    directory = Path(directory)
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise CircuitAtlasError(
            f"{directory}: no config.json; point at the --out directory of `circuitatlas sweep`"
        )
    try:
        config = json.loads(config_file.read_text())
        frames = {n: pd.read_parquet(directory / f"{n}.parquet") for n in FRAME_FILES}
        tokens = torch.from_numpy(np.load(directory / "prompts.npy"))
        mask = torch.from_numpy(np.load(directory / "prompts_mask.npy"))
        prompts = PromptSet(config["prompts"]["task"], tokens, mask)
    except (OSError, ValueError) as e:
        raise CircuitAtlasError(
            f"{directory}: unreadable sweep output ({e}); sweep again"
        ) from None
    except (KeyError, TypeError) as e:
        raise CircuitAtlasError(
            f"{directory}/config.json: not a sweep configuration (no {e}); sweep again"
        ) from None
    edges = frames["edges"]
    for column in EDGE_SCORE_COLUMNS:  # a sweep written before the task-metric scores
        if column not in edges:
            edges[column] = np.nan
    return SweepResult(frames["checkpoints"], frames["components"], edges, prompts, config)
