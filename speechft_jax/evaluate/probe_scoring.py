"""Scoring a split for every probe at once: the metrics of each encoder x learning rate `[K, n_lr]`.

`split_metrics(spec, outputs, batches)` runs `outputs(batch) -> (output [K, n_lr, B, ...],
frame_mask [B, T])` over one pass of a split's batches and returns `{metric: [K, n_lr]}`, the
probe's own metric first (`spec.metric`), then any it reports beside it:
  ctc             greedy CTC decoding, then the token error rate (PER, CER), the WER over the words
                  the word delimiter separates, or slot filling's slot-type F1 (and slot-value CER
                  beside it) over the slot-tagged token sequences;
  classification  accuracy; intent: accuracy with every slot right;
  verification    the cosine of the two utterances' embeddings per trial of the split's
                  `TrialLabels`, then the EER (and minDCF beside it);
  diarization     sigmoid activities thresholded after a median filter, as segments, against the
                  reference segments of the source's field; the DER of the whole split (and its
                  missed, false-alarm and confusion shares beside it), no collar, overlap scored.
`score_split` scores alike and also keeps, for each probe, what its metric's 95 % interval is
computed from (`evaluate/intervals.py`): `ScoredSplit.interval(k, j)` is Wilson's interval for
accuracy, else the percentile bootstrap over utterances (errors and reference tokens of an error
rate; an utterance's slot-type F1), trials (EER) or recordings (DER's error and scored seconds).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jiwer
import numpy as np

from speechft_jax.evaluate.diarization import activity_segments, corpus_diarization_error, diarization_error
from speechft_jax.evaluate.intervals import bootstrap_interval, ratio_of_sums, wilson_interval
from speechft_jax.evaluate.probe import ProbeSpec, group_logits
from speechft_jax.evaluate.slot_filling import slot_type_f1, slot_value_cer
from speechft_jax.evaluate.verification import equal_error_rate, equal_error_rates, min_dcf
from speechft_jax.tasks.ctc import ctc_greedy_decode
from speechft_jax.tasks.metrics import error_rate


# the metrics each kind reports beside its own (a ctc probe's by its metric)
EXTRA_METRICS = {"slot_type_f1": ("slot_value_cer",), "eer": ("min_dcf",),
                 "der": ("missed", "false_alarm", "confusion")}


def extra_metrics(spec: ProbeSpec) -> tuple[str, ...]:
    """The names of the metrics `split_metrics` reports beside `spec.metric`."""
    return EXTRA_METRICS.get(spec.metric, ())


@dataclasses.dataclass(frozen=True)
class ScoredSplit:
    """A split's `metrics` `{metric: [K, n_lr]}`, and `interval(k, j)`: the 95 % interval `(low, high)`
    of `spec.metric` for encoder k's probe of learning rate j, in the metric's own units."""

    metrics: dict[str, np.ndarray]
    interval: Callable[[int, int], tuple[float, float]]


def split_metrics(spec: ProbeSpec, outputs: Callable, batches) -> dict[str, np.ndarray]:
    """`{metric: [K, n_lr]}` of a split (module docstring); `batches` has `once()` and `labels`
    (and `label_spec`, `source` for verification and diarization)."""
    return score_split(spec, outputs, batches).metrics


def score_split(spec: ProbeSpec, outputs: Callable, batches) -> ScoredSplit:
    """The split's metrics, as `split_metrics` gives them, and each probe's interval (module docstring)."""
    kind = spec.kind
    collected = []  # per batch: (real rows' source indices, their outputs [K, n_lr, r, ...], frame_mask [r, T])
    for rows, batch in batches.once():
        output, frame_mask = jax.device_get(outputs(batch))
        real = np.flatnonzero(rows >= 0)
        collected.append((rows[real], output[:, :, real], frame_mask[real]))
    if kind == "ctc":
        return _ctc(spec, collected, batches.labels)
    if kind in ("classification", "intent"):
        return _accuracy(spec, collected, batches.labels)
    if kind == "verification":
        return _verification(collected, batches.label_spec.trials)
    if kind == "diarization":
        return _diarization(spec, collected, batches.source, batches.label_spec.field)
    raise ValueError(f"no scoring for probes of kind {kind!r}")


def _ctc(spec: ProbeSpec, collected, labels) -> ScoredSplit:
    refs, hyps = [], None
    for indices, logits, frame_mask in collected:
        hyps = hyps or [[[] for _ in range(logits.shape[1])] for _ in range(logits.shape[0])]
        refs += [list(labels[i]) for i in indices]
        for k, by_lr in enumerate(hyps):
            for j, out in enumerate(by_lr):
                out += [list(d) for d in ctc_greedy_decode(logits[k, j], frame_mask, spec.blank_id)]
    if spec.metric == "slot_type_f1":
        tokens = lambda ids: [spec.tokens[i] for i in ids]
        refs = [tokens(r) for r in refs]
        hyps = [[[tokens(h) for h in out] for out in by_lr] for by_lr in hyps]

        def f1_interval(k, j):  # the split's F1 is the mean of its utterances'
            f1s = np.array([slot_type_f1([r], [h]) for r, h in zip(refs, hyps[k][j])])
            return bootstrap_interval(f1s, lambda resampled: resampled.mean(axis=1))

        return ScoredSplit(
            {"slot_type_f1": np.array([[slot_type_f1(refs, out) for out in by_lr] for by_lr in hyps]),
             "slot_value_cer": np.array([[slot_value_cer(refs, out) for out in by_lr] for by_lr in hyps])},
            f1_interval)
    as_text = lambda ids: " ".join(map(str, ids))
    if spec.word_delimiter_id is not None:  # WER: the words are the runs of ids between delimiters
        as_text = lambda ids: words(" ".join(map(str, ids)), spec.word_delimiter_id)
    refs = [as_text(r) for r in refs]
    hyps = [[[as_text(h) for h in out] for out in by_lr] for by_lr in hyps]
    return ScoredSplit({spec.metric: np.array([[error_rate(refs, out) for out in by_lr] for by_lr in hyps])},
                       lambda k, j: bootstrap_interval(utterance_errors(refs, hyps[k][j]), ratio_of_sums))


def utterance_errors(references: list[str], hypotheses: list[str]) -> np.ndarray:
    """Each utterance's `(edits, reference tokens)` `[N, 2]` of whitespace-separated token strings:
    their sums' ratio is `tasks.metrics.error_rate` of the corpus."""
    aligned = jiwer.process_words([" ".join(r.split()) for r in references], [" ".join(h.split()) for h in hypotheses])
    edits = [sum(max(c.ref_end_idx - c.ref_start_idx, c.hyp_end_idx - c.hyp_start_idx)
                 for c in chunks if c.type != "equal") for chunks in aligned.alignments]
    return np.stack([np.array(edits, np.float64), np.array([len(r.split()) for r in references], np.float64)], axis=1)


def words(ids: str, delimiter: int) -> str:
    """A space-separated id sequence as words: each run of ids between word delimiters becomes one
    token (`"3 4 1 5"` with delimiter 1 -> `"3_4 5"`)."""
    found, current = [], []
    for token in ids.split():
        if token == str(delimiter):
            found, current = found + (["_".join(current)] if current else []), []
        else:
            current.append(token)
    return " ".join(found + (["_".join(current)] if current else []))


def _accuracy(spec: ProbeSpec, collected, labels) -> ScoredSplit:
    correct, count = 0, 0
    for indices, logits, _ in collected:
        truth = np.array([labels[i] for i in indices])
        if spec.kind == "intent":  # right only when every slot is
            right = np.all([g.argmax(-1) == truth[:, i] for i, g in enumerate(group_logits(spec, logits))], axis=0)
        else:
            right = logits.argmax(-1) == truth
        correct, count = correct + right.sum(-1), count + len(indices)
    return ScoredSplit({"accuracy": np.asarray(correct / max(count, 1), np.float64)},
                       lambda k, j: wilson_interval(int(correct[k, j]), count))


def _verification(collected, trials: np.ndarray) -> ScoredSplit:
    indices = np.concatenate([c[0] for c in collected])
    embeddings = np.concatenate([c[1] for c in collected], axis=2).astype(np.float64)  # [K, n_lr, N, D]
    embeddings /= np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)
    position = np.full(int(indices.max()) + 1, -1)
    position[indices] = np.arange(len(indices))
    enrol, test = position[trials[:, 0]], position[trials[:, 1]]
    if (enrol < 0).any() or (test < 0).any():
        raise ValueError("a trial names an utterance the split's batches did not hold")
    scores = (embeddings[:, :, enrol] * embeddings[:, :, test]).sum(-1)  # cosine per trial [K, n_lr, trials]
    shape = scores.shape[:2]
    eer, dcf = np.zeros(shape), np.zeros(shape)
    for k in range(shape[0]):
        for j in range(shape[1]):
            eer[k, j] = equal_error_rate(scores[k, j], trials[:, 2])
            dcf[k, j] = min_dcf(scores[k, j], trials[:, 2])
    return ScoredSplit({"eer": eer, "min_dcf": dcf}, lambda k, j: bootstrap_interval(
        np.stack([scores[k, j], trials[:, 2]], axis=1), lambda resampled: equal_error_rates(resampled[..., 0],
                                                                                             resampled[..., 1])))


def _diarization(spec: ProbeSpec, collected, source, field: str) -> ScoredSplit:
    shape = collected[0][1].shape[:2]
    pairs = [[[] for _ in range(shape[1])] for _ in range(shape[0])]
    for indices, logits, frame_mask in collected:
        for r, index in enumerate(indices):
            reference = [(float(s), float(e), str(who)) for s, e, who in source.fields(int(index))[field]]
            frames = int(frame_mask[r].sum())
            probabilities = 1.0 / (1.0 + np.exp(-logits[:, :, r, :frames].astype(np.float64)))
            for k in range(shape[0]):
                for j in range(shape[1]):
                    hypothesis = activity_segments(probabilities[k, j], spec.frame_seconds, spec.threshold,
                                                   spec.median)
                    pairs[k][j].append((reference, hypothesis))
    metrics = {name: np.zeros(shape) for name in ("der", "missed", "false_alarm", "confusion")}
    for k in range(shape[0]):
        for j in range(shape[1]):
            error = corpus_diarization_error(pairs[k][j])
            metrics["der"][k, j] = error.der
            for name in ("missed", "false_alarm", "confusion"):
                metrics[name][k, j] = getattr(error, name) / max(error.total, 1e-12)

    def der_interval(k, j):  # recordings' (error, scored) seconds, again for this probe only
        errors = [diarization_error(reference, hypothesis) for reference, hypothesis in pairs[k][j]]
        return bootstrap_interval([(e.missed + e.false_alarm + e.confusion, e.total) for e in errors], ratio_of_sums)

    return ScoredSplit(metrics, der_interval)
