"""The output definition in a run configuration: absent for ``write``, its own id for ``resid``."""

import hashlib
import json
from dataclasses import asdict

from circuitatlas.ingest.contract import SweepSettings
from circuitatlas.ingest.pipeline import output_of, run_id_of, settings_config

CONFIG = {
    "model": "runs/toy",
    "steps": [0, 250],
    "prompts": {"task": "induction", "n_prompts": 4, "seq_len": 21, "seed": 0},
    "ablation": "zero",
    "arch": {"arch": "gpt2", "parallel_blocks": False, "n_layers": 2, "n_heads": 4},
}


def id_before_outputs(config: dict) -> str:
    """The run id as computed before output definitions existed."""
    keys = ("model", "steps", "prompts", "ablation", "arch")
    blob = json.dumps({k: config.get(k) for k in keys}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def test_a_write_run_keeps_its_id():
    assert run_id_of(CONFIG) == id_before_outputs(CONFIG)
    assert output_of(CONFIG) == "write"


def test_a_resid_run_has_another_id():
    resid = {**CONFIG, "output": "resid"}
    assert run_id_of(resid) != run_id_of(CONFIG)
    assert run_id_of(resid) == run_id_of(dict(reversed(resid.items())))  # order does not count
    assert output_of(resid) == "resid"


def test_settings_name_the_output_only_when_not_the_default():
    default = SweepSettings()
    stored = settings_config(default)
    assert "output" not in stored
    assert stored == {k: v for k, v in asdict(default).items() if k != "output"}
    assert settings_config(SweepSettings(output="resid"))["output"] == "resid"
