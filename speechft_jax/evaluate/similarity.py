"""How far a fine-tuned encoder moved from the pre-trained one: feature similarity and weight change.

`linear_cka(x, y)`: linear centred kernel alignment between two frame-feature matrices
`[frames, dim]` (Kornblith et al., 2019): `||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)` after
centring; 1 for identical features, invariant to rotations and isotropic scaling.
`linear_r2(x, y)`: R^2 of a least-squares linear map (with bias) from `x` to `y`, fitted on half
of the frames and scored on the other half: `1 - SS_res / SS_tot` summed over y's dimensions.
`layer_similarity(feats, ref_feats)`: both per hidden state. `weight_change(theta, theta_0)`:
the L2 norm of the update and its size relative to `||theta_0||`. `similarity_report` is both,
as the sweep and `python -m speechft_jax.evaluate --similarity-to` report them.
"""

from __future__ import annotations

import numpy as np

from speechft_jax.tree_math import squared_distance, sum_of_squares


def _centred(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x - x.mean(axis=0, keepdims=True)


def linear_cka(x, y) -> float:
    x, y = _centred(x), _centred(y)
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def linear_r2(x, y, ridge: float = 1e-6) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    half = len(x) // 2
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    a, b = design[:half], y[:half]
    coef = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ b)
    residual = y[half:] - design[half:] @ coef
    total = y[half:] - y[half:].mean(axis=0, keepdims=True)
    return float(1.0 - (residual ** 2).sum() / (total ** 2).sum())


def layer_similarity(features: list, reference: list) -> list[dict]:
    """Per hidden state: `{"layer", "cka", "r2"}`. Inputs: per-utterance `[L+1, frames, dim]` arrays."""
    x = np.concatenate([np.asarray(f, np.float32) for f in features], axis=1)
    y = np.concatenate([np.asarray(f, np.float32) for f in reference], axis=1)
    return [{"layer": i, "cka": round(linear_cka(x[i], y[i]), 4), "r2": round(linear_r2(x[i], y[i]), 4)}
            for i in range(x.shape[0])]


def weight_change(theta, theta_0) -> dict:
    """`{"l2": ||theta - theta_0||, "relative": ||theta - theta_0|| / ||theta_0||}`."""
    distance = float(np.sqrt(squared_distance(theta, theta_0)))
    return {"l2": distance, "relative": distance / float(np.sqrt(sum_of_squares(theta_0)))}


def similarity_report(features: list, reference: list, change: dict, task: str) -> dict:
    """`{"task", "layers": layer_similarity(...), "l2", "relative"}` of one encoder against theta_0;
    `change` is its `weight_change`."""
    return {"task": task, "layers": layer_similarity(features, reference), **change}
