"""Speaker verification's downstream model: an x-vector embedding and its additive-margin softmax.

`XVector` is SUPERB's ASV downstream scaled by one width: a projection of the features, three
frame-level TDNN layers (1-D convolutions of context 5, 3, 3 with dilation 1, 2, 3), two
frame-level dense layers, statistics pooling (the mean and standard deviation over the valid
frames) and a dense embedding layer. Each frame layer is ReLU then layer normalisation (the
x-vector recipe uses batch normalisation; a per-frame normalisation keeps the probes stateless
and padding-independent). Padded frames are zeroed before every convolution, so they never reach
a valid frame. `am_softmax_logits` are the training logits: `scale * (cos(e, w_c) - margin [c =
label])` against one learned weight vector per training speaker (CosFace / AM-softmax; SUPERB's
default margin 0.4 and scale 30). At test time only the embedding is used, scored by cosine.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

TDNN_CONTEXTS = ((5, 1), (3, 2), (3, 3))  # (kernel, dilation) of the three convolutional layers


def _normalise(x, axis=-1):
    return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), 1e-6)


class XVector(nn.Module):
    """features `[batch, frames, dim]`, frame_mask bool `[batch, frames]` -> embeddings float32
    `[batch, embedding_dim]` (module docstring)."""

    width: int = 256
    embedding_dim: int = 256

    @nn.compact
    def __call__(self, features, frame_mask, train: bool = False):
        valid = frame_mask[..., None]
        x = jnp.where(valid, features, jnp.zeros((), features.dtype)).astype(jnp.float32)
        x = nn.Dense(self.width, name="projection")(x)
        for i, (kernel, dilation) in enumerate(TDNN_CONTEXTS):
            x = jnp.where(valid, x, 0.0)
            x = nn.Conv(self.width, (kernel,), kernel_dilation=(dilation,), padding="SAME", name=f"tdnn_{i}")(x)
            x = nn.LayerNorm(name=f"tdnn_{i}_norm")(nn.relu(x))
        for i in range(2):
            x = nn.LayerNorm(name=f"frame_{i}_norm")(nn.relu(nn.Dense(self.width, name=f"frame_{i}")(x)))
        count = jnp.maximum(valid.sum(axis=1), 1).astype(jnp.float32)
        mean = jnp.where(valid, x, 0.0).sum(axis=1) / count
        variance = jnp.where(valid, (x - mean[:, None]) ** 2, 0.0).sum(axis=1) / count
        pooled = jnp.concatenate([mean, jnp.sqrt(variance + 1e-5)], axis=-1)
        return nn.Dense(self.embedding_dim, name="embedding")(pooled)


class AMSoftmax(nn.Module):
    """embeddings `[batch, dim]` -> cosines `[batch, num_speakers]` against the speakers' learned weights."""

    num_speakers: int

    @nn.compact
    def __call__(self, embeddings):
        weights = self.param("speaker_weights", nn.initializers.xavier_uniform(),
                             (embeddings.shape[-1], self.num_speakers))
        return _normalise(embeddings) @ _normalise(weights, axis=0)


def am_softmax_logits(cosines, labels, margin: float = 0.4, scale: float = 30.0):
    """`scale * (cosines - margin at each row's label)`: the additive-margin softmax's logits."""
    one_hot = jnp.arange(cosines.shape[-1])[None, :] == labels[:, None]
    return scale * jnp.where(one_hot, cosines - margin, cosines)
