"""Shared helpers for the benchmarks: HuBERT size configs, the HuBERT-size command line, the frozen-CNN
gradient problem, byte counts, timing, environment line, and table printing."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


# transformers config keys of the HuBERT sizes the benchmarks build (random weights)
_HUBERT_COMMON = {"model_type": "hubert", "conv_dim": [512] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2],
                  "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "num_conv_pos_embeddings": 128,
                  "num_conv_pos_embedding_groups": 16, "mask_time_prob": 0.05}
HUBERT_SIZES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                  feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),
    "xlarge": dict(hidden_size=1280, num_hidden_layers=48, num_attention_heads=16, intermediate_size=5120,
                   feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),
}


def hubert_hf_config(size: str) -> dict:
    """The transformers config dict of HuBERT `size` (base, large, xlarge)."""
    return {**_HUBERT_COMMON, **HUBERT_SIZES[size]}


def sizes_parser(doc: str) -> argparse.ArgumentParser:
    """The command line of the HuBERT-size reports: `--sizes base,large,xlarge --batch 8 --seconds 4`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--sizes", default="base,large,xlarge")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    return parser


def tree_bytes(tree) -> int:
    """Bytes of every array (or shape-dtype struct) in `tree`."""
    import jax
    import numpy as np

    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree_util.tree_leaves(tree))


def frozen_cnn_gradient_problem(size: str, batch: int, seconds: float, **runtime):
    """`(loss, params, audio)` of HuBERT `size` fine-tuned with a frozen CNN (loss on the last hidden
    state), from abstract shapes: `params` and `audio` are shape-dtype structs, nothing allocated.
    `runtime`: `EncoderConfig` settings such as `remat` and `scan_layers`."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from speechft_jax.models import EncoderConfig, SpeechEncoder

    module = SpeechEncoder(EncoderConfig.from_hf_dict(hubert_hf_config(size), **runtime))
    audio = jax.ShapeDtypeStruct((batch, int(seconds * 16000)), jnp.float32)
    params = nn.unbox(jax.eval_shape(module.init, jax.random.PRNGKey(0), audio)["params"])

    def loss(p, audio):
        return jnp.mean(module.apply({"params": p}, audio, freeze_feature_extractor=True).last_hidden_state ** 2)

    return loss, params, audio


def time_interleaved(fns, repeats: int, warmup: int = 1) -> list[list[float]]:
    """Wall-clock seconds of `repeats` calls of each function (each must block until done).

    The functions take turns within each repeat, so load from other processes on a shared
    machine falls on all of them alike rather than on whichever ran last.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> str:
    return f"{statistics.median(times) * 1e3:9.1f} ms (min {min(times) * 1e3:.1f}, n={len(times)})"


def environment() -> str:
    import jax

    try:
        import torch
        torch_info = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        torch_info = "torch not installed"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus; jax {jax.__version__} on "
            f"{jax.devices()[0].platform}; {torch_info}")


def print_table(title: str, header: tuple, rows: list[tuple]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    print(line)
