"""Corpus presets: how many speakers and utterances each task gets.

`tiny` (236 utterances, a few seconds) is for tests, `demo` (8900 utterances, 5.47 h, 45-50 s
on 2 idle cores; the 5140 utterances of corpus version 1 took 25-30 s) for the demo and the
default training config, `full` for larger runs. The version-2 tasks' sizes: `demo` has 1200/200/200
(train/dev/test) intent and slot utterances each and 400/80/80 two-speaker mixtures; its
verification trials pair the 30 unseen speakers' utterances (15 speakers for dev, 15 for test).
Changing a preset's numbers changes the corpus: bump `CORPUS_VERSION` with any change to the
generator so cached corpora are rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass

CORPUS_VERSION = 2  # 2: the intent, slot, verification and diarization tasks


@dataclass(frozen=True)
class Preset:
    """Sizes of the corpus. `*_split` tuples are (train, dev, test) counts."""

    name: str
    seen_speakers: int
    unseen_speakers: int
    english_per_speaker: tuple[int, int, int]
    unseen_per_speaker: int
    style_per_class: tuple[int, int, int]
    keyword_per_class: int
    crosslingual_per_lang: int
    ic_per_split: tuple[int, int, int]
    sf_per_split: tuple[int, int, int]
    sd_per_split: tuple[int, int, int]  # two-speaker mixtures
    seed: int = 0


PRESETS = {
    "tiny": Preset("tiny", seen_speakers=10, unseen_speakers=3, english_per_speaker=(3, 1, 1),
                   unseen_per_speaker=2, style_per_class=(3, 1, 1), keyword_per_class=4,
                   crosslingual_per_lang=12, ic_per_split=(20, 6, 6), sf_per_split=(20, 6, 6),
                   sd_per_split=(8, 3, 3)),
    "demo": Preset("demo", seen_speakers=160, unseen_speakers=30, english_per_speaker=(6, 2, 2),
                   unseen_per_speaker=8, style_per_class=(150, 30, 30), keyword_per_class=120,
                   crosslingual_per_lang=300, ic_per_split=(1200, 200, 200),
                   sf_per_split=(1200, 200, 200), sd_per_split=(400, 80, 80)),
    "full": Preset("full", seen_speakers=600, unseen_speakers=100,
                   english_per_speaker=(20, 4, 4), unseen_per_speaker=20,
                   style_per_class=(1000, 150, 150), keyword_per_class=600,
                   crosslingual_per_lang=2000, ic_per_split=(8000, 1000, 1000),
                   sf_per_split=(8000, 1000, 1000), sd_per_split=(3000, 500, 500)),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown corpus preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
