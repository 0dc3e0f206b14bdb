"""SUPERB-style evaluation of one encoder on the demo corpus's tasks: features once, probes per task.

`evaluate_encoder(bundle, tasks, ...)` extracts (or reads from the cache) every split's features
of each task, trains a `WeightedSumProbe` per task over a learning-rate grid (picked on dev,
reported on test) and returns `{task: ProbeResult}`. Phone recognition and ASR are CTC probes
(PER / CER-or-WER as `error_rate`), speaker, keyword and style are utterance classifiers
(accuracy). `similarity_to_reference(bundle, reference, task, ...)`: per-layer CKA and R^2 of the
encoder's features against a reference encoder's (theta_0) on one task's test split, and the
size of the weight update (for baselines such as L2 regularisation and LoRA, trained apart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from speechft_jax.data.labels import SequenceLabels
from speechft_jax.checkpoints.params_io import params_fingerprint
from speechft_jax.evaluate.features import FeatureSet, cached_feature_set, extract_feature_set
from speechft_jax.evaluate.probe import ProbeResult, ProbeSpec, train_probe

EVAL_TASKS = ("pr", "asr", "sid", "ks", "style")
# SUPERB's downstream models, scaled to the demo corpus: linear CTC for phones, BiLSTM CTC for text
PROBE_HEADS = {"pr": "linear", "asr": "bilstm"}


def probe_spec(task: str, label_spec) -> ProbeSpec:
    if isinstance(label_spec, SequenceLabels):
        vocab = label_spec.vocab
        return ProbeSpec(task, "ctc", vocab.size, vocab.blank_id, head=PROBE_HEADS.get(task, "linear"))
    return ProbeSpec(task, "classification", len(label_spec.classes))


def evaluate_encoder(bundle, tasks: Sequence[str], *, corpus_root: Path, params=None, steps: int = 1000,
                     learning_rates: Sequence[float] = (1e-4, 1e-3, 1e-2), batch_size: int = 16,
                     cache_dir: Path | None = None, seed: int = 0, progress: bool = True) -> dict[str, ProbeResult]:
    """`{task: ProbeResult}` for the encoder `bundle` (or `params` in its shape); see the module docstring."""
    from speechft_jax.data.synth import corpus_task

    results = {}
    for task in tasks:
        if task not in EVAL_TASKS:
            raise ValueError(f"task {task!r}: expected one of {', '.join(EVAL_TASKS)}")
        splits = {split: task_features(bundle, task, split, corpus_root=corpus_root, params=params,
                                       cache_dir=cache_dir) for split in ("train", "dev", "test")}
        _, label_spec = corpus_task(corpus_root, task, "train")
        results[task] = train_probe(probe_spec(task, label_spec), splits["train"], splits["dev"], splits["test"],
                                    learning_rates=learning_rates, steps=steps, batch_size=batch_size, seed=seed,
                                    progress=progress)
    return results


def task_features(bundle, task: str, split: str, *, corpus_root: Path, params=None,
                  cache_dir: Path | None = None, what: str = "features") -> FeatureSet:
    """The encoder's features of one split of a demo-corpus task, read from `cache_dir` when an
    earlier call (of `evaluate_encoder` or of `similarity_to_reference`) stored them there."""
    from speechft_jax.data.synth import corpus_task

    source, label_spec = corpus_task(corpus_root, task, split)
    fingerprint = params_fingerprint(bundle.params if params is None else params) if cache_dir else ""
    return cached_feature_set(cache_dir, f"{fingerprint}-{task}-{split}",
                              lambda: extract_feature_set(bundle, source, label_spec, params=params,
                                                          desc=f"{task} {split} {what}"))


def similarity_to_reference(bundle, reference, task: str, *, corpus_root: Path, split: str = "test",
                            cache_dir: Path | None = None) -> dict:
    """`evaluate.similarity.similarity_report` of `bundle` against `reference` (same architecture).
    With the `cache_dir` of an `evaluate_encoder` call, the encoder's features are not extracted again."""
    from speechft_jax.evaluate.similarity import similarity_report, weight_change
    from speechft_jax.merge import check_compatible

    check_compatible(reference.params, bundle.params)
    ours = task_features(bundle, task, split, corpus_root=corpus_root, cache_dir=cache_dir)
    theirs = task_features(reference, task, split, corpus_root=corpus_root, cache_dir=cache_dir,
                           what="reference features")
    return similarity_report(ours.features, theirs.features, weight_change(bundle.params, reference.params), task)
