"""HuBERT masked prediction as a trainer task: targets from a frozen teacher (or MFCC k-means),
the encoder run with span masking, and the cross-entropy of `hubert_loss` on masked frames.

The task's head is the pre-training head (`final_proj`, `label_embs_concat`): a copy of the
pre-trained model's when it has one with the same number of classes (continued pre-training),
else a new one. `targets(frozen, batch) -> int32 [batch, frames]` is built by
`speechft_jax.objectives.hubert_targets` and sees the frozen arrays of the run (teacher
parameters, k-means centroids); no gradient flows through it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax

from speechft_jax.tasks.hubert_loss import hubert_loss, init_hubert_head


@dataclasses.dataclass(frozen=True, eq=False)
class HubertTask:
    name: str
    num_classes: int
    final_dim: int
    targets: Callable[[Any, dict], Any]
    temperature: float = 0.1
    unmasked_weight: float = 0.0
    initial_head: Any = None

    def init(self, rng, hidden_dim: int):
        if self.initial_head is not None:
            return jax.tree_util.tree_map(lambda x: x.astype("float32"), self.initial_head)
        return init_hubert_head(rng, hidden_dim, self.final_dim, self.num_classes)

    def train_loss(self, encode, head_params, frozen, batch, rng):
        """One batch: teacher targets, the masked student forward, the masked cross-entropy."""
        targets = jax.lax.stop_gradient(self.targets(frozen, batch))
        out = encode(batch, rng)
        if out.mask_time_indices is None:
            raise ValueError("the hubert objective needs the encoder's span masking (mask_time_prob > 0)")
        frame_mask = out.frame_mask & batch["example_mask"][:, None].astype(bool)
        loss, metrics = hubert_loss(head_params, out.last_hidden_state, targets, frame_mask, out.mask_time_indices,
                                    unmasked_weight=self.unmasked_weight, temperature=self.temperature)
        return loss, dict(metrics, loss=loss)
