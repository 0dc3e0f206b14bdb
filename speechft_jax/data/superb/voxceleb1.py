"""VoxCeleb1 as downloaded (SUPERB's speaker identification, SID): `open_split`.

`root` holds the unzipped archives, `dev/wav/idNNNNN/<video>/NNNNN.wav` (vox1_dev_wav.zip) and
`test/wav/...` (vox1_test_wav.zip), or a single `wav/` folder. The identification split file,
`iden_split.txt` (lines `<1|2|3> idNNNNN/<video>/NNNNN.wav`: 1 train, 2 dev, 3 test), is read
from `path` if given, else `<root>/iden_split.txt`; a listed file is looked for under every
`<root>/*/wav/`, as SUPERB's recipe globs it. Fields: `speaker` (`idNNNNN`), `id` (the listed path
without `.wav`); the classes are the 1,251 ids id10001..id11251 in that order (`SPEAKERS`).
"""

from __future__ import annotations

import os
from pathlib import Path

from speechft_jax.config_loading import check
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import ClassLabel
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import FileSource
from speechft_jax.data.vocab import ClassLabels

SPLIT_CODES = {"train": "1", "dev": "2", "test": "3"}
SPEAKERS = ClassLabels(tuple(f"id{number}" for number in range(10001, 11252)))
SPLIT_FILE = "iden_split.txt"


def _speaker_folders(root: Path) -> dict[str, Path]:
    """`{idNNNNN: the wav/ folder holding it}` over `<root>/wav/` and every `<root>/*/wav/`."""
    wav_folders = [p for p in [root / "wav", *sorted(root.glob("*/wav"))] if p.is_dir()]
    if not wav_folders:
        raise DataError(str(root), "has no wav/ folder (expected dev/wav/ and test/wav/ from the unzipped "
                                   "vox1_dev_wav.zip and vox1_test_wav.zip)")
    speakers: dict[str, Path] = {}
    for folder in wav_folders:
        for entry in os.scandir(folder):
            if entry.is_dir():
                speakers.setdefault(entry.name, folder)
    return speakers


def open_split(config):
    """`(FileSource, ClassLabel("speaker", SPEAKERS))` of SUPERB's split `config.split` of VoxCeleb1."""
    check(config.split in SPLIT_CODES, "data.split", config.split, "train, dev or test")
    root = Path(config.root)
    if not root.is_dir():
        raise DataError(str(root), "folder not found (data.root: the unzipped VoxCeleb1 dev and test archives)")
    split_file = Path(config.path) if config.path else root / SPLIT_FILE
    if not split_file.is_file():
        raise DataError(str(split_file), f"split file not found (VoxCeleb1's {SPLIT_FILE}: set data.path to it, "
                                         "or put it in data.root)")
    speakers, known, code = _speaker_folders(root), set(SPEAKERS.names), SPLIT_CODES[config.split]
    examples = []
    for number, line in enumerate(split_file.read_text(encoding="utf-8").splitlines(), 1):
        parts, where = line.split(), f"{split_file}:{number}"
        if not parts:
            continue
        if len(parts) != 2 or parts[0] not in ("1", "2", "3"):
            raise DataError(where, f"expected '<1|2|3> idNNNNN/<video>/NNNNN.wav', got {line.strip()!r}")
        if parts[0] != code:
            continue
        relative = parts[1]
        speaker = relative.split("/")[0]
        if speaker not in known:
            raise DataError(where, f"speaker {speaker!r} is not one of VoxCeleb1's 1,251 (id10001..id11251)")
        path = speakers[speaker] / relative if speaker in speakers else None
        if path is None or not path.is_file():
            raise DataError(where, f"{relative} not found under {root}/*/wav/")
        examples.append(Example(str(path), {"speaker": speaker, "id": relative.removesuffix(".wav")}, origin=where))
    if not examples:
        raise DataError(str(split_file), f"lists no {config.split} utterances (lines starting {code})")
    return FileSource(examples), ClassLabel("speaker", SPEAKERS)
