"""`scan_layers`: alike transformer layers as one `lax.scan`, the same function as the unrolled loop.

Checked against transformers on every variant (WavLM's layer 0, which owns the relative bias,
stays outside the scan), gradients included, with frozen lower layers and with `remat`, and the
scanned program really holds fewer copies of the layer.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import speechft_jax as sj
from conftest import tiny_encoder_config
from model_factory import VARIANTS, padded_batch, reference_model, reference_outputs
from speechft_jax.models import SpeechEncoder


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_scanned_layers_match_transformers(variant, tmp_path):
    model = reference_model(variant, num_hidden_layers=4)
    model.save_pretrained(tmp_path)
    bundle = sj.load_pretrained(tmp_path, scan_layers=True)
    assert bundle.config.scan_layers
    x, mask = padded_batch()
    ref = reference_outputs(model, x, mask)
    out = bundle.module.apply({"params": bundle.params}, x, mask)
    valid = np.asarray(out.frame_mask)
    assert len(out.hidden_states) == len(ref.hidden_states) == 5
    for i, ref_state in enumerate(ref.hidden_states):
        diff = np.abs(np.asarray(out.hidden_states[i])[valid] - ref_state.numpy()[valid]).max()
        assert diff <= 1e-4, f"{variant}: hidden state {i} differs by {diff}"


def _loss_and_grads(config, params, audio, mask, first_trained_layer=0):
    module = SpeechEncoder(config)

    def loss(p):
        out = module.apply({"params": p}, audio, mask, freeze_feature_extractor=True,
                           first_trained_layer=first_trained_layer)
        return jnp.mean(out.last_hidden_state ** 2) + 0.1 * jnp.mean(out.hidden_states[-2])  # a state inside the scan

    return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize("first_trained_layer,remat", [(0, False), (2, False), (1, True)])
def test_scanned_gradients_equal_unrolled(first_trained_layer, remat):
    config = tiny_encoder_config(num_hidden_layers=5)
    params = sj.init_encoder(config, seed=0).params
    audio, mask = padded_batch(lengths=(8000, 5000))
    unrolled = _loss_and_grads(config, params, audio, mask, first_trained_layer)
    scanned = _loss_and_grads(dataclasses.replace(config, scan_layers=True, remat=remat), params, audio, mask,
                              first_trained_layer)
    np.testing.assert_allclose(float(scanned[0]), float(unrolled[0]), rtol=1e-6)
    layers = scanned[1]["encoder"]
    for i in range(config.num_hidden_layers):
        grads = jax.tree_util.tree_leaves(layers[f"layers_{i}"])
        if i < first_trained_layer:  # frozen below: exactly no gradient
            assert all(not np.any(np.asarray(g)) for g in grads), f"layer {i} got a gradient"
        else:
            assert any(np.any(np.asarray(g)) for g in grads), f"layer {i} got no gradient"
    for a, b in zip(jax.tree_util.tree_leaves(scanned[1]), jax.tree_util.tree_leaves(unrolled[1])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def _matmuls(config) -> int:
    module = SpeechEncoder(config)
    params = sj.init_encoder(config, seed=0).params
    jaxpr = jax.make_jaxpr(lambda p, a: module.apply({"params": p}, a).last_hidden_state)(params, jnp.zeros((1, 8000)))
    return str(jaxpr).count("dot_general")


def test_scanned_program_holds_one_copy_of_the_layer():
    config = tiny_encoder_config(num_hidden_layers=6)
    unrolled, scanned = _matmuls(config), _matmuls(dataclasses.replace(config, scan_layers=True))
    per_layer = (unrolled - scanned) / 5  # six layers unrolled, one in the scan body
    assert per_layer >= 6 and per_layer == int(per_layer), (unrolled, scanned)


def test_scan_layers_is_a_runtime_setting_not_written_to_config_json(tmp_path):
    bundle = sj.load_pretrained(sj.TINY_HUBERT_DIR, scan_layers=True)
    sj.save_pretrained(bundle, tmp_path)
    assert "scan_layers" not in (tmp_path / "config.json").read_text()
    assert not sj.load_pretrained(tmp_path).config.scan_layers


def test_training_config_switches_scan_layers_on():
    from speechft_jax.train.start_encoder import ModelConfig, start_encoder

    bundle = start_encoder(ModelConfig(pretrained=str(sj.TINY_HUBERT_DIR), scan_layers=True, remat=True))
    assert bundle.config.scan_layers and bundle.config.remat
