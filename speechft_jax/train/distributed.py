"""Multi-process start-up: `jax.distributed.initialize()` when a run is launched on several processes.

Explicit settings come from the environment: `JAX_COORDINATOR_ADDRESS` (host:port),
`JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` (a multi-GPU node, or any launcher). Without them, a
cluster environment JAX can read by itself starts the runtime with `jax.distributed.initialize()`
and no arguments: a SLURM job step with several tasks (`SLURM_NTASKS` > 1), an Open MPI launch
(`OMPI_COMM_WORLD_SIZE` > 1), a multi-host TPU VM slice (`TPU_WORKER_HOSTNAMES` with more than one
host), or `SPEECHFT_DISTRIBUTED=1` to ask for it. Otherwise a single process runs alone.
"""

from __future__ import annotations

import os

import jax

from speechft_jax.models.config import ConfigError

_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def _cluster_detected(env) -> str | None:
    """The cluster kind JAX can auto-detect from `env`, or None."""
    def count(name):
        try:
            return int(env.get(name, "1"))
        except ValueError:
            return 1

    if env.get("SPEECHFT_DISTRIBUTED") == "1":
        return "requested by SPEECHFT_DISTRIBUTED=1"
    if count("SLURM_NTASKS") > 1:
        return "SLURM"
    if count("OMPI_COMM_WORLD_SIZE") > 1:
        return "Open MPI"
    if len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1:
        return "TPU pod slice"
    return None


def maybe_initialize_distributed() -> bool:
    """Join the distributed runtime when the environment asks for it; returns whether it did."""
    present = [v for v in _VARS if os.environ.get(v)]
    if not present:
        if _cluster_detected(os.environ) is None:
            return False
        jax.distributed.initialize()
        return True
    missing = [v for v in _VARS if not os.environ.get(v)]
    if missing:
        raise ConfigError(f"multi-process launch: {', '.join(present)} set but {', '.join(missing)} missing")
    try:
        count, index = int(os.environ["JAX_NUM_PROCESSES"]), int(os.environ["JAX_PROCESS_ID"])
    except ValueError:
        raise ConfigError("JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers") from None
    jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"], num_processes=count, process_id=index)
    return True
