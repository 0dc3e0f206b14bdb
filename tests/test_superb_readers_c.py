"""SUPERB's VoxCeleb1 verification (ASV), Libri2Mix (SD) and audio SNIPS (SF) readers, and the RTTM
files diarization reads and writes, on tiny fake trees in the official layouts: splits, fields,
label specs, trial lists, segments, slot targets, and the one-line errors for a missing or
malformed file of the layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from speechft_jax.config_loading import build
from speechft_jax.data.config import DataConfig
from speechft_jax.data.labels import ClassLabel, SequenceLabels, SpeakerActivityLabels, TrialLabels
from speechft_jax.data.manifest import Example
from speechft_jax.data.rttm import read_rttm, write_rttm
from speechft_jax.data.superb import librimix, open_dataset, snips, voxceleb1_sv
from speechft_jax.data.trials import read_trials, trial_split
from speechft_jax.errors import ConfigError, DataError
from speechft_jax.evaluate.slot_filling import parse_slots
from superb_trees import (LIBRIMIX, LIBRIMIX_RTTMS, SV_DEV, VERI_TEST, make_librimix_kaldi, make_librimix_metadata,
                          make_snips, make_voxceleb1_sv)


def read(module, root: Path, split: str, **changes):
    """`module.open_split` on the data section of that module's dataset type at `root`."""
    return module.open_split(DataConfig(type=module.__name__.rsplit(".", 1)[-1], root=str(root), split=split,
                                        **changes))


# ---- RTTM ------------------------------------------------------------------------------------

def test_rttm_reads_speaker_lines_and_writes_superb_hypotheses(tmp_path):
    path = tmp_path / "ref.rttm"
    path.write_text("SPKR-INFO rec1 1 <NA> <NA> <NA> unknown spk1 <NA>\n"
                    "SPEAKER rec1 1   0.190   2.970 <NA> <NA> spk1 <NA> <NA>\n"
                    "\n"
                    "SPEAKER\trec2\t1\t1.5\t0.25\t<NA>\t<NA>\tspk2\t<NA>\n"
                    "LEXEME rec1 1 0.5 0.2 hello lex spk1 <NA>\n"
                    "SPEAKER rec1 1 4.000 1.000 <NA> <NA> spk2 <NA>\n")
    segments = read_rttm(path)
    assert list(segments) == ["rec1", "rec2"]
    assert segments["rec1"] == [(0.19, pytest.approx(3.16), "spk1"), (4.0, 5.0, "spk2")]
    assert segments["rec2"] == [(1.5, 1.75, "spk2")]
    out = tmp_path / "hyp.rttm"
    write_rttm(out, {"b": [(0.0, 1.23456, "b_1")], "a": [(2.5, 2.75, "a_0"), (3.0, 4.0, "a_1")]})
    assert out.read_text().splitlines() == ["SPEAKER b 1 0.000 1.235 <NA> <NA> b_1 <NA>",
                                            "SPEAKER a 1 2.500 0.250 <NA> <NA> a_0 <NA>",
                                            "SPEAKER a 1 3.000 1.000 <NA> <NA> a_1 <NA>"]
    assert read_rttm(out) == {"b": [(0.0, 1.235, "b_1")], "a": [(2.5, 2.75, "a_0"), (3.0, 4.0, "a_1")]}
    assert not list(tmp_path.glob(".*tmp*"))  # written through a temporary file, nothing left over


@pytest.mark.parametrize("line, message", [
    ("SPEAKER rec 1 0.5 1.0 <NA> <NA>", "SPEAKER line has 7 fields"),
    ("SPEAKER rec 1 start 1.0 <NA> <NA> spk <NA>", "start 'start' and duration '1.0' must be numbers"),
    ("SPEAKER rec 1 0.5 -1.0 <NA> <NA> spk <NA>", "start 0.5 and duration -1.0 must be finite and >= 0"),
])
def test_rttm_malformed_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.rttm"
    path.write_text(f"SPEAKER rec 1 0.0 1.0 <NA> <NA> spk <NA>\n{line}\n")
    with pytest.raises(DataError, match=f"^{path}:2: {message}"):
        read_rttm(path)
    with pytest.raises(DataError, match="nowhere.rttm: RTTM file not found"):
        read_rttm(tmp_path / "nowhere.rttm")


# ---- trial lists -----------------------------------------------------------------------------

def test_trial_split_indexes_distinct_utterances_in_order_of_mention(tmp_path):
    a, b, c = (Example(f"/x/{name}.wav", {"speaker": name[0]}, origin=name) for name in ("a1", "a2", "c1"))
    source, labels = trial_split([(a, b, 1), (a, c, 0), (Example("/x/c1.wav", origin="again"), b, 0)], "made")
    assert [e.origin for e in source.examples] == ["a1", "a2", "c1"]
    assert labels.trials.tolist() == [[0, 1, 1], [0, 2, 0], [2, 1, 0]] and labels.names == "made"
    with pytest.raises(DataError, match="^made: has only target trials"):
        trial_split([(a, b, 1)], "made")
    with pytest.raises(DataError, match="^made: lists no trials"):
        trial_split([], "made")
    # read_trials builds on it: the same source and trials from a file
    (tmp_path / "list.txt").write_text("1 a/1.wav a/2.wav\n\n0 a/1.wav c/1.wav\n")
    source, labels = read_trials(tmp_path / "list.txt", tmp_path / "wav")
    assert [e.fields for e in source.examples] == [{"speaker": "a", "id": "a/1"}, {"speaker": "a", "id": "a/2"},
                                                   {"speaker": "c", "id": "c/1"}]
    assert source.examples[2].origin == f"{tmp_path / 'list.txt'}:3" and labels.trials.tolist() == [[0, 1, 1],
                                                                                                     [0, 2, 0]]


# ---- VoxCeleb1 verification (ASV) -------------------------------------------------------------

@pytest.fixture
def sv_root(demo_corpus_tiny, tmp_path):
    return make_voxceleb1_sv(tmp_path, demo_corpus_tiny)


def test_voxceleb1_sv_train_leaves_out_held_out_speakers_and_short_utterances(sv_root):
    assert [s for s in SV_DEV if voxceleb1_sv.held_out(s)] == ["id10027", "id10046", "id10049"]
    source, spec = read(voxceleb1_sv, sv_root, "train")
    # id10003 has only a 1 s utterance, so it is no class; the held-out speakers are none either
    assert isinstance(spec, ClassLabel) and spec.field == "speaker" and spec.classes.names == ("id10001", "id10002")
    assert [e.fields for e in source.examples] == [
        {"speaker": "id10001", "id": "id10001/v0/00001"}, {"speaker": "id10001", "id": "id10001/v1/00002"},
        {"speaker": "id10002", "id": "id10002/v0/00001"}, {"speaker": "id10002", "id": "id10002/v1/00002"}]
    assert source.examples[0].path == str(sv_root / "dev/wav/id10001/v0/00001.wav")
    for i in range(len(source)):  # lengths from the header, kept: the same as the decoded audio
        assert source.num_samples(i) == source.load(i).shape[0] >= voxceleb1_sv.MIN_SAMPLES
    assert [spec.encode(e.fields, "x") for e in source.examples] == [0, 0, 1, 1]


def test_voxceleb1_sv_dev_trials_are_balanced_over_held_out_speakers(sv_root):
    source, labels = read(voxceleb1_sv, sv_root, "dev")
    assert isinstance(labels, TrialLabels)
    speakers = [e.fields["speaker"] for e in source.examples]
    assert set(speakers) == {"id10027", "id10046", "id10049"}
    # every utterance of a speaker with two or more is an enrolment once: 5 target, 5 non-target
    trials = labels.trials
    assert trials.shape == (10, 3) and trials[:, 2].tolist() == [1, 0] * 5
    assert len({int(t[0]) for t in trials}) == 5
    for enrolment, test, target in trials.tolist():
        assert (speakers[enrolment] == speakers[test]) == bool(target) and enrolment != test
    assert all(Path(e.path).is_file() for e in source.examples)
    # the same tree gives the same list
    again = read(voxceleb1_sv, sv_root, "dev")
    assert [e.path for e in again[0].examples] == [e.path for e in source.examples]
    assert np.array_equal(again[1].trials, trials)


def test_voxceleb1_sv_test_reads_the_official_list_or_a_given_one(sv_root, tmp_path):
    source, labels = read(voxceleb1_sv, sv_root, "test")
    assert [e.fields["id"] for e in source.examples] == ["id10270/v0/00001", "id10270/v1/00002",
                                                         "id10271/v0/00001", "id10270/v2/00003"]
    assert labels.trials.tolist() == [[0, 1, 1], [0, 2, 0], [1, 3, 1], [2, 3, 0]]
    assert source.examples[3].path == str(sv_root / "test/wav/id10270/v2/00003.wav")
    assert labels.names == str(sv_root / "veri_test.txt")
    # `trials` replaces the list: for test relative to test/wav, for dev to dev/wav
    mine = tmp_path / "voxceleb1_test_v2.txt"
    mine.write_text(VERI_TEST[1] + "\n" + VERI_TEST[2] + "\n")
    assert read(voxceleb1_sv, sv_root, "test", trials=str(mine))[1].trials.tolist() == [[0, 1, 0], [2, 3, 1]]
    dev_list = tmp_path / "dev_trials.txt"
    dev_list.write_text("1 id10027/v0/00001.wav id10027/v2/00003.wav\n0 id10027/v0/00001.wav id10046/v0/00001.wav\n")
    source, labels = read(voxceleb1_sv, sv_root, "dev", trials=str(dev_list))
    assert source.examples[2].path == str(sv_root / "dev/wav/id10046/v0/00001.wav") and len(labels.trials) == 2
    # through the data section, `trials` found beside the config like any local path
    data = DataConfig(type="voxceleb1_sv", root=str(sv_root), split="test", trials="voxceleb1_test_v2.txt")
    source, labels = data.resolved([tmp_path]).source()
    assert labels.names == str(mine) and len(source) == 4


def test_voxceleb1_sv_bad_inputs(sv_root, tmp_path):
    with pytest.raises(ConfigError, match=r"^data.trials='list.txt' is set for the train split"):
        read(voxceleb1_sv, sv_root, "train", trials="list.txt")
    with pytest.raises(ConfigError, match=r"trials='t.txt', expected it unset for type voxceleb1 "
                                          r"\(it is for type voxceleb1_sv, manifest, folder\)"):
        build(DataConfig, {"type": "voxceleb1", "trials": "t.txt"}, source="")
    with pytest.raises(ConfigError, match=r"^data.split='eval', expected train, dev or test"):
        read(voxceleb1_sv, sv_root, "eval")
    with pytest.raises(DataError, match=r"nowhere: folder not found \(data.root"):
        read(voxceleb1_sv, tmp_path / "nowhere", "test")
    bad = tmp_path / "bad.txt"
    bad.write_text(VERI_TEST[0] + "\n1 id10270/v0/00001.wav\n")
    with pytest.raises(DataError, match=rf"^{bad}:2: '1 id10270/v0/00001.wav', expected `<1\|0> <enrolment path>"):
        read(voxceleb1_sv, sv_root, "test", trials=str(bad))
    bad.write_text(VERI_TEST[0] + "\n0 id10270/v0/00001.wav id10299/v0/00001.wav\n")
    with pytest.raises(DataError, match=rf"^{bad}:2: .*id10299/v0/00001.wav not found"):
        read(voxceleb1_sv, sv_root, "test", trials=str(bad))
    (sv_root / "veri_test.txt").unlink()
    with pytest.raises(DataError, match=r"veri_test.txt: trial list not found .*set data.trials to it"):
        read(voxceleb1_sv, sv_root, "test")
    for speaker in ("id10046", "id10049"):
        shutil.rmtree(sv_root / "dev/wav" / speaker)
    with pytest.raises(DataError, match=r"held-out dev speakers.*: has 1 speaker\(s\); dev trials need 2 or more"):
        read(voxceleb1_sv, sv_root, "dev")
    shutil.rmtree(sv_root / "dev")
    with pytest.raises(DataError, match=r"dev/wav: folder not found \(the unzipped vox1_dev_wav.zip"):
        read(voxceleb1_sv, sv_root, "train")


# ---- Libri2Mix (SD) ---------------------------------------------------------------------------

def _expected_segments(split: str, recording: str) -> list:
    return [(start, end, speaker) for speaker, turns in LIBRIMIX[split][recording].items() for start, end in turns]


def _rounded(segments) -> list:
    """Segments with their times to the microsecond (an RTTM stores a duration, not the end)."""
    return [(round(start, 6), round(end, 6), speaker) for start, end, speaker in segments]


def test_librimix_kaldi_folders_give_recordings_and_their_segments(demo_corpus_tiny, tmp_path):
    root = make_librimix_kaldi(tmp_path, demo_corpus_tiny)
    source, spec = read(librimix, root, "train")
    assert spec == SpeakerActivityLabels("segments", 2, 0.02)
    recordings = list(LIBRIMIX["train"])
    assert [e.fields["id"] for e in source.examples] == recordings
    for example, recording in zip(source.examples, recordings):
        assert _rounded(example.fields["segments"]) == _expected_segments("train", recording)
    # wav.scp's paths: absolute, or relative to the split's folder
    assert source.examples[0].path == str(tmp_path / "Libri2Mix/train" / f"{recordings[0]}.wav")
    assert source.examples[1].path == str(root / "train/wav" / f"{recordings[1]}.wav")
    assert source.origin(1).startswith(f"{root / 'train/wav.scp'}:2")
    activity = spec.encode(source.fields(0), "x")
    assert activity.shape == (88, 2) and activity[:, 0].any() and activity[:, 1].any()
    assert (activity.sum(axis=1) == 2).any()  # the speakers overlap
    for split in ("dev", "test"):
        assert len(DataConfig(type="librimix", root=str(root), split=split).source()[0]) == 1


def test_librimix_metadata_layout_matches_the_kaldi_folders(demo_corpus_tiny, tmp_path):
    kaldi = make_librimix_kaldi(tmp_path / "k", demo_corpus_tiny)
    root, rttms = make_librimix_metadata(tmp_path / "m", demo_corpus_tiny)
    for split in ("train", "dev", "test"):
        from_metadata, spec = read(librimix, root, split, path=str(rttms))
        from_kaldi, _ = read(librimix, kaldi, split)
        assert spec == librimix.LABELS
        assert [e.fields["id"] for e in from_metadata.examples] == [e.fields["id"] for e in from_kaldi.examples]
        for ours, theirs in zip(from_metadata.examples, from_kaldi.examples):
            assert _rounded(ours.fields["segments"]) == _rounded(theirs.fields["segments"])
    recording = list(LIBRIMIX["train"])[0]
    source, _ = read(librimix, root, "train", path=str(rttms))
    assert source.examples[0].path == str(root / "train-100/mix_both" / f"{recording}.wav")  # not the CSV's stale path
    assert source.load(0).ndim == 1
    # a fork that names the train set `train`
    (root / "metadata/mixture_train-100_mix_both.csv").rename(root / "metadata/mixture_train_mix_both.csv")
    (root / "train-100").rename(root / "train")
    assert read(librimix, root, "train", path=str(rttms))[0].examples[0].path == \
        str(root / "train/mix_both" / f"{recording}.wav")


def test_librimix_bad_layouts(demo_corpus_tiny, tmp_path):
    root = make_librimix_kaldi(tmp_path / "k", demo_corpus_tiny)
    with pytest.raises(DataError, match=r"nowhere: has neither train/wav.scp .* nor metadata/"):
        read(librimix, tmp_path / "nowhere", "train")
    with pytest.raises(ConfigError, match=r"^data.split='valid', expected train, dev or test"):
        read(librimix, root, "valid")
    scp, rttm = root / "train/wav.scp", root / "train/rttm"
    recordings = list(LIBRIMIX["train"])
    rttm.write_text("".join(line + "\n" for line in rttm.read_text().splitlines() if recordings[1] not in line))
    with pytest.raises(DataError, match=rf"^{scp}:2: recording '{recordings[1]}' has no SPEAKER line in {rttm}$"):
        read(librimix, root, "train")
    rttm.unlink()
    with pytest.raises(DataError, match=rf"^{rttm}: file not found \(the reference segments of {scp}\)"):
        read(librimix, root, "train")
    dev_scp = root / "dev/wav.scp"
    dev_scp.write_text(f"{list(LIBRIMIX['dev'])[0]} sox in.flac -t wav - |\n")
    with pytest.raises(DataError, match=rf"^{dev_scp}:1: 'sox in.flac -t wav - \|' is a Kaldi pipe"):
        read(librimix, root, "dev")
    dev_scp.write_text(f"{list(LIBRIMIX['dev'])[0]} gone.wav\n")
    with pytest.raises(DataError, match=rf"^{dev_scp}:1: {root / 'dev/gone.wav'} not found"):
        read(librimix, root, "dev")
    dev_scp.write_text("lonely\n")
    with pytest.raises(DataError, match=rf"^{dev_scp}:1: 'lonely', expected '<recording> <audio path>'"):
        read(librimix, root, "dev")

    root, rttms = make_librimix_metadata(tmp_path / "m", demo_corpus_tiny)
    with pytest.raises(ConfigError, match=r"^data.path is not set: expected the folder of LibriMix's LibriSpeech"):
        read(librimix, root, "test")
    (rttms / LIBRIMIX_RTTMS["test"]).write_text("SPEAKER 99999-0001 1 0.0 1.0 <NA> <NA> 4242 <NA> <NA>\n")
    test_csv = root / "metadata/mixture_test_mix_both.csv"
    with pytest.raises(DataError, match=rf"^{test_csv}:2: source 1089-134686-0000 has no SPEAKER line for "
                                        r"'134686-0000'"):
        read(librimix, root, "test", path=str(rttms))
    test_csv.write_text("mixture_ID,mixture_path,length\nnot-a-mixture,x.wav,10\n")
    with pytest.raises(DataError, match=rf"^{test_csv}:2: mixture_ID 'not-a-mixture', expected"):
        read(librimix, root, "test", path=str(rttms))
    test_csv.unlink()
    with pytest.raises(DataError, match=r"mixture_test_mix_both.csv: file not found \(Libri2Mix's mix_both metadata"):
        read(librimix, root, "test", path=str(rttms))


# ---- audio SNIPS (SF) -------------------------------------------------------------------------

@pytest.fixture
def snips_root(tmp_path):
    return make_snips(tmp_path)


def test_snips_splits_by_voice_with_slot_targets(snips_root):
    source, spec = read(snips, snips_root, "train")
    assert [e.fields["id"] for e in source.examples] == [f"{voice}-snips-train-{n}" for n in range(3)
                                                         for voice in ("Ivy", "Joanna")]  # not Aditi's
    first = source.fields(0)
    assert first == {"slots": "P L A Y | S O M E | B-genre R O C K E-genre | B Y | B-artist T H E | "
                              "B E A T L E S E-artist",
                     "text": "PLAY SOME ROCK BY THE BEATLES", "intent": "PlayMusic", "speaker": "Ivy",
                     "id": "Ivy-snips-train-0"}
    assert source.examples[0].path == str(snips_root / "train/Ivy-snips-train-0.wav")
    # `?` is dropped (no trailing separator), `&` read AND
    assert source.fields(2)["slots"] == "W H A T | I S | T H E | W E A T H E R | I N | B-city N E W | Y O R K E-city"
    assert parse_slots(source.fields(4)["slots"].split()) == [("genre", "R AND B"), ("playlist", "ROAD TRIP")]
    assert parse_slots(first["slots"].split()) == [("genre", "ROCK"), ("artist", "THE BEATLES")]
    # the vocabulary: blank, pad, unk, SUPERB's 28 characters, B-/E- per slot of slots.txt (O skipped)
    assert isinstance(spec, SequenceLabels) and spec.field == "slots"
    assert spec.vocab.tokens[:4] == ("<blank>", "<pad>", "<unk>", "|") and spec.vocab.blank_id == 0
    assert spec.vocab.tokens[-8:] == ("B-artist", "E-artist", "B-city", "E-city", "B-genre", "E-genre",
                                      "B-playlist", "E-playlist")
    assert spec.vocab.size == 3 + 28 + 8
    ids = spec.encode(first, "x")
    assert spec.vocab.decode(ids).split() == first["slots"].split()
    accented = spec.vocab.encode(snips.slot_target(["BEYONCÉ"], ["artist"]).split())
    assert accented.tolist()[-2] == spec.vocab.unk_id and accented[0] == spec.vocab.token_id("B-artist")
    (dev, _), (test, _) = read(snips, snips_root, "dev"), read(snips, snips_root, "test")
    assert [e.fields["speaker"] for e in dev.examples] == ["Aditi", "Amy"]  # not Brian's valid reading
    assert [e.fields["id"] for e in test.examples] == ["Brian-snips-test-0"]
    assert test.fields(0)["slots"] == "P L A Y | B-artist A D E L E ' S E-artist | H E L L O"
    assert DataConfig(type="snips", root=str(snips_root), split="test").source()[0].load(0).shape == (1600,)


def test_snips_bad_layouts(snips_root):
    transcripts, slots = snips_root / "all.iob.snips.txt", snips_root / "slots.txt"
    lines = transcripts.read_text().splitlines()
    for bad, message in [
        (lines[0].replace("\t", " "), "expected '<Voice>-snips-<set>-<n> BOS <WORDS> EOS<TAB>O <tag per word>"),
        (lines[0].replace(" genre ", " "), "6 words but 7 labels"),
        (lines[0].replace("Ivy-snips-train-0", "Ivy-train-0"), "utterance id 'Ivy-train-0'"),
        (lines[0].replace("genre", "mood"), f"slot 'mood' is not in {slots}"),
    ]:
        transcripts.write_text("\n".join([lines[1], bad] + lines[2:]) + "\n")
        with pytest.raises(DataError, match=f"^{transcripts}:2: .*{message}"):
            read(snips, snips_root, "train")
    transcripts.write_text("\n".join(lines) + "\n")
    (snips_root / "train/Joanna-snips-train-1.wav").unlink()
    with pytest.raises(DataError, match=r"all.iob.snips.txt:5: .*train/Joanna-snips-train-1.wav not found"):
        read(snips, snips_root, "train")
    slots.write_text("O\n")
    with pytest.raises(DataError, match=r"slots.txt: lists no slot types after its first line"):
        read(snips, snips_root, "dev")
    slots.unlink()
    with pytest.raises(DataError, match=r"slots.txt: file not found \(data.root: the prepared SNIPS folder"):
        read(snips, snips_root, "dev")


def test_new_dataset_types_open_through_open_dataset(snips_root):
    source, spec = open_dataset(DataConfig(type="snips", root=str(snips_root), split="dev"))
    assert len(source) == 2 and spec.field == "slots"
    with pytest.raises(ConfigError, match="data.root is not set"):
        open_dataset(DataConfig(type="librimix", split="dev"))
