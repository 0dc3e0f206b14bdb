"""Query-by-example detection (`evaluate/qbe.py`): subsequence DTW, MTWV, MAP and the demo-corpus task."""

from __future__ import annotations

import numpy as np
import pytest

import speechft_jax as sj
from conftest import tiny_encoder_config
from speechft_jax.evaluate.qbe import mean_average_precision, mtwv, subsequence_dtw
from speechft_jax.evaluate.demo_tasks import demo_task
from speechft_jax.evaluate.runner import qbe_result


def _reference_sdtw(query, doc):
    """Plain dynamic programming over cells: start anywhere in the document, end anywhere."""
    q = query / np.linalg.norm(query, axis=-1, keepdims=True)
    d = doc / np.linalg.norm(doc, axis=-1, keepdims=True)
    cost = 1.0 - q @ d.T
    acc = np.full(cost.shape, np.inf)
    for i in range(cost.shape[0]):
        for j in range(cost.shape[1]):
            if i == 0:
                acc[i, j] = cost[i, j]
                continue
            best = acc[i - 1, j]
            if j > 0:
                best = min(best, acc[i - 1, j - 1], acc[i, j - 1])
            acc[i, j] = cost[i, j] + best
    return acc[-1].min() / cost.shape[0]


def test_subsequence_dtw_matches_the_cell_by_cell_recursion_on_padded_documents():
    rng = np.random.default_rng(0)
    query = rng.normal(size=(5, 8))
    lengths = np.array([9, 4, 12, 1])
    docs = rng.normal(size=(4, 12, 8))
    docs[np.arange(12)[None, :] >= lengths[:, None]] = 1e6  # padding must not matter
    got = subsequence_dtw(query, docs, lengths)
    want = [_reference_sdtw(query, docs[n, :lengths[n]]) for n in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_query_hidden_in_a_document_costs_nothing_wherever_it_is():
    rng = np.random.default_rng(1)
    query = rng.normal(size=(6, 16))
    docs = rng.normal(size=(3, 30, 16))
    docs[0, 3:9] = query
    docs[1, 24:30] = query
    stretched = np.repeat(query, 2, axis=0)  # spoken twice as slowly
    docs[2, 10:22] = stretched
    costs = subsequence_dtw(query, docs, np.array([30, 30, 30]))
    np.testing.assert_allclose(costs, 0.0, atol=1e-5)
    assert subsequence_dtw(query, rng.normal(size=(1, 30, 16)), np.array([30]))[0] > 0.3


def _twv_brute_force(scores, relevant, beta):
    best = 0.0
    for theta in np.unique(scores):
        detected = scores >= theta
        p_miss = 1 - (detected & relevant).sum(1) / relevant.sum(1)
        p_fa = (detected & ~relevant).sum(1) / (~relevant).sum(1)
        best = max(best, 1 - np.mean(p_miss + beta * p_fa))
    return best


@pytest.mark.parametrize("seed", range(4))
def test_mtwv_is_the_best_threshold(seed):
    rng = np.random.default_rng(seed)
    relevant = rng.random((5, 40)) < 0.2
    relevant[:, 0], relevant[:, 1] = True, False
    scores = np.round(rng.normal(size=(5, 40)) + 2.5 * relevant, 1)  # ties included
    for beta_args, beta in (({}, 12.49), ({"p_target": 0.5, "c_miss": 1.0, "c_fa": 1.0}, 1.0)):
        assert mtwv(scores, relevant, **beta_args) == pytest.approx(_twv_brute_force(scores, relevant, beta))


def test_mtwv_and_map_at_their_ends():
    relevant = np.array([[True, False, False, True], [False, True, False, False]])
    perfect = np.where(relevant, 1.0, 0.0)
    assert mtwv(perfect, relevant) == pytest.approx(1.0)
    assert mean_average_precision(perfect, relevant) == pytest.approx(1.0)
    assert mtwv(-perfect, relevant) == 0.0  # detecting nothing beats every threshold
    with pytest.raises(ValueError, match="at least one relevant"):
        mtwv(perfect[:, :1], relevant[:, :1])


def test_qbe_on_the_tiny_corpus(demo_corpus_tiny):
    bundle = sj.init_encoder(tiny_encoder_config(), seed=0)
    result = qbe_result(bundle, demo_task(demo_corpus_tiny, "qbe"), splits_used=("train", "train"))
    assert result.metric == "mtwv" and result.learning_rate is None
    assert 0.0 <= result.test <= 1.0 and result.dev == pytest.approx(result.test)  # the same split twice
    layer = result.details["layer"]
    assert result.layer_weights == [float(i == layer) for i in range(1 + bundle.config.num_hidden_layers)]
    by_layer, map_by_layer = result.details["dev_mtwv_by_layer"], result.details["dev_map_by_layer"]
    assert by_layer[layer] == max(by_layer)
    assert map_by_layer[layer] == max(m for m, v in zip(map_by_layer, by_layer) if v == by_layer[layer])
    assert result.details["test_queries"] >= 1 and 0.0 < result.details["test_map"] <= 1.0
