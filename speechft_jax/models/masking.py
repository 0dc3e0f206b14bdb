"""Frame masks: from sample-level padding masks, and SpecAugment-style random span masks.

`compute_span_mask` follows transformers' `_compute_mask_indices` exactly in distribution, but runs
under `jax.jit` from a PRNG key: one rounding offset per batch; per example
`int(prob * length / span + offset)` spans (at least `min_masks`, at most what fits); span starts
drawn without replacement from the example's unpadded length; every row padded to the same number
of spans by repeating its first start (or the last frame when it has none).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from speechft_jax.models.config import EncoderConfig


def frame_lengths(config: EncoderConfig, sample_lengths):
    """CNN output frames for each input length (int32 array in, int32 array out)."""
    lengths = jnp.asarray(sample_lengths, dtype=jnp.int32)
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        lengths = jnp.floor_divide(lengths - kernel, stride) + 1
    return jnp.maximum(lengths, 0)


def frame_mask_from_samples(config: EncoderConfig, attention_mask, num_frames: int, rule: str | None = None):
    """A right-padded sample mask `[batch, samples]` -> a frame mask `[batch, num_frames]` (bool).

    `rule` (default: the model's `config.frame_mask`, or "transformers" when the model computes
    batch-independent features, which a frame seeing padding would break): "transformers" keeps the
    frames the conv length formula gives for each utterance's length (those an unpadded forward
    has); "fairseq" follows fairseq's `forward_padding_mask`: the sample mask, cut to a multiple of
    `num_frames`, is split into `num_frames` equal groups, and a frame is padding only when its
    whole group is.
    """
    if rule is None:
        rule = "transformers" if config.batch_independent else config.frame_mask
    sample_lengths = jnp.sum(attention_mask.astype(jnp.int32), axis=-1)
    if rule == "fairseq":
        group = attention_mask.shape[-1] // num_frames
        lengths = jnp.minimum(-(-sample_lengths // group), num_frames)  # groups holding a valid sample
    else:
        lengths = frame_lengths(config, sample_lengths)
    return jnp.arange(num_frames)[None, :] < lengths[:, None]


def _num_spans(lengths, prob, span, min_masks, sequence_length, offset):
    n = jnp.floor(prob * lengths.astype(jnp.float32) / span + offset).astype(jnp.int32)
    n = jnp.maximum(n, min_masks)
    n = jnp.where(n * span > sequence_length, sequence_length // span, n)
    fits = jnp.maximum(lengths - (span - 1), 0)
    return jnp.where(fits < n, fits, n)


def compute_span_mask(rng, shape, prob: float, span: int, lengths=None, min_masks: int = 0):
    """A boolean mask `[batch, sequence_length]` of random spans of `span` steps.

    Args:
      rng: a PRNG key.
      shape: `(batch, sequence_length)`, static.
      prob: the fraction of each row's length to cover with span starts (overlaps reduce it).
      span: span length.
      lengths: `[batch]` unpadded lengths (default: the full sequence length).
      min_masks: minimum number of spans per row.
    """
    batch, sequence_length = shape
    if span < 1:
        raise ValueError(f"mask span length must be >= 1, got {span}")
    if span > sequence_length:
        raise ValueError(f"mask span length {span} is longer than the sequence ({sequence_length} frames)")
    if lengths is None:
        lengths = jnp.full((batch,), sequence_length, jnp.int32)
    lengths = jnp.asarray(lengths, jnp.int32)
    offset_key, order_key = jax.random.split(rng)
    offset = jax.random.uniform(offset_key, ())
    max_spans_traced = _num_spans(jnp.asarray(sequence_length), prob, span, min_masks, sequence_length, offset)
    # The static bound on spans per row: what the largest possible offset could give.
    bound = max(min(int(prob * sequence_length / span + 1.0), sequence_length // span), min(min_masks, sequence_length // span), 0)
    bound = min(bound, sequence_length - span + 1)
    if bound == 0:
        return jnp.zeros(shape, bool)
    num_spans = jnp.minimum(_num_spans(lengths, prob, span, min_masks, sequence_length, offset), max_spans_traced)

    # Uniform draw without replacement: rank valid start positions by random keys.
    num_starts = jnp.maximum(lengths - (span - 1), 0)
    keys = jax.random.uniform(order_key, (batch, sequence_length))
    positions = jnp.arange(sequence_length)
    keys = jnp.where(positions[None, :] < num_starts[:, None], keys, 2.0)
    starts = jnp.argsort(keys, axis=-1)[:, :bound].astype(jnp.int32)
    dummy = jnp.where(num_spans > 0, starts[:, 0], sequence_length - 1)
    slot = jnp.arange(bound)[None, :]
    # Slots past a row's count repeat its dummy start (as the reference pads), slots past the
    # batch-wide maximum do not exist in the reference at all.
    starts = jnp.where(slot < num_spans[:, None], starts, dummy[:, None])
    active = slot < max_spans_traced
    ends = jnp.minimum(starts + span, sequence_length)  # exclusive; clipping as the reference does
    t = positions[None, None, :]
    # (a row with no spans gets the dummy start sequence_length - 1: it masks the last frame only)
    covered = (t >= starts[..., None]) & (t < ends[..., None]) & active[..., None]
    return jnp.any(covered, axis=1)


def apply_spec_augment(config: EncoderConfig, hidden, frame_mask, masked_spec_embed, rng=None,
                       mask_time_indices=None, train: bool = False):
    """SpecAugment on projected features `[batch, frames, dim]`, as transformers does it.

    Frames in `mask_time_indices` (given, or drawn from `rng` in training when
    `mask_time_prob > 0`) become `masked_spec_embed`; in training, channel spans drawn when
    `mask_feature_prob > 0` become 0. Returns `(hidden, mask_time_indices or None)`.
    """
    if not config.apply_spec_augment:
        return hidden, mask_time_indices
    batch, frames, dim = hidden.shape
    draw_time = mask_time_indices is None and train and config.mask_time_prob > 0
    draw_features = train and config.mask_feature_prob > 0
    if (draw_time or draw_features) and rng is None:
        raise ValueError("SpecAugment in training needs a PRNG key (the 'mask' rng)")
    if draw_time or draw_features:
        time_key, feature_key = jax.random.split(rng)
    if draw_time:
        lengths = jnp.sum(frame_mask.astype(jnp.int32), axis=-1)
        mask_time_indices = compute_span_mask(time_key, (batch, frames), config.mask_time_prob,
                                              config.mask_time_length, lengths, config.mask_time_min_masks)
    if mask_time_indices is not None:
        if masked_spec_embed is None:
            raise ValueError("time masking needs masked_spec_embed, which this model lacks "
                             "(its config has mask_time_prob = mask_feature_prob = 0)")
        hidden = jnp.where(mask_time_indices[..., None], masked_spec_embed.astype(hidden.dtype), hidden)
    if draw_features:
        channels = compute_span_mask(feature_key, (batch, dim), config.mask_feature_prob,
                                     config.mask_feature_length, None, config.mask_feature_min_masks)
        hidden = jnp.where(channels[:, None, :], jnp.zeros((), hidden.dtype), hidden)
    return hidden, mask_time_indices
