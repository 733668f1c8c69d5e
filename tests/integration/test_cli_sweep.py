"""`circuitatlas sweep` end to end; every bad input gets one clear line and writes nothing."""

import hashlib
import json
import shutil
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from circuitatlas.cli import main
from circuitatlas.ingest.checkpoints import list_checkpoints, load_checkpoint
from circuitatlas.ingest.contract import SweepSettings
from circuitatlas.ingest.model import weights_from_bridge
from circuitatlas.ingest.pipeline import read_sweep
from circuitatlas.ingest.sweep import sweep_checkpoint
from circuitatlas.store import open_store
from circuitatlas.store.ingest import check_sweep


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_sweep_writes_frames_prompts_and_config(short_runs, tmp_path):
    out = tmp_path / "sweep"
    res = invoke("sweep", "--model", short_runs["gpt2"], "--prompts", 4, "--out", out)
    assert res.exit_code == 0, res.output
    assert "swept 2 checkpoints" in res.stdout
    edges = pd.read_parquet(out / "edges.parquet")
    comps = pd.read_parquet(out / "components.parquet")
    ckpts = pd.read_parquet(out / "checkpoints.parquet")
    assert list(edges.columns) == [
        "step", "source", "target", "similarity", "weight", "std",
        "direct_similarity", "direct_weight", "direct_std", "patch_effect", "eap_ig",
    ]  # fmt: skip
    assert list(comps.columns) == [
        "step", "name", "kind", "layer", "head", "effect", "prev_token_score", "induction_score",
    ]  # fmt: skip
    assert list(ckpts.columns) == ["step", "loss", "metric"]
    assert sorted(ckpts.step) == [0, 250]
    assert np.load(out / "prompts.npy").shape == (4, 21)
    config = json.loads((out / "config.json").read_text())
    assert config["steps"] == [0, 250] and config["ablation"] == "zero"
    back = read_sweep(out)
    assert back.run_id == config["run_id"]
    pd.testing.assert_frame_equal(back.edges, edges)


def test_same_configuration_gives_same_run_id(short_runs, tmp_path):
    ids = []
    for name in ("a", "b"):
        res = invoke(
            "sweep", "--model", short_runs["neox"], "--prompts", 3, "--out", tmp_path / name
        )
        assert res.exit_code == 0, res.output
        ids.append(json.loads((tmp_path / name / "config.json").read_text())["run_id"])
    assert ids[0] == ids[1]
    res = invoke(
        "sweep", "--model", short_runs["neox"], "--prompts", 3, "--ablation", "mean",
        "--out", tmp_path / "c",
    )  # fmt: skip
    assert json.loads((tmp_path / "c" / "config.json").read_text())["run_id"] != ids[0]


def test_default_output_keeps_run_ids_and_configurations(short_runs, tmp_path):
    """A ``write`` run's configuration has no output key, so its run id is the one computed
    before output definitions existed (the five fields below), and stored runs still match."""
    out = tmp_path / "w"
    res = invoke("sweep", "--model", short_runs["neox"], "--prompts", 3, "--edge-scores", "none",
                 "--out", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert "output" not in config and "output" not in config["settings"]
    assert list(config["settings"]) == [f.name for f in fields(SweepSettings) if f.name != "output"]
    keys = ("model", "steps", "prompts", "ablation", "arch")
    blob = json.dumps({k: config[k] for k in keys}, sort_keys=True).encode()
    assert config["run_id"] == hashlib.sha256(blob).hexdigest()[:12]


def test_resid_output_is_a_run_of_its_own(short_runs, tmp_path):
    runs = {}
    for output in ("write", "resid"):
        out = tmp_path / output
        res = invoke("sweep", "--model", short_runs["gpt2"], "--prompts", 4, "--output", output,
                     "--edge-scores", "none", "--out", out)  # fmt: skip
        assert res.exit_code == 0, res.output
        runs[output] = read_sweep(out)
    resid = runs["resid"]
    assert resid.config["output"] == resid.config["settings"]["output"] == "resid"
    assert resid.run_id != runs["write"].run_id
    check_sweep(resid, "resid")  # the run id is that of its configuration
    # what was stored is the resid sweep of each checkpoint on the stored prompts
    for ref in list_checkpoints(str(short_runs["gpt2"])):
        weights = weights_from_bridge(load_checkpoint(ref))
        expected = sweep_checkpoint(weights, resid.prompts, output="resid").edges
        got = resid.edges[resid.edges.step == ref.step].drop(columns="step")
        pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, rtol=0, atol=1e-9)
    assert not np.allclose(resid.edges.similarity, runs["write"].edges.similarity)


def test_ingest_output_resid_stores_a_second_run(short_runs, tmp_path):
    store = tmp_path / "runs.lbdb"
    for output in ("write", "resid", "resid"):  # the second resid ingest resumes, writes nothing
        res = invoke("ingest", "--model", short_runs["neox"], "--prompts", 3, "--edge-scores",
                     "none", "--output", output, "--store", store)  # fmt: skip
        assert res.exit_code == 0, res.output
    assert "wrote 0 checkpoints, skipped 2" in res.stdout
    with open_store(str(store)) as db:
        ids = db.runs().run_id.tolist()
        assert len(ids) == 2
        assert sorted(db.run_config(i).get("output", "write") for i in ids) == ["resid", "write"]


@pytest.mark.parametrize("command", ["sweep", "ingest"])
def test_unknown_output_names_the_option_and_its_choices(short_runs, tmp_path, command):
    out = tmp_path / "out"
    target = ["--out", out] if command == "sweep" else ["--store", out]
    res = invoke(command, "--model", short_runs["gpt2"], "--output", "stream", *target)
    assert res.exit_code == 2
    errors = [ln for ln in res.stderr.splitlines() if "stream" in ln]
    assert len(errors) == 1, res.stderr
    assert all(word in errors[0] for word in ("'--output'", "'write'", "'resid'")), errors[0]
    assert not out.exists()


@pytest.fixture
def bad_inputs(short_runs, tmp_path):
    """Name → (extra arguments, a fragment the one-line error must contain)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    no_steps = tmp_path / "no-steps"
    (no_steps / "weights").mkdir(parents=True)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(short_runs["gpt2"], corrupt)
    weights = corrupt / "step250" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    big_ids = tmp_path / "ids.npy"
    np.save(big_ids, np.array([[1, 2, 3, 400], [1, 2, 3, 4]]))
    run = short_runs["gpt2"]
    return {
        "missing dir": (["--model", tmp_path / "nope"], "nope"),
        "empty dir": (["--model", empty], "empty"),
        "no step dirs": (["--model", no_steps], "step"),
        "corrupt checkpoint": (["--model", corrupt], "model.safetensors"),
        "hub model offline": (["--model", "EleutherAI/pythia-nonexistent", "--revisions", "1"],
                              "pythia-nonexistent"),
        "bad revisions": (["--model", run, "--revisions", "1000:oops"], "1000:oops"),
        "missing revision": (["--model", run, "--revisions", "step7"], "7"),
        "zero prompts": (["--model", run, "--prompts", 0], "--prompts 0"),
        "unknown task": (["--model", run, "--task", "sorting"], "sorting"),
        "unknown ablation": (["--model", run, "--ablation", "noise"], "noise"),
        "ids beyond vocab": (["--model", run, "--task", big_ids], "400"),
        "tiny memory budget": (["--model", run, "--memory-budget", 0.0001], "--memory-budget"),
        "resample of one prompt": (["--model", run, "--prompts", 1, "--ablation", "resample"],
                                   "at least 2"),
    }  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        "missing dir", "empty dir", "no step dirs", "corrupt checkpoint", "hub model offline",
        "bad revisions", "missing revision", "zero prompts", "unknown task", "unknown ablation",
        "ids beyond vocab", "tiny memory budget", "resample of one prompt",
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line(bad_inputs, tmp_path, monkeypatch, case):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args, fragment = bad_inputs[case]
    out = tmp_path / "out"
    res = invoke("sweep", *args, "--out", out)
    assert res.exit_code != 0
    # the progress bar may have started before the error; the error itself is one line, last
    lines = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("sweep:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in res.output
    assert not out.exists()  # nothing half-written


def test_debug_shows_the_traceback(tmp_path):
    res = CliRunner().invoke(main, ["--debug", "sweep", "--model", str(tmp_path / "x"), "--out",
                                    str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code != 0 and res.exception is not None
    assert "CircuitAtlasError" in type(res.exception).__name__


@pytest.mark.parametrize("command", ["sweep", "train-toy", "demo"])
def test_every_command_has_help_with_examples(command):
    res = invoke(command, "--help")
    assert res.exit_code == 0 and "Examples:" in res.output


@pytest.mark.parametrize("command", ["sweep", "ingest"])
def test_help_shows_the_output_option(command):
    text = " ".join(invoke(command, "--help").output.split())
    assert "--output [write|resid]" in text and "Example: --output resid" in text
