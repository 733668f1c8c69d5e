"""The second synthetic task, ``successor``: its sweep prompts and its training rows."""

import math
from itertools import pairwise

import pytest
import torch

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.tasks import (
    ACCEPTED,
    NAMED_TASKS,
    SUCCESSOR,
    load_prompts,
    successor_cycle,
    successor_prompts,
    target_log_probs,
    task_metric,
)
from circuitatlas.ingest.toy import SHAPES, _batch, _loss, _successor_batch

VOCAB = 64


def successor_of(cycle: torch.Tensor) -> dict[int, int]:
    ids = cycle.tolist()
    return {a: ids[(i + 1) % len(ids)] for i, a in enumerate(ids)}


def test_cycle_leaves_out_the_special_ids():
    assert successor_cycle(VOCAB, 0).tolist() == list(range(1, 63))
    assert successor_cycle(VOCAB, None).tolist() == list(range(1, 63))
    assert 7 not in successor_cycle(VOCAB, 7).tolist()
    assert len(successor_cycle(50257, 50256)) == 50255  # GPT-2: BOS is the last id
    with pytest.raises(CircuitAtlasError, match="needs at least 2"):
        successor_cycle(3, 0)


def test_layout_with_bos():
    ps = successor_prompts(40, 20, VOCAB, 0, bos_token_id=0)
    assert ps.task == SUCCESSOR
    assert ps.tokens.shape == (40, 21) and ps.tokens.dtype == torch.int64
    assert (ps.tokens[:, 0] == 0).all()
    step = successor_of(successor_cycle(VOCAB, 0))
    for row in ps.tokens[:, 1:].tolist():
        assert all(step[a] == b for a, b in pairwise(row))
        assert len(set(row)) == len(row)  # no id repeats: nothing for induction to copy
    wraps = [row for row in ps.tokens[:, 1:].tolist() if 62 in row[:-1]]
    assert wraps and all(row[row.index(62) + 1] == 1 for row in wraps)  # 62 → 1, never the pad
    # scored: positions 1..19, each predicting the successor of its own token; 0 (the BOS) not
    assert ps.metric_mask[0].nonzero().flatten().tolist() == list(range(1, 20))
    assert (ps.metric_mask == ps.metric_mask[0]).all()
    assert not ps.metric_mask[:, -1].any()


def test_layout_without_bos():
    ps = successor_prompts(3, 5, VOCAB, 1, bos_token_id=None)
    assert ps.tokens.shape == (3, 5)
    assert ps.metric_mask[0].nonzero().flatten().tolist() == [0, 1, 2, 3]


def test_prompts_are_seeded():
    a = successor_prompts(8, 10, VOCAB, 7, 0)
    assert torch.equal(a.tokens, successor_prompts(8, 10, VOCAB, 7, 0).tokens)
    assert not torch.equal(a.tokens, successor_prompts(8, 10, VOCAB, 8, 0).tokens)
    assert a.to_config()["digest"] == successor_prompts(8, 10, VOCAB, 7, 0).to_config()["digest"]
    assert a.to_config()["run_len"] == 10 and a.to_config()["task"] == SUCCESSOR


def test_metric_positions_score_the_successor():
    """A model that puts all its mass on the successor of the current token scores 0, and a
    uniform one scores -ln(V): the metric reads exactly the counted positions."""
    ps = load_prompts(SUCCESSOR, 6, 21, VOCAB, 0, 0)
    step = successor_of(successor_cycle(VOCAB, 0))
    logits = torch.full((*ps.tokens.shape, VOCAB), -1e4)
    for i, row in enumerate(ps.tokens.tolist()):
        for t, token in enumerate(row):
            logits[i, t, step.get(token, 0)] = 0.0
    metric = task_metric(target_log_probs(logits, ps.tokens), ps.metric_mask)
    assert torch.allclose(metric, torch.zeros(6), atol=1e-4)
    uniform = task_metric(target_log_probs(torch.zeros_like(logits), ps.tokens), ps.metric_mask)
    assert torch.allclose(uniform, torch.full((6,), -torch.log(torch.tensor(64.0))))


def test_load_prompts_by_name():
    assert SUCCESSOR in NAMED_TASKS and "'successor'" in ACCEPTED
    assert load_prompts(SUCCESSOR, 4, 21, VOCAB, 0, 0).tokens.shape == (4, 21)
    assert load_prompts(SUCCESSOR, 4, 21, VOCAB, 0, None).tokens.shape == (4, 21)
    assert load_prompts(SUCCESSOR, 4, 3, VOCAB, 0, 0).metric_mask.sum() == 4


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((0, 21, VOCAB, 0, 0), "--prompts 0"),
        ((4, 2, VOCAB, 0, 0), "--seq-len 2 is too short for successor prompts: give at least 3"),
        ((4, 1, VOCAB, 0, None), "give at least 2"),
        ((4, 64, VOCAB, 0, 0), "would repeat ids"),
    ],
)
def test_bad_inputs(args, needle):
    with pytest.raises(CircuitAtlasError, match=needle) as excinfo:
        load_prompts(SUCCESSOR, *args)
    assert "\n" not in str(excinfo.value)


# --- training rows of the toy ---


def test_training_rows_count_through_the_cycle():
    settings = SHAPES["toy"].settings
    tokens, mask = _successor_batch(settings, 64, torch.Generator().manual_seed(0))
    step = successor_of(successor_cycle(settings.vocab_size, settings.start_token_id))
    assert (tokens[:, 0] == settings.start_token_id).all()
    for row, row_mask in zip(tokens.tolist(), mask.tolist(), strict=True):
        length = row.index(settings.pad_token_id) if settings.pad_token_id in row else len(row)
        body = row[1:length]
        assert all(step[a] == b for a, b in pairwise(body))
        assert len(set(body)) == len(body)
        # mask[t - 1] scores target t: every counted token after the first
        assert [t + 1 for t, m in enumerate(row_mask) if m] == list(range(2, length))
    lengths = (tokens != settings.pad_token_id).sum(dim=1)
    assert lengths.min() >= 1 + 2 * settings.seg_min
    assert lengths.max() <= 1 + settings.prefix_max + 2 * settings.seg_max


def test_a_mixed_batch_adds_a_quarter_of_successor_rows_at_a_quarter_weight():
    settings = SHAPES["pythia-14m"].settings
    assert settings.mix_share == 0.25
    gen = torch.Generator().manual_seed(3)
    tokens, mask, groups = _batch(settings, ("induction", "successor"), 32, gen)
    assert groups == [(slice(0, 32), 1.0), (slice(32, 40), 0.25)]
    assert tokens.shape[0] == 40 and mask.shape == (40, tokens.shape[1] - 1)
    assert not mask[tokens[:, 1:] == settings.pad_token_id].any()  # pads are never targets
    step = successor_of(successor_cycle(settings.vocab_size, settings.start_token_id))
    assert all(step[a] == b for a, b in tokens[32:, 1:3].tolist())
    alone, _, only = _batch(settings, ("induction",), 32, torch.Generator().manual_seed(3))
    assert only == [(slice(0, 32), 1.0)]
    assert torch.equal(alone, tokens[:32, : alone.shape[1]])  # the same induction rows


def test_mixture_loss_weights_each_task_mean():
    class Fixed(torch.nn.Module):
        """Logits that make every target's cross-entropy ``ln 2`` or ``ln 4`` by row."""

        config = type("Config", (), {"pad_token_id": 63})()

        def forward(self, input_ids, attention_mask):
            logits = torch.full((*input_ids.shape, 64), -1e9)
            logits[:2, :, :2] = 0.0  # rows 0-1: uniform over 2 ids
            logits[2:, :, :4] = 0.0  # row 2: uniform over 4 ids
            return type("Out", (), {"logits": logits})()

    tokens = torch.zeros(3, 4, dtype=torch.long)
    mask = torch.ones(3, 3, dtype=torch.bool)
    loss = _loss(Fixed(), tokens, mask, [(slice(0, 2), 1.0), (slice(2, 3), 0.25)])
    expected = (math.log(2) + 0.25 * math.log(4)) / 1.25
    assert loss.item() == pytest.approx(expected, rel=1e-5)
