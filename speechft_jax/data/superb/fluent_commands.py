"""Fluent Speech Commands as released (SUPERB's intent classification, IC).

Under `root` (the `fluent_speech_commands_dataset` folder), `data/train_data.csv`,
`data/valid_data.csv` and `data/test_data.csv` are SUPERB's train, dev and test splits. Each is a
pandas-written CSV whose header is `,path,speakerId,transcription,action,object,location` (the
first, unnamed column is the row index); `path` is relative to `root`
(`wavs/speakers/<speaker>/<utterance>.wav`).

Fields: `action`, `object`, `location` (the three slots SUPERB classifies), `speaker`, `text`
(the transcription) and `intent` = `"<action>|<object>|<location>"`, one class per slot triple.
No label spec: the task's `field` picks one, and its classes are built from the train split.
SUPERB's intent classification reads `action`, `object` and `location` as three class groups
(`ClassGroupLabels`, one softmax each; right when all three are), each group's classes from train.
"""

from __future__ import annotations

import csv
from pathlib import Path

from speechft_jax.config_loading import check
from speechft_jax.data.errors import DataError
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import FileSource

CSV_FILES = {"train": "train_data.csv", "dev": "valid_data.csv", "test": "test_data.csv"}
COLUMNS = ("path", "speakerId", "transcription", "action", "object", "location")
SLOTS = ("action", "object", "location")


def open_split(config):
    """`(FileSource, None)` of SUPERB's split `config.split` (train, dev = valid, test)."""
    check(config.split in CSV_FILES, "data.split", config.split,
          "train, dev or test (SUPERB's Fluent Speech Commands splits)")
    root = Path(config.root).expanduser()
    csv_path = root / "data" / CSV_FILES[config.split]
    if not csv_path.is_file():
        raise DataError(str(csv_path), "file not found (data.root: the fluent_speech_commands_dataset folder, "
                                       "with data/{train,valid,test}_data.csv)")
    return FileSource(read_split_csv(csv_path, root)), None


def read_split_csv(csv_path: Path, root: Path) -> list[Example]:
    """The utterances listed in one `data/*_data.csv`, audio paths resolved against `root`."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(str(csv_path), f"header has no {missing[0]!r} column "
                                           "(expected ,path,speakerId,transcription,action,object,location)")
        examples = []
        for row in reader:
            where = f"{csv_path}:{reader.line_num}"
            empty = [c for c in COLUMNS if not row.get(c)]
            if empty:
                raise DataError(where, f"no {empty[0]!r} value")
            slots = {s: row[s] for s in SLOTS}
            fields = {**slots, "speaker": row["speakerId"], "text": row["transcription"],
                      "intent": "|".join(slots[s] for s in SLOTS)}
            examples.append(Example(path=str(root / row["path"]), fields=fields, origin=where))
    if not examples:
        raise DataError(str(csv_path), "lists no utterances")
    return examples
