"""What a task is, for training and evaluation alike: `TaskDefinition`, frozen once built.

A task is its name, its kind (ctc, classification, SUPERB's intent, verification and diarization,
the probes' qbe, or the self-supervised hubert and score), the
head on top of the encoder (`HeadSpec`), the metric it is scored by, how its labels are read
(`LabelDefinition`: the source's own, a vocabulary or class file, or built from the train split)
and a data source per split (`splits`: "train", "dev", "test", each a `DataConfig`; any may be
absent). The trainer gets its definitions from its YAML (`TaskConfig.definition()`,
train/config.py); the probes get the demo corpus's (`evaluate/demo_tasks.py`).
`definition.open(split)` reads a split: its audio source and its label spec. Splits that read the
same manifest or audio folder take their utterances by its `split` field (sub-folder); without
one, that is an error for every split rather than training on the dev and test utterances.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Mapping

from speechft_jax.data.config import DataConfig
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import (
    ClassGroupLabels, ClassLabel, SequenceLabels, SpeakerActivityLabels, TrialLabels,
)
from speechft_jax.data.lexicon import PhoneticSource, read_lexicon
from speechft_jax.data.trials import read_trials
from speechft_jax.data.vocab import ClassLabels, Vocabulary
from speechft_jax.errors import ConfigError

SELF_SUPERVISED_KINDS = ("hubert", "score")
# qbe: query-by-example detection, evaluated without training (evaluate/qbe.py); intent: one class
# per slot (action, object, location); verification: speaker embeddings scored on trials;
# diarization: the frame-level activity of two speakers. The last four are evaluation kinds only.
TASK_KINDS = ("ctc", "classification", "intent", "verification", "diarization", "qbe") + SELF_SUPERVISED_KINDS
INTENT_SLOTS = ("action", "object", "location")  # Fluent Speech Commands' slots, an intent's default
SPLITS = ("train", "dev", "test")
# how a task of each kind is scored: the probes' metric, the trainer's loss for self-supervised ones
METRICS = {"ctc": "error_rate", "classification": "accuracy", "intent": "accuracy", "verification": "eer",
           "diarization": "der", "qbe": "mtwv", "hubert": "loss", "score": "loss"}
# the metrics a task of each kind may name: a CTC task scores token error rate (PER for phones, CER
# for characters), with a character vocabulary WER over the words its word delimiter separates, or
# over slot-tagged characters slot filling's slot-type F1 (the slot-value CER beside it)
KIND_METRICS = {"ctc": ("error_rate", "wer", "slot_type_f1"), "classification": ("accuracy",),
                "intent": ("accuracy",), "verification": ("eer",), "diarization": ("der",), "qbe": ("mtwv",),
                "hubert": ("loss",), "score": ("loss",)}
LEXICON_FIELD = "phones"  # the field a lexicon turns a word transcription into (data/lexicon.py)


@dataclass(frozen=True)
class HeadSpec:
    """The head on the encoder: for ctc, `kind` linear or bilstm (`lstm_units` x `lstm_layers` per
    direction, `dropout` between them); for classification, project to `projection_dim`, mean-pool
    over valid frames, linear."""

    kind: Literal["linear", "bilstm"] = "linear"
    lstm_units: int = 256
    lstm_layers: int = 3
    dropout: float = 0.0
    projection_dim: int = 256


def _label_values(source, field: str, where: str) -> list:
    values = []
    for i in range(len(source)):
        fields = source.fields(i)
        if field not in fields:
            raise DataError(source.origin(i), f"missing label field {field!r} ({where})")
        values.append(fields[field])
    return values


def _same_path(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


@dataclass(frozen=True)
class LabelDefinition:
    """How a task's labels are read where its source does not fix them (a corpus task does):
    `field` names the label column; a CTC vocabulary comes from the `vocab` file (tokens split as
    `vocab_kind` says) or is built from the train split; a class list from the `classes` file, the
    source's own class names (a Hugging Face ClassLabel), or the train split's values. `lexicon`
    (a `WORD PH1 PH2 ...` file) turns the words of `field` into phones, which are then the labels.
    An intent reads one class per field of `slots` (default `INTENT_SLOTS`), each class list built
    from the train split; verification trains on the speaker ids of `field` (default `speaker`)
    and is scored on its dev and test splits' trial lists (the source's own `TrialLabels`);
    diarization reads speaker segments from `field` (default `segments`)."""

    field: str | None = None
    vocab: str | None = None
    vocab_kind: Literal["phone", "char", "word"] = "phone"
    classes: str | None = None
    lexicon: str | None = None
    lexicon_stress: bool = False
    slots: tuple[str, ...] = ()

    @classmethod
    def of(cls, data: DataConfig, **settings) -> "LabelDefinition":
        """The label settings of a `data` section (its keys of the same names), and `settings`
        a data section has no key for (`slots`)."""
        return cls(**{f.name: getattr(data, f.name) for f in dataclasses.fields(cls) if hasattr(data, f.name)},
                   **settings)

    def spec(self, kind: str, train_source, where: str):
        """The `SequenceLabels` (ctc) or `ClassLabel` of a task of `kind`, read from the files named
        or built from `train_source` (the train split, lexicon applied)."""
        field = LEXICON_FIELD if self.lexicon else self.field
        vocab_kind = "phone" if self.lexicon else self.vocab_kind
        if kind == "intent":
            slots = self.slots or INTENT_SLOTS
            return ClassGroupLabels(tuple(slots), tuple(ClassLabels.build(_label_values(train_source, slot, where),
                                                                          field_name=slot) for slot in slots))
        if kind == "diarization":
            return SpeakerActivityLabels(field or "segments")
        if kind == "verification":
            field = field or "speaker"
        if kind == "ctc":
            if self.vocab:
                vocab = Vocabulary.load(self.vocab, kind=vocab_kind)
            else:
                vocab = Vocabulary.build([str(v) for v in _label_values(train_source, field, where)], kind=vocab_kind)
            return SequenceLabels(field, vocab)
        if self.classes:
            classes = ClassLabels.load(self.classes)
        elif hasattr(train_source, "class_names") and field in getattr(train_source, "class_names", {}):
            classes = ClassLabels(tuple(train_source.class_names[field]))
        else:
            classes = ClassLabels.build(_label_values(train_source, field, where), field_name=field)
        return ClassLabel(field, classes)


# the labels a task of each kind reads (verification: class ids to train on, trials to score)
EXPECTED_LABELS = {"ctc": SequenceLabels, "intent": ClassGroupLabels, "diarization": SpeakerActivityLabels}
LABEL_NAMES = {SequenceLabels: "sequence", ClassLabel: "class", ClassGroupLabels: "slot-group",
               SpeakerActivityLabels: "speaker-activity", TrialLabels: "trial-list"}


@dataclass(frozen=True)
class TaskDefinition:
    """One task (module docstring). `splits` becomes a read-only mapping; `metric` defaults to the
    kind's (`METRICS`)."""

    name: str
    kind: Literal["ctc", "classification", "intent", "verification", "diarization", "qbe", "hubert", "score"]
    splits: Mapping[str, DataConfig]
    head: HeadSpec = HeadSpec()
    labels: LabelDefinition = LabelDefinition()
    metric: str = ""

    def __post_init__(self):
        if self.kind not in TASK_KINDS:
            raise ConfigError(f"task {self.name!r}: kind={self.kind!r}, expected one of {', '.join(TASK_KINDS)}")
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown:
            raise ConfigError(f"task {self.name!r}: splits {unknown}, expected some of {', '.join(SPLITS)}")
        # frozen all the way down: the caller's dict is copied, and the copy cannot be changed; a
        # folder source reads the labels of the task's kind (DataConfig.for_kind) into the labels' field
        splits = {name: data.for_kind(self.kind) for name, data in self.splits.items()}
        object.__setattr__(self, "splits", MappingProxyType(splits))
        train = splits.get("train")
        if train is not None and train.type == "folder" and self.labels.field is None:
            object.__setattr__(self, "labels", dataclasses.replace(self.labels, field=train.field))
        if self.kind not in SELF_SUPERVISED_KINDS + ("qbe",) and any(d.labels_from == "none" for d in splits.values()):
            raise ConfigError(f"task {self.name!r}: data.labels_from='none', expected folder or sidecar "
                              f"for a {self.kind} task")
        object.__setattr__(self, "metric", self.metric or METRICS[self.kind])
        if self.metric not in KIND_METRICS[self.kind]:
            raise ConfigError(f"task {self.name!r}: metric={self.metric!r}, expected one of "
                              f"{', '.join(KIND_METRICS[self.kind])} for a {self.kind} task")

    @property
    def self_supervised(self) -> bool:
        return self.kind in SELF_SUPERVISED_KINDS

    def open(self, split: str = "train", where: str | None = None):
        """`(source, label spec)` of `split`: its audio (with a lexicon's phones added) and the
        labels the task reads from it (the source's own, else as `labels` says, built from the
        train split where no file names them); the spec is None for a self-supervised task.
        `where` names the task in errors (default: its name)."""
        where = where or self.name
        source, spec = self._source(split, where)
        if self.self_supervised:
            return source, None
        if spec is None:
            train_source = source if split == "train" else self._source("train", where)[0]
            spec = self.labels.spec(self.kind, train_source, where)
        expected = EXPECTED_LABELS.get(self.kind, ClassLabel)
        if self.kind == "verification" and split != "train":
            expected = TrialLabels
        if not isinstance(spec, expected):
            data = self.splits[split]
            hint = (" (a trial list: data.trials under splits.dev / splits.test)"
                    if expected is TrialLabels and data.type in ("manifest", "folder") else "")
            raise ConfigError(f"{where}.kind={self.kind!r}, but {data.type} data"
                              f"{f' task {data.task!r}' if data.task else ''} gives {LABEL_NAMES[type(spec)]} "
                              f"labels for its {split} split, expected {LABEL_NAMES[expected]} labels{hint}")
        return source, spec

    def _source(self, split: str, where: str):
        """`(source, the source's own label spec or None)` of `split`, a lexicon applied."""
        if split not in self.splits:
            raise ConfigError(f"{where}: no {split!r} split (it has {', '.join(self.splits) or 'none'})")
        data = self.splits[split]
        trials = getattr(data, "trials", None)
        if self.kind == "verification" and split != "train" and trials and data.type in ("manifest", "folder"):
            # a trial list names its own utterances, relative to `root` (default: the list's folder)
            return read_trials(trials, data.root or Path(trials).parent)
        # a manifest or folder that two splits read must itself say which utterance is whose
        shared = data.type in ("manifest", "folder") and any(
            other.type == data.type and _same_path(other.path, data.path)
            for name, other in self.splits.items() if name != split)
        source, spec = data.source(shared=shared)
        if self.labels.lexicon and not self.self_supervised:
            if self.kind != "ctc" or spec is not None:
                raise ConfigError(f"{where}.data.lexicon: only for a ctc task on a manifest, hf or tfds source")
            lexicon = read_lexicon(self.labels.lexicon, strip_stress=not self.labels.lexicon_stress)
            source = PhoneticSource(source, lexicon, text_field=self.labels.field)
        return source, spec
