"""Benchmark: a HuBERT-Base-sized forward pass with all hidden states, this project vs PyTorch.

Batch 2 x 4 s of 16 kHz audio, random weights (the same weights in both), on the CPU. Run:
    python bench/encoder_forward.py [--repeats 5] [--seconds 4] [--batch 2] [--no-batch-independent]
Goal (issue 2): the Flax forward at least 1.3x faster than transformers' PyTorch model.
A third row (unless `--no-batch-independent`) times the same forward with batch-independent features
(`EncoderConfig.batch_independent`: the group-norm CNN's statistics over each row's valid samples).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import jax
import numpy as np
import torch
import transformers

import speechft_jax as sj
from common import environment, print_table, summary, time_interleaved


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--model", default="hubert", choices=("hubert", "wav2vec2", "wavlm"))
    parser.add_argument("--batch-independent", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the forward with batch-independent CNN statistics")
    args = parser.parse_args(argv)

    config_cls = {"hubert": transformers.HubertConfig, "wav2vec2": transformers.Wav2Vec2Config,
                  "wavlm": transformers.WavLMConfig}[args.model]
    torch.manual_seed(0)
    model = transformers.AutoModel.from_config(config_cls()).eval()  # base-sized defaults
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        bundle = sj.load_pretrained(directory)

    samples = int(args.seconds * 16000)
    x = np.random.RandomState(0).randn(args.batch, samples).astype(np.float32)
    mask = np.ones_like(x, dtype=np.int32)
    mask[-1, samples * 3 // 4:] = 0  # one padded example, as in real batches

    start = time.perf_counter()
    jax.block_until_ready(sj.extract_features(bundle, x, mask))
    compile_s = time.perf_counter() - start
    xt, mt = torch.tensor(x), torch.tensor(mask)

    def torch_forward():
        with torch.inference_mode():
            model(xt, attention_mask=mt, output_hidden_states=True)

    independent = bundle.with_runtime(batch_independent=True)
    fns = [lambda: jax.block_until_ready(sj.extract_features(bundle, x, mask)), torch_forward]
    if args.batch_independent:
        fns.append(lambda: jax.block_until_ready(sj.extract_features(independent, x, mask)))
    ours, theirs, *rest = time_interleaved(fns, args.repeats)

    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    with torch.inference_mode():
        ref = model(xt, attention_mask=mt, output_hidden_states=True).hidden_states[-1].numpy()
    valid = np.asarray(frame_mask)
    diff = float(np.abs(np.asarray(hidden[-1])[valid] - ref[valid]).max())

    ratio = np.median(theirs) / np.median(ours)
    rows = [("speechft-jax (jit)", summary(ours), f"{ratio:.2f}x"),
            ("transformers PyTorch", summary(theirs), "1.00x")]
    if rest:
        cost = np.median(rest[0]) / np.median(ours) - 1
        rows.append((f"speechft-jax, batch-independent ({cost:+.1%})", summary(rest[0]),
                     f"{np.median(theirs) / np.median(rest[0]):.2f}x"))
    print(f"environment: {environment()}")
    print_table(f"{args.model} base forward, all hidden states, batch {args.batch} x {args.seconds:g} s (CPU)",
                ("implementation", "time per forward", "speed-up vs PyTorch"), rows)
    print(f"first call (compile + run): {compile_s:.1f} s; max |diff| of the last hidden state on valid frames: {diff:.2e}")
    print(f"goal >= 1.3x: {'met' if ratio >= 1.3 else 'NOT met'} ({ratio:.2f}x)")
    return ratio


if __name__ == "__main__":
    main()
