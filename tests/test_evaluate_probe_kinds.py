"""SUPERB's intent, verification and diarization probes: each learns a separable toy task and stays at
chance when the labels carry nothing."""

from __future__ import annotations

import numpy as np
import pytest

from speechft_jax.data.labels import SpeakerActivityLabels, TrialLabels
from speechft_jax.evaluate.features import FeatureSet
from speechft_jax.evaluate.intervals import wilson_interval
from speechft_jax.evaluate.probe import ProbeSpec
from speechft_jax.evaluate.probe_training import train_probe

STATES, HIDDEN = 3, 16
GROUPS = (3, 4, 2)


def assert_interval_holds(result, n=None) -> bool:
    """The result's test metric lies in its 95 % interval (Wilson's of `n` utterances, where given)."""
    low, high = result.details["test_ci95"]
    assert low <= result.test <= high, result
    if n is not None:
        assert (low, high) == wilson_interval(round(result.test * n), n)
    return True


def _intent_set(n, seed, random_labels=False):
    """Each slot's class adds its own vector to the last state; the labels are (action, object, location)."""
    rng = np.random.default_rng(seed)
    codes = [np.random.default_rng(10 + g).normal(size=(size, HIDDEN)) * 2.0 for g, size in enumerate(GROUPS)]
    features, labels = [], []
    for _ in range(n):
        label = np.array([rng.integers(size) for size in GROUPS], np.int32)
        f = rng.normal(size=(STATES, int(rng.integers(5, 20)), HIDDEN))
        f[2] += sum(codes[g][label[g]] for g in range(len(GROUPS)))
        features.append(f.astype(np.float16))
        labels.append(np.array([rng.integers(size) for size in GROUPS], np.int32) if random_labels else label)
    return FeatureSet(features, labels)


def test_intent_probe_learns_every_slot_and_stays_at_chance_on_random_labels():
    spec = ProbeSpec("ic", "intent", sum(GROUPS), projection_dim=32, groups=GROUPS)
    result = train_probe(spec, _intent_set(300, 0), _intent_set(60, 1), _intent_set(80, 2),
                         learning_rates=(1e-2,), steps=200, batch_size=16, progress=False)
    assert result.metric == "accuracy" and result.test > 0.9, result
    assert np.argmax(result.layer_weights) == 2
    chance = train_probe(spec, _intent_set(300, 0, True), _intent_set(60, 1, True), _intent_set(200, 2, True),
                         learning_rates=(1e-2,), steps=200, batch_size=16, progress=False)
    assert chance.test < 0.15, chance  # all three right by chance: 1/24
    assert_interval_holds(result, 80) and assert_interval_holds(chance, 200)


def _speaker_set(speakers, per_speaker, seed, informative=True):
    """Utterances of `speakers` (ids into a fixed table of voice vectors) in the last state."""
    rng = np.random.default_rng(seed)
    voices = np.random.default_rng(3).normal(size=(64, HIDDEN)) * 1.5
    features, labels = [], []
    for label, speaker in enumerate(speakers):
        for _ in range(per_speaker):
            f = rng.normal(size=(STATES, int(rng.integers(8, 24)), HIDDEN))
            if informative:
                f[2] += voices[speaker]
            features.append(f.astype(np.float16))
            labels.append(label)
    return FeatureSet(features, labels)


def _trials(speakers, per_speaker, seed, random_targets=False):
    """Every same-speaker pair and as many different-speaker pairs, over utterances in speaker order."""
    rng = np.random.default_rng(seed)
    who = np.repeat(np.arange(len(speakers)), per_speaker)
    same = [(a, b, 1) for a in range(len(who)) for b in range(a + 1, len(who)) if who[a] == who[b]]
    different = [(a, b, 0) for a in range(len(who)) for b in range(a + 1, len(who)) if who[a] != who[b]]
    picked = [different[i] for i in rng.choice(len(different), len(same), replace=False)]
    trials = np.array(same + picked, np.int64)
    if random_targets:
        trials[:, 2] = rng.permutation(trials[:, 2])
    return TrialLabels(trials)


def test_verification_probe_embeds_unseen_speakers_and_stays_at_chance_without_speaker_information():
    spec = ProbeSpec("asv", "verification", 24, projection_dim=32, embedding_dim=32)
    train = _speaker_set(range(24), 12, 0)
    dev, test = _speaker_set(range(20, 26), 6, 1), _speaker_set(range(30, 36), 6, 2)  # speakers never trained on
    result = train_probe(spec, train, dev, test, learning_rates=(1e-3,), steps=150, batch_size=16, progress=False,
                         scored_against={"dev": (None, _trials(range(6), 6, 1)), "test": (None, _trials(range(6), 6, 2))})
    assert result.metric == "eer" and result.test < 0.15, result  # chance: 0.5
    assert 0 <= result.details["test_min_dcf"] <= 1 and "dev_min_dcf" in result.details
    assert_interval_holds(result)  # an EER's interval, bootstrapped over the trials
    blind = [_speaker_set(s, n, seed, informative=False) for s, n, seed in ((range(24), 12, 0), (range(6), 6, 1),
                                                                              (range(6), 20, 2))]
    chance = train_probe(spec, *blind, learning_rates=(1e-3,), steps=100, batch_size=16, progress=False,
                         scored_against={"dev": (None, _trials(range(6), 6, 1)), "test": (None, _trials(range(6), 20, 2))})
    assert abs(chance.test - 0.5) < 0.12, chance
    assert_interval_holds(chance)
    # chance level: about 1,000 trials give an interval of about +-0.03 around 0.5
    assert 0.02 < chance.details["test_ci95"][1] - chance.details["test_ci95"][0] < 0.15


class _Segments:
    """A stand-in source: only the reference segments of each recording."""

    def __init__(self, segments):
        self.segments = segments

    def fields(self, index):
        return {"segments": self.segments[index]}


def _mixture_set(n, seed, shuffled=False):
    """Recordings of two speakers: A talks from a to b, B from c to d (overlapping or not); each active
    speaker adds its code to the frame's last state."""
    rng = np.random.default_rng(seed)
    codes = np.random.default_rng(4).normal(size=(2, HIDDEN)) * 2.0
    labeller = SpeakerActivityLabels("segments", 2, 0.02)
    features, labels, segments = [], [], []
    for _ in range(n):
        frames = int(rng.integers(40, 80))
        a0, a1 = sorted(rng.integers(0, frames, 2))
        b0, b1 = sorted(rng.integers(0, frames, 2))
        recording = [[a0 * 0.02, (a1 + 1) * 0.02, "A"], [b0 * 0.02, (b1 + 1) * 0.02, "B"]]
        f = rng.normal(size=(STATES, frames, HIDDEN)) * 0.5
        f[2, a0:a1 + 1] += codes[0]
        f[2, b0:b1 + 1] += codes[1]
        features.append(f.astype(np.float16))
        segments.append(recording)
    if shuffled:  # every recording gets another's segments
        segments = segments[1:] + segments[:1]
    labels = [labeller.encode({"segments": s}, "toy") for s in segments]
    return FeatureSet(features, labels), _Segments(segments)


@pytest.mark.parametrize("shuffled", [False, True])
def test_diarization_probe_finds_who_speaks_when_and_fails_on_shuffled_labels(shuffled):
    spec = ProbeSpec("sd", "diarization", 2, lstm_units=32, lstm_layers=1, median=1)
    (train, _), (dev, dev_ref), (test, test_ref) = (_mixture_set(n, seed, shuffled) for n, seed in
                                                    ((120, 0), (30, 1), (40, 2)))
    result = train_probe(spec, train, dev, test, learning_rates=(1e-2,), steps=400, batch_size=16, progress=False,
                         eval_every=100, scored_against={"dev": (dev_ref, SpeakerActivityLabels()),
                                         "test": (test_ref, SpeakerActivityLabels())})
    assert result.metric == "der"
    parts = result.details["test_missed"] + result.details["test_false_alarm"] + result.details["test_confusion"]
    assert parts == pytest.approx(result.test)
    assert_interval_holds(result)  # a DER's interval, bootstrapped over the recordings
    if shuffled:
        assert result.test > 0.4, result
    else:
        assert result.test < 0.1, result  # chance: about 0.6 (the shuffled case)
