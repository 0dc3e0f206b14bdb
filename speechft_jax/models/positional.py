"""The convolutional positional embedding.

A grouped conv over time (kernel `num_conv_pos_embeddings`, `num_conv_pos_embedding_groups`
groups), "same" padded with one output frame dropped when the kernel is even, then the feature
activation. Its weight is weight-normalised over the kernel axis (PyTorch `dim=2`), or, for
HuBERT's `conv_pos_batch_norm` variant, a plain weight after an inference-mode BatchNorm.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from speechft_jax.models import partitioning as P
from speechft_jax.models.activations import activation
from speechft_jax.models.config import EncoderConfig

_BATCH_NORM_EPS = 1e-5


def _same_padding(kernel: int) -> tuple[int, int]:
    # PyTorch pads kernel // 2 on both sides, then drops the last frame for even kernels.
    return kernel // 2, kernel // 2 - (1 if kernel % 2 == 0 else 0)


def _conv(x, kernel, groups: int, padding: tuple[int, int], preferred):
    return jax.lax.conv_general_dilated(
        x, kernel, window_strides=(1,), padding=[padding], dimension_numbers=("NWC", "WIO", "NWC"),
        feature_group_count=groups, preferred_element_type=preferred)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def grouped_conv1d(x, kernel, groups: int, padding: tuple[int, int], preferred=None):
    """x `[batch, frames, C]`, kernel `[K, C/groups, C]` -> `[batch, frames', C]`.

    The same grouped conv as `lax.conv_general_dilated`, with a faster kernel gradient: XLA's
    CPU backward-filter for a wide grouped conv is ~10x slower than summing, tap by tap,
    `x[t + k]^T @ dy[t]` per group (measured in bench/RESULTS.md).
    """
    return _conv(x, kernel, groups, padding, preferred)


def _grouped_conv1d_fwd(x, kernel, groups, padding, preferred):
    return _conv(x, kernel, groups, padding, preferred), (x, kernel)


def _grouped_conv1d_bwd(groups, padding, preferred, residuals, dy):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda a: _conv(a, kernel, groups, padding, preferred), x)
    (dx,) = input_vjp(dy)
    batch, frames, channels = dy.shape
    per_group = channels // groups
    padded = jnp.pad(x, ((0, 0), padding, (0, 0)))
    dy_groups = dy.reshape(batch, frames, groups, per_group)

    def tap(k):  # dkernel[k, i, g * per_group + o] = sum_{b,t} x[b, t + k, g, i] dy[b, t, g, o]
        window = jax.lax.dynamic_slice_in_dim(padded, k, frames, axis=1).reshape(batch, frames, groups, per_group)
        grad = jnp.einsum("btgi,btgo->igo", window, dy_groups, preferred_element_type=jnp.float32)
        return grad.reshape(per_group, channels)

    dkernel = jax.lax.map(tap, jnp.arange(kernel.shape[0]), batch_size=8)
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


grouped_conv1d.defvjp(_grouped_conv1d_fwd, _grouped_conv1d_bwd)


class PositionalConv(nn.Module):
    """The grouped conv; params `weight_v` `[K, C/groups, C]`, `weight_g` `[K, 1, 1]`, `bias`."""

    config: EncoderConfig

    @nn.compact
    def __call__(self, x):  # [batch, frames, hidden]
        cfg = self.config
        k, c, groups = cfg.num_conv_pos_embeddings, cfg.hidden_size, cfg.num_conv_pos_embedding_groups
        pdt = jnp.dtype(cfg.param_dtype)
        std = 2.0 * (1.0 / (k * c)) ** 0.5
        if cfg.conv_pos_batch_norm:
            kernel = self.param("kernel", P.partitioned(nn.initializers.normal(std), P.POS_KERNEL, P.POS_IN, P.EMBED),
                                (k, c // groups, c), pdt)
        else:
            weight_v = self.param("weight_v", P.partitioned(nn.initializers.normal(std), P.POS_KERNEL, P.POS_IN, P.EMBED),
                                  (k, c // groups, c), pdt)
            # weight_g starts as the norm of weight_v, so the initial kernel equals weight_v.
            norm_init = lambda rng, shape, dtype: jnp.sqrt(jnp.sum(jnp.square(weight_v), axis=(1, 2), keepdims=True)).astype(dtype)
            weight_g = self.param("weight_g", P.partitioned(norm_init, P.POS_KERNEL, None, None), (k, 1, 1), pdt)
            v = weight_v.astype(jnp.float32)
            norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=(1, 2), keepdims=True))
            kernel = weight_g.astype(jnp.float32) * v / norm
        bias = self.param("bias", P.partitioned(nn.initializers.zeros_init(), P.EMBED), (c,), pdt)
        dtype = jnp.dtype(cfg.dtype)
        y = grouped_conv1d(x.astype(dtype), kernel.astype(dtype), groups, _same_padding(k),
                           jnp.float32 if dtype == jnp.float32 else None)
        return (y + bias.astype(y.dtype)).astype(dtype)


class InferenceBatchNorm(nn.Module):
    """BatchNorm1d with its running statistics (frozen: they take no gradient)."""

    config: EncoderConfig

    @nn.compact
    def __call__(self, x):
        c, pdt = self.config.hidden_size, jnp.dtype(self.config.param_dtype)
        scale = self.param("scale", P.partitioned(nn.initializers.ones_init(), P.NORM), (c,), pdt)
        bias = self.param("bias", P.partitioned(nn.initializers.zeros_init(), P.NORM), (c,), pdt)
        mean = jax.lax.stop_gradient(self.param("mean", P.partitioned(nn.initializers.zeros_init(), P.NORM), (c,), pdt))
        var = jax.lax.stop_gradient(self.param("var", P.partitioned(nn.initializers.ones_init(), P.NORM), (c,), pdt))
        y = (x.astype(jnp.float32) - mean) * jax.lax.rsqrt(var.astype(jnp.float32) + _BATCH_NORM_EPS)
        return (y * scale + bias).astype(x.dtype)


class PositionalConvEmbedding(nn.Module):
    """`[batch, frames, hidden]` -> the positional embedding to add, same shape."""

    config: EncoderConfig

    @nn.compact
    def __call__(self, x):
        if self.config.conv_pos_batch_norm:
            x = InferenceBatchNorm(self.config, name="batch_norm")(x)
        x = PositionalConv(self.config, name="conv")(x)
        return activation(self.config.feat_extract_activation)(x)
