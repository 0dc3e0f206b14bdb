"""fairseq wav2vec 2.0 and unilm WavLM checkpoints in, every checkpoint kind back out.

The torch-side files are written here by hand: a transformers model's random weights under the key
names the published checkpoints use, saved by `torch.save` with the config layouts fairseq (a `cfg`
dict, or an old `args` Namespace) and unilm (`cfg` = the model config) write. Nothing here imports
the key map under test to build them.
"""

import argparse

import jax
import numpy as np
import pytest
import torch

import speechft_jax as sj
from fairseq_factory import RunsCode, checkpoint_of, hubert_head, model_cfg, published_state, wav2vec2_head
from model_factory import fairseq_frame_counts, padded_batch, reference_model, reference_outputs
from speechft_jax.checkpoints import params_io
from speechft_jax.checkpoints.fairseq_keys import (conv_layers_string, fairseq_model_config,
                                                   fairseq_state_from_params)

TOLERANCE = 1e-4
AGREEING = (4000, 3992)  # lengths whose valid frames are the same under both frame rules
PADDED = (4000, 2600)    # ... and lengths where fairseq's rule keeps one frame more


# variant -> (transformers reference, fairseq kind, large, checkpoint layout, normalize)
VARIANTS = {
    "wav2vec2-base": ("wav2vec2-base", "wav2vec2", False, "cfg", False),
    "wav2vec2-large": ("wav2vec2-large", "wav2vec2", True, "args", True),
    "wavlm-base": ("wavlm-base", "wavlm", False, "unilm", False),
    "wavlm-large": ("wavlm-large", "wavlm", True, "unilm", True),
    "hubert-base": ("hubert-base", "hubert", False, "cfg", True),
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def written(request, tmp_path_factory):
    """`(variant, transformers model, the state written, path of the .pt)`."""
    reference, kind, large, layout, normalize = VARIANTS[request.param]
    model = reference_model(reference)
    state = published_state(model, layer_norm_cnn=large)
    state.update(wav2vec2_head(target_glu=large) if kind == "wav2vec2" else hubert_head() if kind == "hubert" else {})
    path = tmp_path_factory.mktemp(request.param) / f"{request.param}.pt"
    torch.save(checkpoint_of(layout, kind, state, model_cfg(kind, large), normalize), path)
    return request.param, model, state, path


def _assert_states_match(hidden, ref, frame_mask, what):
    frame_mask = np.asarray(frame_mask)
    assert len(ref.hidden_states) == hidden.shape[0]
    for i, state in enumerate(ref.hidden_states):
        diff = np.abs(np.asarray(hidden[i])[frame_mask] - state.numpy()[frame_mask]).max()
        assert diff <= TOLERANCE, f"{what}: hidden state {i} differs by {diff}"


def test_every_hidden_state_matches_transformers_under_the_formats_frame_rule(written):
    name, model, _, path = written
    reference, kind, _, _, normalize = VARIANTS[name]
    bundle = sj.load_pretrained(path)
    assert bundle.config.model_type == kind
    assert bundle.config.frame_mask == ("transformers" if kind == "wav2vec2" else "fairseq")
    assert bundle.preprocessor["do_normalize"] is normalize
    # a padded batch whose valid frames both rules agree on (its first utterance is unpadded)
    x, mask = padded_batch(seed=4, lengths=AGREEING)
    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    assert not np.asarray(mask)[1].all()
    _assert_states_match(hidden, reference_outputs(model, x, mask), frame_mask, f"{name} padded, rules agree")
    # a padded batch where they do not: the frames kept are fairseq's (HuBERT, WavLM) or the formula's
    x, mask = padded_batch(seed=5, lengths=PADDED)
    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    counts = np.asarray(frame_mask).sum(-1)
    formula = [bundle.config.num_frames(n) for n in PADDED]
    if kind == "wav2vec2":
        np.testing.assert_array_equal(counts, formula)
        _assert_states_match(hidden, reference_outputs(model, x, mask), frame_mask, f"{name} padded")
        return
    np.testing.assert_array_equal(counts, fairseq_frame_counts(mask, hidden.shape[2]))
    assert counts[1] > formula[1]
    # transformers keeps as many frames when its sample mask is stretched over the same zero padding
    stretched = mask.copy()
    stretched[1, :next(n for n in range(PADDED[1], PADDED[0]) if bundle.config.num_frames(n) == counts[1])] = 1
    _assert_states_match(hidden, reference_outputs(model, x, stretched), frame_mask, f"{name} padded, fairseq's rule")


def test_pretraining_head_is_kept_and_saved_in_every_format(written, tmp_path):
    name, _, state, path = written
    kind = VARIANTS[name][1]
    bundle = sj.load_pretrained(path)
    if kind == "wavlm":
        assert bundle.pretraining_head is None  # unilm's WavLM checkpoints hold none
        return
    if kind == "wav2vec2":
        expected = {k: v.numpy() for k, v in state.items() if k.startswith(("quantizer.", "project_q.", "target_glu.",
                                                                             "final_proj."))}
        assert set(bundle.pretraining_head["wav2vec2"]) == set(expected)
        read = lambda head: {k: np.asarray(v) for k, v in head["wav2vec2"].items()}
    else:
        expected = {"label_embs_concat": state["label_embs_concat"].numpy()}
        read = lambda head: {"label_embs_concat": np.asarray(head["label_embs_concat"])}
    for again in (bundle, sj.load_pretrained(sj.save_pretrained(bundle, tmp_path / "hf")),
                  sj.load_pretrained(sj.save_flax(bundle, tmp_path / "flax"))):
        got = read(again.pretraining_head)
        assert set(got) == set(expected)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])


@pytest.mark.parametrize("dropped", [("final_proj.weight", "final_proj.bias"), ("project_q.weight",)])
def test_a_wav2vec2_encoder_without_part_of_its_head_loads_with_one_warning(tmp_path, caplog, dropped):
    model = reference_model("wav2vec2-base")
    state = {**published_state(model, False), **wav2vec2_head(False)}
    for key in dropped:
        del state[key]
    path = tmp_path / "w2v.pt"
    torch.save(checkpoint_of("cfg", "wav2vec2", state, model_cfg("wav2vec2", False), False), path)
    with caplog.at_level("WARNING"):
        bundle = sj.load_pretrained(path)
    assert bundle.pretraining_head is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and f"incomplete pre-training head (missing {', '.join(dropped)})" in warnings[0]


def test_export_maps_back_to_the_published_names_and_import_of_export_is_the_same_bundle(written, tmp_path):
    name, _, state, path = written
    _, kind, _, layout, normalize = VARIANTS[name]
    bundle = sj.load_pretrained(path)
    exported = fairseq_state_from_params(bundle.params, bundle.config, bundle.pretraining_head)
    assert set(exported) == set(state)  # every key as the published checkpoints name it, no more
    for key, value in state.items():
        np.testing.assert_array_equal(exported[key], value.numpy(), err_msg=key)
    cfg, task = fairseq_model_config(bundle.config, normalize, bundle.pretraining_head)
    assert cfg["conv_feature_layers"] == "[(16,10,5)] + [(16,3,2)] + [(16,2,2)]"
    original = model_cfg(kind, VARIANTS[name][2])
    for key in ("final_dim", "latent_vars", "latent_groups", "latent_dim", "target_glu", "activation_fn",
                "layer_norm_first", "extractor_mode", "max_distance"):
        assert cfg.get(key) == original.get(key), key
    if kind == "wavlm":
        checkpoint = {"cfg": cfg, "model": exported}
        assert task == {} and cfg["normalize"] is normalize
    else:
        assert cfg["_name"] == kind and task["normalize"] is normalize
        checkpoint = {"cfg": {"model": cfg, "task": task}, "model": exported}
    again_path = tmp_path / "again.pt"
    torch.save({k: v if k != "model" else {n: torch.tensor(np.asarray(a)) for n, a in v.items()}
                for k, v in checkpoint.items()}, again_path)
    again = sj.load_pretrained(again_path)
    assert again.config == bundle.config and again.preprocessor == bundle.preprocessor
    for a, b in zip(jax.tree_util.tree_leaves(bundle.params), jax.tree_util.tree_leaves(again.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    heads = [jax.tree_util.tree_flatten_with_path(h)[0] if h is not None else [] for h in
             (bundle.pretraining_head, again.pretraining_head)]
    assert [p for p, _ in heads[0]] == [p for p, _ in heads[1]]
    for (_, a), (_, b) in zip(*heads):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_standard_cnn_is_written_as_fairseqs_own_default():
    assert conv_layers_string(sj.EncoderConfig()) == "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"


def test_a_head_of_another_kind_is_left_out_of_the_export_with_one_warning(caplog):
    model = reference_model("wavlm-base")
    config = sj.EncoderConfig.from_hf_dict(model.config.to_dict())
    params, _ = params_io.state_dict_to_params({k: v.numpy() for k, v in model.state_dict().items()}, config)
    head = {"final_proj": {"kernel": np.zeros((32, 8), np.float32), "bias": np.zeros(8, np.float32)},
            "label_embs_concat": np.zeros((5, 8), np.float32)}
    with caplog.at_level("WARNING"):
        state = fairseq_state_from_params(params, config, head)
    assert "label_embs_concat" not in state and "encoder.layers.0.self_attn.grep_a" in state
    assert sum("left out of the export" in r.getMessage() for r in caplog.records) == 1
    # an encoder without a mask embedding (no masking configured) gets fairseq's, zero
    unmasked = config.replace(mask_time_prob=0.0)
    transformers_state = {k: v.numpy() for k, v in model.state_dict().items() if k != "masked_spec_embed"}
    params, _ = params_io.state_dict_to_params(transformers_state, unmasked)
    np.testing.assert_array_equal(fairseq_state_from_params(params, unmasked)["mask_emb"], np.zeros(32))


def test_a_model_fairseq_cannot_express_is_refused_in_one_line():
    config = sj.EncoderConfig(model_type="hubert", conv_pos_batch_norm=True, feat_proj_layer_norm=False)
    with pytest.raises(sj.CheckpointError,
                       match=r"conv_pos_batch_norm=true .*; feat_proj_layer_norm=false .* no fairseq form"):
        fairseq_model_config(config, False)


@pytest.mark.parametrize("layout", ["wav2vec2-cfg", "wav2vec2-args", "wavlm"])
def test_a_pickle_that_runs_code_is_refused_in_every_layout(tmp_path, monkeypatch, layout):
    monkeypatch.chdir(tmp_path)
    state = {"mask_emb": torch.zeros(32)}
    checkpoint = {"wav2vec2-cfg": {"cfg": {"model": {"_name": "wav2vec2", "final_dim": RunsCode()}}, "model": state},
                  "wav2vec2-args": {"args": argparse.Namespace(arch="wav2vec2", dropout=RunsCode()), "model": state},
                  "wavlm": {"cfg": {"encoder_layers": RunsCode()}, "model": state}}[layout]
    torch.save(checkpoint, tmp_path / "evil.pt")
    with pytest.raises(sj.CheckpointError, match=r"refused to load: the pickle asks for (posix|os|nt)\.system"):
        sj.load_pretrained(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED_MARKER").exists()


def _bad_checkpoint(tmp_path, change) -> str:
    """A wav2vec 2.0 or WavLM checkpoint with one thing wrong; its error message."""
    kind = "wavlm" if "wavlm" in change else "wav2vec2"
    model = reference_model(f"{kind}-base")
    state = published_state(model, False)
    state.update(wav2vec2_head(False) if kind == "wav2vec2" else {})
    checkpoint = checkpoint_of("unilm" if kind == "wavlm" else "cfg", kind, state, model_cfg(kind, False), False)
    if change == "unknown-name":
        checkpoint["cfg"]["model"]["_name"] = "data2vec_audio"
    elif change == "fine-tuned":
        checkpoint["cfg"]["model"]["_name"] = "wav2vec_ctc"
    elif change == "no-name":
        del checkpoint["cfg"]["model"]["_name"]
        for key in list(state):
            if key.startswith(("quantizer.", "project_q.")):
                del state[key]
    elif change == "cfg-not-a-mapping":
        checkpoint["cfg"] = ["encoder_layers", 2]
    elif change == "missing-key":
        del state["encoder.layers.1.fc2.weight"]
    elif change == "shape-clash-wavlm":
        state["encoder.layers.1.self_attn.grep_a"] = torch.zeros(1, 3, 1, 1)
    elif change == "head-shape-clash":
        state["final_proj.weight"] = torch.zeros(8, 30)
    elif change == "normalize-not-a-bool":
        checkpoint["cfg"]["task"]["normalize"] = "yes"
    elif change == "no-relative-bias-wavlm":
        checkpoint["cfg"]["relative_position_embedding"] = False
    elif change == "conformer":
        checkpoint["cfg"]["model"]["layer_type"] = "conformer"
    path = tmp_path / "bad.pt"
    torch.save(checkpoint, path)
    with pytest.raises(sj.CheckpointError) as err:
        sj.load_pretrained(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("change, expected", [
    ("unknown-name", "_name='data2vec_audio' is not a pre-trained fairseq HuBERT, wav2vec 2.0 or WavLM model"),
    ("fine-tuned", "_name='wav2vec_ctc' is a fine-tuned fairseq model (its encoder under w2v_encoder.w2v_model), "
                   "not supported"),
    ("no-name", "cannot tell the model kind: the config has no _name or arch"),
    ("cfg-not-a-mapping", "cfg is a list, expected a mapping"),
    ("missing-key", "missing keys: encoder.layers.1.fc2.weight"),
    ("shape-clash-wavlm", "mismatched shapes: encoder.layers.1.self_attn.grep_a has shape (1, 3, 1, 1), the model "
                          "expects (1, 4, 1, 1)"),
    ("head-shape-clash", "pre-training head shapes do not fit"),
    ("normalize-not-a-bool", "normalize='yes', expected true or false"),
    ("no-relative-bias-wavlm", "relative_position_embedding=False, expected True for a WavLM model"),
    ("conformer", "layer_type='conformer' (a conformer encoder) is not supported"),
])
def test_bad_checkpoints_are_one_line_errors_naming_the_file_and_key(tmp_path, change, expected):
    assert expected in _bad_checkpoint(tmp_path, change)


def test_the_hubert_objective_takes_only_a_hubert_head(tmp_path, caplog):
    from types import SimpleNamespace

    from speechft_jax.objectives.hubert import HubertConfig

    model = reference_model("wav2vec2-base")
    path = tmp_path / "w2v.pt"
    torch.save(checkpoint_of("cfg", "wav2vec2", {**published_state(model, False), **wav2vec2_head(False)},
                             model_cfg("wav2vec2", False), False), path)
    student = sj.load_pretrained(path)
    task = SimpleNamespace(name="hubert")
    with pytest.raises(sj.ConfigError, match=r"has a wav2vec2 pre-training head, not HuBERT's"):
        HubertConfig(targets="pretrained_head").prepare(task, student, student.params, None, out_dir=tmp_path, seed=0)
    # a HuBERT teacher gives the targets; the student's wav2vec 2.0 head is not a start for HuBERT's
    hubert = reference_model("hubert-base")
    teacher_path = tmp_path / "hubert.pt"
    torch.save(checkpoint_of("cfg", "hubert", {**published_state(hubert, False), **hubert_head()},
                             model_cfg("hubert", False), False), teacher_path)
    with caplog.at_level("WARNING"):
        hubert_task, _ = HubertConfig(targets="pretrained_head", teacher=str(teacher_path)).prepare(
            task, student, student.params, None, out_dir=tmp_path, seed=0)
    assert sum("is not HuBERT's: ignored" in r.getMessage() for r in caplog.records) == 1
    assert hubert_task is not None
