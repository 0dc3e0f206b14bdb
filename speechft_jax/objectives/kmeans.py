"""k-means over frame features for HuBERT targets: fitting (scikit-learn), saving, and assignment in JAX.

`collect_frames(utterances, max_frames, seed)` stacks the valid frames of every utterance (from
`models.encode.encode_source`) and keeps a seeded random subset of them; `fit_kmeans` fits
`MiniBatchKMeans` on them; `save_kmeans` / `load_kmeans` store the centroids (an `.npz`, never a
pickle); `assign_clusters` gives each frame its nearest centroid inside `jax.jit`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from speechft_jax.files import atomic_write_bytes
from speechft_jax.models.config import ConfigError


def collect_frames(utterances, max_frames: int, seed: int) -> np.ndarray:
    """The valid frames of `utterances` (each `[frames, D]`) stacked, float32 `[n, D]`, at most
    `max_frames` of them (a seeded random subset, in order)."""
    frames = np.concatenate([np.asarray(features, np.float32) for features in utterances])
    if len(frames) > max_frames:
        keep = np.random.default_rng(seed).choice(len(frames), max_frames, replace=False)
        frames = frames[np.sort(keep)]
    return frames


def fit_kmeans(frames: np.ndarray, num_clusters: int, seed: int) -> tuple[np.ndarray, float]:
    """`(centroids float32 [K, D], inertia per frame)` of scikit-learn's MiniBatchKMeans."""
    from sklearn.cluster import MiniBatchKMeans

    if len(frames) < num_clusters:
        raise ConfigError(f"hubert.num_clusters={num_clusters}, but the training data has only "
                          f"{len(frames)} frames")
    km = MiniBatchKMeans(n_clusters=num_clusters, random_state=seed, batch_size=4096, n_init=3,
                         max_iter=100, compute_labels=True).fit(frames)
    return km.cluster_centers_.astype(np.float32), float(km.inertia_) / len(frames)


def save_kmeans(path: Path, centroids: np.ndarray, info: dict) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, centroids=centroids, info=np.array(json.dumps(info)))
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_kmeans(path: Path) -> tuple[np.ndarray, dict]:
    with np.load(path, allow_pickle=False) as data:
        return data["centroids"], json.loads(str(data["info"]))


def assign_clusters(features, centroids):
    """Nearest centroid of each frame: features `[..., D]`, centroids `[K, D]` -> int32 `[...]`."""
    x = features.astype(jnp.float32)
    c = centroids.astype(jnp.float32)
    distances = jnp.sum(c * c, axis=-1) - 2.0 * (x @ c.T)  # |x|^2 is the same for every centroid
    return jnp.argmin(distances, axis=-1).astype(jnp.int32)
