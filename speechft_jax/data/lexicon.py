"""Phone transcriptions from word transcriptions through a pronunciation lexicon.

SUPERB's phone recognition labels LibriSpeech with the phones of each word from a lexicon (one
line per word: `WORD PH1 PH2 ...`, as in LibriSpeech's `librispeech-lexicon.txt`).
`read_lexicon` reads such a file (the first pronunciation of a word wins; stress digits can be
stripped), and `PhoneticSource` wraps any `AudioSource` so that a text field also yields its
phones, ready for `SequenceLabels(field="phones", ...)`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from speechft_jax.data.errors import DataError

_STRESS = re.compile(r"(?<=[A-Za-z])[012]$")


def read_lexicon(path: str | os.PathLike, *, strip_stress: bool = True) -> dict[str, tuple[str, ...]]:
    """`{WORD: (phone, ...)}` from a `WORD PH1 PH2 ...` file (words upper-cased)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "lexicon file not found")
    lexicon: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise DataError(f"{path}:{number}", f"expected 'WORD PHONE ...', got {line.strip()!r}")
        phones = tuple(_STRESS.sub("", p) if strip_stress else p for p in parts[1:])
        lexicon.setdefault(parts[0].upper(), phones)
    if not lexicon:
        raise DataError(str(path), "lexicon is empty")
    return lexicon


class PhoneticSource:
    """An `AudioSource` whose fields gain `out_field`: the phones of `text_field`, space separated."""

    def __init__(self, source, lexicon: Mapping[str, tuple[str, ...]], *, text_field: str = "text",
                 out_field: str = "phones"):
        self.source, self.lexicon = source, lexicon
        self.text_field, self.out_field = text_field, out_field

    def __len__(self) -> int:
        return len(self.source)

    def num_samples(self, index: int) -> int:
        return self.source.num_samples(index)

    def origin(self, index: int) -> str:
        return self.source.origin(index)

    def load(self, index: int) -> np.ndarray:
        return self.source.load(index)

    def fields(self, index: int) -> Mapping[str, Any]:
        fields = dict(self.source.fields(index))
        text = fields.get(self.text_field)
        if not isinstance(text, str):
            raise DataError(self.origin(index), f"missing text field {self.text_field!r} for the lexicon")
        phones = []
        for word in text.upper().split():
            if word not in self.lexicon:
                raise DataError(self.origin(index), f"word {word!r} is not in the lexicon")
            phones.extend(self.lexicon[word])
        fields[self.out_field] = " ".join(phones)
        return fields
