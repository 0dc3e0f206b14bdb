"""Two real processes on this machine (CPU, `jax.distributed` on a localhost coordinator, gloo
collectives) train a tiny config; both end with the same parameters, equal to one process
training on the same global batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from conftest import write_train_config

REPO = Path(__file__).parents[1]
DRIVER = """
import json, sys
from speechft_jax.train import load_train_config, train
from speechft_jax.train.distributed import maybe_initialize_distributed
maybe_initialize_distributed()
import jax
result = train(load_train_config(sys.argv[1]))
print("RESULT " + json.dumps({"process": jax.process_index(), "count": jax.process_count(),
                              "devices": jax.device_count(), "fingerprint": result.encoder_fingerprint,
                              "loss": result.final_loss}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(config, env_extra, count):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo", **env_extra)
    procs = []
    for index in range(count):
        env_i = dict(env, **({"JAX_PROCESS_ID": str(index)} if count > 1 else {}))
        procs.append(subprocess.Popen([sys.executable, "-c", DRIVER, str(config)], cwd=REPO, env=env_i,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT "))))
    return results


def test_two_processes_train_like_one(demo_corpus_tiny, tmp_path):
    common = dict(optimizer={"steps": 4, "beta": 0.25, "encoder_lr": 5e-4, "head_lr": 1e-3},
                  finetune={"early_checkpoints": []}, checkpoint={"every_steps": 2, "keep": 1})
    two = write_train_config(tmp_path / "two.yaml", demo_corpus_tiny, tmp_path / "two", **common)
    one = write_train_config(tmp_path / "one.yaml", demo_corpus_tiny, tmp_path / "one", **common)
    port = _free_port()
    pair = _run(two, {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2"}, 2)
    assert sorted(r["process"] for r in pair) == [0, 1] and all(r["count"] == 2 and r["devices"] == 2 for r in pair)
    assert pair[0]["fingerprint"] == pair[1]["fingerprint"]  # identical parameters on both processes
    single = _run(one, {}, 1)[0]
    assert single["count"] == 1
    # only process 0 writes logs and exports; the result equals the single-process run's
    assert (tmp_path / "two" / "encoder" / "model.safetensors").is_file()
    a, b = load_file(tmp_path / "two" / "encoder" / "model.safetensors"), load_file(tmp_path / "one" / "encoder" / "model.safetensors")
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)
    assert abs(pair[0]["loss"] - single["loss"]) < 1e-3 * max(1.0, abs(single["loss"]))
