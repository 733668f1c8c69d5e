"""``circuitatlas reproduce`` end to end on a shortened run (the same code path as the default:
the Pythia-14M-shaped model trained on both tasks, every sweep, every analysis, the claims, the
circuits and the report), and what it refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_process import circuitatlas

from circuitatlas.analytics.claims import VERDICTS
from circuitatlas.ingest.toy import pythia_checkpoint_steps
from circuitatlas.reproduce import OUTPUT_DEFINITIONS, Reproduction, run_reproduce
from circuitatlas.store import open_store

STEPS, CHECKPOINTS = 150, 10
SPREAD, CIRCUITS = 5, 2  # checkpoints of the extra sweeps and of the circuits (defaults 36, 8)
CLAIMS = ["phases", "spreaders", "reconfigure", "tail", "threshold", "ablation", "task"]


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Reproduction:
    out = tmp_path_factory.mktemp("reproduce") / "out"
    return run_reproduce(
        out, steps=STEPS, checkpoints=CHECKPOINTS, progress=False, check_steps=SPREAD,
        circuit_steps=CIRCUITS,
    )  # fmt: skip


@pytest.mark.slow
def test_every_claim_is_filled_from_measurements(reproduced: Reproduction) -> None:
    table = reproduced.table()
    assert set(table["verdict"]) <= set(VERDICTS)
    assert set(table["output"]) == {*OUTPUT_DEFINITIONS}
    text = " ".join(table["claim"]).lower()
    for word in CLAIMS:
        assert word.lower() in text, word
    for _, claim in reproduced.claims:
        assert claim.this_run.strip(), claim.claim
        assert claim.numbers, claim.claim  # the raw values the sentence states


@pytest.mark.slow
def test_the_runs_are_stored_and_analyzed(reproduced: Reproduction) -> None:
    ids = reproduced.run_ids
    assert len(set(ids.values())) == len(ids)  # resid, mean, resample, the second task: own runs
    steps = pythia_checkpoint_steps(STEPS, CHECKPOINTS)
    assert reproduced.check_steps == [steps[i] for i in (0, 2, 4, 7, 9)]  # spread by position
    assert reproduced.circuit_steps == [steps[0], steps[-1]]
    with open_store(reproduced.store) as store:
        for name, run_id in ids.items():
            checkpoints = store.checkpoints(run_id)
            everything = name in OUTPUT_DEFINITIONS
            assert checkpoints["step"].tolist() == (steps if everything else reproduced.check_steps)
            assert checkpoints["tau"].notna().all()  # analyzed and written back
        for name in ("write", "successor"):  # both tasks' circuits, at the circuit steps
            assert sorted(store.circuits(ids[name])["step"]) == reproduced.circuit_steps
    text = reproduced.out.joinpath("claims.md").read_text()
    assert f"swept on {SPREAD} checkpoints" in text
    task = next(c for _, c in reproduced.claims if c.claim.startswith("(g)"))
    assert task.numbers["per_task"]["successor"]["circuits"]["steps"] == CIRCUITS


@pytest.mark.slow
def test_the_report_opens_with_the_claims(reproduced: Reproduction) -> None:
    assert reproduced.report is not None
    html = reproduced.report.read_text(encoding="utf-8")
    claims = html.index("The paper&#x27;s claims, checked")
    assert claims < html.index("At a glance") if "At a glance" in html else True
    for verdict in {c.verdict for _, c in reproduced.claims}:
        assert verdict in html
    saved = json.loads((reproduced.out / "claims.json").read_text())
    assert len(saved["claims"]) == len(reproduced.claims)
    assert set(saved["timings_s"]) >= {"train", "analyze", "claims", "report"}
    assert "| claim |" in (reproduced.out / "claims.md").read_text()


@pytest.mark.slow
def test_a_second_call_reuses_everything(reproduced: Reproduction) -> None:
    again = run_reproduce(
        reproduced.out, steps=STEPS, checkpoints=CHECKPOINTS, progress=False, check_steps=SPREAD,
        circuit_steps=CIRCUITS,
    )  # fmt: skip
    assert again.run_ids == reproduced.run_ids
    assert again.timings["train"] < 5  # the trained run is reused
    assert again.table().equals(reproduced.table())


def test_an_out_holding_something_else_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    done = circuitatlas("reproduce", "--out", str(out), "--steps", "150")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and "notes.txt" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("option", ["--check-steps", "--circuit-steps"])
def test_too_few_spread_checkpoints_are_refused(tmp_path: Path, option: str) -> None:
    done = circuitatlas("reproduce", "--out", str(tmp_path / "r"), option, "1")
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {option} 1: give at least 2 checkpoints"
    assert not (tmp_path / "r").exists()


def test_revisions_without_a_model_is_refused(tmp_path: Path) -> None:
    done = circuitatlas("reproduce", "--out", str(tmp_path / "r"), "--revisions", "paper")
    assert done.returncode == 2
    assert "--revisions needs --model" in done.stderr
    assert not (tmp_path / "r").exists()


def test_an_offline_hub_model_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "hub"
    done = circuitatlas(
        "reproduce",
        "--out",
        str(out),
        "--model",
        "EleutherAI/pythia-14m",
        "--revisions",
        "paper",
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
