"""Batch-independent features: an utterance's hidden states in any padded batch equal its unpadded
forward, for a group-norm and a layer-norm CNN (`EncoderConfig.batch_independent`), through the
model and through `extract`; and a feature cache never serves features computed the other way."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import speechft_jax as sj
from model_factory import reference_model
from speechft_jax.data.audio import decode_audio
from speechft_jax.data.source import FileSource
from speechft_jax.evaluate.features import feature_cache_key
from speechft_jax.extract import main as extract_main

# tiny transformers models, every weight perturbed (GroupNorm's scale and bias included)
CNN_KINDS = {
    "group": "hubert-base",  # GroupNorm after the first conv, post-LN transformer
    "layer": "wavlm-large",  # LayerNorm after every conv, pre-LN transformer with relative position bias
}
LENGTHS = (2000, 5200, 9000)
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """Per CNN kind: `(encoder directory, audio folder, waveforms, each waveform's unpadded hidden
    states [L+1, frames, hidden])`; the directories are plain transformers exports."""
    root = tmp_path_factory.mktemp("batch_independent")
    rng = np.random.default_rng(0)
    audio = root / "audio"
    audio.mkdir()
    for i, n in enumerate(LENGTHS):  # float WAV: the decoded samples are exactly these
        sf.write(audio / f"u{i}.wav", (0.1 * rng.standard_normal(n)).astype(np.float32), 16000, subtype="FLOAT")
    waves = [decode_audio(audio / f"u{i}.wav") for i in range(len(LENGTHS))]
    out = {}
    for kind, variant in CNN_KINDS.items():
        directory = root / kind
        reference_model(variant, seed=1).save_pretrained(directory)
        bundle = sj.load_pretrained(directory)
        alone = [np.asarray(sj.extract_features(bundle, w[None])[0])[:, 0] for w in waves]
        out[kind] = (directory, audio, waves, alone)
    return out


def _padded(waves, filler_rows: int = 1):
    """The waveforms right-padded to the longest, plus all-padding filler rows (as a last batch has)."""
    total = max(len(w) for w in waves)
    x = np.zeros((len(waves) + filler_rows, total), np.float32)
    mask = np.zeros(x.shape, np.int32)
    for i, w in enumerate(waves):
        x[i, :len(w)], mask[i, :len(w)] = w, 1
    return x, mask


def _worst_difference(bundle, waves, alone) -> float:
    """The largest difference, over every hidden state and valid frame, between each waveform's
    states in one padded batch and its unpadded forward; the frame counts must agree."""
    states, frame_mask = sj.extract_features(bundle, *_padded(waves))
    states, frame_mask = np.asarray(states), np.asarray(frame_mask)
    assert np.isfinite(states).all()  # the filler row too
    worst = 0.0
    for i, expected in enumerate(alone):
        frames = expected.shape[1]
        assert frame_mask[i].sum() == frames
        worst = max(worst, float(np.abs(states[:, i, :frames] - expected).max()))
    return worst


@pytest.mark.parametrize("kind", sorted(CNN_KINDS))
def test_a_padded_batch_gives_each_utterance_its_unpadded_hidden_states(encoders, kind):
    directory, _, waves, alone = encoders[kind]
    bundle = sj.load_pretrained(directory)
    assert _worst_difference(bundle.with_runtime(batch_independent=True), waves, alone) <= TOLERANCE
    if kind == "group":
        # transformers' way normalises over the padding: the same check fails without the option
        assert _worst_difference(bundle, waves, alone) > 1e-3
        # without padding the option computes exactly what it computed before
        unpadded, _ = sj.extract_features(bundle.with_runtime(batch_independent=True), waves[0][None])
        np.testing.assert_array_equal(np.asarray(unpadded)[:, 0], alone[0])


def test_the_fairseq_frame_rule_still_keeps_the_unpadded_frame_count(encoders):
    # the fairseq rule can mark one more frame valid in a padded batch; batch-independent
    # features keep the frames (and values) of each utterance's unpadded forward
    directory, _, waves, alone = encoders["group"]
    bundle = sj.load_pretrained(directory)
    config = bundle.config.replace(frame_mask="fairseq", batch_independent=True)
    assert _worst_difference(bundle.replace(config=config, module=sj.SpeechEncoder(config)), waves, alone) <= TOLERANCE


@pytest.mark.parametrize("kind", sorted(CNN_KINDS))
def test_extract_gives_each_file_its_unpadded_features_at_any_batch_size_and_bucket(encoders, kind, tmp_path):
    directory, audio, _, alone = encoders[kind]
    for batch_size, num_buckets in ((1, 1), (2, 2), (8, 1)):
        out = tmp_path / f"b{batch_size}-n{num_buckets}"
        argv = ["--encoder", str(directory), "--folder", str(audio), "--out", str(out), "--quiet",
                "--batch-size", str(batch_size), "--num-buckets", str(num_buckets)]
        assert extract_main(argv) == 0
        index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
        for i, expected in enumerate(alone):
            assert index[i]["features"] == f"u{i}.npy" and index[i]["frames"] == expected.shape[1]
            got = np.load(out / f"u{i}.npy")
            assert got.shape == expected.shape
            assert float(np.abs(got - expected).max()) <= TOLERANCE, (batch_size, num_buckets, i)


def test_the_feature_cache_key_changes_with_the_option(encoders):
    directory, audio, _, _ = encoders["group"]
    bundle = sj.load_pretrained(directory)
    source = FileSource.from_folder(audio)
    keys = {on: feature_cache_key("pr-test", "weights", bundle.with_runtime(batch_independent=on), source, None)
            for on in (False, True)}
    assert keys[False] != keys[True]
    assert keys[True] == feature_cache_key("pr-test", "weights", bundle.with_runtime(batch_independent=True), source,
                                           None)


def test_the_option_is_a_compute_setting_not_part_of_the_exported_architecture(encoders, tmp_path):
    directory, _, _, _ = encoders["group"]
    bundle = sj.load_pretrained(directory).with_runtime(batch_independent=True)
    sj.save_pretrained(bundle, tmp_path / "hf")
    assert "batch_independent" not in json.loads((tmp_path / "hf" / "config.json").read_text())
    assert sj.load_pretrained(tmp_path / "hf").config.batch_independent is False
    # a Flax directory keeps it with the other compute settings, in its `speechft_jax` block
    sj.save_flax(bundle, tmp_path / "flax")
    assert json.loads((tmp_path / "flax" / "config.json").read_text())["speechft_jax"]["batch_independent"] is True
    assert sj.load_pretrained(tmp_path / "flax").config.batch_independent is True
    with pytest.raises(ValueError, match="hidden_size: not a compute setting"):
        bundle.with_runtime(hidden_size=8)


def test_training_takes_the_option_from_its_model_section(encoders, tmp_path):
    from speechft_jax.train.start_encoder import ModelConfig, start_encoder

    directory, _, _, _ = encoders["group"]
    sj.save_flax(sj.load_pretrained(directory).with_runtime(batch_independent=True), tmp_path / "flax")
    for on in (False, True):  # the run's setting, not the one a Flax directory was saved with
        bundle = start_encoder(ModelConfig(pretrained=str(tmp_path / "flax"), batch_independent=on))
        assert bundle.config.batch_independent is on and bundle.module.config.batch_independent is on
