"""Audio SNIPS as SUPERB prepares it (slot filling, SF): `open_split`.

`root` is the prepared `SNIPS` folder: `train/`, `valid/` and `test/` hold
`<Voice>-snips-<set>-<n>.wav` (16 synthetic voices read every sentence of every set),
`all.iob.snips.txt` one line per utterance, `<id> BOS <WORDS> EOS<TAB>O <tag per word> <intent>`
(a tag is a slot type or `O`), and `slots.txt` the tags, one a line, `O` first. SUPERB splits by
voice (`VOICES`): train = the train set read by 8 voices, dev = the valid set read by 4 others,
test = the test set read by the last 4. Every listed utterance of a split's voices must have its
wav; the wavs of other voices are not read.

Fields: `slots`, SUPERB's `character-slot` target as space-separated tokens: per word, `B-<slot>`
before its first character where a slot span starts (a tag differing from the word before's), its
characters, `E-<slot>` after its last where the span ends, and `|` between words (SUPERB's space);
the words `? ! . , ; -` are dropped (spans still start and end by the words around them, as in
SUPERB's encoder) and `&` is read `AND`. Also `text` (the words), `intent`, `speaker` (the voice)
and `id`. Label spec: `SequenceLabels("slots", ...)` over `<blank> <pad> <unk>`, the characters
`|` A-Z `'`, and `B-`/`E-` of each slot of `slots.txt`; a character outside them (a stray accent)
is read as `<unk>`, as SUPERB's encoder reads it.
"""

from __future__ import annotations

from pathlib import Path

from speechft_jax.config_loading import check
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import SequenceLabels
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import FileSource
from speechft_jax.data.vocab import BLANK, PAD, UNK, WORD_DELIMITER, Vocabulary

# SUPERB's split -> (SNIPS's set = the audio folder, the voices reading it)
VOICES = {
    "train": ("train", ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli")),
    "dev": ("valid", ("Aditi", "Amy", "Geraint", "Nicole")),
    "test": ("test", ("Brian", "Emma", "Raveena", "Russell")),
}
CHARACTERS = (WORD_DELIMITER,) + tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + ("'",)
DROPPED_WORDS = frozenset("?!.,;-")
TRANSCRIPTS, SLOTS = "all.iob.snips.txt", "slots.txt"


def open_split(config):
    """`(FileSource, SequenceLabels("slots", ...))` of SUPERB's split `config.split` (module docstring)."""
    check(config.split in VOICES, "data.split", config.split, "train, dev or test (SUPERB's SNIPS splits by voice)")
    root = Path(config.root).expanduser()
    for name in (TRANSCRIPTS, SLOTS):
        if not (root / name).is_file():
            raise DataError(str(root / name), "file not found (data.root: the prepared SNIPS folder with "
                                              f"train/, valid/, test/, {TRANSCRIPTS} and {SLOTS})")
    slot_types = read_slot_types(root / SLOTS)
    snips_set, voices = VOICES[config.split]
    examples = []
    for number, line in enumerate((root / TRANSCRIPTS).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{root / TRANSCRIPTS}:{number}"
        utterance, words, tags, intent = _parse_line(line, where)
        voice, _, line_set = utterance.split("-")[:3]
        if line_set != snips_set or voice not in voices:
            continue
        unknown = sorted({t for t in tags if t != "O" and t not in slot_types})
        if unknown:
            raise DataError(where, f"slot {unknown[0]!r} is not in {root / SLOTS}")
        audio = root / snips_set / f"{utterance}.wav"
        if not audio.is_file():
            raise DataError(where, f"{audio} not found")
        examples.append(Example(str(audio), origin=where, fields={
            "slots": slot_target(words, tags), "text": " ".join(words), "intent": intent,
            "speaker": voice, "id": utterance}))
    if not examples:
        raise DataError(str(root / TRANSCRIPTS), f"lists no {snips_set} utterance of the voices {', '.join(voices)}")
    markers = tuple(f"{edge}-{slot}" for slot in slot_types for edge in ("B", "E"))
    vocab = Vocabulary((BLANK, PAD, UNK) + CHARACTERS + markers, kind="phone", unk=UNK)
    return FileSource(examples), SequenceLabels("slots", vocab)


def read_slot_types(path: Path) -> tuple[str, ...]:
    """The slot types of `slots.txt`: its lines after the first (`O`), blank lines skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    slots = tuple(line.strip() for line in lines[1:] if line.strip())
    if not slots:
        raise DataError(str(path), "lists no slot types after its first line (O)")
    return slots


def _parse_line(line: str, where: str) -> tuple[str, list[str], list[str], str]:
    """`(utterance id, words, tag per word, intent)` of one `all.iob.snips.txt` line."""
    expected = "expected '<Voice>-snips-<set>-<n> BOS <WORDS> EOS<TAB>O <tag per word> <intent>'"
    sentence, tab, labels = line.partition("\t")
    sentence, labels = sentence.split(), labels.split()
    if not tab or len(sentence) < 3 or sentence[1] != "BOS" or sentence[-1] != "EOS":
        raise DataError(where, expected)
    if sentence[0].count("-") != 3 or sentence[0].split("-")[1] != "snips":
        raise DataError(where, f"utterance id {sentence[0]!r}, {expected}")
    words = sentence[2:-1]
    if len(labels) != len(words) + 2 or labels[0] != "O":
        raise DataError(where, f"{len(words)} words but {len(labels)} labels after the tab, expected "
                               f"{len(words) + 2} (O, a tag per word, the intent)")
    return sentence[0], words, labels[1:-1], labels[-1]


def slot_target(words: list[str], tags: list[str]) -> str:
    """SUPERB's `character-slot` tokens of a tagged sentence, space-separated (module docstring)."""
    pieces = []
    for i, (word, tag) in enumerate(zip(words, tags)):
        if word in DROPPED_WORDS:
            continue
        tokens = list("AND" if word == "&" else word)
        # spans are told by the neighbouring words' tags before punctuation is dropped, as in SUPERB
        if tag != "O" and (i == 0 or tags[i - 1] != tag):
            tokens.insert(0, f"B-{tag}")
        if tag != "O" and (i == len(words) - 1 or tags[i + 1] != tag):
            tokens.append(f"E-{tag}")
        pieces.append(" ".join(tokens))
    return f" {WORD_DELIMITER} ".join(pieces)
