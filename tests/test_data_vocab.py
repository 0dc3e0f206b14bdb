"""Vocabularies (phones, chars, files) and class label maps."""

import json

import numpy as np
import pytest

from speechft_jax.data.errors import DataError
from speechft_jax.data.vocab import ClassLabels, Vocabulary


def test_build_phone_vocab_with_explicit_specials():
    v = Vocabulary.build(["AH B", "B K AH"], kind="phone")
    assert v.tokens == ("<blank>", "<pad>", "AH", "B", "K")
    assert (v.blank_id, v.pad_id) == (0, 1)
    ids = v.encode("K AH B")
    assert ids.dtype == np.int32 and ids.tolist() == [4, 2, 3]
    assert v.decode([0, 4, 4, 0, 2, 2, 3, 1], ctc=True) == "K AH B"
    assert v.decode([4, 4]) == "K K"


def test_char_vocab_word_delimiter():
    v = Vocabulary.build(["hi there"], kind="char")
    assert "|" in v.tokens and " " not in v.tokens
    assert v.decode(v.encode("hi  there")) == "hi there"


def test_unknown_token_and_wrong_type_errors():
    v = Vocabulary.build(["a b"], kind="phone")
    with pytest.raises(DataError, match=r"m.jsonl:3: phone 'z' is not in the vocabulary"):
        v.encode("a z", "m.jsonl:3")
    with pytest.raises(DataError, match="must be a string or a list of strings, got int"):
        v.encode(5, "x")
    with pytest.raises(DataError, match="'<pad>' is not in the vocabulary"):
        v.encode(["<pad>"], "x")  # a special token is never a label
    u = Vocabulary.build(["a b"], kind="phone", unk="<unk>")
    assert u.encode("a z").tolist() == [u.token_id("a"), u.unk_id]


def test_save_load_roundtrip_and_other_formats(tmp_path):
    v = Vocabulary.build(["x y z"], kind="phone")
    v.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == v
    # Hugging Face vocab.json: the pad token doubles as the CTC blank.
    (tmp_path / "vocab.json").write_text(json.dumps({"<pad>": 0, "<unk>": 1, "|": 2, "a": 3}))
    hf = Vocabulary.load(tmp_path / "vocab.json", kind="char")
    assert hf.blank_id == hf.pad_id == 0 and hf.unk_id == 1
    # Plain text, fairseq-style counts ignored; specials put first.
    (tmp_path / "dict.txt").write_text("AA 10\nB 4\n")
    t = Vocabulary.load(tmp_path / "dict.txt")
    assert t.tokens == ("<blank>", "<pad>", "AA", "B")
    (tmp_path / "gap.json").write_text(json.dumps({"<pad>": 0, "a": 2}))
    with pytest.raises(DataError, match="gap.json: token ids must be 0..n-1"):
        Vocabulary.load(tmp_path / "gap.json")


def test_class_labels(tmp_path):
    c = ClassLabels.build(["spk2", "spk1", "spk2"])
    assert c.names == ("spk1", "spk2") and c.index("spk2") == 1
    assert ClassLabels.build([3, 1]).index(3) == 1  # integer labels by name
    with pytest.raises(DataError, match=r"f:1: speaker 'spk9' is not one of the 2 known classes"):
        c.index("spk9", "f:1", "speaker")
    with pytest.raises(DataError, match="must be a string or an integer, got float"):
        c.index(1.5, "f:1")
    c.save(tmp_path / "c.txt")
    assert ClassLabels.load(tmp_path / "c.txt") == c
