"""The demo corpus's tasks as the probes evaluate them: `demo_task(corpus_root, name)`.

Each is a `TaskDefinition` (tasks/definition.py) whose train, dev and test splits are the built
corpus's (`DataConfig(type="corpus")`), whose labels are the corpus's own vocabulary, class lists,
trial lists or speaker segments, and whose head is SUPERB's downstream model scaled to the corpus
(`PROBE_HEADS`); `qbe` is query-by-example detection of the keyword clips in the sentences. Each
stands for one of SUPERB's ten tasks in the SUPERB score (`SUPERB_STAND_INS`: the speaking-style
task for emotion recognition, the rest by name). They are the tasks of
`configs/eval/demo.yaml`, built in for `evaluate --tasks` without a file (`demo_eval_tasks`).
"""

from __future__ import annotations

import os

from typing import Sequence

from speechft_jax.data.config import DataConfig
from speechft_jax.data.synth import TASKS
from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.config import EvalTask
from speechft_jax.evaluate.probe_settings import ProbeSettings
from speechft_jax.tasks.definition import SPLITS, HeadSpec, TaskDefinition

EVAL_TASKS = ("pr", "asr", "sid", "ks", "style", "ic", "sf", "asv", "sd")
QBE = "qbe"  # its queries are the keyword task's clips
# SUPERB's downstream models, scaled to the demo corpus: linear CTC for phones, BiLSTM CTC for text
# and slot-tagged text
PROBE_HEADS = {"pr": "linear", "asr": "bilstm", "sf": "bilstm"}
# the SUPERB task each demo task stands for
SUPERB_STAND_INS = {"pr": "pr", "asr": "asr", "sid": "sid", "ks": "ks", "style": "er", "ic": "ic", "sf": "sf",
                    "asv": "asv", "sd": "sd", QBE: "qbe"}
# the corpus's label kinds as task kinds ("class" is a classification task's); ASR's and slot
# filling's metrics (SUPERB's: WER, slot-type F1)
CORPUS_KINDS = {"class": "classification"}
METRICS = {"asr": "wer", "sf": "slot_type_f1"}


def demo_task(corpus_root: str | os.PathLike, name: str) -> TaskDefinition:
    """The corpus task `name` (one of `data.synth.TASKS`, or `qbe`) of the corpus built at `corpus_root`."""
    # a 2-layer BiLSTM of 256 units per direction (diarization: one LSTM of 256); a classifier
    # projects to 256 before pooling, the x-vector is 256 wide
    head = HeadSpec(PROBE_HEADS.get(name, "linear"), lstm_units=256, lstm_layers=1 if name == "sd" else 2,
                    projection_dim=256)
    if name == QBE:
        return TaskDefinition(QBE, "qbe", {split: DataConfig(type="corpus", corpus_dir=str(corpus_root), task="ks",
                                                             split=split) for split in SPLITS}, head)
    if name not in TASKS:
        raise ConfigError(f"unknown corpus task {name!r}; choose one of {sorted(TASKS)}")
    kind = CORPUS_KINDS.get(TASKS[name]["kind"], TASKS[name]["kind"])
    splits = {split: DataConfig(type="corpus", corpus_dir=str(corpus_root), task=name, split=split)
              for split in SPLITS}
    return TaskDefinition(name, kind, splits, head, metric=METRICS.get(name, ""))


def demo_eval_tasks(corpus_root: str | os.PathLike, names: Sequence[str], probe: ProbeSettings) -> list[EvalTask]:
    """The demo tasks `names` (of `EVAL_TASKS` and `qbe`) as `EvalTask`s probed with `probe`."""
    known = EVAL_TASKS + (QBE,)
    for name in names:
        if name not in known:
            raise ConfigError(f"task {name!r}: expected one of {', '.join(known)} (the demo corpus's tasks; "
                              "evaluate other tasks with --config eval.yaml)")
    return [EvalTask(demo_task(corpus_root, name), probe, SUPERB_STAND_INS[name]) for name in names]
