"""`circuitatlas paths --validate [--grow-to F] [--save]` on a real toy run in an embedded store.

Every faithfulness the command prints is checked against `run_faithfulness` on circuits built
here from an independent enumeration of the top paths; the grown circuit must be the first k whose
circuit reaches F.
"""

import json

import pytest
from click.testing import CliRunner

from circuitatlas.cli import main
from circuitatlas.graph.paths import PathSettings
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.queries.circuits import K_MAX
from circuitatlas.queries.faithfulness import run_faithfulness
from circuitatlas.queries.paths import find_paths
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_plan

STEP = 250


@pytest.fixture(scope="module")
def swept(short_runs, tmp_path_factory):
    """``(store path, run id, config, faithfulness of the top-k circuit for k = 1..K_MAX)``."""
    path = tmp_path_factory.mktemp("validate") / "store.lbdb"
    plan = plan_run(str(short_runs["gpt2"]), None, SweepSettings(n_prompts=6, seq_len=17))
    with open_store(path, writable=True) as store:
        ingest_plan(store, plan, progress=False)
        ranked = find_paths(store, plan.run_id, [STEP], PathSettings(k=K_MAX)).of_step(STEP)
    circuits = [{n for p in ranked[:k] for n in p.components} for k in range(1, len(ranked) + 1)]
    values = [f.value for f in run_faithfulness(plan.config, STEP, circuits, "mean", "cpu")]
    return path, plan.run_id, plan.config, values


def paths(store, run_id, *args):
    args = ["paths", "--store", str(store), "--run", run_id, *map(str, args)]
    return CliRunner().invoke(main, args)


def test_validate_prints_the_faithfulness_of_the_top_k_circuit(swept):
    store, run_id, _, values = swept
    got = paths(store, run_id, "--step", STEP, "-k", 3, "--validate", "--format", "json")
    assert got.exit_code == 0, got.output
    [row] = json.loads(got.stdout)["circuits"]
    assert row["step"] == STEP and row["k"] == 3
    assert row["faithfulness"] == pytest.approx(values[2], abs=1e-12)


def test_grow_to_takes_the_fewest_top_paths_that_reach_the_target(swept):
    store, run_id, _, values = swept
    assert max(values) > values[0], values  # the fixture must leave room to grow
    target = round(max(values) - 1e-3, 6) if max(values) <= 1 else 1.0
    want = next(k for k, v in enumerate(values, start=1) if v >= target)
    assert want > 1
    for start in sorted({1, want - 1}):  # the one just short of it must grow by exactly one
        got = paths(
            store, run_id, "--step", STEP, "-k", start, "--validate", "--grow-to", target,
            "--save", "--format", "json",
        )  # fmt: skip
        assert got.exit_code == 0, got.output
        [row] = json.loads(got.stdout)["circuits"]
        assert (start, row["k"]) == (start, want), values
        assert row["faithfulness"] == pytest.approx(values[want - 1], abs=1e-12)
    with open_store(store) as s:
        stored = s.circuits(run_id)
    assert want in stored["k"].tolist()
    grown = stored[stored["k"] == want].iloc[0]
    assert grown.faithfulness == pytest.approx(values[want - 1], abs=1e-12)


def test_a_target_no_circuit_reaches_keeps_the_circuit_and_says_so(swept):
    store, run_id, _, values = swept
    if max(values) >= 1:
        pytest.skip("every target up to 1 is reached on this run")
    got = paths(store, run_id, "--step", STEP, "-k", 2, "--validate", "--grow-to", 1)
    assert got.exit_code == 0, got.output
    assert f"no circuit of at most {K_MAX} top paths reaches faithfulness 1" in got.stderr
    assert f"({values[1]:.3g})" in got.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--grow-to", "0.8"], "--grow-to: measures faithfulness; add --validate"),
        (["--validate", "--grow-to", "1.5"], "--grow-to 1.5: give a faithfulness in (0, 1]"),
        (["--validate", "--grow-to", "0"], "--grow-to 0.0: give a faithfulness in (0, 1]"),
    ],
)
def test_bad_grow_to_is_one_line(swept, args, says):
    store, run_id, _, _ = swept
    with open_store(store) as s:
        before = s.circuits(run_id)
    got = paths(store, run_id, "--step", STEP, "--save", *args)
    assert got.exit_code == 1
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {says}"), got.stderr
    with open_store(store) as s:
        assert s.circuits(run_id).equals(before)
