"""The demo corpus's tasks as the probes evaluate them: `demo_task(corpus_root, name)`.

Each is a `TaskDefinition` (tasks/definition.py) whose train, dev and test splits are the built
corpus's (`DataConfig(type="corpus")`), whose labels are the corpus's own vocabulary or class list,
and whose head is SUPERB's downstream model scaled to the corpus (`PROBE_HEADS`).
"""

from __future__ import annotations

import os

from speechft_jax.data.config import DataConfig
from speechft_jax.data.synth import TASKS
from speechft_jax.errors import ConfigError
from speechft_jax.tasks.definition import SPLITS, HeadSpec, TaskDefinition

EVAL_TASKS = ("pr", "asr", "sid", "ks", "style")
# SUPERB's downstream models, scaled to the demo corpus: linear CTC for phones, BiLSTM CTC for text
PROBE_HEADS = {"pr": "linear", "asr": "bilstm"}


def demo_task(corpus_root: str | os.PathLike, name: str) -> TaskDefinition:
    """The corpus task `name` (one of `data.synth.TASKS`) of the corpus built at `corpus_root`."""
    if name not in TASKS:
        raise ConfigError(f"unknown corpus task {name!r}; choose one of {sorted(TASKS)}")
    kind = "ctc" if TASKS[name]["kind"] == "ctc" else "classification"
    splits = {split: DataConfig(type="corpus", corpus_dir=str(corpus_root), task=name, split=split)
              for split in SPLITS}
    # a 2-layer BiLSTM of 256 units per direction; a classifier projects to 256 before pooling
    head = HeadSpec(PROBE_HEADS.get(name, "linear"), lstm_units=256, lstm_layers=2, projection_dim=256)
    return TaskDefinition(name, kind, splits, head)
