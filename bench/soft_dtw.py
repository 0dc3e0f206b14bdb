"""Benchmark: SCORE's normalised soft-DTW, forward + backward, this project (JAX) vs a plain loop.

8 pairs of 250 x 250 frames x 256 dims (L2-normalised, as SCORE feeds it), gamma 0.1, squared
Euclidean cost: `(sdtw(x, y) - (sdtw(x, x) + sdtw(y, y)) / 2) / (n + m)` and its gradient with
respect to x and y. The reference is the textbook algorithm in NumPy: the cost matrices, the
forward recursion over cells (vectorised over the 8 pairs only) and Cuturi & Blondel's backward
recursion for the expected alignment E, then dC/dx and dC/dy from E. The JAX side is one jitted
`value_and_grad` whose recursion is a single `lax.scan` over anti-diagonals. Both give the same
numbers (checked below). The run also feeds a second batch of the same bucket with other valid
lengths and reports how many times the JAX function compiled (goal: once).
    python bench/soft_dtw.py [--pairs 8] [--frames 250] [--dim 256] [--repeats 5]
Goal (issue): at least 10x faster than the reference, no recompilation within a bucket.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import jax
import jax.numpy as jnp
import numpy as np

from common import environment, print_table, summary, time_interleaved
from speechft_jax.tasks.soft_dtw import normalized_soft_dtw


def _softmin3(a, b, c, gamma):
    stacked = np.stack([a, b, c]) / -gamma
    top = stacked.max(axis=0)
    return -gamma * (top + np.log(np.exp(stacked - top).sum(axis=0)))


def _reference_sdtw(cost, gamma):
    """Value and dValue/dCost of soft-DTW for `[B, N, M]` costs (full lengths), plain loops."""
    b, n, m = cost.shape
    r = np.full((b, n + 2, m + 2), np.inf)
    r[:, 0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            r[:, i, j] = cost[:, i - 1, j - 1] + _softmin3(r[:, i - 1, j - 1], r[:, i - 1, j], r[:, i, j - 1], gamma)
    value = r[:, n, m].copy()
    # backward (Cuturi & Blondel 2017, algorithm 2)
    c = np.zeros((b, n + 2, m + 2))
    c[:, 1:n + 1, 1:m + 1] = cost
    e = np.zeros((b, n + 2, m + 2))
    e[:, n + 1, m + 1] = 1.0
    r[:, :, m + 1] = -np.inf
    r[:, n + 1, :] = -np.inf
    r[:, n + 1, m + 1] = r[:, n, m]
    for j in range(m, 0, -1):
        for i in range(n, 0, -1):
            a = np.exp((r[:, i + 1, j] - r[:, i, j] - c[:, i + 1, j]) / gamma)
            bb = np.exp((r[:, i, j + 1] - r[:, i, j] - c[:, i, j + 1]) / gamma)
            cc = np.exp((r[:, i + 1, j + 1] - r[:, i, j] - c[:, i + 1, j + 1]) / gamma)
            e[:, i, j] = e[:, i + 1, j] * a + e[:, i, j + 1] * bb + e[:, i + 1, j + 1] * cc
    return value, e[:, 1:n + 1, 1:m + 1]


def _sq_cost(x, y):
    return (x * x).sum(-1)[:, :, None] + (y * y).sum(-1)[:, None, :] - 2 * np.einsum("bnd,bmd->bnm", x, y)


def _cost_grads(e, x, y):
    """d/dx and d/dy of sum(E * ||x_i - y_j||^2)."""
    gx = 2 * (e.sum(2)[..., None] * x - np.einsum("bnm,bmd->bnd", e, y))
    gy = 2 * (e.sum(1)[..., None] * y - np.einsum("bnm,bnd->bmd", e, x))
    return gx, gy


def reference(x, y, gamma):
    """Mean normalised soft-DTW over the pairs and its gradient, in NumPy (float64)."""
    b, n, _ = x.shape
    m = y.shape[1]
    vxy, exy = _reference_sdtw(_sq_cost(x, y), gamma)
    vxx, exx = _reference_sdtw(_sq_cost(x, x), gamma)
    vyy, eyy = _reference_sdtw(_sq_cost(y, y), gamma)
    scale = 1.0 / ((n + m) * b)
    gx_xy, gy_xy = _cost_grads(exy, x, y)
    gx_xx1, gx_xx2 = _cost_grads(exx, x, x)
    gy_yy1, gy_yy2 = _cost_grads(eyy, y, y)
    gx = scale * (gx_xy - 0.5 * (gx_xx1 + gx_xx2))
    gy = scale * (gy_xy - 0.5 * (gy_yy1 + gy_yy2))
    return float(np.mean((vxy - 0.5 * (vxx + vyy)) / (n + m))), gx, gy


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--gamma", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)

    def views(seed):
        r = np.random.default_rng(seed)
        x = r.normal(size=(args.pairs, args.frames, args.dim))
        y = r.normal(size=(args.pairs, args.frames, args.dim))
        return x / np.linalg.norm(x, axis=-1, keepdims=True), y / np.linalg.norm(y, axis=-1, keepdims=True)

    x, y = views(0)
    full = jnp.full((args.pairs,), args.frames, jnp.int32)

    def loss(x, y, xl, yl):
        return jnp.mean(normalized_soft_dtw(x, y, args.gamma, xl, yl))

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    ours = lambda: jax.block_until_ready(step(xj, yj, full, full))
    value, (gx, gy) = ours()
    ref_value, ref_gx, ref_gy = reference(x, y, args.gamma)
    value_err = abs(float(value) - ref_value) / abs(ref_value)
    grad_err = max(np.abs(np.asarray(gx) - ref_gx).max() / np.abs(ref_gx).max(),
                   np.abs(np.asarray(gy) - ref_gy).max() / np.abs(ref_gy).max())

    # a second batch of the same bucket, with other valid lengths: no new compilation
    x2, y2 = views(1)
    lengths = jnp.asarray(rng.integers(args.frames // 2, args.frames + 1, size=(2, args.pairs)), jnp.int32)
    jax.block_until_ready(step(jnp.asarray(x2, jnp.float32), jnp.asarray(y2, jnp.float32), lengths[0], lengths[1]))
    compiles = step._cache_size()

    times = time_interleaved([ours, lambda: reference(x, y, args.gamma)], repeats=args.repeats)
    ratio = np.median(times[1]) / np.median(times[0])
    print(environment())
    print_table(f"normalised soft-DTW, forward + backward, {args.pairs} pairs of {args.frames} x {args.frames} "
                f"frames x {args.dim} dims, gamma {args.gamma}",
                ("implementation", "time per batch", "speed-up"),
                [("speechft_jax (jit, lax.scan over anti-diagonals)", summary(times[0]), f"{ratio:.1f}x"),
                 ("reference (NumPy loops over cells)", summary(times[1]), "1.0x")])
    print(f"agreement: value rel. error {value_err:.2e}, gradient max rel. error {grad_err:.2e}")
    print(f"compilations for two batches of one bucket (different valid lengths): {compiles}")


if __name__ == "__main__":
    main()
