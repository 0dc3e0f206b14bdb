"""All of Speech-FT from one training YAML: fine-tune, then sweep alpha and report.

`python -m speechft_jax.train --config path` is `run_pipeline(load_pipeline_config(path))`: it
trains (or continues) the run (`train/`); when the file has a `sweep:` section, process 0 then
runs the alpha sweep of theta_0 and the run's encoder (`sweep/`) and prints its table.

The file is a `PipelineConfig`: the run's sections (`TrainConfig`) plus the optional `sweep`
section, which is the sweep's own schema (`sweep/config.py`) without `pretrained`, `finetuned`,
`output_dir` and `finetuned_label`: the run fills them in (theta_0 = `model.pretrained`,
theta_ft = the run's `encoder/`, the output under the run's `sweep/`, alpha 1 named by the
run's method). Only the run's part reaches `train` (and its saved `config.yaml`), so a run
continues whatever its sweep section says.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax

from speechft_jax.config_loading import check, load_config, resolve_path
from speechft_jax.sweep.config import SweepConfig
from speechft_jax.sweep.runner import FINETUNED, report, run_sweep
from speechft_jax.train.config import TrainConfig
from speechft_jax.train.loop import TrainResult, train

# the sweep keys a training run fills in itself
RUN_SWEEP_KEYS = ("pretrained", "finetuned", "output_dir", "finetuned_label")


@dataclasses.dataclass(frozen=True)
class PipelineConfig(TrainConfig):
    """A training YAML as a whole: the run (`TrainConfig`'s sections) and an optional `sweep`."""

    sweep: SweepConfig | None = None

    def validate(self):
        super().validate()
        if self.sweep is not None:
            for key in RUN_SWEEP_KEYS:
                check(getattr(self.sweep, key) is None, f"sweep.{key}", getattr(self.sweep, key),
                      "nothing: a training run sweeps model.pretrained against its own encoder/ and names its method")
            check(self.model.pretrained is not None, "model.pretrained", None,
                  "a pre-trained encoder when there is a sweep section (theta_0 of the merge)")

    @property
    def training(self) -> TrainConfig:
        """The run's part: what `train` runs, saves as `config.yaml` and compares on resume."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)})


def load_pipeline_config(path, overrides=()) -> PipelineConfig:
    """Parse and validate a training YAML file, its `sweep` section included, with `key=value`
    overrides (`sweep.probe.steps=100` too)."""
    return load_config(PipelineConfig, path, overrides)


def finetuning_method(train_config: TrainConfig) -> str:
    """The name of the fine-tuning a training config runs (alpha 1 of its sweep)."""
    finetune, beta = train_config.finetune, train_config.optimizer.beta
    if train_config.objective != "supervised":
        return {"score": "SCORE", "hubert": "HuBERT PT"}[train_config.objective]
    if finetune.lora is not None:
        return "DoRA" if finetune.lora.dora else "LoRA"
    if finetune.l2_to_pretrained:
        return "L2 reg."
    if finetune.freeze_cnn and beta > 0:
        return "Stable-FT"
    return "full FT" if not finetune.freeze_cnn and beta == 0 else FINETUNED


def training_run_sweep(config: PipelineConfig, result: TrainResult, config_dir=None) -> SweepConfig:
    """A training config's `sweep` section made whole: theta_0 = its `model.pretrained`, theta_ft =
    the run's `encoder/`, the output under the run's `sweep/`, alpha 1 named by the run's method."""
    return dataclasses.replace(config.sweep, pretrained=str(resolve_path(config.model.pretrained, config_dir)),
                               finetuned=str(result.encoder_dir), output_dir=str(Path(result.output_dir) / "sweep"),
                               finetuned_label=finetuning_method(config))


def run_pipeline(config: PipelineConfig, config_dir=None, *, resume: bool = False) -> TrainResult:
    """Train (`resume`: require a checkpoint to continue from), then, when `config` has a `sweep`
    section, sweep and print the table (process 0). `config_dir`: the folders of the YAML file's
    `base:` chain (`config_dirs`), where its relative paths are looked up."""
    tasks = None
    if config.sweep is not None:  # resolved before training: a task the sweep cannot probe is found now
        dirs = [config_dir] if isinstance(config_dir, (str, Path)) else list(config_dir or ())
        tasks = config.sweep.eval_tasks(dirs, run_tasks={t.name: t.resolved(dirs).definition() for t in config.tasks})
    result = train(config.training, config_dir=config_dir, require_checkpoint=resume)
    if config.sweep is not None and jax.process_index() == 0:
        print(f"Speech-FT steps 2 and 3: the alpha sweep {list(config.sweep.alphas)} of theta_0 and {result.encoder_dir}")
        print(report(run_sweep(training_run_sweep(config, result, config_dir), tasks)))
    return result
