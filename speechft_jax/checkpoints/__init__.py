"""Checkpoint import and export: transformers directories and hub ids, the `.pt` files of fairseq,
unilm and s3prl (through a restricted unpickler; written without torch), and this project's Flax
directories."""

from speechft_jax.checkpoints.model_dir import (load_pretrained, model_files, refuse_to_replace, save_encoder,
                                                save_flax, save_pretrained)
from speechft_jax.checkpoints.pt_formats import PT_FORMATS, save_pt
from speechft_jax.errors import CheckpointError

__all__ = ["CheckpointError", "PT_FORMATS", "load_pretrained", "model_files", "refuse_to_replace", "save_encoder",
           "save_flax", "save_pretrained", "save_pt"]
