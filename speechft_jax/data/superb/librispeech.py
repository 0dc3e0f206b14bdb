"""LibriSpeech as downloaded from openslr 12 (SUPERB's ASR and phone recognition): `open_split`.

`root` is the `LibriSpeech/` folder (or the folder holding it). SUPERB's splits are the subsets
train-clean-100, dev-clean and test-clean; any official subset name is accepted as `split` too.
A chapter folder `<subset>/<speaker>/<chapter>/` holds `<speaker>-<chapter>-<utt>.flac` and the
transcript `<speaker>-<chapter>.trans.txt`, one line `<speaker>-<chapter>-<utt> <UPPER-CASE WORDS>`
per utterance. Fields: `text` (the transcript), `speaker`, `id` (the utterance id).
ASR's labels are SUPERB's character targets (`CHARACTERS`); for phone recognition the task's
lexicon turns `text` into phones (data/lexicon.py), so no label spec is fixed then.
"""

from __future__ import annotations

import os
from pathlib import Path

from speechft_jax.config_loading import check
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import SequenceLabels
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import FileSource
from speechft_jax.data.vocab import Vocabulary

SUPERB_SUBSETS = {"train": "train-clean-100", "dev": "dev-clean", "test": "test-clean"}
SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean",
           "test-other")

# SUPERB's ASR dictionary: fairseq's four specials, then the word separator, the letters and the
# apostrophe in the order of s3prl's char.dict (by frequency); `<s>` is the CTC blank (32 outputs).
CHARACTERS = Vocabulary(("<s>", "<pad>", "</s>", "<unk>") + tuple("|ETAONIHSRDLUMCWFGYPBVK'XJQZ"), kind="char",
                        blank="<s>", pad="<pad>", unk="<unk>")


def _chapter_examples(chapter: Path, speaker: str) -> list[Example]:
    """The utterances of one chapter folder, in its transcript's order."""
    transcript = chapter / f"{speaker}-{chapter.name}.trans.txt"
    if not transcript.is_file():
        raise DataError(str(transcript), "transcript file not found (every LibriSpeech chapter folder has one)")
    present = set(os.listdir(chapter))
    examples = []
    for number, line in enumerate(transcript.read_text(encoding="utf-8").splitlines(), 1):
        utterance, _, text = line.strip().partition(" ")
        where = f"{transcript}:{number}"
        if not utterance:
            continue
        if not text.strip():
            raise DataError(where, f"expected '<utterance id> <TRANSCRIPT>', got {line.strip()!r}")
        if f"{utterance}.flac" not in present:
            raise DataError(where, f"audio file {utterance}.flac not found beside the transcript")
        examples.append(Example(str(chapter / f"{utterance}.flac"),
                                {"text": " ".join(text.split()), "speaker": speaker, "id": utterance}, origin=where))
    return examples


def open_split(config):
    """`(FileSource, label spec or None)` of LibriSpeech's `config.split` under `config.root`: the
    fixed character spec for ASR; None where a `lexicon` (phones) or a `vocab` file decides."""
    check(config.split in SUPERB_SUBSETS or config.split in SUBSETS, "data.split", config.split,
          "train, dev, test (SUPERB's subsets) or a LibriSpeech subset: " + ", ".join(SUBSETS))
    root = Path(config.root)
    if (root / "LibriSpeech").is_dir():
        root = root / "LibriSpeech"
    subset = SUPERB_SUBSETS.get(config.split, config.split)
    folder = root / subset
    if not folder.is_dir():
        raise DataError(str(folder), f"folder not found (LibriSpeech's {subset}; data.root must be the "
                                     "LibriSpeech/ folder the openslr archives unpack into, or its parent)")
    examples = []
    for speaker in sorted(p for p in folder.iterdir() if p.is_dir()):
        for chapter in sorted(p for p in speaker.iterdir() if p.is_dir()):
            examples += _chapter_examples(chapter, speaker.name)
    if not examples:
        raise DataError(str(folder), "holds no <speaker>/<chapter>/ folders with transcripts")
    spec = None if config.lexicon or config.vocab else SequenceLabels("text", CHARACTERS)
    return FileSource(examples), spec
