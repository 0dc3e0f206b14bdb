"""The equal error rate against values computed by hand on small trial lists."""

from __future__ import annotations

import numpy as np
import pytest

from speechft_jax.errors import DataError
from speechft_jax.evaluate.verification import equal_error_rate


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
