"""Soft-DTW: parity with a NumPy dynamic program, hard-DTW limit, gradients, padding, one scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from speechft_jax.tasks.soft_dtw import cost_matrix, normalized_soft_dtw, soft_dtw, soft_min

X_LENGTHS = np.array([7, 5, 3, 1])
Y_LENGTHS = np.array([4, 9, 3, 6])
N, M, DIM = 8, 10, 3
# jitted once per module: eager soft-DTW compiles op by op and costs seconds per call on CPU
sdtw = jax.jit(soft_dtw)
costs = jax.jit(cost_matrix, static_argnames="kind")
normalized = jax.jit(normalized_soft_dtw, static_argnames="kind")


def _reference_sdtw(cost, gamma):
    """Textbook double loop: R[0, 0] = 0, borders inf; gamma = 0 gives hard DTW."""
    n, m = cost.shape
    r = np.full((n + 1, m + 1), np.inf)
    r[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            prev = np.array([r[i - 1, j - 1], r[i - 1, j], r[i, j - 1]])
            if gamma == 0:
                soft = prev.min()
            else:
                low = prev.min()
                soft = low - gamma * np.log(np.sum(np.exp(-(prev - low) / gamma)))
            r[i, j] = cost[i - 1, j - 1] + soft
    return r[n, m]


def _padded_batch(seed=0, fill=1e6):
    """x `[B, N, D]`, y `[B, M, D]` with garbage (`fill`) in the padded frames."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(X_LENGTHS), N, DIM)).astype(np.float32)
    y = rng.standard_normal((len(Y_LENGTHS), M, DIM)).astype(np.float32)
    for b, (n, m) in enumerate(zip(X_LENGTHS, Y_LENGTHS)):
        x[b, n:] = fill
        y[b, m:] = fill
    return x, y


def _valid_cost(x, y, b, kind="sq_euclidean", x_lengths=X_LENGTHS, y_lengths=Y_LENGTHS):
    """The float64 cost block `[n_b, m_b]` of pair b."""
    x, y = np.asarray(x), np.asarray(y)
    xb, yb = x[b, :x_lengths[b]].astype(np.float64), y[b, :y_lengths[b]].astype(np.float64)
    if kind == "cosine":
        xb = xb / np.linalg.norm(xb, axis=-1, keepdims=True)
        yb = yb / np.linalg.norm(yb, axis=-1, keepdims=True)
        return 1.0 - xb @ yb.T
    return ((xb[:, None, :] - yb[None, :, :]) ** 2).sum(-1)


def test_soft_min_is_stable_and_tends_to_min():
    values = np.array([[1e6, 1e6 + 1.0, 1e6 + 2.0], [0.3, 0.1, 0.2], [0.0, 0.0, 0.0]], np.float32)
    soft_min_jit = jax.jit(soft_min)
    sharp, smooth = np.asarray(soft_min_jit(values, 1e-3)), np.asarray(soft_min_jit(values, 0.5))
    assert np.all(np.isfinite(sharp)) and np.all(np.isfinite(smooth))
    # tends to the min as gamma -> 0; for equal entries it is gamma * log(3) below them
    np.testing.assert_allclose(sharp[:2], [1e6, 0.1], rtol=1e-6)
    np.testing.assert_allclose(smooth[2], -0.5 * np.log(3), rtol=1e-6)
    assert np.all(smooth < values.min(-1))


@pytest.mark.parametrize("kind", ["sq_euclidean", "cosine"])
def test_cost_matrix_matches_numpy(kind):
    x, y = _padded_batch(fill=0.5)
    cost = np.asarray(costs(jnp.asarray(x), jnp.asarray(y), kind=kind))
    assert cost.shape == (len(X_LENGTHS), N, M)
    for b in range(len(X_LENGTHS)):
        np.testing.assert_allclose(cost[b, :X_LENGTHS[b], :Y_LENGTHS[b]], _valid_cost(x, y, b, kind),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gamma", [0.1, 1.0])
def test_value_matches_numpy_dp_on_padded_batch(gamma):
    x, y = _padded_batch()
    cost = costs(jnp.asarray(x), jnp.asarray(y))
    # padded cells are huge (or NaN) here: neither may reach the result
    cost = cost.at[0, -1, -1].set(jnp.nan)
    values = np.asarray(sdtw(cost, gamma, X_LENGTHS, Y_LENGTHS))
    expected = [_reference_sdtw(_valid_cost(x, y, b), gamma) for b in range(len(X_LENGTHS))]
    np.testing.assert_allclose(values, expected, rtol=1e-5)


def test_small_gamma_approaches_hard_dtw():
    x, y = _padded_batch(seed=1)
    cost = costs(jnp.asarray(x), jnp.asarray(y))
    values = np.asarray(sdtw(cost, 1e-3, X_LENGTHS, Y_LENGTHS))
    hard = [_reference_sdtw(_valid_cost(x, y, b), 0) for b in range(len(X_LENGTHS))]
    # soft-min is within gamma * log(3) of min per cell, at most N + M cells per path
    np.testing.assert_allclose(values, hard, atol=1e-3 * np.log(3) * (N + M) + 1e-4)


def test_gradient_matches_finite_differences_in_float64():
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        x = rng.standard_normal((1, 4, 2))
        y = rng.standard_normal((1, 5, 2))

        @jax.jit
        def loss(x):
            return soft_dtw(cost_matrix(x, jnp.asarray(y)), 0.5)[0]

        grad = np.asarray(jax.grad(loss)(jnp.asarray(x)))
        assert grad.dtype == np.float64
        numeric = np.zeros_like(x)
        eps = 1e-6
        for idx in np.ndindex(x.shape):
            step = np.zeros_like(x)
            step[idx] = eps
            numeric[idx] = (loss(jnp.asarray(x + step)) - loss(jnp.asarray(x - step))) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_gradients_finite_and_zero_on_padded_frames():
    x, y = _padded_batch(fill=np.nan)

    def loss(x, y):
        return normalized_soft_dtw(x, y, 0.1, X_LENGTHS, Y_LENGTHS).sum()

    gx, gy = jax.jit(jax.grad(loss, argnums=(0, 1)))(jnp.asarray(x), jnp.asarray(y))
    gx, gy = np.asarray(gx), np.asarray(gy)
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))
    for b in range(len(X_LENGTHS)):
        assert np.all(gx[b, X_LENGTHS[b]:] == 0) and np.all(gy[b, Y_LENGTHS[b]:] == 0)
    # and valid frames do get a gradient (row 3 has a single x frame, still informative)
    assert all(np.abs(gx[b, :X_LENGTHS[b]]).sum() > 0 for b in range(len(X_LENGTHS)))

    # gradients w.r.t. a padded cost matrix: finite everywhere, zero outside each valid block
    cost = costs(jnp.asarray(np.nan_to_num(x, nan=1e6)), jnp.asarray(np.nan_to_num(y, nan=1e6)))
    gc = np.asarray(jax.jit(jax.grad(lambda c: soft_dtw(c, 0.1, X_LENGTHS, Y_LENGTHS).sum()))(cost))
    assert np.all(np.isfinite(gc))
    for b in range(len(X_LENGTHS)):
        block = np.zeros((N, M), bool)
        block[:X_LENGTHS[b], :Y_LENGTHS[b]] = True
        assert np.all(gc[b][~block] == 0)
        # each cell's gradient is its expected alignment weight, in [0, 1], corners always 1
        assert np.all((gc[b][block] >= -1e-6) & (gc[b][block] <= 1 + 1e-6))
        np.testing.assert_allclose(gc[b, 0, 0], 1.0, rtol=1e-5)
        np.testing.assert_allclose(gc[b, X_LENGTHS[b] - 1, Y_LENGTHS[b] - 1], 1.0, rtol=1e-5)


@pytest.mark.parametrize("kind", ["sq_euclidean", "cosine"])
def test_normalized_soft_dtw_properties(kind):
    x, y = _padded_batch(seed=3, fill=123.0)
    x, y = jnp.asarray(x), jnp.asarray(y)
    self_dist = normalized(x, x, 0.1, X_LENGTHS, X_LENGTHS, kind=kind)
    np.testing.assert_allclose(self_dist, 0.0, atol=1e-5)
    xy = np.asarray(normalized(x, y, 0.1, X_LENGTHS, Y_LENGTHS, kind=kind))
    yx = np.asarray(normalized(y, x, 0.1, Y_LENGTHS, X_LENGTHS, kind=kind))
    np.testing.assert_allclose(xy, yx, rtol=1e-5, atol=1e-6)
    # the definition, from the reference DP, divided by the sum of the two lengths
    for b in range(len(X_LENGTHS)):
        n, m = X_LENGTHS[b], Y_LENGTHS[b]
        ref = (_reference_sdtw(_valid_cost(x, y, b, kind), 0.1)
               - 0.5 * (_reference_sdtw(_valid_cost(x, x, b, kind, X_LENGTHS, X_LENGTHS), 0.1)
                        + _reference_sdtw(_valid_cost(y, y, b, kind, Y_LENGTHS, Y_LENGTHS), 0.1))) / (n + m)
        np.testing.assert_allclose(xy[b], ref, rtol=1e-4, atol=1e-5)
    # a time-warped copy (each frame twice) is closer than an unrelated sequence
    short = np.minimum(X_LENGTHS, 5)
    warped = jnp.repeat(x[:, :5], 2, axis=1)
    near = normalized(x, warped, 0.1, short, 2 * short, kind=kind)
    far = normalized(x, y, 0.1, short, Y_LENGTHS, kind=kind)
    assert np.all(np.asarray(near) < np.asarray(far))


def test_long_pair_is_one_scan_of_diagonals():
    n = m = 200
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((1, n, 16)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((1, m, 16)), jnp.float32)
    cost = cost_matrix(x, y)
    jaxpr = jax.make_jaxpr(lambda c: soft_dtw(c, 0.1))(cost)
    scans = [eqn for eqn in jaxpr.jaxpr.eqns if eqn.primitive.name == "scan"]
    assert len(scans) == 1 and scans[0].params["length"] == n + m - 1
    assert "while" not in {eqn.primitive.name for eqn in jaxpr.jaxpr.eqns}
    # SCORE's loss batches its three soft-DTW terms into that one scan as well
    loss_jaxpr = jax.make_jaxpr(lambda x, y: normalized_soft_dtw(x, y, 0.1))(x, y)
    assert sum(eqn.primitive.name == "scan" for eqn in loss_jaxpr.jaxpr.eqns) == 1
    value = jax.jit(lambda c: soft_dtw(c, 0.1))(cost)
    grad = jax.jit(jax.grad(lambda c: soft_dtw(c, 0.1).sum()))(cost)
    assert np.isfinite(float(value[0])) and np.all(np.isfinite(np.asarray(grad)))
    # hard-DTW-like bound: no larger than the diagonal path's cost (plus the soft-min slack)
    assert float(value[0]) <= float(jnp.trace(cost[0])) + 1e-3
