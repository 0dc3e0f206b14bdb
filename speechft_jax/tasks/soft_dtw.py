"""Soft-DTW (Cuturi & Blondel, 2017) for SCORE fine-tuning: batched, masked, differentiable.

The recursion `R[i, j] = C[i-1, j-1] + softmin_gamma(R[i-1, j-1], R[i-1, j], R[i, j-1])` with
`R[0, 0] = 0` and the borders at "infinity" runs as ONE `lax.scan` over the N + M - 1
anti-diagonals of the padded `[N, M]` cost matrix; each step updates a whole anti-diagonal at once.
A large finite value (`BIG`) stands in for infinity so that no gradient ever meets `inf - inf`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

COST_KINDS = ("sq_euclidean", "cosine")
# "infinity" for border and out-of-range cells; far above any real path cost, and BIG / gamma stays
# finite in float32 down to gamma ~ 1e-8
BIG = 1e30


def soft_min(values, gamma: float):
    """`-gamma * logsumexp(-values / gamma)` over the last axis: `[..., K] -> [...]`.

    Stable for large entries (logsumexp subtracts the max); tends to `min` as gamma -> 0.
    """
    return -gamma * jax.nn.logsumexp(-values / gamma, axis=-1)


def cost_matrix(x, y, kind: str = "sq_euclidean"):
    """Frame-pair costs: x `[B, N, D]`, y `[B, M, D]` -> `[B, N, M]`.

    `sq_euclidean`: `||x_i - y_j||^2` (the soft-DTW paper's cost, and SCORE's "Euclidean" cost on
    L2-normalised features, where it equals `2 - 2 cos`); `cosine`: `1 - cos(x_i, y_j)`.
    Computed through inner products, so memory is `[B, N, M]`, never `[B, N, M, D]`.
    """
    if kind not in COST_KINDS:
        raise ValueError(f"cost kind {kind!r}, expected one of {COST_KINDS}")
    dot = jnp.einsum("bnd,bmd->bnm", x, y)
    if kind == "cosine":
        x_norm = jnp.sqrt(jnp.sum(x * x, axis=-1) + 1e-12)
        y_norm = jnp.sqrt(jnp.sum(y * y, axis=-1) + 1e-12)
        return 1.0 - dot / (x_norm[:, :, None] * y_norm[:, None, :])
    sq = jnp.sum(x * x, axis=-1)[:, :, None] + jnp.sum(y * y, axis=-1)[:, None, :] - 2.0 * dot
    # the expansion can dip just below zero by rounding
    return jnp.maximum(sq, 0.0)


def soft_dtw(cost, gamma: float, x_lengths=None, y_lengths=None):
    """Soft-DTW values: cost `[B, N, M]`, lengths int `[B]` (each >= 1; None = full) -> `[B]`.

    Row b uses only its valid block `cost[b, :n_b, :m_b]` and returns `R[n_b, m_b]`; whatever the
    padding holds (large values, NaN) changes neither the value nor the gradients, and the
    gradient with respect to padded cost cells is exactly zero. Computed in at least float32.
    """
    batch, n, m = cost.shape
    dtype = jnp.promote_types(cost.dtype, jnp.float32)
    cost = cost.astype(dtype)
    x_lengths = jnp.full((batch,), n, jnp.int32) if x_lengths is None else jnp.asarray(x_lengths, jnp.int32)
    y_lengths = jnp.full((batch,), m, jnp.int32) if y_lengths is None else jnp.asarray(y_lengths, jnp.int32)

    # a diagonal is indexed by row i in 0..N (i = 0 is the top border); cell (i, j=d-i) of
    # diagonal d holds R[i, j], which adds cost[i-1, j-1]
    rows = jnp.arange(n + 1)
    diagonals = jnp.arange(2, n + m + 1)                                    # [S], S = N + M - 1
    cols = diagonals[:, None] - rows[None, :]                                # [S, N+1]
    in_matrix = (rows[None, :] >= 1) & (rows[None, :] <= n) & (cols >= 1) & (cols <= m)
    in_block = (in_matrix[None]
                & (rows[None, None, :] <= x_lengths[:, None, None])
                & (cols[None] <= y_lengths[:, None, None]))                  # [B, S, N+1]
    skewed = cost[:, jnp.clip(rows - 1, 0, n - 1)[None, :], jnp.clip(cols - 1, 0, m - 1)]
    # where() rather than multiply, so NaN padding cannot leak into the gradient
    skewed = jnp.where(in_block, skewed, jnp.zeros((), dtype))              # [B, S, N+1]

    big = jnp.asarray(BIG, dtype)
    big_column = jnp.full((batch, 1), BIG, dtype)
    diag0 = jnp.full((batch, n + 1), BIG, dtype).at[:, 0].set(0.0)         # R[0, 0] = 0
    diag1 = jnp.full((batch, n + 1), BIG, dtype)                            # R[0, 1], R[1, 0]
    end_diagonal = x_lengths + y_lengths

    def step(carry, inputs):
        before_last, last, result = carry
        d, cost_d, valid_d = inputs
        up_left = jnp.concatenate([big_column, before_last[:, :-1]], axis=1)   # R[i-1, j-1]
        up = jnp.concatenate([big_column, last[:, :-1]], axis=1)               # R[i-1, j]
        left = last                                                             # R[i, j-1]
        new = cost_d + soft_min(jnp.stack([up_left, up, left], axis=-1), gamma)
        new = jnp.where(valid_d[None, :], new, big)
        at_end = jnp.take_along_axis(new, x_lengths[:, None], axis=1)[:, 0]
        result = jnp.where(d == end_diagonal, at_end, result)
        return (last, new, result), None

    init = (diag0, diag1, jnp.zeros((batch,), dtype))
    (_, _, result), _ = lax.scan(step, init, (diagonals, jnp.moveaxis(skewed, 1, 0), in_matrix))
    return result


def normalized_soft_dtw(x, y, gamma: float = 0.1, x_lengths=None, y_lengths=None,
                        kind: str = "sq_euclidean"):
    """SCORE's loss per pair: x `[B, N, D]`, y `[B, M, D]`, lengths int `[B]` -> `[B]`.

    `(sdtw(x, y) - (sdtw(x, x) + sdtw(y, y)) / 2) / (n_b + m_b)`. The SPEC's "divided by the two
    lengths" is read as the sum of the two valid lengths, which bounds the number of cells on an
    alignment path, so the loss is a per-step cost comparable across utterance lengths. Padded
    frames are zeroed before the costs, so their contents never matter.
    """
    batch, n, _ = x.shape
    m = y.shape[1]
    x_lengths = jnp.full((batch,), n, jnp.int32) if x_lengths is None else jnp.asarray(x_lengths, jnp.int32)
    y_lengths = jnp.full((batch,), m, jnp.int32) if y_lengths is None else jnp.asarray(y_lengths, jnp.int32)
    x = jnp.where((jnp.arange(n)[None, :] < x_lengths[:, None])[..., None], x, jnp.zeros((), x.dtype))
    y = jnp.where((jnp.arange(m)[None, :] < y_lengths[:, None])[..., None], y, jnp.zeros((), y.dtype))
    # the three terms share one scan of 2 * max(N, M) - 1 steps rather than three in sequence
    size = max(n, m)

    def pad(cost):
        return jnp.pad(cost, ((0, 0), (0, size - cost.shape[1]), (0, size - cost.shape[2])))

    stacked = jnp.concatenate([pad(cost_matrix(x, y, kind)), pad(cost_matrix(x, x, kind)),
                               pad(cost_matrix(y, y, kind))])                        # [3B, L, L]
    values = soft_dtw(stacked, gamma, jnp.concatenate([x_lengths, x_lengths, y_lengths]),
                      jnp.concatenate([y_lengths, x_lengths, y_lengths]))
    xy, xx, yy = values[:batch], values[batch:2 * batch], values[2 * batch:]
    return (xy - 0.5 * (xx + yy)) / (x_lengths + y_lengths).astype(xy.dtype)
