"""Report: per-device memory of a sharded HuBERT fine-tuning step, from XLA's compiled memory analysis.

For HuBERT Base, Large and X-Large shapes (random weights, never materialised: the step is
lowered from abstract shapes), on N simulated CPU devices with the mesh `data=1, fsdp=N`, the
stable fine-tuning step (frozen CNN, linear CTC head, Adam) is compiled with the trainer's
shardings, and the report prints per-device argument bytes (parameters + optimizer state +
batch), temporaries (activations and gradients) and the unsharded totals.
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python bench/fsdp_memory.py [--sizes base,large,xlarge] [--remat] [--scan-layers]
Goal (issue): per-device parameter + optimizer bytes within 1.1x of total / 8.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from common import environment, hubert_hf_config, print_table, sizes_parser, tree_bytes
from speechft_jax.models import EncoderConfig, SpeechEncoder
from speechft_jax.models.pretrained import abstract_boxed_params
from speechft_jax.tasks import CTCTask
from speechft_jax.train import sharding as S
from speechft_jax.train.optimizer import stable_finetuning_optimizer
from speechft_jax.train.step import init_train_state, make_loss_fn, make_train_step


def _per_device(tree, shardings) -> float:
    """Bytes one device holds of `tree` under `shardings` (the largest shard of each leaf)."""
    total = 0
    for x, s in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(shardings)):
        shard = s.shard_shape(x.shape)
        total += int(np.prod(shard)) * jnp.dtype(x.dtype).itemsize
    return total


def report(size: str, batch: int, seconds: float, remat: bool, scan_layers: bool = False):
    config = EncoderConfig.from_hf_dict(hubert_hf_config(size), remat=remat, scan_layers=scan_layers)
    devices = jax.device_count()
    mesh = S.build_mesh(1, devices)
    boxed = abstract_boxed_params(config)
    enc_abstract = nn.unbox(boxed)
    enc_shardings = S.param_shardings(boxed, mesh, S.TRAIN_RULES)
    task = CTCTask("asr", vocab_size=32, blank_id=0)
    optimizer = stable_finetuning_optimizer(1000, beta=0.1)
    init = lambda enc, rng: init_train_state({"encoder": enc, "head": {"asr": task.init(rng, config.hidden_size)}},
                                             optimizer)
    abstract_state = jax.eval_shape(init, enc_abstract, jax.random.PRNGKey(0))
    params_shardings = {"encoder": enc_shardings,
                        "head": jax.tree_util.tree_map(lambda _: S.replicated(mesh), abstract_state.params["head"])}
    state_shardings = S.state_shardings(abstract_state, abstract_state.params, params_shardings, mesh)
    samples = int(seconds * 16000)
    batch_abstract = {"asr": {"audio": jax.ShapeDtypeStruct((batch, samples), jnp.float32),
                              "audio_mask": jax.ShapeDtypeStruct((batch, samples), jnp.int32),
                              "example_mask": jax.ShapeDtypeStruct((batch,), jnp.bool_),
                              "labels": jax.ShapeDtypeStruct((batch, 64), jnp.int32),
                              "label_mask": jax.ShapeDtypeStruct((batch, 64), jnp.int32)}}
    batch_shardings = {"asr": jax.tree_util.tree_map(lambda _: S.batch_sharding(mesh), batch_abstract["asr"])}
    step = make_train_step(make_loss_fn(SpeechEncoder(config), [task], [1.0]), optimizer, 0)
    with jax.set_mesh(mesh), nn.logical_axis_rules(S.TRAIN_RULES):
        compiled = jax.jit(step, in_shardings=(state_shardings, {}, batch_shardings),
                           out_shardings=(state_shardings, S.replicated(mesh)),
                           donate_argnums=(0,)).lower(abstract_state, {}, batch_abstract).compile()
    memory = compiled.memory_analysis()
    params_total = tree_bytes(abstract_state.params)
    state_total = tree_bytes(abstract_state)
    state_device = _per_device(abstract_state, state_shardings)
    return {"size": size, "params_m": sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(abstract_state.params)) / 1e6,
            "state_total": state_total, "state_device": state_device, "ideal": state_total / devices,
            "args": memory.argument_size_in_bytes, "temp": memory.temp_size_in_bytes, "params_total": params_total}


def main(argv=None) -> None:
    parser = sizes_parser(__doc__)
    parser.add_argument("--remat", action="store_true", help="rematerialise each layer in the backward pass")
    parser.add_argument("--scan-layers", action="store_true", help="alike layers as one lax.scan")
    args = parser.parse_args(argv)
    gib = lambda b: f"{b / 2 ** 30:.3f} GiB"
    rows = []
    for size in args.sizes.split(","):
        r = report(size, args.batch, args.seconds, args.remat, args.scan_layers)
        rows.append((size, f"{r['params_m']:.0f} M", gib(r["state_total"]), gib(r["state_device"]),
                     f"{r['state_device'] / r['ideal']:.3f}x", gib(r["args"]), gib(r["temp"])))
        print(f"{size}: compiled", flush=True)
    print(environment())
    print_table(f"stable fine-tuning step, {jax.device_count()} devices, mesh data=1 fsdp={jax.device_count()}, "
                f"batch {args.batch} x {args.seconds:g} s, remat {args.remat}, scan_layers {args.scan_layers}",
                ("model", "params", "params+opt total", "params+opt per device", "vs total/N",
                 "XLA arguments per device", "XLA temporaries per device"), rows)


if __name__ == "__main__":
    main()
