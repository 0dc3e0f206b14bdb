"""Speech Commands v0.01 as downloaded (SUPERB's keyword spotting, KS): `open_split`.

`root` is the unpacked `speech_commands_v0.01.tar.gz`: `<word>/<speaker hash>_nohash_<n>.wav`,
`_background_noise_/*.wav`, `validation_list.txt` and `testing_list.txt` (lines `<word>/<file>.wav`).
`test_root` is the unpacked `speech_commands_test_set_v0.01.tar.gz`: `<label>/*.wav`, its folders
named by SUPERB's labels, `_unknown_` and `_silence_` included. `root` may instead be the folder
holding both, unpacked into `speech_commands_v0.01/` and `speech_commands_test_set_v0.01/` (then
`test_root` is not needed).
SUPERB's 12 classes (`CLASSES`, in its index order): ten words, `_unknown_` (every other word) and
`_silence_`. dev is the validation list; train every other word file in neither list (the testing
list gives way to the separate test set). The lists are what the dataset's hash rule gives (SHA-1
of the file name up to `_nohash_`: 10 % validation, 10 % testing), the rule SUPERB's recipe
recomputes instead of reading them, so both split alike.
`_silence_` in train and dev: consecutive 1 s crops of each background-noise file; dev takes the
last tenth of a file's crops (rounded up; none from a file of one crop), train the others, so
the two never share noise. Field: `label`.
"""

from __future__ import annotations

import os
from pathlib import Path

from speechft_jax.config_loading import check
from speechft_jax.data.audio import SAMPLE_RATE, audio_num_samples
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import ClassLabel
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import SEGMENT_SAMPLES, SEGMENT_START, FileSource, SegmentFileSource
from speechft_jax.data.vocab import ClassLabels
from speechft_jax.errors import ConfigError

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
CLASSES = WORDS + (UNKNOWN, SILENCE)
NOISE_FOLDER = "_background_noise_"
CROP_SAMPLES = SAMPLE_RATE  # a `_silence_` utterance is 1 s of background noise
TRAIN_ARCHIVE, TEST_ARCHIVE = "speech_commands_v0.01.tar.gz", "speech_commands_test_set_v0.01.tar.gz"
# `root` may also hold both archives unpacked side by side, each in a folder named after it
TRAIN_FOLDER, TEST_FOLDER = "speech_commands_v0.01", "speech_commands_test_set_v0.01"


def _listed(root: Path, name: str) -> dict[str, str]:
    """`{<word>/<file>.wav: "list:line"}` of a split list of the train archive."""
    path = root / name
    if not path.is_file():
        raise DataError(str(path), f"file not found (data.root must be the unpacked {TRAIN_ARCHIVE})")
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.strip(): f"{path}:{number}" for number, line in enumerate(lines, 1) if line.strip()}


def _word_example(root: Path, relative: str, origin: str = "") -> Example:
    word = relative.split("/")[0]
    return Example(str(root / relative), {"label": word if word in WORDS else UNKNOWN, "id": relative[:-len(".wav")]},
                   origin=origin)


def _silence_crops(root: Path, split: str) -> list[Example]:
    """This split's 1 s crops of the background-noise files (module docstring)."""
    folder = root / NOISE_FOLDER
    if not folder.is_dir():
        raise DataError(str(folder), f"folder not found (data.root must be the unpacked {TRAIN_ARCHIVE})")
    crops = []
    for path in sorted(folder.glob("*.wav")):
        count = audio_num_samples(path) // CROP_SAMPLES
        dev_count = (count + 9) // 10 if count > 1 else 0
        chosen = range(count - dev_count, count) if split == "dev" else range(count - dev_count)
        crops += [Example(str(path), {"label": SILENCE, "id": f"{NOISE_FOLDER}/{path.stem}/{k}",
                                      SEGMENT_START: k * CROP_SAMPLES, SEGMENT_SAMPLES: CROP_SAMPLES},
                          origin=f"1 s crop {k}") for k in chosen]
    if not crops:
        raise DataError(str(folder), f"gives no 1 s {split} crops of background noise")
    return crops


def _test_examples(test_root: str | None) -> list[Example]:
    if not test_root:
        raise ConfigError(f"data.test_root is not set: split test of speech_commands reads the unpacked {TEST_ARCHIVE} "
                          f"(or set data.root to the folder holding {TRAIN_FOLDER}/ and {TEST_FOLDER}/)")
    folder = Path(test_root)
    if not folder.is_dir():
        raise DataError(str(folder), f"folder not found (data.test_root: the unpacked {TEST_ARCHIVE})")
    missing = [label for label in CLASSES if not (folder / label).is_dir()]
    if missing:
        raise DataError(str(folder / missing[0]), f"folder not found (data.test_root must be the unpacked "
                                                  f"{TEST_ARCHIVE}, one folder per label)")
    examples = []
    for label_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
        if label_folder.name not in CLASSES:
            raise DataError(str(label_folder), f"is not one of SUPERB's 12 labels ({', '.join(CLASSES)}); "
                                               f"data.test_root must be the unpacked {TEST_ARCHIVE}")
        examples += [Example(str(path), {"label": label_folder.name, "id": f"{label_folder.name}/{path.stem}"})
                     for path in sorted(label_folder.glob("*.wav"))]
    return examples


def open_split(config):
    """`(source, ClassLabel("label", CLASSES))` of SUPERB's split `config.split` of Speech Commands."""
    check(config.split in ("train", "dev", "test"), "data.split", config.split, "train, dev or test")
    spec = ClassLabel("label", ClassLabels(CLASSES))
    root, test_root = Path(config.root), config.test_root
    if (root / TRAIN_FOLDER).is_dir():  # the folder both archives were unpacked into, each in its own folder
        root, test_root = root / TRAIN_FOLDER, test_root or str(root / TEST_FOLDER)
    if config.split == "test":
        return FileSource(_test_examples(test_root)), spec
    if not root.is_dir():
        raise DataError(str(root), f"folder not found (data.root: the unpacked {TRAIN_ARCHIVE})")
    validation, testing = _listed(root, "validation_list.txt"), _listed(root, "testing_list.txt")
    present = {f"{folder.name}/{name}" for folder in root.iterdir() if folder.is_dir() and folder.name != NOISE_FOLDER
               for name in os.listdir(folder) if name.endswith(".wav")}
    if config.split == "dev":
        for relative, where in validation.items():
            if relative not in present:
                raise DataError(where, f"{relative} not found under {root}")
        words = [_word_example(root, relative, where) for relative, where in sorted(validation.items())]
    else:
        words = [_word_example(root, relative) for relative in sorted(present - validation.keys() - testing.keys())]
    return SegmentFileSource(words + _silence_crops(root, config.split)), spec
