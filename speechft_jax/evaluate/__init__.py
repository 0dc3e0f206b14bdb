"""SUPERB-style evaluation: tasks from evaluation files, weighted-sum probes (on the fly or from a
disk cache), results tables.

    from speechft_jax.evaluate import evaluate_encoder, load_eval_config
    config, dirs = load_eval_config("configs/eval/demo.yaml")
    results = evaluate_encoder(bundle, config.eval_tasks(dirs, ["pr", "sid"]))

Command line: `python -m speechft_jax.evaluate --encoder DIR --config eval.yaml [--tasks pr,sid]`.
"""

from speechft_jax.evaluate.config import EvalConfig, EvalTask, load_eval_config
from speechft_jax.evaluate.demo_tasks import EVAL_TASKS
from speechft_jax.evaluate.features import FeatureSet, cached_feature_set, extract_feature_set
from speechft_jax.evaluate.frozen_encoders import FrozenEncoders, single_encoder
from speechft_jax.evaluate.probe import ProbeResult, ProbeSpec, WeightedSumProbe
from speechft_jax.evaluate.probe_training import train_probe, train_probes
from speechft_jax.evaluate.runner import evaluate_encoder

__all__ = ["EVAL_TASKS", "EvalConfig", "EvalTask", "FeatureSet", "FrozenEncoders", "ProbeResult", "ProbeSpec", "WeightedSumProbe",
           "cached_feature_set", "evaluate_encoder", "extract_feature_set", "load_eval_config", "single_encoder",
           "train_probe", "train_probes"]
