"""Random-access audio sources: what the loader reads utterances from.

An `AudioSource` is anything with `len()`, the 16 kHz length of each utterance (from metadata,
without decoding), its label fields, an `origin` string for error messages, and `load(i)`, which
returns the checked float32 16 kHz mono waveform. `FileSource` serves files listed in a manifest
or found in a folder (`SegmentFileSource`: some of them as a stretch of the file, e.g. the 1 s
crops of Speech Commands' background noise); `HFDatasetSource` (hf_datasets.py) and
`TFDSSource` (tfds_source.py) serve Hugging Face and TFDS datasets.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from speechft_jax.data.audio import SAMPLE_RATE, audio_num_samples, decode_audio
from speechft_jax.data.errors import DataError
from speechft_jax.data.manifest import Example, read_manifest, scan_audio_folder


@runtime_checkable
class AudioSource(Protocol):
    """Random access to utterances; every method may raise `DataError` for a bad one."""

    def __len__(self) -> int: ...

    def num_samples(self, index: int) -> int:
        """Length at 16 kHz, from metadata (may differ from `load` by rounding)."""
        ...

    def fields(self, index: int) -> Mapping[str, Any]:
        """The utterance's label fields by name."""
        ...

    def origin(self, index: int) -> str:
        """Where the utterance comes from, for error messages (`file:line`, `dataset[i]`)."""
        ...

    def load(self, index: int) -> np.ndarray:
        """The checked waveform, float32 `[samples]` at 16 kHz mono."""
        ...


class FileSource:
    """Utterances stored as audio files, listed by `Example`s (manifest or folder)."""

    def __init__(self, examples: Sequence[Example]):
        self.examples = list(examples)
        self._lengths: dict[int, int] = {}

    @classmethod
    def from_manifest(cls, path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                      skip_bad: bool = False, split: str | None = None) -> "FileSource":
        """Read a JSONL/TSV manifest; with `split`, keep only entries whose `split` field matches."""
        examples = read_manifest(path, root=root, skip_bad=skip_bad)
        if split is not None:
            examples = [e for e in examples if e.fields.get("split") == split]
        return cls(examples)

    @classmethod
    def from_folder(cls, root: str | os.PathLike, **kwargs) -> "FileSource":
        """Scan a folder of audio files (see `scan_audio_folder` for the options)."""
        return cls(scan_audio_folder(root, **kwargs))

    def __len__(self) -> int:
        return len(self.examples)

    def num_samples(self, index: int) -> int:
        if index not in self._lengths:
            ex = self.examples[index]
            if ex.duration is not None:
                if not os.path.isfile(ex.path):
                    raise DataError(self.origin(index), "audio file not found")
                self._lengths[index] = int(round(ex.duration * SAMPLE_RATE))
            else:
                self._lengths[index] = audio_num_samples(ex.path, name=self.origin(index))
        return self._lengths[index]

    def fields(self, index: int) -> Mapping[str, Any]:
        return self.examples[index].fields

    def origin(self, index: int) -> str:
        ex = self.examples[index]
        return ex.path if ex.origin == ex.path or not ex.origin else f"{ex.origin} ({ex.path})"

    def load(self, index: int) -> np.ndarray:
        return decode_audio(self.examples[index].path, name=self.origin(index))


SEGMENT_START = "segment_start"      # first sample of a segment, at 16 kHz
SEGMENT_SAMPLES = "segment_samples"  # its length in samples, at 16 kHz


class SegmentFileSource(FileSource):
    """A `FileSource` some of whose utterances are a segment of their file: an example whose fields
    carry `segment_start` and `segment_samples` (16 kHz samples) serves that stretch of the decoded
    file, any other its whole file. The segment is written in the fields so that whatever describes
    a `FileSource` by its examples' paths and fields (the feature cache key) tells segments apart."""

    def _segment(self, index: int) -> tuple[int, int] | None:
        fields = self.examples[index].fields
        if SEGMENT_START not in fields:
            return None
        return int(fields[SEGMENT_START]), int(fields[SEGMENT_SAMPLES])

    def num_samples(self, index: int) -> int:
        segment = self._segment(index)
        return super().num_samples(index) if segment is None else segment[1]

    def load(self, index: int) -> np.ndarray:
        audio = super().load(index)
        segment = self._segment(index)
        if segment is None:
            return audio
        start, length = segment
        if start < 0 or start + length > audio.shape[0]:
            raise DataError(self.origin(index), f"segment of samples {start}..{start + length} lies outside "
                                                f"the audio's {audio.shape[0]} samples at {SAMPLE_RATE} Hz")
        return audio[start:start + length]
