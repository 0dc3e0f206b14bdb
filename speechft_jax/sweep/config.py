"""The schema of `python -m speechft_jax.sweep --config sweep.yaml`.

    pretrained: speechft_jax/assets/tiny-hubert     # theta_0
    finetuned: runs/demo_pr/encoder                 # theta_ft (Speech-FT step 1's output)
    alphas: [0.0, 0.25, 0.5, 0.75, 1.0]
    tasks: [pr, sid, ks, style]                     # demo-corpus probes (SUPERB-style)
    select_on: [sid, ks, style]                     # tasks whose mean score picks alpha (default: all)
    corpus: demo
    probe: {steps: 500, learning_rates: [1.0e-3, 1.0e-2], batch_size: 16}
    output_dir: runs/demo_sweep
    finetuned_label: Stable-FT                      # alpha 1's name in the table (default: fine-tuned)

A task's score is its accuracy, or 1 - its error rate, so that higher is better everywhere;
the chosen alpha maximises the mean score over `select_on`. `similarity: true` (the default) also
compares every alpha's features with theta_0's on the first task's test split (CKA and R^2 per
layer) and reports the size of the weight update.

The same section, without `pretrained`, `finetuned` and `output_dir`, can sit under `sweep:` in a
training config: the run then sweeps its own result (theta_0 = `model.pretrained`, theta_ft = the
run's `encoder/`, written under the run's `sweep/`), which is how `configs/demo.yaml` runs all of
Speech-FT in one command (`speechft_jax/pipeline.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from speechft_jax.config_loading import SEED, load_config
from speechft_jax.evaluate.probe_settings import ProbeSettings
from speechft_jax.models.config import ConfigError


@dataclass(frozen=True)
class SweepConfig:
    pretrained: str | None = None
    finetuned: str | None = None
    output_dir: str | None = None
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    tasks: tuple[str, ...] = ("pr", "sid", "ks", "style")
    select_on: tuple[str, ...] = ()
    corpus: Literal["tiny", "demo", "full"] = "demo"
    corpus_dir: str | None = None
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    similarity: bool = True
    seed: Annotated[int, SEED] = 0
    finetuned_label: str | None = None  # alpha 1's name in the table: "fine-tuned" unless given

    def validate(self):
        from speechft_jax.evaluate.demo_tasks import EVAL_TASKS

        if not self.alphas or not all(math.isfinite(a) for a in self.alphas):
            raise ConfigError(f"alphas={list(self.alphas)}: expected one or more finite numbers")
        for task in self.tasks:
            if task not in EVAL_TASKS:
                raise ConfigError(f"tasks: {task!r}, expected one of {', '.join(EVAL_TASKS)}")
        for task in self.select_on:
            if task not in self.tasks:
                raise ConfigError(f"select_on: {task!r} is not one of tasks {list(self.tasks)}")


def load_sweep_config(path, overrides=()) -> SweepConfig:
    """A standalone sweep file: `pretrained`, `finetuned` and `output_dir` are required there."""
    config = load_config(SweepConfig, path, overrides)
    for key in ("pretrained", "finetuned", "output_dir"):
        if not getattr(config, key):
            raise ConfigError(f"{path}: {key} is missing, expected a path")
    return config
