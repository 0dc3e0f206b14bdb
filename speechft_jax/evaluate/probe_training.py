"""SUPERB's probe protocol at scale: K frozen encoders x a learning-rate grid, trained together.

`train_probes(spec, encoders, splits, settings, ...)` trains P = K x n_lr `WeightedSumProbe`s (one
per encoder of `encoders` and learning rate of `settings`) in one jitted step: a nested `vmap`,
outer over the K encoders' hidden states, inner over the learning rates sharing one encoder's
states (so no `[P, L+1, B, T, D]` tensor exists), Adam with the learning rate as data
(`optax.inject_hyperparams`). Every probe starts from the same initialisation (key `seed`) and
reads the same batches. Dev is scored for all probes at once every `settings.eval_every` steps and
at the end; each probe keeps its best-dev parameters. Per encoder, the learning rate with the best
dev (the first listed of ties) gives the result: its dev and test metric (`evaluate/probe_scoring.py`:
PER/CER/WER or slot-type F1, accuracy, EER, DER), its learned layer weights, dev by learning
rate, and in `details` the best step, the final train loss, test by learning rate, the test
metric's 95 % interval (`test_ci95`, `[low, high]`: Wilson's for accuracy, a bootstrap over
utterances, trials or recordings for the rates; `evaluate/intervals.py`), the metrics reported
beside the probe's own (`dev_<name>` at the best dev, `test_<name>`) and the mode.

Where the hidden states come from (`mode`, default `settings.mode`):
  on_the_fly  the encoders run inside the jitted step on padded audio batches (`encoders.forward`,
              under `stop_gradient`), decoded by loader threads while the device works; nothing is
              stored, so a K-alpha sweep streams its data once instead of K times;
  cached      every split's states are computed once (K encoders in one program) into a disk cache
              (`evaluate/features.py`: memory-mapped, never read whole) that batches are read from;
  auto        cached when the cache (K x frames x (L+1) x hidden x 2 bytes over the three splits,
              from the sources' lengths, before any forward) fits `cache_budget_gb` and the free
              space at `cache_dir` (a temporary folder, removed afterwards, without one), else on
              the fly; one INFO line says which and why.
Both modes see the encoder's states rounded to float16 (the cache's storage type), so the mode a
budget picks does not change the result beyond float noise.

`work_dir`: checkpoints every `settings.checkpoint_every` steps and `metrics.jsonl`
(`evaluate/probe_state.py`); the batch of a step is a pure function of (seed, epoch, position)
(`evaluate/probe_batches.py`), so a restarted run ends bit-identical to an uninterrupted one.
`train_probe(spec, train, dev, test, ...)` trains on features already held in memory (K = 1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from speechft_jax.cli import progress_bars_shown
from speechft_jax.data.buckets import choose_bucket_lengths
from speechft_jax.evaluate.features import (
    FeatureSet, cached_feature_sets, feature_cache_key, label_description, source_description,
)
from speechft_jax.evaluate.frozen_encoders import FrozenEncoders
from speechft_jax.evaluate.probe import ProbeResult, ProbeSpec, WeightedSumProbe, probe_loss, scored_output
from speechft_jax.evaluate.probe_batches import (
    AudioBatches, FeatureBatches, SplitData, label_layout, label_width, read_split,
)
from speechft_jax.evaluate.probe_scoring import extra_metrics, score_split, split_metrics
from speechft_jax.evaluate.probe_settings import ProbeSettings
from speechft_jax.evaluate.probe_state import ProbeMetrics, ProbeWorkDir

SPLITS = ("train", "dev", "test")
logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- the programs
@dataclasses.dataclass(frozen=True)
class ProbePrograms:
    """The jitted programs of P = K x n_lr probes (`probe_programs`)."""

    init: Callable       # (seed, K, n_lr, hidden) -> params [K, n_lr, ...]
    optimizer: optax.GradientTransformation
    step: Callable       # (params, opt_state, inputs, batch) -> (params, opt_state, loss [K, n_lr])
    logits: Callable     # (params, inputs, batch) -> (scored outputs [K, n_lr, B, ...], frame_mask [B, T])
    keep_best: Callable  # (best, params, improved [K, n_lr]) -> best


@functools.lru_cache(maxsize=16)
def probe_programs(spec: ProbeSpec, num_states: int, forward: Callable | None) -> ProbePrograms:
    """The jitted programs of a task's probes, on cached features (`forward` None: the batch holds
    `features`) or on the fly (`forward(inputs, audio, audio_mask)`); built once per task and encoders."""
    model = WeightedSumProbe(spec, num_states)
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)

    def states_of(inputs, batch):
        if forward is None:
            return batch["features"], batch["frame_mask"]
        states, frame_mask = forward(inputs, batch["audio"], batch["audio_mask"])
        # float16 as the cache stores them: the mode that a disk budget picks must not change results
        return jax.lax.stop_gradient(states).astype(jnp.float16), frame_mask

    def one_probe(params, opt_state, states, frame_mask, batch):
        loss, grads = jax.value_and_grad(
            lambda p: probe_loss(spec, model.apply({"params": p}, states, frame_mask, True), frame_mask, batch))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    # inner: the learning rates sharing one encoder's states; outer: the encoders
    all_probes = jax.vmap(jax.vmap(one_probe, in_axes=(0, 0, None, None, None)), in_axes=(0, 0, 0, None, None))

    def step(params, opt_state, inputs, batch):
        states, frame_mask = states_of(inputs, batch)
        return all_probes(params, opt_state, states, frame_mask, batch)

    def logits(params, inputs, batch):
        states, frame_mask = states_of(inputs, batch)
        apply = lambda p, s: scored_output(spec, model.apply({"params": p}, s, frame_mask))
        return jax.vmap(jax.vmap(apply, in_axes=(0, None)), in_axes=(0, 0))(params, states), frame_mask

    def init(seed, count, num_lrs, hidden):
        states = jnp.zeros((num_states, 1, 8, hidden), jnp.float16)
        params = model.init(jax.random.PRNGKey(seed), states, jnp.ones((1, 8), bool))["params"]
        return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (count, num_lrs) + x.shape), params)

    def keep_best(best, params, improved):
        return jax.tree_util.tree_map(
            lambda b, p: jnp.where(improved.reshape(improved.shape + (1,) * (p.ndim - 2)), p, b), best, params)

    return ProbePrograms(jax.jit(init, static_argnums=(0, 1, 2, 3)), optimizer,
                         jax.jit(step, donate_argnums=(0, 1)), jax.jit(logits), jax.jit(keep_best))


# ---------------------------------------------------------------------------------- training
def initial_state(programs: ProbePrograms, count: int, learning_rates: Sequence[float], hidden: int,
                  seed: int, extras: Sequence[str] = ()) -> dict:
    """The probes before their first step: `params` and `opt_state` (leading axes `[K, n_lr]`, the
    same initialisation everywhere, learning rate j in column j), best-dev parameters and scores
    (and `best_<name>` of each metric in `extras` reported beside the probe's own)."""
    params = programs.init(seed, count, len(learning_rates), hidden)
    opt_state = jax.vmap(jax.vmap(programs.optimizer.init))(params)
    shape = (count, len(learning_rates))
    opt_state.hyperparams["learning_rate"] = jnp.broadcast_to(jnp.asarray(learning_rates, jnp.float32), shape)
    # placed on one device as a restored checkpoint is, so that the step compiles once for both
    on_device = jax.device_put({"params": params, "opt_state": opt_state, "last_loss": jnp.full(shape, jnp.nan),
                                "best_params": jax.tree_util.tree_map(jnp.copy, params)}, jax.devices()[0])
    # the scores stay on the host in float64, as the metrics compute them
    return {**on_device, "best_score": np.full(shape, -np.inf), "best_dev": np.full(shape, np.nan),
            "best_step": np.zeros(shape, np.int64), **{f"best_{name}": np.full(shape, np.nan) for name in extras}}


def _train(spec: ProbeSpec, batches: Mapping, settings: ProbeSettings, *, count: int, num_states: int, hidden: int,
           inputs, forward, work_dir, fingerprint: str, seed: int, progress: bool, details: dict) -> list[ProbeResult]:
    """The loop (module docstring): `batches` maps each split to its `FeatureBatches` / `AudioBatches`."""
    lrs = tuple(float(lr) for lr in settings.learning_rates)
    programs = probe_programs(spec, num_states, forward)
    run = initial_state(programs, count, lrs, hidden, seed, extra_metrics(spec))
    folder = None if work_dir is None else ProbeWorkDir(work_dir, fingerprint, spec.name, settings.checkpoint_every)
    start = 0
    if folder is not None:
        run, start = folder.restore(run)
    names = [f"{k}/{lr:g}" for k in range(count) for lr in lrs]
    metrics = ProbeMetrics(None if work_dir is None else folder.path, start, names, spec.metric)
    sign = 1.0 if spec.higher_is_better else -1.0
    bar = tqdm(total=settings.steps, initial=start, unit="step", leave=False,
               desc=f"probe {spec.name}: {len(lrs)} lr{'s' * (len(lrs) > 1)} x {count} encoder{'s' * (count > 1)}",
               disable=not (progress and progress_bars_shown()))
    train = batches["train"].train(seed, start)
    try:
        for step in range(start + 1, settings.steps + 1):
            run["params"], run["opt_state"], loss = programs.step(run["params"], run["opt_state"], inputs, next(train))
            run["last_loss"] = loss
            dev = None
            if step == settings.steps or (settings.eval_every and step % settings.eval_every == 0):
                dev_metrics = split_metrics(spec, functools.partial(programs.logits, run["params"], inputs),
                                            batches["dev"])
                dev = dev_metrics[spec.metric]
                improved = sign * dev > run["best_score"]
                for name in extra_metrics(spec):  # the dev metrics reported beside, at the best dev
                    run[f"best_{name}"] = np.where(improved, dev_metrics[name], run[f"best_{name}"])
                run["best_params"] = programs.keep_best(run["best_params"], run["params"], jnp.asarray(improved))
                run["best_score"] = np.where(improved, sign * dev, run["best_score"])
                run["best_dev"] = np.where(improved, dev, run["best_dev"])
                run["best_step"] = np.where(improved, step, run["best_step"])
            metrics.add(step, loss, dev)
            if folder is not None:
                folder.save(step, run, force=step == settings.steps)
            bar.update(1)
    finally:
        train.close()
        bar.close()
        metrics.close()
        if folder is not None:
            folder.close()
    scored_test = score_split(spec, functools.partial(programs.logits, run["best_params"], inputs), batches["test"])
    test_metrics = scored_test.metrics
    test = test_metrics[spec.metric]
    best_score, best_dev, best_step = run["best_score"], run["best_dev"], run["best_step"]
    last_loss = np.asarray(run["last_loss"])
    weights = np.asarray(jax.nn.softmax(run["best_params"]["layer_weights"], axis=-1), np.float64)
    results = []
    for k in range(count):
        j = int(np.argmax(best_score[k]))  # the first of tied learning rates
        results.append(ProbeResult(
            spec.name, spec.metric, float(best_dev[k, j]), float(test[k, j]), lrs[j], weights[k, j].round(4).tolist(),
            {str(lr): float(best_dev[k, i]) for i, lr in enumerate(lrs)},
            {"best_step": int(best_step[k, j]), "final_train_loss": float(last_loss[k, j]),
             "test_by_lr": {str(lr): float(test[k, i]) for i, lr in enumerate(lrs)},
             "test_ci95": list(scored_test.interval(k, j)),  # of the chosen probe only
             # the metrics reported beside the probe's own (slot-value CER, minDCF, DER's parts)
             **{f"dev_{name}": float(run[f"best_{name}"][k, j]) for name in extra_metrics(spec)},
             **{f"test_{name}": float(test_metrics[name][k, j]) for name in extra_metrics(spec)},
             **details}))
    return results


# ---------------------------------------------------------------------------------- the mode
def _size(num_bytes: float) -> str:
    return f"{num_bytes / 1e9:.1f} GB" if num_bytes >= 1e8 else f"{num_bytes / 1e6:.1f} MB"


def cache_bytes(encoders: FrozenEncoders, lengths: Sequence[np.ndarray]) -> int:
    """The size of the features of utterances of `lengths` samples (all splits'), float16, before any forward."""
    config = encoders.bundle.config
    frames = sum(config.num_frames(int(n)) for split in lengths for n in split if n >= 0)
    return encoders.count * frames * encoders.num_states * encoders.hidden * 2


def _free_bytes(directory: Path) -> int:
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    return shutil.disk_usage(directory).free


def choose_mode(name: str, mode: str, needed: int, missing: int, cache_dir: Path | None, budget_gb: float) -> str:
    """`cached` or `on_the_fly` for features of `needed` bytes (`missing` of them not yet in
    `cache_dir`), logged in one INFO line (module docstring)."""
    where = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir())
    if mode != "auto":
        logger.info(f"probe {name}: {mode.replace('_', ' ')} (mode {mode}; features: {_size(needed)})")
        return mode
    if needed > budget_gb * 1e9:
        logger.info(f"probe {name}: on the fly (features would take {_size(needed)} > budget {budget_gb:g} GB)")
        return "on_the_fly"
    free = _free_bytes(where)
    if missing > free:
        logger.info(f"probe {name}: on the fly (features would take {_size(missing)} more, {_size(free)} free "
                    f"at {where})")
        return "on_the_fly"
    logger.info(f"probe {name}: cached (features take {_size(needed)} <= budget {budget_gb:g} GB, at {where})")
    return "cached"


def probe_fingerprint(spec: ProbeSpec, settings: ProbeSettings, encoders: FrozenEncoders, splits: Mapping,
                      mode: str, seed: int) -> str:
    """A hash of what the probes' results depend on: their task, settings, encoders, data and mode."""
    description = {"spec": dataclasses.asdict(spec), "seed": seed, "mode": mode, "encoders": encoders.fingerprint,
                   "batch_independent": encoders.bundle.config.batch_independent,
                   "settings": [settings.steps, list(settings.learning_rates), settings.batch_size,
                                settings.num_buckets, settings.eval_every],
                   "data": [[split, source_description(source), label_description(spec_)]
                            for split, (source, spec_) in sorted(splits.items())]}
    return hashlib.sha1(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------- the entry points
def train_probes(spec: ProbeSpec, encoders: FrozenEncoders, splits: Mapping[str, tuple], settings: ProbeSettings, *,
                 mode: str | None = None, cache_dir: Path | None = None, cache_budget_gb: float | None = None,
                 work_dir: Path | None = None, seed: int = 0, progress: bool = True) -> list[ProbeResult]:
    """One `ProbeResult` per encoder of `encoders` (module docstring). `splits` maps "train", "dev"
    and "test" to `(source, label_spec)`; `mode` and `cache_budget_gb` default to `settings`'."""
    settings.validate()
    mode = settings.mode if mode is None else mode
    budget = settings.cache_budget_gb if cache_budget_gb is None else cache_budget_gb
    bundle = encoders.bundle
    read = {split: read_split(bundle, *splits[split], settings.batch_size, settings.num_buckets) for split in SPLITS}
    layout = label_layout(spec.kind)
    width = label_width(read["train"][0].labels, layout)
    with contextlib.ExitStack() as stack:
        needed = cache_bytes(encoders, [read[split][0].lengths for split in SPLITS])
        keys = {split: feature_cache_key(f"{spec.name}-{split}", encoders.fingerprint, bundle, *splits[split],
                                         num_buckets=settings.num_buckets) for split in SPLITS}
        missing = 0 if cache_dir is None else sum(  # entries already there take no more space
            cache_bytes(encoders, [read[split][0].lengths]) for split in SPLITS
            if not (Path(cache_dir) / keys[split]).is_dir())
        chosen = choose_mode(spec.name, mode, needed, needed if cache_dir is None else missing, cache_dir, budget)
        if chosen == "cached":
            directory = (Path(cache_dir) if cache_dir else
                         Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="speechft-probe-features-"))))
            batches = {}
            for split in SPLITS:
                source, label_spec = splits[split]
                sets = cached_feature_sets(directory, keys[split], bundle, source, label_spec, encoders.states,
                                           num_buckets=settings.num_buckets, desc=f"{spec.name} {split} features")
                if sets[0].indices != list(range(len(source))):  # batches index the sets by source index
                    raise ValueError(f"{directory / keys[split]}: the cache entry does not hold every utterance")
                batches[split] = FeatureBatches(sets, read[split][0], settings.batch_size, bundle.config.num_frames,
                                                width, layout, source, label_spec)
            forward = None
        else:
            batches = {split: AudioBatches(*splits[split], *read[split], settings.batch_size) for split in SPLITS}
            forward = encoders.forward
        return _train(spec, batches, settings, count=encoders.count, num_states=encoders.num_states,
                      hidden=encoders.hidden, inputs=None if forward is None else encoders.inputs, forward=forward,
                      work_dir=work_dir, fingerprint=probe_fingerprint(spec, settings, encoders, splits, chosen, seed),
                      seed=seed, progress=progress, details={"mode": chosen})


def train_probe(spec: ProbeSpec, train: FeatureSet, dev: FeatureSet, test: FeatureSet, *,
                learning_rates: Sequence[float] = (1e-4, 1e-3, 1e-2), steps: int = 1000, batch_size: int = 16,
                eval_every: int = 0, num_buckets: int = 4, seed: int = 0, progress: bool = True,
                scored_against: Mapping[str, tuple] | None = None) -> ProbeResult:
    """Probes of one learning-rate grid on features already held in memory (`FeatureSet`s of any
    source), picked on `dev`, reported on `test`; batches padded to `num_buckets` frame lengths.
    Verification and diarization probes score dev and test against `scored_against[split]` =
    `(source, label spec)`: the split's trial list, or its sources' reference segments."""
    settings = ProbeSettings(steps=steps, learning_rates=tuple(learning_rates), batch_size=batch_size,
                             num_buckets=num_buckets, eval_every=eval_every)
    settings.validate()
    if spec.kind in ("verification", "diarization") and not scored_against:
        raise ValueError(f"train_probe: {spec.kind} probes need `scored_against` (their dev and test references)")
    layout = label_layout(spec.kind)
    width = label_width(train.labels, layout)
    batches = {}
    for split, data in zip(SPLITS, (train, dev, test)):
        frames = np.array([f.shape[1] for f in data.features], np.int64)
        plan = SplitData(frames, data.labels, choose_bucket_lengths(frames, num_buckets, multiple=8))
        batches[split] = FeatureBatches([data], plan, batch_size, lambda bucket: bucket, width, layout,
                                        *(scored_against or {}).get(split, (None, None)))
    (result,) = _train(spec, batches, settings, count=1, num_states=train.num_states, hidden=train.hidden,
                       inputs=None, forward=None, work_dir=None, fingerprint="", seed=seed, progress=progress,
                       details={})
    return result
