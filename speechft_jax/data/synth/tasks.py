"""Reading a built corpus back: the source and label spec of one task and split.

    root = ensure_corpus("demo")
    source, label = corpus_task(root, "pr", "train")   # FileSource, SequenceLabels
    loader = AudioLoader(source, [label], LoaderConfig(batch_size=8))

The label spec follows the task's kind: `ctc` a `SequenceLabels` (pr, asr, xl_*, and sf's
slot-tagged characters), `class` a `ClassLabel`, `intent` (ic) a `ClassGroupLabels` of action,
object and location, `diarization` (sd) a `SpeakerActivityLabels` of 2 speakers in 20 ms frames.
Speaker verification (asv) trains a `ClassLabel` of the seen speakers on `train`; its `dev` and
`test` are trial lists over the unseen speakers (`read_trials`: a source and its `TrialLabels`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import (
    ClassGroupLabels, ClassLabel, LabelSpec, SequenceLabels, SpeakerActivityLabels,
)
from speechft_jax.data.source import FileSource
from speechft_jax.data.synth.build import TASKS
from speechft_jax.data.trials import read_trials
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
    """The label spec of a corpus task (asv: its train split's); key defaults to `labels` (CTC),
    `activity` (diarization) or `label` (the others)."""
    spec, root = _task_spec(root, task)
    if spec["kind"] == "ctc":
        kind = "char" if spec["field"] == "text" else "phone"
        vocab = Vocabulary.load(root / spec["vocab"], kind=kind)
        return SequenceLabels(spec["field"], vocab, key=key or "labels")
    if spec["kind"] == "intent":
        return ClassGroupLabels(spec["fields"], tuple(ClassLabels.load(root / path) for path in spec["classes"]),
                                key=key or "label")
    if spec["kind"] == "diarization":
        return SpeakerActivityLabels(spec["field"], spec["speakers"], 0.02, key=key or "activity")
    return ClassLabel(spec["field"], ClassLabels.load(root / spec["classes"]), key=key or "label")


def corpus_task(root: str | os.PathLike, task: str, split: str, *,
                key: str | None = None) -> tuple[FileSource, LabelSpec]:
    """The utterances of `task` in `split` (train, dev, test, test_unseen) and its labels."""
    if TASKS.get(task, {}).get("kind") == "verification" and split != "train":
        return _trial_split(_task_spec(root, task)[1], task, split, key)
    label = task_labels(root, task, key)
    source = FileSource.from_manifest(Path(root) / TASKS[task]["manifest"], split=split)
    if len(source) == 0:
        raise DataError(str(Path(root) / TASKS[task]["manifest"]), f"has no {split!r} utterances")
    return source, label


AUDIO_TASKS = ("pr", "asr", "sid", "ks", "style", "xl_cmn", "xl_es")  # what `corpus_audio` reads


def _built_tasks(root: Path) -> list[str]:
    """The tasks the corpus at `root` was built with (an older version has fewer), sorted."""
    return sorted(task for task in json.loads((root / "corpus.json").read_text(encoding="utf-8"))["tasks"]
                  if task in TASKS)


def _task_spec(root: str | os.PathLike, task: str) -> tuple[dict, Path]:
    if task not in TASKS:
        raise ValueError(f"unknown corpus task {task!r}; choose one of {sorted(TASKS)}")
    root = require_built_corpus(root)
    if task not in _built_tasks(root):
        raise DataError(str(root), f"has no {task!r} task (an older version of the generator built it); build a "
                                   "new one with `python -m speechft_jax.data.synth --preset demo --out DIR`")
    return TASKS[task], root


def _trial_split(root: Path, task: str, split: str, key: str | None) -> tuple[FileSource, LabelSpec]:
    if split not in ("dev", "test"):
        raise DataError(str(root / TASKS[task]["manifest"]),
                        f"has no {split!r} split (train; dev and test are trial lists)")
    source, trials = read_trials(root / TASKS[task]["trials"].format(split=split), root)
    return source, (trials if key is None else dataclasses.replace(trials, key=key))


def corpus_audio(root: str | os.PathLike, split: str) -> FileSource:
    """Every distinct utterance of `split` over the read-speech tasks' manifests (`AUDIO_TASKS`),
    without labels (for self-supervised objectives)."""
    examples, seen = [], set()
    # the read-speech pools only, as before the SUPERB tasks were added: their commands, requests
    # and two-speaker mixtures would change what the self-supervised objectives have trained on
    for task in [t for t in _built_tasks(require_built_corpus(root)) if t in AUDIO_TASKS]:
        for example in FileSource.from_manifest(Path(root) / TASKS[task]["manifest"], split=split).examples:
            if str(example.path) not in seen:
                seen.add(str(example.path))
                examples.append(example)
    if not examples:
        raise DataError(str(root), f"has no {split!r} utterances")
    return FileSource(examples)
