"""The speech encoder: CNN -> feature projection -> (SpecAugment) -> transformer.

One module for HuBERT, wav2vec 2.0, WavLM and DeCoAR 2.0 (whose front end is a filterbank, not a
CNN: `front_end`); the config selects the norm placement and the relative position bias.
Parameter names follow transformers' module names (`layers_3` for `layers.3`), so checkpoint
conversion is a mechanical key map.
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from speechft_jax.models import partitioning as P
from speechft_jax.models.config import EncoderConfig
from speechft_jax.models.fbank_front_end import FbankFrontEnd
from speechft_jax.models.feature_extractor import FeatureExtractor, FeatureProjection
from speechft_jax.models.layers import EncoderLayer
from speechft_jax.models.masking import apply_spec_augment, frame_mask_from_samples
from speechft_jax.models.positional import PositionalConvEmbedding


@flax.struct.dataclass
class EncoderOutput:
    """What the encoder returns.

    hidden_states: L+1 arrays `[batch, frames, hidden]`, as transformers' `output_hidden_states`
      (the input of layer 0, then every layer's output).
    last_hidden_state: `[batch, frames, hidden]` (after the final LayerNorm in pre-LN models).
    cnn_features: the CNN output `[batch, frames, conv_dim[-1]]`, before the projection (DeCoAR 2.0:
      its normalised filterbank features).
    frame_mask: bool `[batch, frames]`, True on valid frames.
    mask_time_indices: bool `[batch, frames]` of SpecAugment-masked frames, or None.
    """

    hidden_states: tuple
    last_hidden_state: Any
    cnn_features: Any
    frame_mask: Any
    mask_time_indices: Any = None


class TransformerEncoder(nn.Module):
    config: EncoderConfig

    @nn.compact
    def __call__(self, x, frame_mask, deterministic: bool = True, first_trained_layer: int = 0):
        cfg = self.config
        x = jnp.where(frame_mask[..., None], x, jnp.zeros((), x.dtype))  # padded frames enter as 0
        x = x + PositionalConvEmbedding(cfg, name="pos_conv_embed")(x)
        norm = P.layer_norm(cfg, "layer_norm")
        if not cfg.do_stable_layer_norm:
            x = norm(x)
        x = nn.Dropout(cfg.hidden_dropout)(x, deterministic=deterministic)
        layer_cls = nn.remat(EncoderLayer, static_argnums=(4,)) if cfg.remat else EncoderLayer
        scan = cfg.scan_layers and not self.is_initializing()
        states, position_bias = [x], None
        for start, stop in _layer_segments(cfg, first_trained_layer):
            if start == first_trained_layer and start > 0:  # nothing below this layer trains: no gradient
                x = jax.lax.stop_gradient(x)
                position_bias = None if position_bias is None else jax.lax.stop_gradient(position_bias)
            if scan and stop - start > 1:
                x, position_bias, segment = self._scan_layers(start, stop, x, frame_mask, position_bias, deterministic)
                states.extend(segment)
                continue
            for i in range(start, stop):
                x, position_bias = layer_cls(cfg, i, name=f"layers_{i}")(x, frame_mask, position_bias, deterministic)
                states.append(x)
        last = norm(x) if cfg.do_stable_layer_norm else x
        return tuple(states), last

    def _scan_layers(self, start, stop, x, frame_mask, position_bias, deterministic):
        """Layers `start..stop-1` as one `lax.scan` over their parameters stacked on a new axis.

        The parameters stay stored per layer (`layers_<i>`, transformers' layout); they are stacked
        inside the program, so the compiled program holds one copy of the layer, not stop - start.
        """
        cfg = self.config
        params = nn.unbox(self.variables["params"])
        stacked = jax.tree_util.tree_map(lambda *p: jnp.stack(p), *[params[f"layers_{i}"] for i in range(start, stop)])
        keys = None if deterministic else jax.random.split(self.make_rng("dropout"), stop - start)
        layer = EncoderLayer(cfg, start, parent=None)  # start > 0 or no relative bias: every layer alike

        def body(carry, xs):
            layer_params, key = xs
            rngs = None if key is None else {"dropout": key}
            out, _ = layer.apply({"params": layer_params}, carry, frame_mask, position_bias, deterministic, rngs=rngs)
            return out, out

        body = jax.checkpoint(body, prevent_cse=False) if cfg.remat else body
        x, outputs = jax.lax.scan(body, x, (stacked, keys))
        return x, position_bias, [outputs[j] for j in range(stop - start)]


def _layer_segments(cfg: EncoderConfig, first_trained_layer: int) -> list[tuple[int, int]]:
    """Runs of alike layers: WavLM's layer 0 (it owns the relative bias table) and the frozen
    layers below `first_trained_layer` each form their own run."""
    cuts = sorted({0, cfg.num_hidden_layers, first_trained_layer} | ({1} if cfg.has_relative_position_bias else set()))
    cuts = [c for c in cuts if 0 <= c <= cfg.num_hidden_layers]
    return list(zip(cuts[:-1], cuts[1:]))


def front_end(config: EncoderConfig, **kwargs) -> nn.Module:
    """The module from waveforms to frames, called `(waveforms, attention_mask)`: DeCoAR 2.0's
    filterbank (no parameters), or the CNN of the others."""
    return (FbankFrontEnd if config.model_type == "decoar2" else FeatureExtractor)(config, **kwargs)


class SpeechEncoder(nn.Module):
    """Waveforms `[batch, samples]` -> `EncoderOutput`.

    Call with `train=True` for dropout and SpecAugment (rngs 'dropout' and 'mask'), and
    `freeze_feature_extractor=True` to stop every gradient at the CNN output;
    `first_trained_layer=k` stops every gradient below transformer layer k (SCORE trains only the
    top layers, so the backward pass stops there too). `cnn_features` (`[batch, frames, conv_dim[-1]]`,
    the CNN's output computed elsewhere) replaces running the CNN on `waveforms`: the alpha sweep
    runs a CNN shared by all merged encoders once.
    """

    config: EncoderConfig

    @nn.compact
    def __call__(self, waveforms, attention_mask=None, mask_time_indices=None, train: bool = False,
                 freeze_feature_extractor: bool = False, first_trained_layer: int = 0, cnn_features=None):
        cfg = self.config
        cnn = front_end(cfg, name="feature_extractor")(waveforms, attention_mask) if cnn_features is None else cnn_features
        if freeze_feature_extractor:
            cnn = jax.lax.stop_gradient(cnn)
        batch, frames, _ = cnn.shape
        if attention_mask is None:
            frame_mask = jnp.ones((batch, frames), bool)
        else:
            # the model's frame rule; batch-independent features always take the length formula
            frame_mask = frame_mask_from_samples(cfg, attention_mask, frames)
        hidden = FeatureProjection(cfg, name="feature_projection")(cnn, deterministic=not train)
        masked_spec_embed = None
        if cfg.has_masked_spec_embed:
            masked_spec_embed = self.param("masked_spec_embed", P.partitioned(nn.initializers.uniform(1.0), P.EMBED),
                                           (cfg.hidden_size,), jnp.dtype(cfg.param_dtype))
        needs_rng = train and cfg.apply_spec_augment and (
            (mask_time_indices is None and cfg.mask_time_prob > 0) or cfg.mask_feature_prob > 0)
        hidden, mask_time_indices = apply_spec_augment(
            cfg, hidden, frame_mask, masked_spec_embed, self.make_rng("mask") if needs_rng else None,
            mask_time_indices, train)
        states, last = TransformerEncoder(cfg, name="encoder")(hidden, frame_mask, not train, first_trained_layer)
        return EncoderOutput(states, last, cnn, frame_mask, mask_time_indices)
