"""`python -m speechft_jax.data.synth --out DIR --preset demo`: build the demo corpus."""

from __future__ import annotations

import sys

from speechft_jax.cli import ArgumentParser, run_command
from speechft_jax.data.synth.build import build_corpus, ensure_corpus
from speechft_jax.data.synth.presets import PRESETS
from speechft_jax.data.synth.stats import corpus_report, format_report


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.data.synth",
                                     description="Build the synthetic multi-task speech corpus.")
    parser.add_argument("--out", help="output folder (default: the cache, built once)")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--stats", action="store_true",
                        help="print hours per split, speakers and the mean-MFCC probes")
    args = parser.parse_args(argv)
    return run_command(lambda: run(args))


def _progress(done: int, total: int) -> None:
    print(f"\rrendered {done}/{total} utterances", end="", file=sys.stderr, flush=True)


def run(args) -> None:
    """Build (or find) the corpus of `args` (parsed); its report on stdout with `--stats`."""
    if args.out:
        info = build_corpus(args.out, args.preset, seed=args.seed, workers=args.workers,
                            progress=_progress)
        root = args.out
        print(f"\nbuilt {info['utterances']} utterances ({info['hours']:.2f} h) in "
              f"{info['build_seconds']} s -> {root}", file=sys.stderr)
    else:
        root = ensure_corpus(args.preset, seed=args.seed, workers=args.workers, progress=_progress)
        print(f"\ncorpus at {root}", file=sys.stderr)
    if args.stats:
        print(format_report(corpus_report(root)))


if __name__ == "__main__":
    sys.exit(main())
