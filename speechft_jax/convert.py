"""`python -m speechft_jax.convert SRC OUT --to hf|flax`: convert encoder checkpoints.

SRC is anything `load_pretrained` reads (a transformers directory, a hub id, a fairseq HuBERT
`.pt`, or a Flax directory written by this project). `--to hf` writes a transformers directory
(`config.json` + `model.safetensors`); `--to flax` writes this project's Flax directory
(`config.json` + `speechft_params.msgpack`, keeping a fairseq pre-training head). An OUT that
already holds a model is refused unless `--overwrite` is given; then every model file there, of
either format, is replaced or removed, so the directory never holds two models.
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from speechft_jax.checkpoints import load_pretrained, refuse_to_replace, save_flax, save_pretrained
from speechft_jax.cli import ArgumentParser, run_command


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="transformers directory, hub id, fairseq .pt, or speechft Flax directory")
    parser.add_argument("out_dir", help="output directory (created if missing; files replaced atomically)")
    parser.add_argument("--to", choices=("hf", "flax"), default="hf", help="output format (default: hf)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model already in OUT (every weight file of every format there)")
    args = parser.parse_args(argv)
    return run_command(lambda: run(args))


def run(args) -> None:
    """The conversion of `args` (parsed): a one-line summary on stdout."""
    refuse_to_replace(args.out_dir, args.overwrite, args.out_dir)
    bundle = load_pretrained(args.source)
    if args.to == "hf":
        if bundle.pretraining_head is not None:
            print("note: transformers has no place for HuBERT's pre-training head (final_proj, "
                  "label_embs_concat); use --to flax to keep it", file=sys.stderr)
        out = save_pretrained(bundle, args.out_dir)
    else:
        out = save_flax(bundle, args.out_dir)
    count = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(bundle.params))
    cfg = bundle.config
    print(f"{bundle.source} -> {out} ({args.to}): {cfg.model_type}, {cfg.num_hidden_layers} layers, "
          f"hidden {cfg.hidden_size}, {count / 1e6:.2f} M parameters"
          + (", with pre-training head" if bundle.pretraining_head is not None and args.to == "flax" else ""))


if __name__ == "__main__":
    sys.exit(main())
