"""Transformer encoder layers: the feed-forward block and the post-LN / pre-LN ("stable layer
norm") layer, shared by all three model families."""

from __future__ import annotations

import flax.linen as nn

from speechft_jax.models import partitioning as P
from speechft_jax.models.activations import activation
from speechft_jax.models.attention import SelfAttention
from speechft_jax.models.config import EncoderConfig


class FeedForward(nn.Module):
    config: EncoderConfig

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        cfg = self.config
        x = P.dense(cfg.intermediate_size, P.EMBED, P.MLP, cfg, "intermediate_dense")(x)
        x = activation(cfg.hidden_act)(x)
        x = nn.Dropout(cfg.activation_dropout)(x, deterministic=deterministic)
        x = P.dense(cfg.hidden_size, P.MLP, P.EMBED, cfg, "output_dense")(x)
        return nn.Dropout(cfg.hidden_dropout)(x, deterministic=deterministic)


class EncoderLayer(nn.Module):
    """One transformer layer: `[batch, frames, hidden]` -> same, plus the (WavLM) position bias.

    Post-LN (base models): x = LN(x + attn(x)); x = LN'(x + ff(x)).
    Pre-LN (`do_stable_layer_norm`): x = x + attn(LN(x)); x = x + ff(LN'(x)).
    """

    config: EncoderConfig
    layer_index: int = 0

    @nn.compact
    def __call__(self, x, key_mask, position_bias=None, deterministic: bool = True):
        cfg = self.config
        attention = SelfAttention(cfg, has_relative_position_bias=self.layer_index == 0, name="attention")
        norm, final_norm = P.layer_norm(cfg, "layer_norm"), P.layer_norm(cfg, "final_layer_norm")
        feed_forward = FeedForward(cfg, name="feed_forward")
        dropout = nn.Dropout(cfg.hidden_dropout)
        if cfg.do_stable_layer_norm:
            attn, position_bias = attention(norm(x), key_mask, position_bias, deterministic)
            x = x + dropout(attn, deterministic=deterministic)
            x = x + feed_forward(final_norm(x), deterministic)
        else:
            attn, position_bias = attention(x, key_mask, position_bias, deterministic)
            x = norm(x + dropout(attn, deterministic=deterministic))
            x = final_norm(x + feed_forward(x, deterministic))
        x = nn.with_logical_constraint(x, (P.BATCH, P.LENGTH, P.ACT_EMBED))
        return x, position_bias
