"""Tiny fake trees of SUPERB's datasets in their official layouts (file names, transcripts, split
lists, CSV headers, label files), with demo-corpus audio or short generated noise: what the
reader tests and the SUPERB config tests read. `make_*(parent, ...)` returns the dataset's root."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from speechft_jax.data.superb import speech_commands


def demo_audio(corpus: Path, count: int) -> list[Path]:
    """The first `count` English sentences of a built demo corpus."""
    return sorted((corpus / "audio" / "en").glob("*.flac"))[:count]


def copy_wav(source: Path, path: Path) -> None:
    """`source` (any soundfile format) written as a wav at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    audio, rate = sf.read(source, dtype="float32")
    sf.write(path, audio, rate)


def write_wav(path: Path, rate: int = 16000, samples: int = 1600) -> None:
    """Short seeded noise as a wav at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.random.default_rng(len(path.name)).standard_normal(samples).astype(np.float32), rate)


# ---- LibriSpeech

LIBRISPEECH = {  # subset -> speaker -> chapter -> transcripts
    "train-clean-100": {"103": {"1240": ["CHAPTER ONE MISSUS RACHEL", "THAT HAD ITS SOURCE AWAY BACK"]},
                        "1034": {"121119": ["IT'S THE HOUSE"]}},
    "dev-clean": {"1272": {"128104": ["MISTER QUILTER IS THE APOSTLE"]}},
    "test-clean": {"1089": {"134686": ["HE HOPED THERE WOULD BE STEW", "STUFF IT INTO YOU"]}},
}


def make_librispeech(parent: Path, corpus: Path):
    """`<tmp>/LibriSpeech/<subset>/<spk>/<chapter>/{<spk>-<chapter>-<utt>.flac, <spk>-<chapter>.trans.txt}`."""
    audio = iter(demo_audio(corpus, 6))
    for subset, speakers in LIBRISPEECH.items():
        for speaker, chapters in speakers.items():
            for chapter, lines in chapters.items():
                folder = parent / "LibriSpeech" / subset / speaker / chapter
                folder.mkdir(parents=True)
                ids = [f"{speaker}-{chapter}-{n:04d}" for n in range(len(lines))]
                for utterance in ids:
                    shutil.copy(next(audio), folder / f"{utterance}.flac")
                (folder / f"{speaker}-{chapter}.trans.txt").write_text(
                    "".join(f"{u} {line}\n" for u, line in zip(ids, lines)))
    return parent / "LibriSpeech"


# ---- Speech Commands v0.01

TRAIN_WORDS = {"yes": ["0a7c2a8d_nohash_0", "0a7c2a8d_nohash_1", "0b09edd3_nohash_0"],
               "no": ["0c40e715_nohash_0", "1b4c9b89_nohash_0"], "bed": ["0c2d2ffa_nohash_0", "1a5b9ca4_nohash_0"],
               "marvin": ["0d2bcf9d_nohash_0"]}
VALIDATION = ["yes/0b09edd3_nohash_0.wav", "bed/1a5b9ca4_nohash_0.wav"]
TESTING = ["no/1b4c9b89_nohash_0.wav"]
NOISE_SECONDS = {"white_noise": 3.5, "running_tap": 1.2}  # 3 crops (2 train, 1 dev) and 1 crop (train)


def make_speech_commands(parent: Path, corpus: Path):
    """The train archive's and the test archive's folders, each in its official layout."""
    sources = sorted((corpus / "audio" / "ks").glob("*.flac"))
    root, test_root = parent / "speech_commands_v0.01", parent / "speech_commands_test_set_v0.01"
    for n, (word, names) in enumerate(TRAIN_WORDS.items()):
        for k, name in enumerate(names):
            copy_wav(sources[3 * n + k], root / word / f"{name}.wav")
    (root / "validation_list.txt").write_text("".join(line + "\n" for line in VALIDATION))
    (root / "testing_list.txt").write_text("".join(line + "\n" for line in TESTING))
    (root / "README.md").write_text("Speech Commands\n")
    rng = np.random.default_rng(0)
    for name, seconds in NOISE_SECONDS.items():
        (root / "_background_noise_").mkdir(exist_ok=True)
        sf.write(root / "_background_noise_" / f"{name}.wav", rng.uniform(-0.3, 0.3, int(seconds * 16000)), 16000)
    for n, label in enumerate(speech_commands.CLASSES):
        for k in range(2 if label == "yes" else 1):
            copy_wav(sources[n + k], test_root / label / f"{label}_{k}_nohash_0.wav")
    return root, test_root


# ---- VoxCeleb1

IDEN_SPLIT = ["1 id10001/1zcIwhmdeo4/00001.wav", "2 id10001/1zcIwhmdeo4/00002.wav", "1 id10001/7w0IBEWc9Qw/00001.wav",
              "1 id10002/C7k7C-PDvAA/00001.wav", "3 id10002/C7k7C-PDvAA/00002.wav", "3 id10270/5r0dWxy17C8/00001.wav"]


def make_voxceleb1(parent: Path, corpus: Path):
    """`<root>/{dev,test}/wav/idNNNNN/<video>/NNNNN.wav` and `<root>/iden_split.txt`."""
    root = parent / "voxceleb1"
    for line, source in zip(IDEN_SPLIT, demo_audio(corpus, len(IDEN_SPLIT))):
        relative = line.split()[1]
        copy_wav(source, root / ("test" if relative.startswith("id10270") else "dev") / "wav" / relative)
    (root / "iden_split.txt").write_text("".join(line + "\n" for line in IDEN_SPLIT))
    return root


# ---- IEMOCAP

# per session: (dialog, [(turn, label)]); exc counts as hap, xxx / fru / sur are dropped
IEMOCAP_DIALOGS = [("F_impro01", [("F000", "neu"), ("F001", "exc"), ("M000", "ang"), ("M001", "xxx"),
                                  ("M002", "sad")]),
                   ("M_script01_1", [("F000", "hap"), ("M000", "fru"), ("M001", "neu"), ("F001", "sur")])]
KEPT_PER_SESSION = 6


def make_iemocap(root: Path) -> Path:
    for session in range(1, 6):
        session_dir = root / f"Session{session}"
        labels = session_dir / "dialog" / "EmoEvaluation"
        labels.mkdir(parents=True)
        (labels / "Categorical").mkdir()  # the release's per-evaluator folders are not dialogs
        (labels / "Categorical" / f"Ses0{session}F_impro01_e1_cat.txt").write_text("junk\n")
        for suffix, turns in IEMOCAP_DIALOGS:
            dialog = f"Ses0{session}{suffix}"
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            for k, (turn, label) in enumerate(turns):
                utterance = f"{dialog}_{turn}"
                lines += [f"[{k}.5000 - {k + 1}.2500]\t{utterance}\t{label}\t[2.5000, 2.5000, 2.5000]",
                          "C-E1:\tNeutral;\t()", "A-E2:\tval 3; act 2; dom  2;\t()", ""]
                write_wav(session_dir / "sentences" / "wav" / dialog / f"{utterance}.wav")
            (labels / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
        (labels / f"._Ses0{session}F_impro01.txt").write_bytes(b"\x00\x05\x16\x07\n[\x00 macOS resource fork")
    return root


# ---- Fluent Speech Commands

FSC_HEADER = ",path,speakerId,transcription,action,object,location"
FSC_ROWS = {
    "train": [("2BqVo8kVB2Skwgyb", "Turn on the lights", "activate", "lights", "none"),
              ("2BqVo8kVB2Skwgyb", "Turn up the heat in the kitchen", "increase", "heat", "kitchen"),
              ("4aGjX3AG5xcxeL7a", "Bring me my shoes, please", "bring", "shoes", "none")],
    # every intent of dev and test occurs in train, as in the real dataset (31 intents in all)
    "valid": [("52XVOeXMXYuaElyw", "Lights on", "activate", "lights", "none")],
    "test": [("73bEEYMKLwtmVwV43", "Heat up the kitchen", "increase", "heat", "kitchen"),
             ("73bEEYMKLwtmVwV43", "Fetch my shoes", "bring", "shoes", "none")],
}


def make_fluent(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    for split, rows in FSC_ROWS.items():
        lines = [FSC_HEADER]
        for i, (speaker, text, action, obj, location) in enumerate(rows):
            path = f"wavs/speakers/{speaker}/{split}-{i:04d}.wav"
            write_wav(root / path)
            text = f'"{text}"' if "," in text else text  # pandas quotes a field holding a comma
            lines.append(f"{i},{path},{speaker},{text},{action},{obj},{location}")
        (root / "data" / f"{split}_data.csv").write_text("\n".join(lines) + "\n")
    return root


# ---- QUESST 2014

# documents 1-4 English, 5 Czech; dev queries 1-3 English, 4 Basque; eval queries 1-2 English
DOCUMENT_LANGUAGES = ["nnenglish", "nnenglish", "nnenglish", "nnenglish", "czech"]
QUERY_LANGUAGES = {"dev": ["nnenglish", "nnenglish", "nnenglish", "basque"], "eval": ["nnenglish", "nnenglish"]}
# (query, document) pairs of each ground truth; dev query 3 has no hit, eval query 2 hits every document
HITS = {"dev": [(1, 1), (1, 3), (2, 2), (2, 5), (4, 5)], "eval": [(1, 4), (2, 1), (2, 2), (2, 3), (2, 4)]}


def make_quesst(root: Path) -> Path:
    scoring = root / "scoring"
    scoring.mkdir(parents=True)
    lines = []
    for n, language in enumerate(DOCUMENT_LANGUAGES, start=1):
        write_wav(root / f"Audio/quesst14_{n:05d}.wav", rate=8000, samples=1600)  # QUESST is 8 kHz
        lines.append(f"quesst14Database/Audio/quesst14_{n:05d}.wav {language}")
    (scoring / "language_key_utterances.lst").write_text("\n".join(lines) + "\n")
    for query_set, languages in QUERY_LANGUAGES.items():
        lines = []
        for n, language in enumerate(languages, start=1):
            write_wav(root / f"{query_set}_queries/quesst14_{query_set}_{n:04d}.wav", rate=8000, samples=800)
            lines.append(f"quesst14Database/{query_set}_queries/quesst14_{query_set}_{n:04d}.wav {language}")
        (scoring / f"language_key_{query_set}.lst").write_text("\n".join(lines) + "\n")
        truth = scoring / f"groundtruth_quesst14_{query_set}"
        truth.mkdir()
        rttm = [f"LEXEME quesst14_{d:05d} 1 {0.1 * k:.3f} 0.250 quesst14_{query_set}_{q:04d} lex <NA> <NA>"
                for k, (q, d) in enumerate(HITS[query_set])]
        (truth / f"quesst14_{query_set}.rttm").write_text("\n".join(rttm) + "\n")
    return root


# ---- VoxCeleb1 for verification (ASV)

# dev/wav speakers -> utterance lengths ("long" >= 2 s, "short" 1 s); id10027, id10046 and id10049 are
# the held-out dev speakers (SHA-1 of the id mod 50 is 0), the others train
SV_DEV = {"id10001": ["long", "long", "short"], "id10002": ["long", "long"], "id10003": ["short"],
          "id10027": ["long", "short", "long"], "id10046": ["long", "long"], "id10049": ["short"]}
SV_TEST = {"id10270": 3, "id10271": 1}  # test/wav speakers -> utterances
VERI_TEST = ["1 id10270/v0/00001.wav id10270/v1/00002.wav", "0 id10270/v0/00001.wav id10271/v0/00001.wav",
             "1 id10270/v1/00002.wav id10270/v2/00003.wav", "0 id10271/v0/00001.wav id10270/v2/00003.wav"]


def make_voxceleb1_sv(parent: Path, corpus: Path) -> Path:
    """`<root>/{dev,test}/wav/idNNNNN/v<k>/NNNNN.wav` and `<root>/veri_test.txt`."""
    long = iter(p for p in sorted((corpus / "audio" / "en").glob("*.flac")) if sf.info(p).frames >= 36000)
    short = iter(sorted((corpus / "audio" / "ks").glob("*.flac")))  # 1 s clips
    root = parent / "VoxCeleb1"
    for speaker, lengths in SV_DEV.items():
        for k, length in enumerate(lengths):
            wav = root / "dev/wav" / speaker / f"v{k}" / f"{k + 1:05d}.wav"
            copy_wav(next(long if length == "long" else short), wav)
    for speaker, count in SV_TEST.items():
        for k in range(count):
            copy_wav(next(long), root / "test/wav" / speaker / f"v{k}" / f"{k + 1:05d}.wav")
    (root / "veri_test.txt").write_text("".join(line + "\n" for line in VERI_TEST))
    return root


# ---- Libri2Mix for diarization (SD)

# recording -> its speakers' (start, end) segments; both sources of a mixture start at 0 (`max` mode)
LIBRIMIX = {
    "train": {"103-1240-0000_1034-121119-0000": {"103": [(0.19, 1.2)], "1034": [(0.5, 0.9), (1.0, 1.75)]},
              "1088-134315-0000_1098-133695-0000": {"1088": [(0.0, 0.8)], "1098": [(0.3, 1.5)]}},
    "dev": {"1272-128104-0000_1462-170138-0000": {"1272": [(0.1, 1.0)], "1462": [(0.6, 1.6)]}},
    "test": {"1089-134686-0000_121-121726-0000": {"1089": [(0.2, 1.1)], "121": [(0.0, 0.4), (0.9, 1.4)]}},
}


def _librimix_audio(corpus: Path):
    return iter(demo_audio(corpus, sum(len(recordings) for recordings in LIBRIMIX.values())))


def make_librimix_kaldi(parent: Path, corpus: Path) -> Path:
    """The Kaldi-style folders of s3prl's `prepare_diarization.py`: `<root>/{train,dev,test}/`
    with `wav.scp` (absolute paths, and one relative to its folder), `rttm` (tab-separated),
    `segments`, `utt2spk`, `reco2dur`."""
    root, audio = parent / "diarization_data", _librimix_audio(corpus)
    for split, recordings in LIBRIMIX.items():
        folder = root / split
        folder.mkdir(parents=True)
        scp, rttm, segments, utt2spk, reco2dur = [], [], [], [], []
        for n, (recording, speakers) in enumerate(recordings.items()):
            wav = folder / "wav" / f"{recording}.wav" if n else parent / "Libri2Mix" / split / f"{recording}.wav"
            copy_wav(next(audio), wav)
            scp.append(f"{recording} {wav.relative_to(folder) if n else wav}")
            for speaker, turns in speakers.items():
                for start, end in turns:
                    utterance = f"{recording}_{int(start * 1000):06d}_{int(end * 1000):06d}"
                    segments.append(f"{utterance} {recording} {start} {end}")
                    utt2spk.append(f"{utterance} {speaker}")
                    rttm.append(f"SPEAKER\t{recording}\t1\t{start}\t{end - start}\t<NA>\t<NA>\t{speaker}\t<NA>")
            reco2dur.append(f"{recording} {sf.info(wav).frames / 16000}")
        for name, lines in (("wav.scp", scp), ("rttm", rttm), ("segments", segments), ("utt2spk", utt2spk),
                            ("reco2dur", reco2dur)):
            (folder / name).write_text("".join(line + "\n" for line in lines))
    return root


LIBRIMIX_SETS = {"train": "train-100", "dev": "dev", "test": "test"}
LIBRIMIX_RTTMS = {"train": "train_clean_100.rttm", "dev": "dev_clean.rttm", "test": "test_clean.rttm"}


def make_librimix_metadata(parent: Path, corpus: Path) -> tuple[Path, Path]:
    """A generated `Libri2Mix/wav16k/max` folder (`metadata/mixture_<set>_mix_both.csv`,
    `<set>/mix_both/<id>.wav`) and the LibriMix fork's `metadata/LibriSpeech` RTTMs (10 fields,
    space-aligned, recording `<chapter>-<utterance>`, plus one utterance no mixture uses)."""
    root, rttms, audio = parent / "Libri2Mix" / "wav16k" / "max", parent / "LibriMix" / "metadata" / "LibriSpeech", \
        _librimix_audio(corpus)
    (root / "metadata").mkdir(parents=True)
    rttms.mkdir(parents=True)
    for split, recordings in LIBRIMIX.items():
        rows, rttm = ["mixture_ID,mixture_path,source_1_path,source_2_path,noise_path,length"], []
        for recording, speakers in recordings.items():
            wav = root / LIBRIMIX_SETS[split] / "mix_both" / f"{recording}.wav"
            copy_wav(next(audio), wav)
            sources = [f"/gone/{LIBRIMIX_SETS[split]}/s{k}/{recording}.wav" for k in (1, 2)]
            rows.append(f"{recording},/generated/elsewhere/{wav.name},{sources[0]},{sources[1]},/gone/noise.wav,"
                        f"{sf.info(wav).frames}")
            for source, (speaker, turns) in zip(recording.split("_"), speakers.items()):
                rttm += [f"SPEAKER {source.split('-', 1)[1]} 1 {start:7.3f} {end - start:7.3f} <NA> <NA> {speaker} "
                         "<NA> <NA>" for start, end in turns]
        rttm.append("SPEAKER 99999-0001 1   0.000   1.000 <NA> <NA> 4242 <NA> <NA>")
        (root / "metadata" / f"mixture_{LIBRIMIX_SETS[split]}_mix_both.csv").write_text("\n".join(rows) + "\n")
        (root / "metadata" / f"metrics_{LIBRIMIX_SETS[split]}_mix_both.csv").write_text("mixture_ID,source_1_SNR\n")
        (rttms / LIBRIMIX_RTTMS[split]).write_text("\n".join(rttm) + "\n")
    return root, rttms


# ---- Audio SNIPS (SF)

SNIPS_SLOTS = ["O", "artist", "city", "genre", "playlist"]  # slots.txt: by frequency, O first
SNIPS_SENTENCES = {  # (set, n) -> (words, tag per word, intent)
    ("train", 0): ("PLAY SOME ROCK BY THE BEATLES", "O O genre O artist artist", "PlayMusic"),
    ("train", 1): ("WHAT IS THE WEATHER IN NEW YORK ?", "O O O O O city city O", "GetWeather"),
    ("train", 2): ("ADD R & B TO MY ROAD TRIP PLAYLIST", "O genre genre genre O O playlist playlist O",
                   "AddToPlaylist"),
    ("valid", 0): ("IS IT COLD IN PARIS", "O O O O city", "GetWeather"),
    ("test", 0): ("PLAY ADELE'S HELLO", "O artist O", "PlayMusic"),
}
SNIPS_READINGS = {"train": ["Ivy", "Joanna", "Aditi"], "valid": ["Aditi", "Amy", "Brian"], "test": ["Brian"]}


def make_snips(parent: Path) -> Path:
    """`SNIPS/{train,valid,test}/<Voice>-snips-<set>-<n>.wav`, `all.iob.snips.txt` and `slots.txt`
    (no final newline); every set is read by some of its split's voices and one other's."""
    root, lines = parent / "SNIPS", []
    for (snips_set, n), (words, tags, intent) in SNIPS_SENTENCES.items():
        for voice in SNIPS_READINGS[snips_set]:
            utterance = f"{voice}-snips-{snips_set}-{n}"
            write_wav(root / snips_set / f"{utterance}.wav")
            lines.append(f"{utterance} BOS {words} EOS\tO {tags} {intent}")
    (root / "all.iob.snips.txt").write_text("\n".join(lines) + "\n")
    (root / "slots.txt").write_text("\n".join(SNIPS_SLOTS))
    return root
