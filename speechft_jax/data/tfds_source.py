"""TensorFlow Datasets as audio sources (install the `tfds` extra).

`TFDSSource` gives random access through `tfds.data_source` (array_record files, no TensorFlow
needed to read) for `AudioLoader`; `tfds_stream` iterates `builder.as_dataset` (needs TensorFlow)
for `StreamingLoader`. The audio feature's sampling rate comes from the dataset info unless
`sample_rate` is given; `ClassLabel` features yield class names; byte strings become text.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from speechft_jax.data.audio import prepare_waveform
from speechft_jax.data.errors import DataError
from speechft_jax.data.streaming import StreamItem
from speechft_jax.data.vocab import ClassLabels


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError("TFDS sources need the tfds extra: pip install 'speechft-jax[tfds]'") from e
    return tfds


def _feature_info(info, audio_key: str, sample_rate: int | None):
    tfds = _tfds()
    features = info.features
    if audio_key not in features:
        raise DataError(f"tfds:{info.name}", f"has no feature {audio_key!r} "
                                             f"(features: {sorted(features.keys())})")
    rate = sample_rate or getattr(features[audio_key], "sample_rate", None)
    if not rate:
        raise DataError(f"tfds:{info.name}", f"feature {audio_key!r} has no sample_rate; "
                                             f"pass sample_rate=")
    classes = {k: tuple(f.names) for k, f in features.items()
               if isinstance(f, tfds.features.ClassLabel)}
    return int(rate), classes


def _fields(example: Mapping[str, Any], audio_key: str, classes: dict) -> dict[str, Any]:
    out = {}
    for k, v in example.items():
        if k == audio_key:
            continue
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v.item()
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        if k in classes and isinstance(v, (int, np.integer)) and v >= 0:
            v = classes[k][int(v)]
        out[k] = v
    return out


class TFDSSource:
    """A TFDS split with random access (`tfds.data_source`) as an `AudioSource`.

    Lengths need the decoded audio, so the loader's start-up reads every example once.
    """

    def __init__(self, name: str, *, split: str, data_dir: str | os.PathLike | None = None,
                 audio_key: str = "audio", sample_rate: int | None = None):
        tfds = _tfds()
        self.name, self.split, self.audio_key = name, split, audio_key
        builder = tfds.builder(name, data_dir=data_dir)
        self.sample_rate, self.class_names = _feature_info(builder.info, audio_key, sample_rate)
        self.data = tfds.data_source(name, split=split, data_dir=data_dir)
        self._lengths: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.data)

    def origin(self, index: int) -> str:
        return f"tfds:{self.name}/{self.split}[{index}]"

    def class_labels(self, key: str) -> ClassLabels:
        if key not in self.class_names:
            raise DataError(f"tfds:{self.name} feature {key!r}", "is not a ClassLabel feature")
        return ClassLabels(self.class_names[key])

    def num_samples(self, index: int) -> int:
        if index not in self._lengths:
            self._lengths[index] = len(self.load(index))
        return self._lengths[index]

    def fields(self, index: int) -> Mapping[str, Any]:
        return _fields(self.data[index], self.audio_key, self.class_names)

    def load(self, index: int) -> np.ndarray:
        example = self.data[index]
        return prepare_waveform(np.asarray(example[self.audio_key]), self.sample_rate,
                                where=self.origin(index))


def tfds_stream(name: str, *, split: str, data_dir: str | os.PathLike | None = None,
                audio_key: str = "audio", sample_rate: int | None = None
                ) -> Callable[[], Iterator[StreamItem]]:
    """A replayable stream of a TFDS split (file order, not shuffled) for `StreamingLoader`."""
    tfds = _tfds()
    builder = tfds.builder(name, data_dir=data_dir)
    rate, classes = _feature_info(builder.info, audio_key, sample_rate)

    def make_stream() -> Iterator[StreamItem]:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        for i, example in enumerate(tfds.as_numpy(dataset)):
            where = f"tfds:{name}/{split}[{i}]"
            audio = example[audio_key]
            yield StreamItem(
                load=lambda audio=audio, where=where: prepare_waveform(
                    np.asarray(audio), rate, where=where),
                fields=_fields(example, audio_key, classes), origin=where)

    return make_stream
