"""`objective: score`: SCORE correspondence fine-tuning through the trainer, and the loader's views."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import TRAIN_MODEL_CONFIG, tiny_encoder_config, write_train_config
from speechft_jax.checkpoints import save_pretrained
from speechft_jax.data import AudioLoader, LoaderConfig
from speechft_jax.data.augment import ViewConfig
from speechft_jax.data.synth import corpus_audio
from speechft_jax.models.config import ConfigError
from speechft_jax.train import load_train_config, train


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    from speechft_jax.models.pretrained import init_encoder

    return save_pretrained(init_encoder(tiny_encoder_config(), seed=5), tmp_path_factory.mktemp("score_start") / "model")


def _score_config(tmp_path, corpus, start, **sections):
    task = {"name": "score", "kind": "score", "batch_size": 4, "num_buckets": 1, "max_seconds": 2.0,
            "data": {"type": "corpus", "corpus_dir": str(corpus), "task": "audio"}}
    return write_train_config(
        tmp_path / "config.yaml", corpus, tmp_path / "run", objective="score", tasks=[task],
        model={"pretrained": str(start), "config": None},
        score=sections.pop("score", {"trainable_layers": 1, "projection_dim": 32}),
        optimizer={"steps": 30, "beta": 0.0, "encoder_lr": 2e-3, "head_lr": 2e-3, "warmup_fraction": 0.1,
                   "hold_fraction": 0.9},
        finetune={"early_checkpoints": []}, checkpoint={"every_steps": 100, "keep": 1}, **sections)


def test_score_lowers_its_loss_and_trains_only_the_top_layers(demo_corpus_tiny, pretrained_dir, tmp_path):
    result = train(load_train_config(_score_config(tmp_path, demo_corpus_tiny, pretrained_dir)))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = np.array([r["score/loss"] for r in rows if "score/loss" in r])
    assert len(losses) == 30 and np.isfinite(losses).all()
    assert losses[-6:].mean() < 0.9 * losses[:3].mean(), losses
    before = load_file(pretrained_dir / "model.safetensors")
    after = load_file(result.encoder_dir / "model.safetensors")
    changed = [k for k in before if not np.array_equal(before[k], after[k])]
    assert changed and all(k.startswith("encoder.layers.1.") for k in changed), changed
    assert len(changed) >= 10  # every weight matrix of the trained layer moved


def test_score_needs_a_pretrained_encoder(demo_corpus_tiny, tmp_path):
    path = _score_config(tmp_path, demo_corpus_tiny, "x")
    import yaml

    config = yaml.safe_load(path.read_text())
    config["model"] = {"config": str(TRAIN_MODEL_CONFIG)}
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="model.pretrained"):
        load_train_config(path)


def test_views_are_a_speed_and_pitch_perturbed_copy(demo_corpus_tiny):
    source = corpus_audio(demo_corpus_tiny, "train")
    loader = AudioLoader(source, [], LoaderConfig(batch_size=4, num_buckets=2, train=True, seed=1,
                                                  view=ViewConfig(random_order=False)),
                         process_index=0, process_count=1)
    ratios = []
    for batch, _ in zip(loader, range(6)):
        assert batch["view_audio"].shape == batch["audio"].shape
        for row in np.flatnonzero(batch["example_mask"]):
            n, m = batch["audio_mask"][row].sum(), batch["view_audio_mask"][row].sum()
            ratios.append(m / n)
    loader.close()
    expected = [1 / f for f in ViewConfig().speed_factors]
    assert all(min(abs(r - e) for e in expected) < 0.01 for r in ratios), ratios
    assert len({round(r, 1) for r in ratios}) >= 2
