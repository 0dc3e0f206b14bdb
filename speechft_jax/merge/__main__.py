"""`python -m speechft_jax.merge --pretrained DIR --finetuned DIR [DIR ...] --alpha 0.25 --out DIR`.

Writes a transformers directory (loads with `AutoModel.from_pretrained`; for DeCoAR 2.0, which
transformers lacks, this project's Flax directory) holding
`theta_0 + alpha * mean_i(theta_i - theta_0)` (one fine-tuned model: the interpolation
`(1 - alpha) theta_0 + alpha theta_ft`). A pre-training head in the pre-trained directory is kept
as it is (theta_0). `--weights` replaces the mean by a weighted sum. An `--out` that already holds
a model is refused unless `--overwrite` is given; then every model file there, of any format, is
replaced or removed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from speechft_jax.checkpoints import load_pretrained, refuse_to_replace, save_encoder
from speechft_jax.cli import ArgumentParser, run_command
from speechft_jax.merge import interpolate, merge_task_vectors
from speechft_jax.models.pretrained import check_same_architecture


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", required=True, help="theta_0: the pre-trained encoder directory")
    parser.add_argument("--finetuned", required=True, nargs="+", help="one or more fine-tuned encoder directories")
    parser.add_argument("--alpha", type=float, default=0.25, help="interpolation weight (default 0.25, Speech-FT's)")
    parser.add_argument("--weights", type=float, nargs="+", help="task-vector weights (default: the mean)")
    parser.add_argument("--out", required=True, help="output directory (files written atomically)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model already in --out (every weight file of every format there)")
    args = parser.parse_args(argv)
    for flag, values in (("--alpha", [args.alpha]), ("--weights", args.weights or [])):
        if not all(math.isfinite(v) for v in values):
            parser.error(f"{flag} {' '.join(f'{v:g}' for v in values)}: expected finite numbers")
    if args.weights is not None and len(args.weights) != len(args.finetuned):
        parser.error(f"--weights: {len(args.weights)} given for {len(args.finetuned)} --finetuned directories")
    inputs = [args.pretrained, *args.finetuned]
    if any(Path(args.out).resolve() == Path(path).resolve() for path in inputs):
        parser.error(f"--out {args.out}: is one of the input directories, expected a new one (it would be overwritten)")
    return run_command(lambda: run(args))


def run(args) -> None:
    """The merge of `args` (parsed): a one-line summary on stdout."""
    refuse_to_replace(args.out, args.overwrite, f"--out {args.out}")
    if not 0.0 <= args.alpha <= 1.0:
        print(f"note: alpha {args.alpha:g} is outside [0, 1]: extrapolating past the "
              f"{'pre-trained' if args.alpha < 0 else 'fine-tuned'} weights", file=sys.stderr)
    base = load_pretrained(args.pretrained)
    tuned = []
    for path in args.finetuned:
        bundle = load_pretrained(path, like=base)  # an s3prl downstream checkpoint has base's architecture
        check_same_architecture(base, bundle, args.pretrained, path)
        tuned.append(bundle.params)
    if len(tuned) == 1 and args.weights is None:
        merged = interpolate(base.params, tuned[0], args.alpha)
    else:
        merged = merge_task_vectors(base.params, tuned, args.alpha, args.weights)
    out = save_encoder(base, args.out, params=merged)
    print(f"merged {args.pretrained} with {len(tuned)} fine-tuned model(s) at alpha {args.alpha:g} -> {out}")


if __name__ == "__main__":
    sys.exit(main())
