"""Shared pytest fixtures.

`demo_corpus_tiny`: the `tiny` synthetic corpus, built once per test session (a few seconds).
`data_wav_factory`: writes small audio files (sine + noise) for decoder and loader tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def demo_corpus_tiny(tmp_path_factory) -> Path:
    from speechft_jax.data.synth import ensure_corpus

    return ensure_corpus("tiny", cache_dir=tmp_path_factory.mktemp("corpus_cache"))


@pytest.fixture
def data_wav_factory(tmp_path):
    """`make(name, seconds=1.0, rate=16000, channels=1, seed=0, fmt=None) -> Path`."""
    import soundfile as sf

    def make(name: str, seconds: float = 1.0, rate: int = 16000, channels: int = 1,
             seed: int = 0, subtype: str | None = None) -> Path:
        rng = np.random.default_rng(seed)
        n = int(round(seconds * rate))
        t = np.arange(n) / rate
        audio = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(n)
        audio = np.repeat(audio[:, None], channels, axis=1) if channels > 1 else audio
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio.astype(np.float32), rate, subtype=subtype)
        return path

    return make
