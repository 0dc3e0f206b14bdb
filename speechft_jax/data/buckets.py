"""Length bucketing: a small fixed set of padded lengths, so a jitted step compiles once per bucket.

`choose_bucket_lengths` picks `num_buckets` padded lengths (multiples of `multiple` samples) that
minimise the total padding for the given utterance lengths. `plan_batches` groups utterances by
bucket into batches of one fixed size; each bucket's last batch is filled with filler rows
(index -1, masked out) unless `drop_remainder`. `padding_fraction` reports the share of padded
samples (including filler rows) in a plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# One encoder frame is 320 samples (20 ms at 16 kHz): padded lengths on that grid waste no frame.
FRAME_SAMPLES = 320


@dataclass(frozen=True)
class BatchPlan:
    """One global batch: its padded length and the utterance indices (-1 = filler row)."""

    bucket_length: int
    indices: np.ndarray  # int64 [global_batch]

    @property
    def num_valid(self) -> int:
        return int((self.indices >= 0).sum())


def choose_bucket_lengths(lengths, num_buckets: int = 4, *, multiple: int = FRAME_SAMPLES,
                          max_length: int | None = None) -> tuple[int, ...]:
    """At most `num_buckets` padded lengths covering every length (clipped to `max_length`).

    Exact minimum of the total padded samples over all splits of the sorted, rounded lengths
    (dynamic programme over the histogram, O(num_buckets * bins^2) in numpy).
    """
    lengths = np.asarray(lengths, np.int64)
    if lengths.size == 0:
        raise ValueError("cannot choose bucket lengths for an empty dataset")
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    if max_length is not None:
        lengths = np.minimum(lengths, max_length)
    rounded = -(-lengths // multiple) * multiple
    values, counts = np.unique(rounded, return_counts=True)
    if len(values) <= num_buckets:
        return tuple(int(v) for v in values)
    n = len(values)
    csum = np.concatenate([[0], np.cumsum(counts)])
    # cost[k][j]: least padded total for bins 0..j with k+1 buckets, the last ending at bin j.
    inf = np.iinfo(np.int64).max // 4
    cost = values * csum[1:]
    back = np.zeros((num_buckets, n), np.int64)
    for k in range(1, num_buckets):
        new = np.full(n, inf, np.int64)
        for j in range(k, n):
            # The last bucket covers bins i..j (i >= k) at length values[j].
            i = np.arange(k, j + 1)
            cand = cost[i - 1] + values[j] * (csum[j + 1] - csum[i])
            best = int(np.argmin(cand))
            new[j], back[k, j] = cand[best], i[best]
        cost = new
    chosen, j = [], n - 1
    for k in range(num_buckets - 1, -1, -1):
        chosen.append(int(values[j]))
        if k == 0:
            break
        j = int(back[k, j]) - 1
    return tuple(sorted(chosen))


def assign_buckets(lengths, bucket_lengths) -> np.ndarray:
    """Index of the smallest bucket that holds each length, int64 `[n]`; -1 if none does."""
    lengths = np.asarray(lengths, np.int64)
    buckets = np.asarray(bucket_lengths, np.int64)
    idx = np.searchsorted(buckets, lengths, side="left")
    return np.where(idx < len(buckets), idx, -1)


def plan_batches(lengths, bucket_lengths, batch_size: int, *,
                 rng: np.random.Generator | None = None,
                 drop_remainder: bool = False) -> list[BatchPlan]:
    """Batches of exactly `batch_size` rows, each from one bucket.

    Entries with a negative length are left out (bad or filtered utterances); a length longer
    than the largest bucket is an error. With `rng` the order inside buckets and the order of
    batches are shuffled; without it batches follow bucket order and index order.
    """
    lengths = np.asarray(lengths, np.int64)
    bucket_lengths = tuple(int(b) for b in bucket_lengths)
    keep = np.nonzero(lengths >= 0)[0]
    which = assign_buckets(lengths[keep], bucket_lengths)
    if (which < 0).any():
        raise ValueError(f"{int((which < 0).sum())} utterance(s) are longer than the largest "
                         f"bucket ({bucket_lengths[-1]} samples)")
    plans = []
    for b, blen in enumerate(bucket_lengths):
        members = keep[which == b]
        if rng is not None:
            members = rng.permutation(members)
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            if len(chunk) < batch_size:
                if drop_remainder:
                    continue
                chunk = np.concatenate([chunk, np.full(batch_size - len(chunk), -1, np.int64)])
            plans.append(BatchPlan(blen, chunk.astype(np.int64)))
    if rng is not None:
        plans = [plans[i] for i in rng.permutation(len(plans))]
    return plans


def padding_fraction(plans: list[BatchPlan], lengths) -> float:
    """Padded samples / all samples over the plan (filler rows count as padding)."""
    lengths = np.asarray(lengths, np.int64)
    total = sum(p.bucket_length * len(p.indices) for p in plans)
    valid = sum(int(np.minimum(lengths[p.indices[p.indices >= 0]], p.bucket_length).sum())
                for p in plans)
    return 0.0 if total == 0 else 1.0 - valid / total
