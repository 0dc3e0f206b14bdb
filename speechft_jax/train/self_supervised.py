"""What `objective: hubert` and `objective: score` change in a run, in one place.

`encoder_settings(config)`: the model section and SpecAugment switch the encoder is built with
(HuBERT's span masking; no SpecAugment for SCORE). `view_for(config)`: SCORE's second view for
the loader. `attach_objectives(...)`: builds each self-supervised task once theta_0 exists and
returns the frozen arrays its loss reads (a teacher, k-means centroids). `trainable_layers(config,
encoder_config)`: SCORE's top-K layers (None: the whole encoder but the CNN).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import jax

from speechft_jax.data.augment import ViewConfig
from speechft_jax.models.config import ConfigError
from speechft_jax.objectives.hubert_targets import build_hubert_task, mask_overrides
from speechft_jax.objectives.teacher import teacher_forward
from speechft_jax.tasks.score_task import ScoreTask
from speechft_jax.train import sharding as S
from speechft_jax.train.config import TrainConfig
from speechft_jax.train.start_encoder import resolve_path


def encoder_settings(config: TrainConfig):
    """`(model config, spec_augment)` for `start_encoder`."""
    model, spec_augment = config.model, config.finetune.spec_augment
    if config.objective == "hubert":  # HuBERT's span masking replaces SpecAugment's settings
        overrides = {**model.overrides, **mask_overrides(config.hubert_settings)}
        return dataclasses.replace(model, overrides=overrides), True
    if config.objective == "score":
        return model, False
    return model, spec_augment


def view_for(config: TrainConfig) -> ViewConfig | None:
    if config.objective != "score":
        return None
    score = config.score_settings
    return ViewConfig(tuple(score.speed_factors), tuple(score.pitch_semitones), score.random_order)


def trainable_layers(config: TrainConfig, num_layers: int) -> tuple[int, ...] | None:
    if config.objective != "score":
        return None
    k = config.score_settings.trainable_layers
    if k > num_layers:
        raise ConfigError(f"score.trainable_layers={k}, but the encoder has {num_layers} layers")
    return tuple(range(num_layers - k, num_layers))


def attach_objectives(config: TrainConfig, bundle, theta_0, task_data, *, out: Path, mesh,
                      config_dir: Path | Sequence[Path] | None, is_writer: bool) -> dict:
    """Set `td.task` of each hubert / score task; return the frozen arrays their losses read."""
    frozen: dict = {}
    for td in task_data:
        if td.config.kind == "hubert":
            settings = config.hubert_settings
            if settings.teacher is not None:
                settings = dataclasses.replace(settings, teacher=str(resolve_path(settings.teacher, config_dir)))
            td.task, extra = build_hubert_task(
                settings, td.config, bundle, theta_0, td.loader.source, out_dir=out, seed=config.seed,
                normalize=bool(bundle.preprocessor.get("do_normalize")), is_writer=is_writer)
            frozen.update({k: v if v is theta_0 else jax.device_put(v, S.replicated(mesh)) for k, v in extra.items()})
        elif td.config.kind == "score":
            score = config.score_settings
            forward = teacher_forward(bundle.module)
            td.task = ScoreTask(td.config.name, lambda frz, audio, mask: forward(frz["teacher"], audio, mask),
                                score.projection_dim, score.gamma)
            frozen["teacher"] = theta_0
    return frozen
