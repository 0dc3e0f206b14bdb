"""The stable fine-tuning optimizer: frozen CNN, head-only warm-up, schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from speechft_jax.train.optimizer import parameter_groups, stable_finetuning_optimizer
from speechft_jax.train.schedules import stable_finetuning_schedule


def test_schedule_warms_up_holds_and_decays():
    schedule = stable_finetuning_schedule(1e-3, total_steps=100)
    values = np.array([float(schedule(step)) for step in range(101)])
    assert values[0] == 0.0 and values[5] == pytest.approx(5e-4)
    np.testing.assert_allclose(values[10:51], 1e-3)
    assert values[75] == pytest.approx(5e-4) and values[100] == 0.0
    assert np.all(np.diff(values[50:]) <= 0)
    with pytest.raises(ValueError, match="total_steps=0"):
        stable_finetuning_schedule(1e-3, 0)


def _params():
    rng = np.random.RandomState(0)
    return {"encoder": {"feature_extractor": {"conv": {"kernel": jnp.asarray(rng.randn(3, 7), jnp.float32)}},
                        "encoder": {"layers_0": {"kernel": jnp.asarray(rng.randn(4, 4), jnp.float32)}}},
            "head": {"kernel": jnp.asarray(rng.randn(4, 2), jnp.float32)}}


def _loss(params):
    cnn = params["encoder"]["feature_extractor"]["conv"]["kernel"]
    x = jnp.tanh(jnp.ones((5, 3)) @ cnn)[:, :4] @ params["encoder"]["encoder"]["layers_0"]["kernel"]
    return jnp.mean((x @ params["head"]["kernel"] - 1.0) ** 2)


def test_groups_name_cnn_encoder_and_head():
    groups = parameter_groups(_params())
    assert groups["encoder"]["feature_extractor"]["conv"]["kernel"] == "frozen"
    assert groups["encoder"]["encoder"]["layers_0"]["kernel"] == "encoder"
    assert groups["head"]["kernel"] == "head"
    with pytest.raises(ValueError, match="must be"):
        parameter_groups({"encoder": {}})


def test_cnn_frozen_encoder_waits_for_beta_then_trains():
    total, beta, lr = 40, 0.25, 1e-2
    optimizer = stable_finetuning_optimizer(total, encoder_lr=lr, head_lr=lr, beta=beta)
    params = _params()
    state = optimizer.init(params)
    # the CNN has no optimizer state (its kernel has a shape nothing else has)
    assert not any(leaf.shape == (3, 7) for leaf in jax.tree_util.tree_leaves(state))

    @jax.jit
    def step(params, state):
        grads = jax.grad(_loss)(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    start = _params()
    history = []
    for _ in range(total):
        previous = params
        params, state = step(params, state)
        history.append((previous, params))
    cnn = lambda p: np.asarray(p["encoder"]["feature_extractor"]["conv"]["kernel"])
    enc = lambda p: np.asarray(p["encoder"]["encoder"]["layers_0"]["kernel"])
    head = lambda p: np.asarray(p["head"]["kernel"])
    np.testing.assert_array_equal(cnn(params), cnn(start))  # bit-identical after the whole run
    first_encoder_step = int(beta * total)
    for i, (before, after) in enumerate(history):
        if i < first_encoder_step:
            np.testing.assert_array_equal(enc(after), enc(start))  # head-only warm-up
        if 0 < i < total - 1:
            assert not np.array_equal(head(after), head(before))  # the head trains throughout
    assert not np.array_equal(enc(history[first_encoder_step][1]), enc(start))
    # fresh Adam moments at unfreezing: the first update is about lr (Adam's first step is lr * sign)
    delta = np.abs(enc(history[first_encoder_step][1]) - enc(start))
    expected_lr = float(stable_finetuning_schedule(lr, total)(first_encoder_step))
    np.testing.assert_allclose(delta.max(), expected_lr, rtol=0.05)
    assert float(_loss(params)) < float(_loss(start))


def test_beta_zero_trains_encoder_from_the_start_and_bad_beta_fails():
    optimizer = stable_finetuning_optimizer(10, beta=0.0, encoder_lr=1e-2)
    params = start = _params()
    state = optimizer.init(params)
    for _ in range(2):  # step 0 has learning rate 0 (warm-up starts at 0); step 1 does not
        updates, state = optimizer.update(jax.grad(_loss)(params), state, params)
        params = optax.apply_updates(params, updates)
        assert float(jnp.abs(updates["encoder"]["feature_extractor"]["conv"]["kernel"]).max()) == 0.0
    assert not np.array_equal(np.asarray(params["encoder"]["encoder"]["layers_0"]["kernel"]),
                              np.asarray(start["encoder"]["encoder"]["layers_0"]["kernel"]))
    with pytest.raises(ValueError, match="beta=1.5"):
        stable_finetuning_optimizer(10, beta=1.5)


def test_clip_by_global_norm_matches_optax():
    from speechft_jax.train.optimizer import clip_by_global_norm
    from speechft_jax.tree_math import global_norm

    tree = {"a": jnp.arange(12.0).reshape(3, 4), "b": {"c": -jnp.ones(5)}}
    assert float(global_norm(tree)) == pytest.approx(float(optax.tree.norm(tree)), rel=1e-6)
    for max_norm in (1.0, 100.0):
        ours, _ = clip_by_global_norm(max_norm).update(tree, optax.EmptyState())
        theirs, _ = optax.clip_by_global_norm(max_norm).update(tree, optax.EmptyState())
        for x, y in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(theirs)):
            np.testing.assert_allclose(x, y, rtol=1e-6)


def test_adam_from_step_is_optax_adamw_started_late():
    """Before `start` the direction is zero and the moments stay put; from `start` on it equals
    optax's AdamW direction run on the later gradients only (fresh moments, step count from 1)."""
    from speechft_jax.train.optimizer import adam_from_step

    rng = np.random.RandomState(3)
    params = {"w": jnp.asarray(rng.randn(4, 3), jnp.float32), "b": jnp.asarray(rng.randn(3), jnp.float32)}
    grads = [jax.tree_util.tree_map(lambda p: jnp.asarray(rng.randn(*p.shape), jnp.float32), params)
             for _ in range(6)]
    for weight_decay in (0.0, 0.1):
        ours = adam_from_step(start_step=2, weight_decay=weight_decay)
        reference = optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(weight_decay))
        state, ref_state = ours.init(params), reference.init(params)
        for i, g in enumerate(grads):
            updates, state = jax.jit(ours.update)(g, state, params)
            if i < 2:
                for leaf in jax.tree_util.tree_leaves((updates, state.mu, state.nu)):
                    assert not np.any(np.asarray(leaf))
                continue
            expected, ref_state = reference.update(g, ref_state, params)
            for x, y in zip(jax.tree_util.tree_leaves(updates), jax.tree_util.tree_leaves(expected)):
                np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
        assert int(state.count) == 4 and int(state.calls) == 6
