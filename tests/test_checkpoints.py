"""Checkpoint import/export: round trips through transformers, fairseq files, and clear errors."""

import argparse
import json
import os
import re
import struct
import zipfile
from pathlib import Path

import jax
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
    before = sj.models.pretrained.compiled_forward_cache_size(bundle)
    second, _ = sj.extract_features(bundle, x + 0.5, mask)
    assert sj.models.pretrained.compiled_forward_cache_size(bundle) == before == 1
    assert not np.allclose(np.asarray(first), np.asarray(second))
    other = sj.init_encoder(bundle.config, seed=2).params
    third, _ = sj.extract_features(bundle, x, mask, params=other)
    assert sj.models.pretrained.compiled_forward_cache_size(bundle) == 1
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
    x, mask = padded_batch(lengths=(4000, 3992))  # both frame rules agree (fairseq's: test_fairseq_formats.py)
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


@pytest.mark.parametrize("dropped", [("final_proj.weight", "final_proj.bias"), ("label_embs_concat",)])
def test_a_fairseq_encoder_without_part_of_its_head_loads_with_one_warning(tmp_path, caplog, dropped):
    model = reference_model("hubert-base")
    state = _fairseq_state(model)
    head = {"final_proj.weight": torch.randn(8, 32), "final_proj.bias": torch.randn(8),
            "label_embs_concat": torch.randn(5, 8)}
    state.update({k: v for k, v in head.items() if k not in dropped})
    path = tmp_path / "hubert.pt"
    torch.save({"model": state, "cfg": {"model": _fairseq_model_cfg(), "task": {}}}, path)
    with caplog.at_level("WARNING"):
        bundle = sj.load_pretrained(path)
    assert bundle.pretraining_head is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"incomplete pre-training head (missing {', '.join(dropped)})" in warnings[0]
    x, mask = padded_batch(lengths=(4000, 3992))  # both frame rules agree (fairseq's: test_fairseq_formats.py)
    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    frame_mask = np.asarray(frame_mask)
    for i, state_i in enumerate(reference_outputs(model, x, mask).hidden_states):
        assert np.abs(np.asarray(hidden[i])[frame_mask] - state_i.numpy()[frame_mask]).max() <= 1e-4


@pytest.mark.parametrize("key, value", [("encoder_embed_dim", float("inf")), ("encoder_layers", "two"),
                                        ("encoder_attention_heads", 4.5), ("dropout", float("nan")),
                                        ("conv_pos", [16])])
def test_a_fairseq_model_setting_that_is_not_a_number_is_named(tmp_path, key, value):
    # int(inf) was an OverflowError traceback, int("two") a ValueError one
    with pytest.raises(sj.CheckpointError, match=rf"hubert.pt: {key}=.*expected an? (integer|number)"):
        fairseq_import.config_from_fairseq({**_fairseq_model_cfg(), key: value}, tmp_path / "hubert.pt", {})


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


class _ReducesToDict:
    """Pickled as a call of the builtin `dict` (as omegaconf's containers are): protocol 2 names it
    `__builtin__.dict`."""

    def __reduce__(self):
        return (dict, ([("normalize", True)],))


class _ReducesToEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_protocol_2_names_of_builtins_are_read_as_data_and_eval_is_still_refused(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"cfg": _ReducesToDict(), "n": 3}, path, pickle_protocol=2)
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert b"__builtin__" in pickled and b"dict" in pickled  # what torch wrote, not what we hoped
    assert safe_unpickle.load_torch_zip(path) == {"cfg": {"normalize": True}, "n": 3}
    # Python 2's big integers: `__builtin__.long` applied to a string (raw protocol-2 opcodes)
    import io
    raw = b"\x80\x02c__builtin__\nlong\nX\x02\x00\x00\x0042\x85R."
    assert safe_unpickle._RestrictedUnpickler(io.BytesIO(raw), None, "", "x.pt").load() == 42
    torch.save({"cfg": _ReducesToEval()}, path, pickle_protocol=2)
    with pytest.raises(sj.CheckpointError, match=r"refused to load: the pickle asks for __builtin__\.eval"):
        safe_unpickle.load_torch_zip(path)


def test_a_real_omegaconf_dictconfig_cfg_is_read_as_plain_data():
    """tests/data/omegaconf_dictconfig_cfg.pt is what fairseq writes: `torch.save` (pickle protocol 2)
    of `{"cfg": OmegaConf.create(<a HuBERT cfg>), "model": {}, ...}`, made once with omegaconf 2.4.0
    (not installed here: the reader must not need it). Its pickle names omegaconf's classes,
    `collections.defaultdict` and `__builtin__` containers."""
    path = Path(__file__).parent / "data" / "omegaconf_dictconfig_cfg.pt"
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert b"omegaconf.dictconfig" in pickled and b"defaultdict" in pickled
    checkpoint = safe_unpickle.load_torch_zip(path)
    cfg = safe_unpickle.to_plain(checkpoint["cfg"])
    assert cfg["task"]["labels"] == ["km"] and cfg["model"]["latent_temp"] == [2.0, 0.5, 0.999995]
    model_cfg, normalize = fairseq_import._checkpoint_config(checkpoint, path)
    assert normalize is True and model_cfg["_name"] == "hubert"
    config = fairseq_import.config_from_fairseq(model_cfg, path, {})
    assert (config.num_hidden_layers, config.hidden_size, config.conv_dim) == (2, 32, (16, 16, 16))
    assert config.frame_mask == "fairseq"


def test_fairseq_gelu_accurate_is_transformers_gelu_new(tmp_path):
    """fairseq's `gelu_accurate` is 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))): the config
    names transformers' `gelu_new`, which computes exactly that."""
    from speechft_jax.models.activations import activation

    config = fairseq_import.config_from_fairseq({**_fairseq_model_cfg(), "activation_fn": "gelu_accurate"},
                                                tmp_path / "hubert.pt", {})
    assert config.hidden_act == "gelu_new"
    x = np.linspace(-6, 6, 101)
    fairseq = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(np.asarray(activation(config.hidden_act)(x)), fairseq, atol=1e-6)


def _pickle_int(value: int) -> bytes:
    if -2 ** 31 <= value < 2 ** 31:
        return b"J" + struct.pack("<i", value)  # BININT
    raw = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def _pickle_str(text: str) -> bytes:
    return b"X" + struct.pack("<I", len(text.encode())) + text.encode()  # BINUNICODE


def _pickle_tuple(items) -> bytes:
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


def write_crafted_checkpoint(path, tensors: dict, storages: dict):
    """A `torch.save`-shaped zip whose pickle is written opcode by opcode, so that what it claims
    can disagree with its data: `{"model": {key: tensor}}`, the shape of a fairseq checkpoint.

    tensors: key -> (storage key, offset, size, stride); storages: key -> (claimed numel, float32 values).
    """
    body = b""
    for key, (storage_key, offset, size, stride) in tensors.items():
        pid = _pickle_tuple([_pickle_str("storage"), b"ctorch\nFloatStorage\n", _pickle_str(storage_key),
                             _pickle_str("cpu"), _pickle_int(storages[storage_key][0])]) + b"Q"  # BINPERSID
        args = _pickle_tuple([pid, _pickle_int(offset), _pickle_tuple(map(_pickle_int, size)),
                              _pickle_tuple(map(_pickle_int, stride)), b"\x89", b"}"])  # False, {}
        body += _pickle_str(key) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"  # REDUCE
    payload = b"\x80\x02}" + _pickle_str("model") + b"}(" + body + b"us."  # SETITEMS, SETITEM, STOP
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        for key, (_, values) in storages.items():
            archive.writestr(f"archive/data/{key}", np.asarray(values, np.float32).tobytes())
    return path


def test_crafted_checkpoint_reads_like_torch(tmp_path):
    # the hand-written pickle is what torch writes: a strided view of a 6-element storage
    path = write_crafted_checkpoint(tmp_path / "ok.pt", {"t": ("0", 1, (2, 2), (3, 1)), "s": ("0", 5, (), ())},
                                    {"0": (6, np.arange(6))})
    loaded = safe_unpickle.load_torch_zip(path)["model"]
    np.testing.assert_array_equal(loaded["t"].numpy(), [[1, 2], [4, 5]])
    assert loaded["s"].numpy() == 5


FOUR = {"0": (4, np.arange(4))}  # a 16-byte storage


@pytest.mark.parametrize("tensor, storages, message", [
    (("0", 0, (200_000_000,), (1,)), {"0": (200_000_000, np.arange(4))}, "claims 200000000 float32 elements"),
    (("0", 0, (200_000_000,), (1,)), FOUR, "past its 4 elements"),  # once a segfault
    (("0", 0, (768,), (1,)), FOUR, "reach element 767, past its 4 elements"),  # once 3 KB of heap
    (("0", 3, (2,), (1,)), FOUR, "reach element 4, past its 4 elements"),
    (("0", 0, (2, 3), (3, 1)), FOUR, "reach element 5"),
    (("0", 3, (2,), (-1,)), FOUR, "must be non-negative integers"),
    (("0", -1, (2,), (1,)), FOUR, "must be non-negative integers"),
    (("0", 0, (-2,), (1,)), FOUR, "must be non-negative integers"),
    (("0", 0, (2 ** 20, 2 ** 20), (0, 0)), FOUR, "above the limit of 2**34"),  # zero strides fit, 4 TB would not
    (("0", 0, (1,) * 9, (1,) * 9), FOUR, "rank 9 is above 8"),
    (("0", 0, (2,), (1, 1)), FOUR, "are not two tuples of one length"),
    (("9", 0, (2,), (1,)), {"0": FOUR["0"], "9": (2, np.arange(4))}, None),  # honest: passes
])
def test_tensors_that_do_not_fit_their_storage_are_refused(tmp_path, capsys, tensor, storages, message):
    from speechft_jax import convert

    path = write_crafted_checkpoint(tmp_path / "hubert.pt", {"mask_emb": tensor}, storages)
    if message is None:
        assert safe_unpickle.load_torch_zip(path)["model"]["mask_emb"].numpy().tolist() == [0, 1]
        return
    with pytest.raises(sj.CheckpointError, match=re.escape(message)) as info:
        safe_unpickle.load_torch_zip(path)
    assert str(path) in str(info.value) and "archive/data/0" in str(info.value)
    assert convert.main([str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(path) in err
    assert not (tmp_path / "out").exists()


def test_missing_storage_entry_is_refused(tmp_path):
    path = write_crafted_checkpoint(tmp_path / "x.pt", {"w": ("0", 0, (2,), (1,))}, {"0": (2, np.arange(2))})
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist() if n != "archive/data/0"}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(sj.CheckpointError, match="storage 'archive/data/0' is not in the archive"):
        safe_unpickle.load_torch_zip(path)


def test_storage_never_reads_past_its_bytes(tmp_path):
    path = write_crafted_checkpoint(tmp_path / "x.pt", {}, {"0": (4, np.arange(4))})
    with zipfile.ZipFile(path) as archive:
        storage = safe_unpickle._Storage(archive, "archive/data/0", np.dtype(np.float32), 5, str(path))
        with pytest.raises(sj.CheckpointError, match="holds 16 bytes, its 5 float32 elements need 20"):
            storage.array()


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


def _tiny_bundle(seed, **changes):
    """A tiny HuBERT with seeded random weights, made without compiling an initialiser."""
    from speechft_jax.models.pretrained import abstract_params

    config = TINY_CONFIG.replace(model_type="hubert", **changes)
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(lambda leaf: rng.normal(size=leaf.shape).astype(leaf.dtype),
                                    abstract_params(config))
    return sj.PretrainedBundle(config, params, sj.SpeechEncoder(config), f"seed {seed}",
                               {"do_normalize": False, "sampling_rate": 16000})


def _tiny_head(seed):
    """A HuBERT pre-training head for the tiny encoder: hidden 32 -> 8, 5 codewords."""
    rng = np.random.default_rng(seed)
    return {"final_proj": {"kernel": rng.normal(size=(32, 8)).astype(np.float32), "bias": np.zeros(8, np.float32)},
            "label_embs_concat": rng.normal(size=(5, 8)).astype(np.float32)}


def _poisoned(tree, path: str, value: float):
    """A copy of a parameter tree with `value` written into one element of the leaf at `path`."""
    import flax

    flat = {k: np.array(v) for k, v in flax.traverse_util.flatten_dict(jax.device_get(tree), sep="/").items()}
    flat[path].reshape(-1)[1] = value
    return flax.traverse_util.unflatten_dict(flat, sep="/")


def _write_non_finite(fmt: str, tmp_path):
    """A checkpoint in `fmt` holding one NaN or Inf -> (what load_pretrained reads, file, key in it)."""
    bundle = _tiny_bundle(0)
    bad = bundle.replace(params=_poisoned(bundle.params, "encoder/layers_1/attention/q_proj/kernel", np.nan))
    out = tmp_path / fmt
    if fmt == "safetensors":
        return sj.save_pretrained(bad, out), out / "model.safetensors", "encoder.layers.1.attention.q_proj.weight"
    if fmt == "bin":
        from safetensors.torch import load_file

        sj.save_pretrained(bad, out)
        torch.save(load_file(out / "model.safetensors"), out / "pytorch_model.bin")
        os.remove(out / "model.safetensors")
        return out, out / "pytorch_model.bin", "encoder.layers.1.attention.q_proj.weight"
    if fmt == "flax":
        key = "params/encoder/layers_1/attention/q_proj/kernel"
        return sj.save_flax(bad, out), out / "speechft_params.msgpack", key
    if fmt == "head":
        head = _poisoned(_tiny_head(0), "label_embs_concat", -np.inf)
        sj.save_pretrained(bundle.replace(pretraining_head=head), out)
        return out, out / "pretraining_head.safetensors", "label_embs_concat"
    state = _fairseq_state(reference_model("hubert-base"))
    state["mask_emb"][3] = float("inf")
    torch.save({"model": state, "cfg": {"model": _fairseq_model_cfg()}}, tmp_path / "hubert.pt")
    return tmp_path / "hubert.pt", tmp_path / "hubert.pt", "mask_emb"


@pytest.mark.parametrize("fmt", ["safetensors", "bin", "flax", "head", "fairseq"])
def test_non_finite_parameters_are_refused_on_load(tmp_path, capsys, fmt):
    from speechft_jax import convert

    source, file, key = _write_non_finite(fmt, tmp_path)
    expected = f"{file}: parameter {key} holds non-finite values (1 of "
    with pytest.raises(sj.CheckpointError, match=re.escape(expected)):
        sj.load_pretrained(source)
    assert convert.main([str(source), str(tmp_path / "converted")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


# ------------------------------------------------------------------------------ writing into a model directory
def _same_params(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax_leaves(a), jax_leaves(b)))


def test_save_pretrained_replaces_a_flax_model_of_another_shape(tmp_path):
    old = _tiny_bundle(0, num_hidden_layers=1)
    sj.save_flax(old.replace(pretraining_head=_tiny_head(0)), tmp_path)
    new = _tiny_bundle(1).replace(preprocessor={})
    sj.save_pretrained(new, tmp_path)
    # the Flax weights, and the old preprocessor and head, would otherwise load beside the new config
    assert sorted(p.name for p in sj.checkpoints.model_files(tmp_path)) == ["config.json", "model.safetensors"]
    loaded = sj.load_pretrained(tmp_path)
    assert loaded.pretraining_head is None and loaded.preprocessor == {}
    assert _same_params(loaded.params, new.params)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_save_flax_removes_every_transformers_weight_file(tmp_path):
    directory = tmp_path / "model"
    (tmp_path / "outside.bin").write_bytes(b"a sibling's file")
    model = reference_model("hubert-base")
    model.save_pretrained(directory, max_shard_size="20KB")  # sharded safetensors
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    torch.save(model.state_dict(), directory / "part_a.bin")  # a shard only its index names
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"weight_map": {"x": "part_a.bin", "y": "../outside.bin"}}))
    (directory / "notes.txt").write_text("not a model file: kept")
    assert len(list(directory.glob("model-*.safetensors"))) > 1
    new = _tiny_bundle(2)
    sj.save_flax(new, directory)
    assert sorted(p.name for p in sj.checkpoints.model_files(directory)) == [
        "config.json", "preprocessor_config.json", "speechft_params.msgpack"]
    assert (directory / "notes.txt").is_file() and not (directory / "part_a.bin").exists()
    assert (tmp_path / "outside.bin").is_file()
    assert _same_params(sj.load_pretrained(directory).params, new.params)


def test_a_failed_save_leaves_the_old_model_untouched(tmp_path, monkeypatch):
    from speechft_jax import files

    old = _tiny_bundle(0)
    sj.save_flax(old, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_write_temp, calls = files.write_temp, []

    def disk_full_on_second_file(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write_temp(path, data)

    monkeypatch.setattr(files, "write_temp", disk_full_on_second_file)
    with pytest.raises(OSError, match="No space left"):
        sj.save_pretrained(_tiny_bundle(1), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_convert_into_a_model_directory_needs_overwrite(tmp_path, capsys):
    from speechft_jax import convert

    first, second = _tiny_bundle(0), _tiny_bundle(1, num_hidden_layers=1)
    sj.save_pretrained(first, tmp_path / "first")
    sj.save_pretrained(second, tmp_path / "second")
    assert convert.main([str(tmp_path / "first"), str(tmp_path / "out"), "--to", "flax"]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    capsys.readouterr()
    assert convert.main([str(tmp_path / "second"), str(tmp_path / "out"), "--to", "hf"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a model" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert convert.main([str(tmp_path / "second"), str(tmp_path / "out"), "--to", "hf", "--overwrite"]) == 0
    assert not (tmp_path / "out" / "speechft_params.msgpack").exists()
    assert _same_params(sj.load_pretrained(tmp_path / "out").params, second.params)
    model = transformers.AutoModel.from_pretrained(tmp_path / "out")
    assert model.config.num_hidden_layers == 1


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
