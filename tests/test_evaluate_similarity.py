"""Feature similarity (CKA, R^2) and weight change."""

from __future__ import annotations

import numpy as np

from speechft_jax.evaluate.similarity import layer_similarity, linear_cka, linear_r2, weight_change


def test_cka_is_one_for_rotated_scaled_copies_and_low_for_unrelated_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert abs(linear_cka(x, 3.0 * x @ rotation) - 1.0) < 1e-9
    assert linear_cka(x, rng.normal(size=(500, 8))) < 0.1
    # a numpy reference of the formula, written out
    xc, yc = x - x.mean(0), (x[:, :4] ** 2) - (x[:, :4] ** 2).mean(0)
    expected = np.sum((yc.T @ xc) ** 2) / (np.sqrt(np.sum((xc.T @ xc) ** 2)) * np.sqrt(np.sum((yc.T @ yc) ** 2)))
    assert abs(linear_cka(x, x[:, :4] ** 2) - expected) < 1e-9


def test_r2_is_one_for_a_linear_map_and_near_zero_for_noise():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 6))
    assert linear_r2(x, x @ rng.normal(size=(6, 3)) + 2.0) > 0.999
    assert abs(linear_r2(x, rng.normal(size=(1000, 3)))) < 0.05


def test_layer_similarity_and_weight_change():
    rng = np.random.default_rng(2)
    feats = [rng.normal(size=(3, 40, 5)) for _ in range(10)]
    rows = layer_similarity(feats, feats)
    assert [r["layer"] for r in rows] == [0, 1, 2] and all(r["cka"] > 0.999 and r["r2"] > 0.999 for r in rows)
    theta_0 = {"a": np.ones((2, 2), np.float32)}
    change = weight_change({"a": np.full((2, 2), 1.5, np.float32)}, theta_0)
    assert abs(change["l2"] - 1.0) < 1e-6 and abs(change["relative"] - 0.5) < 1e-6
