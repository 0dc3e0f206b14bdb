"""Speech-FT step 2: weight-space interpolation between the pre-trained and fine-tuned encoders.

`interpolate(theta_0, theta_ft, alpha)` = `(1 - alpha) * theta_0 + alpha * theta_ft`, and
`merge_task_vectors(theta_0, [theta_1, ...], alpha, weights)` =
`theta_0 + alpha * sum_i w_i (theta_i - theta_0)` (weights default to the mean), both as a
`tree_map` over parameter pytrees, jit-friendly (alpha may be a traced scalar). Parameters that
exist only for pre-training (HuBERT's `final_proj`, `label_embs_concat`) keep theta_0. A structure,
shape or dtype mismatch between the trees is a `MergeError` naming the first differing path.

Command line: `python -m speechft_jax.merge --pretrained DIR --finetuned DIR [DIR ...] --alpha 0.25 --out DIR`.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from speechft_jax.errors import MergeError
from speechft_jax.tree_math import check_compatible

PRETRAINING_ONLY = ("final_proj", "label_embs_concat")


def _keeps_theta_0(path) -> bool:
    return any(getattr(k, "key", None) in PRETRAINING_ONLY for k in path)


def _combine(theta_0, others, fn):
    def leaf(path, base, *rest):
        if _keeps_theta_0(path):
            return base
        out = fn(base.astype(jnp.float32), *(r.astype(jnp.float32) for r in rest))
        return out.astype(base.dtype)

    return jax.tree_util.tree_map_with_path(leaf, theta_0, *others)


def interpolate(theta_0, theta_ft, alpha):
    """`(1 - alpha) * theta_0 + alpha * theta_ft` per leaf (computed in float32, cast back).

    Exact at the ends: alpha 0 gives theta_0 and alpha 1 gives theta_ft, bit for bit.
    """
    check_compatible(theta_0, theta_ft)
    return _combine(theta_0, [theta_ft], lambda a, b: (1.0 - alpha) * a + alpha * b)


def merge_task_vectors(theta_0, finetuned: Sequence, alpha, weights: Sequence[float] | None = None):
    """`theta_0 + alpha * sum_i w_i (theta_i - theta_0)`; `weights` default to `1 / len(finetuned)`."""
    finetuned = list(finetuned)
    if not finetuned:
        raise MergeError("merge_task_vectors needs at least one fine-tuned parameter tree")
    for i, theta in enumerate(finetuned):
        check_compatible(theta_0, theta, f"fine-tuned #{i + 1}")
    weights = [1.0 / len(finetuned)] * len(finetuned) if weights is None else list(weights)
    if len(weights) != len(finetuned):
        raise MergeError(f"{len(weights)} weights for {len(finetuned)} fine-tuned models")

    def fn(base, *rest):
        return base + alpha * sum(w * (r - base) for w, r in zip(weights, rest))

    return _combine(theta_0, finetuned, fn)


__all__ = ["MergeError", "PRETRAINING_ONLY", "interpolate", "merge_task_vectors"]
