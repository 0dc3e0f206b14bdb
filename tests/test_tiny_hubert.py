"""The tiny pre-trained HuBERT that ships inside the package (speechft_jax/assets/tiny-hubert)."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import torch

import speechft_jax as sj
from speechft_jax.models.filterbank_init import filterbank_cnn

MODEL_CONFIG = Path(__file__).parents[1] / "configs" / "models" / "tiny-hubert-filterbank.json"


def test_it_is_a_small_transformers_directory():
    files = {p.name: p.stat().st_size for p in sj.TINY_HUBERT_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "pretraining_head.safetensors"} <= set(files)
    assert sum(files.values()) < 10 * 2 ** 20
    bundle = sj.load_pretrained(sj.TINY_HUBERT_DIR)
    count = sum(x.size for x in jax.tree.leaves(bundle.params))
    assert 1e6 < count < 5e6
    made_from = json.loads(MODEL_CONFIG.read_text())
    shipped = json.loads((sj.TINY_HUBERT_DIR / "config.json").read_text())
    for key in ("hidden_size", "num_hidden_layers", "intermediate_size", "conv_dim", "conv_kernel", "conv_stride",
                "feat_extract_norm"):
        assert shipped[key] == made_from[key], key
    assert bundle.pretraining_head is not None
    # pre-trained with its CNN frozen at the filterbank start (configs/pretrain/tiny_hubert_iter1.yaml)
    started = filterbank_cnn(bundle.config, bundle.params)["feature_extractor"]
    for a, b in zip(jax.tree.leaves(started), jax.tree.leaves(bundle.params["feature_extractor"])):
        np.testing.assert_array_equal(a, b)


def test_transformers_loads_it_and_agrees_with_the_flax_port():
    from transformers import AutoModel

    model = AutoModel.from_pretrained(sj.TINY_HUBERT_DIR).eval()
    assert type(model).__name__ == "HubertModel"
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.normal(size=(2, 16000))).astype(np.float32)
    mask = np.ones((2, 16000), np.int64)
    mask[1, 11000:] = 0
    with torch.no_grad():
        ref = model(torch.from_numpy(audio), attention_mask=torch.from_numpy(mask), output_hidden_states=True)
    states, frame_mask = sj.extract_features(sj.load_pretrained(sj.TINY_HUBERT_DIR), audio, mask)
    valid = np.asarray(frame_mask)
    for i, expected in enumerate(ref.hidden_states):
        np.testing.assert_allclose(np.asarray(states[i])[valid], expected.numpy()[valid], atol=1e-4, rtol=1e-4)
