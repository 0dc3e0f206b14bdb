"""SUPERB-style evaluation: frozen-encoder features (cached), weighted-sum probes, results tables.

    from speechft_jax.evaluate import evaluate_encoder
    results = evaluate_encoder(bundle, ["pr", "sid"], corpus_root=ensure_corpus("demo"))

Command line: `python -m speechft_jax.evaluate --encoder DIR --tasks pr,sid,ks,style`.
"""

from speechft_jax.evaluate.demo_tasks import EVAL_TASKS
from speechft_jax.evaluate.features import FeatureSet, cached_feature_set, extract_feature_set
from speechft_jax.evaluate.frozen_encoders import FrozenEncoders, single_encoder
from speechft_jax.evaluate.probe import ProbeResult, ProbeSpec, WeightedSumProbe
from speechft_jax.evaluate.probe_training import train_probe, train_probes
from speechft_jax.evaluate.runner import evaluate_encoder

__all__ = ["EVAL_TASKS", "FeatureSet", "FrozenEncoders", "ProbeResult", "ProbeSpec", "WeightedSumProbe",
           "cached_feature_set", "evaluate_encoder", "extract_feature_set", "single_encoder", "train_probe",
           "train_probes"]
