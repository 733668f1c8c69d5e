"""The ``resid`` output definition: its properties on real toy checkpoints, how a pipeline picks
it, and that the task-metric parts of a sweep do not depend on it.

The fast path's ``resid`` values are checked against the plain reference in
``test_sweep_equality.py`` (parametrized over both output definitions).
"""

import numpy as np
import pandas as pd
import pytest
import torch

from circuitatlas.errors import CircuitAtlasError
from circuitatlas.ingest.ablation import clean_run
from circuitatlas.ingest.components import all_components, is_downstream
from circuitatlas.ingest.edge_scores import scored_sweep
from circuitatlas.ingest.model import ForwardPieces
from circuitatlas.ingest.outputs import output_measure
from circuitatlas.ingest.sweep import Sweeper, sweep_checkpoint

ARCHS = ["gpt2", "neox", "neox-seq"]


def by_pair(edges: pd.DataFrame) -> pd.DataFrame:
    return edges.set_index(["source", "target"])


@pytest.mark.parametrize("arch", ARCHS)
def test_a_layers_heads_share_one_resid_output(models, prompts, arch):
    """Under ``resid`` a layer's heads have one O_j (resid_mid, or resid_post in parallel
    blocks, where the layer's MLP shares it): every source gives them one total similarity."""
    _, weights = models[arch]
    edges = by_pair(sweep_checkpoint(weights, prompts, "mean", output="resid").edges)
    comps = {c.name: c for c in all_components(weights.n_layers, weights.n_heads)}
    for src in comps.values():
        for layer in range(weights.n_layers):
            heads = [f"a{layer}.h{h}" for h in range(weights.n_heads)]
            if not is_downstream(src, comps[heads[0]], weights.parallel):
                continue
            sims = edges.loc[[(src.name, h) for h in heads], "similarity"].to_numpy()
            assert np.ptp(sims) < 1e-6, (src.name, layer, sims)
            if weights.parallel:
                mlp = edges.loc[(src.name, f"m{layer}"), "similarity"]
                assert abs(mlp - sims[0]) < 1e-6, (src.name, layer)


@pytest.mark.parametrize("arch", ARCHS)
def test_resid_outputs_are_the_streams_after_each_write(models, prompts, arch):
    """The clean O_j of the resid measure are the residual streams after each write."""
    _, weights = models[arch]
    fp = ForwardPieces(weights, prompts.tokens.shape[1])
    with torch.inference_mode():
        clean = clean_run(fp, prompts.tokens)
        measure = output_measure("resid", fp, clean)
        for layer in range(weights.n_layers):
            attn = clean.resid_pre[layer] + fp.attn_out(layer, clean.z[layer])
            after = attn + clean.mlp_out[layer] if weights.parallel else attn
            torch.testing.assert_close(measure.after_heads[layer], after)
            torch.testing.assert_close(
                clean.resid_pre[layer + 1], attn + clean.mlp_out[layer]
            )  # an MLP's resid output


@pytest.mark.parametrize("arch", ["gpt2", "neox"])
def test_logits_effects_and_scores_do_not_depend_on_the_output(models, prompts, arch):
    """The sink, the metric effects, loss, head scores and the task-metric edge scores are the
    same under both definitions; the similarities into heads and MLPs are not."""
    _, weights = models[arch]
    write = scored_sweep(weights, prompts, "resample", edge_scores="both", ig_steps=1)
    resid = scored_sweep(
        weights, prompts, "resample", edge_scores="both", ig_steps=1, output="resid"
    )
    w, r = by_pair(write.edges), by_pair(resid.edges)
    assert list(w.index) == list(r.index)
    into_logits = w.index.get_level_values("target") == "logits"
    for col in ("similarity", "std", "direct_similarity", "direct_std"):
        np.testing.assert_allclose(r[col][into_logits], w[col][into_logits], rtol=0, atol=1e-9)
        assert (r[col][~into_logits] - w[col][~into_logits]).abs().max() > 1e-3, col
    for col in ("patch_effect", "eap_ig"):
        np.testing.assert_allclose(r[col], w[col], rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(resid.components, write.components, rtol=0, atol=1e-9)
    assert resid.loss == write.loss and resid.metric == write.metric


def test_a_sweeper_measures_the_definition_it_is_given(models, prompts):
    _, weights = models["gpt2"]
    assert Sweeper(weights, prompts).output == "write"
    assert Sweeper(weights, prompts, output="resid").output == "resid"


def test_an_unknown_output_is_one_clear_error(models, prompts):
    _, weights = models["gpt2"]
    for call in (
        lambda: sweep_checkpoint(weights, prompts, output="stream"),
        lambda: Sweeper(weights, prompts, output="stream"),
    ):
        with pytest.raises(CircuitAtlasError, match=r"--output 'stream'.*write, resid"):
            call()
