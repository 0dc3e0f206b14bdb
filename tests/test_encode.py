"""`models.encode.encode_source`: every utterance of a source once, with its source index, its
valid-frame states (as if encoded alone) and its encoded labels."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import soundfile as sf

import speechft_jax as sj
from conftest import tiny_encoder_config
from speechft_jax.data.audio import decode_audio
from speechft_jax.data.labels import ClassLabel, SequenceLabels
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import FileSource
from speechft_jax.data.vocab import ClassLabels, Vocabulary
from speechft_jax.models.encode import encode_source

# 400 samples is the CNN's receptive field: one frame
LENGTHS = [8000, 3000, 21000, 400, 12000, 5000, 16000]
SPEAKER = ClassLabel("speaker", ClassLabels(("a", "b")))
PHONES = SequenceLabels("phones", Vocabulary.build(["AH B K"]))


@pytest.fixture(scope="module")
def bundle():
    # per-frame LayerNorm in the CNN: an utterance's states do not depend on what it is batched with
    return sj.init_encoder(tiny_encoder_config(feat_extract_norm="layer"), seed=0)


@pytest.fixture
def source(tmp_path):
    rng = np.random.default_rng(0)
    examples = []
    for i, n in enumerate(LENGTHS):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, 0.1 * rng.normal(size=n).astype(np.float32), 16000)
        fields = {"speaker": "ab"[i % 2], "phones": " ".join(["AH", "B", "K"][:1 + i % 3])}
        examples.append(Example(str(path), fields, origin=f"u{i}"))
    return FileSource(examples)


def test_every_utterance_once_with_its_unbatched_states_and_labels(bundle, source):
    forward = lambda audio, audio_mask: sj.extract_features(bundle, audio, audio_mask)
    encoded = list(encode_source(bundle, source, forward, labels=[SPEAKER, PHONES], batch_size=3))
    assert sorted(u.index for u in encoded) == list(range(len(source)))
    for u in encoded:
        states, _ = sj.extract_features(bundle, decode_audio(source.examples[u.index].path)[None])
        alone = np.asarray(states)[:, 0]  # [L+1, frames, D]
        assert u.states.shape == alone.shape and u.frames == alone.shape[1]
        np.testing.assert_allclose(u.states, alone, atol=1e-4)
        fields = source.fields(u.index)
        assert u.labels[0] == SPEAKER.encode(fields, source.origin(u.index)) and isinstance(u.labels[0], int)
        np.testing.assert_array_equal(u.labels[1], PHONES.encode(fields, source.origin(u.index)))


def test_leading_axes_of_the_forward_are_kept(bundle, source):
    def two_encoders(audio, audio_mask):  # [K=2, L+1, B, T, D], as the alpha sweep's forward
        states, frame_mask = sj.extract_features(bundle, audio, audio_mask)
        return np.stack([states, 2 * states]), frame_mask

    for u in encode_source(bundle, source, two_encoders, batch_size=4):
        assert u.states.shape == (2, bundle.config.num_hidden_layers + 1, u.frames, bundle.config.hidden_size)
        np.testing.assert_array_equal(u.states[1], 2 * u.states[0])
        assert u.labels == ()


def test_closing_early_stops_the_loader(bundle, source, monkeypatch):
    import speechft_jax.data.loader as loader_module

    closed = []
    real_close = loader_module.AudioLoader.close
    monkeypatch.setattr(loader_module.AudioLoader, "close", lambda self: (closed.append(1), real_close(self)))
    forward = lambda audio, audio_mask: sj.extract_features(bundle, audio, audio_mask)
    with contextlib.closing(encode_source(bundle, source, forward, batch_size=2)) as encoded:
        next(encoded)
        assert not closed
    assert closed
