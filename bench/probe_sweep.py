"""Benchmark: an alpha sweep's probes trained together on the fly, against one probe run per alpha.

K merged encoders (HuBERT Base shapes, random theta_0 and a theta_ft that keeps its CNN, as stable
fine-tuning does) feed SUPERB-style probes computed on the fly: the encoders run inside the probes'
jitted step on an audio batch (`evaluate.probe_training`, `sweep.features.merged_encoders`).
  K together     one step trains the K alphas' probes: the K merges in one program (`lax.map`,
                 the CNN run once for all of them), one batch, a nested vmap over the probes;
  K separate     K runs of one merged encoder each (K = 1, its weights merged beforehand, as when each
                 merge is saved and evaluated on its own), one step of each.
The time is per training step of all K probes (after compilation; data loading excluded: the K
separate runs would also decode the audio K times).
    python bench/probe_sweep.py [--alphas 5] [--batch 2] [--seconds 2] [--repeats 3] [--lrs 1] [--size base|tiny]
Goal (issue): K = 5 together at least 2x faster than 5 separate runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import jax
import numpy as np

import speechft_jax as sj
from common import environment, hubert_hf_config, print_table, summary, time_interleaved
from speechft_jax.evaluate.frozen_encoders import single_encoder
from speechft_jax.evaluate.probe import ProbeSpec
from speechft_jax.evaluate.probe_training import initial_state, probe_programs
from speechft_jax.sweep.features import CNN, merged_encoders


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alphas", type=int, default=5, help="K (default: 5)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lrs", type=int, default=1, help="learning rates per alpha (default: 1)")
    parser.add_argument("--classes", type=int, default=10, help="the probe's classes (default: 10)")
    parser.add_argument("--size", choices=("base", "tiny"), default="base")
    args = parser.parse_args(argv)
    hf = hubert_hf_config("base") if args.size == "base" else json.loads(open(os.path.join(
        os.path.dirname(__file__), "..", "configs", "models", "tiny-hubert-filterbank.json")).read())
    config = sj.EncoderConfig.from_hf_dict(hf)
    base, tuned = sj.init_encoder(config, seed=0), sj.init_encoder(config, seed=1)
    tuned.params[CNN] = base.params[CNN]
    alphas = np.linspace(0.0, 1.0, args.alphas).tolist()
    lrs = tuple(10.0 ** -(3 + i) for i in range(args.lrs))
    spec = ProbeSpec("bench", "classification", args.classes)
    samples = int(args.seconds * 16000)
    rng = np.random.default_rng(0)
    batch = {"audio": (rng.normal(size=(args.batch, samples)) * 0.1).astype(np.float32),
             "audio_mask": np.ones((args.batch, samples), np.int32), "example_mask": np.ones(args.batch, bool),
             "labels": rng.integers(0, args.classes, args.batch).astype(np.int32)}

    def runner(encoders):
        """One training step of `encoders`' probes, blocking; compiled on its first call."""
        programs = probe_programs(spec, encoders.num_states, encoders.forward)
        state = initial_state(programs, encoders.count, lrs, encoders.hidden, seed=0)

        def step():
            state["params"], state["opt_state"], loss = programs.step(state["params"], state["opt_state"],
                                                                      encoders.inputs, batch)
            jax.block_until_ready(loss)

        return step

    together = runner(merged_encoders(base, tuned.params, alphas, shared_cnn=True))
    separate = [runner(single_encoder(base, sj.interpolate(base.params, tuned.params, a))) for a in alphas]
    compile_times = []
    for fn in (together, separate[0]):  # each program compiles once (the K = 1 runs share theirs)
        start = time.perf_counter()
        fn()
        compile_times.append(time.perf_counter() - start)

    def all_separate():
        for fn in separate:
            fn()

    times = time_interleaved([together, all_separate], repeats=args.repeats)
    med = [float(np.median(t)) for t in times]
    print(environment())
    params = sum(x.size for x in jax.tree_util.tree_leaves(base.params))
    print_table(f"probes of K={args.alphas} alphas x {len(lrs)} lr on the fly, {args.size} encoder "
                f"({params / 1e6:.1f} M params), {args.batch} x {args.seconds:g} s audio",
                ("method", "time per step (all K probes)", "first call (compile)", "separate / this"),
                [("K together (one program, one batch)", summary(times[0]), f"{compile_times[0]:.1f} s",
                  f"{med[1] / med[0]:.2f}x"),
                 (f"{args.alphas} separate runs (K = 1 each)", summary(times[1]), f"{compile_times[1]:.1f} s",
                  "1.00x")])
    print(f"K together vs {args.alphas} separate runs: {med[1] / med[0]:.2f}x faster per step (goal >= 2x)")


if __name__ == "__main__":
    main()
