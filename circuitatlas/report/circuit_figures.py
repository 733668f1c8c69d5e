"""The report's figures of the saved edge-level circuits (:mod:`circuitatlas.report.circuit_data`).

``circuit_over_training``: per step the circuit's size and faithfulness, phases shaded and the
emergence marked; ``circuit_per_phase``: the circuit of each phase's last checkpoint drawn as a
layered graph. Both are drawn, saved and captioned as the other figures are
(:mod:`circuitatlas.report.figures`); a run without edge circuits gets neither.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from circuitatlas.report.circuit_data import CircuitData
from circuitatlas.report.data import ReportData
from circuitatlas.report.figures import (
    ARC,
    KIND_COLOURS,
    KIND_LABELS,
    MAX_NODE,
    ROW_GAP,
    SERIES_COLOURS,
    FigureFile,
    _Canvas,
    _empty,
    _figure,
    _layer_labels,
    _phase_handles,
    _shade_phases,
    _step_axis,
    _step_scale_text,
    layout,
    phase_colour,
    write_figures,
)

FAITHFULNESS_COLOUR = SERIES_COLOURS["metric"]
EMERGENCE_COLOUR = "#6A3D9A"
# an edge's colour by the sign of its score (patched − clean metric): cutting a negative edge
# lowers the task metric (it carries the task), cutting a positive one raises it
SIGN_COLOURS = {"negative": "#2166AC", "positive": "#B2182B"}
MIN_WIDTH, MAX_WIDTH = 0.8, 4.5  # edge line widths, points, for the smallest and largest |score|
SCORE_TEXT = {"exact": "exact edge patching", "eap-ig": "EAP-IG"}


def _circuits(data: ReportData) -> CircuitData:
    if data.circuits is None:
        raise ValueError(f"run {data.run_id} has no saved edge circuit to draw")
    return data.circuits


# --- over training ---------------------------------------------------------------------------
def circuit_over_training(data: ReportData) -> Figure:
    """Per step: the circuit's edges and components (left axis), its faithfulness and the
    target (right axis); phases shaded, the emergence marked."""
    c = _circuits(data)
    fig = _figure(10, 4.8)
    ax = fig.subplots()
    right = ax.twinx()
    steps = c.steps["step"]
    handles = [
        *ax.plot(steps, c.steps["n_edges"], marker="s", ms=4, lw=1.6,
                 color=SERIES_COLOURS["n_edges"], label="edges in the circuit", zorder=3),
        *ax.plot(steps, c.steps["n_components"], marker="o", ms=4, lw=1.6,
                 color=SERIES_COLOURS["n_nodes"], label="components it touches", zorder=3),
        *right.plot(steps, c.steps["faithfulness"], marker="D", ms=4, lw=1.6,
                    color=FAITHFULNESS_COLOUR, label="faithfulness", zorder=3),
        right.axhline(c.target, color=FAITHFULNESS_COLOUR, ls="--", lw=1.1,
                      label=f"target {c.target:g}"),
    ]  # fmt: skip
    _shade_phases(ax, data, numbered=True)
    _step_axis(ax, data.steps)
    ax.set_ylim(0, max(1, int(c.steps[["n_edges", "n_components"]].max().max())) * 1.12)
    faith = c.steps["faithfulness"].dropna()
    low = min(0.0, float(faith.min())) if len(faith) else 0.0
    high = max(1.05, float(faith.max()) * 1.05, c.target * 1.05) if len(faith) else 1.05
    right.set_ylim(low, high)
    ax.set_ylabel("count")
    right.set_ylabel("faithfulness\n(share of the task metric kept)", color=FAITHFULNESS_COLOUR)
    right.tick_params(axis="y", colors=FAITHFULNESS_COLOUR)
    ax.set_xlabel("training step")
    ax.grid(alpha=0.3, lw=0.5)
    if c.emergence is not None:
        ax.axvline(c.emergence, color=EMERGENCE_COLOUR, ls="-.", lw=1.6, zorder=2)
        ax.text(c.emergence, 0.97, f" emergence\n step {c.emergence}", fontsize=8, va="top",
                color=EMERGENCE_COLOUR, transform=ax.get_xaxis_transform())  # fmt: skip
        handles.append(Line2D([], [], color=EMERGENCE_COLOUR, ls="-.",
                              label="previous-token → induction edge enters"))  # fmt: skip
    handles += _phase_handles(data)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=9)
    fig.suptitle(f"The circuit over training — run {data.run_id} ({c.setting})")
    return fig


# --- per phase -------------------------------------------------------------------------------
def circuit_per_phase(data: ReportData) -> Figure:
    """One panel per phase: the circuit of the phase's last checkpoint with a circuit, every
    component placed by layer, edges wider for a larger |score| and coloured by its sign."""
    c = _circuits(data)
    pos = layout(data.components)
    xs, ys = zip(*pos.values(), strict=True)
    sag = ARC * max(xs) / 2
    xlim, ylim = (-0.8, max(xs) + 0.8), (-sag - 0.45, max(ys) + 0.9)
    n = len(data.phases)
    ncols = min(n, 2)
    nrows = math.ceil(n / ncols)
    panel = 5.4 if ncols > 1 else 8.0
    node = min(MAX_NODE, 0.5 * ROW_GAP * panel * 72 / (xlim[1] - xlim[0]))
    aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
    fig = _figure(panel * ncols, nrows * (0.92 * panel * aspect + 0.9) + 0.9)
    kinds = data.components.drop_duplicates("name").set_index("name")["kind"].to_dict()
    canvas = _Canvas(pos, kinds, xlim, ylim, node)
    drawn = {
        p.phase: c.step_at_or_before(p.first_step, p.last_step) for p in data.phases.itertuples()
    }
    scores = c.edges.loc[
        c.edges["step"].isin([s for s in drawn.values() if s is not None]), "score"
    ]
    largest = float(scores.abs().max()) if len(scores) else 0.0
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, phase in zip(axes, data.phases.itertuples(index=False), strict=False):
        ax.set(xlim=xlim, ylim=ylim, aspect="equal")
        ax.axis("off")
        step = drawn[phase.phase]
        band = {"fc": phase_colour(phase.label), "alpha": 0.45, "ec": "none"}
        ax.set_title(_panel_title(phase, c, step), fontsize=9, bbox=band)
        _layer_labels(ax, data, canvas)
        _draw_circuit(ax, c, step, canvas, largest)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.legend(handles=_legend(data), loc="outside lower center", ncol=3, fontsize=9)
    fig.suptitle(f"The circuit of each phase ({c.setting})")
    return fig


def _panel_title(phase: tuple, c: CircuitData, step: int | None) -> str:
    steps = (f"step {phase.first_step}" if phase.first_step == phase.last_step
             else f"steps {phase.first_step}–{phase.last_step}")  # fmt: skip
    head = f"phase {phase.phase + 1}: {phase.label}, {steps}"
    if step is None:
        return head
    row = c.steps[c.steps["step"] == step].iloc[0]
    return (f"{head}\ncircuit at step {step} · {int(row['n_edges'])} edges · faithfulness "
            f"{float(row['faithfulness']):.3g}")  # fmt: skip


def _draw_circuit(
    ax: Axes, c: CircuitData, step: int | None, canvas: _Canvas, largest: float
) -> None:
    """The circuit of ``step`` on a panel of every component (faint)."""
    pos, node = canvas.pos, canvas.node
    names = list(pos)
    xy = np.array([pos[name] for name in names])
    colours = [canvas.colour(name) for name in names]
    ax.scatter(xy[:, 0], xy[:, 1], s=node**2, c=colours, alpha=0.2, lw=0, zorder=2)
    if step is None:
        _empty(ax, "no circuit saved in this phase")
        return
    edges = c.edges_at(step)
    members = [name for name in names if name in set(edges["source"]) | set(edges["target"])]
    # the weakest first, so the strongest are drawn on top
    for e in edges.iloc[::-1].itertuples(index=False):
        if e.source not in pos or e.target not in pos:
            continue
        share = abs(float(e.score)) / largest if largest > 0 else 1.0
        colour = SIGN_COLOURS["negative" if e.score < 0 else "positive"]
        ax.add_patch(FancyArrowPatch(pos[e.source], pos[e.target],
                                     connectionstyle=f"arc3,rad={ARC}", arrowstyle="-|>",
                                     mutation_scale=9 + 5 * share, color=colour, alpha=0.85,
                                     lw=MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * share,
                                     shrinkA=0.55 * node, shrinkB=0.55 * node,
                                     zorder=3))  # fmt: skip
    for name in members:
        ax.scatter(*pos[name], s=node**2, c=canvas.colour(name), edgecolors="black", lw=1.0,
                   zorder=4)  # fmt: skip
        ax.annotate(name, pos[name], xytext=(0, 0.75 * node), textcoords="offset points",
                    fontsize=7, ha="center", va="bottom", zorder=5,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none",
                          "alpha": 0.75})  # fmt: skip


def _legend(data: ReportData) -> list[Line2D]:
    kinds = [k for k in KIND_COLOURS if k in set(data.components["kind"])]
    handles = [Line2D([], [], marker="o", ls="", ms=8, color=KIND_COLOURS[k], label=KIND_LABELS[k])
               for k in kinds]  # fmt: skip
    handles.append(Line2D([], [], color=SIGN_COLOURS["negative"], lw=2.5,
                          label="score < 0: the edge carries the task"))  # fmt: skip
    handles.append(Line2D([], [], color=SIGN_COLOURS["positive"], lw=2.5,
                          label="score > 0: the edge works against it"))  # fmt: skip
    return handles


# --- captions and files ----------------------------------------------------------------------
def _others_text(c: CircuitData) -> str:
    if not c.others:
        return ""
    return (f" Also stored for this run, not shown: {'; '.join(c.others)} (the figure shows the "
            "setting saved most recently).")  # fmt: skip


def _captions(data: ReportData) -> dict[str, str]:
    c = _circuits(data)
    scores = SCORE_TEXT.get(c.scores, c.scores)
    emergence = (
        f"The dash-dotted line is the emergence (step {c.emergence}): the first step whose "
        "circuit holds an edge from a previous-token head (score ≥ 0.3) to an induction head "
        "(score ≥ 0.3) of a later layer."
        if c.emergence is not None
        else "No circuit holds an edge from a previous-token head to a later induction head "
        "(both scores ≥ 0.3): no emergence to mark."
    )
    return {
        "circuit-trajectory": (
            f"At each checkpoint, the smallest faithful, 1-minimal set of edges ranked by "
            f"{scores} scores ({c.setting}): its number of edges and of the components they "
            f"touch (left axis) and its faithfulness, the share of the clean model's task metric "
            f"it keeps with every other edge ablated (right axis; dashed: the target "
            f"{c.target:g}). Shading: the training phases. {emergence} "
            f"{_step_scale_text(data.steps)}{_others_text(c)}"
        ),
        "circuit-phases": (
            "For each training phase, the circuit of its last checkpoint (or of its last "
            "checkpoint with a saved circuit): components placed by layer, input at the left, "
            "each layer's heads stacked in one column and its MLP in the next, logits at the "
            "right; the circuit's components outlined, the others faint. Each edge is wider for "
            f"a larger |score| ({scores}, one scale for every panel) and coloured by its sign: "
            "blue where cutting it lowers the task metric (it carries the task), red where "
            f"cutting it raises it.{_others_text(c)}"
        ),
    }


CIRCUIT_FIGURES: dict[str, tuple[str, Callable[[ReportData], Figure]]] = {
    "circuit-trajectory": ("The circuit over training", circuit_over_training),
    "circuit-phases": ("The circuit per phase", circuit_per_phase),
}


def write_circuit_figures(data: ReportData, out_dir: str | Path) -> list[FigureFile]:
    """Write the circuit figures as ``out_dir/{name}.png`` (none when the run has no edge
    circuit); their files, in order."""
    if data.circuits is None:
        return []
    return write_figures(data, out_dir, CIRCUIT_FIGURES, _captions(data))
