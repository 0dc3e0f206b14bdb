"""One fine-tuning run, top to bottom: `train(config)`.

Phases: output directory -> theta_0 -> mesh -> tasks and data -> optimizer -> state created
inside `jax.jit` with its shardings (or restored from the latest checkpoint) -> the jitted,
donated update step -> the loop (progress bar, metrics, NaN stop, dev scoring and the best-dev
export, checkpoints, early exports) -> the fine-tuned encoder exported as a transformers
directory, the heads scored on their test splits, and the run's summary.

A run re-started into the same `output_dir` continues from its latest checkpoint and ends with
the same parameters as an uninterrupted run (data order, dropout and SpecAugment keys are all
functions of the seed and the step). A finished run is not repeated. A run has started only once
its directory holds a checkpoint: before that, a new config may start over in it; after, a
changed setting is an error. Process 0 checks that it can write there before any model work and
holds the directory's lock (`run_lock.py`) for the whole run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Sequence

import flax.linen as nn
import jax
import numpy as np
import yaml

from speechft_jax.checkpoints import save_encoder
from speechft_jax.config_loading import build, load_yaml, to_dict
from speechft_jax.data import make_global_batch
from speechft_jax.errors import TrainingDiverged
from speechft_jax.files import atomic_write_bytes, atomic_write_json, write_check_error
from speechft_jax.models.config import ConfigError
from speechft_jax.models.pretrained import abstract_boxed_params
from speechft_jax.objectives.hubert import KMEANS_NAME
from speechft_jax.objectives.supervised import SUPERVISED
from speechft_jax.train import sharding as S
from speechft_jax.train.checkpointing import abstract_with_shardings, saved_steps
from speechft_jax.train.config import LATER_STAGES, TrainConfig
from speechft_jax.train.dev_scoring import (
    BEST_DEV_DIR, DEV_SCORES_NAME, DevHistory, build_dev_scorer, describe_task_scores, log_scalars,
)
from speechft_jax.train.run_lock import run_directory_lock
from speechft_jax.train.start_encoder import init_fn, start_encoder
from speechft_jax.train.step import encoder_params, init_train_state, make_loss_fn, make_train_step
from speechft_jax.train.task_data import build_task_data, save_labels
from speechft_jax.tree_math import params_fingerprint

CONFIG_NAME = "config.yaml"
SUMMARY_NAME = "summary.json"
ENCODER_DIR = "encoder"
SHARDING_NAME = "sharding.json"
CHECKPOINTS_DIR = "checkpoints"
# settings that may change between a run and its resumption; a config.yaml saved before the
# pipeline read the later stages' sections may still hold them
_RESUMABLE_CHANGES = ("logging", "checkpoint", "output_dir", *LATER_STAGES)
logger = logging.getLogger(__name__)


def check_finite(step: int, metrics: dict, last_good_step: int | None) -> None:
    """Raise `TrainingDiverged` (one line) when `step`'s loss or gradient norm is NaN or Inf: the
    update of that step is already unusable (clipping scales every gradient by the norm)."""
    loss, norm = metrics["loss"], metrics["grad_norm"]
    if np.isfinite(loss) and np.isfinite(norm):
        return
    what = f"the loss is {loss} (grad norm {norm})" if not np.isfinite(loss) else \
        f"the gradient norm is {norm} (loss {loss})"
    raise TrainingDiverged(f"step {step}: {what}; stopped without saving, "
                           f"the last good checkpoint is step {last_good_step}")


@dataclasses.dataclass
class TrainResult:
    output_dir: Path
    steps: int
    final_loss: float  # the last step's loss (the last line of metrics.jsonl, a window of one step)
    encoder_dir: Path
    early_dirs: list
    wall_seconds: float
    resumed_from: int | None = None
    encoder_fingerprint: str = ""  # a hash of the final encoder's bytes, as this process holds it
    best_dev_step: int | None = None  # the step of the best dev score (None: no task has a dev split)
    best_dev_dir: Path | None = None  # the encoder of that step (`dev_scoring.keep_best`)
    task_scores: dict = dataclasses.field(default_factory=dict)  # per task: dev and test metrics (dev_scoring.py)

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else [str(p) for p in v] if k == "early_dirs" else v)
                for k, v in dataclasses.asdict(self).items()}


# ------------------------------------------------------------------------------ output dir
def _first_difference(old, new, prefix=""):
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if old == new else (prefix.rstrip("."), old, new)


def _check_writable(directory: Path) -> None:
    """Create `directory` and write a file in it: a one-line `ConfigError` now instead of a
    traceback after compilation."""
    err = write_check_error(directory)
    if err is not None:
        reason = "it is a file, not a directory" if isinstance(err, FileExistsError) else err.strerror or err
        raise ConfigError(f"output_dir: cannot write in {directory} ({reason})")


def _with_defaults(saved: dict) -> dict:
    """A saved `config.yaml` with the keys added to the schema since it was written set to their
    defaults (which keep the old behaviour), so that a run saved by an earlier version resumes; a
    file the schema no longer reads is compared as it is."""
    try:
        return to_dict(build(TrainConfig, {k: v for k, v in saved.items() if k not in LATER_STAGES}))
    except ConfigError:
        return saved


def _prepare_output_dir(config: TrainConfig, out: Path, is_writer: bool) -> None:
    """Compare `config` with the directory's saved one and save it (process 0, holding the lock)."""
    resolved = to_dict(config)
    saved_path = out / CONFIG_NAME
    if saved_path.is_file():
        saved = _with_defaults(load_yaml(saved_path.read_text(), str(saved_path)) or {})
        comparable = lambda d: {k: v for k, v in d.items() if k not in _RESUMABLE_CHANGES}
        diff = _first_difference(comparable(saved), comparable(resolved))
        if diff and saved_steps(out / CHECKPOINTS_DIR):
            raise ConfigError(f"{saved_path}: this directory holds a run with {diff[0]}={diff[1]!r}, "
                              f"the new config has {diff[2]!r}; resume with the same settings or "
                              f"choose another output_dir")
        if diff and is_writer:  # an earlier start that never checkpointed: nothing to resume
            logger.info(f"{out}: the run started there with {diff[0]}={diff[1]!r} has no checkpoint; "
                        f"starting over with {diff[2]!r}")
            (out / KMEANS_NAME).unlink(missing_ok=True)  # centroids fitted under the old settings
    if is_writer:
        _check_writable(out / CHECKPOINTS_DIR)
        atomic_write_bytes(saved_path, yaml.safe_dump(resolved, sort_keys=False).encode())


def _to_host(tree):
    """Fully replicated numpy copies (gathered across processes when needed)."""
    if all(x.is_fully_addressable for x in jax.tree_util.tree_leaves(tree)):
        return jax.device_get(tree)
    from jax.experimental import multihost_utils
    return multihost_utils.process_allgather(tree, tiled=True)


# ------------------------------------------------------------------------------ the run
def train(config: TrainConfig, *, config_dir: Path | Sequence[Path] | None = None, require_checkpoint: bool = False) -> TrainResult:
    """Run (or continue) the fine-tuning described by `config`; see the module docstring."""
    started = time.time()
    is_writer = jax.process_index() == 0
    out = Path(config.output_dir)
    if require_checkpoint and not saved_steps(out / CHECKPOINTS_DIR):  # before creating anything there
        raise ConfigError(f"--resume: {out / CHECKPOINTS_DIR} holds no checkpoint to resume from")
    if not is_writer:
        _prepare_output_dir(config, out, is_writer)
        return _train_in(out, config, config_dir, started, is_writer)
    _check_writable(out)
    with run_directory_lock(out):
        _prepare_output_dir(config, out, is_writer)
        return _train_in(out, config, config_dir, started, is_writer)


def _train_in(out: Path, config: TrainConfig, config_dir, started: float, is_writer: bool) -> TrainResult:
    if (out / SUMMARY_NAME).is_file() and (out / ENCODER_DIR).is_dir():
        summary = json.loads((out / SUMMARY_NAME).read_text())
        logger.info(f"{out}: this run already finished ({summary['steps']} steps); nothing to do")
        return TrainResult(out, summary["steps"], summary["final_loss"], Path(summary["encoder_dir"]),
                           [Path(p) for p in summary["early_dirs"]], summary["wall_seconds"],
                           summary.get("resumed_from"), summary.get("encoder_fingerprint", ""),
                           summary.get("best_dev_step"),
                           Path(summary["best_dev_dir"]) if summary.get("best_dev_dir") else None,
                           summary.get("task_scores", {}))
    opt_cfg, ft = config.optimizer, config.finetune
    # relative data paths: beside the YAML file (its base chain), then the working directory; a
    # missing file is an error here, before anything is compiled
    task_configs = [t.resolved(config_dir) for t in config.tasks]

    # ---------------------------------------------------------------- theta_0 and the mesh
    # the objective's API (objectives/__init__.py): its config section, or SUPERVISED
    objective = {"hubert": config.hubert_settings, "score": config.score_settings}.get(config.objective, SUPERVISED)
    model_cfg, spec_augment = objective.encoder_settings(config.model, config.finetune.spec_augment)
    bundle = start_encoder(model_cfg, config_dir, spec_augment=spec_augment)
    enc_config = bundle.config
    mesh = config.mesh.build()
    rules = S.TRAIN_RULES
    boxed = abstract_boxed_params(enc_config)
    enc_abstract = nn.unbox(boxed)
    enc_shardings = S.param_shardings(boxed, mesh, rules)
    if bundle.params is None:
        theta_0 = jax.jit(init_fn(enc_config, config.model.init_seed, config.model.cnn_init), out_shardings=enc_shardings)()
    else:
        theta_0 = jax.device_put(bundle.params, enc_shardings)
        bundle = bundle.replace(params=None)

    # ---------------------------------------------------------------- tasks and data
    data_parallel = mesh.shape[S.DATA] * mesh.shape[S.FSDP]
    for task in config.tasks:
        if task.batch_size % data_parallel:
            raise ConfigError(f"tasks.{task.name}.batch_size={task.batch_size}, expected a multiple of "
                              f"mesh.data x mesh.fsdp = {data_parallel}")

    def prepare(task_config, source, theta_0=theta_0):  # bound now: the name is deleted once the state holds it
        """A self-supervised task and its frozen arrays, placed on the mesh (theta_0 already is)."""
        task, arrays = objective.prepare(task_config, bundle, theta_0, source, out_dir=out, seed=config.seed,
                                         is_writer=is_writer, config_dir=config_dir)
        return task, {k: v if v is theta_0 else jax.device_put(v, S.replicated(mesh)) for k, v in arrays.items()}

    task_data = [build_task_data(t, seed=config.seed, normalize=bool(bundle.preprocessor.get("do_normalize")),
                                 process_index=jax.process_index(), process_count=jax.process_count(),
                                 view=objective.loader_view(), min_samples=bundle.config.receptive_field,
                                 prepare=prepare)
                 for t in task_configs]
    frozen = {name: array for td in task_data for name, array in td.frozen_arrays.items()}
    tasks = [td.task for td in task_data]
    if is_writer:
        for td in task_data:
            if td.labels is not None:
                save_labels(td, out / "labels")
    scorer = build_dev_scorer(config.dev_scoring, task_data, bundle, mesh)  # None: no dev or test split
    if scorer is not None and config.dev_scoring.batch_size % data_parallel:
        raise ConfigError(f"dev_scoring.batch_size={config.dev_scoring.batch_size}, expected a multiple of "
                          f"mesh.data x mesh.fsdp = {data_parallel}")

    # ---------------------------------------------------------------- optimizer and state
    trained_layers = objective.layers_to_train(enc_config.num_hidden_layers)
    optimizer = opt_cfg.build(freeze_cnn=ft.freeze_cnn, trainable_layers=trained_layers)
    lora = ft.lora
    needs_theta_0 = lora is not None or ft.l2_to_pretrained > 0
    if needs_theta_0:
        frozen["theta_0"] = theta_0
    frozen_shardings = jax.tree_util.tree_map(lambda x: x.sharding, frozen)

    def init_state(encoder, rng):
        heads = {t.name: t.init(jax.random.fold_in(rng, i), enc_config.hidden_size) for i, t in enumerate(tasks)}
        if lora is not None:
            adapters = lora.init(encoder, jax.random.fold_in(rng, len(tasks)))
            return init_train_state({"lora": adapters, "head": heads}, optimizer)
        return init_train_state({"encoder": encoder, "head": heads}, optimizer)

    init_rng = jax.random.PRNGKey(config.seed)
    abstract_state = jax.eval_shape(init_state, enc_abstract, init_rng)
    params_shardings = jax.tree_util.tree_map(lambda _: S.replicated(mesh), abstract_state.params)
    if lora is None:
        params_shardings["encoder"] = enc_shardings
    state_shardings = S.state_shardings(abstract_state, abstract_state.params, params_shardings, mesh)

    checkpoints = config.checkpoint.build(out / CHECKPOINTS_DIR)
    resumed_from = checkpoints.latest_step()
    if resumed_from is not None:
        state, loader_states, _ = checkpoints.restore(abstract_with_shardings(abstract_state, state_shardings))
        for td in task_data:
            td.loader.set_state(loader_states[td.config.name])
    else:
        state = jax.jit(init_state, out_shardings=state_shardings)(theta_0, init_rng)
    del theta_0  # the trained copy lives in the state (and `frozen` keeps what is still needed)
    if is_writer:
        atomic_write_json(out / SHARDING_NAME, S.describe_sharding(state.params, mesh))

    # ---------------------------------------------------------------- the step
    loss_fn = make_loss_fn(bundle.module, tasks, [t.weight for t in config.tasks], freeze_cnn=ft.freeze_cnn,
                           l2_to_pretrained=ft.l2_to_pretrained, lora=lora,
                           first_trained_layer=trained_layers[0] if trained_layers else 0)
    batch_shardings = {t.name: S.batch_sharding(mesh) for t in config.tasks}
    train_step = jax.jit(make_train_step(loss_fn, optimizer, config.seed),
                         in_shardings=(state_shardings, frozen_shardings, batch_shardings),
                         out_shardings=(state_shardings, S.replicated(mesh)), donate_argnums=(0,))
    merged_encoder = jax.jit(lambda params, frozen: encoder_params(params, frozen, lora),
                             out_shardings=enc_shardings)

    pretraining_heads = [t.name for t in tasks if t.head_is_pretraining_head]

    def export(params, directory: Path):
        """Write the encoder (process 0) and return the host copy every process gathered."""
        host = _to_host(merged_encoder(params, frozen))
        head = _to_host(params["head"][pretraining_heads[0]]) if pretraining_heads else bundle.pretraining_head
        if is_writer:
            save_encoder(bundle.replace(pretraining_head=head), directory, params=host)
        return host

    def scored_encoder(params):
        """The encoder the heads are scored with (LoRA, DoRA: the base with its adapters, merged)."""
        return params["encoder"] if lora is None else merged_encoder(params, frozen)

    # ---------------------------------------------------------------- the loop
    accum, total = opt_cfg.grad_accum, opt_cfg.steps
    step = int(state.step) // accum
    early = {max(1, int(round(f * total))): f for f in ft.early_checkpoints}
    early_dirs = [out / "early" / f"step_{s:06d}" for s in sorted(early) if s <= step]
    encoder_lr = opt_cfg.encoder_lr_schedule()
    log = config.logging.build(out, total, step, enabled=is_writer)
    if resumed_from is not None:
        log.write(f"resuming from the checkpoint at step {resumed_from}")
    history = None if scorer is None else DevHistory(out / DEV_SCORES_NAME, step, enabled=is_writer)
    test_scores: dict[str, float] = {}
    iterators = {td.config.name: iter(td.loader) for td in task_data}
    try:
        with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
            while step < total:
                window: dict[str, float] = {}
                for _ in range(accum):
                    batches = {name: make_global_batch(next(it), mesh, S.BATCH_AXES) for name, it in iterators.items()}
                    state, metrics = train_step(state, frozen, batches)
                    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    check_finite(step + 1, metrics, checkpoints.latest_step())
                    for k, v in metrics.items():
                        window[k] = window.get(k, 0.0) + v / accum
                step += 1
                lr = float(encoder_lr(step - 1))
                dev: dict[str, float] = {}
                if scorer is not None and scorer.due(step, total):  # scored before this step's checkpoint
                    dev = scorer.score("dev", scored_encoder(state.params), state.params["head"])
                    if history.add(step, dev, scorer.metrics) and config.dev_scoring.keep_best:
                        export(state.params, out / BEST_DEV_DIR)
                        log.write(f"step {step}: the best dev score so far; encoder exported to {out / BEST_DEV_DIR}")
                if step == total:  # the last step in a window of its own: the summary's final loss
                    log.flush(step - 1)
                log.add(step, window, encoder_lr=lr, scores=log_scalars(dev, scorer.metrics) if dev else None)
                if step in early:
                    early_dirs.append(out / "early" / f"step_{step:06d}")
                    export(state.params, early_dirs[-1])
                    log.write(f"step {step}: encoder exported to {early_dirs[-1]} (early checkpoint {early[step]:g})")
                loader_states = {td.config.name: td.loader.get_state() for td in task_data}
                if step == total:  # the last metrics are on disk before the checkpoint a resume starts from
                    log.flush(step)
                checkpoints.save(step, state, loader_states, force=step == total)
            if scorer is not None:  # the test splits, once, with the final encoder and heads
                test_scores = scorer.score("test", scored_encoder(state.params), state.params["head"])
        checkpoints.wait()  # a failed last save stops here, before the encoder is exported
        encoder_dir = out / ENCODER_DIR
        fingerprint = params_fingerprint(export(state.params, encoder_dir))
    finally:
        log.close()
        try:
            checkpoints.wait()
        finally:
            checkpoints.close()
            for td in task_data:
                td.loader.close()
    # the last step's loss, from the metrics log rather than this process's loop: a run resumed
    # from its last checkpoint trains no step
    loss = log.last_value("loss")
    best = None if history is None else history.best()
    result = TrainResult(out, total, loss, encoder_dir, early_dirs, round(time.time() - started, 2), resumed_from,
                         fingerprint, best and best["step"],
                         out / BEST_DEV_DIR if best and config.dev_scoring.keep_best else None,
                         {} if scorer is None else history.task_summary(test_scores, scorer.metrics))
    if is_writer:
        atomic_write_json(out / SUMMARY_NAME, result.to_json())
        logger.info(f"done: {total} steps, final loss {loss:.4f}; encoder written to {encoder_dir}")
        for line in describe_task_scores(result.task_scores, result.best_dev_step, result.best_dev_dir):
            logger.info(line)
    return result
