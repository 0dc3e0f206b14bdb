"""The corpus plan: every utterance to render, decided up front from the preset and seed.

Splits: English, style and cross-lingual sentences go to train/dev/test by a hash of the
sentence (80/10/10), so no sentence crosses splits; the unseen speakers read test sentences into
`test_unseen`. Keyword clips (single words) split by speaker hash instead, as Speech Commands
does. Every `Job` carries its own seed, so rendering it does not depend on any other job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from speechft_jax.data.synth.grammar import (
    KEYWORDS, SILENCE, UNKNOWN, UNKNOWN_WORDS, sample_sentence,
)
from speechft_jax.data.synth.presets import Preset
from speechft_jax.data.synth.voices import STYLES, Speaker, make_speakers

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Job:
    """One utterance to render into `path` (relative to the corpus folder)."""

    uid: str
    pool: str            # "en", "style", "ks", "cmn", "es"
    path: str
    text: str            # what is spoken ("" for a silence clip)
    lang: str            # "en", "es", "cmn"
    voice: str           # eSpeak voice, e.g. "en-us+syn0003"
    phone_voice: str     # voice whose pronunciation gives the phone labels
    rate: int
    pitch: int
    pitch_range: int
    split: str
    speaker: str
    seed: int
    snr_db: float
    style: str | None = None
    keyword: str | None = None
    clip_seconds: float | None = None


def hash_split(key: str) -> str:
    """train/dev/test for a sentence or speaker id, 80/10/10 by its SHA-1."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 10
    return "train" if bucket < 8 else ("dev" if bucket == 8 else "test")


class _Sentences:
    """Draws unused sentences of a wanted split (rejection sampling over the grammar)."""

    def __init__(self, lang: str, rng: np.random.Generator):
        self.lang, self.rng, self.used = lang, rng, set()

    def draw(self, split: str) -> str:
        for _ in range(100_000):
            s = sample_sentence(self.lang, self.rng)
            if s not in self.used and hash_split(s) == split:
                self.used.add(s)
                return s
        raise RuntimeError(f"grammar for {self.lang!r} ran out of {split} sentences")


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _job(uid: str, pool: str, speaker: Speaker, lang: str, text: str, split: str,
         rng: np.random.Generator, snr: tuple[float, float], style: str = "neutral",
         **extra) -> Job:
    params = speaker.style_params(style, rng)
    return Job(uid=uid, pool=pool, path=f"audio/{pool}/{uid}.flac", text=text, lang=lang,
               voice=speaker.voice(lang, params["whisper"]),
               phone_voice=speaker.voice(lang).split("+")[0], rate=params["rate"],
               pitch=params["pitch"], pitch_range=params["pitch_range"], split=split,
               speaker=speaker.id, seed=_seed(rng), snr_db=round(float(rng.uniform(*snr)), 2),
               style=style if pool == "style" else None, **extra)


def plan_corpus(preset: Preset, seed: int | None = None) -> tuple[list[Speaker], list[Job]]:
    """All speakers (seen first, then unseen) and all jobs, in a fixed order."""
    seed = preset.seed if seed is None else seed
    speakers = make_speakers(preset.seen_speakers + preset.unseen_speakers, seed)
    seen, unseen = speakers[:preset.seen_speakers], speakers[preset.seen_speakers:]
    jobs: list[Job] = []

    # English read speech: phone recognition, ASR and (seen speakers) speaker identification.
    rng = np.random.default_rng([seed, 1])
    english = _Sentences("en", rng)
    for spk in seen:
        n = 0
        for split, count in zip(SPLITS, preset.english_per_speaker):
            for _ in range(count):
                jobs.append(_job(f"{spk.id}_{n:03d}", "en", spk, "en", english.draw(split),
                                 split, rng, (5.0, 30.0)))
                n += 1
    for spk in unseen:
        for n in range(preset.unseen_per_speaker):
            jobs.append(_job(f"{spk.id}_{n:03d}", "en", spk, "en", english.draw("test"),
                             "test_unseen", rng, (5.0, 30.0)))

    # Speaking style, an emotion-like task: each seen speaker in turn, styles cycling.
    rng = np.random.default_rng([seed, 2])
    styled = _Sentences("en", rng)
    n = 0
    for split, count in zip(SPLITS, preset.style_per_class):
        for _ in range(count):
            for style in STYLES:
                spk = seen[n % len(seen)]
                jobs.append(_job(f"style_{n:05d}", "style", spk, "en", styled.draw(split), split,
                                 rng, (5.0, 30.0), style=style))
                n += 1

    # Keyword spotting: 1 s clips of a command word, another word, or background noise only.
    rng = np.random.default_rng([seed, 3])
    n = 0
    for cls in KEYWORDS + (UNKNOWN, SILENCE):
        for _ in range(preset.keyword_per_class):
            spk = seen[int(rng.integers(len(seen)))]
            word = (cls if cls in KEYWORDS else
                    "" if cls == SILENCE else UNKNOWN_WORDS[int(rng.integers(len(UNKNOWN_WORDS)))])
            jobs.append(_job(f"ks_{n:05d}", "ks", spk, "en", word, hash_split(spk.id), rng,
                             (0.0, 25.0), keyword=cls, clip_seconds=1.0))
            n += 1

    # Cross-lingual: Mandarin (pinyin with tones) and Spanish read speech.
    for k, lang in enumerate(("cmn", "es")):
        rng = np.random.default_rng([seed, 4 + k])
        sentences = _Sentences(lang, rng)
        for n in range(preset.crosslingual_per_lang):
            spk = seen[int(rng.integers(len(seen)))]
            split = SPLITS[0] if n % 10 < 8 else SPLITS[1 + (n % 10 == 9)]
            jobs.append(_job(f"{lang}_{n:05d}", lang, spk, lang, sentences.draw(split), split,
                             rng, (10.0, 35.0)))
    return speakers, jobs
