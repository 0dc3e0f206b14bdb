"""Frozen-encoder features for SUPERB-style probing, computed once per utterance and cached.

`extract_feature_set(bundle, source, label_spec)` (through `collect_feature_sets`, which also
serves the alpha sweep's K encoders at once) runs the encoder (eval mode, jitted, a few
padded length buckets) over every utterance of a source and keeps, per utterance, all L+1
hidden states over its valid frames (float16 `[L+1, frames, hidden]`) and its encoded label.
`cached_feature_set(cache_dir, key, make)` stores a `FeatureSet` as an `.npz` (no pickle) and
reads it back, so a probe trained for many epochs (and a learning-rate grid) costs one encoder
pass per utterance.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from speechft_jax.checkpoints.state_dict_io import atomic_write_bytes
from speechft_jax.data import evaluation_loader
from speechft_jax.data.labels import SequenceLabels


@dataclasses.dataclass
class FeatureSet:
    """Per-utterance features `[L+1, frames, hidden]` (float16) and labels (an int or an int array)."""

    features: list
    labels: list

    def __len__(self) -> int:
        return len(self.features)

    @property
    def num_states(self) -> int:
        return int(self.features[0].shape[0])

    @property
    def hidden(self) -> int:
        return int(self.features[0].shape[-1])


def collect_feature_sets(bundle, source, label_spec, forward, *, batch_size: int = 8,
                         desc: str = "features") -> list[FeatureSet]:
    """Run `forward(audio, audio_mask) -> (states [K, L+1, B, T, D], frame_mask [B, T])` over every
    utterance of `source` (in source order): one `FeatureSet` per leading index k, sharing the labels."""
    loader = evaluation_loader(source, [label_spec], batch_size=batch_size,
                               normalize=bool(bundle.preprocessor.get("do_normalize")))
    features: list = []
    labels: list = [None] * len(source)
    sequence = isinstance(label_spec, SequenceLabels)
    try:
        for batch in tqdm(loader, total=loader.num_batches(), desc=desc, unit="batch", leave=False):
            states, frame_mask = jax.device_get(forward(batch["audio"], batch["audio_mask"]))
            if not features:
                features = [[None] * len(source) for _ in range(states.shape[0])]
            for row in np.flatnonzero(batch["example_mask"]):
                index, frames = int(batch["example_index"][row]), int(frame_mask[row].sum())
                for k, per_k in enumerate(features):
                    per_k[index] = states[k, :, row, :frames].astype(np.float16)
                labels[index] = (batch[label_spec.key][row, :batch[label_spec.lengths_key][row]].copy()
                                 if sequence else int(batch[label_spec.key][row]))
    finally:
        loader.close()
    keep = [i for i, label in enumerate(labels) if label is not None]
    return [FeatureSet([per_k[i] for i in keep], [labels[i] for i in keep]) for per_k in features]


def extract_feature_set(bundle, source, label_spec, *, params=None, batch_size: int = 8,
                        desc: str = "features") -> FeatureSet:
    """All hidden states of every utterance of `source` (in source order) and its label."""
    from speechft_jax.checkpoints import extract_features

    def forward(audio, audio_mask):
        states, frame_mask = extract_features(bundle, audio, audio_mask, params)
        return states[None], frame_mask

    return collect_feature_sets(bundle, source, label_spec, forward, batch_size=batch_size, desc=desc)[0]


def save_feature_set(path: Path, data: FeatureSet) -> None:
    arrays = {f"f{i}": f for i, f in enumerate(data.features)}
    arrays.update({f"l{i}": np.asarray(label) for i, label in enumerate(data.labels)})
    buffer = io.BytesIO()
    np.savez(buffer, count=np.array(len(data)), **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_feature_set(path: Path) -> FeatureSet:
    with np.load(path, allow_pickle=False) as z:
        count = int(z["count"])
        labels = [z[f"l{i}"] for i in range(count)]
        return FeatureSet([z[f"f{i}"] for i in range(count)],
                          [int(label) if label.ndim == 0 else label for label in labels])


def cached_feature_set(cache_dir: Path | None, key: str, make) -> FeatureSet:
    """`make()` once per `key`: read from `cache_dir/key.npz` when present, else compute and store."""
    if cache_dir is None:
        return make()
    path = Path(cache_dir) / f"{key}.npz"
    if path.is_file():
        return load_feature_set(path)
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_feature_set(path, data)
    return data
