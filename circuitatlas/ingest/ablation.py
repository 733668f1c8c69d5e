"""What every ablated pass shares: the replacement of an ablated output, the clean pass it
starts from, and the points of the residual stream where passes start and components read.

Ablations replace a component's output by zero (``zero``), by its mean over the prompt set at
each position (``mean``) or by its value on the next prompt of the set, cyclically
(``resample``). A head is ablated through what it mixes, ``z_h`` (its write ``z_h @ W_O[h]`` is
linear in it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.components import Component
from circuitatlas.ingest.contract import ABLATIONS
from circuitatlas.ingest.model import ForwardPieces


def check_ablation(ablation: str, n_prompts: int) -> None:
    """Raise a clear error for an unknown ablation or a resample ablation of one prompt."""
    if ablation not in ABLATIONS:
        raise CircuitAtlasError(
            f"unknown ablation {ablation!r}; choose one of {', '.join(ABLATIONS)}"
        )
    if ablation == "resample" and n_prompts < 2:
        raise CircuitAtlasError(
            "--ablation resample takes each prompt's output from another prompt; "
            "give at least 2 prompts"
        )


def resample_order(n_prompts: int) -> Tensor:
    """Prompt whose output replaces prompt ``p``'s in a resample ablation: ``(p + 1) % n``."""
    return torch.roll(torch.arange(n_prompts), -1)


def replacement(outputs: Tensor, ablation: str, prompts: slice = slice(None)) -> Tensor:
    """What an ablated component writes instead of ``outputs[prompts]``.

    ``outputs`` holds the component's output on every prompt (``[N, ...]``): the mean and the
    resample ablation read other prompts than the ones replaced.
    """
    own = outputs[prompts]
    if ablation == "zero":
        return torch.zeros_like(own)
    if ablation == "mean":
        return outputs.mean(dim=0, keepdim=True).expand_as(own)
    order = resample_order(outputs.shape[0]).to(outputs.device)
    return outputs[order[prompts]]


def ablation_delta(outputs: Tensor, ablation: str, prompts: slice) -> Tensor:
    """What the ablation adds to the residual stream on ``prompts``: replacement − output."""
    return replacement(outputs, ablation, prompts) - outputs[prompts]


@dataclass
class CleanRun:
    """Everything the ablated passes start from or compare with, for ``N`` prompts."""

    resid_pre: list[Tensor]  # residual entering each layer, and the final residual: n_layers + 1
    resid_mid: list[Tensor]  # residual after each layer's attention (what a sequential MLP reads)
    z: list[Tensor]  # [N, H, T, dh] per layer: what each head mixes, before W_O
    head_out: list[Tensor]  # [N, T, H, d] per layer
    head_sq: list[Tensor]  # [N, H, T] per layer: squared norm of each head's output
    mlp_out: list[Tensor]  # [N, T, d] per layer
    patterns: list[Tensor]  # [N, H, T, T] per layer
    final: Tensor  # final normalized residual [N, T, d]

    def residual(self, layer: int, at_mlp: bool) -> Tensor:
        """The clean residual at a :func:`start_point` / :func:`read_point`."""
        return (self.resid_mid if at_mlp else self.resid_pre)[layer]

    def output(self, comp: Component) -> Tensor:
        """What a component writes into the residual stream, ``[N, T, d]`` (the ``logits`` sink:
        the final normalized residual)."""
        if comp.kind == "input":
            return self.resid_pre[0]
        if comp.kind == "attn_head":
            return self.head_out[comp.layer][:, :, comp.head]
        if comp.kind == "mlp":
            return self.mlp_out[comp.layer]
        return self.final


def clean_run(fp: ForwardPieces, tokens: Tensor) -> CleanRun:
    """The clean forward pass, recording every component's output."""
    x = fp.embed(tokens)
    run = CleanRun([x], [], [], [], [], [], [], x)
    for layer in range(fp.w.n_layers):
        z, pattern = fp.attention(layer, x, want_pattern=True)
        mid = x + fp.attn_out(layer, z)
        mlp = fp.mlp(layer, x if fp.w.parallel else mid)
        x = mid + mlp
        run.resid_mid.append(mid)
        run.z.append(z)
        run.head_out.append(fp.head_outputs(layer, z))
        run.head_sq.append(fp.head_dots(layer, z, z)[1])
        run.mlp_out.append(mlp)
        run.patterns.append(pattern)
        run.resid_pre.append(x)
    run.final = fp.final(x)
    return run


def start_point(comp: Component, parallel: bool) -> tuple[int, bool]:
    """Where the ablated pass of ``comp`` starts: (layer, starts at that layer's MLP).

    ``(L, False)``: the residual entering layer ``L`` changes (``L == n_layers``: the final one);
    ``(L, True)``: the residual a sequential layer-``L`` MLP reads changes.
    """
    if comp.kind == "input":
        return 0, False
    if comp.kind == "attn_head" and not parallel:
        return comp.layer, True
    return comp.layer + 1, False


def read_groups(n_layers: int) -> list[tuple[str, int]]:
    """The reads of the residual stream: ``("attn", L)``, ``("mlp", L)`` and ``("final", n)``."""
    groups = []
    for layer in range(n_layers):
        groups += [("attn", layer), ("mlp", layer)]
    return [*groups, ("final", n_layers)]


def read_point(kind: str, layer: int, parallel: bool) -> tuple[int, bool]:
    """The residual a read group reads, in :func:`start_point`'s terms."""
    return layer, kind == "mlp" and not parallel
