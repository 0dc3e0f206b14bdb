"""MFCC frames in numpy: features for the demo corpus's linear probe and for k-means targets.

`mfcc(audio)` gives `[frames, n_mfcc]` (or `[frames, 3 * n_mfcc]` with deltas) from a 16 kHz
waveform: pre-emphasis, 25 ms Hamming windows, an HTK mel filterbank, log, DCT-II and liftering,
like Kaldi's defaults. Frames are not centred: `1 + (samples - 400) // hop`, so at
`frame_rate=50` (hop 320) there is exactly one frame per wav2vec2/HuBERT encoder frame, and at
`frame_rate=100` two.
"""

from __future__ import annotations

import functools

import numpy as np

from speechft_jax.data.audio import SAMPLE_RATE

WINDOW_SAMPLES = 400  # 25 ms at 16 kHz


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * np.expm1(np.asarray(mel, np.float64) / 1127.0)


@functools.lru_cache(maxsize=16)
def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int = SAMPLE_RATE,
                   fmin: float = 20.0, fmax: float | None = None) -> np.ndarray:
    """Triangular filters on the HTK mel scale, `[n_mels, n_fft // 2 + 1]`."""
    fmax = sample_rate / 2 if fmax is None else fmax
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs - lower) / (centre - lower)
    fall = (upper - freqs) / (upper - centre)
    return np.maximum(0.0, np.minimum(rise, fall))


@functools.lru_cache(maxsize=16)
def _dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    k = np.arange(n_mfcc)[:, None]
    n = np.arange(n_mels)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    return basis.T  # [n_mels, n_mfcc]


def delta(features: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over time of `[frames, dim]` (edges repeated), same shape."""
    if len(features) == 0:
        return features
    padded = np.pad(features, ((width, width), (0, 0)), mode="edge")
    n = len(features)
    num = sum(k * (padded[width + k:width + k + n] - padded[width - k:width - k + n])
              for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def mfcc(audio: np.ndarray, *, sample_rate: int = SAMPLE_RATE, frame_rate: int = 100,
         n_mfcc: int = 13, n_mels: int = 23, n_fft: int = 512,
         window_samples: int = WINDOW_SAMPLES, preemphasis: float = 0.97, lifter: float = 22.0,
         deltas: bool = False) -> np.ndarray:
    """MFCCs of a float `[samples]` waveform: float32 `[frames, n_mfcc]` (x3 with `deltas`).

    `frame_rate` is 100 (10 ms hop) or 50 (20 ms hop); audio shorter than one window gives
    zero frames.
    """
    if sample_rate % frame_rate:
        raise ValueError(f"frame_rate {frame_rate} must divide sample_rate {sample_rate}")
    hop = sample_rate // frame_rate
    x = np.asarray(audio, np.float64)
    count = 0 if len(x) < window_samples else 1 + (len(x) - window_samples) // hop
    dim = n_mfcc * (3 if deltas else 1)
    if count == 0:
        return np.zeros((0, dim), np.float32)
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(count, window_samples), strides=(x.strides[0] * hop, x.strides[0]),
        writeable=False)
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = np.concatenate([frames[:, :1] * (1 - preemphasis),
                             frames[:, 1:] - preemphasis * frames[:, :-1]], axis=1)
    frames = frames * np.hamming(window_samples)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    mel = power @ mel_filterbank(n_mels, n_fft, sample_rate).T
    ceps = np.log(np.maximum(mel, 1e-10)) @ _dct_matrix(n_mfcc, n_mels)
    if lifter:
        ceps *= 1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(n_mfcc) / lifter)
    if deltas:
        d1 = delta(ceps)
        ceps = np.concatenate([ceps, d1, delta(d1)], axis=1)
    return ceps.astype(np.float32)
