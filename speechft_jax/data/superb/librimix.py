"""Libri2Mix as SUPERB's speaker diarization (SD) reads it: `open_split`.

SUPERB's recipe generates Libri2Mix (2 speakers, 16 kHz, `max` mode, `mix_both`: speech + WHAM
noise, from train-clean-100 / dev-clean / test-clean) with the s3prl fork of LibriMix, whose
`scripts/prepare_diarization.py` writes a Kaldi-style folder per split. Two layouts are read:
- Kaldi (what the recipe trains on): `root/{train,dev,test}/` each with `wav.scp`
  (`<recording> <path>`, the path absolute or relative to that split folder) and `rttm` (the
  reference segments, `SPEAKER <recording> 1 <start> <duration> <NA> <NA> <speaker> <NA>`); the
  folder's `segments`, `utt2spk` and `reco2dur` say the same again and are not read. A recording
  of `wav.scp` with no line in `rttm` is an error naming both files.
- LibriMix's own metadata (what `prepare_diarization.py` reads): `root` = the generated
  `Libri2Mix/wav16k/max` folder, whose `metadata/mixture_<set>_mix_both.csv` (set `train-100`, or
  `train` in some forks, `dev`, `test`) lists the mixtures by `mixture_ID`
  (`<speaker>-<chapter>-<utterance>_<speaker>-<chapter>-<utterance>`), their audio at
  `<set>/mix_both/<mixture_ID>.wav`; `path` = the fork's `metadata/LibriSpeech` folder, whose
  `{train_clean_100,dev_clean,test_clean}.rttm` give each LibriSpeech utterance's speech segments
  (recording `<chapter>-<utterance>`). In `max` mode both sources start at the mixture's start,
  so a mixture's segments are its two sources' segments.
Each recording is one utterance: fields `id` (the recording) and `segments`
`[[start_seconds, end_seconds, speaker], ...]`; label spec `SpeakerActivityLabels("segments", 2,
0.02)`, two speakers at a 20 ms frame.
"""

from __future__ import annotations

import csv
from pathlib import Path

from speechft_jax.config_loading import check
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import SpeakerActivityLabels
from speechft_jax.data.manifest import Example
from speechft_jax.data.rttm import Segment, read_rttm
from speechft_jax.data.source import FileSource
from speechft_jax.errors import ConfigError

SPLITS = ("train", "dev", "test")
# SUPERB's split -> the metadata CSVs' set names (the first found is read) and the LibriSpeech RTTM
MIXTURE_SETS = {"train": ("train-100", "train"), "dev": ("dev",), "test": ("test",)}
SOURCE_RTTMS = {"train": "train_clean_100.rttm", "dev": "dev_clean.rttm", "test": "test_clean.rttm"}
LABELS = SpeakerActivityLabels("segments", num_speakers=2, frame_seconds=0.02)


def open_split(config):
    """`(FileSource, SpeakerActivityLabels)` of SUPERB's split `config.split` (module docstring)."""
    check(config.split in SPLITS, "data.split", config.split, "train, dev or test (SUPERB's Libri2Mix splits)")
    root = Path(config.root).expanduser()
    if (root / config.split / "wav.scp").is_file():
        return FileSource(_kaldi_split(root / config.split)), LABELS
    if (root / "metadata").is_dir():
        return FileSource(_metadata_split(root, config.split, config.path)), LABELS
    raise DataError(str(root), f"has neither {config.split}/wav.scp (the Kaldi-style folders of s3prl's "
                               "prepare_diarization.py) nor metadata/ (a generated Libri2Mix/wav16k/max folder)")


def _kaldi_split(folder: Path) -> list[Example]:
    wav_scp, rttm = folder / "wav.scp", folder / "rttm"
    if not rttm.is_file():
        raise DataError(str(rttm), f"file not found (the reference segments of {wav_scp})")
    segments = read_rttm(rttm)
    examples = []
    for number, line in enumerate(wav_scp.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        where = f"{wav_scp}:{number}"
        if len(parts) != 2:
            raise DataError(where, f"{line.strip()!r}, expected '<recording> <audio path>'")
        recording, path = parts[0], parts[1].strip()
        if path.endswith("|") or path == "-":
            raise DataError(where, f"{path!r} is a Kaldi pipe; expected the path of an audio file")
        if recording not in segments:
            raise DataError(where, f"recording {recording!r} has no SPEAKER line in {rttm}")
        audio = folder / path  # an absolute path stays as it is
        if not audio.is_file():
            raise DataError(where, f"{audio} not found")
        examples.append(_recording(audio, recording, segments[recording], where))
    if not examples:
        raise DataError(str(wav_scp), "lists no recordings")
    return examples


def _metadata_split(root: Path, split: str, rttm_folder: str | None) -> list[Example]:
    candidates = [root / "metadata" / f"mixture_{name}_mix_both.csv" for name in MIXTURE_SETS[split]]
    csv_path = next((p for p in candidates if p.is_file()), None)
    if csv_path is None:
        raise DataError(str(candidates[0]), "file not found (Libri2Mix's mix_both metadata of SUPERB's "
                                            f"{split} split, under data.root = Libri2Mix/wav16k/max)")
    if not rttm_folder:
        raise ConfigError("data.path is not set: expected the folder of LibriMix's LibriSpeech RTTMs "
                          "(metadata/LibriSpeech in s3prl's LibriMix fork) to read Libri2Mix's metadata")
    sources = read_rttm(Path(rttm_folder).expanduser() / SOURCE_RTTMS[split])
    mixture_set = csv_path.name.removeprefix("mixture_").removesuffix("_mix_both.csv")
    examples = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "mixture_ID" not in (reader.fieldnames or ()):
            raise DataError(str(csv_path), "header has no 'mixture_ID' column (expected mixture_ID,"
                                           "mixture_path,source_1_path,source_2_path,noise_path,length)")
        for row in reader:
            where, mixture = f"{csv_path}:{reader.line_num}", row["mixture_ID"] or ""
            utterances = mixture.split("_")
            if len(utterances) != 2 or not all(u.count("-") == 2 for u in utterances):
                raise DataError(where, f"mixture_ID {mixture!r}, expected '<speaker>-<chapter>-<utterance>_"
                                       "<speaker>-<chapter>-<utterance>'")
            segments = []
            for utterance in utterances:
                speaker, recording = utterance.split("-", 1)
                if recording not in sources:
                    raise DataError(where, f"source {utterance} has no SPEAKER line for {recording!r} in "
                                           f"{Path(rttm_folder) / SOURCE_RTTMS[split]}")
                segments += [(start, end, speaker) for start, end, _ in sources[recording]]
            audio = root / mixture_set / "mix_both" / f"{mixture}.wav"
            if not audio.is_file():
                raise DataError(where, f"{audio} not found")
            examples.append(_recording(audio, mixture, segments, where))
    if not examples:
        raise DataError(str(csv_path), "lists no mixtures")
    return examples


def _recording(audio: Path, recording: str, segments: list[Segment], where: str) -> Example:
    fields = {"id": recording, "segments": [[start, end, speaker] for start, end, speaker in segments]}
    return Example(str(audio), fields, origin=where)
