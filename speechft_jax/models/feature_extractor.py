"""The CNN feature extractor (the "downsampler") and the feature projection.

Waveform `[batch, samples]` -> CNN features `[batch, frames, conv_dim[-1]]` -> projected features
`[batch, frames, hidden_size]`. "group" norm models have a per-channel GroupNorm after the first
conv only; "layer" norm models have a LayerNorm after every conv.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from speechft_jax.models import partitioning as P
from speechft_jax.models.activations import activation
from speechft_jax.models.config import EncoderConfig

# PyTorch's GroupNorm / LayerNorm default epsilon, used by the CNN regardless of layer_norm_eps.
_CNN_NORM_EPS = 1e-5


class ConvLayer(nn.Module):
    """One conv of the CNN, with its norm (if any) and activation."""

    config: EncoderConfig
    layer_id: int

    @nn.compact
    def __call__(self, x):  # [batch, time, in_channels] -> [batch, time', out_channels]
        cfg, i = self.config, self.layer_id
        x = nn.Conv(
            features=cfg.conv_dim[i],
            kernel_size=(cfg.conv_kernel[i],),
            strides=(cfg.conv_stride[i],),
            padding="VALID",
            use_bias=cfg.conv_bias,
            dtype=jnp.dtype(cfg.dtype),
            param_dtype=jnp.dtype(cfg.param_dtype),
            kernel_init=P.partitioned(nn.initializers.he_normal(), P.CONV_KERNEL, P.CONV_IN, P.CONV_OUT),
            bias_init=P.partitioned(nn.initializers.zeros_init(), P.CONV_OUT),
            name="conv",
        )(x)
        if cfg.feat_extract_norm == "layer":
            x = P.layer_norm(cfg, "layer_norm", epsilon=_CNN_NORM_EPS)(x)
        elif i == 0:
            # GroupNorm with one group per channel: each channel normalised over time.
            x = nn.GroupNorm(
                num_groups=cfg.conv_dim[i],
                epsilon=_CNN_NORM_EPS,
                dtype=jnp.dtype(cfg.dtype),
                param_dtype=jnp.dtype(cfg.param_dtype),
                scale_init=P.partitioned(nn.initializers.ones_init(), P.NORM),
                bias_init=P.partitioned(nn.initializers.zeros_init(), P.NORM),
                name="layer_norm",
            )(x)
        return activation(cfg.feat_extract_activation)(x)


class FeatureExtractor(nn.Module):
    """The CNN: waveform `[batch, samples]` -> features `[batch, frames, conv_dim[-1]]`."""

    config: EncoderConfig

    @nn.compact
    def __call__(self, waveforms):
        x = waveforms[..., None].astype(jnp.dtype(self.config.dtype))
        for i in range(self.config.num_feat_extract_layers):
            x = ConvLayer(self.config, i, name=f"conv_layers_{i}")(x)
        return x


class FeatureProjection(nn.Module):
    """Optional LayerNorm, then a linear map from conv_dim[-1] to hidden_size, then dropout."""

    config: EncoderConfig

    @nn.compact
    def __call__(self, features, deterministic: bool = True):
        cfg = self.config
        if cfg.uses_projection_layer_norm:
            features = P.layer_norm(cfg, "layer_norm")(features)
        x = P.dense(cfg.hidden_size, P.CONV_OUT, P.EMBED, cfg, "projection")(features)
        x = nn.Dropout(cfg.feat_proj_dropout)(x, deterministic=deterministic)
        return x
