"""Logical axis names carried by every encoder parameter and activation, and helpers for them.

Model code names axes (`embed`, `mlp`, `heads`, ...); a mesh configuration maps them to mesh axes
through logical axis rules, so sharding changes never touch model code.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

# parameter axes
EMBED = "embed"            # hidden_size
HEADS = "heads"            # the attention projections' output (num_heads * head_dim)
MLP = "mlp"                # intermediate_size
NORM = "norm"              # LayerNorm / GroupNorm scale and bias
CONV_KERNEL = "conv_kernel"
CONV_IN = "conv_in"
CONV_OUT = "conv_out"
POS_KERNEL = "pos_kernel"  # positional conv taps
POS_IN = "pos_in"          # positional conv input channels per group
GATE = "gate"              # WavLM gate projection output (8)
BUCKETS = "buckets"        # WavLM relative position buckets
REL_HEADS = "rel_heads"    # WavLM per-head bias
# activation axes
BATCH = "batch"
LENGTH = "length"
ACT_EMBED = "act_embed"

# Default rules: nothing sharded except the batch over the data axes. Training configs override.
DEFAULT_RULES = (
    (BATCH, ("data", "fsdp")),
    (EMBED, None), (HEADS, None), (MLP, None), (NORM, None), (CONV_KERNEL, None), (CONV_IN, None),
    (CONV_OUT, None), (POS_KERNEL, None), (POS_IN, None), (GATE, None), (BUCKETS, None),
    (REL_HEADS, None), (LENGTH, None), (ACT_EMBED, None),
)


def partitioned(init, *axes):
    """`init` with logical axis names attached."""
    return nn.with_logical_partitioning(init, axes)


def dense(features, in_axis, out_axis, cfg, name, use_bias=True, kernel_std=None):
    """A Dense layer initialised like transformers (normal(initializer_range), zero bias)."""
    std = cfg.initializer_range if kernel_std is None else kernel_std
    return nn.Dense(
        features,
        use_bias=use_bias,
        dtype=jnp.dtype(cfg.dtype),
        param_dtype=jnp.dtype(cfg.param_dtype),
        kernel_init=partitioned(nn.initializers.normal(std), in_axis, out_axis),
        bias_init=partitioned(nn.initializers.zeros_init(), out_axis),
        name=name,
    )


def layer_norm(cfg, name, epsilon=None):
    """A LayerNorm with transformers' epsilon (Flax's default 1e-6 would differ)."""
    return nn.LayerNorm(
        epsilon=cfg.layer_norm_eps if epsilon is None else epsilon,
        dtype=jnp.dtype(cfg.dtype),
        param_dtype=jnp.dtype(cfg.param_dtype),
        scale_init=partitioned(nn.initializers.ones_init(), NORM),
        bias_init=partitioned(nn.initializers.zeros_init(), NORM),
        name=name,
    )
