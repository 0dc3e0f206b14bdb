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


# ------------------------------------------------------------------------------ training runs
TRAIN_MODEL_CONFIG = Path(__file__).parents[1] / "configs" / "models" / "tiny-hubert.json"


def tiny_encoder_config(**changes):
    """The tiny test encoder's `EncoderConfig` (transformers keys in `changes` override the file)."""
    import json

    from speechft_jax.models import EncoderConfig

    return EncoderConfig.from_hf_dict({**json.loads(TRAIN_MODEL_CONFIG.read_text()), **changes})


def write_train_config(path: Path, corpus_dir: Path, output_dir: Path, **sections) -> Path:
    """A tiny phone-recognition training config (16 steps, beta 0.25, a checkpoint every 2 steps);
    `sections` replace or extend top-level sections, e.g. `finetune={"l2_to_pretrained": 1.0}`."""
    import yaml

    config = {
        "output_dir": str(output_dir),
        "model": {"config": str(TRAIN_MODEL_CONFIG)},
        "tasks": [{"name": "pr", "kind": "ctc", "batch_size": 8, "num_buckets": 1,
                   "data": {"type": "corpus", "corpus_dir": str(corpus_dir), "task": "pr"}}],
        "optimizer": {"steps": 16, "beta": 0.25, "encoder_lr": 5e-4, "head_lr": 1e-3},
        "finetune": {"early_checkpoints": [0.25]},
        "checkpoint": {"every_steps": 2, "keep": 2},
        "logging": {"every_steps": 1, "progress_bar": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


def copy_stopped_after_last_checkpoint(run_dir: Path, to: Path) -> Path:
    """A copy of the finished run in `run_dir` as if killed after its last checkpoint, before the
    encoder export and the summary."""
    import shutil

    shutil.copytree(run_dir, to)
    (to / "summary.json").unlink()
    shutil.rmtree(to / "encoder")
    return to


@pytest.fixture(scope="session")
def stable_run(demo_corpus_tiny, tmp_path_factory):
    """The reference stable fine-tuning run: `(config_path, TrainResult)`."""
    from speechft_jax.train import load_train_config, train

    root = tmp_path_factory.mktemp("stable_run")
    path = write_train_config(root / "config.yaml", demo_corpus_tiny, root / "run")
    return path, train(load_train_config(path))
