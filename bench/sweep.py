"""Benchmark: an alpha sweep of Speech-FT's merge, compiled (one program) vs the naive loop.

K alphas (default 11) over a fixed eval set (default 4 utterances x 4 s, padded batch) with a
HuBERT-Base-shaped encoder (random theta_0 and theta_ft):
  compiled sweep   `sweep_forward`: one jitted program maps over the alphas, merging on device;
  K x forward      K calls of the jitted forward on ready-made weights (the floor: no merge cost);
  naive loop       per alpha: merge on the host in NumPy, then `extract_features` with the merged
                   weights (transferred to the device each time).
    python bench/sweep.py [--alphas 11] [--batch 4] [--seconds 4] [--repeats 3] [--size base|tiny]
Goal (issue): the sweep within 1.15x of K x one forward pass, and at least 2x faster than the naive loop.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import jax
import jax.numpy as jnp
import numpy as np

import speechft_jax as sj
from common import environment, hubert_hf_config, print_table, summary, time_interleaved
from speechft_jax.sweep.features import sweep_forward

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alphas", type=int, default=11)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", choices=("base", "tiny"), default="base")
    args = parser.parse_args(argv)
    hf = hubert_hf_config("base") if args.size == "base" else json.loads(open(os.path.join(
        os.path.dirname(__file__), "..", "configs", "models", "tiny-hubert-pretrain.json")).read())
    config = sj.EncoderConfig.from_hf_dict(hf)
    base, tuned = sj.init_encoder(config, seed=0), sj.init_encoder(config, seed=1)
    samples = int(args.seconds * 16000)
    rng = np.random.default_rng(0)
    audio = jnp.asarray(rng.normal(size=(args.batch, samples)) * 0.1, jnp.float32)
    mask = jnp.ones((args.batch, samples), jnp.int32)
    alphas = np.linspace(0.0, 1.0, args.alphas).astype(np.float32)
    alphas_j = jnp.asarray(alphas)
    sweep = sweep_forward(config)
    theta_0_host, theta_ft_host = jax.device_get(base.params), jax.device_get(tuned.params)
    merged_ready = [sj.interpolate(base.params, tuned.params, float(a)) for a in alphas]

    def compiled():
        jax.block_until_ready(sweep(base.params, tuned.params, alphas_j, audio, mask))

    def k_forwards():
        for params in merged_ready:
            jax.block_until_ready(sj.extract_features(base, audio, mask, params=params))

    def naive():
        for a in alphas:
            merged = jax.tree_util.tree_map(lambda x, y: (1 - a) * x + a * y, theta_0_host, theta_ft_host)
            jax.block_until_ready(sj.extract_features(base, audio, mask, params=merged))

    times = time_interleaved([compiled, k_forwards, naive], repeats=args.repeats)
    med = [float(np.median(t)) for t in times]
    compiles = sweep._cache_size()
    print(environment())
    params = sum(x.size for x in jax.tree_util.tree_leaves(base.params))
    print_table(f"alpha sweep, K={args.alphas}, {args.size} encoder ({params / 1e6:.1f} M params), "
                f"{args.batch} x {args.seconds:g} s",
                ("method", "time per sweep", "vs K x forward", "sweep speed-up"),
                [("compiled sweep (lax.map, merge on device)", summary(times[0]), f"{med[0] / med[1]:.2f}x", "1.00x"),
                 ("K x forward (weights ready, no merge)", summary(times[1]), "1.00x", f"{med[1] / med[0]:.2f}x"),
                 ("naive loop (host merge + extract_features)", summary(times[2]), f"{med[2] / med[1]:.2f}x",
                  f"{med[2] / med[0]:.2f}x")])
    print(f"compilations of the sweep program: {compiles}")


if __name__ == "__main__":
    main()
