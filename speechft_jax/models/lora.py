"""LoRA adapters for the transformer layers, as pure functions over parameter pytrees.

An adapter tree mirrors the encoder's parameter tree down to each targeted Dense module, e.g.
`adapters["encoder"]["layers_0"]["attention"]["q_proj"] = {"lora_a": [in, rank], "lora_b": [rank, out]}`.
Kernels are Flax Dense kernels `[in, out]`, so the low-rank update is `lora_a @ lora_b`: the
transpose of the PyTorch statement `W + B @ A * scale` with `W: [out, in]`. `LoraConfig` is a
training config's `finetune.lora` section.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated

import jax
import jax.numpy as jnp

from speechft_jax.config_loading import COUNT, check

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "intermediate_dense", "output_dense")

_LAYER_PREFIX = "layers_"  # transformer layers live at encoder/layers_<i>; CNN and projection never match


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters on the transformer's projections; merged into plain weights at the end."""

    rank: Annotated[int, COUNT] = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("q_proj", "v_proj")

    def validate(self):
        check(self.alpha > 0, "alpha", self.alpha, "a positive number")
        check(len(self.targets) > 0, "targets", list(self.targets), "at least one target")
        for target in self.targets:
            check(target in LORA_TARGETS, "targets", target, "one of " + ", ".join(LORA_TARGETS))

    def init(self, params: Mapping, rng) -> dict:
        """Fresh adapters for the encoder parameters `params` (`init_lora`)."""
        return init_lora(params, self.targets, self.rank, rng)


def _path_str(path) -> str:
    return "/".join(path)


def _check_rank(rank) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank={rank!r}, expected an integer >= 1")


def _check_targets(targets) -> tuple[str, ...]:
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown:
        raise ValueError(f"unknown LoRA target(s) {', '.join(map(repr, unknown))}; "
                         f"allowed: {', '.join(LORA_TARGETS)}")
    if not targets:
        raise ValueError(f"no LoRA targets given; allowed: {', '.join(LORA_TARGETS)}")
    return targets


def _is_layer_path(path) -> bool:
    return len(path) >= 2 and path[0] == "encoder" and path[1].startswith(_LAYER_PREFIX)


def _targeted_kernels(params: Mapping, targets: tuple[str, ...]) -> dict[tuple[str, ...], jax.Array]:
    """Module path -> Dense kernel `[in, out]`, for every targeted module inside `encoder/layers_*`."""
    found = {}

    def walk(node, path):
        if not isinstance(node, Mapping):
            return
        if path[-1] in targets and _is_layer_path(path) and getattr(node.get("kernel"), "ndim", 0) == 2:
            found[path] = node["kernel"]
            return
        for key in sorted(node):
            walk(node[key], path + (key,))

    if isinstance(params, Mapping) and "encoder" in params:
        walk(params["encoder"], ("encoder",))
    return found


def _adapter_entries(adapters: Mapping) -> dict[tuple[str, ...], Mapping]:
    """Module path -> `{"lora_a", "lora_b"}` for every adapter in the tree."""
    found = {}

    def walk(node, path):
        if not isinstance(node, Mapping):
            raise TypeError(f"LoRA adapters: {_path_str(path)} is a leaf, expected a dict of modules "
                            "ending in {'lora_a', 'lora_b'}")
        if "lora_a" in node or "lora_b" in node:
            if set(node) != {"lora_a", "lora_b"}:
                raise ValueError(f"LoRA adapter {_path_str(path)} has keys {sorted(node)}, "
                                 "expected exactly ['lora_a', 'lora_b']")
            found[path] = node
            return
        for key in node:
            walk(node[key], path + (key,))

    walk(adapters, ())
    return found


def _replace_kernel(tree: Mapping, path: tuple[str, ...], kernel) -> Mapping:
    """A copy of `tree` with `path/kernel` replaced; every subtree off the path is the same object."""
    head, rest = path[0], path[1:]
    child = tree[head]
    new_child = _replace_kernel(child, rest, kernel) if rest else type(child)({**child, "kernel": kernel})
    return type(tree)({**tree, head: new_child})


def init_lora(params: Mapping, targets: Iterable[str], rank: int, rng) -> dict:
    """Fresh adapters for every targeted Dense kernel in the transformer layers.

    `params`: the encoder parameter tree. `targets`: module names from `LORA_TARGETS` (a single
    name is allowed). For a kernel `[in, out]` the adapter is `lora_a: [in, rank]`, drawn
    kaiming-uniform as in the LoRA reference code (loralib's `kaiming_uniform_(a=sqrt(5))`, i.e.
    uniform(-1/sqrt(in), 1/sqrt(in))), and `lora_b: [rank, out]` zeros, so the adapted model starts
    equal to the base. Adapters are float32 whatever the kernels' dtype. Keys are split per
    adapter in sorted path order, so the same `rng` always gives the same adapters.

    Raises ValueError for an unknown target, `rank < 1`, or when no kernel matches.
    """
    targets = _check_targets(targets)
    _check_rank(rank)
    kernels = _targeted_kernels(params, targets)
    if not kernels:
        raise ValueError(f"no Dense kernel named {', '.join(targets)} under encoder/layers_* in the "
                         "parameter tree")
    paths = sorted(kernels)
    keys = jax.random.split(rng, len(paths))
    adapters: dict = {}
    for key, path in zip(keys, paths):
        fan_in, fan_out = kernels[path].shape
        bound = 1.0 / math.sqrt(fan_in)
        node = adapters
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = {
            "lora_a": jax.random.uniform(key, (fan_in, rank), jnp.float32, -bound, bound),
            "lora_b": jnp.zeros((rank, fan_out), jnp.float32),
        }
    return adapters


def apply_lora(params: Mapping, adapters: Mapping, alpha, rank: int) -> Mapping:
    """The parameter tree with each adapted kernel replaced by `kernel + lora_a @ lora_b * alpha / rank`.

    The update is computed in float32 (at full matmul precision) and cast back to the kernel's
    dtype; every leaf without an adapter is the same object as in `params`. Pure and jit-able
    (`rank` must be static, `alpha` may be traced) and differentiable w.r.t. `adapters`, so a
    trainer calls it inside the loss and only the adapters receive gradients.

    Raises ValueError naming the path when an adapter has no matching targeted kernel, its
    shapes do not fit the kernel `[in, out]`, or its rank is not `rank` (TypeError when the
    adapter tree is not a nest of dicts ending in `{"lora_a", "lora_b"}`).
    """
    _check_rank(rank)
    entries = _adapter_entries(adapters)
    kernels = _targeted_kernels(params, LORA_TARGETS)
    scale = alpha / rank
    for path, entry in entries.items():
        where = _path_str(path)
        if path not in kernels:
            raise ValueError(f"LoRA adapter {where} has no matching kernel: expected a Dense module "
                             f"named one of {', '.join(LORA_TARGETS)} under encoder/layers_*")
        kernel = kernels[path]
        a_shape, b_shape = tuple(jnp.shape(entry["lora_a"])), tuple(jnp.shape(entry["lora_b"]))
        expected_a, expected_b = (kernel.shape[0], rank), (rank, kernel.shape[1])
        if a_shape != expected_a or b_shape != expected_b:
            raise ValueError(f"LoRA adapter {where}: lora_a {a_shape} and lora_b {b_shape} do not fit "
                             f"kernel {tuple(kernel.shape)} with rank {rank}; "
                             f"expected {expected_a} and {expected_b}")
        compute = jnp.promote_types(kernel.dtype, jnp.float32)
        delta = jnp.matmul(entry["lora_a"].astype(compute), entry["lora_b"].astype(compute),
                           precision=jax.lax.Precision.HIGHEST)
        merged = (kernel.astype(compute) + delta * scale).astype(kernel.dtype)
        params = _replace_kernel(params, path, merged)
    return params


def merge_lora(params: Mapping, adapters: Mapping, alpha, rank: int) -> Mapping:
    """The plain encoder parameters to export when a LoRA run ends: adapters folded into the kernels.

    Same computation and errors as `apply_lora`; the result loads into `SpeechEncoder` with no
    LoRA code at all.
    """
    return apply_lora(params, adapters, alpha, rank)


def lora_parameter_count(adapters: Mapping) -> int:
    """Number of trainable scalars in an adapter tree."""
    return sum(int(math.prod(jnp.shape(leaf))) for leaf in jax.tree_util.tree_leaves(adapters))
