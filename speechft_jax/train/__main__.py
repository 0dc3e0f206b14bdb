"""`python -m speechft_jax.train --config configs/<name>.yaml [--set key=value ...] [--resume]`.

Trains (or continues) the run; when the config has a `sweep` section, process 0 then runs
Speech-FT's alpha sweep of `model.pretrained` against the run's encoder (probes, similarity, a table
and a plot under `output_dir/sweep/`), as `configs/demo.yaml` does. Process 0 also keeps the log
(notes, warnings, errors) in `output_dir/train.log`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from speechft_jax.cli import QUIET_HELP, ArgumentParser, log_to_file, run_command

LOG_NAME = "train.log"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.train", description=(
        "Fine-tune a speech encoder (Speech-FT stable fine-tuning and its baselines). Re-running "
        "into the same output_dir continues from its latest checkpoint."))
    parser.add_argument("--config", required=True, help="a YAML file in configs/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set output_dir=/tmp/run1 --set optimizer.steps=50")
    parser.add_argument("--resume", action="store_true", help="require a checkpoint in output_dir to continue from")
    parser.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    args = parser.parse_args(argv)
    return run_command(lambda: run(args), quiet=args.quiet)


def run(args) -> None:
    """The run of `args` (parsed), and its sweep when the config has one."""
    import jax

    from speechft_jax.config_loading import config_dirs
    from speechft_jax.pipeline import load_pipeline_config, run_pipeline
    from speechft_jax.train.distributed import maybe_initialize_distributed

    config = load_pipeline_config(args.config, args.overrides)
    maybe_initialize_distributed()
    if jax.process_index() == 0:  # the other processes log to their console only
        log_to_file(Path(config.output_dir) / LOG_NAME)
    # relative paths in the config are looked up beside each file of its base chain
    run_pipeline(config, config_dirs(args.config), resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
