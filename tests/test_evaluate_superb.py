"""The SUPERB score: FBANK scores 0, the reference 1000, linear in between, error rates unflipped."""

from __future__ import annotations

import pytest

from speechft_jax.evaluate.superb import load_references, superb_score


def test_fbank_scores_zero_and_the_reference_one_thousand():
    refs = load_references()
    tasks = ["pr", "ks", "er"]
    metric = {"pr": "per", "ks": "accuracy", "er": "accuracy"}
    fbank = {t: {metric[t]: refs[t][metric[t]]["fbank"]} for t in tasks}
    reference = {t: {metric[t]: refs[t][metric[t]]["reference"]} for t in tasks}
    assert superb_score(fbank, refs) == pytest.approx(0.0)
    assert superb_score(reference, refs) == pytest.approx(1000.0)


def test_halfway_and_lower_is_better():
    refs = load_references()
    # PER halfway between FBANK (82.01) and HuBERT (5.41): 500; a better PER than HuBERT: above 1000
    assert superb_score({"pr": {"per": (82.01 + 5.41) / 2}}, refs) == pytest.approx(500.0)
    assert superb_score({"pr": {"per": 3.94}}, refs) > 1000.0
    # two tasks average
    assert superb_score({"pr": {"per": 5.41}, "ks": {"accuracy": 8.63}}, refs) == pytest.approx(500.0)


def test_missing_references_are_named():
    with pytest.raises(ValueError, match="'sid'"):
        superb_score({"sid": {"accuracy": 80.0}}, load_references())
