"""Which label fields go into a batch, and how each is encoded.

`SequenceLabels` turns a field (e.g. `phones` or `text`) into CTC targets through a `Vocabulary`:
batch keys `<key>` int32 `[batch, max_length]` padded with the vocabulary's pad id,
`<key>_mask` int32 `[batch, max_length]` (1 = real token) and `<key>_lengths` int32 `[batch]`;
for the default key `labels` these are `labels`, `label_mask`, `label_lengths`.
`ClassLabel` turns a field (e.g. `speaker`, `keyword`, `style`) into one int32 id per utterance,
batch key `<key>` `[batch]` (default `label`). A multitask loader takes several specs with
distinct keys (e.g. `phones`, `speaker`, `style`).
`ClassGroupLabels` turns several fields (intent classification's action, object and location)
into one class id each, batch key `<key>` int32 `[batch, groups]`. `SpeakerActivityLabels` turns a
list of speaker segments into frame-level activity (diarization), `<key>` uint8
`[batch, max_frames, speakers]`. `TrialLabels` carries a verification split's trial list (pairs of
its utterances); per utterance it encodes nothing but a 0 (`<key>` int32 `[batch]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union

import numpy as np

from speechft_jax.data.errors import DataError
from speechft_jax.data.vocab import ClassLabels, Vocabulary


def _field(fields: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in fields or fields[name] is None:
        raise DataError(where, f"missing label field {name!r}")
    return fields[name]


@dataclass(frozen=True)
class SequenceLabels:
    """CTC targets from `field`; `max_length` fixes the padded length (None: from the data)."""

    field: str
    vocab: Vocabulary
    key: str = "labels"
    max_length: int | None = None

    @property
    def mask_key(self) -> str:
        return "label_mask" if self.key == "labels" else f"{self.key}_mask"

    @property
    def lengths_key(self) -> str:
        return "label_lengths" if self.key == "labels" else f"{self.key}_lengths"

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return (self.key, self.mask_key, self.lengths_key)

    def encode(self, fields: Mapping[str, Any], where: str) -> np.ndarray:
        """Token ids, int32 `[tokens]`; `DataError` for a wrong type or an unknown token."""
        ids = self.vocab.encode(_field(fields, self.field, where), f"{where} field {self.field!r}")
        if ids.size == 0:
            raise DataError(where, f"label field {self.field!r} is empty")
        return ids


@dataclass(frozen=True)
class ClassLabel:
    """One class id per utterance from `field`."""

    field: str
    classes: ClassLabels
    key: str = "label"

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return (self.key,)

    def encode(self, fields: Mapping[str, Any], where: str) -> int:
        return self.classes.index(_field(fields, self.field, where), where, self.field)


@dataclass(frozen=True)
class ClassGroupLabels:
    """One class id per field of `fields`, each from its own class list (`groups`, in the same
    order): intent classification's action, object and location. Encodes int32 `[len(fields)]`."""

    fields: tuple[str, ...]
    groups: tuple[ClassLabels, ...]
    key: str = "label"

    def __post_init__(self):
        if len(self.fields) != len(self.groups) or not self.fields:
            raise ValueError(f"ClassGroupLabels: {len(self.fields)} fields but {len(self.groups)} class lists")

    @property
    def field(self) -> str:
        return ",".join(self.fields)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(g) for g in self.groups)

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return (self.key,)

    def encode(self, fields: Mapping[str, Any], where: str) -> np.ndarray:
        return np.array([g.index(_field(fields, f, where), where, f) for f, g in zip(self.fields, self.groups)],
                        np.int32)


@dataclass(frozen=True)
class SpeakerActivityLabels:
    """Which of up to `num_speakers` speakers talk in each frame of `frame_seconds`, from `field`: a
    list of `[start_seconds, end_seconds, speaker]` segments (speaker columns in order of first
    appearance; a frame is active when its centre lies inside a segment). Encodes uint8
    `[frames, num_speakers]`, frames up to the last segment's end (later frames are silence)."""

    field: str = "segments"
    num_speakers: int = 2
    frame_seconds: float = 0.02
    key: str = "activity"

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return (self.key,)

    def encode(self, fields: Mapping[str, Any], where: str) -> np.ndarray:
        segments = _field(fields, self.field, where)
        speakers: list = []
        parsed = []
        for segment in segments:
            try:
                start, end, speaker = float(segment[0]), float(segment[1]), str(segment[2])
            except (TypeError, ValueError, IndexError):
                raise DataError(where, f"field {self.field!r}: segment {segment!r}, expected "
                                       "[start_seconds, end_seconds, speaker]") from None
            if not 0 <= start <= end:
                raise DataError(where, f"field {self.field!r}: segment {segment!r} has start > end or < 0")
            if speaker not in speakers:
                speakers.append(speaker)
            parsed.append((start, end, speakers.index(speaker)))
        if len(speakers) > self.num_speakers:
            raise DataError(where, f"field {self.field!r}: {len(speakers)} speakers, more than the "
                                   f"{self.num_speakers} the task models")
        frames = int(np.ceil(max((end for _, end, _ in parsed), default=0.0) / self.frame_seconds))
        centres = (np.arange(frames) + 0.5) * self.frame_seconds
        activity = np.zeros((max(frames, 1), self.num_speakers), np.uint8)
        for start, end, column in parsed:
            activity[:frames, column] |= ((centres >= start) & (centres < end)).astype(np.uint8)
        return activity


@dataclass(frozen=True, eq=False)
class TrialLabels:
    """A verification split's trials: `trials` int64 `[n, 3]`, rows (enrolment utterance, test
    utterance, 1 same speaker / 0 not), utterances as indices into the split's source; `names`
    says where the list came from. Each utterance encodes to 0: the trials are scored per split."""

    trials: np.ndarray
    names: str = ""
    key: str = "label"

    @property
    def field(self) -> str:
        return "trials"

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return (self.key,)

    def encode(self, fields: Mapping[str, Any], where: str) -> int:
        return 0


LabelSpec = Union[SequenceLabels, ClassLabel, ClassGroupLabels, SpeakerActivityLabels, TrialLabels]


def check_label_keys(specs: tuple[LabelSpec, ...]) -> None:
    """Raise `ValueError` if two specs would write the same batch key."""
    reserved = {"audio", "audio_mask", "example_mask", "example_index"}
    seen: set[str] = set()
    for spec in specs:
        for k in spec.batch_keys:
            if k in reserved or k in seen:
                raise ValueError(f"label batch key {k!r} is used twice (or is reserved)")
            seen.add(k)
