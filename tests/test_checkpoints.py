"""Checkpoint import/export: round trips through transformers, fairseq files, and clear errors."""

import argparse
import json
import os

import numpy as np
import pytest
import torch
import transformers

import speechft_jax as sj
from model_factory import TINY, padded_batch, reference_model, reference_outputs
from speechft_jax.checkpoints import fairseq_import, safe_unpickle

TINY_CONFIG = sj.EncoderConfig.from_hf_dict({"model_type": "wavlm", **{k: v for k, v in TINY.items() if k != "attn_implementation"},
                                             "num_buckets": 16, "max_bucket_distance": 40})


@pytest.mark.parametrize("model_type,stable", [("hubert", False), ("wav2vec2", True), ("wavlm", False)])
def test_flax_to_transformers_round_trip(tmp_path, model_type, stable):
    config = TINY_CONFIG.replace(model_type=model_type, do_stable_layer_norm=stable,
                                 feat_extract_norm="layer" if stable else "group")
    bundle = sj.init_encoder(config, seed=3)
    sj.save_pretrained(bundle, tmp_path)
    model, info = transformers.AutoModel.from_pretrained(tmp_path, output_loading_info=True, attn_implementation="eager")
    assert type(model).__name__ == {"hubert": "HubertModel", "wav2vec2": "Wav2Vec2Model", "wavlm": "WavLMModel"}[model_type]
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    x, mask = padded_batch(seed=5)
    ref = reference_outputs(model.eval(), x, mask)
    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    frame_mask = np.asarray(frame_mask)
    for i, state in enumerate(ref.hidden_states):
        assert np.abs(np.asarray(hidden[i])[frame_mask] - state.numpy()[frame_mask]).max() <= 1e-4
    # and back: the exported directory loads to the same parameters
    again = sj.load_pretrained(tmp_path)
    for a, b in zip(jax_leaves(bundle.params), jax_leaves(again.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def jax_leaves(tree):
    import jax
    return jax.tree_util.tree_leaves(tree)


def test_head_keys_of_task_models_are_ignored_and_prefix_stripped(tmp_path):
    torch.manual_seed(0)
    config = transformers.HubertConfig(**TINY, vocab_size=11)
    ctc = transformers.HubertForCTC(config).eval()
    ctc.save_pretrained(tmp_path)
    bundle = sj.load_pretrained(tmp_path)
    x, mask = padded_batch()
    with torch.no_grad():
        ref = ctc.hubert(torch.tensor(x), attention_mask=torch.tensor(mask), output_hidden_states=True)
    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    frame_mask = np.asarray(frame_mask)
    assert np.abs(np.asarray(hidden[-1])[frame_mask] - ref.hidden_states[-1].numpy()[frame_mask]).max() <= 1e-4


def test_pytorch_bin_checkpoint_loads(tmp_path):
    model = reference_model("wav2vec2-base")
    model.save_pretrained(tmp_path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # transformers writes safetensors; rewrite as an old-style .bin with legacy weight-norm names
    os.remove(tmp_path / "model.safetensors")
    state["encoder.pos_conv_embed.conv.weight_g"] = state.pop("encoder.pos_conv_embed.conv.parametrizations.weight.original0")
    state["encoder.pos_conv_embed.conv.weight_v"] = state.pop("encoder.pos_conv_embed.conv.parametrizations.weight.original1")
    torch.save(state, tmp_path / "pytorch_model.bin")
    bundle = sj.load_pretrained(tmp_path)
    x, mask = padded_batch()
    ref = reference_outputs(model, x, mask)
    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    frame_mask = np.asarray(frame_mask)
    assert np.abs(np.asarray(hidden[-1])[frame_mask] - ref.hidden_states[-1].numpy()[frame_mask]).max() <= 1e-4


def test_extract_features_is_cached_and_params_override(tmp_path):
    bundle = sj.init_encoder(TINY_CONFIG.replace(model_type="hubert", mask_time_prob=0.0), seed=1)
    x, mask = padded_batch(seed=6)
    first, _ = sj.extract_features(bundle, x, mask)
    before = sj.checkpoints.bundle.compiled_forward_cache_size(bundle)
    second, _ = sj.extract_features(bundle, x + 0.5, mask)
    assert sj.checkpoints.bundle.compiled_forward_cache_size(bundle) == before == 1
    assert not np.allclose(np.asarray(first), np.asarray(second))
    other = sj.init_encoder(bundle.config, seed=2).params
    third, _ = sj.extract_features(bundle, x, mask, params=other)
    assert sj.checkpoints.bundle.compiled_forward_cache_size(bundle) == 1
    assert not np.allclose(np.asarray(first[-1]), np.asarray(third[-1]))


# ------------------------------------------------------------------------------ fairseq
def _fairseq_state(model) -> dict:
    """A transformers HuBERT state dict renamed to fairseq's layout."""
    inverse = {}
    for key, value in model.state_dict().items():
        new = key
        for a, b in [("feature_extractor.conv_layers.0.layer_norm.", "feature_extractor.conv_layers.0.2."),
                     ("feature_projection.layer_norm.", "layer_norm."),
                     ("feature_projection.projection.", "post_extract_proj."),
                     ("encoder.pos_conv_embed.conv.parametrizations.weight.original0", "encoder.pos_conv.0.weight_g"),
                     ("encoder.pos_conv_embed.conv.parametrizations.weight.original1", "encoder.pos_conv.0.weight_v"),
                     ("encoder.pos_conv_embed.conv.bias", "encoder.pos_conv.0.bias"),
                     (".attention.", ".self_attn."), (".feed_forward.intermediate_dense.", ".fc1."),
                     (".feed_forward.output_dense.", ".fc2.")]:
            new = new.replace(a, b)
        if ".conv_layers." in new and ".conv." in new:
            new = new.replace(".conv.", ".0.")
        if ".layers." in new and new.split(".")[-2] == "layer_norm" and "self_attn" not in new:
            new = new.replace(".layer_norm.", ".self_attn_layer_norm.")
        new = new.replace("masked_spec_embed", "mask_emb")
        inverse[new] = value.clone()
    return inverse


def _fairseq_model_cfg():
    return {"_name": "hubert", "encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64,
            "encoder_attention_heads": 4, "activation_fn": "gelu", "extractor_mode": "default",
            "conv_feature_layers": "[(16,10,5)] + [(16,3,2)] * 1 + [(16,2,2)]", "conv_bias": False,
            "conv_pos": 16, "conv_pos_groups": 4, "layer_norm_first": False, "final_dim": 8}


@pytest.mark.parametrize("style", ["cfg", "args"])
def test_fairseq_checkpoint_with_pretraining_head(tmp_path, style):
    model = reference_model("hubert-base")
    state = _fairseq_state(model)
    state["final_proj.weight"] = torch.randn(8, 32)
    state["final_proj.bias"] = torch.randn(8)
    state["label_embs_concat"] = torch.randn(5, 8)
    checkpoint = {"model": state, "optimizer_history": [{"num_updates": 7}], "extra_state": {"epoch": 3}}
    if style == "cfg":
        checkpoint["cfg"] = {"model": _fairseq_model_cfg(), "task": {"_name": "hubert_pretraining"}}
    else:
        checkpoint["args"] = argparse.Namespace(**{k: v for k, v in _fairseq_model_cfg().items() if k != "_name"})
    path = tmp_path / "hubert.pt"
    torch.save(checkpoint, path)
    bundle = sj.load_pretrained(path)
    assert bundle.config.conv_kernel == (10, 3, 2) and bundle.config.conv_stride == (5, 2, 2)
    x, mask = padded_batch()
    ref = reference_outputs(model, x, mask)
    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    frame_mask = np.asarray(frame_mask)
    for i, state_i in enumerate(ref.hidden_states):
        assert np.abs(np.asarray(hidden[i])[frame_mask] - state_i.numpy()[frame_mask]).max() <= 1e-4
    head = bundle.pretraining_head
    np.testing.assert_array_equal(np.asarray(head["final_proj"]["kernel"]), state["final_proj.weight"].numpy().T)
    np.testing.assert_array_equal(np.asarray(head["label_embs_concat"]), state["label_embs_concat"].numpy())
    # the Flax directory keeps the head; the transformers directory cannot
    flax_dir = sj.save_flax(bundle, tmp_path / "flax")
    again = sj.load_pretrained(flax_dir)
    np.testing.assert_array_equal(np.asarray(again.pretraining_head["label_embs_concat"]),
                                  state["label_embs_concat"].numpy())


def test_conv_layer_spec_is_parsed_without_eval():
    assert fairseq_import.parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == (
        [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2)
    with pytest.raises(sj.CheckpointError, match="cannot parse"):
        fairseq_import.parse_conv_layers("__import__('os').system('true')")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED_MARKER",))


@pytest.mark.parametrize("filename", ["hubert.pt", "pytorch_model.bin"])
def test_pickle_that_runs_code_is_refused(tmp_path, monkeypatch, filename):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "model"
    target.mkdir()
    if filename == "pytorch_model.bin":
        (target / "config.json").write_text(json.dumps({"model_type": "hubert", **{k: v for k, v in TINY.items() if k != "attn_implementation"}}))
        path, source = target / filename, target
    else:
        path = source = target / filename
    torch.save({"model": {"x": torch.zeros(2)}, "evil": _RunsCode()}, path)
    with pytest.raises(sj.CheckpointError, match="refused"):
        sj.load_pretrained(source)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_safe_unpickle_reads_namespaces_as_data(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"args": argparse.Namespace(a=1, b="two"), "t": torch.arange(6).reshape(2, 3)[:, 1:]}, path)
    loaded = safe_unpickle.load_torch_zip(path)
    assert safe_unpickle.to_plain(loaded["args"]) == {"a": 1, "b": "two"}
    np.testing.assert_array_equal(loaded["t"].numpy(), np.array([[1, 2], [4, 5]]))


# ------------------------------------------------------------------------------ errors
def test_missing_directory(tmp_path):
    with pytest.raises(sj.CheckpointError, match="no such file or directory"):
        sj.load_pretrained(str(tmp_path / "nope" / "model"))


def test_missing_config_and_weights(tmp_path):
    with pytest.raises(sj.CheckpointError, match="config.json is missing"):
        sj.load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "hubert"}))
    with pytest.raises(sj.CheckpointError, match="no weights file found"):
        sj.load_pretrained(tmp_path)


def test_unknown_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(sj.CheckpointError, match="model_type='bert' is not supported"):
        sj.load_pretrained(tmp_path)


def test_mismatched_shapes_and_unexpected_keys_are_named(tmp_path):
    reference_model("hubert-base").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["intermediate_size"] = 48
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(sj.CheckpointError, match=r"encoder\.layers\.0\.feed_forward\.intermediate_dense\.weight has shape \(64, 32\)"):
        sj.load_pretrained(tmp_path)
    config["intermediate_size"] = 64
    config["num_hidden_layers"] = 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(sj.CheckpointError, match=r"unexpected keys: encoder\.layers\.1\."):
        sj.load_pretrained(tmp_path)


def test_corrupt_weights_file(tmp_path):
    reference_model("hubert-base").save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(sj.CheckpointError, match="model.safetensors: not a readable safetensors file"):
        sj.load_pretrained(tmp_path)


def test_hub_id_offline_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(sj.CheckpointError, match="no model could be fetched from the Hugging Face hub"):
        sj.load_pretrained("some-org/some-model-that-is-not-cached")


def test_convert_command_both_directions(tmp_path, capsys):
    from speechft_jax import convert

    reference_model("wavlm-base").save_pretrained(tmp_path / "hf")
    assert convert.main([str(tmp_path / "hf"), str(tmp_path / "flax"), "--to", "flax"]) == 0
    assert (tmp_path / "flax" / "speechft_params.msgpack").is_file()
    assert convert.main([str(tmp_path / "flax"), str(tmp_path / "hf2"), "--to", "hf"]) == 0
    model = transformers.AutoModel.from_pretrained(tmp_path / "hf2")
    assert type(model).__name__ == "WavLMModel"
    assert convert.main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_bfloat16_parameters_load_run_and_export(tmp_path):
    model = reference_model("hubert-base")
    model.save_pretrained(tmp_path / "hf")
    bundle = sj.load_pretrained(tmp_path / "hf", dtype="bfloat16", param_dtype="bfloat16")
    assert {str(leaf.dtype) for leaf in jax_leaves(bundle.params)} == {"bfloat16"}
    x, mask = padded_batch()
    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    frame_mask = np.asarray(frame_mask)
    expected = reference_outputs(model, x, mask).hidden_states[-1].numpy()[frame_mask]
    got = np.asarray(hidden[-1], np.float32)[frame_mask]
    assert np.abs(got - expected).mean() / np.abs(expected).mean() < 0.05
    sj.save_pretrained(bundle, tmp_path / "out")
    exported = transformers.AutoModel.from_pretrained(tmp_path / "out")
    weight = exported.encoder.layers[0].attention.q_proj.weight.detach().float().numpy()
    original = model.encoder.layers[0].attention.q_proj.weight.detach().numpy()
    np.testing.assert_allclose(weight, original, rtol=1e-2, atol=1e-2)  # bf16 rounding only
