"""LoRA and DoRA adapters for the transformer layers, as pure functions over parameter pytrees.

An adapter tree mirrors the encoder's parameter tree down to each targeted Dense module, e.g.
`adapters["encoder"]["layers_0"]["attention"]["q_proj"] = {"lora_a": [in, rank], "lora_b": [rank, out]}`.
Kernels are Flax Dense kernels `[in, out]`, so the low-rank update is `lora_a @ lora_b`: the
transpose of the PyTorch statement `W + B @ A * scale` with `W: [out, in]`.

DoRA (Liu et al. 2024, weight-decomposed low-rank adaptation) adds `"magnitude": [out]` beside
`lora_a` and `lora_b`: the kernel becomes `magnitude * V / ||V||` with `V = W + lora_a @ lora_b *
scale`, the norm taken per output unit (PyTorch's row norm of `W: [out, in]`, here the norm of each
column of `[in, out]`), and the magnitude starts at the base kernel's column norms. `LoraConfig` is
a training config's `finetune.lora` section (`dora: true` for DoRA).
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
    """LoRA adapters on the transformer's projections; merged into plain weights at the end.
    `dora: true` trains DoRA's magnitude vector with each adapter (the weight-decomposed variant)."""

    rank: Annotated[int, COUNT] = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("q_proj", "v_proj")
    dora: bool = False

    def validate(self):
        check(self.alpha > 0, "alpha", self.alpha, "a positive number")
        check(len(self.targets) > 0, "targets", list(self.targets), "at least one target")
        for target in self.targets:
            check(target in LORA_TARGETS, "targets", target, "one of " + ", ".join(LORA_TARGETS))

    def init(self, params: Mapping, rng) -> dict:
        """Fresh adapters for the encoder parameters `params` (`init_lora`)."""
        return init_lora(params, self.targets, self.rank, rng, dora=self.dora)


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


_LORA_KEYS, _DORA_KEYS = {"lora_a", "lora_b"}, {"lora_a", "lora_b", "magnitude"}


def _adapter_entries(adapters: Mapping) -> dict[tuple[str, ...], Mapping]:
    """Module path -> `{"lora_a", "lora_b"}` (LoRA) or `{..., "magnitude"}` (DoRA) for every adapter."""
    found = {}

    def walk(node, path):
        if not isinstance(node, Mapping):
            raise TypeError(f"LoRA adapters: {_path_str(path)} is a leaf, expected a dict of modules "
                            "ending in {'lora_a', 'lora_b'}")
        if set(node) & _DORA_KEYS:
            if set(node) not in (_LORA_KEYS, _DORA_KEYS):
                raise ValueError(f"LoRA adapter {_path_str(path)} has keys {sorted(node)}, expected exactly "
                                 f"{sorted(_LORA_KEYS)} (LoRA) or {sorted(_DORA_KEYS)} (DoRA)")
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


def init_lora(params: Mapping, targets: Iterable[str], rank: int, rng, *, dora: bool = False) -> dict:
    """Fresh adapters for every targeted Dense kernel in the transformer layers.

    `params`: the encoder parameter tree. `targets`: module names from `LORA_TARGETS` (a single
    name is allowed). For a kernel `[in, out]` the adapter is `lora_a: [in, rank]`, drawn
    kaiming-uniform as in the LoRA reference code (loralib's `kaiming_uniform_(a=sqrt(5))`, i.e.
    uniform(-1/sqrt(in), 1/sqrt(in))), and `lora_b: [rank, out]` zeros, so the adapted model starts
    equal to the base. `dora=True` adds `magnitude: [out]`, the kernel's column norms, so the DoRA
    model starts equal to the base too (up to rounding). Adapters are float32 whatever the kernels'
    dtype. Keys are split per adapter in sorted path order, so the same `rng` always gives the
    same adapters (and the same `lora_a` with and without DoRA).

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
        if dora:
            node[path[-1]]["magnitude"] = _column_norms(kernels[path].astype(jnp.float32))
    return adapters


def _column_norms(kernel) -> jax.Array:
    """`[in, out] -> [out]`: the norm of each output unit's weights (a row of PyTorch's `[out, in]`)."""
    return jnp.sqrt(jnp.sum(jnp.square(kernel), axis=0))


def weight_decomposed_kernel(direction, magnitude) -> jax.Array:
    """DoRA's kernel `magnitude * direction / ||direction||`: `[in, out]`, `[out]` -> `[in, out]`.

    The column norms are a constant to the backward pass (`stop_gradient`), as DoRA's section 4.3
    proposes and its reference code and peft do by default: the gradient reaching `direction` is
    the incoming one scaled by `magnitude / ||direction||` per column, without the term that
    projects out each column's own direction. A DoRA baseline trained here therefore follows the
    published training. A column of zeros stays zeros (its norm counts as 1, not 0 / 0).
    """
    norms = jax.lax.stop_gradient(_column_norms(direction))
    return direction * (magnitude / jnp.where(norms > 0, norms, 1.0))


def apply_lora(params: Mapping, adapters: Mapping, alpha, rank: int) -> Mapping:
    """The parameter tree with each adapted kernel replaced by `kernel + lora_a @ lora_b * alpha / rank`,
    or for a DoRA adapter (one with a `magnitude`) by `weight_decomposed_kernel` of that sum.

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
        merged = kernel.astype(compute) + delta * scale
        if "magnitude" in entry:
            m_shape = tuple(jnp.shape(entry["magnitude"]))
            if m_shape != kernel.shape[1:]:
                raise ValueError(f"DoRA adapter {where}: magnitude {m_shape} does not fit kernel "
                                 f"{tuple(kernel.shape)}; expected {tuple(kernel.shape[1:])}, one per output unit")
            merged = weight_decomposed_kernel(merged, entry["magnitude"].astype(compute))
        params = _replace_kernel(params, path, merged.astype(kernel.dtype))
    return params


def merge_lora(params: Mapping, adapters: Mapping, alpha, rank: int) -> Mapping:
    """The plain encoder parameters to export when a LoRA or DoRA run ends: adapters (and
    magnitudes) folded into the kernels.

    Same computation and errors as `apply_lora`; the result loads into `SpeechEncoder` with no
    LoRA code at all.
    """
    return apply_lora(params, adapters, alpha, rank)


def lora_parameter_count(adapters: Mapping) -> int:
    """Number of trainable scalars in an adapter tree (DoRA's magnitudes included)."""
    return sum(int(math.prod(jnp.shape(leaf))) for leaf in jax.tree_util.tree_leaves(adapters))
