"""``circuitatlas report`` end to end on real embedded stores: the graph module (positions, one
checkpoint's neo4j-viz data, the script-safe payloads, which checkpoints get a graph), the page
(escaping, tables, inlined figures, nothing fetched), the writer (analysed and un-analysed runs,
never writing the store, the output directory rules, all-or-nothing writes, the summary) and the
CLI (success, and bad input failing in one line with nothing written)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from store_dump import dump

from circuitatlas.analytics.analyze import analyze
from circuitatlas.cli import main
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.centrality import centralities
from circuitatlas.graph.paths import ARROW, PathSettings
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.circuits import INDUCTION_THRESHOLD, circuits_of, save
from circuitatlas.queries.faithfulness import Faithfulness
from circuitatlas.queries.paths import find_paths
from circuitatlas.report import build, graph, write_report
from circuitatlas.report.data import gather
from circuitatlas.report.figures import FIGURES, PATH_COLOUR, FigureFile
from circuitatlas.report.graph import (
    DATA_MARK,
    EDGE_COLOUR,
    EDGE_WIDTH,
    NODE_SIZE,
    X_GAP,
    Y_GAP,
    StepGraph,
    graph_steps,
    page_template,
    positions,
    selector_payload,
    step_graph,
    template_payload,
)
from circuitatlas.report.page import render, table_html
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

STEPS = [0, 3, 7, 18, 46, 120, 240, 360]
# seed 12: two phases (exploration, then consolidation from step 7) and an induction path that
# first enters the top 5 at a later step than the first; seed 13 is stored without an analysis
ANALYSED_SEED, PLAIN_SEED = 12, 13
HOSTILE = '</script><!--<script>alert("x")</script>$&$1 \\ \u2028'
EVIL_NAME = "<img src=x onerror=alert(1)>"
VIZ_BLOCK = re.compile(r'^<script type="application/json" id="neo4j-viz-data">(.*)</script>$', re.S)


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("report-build")


@pytest.fixture(scope="module")
def stores(root):
    """``two.lbdb``: an analysed run with saved circuits and an un-analysed run; ``one.lbdb``: a
    single short un-analysed run (two checkpoints)."""
    two, one = root / "stores" / "two.lbdb", root / "stores" / "one.lbdb"
    two.parent.mkdir()
    analysed, plain = (synthetic_sweep(2, 3, STEPS, seed=s) for s in (ANALYSED_SEED, PLAIN_SEED))
    # every 7th edge carries no direct influence (similarity exactly 1, weight 0): not drawn
    zero = analysed.edges.index % 7 == 3
    analysed.edges.loc[zero, ["direct_similarity", "direct_weight"]] = [1.0, 0.0]
    small = synthetic_sweep(2, 2, [0, 50], seed=3)
    with open_store(two, writable=True) as store:
        ingest_sweep(store, analysed, progress=False)
        ingest_sweep(store, plain, progress=False)
        analyze(store, analysed.run_id, 0.7, progress=False)
        result = find_paths(store, analysed.run_id, [46, 240, 360], PathSettings(k=3))
        c46, c240, c360 = circuits_of(result)
        scored = [
            replace(c46, faithfulness=_faith(c46, 0.41, "zero")),
            replace(c240, faithfulness=_faith(c240, 0.873, "mean")),
            c360,  # the latest circuit is not validated: the summary shows the latest scored one
        ]
        save(store, scored)
    with open_store(one, writable=True) as store:
        ingest_sweep(store, small, progress=False)
    return {
        "two": two,
        "one": one,
        "analysed": analysed.run_id,
        "plain": plain.run_id,
        "small": small.run_id,
        "circuit": scored[1],
    }


def _faith(circuit, value: float, ablation: str) -> Faithfulness:
    kept = tuple(n for n in circuit.components if n != "logits")
    return Faithfulness(1.0, 0.2 + 0.8 * value, 0.2, value, ablation, kept)


@pytest.fixture(scope="module")
def analysed_data(stores):
    with open_store(stores["two"]) as store:
        return gather(store, stores["analysed"])


@pytest.fixture(scope="module")
def analysed_report(stores, root):
    return write_report(str(stores["two"]), stores["analysed"], root / "analysed", progress=False)


@pytest.fixture(scope="module")
def plain_report(stores, root):
    """The report of the un-analysed run, with the store's content and bytes before and after."""
    path = stores["two"]
    with open_store(path) as store:
        before = dump(store)
    bytes_before = _digest(path)
    written = write_report(str(path), stores["plain"], root / "plain", progress=False)
    with open_store(path) as store:
        after = dump(store)
    return written, before, after, bytes_before, _digest(path)


# --- helpers ---------------------------------------------------------------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(top: Path) -> list[tuple[str, str]]:
    """Every file and directory under ``top`` with its content digest (directories: "dir")."""
    return sorted(
        (str(p.relative_to(top)), "dir" if p.is_dir() else _digest(p)) for p in top.rglob("*")
    )


def script_block(page: str, element_id: str) -> tuple[str, str]:
    """The whole ``<script type="application/json" id=...>`` element and its text."""
    pattern = rf'<script type="application/json" id="{element_id}">(.*?)</script>'
    [found] = list(re.finditer(pattern, page, re.S))
    return found.group(0), found.group(1)


def viz_data(block: str) -> dict:
    """neo4j-viz's data block (a ``<script>`` element) as its JSON."""
    match = VIZ_BLOCK.match(block)
    assert match, block[:200]
    return json.loads(match.group(1))


def page_graphs(page: str) -> dict[int, dict]:
    """step → the neo4j-viz data of that checkpoint's graph, as stored in the report page."""
    blocks = json.loads(script_block(page, "graph-steps")[1])
    return {int(step): viz_data(block) for step, block in blocks.items()}


def positive_edges(edges: pd.DataFrame, step: int) -> pd.DataFrame:
    at = edges[(edges["step"] == step) & (edges["direct_weight"] > 0)]
    return at.set_index(["source", "target"])["direct_weight"]


def ranked_pairs(paths: pd.DataFrame, step: int) -> set[tuple[str, str]]:
    return {
        pair for p in paths.loc[paths.step == step, "path"] for pair in pairwise(p.split(ARROW))
    }


def run_cli(*args):
    return CliRunner().invoke(main, ["report", *map(str, args)])


# --- graph.py: positions ---------------------------------------------------------------------
def _row(name, kind, layer, head=None):
    return {"name": name, "kind": kind, "layer": layer, "head": head}


def test_positions_columns_by_layer_rows_centred_and_ordered_by_head():
    rng = np.random.default_rng(0)
    heads = [_row(f"a{L}.h{h}", "attn_head", L, h) for L in (0, 1) for h in range(12)]
    rows = [
        _row("logits", "logits", 2),
        _row("m1", "mlp", 1),
        *(heads[i] for i in rng.permutation(len(heads))),  # shuffled, and "h10" < "h2" as text
        _row("input", "input", -1),
        _row("m0", "mlp", 0),
    ]
    at = positions(pd.DataFrame(rows).astype({"head": "Int64"}))
    assert set(at) == {r["name"] for r in rows}
    assert at["input"] == (0.0, 0.0)
    assert at["m0"] == (2 * X_GAP, 0.0) and at["m1"] == (4 * X_GAP, 0.0)
    assert at["logits"] == (5 * X_GAP, 0.0)
    for layer in (0, 1):
        for h in range(12):
            assert at[f"a{layer}.h{h}"] == ((2 * layer + 1) * X_GAP, (h - 5.5) * Y_GAP)


def test_positions_of_a_stored_checkpoint(analysed_data):
    comps = analysed_data.components[analysed_data.components.step == 120]
    at = positions(comps)
    assert set(at) == set(comps.name)
    n_layers = int(comps.loc[comps.kind == "attn_head", "layer"].max()) + 1
    expected_col = {
        r.name: 0
        if r.kind == "input"
        else 2 * n_layers + 1
        if r.kind == "logits"
        else 2 * r.layer + (1 if r.kind == "attn_head" else 2)
        for r in comps.itertuples()
    }
    for name, (x, _) in at.items():
        assert x == expected_col[name] * X_GAP, name
    assert at["input"][0] < min(x for n, (x, _) in at.items() if n != "input")
    assert at["logits"][0] > max(x for n, (x, _) in at.items() if n != "logits")
    for col in set(expected_col.values()):
        members = comps[comps.name.map(expected_col) == col].sort_values("head")
        ys = [at[n][1] for n in members.name]
        assert sum(ys) == pytest.approx(0.0)  # centred
        assert np.allclose(np.diff(ys), Y_GAP)  # stacked in head order


# --- graph.py: one checkpoint ----------------------------------------------------------------
def _checkpoint(data, step: int, seed: int = 1):
    comps = data.components[data.components.step == step].drop(columns="step")
    size_by = np.random.default_rng(seed).permutation(len(comps)).astype(float)  # distinct, one 0
    return comps.assign(size_by=size_by), data.edges[data.edges.step == step]


def test_step_graph_draws_the_checkpoints_components_and_positive_edges(analysed_data):
    step = 240
    comps, edges = _checkpoint(analysed_data, step)
    pairs = build.path_edges(analysed_data.paths.paths, step)
    off_path = np.array(
        [(s, t) not in pairs for s, t in zip(edges.source, edges.target, strict=True)]
    )
    negative = edges.index[(edges.direct_weight > 0) & off_path][:2]
    edges = edges.copy()
    edges.loc[negative, "direct_weight"] = -0.25  # left out too
    assert pairs == ranked_pairs(analysed_data.paths.paths, step)
    g = step_graph(step, comps, edges, pairs)
    data = viz_data(g.data_block)
    assert [n["id"] for n in data["nodes"]] == comps.name.tolist()
    positive = positive_edges(edges, step)
    assert (edges.direct_weight == 0).sum() >= 3 and (edges.direct_weight < 0).sum() == 2
    assert 0 < len(positive) == len(edges) - (edges.direct_weight <= 0).sum()
    rels = {(r["from"], r["to"]): r for r in data["relationships"]}
    assert len(rels) == len(data["relationships"]) == len(positive)
    assert set(rels) == set(positive.index)
    for pair, rel in rels.items():
        assert rel["properties"]["weight"] == pytest.approx(positive[pair])
        assert rel["properties"]["on_path"] is (pair in pairs)
        assert rel["color"].lower() == (PATH_COLOUR if pair in pairs else EDGE_COLOUR).lower()
    on = [p for p, r in rels.items() if r["properties"]["on_path"]]
    assert set(on) == pairs and 0 < len(on) < len(rels)
    assert (g.step, g.n_nodes, g.n_edges, g.n_dropped) == (step, len(comps), len(positive), 0)
    # sizes grow with size_by, from the smallest (0) to the largest (the maximum)
    size = {n["id"]: n["size"] for n in data["nodes"]}
    by = comps.set_index("name")["size_by"].sort_values()
    sizes = [size[n] for n in by.index]
    assert all(a < b for a, b in pairwise(sizes))
    assert sizes[0] == NODE_SIZE[0] and sizes[-1] == NODE_SIZE[1]
    # widths grow with the weight; the strongest edge is the widest
    widths = sorted((r["properties"]["weight"], r["width"]) for r in rels.values())
    assert all(a[1] <= b[1] for a, b in pairwise(widths)) and widths[-1][1] == EDGE_WIDTH[1]
    # pinned where positions() puts them
    at = positions(comps)
    assert all((n["x"], n["y"]) == at[n["id"]] and n["pinned"] for n in data["nodes"])


def test_step_graph_keeps_the_strongest_edges_up_to_the_cap(analysed_data, monkeypatch):
    step = 360
    comps, edges = _checkpoint(analysed_data, step)
    positive = positive_edges(edges, step)
    monkeypatch.setattr(graph, "MAX_EDGES", 5)
    g = step_graph(step, comps, edges, set())
    rels = viz_data(g.data_block)["relationships"]
    strongest = set(positive.sort_values(ascending=False).index[:5])
    assert {(r["from"], r["to"]) for r in rels} == strongest
    assert (g.n_edges, g.n_dropped) == (5, len(positive) - 5)
    assert not any(r["properties"]["on_path"] for r in rels)


def test_step_graph_keeps_hostile_names_intact():
    comps = pd.DataFrame(
        [
            {**_row("input", "input", -1), "size_by": 0.0},
            {**_row(HOSTILE, "attn_head", 0, 0), "size_by": 1.0},
            {**_row("logits", "logits", 1), "size_by": 0.0},
        ]
    )
    edges = pd.DataFrame(
        {"source": ["input", HOSTILE], "target": [HOSTILE, "logits"], "direct_weight": [0.5, 0.2]}
    )
    g = step_graph(0, comps, edges, {("input", HOSTILE)})
    assert "</script" not in g.data_block[: -len("</script>")]
    data = viz_data(g.data_block)
    assert [n["id"] for n in data["nodes"]] == ["input", HOSTILE, "logits"]
    assert {(r["from"], r["to"]): r["properties"]["on_path"] for r in data["relationships"]} == {
        ("input", HOSTILE): True,
        (HOSTILE, "logits"): False,
    }


# --- graph.py: payloads, template, steps ------------------------------------------------------
def test_payloads_have_no_angle_bracket_and_parse_back_exactly():
    blocks = {3: HOSTILE, 10: '<script type="application/json">{"a": "<!--"}</script>', 7: ""}
    graphs = [StepGraph(step, block, 1, 0, 0) for step, block in blocks.items()]
    payload = selector_payload(graphs)
    assert "<" not in payload
    assert json.loads(payload) == {str(s): b for s, b in blocks.items()}
    text = template_payload(f"<html>{HOSTILE}{DATA_MARK}</html>")
    assert "<" not in text
    assert json.loads(text) == f"<html>{HOSTILE}{DATA_MARK}</html>"


def test_page_template_has_one_mark_and_no_data_block():
    template = page_template()
    assert template.count(DATA_MARK) == 1
    assert '<script type="application/json" id="neo4j-viz-data">' not in template
    assert not graph._DATA_BLOCK.search(template)
    assert 'id="neo4j-viz-graph"' in template and not re.search(r"neo4j-viz-[0-9a-f]{12}", template)
    assert page_template() == template  # the same for every report
    # offline: neither scripts nor style sheets are fetched
    assert not re.search(r"<script\b[^>]*\bsrc=", template, re.I)
    assert not re.search(r"<link\b", template, re.I)


def test_graph_steps_all_up_to_the_limit_else_first_phase_ends_last(monkeypatch):
    assert graph.MAX_STEPS == 30
    steps = list(range(0, 300, 10))  # 30 steps
    assert graph_steps(steps[::-1], [50, 290]) == steps
    more = [*steps, 300]
    assert graph_steps(more[::-1], [120, 50, 300, 120]) == [0, 50, 120, 300]
    monkeypatch.setattr(graph, "MAX_STEPS", 3)
    assert graph_steps([0, 5, 9], [5, 9]) == [0, 5, 9]
    assert graph_steps([9, 0, 5, 7], [5, 9]) == [0, 5, 9]
    assert graph_steps([0, 5, 7, 9], [9]) == [0, 9]
    assert graph_steps([7, 0, 5, 9], [5]) == [0, 5, 9]  # the last, even when no phase ends there


# --- page.py ---------------------------------------------------------------------------------
def _cells(table: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    return [re.findall(r"<t[dh][^>]*>.*?</t[dh]>", row) for row in rows]


def test_table_html_escapes_right_aligns_numbers_and_truncates():
    frame = pd.DataFrame(
        {
            "component": [EVIL_NAME, "a&b", "m0"],
            "<b>n</b>": [3, 12, -1],
            "x": [0.123456, math.nan, 2.0],
            "flag": [True, False, True],
            "label": ["1", "2", "3"],
        }
    )
    table = table_html(frame)
    assert EVIL_NAME not in table and "<b>" not in table and "<img" not in table
    head, first, second, _ = _cells(table)
    assert head[1] == "<th>&lt;b&gt;n&lt;/b&gt;</th>"
    assert first == [
        "<td>&lt;img src=x onerror=alert(1)&gt;</td>",
        '<td class="num">3</td>',
        '<td class="num">0.1235</td>',
        "<td>True</td>",
        "<td>1</td>",
    ]
    assert second[0] == "<td>a&amp;b</td>" and second[2] == '<td class="num"></td>'
    assert "more rows" not in table
    cut = table_html(pd.DataFrame({"n": range(7)}), max_rows=3)
    assert len(_cells(cut)) == 1 + 3
    assert cut.endswith('<p class="note">… and 4 more rows.</p>')
    assert "more rows" not in table_html(pd.DataFrame({"n": range(3)}), max_rows=3)


def test_render_escapes_every_text(analysed_report, tmp_path):
    png = analysed_report.figures[0]
    page = render(
        title=f"run {EVIL_NAME}",
        facts={"run": EVIL_NAME, f"{EVIL_NAME}": 1},
        warnings=[f"</p>{EVIL_NAME}"],
        summary=[f"a <b>{EVIL_NAME}</b>"],
        sections=[FigureFile('x" onload="alert(1)', EVIL_NAME, EVIL_NAME, png)],
        tables={EVIL_NAME: (EVIL_NAME, pd.DataFrame({"p": [EVIL_NAME]}))},
        graphs=[StepGraph(5, HOSTILE, 1, 0, 0)],
        template=f"<html>{HOSTILE}{DATA_MARK}</html>",
        graph_note=EVIL_NAME,
        generator='x"><script>',
    )
    assert EVIL_NAME not in page and "<b>" not in page and 'x"><script>' not in page
    assert len(re.findall(r"<script\b", page)) == 3  # template, steps, selector: nothing else
    assert len(re.findall(r"<img\b", page)) == 1 and 'onload="' not in page
    assert json.loads(script_block(page, "graph-steps")[1]) == {"5": HOSTILE}
    assert (
        json.loads(script_block(page, "graph-template")[1]) == f"<html>{HOSTILE}{DATA_MARK}</html>"
    )


def test_report_page_is_self_contained(analysed_report):
    page = analysed_report.index.read_text(encoding="utf-8")
    assert len(re.findall(r'<meta name="generator"', page)) == 1
    assert '<meta name="generator" content="circuitatlas report">' in page
    imgs = re.findall(r"<img\b[^>]*>", page)
    assert len(imgs) == len(analysed_report.figures) == len(FIGURES)
    for img, path in zip(imgs, analysed_report.figures, strict=True):
        [src] = re.findall(r'src="([^"]*)"', img)
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.removeprefix("data:image/png;base64,")) == path.read_bytes()
    template_element, template = script_block(page, "graph-template")
    assert json.loads(template) == page_template()
    rest = page.replace(template_element, "")
    assert not re.search(r"https?://", rest, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc=", page, re.I)
    assert not re.search(r'<img\b[^>]*\bsrc="(?!data:)', page, re.I)
    assert not re.search(r"<iframe\b[^>]*\bsrc=", page, re.I)


# --- build.py: write_report ------------------------------------------------------------------
def test_report_of_an_analysed_run(stores, analysed_report, analysed_data):
    w = analysed_report
    assert w.index.name == "index.html" and w.index.is_file()
    assert sorted(p.name for p in w.index.parent.iterdir()) == sorted(
        ["index.html", *(f"{name}.png" for name in FIGURES)]
    )
    assert w.figures == [w.index.parent / f"{name}.png" for name in FIGURES]
    assert w.graph_steps == STEPS and w.warnings == ()
    assert w.kinds == ["attn_head", "input", "logits", "mlp"]
    page = w.index.read_text(encoding="utf-8")
    assert 'class="warning"' not in page
    assert sorted(page_graphs(page)) == STEPS
    # the last checkpoint is the one shown first
    assert re.search(r'<option value="360" selected>', page)


def test_the_last_graph_is_the_checkpoints_graph(stores, analysed_report, analysed_data):
    run, last = stores["analysed"], STEPS[-1]
    shown = page_graphs(analysed_report.index.read_text(encoding="utf-8"))[last]
    with open_store(stores["two"]) as store:
        expected = build.checkpoint_graph(store, analysed_data, last)
        components = store.components(run, last)
        store_edges = store.edges(run)
        edges = positive_edges(store_edges, last)
        between = centralities(store.analysis_graph(run, last, 2.0, "direct"))
    assert shown == viz_data(expected.data_block)
    assert {n["id"] for n in shown["nodes"]} == set(components["name"])
    assert {(r["from"], r["to"]) for r in shown["relationships"]} == set(edges.index)
    assert len(edges) < (store_edges.step == last).sum()  # zero-weight edges are not drawn
    size_by = {n["id"]: n["properties"]["size_by"] for n in shown["nodes"]}
    expected_b = between.set_index("name")["betweenness"]
    assert size_by == pytest.approx(expected_b.to_dict())
    assert max(size_by.values()) > 0  # sizes are not all the same
    # betweenness with cost 1/weight on the positive direct edges, by networkx
    g = nx.DiGraph()
    g.add_nodes_from(components["name"])
    g.add_weighted_edges_from(((s, t, 1.0 / w) for (s, t), w in edges.items()), weight="cost")
    reference = nx.betweenness_centrality(g, weight="cost", normalized=False)
    assert expected_b.to_dict() == pytest.approx(reference)


def test_report_of_an_unanalysed_run_warns_and_writes_nothing_to_the_store(stores, plain_report):
    written, before, after, bytes_before, bytes_after = plain_report
    assert before == after and bytes_before == bytes_after
    assert before["Circuit"]  # the dump covers the whole store
    [note] = [w for w in written.warnings if "no stored analysis" in w]
    assert stores["plain"] in note and "τ=0.7" in note
    page = written.index.read_text(encoding="utf-8")
    warnings = re.findall(r'<p class="warning">(.*?)</p>', page)
    assert len(warnings) == len(written.warnings) >= 1
    assert any("no stored analysis" in w for w in warnings)
    assert sorted(page_graphs(page)) == STEPS
    assert "Saved circuit" not in page  # the circuits are the other run's
    with open_store(stores["two"]) as store:
        checkpoints = store.checkpoints(stores["plain"])
    assert "phase" not in checkpoints or checkpoints["phase"].isna().all()


def _expected_phases(checkpoints: pd.DataFrame) -> str:
    frame = checkpoints.sort_values("step")
    runs = (frame["phase"] != frame["phase"].shift()).cumsum()
    parts = []
    for _, seg in frame.groupby(runs, sort=True):
        first, last = int(seg.step.iloc[0]), int(seg.step.iloc[-1])
        steps = f"steps {first}–{last}" if first != last else f"step {first}"
        parts.append(f"{seg.phase.iloc[0]} ({steps})")
    return "Training phases: " + " → ".join(parts) + "."


def _expected_emergence(data, k: int) -> int | None:
    comps, paths = data.components, data.paths.paths
    for step in sorted(comps.step.unique()):
        heads = comps[(comps.step == step) & (comps.kind == "attn_head")]
        layer0 = heads[heads.layer == 0].sort_values("prev_token_score")
        prev = layer0.name.iloc[-1]
        inducers = set(
            heads[(heads.layer == 1) & (heads.induction_score >= INDUCTION_THRESHOLD)].name
        )
        ranked = paths[(paths.step == step) & (paths["rank"] <= k)]
        if any((prev, b) in ranked_pairs(ranked, step) for b in inducers):
            return int(step)
    return None


def test_summary_names_phases_emergence_and_the_saved_circuit(
    stores, analysed_report, analysed_data
):
    with open_store(stores["two"]) as store:
        checkpoints = store.checkpoints(stores["analysed"])
        lines = build.summary(analysed_data, store.circuits(stores["analysed"]))
    phases = _expected_phases(checkpoints)
    assert phases.count("→") == 1  # two phases
    emerged = _expected_emergence(analysed_data, 5)
    assert emerged is not None and emerged != STEPS[0]
    c = stores["circuit"]
    circuit = (
        f"Saved circuit at step 240 (top 3 {c.settings.measure} paths): "
        f"{', '.join(c.components)}; faithfulness 0.87 (mean ablation)."
    )
    assert lines[0] == phases
    assert f"first enters the top 5 paths at step {emerged}." in lines[2]
    assert lines[-1] == circuit
    page = analysed_report.index.read_text(encoding="utf-8")
    items = re.search(r"<h2>At a glance</h2><ul>(.*?)</ul>", page).group(1)
    assert re.findall(r"<li>(.*?)</li>", items) == [
        line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for line in lines
    ]


# --- build.py: the output directory ----------------------------------------------------------
def test_check_out_refuses_files_and_foreign_directories(analysed_report, tmp_path):
    a_file = tmp_path / "report.html"
    a_file.write_text("mine")
    with pytest.raises(CircuitAtlasError, match=r"--out .*is a file"):
        build.check_out(a_file)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    fake = tmp_path / "site"
    fake.mkdir()
    (fake / "index.html").write_text("<html><meta name='generator' content='other'></html>")
    odd = tmp_path / "odd"
    (odd / "index.html").mkdir(parents=True)
    before = listing(tmp_path)
    for out in (foreign, fake, odd):
        with pytest.raises(CircuitAtlasError, match=r"--out .*other than a circuitatlas report"):
            build.check_out(out)
    assert listing(tmp_path) == before and a_file.read_text() == "mine"
    # accepted: a new directory (not created by the check), an empty one, an earlier report
    build.check_out(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    build.check_out(tmp_path / "empty")
    build.check_out(analysed_report.index.parent)


def test_write_report_refuses_a_foreign_directory_and_leaves_it(stores, tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    before = listing(tmp_path)
    with pytest.raises(CircuitAtlasError, match="--out"):
        write_report(str(stores["one"]), stores["small"], foreign, progress=False)
    assert listing(tmp_path) == before


def test_an_earlier_report_is_replaced_whole(stores, analysed_report, tmp_path, monkeypatch):
    old = tmp_path / "old"
    shutil.copytree(analysed_report.index.parent, old)
    (old / "stray.txt").write_text("from before")
    monkeypatch.setattr(graph, "MAX_STEPS", 3)  # beyond it: the first, phase ends, the last
    written = write_report(str(stores["two"]), stores["analysed"], old, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["old"]  # no temporary directory left
    assert sorted(p.name for p in old.iterdir()) == sorted(
        ["index.html", *(f"{name}.png" for name in FIGURES)]
    )
    phase_ends = [3, 360]  # exploration 0–3, consolidation 7–360
    assert written.graph_steps == [0, *phase_ends]
    assert sorted(page_graphs(written.index.read_text(encoding="utf-8"))) == [0, 3, 360]


def test_an_empty_directory_is_accepted(stores, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    written = write_report(str(stores["one"]), stores["small"], out, progress=False)
    assert written.index == out / "index.html" and written.index.is_file()
    assert written.graph_steps == [0, 50]
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


@pytest.mark.parametrize("earlier", [False, True])
def test_a_failure_while_writing_leaves_nothing(
    stores, analysed_report, tmp_path, monkeypatch, earlier
):
    out = tmp_path / "report"
    if earlier:
        shutil.copytree(analysed_report.index.parent, out)
    before = listing(tmp_path)

    def boom(data, out_dir):
        (Path(out_dir) / "half.png").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "write_figures", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(str(stores["one"]), stores["small"], out, progress=False)
    assert listing(tmp_path) == before  # no output (or the earlier one as it was), no temp dir
    assert out.exists() is earlier


# --- the CLI ---------------------------------------------------------------------------------
def test_cli_writes_the_report_of_the_only_run(stores, tmp_path):
    out = tmp_path / "r"
    result = run_cli("--store", stores["one"], "--out", out)
    assert result.exit_code == 0, result.output
    [line] = result.stdout.strip().splitlines()
    index = out / "index.html"
    assert line == f"report of run {stores['small']}: {index} ({len(FIGURES)} figures)"
    assert Path(line.split(": ", 1)[1].rsplit(" (", 1)[0]).is_file()
    assert "Traceback" not in result.output


def test_cli_asks_for_the_run_when_the_store_holds_several(stores, tmp_path):
    before = listing(stores["two"].parent), listing(tmp_path)
    result = run_cli("--store", stores["two"], "--out", tmp_path / "r")
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: --run")
    assert stores["analysed"] in line and stores["plain"] in line
    assert (listing(stores["two"].parent), listing(tmp_path)) == before


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--tau", "0"], "--tau"),
        (["--tau", "3"], "--tau"),
        (["-k", "0"], "-k"),
        (["--run", "nope"], "'nope'"),
        (["--out", "FILE"], "--out"),
        (["--out", "FOREIGN"], "--out"),
    ],
)
def test_cli_bad_input_fails_in_one_line_and_writes_nothing(stores, tmp_path, args, named):
    a_file = tmp_path / "existing.txt"
    a_file.write_text("mine")
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    out = {"FILE": a_file, "FOREIGN": foreign}
    args = [out.get(a, a) for a in args]
    if "--run" not in args:
        args += ["--run", stores["analysed"]]
    if "--out" not in args:
        args += ["--out", tmp_path / "new"]
    before = listing(stores["two"].parent), listing(tmp_path)
    result = run_cli("--store", stores["two"], *args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and named in line
    if named == "'nope'":
        assert "unknown run" in line
    assert (listing(stores["two"].parent), listing(tmp_path)) == before
