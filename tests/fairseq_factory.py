"""fairseq / unilm checkpoints written by hand for tests: a transformers model's random weights under
the key names the published checkpoints use, the tiny models' configs in fairseq's names, the
config layouts fairseq and unilm write, and a pickle that would run code. Nothing here imports the
key map under test."""

import argparse
import os
import re

import torch


def published_state(model, layer_norm_cnn: bool) -> dict:
    """A transformers encoder's state dict under fairseq's (unilm's) published key names."""
    renames = [
        (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
        (r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.",
         r"feature_extractor.conv_layers.\1.2.1." if layer_norm_cnn else r"feature_extractor.conv_layers.\1.2."),
        (r"^feature_projection\.layer_norm\.", "layer_norm."),
        (r"^feature_projection\.projection\.", "post_extract_proj."),
        (r"^masked_spec_embed$", "mask_emb"),
        (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$", "encoder.pos_conv.0.weight_g"),
        (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$", "encoder.pos_conv.0.weight_v"),
        (r"^encoder\.pos_conv_embed\.conv\.bias$", "encoder.pos_conv.0.bias"),
        (r"\.attention\.rel_attn_embed\.", ".self_attn.relative_attention_bias."),
        (r"\.attention\.gru_rel_pos_linear\.", ".self_attn.grep_linear."),
        (r"\.attention\.gru_rel_pos_const$", ".self_attn.grep_a"),
        (r"\.attention\.", ".self_attn."),
        (r"^encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
        (r"\.feed_forward\.intermediate_dense\.", ".fc1."),
        (r"\.feed_forward\.output_dense\.", ".fc2."),
    ]
    out = {}
    for key, value in model.state_dict().items():
        for pattern, replacement in renames:
            key = re.sub(pattern, replacement, key)
        out[key] = value.clone()
    return out


def wav2vec2_head(target_glu: bool, seed: int = 1) -> dict:
    """fairseq's wav2vec 2.0 pre-training modules for the tiny model: 2 groups x 5 codewords of 6
    dims (vq_dim 12), final_dim 8, from a CNN of width 16 and an encoder of width 32."""
    g = torch.Generator().manual_seed(seed)
    head = {"quantizer.vars": torch.randn(1, 10, 6, generator=g),
            "quantizer.weight_proj.weight": torch.randn(10, 16, generator=g),
            "quantizer.weight_proj.bias": torch.randn(10, generator=g),
            "project_q.weight": torch.randn(8, 12, generator=g), "project_q.bias": torch.randn(8, generator=g),
            "final_proj.weight": torch.randn(8, 32, generator=g), "final_proj.bias": torch.randn(8, generator=g)}
    if target_glu:
        head.update({"target_glu.0.weight": torch.randn(16, 8, generator=g),
                     "target_glu.0.bias": torch.randn(16, generator=g)})
    return head


def hubert_head(seed: int = 2) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"final_proj.weight": torch.randn(8, 32, generator=g), "final_proj.bias": torch.randn(8, generator=g),
            "label_embs_concat": torch.randn(5, 8, generator=g)}


def model_cfg(kind: str, large: bool) -> dict:
    """The tiny models' config in fairseq's names (unilm's for WavLM)."""
    cfg = {"encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 4,
           "activation_fn": "gelu", "extractor_mode": "layer_norm" if large else "default",
           "conv_feature_layers": "[(16,10,5)] + [(16,3,2)] + [(16,2,2)]", "conv_bias": large,
           "conv_pos": 15 if kind == "wav2vec2" and large else 16, "conv_pos_groups": 4, "layer_norm_first": large,
           "dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.0, "encoder_layerdrop": 0.05,
           "dropout_input": 0.0}
    if kind == "hubert":
        cfg["final_dim"] = 8
    if kind == "wav2vec2":
        cfg.update(final_dim=8, latent_vars=5, latent_groups=2, latent_dim=12, quantize_targets=True, target_glu=large)
    if kind == "wavlm":
        cfg.update(relative_position_embedding=True, num_buckets=16, max_distance=40, gru_rel_pos=True)
        if large:
            cfg["activation_fn"] = "gelu_accurate"
    return cfg


def checkpoint_of(layout: str, kind: str, state: dict, cfg: dict, normalize: bool) -> dict:
    if layout == "unilm":
        return {"cfg": {**cfg, "normalize": normalize}, "model": state}
    if layout == "args":
        return {"args": argparse.Namespace(arch=kind, normalize=normalize, **cfg), "model": state}
    task = {"_name": "audio_pretraining" if kind == "wav2vec2" else "hubert_pretraining", "normalize": normalize}
    return {"cfg": {"model": {"_name": kind, **cfg}, "task": task}, "model": state,
            "optimizer_history": [{"num_updates": 7}]}


class RunsCode:
    """Pickles as a call of `os.system` (a loader that runs it leaves PWNED_MARKER behind)."""

    def __reduce__(self):
        return (os.system, ("touch PWNED_MARKER",))
