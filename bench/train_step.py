"""Benchmark: a HuBERT-Base stable fine-tuning step (frozen CNN, linear CTC head), this project vs PyTorch.

Both sides do the same work per step: the same random weights (a transformers `HubertForCTC`,
loaded into this project), batch 2 x 4 s of 16 kHz audio with an all-ones attention mask, the
encoder in train mode with every dropout, layerdrop and SpecAugment set to 0 (so the two compute
the same function), the CNN frozen, a 768 -> 32 linear CTC head, CTC loss (mean over rows of
nll / label length) on random labels of length ~50, backward, clipping to global norm 1.0 and an
Adam update of the encoder (minus CNN) and the head. Run:
    python bench/train_step.py [--repeats 5] [--batch 2] [--seconds 4] [--threads N] [--dtype float32]
Goal (issue): at least 1.5x PyTorch's steps/s, and at least 50 % of the measured f32 matmul peak.
Unless `--no-batch-independent`, one more row times our step with `model.batch_independent` (the
group-norm CNN's statistics over each row's valid samples; the same cost whatever the mask holds).

FLOP/s use one analytic count for both implementations (a multiply-add is 2 FLOPs): forward =
frozen CNN + projection + positional conv + 12 layers (matmuls and attention) + head; backward
= 2x the forward of everything after the CNN (1x for the projection, whose input needs no
gradient). XLA's own count (`cost_analysis()` of the compiled step) is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers

import speechft_jax as sj
from common import environment, print_table, summary, time_interleaved
from speechft_jax.tasks import CTCTask
from speechft_jax.train.optimizer import stable_finetuning_optimizer
from speechft_jax.train.step import init_train_state, make_loss_fn, make_train_step

VOCAB, LABEL_LENGTH, LR = 32, 50, 1e-4
NO_DROPOUT = dict(hidden_dropout=0.0, activation_dropout=0.0, attention_dropout=0.0, feat_proj_dropout=0.0,
                  final_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0, mask_feature_prob=0.0)


def analytic_flops(cfg: sj.EncoderConfig, batch: int, samples: int, vocab: int) -> dict:
    """FLOPs of one training step with the CNN frozen, by part (multiply-add = 2)."""
    cnn, length, channels = 0, samples, 1
    for dim, kernel, stride in zip(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride):
        length = (length - kernel) // stride + 1
        cnn += 2 * length * kernel * channels * dim
        channels = dim
    frames, d, ff = length, cfg.hidden_size, cfg.intermediate_size
    projection = 2 * frames * channels * d
    pos_conv = 2 * frames * cfg.num_conv_pos_embeddings * (d // cfg.num_conv_pos_embedding_groups) * d
    layer = 2 * frames * (4 * d * d + 2 * d * ff) + 2 * 2 * frames * frames * d  # matmuls + QK^T and AV
    head = 2 * frames * d * vocab
    trainable = pos_conv + cfg.num_hidden_layers * layer + head
    parts = {"cnn": cnn, "forward": cnn + projection + trainable, "backward": projection + 2 * trainable}
    parts = {k: batch * v for k, v in parts.items()}
    parts["step"] = parts["forward"] + parts["backward"]
    return parts


def xla_flops(compiled) -> float | None:
    try:
        cost = compiled.cost_analysis()
    except Exception:  # not every backend implements it
        return None
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


def matmul_peaks(n: int, repeats: int) -> tuple[float, float]:
    """Best f32 GFLOP/s of an n x n x n matmul in JAX and in torch (interleaved)."""
    a = np.random.RandomState(1).randn(n, n).astype(np.float32)
    ja, jb = jnp.asarray(a), jnp.asarray(a.T.copy())
    ta, tb = torch.tensor(a), torch.tensor(a.T.copy())
    matmul = jax.jit(jnp.matmul)
    times = time_interleaved([lambda: matmul(ja, jb).block_until_ready(), lambda: torch.mm(ta, tb)], repeats)
    return tuple(2 * n ** 3 / min(t) / 1e9 for t in times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (XLA uses all cores)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                        help="compute dtype: ours via EncoderConfig.dtype, torch via CPU autocast")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--batch-independent", action=argparse.BooleanOptionalAction, default=True,
                        help="also time our step with batch-independent CNN statistics")
    parser.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the loss alone (forward) and loss + gradient (no optimizer)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    # ---------------------------------------------------------------- one model, both frameworks
    torch.manual_seed(0)
    hf_config = transformers.HubertConfig(vocab_size=VOCAB, pad_token_id=0, ctc_loss_reduction="mean", **NO_DROPOUT)
    model = transformers.HubertForCTC(hf_config).train()
    model.freeze_feature_encoder()
    with tempfile.TemporaryDirectory() as directory:
        model.hubert.save_pretrained(directory)
        bundle = sj.load_pretrained(directory, dtype=args.dtype)
    cfg = bundle.config
    task = CTCTask("pr", vocab_size=VOCAB, blank_id=0)
    head = {"projection": {"kernel": jnp.asarray(model.lm_head.weight.detach().numpy().T),
                           "bias": jnp.asarray(model.lm_head.bias.detach().numpy())}}
    assert jax.tree_util.tree_structure(head) == jax.tree_util.tree_structure(task.init(jax.random.PRNGKey(0), 768))
    params = {"encoder": bundle.params, "head": {"pr": head}}

    # ---------------------------------------------------------------- one batch, both frameworks
    samples = int(args.seconds * 16000)
    rs = np.random.RandomState(0)
    audio = rs.randn(args.batch, samples).astype(np.float32)
    audio_mask = np.ones_like(audio, dtype=np.int32)
    lengths = [LABEL_LENGTH - 5 * (i % 2) for i in range(args.batch)]  # ~50, one row padded
    labels = rs.randint(1, VOCAB, size=(args.batch, LABEL_LENGTH)).astype(np.int32)
    label_mask = (np.arange(LABEL_LENGTH)[None] < np.array(lengths)[:, None]).astype(np.int32)
    batches = {"pr": {"audio": jnp.asarray(audio), "audio_mask": jnp.asarray(audio_mask),
                      "labels": jnp.asarray(labels), "label_mask": jnp.asarray(label_mask),
                      "example_mask": jnp.ones([args.batch], bool)}}
    xt, mt = torch.tensor(audio), torch.tensor(audio_mask, dtype=torch.long)
    lt = torch.tensor(np.where(label_mask == 1, labels, -100), dtype=torch.long)

    # ---------------------------------------------------------------- ours: the library's step
    loss_fn = make_loss_fn(sj.SpeechEncoder(cfg), [task], [1.0], freeze_cnn=True)
    optimizer = stable_finetuning_optimizer(total_steps=1000, beta=0.0)
    state = init_train_state(jax.tree_util.tree_map(jnp.copy, params), optimizer)  # the step donates it
    start = time.perf_counter()
    compiled = jax.jit(make_train_step(loss_fn, optimizer, seed=0), donate_argnums=(0,)).lower(
        state, {}, batches).compile()
    compile_s = time.perf_counter() - start
    holder = {"state": state}

    def ours_step():
        holder["state"], metrics = compiled(holder["state"], {}, batches)
        jax.block_until_ready((holder["state"], metrics))
        return metrics

    def independent_step_fn():  # the same step, the CNN's GroupNorm over valid samples only
        independent_loss = make_loss_fn(sj.SpeechEncoder(cfg.replace(batch_independent=True)), [task], [1.0],
                                        freeze_cnn=True)
        step = jax.jit(make_train_step(independent_loss, optimizer, seed=0), donate_argnums=(0,))
        held = {"state": init_train_state(jax.tree_util.tree_map(jnp.copy, params), optimizer)}

        def run():
            held["state"], metrics = step(held["state"], {}, batches)
            jax.block_until_ready((held["state"], metrics))

        return run

    rng = jax.random.PRNGKey(0)
    ours_loss = jax.jit(loss_fn)
    ours_grad = jax.jit(jax.grad(loss_fn, has_aux=True))
    first_loss_ours = float(ours_loss(params, {}, batches, rng)[0])

    # ---------------------------------------------------------------- theirs: transformers + torch.optim
    trainable = [p for p in model.parameters() if p.requires_grad]
    torch_optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=0.0)
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bfloat16")

    def torch_loss():
        with torch.no_grad(), autocast():
            return model(xt, attention_mask=mt, labels=lt).loss

    def torch_grad():
        model.zero_grad(set_to_none=True)
        with autocast():
            loss = model(xt, attention_mask=mt, labels=lt).loss
        loss.backward()
        return loss

    def torch_step():
        loss = torch_grad()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        torch_optimizer.step()
        return loss

    first_loss_torch = float(torch_loss())

    # ---------------------------------------------------------------- timing (interleaved)
    fns = [ours_step, torch_step]
    if args.breakdown:
        fns += [lambda: jax.block_until_ready(ours_loss(params, {}, batches, rng)), torch_loss,
                lambda: jax.block_until_ready(ours_grad(params, {}, batches, rng)), torch_grad]
    if args.batch_independent:
        fns.append(independent_step_fn())
    times = time_interleaved(fns, args.repeats)
    jax_peak, torch_peak = matmul_peaks(args.matmul_size, max(args.repeats, 10))
    peak = max(jax_peak, torch_peak)

    # ---------------------------------------------------------------- report
    flops = analytic_flops(cfg, args.batch, samples, VOCAB)
    xla = xla_flops(compiled)
    ours_t, theirs_t = statistics.median(times[0]), statistics.median(times[1])
    ratio = theirs_t / ours_t  # = ours steps/s over torch steps/s
    rate = lambda t: flops["step"] / t / 1e9
    rows = [("speechft-jax (jit)", summary(times[0]), f"{1 / ours_t:.3f}", f"{ratio:.2f}x", f"{rate(ours_t):.1f}",
             f"{100 * rate(ours_t) / peak:.0f} %"),
            ("transformers PyTorch", summary(times[1]), f"{1 / theirs_t:.3f}", "1.00x", f"{rate(theirs_t):.1f}",
             f"{100 * rate(theirs_t) / peak:.0f} %")]
    if args.batch_independent:
        independent_t = statistics.median(times[-1])
        rows.append((f"speechft-jax, batch-independent ({independent_t / ours_t - 1:+.1%})", summary(times[-1]),
                     f"{1 / independent_t:.3f}", f"{theirs_t / independent_t:.2f}x", f"{rate(independent_t):.1f}",
                     f"{100 * rate(independent_t) / peak:.0f} %"))
    print(f"environment: {environment()}")
    print_table(
        f"HuBERT Base fine-tuning step (frozen CNN, linear CTC head, Adam), batch {args.batch} x {args.seconds:g} s, "
        f"{args.dtype} (CPU)",
        ("implementation", "time per step", "steps/s", "ratio vs PyTorch", "GFLOP/s (analytic)", "% of matmul peak"),
        rows)
    print_table(f"f32 matmul {args.matmul_size}^3 (best of {max(args.repeats, 10)})", ("framework", "GFLOP/s"),
                [("jax", f"{jax_peak:.1f}"), ("torch", f"{torch_peak:.1f}")])
    if args.breakdown:
        print_table("where the time goes (median)", ("part", "speechft-jax", "PyTorch", "ratio vs PyTorch"),
                    [(name, f"{statistics.median(o) * 1e3:.0f} ms", f"{statistics.median(t) * 1e3:.0f} ms",
                      f"{statistics.median(t) / statistics.median(o):.2f}x")
                     for name, o, t in (("loss (forward, no grad)", times[2], times[3]),
                                        ("loss + gradient", times[4], times[5]),
                                        ("full step (+ clip, Adam)", times[0], times[1]))])
    print(f"analytic GFLOP per step: {flops['step'] / 1e9:.1f} (forward {flops['forward'] / 1e9:.1f}, of which "
          f"frozen CNN {flops['cnn'] / 1e9:.1f}; backward {flops['backward'] / 1e9:.1f}); XLA cost analysis: "
          + (f"{xla / 1e9:.1f}" if xla else "n/a") + "; GFLOP/s use the analytic count and the median step time, "
          "the peak is the better framework's best matmul")
    print(f"first step loss: ours {first_loss_ours:.4f}, torch {first_loss_torch:.4f}; "
          f"compile of our step: {compile_s:.1f} s")
    print(f"goal >= 1.5x PyTorch steps/s: {'met' if ratio >= 1.5 else 'NOT met'} ({ratio:.2f}x)")
    share = rate(ours_t) / peak
    print(f"goal >= 50 % of matmul peak: {'met' if share >= 0.5 else 'NOT met'} ({100 * share:.0f} % of {peak:.1f} GFLOP/s)")
    return ratio, share


if __name__ == "__main__":
    main()
