"""95 % intervals for test metrics: Wilson's for accuracies, the percentile bootstrap for rates.

`wilson_interval(successes, n)` is the Wilson score interval of a binomial proportion, in closed
form; unlike the normal approximation it stays inside [0, 1] and keeps its coverage for small n
and for proportions near 0 or 1.

`bootstrap_interval(units, statistic)` is the percentile bootstrap over independent units:
`resamples` times, n units are drawn with replacement from the n rows of `units` (`[n, ...]`),
the statistic of each resample is taken, and the interval is the (1 - confidence) / 2 and
(1 + confidence) / 2 quantiles of those values. `statistic` is vectorised: it maps resamples
`[r, n, ...]` to `[r]` values. The units, and their statistic, for each rate a probe reports:
  PER / WER / CER  utterances `(errors, reference tokens)`, `ratio_of_sums`: all errors over all
                   reference tokens of the resample, as the corpus rate is (not a mean of rates);
  EER              trials `(score, target)`, `verification.equal_error_rates` (trials that share an utterance
                   are treated as independent, as the usual EER intervals do);
  DER              recordings `(error seconds, scored seconds)`, `ratio_of_sums`;
  slot-type F1     utterances' F1, their mean.
A resample on which the statistic is undefined (NaN: an EER resample without both kinds of
trial) is left out. Resamples are drawn in chunks of bounded memory from one
`numpy.random.default_rng(seed)`, so an interval is a pure function of its arguments.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Callable

import numpy as np

from speechft_jax.errors import ConfigError, DataError, short_repr

RESAMPLES = 1000
CHUNK_ELEMENTS = 4_000_000  # resampled values held at once (32 MB of float64)


def _checked_confidence(confidence) -> float:
    if isinstance(confidence, bool) or not (isinstance(confidence, (int, float, np.floating))
                                            and 0 < confidence < 1):
        raise ConfigError(f"confidence={short_repr(confidence)}, expected a probability strictly between 0 and 1")
    return float(confidence)


def wilson_interval(successes, n, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval `(low, high)` of `successes` out of `n` trials (module docstring)."""
    z = NormalDist().inv_cdf(0.5 + _checked_confidence(confidence) / 2)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError("wilson interval", f"n={short_repr(n)}, expected a whole number of trials >= 1")
    if isinstance(successes, bool) or not isinstance(successes, (int, np.integer)) or not 0 <= successes <= n:
        raise DataError("wilson interval", f"successes={short_repr(successes)}, expected a whole number from 0 to {n}")
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # at p = 0 (p = 1) the lower (upper) bound is 0 (1) exactly, which float rounding may miss
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    return low, 1.0 if successes == n else min(1.0, centre + half)


def bootstrap_interval(units, statistic: Callable[[np.ndarray], np.ndarray], *, resamples: int = RESAMPLES,
                       seed: int = 0, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval `(low, high)` of `statistic` over the rows of `units` (module docstring)."""
    confidence = _checked_confidence(confidence)
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ConfigError(f"resamples={short_repr(resamples)}, expected a whole number >= 1")
    units = np.asarray(units)
    if units.ndim < 1 or len(units) == 0:
        raise DataError("bootstrap", f"expected at least one unit, got an array of shape {units.shape}")
    n = len(units)
    chunk = max(1, CHUNK_ELEMENTS // units.size)
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, resamples, chunk):
        drawn = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        values.append(np.asarray(statistic(units[drawn]), np.float64).reshape(len(drawn)))
    values = np.concatenate(values)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        raise DataError("bootstrap", "the statistic is undefined (NaN) on every resample")
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def ratio_of_sums(resampled: np.ndarray) -> np.ndarray:
    """`[r, n, 2]` resampled (numerator, denominator) units -> `[r]` sum of numerators over sum of
    denominators (NaN where the denominators sum to 0)."""
    numerator, denominator = resampled[..., 0].sum(axis=1), resampled[..., 1].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def format_interval(value: float, interval=None) -> str:
    """`0.8248 [0.7803, 0.8620]`, or `0.8248` without an interval."""
    if interval is None:
        return f"{value:.4f}"
    low, high = interval
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"
