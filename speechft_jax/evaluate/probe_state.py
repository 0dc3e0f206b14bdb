"""A probe run's work folder: exact-resume checkpoints, the fingerprint that guards them, metrics.

`ProbeWorkDir(path, fingerprint, name, checkpoint_every)` keeps `probe.json` (the fingerprint of the
probes' task, settings, encoders and data), `checkpoints/` (an Orbax `CheckpointManager`, the latest
two kept: the stacked probe parameters, optimizer states, best-dev parameters and scores, at a
step) and `metrics.jsonl` (one JSON line per logged step: the train loss of every probe, and at
each evaluation its dev metric, as training's metrics log writes them). A folder holding another
fingerprint is started over with a warning, never resumed onto other data; lines past the restored
step are dropped, so the log reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from speechft_jax.files import atomic_write_bytes, atomic_write_json

META_NAME, CHECKPOINTS, METRICS_NAME = "probe.json", "checkpoints", "metrics.jsonl"
logger = logging.getLogger(__name__)


class ProbeWorkDir:
    """The work folder of one task's probes (module docstring); `checkpoint_every` 0: no checkpoints."""

    def __init__(self, path, fingerprint: str, name: str, checkpoint_every: int):
        self.path, self.every = Path(path).absolute(), checkpoint_every
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            kept = json.loads((self.path / META_NAME).read_text()).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            kept = None
        if kept != fingerprint:
            if kept is not None or (self.path / CHECKPOINTS).exists():
                logger.warning(f"probe {name}: {self.path} holds probes of other data, encoders or settings; "
                               "starting over")
            shutil.rmtree(self.path / CHECKPOINTS, ignore_errors=True)
            (self.path / METRICS_NAME).unlink(missing_ok=True)
            atomic_write_json(self.path / META_NAME, {"task": name, "fingerprint": fingerprint})
        self.manager = None
        if checkpoint_every:
            options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True, enable_async_checkpointing=False)
            self.manager = ocp.CheckpointManager(self.path / CHECKPOINTS, options=options)

    def restore(self, template) -> tuple[object, int]:
        """`(state, step)` of the latest checkpoint, in `template`'s tree, or `(template, 0)`."""
        step = None if self.manager is None else self.manager.latest_step()
        if step is None:
            return template, 0
        # device arrays come back as device arrays, host (numpy) ones as host ones, in their dtype
        abstract = jax.tree_util.tree_map(
            lambda x: x if isinstance(x, np.ndarray) else jax.ShapeDtypeStruct(x.shape, x.dtype), template)
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract)), step

    def save(self, step: int, state, *, force: bool = False) -> None:
        """A checkpoint of `state` at `step` when one is due (every `checkpoint_every` steps) or `force`d."""
        if self.manager is not None and (force or step % self.every == 0) and step != self.manager.latest_step():
            self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

    def close(self) -> None:
        if self.manager is not None:
            self.manager.close()


class ProbeMetrics:
    """`metrics.jsonl` lines of the probes `names` (one per encoder and learning rate): the train loss
    averaged over `every` steps, and the dev metric of each evaluation. `path` None: nothing written."""

    def __init__(self, path, start_step: int, names: list[str], metric: str, every: int = 10):
        self.names, self.metric, self.every = names, metric, every
        self.sums, self.count, self.file = 0.0, 0, None
        if path is not None:
            path = Path(path) / METRICS_NAME
            kept = []
            if path.is_file():
                kept = [line for line in path.read_text().splitlines()
                        if line.strip() and json.loads(line)["step"] <= start_step]
            atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode())
            self.file = open(path, "a")

    def add(self, step: int, losses, dev=None) -> None:
        """One step's losses `[K, n_lr]` (a device array: read only when a line is due) and, at an
        evaluation, the dev metrics `[K, n_lr]`."""
        if self.file is None:
            return
        self.sums, self.count = self.sums + losses, self.count + 1
        if step % self.every and dev is None:
            return
        record = {"step": step}
        mean = np.asarray(self.sums).reshape(-1) / self.count
        self.sums, self.count = 0.0, 0
        record.update({f"train_loss/{name}": float(v) for name, v in zip(self.names, mean)})
        if dev is not None:
            record.update({f"dev_{self.metric}/{name}": float(v) for name, v in zip(self.names, np.reshape(dev, -1))})
        self.file.write(json.dumps({k: v if not isinstance(v, float) or math.isfinite(v) else str(v)
                                    for k, v in record.items()}) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
