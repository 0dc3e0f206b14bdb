"""Report: what per-layer `remat` saves, as the bytes the backward pass keeps from the forward pass.

XLA:CPU's `memory_analysis()` does not show rematerialisation's saving (its temporaries are the
same or larger with `remat`, see RESULTS.md), so this report measures it where it is decided, in
JAX's autodiff: the residuals that `jax.vjp` of the stable fine-tuning forward (frozen CNN, loss on
the last hidden state) keeps for the backward pass, from abstract shapes (nothing is allocated),
with and without `remat`. The residuals include the parameters the backward pass reads; their
size is shown beside them. XLA's temporaries of the compiled gradient are printed for comparison.
    python bench/remat_memory.py [--sizes base,large,xlarge] [--batch 8] [--seconds 4]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import jax

from common import environment, frozen_cnn_gradient_problem, print_table, sizes_parser, tree_bytes


def measure(size: str, remat: bool, batch: int, seconds: float, xla: bool) -> dict:
    loss, params, audio = frozen_cnn_gradient_problem(size, batch, seconds, remat=remat)
    residuals = jax.eval_shape(lambda p, a: jax.vjp(lambda q: loss(q, a), p)[1], params, audio)
    temp = jax.jit(jax.grad(loss)).lower(params, audio).compile().memory_analysis().temp_size_in_bytes if xla else None
    return {"residuals": tree_bytes(residuals), "params": tree_bytes(params), "temp": temp}


def main(argv=None) -> None:
    parser = sizes_parser(__doc__)
    parser.add_argument("--no-xla", action="store_true", help="skip compiling for XLA's temporaries")
    args = parser.parse_args(argv)
    gib = lambda b: "-" if b is None else f"{b / 2 ** 30:.3f} GiB"
    rows = []
    for size in args.sizes.split(","):
        off, on = (measure(size, remat, args.batch, args.seconds, not args.no_xla) for remat in (False, True))
        saved_off, saved_on = off["residuals"] - off["params"], on["residuals"] - on["params"]
        rows.append((size, gib(off["params"]), gib(off["residuals"]), gib(on["residuals"]),
                     f"{saved_off / max(saved_on, 1):.1f}x", gib(off["temp"]), gib(on["temp"])))
        print(f"{size}: done", flush=True)
    print(environment())
    print_table(f"backward-pass residuals of the frozen-CNN forward, batch {args.batch} x {args.seconds:g} s, float32",
                ("model", "params", "residuals, no remat", "residuals, remat",
                 "activations kept: no remat / remat", "XLA:CPU temp, no remat", "XLA:CPU temp, remat"), rows)


if __name__ == "__main__":
    main()
