"""`python -m speechft_jax.train --config configs/<name>.yaml [--set key=value ...] [--resume]`.

Trains (or continues) the run; when the config has a `sweep` section, process 0 then runs
Speech-FT's alpha sweep of `model.pretrained` against the run's encoder (probes, similarity, a table
and a plot under `output_dir/sweep/`), as `configs/demo.yaml` does.
"""

from __future__ import annotations

import sys

from speechft_jax.cli import ArgumentParser


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.train", description=(
        "Fine-tune a speech encoder (Speech-FT stable fine-tuning and its baselines). Re-running "
        "into the same output_dir continues from its latest checkpoint."))
    parser.add_argument("--config", required=True, help="a YAML file in configs/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set output_dir=/tmp/run1 --set optimizer.steps=50")
    parser.add_argument("--resume", action="store_true", help="require a checkpoint in output_dir to continue from")
    args = parser.parse_args(argv)

    import jax

    from speechft_jax.checkpoints import CheckpointError
    from speechft_jax.config_loading import config_dirs
    from speechft_jax.data import DataError
    from speechft_jax.merge import MergeError
    from speechft_jax.models.config import ConfigError
    from speechft_jax.train.config import load_train_config
    from speechft_jax.train.distributed import maybe_initialize_distributed
    from speechft_jax.train.loop import TrainingDiverged, train

    try:
        config = load_train_config(args.config, args.overrides)
        maybe_initialize_distributed()
        dirs = config_dirs(args.config)  # where relative paths in the config's base chain are looked up
        result = train(config, config_dir=dirs, require_checkpoint=args.resume)
        if config.sweep is not None and jax.process_index() == 0:
            from speechft_jax.sweep.runner import report, run_sweep, training_run_sweep

            print(f"Speech-FT steps 2 and 3: the alpha sweep {list(config.sweep.alphas)} of theta_0 and {result.encoder_dir}")
            print(report(run_sweep(training_run_sweep(config, result, dirs))))
    except (ConfigError, DataError, CheckpointError, MergeError, TrainingDiverged) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
