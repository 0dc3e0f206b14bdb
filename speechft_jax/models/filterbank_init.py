"""A filterbank start for the CNN feature extractor of an encoder pre-trained from scratch.

`filterbank_cnn(config, params)` replaces the CNN's random weights: the first conv becomes a bank
of mel-spaced Gabor filters (cosine and sine pairs, unit norm, `gabor_filterbank`) and every later
conv a per-channel average over its kernel, so that the CNN starts as a short-time band-energy
front end (filter, rectify with GELU, average over the stride) instead of random projections.
Everything else keeps its random initialisation.

Why: with a dense first conv (a small stride) and an averaging conv after it, the rectified band
outputs are averaged over many phases, as a spectrogram's magnitude is; a first conv that samples
its output once per frame keeps far less of the long-term spectrum that tells speakers apart
(README, "The tiny pre-trained HuBERT", has the measured figures). It needs every conv layer to
have the same number of channels, an even number.
"""

from __future__ import annotations

import numpy as np

from speechft_jax.data.mfcc import hz_to_mel, mel_to_hz
from speechft_jax.models.config import ConfigError, EncoderConfig


def gabor_filterbank(channels: int, taps: int, *, sample_rate: int = 16000, fmin: float = 60.0,
                     fmax: float = 7600.0) -> np.ndarray:
    """`[taps, 1, channels]` conv kernel: `channels // 2` centre frequencies evenly spaced on the mel
    scale, each as a cosine and a sine under a Gaussian (times Hann) envelope whose width follows
    the band (bandwidth max(80 Hz, 0.2 f)); every filter has unit L2 norm."""
    if channels % 2 or channels < 2:
        raise ConfigError(f"conv_dim[0]={channels}: a Gabor filterbank needs an even number of channels")
    centres = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(min(fmax, sample_rate / 2)), channels // 2))
    t = (np.arange(taps) - (taps - 1) / 2) / sample_rate
    window = np.hanning(taps) if taps > 2 else np.ones(taps)
    filters = []
    for centre in centres:
        sigma = 0.265 / max(80.0, 0.2 * centre)  # seconds: a Gaussian whose -3 dB width is that bandwidth
        envelope = np.exp(-0.5 * (t / sigma) ** 2) * window
        for phase in (np.cos, np.sin):
            w = envelope * phase(2 * np.pi * centre * t)
            filters.append(w / max(np.linalg.norm(w), 1e-12))
    return np.stack(filters, axis=1)[:, None, :].astype(np.float32)


def filterbank_cnn(config: EncoderConfig, params: dict) -> dict:
    """`params` with the CNN's convs set as the module docstring says (works under `jax.jit`)."""
    if config.model_type == "decoar2":
        raise ConfigError("cnn_init='filterbank': model_type 'decoar2' has no CNN (its front end is a fixed filterbank)")
    dims = tuple(config.conv_dim)
    if len(set(dims)) != 1:
        raise ConfigError(f"conv_dim={list(dims)}: the filterbank start needs every conv layer to have the same "
                          f"number of channels")
    channels = dims[0]
    extractor = dict(params["feature_extractor"])
    for index, taps in enumerate(config.conv_kernel):
        name = f"conv_layers_{index}"
        layer = dict(extractor[name])
        conv = dict(layer["conv"])
        if index == 0:
            kernel = gabor_filterbank(channels, taps)
        else:  # output channel c = the mean of input channel c over the kernel
            kernel = np.eye(channels, dtype=np.float32)[None] * np.full((taps, 1, 1), 1.0 / taps, np.float32)
        if tuple(conv["kernel"].shape) != kernel.shape:
            raise ConfigError(f"feature_extractor.{name}.conv.kernel: shape {tuple(conv['kernel'].shape)}, "
                              f"expected {kernel.shape} for the filterbank start")
        conv["kernel"] = kernel.astype(conv["kernel"].dtype)
        if "bias" in conv:
            conv["bias"] = np.zeros(conv["bias"].shape, conv["bias"].dtype)
        layer["conv"] = conv
        extractor[name] = layer
    return {**params, "feature_extractor": extractor}
