"""The launch scripts fail early, naming the variable that is missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from speechft_jax.train.distributed import _cluster_detected

REPO = Path(__file__).parents[1]


def _run(script, env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CONFIG", "TPU_NAME", "ZONE", "PROJECT", "ACCELERATOR_TYPE", "SLURM_NTASKS")}
    return subprocess.run(["bash", str(REPO / "launch" / script)], env={**clean, **env}, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("script, env, missing", [
    ("tpu_pod.sh", {}, "TPU_NAME"),
    ("tpu_pod.sh", {"TPU_NAME": "t", "ZONE": "z", "PROJECT": "p"}, "ACCELERATOR_TYPE"),
    ("gpu_node.sh", {}, "CONFIG"),
    ("slurm.sbatch", {}, "CONFIG"),
    ("slurm.sbatch", {"CONFIG": "configs/demo.yaml"}, "SLURM_NTASKS"),
])
def test_missing_variables_are_named(script, env, missing):
    done = _run(script, env)
    assert done.returncode != 0 and missing in done.stderr, done.stderr


def test_cluster_detection():
    assert _cluster_detected({}) is None
    assert _cluster_detected({"SLURM_NTASKS": "1"}) is None
    assert _cluster_detected({"SLURM_NTASKS": "4"}) == "SLURM"
    assert _cluster_detected({"OMPI_COMM_WORLD_SIZE": "2"}) == "Open MPI"
    assert _cluster_detected({"TPU_WORKER_HOSTNAMES": "a,b"}) == "TPU pod slice"
    assert _cluster_detected({"TPU_WORKER_HOSTNAMES": "a"}) is None
