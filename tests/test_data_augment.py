"""Speed perturbation, pitch shift, noise and EQ: lengths, effects and seeding."""

import numpy as np
import pytest

from speechft_jax.data.augment import (
    AugmentConfig, add_noise, augment_waveform, pitch_shift, random_eq, speed_perturb,
)

SR = 16000


def _tone(freq=220.0, seconds=2.0):
    t = np.arange(int(SR * seconds)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * SR / len(x)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_changes_length_and_pitch(factor):
    y = speed_perturb(_tone(), factor)
    assert len(y) == round(32000 / factor)
    assert _peak_hz(y) == pytest.approx(220 * factor, abs=3)


@pytest.mark.parametrize("semitones", [-2.0, 2.0])
def test_pitch_shift_keeps_length(semitones):
    y = pitch_shift(_tone(), semitones)
    assert len(y) == 32000
    assert _peak_hz(y) == pytest.approx(220 * 2 ** (semitones / 12), abs=3)


def test_noise_hits_requested_snr():
    x = _tone()
    y = add_noise(x, 10.0, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(x ** 2) / np.mean((y - x) ** 2))
    assert snr == pytest.approx(10.0, abs=1e-3)


def test_augment_is_seeded():
    cfg = AugmentConfig(pitch_semitones=2.0, noise_snr_db=(5.0, 20.0))
    x = _tone()
    a = augment_waveform(x, cfg, np.random.default_rng([3, 1]))
    b = augment_waveform(x, cfg, np.random.default_rng([3, 1]))
    c = augment_waveform(x, cfg, np.random.default_rng([3, 2]))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and len(a) == len(x)
    eq = random_eq(x, np.random.default_rng(0))
    assert len(eq) == len(x) and not np.allclose(eq, x)


def test_augment_config_validation(tmp_path):
    assert AugmentConfig(speed_factors=(0.9, 1.0, 1.1)).max_speed_stretch == pytest.approx(1 / 0.9)
    with pytest.raises(ValueError, match="noise file not found"):
        AugmentConfig(noise_files=(str(tmp_path / "none.wav"),))
