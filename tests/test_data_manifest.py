"""Manifests (JSONL, TSV, fairseq TSV), audio folders, and their errors."""

import json
import warnings

import pytest

from speechft_jax.data.errors import DataError
from speechft_jax.data.manifest import read_manifest, scan_audio_folder, write_manifest
from speechft_jax.data.source import FileSource


def test_jsonl_relative_paths_and_fields(tmp_path, data_wav_factory):
    data_wav_factory("audio/a.wav", seconds=0.5)
    write_manifest(tmp_path / "m.jsonl", [
        {"path": "audio/a.wav", "duration": 0.5, "speaker": "s1", "text": "hello"},
        {"path": str(tmp_path / "audio/a.wav"), "speaker": 7},
    ])
    examples = read_manifest(tmp_path / "m.jsonl")
    assert [e.origin for e in examples] == [f"{tmp_path}/m.jsonl:1", f"{tmp_path}/m.jsonl:2"]
    assert examples[0].path == str(tmp_path / "audio/a.wav")
    assert examples[0].duration == 0.5 and examples[1].duration is None
    assert examples[0].fields == {"speaker": "s1", "text": "hello"}
    source = FileSource(examples)
    assert source.num_samples(0) == 8000 and source.num_samples(1) == 8000


def test_tsv_and_fairseq_tsv(tmp_path, data_wav_factory):
    data_wav_factory("x/a.flac", seconds=0.25)
    (tmp_path / "m.tsv").write_text("path\tduration\tkeyword\nx/a.flac\t0.25\tyes\n")
    (ex,) = read_manifest(tmp_path / "m.tsv")
    assert ex.fields == {"keyword": "yes"} and ex.duration == 0.25
    (tmp_path / "train.tsv").write_text(f"{tmp_path / 'x'}\na.flac\t4000\n")
    (ex,) = read_manifest(tmp_path / "train.tsv")
    assert ex.path == str(tmp_path / "x" / "a.flac") and ex.duration == 0.25


def test_bad_lines_name_file_and_line(tmp_path):
    m = tmp_path / "bad.jsonl"
    m.write_text('{"path": "a.wav"}\n{"path": "b.wav", oops}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: line is not valid JSON"):
        read_manifest(m)
    m.write_text('{"path": "a.wav", "duration": "long"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: 'duration' must be a number"):
        read_manifest(m)
    m.write_text('{"file": "a.wav"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: missing 'path'"):
        read_manifest(m)
    t = tmp_path / "bad.tsv"
    t.write_text("path\tlabel\na.wav\tx\tEXTRA\n")
    with pytest.raises(DataError, match=r"bad.tsv:2: expected 2 tab-separated columns"):
        read_manifest(t)
    with pytest.raises(DataError, match="nothere.jsonl: manifest file not found"):
        read_manifest(tmp_path / "nothere.jsonl")


def test_skip_bad_counts_in_one_warning(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text('{"path": "a.wav"}\nnot json\n[1, 2]\n{"path": "b.wav"}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        examples = read_manifest(m, skip_bad=True)
    assert [e.path.split("/")[-1] for e in examples] == ["a.wav", "b.wav"]
    assert len(caught) == 1 and "skipped 2 bad example(s)" in str(caught[0].message)


def test_missing_file_found_before_decoding(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"path": "gone.wav", "duration": 1.0}) + "\n")
    source = FileSource.from_manifest(m)
    with pytest.raises(DataError, match=r"m.jsonl:1 \(.*gone.wav\): audio file not found"):
        source.num_samples(0)


def test_scan_folder_labels_and_transcripts(tmp_path, data_wav_factory):
    data_wav_factory("yes/1.wav", seconds=0.1)
    data_wav_factory("no/2.flac", seconds=0.1)
    (tmp_path / "yes/1.txt").write_text("yes\n")
    (tmp_path / "no/2.txt").write_text("no\n")
    examples = scan_audio_folder(tmp_path, label_field="keyword", transcripts=True)
    assert [(e.fields["keyword"], e.fields["text"]) for e in examples] == [("no", "no"), ("yes", "yes")]
    with pytest.raises(DataError, match="audio folder not found"):
        scan_audio_folder(tmp_path / "nope")
