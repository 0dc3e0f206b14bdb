"""Multi-process start-up: `jax.distributed.initialize()` when a run is launched on several processes.

Explicit settings come from the environment: `JAX_COORDINATOR_ADDRESS` (host:port),
`JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`. Without them a single process runs alone.
"""

from __future__ import annotations

import os

import jax

from speechft_jax.models.config import ConfigError

_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def maybe_initialize_distributed() -> bool:
    """Join the distributed runtime when the environment asks for it; returns whether it did."""
    present = [v for v in _VARS if os.environ.get(v)]
    if not present:
        return False
    missing = [v for v in _VARS if not os.environ.get(v)]
    if missing:
        raise ConfigError(f"multi-process launch: {', '.join(present)} set but {', '.join(missing)} missing")
    try:
        count, index = int(os.environ["JAX_NUM_PROCESSES"]), int(os.environ["JAX_PROCESS_ID"])
    except ValueError:
        raise ConfigError("JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers") from None
    jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"], num_processes=count, process_id=index)
    return True
