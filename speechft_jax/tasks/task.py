"""The task objects the trainer holds, one per task in a run: a head plus its loss.

Every task has the same API, pure and jit-friendly:
  init(rng, hidden_dim)                                        -> head params (unboxed)
  train_loss(encode, head_params, frozen, batch, rng)          -> (loss scalar, metrics dict)
  loss(head_params, features, frame_mask, batch, rng, train)   -> (loss scalar, metrics dict)
  predict(head_params, features, frame_mask)                   -> logits (eval mode)
`train_loss` is what the trainer calls: `encode(batch, rng)` runs the trainable encoder (train
mode) and returns its `EncoderOutput`; self-supervised tasks (objectives/) use the same entry.
`head_is_pretraining_head` says whether the run exports the head with the encoder (HuBERT's).
features are encoder outputs `[batch, frames, hidden]`, frame_mask bool `[batch, frames]`, and
batch["example_mask"] bool `[batch]` marks real rows (False = filler row, contributes nothing).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from speechft_jax.tasks.classification import UtteranceClassifier
from speechft_jax.tasks.ctc import CTC_HEAD_KINDS, CTCHead, ctc_mean_loss


class _HeadTask:
    """What every task does the same way with its `head` module: init, eval and train calls."""

    head_is_pretraining_head = False

    def init(self, rng, hidden_dim: int):
        features = jnp.zeros((1, 4, hidden_dim), jnp.float32)
        variables = self.head.init(rng, features, jnp.ones((1, 4), bool))
        return nn.meta.unbox(variables["params"])

    def predict(self, head_params, features, frame_mask):
        """-> logits float32 (`[batch, frames, vocab]` for CTC, `[batch, classes]` for classification)."""
        return self.head.apply({"params": head_params}, features, frame_mask)

    def train_loss(self, encode, head_params, frozen, batch, rng):
        encoder_rng, head_rng = jax.random.split(rng)
        out = encode(batch, encoder_rng)
        return self.loss(head_params, out.last_hidden_state, out.frame_mask, batch, head_rng, True)

    def _train_logits(self, head_params, features, frame_mask, rng, train: bool):
        rngs = {"dropout": rng} if train and rng is not None else {}
        return self.head.apply({"params": head_params}, features, frame_mask, train, rngs=rngs)


@dataclasses.dataclass(frozen=True)
class CTCTask(_HeadTask):
    """Frame-level transcription (ASR, phone recognition) with a CTC head.

    batch[label_key] int32 `[batch, length]`, batch[mask_key] int32 `[batch, length]` (1 = real label).
    The loss is torch's `ctc_loss(reduction="mean")` over the real rows; metrics {"loss"}.
    """

    name: str
    vocab_size: int
    blank_id: int
    label_key: str = "labels"
    mask_key: str = "label_mask"
    head_kind: str = "linear"
    lstm_units: int = 256
    lstm_layers: int = 3
    dropout: float = 0.0

    def __post_init__(self):
        # fail when the run is configured, not at the first traced step
        if self.head_kind not in CTC_HEAD_KINDS:
            raise ValueError(f"CTCTask {self.name!r}: head_kind={self.head_kind!r}, expected one of {CTC_HEAD_KINDS}")

    @property
    def head(self) -> CTCHead:
        return CTCHead(self.vocab_size, self.head_kind, self.lstm_units, self.lstm_layers, self.dropout)

    def loss(self, head_params, features, frame_mask, batch, rng, train: bool):
        logits = self._train_logits(head_params, features, frame_mask, rng, train)
        loss = ctc_mean_loss(logits, frame_mask, batch[self.label_key], batch[self.mask_key],
                             batch["example_mask"], self.blank_id)
        return loss, {"loss": loss}


@dataclasses.dataclass(frozen=True)
class ClassificationTask(_HeadTask):
    """Utterance-level classification (speaker, intent, emotion, keyword).

    batch[label_key] int32 `[batch]`. The loss is the mean softmax cross-entropy over the real rows;
    metrics {"loss", "accuracy"}.
    """

    name: str
    num_classes: int
    label_key: str = "label"
    projection_dim: int = 256

    @property
    def head(self) -> UtteranceClassifier:
        return UtteranceClassifier(self.num_classes, self.projection_dim)

    def loss(self, head_params, features, frame_mask, batch, rng, train: bool):
        logits = self._train_logits(head_params, features, frame_mask, rng, train)
        real = batch["example_mask"].astype(bool)
        # filler rows may carry any label (-1, say); give them a valid one, their terms are dropped anyway
        labels = jnp.where(real, batch[self.label_key], 0).astype(jnp.int32)
        count = jnp.maximum(real.astype(jnp.float32).sum(), 1.0)
        cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        loss = jnp.where(real, cross_entropy, 0.0).sum() / count
        correct = (logits.argmax(axis=-1) == labels) & real
        return loss, {"loss": loss, "accuracy": correct.astype(jnp.float32).sum() / count}
