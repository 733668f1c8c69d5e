"""The report's single HTML file: text, figures, tables and the interactive graph, all inlined.

Nothing on the page is fetched: figures are ``data:`` URIs, the style sheet and the selector's
script are inline, and the graph's page lives in a JSON string (:mod:`circuitatlas.report.graph`).
Every text that comes from the store is escaped.
"""

from __future__ import annotations

import base64
import html
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from circuitatlas.report.figures import FigureFile
from circuitatlas.report.graph import DATA_MARK, StepGraph, selector_payload, template_payload

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1180px; color: #1f2933;
       padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #d9e2ec; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
table { border-collapse: collapse; font-size: .88rem; margin: .6rem 0; }
th, td { border: 1px solid #d9e2ec; padding: .25rem .55rem; text-align: left; }
th { background: #f0f4f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; border: 1px solid #d9e2ec; }
figcaption { font-size: .9rem; color: #52606d; }
.warning { background: #fff3c4; border-left: 4px solid #f0b429; padding: .5rem .8rem; }
#graph { width: 100%; height: 680px; border: 1px solid #d9e2ec; }
.note { font-size: .9rem; color: #52606d; }
"""

SCRIPT = """
const template = JSON.parse(document.getElementById("graph-template").textContent);
const blocks = JSON.parse(document.getElementById("graph-steps").textContent);
const select = document.getElementById("graph-step");
const frame = document.getElementById("graph");
function show(step) {
  // a function as the replacement: the data block is inserted as is ("$" has no meaning)
  frame.srcdoc = template.replace(MARK, () => blocks[step]);
  frame.dataset.step = step;
}
select.addEventListener("change", (e) => show(e.target.value));
show(select.value);
"""


@dataclass(frozen=True)
class Section:
    """A part of the page under one heading: a note, figures (each under its own heading),
    then tables, each ``(caption, frame)``."""

    id: str
    title: str
    note: str
    figures: Sequence[FigureFile]
    tables: Sequence[tuple[str, pd.DataFrame]]


def png_uri(path: Path) -> str:
    """``path`` (a PNG) as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def table_html(frame: pd.DataFrame, max_rows: int = 50) -> str:
    """A frame as an escaped HTML table (numbers right-aligned, at most ``max_rows`` rows)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.head(max_rows).itertuples(index=False):
        cells = []
        for value in record:
            numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
            text = _cell(value)
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = len(frame) - max_rows
    tail = f'<p class="note">… and {more} more rows.</p>' if more > 0 else ""
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{tail}"


def _cell(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def render(
    title: str,
    facts: Mapping[str, object],
    warnings: Sequence[str],
    summary: Sequence[str],
    sections: Sequence[FigureFile],
    tables: Mapping[str, tuple[str, pd.DataFrame]],
    graphs: Sequence[StepGraph],
    template: str,
    graph_note: str,
    generator: str,
    parts_after: Sequence[Section] = (),
    parts_before: Sequence[Section] = (),
) -> str:
    """The whole page.

    ``facts`` become the run table, ``summary`` a list of sentences, ``sections`` figures,
    ``tables`` (heading → (caption, frame)) tables after the figures, ``parts_after`` sections
    after the tables (e.g. the circuits, when the run has some), ``parts_before`` sections
    first, right after the run table (e.g. a reproduction's claims), ``graphs`` the step
    selector's options (the last is shown first), ``template`` the graph page from
    :func:`circuitatlas.report.graph.page_template` and ``generator`` the page's generator tag.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="{html.escape(generator)}">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        table_html(pd.DataFrame({"": list(facts), "value": [str(v) for v in facts.values()]})),
    ]
    parts += [f'<p class="warning">{html.escape(w)}</p>' for w in warnings]
    parts += [_section_html(s) for s in parts_before]
    if summary:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in summary)
        parts.append(f"<h2>At a glance</h2><ul>{items}</ul>")
    parts += [_figure_html(s, "h2") for s in sections]
    for heading, (caption, frame) in tables.items():
        parts.append(f"<h2>{html.escape(heading)}</h2><p class='note'>{html.escape(caption)}</p>")
        parts.append(table_html(frame))
    parts += [_section_html(s) for s in parts_after]
    parts.append(_graph_section(graphs, template, graph_note))
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure_html(figure: FigureFile, heading: str) -> str:
    return (
        f'<{heading} id="{html.escape(figure.name)}">{html.escape(figure.title)}</{heading}>'
        f'<figure><img src="{png_uri(figure.path)}" alt="{html.escape(figure.title)}">'
        f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
    )


def _section_html(section: Section) -> str:
    parts = [
        f'<h2 id="{html.escape(section.id)}">{html.escape(section.title)}</h2>',
        f'<p class="note">{html.escape(section.note)}</p>',
        *(_figure_html(f, "h3") for f in section.figures),
    ]
    for caption, frame in section.tables:
        parts += [f'<p class="note">{html.escape(caption)}</p>', table_html(frame)]
    return "\n".join(parts)


def _graph_section(graphs: Sequence[StepGraph], template: str, note: str) -> str:
    if not graphs:
        return "<h2>The graph</h2><p>No checkpoint to draw.</p>"
    options = "".join(
        f'<option value="{g.step}"{" selected" if g is graphs[-1] else ""}>step {g.step} '
        f"({g.n_nodes} components, {g.n_edges} edges"
        f"{f', {g.n_dropped} weakest left out' if g.n_dropped else ''})</option>"
        for g in graphs
    )
    script = SCRIPT.replace("MARK", _js_string(DATA_MARK))
    return (
        '<h2 id="graph-section">The graph, one checkpoint at a time</h2>'
        f'<p class="note">{html.escape(note)}</p>'
        f'<label>Checkpoint: <select id="graph-step">{options}</select></label>'
        '<iframe id="graph" title="interactive graph of a checkpoint"></iframe>'
        f'<script type="application/json" id="graph-template">{template_payload(template)}</script>'
        f'<script type="application/json" id="graph-steps">{selector_payload(graphs)}</script>'
        f"<script>{script}</script>"
    )


def _js_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\u003c") + '"'
