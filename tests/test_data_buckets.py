"""Bucket choice, batch plans and padding fraction."""

import itertools

import numpy as np
import pytest

from speechft_jax.data.buckets import (
    assign_buckets, choose_bucket_lengths, padding_fraction, plan_batches,
)


def _padded_total(lengths, buckets):
    return sum(buckets[b] for b in assign_buckets(lengths, buckets))


def test_choose_bucket_lengths_is_optimal():
    rng = np.random.default_rng(0)
    lengths = rng.integers(400, 320 * 12, 60)
    chosen = choose_bucket_lengths(lengths, 3)
    assert len(chosen) == 3 and chosen[-1] >= lengths.max()
    assert all(b % 320 == 0 for b in chosen)
    grid = np.unique(-(-lengths // 320) * 320)
    best = min(_padded_total(lengths, (*c, grid[-1])) for c in itertools.combinations(grid[:-1], 2))
    assert _padded_total(lengths, chosen) == best


def test_choose_bucket_lengths_clips_to_max_length():
    assert choose_bucket_lengths([1000, 5000, 90000], 2, max_length=16000) == (5120, 16000)
    assert choose_bucket_lengths([1000, 1000], 4) == (1280,)


def test_plan_batches_fixed_size_every_index_once():
    lengths = np.array([500, 700, 3000, 3100, 640, 2900, 100000, -1])
    buckets = (960, 3200, 100160)
    plans = plan_batches(lengths, buckets, 2, rng=np.random.default_rng(1))
    assert all(len(p.indices) == 2 for p in plans)
    used = np.concatenate([p.indices for p in plans])
    assert sorted(used[used >= 0].tolist()) == list(range(7))  # -1 length left out
    for p in plans:
        assert all(lengths[i] <= p.bucket_length for i in p.indices if i >= 0)
    frac = padding_fraction(plans, lengths)
    valid = lengths[:7].sum()
    total = sum(p.bucket_length * 2 for p in plans)
    assert frac == pytest.approx(1 - valid / total)
    dropped = plan_batches(lengths, buckets, 2, drop_remainder=True)
    assert all(p.num_valid == 2 for p in dropped)


def test_plan_batches_rejects_too_long():
    with pytest.raises(ValueError, match="longer than the largest bucket"):
        plan_batches([5000], (3200,), 4)
