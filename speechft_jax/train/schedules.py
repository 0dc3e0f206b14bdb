"""Learning-rate schedules.

The stable fine-tuning schedule of Speech-FT's official configs: linear warm-up over the first
10 % of steps, constant for the next 40 %, linear decay to 0 over the last 50 %.
"""

from __future__ import annotations

import optax


def stable_finetuning_schedule(peak_lr: float, total_steps: int, warmup_fraction: float = 0.1,
                               hold_fraction: float = 0.4) -> optax.Schedule:
    """Warm up linearly to `peak_lr`, hold it, then decay linearly to 0 at `total_steps`."""
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps}, expected a positive integer")
    if not (0.0 <= warmup_fraction and 0.0 <= hold_fraction and warmup_fraction + hold_fraction <= 1.0):
        raise ValueError(f"warmup_fraction={warmup_fraction}, hold_fraction={hold_fraction}: "
                         "expected non-negative fractions that sum to at most 1")
    warmup = int(round(warmup_fraction * total_steps))
    hold = int(round(hold_fraction * total_steps))
    decay = max(total_steps - warmup - hold, 1)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak_lr, max(warmup, 1)),
         optax.constant_schedule(peak_lr),
         optax.linear_schedule(peak_lr, 0.0, decay)],
        boundaries=[warmup, warmup + hold],
    )
