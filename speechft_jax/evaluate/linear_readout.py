"""A fast per-layer linear readout of an utterance-level task: what each hidden state holds.

Every utterance becomes one vector per hidden state (layer): the mean of its valid frames,
concatenated with their standard deviation (`pooling="mean_std"`, the default) or the mean alone
(`"mean"`). Each layer's vectors are standardised with the train split's per-dimension mean and
standard deviation, and a multinomial logistic regression (scikit-learn, L-BFGS) is fitted on train
for each C (inverse L2 strength) of a small grid, warm-started from the previous C; the C with the
best dev accuracy is kept (the smallest of ties: the stronger regulariser) and reported with its
train, dev and test accuracy. An intent task (one class per slot) fits one regression per slot,
each slot's C chosen on that slot's dev accuracy; an utterance counts as right when every slot is.
Unlike the weighted-sum probe there is no learning rate or step budget to tune, so the curve over
layers is a converged baseline the probe can be checked against.

`readout_layers(train, dev, test, ...)` is the pure part, over `PooledSplit`s (vectors
`[N, L+1, F]`, labels `[N, slots]`). `encoder_readouts(encoders, definition, ...)` pools K frozen
encoders' states over a task's three splits: from the feature cache entries the probes wrote in
`cache_dir` when they are there (no forward pass), else in one streamed pass per split that keeps
only the pooled vectors; the states are rounded to float16 either way, as the cache stores them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from speechft_jax.errors import ConfigError, DataError
from speechft_jax.evaluate.features import (FEATURE_BATCH_SIZE, NUM_BUCKETS, FeatureSet, feature_cache_key,
                                            stored_feature_sets)
from speechft_jax.evaluate.frozen_encoders import FrozenEncoders
from speechft_jax.evaluate.intervals import wilson_interval
from speechft_jax.models.encode import encode_source
from speechft_jax.tasks.definition import TaskDefinition

SPLITS = ("train", "dev", "test")
POOLINGS = ("mean_std", "mean")
DEFAULT_C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
READOUT_KINDS = ("classification", "intent")  # utterance-level tasks scored by accuracy
logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PooledSplit:
    """One split's pooled vectors `[N, L+1, F]` (float32) and class ids `[N, slots]` (int)."""

    vectors: np.ndarray
    labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class LayerReadout:
    """One hidden state's readout: the chosen C per slot, accuracies, the test count behind the
    test accuracy (its interval), whether every chosen fit converged, and the seconds the layer took."""

    layer: int
    c: tuple[float, ...]
    train_accuracy: float
    dev_accuracy: float
    test_accuracy: float
    test_correct: int
    test_count: int
    converged: bool
    seconds: float

    def test_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The Wilson interval of the test accuracy."""
        low, high = wilson_interval(self.test_correct, self.test_count, confidence=confidence)
        return float(low), float(high)

    def to_json(self) -> dict:
        return {"layer": self.layer, "c": list(self.c), "train": self.train_accuracy, "dev": self.dev_accuracy,
                "test": self.test_accuracy, "test_interval": list(self.test_interval()),
                "test_correct": self.test_correct, "test_count": self.test_count, "converged": self.converged,
                "seconds": round(self.seconds, 3)}


@dataclasses.dataclass(frozen=True)
class Readout:
    """A task's readout on one encoder: a `LayerReadout` per hidden state (0 = the CNN's projection)."""

    task: str
    pooling: str
    c_grid: tuple[float, ...]
    layers: tuple[LayerReadout, ...]

    @property
    def best_layer(self) -> int:
        """The layer with the best dev accuracy (the lowest of ties)."""
        return max(self.layers, key=lambda r: (r.dev_accuracy, -r.layer)).layer

    def to_json(self) -> dict:
        return {"task": self.task, "metric": "accuracy", "pooling": self.pooling, "c_grid": list(self.c_grid),
                "best_layer": self.best_layer, "layers": [r.to_json() for r in self.layers]}


# ---------------------------------------------------------------------------------- pooling
def pool_states(states, pooling: str = "mean_std") -> np.ndarray:
    """`[L+1, frames, D]` (valid frames only) -> `[L+1, D]` (mean) or `[L+1, 2D]` (mean, then std)."""
    x = np.asarray(states, np.float32)
    mean = x.mean(axis=1)
    return mean if pooling == "mean" else np.concatenate([mean, x.std(axis=1)], axis=-1)


def _label_rows(labels: Sequence) -> np.ndarray:
    """Class ids (ints, or `[slots]` arrays for an intent) as int64 `[N, slots]`."""
    return np.asarray([np.atleast_1d(np.asarray(y, np.int64)) for y in labels], np.int64).reshape(len(labels), -1)


def pool_feature_set(data: FeatureSet, pooling: str = "mean_std") -> PooledSplit:
    """A `FeatureSet` of class-labelled utterances, pooled (`pool_states`) utterance by utterance."""
    vectors = np.stack([pool_states(states, pooling) for states in data.features])
    return PooledSplit(vectors, _label_rows(data.labels))


# ---------------------------------------------------------------------------------- the regression
def _standardised(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Every array standardised per dimension with `train`'s mean and std (a constant dimension: by 1)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return [(x - mean) / std for x in (train, *others)]


def _fit_slot(x: dict, y: dict, c_grid: Sequence[float], max_iter: int) -> tuple[float, dict, bool]:
    """`(C, {split: predictions}, converged)` of the C with the best dev accuracy (the smallest of ties)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    # warm-started along increasing C: each fit starts from the more regularised one's solution
    model = LogisticRegression(solver="lbfgs", max_iter=max_iter, warm_start=True)
    best = None
    for c in sorted(c_grid):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.set_params(C=c).fit(x["train"], y["train"])
        predictions = {split: model.predict(x[split]) for split in SPLITS}
        dev = float(np.mean(predictions["dev"] == y["dev"]))
        if best is None or dev > best[0]:
            converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
            best = (dev, c, predictions, converged)
    return best[1], best[2], best[3]


def readout_layers(train: PooledSplit, dev: PooledSplit, test: PooledSplit, *,
                   c_grid: Sequence[float] = DEFAULT_C_GRID, max_iter: int = 1000, name: str = "readout",
                   progress: bool = True) -> tuple[LayerReadout, ...]:
    """A `LayerReadout` per hidden state of the pooled splits (module docstring); `name` is the task
    the errors and the progress bar name."""
    from tqdm.auto import tqdm

    from speechft_jax.cli import progress_bars_shown

    if not c_grid or any(not c > 0 for c in c_grid):
        raise ConfigError(f"readout C grid {list(c_grid)}: expected one or more positive numbers")
    splits = {"train": train, "dev": dev, "test": test}
    for split, data in splits.items():
        if len(data.labels) == 0:
            raise DataError(name, f"the {split} split has no utterances to read out")
    for slot in range(train.labels.shape[1]):
        if len(np.unique(train.labels[:, slot])) < 2:
            raise DataError(name, "the train split has a single class: a readout needs two or more")
    layers = []
    for layer in tqdm(range(train.vectors.shape[1]), desc=f"{name} readout", unit="layer",
                      disable=not (progress and progress_bars_shown())):
        started = time.perf_counter()
        x = dict(zip(SPLITS, _standardised(*(splits[s].vectors[:, layer] for s in SPLITS))))
        correct = {split: np.ones(len(splits[split].labels), bool) for split in SPLITS}
        chosen, converged = [], True
        for slot in range(train.labels.shape[1]):
            c, predictions, slot_converged = _fit_slot(x, {s: splits[s].labels[:, slot] for s in SPLITS},
                                                       c_grid, max_iter)
            chosen.append(float(c))
            converged &= slot_converged
            for split in SPLITS:
                correct[split] &= predictions[split] == splits[split].labels[:, slot]
        if not converged:
            logger.warning(f"{name}: the readout of layer {layer} at C={chosen} stopped at max_iter={max_iter} "
                           "before converging")
        layers.append(LayerReadout(layer, tuple(chosen), float(correct["train"].mean()), float(correct["dev"].mean()),
                                   float(correct["test"].mean()), int(correct["test"].sum()), len(correct["test"]),
                                   converged, time.perf_counter() - started))
    return tuple(layers)


# ---------------------------------------------------------------------------------- from an encoder
def check_readout_task(definition: TaskDefinition) -> None:
    """A one-line `ConfigError` unless the task is utterance-level and scored by accuracy."""
    if definition.kind not in READOUT_KINDS:
        raise ConfigError(f"task {definition.name!r}: the linear readout needs an utterance-level task of kind "
                          f"{' or '.join(READOUT_KINDS)}, not {definition.kind}")


def readout_tasks(tasks: Sequence, option: str) -> list:
    """The `EvalTask`s of `tasks` a readout reads out (classification, intent); a logged note names each
    one it skips, and a one-line `ConfigError` naming `option` (e.g. `--readout`) says when none is left."""
    chosen = [t for t in tasks if t.definition.kind in READOUT_KINDS]
    skipped = [f"{t.name} ({t.definition.kind})" for t in tasks if t.definition.kind not in READOUT_KINDS]
    if not chosen:
        raise ConfigError(f"{option}: needs a {' or '.join(READOUT_KINDS)} task; these are not: {', '.join(skipped)}")
    if skipped:
        logger.warning(f"{option}: skipping {', '.join(skipped)}: not an utterance-level task scored by accuracy")
    return chosen


def _streamed_split(encoders: FrozenEncoders, source, label_spec, pooling: str, num_buckets: int,
                    desc: str) -> list[PooledSplit]:
    """One pass of `encoders` over `source`, keeping only each utterance's pooled vectors, per encoder k."""
    pooled: dict[int, tuple[list, object]] = {}
    for utterance in encode_source(encoders.bundle, source, encoders.states, labels=[label_spec],
                                   batch_size=FEATURE_BATCH_SIZE, num_buckets=num_buckets, desc=desc):
        # rounded to float16 as the cache stores them, so that both paths read out the same states
        pooled[utterance.index] = ([pool_states(s.astype(np.float16), pooling) for s in utterance.states],
                                   utterance.labels[0])
    order = sorted(pooled)
    labels = _label_rows([pooled[i][1] for i in order])
    return [PooledSplit(np.stack([pooled[i][0][k] for i in order]), labels) for k in range(encoders.count)]


def pooled_splits(encoders: FrozenEncoders, definition: TaskDefinition, *, pooling: str = "mean_std",
                  cache_dir: Path | None = None, num_buckets: int = NUM_BUCKETS) -> dict[str, list[PooledSplit]]:
    """`{split: [PooledSplit per encoder k]}` of a task's train, dev and test: pooled from the probes'
    cache entries in `cache_dir` (the same keys: `num_buckets` is the probe settings') when they are
    there and still match the data, else from one streamed forward pass per split."""
    splits = {}
    for split in SPLITS:
        source, label_spec = definition.open(split)
        sets = None
        if cache_dir is not None:
            key = feature_cache_key(f"{definition.name}-{split}", encoders.fingerprint, encoders.bundle, source,
                                    label_spec, num_buckets=num_buckets)
            sets = stored_feature_sets(Path(cache_dir) / key, source, label_spec)
        if sets is not None:
            logger.info(f"{definition.name} {split}: readout vectors pooled from the feature cache {key}")
            splits[split] = [pool_feature_set(s, pooling) for s in sets]
        else:
            splits[split] = _streamed_split(encoders, source, label_spec, pooling, num_buckets,
                                            f"{definition.name} {split} readout features")
    return splits


def encoder_readouts(encoders: FrozenEncoders, definition: TaskDefinition, *, pooling: str = "mean_std",
                     c_grid: Sequence[float] = DEFAULT_C_GRID, cache_dir: Path | None = None, num_buckets: int = NUM_BUCKETS,
                     progress: bool = True) -> list[Readout]:
    """A `Readout` of `definition` (classification or intent) per encoder of `encoders`."""
    check_readout_task(definition)
    if pooling not in POOLINGS:
        raise ConfigError(f"readout pooling {pooling!r}: expected one of {', '.join(POOLINGS)}")
    splits = pooled_splits(encoders, definition, pooling=pooling, cache_dir=cache_dir, num_buckets=num_buckets)
    return [Readout(definition.name, pooling, tuple(float(c) for c in c_grid),
                    readout_layers(*(splits[s][k] for s in SPLITS), c_grid=c_grid, name=definition.name,
                                   progress=progress))
            for k in range(encoders.count)]


# ---------------------------------------------------------------------------------- the tables
def format_readout(readout: dict, title: str) -> str:
    """A `Readout.to_json()` as the "what the layer holds" table: a row per layer, the best dev marked."""
    lines = [f"{title}: linear readout ({readout['pooling'].replace('_', '+')} pooling, C on dev)",
             f"{'layer':<6} {'C':>10} {'train':>7} {'dev':>7} {'test':>7}  {'test 95% CI':<15}"]
    for r in readout["layers"]:
        low, high = r["test_interval"]
        c = ",".join(f"{c:g}" for c in r["c"])
        mark = "  <- best dev" if r["layer"] == readout["best_layer"] else ""
        lines.append(f"{r['layer']:<6} {c:>10} {r['train']:>7.4f} {r['dev']:>7.4f} {r['test']:>7.4f}  "
                     f"[{low:.4f}, {high:.4f}]{mark}")
    return "\n".join(lines)


def format_readout_by_alpha(readouts: dict) -> str:
    """`{task: {alpha: Readout.to_json()}}` compactly: per task and alpha, the best dev layer and its
    dev and test accuracy with the test's 95 % interval (the full curves are in the JSON)."""
    lines = ["linear readout (best dev layer per alpha)",
             f"{'task':<8} {'alpha':<6} {'layer':>5} {'dev':>7} {'test':>7}  {'test 95% CI':<15}"]
    for task, by_alpha in readouts.items():
        for alpha, readout in by_alpha.items():
            best = readout["layers"][readout["best_layer"]]
            low, high = best["test_interval"]
            lines.append(f"{task:<8} {float(alpha):<6g} {best['layer']:>5} {best['dev']:>7.4f} {best['test']:>7.4f}  "
                         f"[{low:.4f}, {high:.4f}]")
    return "\n".join(lines)
