"""The equal error rate against values computed by hand on small trial lists."""

from __future__ import annotations

import numpy as np
import pytest

from speechft_jax.errors import ConfigError, DataError
from speechft_jax.evaluate.verification import equal_error_rate, min_dcf


def test_hand_computed_equal_error_rates():
    # thresholds from the top: the ROC points (FAR, FRR) are (0, 1), (0, 2/3), (0, 1/3), (1/3, 1/3), ...:
    # the rates meet at the third trial, a non-target accepted: EER 1/3
    assert equal_error_rate([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 1, 0, 1, 0, 0]) == pytest.approx(1 / 3)
    # scikit-learn's example: (0, 1), (0, .5), (.5, .5), (.5, 0), (1, 0): they meet at 0.5
    assert equal_error_rate([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.5)
    # 4 targets, 4 non-targets, one of each on the wrong side: FAR and FRR are both 1/4 there
    assert equal_error_rate([8, 7, 6, 3, 5, 2, 1, 0], [1, 1, 1, 1, 0, 0, 0, 0]) == pytest.approx(0.25)


def test_separable_trials_score_zero_and_reversed_ones_one():
    assert equal_error_rate([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 0.0
    assert equal_error_rate([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 1.0


def test_the_crossing_is_interpolated_between_roc_points():
    # FAR steps 0 -> 1/2 while FRR stays 1/3 (2 non-targets, 3 targets): the crossing at FAR = 1/3
    scores, labels = [5, 4, 3, 2, 1], [1, 1, 0, 1, 0]
    assert equal_error_rate(scores, labels) == pytest.approx(1 / 3)
    rng = np.random.default_rng(0)
    targets, others = rng.normal(1.0, 1.0, 2000), rng.normal(-1.0, 1.0, 2000)
    eer = equal_error_rate(np.concatenate([targets, others]), np.r_[np.ones(2000), np.zeros(2000)])
    assert eer == pytest.approx(0.1587, abs=0.015)  # two unit Gaussians 2 apart: Phi(-1)


@pytest.mark.parametrize("scores, labels, message", [
    ([0.1, 0.2], [1, 1], "both target"), ([0.1, 0.2], [1, 2], "both target"),
    ([0.1], [1, 0], "one score per label"), ([np.nan, 0.2], [1, 0], "finite"),
])
def test_bad_trials_are_one_line_errors(scores, labels, message):
    with pytest.raises(DataError, match=message):
        equal_error_rate(scores, labels)


def test_hand_computed_minimum_detection_costs():
    # scores 6..1 with targets T N T T N N; from reject-all down to accept-all the (P_miss, P_fa)
    # points are (1, 0), (2/3, 0), (2/3, 1/3), (1/3, 1/3), (0, 1/3), (0, 2/3), (0, 1)
    scores, targets = [6, 5, 4, 3, 2, 1], [1, 0, 1, 1, 0, 0]
    # p_target 0.01: DCF / 0.01 = P_miss + 99 P_fa: 1, 2/3, 33.7, ... -> 2/3 (accept only the top trial)
    assert min_dcf(scores, targets) == pytest.approx(2 / 3)
    # p_target 0.5: DCF / 0.5 = P_miss + P_fa: 1, 2/3, 1, 2/3, 1/3, 2/3, 1 -> 1/3
    assert min_dcf(scores, targets, p_target=0.5) == pytest.approx(1 / 3)
    # p_target 0.9: normaliser min(0.9, 0.1) = 0.1, DCF / 0.1 = 9 P_miss + P_fa: 9, 6, 6.33, 3.33, 1/3, ... -> 1/3
    assert min_dcf(scores, targets, p_target=0.9) == pytest.approx(1 / 3)
    # p_target 0.5, c_fa 3: normaliser min(0.5, 1.5) = 0.5, DCF / 0.5 = P_miss + 3 P_fa:
    # 1, 2/3, 5/3, 4/3, 1, 2, 3 -> 2/3
    assert min_dcf(scores, targets, p_target=0.5, c_fa=3.0) == pytest.approx(2 / 3)
    # c_miss 10, p_target 0.01: normaliser min(0.1, 0.99) = 0.1, DCF / 0.1 = P_miss + 9.9 P_fa -> 2/3
    assert min_dcf(scores, targets, c_miss=10.0) == pytest.approx(2 / 3)


def test_min_dcf_is_zero_when_separable_one_when_useless_and_tied_scores_share_a_threshold():
    assert min_dcf([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 0.0
    # every target below every non-target: no threshold beats rejecting everything, cost 1
    assert min_dcf([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == pytest.approx(1.0)
    # a target and a non-target tied at 0.5: points (1, 0), (1/2, 0), (0, 1/2), (0, 1), so with
    # p_target 0.5 the best P_miss + P_fa is 1/2 (splitting the tie, target first, would claim 0)
    assert min_dcf([1.0, 0.5, 0.5, 0.0], [1, 1, 0, 0], p_target=0.5) == pytest.approx(0.5)
    assert min_dcf([1.0, 0.5, 0.5, 0.0], [1, 0, 1, 0], p_target=0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(targets=[1, 1, 1]), DataError, "trials: expected both target"),
    (dict(targets=[0, 0, 0]), DataError, "trials: expected both target"),
    (dict(p_target=1.0), ConfigError, "p_target=1.0, expected a probability"),
    (dict(p_target=0), ConfigError, "p_target=0, expected a probability"),
    (dict(c_miss=0.0), ConfigError, "c_miss=0.0, expected a finite cost"),
    (dict(c_fa=-1), ConfigError, "c_fa=-1, expected a finite cost"),
])
def test_bad_min_dcf_inputs_are_one_line_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        min_dcf(**{"scores": [0.3, 0.2, 0.1], "targets": [1, 0, 1], **kwargs})
