"""Reading a built corpus back: the source and label spec of one task and split.

    root = ensure_corpus("demo")
    source, label = corpus_task(root, "pr", "train")   # FileSource, SequenceLabels
    loader = AudioLoader(source, [label], LoaderConfig(batch_size=8))
"""

from __future__ import annotations

import os
from pathlib import Path

from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import ClassLabel, LabelSpec, SequenceLabels
from speechft_jax.data.source import FileSource
from speechft_jax.data.synth.build import TASKS
from speechft_jax.data.vocab import ClassLabels, Vocabulary


def require_built_corpus(root: str | os.PathLike, name: str = "corpus_dir") -> Path:
    """`root` as a `Path` when a corpus was built there (its `corpus.json`), else a one-line
    `DataError` naming it as `name`: any other folder would fail later on some file of the layout."""
    root = Path(root)
    if not (root / "corpus.json").is_file():
        raise DataError(f"{name}={root}", "not a built demo corpus (it has no corpus.json); build one with "
                                          "`python -m speechft_jax.data.synth --preset demo --out DIR`, or "
                                          "declare your own data in an evaluation file (--config)")
    return root


def task_labels(root: str | os.PathLike, task: str, key: str | None = None) -> LabelSpec:
    """The label spec of a corpus task; key defaults to `labels` (CTC) or `label` (class)."""
    if task not in TASKS:
        raise ValueError(f"unknown corpus task {task!r}; choose one of {sorted(TASKS)}")
    spec, root = TASKS[task], require_built_corpus(root)
    if spec["kind"] == "ctc":
        kind = "char" if spec["field"] == "text" else "phone"
        vocab = Vocabulary.load(root / spec["vocab"], kind=kind)
        return SequenceLabels(spec["field"], vocab, key=key or "labels")
    return ClassLabel(spec["field"], ClassLabels.load(root / spec["classes"]), key=key or "label")


def corpus_task(root: str | os.PathLike, task: str, split: str, *,
                key: str | None = None) -> tuple[FileSource, LabelSpec]:
    """The utterances of `task` in `split` (train, dev, test, test_unseen) and its labels."""
    label = task_labels(root, task, key)
    source = FileSource.from_manifest(Path(root) / TASKS[task]["manifest"], split=split)
    if len(source) == 0:
        raise DataError(str(Path(root) / TASKS[task]["manifest"]), f"has no {split!r} utterances")
    return source, label


def corpus_audio(root: str | os.PathLike, split: str) -> FileSource:
    """Every distinct utterance of `split` over all tasks' manifests, without labels (for
    self-supervised objectives)."""
    examples, seen = [], set()
    require_built_corpus(root)
    for task in sorted(TASKS):
        for example in FileSource.from_manifest(Path(root) / TASKS[task]["manifest"], split=split).examples:
            if str(example.path) not in seen:
                seen.add(str(example.path))
                examples.append(example)
    if not examples:
        raise DataError(str(root), f"has no {split!r} utterances")
    return FileSource(examples)
