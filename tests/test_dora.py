"""DoRA adapters: identity at init, the merge formula, the detached norm, config, and a short run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import write_train_config
from flax.traverse_util import flatten_dict
from model_factory import TINY

from speechft_jax.models import EncoderConfig, SpeechEncoder
from speechft_jax.models.config import ConfigError
from speechft_jax.models.lora import LORA_TARGETS, apply_lora, init_lora, lora_parameter_count, merge_lora
from speechft_jax.models.pretrained import init_params

HF = {"model_type": "wavlm", **{k: v for k, v in TINY.items() if k != "attn_implementation"},
      "num_buckets": 16, "max_bucket_distance": 40}
RANK, ALPHA = 4, 8.0
Q_PROJ = ("encoder", "layers_0", "attention", "q_proj")


@pytest.fixture(scope="module")
def setup():
    config = EncoderConfig.from_hf_dict(HF)
    base = jax.jit(init_params, static_argnums=0)(config, jax.random.PRNGKey(0))
    x = jnp.asarray(np.random.RandomState(0).randn(2, 1200), jnp.float32)
    return config, base, x


def flat(tree):
    return {tuple(k.key for k in path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def node_at(tree, path):
    for name in path:
        tree = tree[name]
    return tree


def randomised(adapters, seed=1):
    """`adapters` with random `lora_b` and magnitudes scaled by random factors in [0.5, 1.5]."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(adapters)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    draw = {"lora_a": lambda key, v: v, "lora_b": lambda key, v: jax.random.normal(key, v.shape),
            "magnitude": lambda key, v: v * jax.random.uniform(key, v.shape, minval=0.5, maxval=1.5)}
    return jax.tree_util.tree_unflatten(treedef, [draw[path[-1].key](key, leaf)
                                                  for key, (path, leaf) in zip(keys, leaves)])


def dora_kernel_np(kernel, a, b, magnitude):
    """DoRA's merged kernel in float64 NumPy, for a Flax kernel `[in, out]` (PyTorch `W.T`)."""
    direction = np.asarray(kernel, np.float64) + np.asarray(a, np.float64) @ np.asarray(b, np.float64) * (ALPHA / RANK)
    return np.asarray(magnitude, np.float64) * direction / np.linalg.norm(direction, axis=0)


def test_init_is_the_identity(setup):
    config, base, x = setup
    key = jax.random.PRNGKey(1)
    adapters = init_lora(base, LORA_TARGETS, RANK, key, dora=True)
    plain = init_lora(base, LORA_TARGETS, RANK, key)
    entries = {path[:-1] for path in flat(adapters)}
    assert len(entries) == config.num_hidden_layers * len(LORA_TARGETS)
    magnitudes = sum(node_at(base, path)["kernel"].shape[1] for path in entries)
    assert lora_parameter_count(adapters) == lora_parameter_count(plain) + magnitudes
    for path in entries:
        entry, kernel = node_at(adapters, path), np.asarray(node_at(base, path)["kernel"], np.float64)
        assert set(entry) == {"lora_a", "lora_b", "magnitude"} and entry["magnitude"].dtype == jnp.float32
        np.testing.assert_array_equal(entry["lora_a"], node_at(plain, path)["lora_a"])
        np.testing.assert_allclose(entry["magnitude"], np.linalg.norm(kernel, axis=0), rtol=1e-6)

    merged = apply_lora(base, adapters, ALPHA, RANK)
    for path, leaf in flat(base).items():
        np.testing.assert_allclose(flat(merged)[path], leaf, rtol=0, atol=1e-6)
    forward = jax.jit(lambda p: SpeechEncoder(config).apply({"params": p}, x).last_hidden_state)
    np.testing.assert_allclose(forward(merged), forward(base), rtol=0, atol=1e-6)


def test_merge_is_the_weight_decomposed_formula(setup):
    _, base, _ = setup
    adapters = randomised(init_lora(base, ("q_proj", "intermediate_dense"), RANK, jax.random.PRNGKey(2), dora=True))
    merged = flat(merge_lora(base, adapters, ALPHA, RANK))
    jitted = flat(jax.jit(apply_lora, static_argnums=3)(base, adapters, ALPHA, RANK))
    targeted = {path[:-1] for path in flat(adapters)}
    assert len(targeted) == 4
    for path, leaf in flat(base).items():
        if path[:-1] in targeted and path[-1] == "kernel":
            entry = node_at(adapters, path[:-1])
            expected = dora_kernel_np(leaf, entry["lora_a"], entry["lora_b"], entry["magnitude"])
            lora_only = np.asarray(leaf, np.float64) + np.asarray(entry["lora_a"] @ entry["lora_b"]) * (ALPHA / RANK)
            assert not np.allclose(expected, lora_only, atol=1e-3)   # the magnitudes matter
            np.testing.assert_allclose(merged[path], expected, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(jitted[path], expected, rtol=1e-5, atol=1e-6)
        else:
            assert merged[path] is leaf, path

    half = jax.tree_util.tree_map(lambda v: v.astype(jnp.bfloat16), base)
    assert all(leaf.dtype == jnp.bfloat16 for leaf in flat(apply_lora(half, adapters, ALPHA, RANK)).values())


def test_the_norm_is_a_constant_to_the_backward_pass(setup):
    """d/dV of `m * V / ||V||` with the norm held constant: `G * m / ||V||`, not the exact gradient
    (which also removes each column's component along V), as DoRA's section 4.3 and peft do."""
    _, base, _ = setup
    adapters = randomised(init_lora(base, ("q_proj",), RANK, jax.random.PRNGKey(3), dora=True))
    g = np.random.RandomState(3).randn(32, 32)

    def loss(adapters):
        return jnp.sum(jnp.asarray(g, jnp.float32) * node_at(apply_lora(base, adapters, ALPHA, RANK), Q_PROJ)["kernel"])

    grads = node_at(jax.jit(jax.grad(loss))(adapters), Q_PROJ)
    entry = {k: np.asarray(v, np.float64) for k, v in node_at(adapters, Q_PROJ).items()}
    v = np.asarray(node_at(base, Q_PROJ)["kernel"], np.float64) + entry["lora_a"] @ entry["lora_b"] * (ALPHA / RANK)
    norm = np.linalg.norm(v, axis=0)
    grad_v = g * entry["magnitude"] / norm
    np.testing.assert_allclose(grads["magnitude"], np.sum(g * v / norm, axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads["lora_b"], entry["lora_a"].T @ grad_v * (ALPHA / RANK), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads["lora_a"], grad_v @ entry["lora_b"].T * (ALPHA / RANK), rtol=1e-4, atol=1e-5)
    exact_v = grad_v - v * entry["magnitude"] * np.sum(g * v, axis=0) / norm ** 3
    assert not np.allclose(grads["lora_b"], entry["lora_a"].T @ exact_v * (ALPHA / RANK), rtol=1e-2)


def test_bad_adapters_name_the_path(setup):
    _, base, _ = setup
    adapters = init_lora(base, ("q_proj",), RANK, jax.random.PRNGKey(0), dora=True)
    bad = jax.tree_util.tree_map(lambda v: v, adapters)
    node_at(bad, Q_PROJ)["magnitude"] = jnp.ones(31)
    with pytest.raises(ValueError, match=r"DoRA adapter encoder/layers_0/attention/q_proj: magnitude \(31,\) "
                                         r"does not fit kernel \(32, 32\); expected \(32,\)"):
        apply_lora(base, bad, ALPHA, RANK)
    node_at(bad, Q_PROJ)["scale"] = jnp.ones(32)
    with pytest.raises(ValueError, match=r"q_proj has keys \['lora_a', 'lora_b', 'magnitude', 'scale'\], expected "
                                         r"exactly \['lora_a', 'lora_b'\] \(LoRA\) or"):
        apply_lora(base, bad, ALPHA, RANK)


def test_config_method_name_and_optimizer_group():
    from pathlib import Path

    from speechft_jax.pipeline import finetuning_method, load_pipeline_config
    from speechft_jax.train.optimizer import ENCODER, HEAD, parameter_groups

    path = Path(__file__).parents[1] / "configs" / "demo_pr_dora.yaml"
    config = load_pipeline_config(path)
    assert config.finetune.lora.dora and config.finetune.lora.rank == 8   # rank from demo_pr_lora.yaml
    assert finetuning_method(config) == "DoRA"
    assert not load_pipeline_config(path, ["finetune.lora.dora=false"]).finetune.lora.dora
    for override, message in [("finetune.lora.dora=maybe", "finetune.lora.dora='maybe', expected true or false"),
                              ("finetune.l2_to_pretrained=0.1", "0 with LoRA or DoRA")]:
        with pytest.raises(ConfigError) as info:
            load_pipeline_config(path, [override])
        assert message in str(info.value) and "\n" not in str(info.value)

    adapters = {"encoder": {"layers_0": {"attention": {"q_proj": {
        "lora_a": jnp.zeros((4, 2)), "lora_b": jnp.zeros((2, 4)), "magnitude": jnp.ones(4)}}}}}
    groups = parameter_groups({"lora": adapters, "head": {"pr": {"kernel": jnp.zeros(2)}}})
    assert set(flat(groups["lora"]).values()) == {ENCODER} and len(flat(groups["lora"])) == 3
    assert flat(groups["head"]) == {("pr", "kernel"): HEAD}


def test_a_dora_run_trains_adapters_magnitudes_and_heads_and_exports_the_merge(demo_corpus_tiny, tmp_path):
    import orbax.checkpoint as ocp

    from speechft_jax.checkpoints import load_pretrained
    from speechft_jax.train import load_train_config, train
    from speechft_jax.train.start_encoder import init_fn, start_encoder

    lora = {"rank": 2, "alpha": 4.0, "targets": ["q_proj", "intermediate_dense"], "dora": True}
    path = write_train_config(tmp_path / "dora.yaml", demo_corpus_tiny, tmp_path / "run",
                              finetune={"lora": lora, "early_checkpoints": []},
                              optimizer={"steps": 4, "beta": 0.0, "encoder_lr": 1e-2, "head_lr": 1e-3},
                              checkpoint={"every_steps": 4, "keep": 1, "async_save": False})
    config = load_train_config(path)
    result = train(config)
    theta_0 = jax.jit(init_fn(start_encoder(config.model).config, config.model.init_seed))()
    params = ocp.StandardCheckpointer().restore(result.output_dir / "checkpoints" / "4" / "state")["params"]
    assert set(params) == {"lora", "head"}   # the base encoder is not a trained parameter
    entries = {path[:-1] for path in flat(params["lora"])}
    assert {path[-1] for path in entries} == {"q_proj", "intermediate_dense"} and len(entries) == 4
    for path in entries:
        entry = node_at(params["lora"], path)
        assert np.abs(entry["lora_b"]).max() > 0, f"{path} lora_b did not train"
        start = np.linalg.norm(np.asarray(node_at(theta_0, path)["kernel"], np.float64), axis=0)
        assert np.abs(entry["magnitude"] - start).max() > 1e-5, f"{path} magnitude did not train"

    exported = {"/".join(k): v for k, v in flatten_dict(load_pretrained(result.encoder_dir).params).items()}
    expected = {"/".join(k): v for k, v in flatten_dict(merge_lora(theta_0, params["lora"], 4.0, 2)).items()}
    assert exported.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_allclose(exported[key], value, rtol=1e-6, atol=1e-7, err_msg=key)
    before = {"/".join(k): v for k, v in flatten_dict(theta_0).items()}
    changed = {key for key in before if not np.array_equal(exported[key], before[key])}
    assert changed == {key for key in before if key.endswith(("q_proj/kernel", "intermediate_dense/kernel"))}
