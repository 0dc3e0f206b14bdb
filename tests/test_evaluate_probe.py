"""SUPERB-style probes: they learn separable toy tasks, stay at chance on random labels, and the
feature cache round-trips."""

from __future__ import annotations

import numpy as np

from speechft_jax.evaluate.features import FeatureSet, feature_set_rows, read_feature_store, write_feature_store
from speechft_jax.evaluate.intervals import wilson_interval
from speechft_jax.evaluate.probe import ProbeSpec
from speechft_jax.evaluate.probe_training import train_probe

STATES, HIDDEN, CLASSES = 3, 16, 4


def _classification_set(n, seed, random_labels=False):
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(99).normal(size=(CLASSES, HIDDEN)) * 2.0
    features, labels = [], []
    for _ in range(n):
        label = int(rng.integers(CLASSES))
        frames = int(rng.integers(5, 30))
        f = rng.normal(size=(STATES, frames, HIDDEN))
        f[2] += means[label]  # only the last state carries the class
        features.append(f.astype(np.float16))
        labels.append(int(rng.integers(CLASSES)) if random_labels else label)
    return FeatureSet(features, labels)


def test_classification_probe_learns_a_separable_task_and_weights_the_right_layer():
    result = train_probe(ProbeSpec("toy", "classification", CLASSES, projection_dim=16),
                         _classification_set(200, 0), _classification_set(60, 1), _classification_set(60, 2),
                         learning_rates=(1e-3, 1e-2), steps=150, batch_size=16, progress=False)
    assert result.test > 0.95 and result.dev > 0.95
    # the test accuracy's Wilson interval, over the 60 test utterances
    assert result.details["test_ci95"] == list(wilson_interval(round(result.test * 60), 60))
    assert np.argmax(result.layer_weights) == 2
    assert set(result.dev_by_lr) == {"0.001", "0.01"}


def test_classification_probe_stays_at_chance_on_random_labels():
    result = train_probe(ProbeSpec("toy", "classification", CLASSES, projection_dim=16),
                         _classification_set(200, 0, True), _classification_set(100, 1, True),
                         _classification_set(300, 2, True), learning_rates=(1e-2,), steps=150,
                         batch_size=16, progress=False)
    assert abs(result.test - 1 / CLASSES) < 0.1


def _sequence_set(n, seed, vocab=5):
    """Each token is 3 frames of a token-specific vector and a blank frame; labels are the token ids."""
    rng = np.random.default_rng(seed)
    codes = np.random.default_rng(7).normal(size=(vocab, HIDDEN)) * 3.0
    features, labels = [], []
    for _ in range(n):
        tokens = rng.integers(1, vocab, size=int(rng.integers(2, 6)))
        # each token: 3 frames of its code, then one frame of the "blank" code 0
        clean = np.concatenate([np.stack([codes[t], codes[t], codes[t], codes[0]]) for t in tokens])
        f = clean + 0.1 * rng.normal(size=clean.shape)
        features.append(np.stack([f, rng.normal(size=f.shape), f]).astype(np.float16))
        labels.append(tokens.astype(np.int32))
    return FeatureSet(features, labels)


def test_ctc_probe_learns_a_toy_sequence_task():
    result = train_probe(ProbeSpec("toyseq", "ctc", 5, blank_id=0), _sequence_set(150, 0), _sequence_set(40, 1),
                         _sequence_set(40, 2), learning_rates=(1e-2,), steps=300, batch_size=16, progress=False)
    assert result.metric == "error_rate" and result.test < 0.1, result
    low, high = result.details["test_ci95"]  # an error rate's, bootstrapped over the utterances
    assert 0 <= low <= result.test <= high < 0.2


def test_ctc_probe_stays_at_chance_on_random_labels():
    """The same features with random token sequences of the same lengths: the probe can learn how
    many tokens there are but not which, so at best one token in 4 is right (PER about 0.75)."""
    rng = np.random.default_rng(5)

    def shuffled(data):
        return FeatureSet(data.features, [rng.integers(1, 5, size=len(t)).astype(np.int32) for t in data.labels])

    result = train_probe(ProbeSpec("toyseq", "ctc", 5, blank_id=0), shuffled(_sequence_set(150, 0)),
                         shuffled(_sequence_set(40, 1)), shuffled(_sequence_set(80, 2)), learning_rates=(1e-2,),
                         steps=300, batch_size=16, progress=False)
    assert result.test > 0.6, result
    low, high = result.details["test_ci95"]  # an error rate's interval, not an accuracy's
    assert 0.5 < low < result.test < high < 1.0


def test_feature_cache_round_trips(tmp_path):
    """K sets sharing labels, written in any order, read back as memory-mapped views in source order.
    (When the cache serves an entry, and when not: tests/test_evaluate_features.py.)"""
    data, classes = _sequence_set(5, 0), _classification_set(5, 2)
    for d in (data, classes):
        d.indices, d.origins = [0, 2, 3, 5, 6], [f"m.jsonl:{i}" for i in (1, 3, 4, 6, 7)]
    other = FeatureSet([-2 * f for f in data.features], data.labels, data.indices, data.origins)  # a second encoder
    rows = list(feature_set_rows([data, other]))
    write_feature_store(tmp_path / "entry", reversed(rows))  # the encoder yields utterances by length bucket
    back, back_other = read_feature_store(tmp_path / "entry")
    assert isinstance(back.features[0], np.memmap) or isinstance(back.features[0].base, np.memmap)
    for expected, got in ((data, back), (other, back_other)):
        assert len(got) == 5 and got.num_states == STATES and got.hidden == HIDDEN
        for a, b in zip(list(expected.features) + expected.labels, list(got.features) + got.labels):
            np.testing.assert_array_equal(a, b)
        assert got.indices == data.indices and got.origins == data.origins
    write_feature_store(tmp_path / "classes", feature_set_rows([classes]))
    (back,) = read_feature_store(tmp_path / "classes")
    assert back.labels == classes.labels and all(isinstance(label, int) for label in back.labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes", "entry"]  # no temporary folder left
