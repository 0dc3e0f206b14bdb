"""`objective: hubert`: masked prediction through the trainer (k-means of MFCC, of a layer, and a
teacher's pre-training head), on the tiny corpus with the tiny encoder."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import TRAIN_MODEL_CONFIG, tiny_encoder_config, write_train_config
from speechft_jax.checkpoints import load_pretrained, save_pretrained
from speechft_jax.models.config import ConfigError
from speechft_jax.objectives.hubert import KMEANS_NAME, _mfcc_fn
from speechft_jax.objectives.kmeans import assign_clusters, load_kmeans
from speechft_jax.objectives.hubert import init_hubert_head
from speechft_jax.train import load_train_config, train

HUBERT_TASK = {"name": "hubert", "kind": "hubert", "batch_size": 8, "num_buckets": 1}


def _hubert_config(root, corpus, output, hubert, **sections):
    task = dict(HUBERT_TASK, data={"type": "corpus", "corpus_dir": str(corpus), "task": "audio"})
    sections.setdefault("optimizer", {"steps": 40, "beta": 0.0, "encoder_lr": 1e-3, "head_lr": 1e-3,
                                      "warmup_fraction": 0.05, "hold_fraction": 0.9})
    return write_train_config(root / "config.yaml", corpus, output, objective="hubert", hubert=hubert,
                              tasks=[task], finetune={"early_checkpoints": [], "freeze_cnn": False},
                              checkpoint={"every_steps": 100, "keep": 1}, **sections)


def _losses(run_dir, key="hubert/masked_loss"):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return np.array([r[key] for r in rows if key in r])


@pytest.fixture(scope="module")
def mfcc_run(demo_corpus_tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("hubert_mfcc")
    path = _hubert_config(root, demo_corpus_tiny, root / "run",
                          {"targets": "kmeans_mfcc", "num_clusters": 8, "final_dim": 16})
    return root / "run", train(load_train_config(path))


def test_pretraining_on_mfcc_clusters_lowers_the_masked_loss(mfcc_run):
    run_dir, result = mfcc_run
    losses = _losses(run_dir)
    assert len(losses) == 40 and np.isfinite(losses).all()
    assert losses[-8:].mean() < 0.8 * losses[:4].mean(), losses
    accuracy = _losses(run_dir, "hubert/masked_accuracy")
    assert accuracy[-8:].mean() > accuracy[:4].mean() + 0.05


def test_the_kmeans_and_the_head_are_saved_with_the_run(mfcc_run):
    run_dir, result = mfcc_run
    centroids, info = load_kmeans(run_dir / KMEANS_NAME)
    assert centroids.shape == (8, 39) and info["targets"] == "kmeans_mfcc"
    bundle = load_pretrained(result.encoder_dir)
    assert bundle.pretraining_head["label_embs_concat"].shape == (8, 16)
    assert bundle.pretraining_head["final_proj"]["kernel"].shape == (bundle.config.hidden_size, 16)
    from transformers import AutoModel

    model = AutoModel.from_pretrained(result.encoder_dir)  # the head file does not bother transformers
    assert type(model).__name__ == "HubertModel"


def test_mfcc_targets_have_one_frame_per_encoder_frame(mfcc_run):
    run_dir, result = mfcc_run
    config = load_pretrained(result.encoder_dir).config
    fn = _mfcc_fn(config)
    for samples in (400, 16000, 16000 + 319, 51234):
        audio = jnp.asarray(np.random.default_rng(samples).normal(size=(2, samples)), jnp.float32)
        mask = jnp.ones((2, samples), jnp.int32).at[1, samples // 2:].set(0)
        feats, frame_mask = fn(audio, mask)
        assert feats.shape == (2, config.num_frames(samples), 39)
        assert int(frame_mask[0].sum()) == config.num_frames(samples)


def test_assign_clusters_is_the_nearest_centroid():
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(5, 7, 3)), rng.normal(size=(6, 3))
    expected = np.argmin(((x[..., None, :] - c) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(np.asarray(assign_clusters(jnp.asarray(x), jnp.asarray(c))), expected)


def test_iteration_two_clusters_a_teacher_layer(mfcc_run, demo_corpus_tiny, tmp_path):
    run_dir, first = mfcc_run
    path = _hubert_config(tmp_path, demo_corpus_tiny, tmp_path / "run",
                          {"targets": "kmeans_features", "layer": 1, "num_clusters": 6, "final_dim": 16,
                           "teacher": str(first.encoder_dir)}, optimizer={"steps": 4, "beta": 0.0})
    result = train(load_train_config(path))
    centroids, info = load_kmeans(tmp_path / "run" / KMEANS_NAME)
    assert centroids.shape == (6, 64) and info["layer"] == 1
    assert np.isfinite(result.final_loss)


def test_continued_pretraining_on_the_models_own_codewords(demo_corpus_tiny, tmp_path):
    """The paper's unsupervised scenario: targets = argmax of theta_0's codeword logits."""
    from speechft_jax.models.pretrained import init_encoder

    config = tiny_encoder_config()
    start = init_encoder(config, seed=3)
    head = init_hubert_head(jax.random.PRNGKey(1), config.hidden_size, 16, 12)
    save_pretrained(start.replace(pretraining_head=head), tmp_path / "start")
    path = _hubert_config(tmp_path, demo_corpus_tiny, tmp_path / "run", {"targets": "pretrained_head"},
                          model={"pretrained": str(tmp_path / "start"), "config": None})
    result = train(load_train_config(path))
    losses = _losses(tmp_path / "run")
    assert losses[-8:].mean() < losses[:4].mean(), losses
    trained_head = load_pretrained(result.encoder_dir).pretraining_head
    assert trained_head["label_embs_concat"].shape == (12, 16)  # continued from theta_0's head
    assert not np.allclose(trained_head["label_embs_concat"], head["label_embs_concat"])


def test_pretrained_head_targets_need_a_head(demo_corpus_tiny, tmp_path):
    path = _hubert_config(tmp_path, demo_corpus_tiny, tmp_path / "run", {"targets": "pretrained_head"},
                          model={"config": str(TRAIN_MODEL_CONFIG)})
    with pytest.raises(ConfigError, match="pretrained_head"):
        train(load_train_config(path))


def test_objective_and_task_kinds_must_agree(demo_corpus_tiny, tmp_path):
    task = dict(HUBERT_TASK, data={"type": "corpus", "corpus_dir": str(demo_corpus_tiny), "task": "audio"})
    path = write_train_config(tmp_path / "c.yaml", demo_corpus_tiny, tmp_path / "run", tasks=[task])
    with pytest.raises(ConfigError, match="objective"):
        load_train_config(path)
    path = _hubert_config(tmp_path, demo_corpus_tiny, tmp_path / "run", {"targets": "kmeans_features"})
    with pytest.raises(ConfigError, match="hubert.layer"):
        load_train_config(path)
