"""Faithfulness of a candidate circuit, measured by rerunning the model.

A circuit is a set of component names. Its faithfulness is::

    (metric with every component outside the circuit ablated − metric with all ablated)
    ÷ (clean metric − metric with all ablated)

over the run's prompt set, with the sweep's task metric (mean log-prob of the scored tokens,
averaged over prompts): 1 when the circuit alone recovers the clean metric, 0 when it recovers
nothing. The ablatable components are ``input``, every head and every MLP; ``logits`` (the sink)
may be listed in a circuit and is ignored.

Several components are ablated in one forward pass: each ablated component's output is replaced
by its replacement computed from its *clean* outputs (``zero``, ``mean`` over the prompt set,
``resample`` from the next prompt; see :func:`circuitatlas.ingest.sweep.replacement`), whatever
happens upstream of it, and everything else is recomputed from the changed residual stream. A
head's output ``z_h @ W_O[h]`` is linear in ``z_h``, so a head is ablated by replacing its ``z_h``
by the replacement of its clean ``z_h``. Nothing upstream of the first ablated component is
recomputed: the pass reads the clean run until the residual stream changes.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.checkpoints import list_checkpoints
from circuitatlas.ingest.components import INPUT, LOGITS, all_components, head_name, mlp_name
from circuitatlas.ingest.model import ForwardPieces, TransformerWeights
from circuitatlas.ingest.pipeline import bos_token_id_of, load_weights, model_shape, resolve_device
from circuitatlas.ingest.sweep import CleanRun, check_ablation, clean_run, replacement
from circuitatlas.ingest.tasks import INDUCTION, PromptSet, load_prompts, task_metric

DEFAULT_ABLATION = "mean"


@dataclass(frozen=True)
class Faithfulness:
    """The faithfulness of one circuit at one checkpoint."""

    clean: float  # clean task metric
    circuit: float  # metric with every component outside the circuit ablated
    ablated: float  # metric with every component ablated
    value: float  # (circuit − ablated) / (clean − ablated); nan when clean == ablated
    ablation: str
    kept: tuple[str, ...]  # the circuit's ablatable components, in model order


def ablatable_names(n_layers: int, n_heads: int) -> list[str]:
    """Every component an ablation can remove, in model order (all but ``logits``)."""
    return [c.name for c in all_components(n_layers, n_heads) if c.name != LOGITS]


def circuit_components(circuit: Collection[str], n_layers: int, n_heads: int) -> tuple[str, ...]:
    """The circuit's ablatable components in model order; unknown names raise, ``logits`` drops."""
    if isinstance(circuit, str):
        raise CircuitAtlasError(
            f"circuit {circuit!r}: give a collection of component names, not one string"
        )
    names = ablatable_names(n_layers, n_heads)
    unknown = sorted({str(n) for n in circuit} - {*names, LOGITS})
    if unknown:
        bad = unknown[0]
        close = difflib.get_close_matches(bad, [*names, LOGITS], n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise CircuitAtlasError(
            f"circuit component {bad!r} is not a component of this model ({n_layers} layers × "
            f"{n_heads} heads); {hint}use input, a<L>.h<H> (L < {n_layers}, H < {n_heads}), "
            f"m<L> or logits"
        )
    wanted = set(circuit)
    return tuple(n for n in names if n in wanted)


def ablated_final(
    fp: ForwardPieces, clean: CleanRun, ablated: Collection[str], ablation: str
) -> Tensor:
    """The final normalized residual ``[N, T, d]`` with every component of ``ablated`` ablated.

    Each ablated output is the replacement of its clean output (see the module docstring); the
    clean run's values are reused until the residual stream first changes.
    """
    w = fp.w
    changed = INPUT in ablated
    x = replacement(clean.resid_pre[0], ablation) if changed else clean.resid_pre[0]
    for layer in range(w.n_layers):
        heads = [h for h in range(w.n_heads) if head_name(layer, h) in ablated]
        z = fp.attention(layer, x)[0] if changed else clean.z[layer]
        if heads:
            z = z.clone()
            z[:, heads] = replacement(clean.z[layer][:, heads], ablation)
        mid_changed = changed or bool(heads)
        mid = x + fp.attn_out(layer, z) if mid_changed else clean.resid_mid[layer]
        read_changed = changed if w.parallel else mid_changed  # what this MLP reads changed
        if mlp_name(layer) in ablated:
            mlp = replacement(clean.mlp_out[layer], ablation)
        elif read_changed:
            mlp = fp.mlp(layer, x if w.parallel else mid)
        else:
            mlp = clean.mlp_out[layer]
        changed = mid_changed or mlp_name(layer) in ablated
        x = mid + mlp if changed else clean.resid_pre[layer + 1]
    return fp.final(x) if changed else clean.final


class CircuitScorer:
    """Scores circuits of one checkpoint on one prompt set: the clean run and the all-ablated
    metric are computed once and shared."""

    def __init__(
        self, weights: TransformerWeights, prompts: PromptSet, ablation: str = DEFAULT_ABLATION
    ) -> None:
        check_ablation(ablation, prompts.n_prompts)
        self.weights = weights
        self.ablation = ablation
        self.tokens = prompts.tokens.to(weights.device)
        self.mask = prompts.metric_mask.to(weights.device)
        self.fp = ForwardPieces(weights, prompts.seq_len)
        self.names = ablatable_names(weights.n_layers, weights.n_heads)
        self._metrics: dict[frozenset[str], float] = {}
        with torch.inference_mode():
            self.clean_run = clean_run(self.fp, self.tokens)
        self.clean = self.metric(())
        self.ablated = self.metric(self.names)

    def metric(self, ablated: Collection[str]) -> float:
        """The task metric with the components ``ablated`` ablated together (memoized)."""
        key = frozenset(ablated)
        if key not in self._metrics:
            with torch.inference_mode():
                final = ablated_final(self.fp, self.clean_run, key, self.ablation)
                log_probs = self.fp.target_log_probs(final, self.tokens, self.mask)
                self._metrics[key] = float(task_metric(log_probs, self.mask).mean().item())
        return self._metrics[key]

    def kept(self, circuit: Collection[str]) -> tuple[str, ...]:
        """The circuit's ablatable components in model order (raises for an unknown name)."""
        return circuit_components(circuit, self.weights.n_layers, self.weights.n_heads)

    def score(self, circuit: Collection[str]) -> Faithfulness:
        """The faithfulness of ``circuit``."""
        kept = self.kept(circuit)
        value = self.metric(set(self.names) - set(kept))
        span = self.clean - self.ablated
        ratio = (value - self.ablated) / span if span != 0 else math.nan
        return Faithfulness(self.clean, value, self.ablated, ratio, self.ablation, kept)


def circuit_faithfulness(
    weights: TransformerWeights,
    prompts: PromptSet,
    circuit: Collection[str],
    ablation: str = DEFAULT_ABLATION,
) -> Faithfulness:
    """The faithfulness of ``circuit`` (component names) on ``prompts`` (module docstring)."""
    circuit_components(circuit, weights.n_layers, weights.n_heads)  # fail before any pass
    return CircuitScorer(weights, prompts, ablation).score(circuit)


# What run_faithfulness reads from a run configuration ("a.b": key b of the dict at key a).
_CONFIG_KEYS = (
    "run_id",
    "model",
    "steps",
    "prompts.digest",
    "prompts.n_prompts",
    "settings.task",
    "settings.n_prompts",
    "settings.seq_len",
    "settings.seed",
)


def _check_config(config: dict[str, Any]) -> None:
    """Raise a clear error when ``config`` lacks what :func:`run_faithfulness` reads."""
    for key in _CONFIG_KEYS:
        node: Any = config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise CircuitAtlasError(
                    f"not a stored run configuration (no {key}); take it from "
                    f"store.run_config(run_id)"
                )
            node = node[part]


def located(config: dict[str, Any], key: str) -> str | None:
    """Where the run's input ``key`` (``model``, ``task`` or ``tokenizer``) is read from now: the
    absolute path recorded when the run was swept while it exists, else the value as typed."""
    typed = config["model"] if key == "model" else config["settings"].get(key)
    recorded = config.get("local_paths", {}).get(key)
    if recorded is not None and Path(recorded).exists():
        return recorded
    return None if typed is None else str(typed)


def _unreachable(config: dict[str, Any], step: int, why: str) -> CircuitAtlasError:
    model = config.get("local_paths", {}).get("model") or str(config["model"])
    where = "" if Path(model).is_absolute() else " (a local path is read from the working dir)"
    return CircuitAtlasError(
        f"run {config['run_id']}: checkpoint step {step} of {model}{where} is no longer "
        f"reachable ({why}); restore {model} or re-sweep the run from where its checkpoints are"
    )


def _rebuilt_prompts(
    config: dict[str, Any], weights: TransformerWeights, bridge: torch.nn.Module
) -> PromptSet:
    """The run's prompts, rebuilt as :func:`~circuitatlas.ingest.pipeline.plan_run` built them
    and checked against the stored digest."""
    run_id, settings, task = config["run_id"], config["settings"], located(config, "task")
    try:
        prompts = load_prompts(
            str(task),
            settings["n_prompts"],
            settings["seq_len"],
            weights.d_vocab,
            settings["seed"],
            bos_token_id_of(weights, bridge),
            located(config, "tokenizer"),
        )
    except CircuitAtlasError as e:
        raise CircuitAtlasError(
            f"run {run_id}: cannot rebuild its prompts ({e}); restore the prompt file or re-sweep"
        ) from None
    rebuilt, stored = prompts.to_config()["digest"], config["prompts"]["digest"]
    if rebuilt == stored:
        return prompts
    what = (
        "the induction prompts rebuilt from the checkpoint's vocabulary and BOS differ"
        if task == INDUCTION
        else f"the prompt file {task} changed"
    )
    raise CircuitAtlasError(
        f"run {run_id}: {what} since the run was swept (prompt digest {rebuilt}, stored "
        f"{stored}); restore the prompts or re-sweep the run"
    )


def run_faithfulness(
    config: dict[str, Any],
    step: int,
    circuits: Sequence[Collection[str]],
    ablation: str = DEFAULT_ABLATION,
    device: str = "auto",
) -> list[Faithfulness]:
    """Load checkpoint ``step`` of the run described by ``config`` (a stored run configuration),
    rebuild its prompts exactly (checked against ``config["prompts"]["digest"]``) and score each
    circuit (one model load and one clean run for all of them)."""
    check_ablation(ablation, int(config.get("prompts", {}).get("n_prompts", 2)))
    weights, prompts = load_run_checkpoint(config, step, device)
    for circuit in circuits:  # every name checked before any pass
        circuit_components(circuit, weights.n_layers, weights.n_heads)
    scorer = CircuitScorer(weights, prompts, ablation)
    return [scorer.score(circuit) for circuit in circuits]


def load_run_checkpoint(
    config: dict[str, Any], step: int, device: str = "auto"
) -> tuple[TransformerWeights, PromptSet]:
    """The weights of checkpoint ``step`` of the run described by ``config`` (a stored run
    configuration) and the run's prompts, rebuilt exactly (checked against the stored digest)."""
    _check_config(config)
    run_id, model, steps = config["run_id"], str(located(config, "model")), config["steps"]
    if int(step) not in [int(s) for s in steps]:
        shown = ", ".join(map(str, steps[:8])) + (" …" if len(steps) > 8 else "")
        raise CircuitAtlasError(
            f"step {step} is not a step of run {run_id} (steps: {shown}); give one of them"
        )
    device = resolve_device(device)
    path = Path(model).expanduser()
    if not path.exists() and (path.is_absolute() or model.startswith((".", "~"))):
        raise _unreachable(config, step, "no such directory")
    try:
        (ref,) = list_checkpoints(model, str(step))
        weights, bridge = load_weights(ref, device)
    except CircuitAtlasError as e:
        raise _unreachable(config, step, str(e)) from None
    if model_shape(weights) != config.get("arch", model_shape(weights)):
        raise _unreachable(
            config, step, f"it is now a model of shape {model_shape(weights)}, not {config['arch']}"
        )
    return weights, _rebuilt_prompts(config, weights, bridge)
