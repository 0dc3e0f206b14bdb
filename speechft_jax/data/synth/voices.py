"""Generated speakers: eSpeak NG voice variants with seeded formants, pitch and voice quality.

Each `Speaker` has an English accent, a base speaking rate and pitch, a voice variant file
(`syn0001`) with its own formant frequencies, heights and widths, pitch range, breathiness and
roughness, and a whisper variant (`syn0001w`) built from the same vocal tract, so that whispering
differs per speaker instead of reusing the stock `whisper` variant's noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACCENTS = ("en-us", "en-us", "en-us", "en-us-nyc", "en", "en-gb-x-rp", "en-gb-scotland",
           "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
STYLES = ("neutral", "fast", "slow", "high", "low", "whisper")


@dataclass(frozen=True)
class Speaker:
    """One generated speaker; `variant_text`/`whisper_text` are eSpeak voice variant files."""

    id: str
    gender: str
    accent: str
    variant: str
    rate: int
    pitch: int
    pitch_range: int
    variant_text: str
    whisper_text: str

    @property
    def whisper_variant(self) -> str:
        return self.variant + "w"

    def voice(self, lang: str, whisper: bool = False) -> str:
        """eSpeak voice name for `lang` (`en` uses the speaker's accent)."""
        base = {"en": self.accent, "es": "es", "cmn": "cmn-latn-pinyin"}[lang]
        return f"{base}+{self.whisper_variant if whisper else self.variant}"

    def style_params(self, style: str, rng: np.random.Generator) -> dict:
        """Rate, pitch, range and whisper flag for speaking `style`."""
        rate, pitch, rng_pitch = self.rate, self.pitch, self.pitch_range
        if style == "fast":
            rate = int(rate * rng.uniform(1.5, 1.8))
        elif style == "slow":
            rate = int(rate * rng.uniform(0.55, 0.65))
        elif style == "high":
            pitch = int(rng.uniform(85, 99))
        elif style == "low":
            pitch = int(rng.uniform(0, 12))
        elif style not in ("neutral", "whisper"):
            raise ValueError(f"unknown style {style!r}")
        return {"rate": max(80, rate), "pitch": pitch, "pitch_range": rng_pitch,
                "whisper": style == "whisper"}


def _formant_lines(rng: np.random.Generator, scale: float) -> list[str]:
    lines = []
    for k in range(9):
        freq = 100 if k == 0 else scale * rng.uniform(0.93, 1.07) * 100
        if k > 5:
            freq = scale * 100
        height = rng.uniform(60, 110) if 1 <= k <= 5 else 100
        width = rng.uniform(80, 150) if 1 <= k <= 5 else 100
        lines.append(f"formant {k} {freq:.0f} {height:.0f} {width:.0f}")
    return lines


def make_speaker(index: int, seed: int) -> Speaker:
    """Speaker number `index` of the corpus seeded with `seed` (independent of other speakers)."""
    rng = np.random.default_rng([seed, 7919, index])
    name = f"syn{index:04d}"
    gender = "female" if rng.random() < 0.5 else "male"
    if gender == "female":
        base, span, scale = rng.uniform(150, 230), rng.uniform(40, 110), rng.uniform(1.0, 1.16)
    else:
        base, span, scale = rng.uniform(75, 135), rng.uniform(25, 75), rng.uniform(0.86, 1.02)
    formants = _formant_lines(rng, scale)
    breath = " ".join(str(int(v)) for v in np.sort(rng.integers(0, 5, 8))[::-1])
    quality = [f"breath {breath}", f"roughness {int(rng.integers(0, 6))}",
               f"flutter {int(rng.integers(0, 30))}",
               f"voicing {int(rng.uniform(85, 115))}", f"consonants {int(rng.uniform(80, 120))}"]
    if rng.random() < 0.3:
        quality.append(f"echo {int(rng.integers(20, 120))} {int(rng.integers(2, 12))}")
    head = ["language variant", f"name {name}", f"gender {gender}",
            f"pitch {base:.0f} {base + span:.0f}"]
    variant = "\n".join(head + formants + quality) + "\n"
    wbreath = " ".join(str(int(rng.uniform(lo, hi))) for lo, hi in
                       ((55, 90), (55, 90), (35, 65), (25, 50), (8, 20), (5, 15)))
    wbreathw = " ".join(str(int(rng.uniform(lo, hi))) for lo, hi in
                        ((120, 180), (120, 180), (170, 230), (170, 230), (350, 450), (350, 450)))
    whisper = "\n".join(
        ["language variant", f"name {name}w", f"gender {gender}",
         f"pitch {base * 0.8:.0f} {base * 0.8 + span / 2:.0f}", f"flutter {int(rng.integers(10, 30))}"]
        + formants + [f"voicing {int(rng.uniform(10, 25))}", f"breath {wbreath}",
                      f"breathw {wbreathw}"]) + "\n"
    return Speaker(
        id=f"spk{index:04d}", gender=gender[0], accent=ACCENTS[int(rng.integers(len(ACCENTS)))],
        variant=name, rate=int(rng.uniform(150, 200)), pitch=int(rng.uniform(35, 65)),
        pitch_range=int(rng.uniform(30, 75)), variant_text=variant, whisper_text=whisper)


def make_speakers(count: int, seed: int) -> list[Speaker]:
    return [make_speaker(i, seed) for i in range(count)]
