"""Prompt sets: the induction task, prompt files and the task metric."""

import json
import math

import numpy as np
import pytest
import torch

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.tasks import (
    induction_prompts,
    load_prompts,
    target_log_probs,
    task_metric,
)

VOCAB = 50


def load(task, n_prompts=100, vocab_size=VOCAB, tokenizer=None, bos=None, seq_len=11):
    return load_prompts(task, n_prompts, seq_len, vocab_size, 0, bos, tokenizer)


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(CircuitAtlasError) as excinfo:
        fn(*args, **kwargs)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --- induction ---


def test_induction_layout_with_bos():
    ps = induction_prompts(8, 5, VOCAB, 0, bos_token_id=0)
    assert ps.tokens.shape == (8, 11) and ps.tokens.dtype == torch.int64
    assert (ps.tokens[:, 0] == 0).all()
    assert torch.equal(ps.tokens[:, 1:6], ps.tokens[:, 6:])
    seg = ps.tokens[:, 1:6]
    assert (seg != 0).all() and (seg < VOCAB).all()
    assert all(len(set(row.tolist())) == 5 for row in seg)
    # scored: positions 6..9 predict the repeated tokens 7..10; 5 (predicts the first repeat) not
    assert ps.metric_mask.dtype == torch.bool
    assert ps.metric_mask[0].nonzero().flatten().tolist() == [6, 7, 8, 9]
    assert (ps.metric_mask == ps.metric_mask[0]).all()
    assert not ps.metric_mask[:, -1].any()


def test_induction_without_bos():
    ps = induction_prompts(3, 4, VOCAB, 1, bos_token_id=None)
    assert ps.tokens.shape == (3, 8)
    assert torch.equal(ps.tokens[:, :4], ps.tokens[:, 4:])
    assert ps.metric_mask[0].nonzero().flatten().tolist() == [4, 5, 6]


def test_induction_is_seeded():
    a = induction_prompts(4, 6, VOCAB, 7, 0)
    assert torch.equal(a.tokens, induction_prompts(4, 6, VOCAB, 7, 0).tokens)
    assert not torch.equal(a.tokens, induction_prompts(4, 6, VOCAB, 8, 0).tokens)
    assert len({tuple(row.tolist()) for row in a.tokens}) == 4


def test_induction_config():
    config = induction_prompts(4, 6, VOCAB, 7, 0).to_config()
    json.dumps(config)
    assert config["task"] == "induction" and config["n_prompts"] == 4 and config["seq_len"] == 13
    assert config["n_scored"] == 4 * 5 and config["seed"] == 7 and config["seg_len"] == 6
    other = induction_prompts(4, 6, VOCAB, 8, 0).to_config()
    assert other["digest"] != config["digest"]


def test_induction_bad_inputs():
    assert error_of(induction_prompts, 0, 5, VOCAB, 0, 0) == "--prompts 0: give at least 1 prompt"
    assert "at least 2" in error_of(induction_prompts, 2, 1, VOCAB, 0, 0)
    assert "distinct ids" in error_of(induction_prompts, 2, 10, 10, 0, 0)
    assert "50256" in error_of(induction_prompts, 2, 4, VOCAB, 0, 50256)
    # exactly enough ids besides BOS is fine
    assert induction_prompts(2, 9, 10, 0, 0).tokens.shape == (2, 19)


def test_load_induction_seq_len():
    assert load("induction", 3, bos=0, seq_len=11).tokens.shape == (3, 11)
    assert load("induction", 3, bos=0, seq_len=12).tokens.shape == (3, 11)
    assert load("induction", 3, bos=None, seq_len=12).tokens.shape == (3, 12)
    assert "--seq-len 4" in error_of(load, "induction", 3, bos=0, seq_len=4)
    assert error_of(load, "induction", 0) == "--prompts 0: give at least 1 prompt"


def test_unknown_task_and_missing_file(tmp_path):
    assert "'induction', 'successor'" in error_of(load, "copying")
    assert "'induction'" in error_of(load, str(tmp_path / "prompts.csv"))
    missing = str(tmp_path / "nope.jsonl")
    assert missing in error_of(load, missing) and "no such file" in error_of(load, missing)


# --- token-id files ---


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_jsonl_positions(tmp_path):
    task = write_jsonl(
        tmp_path / "p.jsonl",
        [{"tokens": [1, 2, 3, 4], "positions": [1, 2]}, {"tokens": [5, 6, 7, 8]}, [9, 8, 7, 6]],
    )
    ps = load(task)
    assert ps.task == task and ps.tokens.tolist()[2] == [9, 8, 7, 6]
    assert ps.metric_mask.tolist() == [
        [False, True, True, False],
        [True, True, True, False],
        [True, True, True, False],
    ]
    assert load(task, n_prompts=2).tokens.shape == (2, 4)


def test_jsonl_defaults_and_blank_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"tokens": [1, 2, 3]}\n\n{"tokens": [3, 2, 1]}\n')
    ps = load(str(path))
    assert ps.tokens.shape == (2, 3) and ps.metric_mask[:, :2].all()


def test_jsonl_unequal_lengths(tmp_path):
    task = write_jsonl(tmp_path / "p.jsonl", [[1, 2, 3], [1, 2, 3], [1, 2, 3, 4, 5]])
    message = error_of(load, task)
    assert task in message
    assert (
        "3 tokens: 2 prompts from line 1" in message and "5 tokens: 1 prompt from line 3" in message
    )
    # the first N prompts are taken before the check
    assert load(task, n_prompts=2).tokens.shape == (2, 3)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", ":1: not JSON"),
        ('{"tokens": [1, "a"]}', "'tokens' must be a list of integers"),
        ('{"tokens": [1.5, 2]}', "'tokens' must be a list of integers"),
        ('{"positions": [0]}', "'tokens' must be a list of integers"),
        ('{"tokens": [1, 2, 3], "positions": [true]}', "'positions' must be a list"),
        ('{"tokens": [1, 2, 3], "positions": [2]}', "position 2 out of range 0..1"),
        ('{"tokens": [1, 2, 3], "positions": []}', "prompt 0 has no scored position"),
        ('{"tokens": [1]}', "at least 2 tokens"),
        ("", "no prompts"),
    ],
)
def test_jsonl_bad_lines(tmp_path, line, needle):
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n")
    message = error_of(load, str(path))
    assert needle in message and str(path) in message


@pytest.mark.parametrize(("ids", "bad"), [([1, 2, VOCAB], VOCAB), ([1, -4, 2], -4)])
def test_ids_outside_vocabulary(tmp_path, ids, bad):
    task = write_jsonl(tmp_path / "p.jsonl", [ids])
    message = error_of(load, task)
    assert task in message and f"token id {bad}" in message and f"vocabulary of {VOCAB}" in message


def test_unreadable_text_encoding(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert str(path) in error_of(load, str(path))


def test_pt_formats(tmp_path):
    tokens = torch.randint(0, VOCAB, (5, 6))
    torch.save(tokens, tmp_path / "bare.pt")
    ps = load(str(tmp_path / "bare.pt"), n_prompts=3)
    assert torch.equal(ps.tokens, tokens[:3]) and ps.metric_mask.sum() == 3 * 5
    mask = torch.zeros(5, 6, dtype=torch.bool)
    mask[:, 2] = True
    torch.save({"tokens": tokens, "metric_mask": mask}, tmp_path / "dict.pt")
    ps = load(str(tmp_path / "dict.pt"))
    assert torch.equal(ps.metric_mask, mask)


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        (torch.rand(3, 4), "integer token ids"),
        (torch.arange(4), "[n_prompts, seq_len]"),
        ({"ids": torch.arange(4)}, "dict with 'tokens'"),
        ({"tokens": torch.ones(2, 3, dtype=torch.long), "metric_mask": torch.ones(2, 3)}, "bool"),
        (
            {"tokens": torch.ones(2, 3, dtype=torch.long), "metric_mask": torch.ones(2, 3) > 0},
            "last position",
        ),
    ],
)
def test_pt_bad_contents(tmp_path, obj, needle):
    path = tmp_path / "p.pt"
    torch.save(obj, path)
    assert needle in error_of(load, str(path))


def test_pt_garbage(tmp_path):
    path = tmp_path / "p.pt"
    path.write_bytes(b"not a torch file")
    message = error_of(load, str(path))
    assert str(path) in message and "torch.load" in message


def test_npy(tmp_path):
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    np.save(tmp_path / "p.npy", array)
    ps = load(str(tmp_path / "p.npy"))
    assert ps.tokens.dtype == torch.int64 and ps.tokens.tolist() == array.tolist()
    assert ps.metric_mask[:, :3].all() and not ps.metric_mask[:, 3].any()
    np.save(tmp_path / "f.npy", array.astype(np.float32))
    assert "float32" in error_of(load, str(tmp_path / "f.npy"))
    np.save(tmp_path / "big.npy", array + 100)
    assert "token id 111" in error_of(load, str(tmp_path / "big.npy"))
    truncated = tmp_path / "t.npy"
    truncated.write_bytes((tmp_path / "p.npy").read_bytes()[:100])
    assert "numpy.load" in error_of(load, str(truncated))


def test_config_digest_follows_file_content(tmp_path):
    a = load(write_jsonl(tmp_path / "a.jsonl", [[1, 2, 3]])).to_config()
    b = load(write_jsonl(tmp_path / "b.jsonl", [[1, 2, 4]])).to_config()
    assert a["digest"] != b["digest"] and a["n_scored"] == 2 and a["seq_len"] == 3
    json.dumps(a)


# --- text prompts ---


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<bos>", "<unk>", "the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    out = tmp_path_factory.mktemp("tokenizer")
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", unk_token="<unk>"
    ).save_pretrained(out)
    return str(out)


def test_text_prompts(tmp_path, tokenizer_dir):
    path = tmp_path / "p.txt"
    path.write_text("the cat sat\n\na dog ran\nthe mat\n")
    ps = load(str(path), n_prompts=2, tokenizer=tokenizer_dir, bos=0)
    assert ps.tokens.tolist() == [[0, 2, 3, 4], [0, 7, 8, 9]]
    assert ps.metric_mask[:, :3].all() and not ps.metric_mask[:, 3].any()
    assert ps.to_config()["tokenizer"] == tokenizer_dir
    assert load(str(path), n_prompts=1, tokenizer=tokenizer_dir).tokens.tolist() == [[2, 3, 4]]


def test_text_unequal_lengths(tmp_path, tokenizer_dir):
    path = tmp_path / "p.txt"
    path.write_text("the cat sat\na dog ran\nthe mat\n")
    message = error_of(load, str(path), tokenizer=tokenizer_dir)
    assert (
        "3 tokens: 2 prompts from line 1" in message and "2 tokens: 1 prompt from line 3" in message
    )
    assert "equal token length" in message


def test_text_needs_a_tokenizer(tmp_path, tokenizer_dir):
    path = tmp_path / "p.txt"
    path.write_text("the cat sat\n")
    assert "--tokenizer DIR" in error_of(load, str(path))
    assert "no such directory" in error_of(load, str(path), tokenizer=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    assert "cannot load a tokenizer" in error_of(load, str(path), tokenizer=str(tmp_path / "empty"))
    assert "vocabulary of 3" in error_of(load, str(path), tokenizer=tokenizer_dir, vocab_size=3)


# --- metric ---


def test_task_metric_means_scored_positions():
    log_probs = torch.tensor([[-1.0, -2.0, -float("inf"), 0.0], [-3.0, -5.0, -7.0, 0.0]])
    mask = torch.tensor([[True, True, False, False], [False, False, True, False]])
    assert task_metric(log_probs, mask).tolist() == [-1.5, -7.0]
    assert task_metric(log_probs[:, :-1], mask).tolist() == [-1.5, -7.0]
    assert math.isnan(task_metric(log_probs, torch.zeros_like(mask))[0])
    with pytest.raises(ValueError):
        task_metric(log_probs[:, :2], mask)


def test_target_log_probs_aligns_with_mask():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, VOCAB)
    tokens = torch.randint(0, VOCAB, (2, 5))
    out = target_log_probs(logits, tokens)
    assert out.shape == (2, 5) and (out[:, -1] == 0).all()
    expected = torch.log_softmax(logits[1, 2], -1)[tokens[1, 3]]
    assert torch.isclose(out[1, 2], expected)
