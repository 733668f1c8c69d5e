"""``circuitatlas report``: gather a run, draw its figures and graphs, write one offline page.

The output directory holds ``index.html`` (everything inlined: it opens from disk with no
network) and the figures as PNGs beside it. It is written whole or not at all, and an existing
directory is replaced only when it holds an earlier report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from circuitatlas._version import __version__
from circuitatlas.analytics.analyze import using_store
from circuitatlas.analytics.roles import ROLES
from circuitatlas.atomic_dir import atomic_directory
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.centrality import centralities
from circuitatlas.graph.paths import ARROW, DEFAULT_K
from circuitatlas.queries.circuits import induction_emergence
from circuitatlas.report import page
from circuitatlas.report.circuit_data import EDGE_KIND, CircuitData
from circuitatlas.report.circuit_figures import write_circuit_figures
from circuitatlas.report.data import ReportData, gather
from circuitatlas.report.figures import FigureFile, persistence_table, write_figures
from circuitatlas.report.graph import StepGraph, graph_steps, page_template, step_graph
from circuitatlas.store.base import StoreBase

INDEX = "index.html"
GENERATOR = "circuitatlas report"  # the page's <meta name="generator">: marks a report directory
ALL_POSITIVE = 2.0  # τ that keeps every edge with a positive weight (similarity < 2 always)


@dataclass(frozen=True)
class WrittenReport:
    """Where a report went and what it shows."""

    index: Path
    figures: list[Path]
    graph_steps: list[int]
    kinds: list[str]  # component kinds drawn in the graph
    warnings: tuple[str, ...]


def write_report(
    store: StoreBase | str | Path,
    run_id: str,
    out: Path,
    k: int = DEFAULT_K,
    tau: float | None = None,
    progress: bool = True,
    lead: Sequence[page.Section] = (),
) -> WrittenReport:
    """Write the report of ``run_id`` to the directory ``out``; reads the store, never writes it.

    ``k`` strongest paths per checkpoint; ``tau`` as in :func:`circuitatlas.report.data.gather`;
    ``lead``: sections shown first, right after the run table.
    """
    out = Path(out)
    check_out(out)
    with using_store(store, writable=False) as opened:
        data = gather(opened, run_id, k, tau)
        steps = graph_steps(data.steps, data.phases["last_step"].tolist())
        graphs = [
            checkpoint_graph(opened, data, s)
            for s in tqdm(steps, desc="graphs", unit="ckpt", disable=not progress)
        ]
        circuits = opened.circuits(run_id)
    with atomic_directory(out) as tmp:
        figures = write_figures(data, tmp)
        circuit_figures = write_circuit_figures(data, tmp)
        html = page.render(
            title=f"circuitatlas — run {run_id}",
            facts=facts(data),
            warnings=data.warnings,
            summary=summary(data, circuits),
            sections=figures,
            tables={"Path persistence": (PERSISTENCE_NOTE.format(k=k), persistence_table(data))},
            graphs=graphs,
            template=page_template(),
            graph_note=GRAPH_NOTE,
            generator=GENERATOR,
            parts_after=circuit_sections(data.circuits, circuit_figures),
            parts_before=lead,
        )
        (tmp / INDEX).write_text(html, encoding="utf-8")
    kinds = sorted(set(data.components["kind"]))
    written = [out / f.path.name for f in [*figures, *circuit_figures]]
    return WrittenReport(out / INDEX, written, steps, kinds, data.warnings)


PERSISTENCE_NOTE = (
    "Each path that is among the {k} strongest direct-effect input→logits paths at some "
    "checkpoint: where it first and last is, the fraction of checkpoints where it is, its best "
    "rank and the checkpoints where it is the strongest."
)
GRAPH_NOTE = (
    "Components are placed by layer (input left, logits right), coloured by kind and sized by "
    "betweenness on the drawn graph; edges are direct effects, wider when stronger, red when on "
    "one of the checkpoint's strongest paths. Drag to pan, scroll to zoom, click for properties."
)


CIRCUITS_NOTE = (
    "The edge-level circuits saved with `circuitatlas circuits --save` ({setting}): at each "
    "checkpoint, the smallest set of edges, ranked by |score|, that keeps the target share of "
    "the task metric, pruned until no edge can go."
)


def circuit_sections(
    circuits: CircuitData | None, figures: Sequence[FigureFile]
) -> list[page.Section]:
    """The page's "Circuits" part (none for a run without edge circuits)."""
    if circuits is None:
        return []
    step = circuits.final_step
    return [
        page.Section(
            id="circuits",
            title="Circuits",
            note=CIRCUITS_NOTE.format(setting=circuits.setting),
            figures=figures,
            tables=[
                (f"The final circuit (step {step}).", circuits.final_table()),
                (f"Its edges at step {step}, by |score|.", circuits.final_edges_table()),
            ],
        )
    ]


def check_out(out: Path) -> None:
    """Refuse an output directory that exists, is not empty and is not an earlier report."""
    if out.exists() and not out.is_dir():
        raise CircuitAtlasError(f"--out {out}: is a file; give a directory for the report")
    if out.is_dir() and any(out.iterdir()):
        index = out / INDEX
        marker = f'<meta name="generator" content="{GENERATOR}">'
        if not (index.is_file() and marker in index.read_text(encoding="utf-8", errors="replace")):
            raise CircuitAtlasError(
                f"--out {out}: exists and holds something other than a circuitatlas report; "
                "give a new or empty directory"
            )


def checkpoint_graph(store: StoreBase, data: ReportData, step: int) -> StepGraph:
    """The interactive graph of one checkpoint: every component, its positive direct edges,
    sizes by betweenness on them (the analytics' definition), its top paths highlighted."""
    components = data.components[data.components["step"] == step].drop(columns="step")
    graph = store.analysis_graph(data.run_id, step, ALL_POSITIVE, "direct")
    between = centralities(graph).set_index("name")["betweenness"]
    components = components.assign(size_by=components["name"].map(between).fillna(0.0))
    edges = data.edges[data.edges["step"] == step]
    return step_graph(step, components, edges, path_edges(data.paths.paths, step))


def path_edges(paths: pd.DataFrame, step: int) -> set[tuple[str, str]]:
    """The (source, target) pairs on the ranked paths of ``step``."""
    pairs: set[tuple[str, str]] = set()
    for text in paths.loc[paths["step"] == step, "path"]:
        names = text.split(ARROW)
        pairs |= set(pairwise(names))
    return pairs


def facts(data: ReportData) -> dict[str, object]:
    """The run table at the top of the page."""
    run = data.run
    steps = data.steps
    shown = "stored" if data.analysed else "computed for this report, not stored"
    return {
        "run": data.run_id,
        "model": run.get("model"),
        "task": f"{run.get('task')} ({run.get('n_prompts')} prompts of {run.get('seq_len')} "
        "tokens)",
        "ablation in the sweep": run.get("ablation"),
        "checkpoints": f"{len(steps)} (steps {steps[0]}–{steps[-1]})",
        "analysis": f"τ={data.tau:g} on {data.measure} effects ({shown})",
        "paths": f"the {data.paths.settings.k} strongest direct-effect "
        f"{data.paths.settings.source}→{data.paths.settings.sink} paths per checkpoint",
        "written by": f"circuitatlas {__version__}",
    }


def summary(data: ReportData, circuits: pd.DataFrame) -> list[str]:
    """The page's "at a glance" sentences."""
    lines = [_phases_line(data.phases)]
    events = data.reconfigurations
    lines.append(
        f"Reconfiguration events (roles change by more than half) at steps "
        f"{', '.join(map(str, events))}."
        if events
        else "No reconfiguration event (the roles never change by more than half)."
    )
    emerged = induction_emergence(data.paths, data.components)
    if emerged is not None:
        lines.append(
            f"The induction path (a previous-token head, then an induction head) first enters the "
            f"top {data.paths.settings.k} paths at step {emerged}."
        )
    last = data.steps[-1]
    top = data.paths.paths[(data.paths.paths["step"] == last) & (data.paths.paths["rank"] == 1)]
    if len(top):
        lines.append(
            f"Strongest path at the last checkpoint (step {last}): {top['path'].iloc[0]} "
            f"(strength {top['strength'].iloc[0]:.3g})."
        )
    lines.append(_roles_line(data.components, last))
    lines += _circuit_lines(circuits)
    lines += _edge_circuit_lines(data.circuits)
    return lines


def _phases_line(phases: pd.DataFrame) -> str:
    parts = [
        f"{p.label} (steps {p.first_step}–{p.last_step})"
        if p.first_step != p.last_step
        else f"{p.label} (step {p.first_step})"
        for p in phases.itertuples()
    ]
    return f"Training phases: {' → '.join(parts)}."


def _roles_line(components: pd.DataFrame, step: int) -> str:
    at = components[components["step"] == step]
    held = at["role"].fillna("").str.split("+")
    members = {r: sorted(at.loc[held.map(lambda rs, r=r: r in rs), "name"]) for r in ROLES}
    text = "; ".join(f"{r}s {', '.join(n) if n else 'none'}" for r, n in members.items())
    return f"Roles at the last checkpoint: {text}."


def _circuit_lines(circuits: pd.DataFrame) -> Sequence[str]:
    """The last validated path circuit (edge circuits have lines of their own)."""
    if "faithfulness" not in circuits:  # no circuit validated (Neo4j stores no null property)
        return []
    paths = circuits["kind"].ne(EDGE_KIND) if "kind" in circuits else True
    scored = circuits[circuits["faithfulness"].notna() & paths]
    if not len(scored):
        return []
    c = scored.sort_values("step").iloc[-1]
    return [
        f"Saved circuit at step {c.step} (top {c.k} {c.measure} paths): "
        f"{', '.join(c.components)}; faithfulness {c.faithfulness:.2f} ({c.ablation} ablation)."
    ]


def _edge_circuit_lines(circuits: CircuitData | None) -> Sequence[str]:
    if circuits is None:
        return []
    row = circuits.steps.iloc[-1]
    lines = [
        f"Edge circuit at the last step with one (step {circuits.final_step}, "
        f"{circuits.setting}): {int(row['n_edges'])} edges between "
        f"{int(row['n_components'])} components, faithfulness {float(row['faithfulness']):.2f}."
    ]
    if circuits.emergence is not None:
        lines.append(
            f"A previous-token → induction head edge first enters the edge circuit at step "
            f"{circuits.emergence}."
        )
    return lines
