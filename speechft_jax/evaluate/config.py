"""What to evaluate, from YAML: the schema of `python -m speechft_jax.evaluate --config eval.yaml`.

    encoder: facebook/hubert-base-ls960   # optional: the encoder to evaluate (--encoder wins)
    root: /data/speech_commands           # optional: `data.root` of every dataset task that has none
    probe: {steps: 500, learning_rates: [1.0e-3, 1.0e-2], batch_size: 16}   # every task's default
    tasks:
      - name: ks
        kind: classification              # ctc | classification | intent | verification | diarization | qbe
        data: {type: speech_commands, test_root: /data/speech_commands_test}
        probe: {steps: 200000, learning_rates: [1.0e-4], batch_size: 32}    # this task's own
      - name: cmd
        kind: classification
        data: {type: manifest, path: commands.jsonl, field: intent}   # a `split` column: train/dev/test
        splits: {test: {path: commands_test.jsonl}}                   # one split's changes to `data`

A task is declared as a training task is (`train/config.py`): its name, kind, head and sizes,
metric, labels (`data.field`, `vocab`, `classes`, `lexicon`; built from train where no file names
them) and data, of any type the trainer reads. The probes need three splits: train is `data` as
written, dev and test are `data` with `split: dev` / `split: test`, each with its `splits:` changes
laid over it (`DataConfig.for_split`). Relative paths are looked up beside the file (and its
`base:` chain), then in the working directory. `EvalConfig.eval_tasks(config_dirs)` gives the
runner's `EvalTask`s: each task's `TaskDefinition` and probe settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Sequence

from speechft_jax.config_loading import COUNT, SEED, Range, check, config_dirs, load_config
from speechft_jax.data.config import DATASET_TYPES, DataConfig
from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.probe_settings import ProbeSettings
from speechft_jax.evaluate.superb import SUPERB_TASKS
from speechft_jax.tasks.definition import KIND_METRICS, SPLITS, HeadSpec, LabelDefinition, TaskDefinition

EVAL_KINDS = ("ctc", "classification", "intent", "verification", "diarization", "qbe")
QBE_DATA_TYPES = ("corpus", "quesst14")  # the demo corpus's keywords in its sentences, or QUESST 2014


@dataclass(frozen=True)
class EvalTask:
    """One task as the runner probes it: what it is, how its probes train, and which of SUPERB's
    tasks it stands for in the SUPERB score (None: none)."""

    definition: TaskDefinition
    probe: ProbeSettings
    superb: str | None = None

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True)
class EvalTaskConfig:
    """One evaluation task (module docstring). `head` linear or bilstm (CTC; `lstm_units` x
    `lstm_layers` per direction); a classifier projects to `projection_dim`, mean-pools over valid
    frames and applies a linear layer (an intent: one softmax per slot of `slots`, default action,
    object, location); verification's x-vector is `projection_dim` wide and embeds into as many;
    diarization's recurrent head is `lstm_layers` LSTMs of `lstm_units`. `metric`: the kind's
    default (error_rate, accuracy, eer, der, mtwv) unless named (`wer` for a CTC task over
    characters, `slot_type_f1` over slot-tagged characters). `superb`: the SUPERB task (pr, asr,
    ks, qbe, sid, asv, sd, er, ic, sf) it stands for in the SUPERB score (default: its name, when
    that is one of them). `probe`: this task's probe settings (default: the file's `probe`)."""

    name: str
    kind: Literal["ctc", "classification", "intent", "verification", "diarization", "qbe"]
    data: DataConfig
    splits: dict[str, Any] | None = None
    head: Literal["linear", "bilstm"] = "linear"
    lstm_units: Annotated[int, COUNT] = 256
    lstm_layers: Annotated[int, Range(1, 64)] = 2
    projection_dim: Annotated[int, COUNT] = 256
    metric: str | None = None
    slots: tuple[str, ...] | None = None
    superb: Literal[SUPERB_TASKS] | None = None
    probe: ProbeSettings | None = None

    def validate(self):
        check(self.name.isidentifier(), "name", self.name, "a short identifier (letters, digits, _)")
        if self.metric is not None:
            check(self.metric in KIND_METRICS[self.kind], "metric", self.metric,
                  f"one of {', '.join(KIND_METRICS[self.kind])} for a {self.kind} task")
        if self.kind != "ctc":
            check(self.head == "linear", "head", self.head, f"linear for a {self.kind} task (bilstm: ctc only)")
        if self.slots is not None:
            check(self.kind == "intent" and len(self.slots) > 0, "slots", list(self.slots),
                  "a list of label fields, for an intent task only")
        if self.kind == "qbe":
            check(self.data.type in QBE_DATA_TYPES, "data.type", self.data.type,
                  f"one of {', '.join(QBE_DATA_TYPES)} for a qbe task")
        elif self.kind in ("ctc", "classification"):  # the others read fixed fields (slots, speaker, segments)
            check(not self.data.needs_field or bool(self.data.field), "data.field", self.data.field,
                  "the name of the label column")
        for split, changes in (self.splits or {}).items():
            check(split in SPLITS, "splits", split, f"one of {', '.join(SPLITS)}")
            check(isinstance(changes, dict), f"splits.{split}", changes, "a mapping of data keys")
            self.data.for_split(split, changes)  # a bad key is an error now, not when the split is read

    @property
    def superb_task(self) -> str | None:
        """The SUPERB task this one stands for: `superb`, else its name when that is one."""
        return self.superb or (self.name if self.name in SUPERB_TASKS else None)

    def split_data(self) -> dict[str, DataConfig]:
        """train: `data` (with `splits.train`'s changes); dev and test: `data.for_split`."""
        changes = self.splits or {}
        return {split: (self.data if split == "train" and split not in changes
                        else self.data.for_split(self.data.split if split == "train" else split, changes.get(split)))
                for split in SPLITS}

    def definition(self, root: str | None = None, dirs: Sequence = ()) -> TaskDefinition:
        """The task's `TaskDefinition`: `root` fills a dataset's missing `data.root`, and relative
        paths are looked up in `dirs` (the YAML file's folders), then the working directory."""
        splits = {}
        for split, data in self.split_data().items():
            if data.type in DATASET_TYPES and not data.root and root:
                data = dataclasses.replace(data, root=root)
            if data.type in DATASET_TYPES and not data.root:
                raise ConfigError(f"task {self.name!r}: data.root is missing, expected the folder of the "
                                  f"downloaded {data.type} dataset (or a top-level root:)")
            splits[split] = data.resolved(dirs)
        head = HeadSpec(self.head, self.lstm_units, self.lstm_layers, 0.0, self.projection_dim)
        labels = LabelDefinition.of(splits["train"], slots=tuple(self.slots or ()))
        return TaskDefinition(self.name, self.kind, splits, head, labels, self.metric or "")


@dataclass(frozen=True)
class EvalConfig:
    """An evaluation file (module docstring)."""

    tasks: tuple[EvalTaskConfig, ...]
    encoder: str | None = None
    root: str | None = None
    probe: ProbeSettings = dataclasses.field(default_factory=ProbeSettings)
    seed: Annotated[int, SEED] = 0

    def validate(self):
        check(len(self.tasks) > 0, "tasks", list(self.tasks), "at least one task")
        names = [t.name for t in self.tasks]
        check(len(set(names)) == len(names), "tasks", names, "distinct task names")

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    def eval_tasks(self, dirs: Sequence = (), names: Sequence[str] | None = None) -> list[EvalTask]:
        """The tasks named (default: all, in file order) as `EvalTask`s; an unknown name is a
        one-line `ConfigError` listing the file's tasks."""
        by_name = {t.name: t for t in self.tasks}
        chosen = list(names) if names else list(by_name)
        for name in chosen:
            if name not in by_name:
                raise ConfigError(f"task {name!r}: not in the evaluation file (it has {', '.join(by_name)})")
        return [EvalTask(by_name[n].definition(self.root, dirs), by_name[n].probe or self.probe, by_name[n].superb_task)
                for n in chosen]


def load_eval_config(path, overrides=()) -> tuple[EvalConfig, list]:
    """`(EvalConfig, the folders its relative paths are looked up in)` of the YAML file at `path`
    with `key=value` overrides."""
    return load_config(EvalConfig, path, overrides), config_dirs(path)
