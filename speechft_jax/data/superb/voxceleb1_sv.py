"""VoxCeleb1 as downloaded, for SUPERB's automatic speaker verification (ASV): `open_split`.

`root` holds the unzipped archives as for identification: `dev/wav/idNNNNN/<video>/NNNNN.wav`
(vox1_dev_wav.zip) and `test/wav/...` (vox1_test_wav.zip; or one `wav/` folder for the test audio).
- train: every wav under `dev/wav/` (speaker = its `idNNNNN` folder) but those of the held-out dev
  speakers, leaving out utterances shorter than 2 s (`MIN_SAMPLES`, read from the header) as
  SUPERB's recipe does. SUPERB first trims leading and trailing silence with sox and then drops
  what is too short; we do not trim, so a few utterances it drops are kept. Label spec:
  `ClassLabel("speaker", the sorted train speakers)` (the additive-margin softmax's classes).
- dev: trials over the held-out dev speakers (`held_out(speaker)`: SHA-1 of the id mod 50 is 0,
  about 2 % of them, never in train), `DEV_TRIALS` balanced target / non-target pairs over all
  their utterances, drawn with a fixed-seed generator, so the same tree gives the same list.
- test: VoxCeleb1's official trial list, `<root>/veri_test.txt` (s3prl ships the cleaned
  `voxceleb1_test_v2.txt` in the same layout: set `trials` to it), paths relative to `test/wav/`.
`trials` (a `veri_test.txt`-layout list) replaces the list of the dev or test split it is given
for; a dev list should name held-out speakers only, as train knows nothing of it. dev and test
return `(FileSource of the trials' utterances, TrialLabels)`, utterance fields `speaker`, `id`.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from speechft_jax.cli import progress_bars_shown
from speechft_jax.config_loading import check
from speechft_jax.data.audio import SAMPLE_RATE, audio_num_samples
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import ClassLabel
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import FileSource
from speechft_jax.data.trials import read_trials, trial_split
from speechft_jax.data.vocab import ClassLabels
from speechft_jax.errors import ConfigError

log = logging.getLogger(__name__)

MIN_SAMPLES = 2 * SAMPLE_RATE  # SUPERB's `min_sec: 32000` (samples, despite the name)
HELD_OUT_MODULUS = 50          # a dev speaker is held out when SHA-1(id) mod 50 == 0
DEV_TRIALS = 2000              # at most this many dev trials, half of them target
DEV_SEED = 0
TEST_TRIALS = "veri_test.txt"


def held_out(speaker: str) -> bool:
    """Whether the dev speaker `speaker` (`idNNNNN`) belongs to the dev trials rather than train."""
    return int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16) % HELD_OUT_MODULUS == 0


def open_split(config):
    """`(FileSource, ClassLabel)` of train, `(FileSource, TrialLabels)` of dev or test (module docstring)."""
    check(config.split in ("train", "dev", "test"), "data.split", config.split,
          "train, dev or test (SUPERB's VoxCeleb1 verification splits)")
    root = Path(config.root).expanduser()
    if not root.is_dir():
        raise DataError(str(root), "folder not found (data.root: the unzipped VoxCeleb1 dev and test archives)")
    if config.split == "train":
        if config.trials:
            raise ConfigError(f"data.trials={config.trials!r} is set for the train split: a trial list is for "
                              "the dev or test split (set it under splits.dev or splits.test)")
        return _train_split(root)
    if config.trials:
        audio_root = root / "dev" / "wav" if config.split == "dev" else _test_audio(root)
        return _checked(*read_trials(config.trials, audio_root))
    if config.split == "dev":
        return _dev_trials(root)
    trials = root / TEST_TRIALS
    if not trials.is_file():
        raise DataError(str(trials), f"trial list not found (VoxCeleb1's {TEST_TRIALS}, or s3prl's "
                                     "voxceleb1_test_v2.txt: set data.trials to it, or put it in data.root)")
    return _checked(*read_trials(trials, _test_audio(root)))


def _dev_speakers(root: Path) -> dict[str, list[Path]]:
    """`{idNNNNN: its wav files, sorted}` of every speaker folder under `<root>/dev/wav/`."""
    folder = root / "dev" / "wav"
    if not folder.is_dir():
        raise DataError(str(folder), "folder not found (the unzipped vox1_dev_wav.zip: dev/wav/idNNNNN/...)")
    speakers = {p.name: sorted(p.rglob("*.wav")) for p in sorted(folder.iterdir()) if p.is_dir()}
    speakers = {speaker: files for speaker, files in speakers.items() if files}
    if not speakers:
        raise DataError(str(folder), "holds no idNNNNN/<video>/NNNNN.wav files")
    return speakers


def _example(path: Path, speaker: str, wav_folder: Path, **extra) -> Example:
    return Example(str(path), {"speaker": speaker, "id": str(path.relative_to(wav_folder).with_suffix(""))},
                   origin=str(path), **extra)


def _train_split(root: Path):
    speakers = _dev_speakers(root)
    wav_folder = root / "dev" / "wav"
    files = [(speaker, path) for speaker, paths in speakers.items() if not held_out(speaker) for path in paths]
    examples, short = [], 0
    for speaker, path in tqdm(files, desc="VoxCeleb1 train lengths", unit="file", leave=False,
                              disable=not progress_bars_shown()):
        samples = audio_num_samples(path)
        if samples < MIN_SAMPLES:
            short += 1
            continue
        # the header's length, kept so that the source need not read the header again
        examples.append(_example(path, speaker, wav_folder, duration=samples / SAMPLE_RATE))
    if short:
        log.info("VoxCeleb1 train: left out %d of %d utterances shorter than %.0f s", short, len(files),
                 MIN_SAMPLES / SAMPLE_RATE)
    if not examples:
        raise DataError(str(wav_folder), f"holds no training utterance of {MIN_SAMPLES / SAMPLE_RATE:.0f} s or "
                                         "more outside the held-out dev speakers")
    classes = ClassLabels(tuple(sorted({e.fields["speaker"] for e in examples})))
    return FileSource(examples), ClassLabel("speaker", classes)


def _dev_trials(root: Path):
    """`DEV_TRIALS` balanced trials over the held-out dev speakers: enrolment utterances drawn
    without replacement, each paired once with another utterance of its speaker (target) and once
    with an utterance of another held-out speaker (non-target)."""
    wav_folder = root / "dev" / "wav"
    speakers = {s: paths for s, paths in _dev_speakers(root).items() if held_out(s)}
    names = f"{wav_folder} (the held-out dev speakers, SHA-1 of the id mod {HELD_OUT_MODULUS} = 0)"
    if len(speakers) < 2:
        raise DataError(names, f"has {len(speakers)} speaker(s); dev trials need 2 or more "
                               "(or set data.trials for the dev split)")
    by_speaker = [[_example(p, s, wav_folder) for p in paths] for s, paths in speakers.items()]
    # enrolments need a second utterance of their speaker for their target trial
    enrolments = [(k, n) for k, utterances in enumerate(by_speaker) if len(utterances) > 1
                  for n in range(len(utterances))]
    if not enrolments:
        raise DataError(names, "has no speaker with 2 or more utterances: no target trial can be made")
    rng = np.random.default_rng(DEV_SEED)
    pairs = []
    for row in rng.permutation(len(enrolments))[:DEV_TRIALS // 2]:
        k, n = enrolments[row]
        utterances = by_speaker[k]
        same = (n + 1 + rng.integers(len(utterances) - 1)) % len(utterances)  # any but the enrolment
        other = (k + 1 + rng.integers(len(by_speaker) - 1)) % len(by_speaker)   # any other speaker
        pairs.append((utterances[n], utterances[same], 1))
        pairs.append((utterances[n], by_speaker[other][rng.integers(len(by_speaker[other]))], 0))
    return trial_split(pairs, names)


def _test_audio(root: Path) -> Path:
    """Where the test trials' paths are relative to: `<root>/test/wav/`, else `<root>/wav/`."""
    for folder in (root / "test" / "wav", root / "wav"):
        if folder.is_dir():
            return folder
    raise DataError(str(root / "test" / "wav"), "folder not found (the unzipped vox1_test_wav.zip: "
                                                "test/wav/idNNNNN/...)")


def _checked(source: FileSource, labels):
    """`(source, labels)` once every utterance the trials name is found (else a `DataError` naming
    the first trial line that names a missing one)."""
    for example in source.examples:
        if not Path(example.path).is_file():
            raise DataError(example.origin, f"{example.path} not found")
    return source, labels
