"""SCORE, self-supervised correspondence fine-tuning (`objective: score`): its config, task and loss.

`ScoreConfig` is the run's `score` section and the objective (objectives/__init__.py): the
encoder runs without SpecAugment, only its top `trainable_layers` layers train, the loader gives
every row a second view, and `prepare(...)` builds the `ScoreTask` with theta_0 as its frozen
teacher (`frozen["teacher"]`).

Each row carries two views of one utterance (the loader's `view`: the original and a speed- and
pitch-perturbed copy, in random order). The trainable encoder encodes `audio`; the frozen copy of
the pre-trained encoder encodes `view_audio`. Both last hidden states go through one shared
linear projection (hidden -> `projection_dim`, the task's head) and L2 normalisation; the loss is
the normalised soft-DTW (`tasks/soft_dtw.py`, squared Euclidean cost, `gamma`) averaged over the
real rows of the padded batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable

import jax
import jax.numpy as jnp

from speechft_jax.config_loading import COUNT, Range, check
from speechft_jax.data.augment import ViewConfig
from speechft_jax.models.config import ConfigError
from speechft_jax.objectives.teacher import teacher_forward
from speechft_jax.tasks.soft_dtw import normalized_soft_dtw


# ------------------------------------------------------------------------------ the config
@dataclass(frozen=True)
class ScoreConfig:
    """SCORE correspondence fine-tuning (`objective: score`, a task of `kind: score`).

    The top `trainable_layers` transformer layers train, everything else stays theta_0; a frozen
    copy of theta_0 encodes the other view. Views: speed factor from `speed_factors`, then a
    pitch shift from `pitch_semitones`, order random with `random_order`. One shared projection
    to `projection_dim`, L2 normalisation, normalised soft-DTW with `gamma`.
    """

    trainable_layers: Annotated[int, Range(1, 256)] = 2
    projection_dim: Annotated[int, COUNT] = 256
    gamma: float = 0.1
    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    pitch_semitones: tuple[float, ...] = (-2.0, 2.0)
    random_order: bool = True

    def validate(self):
        check(self.gamma > 0, "gamma", self.gamma, "a positive number")
        check(len(self.speed_factors) > 0 and all(0.5 <= f <= 2.0 for f in self.speed_factors),
              "speed_factors", list(self.speed_factors), "factors in [0.5, 2]")
        check(all(abs(p) <= 12 for p in self.pitch_semitones), "pitch_semitones", list(self.pitch_semitones),
              "shifts within +-12 semitones")

    # -------------------------------------------------------------- the objective's API
    def encoder_settings(self, model, spec_augment: bool):
        """`(model config, spec_augment)`: the model as configured, SpecAugment off."""
        return model, False

    def loader_view(self) -> ViewConfig:
        return ViewConfig(tuple(self.speed_factors), tuple(self.pitch_semitones), self.random_order)

    def layers_to_train(self, num_layers: int) -> tuple[int, ...]:
        """The top `trainable_layers` of an encoder of `num_layers` layers."""
        k = self.trainable_layers
        if k > num_layers:
            raise ConfigError(f"score.trainable_layers={k}, but the encoder has {num_layers} layers")
        return tuple(range(num_layers - k, num_layers))

    def prepare(self, task_config, bundle, theta_0, source, *, out_dir: Path, seed: int, is_writer: bool = True,
                config_dir=None):
        """`(ScoreTask, {"teacher": theta_0})`: theta_0's frozen forward encodes the second view."""
        forward = teacher_forward(bundle.module)
        task = ScoreTask(task_config.name, lambda frz, audio, mask: forward(frz["teacher"], audio, mask),
                         self.projection_dim, self.gamma)
        return task, {"teacher": theta_0}


# ------------------------------------------------------------------------------ the task and its loss
def _project(head, features):
    z = features.astype(jnp.float32) @ head["kernel"] + head["bias"]
    return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-8)


@dataclass(frozen=True, eq=False)
class ScoreTask:
    """The correspondence loss as a trainer task (tasks/task.py's API); `teacher(frozen, audio,
    audio_mask) -> (last hidden state, frame_mask)` encodes the second view."""

    head_is_pretraining_head = False

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
