"""SUPERB-style downstream probes on a frozen encoder's hidden states: the model and its loss.

`WeightedSumProbe`: a learnable softmax-weighted sum over the encoder's L+1 hidden states
(weights start equal) feeding SUPERB's downstream model of the task's kind:
  ctc             a linear or BiLSTM CTC head (`CTCHead`): phones, characters, slot-tagged characters
  classification  the utterance classifier (project, mean-pool over valid frames, linear)
  intent          the same classifier with one softmax group per slot (`groups`: class counts)
  verification    an x-vector (`XVector`) with an additive-margin softmax over the training speakers
  diarization     a recurrent frame-level activity head (`SpeakerActivityHead`), PIT loss
The weights train with the head. `ProbeSpec` says which task and head, `probe_loss` is its training loss, `ProbeResult` what
a trained probe reports. How probes train (K encoders x a learning-rate grid together, picked on
dev, reported on test) is `evaluate/probe_training.py`.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from speechft_jax.tasks.classification import UtteranceClassifier
from speechft_jax.tasks.ctc import CTCHead, ctc_mean_loss
from speechft_jax.tasks.speaker_activity import SpeakerActivityHead, permutation_invariant_loss
from speechft_jax.tasks.speaker_embedding import AMSoftmax, XVector, am_softmax_logits

PROBE_KINDS = ("ctc", "classification", "intent", "verification", "diarization")
# each kind's metric (a ctc task's depends on its vocabulary and metric_name: see ProbeSpec.metric)
KIND_METRIC = {"classification": "accuracy", "intent": "accuracy", "verification": "eer", "diarization": "der"}
HIGHER_IS_BETTER = ("accuracy", "slot_type_f1")


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    """A downstream task of `kind` (`PROBE_KINDS`); `num_labels` = vocabulary size, class count,
    training speakers (verification) or speakers per recording (diarization). A CTC task with a
    `word_delimiter_id` (a character vocabulary's word separator) is scored by WER over the words
    it separates, with `metric_name` "slot_type_f1" by slot filling's metrics over the slot-tagged
    `tokens` (its vocabulary, by id), else by the token error rate (PER for phones, CER for
    characters). Intent classification's `groups` are the class counts of its slots (they sum to
    `num_labels`); verification embeds into `embedding_dim` and trains with `margin` and `scale`;
    diarization's frames last `frame_seconds` and are decided by `threshold` after a median filter
    of `median` frames."""

    name: str
    kind: str
    num_labels: int
    blank_id: int = 0
    head: str = "linear"  # ctc: linear | bilstm
    lstm_units: int = 256
    lstm_layers: int = 2
    projection_dim: int = 256
    word_delimiter_id: int | None = None
    metric_name: str = ""
    # verification: the x-vector's embedding and the additive-margin softmax (SUPERB's defaults)
    embedding_dim: int = 256
    margin: float = 0.4
    scale: float = 30.0
    tokens: tuple[str, ...] = ()  # slot filling: the vocabulary, by id
    # diarization: the frame length, and how frame probabilities become segments
    frame_seconds: float = 0.02
    threshold: float = 0.5
    median: int = 11
    groups: tuple[int, ...] = ()  # intent: the slots' class counts

    def __post_init__(self):
        if self.kind not in PROBE_KINDS:
            raise ValueError(f"ProbeSpec {self.name!r}: kind={self.kind!r}, expected one of {PROBE_KINDS}")
        if self.kind == "intent" and sum(self.groups) != self.num_labels:
            raise ValueError(f"ProbeSpec {self.name!r}: groups {self.groups} do not sum to {self.num_labels}")

    @property
    def metric(self) -> str:
        if self.metric_name:
            return self.metric_name
        if self.kind != "ctc":
            return KIND_METRIC[self.kind]
        return "error_rate" if self.word_delimiter_id is None else "wer"

    @property
    def higher_is_better(self) -> bool:
        return self.metric in HIGHER_IS_BETTER


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
        `[batch, frames]` -> the head's output: logits `[batch, frames, labels]` (ctc, diarization)
        or `[batch, classes]` (classification, intent), or for verification `(embeddings
        [batch, embedding_dim], cosines [batch, speakers])`."""
        weights = self.param("layer_weights", nn.initializers.zeros, (self.num_states,))
        x = jnp.einsum("s,sbtd->btd", jax.nn.softmax(weights), states.astype(jnp.float32))
        spec = self.spec
        if spec.kind == "ctc":
            return CTCHead(spec.num_labels, spec.head, spec.lstm_units, spec.lstm_layers)(x, frame_mask, train)
        if spec.kind == "verification":
            embeddings = XVector(spec.projection_dim, spec.embedding_dim)(x, frame_mask, train)
            return embeddings, AMSoftmax(spec.num_labels)(embeddings)
        if spec.kind == "diarization":
            return SpeakerActivityHead(spec.num_labels, spec.lstm_units, spec.lstm_layers)(x, frame_mask, train)
        return UtteranceClassifier(spec.num_labels, spec.projection_dim)(x, frame_mask, train)


def scored_output(spec: ProbeSpec, output):
    """What a probe is scored on: the embeddings of a verification probe, else its logits."""
    return output[0] if spec.kind == "verification" else output


def group_logits(spec: ProbeSpec, logits) -> list:
    """An intent probe's logits `[..., num_labels]` split into its slots' `[..., groups[i]]`."""
    bounds = np.cumsum(spec.groups)[:-1].tolist()
    return (np.split if isinstance(logits, np.ndarray) else jnp.split)(logits, bounds, axis=-1)


def probe_loss(spec: ProbeSpec, output, frame_mask, batch):
    """The mean loss over a batch's real rows (`example_mask`): CTC over the valid frames against
    `labels` / `label_mask` `[batch, width]`; cross-entropy against the class ids `labels` `[batch]`
    (summed over the slots `[batch, groups]` of an intent); the additive-margin softmax against the
    speaker ids (verification); the permutation-invariant BCE against the activities `labels`
    `[batch, frames, speakers]` (diarization)."""
    real = batch["example_mask"]
    if spec.kind == "ctc":
        return ctc_mean_loss(output, frame_mask, batch["labels"], batch["label_mask"], real, spec.blank_id)
    if spec.kind == "diarization":
        return permutation_invariant_loss(output, frame_mask, batch["labels"], real)
    if spec.kind == "intent":
        ce = sum(optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"][:, i])
                 for i, logits in enumerate(group_logits(spec, output)))
    elif spec.kind == "verification":
        labels = jnp.where(real, batch["labels"], 0)
        logits = am_softmax_logits(output[1], labels, spec.margin, spec.scale)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    else:
        ce = optax.softmax_cross_entropy_with_integer_labels(output, batch["labels"])
    return jnp.where(real, ce, 0.0).sum() / jnp.maximum(real.sum(), 1)
