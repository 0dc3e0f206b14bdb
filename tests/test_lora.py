"""LoRA adapters over the TINY WavLM encoder: identity at init, the merge formula, gradients, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_factory import TINY

from speechft_jax.models import EncoderConfig, SpeechEncoder
from speechft_jax.models.lora import LORA_TARGETS, apply_lora, init_lora, lora_parameter_count, merge_lora
from speechft_jax.models.pretrained import init_params

HF = {"model_type": "wavlm", **{k: v for k, v in TINY.items() if k != "attn_implementation"},
      "num_buckets": 16, "max_bucket_distance": 40}
RANK, ALPHA = 4, 8.0


@pytest.fixture(scope="module")
def setup():
    config = EncoderConfig.from_hf_dict(HF)
    base = jax.jit(init_params, static_argnums=0)(config, jax.random.PRNGKey(0))  # eager init is ~3x slower
    x = jnp.asarray(np.random.RandomState(0).randn(2, 1200), jnp.float32)
    return config, base, x


def flat(tree):
    return {tuple(k.key for k in path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def modules(adapters):
    """Adapter module paths, e.g. ('encoder', 'layers_0', 'attention', 'q_proj')."""
    return {path[:-1] for path in flat(adapters)}


def with_random_b(adapters, seed=1):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(adapters)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree_util.tree_unflatten(treedef, [
        jax.random.normal(key, leaf.shape) if path[-1].key == "lora_b" else leaf
        for key, (path, leaf) in zip(keys, leaves)])


def test_init_is_the_identity(setup):
    config, base, x = setup
    adapters = init_lora(base, LORA_TARGETS, RANK, jax.random.PRNGKey(1))
    assert len(modules(adapters)) == config.num_hidden_layers * len(LORA_TARGETS)
    q = adapters["encoder"]["layers_0"]["attention"]["q_proj"]
    assert q["lora_a"].shape == (32, RANK) and q["lora_b"].shape == (RANK, 32)
    ff = adapters["encoder"]["layers_1"]["feed_forward"]
    assert ff["intermediate_dense"]["lora_a"].shape == (32, RANK)
    assert ff["output_dense"]["lora_b"].shape == (RANK, 32)
    for path, leaf in flat(adapters).items():
        assert leaf.dtype == jnp.float32
        if path[-1] == "lora_b":
            assert not np.any(np.asarray(leaf))
        else:  # kaiming-uniform: |a| <= 1/sqrt(in)
            values = np.asarray(leaf)
            assert np.abs(values).max() <= 1 / np.sqrt(leaf.shape[0]) and values.std() > 0
    per_layer = RANK * (4 * (32 + 32) + (32 + 64) + (64 + 32))  # q, k, v, out; intermediate; output
    assert lora_parameter_count(adapters) == config.num_hidden_layers * per_layer

    merged = apply_lora(base, adapters, ALPHA, RANK)
    base_flat, merged_flat = flat(base), flat(merged)
    assert base_flat.keys() == merged_flat.keys()
    for path, leaf in base_flat.items():
        np.testing.assert_array_equal(np.asarray(merged_flat[path]), np.asarray(leaf))
        if path[:-1] not in modules(adapters):
            assert merged_flat[path] is leaf

    forward = jax.jit(lambda p: SpeechEncoder(config).apply({"params": p}, x).last_hidden_state)
    np.testing.assert_array_equal(np.asarray(forward(merged)), np.asarray(forward(base)))


def test_merge_adds_the_scaled_low_rank_update(setup):
    _, base, _ = setup
    adapters = with_random_b(init_lora(base, LORA_TARGETS, RANK, jax.random.PRNGKey(2)))
    merged = merge_lora(base, adapters, ALPHA, RANK)
    jitted = jax.jit(apply_lora, static_argnums=3)(base, adapters, ALPHA, RANK)  # alpha traced
    base_flat, merged_flat, jitted_flat = flat(base), flat(merged), flat(jitted)
    targeted = modules(adapters)
    for path, leaf in base_flat.items():
        module = path[:-1]
        if module in targeted and path[-1] == "kernel":
            node = adapters
            for name in module:
                node = node[name]
            a, b = np.asarray(node["lora_a"], np.float64), np.asarray(node["lora_b"], np.float64)
            # Flax kernels are [in, out]: this is the transpose of PyTorch's `W + B @ A * scale`.
            expected = np.asarray(leaf, np.float64) + a @ b * (ALPHA / RANK)
            assert not np.allclose(expected, np.asarray(leaf))
            np.testing.assert_allclose(np.asarray(merged_flat[path]), expected, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(np.asarray(jitted_flat[path]), expected, rtol=1e-5, atol=1e-6)
        else:
            assert merged_flat[path] is leaf, path

    half = jax.tree_util.tree_map(lambda v: v.astype(jnp.bfloat16), base)
    half_merged = flat(apply_lora(half, adapters, ALPHA, RANK))
    assert all(leaf.dtype == jnp.bfloat16 for leaf in half_merged.values())


def test_gradients_reach_the_adapters(setup):
    config, base, x = setup
    adapters = init_lora(base, LORA_TARGETS, RANK, jax.random.PRNGKey(3))

    @jax.jit
    def grads(adapters):
        def loss(adapters):
            params = apply_lora(base, adapters, ALPHA, RANK)
            return jnp.mean(SpeechEncoder(config).apply({"params": params}, x).last_hidden_state ** 2)
        return jax.grad(loss)(adapters)

    at_init = flat(grads(adapters))
    assert len(at_init) == 2 * len(modules(adapters))
    for path, g in at_init.items():
        if path[-1] == "lora_b":  # d/dB = A^T dW: non-zero although B = 0
            assert np.abs(np.asarray(g)).max() > 0, path
        else:  # d/dA = dW B^T = 0 while B = 0
            assert not np.any(np.asarray(g)), path

    for path, g in flat(grads(with_random_b(adapters))).items():
        assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).max() > 0, path


def test_targets_select_modules(setup):
    config, base, _ = setup
    adapters = init_lora(base, ("q_proj", "v_proj"), RANK, jax.random.PRNGKey(4))
    layers = range(config.num_hidden_layers)
    assert modules(adapters) == {("encoder", f"layers_{i}", "attention", name)
                                 for i in layers for name in ("q_proj", "v_proj")}
    assert lora_parameter_count(adapters) == config.num_hidden_layers * 2 * RANK * (32 + 32)
    merged = flat(apply_lora(base, with_random_b(adapters), ALPHA, RANK))
    changed = {path[:-1] for path, leaf in flat(base).items() if merged[path] is not leaf}
    assert changed == modules(adapters)

    single = init_lora(base, "output_dense", 2, jax.random.PRNGKey(4))
    assert modules(single) == {("encoder", f"layers_{i}", "feed_forward", "output_dense") for i in layers}


def test_init_errors(setup):
    _, base, _ = setup
    with pytest.raises(ValueError, match="unknown LoRA target.*'projection'.*allowed: q_proj, k_proj"):
        init_lora(base, ("q_proj", "projection"), RANK, jax.random.PRNGKey(0))
    for rank in (0, -1, 2.0):
        with pytest.raises(ValueError, match="rank"):
            init_lora(base, LORA_TARGETS, rank, jax.random.PRNGKey(0))
    cnn_only = {k: v for k, v in base.items() if k != "encoder"}
    with pytest.raises(ValueError, match="no Dense kernel named q_proj"):
        init_lora(cnn_only, ("q_proj",), RANK, jax.random.PRNGKey(0))


def test_apply_errors_name_the_path(setup):
    _, base, _ = setup
    adapters = init_lora(base, ("q_proj",), RANK, jax.random.PRNGKey(0))
    fitting = {"lora_a": jnp.zeros((16, RANK)), "lora_b": jnp.zeros((RANK, 32))}
    projection = {"feature_projection": {"projection": fitting}}
    with pytest.raises(ValueError, match="feature_projection/projection has no matching kernel"):
        apply_lora(base, projection, ALPHA, RANK)
    missing = {"encoder": {"layers_7": adapters["encoder"]["layers_0"]}}
    with pytest.raises(ValueError, match="encoder/layers_7/attention/q_proj has no matching kernel"):
        apply_lora(base, missing, ALPHA, RANK)
    bad = jax.tree_util.tree_map(lambda v: v, adapters)
    bad["encoder"]["layers_1"]["attention"]["q_proj"]["lora_b"] = jnp.zeros((RANK, 31))
    with pytest.raises(ValueError, match=r"layers_1/attention/q_proj: .*\(4, 31\) do not fit kernel"):
        apply_lora(base, bad, ALPHA, RANK)
    with pytest.raises(ValueError, match="encoder/layers_0/attention/q_proj: .*with rank 2"):
        apply_lora(base, adapters, ALPHA, 2)
    with pytest.raises(TypeError, match="layers_0/attention is a leaf"):
        apply_lora(base, {"encoder": {"layers_0": {"attention": jnp.zeros(3)}}}, ALPHA, RANK)
