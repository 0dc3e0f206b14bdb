"""How SUPERB-style probes train: steps and batch size per run, and the learning-rate grid picked on dev.

Shared by `python -m speechft_jax.evaluate` (its `--steps`, `--lr`, `--batch-size`) and the sweep
config's `probe:` section; `validate()` raises a one-line `ConfigError` (steps at most 10**9, batch
size at most 65536, finite learning rates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from speechft_jax.config_loading import COUNT, STEPS, check_fields
from speechft_jax.models.config import ConfigError


@dataclass(frozen=True)
class ProbeSettings:
    steps: Annotated[int, STEPS] = 500
    learning_rates: tuple[float, ...] = (1e-3, 1e-2)
    batch_size: Annotated[int, COUNT] = 16

    def validate(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps={self.steps}, batch_size={self.batch_size}: expected positive integers")
        if not self.learning_rates or not all(0 < lr < math.inf for lr in self.learning_rates):
            raise ConfigError(f"learning_rates={list(self.learning_rates)}: expected one or more positive numbers")
        check_fields(self)  # the upper bounds, for settings made from command-line flags
