"""Which label fields go into a batch, and how each is encoded.

`SequenceLabels` turns a field (e.g. `phones` or `text`) into CTC targets through a `Vocabulary`:
batch keys `<key>` int32 `[batch, max_length]` padded with the vocabulary's pad id,
`<key>_mask` int32 `[batch, max_length]` (1 = real token) and `<key>_lengths` int32 `[batch]`;
for the default key `labels` these are `labels`, `label_mask`, `label_lengths`.
`ClassLabel` turns a field (e.g. `speaker`, `keyword`, `style`) into one int32 id per utterance,
batch key `<key>` `[batch]` (default `label`). A multitask loader takes several specs with
distinct keys (e.g. `phones`, `speaker`, `style`).
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


LabelSpec = Union[SequenceLabels, ClassLabel]


def check_label_keys(specs: tuple[LabelSpec, ...]) -> None:
    """Raise `ValueError` if two specs would write the same batch key."""
    reserved = {"audio", "audio_mask", "example_mask", "example_index"}
    seen: set[str] = set()
    for spec in specs:
        for k in spec.batch_keys:
            if k in reserved or k in seen:
                raise ValueError(f"label batch key {k!r} is used twice (or is reserved)")
            seen.add(k)
