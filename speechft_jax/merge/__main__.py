"""`python -m speechft_jax.merge --pretrained DIR --finetuned DIR [DIR ...] --alpha 0.25 --out DIR`.

Writes a transformers directory (loads with `AutoModel.from_pretrained`) holding
`theta_0 + alpha * mean_i(theta_i - theta_0)` (one fine-tuned model: the interpolation
`(1 - alpha) theta_0 + alpha theta_ft`). A pre-training head in the pre-trained directory is kept
as it is (theta_0). `--weights` replaces the mean by a weighted sum.
"""

from __future__ import annotations

import argparse
import sys

from speechft_jax.checkpoints import CheckpointError, load_pretrained, save_pretrained
from speechft_jax.merge import MergeError, check_same_architecture, interpolate, merge_task_vectors
from speechft_jax.models.config import ConfigError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m speechft_jax.merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", required=True, help="theta_0: the pre-trained encoder directory")
    parser.add_argument("--finetuned", required=True, nargs="+", help="one or more fine-tuned encoder directories")
    parser.add_argument("--alpha", type=float, default=0.25, help="interpolation weight (default 0.25, Speech-FT's)")
    parser.add_argument("--weights", type=float, nargs="+", help="task-vector weights (default: the mean)")
    parser.add_argument("--out", required=True, help="output directory (files written atomically)")
    args = parser.parse_args(argv)
    try:
        base = load_pretrained(args.pretrained)
        tuned = []
        for path in args.finetuned:
            bundle = load_pretrained(path)
            check_same_architecture(base, bundle, args.pretrained, path)
            tuned.append(bundle.params)
        if len(tuned) == 1 and args.weights is None:
            merged = interpolate(base.params, tuned[0], args.alpha)
        else:
            merged = merge_task_vectors(base.params, tuned, args.alpha, args.weights)
        out = save_pretrained(base, args.out, params=merged)
    except (CheckpointError, ConfigError, MergeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"merged {len(tuned)} fine-tuned model(s) into {args.pretrained} with alpha {args.alpha:g} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
