"""DeCoAR 2.0's front end: a Kaldi log-mel filterbank, per-utterance CMVN, every second frame.

Waveform `[batch, samples]` (16 kHz floats as loaded, not scaled to 16-bit range: s3prl passes
them so) -> features `[batch, frames, 80]` at 50 frames per second, what s3prl's
`upstream/decoar2` feeds its input linear. Its `torchaudio.compliance.kaldi.fbank` call keeps
Kaldi's defaults but for the window:

- 25 ms frames every 10 ms, only those that fit (`snip_edges`): `1 + (samples - 400) // 160`;
  per frame the DC offset is removed, then pre-emphasis 0.97 (the first sample against itself),
  a symmetric Hamming window, zero padding to 512 samples, the power spectrum;
- 80 triangular filters, each linear on the mel scale `1127 ln(1 + f / 700)`, their edges evenly
  spaced in mel from 20 Hz to Nyquist (the Nyquist bin has no weight); `log(max(energy, eps))`
  with float32's eps; no dither, no energy coefficient;
- CMVN over each utterance's frames: `(x - mean) / (1e-10 + std)`, the unbiased std (n - 1);
- frames 0, 2, 4, ... kept: `ceil(frames / 2)`, the conv length formula of a decoar2 config
  (`EncoderConfig`'s docstring).

In a right-padded batch the statistics run over each utterance's valid frames only (frames that
hold no padded sample, counted from the sample mask), so an utterance's features do not depend on
its batch; padded frames are 0. Where s3prl fails (shorter than one frame) or divides by zero
(one frame: the std of one value), the features are 0.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from speechft_jax.data.mfcc import hz_to_mel
from speechft_jax.models.config import EncoderConfig

SAMPLE_RATE = 16000
WINDOW = 400          # 25 ms
HOP = 160             # 10 ms
FFT_SIZE = 512        # the window rounded up to a power of two
NUM_MEL_BINS = 80
LOW_FREQ = 20.0
PREEMPHASIS = 0.97
LOG_FLOOR = float(np.finfo(np.float32).eps)
CMVN_EPS = 1e-10
KEEP_EVERY = 2        # 100 -> 50 frames per second


@functools.lru_cache(maxsize=4)
def kaldi_mel_banks(num_bins: int = NUM_MEL_BINS, fft_size: int = FFT_SIZE, sample_rate: int = SAMPLE_RATE,
                    low_freq: float = LOW_FREQ) -> np.ndarray:
    """Kaldi's mel filters `[fft_size // 2 + 1, num_bins]` (float64), up to Nyquist."""
    low, high = hz_to_mel(low_freq), hz_to_mel(sample_rate / 2)
    edges = low + np.arange(num_bins + 2) * (high - low) / (num_bins + 1)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    mel = hz_to_mel(np.arange(fft_size // 2) * sample_rate / fft_size)[None, :]
    weights = np.maximum(0.0, np.minimum((mel - left) / (centre - left), (right - mel) / (right - centre)))
    return np.pad(weights, ((0, 0), (0, 1))).T  # Kaldi gives the Nyquist bin no weight


def fbank_frames(samples):
    """Filterbank frames of `samples` samples (an int, or an integer array under jit): 0 when too short."""
    frames = (samples - WINDOW) // HOP + 1
    return max(frames, 0) if isinstance(frames, int) else jnp.maximum(frames, 0)


def log_mel_fbank(waveforms):
    """Kaldi's log-mel filterbank of every frame: `[batch, samples]` -> float32 `[batch, frames, 80]`."""
    frames = fbank_frames(waveforms.shape[-1])
    index = HOP * np.arange(frames)[:, None] + np.arange(WINDOW)[None, :]
    x = waveforms.astype(jnp.float32)[:, index]                         # [batch, frames, 400]
    x = x - jnp.mean(x, axis=-1, keepdims=True)
    x = jnp.concatenate([x[..., :1] * (1.0 - PREEMPHASIS), x[..., 1:] - PREEMPHASIS * x[..., :-1]], axis=-1)
    x = x * np.hamming(WINDOW).astype(np.float32)                        # symmetric: 0.54 - 0.46 cos(2 pi n / 399)
    spectrum = jnp.fft.rfft(x, n=FFT_SIZE, axis=-1)
    power = jnp.square(spectrum.real) + jnp.square(spectrum.imag)       # [batch, frames, 257]
    # full float32 precision: a TPU / GPU default matmul would round the power spectrum to bf16 / tf32
    mel = jnp.matmul(power, kaldi_mel_banks().astype(np.float32), precision=jax.lax.Precision.HIGHEST)
    return jnp.log(jnp.maximum(mel, LOG_FLOOR))


def utterance_cmvn(features, valid_frames):
    """`(x - mean) / (1e-10 + std)` per utterance and feature over its first `valid_frames` frames
    (std unbiased): `[batch, frames, dim]`, `[batch]` -> `[batch, frames, dim]`, 0 past the valid frames."""
    valid = (jnp.arange(features.shape[1])[None, :] < valid_frames[:, None])[..., None]
    count = valid_frames.astype(jnp.float32)[:, None, None]
    mean = jnp.sum(jnp.where(valid, features, 0.0), axis=1, keepdims=True) / jnp.maximum(count, 1.0)
    centred = jnp.where(valid, features - mean, 0.0)
    std = jnp.sqrt(jnp.sum(jnp.square(centred), axis=1, keepdims=True) / jnp.maximum(count - 1.0, 1.0))
    return centred / (CMVN_EPS + std)


class FbankFrontEnd(nn.Module):
    """Waveforms `[batch, samples]` (+ 0/1 sample mask, right padding, or None) -> the normalised
    filterbank features `[batch, config.num_frames(samples), 80]`; no parameters."""

    config: EncoderConfig

    @nn.compact
    def __call__(self, waveforms, attention_mask=None):
        if attention_mask is None:
            lengths = jnp.full(waveforms.shape[:1], waveforms.shape[-1], jnp.int32)
        else:
            lengths = jnp.sum(attention_mask.astype(jnp.int32), axis=-1)
        features = utterance_cmvn(log_mel_fbank(waveforms), fbank_frames(lengths))
        return features[:, ::KEEP_EVERY].astype(jnp.dtype(self.config.dtype))
