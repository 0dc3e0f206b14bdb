"""Tiny transformers reference models with fully random weights, and padded test batches.

Every parameter is perturbed (LayerNorm scales away from 1, biases away from 0, WavLM's bias table
and gate constants non-trivial), so a wrong key mapping cannot hide behind default values.
"""

from __future__ import annotations

import numpy as np
import torch
import transformers

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            conv_dim=(16, 16, 16), conv_kernel=(10, 3, 2), conv_stride=(5, 2, 2),
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, attn_implementation="eager")
STABLE = dict(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)

VARIANTS = {
    "hubert-base": (transformers.HubertConfig, {}),
    "hubert-large": (transformers.HubertConfig, STABLE),
    "hubert-batchnorm-posconv": (transformers.HubertConfig, dict(conv_pos_batch_norm=True, feat_proj_layer_norm=False)),
    "wav2vec2-base": (transformers.Wav2Vec2Config, {}),
    "wav2vec2-large": (transformers.Wav2Vec2Config, dict(STABLE, num_conv_pos_embeddings=15)),
    "wavlm-base": (transformers.WavLMConfig, dict(num_buckets=16, max_bucket_distance=40)),
    "wavlm-large": (transformers.WavLMConfig, dict(STABLE, num_buckets=16, max_bucket_distance=40, hidden_act="gelu_new")),
}


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + noise.abs())
            elif "rel_attn_embed" in name or name.endswith("running_mean"):
                tensor.copy_(noise)
            elif tensor.ndim <= 1 or name.endswith("gru_rel_pos_const"):
                tensor.add_(0.2 * noise)  # norm scales, biases, gate constants
            else:
                tensor.mul_(1.0 + 0.2 * noise)
    return model


def reference_model(variant: str, seed: int = 0, **overrides) -> torch.nn.Module:
    config_cls, extra = VARIANTS[variant]
    torch.manual_seed(seed)
    config = config_cls(**{**TINY, **extra, **overrides})
    return randomize_(transformers.AutoModel.from_config(config).eval(), seed)


def padded_batch(seed: int = 0, lengths=(4000, 2600)):
    """Waveforms `[2, max(lengths)]` (zero padded) and their 0/1 attention mask."""
    rng = np.random.RandomState(seed)
    total = max(lengths)
    x = np.zeros((len(lengths), total), np.float32)
    mask = np.zeros((len(lengths), total), np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.randn(n)
        mask[i, :n] = 1
    return x, mask


def reference_outputs(model, x, mask):
    with torch.no_grad():
        return model(torch.tensor(x), attention_mask=None if mask is None else torch.tensor(mask),
                     output_hidden_states=True)


def fairseq_frame_counts(mask: np.ndarray, frames: int) -> np.ndarray:
    """Valid frames per utterance by fairseq's `forward_padding_mask`, recomputed from its
    definition: the sample padding mask, its last `samples % frames` entries dropped, viewed as
    `[batch, frames, -1]`; a frame is padding when all of its samples are."""
    padding = torch.tensor(mask == 0)
    extra = padding.shape[1] % frames
    if extra:
        padding = padding[:, :-extra]
    return (~padding.view(padding.shape[0], frames, -1).all(-1)).sum(-1).numpy()
