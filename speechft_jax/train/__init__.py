"""Fine-tuning: the config schema, optimizer partition and schedules, sharding, the step, the loop
and its checkpoints. `train(load_train_config(path))` runs a training YAML's run;
`python -m speechft_jax.train --config ...` runs it through `speechft_jax.pipeline` (then the
alpha sweep, when the file has a `sweep:` section)."""

from speechft_jax.train.config import TrainConfig, load_train_config

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "load_train_config", "train"]


def __getattr__(name):
    # the loop pulls in the whole model and data stack; load it on first use
    if name in ("train", "TrainResult", "TrainingDiverged"):
        from speechft_jax.train import loop
        return getattr(loop, name)
    raise AttributeError(f"module 'speechft_jax.train' has no attribute {name!r}")
