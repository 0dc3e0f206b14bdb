"""Rendering jobs into audio files and manifest records (runs in a fresh worker process).

Per utterance: eSpeak NG at 22050 Hz -> soxr to 16 kHz -> trim the engine's silence -> random
lead/trail silence (or placement in a 1 s keyword clip) -> random EQ -> coloured noise at the
job's SNR -> random peak level -> 16-bit FLAC. Phone labels come from the engine's own
pronunciation of the text in the speaker's accent.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from speechft_jax.data.audio import SAMPLE_RATE, resample
from speechft_jax.data.augment import coloured_noise, random_eq
from speechft_jax.data.synth.engine import EspeakEngine, private_data_dir
from speechft_jax.data.synth.phones import phone_labels
from speechft_jax.data.synth.plan import Job


def trim_silence(audio: np.ndarray, threshold_db: float = -45.0, margin: int = 320) -> np.ndarray:
    """Cut leading and trailing samples quieter than `threshold_db` below the peak (10 ms frames)."""
    frame = SAMPLE_RATE // 100
    n = len(audio) // frame
    if n == 0:
        return audio
    energy = (audio[:n * frame].reshape(n, frame) ** 2).mean(axis=1)
    active = np.nonzero(energy > energy.max() * 10 ** (threshold_db / 10))[0]
    start = max(0, active[0] * frame - margin)
    end = min(len(audio), (active[-1] + 1) * frame + margin)
    return audio[start:end]


def render_job(engine: EspeakEngine, job: Job, out_dir: Path) -> dict:
    """Render one job to `out_dir / job.path`; return its manifest record."""
    rng = np.random.default_rng(job.seed)
    if job.text:
        pcm = engine.synthesize(job.text, job.voice, rate=job.rate, pitch=job.pitch,
                                pitch_range=job.pitch_range, seed=job.seed)
        speech = trim_silence(resample(pcm.astype(np.float32) / 32768.0, engine.sample_rate))
        phones = phone_labels(engine.phonemize(job.text, job.phone_voice), job.lang, job.uid)
    else:
        speech, phones = np.zeros(0, np.float32), []
    if job.clip_seconds:
        total = max(int(job.clip_seconds * SAMPLE_RATE), len(speech))
        start = int(rng.integers(0, total - len(speech) + 1))
    else:
        start = int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
        total = start + len(speech) + int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
    audio = np.zeros(total, np.float32)
    audio[start:start + len(speech)] = speech
    if len(speech):
        audio = random_eq(audio, rng)
        # The SNR is measured against the speech, the noise covers the whole clip.
        speech_power = float(np.mean(audio[start:start + len(speech)].astype(np.float64) ** 2))
        noise_rms = np.sqrt(speech_power / 10 ** (job.snr_db / 10))
        audio = audio + noise_rms * coloured_noise(total, rng, rng.uniform(0.0, 2.0))
    else:  # a _silence_ clip: background noise only, at a random level
        audio = random_eq(coloured_noise(total, rng, rng.uniform(0.0, 2.0)), rng)
        audio *= 10 ** rng.uniform(-3.0, -1.0)
    peak = float(np.abs(audio).max()) or 1.0
    level = rng.uniform(0.3, 0.95) if len(speech) else min(1.0, peak)
    audio = (audio * (level / peak)).astype(np.float32)
    path = out_dir / job.path
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    record = {"id": job.uid, "path": job.path, "duration": round(len(audio) / SAMPLE_RATE, 4),
              "split": job.split, "speaker": job.speaker, "lang": job.lang, "text": job.text,
              "phones": " ".join(phones), "snr_db": job.snr_db}
    if job.style is not None:
        record["style"] = job.style
    if job.keyword is not None:
        record["keyword"] = job.keyword
    return record


def render_chunk(out_dir: str, jobs: list[Job], variants: dict[str, str]) -> list[dict]:
    """Render `jobs` in order with a fresh engine (call in a fresh process for reproducibility).

    `variants` (name -> variant file text) must hold every voice variant the jobs use.
    """
    with tempfile.TemporaryDirectory(prefix="speechft-espeak-") as tmp:
        engine = EspeakEngine(private_data_dir(Path(tmp), variants))
        return [render_job(engine, job, Path(out_dir)) for job in jobs]
