"""`circuitatlas paths --scores patch|eap-ig` on a real toy run in an embedded store: each edge
weighted by its share of its target's total absolute score, the paths against a brute-force
enumeration from the store's ordinary edge read, the CLI and the API alike, circuits saved and
validated, and a run without the scores refused."""

import json
import math
from itertools import pairwise

import networkx as nx
import pytest
from click.testing import CliRunner

from circuitatlas.cli import main
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.graph.paths import SCORES, PathSettings
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.ingest.synthetic import synthetic_sweep
from circuitatlas.queries.paths import find_paths
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_plan, ingest_sweep

CLI_SCORES = {"patch": "patch", "eap_ig": "eap-ig"}


@pytest.fixture(scope="module")
def scored(short_runs, tmp_path_factory):
    """``(store path, run id, steps)`` of the short GPT-2 toy run, swept with the default
    ``--edge-scores auto`` (both scores on a toy model)."""
    path = tmp_path_factory.mktemp("scores") / "store.lbdb"
    plan = plan_run(str(short_runs["gpt2"]), None, SweepSettings(n_prompts=6, seq_len=17))
    with open_store(path, writable=True) as store:
        ingest_plan(store, plan, progress=False)
        steps = store.stored_steps(plan.run_id)
        edges = store.edges(plan.run_id)
    assert edges[list(SCORES.values())].notna().all().all()  # both computed
    return path, plan.run_id, steps


def every_path(store, run_id, step, measure):
    """The plain reference: every input→logits path of the store's ordinary edge read, each
    edge weighted by |score| over the sum of |score| into its target (networkx), ranked by the
    product of the shares, ties by names; and the sum of every path's strength."""
    edges = store.edges(run_id, step)
    magnitude = edges[SCORES[measure]].abs().fillna(0.0)
    totals = magnitude.groupby(edges["target"]).sum()
    g = nx.DiGraph()
    for source, target, m in zip(edges.source, edges.target, magnitude, strict=True):
        if m > 0:
            g.add_edge(source, target, w=m / totals[target])
    found = []
    for p in nx.all_simple_paths(g, "input", "logits"):
        strength = math.prod(g.edges[a, b]["w"] for a, b in pairwise(p))
        found.append((round(-math.log(strength), 12), tuple(p), strength))
    return [(names, strength) for _, names, strength in sorted(found)]


def paths_cli(store, run_id, *args):
    argv = ["paths", "--store", str(store), "--run", run_id, *map(str, args)]
    return CliRunner().invoke(main, argv)


@pytest.mark.parametrize("measure", SCORES)
def test_paths_on_shares_equal_a_brute_force_enumeration(scored, measure):
    path, run_id, steps = scored
    with open_store(path) as store:
        result = find_paths(store, run_id, None, PathSettings(k=6, measure=measure))
        assert result.steps == steps and not result.notes
        for step in steps:
            reference = every_path(store, run_id, step, measure)
            assert len(reference) > 20
            # read backwards from logits the shares into each node sum to 1: so do the paths
            assert math.fsum(s for _, s in reference) == pytest.approx(1.0, abs=1e-9)
            ours = result.paths[result.paths.step == step]
            expected = reference[:6]
            assert ours["path"].tolist() == ["→".join(names) for names, _ in expected]
            assert ours["strength"].tolist() == pytest.approx([s for _, s in expected], rel=1e-9)


@pytest.mark.parametrize("measure", SCORES)
def test_the_cli_prints_the_api_paths(scored, measure):
    path, run_id, steps = scored
    got = paths_cli(path, run_id, "--all-steps", "-k", 3, "--scores", CLI_SCORES[measure],
                    "--format", "json")  # fmt: skip
    assert got.exit_code == 0, got.output
    rows = json.loads(got.stdout)["paths"]
    with open_store(path) as store:
        api = find_paths(store, run_id, None, PathSettings(k=3, measure=measure)).paths
    assert [r["path"] for r in rows] == api.path.tolist()
    assert [r["strength"] for r in rows] == pytest.approx(api.strength.tolist(), rel=1e-12)
    table = paths_cli(path, run_id, "--step", steps[-1], "--scores", CLI_SCORES[measure])
    assert table.exit_code == 0, table.output
    assert f"({CLI_SCORES[measure]} scores; strength = product of each edge's share" in table.output
    assert f"total |{SCORES[measure]}|)" in table.output


def test_similarity_is_the_default_and_keeps_edges_choosing(scored):
    path, run_id, steps = scored
    cases = [((), "direct"), (("--scores", "similarity", "--edges", "total"), "total")]
    for args, measure in cases:
        got = paths_cli(path, run_id, "--step", steps[-1], *args, "--format", "json")
        assert got.exit_code == 0, got.output
        with open_store(path) as store:
            api = find_paths(store, run_id, [steps[-1]], PathSettings(measure=measure)).paths
        assert [r["path"] for r in json.loads(got.stdout)["paths"]] == api.path.tolist()


def test_save_and_validate_on_patch_scores(tmp_path, scored):
    path, run_id, steps = scored
    copy = tmp_path / "store.lbdb"
    copy.write_bytes(path.read_bytes())
    got = paths_cli(copy, run_id, "--step", steps[-1], "-k", 2, "--scores", "patch",
                    "--validate", "--grow-to", 0.5, "--save", "--device", "cpu",
                    "--format", "json")  # fmt: skip
    assert got.exit_code == 0, got.output
    [row] = json.loads(got.stdout)["circuits"]
    assert math.isfinite(row["faithfulness"])
    with open_store(copy) as store:
        [saved] = store.circuits(run_id).to_dict("records")
        top = find_paths(store, run_id, [steps[-1]], PathSettings(k=20, measure="patch"))
    assert saved["measure"] == "patch" and saved["tau"] != saved["tau"]  # NaN: no τ
    assert list(saved["paths"]) == top.paths.path.tolist()[: saved["k"]]
    assert list(saved["strengths"]) == pytest.approx(top.paths.strength[: saved["k"]].tolist())


def test_a_run_without_the_scores_is_one_line(tmp_path):
    sweep = synthetic_sweep(2, 2, [0, 10], seed=3)  # no task-metric score computed
    path = tmp_path / "store.lbdb"
    with open_store(path, writable=True) as store:
        ingest_sweep(store, sweep, progress=False)
    for scores, column, ingest in [("patch", "patch_effect", "exact|both"),
                                   ("eap-ig", "eap_ig", "eap-ig|both")]:  # fmt: skip
        got = paths_cli(path, sweep.run_id, "--all-steps", "--scores", scores)
        assert got.exit_code == 1
        assert got.output == (
            f"error: run {sweep.run_id} has no {column} scores; re-ingest with --edge-scores "
            f"{ingest}\n"
        )
    with open_store(path) as store, pytest.raises(CircuitAtlasError, match="no patch_effect"):
        find_paths(store, sweep.run_id, None, PathSettings(measure="patch"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scores", "patch", "--edges", "total"), "--edges total: picks a similarity measure"),
        (("--scores", "eap-ig", "--tau", 0.7), "--tau 0.7: a threshold on similarities"),
    ],
)
def test_bad_combinations_are_one_line(scored, args, message):
    path, run_id, steps = scored
    got = paths_cli(path, run_id, "--step", steps[-1], *args)
    assert got.exit_code == 1 and got.output.count("\n") == 1
    assert got.output.startswith(f"error: {message}")
