"""SpecAugment span masks: the same statistics as transformers' `_compute_mask_indices`."""

import jax
import numpy as np
import pytest
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

from speechft_jax.models.masking import compute_span_mask

DRAWS = 1500


def _run_lengths(mask_row):
    runs, count = [], 0
    for value in mask_row:
        if value:
            count += 1
        elif count:
            runs.append(count)
            count = 0
    if count:
        runs.append(count)
    return runs


def _stats(masks, lengths):
    masks = np.asarray(masks)
    fraction = masks.mean(axis=0).mean(axis=-1)  # per row
    per_row_frac_of_length = np.array([masks[:, i, :n].mean() for i, n in enumerate(lengths)])
    runs = [r for m in masks for row in m for r in _run_lengths(row)]
    return fraction, per_row_frac_of_length, np.mean(runs), np.mean(np.array(runs) == 10)


@pytest.mark.parametrize("prob,span,min_masks", [(0.65, 10, 2), (0.05, 10, 2), (0.3, 4, 0)])
def test_mask_statistics_match_reference(prob, span, min_masks):
    shape, lengths = (4, 200), np.array([200, 150, 80, 30])
    attention = (np.arange(shape[1])[None, :] < lengths[:, None]).astype(np.int64)
    np.random.seed(0)
    import torch
    reference = np.stack([_compute_mask_indices(shape, prob, span, torch.tensor(attention), min_masks)
                          for _ in range(DRAWS)])
    draw = jax.jit(jax.vmap(lambda key: compute_span_mask(key, shape, prob, span, lengths, min_masks)))
    ours = np.asarray(draw(jax.random.split(jax.random.PRNGKey(0), DRAWS)))
    ref_frac, ref_frac_len, ref_run, ref_exact = _stats(reference, lengths)
    our_frac, our_frac_len, our_run, our_exact = _stats(ours, lengths)
    np.testing.assert_allclose(our_frac, ref_frac, atol=0.01)
    np.testing.assert_allclose(our_frac_len, ref_frac_len, atol=0.015)
    assert abs(our_run - ref_run) < 0.05 * ref_run
    assert abs(our_exact - ref_exact) < 0.03
    # spans never start in padding: beyond a row's length only the last frame (a dummy) can be set
    for i, n in enumerate(lengths):
        assert not ours[:, i, n:shape[1] - 1].any()
        assert bool(reference[:, i, n:shape[1] - 1].any()) is False


def test_mask_is_deterministic_per_key_and_valid_shapes():
    a = compute_span_mask(jax.random.PRNGKey(3), (2, 50), 0.5, 5, np.array([50, 20]), 2)
    b = compute_span_mask(jax.random.PRNGKey(3), (2, 50), 0.5, 5, np.array([50, 20]), 2)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="longer than the sequence"):
        compute_span_mask(jax.random.PRNGKey(0), (2, 5), 0.5, 10)
