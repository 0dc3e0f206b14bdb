"""The filterbank start of the CNN (`models/filterbank_init.py`) and `model.cnn_init` in training."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from conftest import TRAIN_MODEL_CONFIG, tiny_encoder_config, write_train_config
from speechft_jax.checkpoints import load_pretrained
from speechft_jax.data.mfcc import hz_to_mel, mel_to_hz
from speechft_jax.models.config import ConfigError
from speechft_jax.models.filterbank_init import filterbank_cnn, gabor_filterbank
from speechft_jax.models.pretrained import init_params
from speechft_jax.train import load_train_config, train
from speechft_jax.train.start_encoder import init_fn

FILTERBANK = dict(conv_dim=[16, 16], conv_kernel=[200, 4], conv_stride=[10, 4], conv_bias=True)


def test_gabor_filters_are_unit_norm_band_passes_on_the_mel_scale():
    bank = gabor_filterbank(16, 400)
    assert bank.shape == (400, 1, 16) and bank.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bank[:, 0], axis=0), 1.0, rtol=1e-5)
    response = np.abs(np.fft.rfft(bank[:, 0], 16000, axis=0))  # 1 Hz bins
    peaks = response.argmax(0)
    centres = mel_to_hz(np.linspace(hz_to_mel(60.0), hz_to_mel(7600.0), 8))
    # the cosine and the sine of each pair peak at its centre; the outermost two are bent by the
    # 25 ms window (60 Hz) and by Nyquist (7600 Hz)
    np.testing.assert_allclose(peaks[2:-2:2], centres[1:-1], atol=25)
    np.testing.assert_allclose(peaks[3:-2:2], centres[1:-1], atol=25)
    assert (np.diff(peaks[0::2]) > 0).all()
    # a pure tone excites the pair whose band it is in most
    t = np.arange(4000) / 16000
    for hz in (300.0, 1500.0, 5000.0):
        out = np.stack([np.convolve(np.sin(2 * np.pi * hz * t), bank[:, 0, c], "valid") for c in range(16)])
        energy = (out ** 2).mean(1).reshape(8, 2).sum(1)
        assert energy.argmax() == np.abs(centres - hz).argmin()


def test_filterbank_cnn_sets_only_the_convs():
    config = tiny_encoder_config(**FILTERBANK)
    params = jax.jit(lambda: init_params(config, jax.random.PRNGKey(0)))()
    started = filterbank_cnn(config, params)
    convs = started["feature_extractor"]
    np.testing.assert_array_equal(convs["conv_layers_0"]["conv"]["kernel"], gabor_filterbank(16, 200))
    average = np.asarray(convs["conv_layers_1"]["conv"]["kernel"])
    assert average.shape == (4, 16, 16)
    np.testing.assert_array_equal(average, np.eye(16)[None].repeat(4, 0) / 4)
    for layer in ("conv_layers_0", "conv_layers_1"):
        np.testing.assert_array_equal(convs[layer]["conv"]["bias"], np.zeros(16))
    changed = {f"feature_extractor/conv_layers_{i}/conv/{name}" for i in (0, 1) for name in ("kernel", "bias")}
    before = {jax.tree_util.keystr(k, simple=True, separator="/"): v
              for k, v in jax.tree_util.tree_leaves_with_path(params)}
    after = {jax.tree_util.keystr(k, simple=True, separator="/"): v
             for k, v in jax.tree_util.tree_leaves_with_path(started)}
    assert before.keys() == after.keys() and changed <= after.keys()
    for key in before.keys() - changed:
        np.testing.assert_array_equal(before[key], after[key])
    # inside jit, as the trainer initialises
    jitted = jax.jit(init_fn(config, 0, "filterbank"))()
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(started)):
        np.testing.assert_array_equal(a, b)


def test_filterbank_cnn_refuses_a_cnn_it_cannot_start():
    with pytest.raises(ConfigError, match=r"conv_dim=\[16, 32\]"):
        jax.jit(init_fn(tiny_encoder_config(conv_dim=[16, 32], conv_kernel=[200, 4], conv_stride=[10, 4]), 0,
                        "filterbank"))()
    with pytest.raises(ConfigError, match="conv_dim\\[0\\]=15"):
        gabor_filterbank(15, 100)


def test_cnn_init_in_a_training_run(demo_corpus_tiny, tmp_path):
    model_json = tmp_path / "model.json"
    model_json.write_text(json.dumps({**json.loads(TRAIN_MODEL_CONFIG.read_text()), **FILTERBANK}))
    path = write_train_config(tmp_path / "run.yaml", demo_corpus_tiny, tmp_path / "run",
                              model={"config": str(model_json), "cnn_init": "filterbank"},
                              optimizer={"steps": 2, "beta": 0.0}, finetune={"early_checkpoints": []})
    result = train(load_train_config(path))
    kernel = load_pretrained(result.encoder_dir).params["feature_extractor"]["conv_layers_0"]["conv"]["kernel"]
    np.testing.assert_array_equal(kernel, gabor_filterbank(16, 200))  # frozen CNN: still the filterbank

    bad = write_train_config(tmp_path / "bad.yaml", demo_corpus_tiny, tmp_path / "bad",
                             model={"config": None, "pretrained": str(result.encoder_dir), "cnn_init": "filterbank"})
    with pytest.raises(ConfigError, match="cnn_init='filterbank': only for a random start"):
        load_train_config(bad)
