"""The CNN feature extractor (the "downsampler") and the feature projection.

Waveform `[batch, samples]` -> CNN features `[batch, frames, conv_dim[-1]]` -> projected features
`[batch, frames, hidden_size]`. "group" norm models have a per-channel GroupNorm after the first
conv only; "layer" norm models have a LayerNorm after every conv.

The GroupNorm normalises each channel over the whole time axis, so in a padded batch (as in
transformers) an utterance's features depend on how much padding it got. With the config's
`batch_independent`, its mean and variance run over each utterance's valid conv-0 frames only (the
conv length formula applied to the sample mask): every later conv's valid frames read valid frames
only, so an utterance's features in any padded batch equal its unpadded forward.
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
    def __call__(self, x, valid_frames=None):  # [batch, time, in_channels] -> [batch, time', out_channels]
        """`valid_frames` `[batch]`: this conv's valid output frames per row, or None (all); only
        the first conv's GroupNorm reads it."""
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
            norm = nn.GroupNorm(
                num_groups=cfg.conv_dim[i],
                epsilon=_CNN_NORM_EPS,
                dtype=jnp.dtype(cfg.dtype),
                param_dtype=jnp.dtype(cfg.param_dtype),
                scale_init=P.partitioned(nn.initializers.ones_init(), P.NORM),
                bias_init=P.partitioned(nn.initializers.zeros_init(), P.NORM),
                name="layer_norm",
            )
            if valid_frames is None:
                x = norm(x)
            else:  # statistics over valid frames; a row without padding keeps exactly the unmasked ones
                full = (valid_frames >= x.shape[1])[:, None, None]
                x = jnp.where(full, norm(x), norm(x, mask=_frame_mask(valid_frames, x.shape)))
        return activation(cfg.feat_extract_activation)(x)


def _frame_mask(valid_frames, shape):
    """`[batch]` valid frame counts -> a bool mask of `shape` `[batch, time, channels]`; a row with
    no valid frame (a filler row) keeps them all, so that its statistics stay finite."""
    frames = jnp.where(valid_frames > 0, valid_frames, shape[1])
    return jnp.broadcast_to((jnp.arange(shape[1])[None, :] < frames[:, None])[..., None], shape)


class FeatureExtractor(nn.Module):
    """The CNN: waveform `[batch, samples]` -> features `[batch, frames, conv_dim[-1]]`.

    `attention_mask` `[batch, samples]` (right padding, 1 on valid samples) matters only to a
    group-norm CNN with `config.batch_independent` (module docstring); None means no padding.
    """

    config: EncoderConfig

    @nn.compact
    def __call__(self, waveforms, attention_mask=None):
        cfg = self.config
        valid_frames = None
        if cfg.batch_independent and cfg.feat_extract_norm == "group" and attention_mask is not None:
            samples = jnp.sum(attention_mask.astype(jnp.int32), axis=-1)
            valid_frames = jnp.maximum((samples - cfg.conv_kernel[0]) // cfg.conv_stride[0] + 1, 0)
        x = waveforms[..., None].astype(jnp.dtype(cfg.dtype))
        for i in range(cfg.num_feat_extract_layers):
            x = ConvLayer(cfg, i, name=f"conv_layers_{i}")(x, valid_frames if i == 0 else None)
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
