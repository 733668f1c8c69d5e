"""The report's static figures, one function per figure, each ``(ReportData) -> Figure``.

Figures are built on matplotlib's Agg canvas without pyplot (no display, no global figure list,
nothing to close) and saved as PNGs without a timestamp or version in their metadata, so the same
data gives the same bytes. Colours are defined once: ``KIND_COLOURS`` per component kind,
``PHASE_COLOURS`` per phase label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch
from matplotlib.ticker import (
    FuncFormatter,
    NullFormatter,
    NullLocator,
    SymmetricalLogLocator,
)
from pandas.api.typing import DataFrameGroupBy

from circuitatlas.analytics.roles import ROLE_METRICS, top_sets
from circuitatlas.graph.paths import ARROW
from circuitatlas.ingest.components import order_key
from circuitatlas.report.data import ReportData

DPI = 110
PNG_METADATA: dict[str, str | None] = {"Software": None}  # no matplotlib version in the file
STEP_SUBS = (1.0, 2.0, 5.0)  # step ticks at 1, 2, 5 × 10ⁿ on a symmetric-log axis
MAX_HEIGHT = 16.0  # inches: a heatmap of many rows gets thinner rows, not a taller figure
DEFAULT_TOP = 8  # components per checkpoint in the role heatmaps

# Okabe–Ito colours, distinguishable with the common colour-vision deficiencies
KIND_COLOURS = {"input": "#0072B2", "attn_head": "#E69F00", "mlp": "#009E73", "logits": "#CC79A7"}
KIND_LABELS = {"input": "input (embedding)", "attn_head": "attention head", "mlp": "MLP",
               "logits": "logits (unembedding)"}  # fmt: skip
PHASE_COLOURS = {"exploration": "#56B4E9", "consolidation": "#B0A8D8", "refinement": "#F0B25A"}
OTHER_PHASE = "#CCCCCC"
PATH_COLOUR = "#C0392B"
RECONFIGURATION_COLOUR = "#C0392B"
MISSING_COLOUR = "#EEEEEE"
SERIES_COLOURS = {"n_nodes": "#333333", "n_edges": "#1F4E79", "metric": "#8C2D04"}

ROLE_TEXT = {
    "spreader": "out-strength (sum of outgoing edge weights)",
    "gatherer": "in-strength (sum of incoming edge weights)",
    "gatekeeper": "betweenness (share of shortest paths through it, cost 1/weight)",
}
MEASURE_TEXT = {"total": "total effect", "direct": "direct effect"}
MEASURE_COLOURS = {"total": "#8C96A8", "direct": "#C9CED8"}  # neutral: not a kind's colour
WEIGHT_COLUMNS = {"total": "weight", "direct": "direct_weight"}


@dataclass(frozen=True)
class FigureFile:
    """A figure written to disk: its name, a title and a caption for the report, its PNG."""

    name: str
    title: str
    caption: str
    path: Path


# --- shared pieces ---------------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def phase_colour(label: str) -> str:
    """The colour of a phase label (grey for a label outside ``PHASE_COLOURS``)."""
    return PHASE_COLOURS.get(label, OTHER_PHASE)


def _phase_handles(data: ReportData) -> list[Patch]:
    labels = dict.fromkeys(data.phases["label"])
    return [Patch(color=phase_colour(label), alpha=0.5, label=label) for label in labels]


def uses_symlog(steps: Sequence[int]) -> bool:
    """Whether a step axis reads better on a symmetric-log scale: the positive steps span two
    decades or more (log-spaced early checkpoints); otherwise it stays linear."""
    positive = [s for s in steps if s > 0]
    return len(positive) > 1 and max(positive) / min(positive) >= 100


def _step_axis(ax: Axes, steps: Sequence[int]) -> None:
    if uses_symlog(steps):
        linthresh = min(s for s in steps if s > 0)
        ax.set_xscale("symlog", linthresh=linthresh, linscale=0.4)
        ax.xaxis.set_major_locator(
            SymmetricalLogLocator(base=10, linthresh=linthresh, subs=STEP_SUBS)
        )
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.set_xlim(min(steps), max(steps) * 1.02 + 0.5)


def _step_scale_text(steps: Sequence[int]) -> str:
    if not uses_symlog(steps):
        return "The step axis is linear."
    lin = min(s for s in steps if s > 0)
    return (
        f"The step axis is symmetric-log (linear up to step {lin}, logarithmic beyond), so the "
        "early, closely spaced checkpoints and the later ones are both readable."
    )


def _shade_phases(ax: Axes, data: ReportData, numbered: bool = False) -> None:
    """Phase backgrounds on a step axis: each phase from its first step to the next one's, a
    thin line where a phase starts (two adjacent phases can share a label) and, ``numbered``,
    the phase's number and label above its left end."""
    starts = data.phases["first_step"].tolist()
    ends = [*starts[1:], data.steps[-1]]
    for i, (label, lo, hi) in enumerate(zip(data.phases["label"], starts, ends, strict=True)):
        ax.axvspan(lo, hi, color=phase_colour(label), alpha=0.25, lw=0, zorder=0)
        if i:
            ax.axvline(lo, color="#888888", lw=0.8, zorder=1)
        if numbered:
            ax.text(lo, 1.01, f"{i + 1} {label}", transform=ax.get_xaxis_transform(),
                    fontsize=7.5, va="bottom", ha="left", color="#444444")  # fmt: skip


def _mark_reconfigurations(ax: Axes, data: ReportData) -> None:
    for step in data.reconfigurations:
        ax.axvline(step, color=RECONFIGURATION_COLOUR, ls="--", lw=1.2, zorder=1)


def _checkpoint_ticks(ax: Axes, steps: Sequence[int], max_labels: int = 20) -> None:
    """x ticks at checkpoint indices, labelled with their steps (thinned past ``max_labels``)."""
    every = max(1, math.ceil(len(steps) / max_labels))
    ticks = list(range(0, len(steps), every))
    ax.set_xticks(ticks, [str(steps[i]) for i in ticks], rotation=45 if len(ticks) > 10 else 0)
    ax.set_xlabel("checkpoint (training step)")


def _phase_strip(ax: Axes, data: ReportData) -> None:
    """A band above an index axis: one coloured block per phase, labelled when wide enough."""
    index = {step: i for i, step in enumerate(data.steps)}
    for phase in data.phases.itertuples(index=False):
        lo, hi = index[phase.first_step] - 0.5, index[phase.last_step] + 0.5
        ax.axvspan(lo, hi, color=phase_colour(phase.label), alpha=0.6, lw=0)
        ax.axvline(lo, color="white", lw=1.5)
        if hi - lo >= 2:
            text = f"{phase.phase + 1} {phase.label}"
            ax.text((lo + hi) / 2, 0.5, text, ha="center", va="center", fontsize=8)
    ax.set_xlim(-0.5, len(data.steps) - 0.5)
    ax.set_yticks([])
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    ax.set_ylabel("phase", rotation=0, ha="right", va="center", fontsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _strip_and_main(fig: Figure, main_height: float) -> tuple[Axes, Axes]:
    grid = fig.add_gridspec(2, 1, height_ratios=[0.3, main_height])
    strip = fig.add_subplot(grid[0])
    return strip, fig.add_subplot(grid[1], sharex=strip)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555555")


# --- growth ----------------------------------------------------------------------------------
def growth(data: ReportData) -> Figure:
    """|V|, |E| and the task metric over training, phases shaded, reconfigurations marked."""
    fig = _figure(10, 6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    ck = data.checkpoints
    series = {
        "n_nodes": (top, "|V|: components with an edge", "o"),
        "n_edges": (top, "|E|: edges", "s"),
        "metric": (bottom, "task metric", "D"),
    }
    for column, (ax, label, marker) in series.items():
        ax.plot(ck["step"], ck[column], marker=marker, ms=4, lw=1.6, label=label,
                color=SERIES_COLOURS[column], zorder=3)  # fmt: skip
    for ax in (top, bottom):
        _shade_phases(ax, data, numbered=ax is top)
        _mark_reconfigurations(ax, data)
        ax.grid(alpha=0.3, lw=0.5)
    _step_axis(bottom, data.steps)
    top.set_ylabel(f"count (graph at τ={data.tau:g})")
    bottom.set_ylabel("task metric\n(mean log-prob, higher is better)")
    bottom.set_xlabel("training step")
    handles = [*top.get_lines()[:2], *bottom.get_lines()[:1], *_phase_handles(data)]
    if data.reconfigurations:
        handles.append(
            Line2D([], [], color=RECONFIGURATION_COLOUR, ls="--", label="reconfiguration")
        )
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=9)
    fig.suptitle(f"Graph size and task metric over training — run {data.run_id}")
    return fig


# --- role heatmaps ---------------------------------------------------------------------------
def role_matrix(
    data: ReportData, role: str, k: int = DEFAULT_TOP
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The role's metric (rows: the union over checkpoints of each one's top-``k`` components,
    in computation order; columns: steps) and a same-shaped boolean frame: whether the
    component is in that checkpoint's top ``k``. Only positive values make the top k, ties by
    name (as in :func:`circuitatlas.analytics.roles.top_sets`)."""
    metric = ROLE_METRICS[role]
    sets = top_sets(data.components, k)
    top = {step: set(roles[role]) for step, roles in sets.items()}
    names = sorted(set().union(*top.values()), key=order_key) if top else []
    chosen = data.components[data.components["name"].isin(names)]
    matrix = chosen.pivot(index="name", columns="step", values=metric)
    matrix = matrix.reindex(index=names, columns=data.steps).astype("float64")
    member = pd.DataFrame(
        {step: [name in top.get(step, set()) for name in names] for step in data.steps},
        index=names,
    )
    return matrix, member


def _heatmap(data: ReportData, role: str, k: int) -> Figure:
    matrix, member = role_matrix(data, role, k)
    n = len(matrix)
    fig = _figure(10, min(MAX_HEIGHT, max(3.4, 1.9 + 0.3 * n)))
    strip, ax = _strip_and_main(fig, max(2.0, 0.3 * n))
    _phase_strip(strip, data)
    metric = ROLE_METRICS[role]
    title = f"{role.capitalize()}s: top {k} components by {metric.replace('_', '-')} per checkpoint"
    strip.set_title(title)
    _checkpoint_ticks(ax, data.steps)
    if not n:
        _empty(ax, f"no component has a positive {metric} at any checkpoint (at τ={data.tau:g})")
        ax.set_yticks([])
        return fig
    values = matrix.to_numpy()
    positive = values[values > 0]
    norm = LogNorm(positive.min(), positive.max()) if positive.min() < positive.max() else None
    shown = np.ma.masked_where(~(values > 0), values)
    cmap = colormaps["viridis"].with_extremes(bad=MISSING_COLOUR)
    image = ax.imshow(shown, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
    rows, cols = np.nonzero(member.to_numpy())
    ax.scatter(cols, rows, s=14, c="white", edgecolors="black", linewidths=0.6)
    _kind_ticks(ax, data, matrix.index.tolist())
    ax.set_ylabel("component")
    bar = fig.colorbar(image, ax=[strip, ax], shrink=0.9, pad=0.01)
    bar.set_label(f"{metric.replace('_', '-')} (log scale)", fontsize=9)
    _plain_log_ticks(bar.ax.yaxis, positive.max() / positive.min())
    return fig


def _plain_log_ticks(axis: Axis, ratio: float) -> None:
    """Log-axis numbers written plainly (0.4, 1, 10); the minor ticks are labelled too when
    the axis spans little more than a decade (else they would crowd)."""
    plain = FuncFormatter(lambda v, _: f"{v:.2g}")
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(plain if ratio < 30 else NullFormatter())


def _kind_ticks(ax: Axes, data: ReportData, names: list[str]) -> None:
    """y tick labels of component names, each in its kind's colour."""
    kinds = data.components.drop_duplicates("name").set_index("name")["kind"]
    ax.set_yticks(range(len(names)), names, fontsize=8 if len(names) > 20 else 9)
    for label, name in zip(ax.get_yticklabels(), names, strict=True):
        label.set_color(KIND_COLOURS.get(kinds.get(name, ""), "black"))


def spreaders(data: ReportData, k: int = DEFAULT_TOP) -> Figure:
    """Heatmap of out-strength over training for the components ever in a step's top ``k``."""
    return _heatmap(data, "spreader", k)


def gatherers(data: ReportData, k: int = DEFAULT_TOP) -> Figure:
    """Heatmap of in-strength over training for the components ever in a step's top ``k``."""
    return _heatmap(data, "gatherer", k)


def gatekeepers(data: ReportData, k: int = DEFAULT_TOP) -> Figure:
    """Heatmap of betweenness over training for the components ever in a step's top ``k``."""
    return _heatmap(data, "gatekeeper", k)


# --- edge weights ----------------------------------------------------------------------------
def weights(data: ReportData) -> Figure:
    """Per checkpoint, box plots of the positive edge weights (total and direct), log scale."""
    fig = _figure(10, 6.4)
    grid = fig.add_gridspec(3, 1, height_ratios=[0.3, 2.5, 2.5])
    strip = fig.add_subplot(grid[0])
    _phase_strip(strip, data)
    strip.set_title("Edge-weight distribution over training")
    by_step = data.edges.groupby("step")
    for row, measure in enumerate(WEIGHT_COLUMNS, start=1):
        ax = fig.add_subplot(grid[row], sharex=strip)
        samples = [_positive(by_step, step, WEIGHT_COLUMNS[measure]) for step in data.steps]
        _boxes(ax, samples, MEASURE_COLOURS[measure])
        ax.set_yscale("log")
        ax.set_ylabel(f"{MEASURE_TEXT[measure]} weight\n(1 − cosine, log scale)")
        ax.grid(axis="y", alpha=0.3, lw=0.5, which="both")
        if measure == data.measure:
            _tau_line(ax, data.tau)
        if row == 1:
            ax.tick_params(axis="x", labelbottom=False)
        else:
            _checkpoint_ticks(ax, data.steps)
    return fig


def _positive(by_step: DataFrameGroupBy, step: int, column: str) -> np.ndarray:
    if step not in by_step.groups:
        return np.array([])
    values = by_step.get_group(step)[column].to_numpy(dtype=np.float64)
    return np.sort(values[values > 0])  # sorted: the figure is the same whatever the row order


def _boxes(ax: Axes, samples: list[np.ndarray], colour: str) -> None:
    present = [i for i, s in enumerate(samples) if len(s)]
    if not present:
        _empty(ax, "no edge with a positive weight")
        return
    parts = ax.boxplot(
        [samples[i] for i in present], positions=present, widths=0.6, whis=(5, 95),
        patch_artist=True, flierprops={"marker": ".", "ms": 3, "alpha": 0.5},
        medianprops={"color": "black"},
    )  # fmt: skip
    for box in parts["boxes"]:
        box.set(facecolor=colour, alpha=0.55)


def _tau_line(ax: Axes, tau: float) -> None:
    ax.axhline(1 - tau, color=RECONFIGURATION_COLOUR, ls=":", lw=1.2)
    ax.text(1.0, 1 - tau, f" τ={tau:g}: edges above\n kept by the analysis", fontsize=7,
            color=RECONFIGURATION_COLOUR, va="center", ha="left",
            transform=ax.get_yaxis_transform())  # fmt: skip


# --- strongest paths -------------------------------------------------------------------------
COLUMN_GAP, ROW_GAP = 1.6, 0.8  # layout units between columns and between stacked heads
ARC = 0.22  # curvature of path arrows (so long edges bend around the components between)
MAX_NODE = 22.0  # largest node diameter, points
LABEL_BOX = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8}


def layout(components: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Positions in computation order: ``input`` leftmost, each layer's heads in one column
    (stacked, head 0 lowest) and its MLP in the next, ``logits`` rightmost; ``input``, the
    MLPs and ``logits`` on the bottom row, the heads above it."""
    out = {}
    for row in components.drop_duplicates("name").itertuples(index=False):
        layer = int(row.layer)  # input: −1, logits: the number of layers
        if row.kind == "attn_head":
            column, height = 2 * layer + 1, int(row.head) + 1
        elif row.kind == "mlp":
            column, height = 2 * layer + 2, 0
        else:
            column, height = 2 * layer + 2 if row.kind == "input" else 2 * layer + 1, 0
        out[row.name] = (column * COLUMN_GAP, height * ROW_GAP)
    return out


@dataclass(frozen=True)
class _Canvas:
    """What every path panel shares: positions, kinds, limits and the node size."""

    pos: dict[str, tuple[float, float]]
    kinds: dict[str, str]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    node: float  # node diameter, points

    def colour(self, name: str) -> str:
        return KIND_COLOURS.get(self.kinds.get(name, ""), "grey")


def paths(data: ReportData) -> Figure:
    """One panel per phase: every component faint, the phase's strongest path highlighted with
    its edge weights (at the step the path is taken at)."""
    pos = layout(data.components)
    xs, ys = zip(*pos.values(), strict=True)
    sag = ARC * max(xs) / 2  # how far the longest (input → logits) arrow bends below
    xlim, ylim = (-0.8, max(xs) + 0.8), (-sag - 0.45, max(ys) + 0.9)
    n = len(data.phase_paths)
    ncols = min(n, 2)
    nrows = math.ceil(n / ncols)
    panel = 5.4 if ncols > 1 else 8.0
    scale = panel * 72 / (xlim[1] - xlim[0])  # points per layout unit
    node = min(MAX_NODE, 0.5 * ROW_GAP * scale)
    aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
    fig = _figure(panel * ncols, nrows * (0.92 * panel * aspect + 0.7) + 0.9)
    kinds = data.components.drop_duplicates("name").set_index("name")["kind"].to_dict()
    canvas = _Canvas(pos, kinds, xlim, ylim, node)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, phase in zip(axes, data.phase_paths.itertuples(index=False), strict=False):
        _path_panel(ax, data, canvas, phase)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.legend(handles=_path_legend(data), loc="outside lower center", ncol=5, fontsize=9)
    s = data.paths.settings
    fig.suptitle(f"Strongest {s.source}{ARROW}{s.sink} path of each phase "
                 f"({MEASURE_TEXT[s.measure]} weights)")  # fmt: skip
    return fig


def _path_legend(data: ReportData) -> list[Line2D]:
    kinds = [k for k in KIND_COLOURS if k in set(data.components["kind"])]
    handles = [Line2D([], [], marker="o", ls="", ms=8, color=KIND_COLOURS[k], label=KIND_LABELS[k])
               for k in kinds]  # fmt: skip
    handles.append(Line2D([], [], color=PATH_COLOUR, lw=2, label="strongest path (edge weight)"))
    return handles


def _path_panel(ax: Axes, data: ReportData, canvas: _Canvas, phase: tuple) -> None:
    names = list(canvas.pos)
    xy = np.array([canvas.pos[name] for name in names])
    colours = [canvas.colour(name) for name in names]
    ax.scatter(xy[:, 0], xy[:, 1], s=canvas.node**2, c=colours, alpha=0.25, lw=0, zorder=2)
    if canvas.node >= 14:
        for name in names:
            ax.text(*canvas.pos[name], name, fontsize=6, ha="center", va="center", color="#555555")
    _layer_labels(ax, data, canvas)
    ax.set(xlim=canvas.xlim, ylim=canvas.ylim, aspect="equal")
    ax.axis("off")
    ax.set_title(_panel_title(phase), fontsize=9,
                 bbox={"fc": phase_colour(phase.label), "alpha": 0.45, "ec": "none"})  # fmt: skip
    if pd.isna(phase.path):
        _empty(ax, "no path at any checkpoint of this phase")
        return
    chain = phase.path.split(ARROW)
    for (a, b), w in zip(pairwise(chain), _hop_weights(data, int(phase.step), chain), strict=True):
        _arrow(ax, canvas, a, b, w)
    for name in chain:
        ax.scatter(*canvas.pos[name], s=(1.3 * canvas.node) ** 2, c=canvas.colour(name),
                   edgecolors="black", lw=1.2, zorder=4)  # fmt: skip
        ax.annotate(name, canvas.pos[name], xytext=(0, 0.9 * canvas.node),
                    textcoords="offset points", fontsize=8, fontweight="bold", ha="center",
                    va="bottom", zorder=5, bbox=LABEL_BOX)  # fmt: skip


def _layer_labels(ax: Axes, data: ReportData, canvas: _Canvas) -> None:
    """ "layer L" above each layer's two columns (heads, MLP)."""
    top = canvas.ylim[1] - 0.35
    for layer in sorted(set(data.components.loc[data.components["kind"] == "mlp", "layer"])):
        x = (2 * int(layer) + 1.5) * COLUMN_GAP
        ax.text(x, top, f"layer {int(layer)}", ha="center", va="center", fontsize=7.5,
                color="#555555")  # fmt: skip


def _panel_title(phase: tuple) -> str:
    steps = (f"step {phase.first_step}" if phase.first_step == phase.last_step
             else f"steps {phase.first_step}–{phase.last_step}")  # fmt: skip
    head = f"phase {phase.phase + 1}: {phase.label}, {steps}"
    if pd.isna(phase.path):
        return head
    return (f"{head}\ndrawn at step {phase.step} · ranked 1st at {phase.top1_checkpoints} of "
            f"{phase.n_checkpoints} checkpoints · strength {phase.strength:.3g}")  # fmt: skip


def _hop_weights(data: ReportData, step: int, chain: list[str]) -> list[float]:
    """The path measure's weight of each hop of ``chain`` at ``step``."""
    column = WEIGHT_COLUMNS[data.paths.settings.measure]
    at = data.edges[data.edges["step"] == step].set_index(["source", "target"])[column]
    return [float(at.get((a, b), math.nan)) for a, b in pairwise(chain)]


def _arrow(ax: Axes, canvas: _Canvas, a: str, b: str, weight: float) -> None:
    """A curved path arrow from ``a`` to ``b``, its weight written at the curve's middle."""
    (xa, ya), (xb, yb) = canvas.pos[a], canvas.pos[b]
    gap = 0.65 * canvas.node + 1
    ax.add_patch(FancyArrowPatch((xa, ya), (xb, yb), connectionstyle=f"arc3,rad={ARC}",
                                 arrowstyle="-|>", mutation_scale=14, lw=2.2, color=PATH_COLOUR,
                                 shrinkA=gap, shrinkB=gap, zorder=3))  # fmt: skip
    # arc3's control point is the chord's middle moved by rad × (dy, −dx); the quadratic
    # Bézier passes halfway between that point and the chord's middle (equal aspect)
    mid = ((xa + xb) / 2 + ARC * (yb - ya) / 2, (ya + yb) / 2 - ARC * (xb - xa) / 2)
    ax.text(*mid, f"{weight:.3f}", fontsize=8, ha="center", va="center", color=PATH_COLOUR,
            zorder=6, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": PATH_COLOUR,
                            "lw": 0.6})  # fmt: skip


# --- table and files -------------------------------------------------------------------------
def persistence_table(data: ReportData) -> pd.DataFrame:
    """Each path seen in a checkpoint's top k, for display: first and last step there, the
    fraction of checkpoints it is in the top k, its best rank and the steps where it ranks 1st,
    sorted by that fraction (descending)."""
    top1 = data.paths.paths[data.paths.paths["rank"] == 1]
    at_top = top1.groupby("path")["step"].agg(lambda s: ", ".join(map(str, sorted(s))))
    table = data.persistence
    return pd.DataFrame(
        {
            "path": table["path"],
            "first step": table["first_step"].astype("int64"),
            "last step": table["last_step"].astype("int64"),
            "fraction in top k": table["fraction"].astype("float64"),
            "best rank": table["best_rank"].astype("int64"),
            "steps at rank 1": table["path"].map(at_top).fillna(""),
        }
    ).reset_index(drop=True)


def _captions(data: ReportData) -> dict[str, str]:
    graph = f"the graph at τ={data.tau:g} ({MEASURE_TEXT[data.measure]} edges)"
    s = data.paths.settings
    return {
        "growth": (
            f"|V| (components with at least one edge) and |E| of {graph}, and the task metric "
            f"(mean log-probability of the scored tokens), at each checkpoint. Shading: phases "
            f"(change points of |V|, |E| and the metric); dashed lines: reconfiguration events "
            f"(the top-k role sets changed by more than half). {_step_scale_text(data.steps)}"
        ),
        **{f"{role}s": _heatmap_caption(role, graph) for role in ROLE_METRICS},
        "weights": (
            "Distribution of every stored edge's weight (1 − cosine similarity of the target's "
            "clean and ablated outputs) per checkpoint, total effect above and direct effect "
            "below, on a log scale: boxes span the quartiles, whiskers the 5th–95th percentiles, "
            f"dots the rest; weights ≤ 0 are left out. The dotted line is τ={data.tau:g}: the "
            "analysis keeps the edges above it."
        ),
        "paths": (
            f"For each phase, the strongest {s.source}{ARROW}{s.sink} path "
            f"({MEASURE_TEXT[s.measure]} weights): the path ranked 1st at the most checkpoints "
            "of the phase (ties: the one ranked 1st later), drawn at the last checkpoint of the "
            "phase where it ranks 1st. Components are laid out by layer, input at the left, "
            "each layer's heads stacked in one column and its MLP in the next; numbers are the "
            "path's edge weights there, its strength the product of its weights clipped to 1."
        ),
    }


def _heatmap_caption(role: str, graph: str) -> str:
    m = ROLE_METRICS[role].replace("_", "-")
    return (
        f"Rows: every component that is among a checkpoint's top {DEFAULT_TOP} by {m} "
        f"({ROLE_TEXT[role]}) at some checkpoint, in computation order, names coloured by kind; "
        f"only positive values count. Colour: its {m} at each checkpoint on a log scale (light "
        f"grey: zero); a dot marks the checkpoint's top {DEFAULT_TOP}. Computed on {graph}; the "
        f"band above shows the phases."
    )


FIGURES: dict[str, tuple[str, Callable[[ReportData], Figure]]] = {
    "growth": ("Graph growth and task metric", growth),
    "spreaders": ("Spreaders (out-strength)", spreaders),
    "gatherers": ("Gatherers (in-strength)", gatherers),
    "gatekeepers": ("Gatekeepers (betweenness)", gatekeepers),
    "weights": ("Edge-weight distribution", weights),
    "paths": ("Strongest path per phase", paths),
}


def save_png(fig: Figure, path: Path) -> None:
    """Save ``fig`` as a PNG at ``DPI`` with no timestamp or version (same data, same bytes)."""
    fig.savefig(path, dpi=DPI, format="png", metadata=PNG_METADATA)


def write_figures(
    data: ReportData,
    out_dir: str | Path,
    figures: dict[str, tuple[str, Callable[[ReportData], Figure]]] | None = None,
    captions: dict[str, str] | None = None,
) -> list[FigureFile]:
    """Write every figure of ``figures`` (default ``FIGURES``, with their captions) as
    ``out_dir/{name}.png``; their files, in order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if figures is None:
        figures, captions = FIGURES, _captions(data)
    assert captions is not None
    files = []
    for name, (title, build) in figures.items():
        path = out / f"{name}.png"
        fig = build(data)
        save_png(fig, path)
        fig.clear()
        files.append(FigureFile(name, title, captions[name], path))
    return files
