"""CTC: the frame-level head (linear or stacked BiLSTM), the loss and greedy decoding.

The BiLSTM head follows s3prl / Speech-FT's ASR downstream (3 bidirectional layers of 256 units
per direction, then a linear projection). Padding is right-aligned and never reaches a valid
frame: the backward LSTM starts at each row's last valid frame.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax

CTC_HEAD_KINDS = ("linear", "bilstm")


class CTCHead(nn.Module):
    """features `[batch, frames, dim]`, frame_mask bool `[batch, frames]` -> logits float32
    `[batch, frames, vocab_size]`. Logits on padded frames are meaningless; the loss ignores them.

    Call with `train=True` for dropout between LSTM layers (rng 'dropout').
    """

    vocab_size: int
    kind: str = "linear"
    lstm_units: int = 256
    lstm_layers: int = 3
    dropout: float = 0.0

    @nn.compact
    def __call__(self, features, frame_mask, train: bool = False):
        if self.kind not in CTC_HEAD_KINDS:
            raise ValueError(f"CTCHead.kind={self.kind!r}, expected one of {CTC_HEAD_KINDS}")
        # zeros, not whatever the padding holds, so NaN or inf there cannot leak into gradients
        x = jnp.where(frame_mask[..., None], features, jnp.zeros((), features.dtype))
        if self.kind == "bilstm":
            lengths = frame_mask.sum(axis=-1).astype(jnp.int32)
            for i in range(self.lstm_layers):
                if i > 0 and self.dropout > 0:
                    x = nn.Dropout(self.dropout)(x, deterministic=not train)
                # cells named here own the parameters: lstm_{i}_forward, lstm_{i}_backward
                forward = nn.RNN(nn.OptimizedLSTMCell(self.lstm_units, name=f"lstm_{i}_forward"))
                backward = nn.RNN(nn.OptimizedLSTMCell(self.lstm_units, name=f"lstm_{i}_backward"))
                x = nn.Bidirectional(forward, backward)(x, seq_lengths=lengths)
        return nn.Dense(self.vocab_size, name="projection")(x).astype(jnp.float32)


def ctc_loss(logits, frame_mask, labels, label_mask, blank_id: int):
    """Per-utterance CTC negative log-likelihood, not normalised.

    logits `[batch, frames, vocab]`, frame_mask bool `[batch, frames]`, labels int `[batch, length]`,
    label_mask int/bool `[batch, length]` (1 = real label) -> float32 `[batch]`.
    """
    logit_paddings = 1.0 - frame_mask.astype(jnp.float32)
    label_paddings = 1.0 - label_mask.astype(jnp.float32)
    return optax.ctc_loss(logits.astype(jnp.float32), logit_paddings, labels.astype(jnp.int32), label_paddings,
                          blank_id=blank_id)


def ctc_mean_loss(logits, frame_mask, labels, label_mask, example_mask, blank_id: int):
    """torch's `ctc_loss(reduction="mean")` over the real rows: mean of nll_b / max(label_length_b, 1).

    example_mask bool `[batch]` (False = filler row, contributes nothing); other shapes as
    `ctc_loss`. Returns a float32 scalar, 0 when no row is real.
    """
    nll = ctc_loss(logits, frame_mask, labels, label_mask, blank_id)
    label_lengths = jnp.maximum(label_mask.astype(jnp.float32).sum(axis=-1), 1.0)
    per_row = jnp.where(example_mask, nll / label_lengths, 0.0)
    return per_row.sum() / jnp.maximum(example_mask.astype(jnp.float32).sum(), 1.0)


def ctc_greedy_decode(logits, frame_mask, blank_id: int) -> list[list[int]]:
    """Best path on the host: argmax per valid frame, collapse repeats, drop blanks.

    logits `[batch, frames, vocab]`, frame_mask bool `[batch, frames]` -> one label list per row.
    """
    best = np.asarray(logits).argmax(axis=-1)
    lengths = np.asarray(frame_mask).astype(bool).sum(axis=-1)
    decoded = []
    for path, length in zip(best, lengths):
        path = path[:length]
        keep = np.ones(len(path), bool)
        keep[1:] = path[1:] != path[:-1]
        decoded.append([int(t) for t in path[keep] if t != blank_id])
    return decoded
