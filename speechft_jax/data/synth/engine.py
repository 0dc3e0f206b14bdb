"""A ctypes binding to eSpeak NG as shipped by the `espeakng-loader` wheel (no apt, no network).

`EspeakEngine(data_dir)` synthesises text to int16 audio at 22050 Hz and converts text to IPA
phonemes. `private_data_dir(root, variants)` builds a copy of the engine's data folder (symlinks)
whose `voices/!v/` also holds our generated voice variants, selectable as `en-us+<name>`.

The engine keeps state between utterances inside one process (its output for an utterance
depends on what it said before), but a fresh process is reproducible. The corpus builder
therefore renders fixed chunks of utterances, each in a fresh process.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Mapping

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
CHARS_UTF8 = 1
PHONEMES_IPA = 0x02
RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


def stock_data_dir() -> Path:
    """The `espeak-ng-data` folder inside the installed `espeakng-loader` wheel."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


def engine_version() -> str:
    """The bundled library's version, from its file name (e.g. `1.52.0`)."""
    import espeakng_loader

    lib = Path(espeakng_loader.get_library_path()).resolve()
    found = sorted(p.name for p in lib.parent.glob("libespeak-ng.so.*.*"))
    return found[-1].split(".so.")[-1] if found else "unknown"


def private_data_dir(root: Path, variants: Mapping[str, str], *, stock_variants: bool = False) -> Path:
    """Make `root/espeak-ng-data`: the stock data (symlinked) plus `variants` (name -> file text).

    The engine lists at most 349 voices and silently loses the rest (even `en`), so the stock
    variants are left out unless asked for, and callers should pass only the variants they use
    (the 141 languages plus a few hundred variants fit).
    """
    if len(variants) + (104 if stock_variants else 0) > 200:
        raise ValueError(f"{len(variants)} voice variants are too many for one eSpeak data folder")
    stock = stock_data_dir()
    data = root / "espeak-ng-data"
    data.mkdir(parents=True)
    for entry in stock.iterdir():
        if entry.name != "voices":
            os.symlink(entry, data / entry.name)
    (data / "voices").mkdir()
    for entry in (stock / "voices").iterdir():
        if entry.name != "!v":
            os.symlink(entry, data / "voices" / entry.name)
    vdir = data / "voices" / "!v"
    vdir.mkdir()
    if stock_variants:
        for entry in (stock / "voices" / "!v").iterdir():
            os.symlink(entry, vdir / entry.name)
    for name, text in variants.items():
        if (vdir / name).exists():
            raise ValueError(f"voice variant {name!r} clashes with a stock variant")
        (vdir / name).write_text(text, encoding="utf-8")
    return data


class EspeakEngine:
    """One initialised eSpeak NG; only one per process (the library is a singleton)."""

    def __init__(self, data_dir: str | os.PathLike | None = None):
        import espeakng_loader

        self.data_dir = Path(data_dir) if data_dir is not None else stock_data_dir()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                              ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                                 str(self.data_dir).encode(), 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise with data {self.data_dir}")
        self._chunks: list[np.ndarray] = []

        def collect(wav, count, events):
            if count > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # keep a reference: the library holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        self._voice: str | None = None

    def set_voice(self, name: str) -> None:
        """Select `language+variant`; raises `ValueError` if the engine does not know it."""
        if name == self._voice:
            return
        lang, _, variant = name.partition("+")
        if variant and not (self.data_dir / "voices" / "!v" / variant).exists():
            # The engine silently ignores an unknown variant; refuse it instead.
            raise ValueError(f"eSpeak NG has no voice variant {variant!r}")
        if self._lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {lang!r}")
        self._voice = name

    def synthesize(self, text: str, voice: str, *, rate: int = 175, pitch: int = 50,
                   pitch_range: int = 50, seed: int = 0) -> np.ndarray:
        """Speak `text`: int16 `[samples]` at `self.sample_rate` (22050 Hz)."""
        self.set_voice(voice)
        self._lib.espeak_SetParameter(RATE, int(rate), 0)
        self._lib.espeak_SetParameter(PITCH, int(pitch), 0)
        self._lib.espeak_SetParameter(RANGE, int(pitch_range), 0)
        self._lib.espeak_ng_SetRandSeed(int(seed))
        self._chunks = []
        data = text.encode("utf-8")
        err = self._lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"eSpeak NG failed on {text!r} (error {err})")
        self._lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    def phonemize(self, text: str, voice: str) -> list[list[str]]:
        """IPA phones per word as the engine pronounces `text` with `voice`'s language.

        Stress marks stay attached to the phone that follows them; callers map or strip them.
        """
        self.set_voice(voice)
        buf = ctypes.c_char_p(text.encode("utf-8"))
        words: list[list[str]] = []
        while buf.value:
            out = self._lib.espeak_TextToPhonemes(ctypes.byref(buf), CHARS_UTF8,
                                                  PHONEMES_IPA | (ord("_") << 8))
            if not out:
                break
            for word in out.decode("utf-8").split():
                phones = [p for p in word.split("_") if p]
                if phones:
                    words.append(phones)
        return words
