"""The toy run's checkpoint schedules, shapes and argument checks (no training)."""

from itertools import pairwise

import pytest

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.toy import (
    DEFAULT_CHECKPOINTS,
    DEFAULT_SHAPE,
    DEFAULT_STEPS,
    SHAPES,
    ToySettings,
    checkpoint_steps,
    parse_tasks,
    pythia_checkpoint_steps,
    train_toy,
)
from circuitatlas.ingest.toy_shapes import get_shape

CASES = [(1, 2), (3, 2), (5, 6), (7, 4), (20, 20), (100, 12), (1200, 15), (2000, 16), (143000, 143)]


@pytest.mark.parametrize(("steps", "k"), CASES)
def test_schedule_is_k_distinct_sorted_steps_from_0_to_steps(steps, k):
    out = checkpoint_steps(steps, k)
    assert len(out) == k
    assert out[0] == 0
    assert out[-1] == steps
    assert all(a < b for a, b in pairwise(out))


@pytest.mark.parametrize(("steps", "k"), CASES)
def test_schedule_gaps_never_shrink_beyond_rounding(steps, k):
    out = checkpoint_steps(steps, k)
    gaps = [b - a for a, b in pairwise(out)]
    assert all(later >= earlier - 1 for earlier, later in pairwise(gaps))


def test_schedule_is_dense_early_then_even():
    out = checkpoint_steps(DEFAULT_STEPS, DEFAULT_CHECKPOINTS)
    assert out[1] <= 5  # log-spaced start, like Pythia's step1, step2, ...
    early = [s for s in out if s <= DEFAULT_STEPS // 10]
    assert len(early) >= DEFAULT_CHECKPOINTS // 4  # a tenth of the run holds a quarter or more
    late_gaps = {b - a for a, b in pairwise(out[-6:])}
    assert max(late_gaps) - min(late_gaps) <= 1  # evenly spaced at the end


def test_schedule_covers_every_step_when_k_is_steps_plus_one():
    assert checkpoint_steps(16, 17) == list(range(17))


@pytest.mark.parametrize(("steps", "k"), [(10, 1), (10, 12), (0, 2)])
def test_schedule_rejects_impossible_requests(steps, k):
    with pytest.raises(CircuitAtlasError, match="checkpoints"):
        checkpoint_steps(steps, k)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps must be at least 1"),
        ({"steps": 10, "checkpoints": 1}, "checkpoints must be between 2 and"),
        ({"steps": 10, "checkpoints": 12}, "checkpoints must be between 2 and"),
    ],
)
def test_train_toy_rejects_bad_numbers(tmp_path, kwargs, match):
    with pytest.raises(CircuitAtlasError, match=match):
        train_toy(tmp_path / "run", progress=False, **kwargs)
    assert not (tmp_path / "run").exists()


def test_train_toy_rejects_a_file_as_output(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    with pytest.raises(CircuitAtlasError, match="is a file"):
        train_toy(target, steps=2, checkpoints=2, progress=False)
    assert target.read_text() == "keep me"


def test_train_toy_rejects_a_foreign_non_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(CircuitAtlasError, match="not empty"):
        train_toy(tmp_path, steps=2, checkpoints=2, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# --- Pythia's revision spacing (the pythia-14m shape) ---

PYTHIA_STEPS = [143, 144, 150, 211, 212, 500, 800, 1000, 1200, 2000, 5000, 143000, 10**7]


def test_pythia_schedule_is_143_distinct_sorted_steps_for_any_steps_from_143():
    for steps in [*range(143, 3001), *PYTHIA_STEPS]:
        out = pythia_checkpoint_steps(steps)
        assert len(out) == 143, steps
        assert out[0] == 0 and out[-1] == steps, steps
        assert all(a < b for a, b in pairwise(out)), steps


def test_pythia_schedule_reproduces_pythias_revisions():
    revisions = [0] + [2**j for j in range(10)] + list(range(1000, 143001, 1000))
    assert pythia_checkpoint_steps(143000, 154) == revisions


@pytest.mark.parametrize("steps", PYTHIA_STEPS)
def test_pythia_schedule_is_powers_of_two_then_even(steps):
    out = pythia_checkpoint_steps(steps)
    n_log = next(i for i in range(1, len(out)) if out[i] != 2 ** (i - 1))
    assert n_log >= 2  # 0, 1, ...
    gaps = [b - a for a, b in pairwise(out)]
    even_gaps = gaps[n_log:]  # between the steps after the powers of two
    assert max(even_gaps) - min(even_gaps) <= 1  # evenly spaced up to rounding
    assert all(later >= earlier - 1 for earlier, later in pairwise(gaps))  # dense early


def test_pythia_schedule_of_the_default_run_is_dense_early():
    pythia = SHAPES["pythia-14m"]
    out = pythia.schedule(pythia.steps, pythia.checkpoints)
    assert len(out) == 143 and out[:4] == [0, 1, 2, 4]
    assert len([s for s in out if s <= pythia.steps // 10]) >= 14


def test_pythia_schedule_with_fewer_checkpoints():
    # 512 is at most 2/3 of the one even step (1000)
    assert pythia_checkpoint_steps(1000, 12) == [0] + [2**j for j in range(10)] + [1000]
    assert pythia_checkpoint_steps(1000, 6) == [0, 1, 2, 4, 8, 1000]
    assert pythia_checkpoint_steps(10, 11) == list(range(11))
    assert pythia_checkpoint_steps(5, 2) == [0, 5]


@pytest.mark.parametrize(("steps", "k"), [(141, 143), (10, 1), (0, 2)])
def test_pythia_schedule_rejects_impossible_requests(steps, k):
    with pytest.raises(CircuitAtlasError, match="checkpoints"):
        pythia_checkpoint_steps(steps, k)


# --- shapes, block styles and tasks ---


def test_shapes_and_their_defaults():
    assert DEFAULT_SHAPE == "toy" and list(SHAPES) == ["toy", "pythia-14m"]
    toy = SHAPES["toy"]
    assert (toy.steps, toy.checkpoints) == (DEFAULT_STEPS, DEFAULT_CHECKPOINTS)
    assert toy.schedule is checkpoint_steps and toy.settings == ToySettings()
    s = SHAPES["pythia-14m"].settings
    assert (s.arch, s.n_layer, s.d_model, s.n_head, s.n_inner) == ("neox", 6, 128, 4, 512)
    assert (s.initializer_range, s.tie_word_embeddings, s.vocab_size) == (0.02, False, 64)
    assert (s.lr, s.batch_size) == (1e-3, 32)


def test_unknown_shape_lists_the_shapes():
    with pytest.raises(CircuitAtlasError, match="choose one of toy, pythia-14m"):
        get_shape("pythia-70m")


def test_block_style_of_each_shape():
    toy, pythia = SHAPES["toy"], SHAPES["pythia-14m"]
    assert toy.settings_for(None).arch == "gpt2"
    assert toy.settings_for("neox-seq").arch == "neox-seq"
    assert pythia.settings_for(None) == pythia.settings_for("neox") == pythia.settings
    for arch in ("gpt2", "neox-seq"):
        with pytest.raises(CircuitAtlasError, match=f"--arch {arch} conflicts with --shape"):
            pythia.settings_for(arch)
    with pytest.raises(CircuitAtlasError, match="choose one of gpt2, neox, neox-seq"):
        toy.settings_for("llama")


def test_tasks_are_parsed_in_a_fixed_order():
    assert parse_tasks("induction") == ("induction",)
    assert parse_tasks("successor, induction") == parse_tasks(["induction", "successor"])
    assert parse_tasks("induction,successor") == ("induction", "successor")
    for bad, needle in [("copy", "'copy'"), ("induction,induction", "once"), ("", "unknown")]:
        with pytest.raises(CircuitAtlasError, match=needle):
            parse_tasks(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape": "big"}, "unknown shape"),
        ({"shape": "pythia-14m", "arch": "gpt2"}, "conflicts with --shape"),
        ({"tasks": "induction,copy"}, "unknown task"),
        ({"shape": "pythia-14m", "steps": 100}, "checkpoints must be between 2 and"),
    ],
)
def test_train_toy_rejects_bad_shapes_and_tasks_writing_nothing(tmp_path, kwargs, match):
    with pytest.raises(CircuitAtlasError, match=match):
        train_toy(tmp_path / "run", progress=False, **kwargs)
    assert list(tmp_path.iterdir()) == []
