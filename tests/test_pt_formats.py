"""`.pt` files written without torch, s3prl's converted and downstream checkpoints in, and
`convert --to fairseq|s3prl` out: torch reads what we write, and what we write reads back as the
same encoder."""

import argparse

import jax
import ml_dtypes
import numpy as np
import pytest
import torch

import speechft_jax as sj
from fairseq_factory import RunsCode, checkpoint_of, hubert_head, model_cfg, published_state, wav2vec2_head
from model_factory import padded_batch, reference_model
from speechft_jax.checkpoints import safe_unpickle, save_pt
from speechft_jax.checkpoints.pt_formats import pt_checkpoint
from speechft_jax.checkpoints.torch_zip_writer import torch_save_bytes
from speechft_jax.convert import main as convert_main


def _same_params(a, b) -> bool:
    return all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x, y: bool(np.array_equal(x, y)), a, b)))


@pytest.fixture(scope="module")
def hubert_pt(tmp_path_factory):
    """A fairseq HuBERT checkpoint (with its head) and the bundle it loads as."""
    model = reference_model("hubert-base")
    state = {**published_state(model, layer_norm_cnn=False), **hubert_head()}
    path = tmp_path_factory.mktemp("hubert") / "hubert.pt"
    torch.save(checkpoint_of("cfg", "hubert", state, model_cfg("hubert", False), True), path)
    return path, state, sj.load_pretrained(path)


def test_the_writer_gives_files_torch_loads_with_weights_only_and_we_read_back(tmp_path):
    arrays = {"f32": np.arange(6, dtype=np.float32).reshape(2, 3), "f64": np.asfortranarray(np.ones((2, 3))),
              "bf16": np.arange(4).astype(ml_dtypes.bfloat16), "i64": np.arange(3), "bool": np.array([True, False]),
              "scalar": np.float32(2.5), "empty": np.zeros((0, 4), np.float32)}
    config = {"name": "x", "layers": 2, "big": 2 ** 40, "neg": -7, "rate": 0.5, "flag": True, "none": None,
              "pair": (1, "a"), "list": [1, [2.0]], "no": [], "nested": {"k": {}}}
    (tmp_path / "x.pt").write_bytes(torch_save_bytes({"cfg": config, "model": arrays}))
    loaded = torch.load(tmp_path / "x.pt", weights_only=True)
    assert loaded["cfg"] == config
    for key, array in arrays.items():
        tensor = loaded["model"][key]
        as_numpy = tensor.float().numpy() if key == "bf16" else tensor.numpy()
        assert tuple(tensor.shape) == np.shape(array) and np.array_equal(as_numpy, np.asarray(array, as_numpy.dtype))
    ours = safe_unpickle.load_torch_zip(tmp_path / "x.pt")
    assert ours["cfg"] == config
    assert all(np.array_equal(ours["model"][k].numpy(), np.asarray(v)) for k, v in arrays.items())
    with pytest.raises(sj.CheckpointError, match=r"checkpoint\['cfg'\]\['fn'\]: cannot store a builtin_function"):
        torch_save_bytes({"cfg": {"fn": print}})


@pytest.mark.parametrize("fmt", ["fairseq", "s3prl"])
def test_a_hubert_exported_to_fairseq_or_s3prl_reads_back_the_same_and_in_torch(hubert_pt, tmp_path, fmt):
    path, state, bundle = hubert_pt
    out, placeholders = save_pt(bundle, tmp_path / "out.pt", fmt)
    assert placeholders == []
    loaded = torch.load(out, weights_only=True)  # what fairseq's and s3prl's loaders start with
    weights = loaded["model"] if fmt == "fairseq" else loaded["model_weight"]
    assert set(weights) == set(state)  # fairseq's names, head included: their strict load needs no more, no less
    assert all(torch.equal(weights[k], state[k]) for k in state)
    if fmt == "s3prl":
        assert loaded["model_cfg"]["_name"] == "hubert" and loaded["task_cfg"]["normalize"] is True
        assert [len(d) for d in loaded["dictionaries_symbols"]] == [state["label_embs_concat"].shape[0]]
    else:
        assert loaded["cfg"]["model"]["_name"] == "hubert" and loaded["cfg"]["task"]["normalize"] is True
    again = sj.load_pretrained(out)
    assert again.config == bundle.config and again.config.frame_mask == "fairseq"
    assert again.preprocessor["do_normalize"] is True and _same_params(again.params, bundle.params)
    assert _same_params(again.pretraining_head, bundle.pretraining_head)


@pytest.mark.parametrize("variant", ["wav2vec2-base", "wavlm-base"])
def test_wav2vec2_and_wavlm_exports_read_back_the_same(tmp_path, variant):
    kind = variant.split("-")[0]
    model = reference_model(variant)
    state = {**published_state(model, layer_norm_cnn=False), **(wav2vec2_head(False) if kind == "wav2vec2" else {})}
    layout = "unilm" if kind == "wavlm" else "cfg"
    torch.save(checkpoint_of(layout, kind, state, model_cfg(kind, False), False), tmp_path / "in.pt")
    bundle = sj.load_pretrained(tmp_path / "in.pt")
    for fmt in ("fairseq", "s3prl"):
        out, _ = save_pt(bundle, tmp_path / f"{fmt}.pt", fmt)
        loaded = torch.load(out, weights_only=True)
        if kind == "wavlm":  # s3prl's WavLM expert reads unilm's own layout
            assert set(loaded) == {"cfg", "model"} and loaded["cfg"]["normalize"] is False
        weights = loaded.get("model", loaded.get("model_weight"))
        assert set(weights) == set(state)
        again = sj.load_pretrained(out)
        assert again.config == bundle.config and _same_params(again.params, bundle.params)


def test_an_encoder_without_its_head_gets_zero_placeholders_its_output_unchanged(tmp_path):
    model = reference_model("wav2vec2-base")
    model.save_pretrained(tmp_path / "hf")
    bundle = sj.load_pretrained(tmp_path / "hf")  # transformers' Wav2Vec2Model: no quantizer, no final_proj
    checkpoint, placeholders = pt_checkpoint(bundle, "s3prl")
    assert placeholders == ["final_proj.bias", "final_proj.weight", "project_q.bias", "project_q.weight"]
    assert checkpoint["model_cfg"]["quantize_targets"] is False and checkpoint["model_cfg"]["final_dim"] == 32
    assert not any(np.any(checkpoint["model_weight"][k]) for k in placeholders)
    out, _ = save_pt(bundle, tmp_path / "w2v.pt", "s3prl")
    again = sj.load_pretrained(out)
    x, mask = padded_batch()
    np.testing.assert_array_equal(np.asarray(sj.extract_features(again, x, mask)[0]),
                                  np.asarray(sj.extract_features(bundle, x, mask)[0]))


def test_s3prl_converted_checkpoint_loads_as_its_fairseq_original(hubert_pt, tmp_path):
    path, state, bundle = hubert_pt
    cfg = model_cfg("hubert", False)
    converted = {"task_cfg": {"_name": "hubert_pretraining", "normalize": True, "label_rate": 50},
                 "model_cfg": {"_name": "hubert", **cfg}, "model_weight": state,
                 "dictionaries_symbols": [["<s>", "<pad>", "</s>", "<unk>", "a"]]}
    torch.save(converted, tmp_path / "converted.pt")
    loaded = sj.load_pretrained(tmp_path / "converted.pt")
    assert loaded.config == bundle.config and loaded.preprocessor["do_normalize"] is True
    assert _same_params(loaded.params, bundle.params) and _same_params(loaded.pretraining_head, bundle.pretraining_head)


def _downstream(state: dict, **extra) -> dict:
    """An s3prl downstream checkpoint as its runner saves it, the upstream trained."""
    return {"Upstream": {f"model.{k}": v for k, v in state.items()},
            "Downstream": {"model.linear.weight": torch.zeros(3, 4)}, "Featurizer": {"weights": torch.zeros(3)},
            "Optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}, "Step": 100, "Epoch": 0,
            "Args": argparse.Namespace(upstream="hubert_local", upstream_trainable=True), "Config": {"runner": {}},
            **extra}


def test_s3prl_downstream_upstream_weights_load_with_the_base_architecture(hubert_pt, tmp_path):
    path, state, base = hubert_pt
    tuned_state = {k: v + 0.5 if k.startswith("encoder.layers.0.") else v for k, v in state.items()}
    torch.save(_downstream(tuned_state), tmp_path / "dev-best.ckpt")
    with pytest.raises(sj.CheckpointError, match="holds the fine-tuned weights only; give the pre-trained model"):
        sj.load_pretrained(tmp_path / "dev-best.ckpt")
    tuned = sj.load_pretrained(tmp_path / "dev-best.ckpt", like=base)
    assert tuned.config == base.config and tuned.config.frame_mask == "fairseq"
    layer0 = tuned.params["encoder"]["layers_0"]["attention"]["q_proj"]["kernel"]
    expected = (state["encoder.layers.0.self_attn.q_proj.weight"] + 0.5).numpy().T
    np.testing.assert_allclose(np.asarray(layer0), expected, rtol=0, atol=0)
    layer1 = tuned.params["encoder"]["layers_1"]
    assert _same_params(layer1, base.params["encoder"]["layers_1"])
    torch.save(_downstream(state, Config={"evil": RunsCode()}), tmp_path / "evil.ckpt")
    with pytest.raises(sj.CheckpointError, match=r"refused to load: the pickle asks for (posix|os|nt)\.system"):
        sj.load_pretrained(tmp_path / "evil.ckpt", like=base)
    torch.save({"Upstream": {"encoder.x": torch.zeros(2)}}, tmp_path / "odd.ckpt")
    with pytest.raises(sj.CheckpointError, match="expected every key to start with 'model.'"):
        sj.load_pretrained(tmp_path / "odd.ckpt", like=base)


def test_convert_to_fairseq_and_s3prl_and_merge_an_s3prl_downstream_checkpoint(hubert_pt, tmp_path, capsys):
    path, state, base = hubert_pt
    torch.save(_downstream({k: v * 1.5 for k, v in state.items()}), tmp_path / "tuned.ckpt")
    assert convert_main([str(tmp_path / "tuned.ckpt"), str(tmp_path / "tuned.pt"), "--to", "s3prl",
                         "--like", str(path)]) == 0
    assert "(s3prl): hubert, 2 layers" in capsys.readouterr().out
    assert convert_main([str(tmp_path / "tuned.ckpt"), str(tmp_path / "tuned.pt"), "--to", "s3prl",
                         "--like", str(path)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert convert_main([str(path), str(tmp_path / "out"), "--to", "fairseq"]) == 2
    assert "expected a file name ending in .pt" in capsys.readouterr().err
    from speechft_jax.merge.__main__ import main as merge_main
    assert merge_main(["--pretrained", str(path), "--finetuned", str(tmp_path / "tuned.ckpt"), "--alpha", "0.5",
                       "--out", str(tmp_path / "merged")]) == 0
    merged = sj.load_pretrained(tmp_path / "merged")
    kernel = np.asarray(merged.params["encoder"]["layers_1"]["feed_forward"]["output_dense"]["kernel"])
    np.testing.assert_allclose(kernel, state["encoder.layers.1.fc2.weight"].numpy().T * 1.25, rtol=1e-6)
    assert convert_main([str(tmp_path / "merged"), str(tmp_path / "merged.pt"), "--to", "fairseq"]) == 0
    assert "final_proj.bias, final_proj.weight were written as zeros" not in capsys.readouterr().err  # head kept


@pytest.mark.parametrize("layout", ["s3prl-converted", "s3prl-decoar2", "s3prl-downstream"])
def test_a_pickle_that_runs_code_is_refused_in_every_s3prl_layout(tmp_path, monkeypatch, layout):
    monkeypatch.chdir(tmp_path)
    weight = torch.zeros(2)
    checkpoint = {"s3prl-converted": {"task_cfg": {"normalize": RunsCode()}, "model_cfg": {"_name": "hubert"},
                                      "model_weight": {"mask_emb": weight}},
                  "s3prl-decoar2": {"model": {"post_extract_proj.weight": weight}, "updates": RunsCode()},
                  "s3prl-downstream": {"Upstream": {"model.mask_emb": weight}, "Args": RunsCode()}}[layout]
    torch.save(checkpoint, tmp_path / "evil.ckpt")
    with pytest.raises(sj.CheckpointError, match=r"refused to load: the pickle asks for (posix|os|nt)\.system"):
        sj.load_pretrained(tmp_path / "evil.ckpt")
    assert not (tmp_path / "PWNED_MARKER").exists()
