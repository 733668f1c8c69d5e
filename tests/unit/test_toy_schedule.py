"""The toy run's checkpoint schedule and its argument checks (no training)."""

from itertools import pairwise

import pytest

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.toy import (
    DEFAULT_CHECKPOINTS,
    DEFAULT_STEPS,
    checkpoint_steps,
    train_toy,
)

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
