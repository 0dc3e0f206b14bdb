"""The alpha sweep's forward pass: one compilation for K alphas, equal to K separate merges."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import speechft_jax as sj
from conftest import tiny_encoder_config
from speechft_jax.sweep.features import same_cnn, sweep_forward


@pytest.mark.parametrize("shared_cnn", [False, True], ids=["own-cnn", "frozen-cnn"])
def test_sweep_compiles_once_and_matches_separate_merges(shared_cnn):
    config = tiny_encoder_config()
    base, tuned = sj.init_encoder(config, seed=0), sj.init_encoder(config, seed=1)
    assert not same_cnn(base.params, tuned.params)
    if shared_cnn:  # as after stable fine-tuning: theta_ft keeps theta_0's CNN, which then runs once
        tuned.params["feature_extractor"] = base.params["feature_extractor"]
        assert same_cnn(base.params, tuned.params)
    forward = sweep_forward(config, shared_cnn)
    alphas = jnp.array([0.0, 0.25, 0.5, 0.75, 1.0])
    rng = np.random.default_rng(0)
    audio = jnp.asarray(rng.normal(size=(2, 8000)), jnp.float32)
    mask = jnp.ones((2, 8000), jnp.int32).at[1, 5000:].set(0)
    before = forward._cache_size()
    states, frame_mask = forward(base.params, tuned.params, alphas, audio, mask)
    states2, _ = forward(base.params, tuned.params, alphas + 0.01, audio * 0.5, mask)  # same shapes: no compile
    assert forward._cache_size() == before + 1
    assert states.shape[:2] == (5, config.num_hidden_layers + 1)
    for k, alpha in enumerate(np.asarray(alphas)):
        merged = sj.interpolate(base.params, tuned.params, float(alpha))
        expected, expected_mask = sj.extract_features(base, audio, mask, params=merged)
        valid = np.asarray(expected_mask)
        np.testing.assert_allclose(np.asarray(states[k])[:, valid], np.asarray(expected)[:, valid],
                                   rtol=1e-4, atol=1e-4)
