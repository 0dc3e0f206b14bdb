"""SUPERB-style evaluation of one encoder on tasks declared in YAML: features, then probes per task.

`evaluate_encoder(bundle, tasks, ...)` takes `EvalTask`s (evaluate/config.py: each task's
`TaskDefinition`, with its splits' sources and labels, and its probe settings; the demo corpus's
are `demo_tasks.demo_eval_tasks`), trains a `WeightedSumProbe` per task with the definition's head
over the learning-rate grid (picked on dev, reported on test) and returns `{task: ProbeResult}`;
with `seeds` > 1 it trains them once per probe seed and adds the test metric's mean and sd over
the seeds (`seed_summary`).
CTC tasks report an error rate (PER, CER or WER) or slot filling's slot-type F1, classification
and intent tasks accuracy, verification EER, diarization DER (`probe_spec`); a qbe task is
query-by-example detection by subsequence DTW on the best dev layer (MTWV, `qbe_result`: the demo
corpus's keywords in its sentences, or QUESST 2014). `similarity_to_reference(bundle, reference,
definition, ...)`: per-layer CKA and R^2 of the encoder's features against a reference encoder's
(theta_0) on one task's test split, and the size of the weight update (for baselines such as L2
regularisation and LoRA, trained apart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.config import EvalTask
from speechft_jax.evaluate.features import FeatureSet, cached_feature_set, extract_feature_set, feature_cache_key
from speechft_jax.evaluate.probe import ProbeResult, ProbeSpec
from speechft_jax.evaluate.frozen_encoders import single_encoder
from speechft_jax.evaluate.probe_training import train_probes
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
        delimiter = None
        if definition.metric == "wer":
            if vocab.kind != "char" or vocab.word_delimiter not in vocab.tokens:
                raise ConfigError(f"task {definition.name!r}: metric wer needs a character vocabulary with a word "
                                  f"delimiter ({vocab.word_delimiter!r}); this one is a {vocab.kind} vocabulary")
            delimiter = vocab.token_id(vocab.word_delimiter)
        if definition.metric == "slot_type_f1":
            return ProbeSpec(definition.name, "ctc", vocab.size, vocab.blank_id, **sizes, metric_name="slot_type_f1",
                             tokens=tuple(vocab.tokens))
        return ProbeSpec(definition.name, "ctc", vocab.size, vocab.blank_id, **sizes, word_delimiter_id=delimiter)
    if definition.kind == "intent":
        return ProbeSpec(definition.name, "intent", sum(label_spec.sizes), **sizes, groups=label_spec.sizes)
    if definition.kind == "verification":
        return ProbeSpec(definition.name, "verification", len(label_spec.classes), **sizes,
                         embedding_dim=head.projection_dim)
    if definition.kind == "diarization":
        return ProbeSpec(definition.name, "diarization", label_spec.num_speakers, **sizes,
                         frame_seconds=label_spec.frame_seconds)
    return ProbeSpec(definition.name, "classification", len(label_spec.classes), **sizes)


def evaluate_encoder(bundle, tasks: Sequence[EvalTask], *, params=None, cache_dir: Path | None = None,
                     work_dir: Path | None = None, seed: int = 0, seeds: int = 1,
                     progress: bool = True) -> dict[str, ProbeResult]:
    """`{task: ProbeResult}` for the encoder `bundle` (or `params` in its shape); see the module docstring.
    Each task's probes train on cached features or on the fly as its probe settings say (`mode`,
    `cache_budget_gb`; `evaluate/probe_training.py`), with checkpoints and metrics in
    `work_dir/<task>/` when given. `seeds` > 1 trains them again with seeds `seed + 1`, ...
    (checkpoints in `work_dir/<task>/seed<s>/`; the features are read back from `cache_dir` when
    there is one): the result is the first seed's, with `seed_summary` in its details."""
    fingerprint = _fingerprint(bundle, params, cache_dir)  # hashed once: every split's cache key starts with it
    results, encoders = {}, None
    for task in tasks:
        definition, probe = task.definition, task.probe
        if definition.kind == "qbe":
            results[task.name] = qbe_result(bundle, definition, params=params, cache_dir=cache_dir,
                                            fingerprint=fingerprint)
            continue
        splits = {split: definition.open(split) for split in ("train", "dev", "test")}
        encoders = encoders or single_encoder(bundle, params)
        spec = probe_spec(definition, splits["train"][1])
        by_seed = []
        for probe_seed in range(seed, seed + seeds):
            # each seed resumes from its own checkpoints; the first keeps the folder a single seed uses
            task_dir = None if work_dir is None else Path(work_dir) / task.name
            if task_dir is not None and probe_seed != seed:
                task_dir = task_dir / f"seed{probe_seed}"
            (result,) = train_probes(spec, encoders, splits, probe, cache_dir=cache_dir, work_dir=task_dir,
                                     seed=probe_seed, progress=progress)
            by_seed.append(result)
        results[task.name] = by_seed[0]
        if seeds > 1:
            by_seed[0].details.update(seed_summary(list(range(seed, seed + seeds)), [r.test for r in by_seed]))
    return results


def seed_summary(seeds: Sequence[int], tests: Sequence[float]) -> dict:
    """`seeds`, `test_by_seed`, `test_mean` and `test_sd` (sample standard deviation; none for one
    seed) of one task's test metric over probe seeds."""
    summary = {"seeds": list(seeds), "test_by_seed": [float(t) for t in tests],
               "test_mean": float(np.mean(tests))}
    if len(tests) > 1:
        summary["test_sd"] = float(np.std(tests, ddof=1))
    return summary


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


def qbe_result(bundle, definition: TaskDefinition, *, params=None, cache_dir: Path | None = None,
               splits_used: tuple[str, str] = ("dev", "test"), fingerprint: str | None = None) -> ProbeResult:
    """SUPERB's QbE (`evaluate/qbe.py`) of a qbe task: the hidden state with the best MTWV on the
    first of `splits_used` (dev; MAP breaks ties), its MTWV on the second (test; and its MAP in
    `details`); `layer_weights` is one-hot on that state."""
    from speechft_jax.evaluate.qbe import mean_average_precision, mtwv, qbe_scores, qbe_split

    fingerprint = _fingerprint(bundle, params, cache_dir) if fingerprint is None else fingerprint
    splits = {}
    for role, split in zip(("dev", "test"), splits_used):
        data = definition.splits[split]
        (queries, query_labels), (documents, document_labels), relevant = qbe_split(data)
        name = f"{definition.name}-{data.type}-{split}"
        splits[role] = (
            _features(bundle, f"{name}-queries", queries, query_labels, params=params, cache_dir=cache_dir,
                      fingerprint=fingerprint, desc=f"{definition.name} {split} queries").features,
            _features(bundle, f"{name}-documents", documents, document_labels, params=params, cache_dir=cache_dir,
                      fingerprint=fingerprint, desc=f"{definition.name} {split} documents").features,
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


def similarity_to_reference(bundle, reference, definition: TaskDefinition, *, split: str = "test",
                            cache_dir: Path | None = None) -> dict:
    """`evaluate.similarity.similarity_report` of `bundle` against `reference` (same architecture) on
    one split of a task. With the `cache_dir` of an `evaluate_encoder` call, the encoder's features
    are not extracted again."""
    from speechft_jax.evaluate.similarity import similarity_report, weight_change

    check_compatible(reference.params, bundle.params)
    ours = split_features(bundle, definition, split, cache_dir=cache_dir)
    theirs = split_features(reference, definition, split, cache_dir=cache_dir, what="reference features")
    return similarity_report(ours.features, theirs.features, weight_change(bundle.params, reference.params),
                             definition.name)
