"""Speaker-verification trial lists in VoxCeleb's `veri_test.txt` layout: `read_trials`.

Each line is `<1|0> <enrolment path> <test path>` (1: the same speaker), paths relative to the
folder the list's audio lives in (`audio_root`). `read_trials(path, audio_root)` returns the
distinct utterances the trials name, in order of first mention, as a `FileSource` (fields:
`speaker`, the path's first component, and `id`, the path without its extension), and a
`TrialLabels` whose rows index that source. A malformed line is a one-line `DataError` naming it.
`trial_split(pairs, names)` does the same for trials built in memory (a generated dev list).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

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
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{number}"
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise DataError(where, f"{line.strip()!r}, expected `<1|0> <enrolment path> <test path>`")
        enrolment, test = (Example(path=str(audio_root / relative), origin=where,
                                   fields={"speaker": Path(relative).parts[0],
                                           "id": str(Path(relative).with_suffix(""))}) for relative in parts[1:])
        pairs.append((enrolment, test, int(parts[0])))
    return trial_split(pairs, str(path))


def trial_split(pairs: Sequence[tuple[Example, Example, int]], names: str) -> tuple[FileSource, TrialLabels]:
    """`(FileSource, TrialLabels)` of trials `(enrolment, test, 1 same speaker / 0 not)`: the source
    holds each distinct utterance (by path) once, in order of first mention; `names` says where the
    trials come from (errors, `TrialLabels.names`)."""
    index: dict[str, int] = {}
    examples: list[Example] = []
    rows = []
    for enrolment, test, target in pairs:
        for example in (enrolment, test):
            if example.path not in index:
                index[example.path] = len(examples)
                examples.append(example)
        rows.append((index[enrolment.path], index[test.path], int(target)))
    if not rows:
        raise DataError(names, "lists no trials")
    trials = np.array(rows, np.int64)
    if trials[:, 2].min() == trials[:, 2].max():
        raise DataError(names, "has only " + ("target" if trials[0, 2] else "non-target")
                        + " trials; an equal error rate needs both")
    return FileSource(examples), TrialLabels(trials, names=names)
