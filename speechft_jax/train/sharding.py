"""The device mesh and the shardings of parameters, optimizer state and batches.

A run's `Mesh` has two axes: `data` (batch split, parameters replicated) and `fsdp` (batch split
and parameters sharded). Parameters carry logical axis names (models/partitioning.py); the rules
here map them to mesh axes. A dimension the mesh axis does not divide stays replicated, so any
config runs on any device count. Optimizer-state leaves that mirror a parameter get that
parameter's sharding; everything else (step counters, small heads) is replicated. `MeshConfig`
is a training config's `mesh` section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from speechft_jax.config_loading import COUNT, Range, check
from speechft_jax.models import partitioning as P
from speechft_jax.models.config import ConfigError

DATA, FSDP = "data", "fsdp"
BATCH_AXES = (DATA, FSDP)

# Training rules: the model dimension of every large matrix (attention, feed-forward, positional
# conv, feature projection) and the input channels of the CNN's kernels are sharded over `fsdp`.
_FSDP_AXES = (P.EMBED, P.CONV_IN)
TRAIN_RULES = tuple((name, FSDP if name in _FSDP_AXES else axes) for name, axes in P.DEFAULT_RULES)


def build_mesh(data: int = -1, fsdp: int = 1, devices=None) -> Mesh:
    """A `data` x `fsdp` mesh over `devices` (default: all); `data=-1` takes what `fsdp` leaves."""
    devices = list(jax.devices() if devices is None else devices)
    count = len(devices)
    if fsdp < 1 or count % fsdp:
        raise ConfigError(f"mesh.fsdp={fsdp}, expected a divisor of the device count {count}")
    if data == -1:
        data = count // fsdp
    if data * fsdp != count:
        raise ConfigError(f"mesh.data={data} x mesh.fsdp={fsdp} = {data * fsdp}, expected the device count {count}")
    grid = np.asarray(devices, dtype=object).reshape(data, fsdp)
    return Mesh(grid, (DATA, FSDP), axis_types=(AxisType.Auto, AxisType.Auto))


@dataclass(frozen=True)
class MeshConfig:
    """Device mesh: `data` x `fsdp` must equal the device count; -1 on `data` takes the rest."""

    data: Annotated[int, Range(-1, 65536)] = -1
    fsdp: Annotated[int, COUNT] = 1

    def validate(self):
        check(self.data != 0, "data", self.data, "-1 or a positive integer")

    def build(self, devices=None) -> Mesh:
        """The run's mesh over `devices` (default: all), `build_mesh`."""
        return build_mesh(self.data, self.fsdp, devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension split over both mesh axes."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def _axis_size(mesh: Mesh, axes) -> int:
    if axes is None:
        return 1
    axes = (axes,) if isinstance(axes, str) else axes
    return int(np.prod([mesh.shape[a] for a in axes]))


def _leaf_sharding(leaf, mesh: Mesh, rules) -> NamedSharding:
    if not isinstance(leaf, nn.LogicallyPartitioned):
        return replicated(mesh)
    spec = nn.logical_to_mesh_axes(leaf.names, rules)
    shape = leaf.value.shape
    # a dimension the mesh axis does not divide stays whole
    axes = [a if dim % _axis_size(mesh, a) == 0 else None for a, dim in zip(spec, shape)]
    return NamedSharding(mesh, PartitionSpec(*axes))


def param_shardings(boxed_params, mesh: Mesh, rules=TRAIN_RULES):
    """Shardings for an (abstract) boxed parameter tree, with the boxes removed."""
    return jax.tree_util.tree_map(lambda leaf: _leaf_sharding(leaf, mesh, rules), boxed_params,
                                  is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))


def _dict_keys(path) -> tuple:
    return tuple(p.key for p in path if isinstance(p, jax.tree_util.DictKey))


def state_shardings(abstract_tree, params_abstract, params_shardings, mesh: Mesh):
    """Shardings for any tree holding parameter-shaped leaves (optimizer state, accumulators).

    A leaf whose dict-key path ends with a parameter's full path and has its shape gets that
    parameter's sharding; every other leaf is replicated.
    """
    by_path = {}
    for (path, leaf), sharding in zip(jax.tree_util.tree_leaves_with_path(params_abstract),
                                      jax.tree_util.tree_leaves(params_shardings)):
        by_path[_dict_keys(path)] = (tuple(leaf.shape), sharding)
    lengths = sorted({len(k) for k in by_path}, reverse=True)

    def pick(path, leaf):
        keys = _dict_keys(path)
        for n in lengths:
            found = by_path.get(keys[len(keys) - n:]) if len(keys) >= n else None
            if found is not None and found[0] == tuple(getattr(leaf, "shape", ())):
                return found[1]
        return replicated(mesh)

    return jax.tree_util.tree_map_with_path(pick, abstract_tree)


def describe_sharding(params, mesh: Mesh) -> dict:
    """How many parameter arrays and values are sharded, and the per-device parameter bytes."""
    leaves = jax.tree_util.tree_leaves(params)
    sharded = [x for x in leaves if any(a is not None for a in x.sharding.spec)]
    total = sum(x.size * x.dtype.itemsize for x in leaves)
    per_device = sum(x.addressable_shards[0].data.size * x.dtype.itemsize for x in leaves)
    return {"mesh": dict(mesh.shape), "arrays": len(leaves), "sharded_arrays": len(sharded),
            "param_bytes": int(total), "param_bytes_per_device": int(per_device)}
