"""Where a run's numbers go: `metrics.jsonl`, TensorBoard events, and the progress bar.

`MetricsLog` averages step metrics over a window and writes one JSON line per window (and the
same scalars as TensorBoard events through tensorboardX); a step's own scores (dev metrics) end
the window at that step and are written as they are, beside its averages. On resume, lines past
the restored step are dropped first, so the file reads as one uninterrupted run. Only process 0
writes.
`last_value` reads the latest window, whether this process or an earlier one (before a resume)
logged it. `LoggingConfig` is a training config's `logging` section.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from tqdm.auto import tqdm

from speechft_jax.cli import progress_bars_shown
from speechft_jax.config_loading import STEPS
from speechft_jax.files import atomic_write_bytes

METRICS_NAME = "metrics.jsonl"
logger = logging.getLogger(__name__)


def read_metrics(path) -> list[dict]:
    """The records of a `metrics.jsonl` file (or of the file in a run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_NAME
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _lines_through(path: Path, step: int) -> list[str]:
    if not path.is_file():
        return []
    return [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]


@dataclass(frozen=True)
class LoggingConfig:
    """`metrics.jsonl` every `every_steps` (averaged), TensorBoard events, a progress bar."""

    every_steps: Annotated[int, STEPS] = 10
    tensorboard: bool = True
    progress_bar: bool = True

    def build(self, out_dir, total_steps: int, start_step: int, *, enabled: bool = True) -> MetricsLog:
        """The run's metrics log in `out_dir` (written only when `enabled`: process 0)."""
        return MetricsLog(out_dir, total_steps, start_step, every=self.every_steps, tensorboard=self.tensorboard,
                          progress_bar=self.progress_bar, enabled=enabled)


class MetricsLog:
    """Window-averaged metrics to JSONL + TensorBoard, and a tqdm bar over optimizer steps."""

    def __init__(self, out_dir, total_steps: int, start_step: int, *, every: int = 10,
                 tensorboard: bool = True, progress_bar: bool = True, enabled: bool = True):
        self.out_dir = Path(out_dir)
        self.every, self.enabled = every, enabled
        self._sums: dict[str, float] = {}
        self._scores: dict[str, float] = {}  # this window's own values, written as they are
        self._count = 0
        self._writer = None
        kept = _lines_through(self.out_dir / METRICS_NAME, start_step)
        self._last = json.loads(kept[-1]) if kept else {}
        if enabled:
            atomic_write_bytes(self.out_dir / METRICS_NAME, "".join(line + "\n" for line in kept).encode())
            self._file = open(self.out_dir / METRICS_NAME, "a")
            if tensorboard:
                try:
                    from tensorboardX import SummaryWriter
                    self._writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=start_step + 1)
                except ImportError:
                    warnings.warn("tensorboardX is not installed: no TensorBoard events (metrics.jsonl is written)")
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                        disable=not (enabled and progress_bar and progress_bars_shown()))

    def add(self, step: int, metrics: dict[str, float], *, scores: dict[str, float] | None = None,
            **extra: float) -> None:
        """Record one optimizer step's metrics; write the window average every `every` steps.
        `scores` (values of this step alone, e.g. dev metrics) are not averaged: the window ends
        here and its line carries them."""
        for key, value in {**metrics, **extra}.items():
            self._sums[key] = self._sums.get(key, 0.0) + float(value)
        self._count += 1
        self._scores.update(scores or {})
        self.bar.update(1)
        if "loss" in metrics:
            self.bar.set_postfix(loss=f"{float(metrics['loss']):.4f}", refresh=False)
        if step % self.every == 0 or scores:
            self.flush(step)

    def flush(self, step: int) -> None:
        if not self._count:
            return
        record = {"step": step, **{k: v / self._count for k, v in sorted(self._sums.items())}, **self._scores}
        self._sums, self._scores, self._count = {}, {}, 0
        self._last = record
        if not self.enabled:
            return
        self._file.write(json.dumps({k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
                                     for k, v in record.items()}) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in record.items():
                if key != "step" and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()

    def last_value(self, key: str) -> float:
        """`key` in the latest window logged (NaN when none has been)."""
        return float(self._last.get(key, "nan"))  # a non-finite value is logged as a string

    def write(self, message: str) -> None:
        """A note for the run's log (process 0's); the command's console prints it above the bar."""
        if self.enabled:
            logger.info(message)

    def close(self) -> None:
        self.bar.close()
        if self.enabled:
            self._file.close()
            if self._writer is not None:
                self._writer.close()
