"""s3prl's checkpoint layouts, as plain dicts: converted upstream checkpoints and downstream ones.

- A **converted** upstream checkpoint (what s3prl's `upstream/hubert|wav2vec2/convert.py` writes and
  its experts read) holds a fairseq checkpoint's pieces under other names: `task_cfg` and
  `model_cfg` (fairseq's `cfg.task` / `cfg.model`), `model_weight` (fairseq's `model` state, same
  key names) and, for HuBERT, `dictionaries_symbols` (the label dictionaries' symbols; their
  lengths size `label_embs_concat`). s3prl loads the weights strictly.
- A **downstream** checkpoint (what s3prl's runner saves while training a downstream model, and
  what the official Speech-FT code reads fine-tuned encoders from) holds the upstream expert's state
  dict under `Upstream` (the encoder's keys behind the expert's `model.` prefix) beside
  `Downstream`, `Featurizer`, `Optimizer`, `Step`, `Args` and `Config`. It has weights only: the
  architecture is that of the pre-trained checkpoint the run started from.
WavLM's s3prl expert reads unilm's own checkpoint (`cfg` + `model`) and DeCoAR 2.0's reads
`model`; those need no translation here.
"""

from __future__ import annotations

from speechft_jax.errors import CheckpointError

CONVERTED_KEYS = ("task_cfg", "model_cfg", "model_weight")
UPSTREAM_KEY = "Upstream"
_EXPERT_PREFIX = "model."  # s3prl's experts hold the encoder as `self.model`


def is_converted(checkpoint) -> bool:
    return isinstance(checkpoint, dict) and all(k in checkpoint for k in CONVERTED_KEYS)


def is_downstream(checkpoint) -> bool:
    return isinstance(checkpoint, dict) and UPSTREAM_KEY in checkpoint


def converted_to_fairseq(checkpoint: dict, source: str) -> dict:
    """A converted upstream checkpoint -> the fairseq checkpoint layout (`cfg` + `model`) it holds."""
    for key in ("task_cfg", "model_cfg"):
        if not isinstance(checkpoint[key], dict) and not hasattr(checkpoint[key], "state"):
            raise CheckpointError(f"{source}: {key} is a {type(checkpoint[key]).__name__}, expected a mapping")
    if not isinstance(checkpoint["model_weight"], dict):
        raise CheckpointError(f"{source}: model_weight is a {type(checkpoint['model_weight']).__name__}, "
                              "expected a state dict")
    return {"cfg": {"model": checkpoint["model_cfg"], "task": checkpoint["task_cfg"]},
            "model": checkpoint["model_weight"]}


def upstream_state(checkpoint: dict, source: str) -> dict:
    """The encoder's state dict inside a downstream checkpoint's `Upstream` (prefix removed)."""
    upstream = checkpoint[UPSTREAM_KEY]
    if not isinstance(upstream, dict) or not upstream:
        raise CheckpointError(f"{source}: {UPSTREAM_KEY} is {type(upstream).__name__ if upstream else 'empty'}, "
                              "expected the upstream's state dict (s3prl saves it when the upstream trains)")
    outside = [k for k in upstream if not str(k).startswith(_EXPERT_PREFIX)]
    if outside:
        raise CheckpointError(f"{source}: {UPSTREAM_KEY} holds keys outside the expert's model "
                              f"({', '.join(map(str, outside[:3]))}), expected every key to start with "
                              f"'{_EXPERT_PREFIX}'")
    return {k[len(_EXPERT_PREFIX):]: v for k, v in upstream.items()}


def converted_checkpoint(model_cfg: dict, task_cfg: dict, state: dict, dictionaries_symbols=None) -> dict:
    """The converted-checkpoint dict s3prl's experts read (`dictionaries_symbols` for HuBERT)."""
    out = {"task_cfg": task_cfg, "model_cfg": model_cfg, "model_weight": state}
    if dictionaries_symbols is not None:
        out["dictionaries_symbols"] = dictionaries_symbols
    return out
