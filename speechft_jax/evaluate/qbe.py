"""Query-by-example spoken term detection (SUPERB's QbE) on one hidden state: subsequence DTW, MTWV.

No training: for every (query, document) pair, `subsequence_dtw` finds the cheapest alignment of
the whole query to any stretch of the document (cosine distance per frame pair, steps right, down
or diagonal, the cost averaged over the query's frames); the detection score is minus that cost,
z-normalised per query over the documents. `mtwv` is the maximum term-weighted value over one
global threshold, with the cost model of QUESST 2014 (P_target 0.0008, C_miss 100, C_fa 1:
beta = C_fa / C_miss * (1 / P_target - 1) = 12.49); `mean_average_precision` is the rank-only
companion. The layer is picked by MTWV on dev, as SUPERB picks it, and reported on test.

On the demo corpus (`demo_qbe_split`): the queries are the keyword task's utterances of a split whose
keyword occurs as a word in some sentence of the ASR task's same split, and the documents are
those sentences; a document is a hit for a query when its text contains the query's keyword.
"""

from __future__ import annotations

import numpy as np

from speechft_jax.errors import DataError

QUESST_COSTS = {"p_target": 0.0008, "c_miss": 100.0, "c_fa": 1.0}


def subsequence_dtw(query, documents, lengths) -> np.ndarray:
    """Alignment costs `[N]` of `query [Q, D]` inside each of `documents [N, T, D]` (valid frames
    `lengths [N]`, each >= 1): the minimum over document stretches of the path cost, divided by Q.

    Row by row over the query: within a row, `D[i, j] = C[i, j] + min(A[j], D[i, j-1])` with
    `A[j] = min(D[i-1, j-1], D[i-1, j])` unrolls to a running minimum over prefix sums, so each row
    is a few vectorised operations over all documents at once."""
    q = np.asarray(query, np.float32)
    docs = np.asarray(documents, np.float32)
    lengths = np.asarray(lengths)
    q = q / (np.linalg.norm(q, axis=-1, keepdims=True) + 1e-8)
    docs = docs / (np.linalg.norm(docs, axis=-1, keepdims=True) + 1e-8)
    cost = 1.0 - np.einsum("qd,ntd->nqt", q, docs)  # [N, Q, T]
    valid = np.arange(docs.shape[1])[None, :] < lengths[:, None]
    cost = np.where(valid[:, None, :], cost, 0.0)  # padding only ever follows the valid frames
    row = cost[:, 0]  # a match may start anywhere
    for i in range(1, q.shape[0]):
        above = np.concatenate([row[:, :1], np.minimum(row[:, :-1], row[:, 1:])], axis=1)
        prefix = np.cumsum(cost[:, i], axis=1)
        row = prefix + np.minimum.accumulate(above - prefix + cost[:, i], axis=1)
    return np.where(valid, row, np.inf).min(axis=1) / q.shape[0]


def _znorm(scores):
    return (scores - scores.mean(1, keepdims=True)) / (scores.std(1, keepdims=True) + 1e-8)


def mtwv(scores, relevant, *, p_target: float = QUESST_COSTS["p_target"], c_miss: float = QUESST_COSTS["c_miss"],
         c_fa: float = QUESST_COSTS["c_fa"]) -> float:
    """Maximum term-weighted value of detection `scores [queries, documents]` against `relevant`
    (bool, same shape; every query needs at least one hit and one non-hit):
    `max_theta 1 - mean_q(P_miss(q, theta) + beta * P_fa(q, theta))`; 0 is detecting nothing."""
    scores, relevant = np.asarray(scores, np.float64), np.asarray(relevant, bool)
    hits, misses = relevant.sum(1), (~relevant).sum(1)
    if (hits == 0).any() or (misses == 0).any():
        raise ValueError("mtwv: every query needs at least one relevant and one irrelevant document")
    beta = c_fa / c_miss * (1.0 / p_target - 1.0)
    # sweep theta down through every score: each detection adds to its query's hits or false alarms
    order = np.argsort(-scores, axis=None, kind="stable")
    rows = np.unravel_index(order, scores.shape)[0]
    is_hit = relevant.ravel()[order]
    gain = np.where(is_hit, 1.0 / hits[rows], -beta / misses[rows]) / scores.shape[0]
    twv = np.cumsum(gain)
    last_of_tie = np.append(scores.ravel()[order][1:] != scores.ravel()[order][:-1], True)
    return float(max(0.0, twv[last_of_tie].max()))


def mean_average_precision(scores, relevant) -> float:
    """Mean over queries of the average precision of ranking the documents by score."""
    from sklearn.metrics import average_precision_score

    return float(np.mean([average_precision_score(r, s) for s, r in zip(np.asarray(scores), np.asarray(relevant))]))


def qbe_split(data):
    """`((queries, labels), (documents, labels), relevant [Q, N])` of a qbe task's split (`data`, a
    `DataConfig`): the demo corpus's (`corpus`) or QUESST 2014's (`quesst14`, no labels: None)."""
    if data.type == "quesst14":
        from speechft_jax.data.superb.quesst14 import qbe_split as quesst_split

        queries, documents, relevant = quesst_split(data)
        return (queries, None), (documents, None), relevant
    from speechft_jax.data.synth import ensure_corpus

    return demo_qbe_split(data.corpus_dir or ensure_corpus(data.corpus), data.split)


def demo_qbe_split(corpus_root, split: str):
    """`(queries, documents, relevant [Q, N])` of a demo-corpus split: the keyword task's and the ASR
    task's `(source, label_spec)` restricted to the queries with at least one hit (module docstring)."""
    from speechft_jax.data.source import FileSource
    from speechft_jax.evaluate.demo_tasks import demo_task

    (ks, ks_labels), (asr, asr_labels) = (demo_task(corpus_root, name).open(split) for name in ("ks", "asr"))
    words = [set(str(e.fields.get("text", "")).split()) for e in asr.examples]
    keep, relevant = [], []
    for example in ks.examples:
        hits = [str(example.fields.get("keyword")) in w for w in words]
        if any(hits) and not all(hits):
            keep.append(example)
            relevant.append(hits)
    if not keep:
        raise DataError(corpus_root, f"no keyword of the {split!r} split occurs in its sentences: no QbE queries")
    return (FileSource(keep), ks_labels), (asr, asr_labels), np.array(relevant, bool)


def qbe_scores(queries: list, documents: list, layer: int) -> np.ndarray:
    """Per-query z-normalised detection scores `[Q, N]` of one hidden state: each query `[L+1, frames, D]`
    against the documents (padded together)."""
    longest = max(d.shape[1] for d in documents)
    docs = np.zeros((len(documents), longest, documents[0].shape[-1]), np.float32)
    for n, d in enumerate(documents):
        docs[n, :d.shape[1]] = d[layer]
    lengths = np.array([d.shape[1] for d in documents])
    return _znorm(-np.stack([subsequence_dtw(q[layer], docs, lengths) for q in queries]))
