"""The train state, the fine-tuning loss and the update step (pure functions, jitted by the loop).

Trainable parameters are `{"encoder": ..., "head": {task: ...}}`, or for LoRA (and DoRA)
`{"lora": adapters, "head": {task: ...}}` with the base encoder passed in `frozen["theta_0"]`.
`frozen["theta_0"]` (the pre-trained encoder) is also the anchor of the L2 baseline; `frozen`
also carries what self-supervised targets read (a teacher, k-means centroids). Each step runs
every task's `train_loss` on its batch (multitask: one batch from each task), sums the weighted
task losses, and applies one optimizer update (or accumulates, under `optax.MultiSteps`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax
import jax
import jax.numpy as jnp
import optax

from speechft_jax.models import SpeechEncoder
from speechft_jax.models.lora import apply_lora
from speechft_jax.tree_math import global_norm, squared_distance


@flax.struct.dataclass
class TrainState:
    """`step`: batches consumed (micro-steps); `params`: trainable tree; `opt_state`: optax state."""

    step: jnp.ndarray
    params: Any
    opt_state: Any


def encoder_params(params, frozen, lora=None):
    """The encoder parameters a step runs with: trained ones, or the base with its LoRA / DoRA adapters."""
    if "lora" in params:
        return apply_lora(frozen["theta_0"], params["lora"], lora.alpha, lora.rank)
    return params["encoder"]


def make_loss_fn(module: SpeechEncoder, tasks: Sequence, weights: Sequence[float], *,
                 freeze_cnn: bool = True, l2_to_pretrained: float = 0.0, lora=None,
                 first_trained_layer: int = 0) -> Callable:
    """`loss_fn(params, frozen, batches, rng) -> (loss, metrics)`; `batches[task.name]` is a batch dict.
    `first_trained_layer` > 0 stops the backward pass below that transformer layer (SCORE)."""

    def loss_fn(params, frozen, batches, rng):
        encoder = encoder_params(params, frozen, lora)
        total = jnp.zeros((), jnp.float32)
        metrics = {}

        def encode(batch, rng):
            mask_rng, dropout_rng = jax.random.split(rng)
            return module.apply({"params": encoder}, batch["audio"], batch["audio_mask"], train=True,
                                freeze_feature_extractor=freeze_cnn, first_trained_layer=first_trained_layer,
                                rngs={"mask": mask_rng, "dropout": dropout_rng})

        for i, (task, weight) in enumerate(zip(tasks, weights)):
            loss, task_metrics = task.train_loss(encode, params["head"][task.name], frozen, batches[task.name],
                                                 jax.random.fold_in(rng, i))
            total = total + weight * loss
            metrics.update({f"{task.name}/{k}": v for k, v in task_metrics.items()})
        if l2_to_pretrained > 0:
            distance = squared_distance(params["encoder"], frozen["theta_0"])
            total = total + l2_to_pretrained * distance
            metrics["l2_distance_sq"] = distance
        return total, metrics

    return loss_fn


def make_train_step(loss_fn: Callable, optimizer: optax.GradientTransformation, seed: int) -> Callable:
    """`step(state, frozen, batches) -> (state, metrics)`: one micro-step; rng from (seed, step)."""
    base_rng = jax.random.PRNGKey(seed)

    def step(state: TrainState, frozen, batches):
        rng = jax.random.fold_in(base_rng, state.step)
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, frozen, batches, rng)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, loss=loss, grad_norm=global_norm(grads))
        return TrainState(state.step + 1, params, opt_state), metrics

    return step


def init_train_state(params, optimizer: optax.GradientTransformation) -> TrainState:
    return TrainState(jnp.zeros([], jnp.int32), params, optimizer.init(params))
