"""How fast the audio loader delivers batches: decode + resample + bucket + batch, on this machine.

    python bench/data_throughput.py [--corpus DIR] [--task pr] [--batch-size 8] [--threads 2]
                                    [--train-audio-seconds-per-s X]

Uses the demo corpus (built into the cache on first use). Scenarios: the corpus's 16 kHz FLAC as
is; the same audio stored at 44.1 kHz (so every utterance is resampled with soxr); and 16 kHz with
the SCORE augmentations (speed 0.9/1.0/1.1, pitch +-2 semitones, noise). Prints utterances/s and
audio-seconds/s per scenario; with `--train-audio-seconds-per-s` (how much audio one HuBERT-Base
training step consumes per second, measured separately) also the ratio, which should be >= 20.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechft_jax.data.audio import decode_audio  # noqa: E402
from speechft_jax.data.augment import SPEED_FACTORS, AugmentConfig  # noqa: E402
from speechft_jax.data.loader import AudioLoader, LoaderConfig  # noqa: E402
from speechft_jax.data.manifest import Example  # noqa: E402
from speechft_jax.data.source import FileSource  # noqa: E402
from speechft_jax.data.synth import corpus_task, ensure_corpus  # noqa: E402


def _resampled_copy(source: FileSource, rate: int, out: Path) -> FileSource:
    """The same utterances written as `rate` Hz WAV (not timed)."""
    import soxr

    examples = []
    for i, ex in enumerate(source.examples):
        audio = decode_audio(ex.path)
        path = out / f"{i:05d}.wav"
        sf.write(path, soxr.resample(audio, 16000, rate), rate, subtype="PCM_16")
        examples.append(Example(str(path), ex.fields, ex.origin, ex.duration))
    return FileSource(examples)


def _run(source, labels, config: LoaderConfig, epochs: int) -> dict:
    loader = AudioLoader(source, labels, config, process_index=0, process_count=1)
    utterances, seconds = 0, 0.0
    start = time.perf_counter()
    it = iter(loader)
    for _ in range(epochs * loader.num_batches()):
        batch = next(it)
        utterances += int(batch["example_mask"].sum())
        seconds += float(batch["audio_mask"].sum()) / 16000
    elapsed = time.perf_counter() - start
    loader.close()
    return {"utterances": utterances, "audio_s": seconds, "elapsed": elapsed,
            "utt_per_s": utterances / elapsed, "audio_s_per_s": seconds / elapsed,
            "padding": loader.padding_fraction()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", help="corpus folder (default: the demo corpus in the cache)")
    parser.add_argument("--task", default="pr")
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-audio-seconds-per-s", type=float, default=None,
                        help="audio seconds per second one training step consumes (measured)")
    args = parser.parse_args(argv)

    root = Path(args.corpus) if args.corpus else ensure_corpus("demo")
    source, label = corpus_task(root, args.task, args.split)
    base = dict(batch_size=args.batch_size, num_threads=args.threads, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="speechft-bench-"))
    try:
        resampled = _resampled_copy(source, 44100, tmp)
        # Warm the page cache so every scenario reads from memory, as a long run does.
        for ex in source.examples + resampled.examples:
            Path(ex.path).read_bytes()
        scenarios = [
            ("16 kHz flac", source, LoaderConfig(**base)),
            ("44.1 kHz wav, resampled", resampled, LoaderConfig(**base)),
            ("16 kHz + augment", source, LoaderConfig(**base, augment=AugmentConfig(
                speed_factors=SPEED_FACTORS, pitch_semitones=2.0, noise_snr_db=(5.0, 20.0)))),
        ]
        rows = [(name, _run(src, [label], cfg, args.epochs)) for name, src, cfg in scenarios]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"loader throughput: corpus {root.name}, task {args.task}/{args.split}, "
          f"{len(source)} utterances, batch {args.batch_size}, {args.threads} threads, "
          f"{os.cpu_count()} cores")
    ratio_head = "  x train" if args.train_audio_seconds_per_s else ""
    print(f"{'scenario':<26}{'utt/s':>10}{'audio-s/s':>12}{'padding':>10}{ratio_head}")
    for name, r in rows:
        ratio = (f"{r['audio_s_per_s'] / args.train_audio_seconds_per_s:>9.1f}"
                 if args.train_audio_seconds_per_s else "")
        print(f"{name:<26}{r['utt_per_s']:>10.1f}{r['audio_s_per_s']:>12.1f}"
              f"{r['padding']:>10.3f}{ratio}")
    if not args.train_audio_seconds_per_s:
        print("(pass --train-audio-seconds-per-s X, measured from the HuBERT-Base training step, "
              "for the ratio; the goal is >= 20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
