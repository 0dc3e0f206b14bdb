"""Who speaks when, in NIST's RTTM files: `read_rttm` and `write_rttm`.

An RTTM line is whitespace-separated `type file channel tbeg tdur ortho stype name conf [slat]`;
diarization uses the `SPEAKER` lines (recording `file`, from `tbeg` seconds for `tdur` seconds,
speaker `name`) and ignores every other type. `read_rttm(path)` gives
`{recording: [(start_seconds, end_seconds, speaker), ...]}` in the file's order; a malformed
`SPEAKER` line is a one-line `DataError` naming `path:line`. `write_rttm(path, segments)` writes
such a mapping atomically in the line form SUPERB's recipe writes its hypotheses in,
`SPEAKER <recording> 1 <start:.3f> <duration:.3f> <NA> <NA> <speaker> <NA>`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

from speechft_jax.data.errors import DataError
from speechft_jax.files import atomic_write_bytes

Segment = tuple[float, float, str]  # (start_seconds, end_seconds, speaker)
SPEAKER_FIELDS = 9  # type file channel tbeg tdur ortho stype name conf; a 10th (slat) may follow


def read_rttm(path: str | os.PathLike) -> dict[str, list[Segment]]:
    """`{recording: [(start_seconds, end_seconds, speaker), ...]}` of the `SPEAKER` lines of `path`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "RTTM file not found")
    recordings: dict[str, list[Segment]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] != "SPEAKER":
            continue
        where = f"{path}:{number}"
        if len(parts) not in (SPEAKER_FIELDS, SPEAKER_FIELDS + 1):
            raise DataError(where, f"SPEAKER line has {len(parts)} fields, expected 'SPEAKER <recording> "
                                   "<channel> <start> <duration> <NA> <NA> <speaker> <NA>'")
        try:
            start, duration = float(parts[3]), float(parts[4])
        except ValueError:
            raise DataError(where, f"start {parts[3]!r} and duration {parts[4]!r} must be numbers of seconds") from None
        if not (math.isfinite(start) and math.isfinite(duration)) or start < 0 or duration < 0:
            raise DataError(where, f"start {parts[3]} and duration {parts[4]} must be finite and >= 0")
        recordings.setdefault(parts[1], []).append((start, start + duration, parts[7]))
    return recordings


def write_rttm(path: str | os.PathLike, segments: Mapping[str, Sequence[Segment]]) -> None:
    """`segments` (`{recording: [(start_seconds, end_seconds, speaker), ...]}`) as `SPEAKER` lines
    at `path`, in the mapping's order, written atomically."""
    lines = [f"SPEAKER {recording} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA>\n"
             for recording, turns in segments.items() for start, end, speaker in turns]
    atomic_write_bytes(Path(path), "".join(lines).encode("utf-8"))
