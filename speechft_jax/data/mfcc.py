"""MFCC frames, in numpy or in JAX: features for the demo corpus's probes and HuBERT's k-means targets.

`mfcc(audio)` gives `[frames, n_mfcc]` (or `[frames, 3 * n_mfcc]` with deltas) from a 16 kHz
waveform: pre-emphasis, 25 ms Hamming windows, an HTK mel filterbank, log, DCT-II and liftering,
like Kaldi's defaults. Frames are not centred: `1 + (samples - window) // hop`, so at
`frame_rate=50` (hop 320) there is exactly one frame per wav2vec2/HuBERT encoder frame, and at
`frame_rate=100` two.

`mfcc_batch(audio, lengths, xp=jnp)` is the same computation on a padded batch `[batch, samples]`
with any window and hop (e.g. an encoder's receptive field and stride, so that frame t of the MFCC
is frame t of the encoder); deltas repeat each row's last real frame, as `mfcc` repeats its last.
Both run through one implementation, with `xp` = numpy or `jax.numpy`.
"""

from __future__ import annotations

import functools

import numpy as np

from speechft_jax.data.audio import SAMPLE_RATE

WINDOW_SAMPLES = 400  # 25 ms at 16 kHz


def hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * np.expm1(np.asarray(mel, np.float64) / 1127.0)


@functools.lru_cache(maxsize=16)
def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int = SAMPLE_RATE,
                   fmin: float = 20.0, fmax: float | None = None) -> np.ndarray:
    """Triangular filters on the HTK mel scale, `[n_mels, n_fft // 2 + 1]`."""
    fmax = sample_rate / 2 if fmax is None else fmax
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
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


def _frame_count(samples, window: int, hop: int, xp=np):
    return xp.maximum(0, (xp.asarray(samples) - window) // hop + 1)


def delta(features, width: int = 2, lengths=None, xp=np):
    """Regression deltas over time of `[..., frames, dim]`; the frames past each row's
    `lengths` (default: all frames are real) are replaced by its last real frame."""
    frames = features.shape[-2]
    if frames == 0:
        return features
    last = (frames - 1) if lengths is None else xp.maximum(xp.asarray(lengths) - 1, 0)[..., None]
    t = xp.arange(frames)

    def shifted(k):
        index = xp.clip(t + k, 0, last)
        index = xp.broadcast_to(index, features.shape[:-1])[..., None]
        return xp.take_along_axis(features, index, axis=-2)

    num = sum(k * (shifted(k) - shifted(-k)) for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def mfcc_batch(audio, lengths=None, *, xp=None, sample_rate: int = SAMPLE_RATE, hop: int = 160,
               window_samples: int = WINDOW_SAMPLES, n_mfcc: int = 13, n_mels: int = 23,
               n_fft: int = 512, preemphasis: float = 0.97, lifter: float = 22.0, deltas: bool = False):
    """MFCCs of a padded batch `[batch, samples]` -> `[batch, frames, n_mfcc (x3 with deltas)]`.

    `lengths` `[batch]` are the real sample counts (for the deltas' edge); `xp` is numpy
    (default) or `jax.numpy` (jit-friendly: all shapes are static).
    """
    xp = np if xp is None else xp
    dtype = np.float64 if xp is np else np.float32
    x = xp.asarray(audio, dtype)
    count = int(_frame_count(x.shape[-1], window_samples, hop))
    dim = n_mfcc * (3 if deltas else 1)
    if count == 0:
        return xp.zeros(x.shape[:-1] + (0, dim), np.float32)
    index = hop * np.arange(count)[:, None] + np.arange(window_samples)[None, :]
    frames = x[..., index]  # [batch, count, window]
    frames = frames - frames.mean(axis=-1, keepdims=True)
    frames = xp.concatenate([frames[..., :1] * (1 - preemphasis),
                             frames[..., 1:] - preemphasis * frames[..., :-1]], axis=-1)
    frames = frames * np.hamming(window_samples).astype(dtype)
    power = xp.abs(xp.fft.rfft(frames, n=n_fft, axis=-1)) ** 2
    mel = power @ mel_filterbank(n_mels, n_fft, sample_rate).T.astype(dtype)
    ceps = xp.log(xp.maximum(mel, 1e-10)) @ _dct_matrix(n_mfcc, n_mels).astype(dtype)
    if lifter:
        ceps = ceps * (1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(n_mfcc) / lifter)).astype(dtype)
    if deltas:
        frame_lengths = None if lengths is None else _frame_count(lengths, window_samples, hop, xp)
        d1 = delta(ceps, lengths=frame_lengths, xp=xp)
        ceps = xp.concatenate([ceps, d1, delta(d1, lengths=frame_lengths, xp=xp)], axis=-1)
    return ceps.astype(np.float32)


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
    return mfcc_batch(np.asarray(audio)[None], sample_rate=sample_rate, hop=sample_rate // frame_rate,
                      window_samples=window_samples, n_mfcc=n_mfcc, n_mels=n_mels, n_fft=n_fft,
                      preemphasis=preemphasis, lifter=lifter, deltas=deltas)[0]
