"""The report's interactive graph: one checkpoint at a time, drawn by ``neo4j-viz``, offline.

Components are pinned by layer (``input`` at the left, ``logits`` at the right, a layer's heads
stacked with its MLP below them), sized by betweenness and coloured by kind; an edge's width grows
with its weight and the edges of the checkpoint's strongest paths are drawn in a highlight colour.

``neo4j-viz`` renders a whole HTML page per graph (its script, about 4 MB, inlined). The report
keeps one copy of that page with its data block cut out, plus each checkpoint's data block, and a
step selector puts the chosen block back into an ``<iframe srcdoc>``: one script for any number
of checkpoints, and nothing fetched from outside the file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from neo4j_viz import Layout, Node, Relationship, Renderer, VisualizationGraph

from circuitatlas.graph.attributes import plain_records
from circuitatlas.report.figures import KIND_COLOURS, KIND_LABELS, PATH_COLOUR

EDGE_COLOUR = "#9aa5b1"
MAX_EDGES = 1500  # the strongest edges kept per checkpoint: a browser stays responsive
MAX_STEPS = 30  # every checkpoint gets a graph up to this many; beyond, phase ends only
NODE_SIZE = (20.0, 40.0)  # smallest and largest node radius (betweenness 0 and the maximum)
EDGE_WIDTH = (0.5, 8.0)  # thinnest and widest edge (weight 0 and the maximum)
X_GAP, Y_GAP = 220.0, 70.0  # canvas units between layers and between stacked components
HEIGHT_PX, WIDTH_PX = 640, 1100  # the graph's height, and the width a report page gives it
MAX_CAPTIONS = 200  # edges are labelled with their weight up to this many

_DATA_BLOCK = re.compile(r'<script type="application/json" id="neo4j-viz-data">.*?</script>', re.S)
_CONTAINER = re.compile(r"neo4j-viz-[0-9a-f]{12}")
DATA_MARK = "<!--circuitatlas-graph-data-->"


@dataclass(frozen=True)
class StepGraph:
    """One checkpoint's graph, ready for the page: its data block and what it shows."""

    step: int
    data_block: str  # neo4j-viz's ``<script type="application/json">`` for this checkpoint
    n_nodes: int
    n_edges: int  # edges drawn
    n_dropped: int  # edges left out beyond MAX_EDGES


def column(kind: str, layer: float) -> float:
    """Horizontal slot of a component: ``input`` 0, layer L's heads 2L+1, its MLP 2L+2, ``logits``
    after the last layer. Heads and the MLP of a layer get separate columns so the residual
    stream's order reads left to right."""
    if kind == "input":
        return 0.0
    if kind == "logits":
        return math.inf
    return 2.0 * layer + (1.0 if kind == "attn_head" else 2.0)


def positions(components: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Pinned canvas coordinates per component name: columns by :func:`column`, rows centred."""
    cols: dict[str, float] = {}
    order: dict[str, tuple[float, str]] = {}  # within a column: by head, then name
    for row in components.itertuples():
        cols[row.name] = column(row.kind, row.layer if pd.notna(row.layer) else 0.0)
        order[row.name] = (float(row.head) if pd.notna(row.head) else -1.0, row.name)
    finite = [c for c in cols.values() if math.isfinite(c)]
    last = (max(finite) if finite else 0.0) + 1.0
    cols = {name: (last if math.isinf(c) else c) for name, c in cols.items()}
    out: dict[str, tuple[float, float]] = {}
    for c in sorted(set(cols.values())):
        names = sorted((n for n, v in cols.items() if v == c), key=order.__getitem__)
        for i, name in enumerate(names):
            out[name] = (c * X_GAP, (i - (len(names) - 1) / 2) * Y_GAP)
    return out


def view_of(points: Iterable[tuple[float, float]]) -> tuple[tuple[float, float], float]:
    """Pan position (the centre) and zoom that fit ``points`` into the graph's frame."""
    xs, ys = zip(*points, strict=True)
    centre = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    span_x, span_y = max(xs) - min(xs) + X_GAP, max(ys) - min(ys) + 2 * Y_GAP
    return centre, min(1.5, 0.9 * WIDTH_PX / span_x, 0.9 * HEIGHT_PX / span_y)


def _scaled(value: float, top: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    if not (top > 0 and math.isfinite(value) and value > 0):
        return low
    return low + (high - low) * min(value / top, 1.0)


def step_graph(
    step: int,
    components: pd.DataFrame,
    edges: pd.DataFrame,
    path_edges: set[tuple[str, str]],
    weight: str = "direct_weight",
) -> StepGraph:
    """Build one checkpoint's graph from its component rows and INFLUENCES rows.

    ``components`` has the stored component columns plus ``size_by``, the value a node's size
    follows (the report passes betweenness on the drawn edges). ``edges`` has ``source``,
    ``target`` and the ``weight`` column; edges with weight ≤ 0 are left out and at most
    :data:`MAX_EDGES` of the strongest are drawn. ``path_edges`` are highlighted.
    """
    at = positions(components)
    top_b = float(components.size_by.max())
    nodes = []
    for props in plain_records(components):
        x, y = at[props["name"]]
        nodes.append(
            Node(
                id=props["name"],
                caption=props["name"],
                size=_scaled(float(props["size_by"]), top_b, NODE_SIZE),
                color=KIND_COLOURS.get(props["kind"], EDGE_COLOUR),
                x=x,
                y=y,
                pinned=True,
                properties=props,
            )
        )
    kept = edges[edges[weight] > 0].sort_values([weight, "source", "target"], ascending=False)
    drawn = kept.head(MAX_EDGES)
    top_w = float(drawn[weight].max()) if len(drawn) else 0.0
    rels = [
        Relationship(
            id=f"{e.source}->{e.target}",
            source=e.source,
            target=e.target,
            width=_scaled(float(getattr(e, weight)), top_w, EDGE_WIDTH),
            color=PATH_COLOUR if (e.source, e.target) in path_edges else EDGE_COLOUR,
            caption=f"{getattr(e, weight):.3f}" if len(drawn) <= MAX_CAPTIONS else None,
            properties={
                "weight": float(getattr(e, weight)),
                "on_path": (e.source, e.target) in path_edges,
            },
        )
        for e in drawn.itertuples()
    ]
    graph = VisualizationGraph(nodes=nodes, relationships=rels)
    _set_legend(graph, components)
    pan, zoom = view_of(at.values())
    page = graph.render(
        layout=Layout.COORDINATE,
        renderer=Renderer.CANVAS,
        height=f"{HEIGHT_PX}px",
        pan_position=pan,
        initial_zoom=zoom,
    ).data
    [block] = _DATA_BLOCK.findall(page)
    return StepGraph(step, block, len(nodes), len(rels), len(kept) - len(drawn))


def _set_legend(graph: VisualizationGraph, components: pd.DataFrame) -> None:
    present = set(components["kind"])
    graph.set_legend(
        nodes={KIND_LABELS[k]: c for k, c in KIND_COLOURS.items() if k in present},
        relationships={"on a strongest path": PATH_COLOUR, "other influence": EDGE_COLOUR},
    )


def page_template() -> str:
    """neo4j-viz's page with its data block replaced by :data:`DATA_MARK` and a fixed container id.

    Rendered from an empty graph, so the template is the same for every report.
    """
    page = VisualizationGraph(nodes=[], relationships=[]).render(height=f"{HEIGHT_PX}px").data
    page = _CONTAINER.sub("neo4j-viz-graph", page)
    return _DATA_BLOCK.sub(lambda _: DATA_MARK, page, count=1)


def graph_steps(steps: Sequence[int], phase_ends: Sequence[int]) -> list[int]:
    """The checkpoints that get a graph: all up to :data:`MAX_STEPS`, else the first, the end of
    every phase and the last."""
    steps = sorted(steps)
    if len(steps) <= MAX_STEPS:
        return steps
    return sorted({steps[0], steps[-1], *phase_ends})


def selector_payload(graphs: Sequence[StepGraph]) -> str:
    """The per-step data blocks as one JSON object, safe inside a ``<script>`` element."""
    return _script_safe(json.dumps({str(g.step): g.data_block for g in graphs}))


def template_payload(template: str) -> str:
    """The page template as a JSON string, safe inside a ``<script>`` element."""
    return _script_safe(json.dumps(template))


def _script_safe(text: str) -> str:
    # Inside <script>, "</script>" would end the element and "<!--" can make the parser skip the
    # real end tag; JSON's "\\u003c" is the same string to JSON.parse and has no "<" at all.
    return text.replace("<", "\\u003c")
