"""`python -m speechft_jax.convert SRC OUT --to hf|flax|fairseq|s3prl`: convert encoder checkpoints.

SRC is anything `load_pretrained` reads: a transformers directory, a hub id, a Flax directory
written by this project, or a `.pt` of the fairseq / s3prl world (fairseq HuBERT and wav2vec 2.0,
unilm WavLM, s3prl's converted, DeCoAR 2.0 and downstream checkpoints; a downstream checkpoint
holds weights only, so `--like` names the pre-trained model it started from). `--to hf` writes a
transformers directory (`config.json` + `model.safetensors`); `--to flax` this project's Flax
directory (keeping a pre-training head); `--to fairseq` and `--to s3prl` write OUT as one `.pt`
file that fairseq (and the official Speech-FT code) or s3prl's upstream experts load. An OUT that
already holds a model is refused unless `--overwrite` is given; then every model file there, of
any format, is replaced or removed, so the directory never holds two models.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

from speechft_jax.checkpoints import (PT_FORMATS, load_pretrained, refuse_to_replace, save_flax, save_pretrained,
                                      save_pt)
from speechft_jax.cli import ArgumentParser, run_command
from speechft_jax.errors import ConfigError


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="transformers directory, hub id, speechft Flax directory, or a fairseq / "
                                       "unilm / s3prl .pt file")
    parser.add_argument("out", help="output directory for hf / flax (created if missing; files replaced "
                                    "atomically), output .pt file for fairseq / s3prl")
    parser.add_argument("--to", choices=("hf", "flax") + PT_FORMATS, default="hf", help="output format (default: hf)")
    parser.add_argument("--like", metavar="MODEL",
                        help="the pre-trained model an s3prl downstream checkpoint (SRC) was fine-tuned from: "
                             "its architecture, frame rule and preprocessing")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model already in OUT (every weight file of every format there)")
    args = parser.parse_args(argv)
    return run_command(lambda: run(args))


def run(args) -> None:
    """The conversion of `args` (parsed): a one-line summary on stdout."""
    if args.to in PT_FORMATS:
        if Path(args.out).exists() and not args.overwrite:
            raise ConfigError(f"{args.out}: already exists; pass --overwrite to replace it")
    else:
        refuse_to_replace(args.out, args.overwrite, args.out)
    like = load_pretrained(args.like) if args.like else None
    bundle = load_pretrained(args.source, like=like)
    head = bundle.pretraining_head
    if args.to == "hf":
        if head is not None:
            print("note: transformers has no place for the pre-training head (HuBERT's final_proj and "
                  "label_embs_concat, wav2vec 2.0's quantizer); use --to flax or a .pt format to keep it",
                  file=sys.stderr)
        out = save_pretrained(bundle, args.out)
    elif args.to == "flax":
        out = save_flax(bundle, args.out)
    else:
        out, placeholders = save_pt(bundle, args.out, args.to)
        if placeholders:
            print(f"note: {bundle.source} has no pre-training head; {args.to}'s strict loader needs one, so "
                  f"{', '.join(placeholders)} were written as zeros (they do not change the encoder's output)",
                  file=sys.stderr)
    count = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(bundle.params))
    cfg = bundle.config
    kept = head is not None and args.to != "hf"
    print(f"{bundle.source} -> {out} ({args.to}): {cfg.model_type}, {cfg.num_hidden_layers} layers, "
          f"hidden {cfg.hidden_size}, {count / 1e6:.2f} M parameters" + (", with pre-training head" if kept else ""))


if __name__ == "__main__":
    sys.exit(main())
