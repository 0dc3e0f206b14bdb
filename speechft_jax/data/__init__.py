"""Audio data: sources, labels, bucketed fixed-shape batches, augmentation, the demo corpus.

The path of data:
  source  (`FileSource` from a manifest or folder, `HFDatasetSource`, `TFDSSource`)
    -> labels (`SequenceLabels` with a `Vocabulary`, `ClassLabel` with `ClassLabels`)
    -> `AudioLoader(source, labels, LoaderConfig(...))` -> batches (dicts of numpy arrays)
  For streams too large to index: `StreamingLoader(make_stream, labels, config)`.

Batch keys (B = per-process batch size, T = bucket length in samples, L = label length):
  `audio` float32 [B, T] (16 kHz, zero-padded), `audio_mask` int32 [B, T] (1 = real sample),
  `example_mask` bool [B] (False for filler rows), `example_index` int32 [B] (-1 for filler);
  CTC labels (`SequenceLabels(key="labels")`): `labels` int32 [B, L] padded with the vocabulary's
  pad id, `label_mask` int32 [B, L], `label_lengths` int32 [B]; for another key K: `K`,
  `K_mask`, `K_lengths`. Class labels (`ClassLabel(key="label")`): `label` int32 [B].
  Multitask: several specs with distinct keys, e.g. `phones`, `speaker`, `style`.

Bad input raises `DataError` (one line naming the file and line), or with `skip_bad` is skipped
and counted in a warning. The demo corpus: `speechft_jax.data.synth.ensure_corpus("demo")`.
"""

from speechft_jax.data.audio import (
    MIN_SAMPLES, SAMPLE_RATE, decode_audio, normalize_waveform, prepare_waveform,
)
from speechft_jax.data.augment import AugmentConfig, SPEED_FACTORS
from speechft_jax.data.buckets import choose_bucket_lengths
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import ClassLabel, SequenceLabels
from speechft_jax.data.loader import AudioLoader, LoaderConfig, evaluation_loader, make_global_batch
from speechft_jax.data.manifest import Example, read_manifest, scan_audio_folder, write_manifest
from speechft_jax.data.mfcc import mfcc
from speechft_jax.data.source import AudioSource, FileSource
from speechft_jax.data.streaming import StreamItem, StreamingLoader
from speechft_jax.data.vocab import ClassLabels, Vocabulary

__all__ = [
    "MIN_SAMPLES", "SAMPLE_RATE", "SPEED_FACTORS", "AudioLoader", "AudioSource", "AugmentConfig",
    "ClassLabel", "ClassLabels", "DataError", "Example", "FileSource", "LoaderConfig",
    "SequenceLabels", "StreamItem", "StreamingLoader", "Vocabulary", "choose_bucket_lengths",
    "decode_audio", "evaluation_loader", "make_global_batch", "mfcc", "normalize_waveform", "prepare_waveform",
    "read_manifest", "scan_audio_folder", "write_manifest",
]
