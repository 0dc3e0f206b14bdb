"""Speaker-verification trial lists in VoxCeleb's `veri_test.txt` layout: `read_trials`.

Each line is `<1|0> <enrolment path> <test path>` (1: the same speaker), paths relative to the
folder the list's audio lives in (`audio_root`). `read_trials(path, audio_root)` returns the
distinct utterances the trials name, in order of first mention, as a `FileSource` (fields:
`speaker`, the path's first component, and `id`, the path without its extension), and a
`TrialLabels` whose rows index that source. A malformed line is a one-line `DataError` naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import TrialLabels
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import FileSource


def read_trials(path: str | os.PathLike, audio_root: str | os.PathLike) -> tuple[FileSource, TrialLabels]:
    """`(FileSource of the trials' utterances, TrialLabels)` of the list at `path` (module docstring)."""
    path, audio_root = Path(path), Path(audio_root)
    if not path.is_file():
        raise DataError(str(path), "trial list not found (lines `<1|0> <enrolment path> <test path>`)")
    index: dict[str, int] = {}
    examples: list[Example] = []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{number}"
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise DataError(where, f"{line.strip()!r}, expected `<1|0> <enrolment path> <test path>`")
        pair = []
        for relative in parts[1:]:
            if relative not in index:
                index[relative] = len(examples)
                examples.append(Example(path=str(audio_root / relative), origin=where,
                                        fields={"speaker": Path(relative).parts[0],
                                                "id": str(Path(relative).with_suffix(""))}))
            pair.append(index[relative])
        rows.append((pair[0], pair[1], int(parts[0])))
    if not rows:
        raise DataError(str(path), "lists no trials")
    trials = np.array(rows, np.int64)
    if trials[:, 2].min() == trials[:, 2].max():
        raise DataError(str(path), "has only " + ("target" if trials[0, 2] else "non-target")
                        + " trials; an equal error rate needs both")
    return FileSource(examples), TrialLabels(trials, names=str(path))
