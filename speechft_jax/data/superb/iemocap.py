"""IEMOCAP as released (SUPERB's emotion recognition, ER): four emotions, session-wise folds.

Under `root` (the release folder with `Session1` .. `Session5`), each dialog's labels are in
`SessionN/dialog/EmoEvaluation/<dialog>.txt`: one summary line per utterance, starting with `[`,
`[start - end]<TAB><utterance id><TAB><emotion><TAB>[valence, arousal, dominance]` (the other
lines are single evaluators' votes); the audio is `SessionN/sentences/wav/<dialog>/<utterance id>.wav`.
As SUPERB's recipe: neu, hap, ang, sad and exc are kept, exc merged into hap, improvised and
scripted dialogs alike; the classes are neu, hap, ang, sad in that order. Fold k tests on
Session k; the other four sessions are split 80/20 into train and dev. The recipe draws that split
with torch's `random_split` after `torch.manual_seed(0)`, which cannot be reproduced without torch:
here a numpy permutation seeded with 0 over the utterances in a fixed order (session, dialog file
name, line) picks it, so the split is deterministic, the same size as SUPERB's, but not the same
utterances.

Fields: `emotion`, `speaker` (who speaks: the session and the gender letter of the utterance id,
e.g. `Ses01M` for `Ses01F_impro07_M000`; SUPERB's metadata gives the dialog's prefix `Ses01F`
instead, which ER never reads), `id` (the utterance id).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechft_jax.config_loading import check
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import ClassLabel
from speechft_jax.data.manifest import Example
from speechft_jax.data.source import FileSource
from speechft_jax.data.vocab import ClassLabels

SESSIONS = 5
EMOTIONS = ("neu", "hap", "ang", "sad")
MERGED = {"exc": "hap"}  # SUPERB counts excited as happy
DEV_FRACTION = 0.2
SPLIT_SEED = 0
SPLITS = ("train", "dev", "test")


def open_split(config):
    """`(FileSource, ClassLabel("emotion", neu hap ang sad))` of SUPERB's split `config.split` of
    fold `config.fold` (module docstring)."""
    check(config.split in SPLITS, "data.split", config.split, "train, dev or test (SUPERB's IEMOCAP splits)")
    root = Path(config.root).expanduser()
    if not root.is_dir():
        raise DataError(str(root), "folder not found (data.root: the IEMOCAP release folder with Session1..Session5)")
    if config.split == "test":
        examples = session_utterances(root, config.fold)
    else:
        pool = [e for n in range(1, SESSIONS + 1) if n != config.fold for e in session_utterances(root, n)]
        order = np.random.default_rng(SPLIT_SEED).permutation(len(pool))
        num_train = int((1 - DEV_FRACTION) * len(pool))
        chosen = order[:num_train] if config.split == "train" else order[num_train:]
        examples = [pool[i] for i in sorted(chosen)]
    return FileSource(examples), ClassLabel("emotion", ClassLabels(EMOTIONS))


def session_utterances(root: Path, session: int) -> list[Example]:
    """The kept utterances of `Session<session>` under `root`, in dialog-file then line order."""
    session_dir = root / f"Session{session}"
    label_dir = session_dir / "dialog" / "EmoEvaluation"
    wav_dir = session_dir / "sentences" / "wav"
    for folder in (label_dir, wav_dir):
        if not folder.is_dir():
            raise DataError(str(folder), "folder not found (IEMOCAP's layout: SessionN/dialog/EmoEvaluation "
                                         "and SessionN/sentences/wav under data.root)")
    # the release carries macOS `._*` resource files beside the real ones
    label_files = sorted(p for p in label_dir.glob("*.txt") if not p.name.startswith("."))
    if not label_files:
        raise DataError(str(label_dir), "has no <dialog>.txt label files")
    examples = []
    for label_file in label_files:
        lines = label_file.read_text(encoding="utf-8", errors="replace").splitlines()
        for lineno, line in enumerate(lines, start=1):
            if not line.startswith("["):
                continue
            parts = line.split("\t")
            where = f"{label_file}:{lineno}"
            if len(parts) < 3 or not parts[1].strip():
                raise DataError(where, "expected '[start - end]<TAB>utterance id<TAB>emotion<TAB>[v, a, d]'")
            utterance, emotion = parts[1].strip(), parts[2].strip()
            emotion = MERGED.get(emotion, emotion)
            if emotion in EMOTIONS:
                examples.append(Example(path=str(wav_dir / label_file.stem / f"{utterance}.wav"), origin=where,
                                        fields={"emotion": emotion, "speaker": _speaker(utterance), "id": utterance}))
    return examples


def _speaker(utterance: str) -> str:
    """`Ses01F_impro07_M000` -> `Ses01M`: the session, then the gender letter of the turn."""
    turn = utterance.rsplit("_", 1)[-1]
    return utterance[:5] + turn[0] if turn[:1] in ("F", "M") else utterance.split("_", 1)[0]
