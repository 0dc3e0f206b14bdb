"""95 % intervals: Wilson's against hand computation, the bootstrap's coverage and ratio statistic,
the vectorised EER, per-utterance error counts, and the sweep table's marks and JSON keys."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speechft_jax.errors import ConfigError, DataError
from speechft_jax.evaluate.intervals import (
    bootstrap_interval, format_interval, ratio_of_sums, wilson_interval,
)
from speechft_jax.evaluate.probe_scoring import utterance_errors
from speechft_jax.evaluate.verification import equal_error_rate, equal_error_rates
from speechft_jax.tasks.metrics import error_rate


def test_wilson_interval_matches_hand_computation_and_known_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    # by hand: centre (p + z^2/2n) / (1 + z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)
    z, p, n = 1.959963984540054, 37 / 120, 120
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson_interval(37, 120) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    narrower = wilson_interval(8, 10, confidence=0.5)
    assert low < narrower[0] < narrower[1] < high


def test_the_bootstrap_covers_a_binomial_proportion_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    p, n, datasets = 0.3, 120, 300
    covered = 0
    for d in range(datasets):
        outcomes = (rng.random(n) < p).astype(np.float64)
        low, high = bootstrap_interval(outcomes, lambda resampled: resampled.mean(axis=1), resamples=400, seed=d)
        covered += low <= p <= high
    assert 0.90 <= covered / datasets <= 0.99, covered / datasets


def test_the_ratio_statistic_is_all_errors_over_all_reference_tokens_not_a_mean_of_rates():
    # short utterances all wrong, long ones almost right: the corpus rate is low, the mean of rates high
    units = np.array([[2, 2]] * 50 + [[1, 50]] * 50, np.float64)
    corpus_rate = units[:, 0].sum() / units[:, 1].sum()  # 150 / 2600
    low, high = bootstrap_interval(units, ratio_of_sums)
    assert low < corpus_rate < high < 0.1  # the mean of the utterances' rates is 0.51
    assert ratio_of_sums(units[None])[0] == corpus_rate
    assert np.isnan(ratio_of_sums(np.zeros((1, 3, 2))))[0]


def test_the_bootstrap_is_deterministic_for_a_seed_and_memory_bounded(monkeypatch):
    import speechft_jax.evaluate.intervals as intervals

    values = np.random.default_rng(0).normal(size=200)
    mean = lambda resampled: resampled.mean(axis=1)
    first = bootstrap_interval(values, mean, seed=3)
    assert bootstrap_interval(values, mean, seed=3) == first
    assert bootstrap_interval(values, mean, seed=4) != first
    shapes = []
    monkeypatch.setattr(intervals, "CHUNK_ELEMENTS", 200 * 64)
    bootstrap_interval(values, lambda resampled: shapes.append(resampled.shape) or mean(resampled), resamples=150)
    assert shapes == [(64, 200), (64, 200), (22, 200)]


def test_vectorised_eers_equal_the_scorer_s_with_ties_and_nan_without_both_kinds():
    rng = np.random.default_rng(0)
    for decimals in (0, 1, 6):  # coarse rounding: many tied scores
        scores = np.round(rng.normal(size=(20, 40)), decimals)
        targets = rng.integers(0, 2, size=(20, 40))
        expected = [equal_error_rate(s, t) for s, t in zip(scores, targets)]
        assert equal_error_rates(scores, targets) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(equal_error_rates(np.array([[0.1, 0.2]]), np.array([[1, 1]])))[0]
    # a resample without both kinds is left out, not an error
    trials = np.array([[0.9, 1], [0.1, 0]])
    low, high = bootstrap_interval(trials, lambda r: equal_error_rates(r[..., 0], r[..., 1]), resamples=50)
    assert low == high == 0.0


def test_utterance_errors_sum_to_the_corpus_error_rate():
    references = ["1 2 3", "4 5", "", "6  7"]
    hypotheses = ["1 3", "4 5 6 7", "8", "9 6 7"]
    counts = utterance_errors(references, hypotheses)
    assert counts.tolist() == [[1, 3], [2, 2], [1, 0], [1, 2]]
    assert counts[:, 0].sum() / counts[:, 1].sum() == pytest.approx(error_rate(references, hypotheses))


@pytest.mark.parametrize("call, error, message", [
    (lambda: wilson_interval(3, 0), DataError, "wilson interval: n=0, expected a whole number of trials >= 1"),
    (lambda: wilson_interval(11, 10), DataError, "wilson interval: successes=11, expected a whole number from 0 to 10"),
    (lambda: wilson_interval(1, 10, confidence=95), ConfigError,
     "confidence=95, expected a probability strictly between 0 and 1"),
    (lambda: bootstrap_interval([1.0], np.mean, resamples=0), ConfigError,
     "resamples=0, expected a whole number >= 1"),
    (lambda: bootstrap_interval([], np.mean), DataError, "bootstrap: expected at least one unit"),
    (lambda: bootstrap_interval([[0.0, 0.0]], ratio_of_sums), DataError,
     "bootstrap: the statistic is undefined (NaN) on every resample"),
])
def test_bad_inputs_are_one_line_errors(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value) and "\n" not in str(raised.value)


def _summary(intervals: dict, alphas=(0.0, 0.5, 1.0)) -> dict:
    """A sweep summary of one accuracy task `sid` whose test cells have `intervals` by alpha (None: none)."""
    results = {str(a): {"sid": {"metric": "accuracy", "test": sum(intervals[a]) / 2 if intervals[a] else 0.5,
                                **({"ci95": intervals[a]} if intervals[a] else {})}} for a in alphas}
    return {"alphas": list(alphas), "best_alpha": 0.5, "finetuned_label": "Stable-FT", "select_on": ["sid"],
            "objective": {str(a): 0.5 for a in alphas}, "test_objective": {str(a): 0.5 for a in alphas},
            "results": results}


def test_the_sweep_table_marks_intervals_disjoint_from_alpha_0_and_alpha_1():
    from speechft_jax.sweep.runner import format_table

    table = format_table(_summary({0.0: [0.10, 0.20], 0.5: [0.30, 0.40], 1.0: [0.15, 0.25]})).splitlines()
    assert table[1].split()[2:5] == ["0.1500", "[0.1000,", "0.2000]"]  # alpha 0 marks nothing
    assert table[2].split()[4] == "0.4000]*+"  # apart from both
    assert table[3].split()[4] == "0.2500]"  # overlaps alpha 0's
    assert "marked * where it does not overlap alpha 0's and + where it does not overlap alpha 1's" in table[-1]
    touching = format_table(_summary({0.0: [0.10, 0.20], 0.5: [0.20, 0.30], 1.0: [0.25, 0.35]})).splitlines()
    assert touching[2].split()[4] == "0.3000]" and touching[3].split()[4] == "0.3500]*"
    plain = format_table(_summary({0.0: None, 0.5: None, 1.0: None}))  # results without intervals (qbe)
    assert "[" not in plain and "95 %" not in plain


def test_the_sweep_json_keeps_each_probe_s_interval():
    from speechft_jax.evaluate.probe import ProbeResult
    from speechft_jax.sweep.runner import _result_json

    probe = ProbeResult("sid", "accuracy", 0.5, 0.4, 1e-3, [1.0], {}, {"test_ci95": [0.3, 0.5]})
    assert _result_json(probe)["ci95"] == [0.3, 0.5] and _result_json(probe)["details"]["test_ci95"] == [0.3, 0.5]
    assert "ci95" not in _result_json(ProbeResult("qbe", "mtwv", 0.1, 0.2, None, [], {}, {}))
    assert format_interval(0.82481, [0.78031, 0.86199]) == "0.8248 [0.7803, 0.8620]"
    assert format_interval(0.82481) == "0.8248"
