"""The report's data and static figures on a real embedded store: gather() on analysed and
un-analysed runs (never writing), the strongest-path-per-phase rule, the persistence table, the
role heatmaps' rows, and PNGs of the expected size that are the same bytes when written twice."""

import struct
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from store_dump import dump

from circuitatlas.analytics.analyze import analyze
from circuitatlas.analytics.roles import ROLE_METRICS
from circuitatlas.graph.centrality import METRICS
from circuitatlas.graph.paths import FoundPath, PathSettings
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.paths import PathResult, find_paths, paths_frame
from circuitatlas.report import figures
from circuitatlas.report.data import (
    PHASE_COLUMNS,
    PHASE_PATH_COLUMNS,
    gather,
    phase_segments,
    strongest_per_phase,
)
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_sweep

P = FoundPath  # short, so the ranked paths of the hand-built results read as a table
STEPS = [0, 3, 7, 18, 46, 120, 240, 360]  # log-spaced, then every 120: a symmetric-log axis


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """A store with two synthetic runs: the first analysed (stored), the second not."""
    path = tmp_path_factory.mktemp("report") / "store.lbdb"
    sweeps = [synthetic_sweep(2, 3, STEPS, seed=seed) for seed in (5, 6)]
    with open_store(path, writable=True) as store:
        for sweep in sweeps:
            ingest_sweep(store, sweep, progress=False)
        analyze(store, sweeps[0].run_id, 0.7)
    return path, sweeps[0].run_id, sweeps[1].run_id


@pytest.fixture(scope="module")
def analysed(store_path):
    path, run_id, _ = store_path
    with open_store(path) as store:
        return gather(store, run_id)


def test_gather_reads_the_stored_analysis_and_the_paths(store_path, analysed):
    path, run_id, _ = store_path
    data = analysed
    assert data.analysed and data.warnings == ()
    with open_store(path) as store:
        run = store.read_named("ask_run", run_id=run_id)["run"].iloc[0]
        pd.testing.assert_frame_equal(data.checkpoints, store.checkpoints(run_id))
        pd.testing.assert_frame_equal(data.components, store.components(run_id))
        assert len(data.edges) == store.counts(run_id)["edges"]
        expected = find_paths(store, run_id, None, PathSettings(k=5))
    assert data.run["config"]["run_id"] == run_id and "_ID" not in data.run
    pd.testing.assert_frame_equal(data.paths.paths, expected.paths)
    pd.testing.assert_frame_equal(data.persistence, expected.persistence())
    assert data.steps == STEPS and data.tau == 0.7
    # the phases are the stored segments
    assert data.phases.columns.tolist() == PHASE_COLUMNS
    assert data.phases["label"].tolist() == list(run["phase_labels"])
    assert data.phases["first_step"].tolist()[1:] == list(run["phase_boundaries"])
    assert data.phases["n_checkpoints"].sum() == len(STEPS)
    for phase in data.phases.itertuples():
        within = data.checkpoints[data.checkpoints.step.between(phase.first_step, phase.last_step)]
        assert (within["phase"] == phase.label).all()
    assert data.reconfigurations == list(run["reconfigurations"])


def test_gather_computes_a_missing_analysis_without_writing(store_path):
    path, _, run_id = store_path
    with open_store(path, writable=True) as store:  # writable: only gather itself could write
        before = dump(store)
        data = gather(store, run_id, k=3)
        after = dump(store)
        expected = analyze(store, run_id, write=False)
    assert before == after
    assert not data.analysed
    assert any("no stored analysis" in w and "τ=0.7" in w for w in data.warnings)
    pd.testing.assert_frame_equal(data.checkpoints, expected.checkpoints)
    ours = data.components.set_index(["step", "name"])
    theirs = expected.components.set_index(["step", "name"]).loc[ours.index]
    for metric in [*METRICS, "role"]:
        assert ours[metric].astype(object).equals(theirs[metric].astype(object)), metric
    assert data.phases["label"].tolist() == expected.phases.labels
    assert data.paths.settings == PathSettings(k=3)
    assert data.paths.paths["rank"].max() <= 3


def test_another_tau_than_the_stored_one_is_computed(store_path):
    path, run_id, _ = store_path
    with open_store(path) as store:
        data = gather(store, run_id, tau=0.5)
    assert not data.analysed and data.tau == 0.5
    assert any("stored analysis" in w and "τ=0.7" in w for w in data.warnings)


def test_the_strongest_path_of_a_phase_is_the_most_often_first_ties_to_the_later():
    a, b, c = (("input", x, "logits") for x in ("a0.h0", "a0.h1", "m0"))
    ranked = {  # step → its ranked paths (distance = −log strength)
        0: [P(a, 1.0), P(b, 2.0)],
        1: [P(b, 1.5), P(a, 1.6)],
        2: [P(a, 0.5)],  # phase 0: a first twice, b once → a, drawn at step 2
        3: [P(b, 0.7), P(c, 0.8)],
        4: [P(c, 0.9)],  # phase 1: b and c once each → c (first later), at 4
        5: [],
        6: [],  # phase 2: no path
        7: [P(c, 0.2)],  # phase 3: a single checkpoint
    }
    frames = [paths_frame(step, found) for step, found in ranked.items() if found]
    paths = pd.concat(frames, ignore_index=True)
    phases = phase_segments(list(ranked), [3, 5, 7], ["exploration", "refinement"] * 2)
    found = strongest_per_phase(paths, phases)
    assert found.columns.tolist() == PHASE_PATH_COLUMNS
    text = ["→".join(p) for p in (a, c)]
    assert found["path"].isna().tolist() == [False, False, True, False]
    assert found["path"].dropna().tolist() == [text[0], text[1], text[1]]
    assert found["step"].isna().tolist() == [False, False, True, False]
    assert found["step"].dropna().tolist() == [2, 4, 7]
    assert found["top1_checkpoints"].tolist() == [2, 1, 0, 1]
    assert found["n_checkpoints"].tolist() == [3, 2, 2, 1]
    np.testing.assert_allclose(found["strength"], np.exp([-0.5, -0.9, np.nan, -0.2]))
    assert found[["first_step", "last_step"]].values.tolist() == [[0, 2], [3, 4], [5, 6], [7, 7]]


def test_the_persistence_table_shows_the_path_result(analysed):
    a, b, c = (("input", x, "logits") for x in ("a0.h0", "a0.h1", "m0"))
    ranked = {0: [P(a, 1.0), P(b, 2.0)], 3: [P(b, 0.5), P(a, 0.6)], 7: [P(b, 0.1)], 18: [P(c, 1)]}
    paths = pd.concat([paths_frame(s, f) for s, f in ranked.items()], ignore_index=True)
    result = PathResult("r", PathSettings(), list(ranked), paths)
    data = replace(analysed, paths=result, persistence=result.persistence())
    table = figures.persistence_table(data)
    expected = result.persistence()
    assert table.columns.tolist() == [
        "path",
        "first step",
        "last step",
        "fraction in top k",
        "best rank",
        "steps at rank 1",
    ]
    assert table["path"].tolist() == ["→".join(p) for p in (b, a, c)]
    assert table["fraction in top k"].tolist() == [0.75, 0.5, 0.25]
    assert table["fraction in top k"].is_monotonic_decreasing
    assert table["steps at rank 1"].tolist() == ["3, 7", "0", "18"]
    assert table["first step"].tolist() == expected["first_step"].tolist()
    assert table["last step"].tolist() == expected["last_step"].tolist()
    assert table["best rank"].tolist() == [1, 1, 1]


@pytest.mark.parametrize("role", list(ROLE_METRICS))
@pytest.mark.parametrize("k", [1, 3])
def test_heatmap_rows_are_the_union_of_each_checkpoints_top_k(analysed, role, k):
    metric = ROLE_METRICS[role]
    comps = analysed.components
    top = {
        step: set(
            group[group[metric] > 0]
            .sort_values([metric, "name"], ascending=[False, True])
            .head(k)["name"]
        )
        for step, group in comps.groupby("step")
    }
    matrix, members = figures.role_matrix(analysed, role, k)
    assert set(matrix.index) == set().union(*top.values())
    assert matrix.columns.tolist() == STEPS
    for step in STEPS:
        assert set(members.index[members[step]]) == top[step]
        values = comps[comps.step == step].set_index("name")[metric]
        np.testing.assert_array_equal(matrix[step], values.loc[matrix.index])
    order = comps.drop_duplicates("name").set_index("name").loc[matrix.index]
    assert (order["layer"].diff().dropna() >= 0).all()  # computation order


def test_heatmap_figure_rows_are_the_default_top_components(analysed):
    fig = figures.gatherers(analysed)
    shown = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert shown == figures.role_matrix(analysed, "gatherer")[0].index.tolist()
    colours = {t.get_text(): t.get_color() for t in fig.axes[1].get_yticklabels()}
    kinds = analysed.components.drop_duplicates("name").set_index("name")["kind"]
    assert all(colours[n] == figures.KIND_COLOURS[kinds[n]] for n in shown)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("which", ["analysed", "computed"])
def test_every_figure_writes_a_png_of_its_size_the_same_bytes_twice(store_path, tmp_path, which):
    path, stored_run, other_run = store_path
    with open_store(path) as store:
        data = gather(store, stored_run if which == "analysed" else other_run)
    first = figures.write_figures(data, tmp_path / "a")
    second = figures.write_figures(data, tmp_path / "b")
    assert [f.name for f in first] == list(figures.FIGURES)
    for one, two in zip(first, second, strict=True):
        content = one.path.read_bytes()
        assert one.path.name == f"{one.name}.png" and one.title and one.caption
        assert content == two.path.read_bytes(), f"{one.name}: not the same bytes"
        assert b"Software" not in content and b"tIME" not in content
        fig = figures.FIGURES[one.name][1](data)
        width, height = (fig.get_size_inches() * figures.DPI).round().astype(int)
        assert png_size(content) == (width, height), one.name
    sizes = {f.name: png_size(f.path.read_bytes()) for f in first}
    assert sizes["growth"] == (1100, 660) and sizes["weights"] == (1100, 704)
    assert "symmetric-log" in next(f.caption for f in first if f.name == "growth")


def test_figures_draw_empty_roles_and_phases_without_a_path(analysed, tmp_path):
    no_paths = analysed.phase_paths.assign(path=None, strength=np.nan, step=pd.NA)
    data = replace(
        analysed,
        components=analysed.components.assign(betweenness=0.0),
        phase_paths=no_paths.astype({"step": "Int64"}),
    )
    assert figures.role_matrix(data, "gatekeeper")[0].empty
    files = figures.write_figures(data, tmp_path)
    assert all(f.path.stat().st_size > 0 for f in files)
    texts = [t.get_text() for ax in figures.paths(data).axes for t in ax.texts]
    assert "no path at any checkpoint of this phase" in texts
