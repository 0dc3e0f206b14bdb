"""How SUPERB-style probes train: steps and batch size per run, and the learning-rate grid picked on dev.

Shared by `python -m speechft_jax.evaluate` (its `--steps`, `--lr`, `--batch-size`, `--probe-mode`,
`--cache-budget-gb`) and the sweep config's `probe:` section. `eval_every`: dev is scored every so
many steps (and at the end; 0 = at the end only) and each probe keeps its best-dev parameters;
`checkpoint_every`: probe checkpoints in the work folder (0 = none). `mode`: where the probes' hidden
states come from (`evaluate/probe_training.py`): `cached` on disk, computed `on_the_fly` in the
probes' step, or `auto`: cached when the features fit `cache_budget_gb`. `validate()` raises a
one-line `ConfigError` (steps at most 10**9, batch size at most 65536, finite learning rates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from speechft_jax.config_loading import COUNT, NON_NEGATIVE, STEPS, Range, check_fields
from speechft_jax.models.config import ConfigError

PROBE_MODES = ("auto", "cached", "on_the_fly")
DEFAULT_CACHE_BUDGET_GB = 50.0  # features on disk above this: the probes compute them on the fly


@dataclass(frozen=True)
class ProbeSettings:
    steps: Annotated[int, STEPS] = 500
    learning_rates: tuple[float, ...] = (1e-3, 1e-2)
    batch_size: Annotated[int, COUNT] = 16
    num_buckets: Annotated[int, Range(1, 64)] = 4  # padded lengths per split: compilations vs padding
    eval_every: Annotated[int, Range(0, 10**9)] = 0
    checkpoint_every: Annotated[int, Range(0, 10**9)] = 0
    mode: Literal["auto", "cached", "on_the_fly"] = "auto"
    cache_budget_gb: Annotated[float, NON_NEGATIVE] = DEFAULT_CACHE_BUDGET_GB

    def validate(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps={self.steps}, batch_size={self.batch_size}: expected positive integers")
        if not self.learning_rates or not all(0 < lr < math.inf for lr in self.learning_rates):
            raise ConfigError(f"learning_rates={list(self.learning_rates)}: expected one or more positive numbers")
        if self.mode not in PROBE_MODES:
            raise ConfigError(f"mode={self.mode!r}: expected one of {', '.join(PROBE_MODES)}")
        check_fields(self)  # the upper bounds, for settings made from command-line flags
