"""Vocabularies for sequence labels (phones, characters, words) and class label maps.

`Vocabulary` gives every token an id; the CTC blank and the label padding have explicit ids
(by default `<blank>` = 0 and `<pad>` = 1, then the tokens sorted). `kind` says how a label string
is split: `"phone"` and `"word"` on whitespace, `"char"` into characters with spaces written as
the word delimiter `|`. Vocabularies are built from data or read from a file: our JSON
(`{"kind", "tokens", "blank", "pad", "unk"}`), a Hugging Face `vocab.json` (token -> id), or a
text file with one token per line (extra columns such as fairseq counts are ignored).
`ClassLabels` maps class names (speaker, keyword, style) to ids 0..n-1.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from speechft_jax.data.errors import DataError

BLANK = "<blank>"
PAD = "<pad>"
UNK = "<unk>"
WORD_DELIMITER = "|"
KINDS = ("phone", "char", "word")


@dataclass(frozen=True)
class Vocabulary:
    """Tokens in id order (specials included); `blank_id`/`pad_id` name the CTC blank and padding."""

    tokens: tuple[str, ...]
    kind: str = "phone"
    blank: str = BLANK
    pad: str = PAD
    unk: str | None = None
    word_delimiter: str = WORD_DELIMITER
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "tokens", tuple(self.tokens))
        if self.kind not in KINDS:
            raise ValueError(f"vocabulary kind must be one of {KINDS}, got {self.kind!r}")
        dupes = [t for t, c in Counter(self.tokens).items() if c > 1]
        if dupes:
            raise ValueError(f"vocabulary has duplicate tokens: {dupes[:5]}")
        index = {t: i for i, t in enumerate(self.tokens)}
        for name, tok in (("blank", self.blank), ("pad", self.pad), ("unk", self.unk)):
            if tok is not None and tok not in index:
                raise ValueError(f"vocabulary has no {name} token {tok!r}")
        object.__setattr__(self, "_index", index)

    @property
    def size(self) -> int:
        return len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def blank_id(self) -> int:
        return self._index[self.blank]

    @property
    def pad_id(self) -> int:
        return self._index[self.pad]

    @property
    def unk_id(self) -> int | None:
        return None if self.unk is None else self._index[self.unk]

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return tuple(t for t in (self.blank, self.pad, self.unk) if t is not None)

    def token_id(self, token: str) -> int:
        return self._index[token]

    def tokenize(self, text: str) -> list[str]:
        """Split a label string into tokens according to `kind`."""
        if self.kind == "char":
            return [self.word_delimiter if c == " " else c for c in " ".join(text.split())]
        return text.split()

    def encode(self, label: Any, where: str = "<label>") -> np.ndarray:
        """Ids of a label (a string, or a list of token strings): int32 `[tokens]`.

        A token not in the vocabulary maps to `unk` if there is one, else raises `DataError`.
        """
        if isinstance(label, str):
            tokens = self.tokenize(label)
        elif isinstance(label, (list, tuple)) and all(isinstance(t, str) for t in label):
            tokens = list(label)
        else:
            raise DataError(where, f"{self.kind} label must be a string or a list of strings, "
                                   f"got {type(label).__name__}")
        ids = np.empty(len(tokens), np.int32)
        for i, tok in enumerate(tokens):
            tid = self._index.get(tok)
            if tid is None or tok in (self.blank, self.pad):
                if self.unk is None:
                    raise DataError(where, f"{self.kind} {tok!r} is not in the vocabulary "
                                           f"({self.size} tokens)")
                tid = self.unk_id
            ids[i] = tid
        return ids

    def decode(self, ids: Iterable[int], *, ctc: bool = False) -> str:
        """Ids back to a label string; `ctc=True` first merges repeats and drops blanks."""
        out, prev = [], None
        for i in (int(x) for x in ids):
            if ctc and i == prev:
                continue
            prev = i
            if i in (self.blank_id, self.pad_id):
                continue
            out.append(self.tokens[i])
        if self.kind == "char":
            return "".join(" " if t == self.word_delimiter else t for t in out).strip()
        return " ".join(out)

    @classmethod
    def build(cls, labels: Iterable[str], kind: str = "phone", *, min_count: int = 1,
              unk: str | None = None) -> "Vocabulary":
        """Collect the tokens of `labels`; ids: blank 0, pad 1, (unk 2), then tokens sorted."""
        probe = cls((BLANK, PAD), kind=kind)
        counts = Counter(t for text in labels for t in probe.tokenize(text))
        specials = [BLANK, PAD] + ([unk] if unk else [])
        tokens = sorted(t for t, c in counts.items() if c >= min_count and t not in specials)
        return cls(tuple(specials + tokens), kind=kind, unk=unk)

    def save(self, path: str | os.PathLike) -> None:
        """Write our JSON format (readable by `Vocabulary.load`)."""
        Path(path).write_text(json.dumps({
            "kind": self.kind, "blank": self.blank, "pad": self.pad, "unk": self.unk,
            "word_delimiter": self.word_delimiter, "tokens": list(self.tokens),
        }, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike, *, kind: str = "phone", blank: str | None = None,
             pad: str | None = None, unk: str | None = None) -> "Vocabulary":
        """Read our JSON, a HF `vocab.json` (token -> id) or a one-token-per-line text file.

        For HF files `blank` and `pad` default to `<pad>` (HF CTC uses the pad id as blank);
        for text files missing `<blank>`/`<pad>` are put first.
        """
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise DataError(where, "vocabulary file not found")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(where, f"vocabulary is not valid JSON ({e.msg}, line {e.lineno})") from None
            try:
                if isinstance(data, dict) and "tokens" in data:
                    return cls(tuple(data["tokens"]), kind=data.get("kind", kind),
                               blank=data.get("blank", BLANK), pad=data.get("pad", PAD),
                               unk=data.get("unk"), word_delimiter=data.get("word_delimiter", "|"))
                if isinstance(data, dict) and all(isinstance(v, int) for v in data.values()):
                    ordered = sorted(data.items(), key=lambda kv: kv[1])
                    if [v for _, v in ordered] != list(range(len(ordered))):
                        raise DataError(where, "token ids must be 0..n-1 without gaps")
                    return cls(tuple(t for t, _ in ordered), kind=kind, blank=blank or PAD,
                               pad=pad or PAD, unk=unk if unk is not None else
                               (UNK if UNK in data else None))
            except ValueError as e:
                if isinstance(e, DataError):
                    raise
                raise DataError(where, str(e)) from None
            raise DataError(where, "expected {'tokens': [...]} or a token -> id mapping")
        tokens = [ln.split()[0] for ln in text.splitlines() if ln.strip()]
        blank, pad = blank or BLANK, pad or PAD
        specials = [t for t in (blank, pad) if t not in tokens]
        try:
            return cls(tuple(specials + tokens), kind=kind, blank=blank, pad=pad, unk=unk)
        except ValueError as e:
            raise DataError(where, str(e)) from None


def _class_name(value: Any, where: str, field_name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
        raise DataError(where, f"class label {field_name!r} must be a string or an integer, "
                               f"got {type(value).__name__} {value!r}")
    return str(value)


@dataclass(frozen=True)
class ClassLabels:
    """Class names in id order (ids 0..n-1)."""

    names: tuple[str, ...]
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        if len(set(self.names)) != len(self.names):
            raise ValueError("class names must be unique")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.names)})

    def __len__(self) -> int:
        return len(self.names)

    def index(self, value: Any, where: str = "<label>", field_name: str = "label") -> int:
        """Id of a class label (string or int name); `DataError` if it is not a known class."""
        name = _class_name(value, where, field_name)
        if name not in self._index:
            shown = ", ".join(self.names[:8]) + (", ..." if len(self.names) > 8 else "")
            raise DataError(where, f"{field_name} {name!r} is not one of the {len(self.names)} "
                                   f"known classes ({shown})")
        return self._index[name]

    @classmethod
    def build(cls, values: Iterable[Any], *, field_name: str = "label",
              order: Sequence[str] | None = None) -> "ClassLabels":
        """Classes found in `values`, sorted (or in `order`, which must cover them)."""
        found = sorted({_class_name(v, "<labels>", field_name) for v in values})
        if order is None:
            return cls(tuple(found))
        missing = [v for v in found if v not in order]
        if missing:
            raise ValueError(f"{field_name} values {missing[:5]} are missing from the given order")
        return cls(tuple(order))

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text("".join(n + "\n" for n in self.names), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ClassLabels":
        path = Path(path)
        if not path.is_file():
            raise DataError(str(path), "class label file not found")
        names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        try:
            return cls(tuple(names))
        except ValueError as e:
            raise DataError(str(path), str(e)) from None
