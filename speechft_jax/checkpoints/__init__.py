"""Checkpoint import and export: transformers directories and hub ids, fairseq HuBERT `.pt`
files (through a restricted unpickler), and this project's Flax directories."""

from speechft_jax.checkpoints.model_dir import (load_pretrained, model_files, refuse_to_replace, save_flax,
                                                save_pretrained)
from speechft_jax.errors import CheckpointError

__all__ = ["CheckpointError", "load_pretrained", "model_files", "refuse_to_replace", "save_flax", "save_pretrained"]
