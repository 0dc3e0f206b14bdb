"""Frozen-encoder features for SUPERB-style probing, computed once per utterance and cached on disk.

`extract_feature_set(bundle, source, label_spec)` (through `collect_feature_sets`, which also
serves the alpha sweep's K encoders at once) runs the encoder (eval mode, jitted, a few
padded length buckets: `models.encode.encode_source`) over every utterance of a source and keeps,
per utterance, all L+1 hidden states over its valid frames (float16 `[L+1, frames, hidden]`) and
its encoded label, in memory.

The cache is a folder per entry (`cache_dir/<key>/`), never read whole into memory: per encoder k
a `states-<k>.npy` of every utterance's float16 states stacked along frames, frame-major
(`[total frames, L+1, hidden]`, so that one utterance is one contiguous read and the file can be
written as the encoder produces it), memory-mapped on read (`np.load(mmap_mode="r")`), and an
`index.npz` (no pickle) with each utterance's offset and frame count in it, its source index, origin
and label. A `FeatureSet` read from it is a view: its `features[i]` is utterance i's
`[L+1, frames, hidden]` slice of the map. `cached_feature_sets(cache_dir, key, ...)` streams K
encoders' states of a source into an entry (the probes' cached mode: `evaluate/probe_training.py`);
`cached_feature_set(cache_dir, key, make, ...)` stores one set made in memory (QbE, similarity).
An entry is written into a temporary folder and renamed into place when complete.
`feature_cache_key` names an entry by everything its features and labels depend on: the weights'
fingerprint, and a hash of the source (each file's path, size, modification time and label fields,
or a dataset's fingerprint and fields), of the label spec (class list or vocabulary) and of the
extraction settings (encoder config and `batch_independent`, preprocessing, batch size, storage dtype
and layout). The index's source indices, origins and labels are checked against the source on read:
an entry that does not match is recomputed, never served.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import ClassGroupLabels, SequenceLabels, SpeakerActivityLabels, TrialLabels
from speechft_jax.data.source import FileSource
from speechft_jax.files import write_check_error
from speechft_jax.models.config import ConfigError
from speechft_jax.models.encode import encode_source

FEATURE_BATCH_SIZE = 8
NUM_BUCKETS = 4  # padded lengths per source (a batch-dependent group-norm CNN's states depend on them)
# what a cache entry holds and how features are made; bump it when either changes
CACHE_FORMAT = 4
INDEX_NAME = "index.npz"


def states_name(k: int) -> str:
    """The file of encoder k's states in a cache entry."""
    return f"states-{k}.npy"


class StoredFeatures(Sequence):
    """Utterances' states `[L+1, frames, hidden]` as views of one memory-mapped frame-major array
    `[total frames, L+1, hidden]`: item i is rows `offsets[i] : offsets[i] + frames[i]`, transposed."""

    def __init__(self, array, offsets, frames):
        self.array, self.offsets, self.frames = array, np.asarray(offsets, np.int64), np.asarray(frames, np.int64)

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        start = int(self.offsets[i])
        return self.array[start:start + int(self.frames[i])].transpose(1, 0, 2)


@dataclasses.dataclass
class FeatureSet:
    """Per-utterance features `[L+1, frames, hidden]` (float16) and labels (an int, an int array, or
    None for a source without labels); `indices` and `origins`: each utterance's index in its source
    and `source.origin` (None when the set was not read from a source). `features` is a list, or a
    `StoredFeatures` view of a cache entry."""

    features: Sequence
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


def _encoded(bundle, source, label_spec, forward, *, batch_size: int, desc: str,
             num_buckets: int = NUM_BUCKETS) -> Iterator[tuple]:
    """`(source index, [float16 states [L+1, frames, D] per k], label)` of every utterance, in the
    loader's order (`models.encode.encode_source`)."""
    labels = [] if label_spec is None else [label_spec]
    for utterance in encode_source(bundle, source, forward, labels=labels, batch_size=batch_size,
                                   num_buckets=num_buckets, desc=desc):
        yield (utterance.index, [states.astype(np.float16) for states in utterance.states],
               utterance.labels[0] if labels else None)


def collect_feature_sets(bundle, source, label_spec, forward, *, batch_size: int = FEATURE_BATCH_SIZE,
                         num_buckets: int = NUM_BUCKETS, desc: str = "features") -> list[FeatureSet]:
    """Run `forward(audio, audio_mask) -> (states [K, L+1, B, T, D], frame_mask [B, T])` over every
    utterance of `source` (`models.encode.encode_source`): one `FeatureSet` per leading index k, in
    source order, sharing the labels, held in memory."""
    encoded: dict[int, tuple[list, object]] = {}  # source index -> (float16 states per k, label)
    for index, states, label in _encoded(bundle, source, label_spec, forward, batch_size=batch_size,
                                         num_buckets=num_buckets, desc=desc):
        encoded[index] = (states, label)
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


class _RowsFile:
    """A `.npy` of rows `[n, *row_shape]` appended block by block; the header, written first with
    n = 0, gets the final n at `close` (numpy pads a header so that its first axis may grow in place)."""

    def __init__(self, path: Path, row_shape: tuple, dtype):
        self.row_shape, self.dtype, self.rows = tuple(row_shape), np.dtype(dtype), 0
        self.file = open(path, "wb")
        self.header_size = self.file.write(self._header())

    def _header(self) -> bytes:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                      "fortran_order": False, "shape": (self.rows, *self.row_shape)})
        return buffer.getvalue()

    def append(self, block) -> None:
        self.file.write(np.ascontiguousarray(block, self.dtype).tobytes())
        self.rows += len(block)

    def close(self) -> None:
        header = self._header()
        if len(header) != self.header_size:  # numpy leaves room for 21 more digits: never in practice
            raise ValueError(f"{self.file.name}: the .npy header grew from {self.header_size} to {len(header)} bytes")
        self.file.seek(0)
        self.file.write(header)
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()


def write_feature_store(path: Path, utterances: Iterable[tuple]) -> None:
    """Write a cache entry (module docstring) at `path` from `(source index, origin, [states
    [L+1, frames, D] per k], label)` per utterance, in any order, streamed: nothing but the index is
    held in memory. The entry is built in a temporary folder beside `path` and renamed onto it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files: list[_RowsFile] = []
    rows = {"index": [], "origin": [], "offset": [], "frames": [], "label": [], "label_length": [], "label_columns": []}
    try:
        for index, origin, states, label in utterances:
            if not files:
                files = [_RowsFile(tmp / states_name(k), (s.shape[0], s.shape[2]), np.float16)
                         for k, s in enumerate(states)]
            rows["offset"].append(files[0].rows)
            rows["frames"].append(states[0].shape[1])
            for out, s in zip(files, states):
                out.append(np.asarray(s).transpose(1, 0, 2))
            rows["index"].append(index)
            rows["origin"].append(origin)
            # a class id is a label of length -1, a sequence its tokens, no label (QbE) length -2; a
            # label of frames x speakers is stored flat, with its column count
            value = np.asarray(-1 if label is None else label, np.int64)
            rows["label_columns"].append(value.shape[1] if value.ndim == 2 else 0)
            value = np.atleast_1d(value.reshape(-1))
            rows["label"].append(value)
            rows["label_length"].append(-2 if label is None else len(value) if np.ndim(label) else -1)
        for out in files:
            out.close()
        buffer = io.BytesIO()
        np.savez(buffer, num_sets=np.array(len(files)), index=np.asarray(rows["index"], np.int64),
                 origin=np.asarray(rows["origin"], dtype=str), offset=np.asarray(rows["offset"], np.int64),
                 frames=np.asarray(rows["frames"], np.int64), label_length=np.asarray(rows["label_length"], np.int64),
                 label_columns=np.asarray(rows["label_columns"], np.int64),
                 label=np.concatenate(rows["label"]) if rows["label"] else np.zeros(0, np.int64))
        (tmp / INDEX_NAME).write_bytes(buffer.getvalue())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        for out in files:
            out.file.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def feature_set_rows(sets: Sequence[FeatureSet]) -> Iterator[tuple]:
    """The utterances of K `FeatureSet`s sharing labels, as `write_feature_store` takes them."""
    first = sets[0]
    for i in range(len(first)):
        yield (first.indices[i] if first.indices is not None else i,
               first.origins[i] if first.origins is not None else "",
               [s.features[i] for s in sets], first.labels[i])


def read_feature_store(path: Path) -> list[FeatureSet]:
    """The K `FeatureSet`s of the cache entry at `path`, in source order, as memory-mapped views."""
    path = Path(path)
    with np.load(path / INDEX_NAME, allow_pickle=False) as z:
        index = {key: z[key] for key in z.files}
    order = np.argsort(index["index"], kind="stable")
    lengths = index["label_length"]
    starts = np.concatenate([[0], np.cumsum(np.abs(np.where(lengths < 0, 1, lengths)))])
    columns = index["label_columns"]
    label = lambda i: (None if lengths[i] == -2 else int(index["label"][starts[i]]) if lengths[i] == -1
                       else index["label"][starts[i]:starts[i + 1]].astype(np.int32).reshape(
                           (-1, columns[i]) if columns[i] else (-1,)))
    labels = [label(i) for i in order]
    indices, origins = [int(i) for i in index["index"][order]], [str(o) for o in index["origin"][order]]
    sets = []
    for k in range(int(index["num_sets"])):
        states = np.load(path / states_name(k), mmap_mode="r")
        sets.append(FeatureSet(StoredFeatures(states, index["offset"][order], index["frames"][order]), labels,
                               indices, origins))
    return sets


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


def label_description(label_spec) -> dict | None:
    """The label spec's field, batch key and class list or vocabulary (which fix the encoded ids)."""
    if label_spec is None:
        return None
    if isinstance(label_spec, SequenceLabels):
        vocab = label_spec.vocab
        return {"field": label_spec.field, "key": label_spec.key, "max_length": label_spec.max_length,
                "vocab": {"tokens": list(vocab.tokens), "kind": vocab.kind, "blank": vocab.blank, "pad": vocab.pad,
                          "unk": vocab.unk, "word_delimiter": vocab.word_delimiter}}
    if isinstance(label_spec, ClassGroupLabels):
        return {"fields": list(label_spec.fields), "key": label_spec.key,
                "classes": [list(group.names) for group in label_spec.groups]}
    if isinstance(label_spec, SpeakerActivityLabels):
        return {"field": label_spec.field, "key": label_spec.key, "speakers": label_spec.num_speakers,
                "frame_seconds": label_spec.frame_seconds}
    if isinstance(label_spec, TrialLabels):  # the trials themselves: another list is other data
        return {"trials": hashlib.sha1(np.ascontiguousarray(label_spec.trials).tobytes()).hexdigest(),
                "count": int(len(label_spec.trials)), "key": label_spec.key}
    return {"field": label_spec.field, "key": label_spec.key, "classes": list(label_spec.classes.names)}


def feature_cache_key(name: str, weights_fingerprint: str, bundle, source, label_spec, *,
                      batch_size: int = FEATURE_BATCH_SIZE, num_buckets: int = NUM_BUCKETS) -> str:
    """`<weights>-<name>-<hash>`: the hash covers the source's data and labels, the label spec and the
    settings of the extraction (encoder config, preprocessing, batch size, padded lengths, storage), and
    whether a group-norm CNN's statistics include the padding (`batch_independent`)."""
    settings = {"format": CACHE_FORMAT, "dtype": "float16", "layout": "frames, states, hidden",
                "batch_size": batch_size, "num_buckets": num_buckets, "encoder": bundle.config.to_hf_dict(),
                "batch_independent": bundle.config.batch_independent, "preprocessor": bundle.preprocessor}
    description = {"source": source_description(source), "labels": label_description(label_spec),
                   "settings": settings}
    digest = hashlib.sha1(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{weights_fingerprint}-{name}-{digest}"


def _matches(data: FeatureSet, source, label_spec) -> bool:
    """Whether a stored set's utterances and labels are those `source` has now."""
    if data.indices is None or data.origins is None or not len(data.indices) == len(data.origins) == len(data):
        return False
    arrays = isinstance(label_spec, (SequenceLabels, ClassGroupLabels, SpeakerActivityLabels))
    for index, origin, label in zip(data.indices, data.origins, data.labels):
        if not 0 <= index < len(source) or source.origin(index) != origin:
            return False
        if label_spec is None:
            if label is not None:
                return False
            continue
        try:
            now = label_spec.encode(source.fields(index), origin)
        except DataError:  # the recomputation reports it, as it would without a cache
            return False
        if not (np.array_equal(now, label) if arrays else now == label):
            return False
    return True


def check_writable(directory: Path, name: str) -> None:
    """Create `directory` if needed and a file in it, or raise a one-line `ConfigError` naming it as
    `name` (e.g. `--cache-dir`): checked before any work, so no result is computed for nowhere."""
    err = write_check_error(directory)
    if err is not None:
        raise ConfigError(f"{name}={directory}: cannot write there ({err.strerror or err})")


def stored_feature_sets(path: Path, source, label_spec) -> list[FeatureSet] | None:
    """The entry at `path` when it is readable and its utterances and labels are still `source`'s."""
    if not (Path(path) / INDEX_NAME).is_file():
        return None
    try:
        sets = read_feature_store(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # unreadable: made again by the caller
    return sets if sets and all(_matches(s, source, label_spec) for s in sets) else None


def cached_feature_sets(cache_dir: Path, key: str, bundle, source, label_spec, forward, *,
                        batch_size: int = FEATURE_BATCH_SIZE, num_buckets: int = NUM_BUCKETS,
                        desc: str = "features") -> list[FeatureSet]:
    """K encoders' features of `source` (`forward` as `collect_feature_sets` takes it) from the entry
    `cache_dir/key` (`feature_cache_key`), streamed there by one pass when it is missing or stale."""
    path = Path(cache_dir) / key
    sets = stored_feature_sets(path, source, label_spec)
    if sets is None:
        rows = ((index, source.origin(index), states, label) for index, states, label in
                _encoded(bundle, source, label_spec, forward, batch_size=batch_size, num_buckets=num_buckets,
                         desc=desc))
        write_feature_store(path, rows)
        sets = read_feature_store(path)
    return sets


def cached_feature_set(cache_dir: Path | None, key: str, make, *, source, label_spec) -> FeatureSet:
    """`make()` once per `key` (from `feature_cache_key`): read from the entry `cache_dir/key` when
    present and its utterances and labels are still `source`'s, else compute and store."""
    if cache_dir is None:
        return make()
    path = Path(cache_dir) / key
    sets = stored_feature_sets(path, source, label_spec)
    if sets is not None:
        return sets[0]
    data = make()
    write_feature_store(path, feature_set_rows([data]))
    return data
