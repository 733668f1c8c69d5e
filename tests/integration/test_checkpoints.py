"""Loading real (tiny, random) GPT-2 and GPT-NeoX checkpoints through the TransformerLens bridge."""

import shutil
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants as hub_constants
from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM
from transformers.utils import logging as hf_logging

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.checkpoints import CheckpointRef, list_checkpoints, load_checkpoint

VOCAB = 64


def gpt2_model() -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=VOCAB, n_positions=32, n_embd=16, n_layer=2, n_head=2, bos_token_id=0,
        eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config)


def neox_model() -> GPTNeoXForCausalLM:
    config = GPTNeoXConfig(
        vocab_size=VOCAB, max_position_embeddings=32, hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return GPTNeoXForCausalLM(config)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Local runs of step<N>/ checkpoints: GPT-2 (sequential), GPT-NeoX (parallel, rotary)."""
    root = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    for name, make in (("gpt2", gpt2_model), ("neox", neox_model)):
        for step in (0, 5):
            make().save_pretrained(root / name / f"step{step}")
    return {"gpt2": root / "gpt2", "neox": root / "neox"}


def reference_logits(step_dir: Path, tokens: torch.Tensor) -> torch.Tensor:
    cls = GPT2LMHeadModel if "gpt2" in str(step_dir) else GPTNeoXForCausalLM
    model = cls.from_pretrained(step_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        return model(tokens).logits


@pytest.mark.parametrize("arch", ["gpt2", "neox"])
def test_local_checkpoints_load_through_the_bridge(runs, arch, capfd):
    from transformer_lens.model_bridge import TransformerBridge

    refs = list_checkpoints(str(runs[arch]))
    assert [r.step for r in refs] == [0, 5]
    capfd.readouterr()
    bridges = [load_checkpoint(ref) for ref in refs]
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""  # no progress bars, warnings or log lines
    tokens = torch.tensor([[1, 5, 9, 2, 7, 7, 3]])
    outputs = []
    for ref, bridge in zip(refs, bridges, strict=True):
        assert isinstance(bridge, TransformerBridge)
        assert not bridge.training  # eval mode: dropout off, outputs reproducible
        assert bridge.cfg.n_layers == 2 and bridge.cfg.n_heads == 2 and bridge.cfg.d_vocab == VOCAB
        with torch.no_grad():
            logits = bridge(tokens)
            assert torch.equal(logits, bridge(tokens))
        torch.testing.assert_close(logits, reference_logits(ref.path, tokens), atol=1e-4, rtol=1e-4)
        outputs.append(logits)
    assert not torch.allclose(outputs[0], outputs[1])  # two different checkpoints


def test_loading_restores_progress_bar_setting(runs):
    before = hf_logging.is_progress_bar_enabled()
    load_checkpoint(list_checkpoints(str(runs["gpt2"]), "0")[0])
    assert hf_logging.is_progress_bar_enabled() == before


def broken_copy(runs: dict[str, Path], tmp_path: Path) -> Path:
    step = tmp_path / "run" / "step0"
    shutil.copytree(runs["gpt2"] / "step0", step)
    return step


def assert_load_fails(step: Path, needle: str) -> str:
    ref = list_checkpoints(str(step.parent))[0]
    with pytest.raises(CircuitAtlasError) as excinfo:
        load_checkpoint(ref)
    message = str(excinfo.value)
    assert "\n" not in message and needle in message and "--revisions" in message
    return message


def test_truncated_weights(runs, tmp_path):
    step = broken_copy(runs, tmp_path)
    weights = step / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    assert "truncated" in assert_load_fails(step, str(weights))


def test_garbage_weights(runs, tmp_path):
    step = broken_copy(runs, tmp_path)
    (step / "model.safetensors").write_bytes(b"\x05\x00" * 10)
    assert_load_fails(step, str(step / "model.safetensors"))


def test_garbage_config(runs, tmp_path):
    step = broken_copy(runs, tmp_path)
    (step / "config.json").write_text("{garbage")
    assert "JSON" in assert_load_fails(step, str(step / "config.json"))


def test_missing_weights(runs, tmp_path):
    step = broken_copy(runs, tmp_path)
    (step / "model.safetensors").unlink()
    assert "no weights file" in assert_load_fails(step, str(step))


def test_unloadable_config(runs, tmp_path):
    step = broken_copy(runs, tmp_path)
    (step / "config.json").write_text('{"model_type": "no-such-architecture"}')
    assert_load_fails(step, str(step))


def test_hub_offline_fails_at_once(monkeypatch):
    """With HF_HUB_OFFLINE=1 (as the Makefile sets) a hub checkpoint fails before any request."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ref = list_checkpoints("EleutherAI/pythia-14m", "step1000")[0]
    start = time.perf_counter()
    with pytest.raises(CircuitAtlasError) as excinfo:
        load_checkpoint(ref)
    assert time.perf_counter() - start < 5
    message = str(excinfo.value)
    assert "\n" not in message and "EleutherAI/pythia-14m" in message and "step<N>/" in message


def test_hub_unreachable_fails_at_once(monkeypatch):
    """Without the offline flag, one short probe answers: DNS fails here (404 with a network)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    ref = CheckpointRef(3, "circuitatlas-tests/no-such-model", None, "step3")
    start = time.perf_counter()
    with pytest.raises(CircuitAtlasError) as excinfo:
        load_checkpoint(ref)
    assert time.perf_counter() - start < 5
    message = str(excinfo.value)
    assert "\n" not in message and "circuitatlas-tests/no-such-model" in message
    assert "step<N>/" in message


def test_hub_revision_loads_from_the_local_cache(runs, tmp_path, monkeypatch):
    """A hub revision already in the Hugging Face cache loads offline, without a request."""
    repo = tmp_path / "hub" / "models--EleutherAI--pythia-14m"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "step1000").write_text(commit)
    shutil.copytree(runs["neox"] / "step5", repo / "snapshots" / commit)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bridge = load_checkpoint(list_checkpoints("EleutherAI/pythia-14m", "step1000")[0])
    tokens = torch.tensor([[3, 1, 4, 1, 5]])
    with torch.no_grad():
        expected = reference_logits(runs["neox"] / "step5", tokens)
        torch.testing.assert_close(bridge(tokens), expected, atol=1e-4, rtol=1e-4)
