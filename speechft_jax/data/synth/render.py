"""Rendering jobs into audio files and manifest records (runs in a fresh worker process).

Per utterance: eSpeak NG at 22050 Hz -> soxr to 16 kHz -> trim the engine's silence -> random
lead/trail silence (or placement in a 1 s keyword clip) -> random EQ -> coloured noise at the
job's SNR -> random peak level -> 16-bit FLAC. Phone labels come from the engine's own
pronunciation of the text in the speaker's accent.
A diarization mixture renders its two sources the same way up to the trim, cut without margin
(so each one's speech extent, measured on the clean signal, is exactly the clip), gives each its
own EQ, places them on a 10 ms grid and adds the noise over the sum.
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
from speechft_jax.data.synth.plan import Job, MixJob

GRID = SAMPLE_RATE // 100  # mixture placements and trimmed clips fall on 10 ms steps


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
        speech = clean_speech(engine, job)
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
    record.update(job.labels)
    return record


def clean_speech(engine: EspeakEngine, job: Job, margin: int = 320) -> np.ndarray:
    """`job`'s text spoken at 16 kHz, float32 `[samples]`, trimmed to its speech (+ `margin`)."""
    pcm = engine.synthesize(job.text, job.voice, rate=job.rate, pitch=job.pitch,
                            pitch_range=job.pitch_range, seed=job.seed)
    return trim_silence(resample(pcm.astype(np.float32) / 32768.0, engine.sample_rate),
                        margin=margin)


def render_mixture(engine: EspeakEngine, job: MixJob, out_dir: Path) -> dict:
    """Render a two-speaker mixture to `out_dir / job.path`; return its manifest record, whose
    `segments` are the sources' placements `[start_s, end_s, speaker]`."""
    rng = np.random.default_rng(job.seed)
    # Without a margin the clip is whole 10 ms frames from the first to the last active one.
    first, second = (random_eq(clean_speech(engine, source, margin=0), rng) for source in job.sources)
    second = second * (_rms(first) / _rms(second) * 10 ** (job.gain_db / 20))
    start_1 = _on_grid(job.lead_seconds * SAMPLE_RATE)
    end_1 = start_1 + len(first)
    if job.overlap > 0:
        start_2 = end_1 - _on_grid(job.overlap * min(len(first), len(second)))
    else:
        start_2 = end_1 + _on_grid(job.gap_seconds * SAMPLE_RATE)
    end_2 = start_2 + len(second)
    total = max(end_1, end_2) + _on_grid(job.trail_seconds * SAMPLE_RATE)
    audio = np.zeros(total, np.float32)
    audio[start_1:end_1] += first
    audio[start_2:end_2] += second
    active = np.zeros(total, bool)
    active[start_1:end_1] = active[start_2:end_2] = True
    noise_rms = np.sqrt(float(np.mean(audio[active].astype(np.float64) ** 2)) / 10 ** (job.snr_db / 10))
    audio = audio + noise_rms * coloured_noise(total, rng, rng.uniform(0.0, 2.0))
    audio = (audio * (rng.uniform(0.3, 0.95) / (float(np.abs(audio).max()) or 1.0))).astype(np.float32)
    path = out_dir / job.path
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    a, b = job.sources
    return {"id": job.uid, "path": job.path, "duration": round(total / SAMPLE_RATE, 4),
            "split": job.split, "speakers": [a.speaker, b.speaker],
            "segments": [[start_1 / SAMPLE_RATE, end_1 / SAMPLE_RATE, a.speaker],
                         [start_2 / SAMPLE_RATE, end_2 / SAMPLE_RATE, b.speaker]],
            "sources": [a.uid, b.uid], "texts": [a.text, b.text], "snr_db": job.snr_db}


def _on_grid(samples: float) -> int:
    return int(round(samples / GRID)) * GRID


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) or 1.0


def render_chunk(out_dir: str, jobs: list[Job | MixJob], variants: dict[str, str]) -> list[dict]:
    """Render `jobs` in order with a fresh engine (call in a fresh process for reproducibility).

    `variants` (name -> variant file text) must hold every voice variant the jobs use.
    """
    with tempfile.TemporaryDirectory(prefix="speechft-espeak-") as tmp:
        engine = EspeakEngine(private_data_dir(Path(tmp), variants))
        return [(render_mixture if isinstance(job, MixJob) else render_job)(engine, job, Path(out_dir))
                for job in jobs]
