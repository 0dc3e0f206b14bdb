"""The fine-tuning optimizer: one `optax.partition` over `{"encoder": ..., "head": ...}`.

Groups, by parameter path:
  frozen   the encoder's CNN feature extractor: `optax.set_to_zero()` (no update, no state);
           with `freeze_cnn=False` (full fine-tuning) it joins the encoder group; with
           `trainable_layers` (SCORE: the top K transformer layers) everything outside those
           layers is frozen;
  encoder  the rest of the encoder (or, in a LoRA run, the adapters under `"lora"`, DoRA's
           magnitudes included): its own learning rate, frozen (zero update, state untouched)
           for the first `beta` fraction of steps — Speech-FT's head-only warm-up;
  head     the task heads: their own learning rate from step 0.
Gradients are clipped by their global norm first. `OptimizerConfig` (a training config's
`optimizer` section) builds it for a run, with gradient accumulation and the logged learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, NamedTuple

import jax
import jax.numpy as jnp
import optax

from speechft_jax.config_loading import COUNT, FRACTION, NON_NEGATIVE, STEPS, check
from speechft_jax.train.schedules import stable_finetuning_schedule
from speechft_jax.tree_math import global_norm

FROZEN, ENCODER, HEAD = "frozen", "encoder", "head"


def parameter_groups(params, freeze_cnn: bool = True, trainable_layers: tuple[int, ...] | None = None) -> dict:
    """A tree like `params` whose leaves name each parameter's group (frozen / encoder / head).

    `params` is `{"encoder": ..., "head": ...}` or, for LoRA, `{"lora": ..., "head": ...}`.
    """
    if "head" not in params or len(set(params) & {"encoder", "lora"}) != 1 or len(params) != 2:
        raise ValueError("training parameters must be {'encoder': ..., 'head': ...} or "
                         f"{{'lora': ..., 'head': ...}}, got keys {sorted(params)}")

    trained = None if trainable_layers is None else {f"layers_{i}" for i in trainable_layers}

    def encoder_label(path, _):
        keys = [getattr(k, "key", None) for k in path]
        if trained is not None:
            return ENCODER if keys[:1] == ["encoder"] and len(keys) > 1 and keys[1] in trained else FROZEN
        return FROZEN if keys[:1] == ["feature_extractor"] and freeze_cnn else ENCODER

    groups = {"head": jax.tree_util.tree_map(lambda _: HEAD, params["head"])}
    if "encoder" in params:
        groups["encoder"] = jax.tree_util.tree_map_with_path(encoder_label, params["encoder"])
    else:
        groups["lora"] = jax.tree_util.tree_map(lambda _: ENCODER, params["lora"])
    return groups


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Scale updates by `min(1, max_norm / ||updates||)` (optax's rule, with `tree_math.global_norm`)."""

    def update(updates, state, params=None):
        factor = jnp.minimum(1.0, max_norm / jnp.maximum(global_norm(updates), 1e-12))
        return jax.tree_util.tree_map(lambda u: u * factor.astype(u.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class AdamFromState(NamedTuple):
    calls: jnp.ndarray  # update calls so far
    count: jnp.ndarray  # updates applied: Adam's step count for its bias correction
    mu: optax.Updates
    nu: optax.Updates


def adam_from_step(start_step: int, weight_decay: float = 0.0, b1: float = 0.9, b2: float = 0.999,
                   eps: float = 1e-8) -> optax.GradientTransformation:
    """Adam(W)'s direction (`optax.scale_by_adam`, then `add_decayed_weights`) that is exactly zero
    for the first `start_step` calls, with the moments and the step count untouched until then, so
    they start fresh (correct bias correction) when the group starts training.

    The gate is arithmetic (`gate * new + (1 - gate) * old` with a 0/1 scalar), which XLA fuses
    into Adam's one pass over the moments. The same gate as a `lax.cond` around `scale_by_adam`
    or as `jnp.where` selects over the moments made the update 1.8x / 3.3x slower on a
    95 M-parameter tree on CPU (`bench/RESULTS.md`, train step).
    """

    def init(params):
        zeros = lambda: jax.tree_util.tree_map(jnp.zeros_like, params)
        return AdamFromState(jnp.zeros([], jnp.int32), jnp.zeros([], jnp.int32), zeros(), zeros())

    def update(updates, state, params=None):
        if weight_decay and params is None:
            raise ValueError("adam_from_step with weight_decay needs the parameters")
        on = state.calls >= start_step
        gate = on.astype(jnp.float32)
        count = state.count + on.astype(jnp.int32)
        moment = lambda decay, old, new: (gate * (decay * old + (1 - decay) * new) + (1 - gate) * old).astype(old.dtype)
        mu = jax.tree_util.tree_map(lambda g, m: moment(b1, m, g), updates, state.mu)
        nu = jax.tree_util.tree_map(lambda g, v: moment(b2, v, jnp.square(g)), updates, state.nu)
        steps = jnp.maximum(count, 1).astype(jnp.float32)  # count 0 only while gated off
        correction_1, correction_2 = 1 - b1 ** steps, 1 - b2 ** steps

        def direction(m, v, *decayed):
            step = (m / correction_1) / (jnp.sqrt(v / correction_2) + eps)
            if decayed:
                step = step + weight_decay * decayed[0]
            return (gate * step).astype(m.dtype)

        new_updates = jax.tree_util.tree_map(direction, mu, nu, *([params] if weight_decay else []))
        return new_updates, AdamFromState(state.calls + 1, count, mu, nu)

    return optax.GradientTransformation(init, update)


def encoder_start_step(total_steps: int, beta: float) -> int:
    """The first step at which the encoder trains (after the head-only warm-up)."""
    return int(round(beta * total_steps))


def stable_finetuning_optimizer(total_steps: int, encoder_lr: float = 1e-4, head_lr: float = 1e-4,
                                beta: float = 0.1, clip_norm: float | None = 1.0,
                                weight_decay: float = 0.0, freeze_cnn: bool = True,
                                warmup_fraction: float = 0.1, hold_fraction: float = 0.4,
                                trainable_layers: tuple[int, ...] | None = None) -> optax.GradientTransformation:
    """Adam(W) with the stable fine-tuning schedule, the CNN frozen, and the encoder trained only
    after the first `beta` fraction of `total_steps` (beta = 0: all but the CNN from the start).

    The encoder's Adam moments (and weight decay) stay untouched while it is frozen, so they start
    fresh with correct bias correction; its learning rate follows the global schedule (by then
    past warm-up when beta >= the warm-up fraction), not a schedule restarted at unfreezing.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta={beta}, expected a number in [0, 1]")
    start = encoder_start_step(total_steps, beta)
    schedule = lambda lr: stable_finetuning_schedule(lr, total_steps, warmup_fraction, hold_fraction)
    encoder = optax.chain(adam_from_step(start, weight_decay), optax.scale_by_learning_rate(schedule(encoder_lr)))
    head = optax.chain(adam_from_step(0, weight_decay), optax.scale_by_learning_rate(schedule(head_lr)))
    partition = optax.partition({FROZEN: optax.set_to_zero(), ENCODER: encoder, HEAD: head},
                                lambda params: parameter_groups(params, freeze_cnn, trainable_layers))
    return optax.chain(clip_by_global_norm(clip_norm), partition) if clip_norm else partition


@dataclass(frozen=True)
class OptimizerConfig:
    """Adam with the stable fine-tuning schedule (warm-up, hold, linear decay).

    `steps` counts optimizer updates; each update accumulates `grad_accum` batches. The encoder
    trains only after the first `beta` fraction of `steps` (0: from the start).
    """

    steps: Annotated[int, STEPS] = 1000
    encoder_lr: Annotated[float, NON_NEGATIVE] = 1e-4
    head_lr: Annotated[float, NON_NEGATIVE] = 1e-4
    beta: Annotated[float, FRACTION] = 0.1
    clip_norm: float | None = 1.0
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.0
    grad_accum: Annotated[int, COUNT] = 1
    warmup_fraction: Annotated[float, FRACTION] = 0.1
    hold_fraction: Annotated[float, FRACTION] = 0.4

    def validate(self):
        check(self.clip_norm is None or self.clip_norm > 0, "clip_norm", self.clip_norm,
              "a positive number or null")
        check(self.warmup_fraction + self.hold_fraction <= 1.0, "hold_fraction", self.hold_fraction,
              "warmup_fraction + hold_fraction <= 1")

    def build(self, *, freeze_cnn: bool = True,
              trainable_layers: tuple[int, ...] | None = None) -> optax.GradientTransformation:
        """The run's optimizer: `stable_finetuning_optimizer` over `steps` updates, each one
        accumulating `grad_accum` batches (`optax.MultiSteps`)."""
        optimizer = stable_finetuning_optimizer(
            self.steps, encoder_lr=self.encoder_lr, head_lr=self.head_lr, beta=self.beta,
            clip_norm=self.clip_norm, weight_decay=self.weight_decay, freeze_cnn=freeze_cnn,
            warmup_fraction=self.warmup_fraction, hold_fraction=self.hold_fraction,
            trainable_layers=trainable_layers)
        if self.grad_accum > 1:
            optimizer = optax.MultiSteps(optimizer, every_k_schedule=self.grad_accum)
        return optimizer

    def encoder_lr_schedule(self):
        """The encoder's learning rate at each update (counted from 0), as `build` applies it: 0
        during the head-only warm-up, then the stable fine-tuning schedule."""
        schedule = stable_finetuning_schedule(self.encoder_lr, self.steps, self.warmup_fraction, self.hold_fraction)
        start = encoder_start_step(self.steps, self.beta)
        return lambda count: schedule(count) if count >= start else 0.0
