"""MFCC frames: counts at 50/100 Hz, deltas, and sensitivity to the spectrum."""

import numpy as np

from speechft_jax.data.mfcc import mfcc


def test_frame_counts_match_encoder():
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert mfcc(x).shape == (1 + (16000 - 400) // 160, 13)
    # At 50 Hz there is one frame per wav2vec2/HuBERT frame: 1 + (n - 400) // 320.
    assert mfcc(x, frame_rate=50, deltas=True).shape == (49, 39)
    assert mfcc(x[:399]).shape == (0, 13)


def test_mfcc_separates_spectra():
    t = np.arange(16000) / 16000
    low = np.sin(2 * np.pi * 200 * t)
    high = np.sin(2 * np.pi * 3000 * t)
    a, b = mfcc(low).mean(0), mfcc(high).mean(0)
    assert np.isfinite(a).all() and np.linalg.norm(a - b) > 10
