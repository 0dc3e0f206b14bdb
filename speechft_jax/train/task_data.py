"""From a task's config to its data loader and its task object (head + loss).

`build_task_data(task_config, ...)` reads the source named by `DataConfig` (the shipped corpus,
a manifest, a Hugging Face dataset or TFDS), builds the label spec (a CTC vocabulary or a class
list, from a file or from the training split), and returns a training `AudioLoader` that yields
this process's slice of each global batch, plus the `CTCTask` / `ClassificationTask`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechft_jax.data import (
    SPEED_FACTORS, AudioLoader, AugmentConfig, ClassLabel, ClassLabels, DataError, FileSource,
    LoaderConfig, SequenceLabels, Vocabulary,
)
from speechft_jax.data.audio import MIN_SAMPLES, SAMPLE_RATE
from speechft_jax.data.augment import ViewConfig
from speechft_jax.data.lexicon import PhoneticSource, read_lexicon
from speechft_jax.models.config import ConfigError
from speechft_jax.tasks import ClassificationTask, CTCTask
from speechft_jax.train.config import CORPUS_AUDIO, SELF_SUPERVISED_KINDS, DataConfig, TaskConfig


@dataclass
class TaskData:
    """A task ready to train: its loader, its task object, and what the labels mean."""

    config: TaskConfig
    loader: AudioLoader
    task: Any  # None for a self-supervised task until the loop builds it (it needs theta_0)
    labels: Any  # Vocabulary or ClassLabels; None without labels


def _source(data: DataConfig):
    if data.type == "corpus":
        from speechft_jax.data.synth import corpus_audio, corpus_task, ensure_corpus

        root = data.corpus_dir or ensure_corpus(data.corpus)
        if data.task == CORPUS_AUDIO:
            return corpus_audio(root, data.split), None
        return corpus_task(root, data.task, data.split)
    if data.type == "manifest":
        source = FileSource.from_manifest(data.path)
        if any("split" in e.fields for e in source.examples):
            source = FileSource([e for e in source.examples if e.fields.get("split") == data.split])
            if not len(source):
                raise DataError(data.path, f"has no {data.split!r} utterances")
        return source, None
    if data.type == "hf":
        from speechft_jax.data.hf_datasets import HFDatasetSource, load_hf_dataset

        dataset = load_hf_dataset(data.path, split=data.split, config_name=data.name)
        return HFDatasetSource(dataset, audio_column=data.audio_column), None
    from speechft_jax.data.tfds_source import TFDSSource

    return TFDSSource(data.path, split=data.split, data_dir=data.data_dir, audio_key=data.audio_column), None


def _label_values(source, field: str, where: str) -> list:
    values = []
    for i in range(len(source)):
        fields = source.fields(i)
        if field not in fields:
            raise DataError(source.origin(i), f"missing label field {field!r} ({where})")
        values.append(fields[field])
    return values


def _label_spec(task: TaskConfig, source, where: str):
    data = task.data
    if task.kind == "ctc":
        if data.vocab:
            vocab = Vocabulary.load(data.vocab, kind=data.vocab_kind)
        else:
            vocab = Vocabulary.build([str(v) for v in _label_values(source, data.field, where)], kind=data.vocab_kind)
        return SequenceLabels(data.field, vocab)
    if data.classes:
        classes = ClassLabels.load(data.classes)
    elif hasattr(source, "class_names") and data.field in getattr(source, "class_names", {}):
        classes = ClassLabels(tuple(source.class_names[data.field]))
    else:
        classes = ClassLabels.build(_label_values(source, data.field, where), field_name=data.field)
    return ClassLabel(data.field, classes)


def build_task_data(task: TaskConfig, *, seed: int, normalize: bool, process_index: int,
                    process_count: int, view: ViewConfig | None = None,
                    min_samples: int = MIN_SAMPLES) -> TaskData:
    """The loader and task object of one configured task (see the module docstring); `view`
    gives every row a second, perturbed view (a `score` task); `min_samples` is the encoder's
    receptive field (a shorter utterance is a `DataError`)."""
    where = f"tasks.{task.name}"
    if task.batch_size % process_count:
        raise ConfigError(f"{where}.batch_size={task.batch_size}, expected a multiple of the "
                          f"process count {process_count}")
    source, spec = _source(task.data)
    self_supervised = task.kind in SELF_SUPERVISED_KINDS
    if self_supervised:
        spec = None
    elif task.data.lexicon:
        if task.kind != "ctc" or spec is not None:
            raise ConfigError(f"{where}.data.lexicon: only for a ctc task on a manifest, hf or tfds source")
        source = PhoneticSource(source, read_lexicon(task.data.lexicon), text_field=task.data.field)
        task = dataclasses.replace(task, data=dataclasses.replace(task.data, field="phones", vocab_kind="phone"))
    if spec is None and not self_supervised:
        spec = _label_spec(task, source, where)
    expected = SequenceLabels if task.kind == "ctc" else ClassLabel
    if not self_supervised and not isinstance(spec, expected):
        raise ConfigError(f"{where}.kind={task.kind!r}, but corpus task {task.data.task!r} has "
                          f"{'class' if expected is SequenceLabels else 'sequence'} labels")
    loader_config = LoaderConfig(
        batch_size=task.batch_size // process_count,
        num_buckets=task.num_buckets,
        max_length=None if task.max_seconds is None else int(task.max_seconds * SAMPLE_RATE),
        train=True, seed=seed, normalize=normalize, drop_remainder=True,
        augment=AugmentConfig(speed_factors=SPEED_FACTORS if task.speed_perturb else ()),
        view=view if task.kind == "score" else None, min_samples=min_samples,
    )
    loader = AudioLoader(source, [] if spec is None else [spec], loader_config, process_index=process_index,
                         process_count=process_count,
                         name=f"{where}.data ({task.data.path or task.data.task}, split {task.data.split})")
    if self_supervised:
        return TaskData(task, loader, None, None)
    if task.kind == "ctc":
        vocab = spec.vocab
        task_obj = CTCTask(task.name, vocab_size=vocab.size, blank_id=vocab.blank_id,
                           label_key=spec.key, mask_key=spec.mask_key, head_kind=task.head,
                           lstm_units=task.lstm_units, lstm_layers=task.lstm_layers,
                           dropout=task.head_dropout)
        return TaskData(task, loader, task_obj, vocab)
    task_obj = ClassificationTask(task.name, num_classes=len(spec.classes), label_key=spec.key,
                                  projection_dim=task.projection_dim)
    return TaskData(task, loader, task_obj, spec.classes)


def save_labels(task_data: TaskData, out_dir: str | os.PathLike) -> Path:
    """Write the task's vocabulary / class list next to the run (for decoding and evaluation)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(task_data.labels, Vocabulary):
        path = out_dir / f"{task_data.config.name}.vocab.json"
    else:
        path = out_dir / f"{task_data.config.name}.classes.txt"
    task_data.labels.save(path)
    return path
