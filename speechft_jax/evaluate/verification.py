"""Speaker verification's equal error rate: where the false-acceptance and false-rejection rates meet.

`equal_error_rate(scores, labels)` takes one score per trial (higher = more likely the same
speaker; SUPERB's ASV scores by the cosine of two utterance embeddings) and its label (1 = the
same speaker, a target trial). Walking the ROC curve (scikit-learn's `roc_curve`, every
threshold kept), the false-acceptance rate FAR = FPR rises and the false-rejection rate
FRR = 1 - TPR falls; the EER is where they cross, linearly interpolated between the two ROC
points around the crossing (as SUPERB's recipe interpolates the ROC curve), a fraction in [0, 1].
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

from speechft_jax.errors import DataError


def equal_error_rate(scores, labels) -> float:
    """The EER of trials `scores` (float `[N]`) with `labels` (1 target, 0 non-target) (module docstring)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise DataError("trials", f"expected one score per label, got {scores.shape} scores and {labels.shape} labels")
    if not set(np.unique(labels).tolist()) <= {0, 1} or len(np.unique(labels)) != 2:
        raise DataError("trials", "expected both target (1) and non-target (0) trials, and no other label")
    if not np.isfinite(scores).all():
        raise DataError("trials", "scores must be finite")
    far, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    frr = 1.0 - tpr
    gap = far - frr  # rises from -1 (accept nothing) to +1 (accept everything)
    k = int(np.argmax(gap >= 0))  # the first ROC point at or past the crossing
    if gap[k] == 0 or k == 0:
        return float(far[k])
    t = -gap[k - 1] / (gap[k] - gap[k - 1])  # where the segment from point k-1 to k crosses
    return float(far[k - 1] + t * (far[k] - far[k - 1]))
