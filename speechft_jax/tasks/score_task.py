"""SCORE (self-supervised correspondence fine-tuning) as a trainer task.

Each row carries two views of one utterance (the loader's `view`: the original and a speed- and
pitch-perturbed copy, in random order). The trainable encoder (its top K layers train) encodes
`audio`; a frozen copy of the pre-trained encoder encodes `view_audio`. Both last hidden states go
through one shared linear projection (hidden -> `projection_dim`, the task's head) and L2
normalisation; the loss is the normalised soft-DTW (`soft_dtw.normalized_soft_dtw`, squared
Euclidean cost, `gamma`) averaged over the real rows of the padded batch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from speechft_jax.tasks.soft_dtw import normalized_soft_dtw


def _project(head, features):
    z = features.astype(jnp.float32) @ head["kernel"] + head["bias"]
    return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-8)


@dataclasses.dataclass(frozen=True, eq=False)
class ScoreTask:
    name: str
    teacher: Callable[[Any, Any, Any], tuple]  # (frozen, audio, audio_mask) -> (last hidden, frame_mask)
    projection_dim: int = 256
    gamma: float = 0.1

    def init(self, rng, hidden_dim: int):
        kernel = jax.random.normal(rng, (hidden_dim, self.projection_dim)) / jnp.sqrt(hidden_dim)
        return {"kernel": kernel, "bias": jnp.zeros((self.projection_dim,))}

    def train_loss(self, encode, head_params, frozen, batch, rng):
        out = encode(batch, rng)
        target, target_mask = self.teacher(frozen, batch["view_audio"], batch["view_audio_mask"])
        target = jax.lax.stop_gradient(target)
        real = batch["example_mask"].astype(bool)
        # filler rows have no frames; give them one so that no 0 / 0 reaches the gradient
        x_lengths = jnp.maximum(out.frame_mask.sum(-1), 1)
        y_lengths = jnp.maximum(target_mask.sum(-1), 1)
        per_pair = normalized_soft_dtw(_project(head_params, out.last_hidden_state), _project(head_params, target),
                                       self.gamma, x_lengths, y_lengths)
        loss = jnp.where(real, per_pair, 0.0).sum() / jnp.maximum(real.sum(), 1)
        return loss, {"loss": loss}
