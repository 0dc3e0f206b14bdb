"""SUPERB-style downstream probes on cached frozen-encoder features.

`WeightedSumProbe`: a learnable softmax-weighted sum over the encoder's L+1 hidden states
(weights start equal) feeding a downstream head: a linear or BiLSTM CTC head (`CTCHead`) or the
utterance classifier (project, mean-pool over valid frames, linear). The weights train with the
head. `train_probe(spec, train, dev, test, ...)` trains one probe per learning rate of a small
log-scale grid with Adam, picks the rate by the dev metric and reports dev and test for it, plus
the learned layer weights. Batches are padded to a few fixed frame-length buckets, and the train
step takes the learning rate as data (`optax.inject_hyperparams`), so one task compiles a
handful of programs however many steps, learning rates and encoders (an alpha sweep) it probes.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from speechft_jax.cli import progress_bars_shown
from speechft_jax.data.buckets import choose_bucket_lengths
from speechft_jax.evaluate.features import FeatureSet
from speechft_jax.tasks.classification import UtteranceClassifier
from speechft_jax.tasks.ctc import CTCHead, ctc_greedy_decode, ctc_mean_loss
from speechft_jax.tasks.metrics import error_rate


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    """A downstream task: `kind` ctc (metric: error rate, lower is better) or classification
    (accuracy, higher is better); `num_labels` = vocabulary size or class count."""

    name: str
    kind: str
    num_labels: int
    blank_id: int = 0
    head: str = "linear"  # ctc: linear | bilstm
    lstm_units: int = 256
    lstm_layers: int = 2
    projection_dim: int = 256

    @property
    def metric(self) -> str:
        return "error_rate" if self.kind == "ctc" else "accuracy"

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
    def __call__(self, features, frame_mask, train: bool = False):
        """features `[batch, L+1, frames, hidden]`, frame_mask bool `[batch, frames]` -> logits."""
        weights = self.param("layer_weights", nn.initializers.zeros, (self.num_states,))
        x = jnp.einsum("s,bstd->btd", jax.nn.softmax(weights), features.astype(jnp.float32))
        if self.spec.kind == "ctc":
            head = CTCHead(self.spec.num_labels, self.spec.head, self.spec.lstm_units, self.spec.lstm_layers)
        else:
            head = UtteranceClassifier(self.spec.num_labels, self.spec.projection_dim)
        return head(x, frame_mask, train)


class _Batcher:
    """Padded batches of a `FeatureSet`: frames padded to one of a few buckets, labels to a fixed width."""

    def __init__(self, data: FeatureSet, batch_size: int, buckets: Sequence[int], label_width: int):
        self.data, self.batch_size, self.buckets, self.label_width = data, batch_size, tuple(buckets), label_width
        self.frames = np.array([f.shape[1] for f in data.features])
        self.bucket_of = np.searchsorted(np.asarray(self.buckets), self.frames)

    def batches(self, rng: np.random.Generator | None):
        """Batches of one bucket each (shuffled with `rng`, in order without)."""
        plans = []
        for b in range(len(self.buckets)):
            idx = np.flatnonzero(self.bucket_of == b)
            if rng is not None:
                idx = rng.permutation(idx)
            plans += [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        order = rng.permutation(len(plans)) if rng is not None else range(len(plans))
        for p in order:
            yield plans[p], self._assemble(plans[p], self.buckets[self.bucket_of[plans[p][0]]])

    def _assemble(self, rows, length):
        d = self.data
        feats = np.zeros((self.batch_size, d.num_states, length, d.hidden), np.float16)
        mask = np.zeros((self.batch_size, length), bool)
        real = np.zeros((self.batch_size,), bool)
        labels = np.zeros((self.batch_size, self.label_width), np.int32)
        label_mask = np.zeros((self.batch_size, self.label_width), np.int32)
        for r, i in enumerate(rows):
            f = d.features[i]
            feats[r, :, :f.shape[1]] = f
            mask[r, :f.shape[1]] = True
            real[r] = True
            label = np.atleast_1d(d.labels[i])
            labels[r, :len(label)] = label
            label_mask[r, :len(label)] = 1
        return {"features": feats, "frame_mask": mask, "example_mask": real, "labels": labels,
                "label_mask": label_mask}


def _loss(spec: ProbeSpec, logits, batch):
    if spec.kind == "ctc":
        return ctc_mean_loss(logits, batch["frame_mask"], batch["labels"], batch["label_mask"],
                             batch["example_mask"], spec.blank_id)
    real = batch["example_mask"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"][:, 0])
    return jnp.where(real, ce, 0.0).sum() / jnp.maximum(real.sum(), 1)


def _metric(spec: ProbeSpec, apply, params, batcher: _Batcher) -> float:
    refs, hyps, correct, count = [], [], 0, 0
    for rows, batch in batcher.batches(None):
        logits = np.asarray(apply(params, batch["features"], batch["frame_mask"]))
        n = len(rows)
        if spec.kind == "ctc":
            decoded = ctc_greedy_decode(logits[:n], batch["frame_mask"][:n], spec.blank_id)
            hyps += [" ".join(map(str, d)) for d in decoded]
            refs += [" ".join(map(str, batch["labels"][r, :batch["label_mask"][r].sum()])) for r in range(n)]
        else:
            correct += int((logits[:n].argmax(-1) == batch["labels"][:n, 0]).sum())
            count += n
    return error_rate(refs, hyps) if spec.kind == "ctc" else correct / max(count, 1)


@functools.lru_cache(maxsize=16)
def _compiled(spec: ProbeSpec, num_states: int):
    """`(init, optimizer, step, apply)` of a probe, jitted once per task (and batch shape)."""
    model = WeightedSumProbe(spec, num_states)
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)

    def step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(
            lambda p: _loss(spec, model.apply({"params": p}, batch["features"], batch["frame_mask"], True), batch))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    init = jax.jit(lambda key, f, m: model.init(key, f, m)["params"])
    return init, optimizer, jax.jit(step), jax.jit(lambda p, f, m: model.apply({"params": p}, f, m))


def train_probe(spec: ProbeSpec, train: FeatureSet, dev: FeatureSet, test: FeatureSet, *,
                learning_rates: Sequence[float] = (1e-4, 1e-3, 1e-2), steps: int = 1000, batch_size: int = 16,
                num_buckets: int = 4, seed: int = 0, progress: bool = True) -> ProbeResult:
    """Train on `train` for each learning rate, pick by `dev`, report `test` (module docstring)."""
    all_frames = np.concatenate([[f.shape[1] for f in s.features] for s in (train, dev, test)])
    buckets = choose_bucket_lengths(all_frames, num_buckets, multiple=8)
    width = 1
    if spec.kind == "ctc":
        width = -(-max(len(l) for s in (train, dev, test) for l in s.labels) // 8) * 8
    batchers = [_Batcher(s, batch_size, buckets, width) for s in (train, dev, test)]
    init, optimizer, step, apply = _compiled(spec, train.num_states)
    init_batch = next(batchers[0].batches(None))[1]
    best = None
    dev_by_lr = {}
    for lr in learning_rates:
        params = init(jax.random.PRNGKey(seed), init_batch["features"], init_batch["frame_mask"])
        opt_state = optimizer.init(params)
        opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
        rng = np.random.default_rng(seed)
        done = 0
        bar = tqdm(total=steps, desc=f"probe {spec.name} lr {lr:g}", unit="step", leave=False,
                   disable=not (progress and progress_bars_shown()))
        while done < steps:
            for _, batch in batchers[0].batches(rng):
                params, opt_state, loss = step(params, opt_state, batch)
                done += 1
                bar.update(1)
                if done >= steps:
                    break
        bar.close()
        score = _metric(spec, apply, params, batchers[1])
        dev_by_lr[lr] = score
        better = best is None or (score > best[0] if spec.higher_is_better else score < best[0])
        if better:
            best = (score, lr, params)
    score, lr, params = best
    weights = np.asarray(jax.nn.softmax(params["layer_weights"])).round(4).tolist()
    return ProbeResult(spec.name, spec.metric, float(score), float(_metric(spec, apply, params, batchers[2])),
                       lr, weights, {str(k): float(v) for k, v in dev_by_lr.items()})
