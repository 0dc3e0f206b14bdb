"""SUPERB's LibriSpeech, Speech Commands v0.01 and VoxCeleb1 readers on tiny fake trees in the
official layouts (file names, transcripts, split lists), with demo-corpus audio."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from speechft_jax.data import DataError, decode_audio
from speechft_jax.data.config import DataConfig
from speechft_jax.data.labels import ClassLabel, SequenceLabels
from speechft_jax.data.superb import librispeech, speech_commands, voxceleb1
from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.features import source_description
from speechft_jax.tasks.definition import LabelDefinition, TaskDefinition
from superb_trees import IDEN_SPLIT, LIBRISPEECH, make_librispeech, make_speech_commands, make_voxceleb1


@pytest.fixture
def librispeech_root(demo_corpus_tiny, tmp_path):
    return make_librispeech(tmp_path, demo_corpus_tiny)


@pytest.fixture
def speech_commands_roots(demo_corpus_tiny, tmp_path):
    return make_speech_commands(tmp_path, demo_corpus_tiny)


@pytest.fixture
def voxceleb1_root(demo_corpus_tiny, tmp_path):
    return make_voxceleb1(tmp_path, demo_corpus_tiny)


# ---------------------------------------------------------------- LibriSpeech

def test_librispeech_splits_fields_and_characters(librispeech_root):
    source, spec = librispeech.open_split(DataConfig(type="librispeech", root=str(librispeech_root)))
    assert [source.fields(i) for i in range(len(source))] == [
        {"text": "CHAPTER ONE MISSUS RACHEL", "speaker": "103", "id": "103-1240-0000"},
        {"text": "THAT HAD ITS SOURCE AWAY BACK", "speaker": "103", "id": "103-1240-0001"},
        {"text": "IT'S THE HOUSE", "speaker": "1034", "id": "1034-121119-0000"}]
    assert source.examples[2].path == str(librispeech_root / "train-clean-100/1034/121119/1034-121119-0000.flac")
    assert source.load(0).ndim == 1 and source.origin(0).startswith(str(librispeech_root / "train-clean-100"))
    # SUPERB's character targets: fairseq's specials, `|`, A-Z and the apostrophe; `<s>` is the blank
    assert isinstance(spec, SequenceLabels) and spec.field == "text"
    assert spec.vocab.size == 32 and spec.vocab.blank_id == 0 and spec.vocab.tokens[4] == "|"
    assert set(spec.vocab.tokens[4:]) == set("|'ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    ids = spec.encode(source.fields(2), "x")
    assert spec.vocab.decode(ids) == "IT'S THE HOUSE" and list(ids).count(spec.vocab.token_id("|")) == 2
    # the parent of LibriSpeech/ works too; dev and test, and an official subset by name
    parent = str(librispeech_root.parent)
    for split, count in (("dev", 1), ("test", 2), ("test-clean", 2)):
        assert len(librispeech.open_split(DataConfig(type="librispeech", root=parent, split=split))[0]) == count
    # phones from a lexicon, or a vocabulary file: the task's label settings decide
    assert librispeech.open_split(DataConfig(type="librispeech", root=parent, lexicon="lex.txt"))[1] is None
    assert librispeech.open_split(DataConfig(type="librispeech", root=parent, vocab="chars.txt"))[1] is None


def test_librispeech_phone_recognition_reads_a_g2p_lexicon(librispeech_root, tmp_path):
    words = {w for subset in LIBRISPEECH.values() for spk in subset.values() for lines in spk.values()
             for line in lines for w in line.split()}
    lexicon = tmp_path / "librispeech-lexicon-allothers-g2p.txt"
    # s3prl's g2p lexicon lines: WORD<TAB>PH PH ...; the first pronunciation of a word wins
    lexicon.write_text("THE\tDH AH0\nTHE\tDH IY1\n" + "".join(f"{w}\t{' '.join(c + '1' for c in w if c != chr(39))}\n"
                                                              for w in sorted(words - {"THE"})))
    data = DataConfig(type="librispeech", root=str(librispeech_root), field="text", lexicon=str(lexicon))
    task = TaskDefinition("pr", "ctc", {"train": data}, labels=LabelDefinition.of(data))
    source, spec = task.open("train")
    assert source.fields(2)["phones"] == "I T S DH AH H O U S E"
    assert spec.field == "phones" and "DH" in spec.vocab.tokens and "IY" not in spec.vocab.tokens


def test_librispeech_bad_layouts(librispeech_root):
    root = str(librispeech_root)
    with pytest.raises(ConfigError, match=r"^data.split='other', expected train, dev, test .*test-other$"):
        librispeech.open_split(DataConfig(type="librispeech", root=root, split="other"))
    with pytest.raises(DataError, match=r"dev-other: folder not found \(LibriSpeech's dev-other;"):
        librispeech.open_split(DataConfig(type="librispeech", root=root, split="dev-other"))
    chapter = librispeech_root / "test-clean/1089/134686"
    (chapter / "1089-134686-0001.flac").unlink()
    with pytest.raises(DataError, match=r"1089-134686.trans.txt:2: audio file 1089-134686-0001.flac not found"):
        librispeech.open_split(DataConfig(type="librispeech", root=root, split="test"))
    (chapter / "1089-134686.trans.txt").unlink()
    with pytest.raises(DataError, match=r"134686/1089-134686.trans.txt: transcript file not found"):
        librispeech.open_split(DataConfig(type="librispeech", root=root, split="test"))


# ----------------------------------------------------------- Speech Commands

def _ks(root, split, test_root=None):
    return speech_commands.open_split(DataConfig(type="speech_commands", root=str(root), split=split,
                                                 test_root=test_root and str(test_root)))


def test_speech_commands_splits_labels_and_silence_crops(speech_commands_roots):
    root, test_root = speech_commands_roots
    train, spec = _ks(root, "train")
    assert isinstance(spec, ClassLabel) and spec.field == "label"
    assert spec.classes.names == ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
                                  "_unknown_", "_silence_")
    fields = [train.fields(i) for i in range(len(train))]
    # every word file in neither list; other words are _unknown_; then the noise crops
    assert [(f["id"], f["label"]) for f in fields[:5]] == [
        ("bed/0c2d2ffa_nohash_0", "_unknown_"), ("marvin/0d2bcf9d_nohash_0", "_unknown_"),
        ("no/0c40e715_nohash_0", "no"), ("yes/0a7c2a8d_nohash_0", "yes"), ("yes/0a7c2a8d_nohash_1", "yes")]
    crops = [(f["id"], f["segment_start"]) for f in fields[5:]]
    assert crops == [("_background_noise_/running_tap/0", 0), ("_background_noise_/white_noise/0", 0),
                     ("_background_noise_/white_noise/1", 16000)]
    assert {f["label"] for f in fields[5:]} == {"_silence_"}
    whole = decode_audio(root / "_background_noise_" / "white_noise.wav")
    assert train.num_samples(7) == 16000 and np.array_equal(train.load(7), whole[16000:32000])
    dev, _ = _ks(root, "dev")
    assert [dev.fields(i)["label"] for i in range(len(dev))] == ["_unknown_", "yes", "_silence_"]
    assert dev.fields(2)["segment_start"] == 32000 and np.array_equal(dev.load(2), whole[32000:48000])
    assert dev.origin(0).startswith(f"{root / 'validation_list.txt'}:2")
    test, test_spec = _ks(root, "test", test_root)
    labels = [test.fields(i)["label"] for i in range(len(test))]
    assert len(test) == 13 and labels.count("yes") == 2 and set(labels) == set(spec.classes.names)
    assert test_spec == spec and test.load(0).shape == (16000,)
    # the feature cache key tells the crops of one file apart
    described = source_description(train)["files"]
    assert described[6][0] == described[7][0] and described[6] != described[7]
    # root: the folder both archives were unpacked into, each in its own folder; no test_root needed
    both = root.parent
    assert [len(_ks(both, split)[0]) for split in ("train", "dev", "test")] == [len(train), len(dev), len(test)]


def test_speech_commands_bad_layouts(speech_commands_roots):
    root, test_root = speech_commands_roots
    with pytest.raises(ConfigError, match=r"^data.test_root is not set: split test of speech_commands reads"):
        _ks(root, "test")
    shutil.rmtree(test_root / "_silence_")
    with pytest.raises(DataError, match=r"_silence_: folder not found \(data.test_root must be the unpacked"):
        _ks(root, "test", test_root)
    with pytest.raises(DataError, match=r"speech_commands_v0.01/up: folder not found"):
        _ks(root, "test", root)  # the train archive is no test set
    (root / "bed/1a5b9ca4_nohash_0.wav").unlink()
    with pytest.raises(DataError, match=r"validation_list.txt:2: bed/1a5b9ca4_nohash_0.wav not found under"):
        _ks(root, "dev")
    (root / "validation_list.txt").unlink()
    with pytest.raises(DataError, match=r"validation_list.txt: file not found \(data.root must be the unpacked"):
        _ks(root, "train")
    with pytest.raises(ConfigError, match=r"^data.split='validation', expected train, dev or test$"):
        _ks(root, "validation")


# ------------------------------------------------------------------ VoxCeleb1

def _sid(root, split, path=None):
    return voxceleb1.open_split(DataConfig(type="voxceleb1", root=str(root), split=split, path=path and str(path)))


def test_voxceleb1_splits_and_1251_classes(voxceleb1_root):
    train, spec = _sid(voxceleb1_root, "train")
    assert [train.fields(i)["id"] for i in range(len(train))] == [
        "id10001/1zcIwhmdeo4/00001", "id10001/7w0IBEWc9Qw/00001", "id10002/C7k7C-PDvAA/00001"]
    assert [train.fields(i)["speaker"] for i in range(len(train))] == ["id10001", "id10001", "id10002"]
    assert train.origin(1).startswith(f"{voxceleb1_root / 'iden_split.txt'}:3")
    assert isinstance(spec, ClassLabel) and spec.field == "speaker" and len(spec.classes) == 1251
    assert spec.classes.names[0] == "id10001" and spec.classes.names[-1] == "id11251"
    assert spec.encode(train.fields(2), "x") == 1 and spec.classes.index("id10270") == 269
    assert len(_sid(voxceleb1_root, "dev")[0]) == 1
    with pytest.raises(ConfigError, match=r"^data.split='valid', expected train, dev or test$"):
        _sid(voxceleb1_root, "valid")
    test, _ = _sid(voxceleb1_root, "test")
    assert [e.path for e in test.examples] == [str(voxceleb1_root / "dev/wav/id10002/C7k7C-PDvAA/00002.wav"),
                                               str(voxceleb1_root / "test/wav/id10270/5r0dWxy17C8/00001.wav")]
    # the split file elsewhere (data.path), and a single wav/ folder
    moved = voxceleb1_root.parent / "lists" / "iden_split.txt"
    moved.parent.mkdir()
    (voxceleb1_root / "iden_split.txt").rename(moved)
    shutil.copytree(voxceleb1_root / "dev" / "wav", voxceleb1_root.parent / "single" / "wav")
    assert len(_sid(voxceleb1_root.parent / "single", "train", moved)[0]) == 3


@pytest.mark.parametrize("lines,message", [
    (IDEN_SPLIT[:3] + ["1 id10003/x6uYqmx31kE/00001.wav"],
     r"iden_split.txt:4: id10003/x6uYqmx31kE/00001.wav not found under .*voxceleb1/\*/wav/$"),
    (IDEN_SPLIT[:1] + ["4 id10001/1zcIwhmdeo4/00002.wav"],
     r"iden_split.txt:2: expected '<1\|2\|3> idNNNNN/<video>/NNNNN.wav', got '4 id10001"),
    (["1 id20001/abc/00001.wav"], r"iden_split.txt:1: speaker 'id20001' is not one of VoxCeleb1's 1,251"),
    (["2 id10001/1zcIwhmdeo4/00002.wav"], r"iden_split.txt: lists no train utterances \(lines starting 1\)"),
    (None, r"iden_split.txt: split file not found \(VoxCeleb1's iden_split.txt: set data.path to it"),
])
def test_voxceleb1_bad_split_files(voxceleb1_root, lines, message):
    split_file = voxceleb1_root / "iden_split.txt"
    if lines is None:
        split_file.unlink()
    else:
        split_file.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(DataError, match=message):
        _sid(voxceleb1_root, "train")


# ------------------------------------------------------------ through DataConfig

def test_data_config_reads_each_dataset(librispeech_root, speech_commands_roots, voxceleb1_root):
    root, test_root = speech_commands_roots
    for data, count, classes in [
            (DataConfig(type="librispeech", root=str(librispeech_root), split="dev"), 1, None),
            (DataConfig(type="speech_commands", root=str(root), test_root=str(test_root), split="test"), 13, 12),
            (DataConfig(type="voxceleb1", root=str(voxceleb1_root), split="dev"), 1, 1251)]:
        source, spec = data.source()
        assert len(source) == count and source.load(0).ndim == 1
        assert (len(spec.classes) if classes else spec.vocab.size) == (classes or 32)
