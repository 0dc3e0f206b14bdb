"""Hugging Face `datasets` as audio sources: local folders, hub names, and streaming.

`load_hf_dataset` opens a `save_to_disk` folder, a hub name or local data files (parquet, or an
`audiofolder`, which datasets can only build with torchcodec installed), optionally streaming.
`HFDatasetSource` serves a map-style dataset to `AudioLoader`; `hf_stream` turns a streaming
(iterable) dataset into items for `StreamingLoader`. Audio columns are read undecoded
(`Audio(decode=False)`) and decoded here with soundfile + soxr, so any sampling rate works and no
extra audio backend is needed. Columns with a `ClassLabel` feature yield the class name, so
`ClassLabels` built from names line up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from speechft_jax.data.audio import (
    SAMPLE_RATE, audio_num_samples, decode_audio, prepare_waveform,
)
from speechft_jax.data.errors import DataError
from speechft_jax.data.streaming import StreamItem
from speechft_jax.data.vocab import ClassLabels


def load_hf_dataset(name_or_path: str | os.PathLike, *, split: str | None = None,
                    config_name: str | None = None, streaming: bool = False, **kwargs: Any):
    """A `datasets.Dataset` (or `IterableDataset` when `streaming`).

    A folder written by `Dataset.save_to_disk` is loaded with `load_from_disk`; anything else
    goes to `load_dataset(name_or_path, config_name, split=split, streaming=streaming)`.
    """
    import datasets

    path = Path(os.fspath(name_or_path))
    saved = any((path / f).is_file() for f in ("dataset_info.json", "dataset_dict.json"))
    if path.is_dir() and saved:
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if split is None:
                raise DataError(str(path), f"holds splits {sorted(ds)}; pass split=")
            if split not in ds:
                raise DataError(str(path), f"has no split {split!r} (it has {', '.join(sorted(ds))}; a task's "
                                           "dev/test splits may name theirs, e.g. splits: {dev: {split: validation}})")
            ds = ds[split]
        return ds.to_iterable_dataset() if streaming else ds
    try:
        return datasets.load_dataset(os.fspath(name_or_path), config_name, split=split,
                                     streaming=streaming, **kwargs)
    except (ImportError, datasets.exceptions.DatasetGenerationError) as e:
        cause = e if isinstance(e, ImportError) else e.__cause__
        if isinstance(cause, ImportError) and "torchcodec" in str(cause):
            # datasets >= 4 encodes local audio files with torchcodec (and FFmpeg) when it
            # builds an audiofolder; our own folder reader needs neither.
            raise DataError(os.fspath(name_or_path),
                            "datasets needs torchcodec to build a dataset from local audio "
                            "files; read the folder with FileSource.from_folder(...) or a "
                            "manifest instead") from None
        raise


def _undecoded(dataset, audio_column: str):
    import datasets

    features = dataset.features
    if features is None or audio_column not in features:
        raise DataError(f"dataset column {audio_column!r}",
                        f"not found (columns: {sorted(features or {})})")
    if isinstance(features[audio_column], datasets.Audio):
        return dataset.cast_column(audio_column, datasets.Audio(decode=False))
    return dataset


def _class_columns(dataset) -> dict[str, tuple[str, ...]]:
    import datasets

    return {k: tuple(f.names) for k, f in (dataset.features or {}).items()
            if isinstance(f, datasets.ClassLabel)}


def _decode_cell(cell: Any, where: str) -> np.ndarray:
    """An audio cell (`{"bytes", "path"}` or `{"array", "sampling_rate"}`) -> 16 kHz float32."""
    if not isinstance(cell, Mapping):
        raise DataError(where, f"audio cell must be a dict, got {type(cell).__name__}")
    if cell.get("bytes"):
        return decode_audio(cell["bytes"], name=where)
    if cell.get("array") is not None:
        return prepare_waveform(np.asarray(cell["array"]), cell.get("sampling_rate") or 0,
                                where=where)
    if cell.get("path"):
        return decode_audio(cell["path"], name=where)
    raise DataError(where, "audio cell has no bytes, array or path")


def _cell_length(cell: Any, where: str) -> int:
    if isinstance(cell, Mapping):
        if cell.get("bytes"):
            return audio_num_samples(cell["bytes"], name=where)
        if cell.get("array") is not None:
            n = np.asarray(cell["array"]).shape[-1]
            rate = cell.get("sampling_rate") or SAMPLE_RATE
            return int(round(n * SAMPLE_RATE / rate))
        if cell.get("path"):
            return audio_num_samples(cell["path"], name=where)
    raise DataError(where, "audio cell has no bytes, array or path")


class HFDatasetSource:
    """A map-style `datasets.Dataset` as an `AudioSource`.

    Lengths come from `duration_column` (seconds) when the dataset has one, else from each
    file's header (read once, when the loader starts).
    """

    def __init__(self, dataset, *, audio_column: str = "audio",
                 duration_column: str | None = "duration", name: str | None = None):
        self.dataset = _undecoded(dataset, audio_column)
        self.audio_column = audio_column
        cols = self.dataset.column_names
        self.duration_column = duration_column if duration_column in cols else None
        info = getattr(dataset, "info", None)
        self.name = name or (info.dataset_name if info is not None and info.dataset_name else "dataset")
        self.class_names = _class_columns(self.dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def origin(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def class_labels(self, column: str) -> ClassLabels:
        """The dataset's own class list for a `ClassLabel` column, in its id order."""
        if column not in self.class_names:
            raise DataError(f"{self.name} column {column!r}", "is not a ClassLabel column")
        return ClassLabels(self.class_names[column])

    def _row(self, index: int) -> dict:
        return self.dataset[int(index)]

    def num_samples(self, index: int) -> int:
        if self.duration_column is not None:
            value = self.dataset[int(index)][self.duration_column]
            try:
                return int(round(float(value) * SAMPLE_RATE))
            except (TypeError, ValueError):
                raise DataError(self.origin(index), f"{self.duration_column!r} must be a number "
                                                    f"of seconds, got {value!r}") from None
        return _cell_length(self._row(index)[self.audio_column], self.origin(index))

    def fields(self, index: int) -> Mapping[str, Any]:
        row = self._row(index)
        out = {}
        for k, v in row.items():
            if k == self.audio_column:
                continue
            if k in self.class_names and isinstance(v, (int, np.integer)) and v >= 0:
                v = self.class_names[k][int(v)]
            out[k] = v
        return out

    def load(self, index: int) -> np.ndarray:
        return _decode_cell(self._row(index)[self.audio_column], self.origin(index))


def hf_stream(dataset, *, audio_column: str = "audio", name: str = "stream") -> Iterator[StreamItem]:
    """Items of an (iterable) dataset for `StreamingLoader`, decoded only when loaded."""
    dataset = _undecoded(dataset, audio_column)
    classes = _class_columns(dataset)
    for i, row in enumerate(dataset):
        where = f"{name}[{i}]"
        cell = row.get(audio_column)
        fields = {k: (classes[k][v] if k in classes and isinstance(v, int) and v >= 0 else v)
                  for k, v in row.items() if k != audio_column}
        yield StreamItem(load=lambda cell=cell, where=where: _decode_cell(cell, where),
                         fields=fields, origin=where)
