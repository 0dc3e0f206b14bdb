"""`python -m speechft_jax.sweep --config sweep.yaml [--set key=value ...]`: Speech-FT's alpha sweep.

Evaluates every alpha of the config with SUPERB-style probes on its tasks (declared in an
evaluation file, or the demo corpus's; features of all alphas from one compiled program), prints a
table, writes `sweep.json` and the figure `scores.png` / `scores.pdf` (with matplotlib, the `plot`
extra; without it a line says the figure was skipped) to `output_dir`, and names the alpha with the best
mean dev score over `select_on`. `output_dir` is
checked writable before any work; each probe's result is kept in `output_dir/sweep.partial.json`
as it finishes, so an interrupted sweep, run again with the same settings, resumes. The log
(notes, warnings, errors) is also kept in `output_dir/sweep.log`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from speechft_jax.cli import QUIET_HELP, ArgumentParser, log_to_file, run_command

LOG_NAME = "sweep.log"


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the sweep YAML (see speechft_jax/sweep/config.py)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value")
    parser.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    args = parser.parse_args(argv)
    return run_command(lambda: run(args), quiet=args.quiet)


def run(args) -> None:
    """The sweep of `args` (parsed): its table on stdout."""
    import dataclasses

    from speechft_jax.config_loading import resolve_path
    from speechft_jax.sweep.config import load_sweep_config
    from speechft_jax.sweep.runner import report, run_sweep

    config, dirs = load_sweep_config(args.config, args.set)
    log_to_file(Path(config.output_dir) / LOG_NAME)
    config = dataclasses.replace(config, pretrained=str(resolve_path(config.pretrained, dirs)),
                                 finetuned=str(resolve_path(config.finetuned, dirs)))
    print(report(run_sweep(config, config.eval_tasks(dirs))))


if __name__ == "__main__":
    sys.exit(main())
