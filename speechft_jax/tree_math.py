"""Maths over parameter pytrees: sums of squares, norms and distances (in float32), a shape check
between two trees, and a fingerprint of a tree's contents.

`sum_of_squares(tree)`, `global_norm(tree) = sqrt(sum_of_squares(tree))`,
`squared_distance(a, b) = ||a - b||^2`; all are jit-friendly. `check_compatible(reference, other)`
raises `MergeError` naming the first path where the two trees' structures or leaf shapes differ.
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from speechft_jax.errors import MergeError


def sum_of_squares(tree) -> jnp.ndarray:
    """The sum of squares of all leaves, in float32.

    Each leaf's sum of squares is a `vdot`, which XLA:CPU runs on its multi-threaded dot path; the
    equivalent element-wise reduction (`optax.tree.norm`) took ~10x longer on a 95 M-parameter tree.
    """
    leaves = [x.astype(jnp.float32).ravel() for x in jax.tree_util.tree_leaves(tree)]
    return sum((jnp.vdot(x, x) for x in leaves), jnp.zeros((), jnp.float32))


def global_norm(tree) -> jnp.ndarray:
    """`sqrt(sum_of_squares(tree))`."""
    return jnp.sqrt(sum_of_squares(tree))


def squared_distance(tree_a, tree_b) -> jnp.ndarray:
    """`||a - b||^2` over all leaves, in float32."""
    return sum_of_squares(jax.tree_util.tree_map(
        lambda a, b: a.astype(jnp.float32) - b.astype(jnp.float32), tree_a, tree_b))


def _path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def check_compatible(reference, other, what: str = "fine-tuned") -> None:
    """Raise `MergeError` unless `other` has `reference`'s structure and leaf shapes."""
    ref = dict((_path_str(p), x) for p, x in jax.tree_util.tree_leaves_with_path(reference))
    got = dict((_path_str(p), x) for p, x in jax.tree_util.tree_leaves_with_path(other))
    for path in sorted(set(ref) | set(got)):
        if path not in got:
            raise MergeError(f"{path}: in the pre-trained parameters but missing from the {what} ones")
        if path not in ref:
            raise MergeError(f"{path}: in the {what} parameters but not in the pre-trained ones")
        if tuple(ref[path].shape) != tuple(got[path].shape):
            raise MergeError(f"{path}: shape {tuple(got[path].shape)} in the {what} parameters, "
                             f"expected {tuple(ref[path].shape)} as in the pre-trained ones")


def params_fingerprint(params) -> str:
    """A short hash of a parameter tree's paths and bytes: equal trees, equal fingerprints."""
    digest = hashlib.sha1()
    for path, leaf in sorted(jax.tree_util.tree_leaves_with_path(jax.device_get(params)), key=lambda kv: str(kv[0])):
        digest.update(str(path).encode())
        digest.update(np.ascontiguousarray(leaf).tobytes())
    return digest.hexdigest()[:16]
