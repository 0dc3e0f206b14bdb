"""Speaker verification's error measures: the equal error rate (EER) and the minimum detection cost (minDCF).

`equal_error_rate(scores, labels)` takes one score per trial (higher = more likely the same
speaker; SUPERB's ASV scores by the cosine of two utterance embeddings) and its label (1 = the
same speaker, a target trial). Walking the ROC curve (scikit-learn's `roc_curve`, every
threshold kept), the false-acceptance rate FAR = FPR rises and the false-rejection rate
FRR = 1 - TPR falls; the EER is where they cross, linearly interpolated between the two ROC
points around the crossing (as SUPERB's recipe interpolates the ROC curve), a fraction in [0, 1].
`equal_error_rates` computes the same for many rows of trials at once (the bootstrap's resamples).

`min_dcf(scores, targets, p_target, c_miss, c_fa)` is the NIST detection cost at its best
threshold, normalised as VoxSRC's and Kaldi's scorers do: over the same ROC points,
DCF = c_miss * P_miss * p_target + c_fa * P_fa * (1 - p_target), with P_miss = 1 - TPR and
P_fa = FPR, and the minimum is divided by min(c_miss * p_target, c_fa * (1 - p_target)), the cost
of the better trivial system (accept every trial or reject every trial), so 1 means no better
than that and 0 is perfect. Tied scores share one threshold (a sorting scorer would split them).
The defaults p_target = 0.01, c_miss = c_fa = 1 are the usual VoxCeleb1 operating point (VoxSRC
has also used p_target = 0.05). SUPERB reports EER only for ASV; minDCF is reported beside it.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

from speechft_jax.errors import ConfigError, DataError, short_repr


def equal_error_rate(scores, labels) -> float:
    """The EER of trials `scores` (float `[N]`) with `labels` (1 target, 0 non-target) (module docstring)."""
    scores, labels = _trial_arrays(scores, labels)
    far, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    frr = 1.0 - tpr
    gap = far - frr  # rises from -1 (accept nothing) to +1 (accept everything)
    k = int(np.argmax(gap >= 0))  # the first ROC point at or past the crossing
    if gap[k] == 0 or k == 0:
        return float(far[k])
    t = -gap[k - 1] / (gap[k] - gap[k - 1])  # where the segment from point k-1 to k crosses
    return float(far[k - 1] + t * (far[k] - far[k - 1]))


def equal_error_rates(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The EER of each row of trials `scores` float `[r, n]` with `targets` `[r, n]` (1 target, 0 not):
    `[r]`, each as `equal_error_rate` computes it (the ROC curve over every
    distinct score, tied scores one threshold, linear interpolation at the crossing); NaN for a
    row without both kinds of trial."""
    scores, targets = np.asarray(scores, np.float64), np.asarray(targets, np.float64)
    rows, n = scores.shape
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=1)
    hits = np.take_along_axis(targets, order, axis=1)
    positives, negatives = hits.sum(axis=1), n - hits.sum(axis=1)
    # ROC points: the origin (accept nothing), then one after each trial accepted in score order
    zero = np.zeros((rows, 1))
    true_accepts = np.concatenate([zero, np.cumsum(hits, axis=1)], axis=1)
    false_accepts = np.concatenate([zero, np.cumsum(1.0 - hits, axis=1)], axis=1)
    # within a run of tied scores only the run's end is a point: the others repeat the point before
    is_point = np.concatenate([np.ones((rows, 1), bool), ranked[:, :-1] != ranked[:, 1:], np.ones((rows, 1), bool)],
                              axis=1)
    last_point = np.maximum.accumulate(np.where(is_point, np.arange(n + 1), 0), axis=1)
    true_accepts = np.take_along_axis(true_accepts, last_point, axis=1)
    false_accepts = np.take_along_axis(false_accepts, last_point, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        far = false_accepts / negatives[:, None]
        gap = far - (1.0 - true_accepts / positives[:, None])  # FAR - FRR: from -1 up to +1
        k = np.argmax(gap >= 0, axis=1)[:, None]  # the first point at or past the crossing (never the origin)
        before, at = np.take_along_axis(gap, k - 1, axis=1), np.take_along_axis(gap, k, axis=1)
        t = -before / (at - before)
        far_before, far_at = np.take_along_axis(far, k - 1, axis=1), np.take_along_axis(far, k, axis=1)
        eer = (far_before + t * (far_at - far_before))[:, 0]
    return np.where((positives > 0) & (negatives > 0), eer, np.nan)


def min_dcf(scores, targets, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """The minDCF of trials `scores` (float `[N]`) with `targets` (1 target, 0 non-target) (module docstring)."""
    scores, targets = _trial_arrays(scores, targets)
    if not (_is_real(p_target) and 0 < p_target < 1):
        raise ConfigError(f"p_target={short_repr(p_target)}, expected a probability strictly between 0 and 1")
    for name, cost in (("c_miss", c_miss), ("c_fa", c_fa)):
        if not (_is_real(cost) and np.isfinite(cost) and cost > 0):
            raise ConfigError(f"{name}={short_repr(cost)}, expected a finite cost > 0")
    p_fa, tpr, _ = roc_curve(targets, scores, drop_intermediate=False)  # from reject-all to accept-all
    costs = c_miss * (1.0 - tpr) * p_target + c_fa * p_fa * (1.0 - p_target)
    return float(costs.min() / min(c_miss * p_target, c_fa * (1.0 - p_target)))


def _trial_arrays(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """`scores` as float64 `[N]` and `labels` `[N]` of 0s and 1s, both kinds present, or a one-line DataError."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise DataError("trials", f"expected one score per label, got {scores.shape} scores and {labels.shape} labels")
    if not set(np.unique(labels).tolist()) <= {0, 1} or len(np.unique(labels)) != 2:
        raise DataError("trials", "expected both target (1) and non-target (0) trials, and no other label")
    if not np.isfinite(scores).all():
        raise DataError("trials", "scores must be finite")
    return scores, labels


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
