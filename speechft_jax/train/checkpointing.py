"""Orbax checkpoints of a run: the train state and the data loaders' positions, saved together.

`RunCheckpoints` wraps an Orbax `CheckpointManager` under `<output_dir>/checkpoints`: periodic
(optionally async) saves every `every_steps` optimizer steps, the last `keep` kept. Orbax writes
each step into a temporary directory and renames it when complete, so a run killed mid-save
leaves the previous checkpoint intact. `restore` reads the latest complete step straight into
the shardings of an abstract state, so resuming never materialises the state twice.
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from speechft_jax.checkpoints.errors import CheckpointError

STATE, LOADERS = "state", "loaders"


class RunCheckpoints:
    def __init__(self, directory, *, every_steps: int, keep: int, async_save: bool = True):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, save_interval_steps=every_steps,
            enable_async_checkpointing=async_save, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=(STATE, LOADERS))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, loader_states: dict, *, force: bool = False) -> bool:
        """Save if `step` is due (or `force`); returns whether a save started."""
        return self.manager.save(step, args=ocp.args.Composite(**{
            STATE: ocp.args.StandardSave(state), LOADERS: ocp.args.JsonSave(loader_states)}), force=force)

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
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def abstract_with_shardings(abstract_tree, shardings):
    """`ShapeDtypeStruct`s that carry the target shardings (what Orbax restores into)."""
    return jax.tree_util.tree_map(
        lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        abstract_tree, shardings)
