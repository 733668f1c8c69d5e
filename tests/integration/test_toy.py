"""The toy training run: checkpoints, log, the induction phase change and its heads.

The slow tests train the default run once per seed (about a minute each on 2 CPU cores).
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from toy_training import drop_stats, drop_window
from transformers import AutoModelForCausalLM

from circuitatlas.analytics.analyze import analyze
from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.pipeline import SweepSettings, plan_run
from circuitatlas.ingest.toy import (
    CONFIG_NAME,
    DEFAULT_CHECKPOINTS,
    DEFAULT_STEPS,
    LOG_COLUMNS,
    LOG_EVERY,
    LOG_NAME,
    checkpoint_steps,
    toy_head_scores,
    train_toy,
)
from circuitatlas.store import open_store
from circuitatlas.store.ingest import ingest_plan

SEEDS = [0, 1, 2]
SCORE_THRESHOLD = 0.3


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def toy_run(request, default_toy_runs):
    return request.param, *default_toy_runs(request.param)


@pytest.mark.slow
def test_checkpoints_are_loadable_step_dirs(toy_run, capfd):
    _, out, _ = toy_run
    steps = checkpoint_steps(DEFAULT_STEPS, DEFAULT_CHECKPOINTS)
    assert sorted(p.name for p in out.glob("step*")) == sorted(f"step{s}" for s in steps)
    capfd.readouterr()
    for step in steps:
        model = AutoModelForCausalLM.from_pretrained(out / f"step{step}")
        cfg = model.config
        assert cfg.bos_token_id == 0
        assert 0 <= cfg.pad_token_id < cfg.vocab_size
        assert 0 <= cfg.eos_token_id < cfg.vocab_size
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[0, 5, 9, 2, 5, 9, 2]])).logits
    assert logits.shape == (1, 7, cfg.vocab_size)
    assert "warn" not in capfd.readouterr().err.lower()


@pytest.mark.slow
def test_log_and_config_are_written(toy_run):
    seed, out, log = toy_run
    on_disk = pd.read_csv(out / LOG_NAME)
    assert list(on_disk.columns) == LOG_COLUMNS
    pd.testing.assert_frame_equal(on_disk, log, check_dtype=False)
    logged = set(on_disk["step"])
    assert set(checkpoint_steps(DEFAULT_STEPS, DEFAULT_CHECKPOINTS)) <= logged
    assert set(range(0, DEFAULT_STEPS + 1, LOG_EVERY)) <= logged
    assert on_disk["wall_time_s"].is_monotonic_increasing
    config = json.loads((out / CONFIG_NAME).read_text())
    assert config["seed"] == seed
    assert config["steps"] == DEFAULT_STEPS
    assert config["start_token_id"] == 0
    assert {"n_layer", "n_head", "d_model", "vocab_size", "seg_max", "batch_size"} <= set(config)


@pytest.mark.slow
def test_icl_loss_drops_sharply(toy_run):
    _, _, log = toy_run
    stats = drop_stats(log)
    assert stats["early"] > 3.5, stats  # starts near chance (ln 62 = 4.13)
    assert stats["late"] < 0.6, stats  # ends with the repeat mostly predicted
    assert stats["drop"] > 3.0, stats
    # a third of the fall or more within a sixth of the run: twice a steady decline's share
    assert stats["steepest"] >= 1 / 3, stats
    assert stats["start"] >= 200, stats
    assert stats["end"] <= 900, stats


@pytest.mark.slow
def test_last_checkpoint_has_previous_token_and_induction_heads(toy_run):
    _, out, _ = toy_run
    prev, ind = toy_head_scores(out / f"step{DEFAULT_STEPS}")
    assert prev.shape == ind.shape == (2, 4)
    assert prev[0].max() >= SCORE_THRESHOLD, prev
    assert ind[1].max() >= SCORE_THRESHOLD, ind


@pytest.mark.slow
def test_analysis_finds_the_phase_change_where_the_loss_drops(toy_run, tmp_path):
    """At τ 0.7 on total effects (the defaults), a phase boundary and a reconfiguration event
    fall in the window where the loss on the repeat drops (``drop_window``). A boundary or event
    at step s counts when the change it marks, between the previous checkpoint and s, overlaps
    the window. The boundary holds for every seed; the event is asserted for the default run
    (seed 0) only: in seed 1 no previous-token head's influence crosses τ 0.7, the spreaders
    stay ``input`` alone and no checkpoint's role stability falls below 0.5."""
    seed, out, log = toy_run
    start, end = drop_window(log)
    plan = plan_run(str(out), None, SweepSettings())
    with open_store(tmp_path / "toy.lbdb", writable=True) as store:
        ingest_plan(store, plan, progress=False)
        result = analyze(store, plan.run_id, 0.7)
    steps = result.checkpoints["step"].tolist()

    def in_window(step):
        before = steps[steps.index(step) - 1]
        return before < end and step > start

    window = (start, end, result.summary())
    assert any(in_window(b) for b in result.phases.boundaries), window
    if seed == 0:
        assert any(in_window(s) for s in result.reconfigurations), window


@pytest.mark.slow
def test_first_checkpoint_has_neither(toy_run):
    _, out, _ = toy_run
    prev, ind = toy_head_scores(out / "step0")
    assert prev.max() < SCORE_THRESHOLD
    assert ind.max() < SCORE_THRESHOLD


def test_short_run_is_reproducible_and_replaces_a_previous_run(tmp_path):
    out = tmp_path / "run"
    first = train_toy(out, steps=20, checkpoints=3, seed=7, progress=False)
    (out / "step20" / "config.json").write_text("{}")  # damage it: the rerun must replace it
    second = train_toy(out, steps=20, checkpoints=3, seed=7, progress=False)
    cols = ["step", "train_loss", "icl_loss"]
    pd.testing.assert_frame_equal(first[cols], second[cols])
    names = [CONFIG_NAME, LOG_NAME] + [f"step{s}" for s in checkpoint_steps(20, 3)]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    AutoModelForCausalLM.from_pretrained(out / "step20")
    assert not list(tmp_path.glob(".run.*"))  # no temporary directory left beside it
    other = train_toy(tmp_path / "other", steps=20, checkpoints=3, seed=8, progress=False)
    assert not np.allclose(other["train_loss"], second["train_loss"])


def test_failed_run_leaves_nothing(tmp_path, monkeypatch):
    import circuitatlas.ingest.toy as toy

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(toy, "_train", broken)
    with pytest.raises(RuntimeError, match="boom"):
        train_toy(tmp_path / "run", steps=5, checkpoints=2, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_checkpoint_count_raises(tmp_path):
    with pytest.raises(CircuitAtlasError):
        train_toy(tmp_path / "run", steps=3, checkpoints=5, progress=False)
