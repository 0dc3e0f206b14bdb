"""Speech-FT's merge: interpolation, task vectors, pre-training-only parameters, the CLI."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import speechft_jax as sj
from speechft_jax.merge import MergeError
from speechft_jax.merge.__main__ import main as merge_main


def _tree(seed, dtype=np.float32):
    r = np.random.default_rng(seed)
    return {"encoder": {"layers_0": {"kernel": r.normal(size=(4, 3)).astype(dtype), "bias": r.normal(size=3).astype(dtype)}},
            "final_proj": {"kernel": r.normal(size=(3, 2)).astype(dtype)},
            "label_embs_concat": r.normal(size=(5, 2)).astype(dtype)}


def test_interpolate_is_exact_at_the_ends_and_matches_numpy_between():
    a, b = _tree(0), _tree(1)
    at0, at1, mid = (jax.device_get(sj.interpolate(a, b, alpha)) for alpha in (0.0, 1.0, 0.25))
    for x, y in zip(jax.tree_util.tree_leaves(at0), jax.tree_util.tree_leaves(a)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(at1["encoder"]["layers_0"]["kernel"], b["encoder"]["layers_0"]["kernel"])
    expected = 0.75 * a["encoder"]["layers_0"]["kernel"] + 0.25 * b["encoder"]["layers_0"]["kernel"]
    np.testing.assert_allclose(mid["encoder"]["layers_0"]["kernel"], expected, rtol=1e-6)


def test_pretraining_only_parameters_keep_theta_0():
    a, b = _tree(0), _tree(1)
    merged = jax.device_get(sj.interpolate(a, b, 1.0))
    np.testing.assert_array_equal(merged["final_proj"]["kernel"], a["final_proj"]["kernel"])
    np.testing.assert_array_equal(merged["label_embs_concat"], a["label_embs_concat"])


def test_task_vectors_average_and_weight():
    a, b, c = _tree(0), _tree(1), _tree(2)
    k = lambda t: t["encoder"]["layers_0"]["kernel"]
    merged = jax.device_get(sj.merge_task_vectors(a, [b, c], 0.5))
    np.testing.assert_allclose(k(merged), k(a) + 0.5 * ((k(b) - k(a)) + (k(c) - k(a))) / 2, rtol=1e-6, atol=1e-6)
    weighted = jax.device_get(sj.merge_task_vectors(a, [b, c], 1.0, weights=[1.0, 0.0]))
    np.testing.assert_allclose(k(weighted), k(b), rtol=1e-6, atol=1e-6)


def test_alpha_can_be_traced():
    a, b = _tree(0), _tree(1)
    sweep = jax.jit(jax.vmap(lambda alpha: sj.interpolate(a, b, alpha)))(jnp.array([0.0, 0.5, 1.0]))
    np.testing.assert_array_equal(np.asarray(sweep["encoder"]["layers_0"]["bias"][2]), b["encoder"]["layers_0"]["bias"])


def test_mismatches_name_the_path():
    a, b = _tree(0), _tree(1)
    b["encoder"]["layers_0"]["kernel"] = np.zeros((4, 4), np.float32)
    with pytest.raises(MergeError, match="encoder/layers_0/kernel: shape"):
        sj.interpolate(a, b, 0.5)
    del b["encoder"]["layers_0"]["kernel"]
    with pytest.raises(MergeError, match="encoder/layers_0/kernel: in the pre-trained"):
        sj.interpolate(a, b, 0.5)


def test_merge_cli_writes_a_transformers_directory(tmp_path, capsys):
    from conftest import tiny_encoder_config
    from speechft_jax.objectives.hubert import init_hubert_head

    config = tiny_encoder_config()
    base = sj.init_encoder(config, seed=0)
    head = init_hubert_head(jax.random.PRNGKey(0), config.hidden_size, 8, 5)
    sj.save_pretrained(base.replace(pretraining_head=head), tmp_path / "base")
    sj.save_pretrained(sj.init_encoder(config, seed=1), tmp_path / "ft")
    assert merge_main(["--pretrained", str(tmp_path / "base"), "--finetuned", str(tmp_path / "ft"),
                       "--alpha", "0.25", "--out", str(tmp_path / "merged")]) == 0
    merged = sj.load_pretrained(tmp_path / "merged")
    ft = sj.load_pretrained(tmp_path / "ft")
    expected = jax.device_get(sj.interpolate(base.params, ft.params, 0.25))
    for x, y in zip(jax.tree_util.tree_leaves(merged.params), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(x), y, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(merged.pretraining_head["label_embs_concat"], head["label_embs_concat"])
    from transformers import AutoModel

    assert type(AutoModel.from_pretrained(tmp_path / "merged")).__name__ == "HubertModel"
    # a fine-tuning run's own dropouts and masking are not architecture: it still merges
    sj.save_pretrained(sj.init_encoder(config.replace(mask_time_prob=0.8, hidden_dropout=0.0), seed=1),
                       tmp_path / "ft_masked")
    assert merge_main(["--pretrained", str(tmp_path / "base"), "--finetuned", str(tmp_path / "ft_masked"),
                       "--alpha", "0.25", "--out", str(tmp_path / "merged_masked")]) == 0
    capsys.readouterr()
    # task arithmetic may extrapolate: allowed, with a note
    assert merge_main(["--pretrained", str(tmp_path / "base"), "--finetuned", str(tmp_path / "ft"),
                       "--alpha", "1.5", "--out", str(tmp_path / "merged_far")]) == 0
    assert "alpha 1.5 is outside [0, 1]: extrapolating past the fine-tuned weights" in capsys.readouterr().err
    sj.save_pretrained(sj.init_encoder(tiny_encoder_config(num_hidden_layers=1)), tmp_path / "other")
    assert merge_main(["--pretrained", str(tmp_path / "base"), "--finetuned", str(tmp_path / "other"),
                       "--out", str(tmp_path / "bad")]) == 2
    assert "num_hidden_layers" in capsys.readouterr().err


def _random_bundle(config, seed):
    """An encoder with seeded random weights, made without compiling an initialiser."""
    from speechft_jax.models.pretrained import abstract_params

    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(lambda leaf: rng.normal(size=leaf.shape).astype(leaf.dtype),
                                    abstract_params(config))
    return sj.PretrainedBundle(config, params, sj.SpeechEncoder(config), f"seed {seed}")


def test_merge_into_a_model_directory_needs_overwrite_and_then_leaves_one_model(tmp_path, capsys):
    from conftest import tiny_encoder_config
    from safetensors.numpy import load_file

    from speechft_jax.checkpoints.params_io import params_to_state_dict

    config = tiny_encoder_config()
    base, ft = _random_bundle(config, 0), _random_bundle(config, 1)
    sj.save_pretrained(base, tmp_path / "base")
    sj.save_pretrained(ft, tmp_path / "ft")
    out = tmp_path / "out"
    sj.save_flax(base, out)  # theta_0 already converted to a Flax directory where the merge goes
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    argv = ["--pretrained", str(tmp_path / "base"), "--finetuned", str(tmp_path / "ft"), "--alpha", "0.5",
            "--out", str(out)]
    assert merge_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {out}: already holds a model" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert merge_main(argv + ["--overwrite"]) == 0
    assert not (out / "speechft_params.msgpack").exists()
    # this project and transformers (which reads model.safetensors) load the merge, not theta_0
    expected = params_to_state_dict(jax.tree_util.tree_map(lambda a, b: 0.5 * a + 0.5 * b, base.params, ft.params),
                                    config)
    ours = params_to_state_dict(sj.load_pretrained(out).params, config)
    theirs = load_file(out / "model.safetensors")
    for key in ("encoder.layers.0.attention.q_proj.weight", "masked_spec_embed"):
        np.testing.assert_allclose(ours[key], expected[key], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(theirs[key], ours[key])


@pytest.mark.parametrize("extra, message", [
    (["--alpha", "nan"], "--alpha nan: expected finite numbers"),
    (["--weights", "1", "inf"], "--weights 1 inf: expected finite numbers"),
    (["--weights", "1"], "--weights: 1 given for 2 --finetuned directories"),
    (["--out", "BASE/"], "is one of the input directories"),
])
def test_merge_cli_refuses_bad_arguments_before_loading_anything(tmp_path, capsys, extra, message):
    base = tmp_path / "base"  # never created: the checks come before any load
    argv = ["--pretrained", str(base), "--finetuned", str(tmp_path / "a"), str(tmp_path / "b"),
            "--out", str(tmp_path / "merged")] + [x.replace("BASE", str(base)) for x in extra]
    with pytest.raises(SystemExit) as exit_info:
        merge_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "merged").exists()
