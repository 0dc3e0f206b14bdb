"""Seeded waveform augmentations: speed perturbation, pitch shift, additive noise, random EQ.

All functions are pure numpy/soxr and take an explicit `np.random.Generator`, so the same seed
gives the same output. `speed_perturb` changes the length (the loader draws the factor when it
plans an epoch, so the bucket fits); `pitch_shift`, `add_noise` and `random_eq` keep it.
`AugmentConfig` + `augment_waveform` is what the loader applies to training utterances (SCORE and
the noisy tasks use it); the demo corpus uses `add_noise` and `random_eq` too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from speechft_jax.data.audio import SAMPLE_RATE, decode_audio, resample

SPEED_FACTORS = (0.9, 1.0, 1.1)


def speed_perturb(audio: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch): `[n]` -> `[round(n / factor)]`."""
    if factor == 1.0:
        return audio
    return resample(audio, sample_rate * factor, sample_rate)


def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    count = 1 + (len(x) - n_fft) // hop
    return np.lib.stride_tricks.as_strided(
        x, shape=(count, n_fft), strides=(x.strides[0] * hop, x.strides[0]), writeable=False)


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    x = np.pad(x, n_fft // 2, mode="reflect" if len(x) > n_fft // 2 else "constant")
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    return np.fft.rfft(_frames(x, n_fft, hop) * np.hanning(n_fft + 1)[:-1], axis=1)


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Sum `[count, n_fft]` frames placed `hop` apart (n_fft a multiple of hop)."""
    count, n_fft = frames.shape
    parts = n_fft // hop
    out = np.zeros((count + parts - 1, hop))
    for j in range(parts):
        out[j:j + count] += frames[:, j * hop:(j + 1) * hop]
    return out.reshape(-1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    window = np.hanning(n_fft + 1)[:-1]
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * window
    out = _overlap_add(frames, hop)
    norm = _overlap_add(np.broadcast_to(window ** 2, frames.shape), hop)
    out = out / np.maximum(norm, 1e-8)
    out = out[n_fft // 2:n_fft // 2 + length]
    return np.pad(out, (0, length - len(out)))


def time_stretch(audio: np.ndarray, rate: float, *, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Phase-vocoder tempo change keeping pitch: `[n]` -> `[round(n / rate)]`."""
    spec = _stft(audio.astype(np.float64), n_fft, hop)
    steps = np.arange(0, spec.shape[0], rate)
    spec = np.concatenate([spec, np.zeros((2, spec.shape[1]), spec.dtype)])
    lo = steps.astype(np.int64)
    alpha = (steps - lo)[:, None]
    left, right = spec[lo], spec[lo + 1]
    mag = (1 - alpha) * np.abs(left) + alpha * np.abs(right)
    expected = np.linspace(0, np.pi * hop, spec.shape[1])
    dphase = np.angle(right) - np.angle(left) - expected
    dphase -= 2 * np.pi * np.round(dphase / (2 * np.pi))
    advance = np.cumsum(expected + dphase, axis=0)
    phase = np.angle(spec[0]) + np.concatenate([np.zeros((1, spec.shape[1])), advance[:-1]])
    length = int(round(len(audio) / rate))
    return _istft(mag * np.exp(1j * phase), n_fft, hop, length).astype(np.float32)


def pitch_shift(audio: np.ndarray, semitones: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Shift pitch by `semitones` keeping the duration: `[n]` -> `[n]`."""
    if semitones == 0:
        return audio
    rate = 2.0 ** (-semitones / 12.0)
    shifted = resample(time_stretch(audio, rate), sample_rate / rate, sample_rate)
    n = len(audio)
    return np.pad(shifted[:n], (0, max(0, n - len(shifted)))).astype(np.float32)


def _fft_length(n: int) -> int:
    # FFTs of awkward (large prime factor) lengths are many times slower than powers of two.
    return 1 << max(0, int(n - 1).bit_length())


def coloured_noise(num_samples: int, rng: np.random.Generator, exponent: float = 0.0) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    white = rng.standard_normal(num_samples)
    if exponent != 0.0:
        n = _fft_length(num_samples)
        spec = np.fft.rfft(white, n=n)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        white = np.fft.irfft(spec / f ** (exponent / 2.0), n=n)[:num_samples]
    white -= white.mean()
    return (white / (np.sqrt(np.mean(white ** 2)) + 1e-12)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator,
              noise: np.ndarray | None = None, exponent: float | None = None) -> np.ndarray:
    """Add noise at `snr_db` relative to the utterance's mean power.

    `noise` is a clip to draw a random segment from (tiled if short); otherwise coloured noise
    with the given spectral `exponent` (drawn from [0, 2] when None).
    """
    n = len(audio)
    if noise is None:
        e = rng.uniform(0.0, 2.0) if exponent is None else exponent
        noise = coloured_noise(n, rng, e)
    else:
        reps = -(-n // len(noise)) + 1
        start = int(rng.integers(0, len(noise)))
        noise = np.tile(noise, reps)[start:start + n].astype(np.float32)
    signal_power = float(np.mean(audio.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise.astype(np.float64) ** 2))
    if signal_power <= 0 or noise_power <= 0:
        return audio
    scale = np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (audio + scale * noise).astype(np.float32)


def random_eq(audio: np.ndarray, rng: np.random.Generator, *, max_gain_db: float = 8.0,
              bands: int = 6, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Filter with a smooth random gain curve (`bands` log-spaced points, +-`max_gain_db`)."""
    n = _fft_length(len(audio))
    spec = np.fft.rfft(audio.astype(np.float64), n=n)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    points = np.geomspace(60.0, sample_rate / 2, bands)
    gains = rng.uniform(-max_gain_db, max_gain_db, bands)
    curve = np.interp(np.log(np.maximum(freqs, 60.0)), np.log(points), gains)
    return np.fft.irfft(spec * 10.0 ** (curve / 20.0), n=n)[:len(audio)].astype(np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentations; the default does nothing.

    `speed_factors`: one drawn uniformly per utterance and epoch (e.g. `SPEED_FACTORS`).
    `pitch_semitones`: shift drawn uniformly from [-p, p] with probability `pitch_prob`.
    `noise_snr_db`: (low, high) SNR range, noise added with probability `noise_prob`, from
    `noise_files` clips when given, else coloured noise.
    """

    speed_factors: tuple[float, ...] = ()
    pitch_semitones: float = 0.0
    pitch_prob: float = 1.0
    noise_snr_db: tuple[float, float] | None = None
    noise_prob: float = 1.0
    noise_files: tuple[str, ...] = ()

    def __post_init__(self):
        if any(f <= 0 for f in self.speed_factors):
            raise ValueError(f"speed factors must be positive, got {self.speed_factors}")
        if self.noise_snr_db is not None and self.noise_snr_db[0] > self.noise_snr_db[1]:
            raise ValueError(f"noise_snr_db must be (low, high), got {self.noise_snr_db}")
        for f in self.noise_files:
            if not os.path.isfile(f):
                raise ValueError(f"noise file not found: {f}")

    @property
    def max_speed_stretch(self) -> float:
        """How much longer than the original an utterance can become (1 / slowest factor)."""
        return 1.0 / min(self.speed_factors) if self.speed_factors else 1.0

    @property
    def active(self) -> bool:
        return bool(self.speed_factors) or self.pitch_semitones > 0 or self.noise_snr_db is not None


@dataclass(frozen=True)
class ViewConfig:
    """A second, perturbed view of each utterance (SCORE): speed factor drawn from
    `speed_factors`, then a pitch shift drawn from `pitch_semitones`; with `random_order` the
    original and the perturbed view swap places half of the time."""

    speed_factors: tuple[float, ...] = SPEED_FACTORS
    pitch_semitones: tuple[float, ...] = (-2.0, 2.0)
    random_order: bool = True

    def __post_init__(self):
        if not self.speed_factors or any(f <= 0 for f in self.speed_factors):
            raise ValueError(f"view speed factors must be positive, got {self.speed_factors}")

    @property
    def max_stretch(self) -> float:
        return 1.0 / min(self.speed_factors)


def make_views(audio: np.ndarray, config: ViewConfig, rng: np.random.Generator,
               sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """`(first, second)`: the original and its perturbed copy, in random order with `random_order`."""
    view = speed_perturb(audio, float(rng.choice(np.asarray(config.speed_factors))), sample_rate)
    if config.pitch_semitones:
        view = pitch_shift(view, float(rng.choice(np.asarray(config.pitch_semitones))), sample_rate)
    view = np.asarray(view, np.float32)
    if config.random_order and rng.random() < 0.5:
        return view, audio
    return audio, view


_noise_cache: dict[str, np.ndarray] = {}


def _noise_clip(path: str) -> np.ndarray:
    if path not in _noise_cache:
        _noise_cache[path] = decode_audio(path)
    return _noise_cache[path]


def augment_waveform(audio: np.ndarray, config: AugmentConfig, rng: np.random.Generator,
                     sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Apply the length-preserving augmentations of `config` (pitch, then noise)."""
    if config.pitch_semitones > 0 and rng.random() < config.pitch_prob:
        audio = pitch_shift(audio, rng.uniform(-config.pitch_semitones, config.pitch_semitones),
                            sample_rate)
    if config.noise_snr_db is not None and rng.random() < config.noise_prob:
        snr = rng.uniform(*config.noise_snr_db)
        noise = None
        if config.noise_files:
            noise = _noise_clip(config.noise_files[int(rng.integers(len(config.noise_files)))])
        audio = add_noise(audio, snr, rng, noise)
    return audio
