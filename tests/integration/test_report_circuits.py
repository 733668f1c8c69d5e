"""The report's "Circuits" part on real embedded stores: which saved edge circuits it shows (the
setting saved last, one circuit per step, the emergence of the circuit trajectory), its two
figures (decodable PNGs, the same bytes twice), the final circuit's table, and no such part for a
run without edge circuits. End to end on a short toy run whose circuits are found and saved as
``circuitatlas circuits --all-steps --save`` saves them."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from circuit_records import edge_circuit, with_scores
from PIL import Image

from circuitatlas.analytics.analyze import analyze
from circuitatlas.graph.paths import ARROW
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.circuit_trajectory import circuit_trajectory
from circuitatlas.queries.edge_circuits import CircuitSettings, find_circuits
from circuitatlas.report import write_report
from circuitatlas.report.circuit_data import gather_circuits
from circuitatlas.report.circuit_figures import CIRCUIT_FIGURES, write_circuit_figures
from circuitatlas.report.data import gather
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_plan, ingest_sweep

STEPS = [0, 3, 7, 18, 46, 120, 240, 360]
EMERGES = 46  # the first step whose circuit holds a0.h1 → a1.h2
PREV, INDUCTION = "a0.h1", "a1.h2"  # the only previous-token head and the only induction head
EARLY = [("input", "a0.h0"), ("a0.h0", "logits"), ("m1", "logits")]
LATE = [("input", PREV), (PREV, INDUCTION), (INDUCTION, "logits"), ("m0", "a1.h0")]
OLDER, NEWER = "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"
SECTION = re.compile(r'<h2 id="circuits">Circuits</h2>(.*?)(?=<h2 )', re.S)
PNG = re.compile(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)">')


def exact_edges(step: int) -> list[tuple[str, str]]:
    return EARLY if step < EMERGES else LATE


def eap_edges(step: int) -> list[tuple[str, str]]:
    """The eap-ig circuits: one edge fewer than the exact ones, never the mechanism edge."""
    return EARLY[:2] if step < EMERGES else [LATE[0], LATE[2], LATE[3]]


def signed(n: int) -> list[float]:
    """Scores of ``n`` ranked edges: |score| falling, signs alternating (negative first)."""
    return [(-1) ** (i + 1) * 0.4 / (i + 1) for i in range(n)]


def scored_run(seed: int):
    """A synthetic run whose only previous-token head is a0.h1 and only induction head a1.h2."""
    run = with_scores(synthetic_sweep(2, 3, STEPS, seed=seed), seed=seed)
    names = run.components["name"]
    run.components["prev_token_score"] = (names == PREV).astype(float) * 0.9
    run.components["induction_score"] = (names == INDUCTION).astype(float) * 0.9
    return run


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with three runs: edge circuits of two settings (exact older, eap-ig newer) and a
    stored analysis; the same circuits, exact the newer, without an analysis; no circuit."""
    path = tmp_path_factory.mktemp("report-circuits") / "store.lbdb"
    runs = [scored_run(seed) for seed in (31, 32, 33)]
    with open_store(path, writable=True) as opened:
        for run in runs:
            ingest_sweep(opened, run, progress=False)
        analyze(opened, runs[0].run_id, 0.7, progress=False)
        for run, (exact_at, eap_at) in zip(runs, [(OLDER, NEWER), (NEWER, OLDER)], strict=False):
            records = []
            for step in STEPS:
                exact, eap = exact_edges(step), eap_edges(step)
                faith = 0.8 + step / 3600
                records.append(
                    edge_circuit(run.run_id, step, exact, signed(len(exact)), "exact", faith)
                    | {"created_at": exact_at}
                )
                records.append(
                    edge_circuit(run.run_id, step, eap, signed(len(eap)), "eap-ig", faith - 0.05)
                    | {"created_at": eap_at}
                )
            opened.write_circuits(records)
    return path, [r.run_id for r in runs]


def test_the_newest_setting_is_shown_one_circuit_per_step(store):
    path, (run_id, _, bare) = store
    with open_store(path) as opened:
        shown = gather_circuits(opened, run_id, opened.components(run_id))
        assert gather_circuits(opened, bare, opened.components(bare)) is None
    assert (shown.scores, shown.target, shown.ablation) == ("eap-ig", 0.8, "zero")
    assert shown.others == ("exact scores, target 0.8, zero ablation",)
    assert shown.steps["step"].tolist() == STEPS
    assert shown.steps["n_edges"].tolist() == [len(eap_edges(s)) for s in STEPS]
    assert shown.steps["faithfulness"].tolist() == pytest.approx([0.75 + s / 3600 for s in STEPS])
    final = shown.edges_at(STEPS[-1])
    assert list(zip(final["source"], final["target"], strict=True)) == eap_edges(STEPS[-1])
    assert final["score"].tolist() == pytest.approx(signed(3))
    assert shown.emergence is None  # the eap-ig circuits never hold the mechanism edge


def test_the_emergence_is_the_first_circuit_with_a_previous_token_to_induction_edge(store):
    path, (_, exact_newest, _) = store
    with open_store(path) as opened:
        shown = gather_circuits(opened, exact_newest, opened.components(exact_newest))
    assert shown.scores == "exact" and shown.others == ("eap-ig scores, target 0.8, zero ablation",)
    assert shown.emergence == EMERGES
    assert shown.events["edge"].tolist() == [f"{PREV}{ARROW}{INDUCTION}"]


def section(html: str) -> str:
    [found] = SECTION.findall(html)
    return found


def test_the_report_of_a_run_with_edge_circuits_has_the_circuits_part(store, tmp_path):
    path, (run_id, _, _) = store
    with open_store(path) as opened:
        report = write_report(opened, run_id, tmp_path / "report", progress=False)
    html = report.index.read_text(encoding="utf-8")
    part = section(html)
    images = PNG.findall(part)
    assert [alt for _, alt in images] == [title for title, _ in CIRCUIT_FIGURES.values()]
    names = [f"{name}.png" for name in CIRCUIT_FIGURES]
    assert [p.name for p in report.figures][-2:] == names
    for name in names:
        with Image.open(tmp_path / "report" / name) as image:
            image.load()
            assert image.format == "PNG" and min(image.size) > 200
    final = ", ".join(f"{a}{ARROW}{b}" for a, b in eap_edges(STEPS[-1]))
    assert f"<td>{final}</td>" in part and f"The final circuit (step {STEPS[-1]})." in part
    for a, b in eap_edges(STEPS[-1]):
        assert f"<td>{a}{ARROW}{b}</td>" in part
    assert f"<td>{PREV}{ARROW}{INDUCTION}</td>" not in part  # an edge of the older setting only
    assert "eap-ig scores, target 0.8, zero ablation" in part
    assert "Also stored for this run, not shown: exact scores" in part
    # the page's summary names the edge circuit, and no path circuit (there is none)
    assert f"Edge circuit at the last step with one (step {STEPS[-1]}" in html
    assert "Saved circuit at step" not in html


def test_the_circuit_figures_are_the_same_bytes_twice(store, tmp_path):
    path, (run_id, _, _) = store
    with open_store(path) as opened:
        data = gather(opened, run_id)
    first = write_circuit_figures(data, tmp_path / "a")
    second = write_circuit_figures(data, tmp_path / "b")
    assert [f.name for f in first] == list(CIRCUIT_FIGURES)
    for a, b in zip(first, second, strict=True):
        assert a.path.read_bytes() == b.path.read_bytes() and a.path.stat().st_size > 0
        assert a.caption and a.title


def test_a_run_without_an_analysis_gets_the_circuits_of_computed_phases(store, tmp_path):
    path, (_, unanalysed, _) = store
    with open_store(path) as opened:
        data = gather(opened, unanalysed)
        report = write_report(opened, unanalysed, tmp_path / "report", progress=False)
    assert not data.analysed and data.circuits is not None and len(data.phases)
    assert len(PNG.findall(section(report.index.read_text(encoding="utf-8")))) == 2


def test_a_run_without_edge_circuits_has_no_circuits_part(store, tmp_path):
    path, (_, _, bare) = store
    with open_store(path) as opened:
        data = gather(opened, bare)
        report = write_report(opened, bare, tmp_path / "report", progress=False)
    assert data.circuits is None
    assert write_circuit_figures(data, tmp_path / "none") == []
    html = report.index.read_text(encoding="utf-8")
    assert 'id="circuits"' not in html and "Edge circuit" not in html
    assert not any(p.name.startswith("circuit-") for p in report.figures)
    assert not list((tmp_path / "report").glob("circuit-*.png"))


# --- end to end on a toy run -----------------------------------------------------------------
@pytest.fixture(scope="module")
def toy(short_runs, tmp_path_factory):
    """The short GPT-2 toy run ingested, its circuits found at every step and saved, analyzed."""
    plan = plan_run(str(short_runs["gpt2"]), None, SweepSettings())
    path = tmp_path_factory.mktemp("report-toy-circuits") / "store.lbdb"
    with open_store(path, writable=True) as opened:
        ingest_plan(opened, plan, progress=False)
        steps = opened.stored_steps(plan.run_id)
        found = find_circuits(opened, plan.run_id, steps, CircuitSettings())
        opened.write_circuits([c.record() for c in found])
        analyze(opened, plan.run_id, 0.7, progress=False)
        components = opened.components(plan.run_id)
    return path, plan.run_id, found, components


def test_the_report_of_a_toy_run_shows_its_saved_circuits(toy, tmp_path):
    path, run_id, found, components = toy
    with open_store(path) as opened:
        data = gather(opened, run_id)
        report = write_report(opened, run_id, tmp_path / "report", progress=False)
    shown = data.circuits
    assert shown is not None and data.analysed
    assert shown.steps["step"].tolist() == [c.step for c in found]
    assert shown.steps["n_edges"].tolist() == [len(c.edges) for c in found]
    pd.testing.assert_series_equal(
        shown.steps["faithfulness"],
        pd.Series([c.faithfulness for c in found], name="faithfulness"),
    )
    assert shown.emergence == circuit_trajectory(found, components).emergence
    part = section(report.index.read_text(encoding="utf-8"))
    assert len(PNG.findall(part)) == 2
    final = found[-1]
    assert f"<td>{', '.join(final.edge_names)}</td>" in part
    for name in final.edge_names:
        assert f"<td>{name}</td>" in part
    for name in CIRCUIT_FIGURES:
        with Image.open(tmp_path / "report" / f"{name}.png") as image:
            image.load()
            assert image.format == "PNG"
