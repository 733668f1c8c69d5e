"""`circuitatlas circuits` end to end on the embedded store: output, --save, --bootstrap, the
fallback when a run holds no scores, and bad input (one line, exit 1, nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from circuitatlas.store import open_store


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "circuitatlas.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def stores(short_runs, tmp_path_factory) -> dict[str, Path]:
    """The short GPT-2 toy run ingested twice: with both edge scores and with none."""
    root = tmp_path_factory.mktemp("circuits-cli")
    out = {}
    for scores in ("both", "none"):
        out[scores] = root / f"{scores}.lbdb"
        done = cli(
            "ingest", "--model", str(short_runs["gpt2"]), "--store", str(out[scores]),
            "--edge-scores", scores,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return out


def steps_of(store: Path) -> list[int]:
    with open_store(store) as s:
        [run] = s.runs().run_id
        return s.stored_steps(run)


def circuits_json(*args: str) -> dict:
    done = cli("circuits", *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_step_gives_a_faithful_circuit_of_its_edges(stores):
    step = steps_of(stores["both"])[-1]
    [row] = circuits_json("--store", str(stores["both"]), "--step", str(step))["circuits"]
    assert row["step"] == step and row["reached"]
    assert row["faithfulness"] >= 0.8
    edges = row["edges"].split()
    assert len(edges) == row["n_edges"] > 0
    touched = {name for edge in edges for name in edge.split("→")}
    assert len(touched) == row["n_components"]
    assert -1 <= row["score_correlation"] <= 1  # both kinds stored: their rank correlation


def test_all_steps_saves_one_circuit_per_step_and_a_rerun_replaces_them(stores):
    url = str(stores["both"])
    got = circuits_json("--store", url, "--all-steps", "--save")
    assert [c["step"] for c in got["circuits"]] == steps_of(stores["both"])
    assert {"edges", "components", "events", "emergence"} <= set(got)
    assert got["circuits"][-1]["jaccard_final"] == 1.0
    for _ in range(2):  # the second --save replaces the first
        with open_store(url) as s:
            [run] = s.runs().run_id
            saved = s.circuits(run)
            saved = saved[saved["kind"] == "edges"]
            edges = s.circuit_edges(run)
        assert len(saved) == len(got["circuits"])
        assert len(edges) == int(saved["n_edges"].sum())
        by_step = saved.set_index("step")
        for circuit in got["circuits"]:
            assert list(by_step.loc[circuit["step"], "edges"]) == circuit["edges"].split()
        assert cli("circuits", "--store", url, "--all-steps", "--save").returncode == 0


def test_bootstrap_reports_how_stable_the_circuit_is(stores):
    step = steps_of(stores["both"])[-1]
    [row] = circuits_json("--store", str(stores["both"]), "--step", str(step), "--bootstrap", "3")[
        "circuits"
    ]
    assert 0 <= row["mean_jaccard"] <= 1
    assert row["faithfulness_std"] >= 0 and row["faithfulness_mean"] > 0


def test_a_run_without_scores_computes_them_from_its_configuration(stores):
    step = steps_of(stores["none"])[-1]
    done = cli("circuits", "--store", str(stores["none"]), "--step", str(step), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "computed from the run's stored configuration" in done.stderr
    assert "re-ingest with --edge-scores" in done.stderr
    both = circuits_json("--store", str(stores["both"]), "--step", str(step))["circuits"][0]
    [row] = json.loads(done.stdout)["circuits"]
    assert row["edges"] == both["edges"]  # the same scores, computed instead of read
    assert row["score_correlation"] is None


def test_another_ablation_recomputes_the_scores(stores):
    step = steps_of(stores["both"])[-1]
    args = ("circuits", "--store", str(stores["both"]), "--step", str(step), "--ablation", "mean")
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert "its ablation differs from the run's" in done.stderr


def test_target_one_keeps_the_whole_task(stores):
    step = steps_of(stores["both"])[-1]
    args = ("--store", str(stores["both"]), "--step", str(step), "--target", "1")
    [row] = circuits_json(*args)["circuits"]
    assert row["faithfulness"] >= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "STEP", "--target", "0"], "--target 0.0: give a share in (0, 1]"),
        (["--step", "STEP", "--target", "1.5"], "--target 1.5: give a share in (0, 1]"),
        (["--step", "999999"], "step 999999 is not stored for run"),
        (["--step", "STEP", "--bootstrap", "0"], "--bootstrap 0: give at least 1 resample"),
        ([], "give --step S or --all-steps"),
        (["--step", "STEP", "--all-steps"], "give --step S or --all-steps"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(stores, args, message):
    url = str(stores["both"])
    step = str(steps_of(stores["both"])[-1])
    with open_store(url) as s:
        before = len(s.circuits(s.runs().run_id[0]))
    done = cli("circuits", "--store", url, "--save", *[step if a == "STEP" else a for a in args])
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    with open_store(url) as s:
        assert len(s.circuits(s.runs().run_id[0])) == before
