"""`python -m speechft_jax.sweep --config sweep.yaml [--set key=value ...]`: Speech-FT's alpha sweep.

Evaluates every alpha of the config with SUPERB-style probes on the demo corpus (features of all
alphas from one compiled program), prints a table, writes `sweep.json` and `scores.svg` to
`output_dir`, and names the alpha with the best mean score over `select_on`. `output_dir` is
checked writable before any work; each probe's result is kept in `output_dir/sweep.partial.json`
as it finishes, so an interrupted sweep, run again with the same settings, resumes.
"""

from __future__ import annotations

import sys

from speechft_jax.checkpoints import CheckpointError
from speechft_jax.cli import ArgumentParser
from speechft_jax.merge import MergeError
from speechft_jax.models.config import ConfigError


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the sweep YAML (see speechft_jax/sweep/config.py)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value")
    args = parser.parse_args(argv)
    try:
        from speechft_jax.sweep.config import load_sweep_config
        from speechft_jax.sweep.runner import report, run_sweep

        summary = run_sweep(load_sweep_config(args.config, args.set))
    except (CheckpointError, ConfigError, MergeError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
