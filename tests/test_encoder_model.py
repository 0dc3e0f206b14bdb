"""The encoder module beyond parity: config handling, logical axes, remat, training mode."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import speechft_jax as sj
from model_factory import TINY

HF = {"model_type": "wavlm", **{k: v for k, v in TINY.items() if k != "attn_implementation"},
      "num_buckets": 16, "max_bucket_distance": 40, "vocab_size": 40, "ctc_loss_reduction": "mean"}


def test_config_round_trips_through_hf_dict():
    config = sj.EncoderConfig.from_hf_dict(HF)
    again = sj.EncoderConfig.from_hf_dict(config.to_hf_dict())
    assert again == config
    assert config.to_hf_dict()["vocab_size"] == 40  # fields outside the encoder are kept
    assert config.receptive_field == 10 + (3 - 1) * 5 + (2 - 1) * 5 * 2
    assert config.num_frames(config.receptive_field) == 1 and config.num_frames(config.receptive_field - 1) == 0
    assert sj.EncoderConfig().receptive_field == 400 and sj.EncoderConfig().num_frames(16000) == 49
    assert "frame_mask" not in config.to_hf_dict()  # transformers' rule is the default, not written
    fairseq_rule = config.replace(frame_mask="fairseq")
    assert fairseq_rule.to_hf_dict()["frame_mask"] == "fairseq"
    assert sj.EncoderConfig.from_hf_dict(fairseq_rule.to_hf_dict()) == fairseq_rule != config


@pytest.mark.parametrize("key,value,message", [
    ("model_type", "bert", "not supported"),
    ("hidden_size", 30, "num_attention_heads=4, expected a divisor of hidden_size=30"),
    ("feat_extract_norm", "batch", "expected 'group' or 'layer'"),
    ("mask_time_prob", 1.5, "mask_time_prob=1.5, expected a number in \\[0, 1\\]"),
    ("conv_dim", 16, "conv_dim=16, expected a list of integers"),
    ("add_adapter", True, "add_adapter=True .* is not supported"),
    ("hidden_act", "mish", "hidden_act='mish', expected one of"),
    ("frame_mask", "s3prl", "frame_mask='s3prl', expected one of transformers, fairseq"),
])
def test_config_errors_name_the_key(key, value, message):
    with pytest.raises(sj.ConfigError, match=message):
        sj.EncoderConfig.from_hf_dict({**HF, key: value}, source="x/config.json")


def test_every_parameter_has_logical_axis_names():
    config = sj.EncoderConfig.from_hf_dict(HF)
    variables = jax.eval_shape(lambda: sj.SpeechEncoder(config).init(jax.random.PRNGKey(0), jnp.zeros((1, 800))))
    leaves = jax.tree_util.tree_leaves(variables["params"], is_leaf=lambda x: isinstance(x, nn.Partitioned))
    assert leaves and all(isinstance(leaf, nn.Partitioned) for leaf in leaves)
    for leaf in leaves:
        assert len(leaf.names) == len(leaf.value.shape)
    specs = nn.get_partition_spec(variables["params"])
    layer = specs["encoder"]["layers_0"]
    assert tuple(layer["attention"]["q_proj"]["kernel"]) == ("embed", "heads")
    assert tuple(layer["feed_forward"]["intermediate_dense"]["kernel"]) == ("embed", "mlp")


def test_remat_gives_identical_outputs_and_gradients():
    config = sj.EncoderConfig.from_hf_dict(HF)
    bundle = sj.init_encoder(config, seed=0)
    rematted = sj.SpeechEncoder(config.replace(remat=True))
    x = jnp.asarray(np.random.RandomState(0).randn(2, 2000), jnp.float32)

    def loss(params, module):
        return jnp.mean(module.apply({"params": params}, x).last_hidden_state ** 2)

    grad_fn = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    value, grads = grad_fn(bundle.params, bundle.module)
    value_r, grads_r = grad_fn(bundle.params, rematted)
    np.testing.assert_allclose(value, value_r, rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads_r)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_frozen_feature_extractor_gets_no_gradient():
    config = sj.EncoderConfig.from_hf_dict({**HF, "model_type": "hubert"})
    bundle = sj.init_encoder(config, seed=0)
    x = jnp.asarray(np.random.RandomState(0).randn(2, 2000), jnp.float32)

    def loss(params, freeze):
        return jnp.mean(bundle.module.apply({"params": params}, x, freeze_feature_extractor=freeze).last_hidden_state ** 2)

    grad_fn = jax.jit(jax.grad(loss), static_argnums=1)
    frozen = grad_fn(bundle.params, True)["feature_extractor"]
    free = grad_fn(bundle.params, False)["feature_extractor"]
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree_util.tree_leaves(frozen))
    assert any(float(jnp.abs(g).max()) > 0.0 for g in jax.tree_util.tree_leaves(free))


def test_training_mode_masks_and_drops_out():
    config = sj.EncoderConfig.from_hf_dict({**HF, "mask_time_prob": 0.5, "mask_feature_prob": 0.2, "mask_feature_length": 4})
    bundle = sj.init_encoder(config, seed=0)
    x = jnp.asarray(np.random.RandomState(0).randn(2, 4000), jnp.float32)
    mask = jnp.ones((2, 4000), jnp.int32).at[1, 2000:].set(0)
    rngs = {"mask": jax.random.PRNGKey(1), "dropout": jax.random.PRNGKey(2)}
    apply = jax.jit(bundle.module.apply, static_argnames="train")
    out = apply({"params": bundle.params}, x, mask, train=True, rngs=rngs)
    masked = np.asarray(out.mask_time_indices)
    lengths = np.asarray(out.frame_mask).sum(-1)
    assert 0.2 < masked[0].mean() < 0.8 and masked[1, lengths[1]:-1].sum() == 0
    evaluation = apply({"params": bundle.params}, x, mask)
    assert evaluation.mask_time_indices is None
    assert not np.allclose(np.asarray(out.last_hidden_state), np.asarray(evaluation.last_hidden_state))
    with pytest.raises(Exception, match="mask"):
        bundle.module.apply({"params": bundle.params}, x, mask, train=True, rngs={"dropout": jax.random.PRNGKey(0)})


def test_extract_features_rejects_bad_shapes():
    bundle = sj.init_encoder(sj.EncoderConfig.from_hf_dict(HF), seed=0)
    with pytest.raises(ValueError, match=r"waveforms: expected shape \[batch, samples\]"):
        sj.extract_features(bundle, np.zeros(4000, np.float32))
    with pytest.raises(ValueError, match="shorter than the CNN's receptive field"):
        sj.extract_features(bundle, np.zeros((1, 20), np.float32))
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(2, 4000\)"):
        sj.extract_features(bundle, np.zeros((2, 4000), np.float32), np.ones((2, 3999)))


@pytest.mark.parametrize("key,value,message", [
    ("conv_dim", [16, 16, 1e20], r"conv_dim\[2\]=1e\+20, expected an integer in \[1, 65536\]"),
    ("conv_kernel", [10, 3, float("inf")], r"conv_kernel\[2\]=inf, expected an integer in \[1, 4096\]"),
    ("conv_stride", [5, 2, 300000000], r"conv_stride\[2\]=300000000, expected an integer in \[1, 4096\]"),
    ("conv_dim", [16] * 300, r"conv_dim=\(16, 16, .*\.\.\., expected a list of at most 256 integers"),
    ("hidden_size", 10**20, r"hidden_size=100000000000000000000, expected an integer in \[1, 65536\]"),
    ("num_hidden_layers", 100000, r"num_hidden_layers=100000, expected an integer in \[1, 256\]"),
    ("intermediate_size", 3 * 10**8, r"intermediate_size=300000000, expected an integer in \[1, 65536\]"),
    ("num_conv_pos_embeddings", 10**6, r"num_conv_pos_embeddings=1000000, expected an integer in \[1, 4096\]"),
    ("mask_time_min_masks", -1, r"mask_time_min_masks=-1, expected an integer in \[0, 65536\]"),
    ("layer_norm_eps", float("nan"), r"layer_norm_eps=nan, expected a number in \(0, 1\]"),
    ("initializer_range", float("inf"), r"initializer_range=inf, expected a number in \[0, 10\]"),
])
def test_shape_values_are_bounded_before_anything_is_allocated(key, value, message):
    # these used to reach the initialiser: an OverflowError traceback, or minutes and then a MemoryError
    with pytest.raises(sj.ConfigError, match=f"^x/config.json: encoder config: {message}") as caught:
        sj.EncoderConfig.from_hf_dict({**HF, key: value}, source="x/config.json")
    assert "\n" not in str(caught.value)


def test_a_shape_too_big_in_total_is_refused_and_real_ones_pass():
    # XLS-R 2B's shape (about 2.2e9 parameters) is inside the bounds; each value in range, but together too big is not
    xlsr_2b = dict(hidden_size=1920, num_hidden_layers=48, num_attention_heads=16, intermediate_size=7680)
    assert 2e9 < sj.EncoderConfig(**xlsr_2b).estimated_parameters() < 2.5e9
    assert sj.EncoderConfig().estimated_parameters() == pytest.approx(94.4e6, rel=0.02)  # HuBERT Base
    with pytest.raises(sj.ConfigError, match=r"hidden_size/num_hidden_layers/intermediate_size=\(16384, 256, 65536\), "
                                             r"expected a shape of at most 5e\+09 parameters "
                                             r"\(this one has about 8\..e\+11\)"):
        sj.EncoderConfig(hidden_size=16384, num_hidden_layers=256, num_attention_heads=16, intermediate_size=65536)


@pytest.mark.parametrize("spec", ["[(512,10,5)] * 100000000000000000000", "[(512,10,5)] * 300000000",
                                  "300000000 * [(512,10,5)]"])
def test_fairseq_conv_layer_repeats_are_bounded_before_expanding(spec):
    # the literal evaluator used to build the list first: an OverflowError, or 112 s and a MemoryError
    from speechft_jax.checkpoints import CheckpointError
    from speechft_jax.checkpoints.fairseq_import import parse_conv_layers

    with pytest.raises(CheckpointError, match=r"x.pt: conv_feature_layers: cannot parse .*more than 256 layers"):
        parse_conv_layers(spec, "x.pt: conv_feature_layers")
    assert len(parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 255")) == 256
