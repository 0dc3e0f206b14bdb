"""HuBERT's masked-prediction objective: the pre-training head and its cross-entropy.

The head (fairseq's names, as `load_pretrained` keeps them in `bundle.pretraining_head`):
`final_proj` {kernel `[hidden, final_dim]`, bias `[final_dim]`} and `label_embs_concat`
`[num_classes, final_dim]`. Logits are the cosine similarity between the projected frame and
every label embedding, divided by a temperature (0.1); the loss is cross-entropy against the
frame's target (a k-means cluster or a pseudo-label), averaged over masked frames (weight 1) and,
optionally, over unmasked frames (weight 0 by default), padding excluded.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

_EPS = 1e-8  # torch.cosine_similarity's default


def init_hubert_head(rng, hidden_dim: int, final_dim: int, num_classes: int) -> dict:
    """A fresh head: normal(0.02) projection, zero bias, normal(1) label embeddings."""
    k_proj, k_emb = jax.random.split(rng)
    return {"final_proj": {"kernel": 0.02 * jax.random.normal(k_proj, (hidden_dim, final_dim)),
                           "bias": jnp.zeros((final_dim,))},
            "label_embs_concat": jax.random.normal(k_emb, (num_classes, final_dim))}


def hubert_logits(head: dict, features, temperature: float = 0.1):
    """features `[batch, frames, hidden]` -> logits `[batch, frames, num_classes]` (float32)."""
    proj = features.astype(jnp.float32) @ head["final_proj"]["kernel"] + head["final_proj"]["bias"]
    labels = head["label_embs_concat"].astype(jnp.float32)
    proj = proj / jnp.maximum(jnp.linalg.norm(proj, axis=-1, keepdims=True), _EPS)
    labels = labels / jnp.maximum(jnp.linalg.norm(labels, axis=-1, keepdims=True), _EPS)
    return (proj @ labels.T) / temperature


def _mean_over(values, weights):
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def hubert_loss(head: dict, features, targets, frame_mask, mask_time_indices, *, masked_weight: float = 1.0,
                unmasked_weight: float = 0.0, temperature: float = 0.1):
    """`(loss, metrics)`. targets int `[batch, frames]`; frame_mask / mask_time_indices bool `[batch, frames]`.

    loss = masked_weight * mean CE over masked valid frames + unmasked_weight * mean CE over
    unmasked valid frames. Metrics: `masked_loss`, `masked_accuracy`, `unmasked_loss`.
    """
    logits = hubert_logits(head, features, temperature)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    valid = frame_mask.astype(bool)
    masked = (valid & mask_time_indices.astype(bool)).astype(jnp.float32)
    unmasked = (valid & ~mask_time_indices.astype(bool)).astype(jnp.float32)
    masked_loss = _mean_over(ce, masked)
    unmasked_loss = _mean_over(ce, unmasked)
    accuracy = _mean_over(correct, masked)
    loss = masked_weight * masked_loss + (unmasked_weight * unmasked_loss if unmasked_weight else 0.0)
    return loss, {"masked_loss": masked_loss, "masked_accuracy": accuracy, "unmasked_loss": unmasked_loss}
