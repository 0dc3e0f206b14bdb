"""Decoding audio into 16 kHz mono float32 waveforms, and checking that they are usable.

`decode_audio` reads wav, flac or ogg (a path, bytes or a file object) with soundfile, down-mixes to
mono, resamples to 16 kHz with soxr and validates the result; `prepare_waveform` does the same for
an array already in memory (Hugging Face datasets, TFDS). `normalize_waveform` is the per-utterance
zero-mean unit-variance normalisation that HF feature extractors apply when `do_normalize` is set.
Every failure is a `DataError` naming the file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from speechft_jax.data.errors import DataError

SAMPLE_RATE = 16_000
# The standard wav2vec2/HuBERT/WavLM CNN has a receptive field of 400 samples (25 ms): anything
# shorter yields zero frames. Other CNNs differ: loaders take `EncoderConfig.receptive_field`.
MIN_SAMPLES = 400
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")

AudioInput = Union[str, os.PathLike, bytes, BinaryIO]


def _describe(source: AudioInput, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<audio bytes>"


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Down-mix `[samples, channels]` (or `[samples]`) to `[samples]` by averaging channels."""
    if audio.ndim == 1:
        return audio
    if audio.size == 0:
        return np.zeros(0, np.float32)
    if audio.ndim != 2:
        raise ValueError(f"expected [samples] or [samples, channels], got shape {audio.shape}")
    return audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]


def resample(audio: np.ndarray, orig_rate: float, target_rate: float = SAMPLE_RATE) -> np.ndarray:
    """Resample `[samples]` float32 from `orig_rate` to `target_rate` Hz with soxr (HQ).

    The output has `round(samples * target_rate / orig_rate)` samples.
    """
    if orig_rate == target_rate:
        return audio
    return soxr.resample(audio, orig_rate, target_rate).astype(np.float32, copy=False)


def resampled_length(num_samples: int, orig_rate: float, target_rate: float = SAMPLE_RATE) -> int:
    """The length `resample` returns for `num_samples` input samples."""
    if orig_rate == target_rate:
        return int(num_samples)
    return int(round(num_samples * target_rate / orig_rate))


def normalize_waveform(audio: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the utterance (HF `do_normalize`), float32 `[samples]`."""
    audio = audio.astype(np.float32, copy=False)
    return ((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)).astype(np.float32)


def check_waveform(audio: np.ndarray, where: str, min_samples: int = MIN_SAMPLES) -> None:
    """Raise `DataError` if `audio` is empty, too short for the CNN, or has NaN/Inf samples."""
    if audio.size == 0:
        raise DataError(where, "audio is empty (0 samples)")
    if audio.shape[0] < min_samples:
        raise DataError(
            where,
            f"audio has {audio.shape[0]} samples at {SAMPLE_RATE} Hz, fewer than the "
            f"{min_samples} the encoder's CNN needs",
        )
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise DataError(where, f"audio has {bad} NaN or Inf samples")


def prepare_waveform(
    audio: np.ndarray,
    sample_rate: float,
    *,
    where: str = "<array>",
    target_rate: int = SAMPLE_RATE,
    normalize: bool = False,
    min_samples: int = MIN_SAMPLES,
) -> np.ndarray:
    """Turn an in-memory array `[samples]` or `[samples, channels]` into checked 16 kHz mono.

    Integer arrays are scaled to [-1, 1]. Returns float32 `[samples]`.
    """
    audio = np.asarray(audio)
    if audio.dtype.kind in "iu":
        info = np.iinfo(audio.dtype)
        audio = audio.astype(np.float32) / float(max(abs(info.min), info.max))
    elif audio.dtype.kind != "f":
        raise DataError(where, f"audio array has dtype {audio.dtype}, expected float or int")
    if audio.ndim == 2 and audio.shape[0] < audio.shape[1] and audio.shape[0] <= 8:
        audio = audio.T  # [channels, samples] as some datasets store it
    try:
        audio = to_mono(audio.astype(np.float32, copy=False))
    except ValueError as e:
        raise DataError(where, str(e)) from None
    if not sample_rate or sample_rate <= 0:
        raise DataError(where, f"sampling rate must be positive, got {sample_rate!r}")
    # Check before resampling: soxr would smear a single NaN over the whole utterance.
    check_waveform(audio, where, min_samples=1)
    audio = resample(audio, sample_rate, target_rate)
    check_waveform(audio, where, min_samples)
    return normalize_waveform(audio) if normalize else audio


def _open(source: AudioInput):
    if isinstance(source, bytes):
        return io.BytesIO(source)
    return source


def _check_wav_complete(source: AudioInput, where: str) -> None:
    """Raise if a RIFF/WAV file holds fewer data bytes than its header declares.

    libsndfile silently decodes a truncated WAV as shorter audio; the header says otherwise.
    """
    if isinstance(source, bytes):
        head, size = source[:65536], len(source)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            head = f.read(65536)
        size = os.path.getsize(source)
    else:
        return
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    offset = 12
    while offset + 8 <= len(head):
        chunk, declared = head[offset:offset + 4], int.from_bytes(head[offset + 4:offset + 8], "little")
        if chunk == b"data":
            available = size - (offset + 8)
            # 0 and 0xFFFFFFFF mean "unknown length" (streamed writers): nothing to check
            if declared not in (0, 0xFFFFFFFF) and available < declared:
                raise DataError(where, f"truncated WAV: header declares {declared} data bytes, file holds {available}")
            return
        offset += 8 + declared + (declared & 1)


def read_audio(source: AudioInput, *, name: str | None = None) -> tuple[np.ndarray, int]:
    """Read a file as float32 `[samples, channels]` at its own rate; `DataError` if unreadable."""
    where = _describe(source, name)
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise DataError(where, "audio file not found")
    _check_wav_complete(source, where)
    try:
        audio, rate = sf.read(_open(source), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise DataError(where, f"cannot decode audio (expected wav, flac or ogg): {e}") from None
    return audio, int(rate)


def decode_audio(
    source: AudioInput,
    *,
    name: str | None = None,
    target_rate: int = SAMPLE_RATE,
    normalize: bool = False,
    min_samples: int = MIN_SAMPLES,
) -> np.ndarray:
    """Decode, down-mix, resample to `target_rate` and check: float32 `[samples]`."""
    audio, rate = read_audio(source, name=name)
    return prepare_waveform(
        audio, rate, where=_describe(source, name), target_rate=target_rate,
        normalize=normalize, min_samples=min_samples,
    )


def audio_num_samples(source: AudioInput, *, name: str | None = None,
                      target_rate: int = SAMPLE_RATE) -> int:
    """Length in samples after resampling to `target_rate`, read from the header only."""
    where = _describe(source, name)
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise DataError(where, "audio file not found")
    _check_wav_complete(source, where)
    try:
        info = sf.info(_open(source))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise DataError(where, f"cannot read audio header (expected wav, flac or ogg): {e}") from None
    return resampled_length(info.frames, info.samplerate, target_rate)
