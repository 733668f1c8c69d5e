"""Component names and their properties (the naming contract of DESIGN.md).

``input`` (token + position embedding), ``a{L}.h{H}`` (attention head), ``m{L}`` (MLP) and
``logits`` (the sink: the final normalized residual stream the unembedding reads).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

INPUT = "input"
LOGITS = "logits"
_HEAD = re.compile(r"a(\d+)\.h(\d+)")
_MLP = re.compile(r"m(\d+)")


@dataclass(frozen=True)
class Component:
    """One node of the component graph."""

    name: str
    kind: str  # input | attn_head | mlp | logits
    layer: int  # -1 for input, n_layers for logits
    head: int | None = None


def head_name(layer: int, head: int) -> str:
    """Name of attention head ``head`` of layer ``layer``."""
    return f"a{layer}.h{head}"


def mlp_name(layer: int) -> str:
    """Name of the MLP of layer ``layer``."""
    return f"m{layer}"


def all_components(n_layers: int, n_heads: int) -> list[Component]:
    """Every component in computation order: input, then per layer heads then MLP, then logits."""
    comps = [Component(INPUT, "input", -1)]
    for layer in range(n_layers):
        comps += [Component(head_name(layer, h), "attn_head", layer, h) for h in range(n_heads)]
        comps.append(Component(mlp_name(layer), "mlp", layer))
    comps.append(Component(LOGITS, "logits", n_layers))
    return comps


def is_downstream(src: Component, dst: Component, parallel_blocks: bool) -> bool:
    """Whether ``src`` can affect ``dst``.

    A later layer always can; the same layer's MLP only in sequential (GPT-2-style) blocks, where
    it reads the heads' output, never in parallel (GPT-NeoX/Pythia) blocks; a same-layer head never.
    """
    if src.kind == "logits" or dst.kind == "input":
        return False
    if dst.layer > src.layer:
        return True
    return (
        dst.layer == src.layer
        and src.kind == "attn_head"
        and dst.kind == "mlp"
        and not parallel_blocks
    )


def downstream_pairs(comps: list[Component], parallel_blocks: bool) -> list[tuple[int, int]]:
    """Every edge ``(i, j)`` of ``comps`` (indices) with ``j`` downstream of ``i``: source-major,
    in the order of ``comps`` (the order of the sweep's edge rows)."""
    return [
        (i, j)
        for i, a in enumerate(comps)
        for j, b in enumerate(comps)
        if is_downstream(a, b, parallel_blocks)
    ]


def order_key(name: str) -> tuple[float, int, int, str]:
    """Sort key of a component name in computation order (as :func:`all_components` lists
    them): ``input``, then per layer its heads and its MLP, then ``logits``; other names last."""
    if name == INPUT:
        return (-1, 0, 0, name)
    if name == LOGITS:
        return (math.inf, 0, 0, name)
    head = _HEAD.fullmatch(name)
    if head:
        return (int(head[1]), 0, int(head[2]), name)
    mlp = _MLP.fullmatch(name)
    if mlp:
        return (int(mlp[1]), 1, 0, name)
    return (math.inf, 1, 0, name)
