"""SUPERB's IEMOCAP (ER), Fluent Speech Commands (IC) and QUESST 2014 (QbE) readers on tiny fake
trees in the official layouts: splits, folds, labels, counts, the QbE relevance matrix, and the
one-line errors for a missing or malformed file of the layout."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from speechft_jax.data.config import DataConfig
from speechft_jax.data.superb import fluent_commands, iemocap, quesst14
from speechft_jax.errors import ConfigError, DataError
from superb_trees import FSC_HEADER, KEPT_PER_SESSION, make_fluent, make_iemocap, make_quesst


def read(function, root: Path, split: str, **changes):
    """`function` (a reader module's `open_split` or `qbe_split`) on the data section of that
    module's dataset type at `root`."""
    dataset_type = function.__module__.rsplit(".", 1)[-1]
    return function(DataConfig(type=dataset_type, root=str(root), split=split, **changes))


# ---- IEMOCAP ---------------------------------------------------------------------------------

@pytest.fixture
def iemocap_root(tmp_path):
    return make_iemocap(tmp_path / "IEMOCAP_full_release")


def _iemocap(root, split, fold=1):
    return read(iemocap.open_split, root, split, fold=fold)


def test_iemocap_folds_split_sessions_and_keep_four_emotions(iemocap_root):
    for fold in (1, 4):
        (test, spec), (train, _), (dev, _) = (_iemocap(iemocap_root, s, fold) for s in ("test", "train", "dev"))
        assert spec.field == "emotion" and spec.classes.names == ("neu", "hap", "ang", "sad")
        ids = {s: [e.fields["id"] for e in src.examples] for s, src in (("test", test), ("train", train), ("dev", dev))}
        assert len(ids["test"]) == KEPT_PER_SESSION and all(i.startswith(f"Ses0{fold}") for i in ids["test"])
        pool = 4 * KEPT_PER_SESSION
        assert (len(ids["train"]), len(ids["dev"])) == (int(0.8 * pool), pool - int(0.8 * pool))
        assert not set(ids["train"]) & set(ids["dev"])
        assert not any(i.startswith(f"Ses0{fold}") for i in ids["train"] + ids["dev"])
        assert {i[:5] for i in ids["train"] + ids["dev"]} == {f"Ses0{n}" for n in range(1, 6) if n != fold}
    # the same tree gives the same split on every read
    assert [e.path for e in _iemocap(iemocap_root, "dev")[0].examples] == \
        [e.path for e in _iemocap(iemocap_root, "dev")[0].examples]


def test_iemocap_labels_speakers_and_audio(iemocap_root):
    source, spec = _iemocap(iemocap_root, "test", fold=2)
    by_id = {e.fields["id"]: e for e in source.examples}
    assert sorted(by_id) == sorted(["Ses02F_impro01_F000", "Ses02F_impro01_F001", "Ses02F_impro01_M000",
                                    "Ses02F_impro01_M002", "Ses02M_script01_1_F000", "Ses02M_script01_1_M001"])
    assert by_id["Ses02F_impro01_F001"].fields["emotion"] == "hap"  # exc merged
    assert by_id["Ses02F_impro01_M000"].fields == {"emotion": "ang", "speaker": "Ses02M", "id": "Ses02F_impro01_M000"}
    assert by_id["Ses02M_script01_1_F000"].fields["speaker"] == "Ses02F"
    counts = np.bincount([spec.encode(e.fields, "test") for e in source.examples], minlength=4)
    assert counts.tolist() == [2, 2, 1, 1]
    assert Path(source.examples[0].path) == (iemocap_root / "Session2/sentences/wav/Ses02F_impro01"
                                             / "Ses02F_impro01_F000.wav")
    assert source.load(0).shape == (1600,)


def test_iemocap_through_data_config(iemocap_root):
    source, spec = DataConfig(type="iemocap", root=str(iemocap_root), split="train", fold=5).source()
    assert len(source) == int(0.8 * 4 * KEPT_PER_SESSION)
    assert spec.classes.index("sad") == 3 and source.num_samples(0) == 1600


def test_iemocap_bad_layouts(iemocap_root, tmp_path):
    with pytest.raises(DataError, match=r"Session3/dialog/EmoEvaluation: folder not found"):
        (iemocap_root / "Session3/dialog/EmoEvaluation").rename(iemocap_root / "Session3/dialog/elsewhere")
        _iemocap(iemocap_root, "test", fold=3)
    with pytest.raises(DataError, match=r"Session3/dialog/EmoEvaluation: folder not found"):
        _iemocap(iemocap_root, "train", fold=1)  # train reads every other session
    with pytest.raises(DataError, match="nowhere: folder not found .*IEMOCAP release folder"):
        _iemocap(tmp_path / "nowhere", "test")
    label_file = iemocap_root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    label_file.write_text("[1.0 - 2.0] Ses01F_impro01_F000 neu [2.5, 2.5, 2.5]\n")  # spaces, not tabs
    with pytest.raises(DataError, match=r"Ses01F_impro01.txt:1: expected '\[start - end\]<TAB>"):
        _iemocap(iemocap_root, "test", fold=1)
    with pytest.raises(ConfigError, match="data.split='valid', expected train, dev or test"):
        _iemocap(iemocap_root, "valid")


# ---- Fluent Speech Commands ------------------------------------------------------------------

def test_fluent_commands_splits_and_fields(tmp_path):
    fluent_root = make_fluent(tmp_path / "fluent_speech_commands_dataset")
    sizes = {split: len(read(fluent_commands.open_split, fluent_root, split)[0]) for split in ("train", "dev", "test")}
    assert sizes == {"train": 3, "dev": 1, "test": 2}  # dev reads valid_data.csv
    source, spec = read(fluent_commands.open_split, fluent_root, "train")
    assert spec is None
    assert source.fields(2) == {"action": "bring", "object": "shoes", "location": "none",
                                "speaker": "4aGjX3AG5xcxeL7a", "text": "Bring me my shoes, please",
                                "intent": "bring|shoes|none"}
    assert source.fields(1)["intent"] == "increase|heat|kitchen"
    assert source.examples[1].path == str(fluent_root / "wavs/speakers/2BqVo8kVB2Skwgyb/train-0001.wav")
    assert source.load(1).shape == (1600,)
    assert source.origin(1).startswith(f"{fluent_root / 'data/train_data.csv'}:3")


def test_fluent_commands_through_data_config(tmp_path):
    fluent_root = make_fluent(tmp_path / "fluent_speech_commands_dataset")
    source, spec = DataConfig(type="fluent_commands", root=str(fluent_root), split="dev", field="intent").source()
    assert spec is None and [source.fields(i)["intent"] for i in range(len(source))] == ["activate|lights|none"]


def test_fluent_commands_bad_layouts(tmp_path):
    fluent_root = make_fluent(tmp_path / "fluent_speech_commands_dataset")
    (fluent_root / "data/train_data.csv").unlink()
    with pytest.raises(DataError, match=r"data/train_data.csv: file not found \(data.root: the "
                                        "fluent_speech_commands_dataset folder"):
        read(fluent_commands.open_split, fluent_root, "train")
    test_csv = fluent_root / "data/test_data.csv"
    test_csv.write_text(",path,speakerId,transcription,object,location\n0,a.wav,s,t,lights,none\n")
    with pytest.raises(DataError, match=r"test_data.csv: header has no 'action' column \(expected ,path,"):
        read(fluent_commands.open_split, fluent_root, "test")
    test_csv.write_text(FSC_HEADER + "\n0,wavs/a.wav,s,Lights on,activate,,none\n")
    with pytest.raises(DataError, match=r"test_data.csv:2: no 'object' value"):
        read(fluent_commands.open_split, fluent_root, "test")
    test_csv.write_text(FSC_HEADER + "\n")
    with pytest.raises(DataError, match=r"test_data.csv: lists no utterances"):
        read(fluent_commands.open_split, fluent_root, "test")
    with pytest.raises(ConfigError, match="data.split='validation', expected train, dev or test"):
        read(fluent_commands.open_split, fluent_root, "validation")


# ---- QUESST 2014 -----------------------------------------------------------------------------

def test_quesst14_queries_documents_and_hits(tmp_path):
    quesst_root = make_quesst(tmp_path / "quesst14Database")
    queries, documents, relevant = read(quesst14.qbe_split, quesst_root, "dev")
    assert [e.fields["id"] for e in documents.examples] == [f"quesst14_{n:05d}" for n in range(1, 5)]
    # dev query 3 has no hit and query 4 is Basque: both left out
    assert [e.fields["id"] for e in queries.examples] == ["quesst14_dev_0001", "quesst14_dev_0002"]
    assert relevant.dtype == bool
    assert relevant.tolist() == [[True, False, True, False], [False, True, False, False]]
    assert queries.examples[0].path == str(quesst_root / "dev_queries/quesst14_dev_0001.wav")
    assert documents.load(0).shape == (3200,)  # 8 kHz audio read at 16 kHz

    queries, documents, relevant = read(quesst14.qbe_split, quesst_root, "test")  # the eval queries
    # eval query 2 hits every document: MTWV needs a miss too, so it is left out
    assert [e.fields["id"] for e in queries.examples] == ["quesst14_eval_0001"]
    assert relevant.tolist() == [[False, False, False, True]] and len(documents) == 4


def test_quesst14_bad_layouts(tmp_path):
    quesst_root = make_quesst(tmp_path / "quesst14Database")
    with pytest.raises(ConfigError, match="data.split='train', expected dev or test"):
        read(quesst14.qbe_split, quesst_root, "train")
    with pytest.raises(ConfigError, match="is read by a qbe task"):
        quesst14.open_split(DataConfig(type="quesst14", root=str(quesst_root), split="dev"))
    (quesst_root / "scoring/groundtruth_quesst14_eval/quesst14_eval.rttm").unlink()
    with pytest.raises(DataError, match=r"quesst14_eval.rttm: file not found \(QUESST 2014's ground truth"):
        read(quesst14.qbe_split, quesst_root, "test")
    (quesst_root / "scoring/language_key_dev.lst").unlink()
    with pytest.raises(DataError, match=r"scoring/language_key_dev.lst: file not found"):
        read(quesst14.qbe_split, quesst_root, "dev")


DOCUMENT_LIST = "scoring/language_key_utterances.lst"


@pytest.mark.parametrize("file, content, message", [
    (DOCUMENT_LIST, "quesst14Database/Audio/quesst14_00001.wav czech",
     "language_key_utterances.lst: lists no nnenglish audio"),
    (DOCUMENT_LIST, "quesst14Database/Audio/quesst14_00001.wav",
     "language_key_utterances.lst:1: expected '<path> <language>'"),
    (DOCUMENT_LIST, "quesst14Database/Audio/quesst14_00004.wav nnenglish",  # a document no dev query hits
     "quesst14_dev.rttm: pairs none of the 3 nnenglish dev queries"),
    ("scoring/groundtruth_quesst14_dev/quesst14_dev.rttm", "LEXEME quesst14_00001 1",
     "quesst14_dev.rttm:1: expected 'LEXEME <document>"),
])
def test_quesst14_malformed_lists(tmp_path, file, content, message):
    quesst_root = make_quesst(tmp_path / "quesst14Database")
    (quesst_root / file).write_text(content + "\n")
    with pytest.raises(DataError, match=re.escape(message)):
        read(quesst14.qbe_split, quesst_root, "dev")
