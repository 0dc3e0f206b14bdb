"""The diarization error rate and frame activity -> segments, against values computed by hand."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy.signal import medfilt

from speechft_jax.errors import ConfigError, DataError
from speechft_jax.evaluate.diarization import (DiarizationError, activity_segments, corpus_diarization_error,
                                               diarization_error)


def errors(reference, hypothesis, collar=0.0):
    e = diarization_error(reference, hypothesis, collar)
    return pytest.approx((e.missed, e.false_alarm, e.confusion, e.total)), e.der


def test_a_perfect_hypothesis_under_other_names_scores_zero():
    # A speaks 0-5 s, B 5-10 s; the hypothesis names them x and y: nothing wrong out of 10 s
    quantities, der = errors([(0, 5, "A"), (5, 10, "B")], [(0, 5, "x"), (5, 10, "y")])
    assert quantities == (0, 0, 0, 10) and der == 0


def test_an_empty_hypothesis_misses_all_reference_speech():
    # 4 s of A and 4 s of B, nothing found: 8 s missed of 8, DER 1
    quantities, der = errors([(0, 4, "A"), (6, 10, "B")], [])
    assert quantities == (8, 0, 0, 8) and der == 1.0


def test_the_speaker_mapping_undoes_a_swap_and_counts_the_rest_as_confusion():
    # the hypothesis calls A "B" and B "A": mapped A->"B", B->"A", nothing is wrong
    quantities, der = errors([(0, 5, "A"), (5, 10, "B")], [(0, 5, "B"), (5, 10, "A")])
    assert quantities == (0, 0, 0, 10) and der == 0
    # h1 covers 0-6, h2 6-10: overlaps A-h1 5 s, B-h1 1 s, B-h2 4 s; best mapping A->h1, B->h2 (9 s);
    # 5-6 s B speaks but h1 (A's) is active: 1 s of confusion in 10, DER 0.1
    quantities, der = errors([(0, 5, "A"), (5, 10, "B")], [(0, 6, "h1"), (6, 10, "h2")])
    assert quantities == (0, 0, 1, 10) and der == pytest.approx(0.1)
    # one reference speaker, two hypothesis speakers: A->x (6 s), y is unmapped, so 6-10 s is confusion
    quantities, der = errors([(0, 10, "A")], [(0, 6, "x"), (6, 10, "y")])
    assert quantities == (0, 0, 4, 10) and der == pytest.approx(0.4)


def test_overlapped_speech_where_only_one_of_two_speakers_is_found():
    # A 0-7 s, B 5-10 s (both at 5-7), one hypothesis speaker x over 0-10: total 7 + 5 = 12 s;
    # overlaps A-x 7 s, B-x 5 s, so x is A. 0-5: right; 5-7: N_ref 2, N_hyp 1 -> 2 s missed (x is A:
    # no confusion); 7-10: B alone but x is A -> 3 s confusion. DER (2 + 3) / 12
    quantities, der = errors([(0, 7, "A"), (5, 10, "B")], [(0, 10, "x")])
    assert quantities == (2, 0, 3, 12) and der == pytest.approx(5 / 12)


def test_false_alarms_count_extra_speakers_and_speech_in_silence():
    # A 0-10 s; x runs on to 12 s (2 s over silence) and y speaks 3-5 s over A (N_hyp 2 > N_ref 1):
    # 2 + 2 = 4 s of false alarm in 10, DER 0.4
    quantities, der = errors([(0, 10, "A")], [(0, 12, "x"), (3, 5, "y")])
    assert quantities == (0, 4, 0, 10) and der == pytest.approx(0.4)
    # a hypothesis of pure false alarm may pass DER 1: 10 s of y over silence against 1 s of A
    quantities, der = errors([(0, 1, "A")], [(0, 1, "x"), (5, 15, "y")])
    assert quantities == (0, 10, 0, 1) and der == pytest.approx(10.0)


def test_a_collar_leaves_time_around_reference_boundaries_unscored():
    # A 0-10 s, B 10-20 s; the hypothesis moves the change to 11 s: 1 s of confusion (10-11) in 20
    quantities, der = errors([(0, 10, "A"), (10, 20, "B")], [(0, 11, "x"), (11, 20, "y")])
    assert quantities == (0, 0, 1, 20) and der == pytest.approx(0.05)
    # collar 0.5 s: the unscored zones are -0.5-0.5, 9.5-10.5 and 19.5-20.5; confusion is left at
    # 10.5-11 = 0.5 s, A is scored 0.5-9.5 and B 10.5-19.5: 0.5 / 18 = 1/36
    quantities, der = errors([(0, 10, "A"), (10, 20, "B")], [(0, 11, "x"), (11, 20, "y")], collar=0.5)
    assert quantities == (0, 0, 0.5, 18) and der == pytest.approx(1 / 36)
    # collar 1 s reaches 11 s: nothing wrong in 2 * (9 - 1) = 16 scored seconds
    quantities, der = errors([(0, 10, "A"), (10, 20, "B")], [(0, 11, "x"), (11, 20, "y")], collar=1.0)
    assert quantities == (0, 0, 0, 16) and der == 0


def test_times_are_exact_and_a_speakers_overlapping_turns_count_once():
    # a miss of 0.4 ms needs no frame grid to be seen
    e = diarization_error([(0.0, 1.0004, "A")], [(0.0, 1.0, "x")])
    assert e.missed == pytest.approx(0.0004, abs=1e-12) and e.total == pytest.approx(1.0004)
    # A's turns 0-5 and 3-8 are 8 s of speech, not 10; x's duplicated 0-8 is one speaker once;
    # an empty segment is nothing
    quantities, der = errors([(0, 5, "A"), (3, 8, "A"), (9, 9, "B")], [(0, 8, "x"), (0, 8, "x")])
    assert quantities == (0, 0, 0, 8) and der == 0


def frame_grid_errors(reference, hypothesis, steps):
    """The DER quantities on a 10 ms grid, trying every mapping: the definition, computed slowly."""
    def activity(segments):
        speakers = sorted({s for _, _, s in segments})
        grid = np.zeros((steps, len(speakers)), bool)
        for start, end, speaker in segments:
            grid[round(start * 100):round(end * 100), speakers.index(speaker)] = True
        return grid
    ref, hyp = activity(reference), activity(hypothesis)
    n_ref, n_hyp = ref.sum(1), hyp.sum(1)
    pairs = min(ref.shape[1], hyp.shape[1])
    best_correct = max(sum((ref[:, r] & hyp[:, h]).sum() for r, h in zip(refs, hyps))
                       for refs in itertools.permutations(range(ref.shape[1]), pairs)
                       for hyps in itertools.permutations(range(hyp.shape[1]), pairs))
    return (np.maximum(n_ref - n_hyp, 0).sum() / 100, np.maximum(n_hyp - n_ref, 0).sum() / 100,
            (np.minimum(n_ref, n_hyp).sum() - best_correct) / 100, n_ref.sum() / 100)


def test_random_diarizations_agree_with_a_brute_force_frame_count():
    rng = np.random.default_rng(0)
    for _ in range(20):
        def draw(names):
            segments = []
            for _ in range(rng.integers(0, 6)):
                start = int(rng.integers(0, 300))
                segments.append((start / 100, (start + int(rng.integers(1, 120))) / 100, str(rng.choice(names))))
            return segments
        reference, hypothesis = draw(["A", "B", "C"]), draw(["x", "y", "z"])
        e = diarization_error(reference, hypothesis)
        assert (e.missed, e.false_alarm, e.confusion, e.total) == pytest.approx(
            frame_grid_errors(reference, hypothesis, 500), abs=1e-9)


def test_the_corpus_der_is_total_errors_over_total_speech():
    overlapped = ([(0, 7, "A"), (5, 10, "B")], [(0, 10, "x")])  # 5 s wrong of 12 (above)
    perfect = ([(0, 10, "A")], [(0, 10, "x")])                   # 0 s wrong of 10
    e = corpus_diarization_error([overlapped, perfect])
    assert (e.missed, e.false_alarm, e.confusion, e.total) == pytest.approx((2, 0, 3, 22))
    assert e.der == pytest.approx(5 / 22)  # not the mean of the two DERs, 5/24


def test_activity_segments_threshold_strictly_and_time_frames():
    probabilities = [[0.2, 0.9], [0.5, 0.9], [0.7, 0.1], [0.6, 0.1]]
    # speaker 0 passes 0.5 at frames 2-3 (0.5 itself is not above), speaker 1 at frames 0-1; 20 ms frames
    segments = activity_segments(probabilities, 0.02)
    assert segments == [(pytest.approx(0.04), pytest.approx(0.08), 0), (0.0, pytest.approx(0.04), 1)]
    # threshold 0.8: speaker 0 never, speaker 1 frames 0-1
    assert activity_segments(probabilities, 0.02, threshold=0.8) == [(0.0, pytest.approx(0.04), 1)]


def test_activity_segments_median_filter():
    column = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0], float)[:, None]
    # windows of 3 with a zero before and after: 010 101 011 110 100 001 010 100 000 -> majorities
    # 0 1 1 1 0 0 0 0 0: one run, frames 1-3, so 0.01-0.04 s at 10 ms frames
    assert activity_segments(column, 0.01, median=3) == [(pytest.approx(0.01), pytest.approx(0.04), 0)]
    assert len(activity_segments(column, 0.01, median=1)) == 3  # unfiltered: runs 0, 2-3, 6
    # SUPERB's make_rttm: threshold, then scipy.signal.medfilt over (median, 1)
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(size=(300, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = medfilt(np.where(probabilities > 0.4, 1, 0), (11, 1))
    for speaker in range(2):
        frames = np.zeros(300, int)
        for start, end, index in activity_segments(probabilities, 0.02, threshold=0.4, median=11):
            if index == speaker:
                frames[round(start / 0.02):round(end / 0.02)] = 1
        np.testing.assert_array_equal(frames, expected[:, speaker])


@pytest.mark.parametrize("call, error, message", [
    (lambda: diarization_error([(0, 1, "A")], [], collar=-0.25), ConfigError, "collar=-0.25, expected"),
    (lambda: diarization_error([(2, 1, "A")], []), DataError, "reference segment 0: expected finite times"),
    (lambda: diarization_error([], [(0, 1)]), DataError, r"hypothesis segment 0: expected \(start_s, end_s"),
    (lambda: diarization_error([], [(0, 1, "x")]).der, DataError, "no scored reference speech"),
    (lambda: corpus_diarization_error([]), DataError, "at least one"),
    (lambda: activity_segments([0.1, 0.9], 0.02), DataError, r"\[frames, speakers\]"),
    (lambda: activity_segments([[0.1]], 0.02, median=4), ConfigError, "median=4, expected an odd"),
    (lambda: activity_segments([[0.1]], 0.0), ConfigError, "frame_seconds=0.0"),
    (lambda: activity_segments([[0.1]], 0.02, threshold=float("nan")), ConfigError, "threshold=nan"),
])
def test_bad_inputs_are_one_line_errors(call, error, message):
    with pytest.raises(error, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)


def test_diarization_error_is_a_plain_record():
    assert DiarizationError(1.0, 2.0, 3.0, 12.0).der == 0.5
