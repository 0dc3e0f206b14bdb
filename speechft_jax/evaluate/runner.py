"""SUPERB-style evaluation of one encoder on the demo corpus's tasks: features once, probes per task.

`evaluate_encoder(bundle, tasks, ...)` extracts (or reads from the cache) every split's features
of each task (a `TaskDefinition`, `demo_tasks.demo_task`: its splits' sources and labels), trains
a `WeightedSumProbe` per task with the definition's head over a learning-rate grid (picked on dev,
reported on test) and returns `{task: ProbeResult}`. Phone recognition and ASR are CTC probes
(PER / CER-or-WER as `error_rate`), speaker, keyword and style are utterance classifiers
(accuracy); `qbe` is query-by-example detection by subsequence DTW on the best dev layer
(MTWV, `qbe_result`). `similarity_to_reference(bundle, reference, task, ...)`: per-layer CKA and
R^2 of the encoder's features against a reference encoder's (theta_0) on one task's test split,
and the size of the weight update (for baselines such as L2 regularisation and LoRA, trained
apart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.demo_tasks import EVAL_TASKS, demo_task
from speechft_jax.evaluate.features import FeatureSet, cached_feature_set, extract_feature_set, feature_cache_key
from speechft_jax.evaluate.probe import ProbeResult, ProbeSpec, train_probe
from speechft_jax.tasks.definition import TaskDefinition
from speechft_jax.tree_math import check_compatible, params_fingerprint


def probe_spec(definition: TaskDefinition, label_spec) -> ProbeSpec:
    """The probe of a task: its definition's kind and head, sized by its label spec (the
    vocabulary or class list)."""
    head = definition.head
    sizes = {"head": head.kind, "lstm_units": head.lstm_units, "lstm_layers": head.lstm_layers,
             "projection_dim": head.projection_dim}
    if definition.kind == "ctc":
        vocab = label_spec.vocab
        return ProbeSpec(definition.name, "ctc", vocab.size, vocab.blank_id, **sizes)
    return ProbeSpec(definition.name, "classification", len(label_spec.classes), **sizes)


def evaluate_encoder(bundle, tasks: Sequence[str], *, corpus_root: Path, params=None, steps: int = 1000,
                     learning_rates: Sequence[float] = (1e-4, 1e-3, 1e-2), batch_size: int = 16,
                     cache_dir: Path | None = None, seed: int = 0, progress: bool = True) -> dict[str, ProbeResult]:
    """`{task: ProbeResult}` for the encoder `bundle` (or `params` in its shape); see the module docstring."""
    known = EVAL_TASKS + ("qbe",)
    for task in tasks:
        if task not in known:
            raise ConfigError(f"task {task!r}: expected one of {', '.join(known)}")
    fingerprint = _fingerprint(bundle, params, cache_dir)  # hashed once: every split's cache key starts with it
    results = {}
    for task in tasks:
        if task == "qbe":
            results[task] = qbe_result(bundle, corpus_root=corpus_root, params=params, cache_dir=cache_dir,
                                       fingerprint=fingerprint)
            continue
        definition = demo_task(corpus_root, task)
        splits = {split: split_features(bundle, definition, split, params=params, cache_dir=cache_dir,
                                        fingerprint=fingerprint)
                  for split in ("train", "dev", "test")}
        _, label_spec = definition.open("train")
        results[task] = train_probe(probe_spec(definition, label_spec), splits["train"], splits["dev"], splits["test"],
                                    learning_rates=learning_rates, steps=steps, batch_size=batch_size, seed=seed,
                                    progress=progress)
    return results


def task_features(bundle, task: str, split: str, *, corpus_root: Path, params=None,
                  cache_dir: Path | None = None, what: str = "features", fingerprint: str | None = None) -> FeatureSet:
    """The encoder's features of one split of a demo-corpus task (`split_features`)."""
    return split_features(bundle, demo_task(corpus_root, task), split, params=params, cache_dir=cache_dir, what=what,
                          fingerprint=fingerprint)


def split_features(bundle, definition: TaskDefinition, split: str, *, params=None, cache_dir: Path | None = None,
                   what: str = "features", fingerprint: str | None = None) -> FeatureSet:
    """The encoder's features of one split of a task (its source and labels), read from
    `cache_dir` when an earlier call (of `evaluate_encoder` or of `similarity_to_reference`) stored
    them there. `fingerprint`: the weights' `_fingerprint`, when the caller already has it."""
    source, label_spec = definition.open(split)
    name = definition.name
    return _features(bundle, f"{name}-{split}", source, label_spec, params=params, cache_dir=cache_dir,
                     fingerprint=fingerprint, desc=f"{name} {split} {what}")


def _fingerprint(bundle, params, cache_dir) -> str:
    """The hash of the weights that starts every cache key ("" without a cache: nothing to key)."""
    return params_fingerprint(bundle.params if params is None else params) if cache_dir else ""


def _features(bundle, name: str, source, label_spec, *, params, cache_dir, fingerprint, desc: str) -> FeatureSet:
    make = lambda: extract_feature_set(bundle, source, label_spec, params=params, desc=desc)
    if not cache_dir:
        return make()
    fingerprint = _fingerprint(bundle, params, cache_dir) if fingerprint is None else fingerprint
    # the key covers the data and labels too: another corpus, or an edited manifest, never hits it
    key = feature_cache_key(name, fingerprint, bundle, source, label_spec)
    return cached_feature_set(cache_dir, key, make, source=source, label_spec=label_spec)


def qbe_result(bundle, *, corpus_root: Path, params=None, cache_dir: Path | None = None,
               splits_used: tuple[str, str] = ("dev", "test"), fingerprint: str | None = None) -> ProbeResult:
    """SUPERB's QbE on the demo corpus (`evaluate/qbe.py`): the hidden state with the best MTWV on
    the first of `splits_used` (dev; MAP breaks ties), its MTWV on the second (test; and its MAP in
    `details`); `layer_weights` is one-hot on that state."""
    from speechft_jax.evaluate.qbe import mean_average_precision, mtwv, qbe_scores, qbe_split

    fingerprint = _fingerprint(bundle, params, cache_dir) if fingerprint is None else fingerprint
    splits = {}
    for role, split in zip(("dev", "test"), splits_used):
        (queries, query_labels), (documents, document_labels), relevant = qbe_split(corpus_root, split)
        splits[role] = (
            _features(bundle, f"qbe-queries-{split}", queries, query_labels, params=params, cache_dir=cache_dir,
                      fingerprint=fingerprint, desc=f"qbe {split} queries").features,
            _features(bundle, f"asr-{split}", documents, document_labels, params=params, cache_dir=cache_dir,
                      fingerprint=fingerprint, desc=f"qbe {split} documents").features,
            relevant)
    dev_queries, dev_documents, dev_relevant = splits["dev"]
    num_states = int(dev_queries[0].shape[0])
    dev_scores = [qbe_scores(dev_queries, dev_documents, layer) for layer in range(num_states)]
    by_layer = [mtwv(scores, dev_relevant) for scores in dev_scores]
    map_by_layer = [mean_average_precision(scores, dev_relevant) for scores in dev_scores]
    layer = max(range(num_states), key=lambda i: (by_layer[i], map_by_layer[i]))  # MAP breaks ties (all 0)
    test_queries, test_documents, test_relevant = splits["test"]
    scores = qbe_scores(test_queries, test_documents, layer)
    return ProbeResult("qbe", "mtwv", by_layer[layer], mtwv(scores, test_relevant), None,
                       [float(i == layer) for i in range(num_states)], {},
                       {"layer": layer, "dev_mtwv_by_layer": by_layer, "dev_map_by_layer": map_by_layer,
                        "test_map": mean_average_precision(scores, test_relevant),
                        "test_queries": int(test_relevant.shape[0]), "test_documents": int(test_relevant.shape[1])})


def similarity_to_reference(bundle, reference, task: str, *, corpus_root: Path, split: str = "test",
                            cache_dir: Path | None = None) -> dict:
    """`evaluate.similarity.similarity_report` of `bundle` against `reference` (same architecture).
    With the `cache_dir` of an `evaluate_encoder` call, the encoder's features are not extracted again."""
    from speechft_jax.evaluate.similarity import similarity_report, weight_change

    check_compatible(reference.params, bundle.params)
    ours = task_features(bundle, task, split, corpus_root=corpus_root, cache_dir=cache_dir)
    theirs = task_features(reference, task, split, corpus_root=corpus_root, cache_dir=cache_dir,
                           what="reference features")
    return similarity_report(ours.features, theirs.features, weight_change(bundle.params, reference.params), task)
