"""Phone labels through a pronunciation lexicon, and the manifest data type of training configs."""

import json

import pytest

from speechft_jax.data import DataError, FileSource
from speechft_jax.data.config import DataConfig
from speechft_jax.data.lexicon import PhoneticSource, read_lexicon
from speechft_jax.train.config import TaskConfig
from speechft_jax.train.task_data import build_task_data


def _lexicon_from_corpus(root, path):
    """A lexicon of the corpus's own words: each word's phones, read off utterances of one word."""
    words = sorted({w for line in (root / "asr.jsonl").read_text().splitlines()
                    for w in json.loads(line)["text"].upper().split()})
    path.write_text("".join(f"{w} {' '.join(c + '1' for c in w)}\n" for w in words) + "THE DH AH0\n")
    return words


def test_read_lexicon(tmp_path):
    path = tmp_path / "lex.txt"
    path.write_text("HELLO HH AH0 L OW1\nHELLO HH EH0 L OW1\n\nWORLD W ER1 L D\n")
    assert read_lexicon(path) == {"HELLO": ("HH", "AH", "L", "OW"), "WORLD": ("W", "ER", "L", "D")}
    assert read_lexicon(path, strip_stress=False)["HELLO"] == ("HH", "AH0", "L", "OW1")
    path.write_text("HELLO\n")
    with pytest.raises(DataError, match=r"lex.txt:1: expected 'WORD PHONE \.\.\.'"):
        read_lexicon(path)
    with pytest.raises(DataError, match="lexicon file not found"):
        read_lexicon(tmp_path / "missing.txt")


def test_phonetic_source_adds_phones_and_names_unknown_words(demo_corpus_tiny, tmp_path):
    _lexicon_from_corpus(demo_corpus_tiny, tmp_path / "lex.txt")
    source = PhoneticSource(FileSource.from_manifest(demo_corpus_tiny / "asr.jsonl"), read_lexicon(tmp_path / "lex.txt"))
    fields = source.fields(0)
    first_word = fields["text"].split()[0].upper()
    assert fields["phones"].split()[:len(first_word)] == list(first_word)
    (tmp_path / "small.txt").write_text("ZEBRA Z IY B R AH\n")
    broken = PhoneticSource(source.source, read_lexicon(tmp_path / "small.txt"))
    with pytest.raises(DataError, match="is not in the lexicon"):
        broken.fields(0)


def test_manifest_task_with_lexicon_builds_a_phone_vocabulary(demo_corpus_tiny, tmp_path):
    words = _lexicon_from_corpus(demo_corpus_tiny, tmp_path / "lex.txt")
    task = TaskConfig(name="pr", kind="ctc", batch_size=2, data=DataConfig(
        type="manifest", path=str(demo_corpus_tiny / "asr.jsonl"), field="text", lexicon=str(tmp_path / "lex.txt")))
    data = build_task_data(task, seed=0, normalize=False, process_index=0, process_count=1)
    letters = {c for w in words for c in w}
    assert set(data.labels.tokens) == {"<blank>", "<pad>"} | letters
    batch = next(iter(data.loader))
    assert batch["labels"].shape[0] == 2 and batch["label_mask"].sum() > 0
    data.loader.close()
