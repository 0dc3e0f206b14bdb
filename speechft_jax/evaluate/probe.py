"""SUPERB-style downstream probes on a frozen encoder's hidden states: the model and its loss.

`WeightedSumProbe`: a learnable softmax-weighted sum over the encoder's L+1 hidden states
(weights start equal) feeding a downstream head: a linear or BiLSTM CTC head (`CTCHead`) or the
utterance classifier (project, mean-pool over valid frames, linear). The weights train with the
head. `ProbeSpec` says which task and head, `probe_loss` is its training loss, `ProbeResult` what
a trained probe reports. How probes train (K encoders x a learning-rate grid together, picked on
dev, reported on test) is `evaluate/probe_training.py`.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from speechft_jax.tasks.classification import UtteranceClassifier
from speechft_jax.tasks.ctc import CTCHead, ctc_mean_loss


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    """A downstream task: `kind` ctc (metric: error rate, lower is better) or classification
    (accuracy, higher is better); `num_labels` = vocabulary size or class count. A CTC task with a
    `word_delimiter_id` (a character vocabulary's word separator) is scored by WER over the words
    it separates, else by the token error rate (PER for phones, CER for characters)."""

    name: str
    kind: str
    num_labels: int
    blank_id: int = 0
    head: str = "linear"  # ctc: linear | bilstm
    lstm_units: int = 256
    lstm_layers: int = 2
    projection_dim: int = 256
    word_delimiter_id: int | None = None

    @property
    def metric(self) -> str:
        if self.kind != "ctc":
            return "accuracy"
        return "error_rate" if self.word_delimiter_id is None else "wer"

    @property
    def higher_is_better(self) -> bool:
        return self.kind != "ctc"


@dataclasses.dataclass
class ProbeResult:
    task: str
    metric: str
    dev: float
    test: float
    learning_rate: float | None  # None: nothing was trained (QbE)
    layer_weights: list
    dev_by_lr: dict
    details: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class WeightedSumProbe(nn.Module):
    spec: ProbeSpec
    num_states: int

    @nn.compact
    def __call__(self, states, frame_mask, train: bool = False):
        """states `[L+1, batch, frames, hidden]` (the encoder's layout), frame_mask bool
        `[batch, frames]` -> logits `[batch, frames, labels]` (ctc) or `[batch, classes]`."""
        weights = self.param("layer_weights", nn.initializers.zeros, (self.num_states,))
        x = jnp.einsum("s,sbtd->btd", jax.nn.softmax(weights), states.astype(jnp.float32))
        if self.spec.kind == "ctc":
            head = CTCHead(self.spec.num_labels, self.spec.head, self.spec.lstm_units, self.spec.lstm_layers)
        else:
            head = UtteranceClassifier(self.spec.num_labels, self.spec.projection_dim)
        return head(x, frame_mask, train)


def probe_loss(spec: ProbeSpec, logits, frame_mask, batch):
    """The mean loss over a batch's real rows (`example_mask`): CTC over the valid frames against
    `labels` / `label_mask` `[batch, width]`, or cross-entropy against the class ids `labels` `[batch]`."""
    if spec.kind == "ctc":
        return ctc_mean_loss(logits, frame_mask, batch["labels"], batch["label_mask"],
                             batch["example_mask"], spec.blank_id)
    real = batch["example_mask"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"])
    return jnp.where(real, ce, 0.0).sum() / jnp.maximum(real.sum(), 1)
