"""`circuitatlas analyze` on the embedded store: values against a plain reference, write-back,
replacement at another τ, the threshold sweep, and bad input."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from networkx_reference import networkx_centralities
from store_dump import dump

from circuitatlas.analytics.analyze import analyze
from circuitatlas.analytics.roles import ROLE_METRICS
from circuitatlas.analytics.thresholds import SWEEP_COLUMNS, tau_sweep
from circuitatlas.cli import main
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.centrality import METRICS
from circuitatlas.graph.network import Graph
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.store import open_store
from circuitatlas.store.analysis_rows import CHECKPOINT_ANALYSIS, COMPONENT_ANALYSIS, RUN_ANALYSIS
from circuitatlas.store.ingest import ingest_sweep

STEPS = [0, 10, 20, 40, 80, 160]


@pytest.fixture(scope="module")
def sweep():
    return synthetic_sweep(3, 4, STEPS, seed=3)


@pytest.fixture()
def path(tmp_path, sweep):
    """A fresh store holding ``sweep``."""
    path = tmp_path / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
    return path


def reference_metrics(store, run_id, step, tau, measure):
    """The plain path: the store's ordinary edge read at τ, networkx on it."""
    comps = store.components(run_id, step)
    edges = store.edges(run_id, step, tau=tau, measure=measure)
    weight = "direct_weight" if measure == "direct" else "weight"
    edges = edges[edges[weight] > 0][["source", "target", weight]].set_axis(
        ["source", "target", "weight"], axis=1
    )
    graph = Graph.from_edges(sorted(comps["name"]), edges)
    return networkx_centralities(graph), edges["weight"].to_numpy()


@pytest.mark.parametrize("measure", ["total", "direct"])
def test_values_equal_a_networkx_reference_and_are_written_back(path, sweep, measure):
    tau = 0.7 if measure == "total" else 0.95
    with open_store(path, writable=True) as store:
        result = analyze(store, sweep.run_id, tau, measure=measure)
    with open_store(path) as store:
        stored = store.components(sweep.run_id)
        checkpoints = store.checkpoints(sweep.run_id)
        for step in STEPS:
            ref, weights = reference_metrics(store, sweep.run_id, step, tau, measure)
            ours = result.components[result.components.step == step].sort_values("name")
            assert ours["name"].tolist() == ref["name"].tolist()
            for metric in METRICS:
                np.testing.assert_allclose(ours[metric], ref[metric], rtol=1e-9, atol=1e-12)
            row = result.checkpoints.set_index("step").loc[step]
            assert row["n_edges"] == len(weights)
            assert row["mean_weight"] == pytest.approx(weights.mean(), rel=1e-12)
    assert len(weights) > 0
    # what the store holds is what the analysis returned, for every component and checkpoint
    merged = stored.merge(result.components, on=["step", "name"], suffixes=("", "_ours"))
    assert len(merged) == len(stored) == len(result.components)
    for prop in COMPONENT_ANALYSIS:
        a, b = merged[prop], merged[f"{prop}_ours"]
        assert ((a == b) | (a.isna() & b.isna())).all(), prop
    ck = checkpoints.merge(result.checkpoints, on="step", suffixes=("", "_ours"))
    for prop in CHECKPOINT_ANALYSIS:
        a, b = ck[prop], ck[f"{prop}_ours"]
        assert ((a == b) | (a.isna() & b.isna())).all(), prop
    assert (checkpoints["tau"] == tau).all() and (checkpoints["measure"] == measure).all()
    assert (checkpoints["cost"] == "1/weight").all()


def test_roles_are_the_top_k_of_their_metric(path, sweep):
    with open_store(path, writable=True) as store:
        result = analyze(store, sweep.run_id, 0.7, top_k=2)
    for step in STEPS:
        comps = result.components[result.components.step == step]
        for role, metric in ROLE_METRICS.items():
            best = comps[comps[metric] > 0].sort_values([metric, "name"], ascending=[False, True])
            assert result.roles[step][role] == best["name"].head(2).tolist()
            has_role = comps["role"].fillna("").str.split("+").map(set)
            marked = comps[has_role.map({role}.issubset)]
            assert sorted(marked["name"]) == sorted(best["name"].head(2))


def test_run_properties_record_the_analysis(path, sweep):
    with open_store(path, writable=True) as store:
        result = analyze(store, sweep.run_id, 0.6, top_k=4)
    with open_store(path) as store:
        run = store.cypher(
            "MATCH (r:Run {run_id: $r}) RETURN r.analysis_tau AS tau, r.analysis_measure AS m, "
            "r.analysis_cost AS cost, r.analysis_top_k AS k, r.phase_boundaries AS b, "
            "r.phase_labels AS labels, r.reconfigurations AS events, r.analyzed_at AS at",
            r=sweep.run_id,
        ).iloc[0]
        phases = store.checkpoints(sweep.run_id).set_index("step")["phase"]
    assert (run["tau"], run["m"], run["cost"], run["k"]) == (0.6, "total", "1/weight", 4)
    assert list(run["b"]) == result.phases.boundaries
    assert list(run["labels"]) == result.phases.labels
    assert list(run["events"]) == result.reconfigurations
    assert run["at"]
    assert phases.to_dict() == result.phases.per_step.to_dict()
    assert set(RUN_ANALYSIS) >= {"phase_boundaries", "phase_labels"}


def test_another_tau_replaces_every_value(path, sweep, tmp_path):
    with open_store(path, writable=True) as store:
        analyze(store, sweep.run_id, 0.9, top_k=3)
        analyze(store, sweep.run_id, 0.4, top_k=3)
    with open_store(path) as store:
        replaced = dump(store)
    fresh = tmp_path / "fresh.lbdb"
    with open_store(fresh, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
        analyze(store, sweep.run_id, 0.4, top_k=3)
    with open_store(fresh) as store:
        once = dump(store)

    def stable(d):  # the analysis time and the ingest time differ between the two stores
        runs = [json.loads(r) for r in d["Run"]]
        for r in runs:
            r.pop("created_at"), r.pop("analyzed_at")
        return {**d, "Run": runs}

    assert stable(replaced) == stable(once)


def test_analysis_without_writing_changes_nothing(path, sweep):
    with open_store(path) as store:
        before = dump(store)
        result = analyze(store, sweep.run_id, 0.7, write=False)
        assert dump(store) == before
    assert len(result.components) == len(sweep.components)


@pytest.fixture()
def weak_path(tmp_path, sweep):
    """A store of ``sweep`` where no similarity is below 0.5: the graph at τ ≤ 0.5 is empty."""
    edges = sweep.edges.copy()
    for sim, weight in (("similarity", "weight"), ("direct_similarity", "direct_weight")):
        edges[sim] = edges[sim].clip(lower=0.5)
        edges[weight] = 1.0 - edges[sim]
    path = tmp_path / "weak.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, replace(sweep, edges=edges), progress=False)
    return path


def test_an_empty_graph_is_not_an_error(weak_path, sweep):
    with open_store(weak_path, writable=True) as store, pytest.warns(UserWarning, match="no edge"):
        result = analyze(store, sweep.run_id, 0.5)
    assert (result.checkpoints["n_edges"] == 0).all()
    assert (result.components[list(METRICS[:-1])] == 0).all().all()
    n = len(sweep.components[sweep.components.step == 0])
    np.testing.assert_allclose(result.components["pagerank"], 1.0 / n)
    assert result.components["role"].isna().all()
    assert result.warnings and "6 of 6 checkpoints have no edge" in result.warnings[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tau": 0.0}, r"--tau 0.0: give a threshold in \(0, 2\]"),
        ({"tau": 2.5}, r"--tau 2.5: give a threshold in \(0, 2\]"),
        ({"tau": float("nan")}, r"--tau nan: give a threshold in \(0, 2\]"),
        ({"tau": 0.7, "measure": "both"}, "--edges both: give one of total, direct"),
        ({"tau": 0.7, "top_k": 0}, "--top-k 0: give a positive number"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(path, sweep, kwargs, message):
    with open_store(path, writable=True) as store:
        before = dump(store)
        with pytest.raises(CircuitAtlasError, match=message):
            analyze(store, sweep.run_id, **kwargs)
        assert dump(store) == before


def test_unknown_run_and_read_only_store(path, sweep):
    with (
        open_store(path, writable=True) as store,
        pytest.raises(CircuitAtlasError, match=r"unknown run 'nope'.*known runs: "),
    ):
        analyze(store, "nope")
    with open_store(path) as store, pytest.raises(CircuitAtlasError, match="read-only"):
        analyze(store, sweep.run_id)


def test_a_run_without_checkpoints(path, sweep):
    with open_store(path, writable=True) as store:
        store._run(  # a Run node alone, as an interrupted first write of another tool could leave
            "run_merge",
            run_id="empty-run",
            model="m",
            task="t",
            ablation="zero",
            n_prompts=1,
            seq_len=2,
            seed=0,
            created_at="now",
            version="0",
            config=json.dumps({"run_id": "empty-run"}),
            planned_steps=[0],
        )
        with pytest.raises(CircuitAtlasError, match="run empty-run has no stored checkpoint"):
            analyze(store, "empty-run")


def test_tau_sweep_reports_each_threshold_and_writes_nothing(path, sweep):
    with open_store(path) as store:
        before = dump(store)
        frame = tau_sweep(store, sweep.run_id, [0.3, 0.9], reference_tau=0.7)
        assert dump(store) == before
        reference = analyze(store, sweep.run_id, 0.7, write=False)
        low = analyze(store, sweep.run_id, 0.3, write=False)
    assert list(frame.columns) == SWEEP_COLUMNS
    assert frame["tau"].tolist() == [0.3, 0.7, 0.9]
    assert frame["reference"].tolist() == [False, True, False]
    ref = frame.set_index("tau").loc[0.7]
    assert ref["boundary_shift"] == 0 and ref["role_agreement"] == 1
    assert ref["boundaries"] == reference.phases.boundaries
    assert ref["spreaders"] == reference.last_roles()["spreader"]
    row = frame.set_index("tau").loc[0.3]
    assert row["boundaries"] == low.phases.boundaries
    assert row["mean_edges"] == pytest.approx(low.checkpoints["n_edges"].mean())
    assert frame["mean_edges"].is_monotonic_increasing  # a higher τ keeps more edges


# --- the command -------------------------------------------------------------------------------


def run_cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_analyze_prints_and_writes(path, sweep):
    out = run_cli("analyze", "--store", str(path), "--tau", "0.7")
    assert out.exit_code == 0, out.output
    assert f"run {sweep.run_id}: analyzed {len(STEPS)} checkpoints at τ=0.7" in out.output
    assert "phase boundaries at steps:" in out.output and "spreaders" in out.output
    with open_store(path) as store:
        assert (store.checkpoints(sweep.run_id)["tau"] == 0.7).all()
    as_json = run_cli("analyze", "--store", str(path), "--format", "json", "--tau", "0.5")
    records = json.loads(as_json.stdout)
    assert [r["step"] for r in records] == STEPS and {r["tau"] for r in records} == {0.5}


def test_cli_tau_sweep_as_csv(path, sweep):
    with open_store(path) as store:
        before = dump(store)
    out = run_cli("analyze", "--store", str(path), "--tau-sweep", "0.3,0.5,0.9", "--format", "csv")
    assert out.exit_code == 0, out.output
    from io import StringIO

    frame = pd.read_csv(StringIO(out.stdout))
    assert list(frame.columns) == SWEEP_COLUMNS
    assert frame["tau"].tolist() == [0.3, 0.5, 0.7, 0.9]
    with open_store(path) as store:
        assert dump(store) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tau", "0"], "error: --tau 0.0: give a threshold in (0, 2]"),
        (["--tau", "3"], "error: --tau 3.0: give a threshold in (0, 2]"),
        (["--run", "nope"], "error: unknown run 'nope'"),
        (["--tau-sweep", "0.3,x"], "error: --tau-sweep '0.3,x': give thresholds separated"),
        (["--tau-sweep", "0.3,5"], "error: --tau 5.0: give a threshold in (0, 2]"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(path, args, message):
    with open_store(path) as store:
        before = dump(store)
    out = CliRunner().invoke(main, ["analyze", "--store", str(path), *args])
    assert out.exit_code == 1
    assert out.stderr.startswith(message), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.output
    with open_store(path) as store:
        assert dump(store) == before


def test_cli_empty_graph_warns_and_succeeds(weak_path):
    out = CliRunner().invoke(main, ["analyze", "--store", str(weak_path), "--tau", "0.5"])
    assert out.exit_code == 0
    assert "warning: at τ=0.5 (total) 6 of 6 checkpoints have no edge" in out.stderr


def test_cli_needs_run_when_the_store_has_several(path, tmp_path):
    with open_store(path, writable=True) as store:
        ingest_sweep(store, synthetic_sweep(2, 2, [0, 5], seed=9, model="other"), progress=False)
    out = CliRunner().invoke(main, ["analyze", "--store", str(path)])
    assert out.exit_code == 1 and out.stderr.startswith("error: --run: give the run (")


def test_the_top_level_api_takes_a_store_url(path, sweep):
    import circuitatlas

    result = circuitatlas.analyze(str(path), sweep.run_id, tau=0.7)
    with open_store(path) as store:
        assert (store.checkpoints(sweep.run_id)["tau"] == 0.7).all()
    frame = circuitatlas.tau_sweep(str(path), sweep.run_id, [0.5])
    assert frame["tau"].tolist() == [0.5, 0.7]
    assert frame.set_index("tau").loc[0.7, "boundaries"] == result.phases.boundaries


def test_a_store_written_before_the_analytics_columns_gets_them_on_a_writable_open(tmp_path, sweep):
    """A store created with only the CREATE TABLE statements (as before analytics existed) is
    upgraded in place by the next writable open, and keeps its data."""
    import ladybug

    from circuitatlas.store.base import SCHEMA_NAME, SCHEMA_VERSION
    from circuitatlas.store.statements import statement, statements

    path = tmp_path / "old.lbdb"
    db = ladybug.Database(str(path))
    conn = ladybug.Connection(db)
    for text in statements("ladybug", "schema"):
        if text.startswith("CREATE"):
            conn.execute(text)
    conn.execute(
        statement("ladybug", "schema_version_write"),
        {"name": SCHEMA_NAME, "version": SCHEMA_VERSION},
    )
    conn.close()
    db.close()
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
        result = analyze(store, sweep.run_id, 0.7)
    with open_store(path) as store:
        stored = store.components(sweep.run_id)
        assert store.counts(sweep.run_id)["edges"] == len(sweep.edges)
    assert set(COMPONENT_ANALYSIS) <= set(stored.columns)
    np.testing.assert_allclose(
        stored.sort_values(["step", "name"])["pagerank"],
        result.components.sort_values(["step", "name"])["pagerank"],
    )
