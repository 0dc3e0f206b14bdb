"""Speaker diarization's downstream model and loss: frame-level activity of a fixed number of speakers.

`SpeakerActivityHead`: a projection, a stack of `lstm_layers` unidirectional LSTMs of
`lstm_units` (SUPERB's diarization downstream is recurrent) and a linear layer giving one logit
per speaker and frame. `permutation_invariant_loss` is SUPERB's PIT objective: the binary
cross-entropy of the frame activities under each assignment of output columns to reference
speakers, the best assignment taken per utterance (2 speakers: 2 permutations), averaged over the
valid frames of the real rows.
"""

from __future__ import annotations

import itertools

import flax.linen as nn
import jax.numpy as jnp
import optax


class SpeakerActivityHead(nn.Module):
    """features `[batch, frames, dim]`, frame_mask bool `[batch, frames]` -> logits float32
    `[batch, frames, num_speakers]` (module docstring)."""

    num_speakers: int = 2
    lstm_units: int = 256
    lstm_layers: int = 1

    @nn.compact
    def __call__(self, features, frame_mask, train: bool = False):
        x = jnp.where(frame_mask[..., None], features, jnp.zeros((), features.dtype)).astype(jnp.float32)
        x = nn.Dense(self.lstm_units, name="projection")(x)
        lengths = frame_mask.sum(axis=-1).astype(jnp.int32)
        for i in range(self.lstm_layers):
            x = nn.RNN(nn.OptimizedLSTMCell(self.lstm_units, name=f"lstm_{i}"))(x, seq_lengths=lengths)
        return nn.Dense(self.num_speakers, name="speakers")(x).astype(jnp.float32)


def permutation_invariant_loss(logits, frame_mask, activity, example_mask):
    """The PIT binary cross-entropy (module docstring): logits `[B, T, S]`, frame_mask bool `[B, T]`,
    activity `[B, W, S]` (0/1; cut or zero-padded to T frames), example_mask bool `[B]` -> scalar."""
    frames = logits.shape[1]
    activity = activity[:, :frames].astype(jnp.float32)
    if activity.shape[1] < frames:
        activity = jnp.pad(activity, ((0, 0), (0, frames - activity.shape[1]), (0, 0)))
    valid = frame_mask & example_mask[:, None]
    per_permutation = []
    for order in itertools.permutations(range(logits.shape[-1])):
        bce = optax.sigmoid_binary_cross_entropy(logits, activity[..., list(order)]).sum(-1)
        per_permutation.append(jnp.where(valid, bce, 0.0).sum(-1))
    best = jnp.min(jnp.stack(per_permutation), axis=0)
    return best.sum() / jnp.maximum(valid.sum() * logits.shape[-1], 1).astype(jnp.float32)
