"""Benchmark: compile time of the encoder's training gradient, layers unrolled vs `scan_layers`.

Issue 7 asks for `nn.scan` over layers "if it cuts compile time for deep models (measure it)".
For HuBERT Base / Large / X-Large shapes (12 / 24 / 48 layers; abstract weights, nothing
allocated) this times `jax.jit(...).lower(...)` and `.compile()` of the stable fine-tuning
gradient (frozen CNN, loss on the last hidden state) with `scan_layers` off (one copy of the layer
per layer in the program) and on (alike layers as one `lax.scan`, parameters stacked inside the
program; `tests/test_scan_layers.py` checks it is the same function).
    python bench/scan_compile.py [--sizes base,large,xlarge] [--batch 8] [--seconds 4] [--remat]
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import jax

from common import HUBERT_SIZES, environment, frozen_cnn_gradient_problem, print_table, sizes_parser


def compile_seconds(size: str, scan_layers: bool, remat: bool, batch: int, seconds: float) -> tuple[float, float]:
    """(lower, compile) seconds of the frozen-CNN training gradient of HuBERT `size`."""
    loss, params, audio = frozen_cnn_gradient_problem(size, batch, seconds, scan_layers=scan_layers, remat=remat)
    start = time.perf_counter()
    lowered = jax.jit(jax.grad(loss)).lower(params, audio)
    middle = time.perf_counter()
    lowered.compile()
    return middle - start, time.perf_counter() - middle


def main(argv=None) -> None:
    parser = sizes_parser(__doc__)
    parser.add_argument("--remat", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes.split(","):
        (lu, cu), (ls, cs) = (compile_seconds(size, scan, args.remat, args.batch, args.seconds) for scan in (False, True))
        layers = HUBERT_SIZES[size]["num_hidden_layers"]
        rows.append((size, layers, f"{lu:.2f} s + {cu:.2f} s", f"{ls:.2f} s + {cs:.2f} s",
                     f"{(lu + cu) / (ls + cs):.1f}x"))
        print(f"{size}: done", flush=True)
    print(environment())
    print_table(f"lower + compile of the frozen-CNN training gradient, batch {args.batch} x {args.seconds:g} s, "
                f"float32, remat {args.remat}",
                ("model", "layers", "unrolled", "scan_layers", "unrolled / scan"), rows)


if __name__ == "__main__":
    main()
