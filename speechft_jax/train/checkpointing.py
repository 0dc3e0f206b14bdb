"""Orbax checkpoints of a run: the train state and the data loaders' positions, saved together.

`RunCheckpoints` wraps an Orbax `CheckpointManager` under `<output_dir>/checkpoints`: periodic
(optionally async) saves every `every_steps` optimizer steps, the last `keep` kept. Orbax writes
each step into a temporary directory and renames it when complete, so a run killed mid-save
leaves the previous checkpoint intact. `restore` reads the latest complete step straight into
the shardings of an abstract state, so resuming never materialises the state twice.

A save that fails (an unwritable or full disk), whether it fails at once or in the background
while the next steps run, is a one-line `CheckpointError` at the next `save` or `wait`; the last
complete checkpoint stays on disk. Step directories are created on the calling thread, so a failure
to create one raises there instead of leaving Orbax's background threads waiting for minutes.
`CheckpointConfig` is a training config's `checkpoint` section.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import jax
import orbax.checkpoint as ocp

from speechft_jax.config_loading import COUNT, STEPS
from speechft_jax.errors import CheckpointError

STATE, LOADERS = "state", "loaders"


def _not_an_orbax_error(record: logging.LogRecord) -> bool:
    # Orbax logs a failed background save with its traceback, three times over; the same failure
    # reaches the caller as one `CheckpointError` line at the next save or wait
    return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


def saved_steps(directory) -> list[int]:
    """The complete checkpoints under `directory`, sorted (Orbax renames a step's temporary
    directory to the bare step number only once everything in it is written)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_dir())


@dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints under `<output_dir>/checkpoints`: every `every_steps`, keep the last `keep`."""

    every_steps: Annotated[int, STEPS] = 500
    keep: Annotated[int, COUNT] = 2
    async_save: bool = True

    def build(self, directory) -> RunCheckpoints:
        """The run's checkpoints in `directory`."""
        return RunCheckpoints(directory, every_steps=self.every_steps, keep=self.keep, async_save=self.async_save)


class RunCheckpoints:
    def __init__(self, directory, *, every_steps: int, keep: int, async_save: bool = True):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, save_interval_steps=every_steps,
            enable_async_checkpointing=async_save, create=True,
            async_options=ocp.AsyncOptions(create_directories_asynchronously=False))
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=(STATE, LOADERS))
        self._failed = False  # a save failed and was reported: later waits have nothing to add
        logging.getLogger("absl").addFilter(_not_an_orbax_error)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, loader_states: dict, *, force: bool = False) -> bool:
        """Save if `step` is due (or `force`); returns whether a save started. Raises
        `CheckpointError` (one line) when this save or an earlier async one failed."""
        try:
            return self.manager.save(step, args=ocp.args.Composite(**{
                STATE: ocp.args.StandardSave(state), LOADERS: ocp.args.JsonSave(loader_states)}), force=force)
        except (OSError, ValueError) as err:  # tensorstore reports I/O errors as ValueError
            raise self._save_failed(err) from err

    def _save_failed(self, err: Exception) -> CheckpointError:
        self._failed = True
        if isinstance(err, OSError) and err.strerror:
            reason = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
        else:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        kept = saved_steps(self.directory)
        return CheckpointError(f"{self.directory}: saving a checkpoint failed ({reason}); stopped, the last "
                               f"complete checkpoint is " + (f"step {kept[-1]}" if kept else "none"))

    def restore(self, abstract_state, step: int | None = None):
        """`(state, loader_states, step)` of `step` (default: the latest complete one).

        A saved state whose tree differs from `abstract_state` is a one-line `CheckpointError` naming
        the step directory and the first differing path, not Orbax's multi-line report.
        """
        step = self.latest_step() if step is None else step
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(**{
                STATE: ocp.args.StandardRestore(abstract_state), LOADERS: ocp.args.JsonRestore()}))
        except ValueError as err:
            paths = re.findall(r"^(\S+):$", str(err), flags=re.MULTILINE)
            if "tree structures do not match" not in str(err) or not paths:
                raise
            raise CheckpointError(
                f"{self.directory / str(step)}: the saved train state does not fit this run's "
                f"({len(paths)} paths differ, first {paths[0]}); it was written by another version of "
                "speechft-jax: resume it with that version, or start a new output_dir") from None
        return restored[STATE], restored[LOADERS], step

    def wait(self) -> None:
        """Block until the async save in flight is written; `CheckpointError` if it failed."""
        if self._failed:
            return
        try:
            self.manager.wait_until_finished()
        except (OSError, ValueError) as err:
            raise self._save_failed(err) from err

    def close(self) -> None:
        try:
            self.manager.close()
        except (OSError, ValueError) as err:
            if not self._failed:  # a failure nobody waited for yet is still news
                raise self._save_failed(err) from err
        finally:
            logging.getLogger("absl").removeFilter(_not_an_orbax_error)


def abstract_with_shardings(abstract_tree, shardings):
    """`ShapeDtypeStruct`s that carry the target shardings (what Orbax restores into)."""
    return jax.tree_util.tree_map(
        lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        abstract_tree, shardings)
