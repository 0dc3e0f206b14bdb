"""The positional conv's hand-written kernel gradient equals XLA's autodiff of the same conv."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from speechft_jax.models.positional import _conv, _same_padding, grouped_conv1d


@pytest.mark.parametrize("kernel_size, groups, frames", [(16, 4, 37), (15, 2, 20), (6, 1, 9)])
def test_gradients_match_autodiff(kernel_size, groups, frames):
    channels = 24
    x = jax.random.normal(jax.random.PRNGKey(0), (3, frames, channels))
    w = jax.random.normal(jax.random.PRNGKey(1), (kernel_size, channels // groups, channels))
    pad = _same_padding(kernel_size)
    weights = jax.random.normal(jax.random.PRNGKey(2), _conv(x, w, groups, pad, None).shape)
    loss = lambda conv: (lambda x, w: jnp.sum(jnp.tanh(conv(x, w, groups, pad, None)) * weights))
    expected = jax.grad(loss(_conv), argnums=(0, 1))(x, w)
    got = jax.jit(jax.grad(loss(grouped_conv1d), argnums=(0, 1)))(x, w)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(grouped_conv1d(x, w, groups, pad, None), _conv(x, w, groups, pad, None))
