"""Frozen-encoder features for SUPERB-style probing, computed once per utterance and cached.

`extract_feature_set(bundle, source, label_spec)` (through `collect_feature_sets`, which also
serves the alpha sweep's K encoders at once) runs the encoder (eval mode, jitted, a few
padded length buckets: `models.encode.encode_source`) over every utterance of a source and keeps,
per utterance, all L+1 hidden states over its valid frames (float16 `[L+1, frames, hidden]`) and
its encoded label.
`cached_feature_set(cache_dir, key, make, ...)` stores a `FeatureSet` as an `.npz` (no pickle) and
reads it back, so a probe trained for many epochs (and a learning-rate grid) costs one encoder
pass per utterance. `feature_cache_key` names an entry by everything its features and labels
depend on: the weights' fingerprint, and a hash of the source (each file's path, size,
modification time and label fields, or a dataset's fingerprint and fields), of the label spec
(class list or vocabulary) and of the extraction settings (encoder config, preprocessing, batch
size, storage dtype). The file also keeps each utterance's source index, origin and label, which
are checked against the source on read: an entry that does not match is recomputed, never served.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import SequenceLabels
from speechft_jax.data.source import FileSource
from speechft_jax.files import atomic_write_bytes, write_check_error
from speechft_jax.models.config import ConfigError
from speechft_jax.models.encode import encode_source

FEATURE_BATCH_SIZE = 8
# what a cache file holds and how features are made; bump it when either changes
CACHE_FORMAT = 2


@dataclasses.dataclass
class FeatureSet:
    """Per-utterance features `[L+1, frames, hidden]` (float16) and labels (an int or an int array);
    `indices` and `origins`: each utterance's index in its source and `source.origin` (None when
    the set was not read from a source)."""

    features: list
    labels: list
    indices: list | None = None
    origins: list | None = None

    def __len__(self) -> int:
        return len(self.features)

    @property
    def num_states(self) -> int:
        return int(self.features[0].shape[0])

    @property
    def hidden(self) -> int:
        return int(self.features[0].shape[-1])


def collect_feature_sets(bundle, source, label_spec, forward, *, batch_size: int = FEATURE_BATCH_SIZE,
                         desc: str = "features") -> list[FeatureSet]:
    """Run `forward(audio, audio_mask) -> (states [K, L+1, B, T, D], frame_mask [B, T])` over every
    utterance of `source` (`models.encode.encode_source`): one `FeatureSet` per leading index k, in
    source order, sharing the labels."""
    encoded: dict[int, tuple[list, object]] = {}  # source index -> (float16 states per k, label)
    for utterance in encode_source(bundle, source, forward, labels=[label_spec], batch_size=batch_size, desc=desc):
        encoded[utterance.index] = ([states.astype(np.float16) for states in utterance.states], utterance.labels[0])
    keep = sorted(encoded)
    origins = [source.origin(i) for i in keep]
    num_sets = len(encoded[keep[0]][0]) if keep else 0
    return [FeatureSet([encoded[i][0][k] for i in keep], [encoded[i][1] for i in keep], keep, origins)
            for k in range(num_sets)]


def extract_feature_set(bundle, source, label_spec, *, params=None, batch_size: int = FEATURE_BATCH_SIZE,
                        desc: str = "features") -> FeatureSet:
    """All hidden states of every utterance of `source` (in source order) and its label."""
    from speechft_jax.models.pretrained import extract_features

    def forward(audio, audio_mask):
        states, frame_mask = extract_features(bundle, audio, audio_mask, params)
        return states[None], frame_mask

    return collect_feature_sets(bundle, source, label_spec, forward, batch_size=batch_size, desc=desc)[0]


def save_feature_set(path: Path, data: FeatureSet) -> None:
    arrays = {f"f{i}": f for i, f in enumerate(data.features)}
    arrays.update({f"l{i}": np.asarray(label) for i, label in enumerate(data.labels)})
    if data.indices is not None:
        arrays["index"] = np.asarray(data.indices, np.int64)
    if data.origins is not None:
        arrays["origin"] = np.asarray(data.origins, dtype=str)
    buffer = io.BytesIO()
    np.savez(buffer, count=np.array(len(data)), **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_feature_set(path: Path) -> FeatureSet:
    with np.load(path, allow_pickle=False) as z:
        count = int(z["count"])
        labels = [z[f"l{i}"] for i in range(count)]
        return FeatureSet([z[f"f{i}"] for i in range(count)],
                          [int(label) if label.ndim == 0 else label for label in labels],
                          [int(i) for i in z["index"]] if "index" in z else None,
                          [str(o) for o in z["origin"]] if "origin" in z else None)


def source_description(source) -> dict:
    """What a source's audio and labels are, cheaply (no decoding): for files, each one's path, size,
    modification time, duration and label fields; for other sources (datasets), the dataset's
    fingerprint where it has one, its name, and each utterance's origin and label fields."""
    if isinstance(source, FileSource):
        files = []
        for example in source.examples:
            try:
                stat = os.stat(example.path)
                size, mtime = stat.st_size, stat.st_mtime_ns
            except OSError:  # the loader reports the missing file when it runs
                size = mtime = None
            files.append([example.path, size, mtime, example.duration, dict(example.fields)])
        return {"files": files}
    dataset = getattr(source, "dataset", None)
    return {"type": type(source).__name__, "name": getattr(source, "name", None),
            "split": getattr(source, "split", None), "fingerprint": getattr(dataset, "_fingerprint", None),
            "utterances": [[source.origin(i), dict(source.fields(i))] for i in range(len(source))]}


def label_description(label_spec) -> dict:
    """The label spec's field, batch key and class list or vocabulary (which fix the encoded ids)."""
    if isinstance(label_spec, SequenceLabels):
        vocab = label_spec.vocab
        return {"field": label_spec.field, "key": label_spec.key, "max_length": label_spec.max_length,
                "vocab": {"tokens": list(vocab.tokens), "kind": vocab.kind, "blank": vocab.blank, "pad": vocab.pad,
                          "unk": vocab.unk, "word_delimiter": vocab.word_delimiter}}
    return {"field": label_spec.field, "key": label_spec.key, "classes": list(label_spec.classes.names)}


def feature_cache_key(name: str, weights_fingerprint: str, bundle, source, label_spec, *,
                      batch_size: int = FEATURE_BATCH_SIZE) -> str:
    """`<weights>-<name>-<hash>`: the hash covers the source's data and labels, the label spec and the
    settings of `extract_feature_set` (encoder config, preprocessing, batch size, storage dtype)."""
    settings = {"format": CACHE_FORMAT, "dtype": "float16", "batch_size": batch_size,
                "encoder": bundle.config.to_hf_dict(), "preprocessor": bundle.preprocessor}
    description = {"source": source_description(source), "labels": label_description(label_spec),
                   "settings": settings}
    digest = hashlib.sha1(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{weights_fingerprint}-{name}-{digest}"


def _matches(data: FeatureSet, source, label_spec) -> bool:
    """Whether a stored set's utterances and labels are those `source` has now."""
    if data.indices is None or data.origins is None or not len(data.indices) == len(data.origins) == len(data):
        return False
    sequence = isinstance(label_spec, SequenceLabels)
    for index, origin, label in zip(data.indices, data.origins, data.labels):
        if not 0 <= index < len(source) or source.origin(index) != origin:
            return False
        try:
            now = label_spec.encode(source.fields(index), origin)
        except DataError:  # the recomputation reports it, as it would without a cache
            return False
        if not (np.array_equal(now, label) if sequence else now == label):
            return False
    return True


def check_writable(directory: Path, name: str) -> None:
    """Create `directory` if needed and a file in it, or raise a one-line `ConfigError` naming it as
    `name` (e.g. `--cache-dir`): checked before any work, so no result is computed for nowhere."""
    err = write_check_error(directory)
    if err is not None:
        raise ConfigError(f"{name}={directory}: cannot write there ({err.strerror or err})")


def cached_feature_set(cache_dir: Path | None, key: str, make, *, source, label_spec) -> FeatureSet:
    """`make()` once per `key` (from `feature_cache_key`): read from `cache_dir/key.npz` when present and
    its utterances and labels are still `source`'s, else compute and store."""
    if cache_dir is None:
        return make()
    path = Path(cache_dir) / f"{key}.npz"
    if path.is_file():
        try:
            data = load_feature_set(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            data = None  # unreadable: made again below
        if data is not None and _matches(data, source, label_spec):
            return data
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_feature_set(path, data)
    return data
