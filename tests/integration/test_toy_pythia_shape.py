"""The Pythia-14M-shaped toy run (``train-toy --shape pythia-14m``) and the second task.

A short run checks the layout, that the sweep reads it for both tasks, and the CLI's bad input.
The slow tests train the default run of seed 0 (800 steps, 143 checkpoints: about 4 to 5
minutes on 2 CPU cores) and check its induction phase change, and a shortened mixture run
(induction + successor) for both tasks' metrics. ``CIRCUITATLAS_PYTHIA_SEEDS=0,1,2`` checks the
default run of each listed seed instead of seed 0 alone.
"""

import json
import os

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from toy_training import drop_stats
from transformers import AutoModelForCausalLM

from circuitatlas.cli import main
from circuitatlas.ingest.tasks import successor_cycle
from circuitatlas.ingest.toy import (
    CONFIG_NAME,
    LOG_NAME,
    SHAPES,
    pythia_checkpoint_steps,
    toy_head_scores,
    train_toy,
)

PYTHIA = SHAPES["pythia-14m"]
SEEDS = [int(s) for s in os.environ.get("CIRCUITATLAS_PYTHIA_SEEDS", "0").split(",")]
SCORE_THRESHOLD = 0.3
CHANCE = -float(torch.log(torch.tensor(62.0)))  # log-prob of a uniform guess among the tokens
SHORT_STEPS, SHORT_CHECKPOINTS = 40, 6
MIX_STEPS = 600  # measured: both tasks learned by then (the induction phase change ~350-500)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(res) -> str:
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """A short mixture run of the pythia-14m shape, trained through the CLI."""
    out = tmp_path_factory.mktemp("pythia-short") / "run"
    res = invoke(
        "train-toy", "--out", out, "--shape", "pythia-14m", "--steps", SHORT_STEPS,
        "--checkpoints", SHORT_CHECKPOINTS, "--tasks", "induction,successor",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "successor loss" in res.stdout
    return out


def sweep_metric(run, tmp_path, task, *extra) -> pd.DataFrame:
    """The checkpoints frame (step, loss, metric) of ``circuitatlas sweep --task task``."""
    out = tmp_path / f"sweep-{task}"
    res = invoke(
        "sweep", "--model", run, "--out", out, "--task", task, "--prompts", 8, "--device", "cpu",
        *extra,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["prompts"]["task"] == task
    return pd.read_parquet(out / "checkpoints.parquet")


def test_short_run_is_a_pythia_shaped_neox(short_run):
    steps = pythia_checkpoint_steps(SHORT_STEPS, SHORT_CHECKPOINTS)
    assert sorted(p.name for p in short_run.glob("step*")) == sorted(f"step{s}" for s in steps)
    cfg = AutoModelForCausalLM.from_pretrained(short_run / f"step{SHORT_STEPS}").config
    assert cfg.model_type == "gpt_neox"
    shape = (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads)
    assert shape == (6, 128, 4) and cfg.intermediate_size == 512
    assert cfg.rope_parameters["partial_rotary_factor"] == 0.25 and cfg.use_parallel_residual
    assert cfg.initializer_range == 0.02 and not cfg.tie_word_embeddings
    assert (cfg.vocab_size, cfg.bos_token_id, cfg.pad_token_id) == (64, 0, 63)
    config = json.loads((short_run / CONFIG_NAME).read_text())
    assert config["shape"] == "pythia-14m" and config["tasks"] == ["induction", "successor"]
    assert config["checkpoint_steps"] == steps and config["batch_size"] == 32
    log = pd.read_csv(short_run / LOG_NAME)
    assert list(log.columns) == ["step", "train_loss", "icl_loss", "successor_loss", "wall_time_s"]


def test_short_run_sweeps_for_both_tasks(short_run, tmp_path):
    induction = sweep_metric(short_run, tmp_path, "induction", "--revisions", SHORT_STEPS)
    assert induction["step"].tolist() == [SHORT_STEPS]
    comps = pd.read_parquet(tmp_path / "sweep-induction" / "components.parquet")
    assert len(comps) == 1 + 6 * 4 + 6 + 1  # input, 24 heads, 6 MLPs, logits
    edges = pd.read_parquet(tmp_path / "sweep-induction" / "edges.parquet")
    assert edges["patch_effect"].notna().all()
    successor = sweep_metric(short_run, tmp_path, "successor", "--edge-scores", "none")
    assert sorted(successor["step"]) == pythia_checkpoint_steps(SHORT_STEPS, SHORT_CHECKPOINTS)
    first, last = successor.sort_values("step")["metric"].iloc[[0, -1]]
    assert first < CHANCE + 0.5 < last  # 40 steps already lift the counting task off chance


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--shape", "pythia-70m"], "--shape pythia-70m: unknown shape; choose one of toy, "),
        (["--shape", "pythia-14m", "--arch", "gpt2"], "--arch gpt2 conflicts with --shape"),
        (["--shape", "pythia-14m", "--arch", "neox-seq"], "leave --arch out or give --arch neox"),
        (["--arch", "llama"], "--arch llama: choose one of gpt2, neox, neox-seq"),
        (["--tasks", "induction,copy"], "unknown task 'copy'; choose one or more of induction"),
        (["--shape", "pythia-14m", "--steps", "100"], "checkpoints must be between 2 and"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, needle):
    res = invoke("train-toy", "--out", tmp_path / "run", *args)
    assert needle in one_line_error(res)
    assert list(tmp_path.iterdir()) == []


def test_the_shapes_own_arch_is_accepted(tmp_path):
    res = invoke(
        "train-toy", "--out", tmp_path / "run", "--shape", "pythia-14m", "--arch", "neox",
        "--steps", 2, "--checkpoints", 2,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "run" / CONFIG_NAME).read_text())["arch"] == "neox"


def test_help_states_each_shapes_defaults():
    wide = {"terminal_width": 1000, "max_content_width": 1000}  # no line breaks inside names
    text = CliRunner().invoke(main, ["train-toy", "--help"], **wide).output
    for shape in SHAPES.values():
        assert f"{shape.name} {shape.steps}" in text and f"{shape.name} {shape.checkpoints}" in text


def test_successor_rows_use_the_task_cycle():
    """Training rows and sweep prompts count through the same cycle (the task's one definition)."""
    s = PYTHIA.settings
    assert successor_cycle(s.vocab_size, s.start_token_id).tolist() == list(
        range(1, s.vocab_size - 1)
    )


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def default_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"pythia{request.param}") / "run"
    return out, train_toy(out, seed=request.param, shape="pythia-14m", progress=False)


@pytest.mark.slow
def test_default_run_has_143_checkpoints(default_run):
    out, log = default_run
    steps = pythia_checkpoint_steps(PYTHIA.steps)
    assert sorted(int(p.name[4:]) for p in out.glob("step*")) == steps
    assert set(steps) <= set(log["step"])


@pytest.mark.slow
def test_default_run_loss_on_the_repeat_drops_sharply(default_run):
    _, log = default_run
    stats = drop_stats(log, window=PYTHIA.steps // 6)
    assert stats["early"] > 3.5, stats  # starts near chance (ln 62 = 4.13)
    assert stats["late"] < 0.6, stats
    assert stats["steepest"] >= 1 / 3, stats  # a third of the fall within a sixth of the run


@pytest.mark.slow
def test_default_run_forms_previous_token_and_induction_heads(default_run):
    out, _ = default_run
    prev, ind = toy_head_scores(out / "step0")
    assert prev.max() < SCORE_THRESHOLD and ind.max() < SCORE_THRESHOLD
    prev, ind = toy_head_scores(out / f"step{PYTHIA.steps}")
    assert prev.shape == ind.shape == (6, 4)
    assert prev[:2].max() >= SCORE_THRESHOLD, prev  # a previous-token head in layer 0 or 1
    assert ind[1:].max() >= SCORE_THRESHOLD, ind  # an induction head after layer 0


@pytest.mark.slow
def test_a_mixture_run_learns_both_tasks(tmp_path):
    out = tmp_path / "mix"
    train_toy(
        out, steps=MIX_STEPS, checkpoints=8, shape="pythia-14m",
        tasks=("induction", "successor"), progress=False,
    )  # fmt: skip
    for task in ("induction", "successor"):
        frame = sweep_metric(out, tmp_path, task, "--revisions", f"0,{MIX_STEPS}", "--edge-scores",
                             "none").set_index("step")["metric"]  # fmt: skip
        assert frame[0] < CHANCE + 0.3, (task, frame)
        assert frame[MIX_STEPS] > -1.0, (task, frame)  # most of the mass on the right token
