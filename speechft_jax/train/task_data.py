"""From a task's config to its data loader and its task object (head + loss).

`build_task_data(task_config, ...)` opens the train split of the task's definition
(`TaskConfig.definition()`, tasks/definition.py: the shipped corpus, a manifest, an audio folder,
a Hugging Face dataset or TFDS, and its label spec, a CTC vocabulary or a class list from a file or
from the training split), and returns a training `AudioLoader` that yields this process's slice of each
global batch, plus the `CTCTask` / `ClassificationTask` with the definition's head, or for a
self-supervised task the task its objective's `prepare` builds from the source (objectives/).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from speechft_jax.data import SPEED_FACTORS, AudioLoader, AugmentConfig, LoaderConfig, Vocabulary
from speechft_jax.data.audio import MIN_SAMPLES, SAMPLE_RATE
from speechft_jax.data.augment import ViewConfig
from speechft_jax.models.config import ConfigError
from speechft_jax.tasks import ClassificationTask, CTCTask
from speechft_jax.train.config import TaskConfig


@dataclass(frozen=True)
class TaskData:
    """A task ready to train: its loader, its task object, what the labels mean, and the frozen
    arrays a self-supervised task's loss reads (a teacher, k-means centroids)."""

    config: TaskConfig
    loader: AudioLoader
    task: Any
    labels: Any  # Vocabulary or ClassLabels; None without labels
    frozen_arrays: dict = dataclasses.field(default_factory=dict)


def build_task_data(task: TaskConfig, *, seed: int, normalize: bool, process_index: int,
                    process_count: int, view: ViewConfig | None = None,
                    min_samples: int = MIN_SAMPLES, prepare: Callable | None = None) -> TaskData:
    """The loader and task object of one configured task (see the module docstring); `view`
    gives every row a second, perturbed view (a `score` task); `min_samples` is the encoder's
    receptive field (a shorter utterance is a `DataError`); `prepare(task_config, source) ->
    (task, frozen arrays)` builds a self-supervised task (its objective's `prepare`, bound to the
    run's theta_0)."""
    where = f"tasks.{task.name}"
    if task.batch_size % process_count:
        raise ConfigError(f"{where}.batch_size={task.batch_size}, expected a multiple of the "
                          f"process count {process_count}")
    definition = task.definition()
    source, spec = definition.open("train", where)
    train = definition.splits["train"]
    loader_config = LoaderConfig(
        batch_size=task.batch_size // process_count,
        num_buckets=task.num_buckets,
        max_length=None if task.max_seconds is None else int(task.max_seconds * SAMPLE_RATE),
        train=True, seed=seed, normalize=normalize, drop_remainder=True,
        augment=AugmentConfig(speed_factors=SPEED_FACTORS if task.speed_perturb else ()),
        view=view if definition.kind == "score" else None, min_samples=min_samples,
    )
    loader = AudioLoader(source, [] if spec is None else [spec], loader_config, process_index=process_index,
                         process_count=process_count,
                         name=f"{where}.data ({train.path or train.task}, split {train.split})")
    if definition.self_supervised:
        task_obj, frozen_arrays = prepare(task, source)
        return TaskData(task, loader, task_obj, None, frozen_arrays)
    head = definition.head
    if definition.kind == "ctc":
        vocab = spec.vocab
        task_obj = CTCTask(definition.name, vocab_size=vocab.size, blank_id=vocab.blank_id,
                           label_key=spec.key, mask_key=spec.mask_key, head_kind=head.kind,
                           lstm_units=head.lstm_units, lstm_layers=head.lstm_layers,
                           dropout=head.dropout)
        return TaskData(task, loader, task_obj, vocab)
    task_obj = ClassificationTask(definition.name, num_classes=len(spec.classes), label_key=spec.key,
                                  projection_dim=head.projection_dim)
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
