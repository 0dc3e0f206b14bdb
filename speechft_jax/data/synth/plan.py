"""The corpus plan: every utterance to render, decided up front from the preset and seed.

Splits: English, style, cross-lingual, command (IC) and request (SF) sentences go to
train/dev/test by a hash of the sentence (80/10/10), so no sentence crosses splits; the unseen
speakers read test sentences into `test_unseen`. Keyword clips (single words) split by speaker
hash instead, as Speech Commands does. A diarization `MixJob` mixes two English utterances of
one split by different speakers. Every job carries its own seed, so rendering it does not depend
on any other job. The pools of corpus version 2 (`VERSION_2_POOLS`) are planned after the older
ones from their own random streams, so the older pools stay as they were.
`verification_trials` pairs the unseen speakers' utterances into the dev and test trial lists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from speechft_jax.data.synth.grammar import (
    KEYWORDS, SILENCE, UNKNOWN, UNKNOWN_WORDS, sample_command, sample_sentence, sample_slot_request,
)
from speechft_jax.data.synth.presets import Preset
from speechft_jax.data.synth.voices import STYLES, Speaker, make_speakers

SPLITS = ("train", "dev", "test")
VERSION_2_POOLS = ("ic", "sf", "sd")


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
    labels: tuple[tuple[str, str], ...] = ()  # further manifest fields (intent, slots)

    @property
    def variants(self) -> tuple[str, ...]:
        """The eSpeak voice variants rendering this job needs."""
        return (self.voice.split("+")[1],)


@dataclass(frozen=True)
class MixJob:
    """A two-speaker mixture to render into `path`: `sources` are rendered clean and trimmed to
    their speech, the first placed after `lead_seconds`, the second overlapping the first's end
    by `overlap` of the shorter one's length (0: starting `gap_seconds` after it) at `gain_db`
    relative to the first, then `trail_seconds` of silence; noise at `snr_db` covers it all."""

    uid: str
    pool: str
    path: str
    split: str
    sources: tuple[Job, Job]
    seed: int
    snr_db: float
    lead_seconds: float
    trail_seconds: float
    overlap: float
    gap_seconds: float
    gain_db: float

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(v for source in self.sources for v in source.variants)


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

    # Corpus version 2: intent classification, slot filling and diarization.
    english = [job for job in jobs if job.pool == "en"]
    jobs += _labelled_jobs("ic", preset.ic_per_split, seen, np.random.default_rng([seed, 6]),
                           _command)
    jobs += _labelled_jobs("sf", preset.sf_per_split, seen, np.random.default_rng([seed, 7]),
                           _slot_request)
    jobs += _mixture_jobs(preset.sd_per_split, english, np.random.default_rng([seed, 8]))
    return speakers, jobs


def _command(rng: np.random.Generator) -> tuple[str, tuple[tuple[str, str], ...]]:
    text, action, obj, location = sample_command(rng)
    return text, (("action", action), ("object", obj), ("location", location))


def _slot_request(rng: np.random.Generator) -> tuple[str, tuple[tuple[str, str], ...]]:
    text, slots = sample_slot_request(rng)
    return text, (("slots", slots),)


def _labelled_jobs(pool: str, counts: tuple[int, int, int], seen: list[Speaker],
                   rng: np.random.Generator, sample) -> list[Job]:
    """`counts` (train, dev, test) utterances of `pool`, each by a random seen speaker;
    `sample(rng)` draws a `(text, labels)`, kept when the text's hash falls in the wanted split.
    A sentence may be said again by another speaker (the grammars are small)."""
    jobs: list[Job] = []
    for split, count in zip(SPLITS, counts):
        for _ in range(count):
            for _ in range(100_000):
                text, labels = sample(rng)
                if hash_split(text) == split:
                    break
            else:
                raise RuntimeError(f"the {pool} grammar ran out of {split} sentences")
            spk = seen[int(rng.integers(len(seen)))]
            jobs.append(_job(f"{pool}_{len(jobs):05d}", pool, spk, "en", text, split, rng,
                             (5.0, 30.0), labels=labels))
    return jobs


def _mixture_jobs(counts: tuple[int, int, int], english: list[Job],
                  rng: np.random.Generator) -> list[MixJob]:
    """`counts` (train, dev, test) mixtures of two English utterances of the split by different
    speakers (test: the seen speakers' test and the unseen speakers' utterances); 60 % overlap by
    0-40 % of the shorter one, the others leave a 0.1-1 s gap."""
    jobs: list[MixJob] = []
    for split, count in zip(SPLITS, counts):
        pool = [job for job in english
                if job.split == split or (split == "test" and job.split == "test_unseen")]
        for _ in range(count):
            first = pool[int(rng.integers(len(pool)))]
            second = first
            while second.speaker == first.speaker:
                second = pool[int(rng.integers(len(pool)))]
            uid = f"sd_{len(jobs):05d}"
            overlapping = rng.random() < 0.6
            overlap, gap = rng.uniform(0.0, 0.4), rng.uniform(0.1, 1.0)
            lead, trail = rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.5)
            jobs.append(MixJob(
                uid=uid, pool="sd", path=f"audio/sd/{uid}.flac", split=split,
                sources=(first, second), seed=_seed(rng),
                snr_db=round(float(rng.uniform(10.0, 30.0)), 2),
                lead_seconds=round(float(lead), 2), trail_seconds=round(float(trail), 2),
                overlap=round(float(overlap), 3) if overlapping else 0.0,
                gap_seconds=0.0 if overlapping else round(float(gap), 2),
                gain_db=round(float(rng.uniform(-5.0, 5.0)), 2)))
    return jobs


def verification_trials(jobs: list[Job], seed: int) -> dict[str, list[tuple[int, str, str]]]:
    """The `dev` and `test` trial lists, rows `(1 same speaker | 0, enrolment path, test path)`,
    over the unseen speakers' utterances (`test_unseen`): the first half of those speakers for
    dev, the other half for test (with fewer than four, both lists use all of them); every
    same-speaker pair and as many different-speaker pairs drawn at random, in a random order."""
    by_speaker: dict[str, list[str]] = {}
    for job in jobs:
        if job.pool == "en" and job.split == "test_unseen":
            by_speaker.setdefault(job.speaker, []).append(job.path)
    speakers = list(by_speaker)
    half = len(speakers) // 2
    groups = ({"dev": speakers[:half], "test": speakers[half:]} if half >= 2
              else {"dev": speakers, "test": speakers})
    rng = np.random.default_rng([seed, 9])
    lists = {}
    for split, group in groups.items():
        utterances = [(spk, path) for spk in group for path in by_speaker[spk]]
        same, different = [], []
        for i, (spk_a, a) in enumerate(utterances):
            for spk_b, b in utterances[i + 1:]:
                (same if spk_a == spk_b else different).append((a, b))
        picked = rng.choice(len(different), size=min(len(same), len(different)), replace=False)
        trials = [(1, a, b) for a, b in same] + [(0, *different[k]) for k in sorted(picked)]
        lists[split] = [trials[k] for k in rng.permutation(len(trials))]
    return lists
