"""Benchmark: an alpha sweep of Speech-FT's merge, compiled (one program) vs the naive loop.

K alphas (default 11) over a fixed eval set (default 4 utterances x 4 s, padded batch) with a
HuBERT-Base-shaped encoder: random theta_0, and a random theta_ft that keeps theta_0's CNN, as
stable fine-tuning does (`--own-cnn`: theta_ft's CNN differs too):
  compiled sweep   `sweep_forward`: one jitted program maps over the alphas, merging on device;
                   with the CNN shared, it runs the CNN once for all alphas (`shared_cnn=True`,
                   what `sweep_feature_sets` picks when the CNNs are equal), else once per alpha;
  K x forward      K calls of the jitted forward on ready-made weights (no merge cost);
  naive loop       per alpha: merge on the host in NumPy, then `extract_features` with the merged
                   weights (transferred to the device each time).
    python bench/sweep.py [--alphas 11] [--batch 4] [--seconds 4] [--repeats 3] [--size base|tiny] [--own-cnn]
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
from speechft_jax.sweep.features import CNN, sweep_forward

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alphas", type=int, default=11)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", choices=("base", "tiny"), default="base")
    parser.add_argument("--own-cnn", action="store_true", help="theta_ft's CNN differs from theta_0's")
    args = parser.parse_args(argv)
    hf = hubert_hf_config("base") if args.size == "base" else json.loads(open(os.path.join(
        os.path.dirname(__file__), "..", "configs", "models", "tiny-hubert-filterbank.json")).read())
    config = sj.EncoderConfig.from_hf_dict(hf)
    base, tuned = sj.init_encoder(config, seed=0), sj.init_encoder(config, seed=1)
    if not args.own_cnn:
        tuned.params[CNN] = base.params[CNN]
    samples = int(args.seconds * 16000)
    rng = np.random.default_rng(0)
    audio = jnp.asarray(rng.normal(size=(args.batch, samples)) * 0.1, jnp.float32)
    mask = jnp.ones((args.batch, samples), jnp.int32)
    alphas = np.linspace(0.0, 1.0, args.alphas).astype(np.float32)
    alphas_j = jnp.asarray(alphas)
    sweeps = [sweep_forward(config, False)] + ([] if args.own_cnn else [sweep_forward(config, True)])
    theta_0_host, theta_ft_host = jax.device_get(base.params), jax.device_get(tuned.params)
    merged_ready = [sj.interpolate(base.params, tuned.params, float(a)) for a in alphas]

    def compiled(sweep):
        return lambda: jax.block_until_ready(sweep(base.params, tuned.params, alphas_j, audio, mask))

    def k_forwards():
        for params in merged_ready:
            jax.block_until_ready(sj.extract_features(base, audio, mask, params=params))

    def naive():
        for a in alphas:
            merged = jax.tree_util.tree_map(lambda x, y: (1 - a) * x + a * y, theta_0_host, theta_ft_host)
            jax.block_until_ready(sj.extract_features(base, audio, mask, params=merged))

    names = ["compiled sweep (lax.map, merge on device, CNN per alpha)",
             "compiled sweep (CNN once, shared by the alphas)"][:len(sweeps)]
    names += ["K x forward (weights ready, no merge)", "naive loop (host merge + extract_features)"]
    times = time_interleaved([compiled(s) for s in sweeps] + [k_forwards, naive], repeats=args.repeats)
    med = [float(np.median(t)) for t in times]
    k_forward, best = med[-2], min(med[:len(sweeps)])
    cnn_note = "theta_ft with its own CNN" if args.own_cnn else "theta_ft sharing theta_0's CNN"
    print(environment())
    params = sum(x.size for x in jax.tree_util.tree_leaves(base.params))
    print_table(f"alpha sweep, K={args.alphas}, {args.size} encoder ({params / 1e6:.1f} M params), "
                f"{args.batch} x {args.seconds:g} s, {cnn_note}",
                ("method", "time per sweep", "vs K x forward", "naive loop / this"),
                [(name, summary(t), f"{m / k_forward:.2f}x", f"{med[-1] / m:.2f}x")
                 for name, t, m in zip(names, times, med)])
    print(f"compilations of each sweep program: {[s._cache_size() for s in sweeps]}; "
          f"best sweep vs naive loop: {med[-1] / best:.2f}x faster")


if __name__ == "__main__":
    main()
