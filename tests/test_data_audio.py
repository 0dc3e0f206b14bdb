"""Decoding, resampling, down-mixing, normalisation and the bad-audio errors."""

import numpy as np
import pytest
import soundfile as sf

from speechft_jax.data.audio import (
    audio_num_samples, decode_audio, normalize_waveform, prepare_waveform,
)
from speechft_jax.data.errors import DataError


@pytest.mark.parametrize("name,rate,channels", [
    ("a.wav", 16000, 1), ("b.flac", 44100, 2), ("c.ogg", 8000, 1), ("d.wav", 22050, 2),
])
def test_decode_resamples_to_16k_mono(data_wav_factory, name, rate, channels):
    path = data_wav_factory(name, seconds=0.5, rate=rate, channels=channels)
    audio = decode_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 8000) <= 1
    assert audio_num_samples(path) == len(audio)
    # The 220 Hz tone survives resampling.
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 220) < 4


def test_normalize_matches_hf_feature_extractor():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 3 + 1
    y = normalize_waveform(x)
    assert abs(y.mean()) < 1e-5 and abs(y.std() - 1) < 1e-3


def test_prepare_waveform_int16_and_channels_first():
    pcm = (np.sin(np.arange(16000) / 5) * 20000).astype(np.int16)
    out = prepare_waveform(np.stack([pcm, pcm]), 16000)  # [channels, samples]
    assert out.shape == (16000,) and np.abs(out).max() <= 1.0


def test_bad_audio_errors_name_the_file(tmp_path, data_wav_factory):
    missing = tmp_path / "missing.wav"
    with pytest.raises(DataError, match="missing.wav: audio file not found"):
        decode_audio(missing)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really audio" * 10)
    with pytest.raises(DataError, match="corrupt.wav: cannot decode audio"):
        decode_audio(corrupt)
    good = data_wav_factory("good.flac", seconds=2.0)
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated.flac"):
        decode_audio(truncated)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(DataError, match="empty.wav: audio is empty"):
        decode_audio(empty)
    short = data_wav_factory("short.wav", seconds=0.01)
    with pytest.raises(DataError, match="short.wav: audio has 160 samples .* fewer than the 400"):
        decode_audio(short)
    nan = tmp_path / "nan.wav"
    x = np.zeros(1600, np.float32)
    x[5] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match="nan.wav: audio has 1 NaN or Inf samples"):
        decode_audio(nan)
    # Each message is a single line.
    try:
        decode_audio(corrupt)
    except DataError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_truncated_wav_is_an_error_not_shorter_audio(tmp_path, data_wav_factory, subtype):
    from speechft_jax.data.audio import audio_num_samples

    good = data_wav_factory("good.wav", seconds=1.0, subtype=subtype)
    assert decode_audio(good).shape == (16000,)
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.wav: truncated WAV: header declares"):
        decode_audio(truncated)
    with pytest.raises(DataError, match="cut.wav: truncated WAV"):
        audio_num_samples(truncated)
    with pytest.raises(DataError, match="truncated WAV"):
        decode_audio(truncated.read_bytes(), name="cut.wav")
