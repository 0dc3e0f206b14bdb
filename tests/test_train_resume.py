"""Resuming: a run killed with SIGKILL and re-run into its directory ends exactly like an
uninterrupted one; the same config on 8 simulated devices (data=4, fsdp=2) follows the same
loss curve with its parameters sharded."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from speechft_jax.train import load_train_config, train
from speechft_jax.train.metrics_log import read_metrics

REPO = Path(__file__).parents[1]


def _command(config_path, output_dir, *extra):
    return [sys.executable, "-m", "speechft_jax.train", "--config", str(config_path),
            "--set", f"output_dir={output_dir}", *extra]


def _committed_steps(run_dir):
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and (p / "state").is_dir())


def _weights(run_dir):
    return load_file(str(Path(run_dir) / "encoder" / "model.safetensors"))


def test_sigkill_then_resume_ends_with_identical_parameters(stable_run, tmp_path):
    config_path, reference = stable_run
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(_command(config_path, run_dir), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            metrics = run_dir / "metrics.jsonl"
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 7 and _committed_steps(run_dir):
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = len(read_metrics(run_dir))
    assert 7 <= killed_at < 16 and not (run_dir / "encoder").exists()

    resumed = train(load_train_config(config_path, [f"output_dir={run_dir}"]))
    assert resumed.resumed_from is not None and resumed.resumed_from <= killed_at
    expected, got = _weights(reference.encoder_dir.parent), _weights(run_dir)
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    # the metrics read as one uninterrupted run with the same losses
    assert [r["loss"] for r in read_metrics(run_dir)] == [r["loss"] for r in read_metrics(reference.output_dir)]


def test_eight_devices_data_4_fsdp_2_match_one_device(stable_run, tmp_path):
    config_path, reference = stable_run
    run_dir = tmp_path / "mesh8"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    done = subprocess.run(_command(config_path, run_dir, "--set", "mesh.data=4", "--set", "mesh.fsdp=2"),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    sharding = json.loads((run_dir / "sharding.json").read_text())
    assert sharding["mesh"] == {"data": 4, "fsdp": 2}
    assert sharding["sharded_arrays"] >= 20 and sharding["param_bytes_per_device"] < 0.7 * sharding["param_bytes"]
    one, eight = read_metrics(reference.output_dir), read_metrics(run_dir)
    np.testing.assert_allclose([r["loss"] for r in eight], [r["loss"] for r in one], rtol=1e-4)
    # Adam divides by sqrt(v): where a gradient is ~0, float noise can flip single updates, so
    # compare the whole update (theta - theta_0, theta_0 = the encoder exported after warm-up)
    expected, got = _weights(reference.encoder_dir.parent), _weights(run_dir)
    theta_0 = load_file(str(reference.early_dirs[0] / "model.safetensors"))
    error = sum(np.sum((got[k].astype(np.float64) - expected[k]) ** 2) for k in expected)
    update = sum(np.sum((expected[k].astype(np.float64) - theta_0[k]) ** 2) for k in expected)
    assert update > 0 and np.sqrt(error / update) < 1e-2


def test_resume_flag_needs_a_checkpoint(stable_run, tmp_path):
    from speechft_jax.models.config import ConfigError

    config_path, _ = stable_run
    with pytest.raises(ConfigError, match="holds no checkpoint to resume from"):
        train(load_train_config(config_path, [f"output_dir={tmp_path / 'empty'}"]), require_checkpoint=True)


def test_a_saved_state_of_another_layout_is_a_one_line_error(tmp_path):
    """A run checkpointed by another version (another optimizer-state tree) does not resume with
    Orbax's multi-line report: one line names the step directory and the first differing path."""
    import jax
    import jax.numpy as jnp

    from speechft_jax.checkpoints import CheckpointError
    from speechft_jax.train.checkpointing import RunCheckpoints, abstract_with_shardings

    def abstract(tree):
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        return abstract_with_shardings(tree, jax.tree_util.tree_map(lambda _: device, tree))

    saved = {"opt": {"count": jnp.zeros(()), "inner": {"mu": jnp.ones(3)}}}
    checkpoints = RunCheckpoints(tmp_path / "checkpoints", every_steps=1, keep=2, async_save=False)
    checkpoints.save(3, saved, {"pr": {}}, force=True)
    checkpoints.wait()
    other = {"opt": {"calls": jnp.zeros(()), "count": jnp.zeros(()), "mu": jnp.ones(3)}}
    with pytest.raises(CheckpointError, match=r"checkpoints/3: the saved train state does not fit this run's "
                                              r"\(\d+ paths differ, first opt\.\w+\)") as info:
        checkpoints.restore(abstract(other))
    assert "\n" not in str(info.value)
    state, loaders, step = checkpoints.restore(abstract(saved))
    assert step == 3 and loaders == {"pr": {}} and float(state["opt"]["inner"]["mu"].sum()) == 3.0
    checkpoints.close()


def test_killed_after_the_last_checkpoint_reports_the_logged_final_loss(stable_run, tmp_path, caplog):
    """Killed after the last checkpoint but before the export and summary: the resumed run trains
    no step, and its final loss is the logged one (it was NaN)."""
    from conftest import copy_stopped_after_last_checkpoint

    caplog.set_level(logging.INFO, logger="speechft_jax")
    config_path, reference = stable_run
    run_dir = copy_stopped_after_last_checkpoint(reference.output_dir, tmp_path / "killed_late")
    resumed = train(load_train_config(config_path, [f"output_dir={run_dir}"]))
    assert resumed.resumed_from == 16
    logged = read_metrics(run_dir)[-1]["loss"]
    assert np.isfinite(resumed.final_loss) and resumed.final_loss == pytest.approx(logged)
    assert resumed.final_loss == pytest.approx(reference.final_loss)
    assert json.loads((run_dir / "summary.json").read_text())["final_loss"] == pytest.approx(logged)
    assert f"final loss {logged:.4f}" in caplog.text
    for key, value in _weights(reference.output_dir).items():
        np.testing.assert_array_equal(_weights(run_dir)[key], value, err_msg=key)


def test_an_async_save_that_fails_in_the_background_is_a_one_line_error(tmp_path, monkeypatch, capfd):
    """The step directory cannot be committed (renamed into place) while the run goes on: the
    failure comes back as one line at the next wait, without Orbax's tracebacks, and the previous
    checkpoint is kept."""
    import errno

    import jax.numpy as jnp

    from speechft_jax.checkpoints import CheckpointError
    from speechft_jax.train.checkpointing import RunCheckpoints, saved_steps

    directory = tmp_path / "checkpoints"
    checkpoints = RunCheckpoints(directory, every_steps=1, keep=2, async_save=True)
    checkpoints.save(1, {"w": jnp.ones(3)}, {"pr": {}})
    checkpoints.wait()
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        # as root, chmod does not block writes: refuse the commit of a step as a read-only disk would
        if Path(dst).parent == directory:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    capfd.readouterr()
    assert checkpoints.save(2, {"w": jnp.zeros(3)}, {"pr": {}})   # started; it fails in the background
    with pytest.raises(CheckpointError, match=r"checkpoints: saving a checkpoint failed \(Permission denied: "
                                              r".*checkpoints/2\); stopped, the last complete checkpoint is step 1$"):
        checkpoints.wait()
    checkpoints.wait()
    checkpoints.close()   # reported once: nothing more to raise
    assert saved_steps(directory) == [1]
    assert "Traceback" not in capfd.readouterr().err


def test_a_run_saved_before_new_keys_existed_compares_equal(stable_run):
    """A `config.yaml` written before a schema key existed (here `dev_scoring`, a task's `splits` and its
    data's `labels_from`) reads as the same run: the new keys take their defaults, which keep the old
    behaviour, so the run resumes instead of being refused as changed."""
    from speechft_jax.config_loading import to_dict
    from speechft_jax.train.loop import _with_defaults

    config_path, _ = stable_run
    current = to_dict(load_train_config(config_path))
    old = json.loads(json.dumps(current))
    del old["dev_scoring"], old["tasks"][0]["splits"], old["tasks"][0]["data"]["labels_from"]
    assert _with_defaults(old) == current
    assert _with_defaults({"output_dir": "x", "no_longer_a_key": 1}) == {"output_dir": "x", "no_longer_a_key": 1}
