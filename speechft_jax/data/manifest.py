"""Manifests and audio folders: the lists of utterances that a `FileSource` reads.

A manifest is JSONL (one object per line) or TSV (a header row naming the columns). Each entry has
`path` (absolute, or relative to the manifest's folder or to `root`), optionally `duration` in
seconds, and any label fields (`text`, `phones`, `speaker`, `keyword`, `style`, ...). A fairseq
`.tsv` (first line the root folder, then `relative_path<TAB>num_samples` at 16 kHz) is read too.
A plain folder of wav/flac/ogg files is scanned with `scan_audio_folder`, optionally taking a class
label from each file's parent folder and a transcript from a sibling `.txt` file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from speechft_jax.data.audio import AUDIO_EXTENSIONS, SAMPLE_RATE
from speechft_jax.data.errors import DataError, SkipLog, handle_bad


@dataclass(frozen=True)
class Example:
    """One utterance on disk: its audio file, label fields and where it was listed.

    `origin` is what error messages name, e.g. `"train.jsonl:12"`; `duration` is in seconds
    when the manifest gives it (else the source reads the audio header).
    """

    path: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    origin: str = ""
    duration: float | None = None


def _parse_duration(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        duration = float(value)
    except (TypeError, ValueError):
        raise DataError(where, f"'duration' must be a number of seconds, got {value!r}") from None
    if not math.isfinite(duration) or duration <= 0:
        raise DataError(where, f"'duration' must be a positive number of seconds, got {value!r}")
    return duration


def _resolve(path: str, root: Path) -> str:
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else root / p)


def _from_record(record: Any, where: str, root: Path) -> Example:
    if not isinstance(record, dict):
        raise DataError(where, f"expected a JSON object per line, got {type(record).__name__}")
    path = record.get("path")
    if not isinstance(path, str) or not path:
        raise DataError(where, "missing 'path' (a string naming the audio file)")
    duration = _parse_duration(record.get("duration"), where)
    fields = {k: v for k, v in record.items() if k not in ("path", "duration")}
    return Example(path=_resolve(path, root), fields=fields, origin=where, duration=duration)


def _read_jsonl(lines: list[str], name: str, root: Path, skip: SkipLog | None) -> list[Example]:
    examples = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(where, f"line is not valid JSON ({e.msg} at column {e.colno})") from None
            examples.append(_from_record(record, where, root))
        except DataError as err:
            handle_bad(err, skip)
    return examples


def _is_fairseq_tsv(lines: list[str]) -> bool:
    first = [ln for ln in lines if ln.strip()][:2]
    if len(first) < 2 or "\t" in first[0]:
        return False
    cols = first[1].rstrip("\n").split("\t")
    return len(cols) == 2 and cols[1].strip().isdigit()


def _read_tsv(lines: list[str], name: str, root: Path, skip: SkipLog | None) -> list[Example]:
    numbered = [(i, ln.rstrip("\n")) for i, ln in enumerate(lines, start=1) if ln.strip()]
    if not numbered:
        return []
    examples = []
    if _is_fairseq_tsv(lines):
        root = Path(numbered[0][1].strip())
        for lineno, line in numbered[1:]:
            where = f"{name}:{lineno}"
            cols = line.split("\t")
            try:
                if len(cols) != 2 or not cols[1].strip().isdigit():
                    raise DataError(where, "expected 'relative_path<TAB>num_samples' (fairseq tsv)")
                duration = _parse_duration(int(cols[1]) / SAMPLE_RATE, where)
                examples.append(Example(_resolve(cols[0], root), {}, where, duration))
            except DataError as err:
                handle_bad(err, skip)
        return examples
    header_lineno, header = numbered[0]
    columns = header.split("\t")
    if "path" not in columns:
        raise DataError(f"{name}:{header_lineno}",
                        f"TSV header must name a 'path' column, got {columns}")
    for lineno, line in numbered[1:]:
        where = f"{name}:{lineno}"
        cols = line.split("\t")
        try:
            if len(cols) != len(columns):
                raise DataError(where, f"expected {len(columns)} tab-separated columns "
                                       f"({', '.join(columns)}), got {len(cols)}")
            examples.append(_from_record(dict(zip(columns, cols)), where, root))
        except DataError as err:
            handle_bad(err, skip)
    return examples


def read_manifest(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                  skip_bad: bool = False) -> list[Example]:
    """Read a JSONL or TSV manifest into `Example`s, in file order.

    Relative audio paths are resolved against `root` (default: the manifest's folder). A line
    that does not parse raises `DataError("<file>:<line>", ...)`, or with `skip_bad` is skipped
    and counted in one warning.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise DataError(name, "manifest file not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError as e:
        raise DataError(name, f"manifest is not UTF-8 text ({e.reason} at byte {e.start})") from None
    base = Path(root) if root is not None else path.parent
    skip = SkipLog(f"manifest {name}") if skip_bad else None
    first = next((ln.lstrip() for ln in lines if ln.strip()), "")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson") or first.startswith("{"):
        examples = _read_jsonl(lines, name, base, skip)
    else:
        examples = _read_tsv(lines, name, base, skip)
    if skip is not None:
        skip.warn()
    return examples


def write_manifest(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> None:
    """Write one JSON object per line (keys kept in the given order, UTF-8, no ASCII escaping)."""
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def scan_audio_folder(
    root: str | os.PathLike,
    *,
    extensions: tuple[str, ...] = AUDIO_EXTENSIONS,
    label_field: str | None = None,
    transcripts: bool = False,
    transcript_field: str = "text",
) -> list[Example]:
    """List the audio files under `root` (recursively, sorted) as `Example`s.

    `label_field="keyword"` stores each file's parent folder name in that field (the Speech
    Commands layout); `transcripts=True` reads `name.txt` beside `name.wav` into `transcript_field`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(str(root), "audio folder not found")
    exts = tuple(e.lower() for e in extensions)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    examples = []
    for p in files:
        fields: dict[str, Any] = {}
        if label_field is not None:
            fields[label_field] = p.parent.name
        if transcripts:
            txt = p.with_suffix(".txt")
            if not txt.is_file():
                raise DataError(str(p), f"transcript {txt.name} not found beside the audio file")
            fields[transcript_field] = txt.read_text(encoding="utf-8").strip()
        examples.append(Example(path=str(p), fields=fields, origin=str(p)))
    return examples
