"""Utterance classification: SUPERB's utterance-level downstream model (project, mean-pool, classify)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class UtteranceClassifier(nn.Module):
    """features `[batch, frames, dim]`, frame_mask bool `[batch, frames]` -> logits float32
    `[batch, num_classes]`. The mean is over valid frames only, so padding never changes it.
    """

    num_classes: int
    projection_dim: int = 256

    @nn.compact
    def __call__(self, features, frame_mask, train: bool = False):
        valid = frame_mask[..., None]
        # zero padding before the projection too: NaN there would reach the kernel's gradient as 0 * NaN
        x = jnp.where(valid, features, jnp.zeros((), features.dtype))
        x = nn.Dense(self.projection_dim, name="projection")(x).astype(jnp.float32)
        pooled = jnp.where(valid, x, 0.0).sum(axis=1) / jnp.maximum(valid.sum(axis=1), 1).astype(jnp.float32)
        return nn.Dense(self.num_classes, name="classifier")(pooled).astype(jnp.float32)
