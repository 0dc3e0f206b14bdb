"""The batch: a dict of numpy arrays with fixed shapes per bucket, built from loaded rows.

Keys (B = per-process batch size, T = the bucket's padded length in samples):
  `audio`          float32 `[B, T]`  waveforms at 16 kHz, zero-padded
  `audio_mask`     int32   `[B, T]`  1 where `audio` is real
  `example_mask`   bool    `[B]`     False for filler rows (last batch of a bucket, skipped input)
  `example_index`  int32   `[B]`     index of the utterance in its source, -1 for filler rows
plus, per label spec (labels.py): `SequenceLabels` -> `<key>` int32 `[B, L]` padded with the
vocabulary's pad id, `<key>_mask` int32 `[B, L]`, `<key>_lengths` int32 `[B]` (`labels`,
`label_mask`, `label_lengths` for the default key); `ClassLabel` -> `<key>` int32 `[B]`
(0 in filler rows), and `TrialLabels` the same zeros; `ClassGroupLabels` -> `<key>` int32
`[B, G]`; `SpeakerActivityLabels` -> `<key>` uint8 `[B, L, S]` (0 past an utterance's frames).
L is fixed per spec for the whole run.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from speechft_jax.data.labels import (
    ClassGroupLabels, ClassLabel, LabelSpec, SequenceLabels, SpeakerActivityLabels, TrialLabels,
)


def empty_batch(batch_size: int, length: int, specs: Sequence[LabelSpec],
                label_widths: Mapping[str, int]) -> dict[str, np.ndarray]:
    """A batch of filler rows; `label_widths[key]` is L for each `SequenceLabels` and
    `SpeakerActivityLabels` spec."""
    batch = {
        "audio": np.zeros((batch_size, length), np.float32),
        "audio_mask": np.zeros((batch_size, length), np.int32),
        "example_mask": np.zeros((batch_size,), bool),
        "example_index": np.full((batch_size,), -1, np.int32),
    }
    for spec in specs:
        if isinstance(spec, SequenceLabels):
            width = label_widths[spec.key]
            batch[spec.key] = np.full((batch_size, width), spec.vocab.pad_id, np.int32)
            batch[spec.mask_key] = np.zeros((batch_size, width), np.int32)
            batch[spec.lengths_key] = np.zeros((batch_size,), np.int32)
        elif isinstance(spec, (ClassLabel, TrialLabels)):
            batch[spec.key] = np.zeros((batch_size,), np.int32)
        elif isinstance(spec, ClassGroupLabels):
            batch[spec.key] = np.zeros((batch_size, len(spec.fields)), np.int32)
        elif isinstance(spec, SpeakerActivityLabels):
            batch[spec.key] = np.zeros((batch_size, label_widths[spec.key], spec.num_speakers), np.uint8)
        else:
            raise TypeError(f"unknown label spec {spec!r}")
    return batch


def fill_row(batch: dict[str, np.ndarray], row: int, index: int, audio: np.ndarray,
             specs: Sequence[LabelSpec], labels: Mapping[str, object]) -> None:
    """Write one utterance (waveform no longer than the bucket, encoded labels) into `row`."""
    n = len(audio)
    batch["audio"][row, :n] = audio
    batch["audio_mask"][row, :n] = 1
    batch["example_mask"][row] = True
    batch["example_index"][row] = index
    for spec in specs:
        value = labels[spec.key]
        if isinstance(spec, SequenceLabels):
            k = len(value)
            batch[spec.key][row, :k] = value
            batch[spec.mask_key][row, :k] = 1
            batch[spec.lengths_key][row] = k
        elif isinstance(spec, SpeakerActivityLabels):
            frames = min(len(value), batch[spec.key].shape[1])
            batch[spec.key][row, :frames] = value[:frames]
        else:
            batch[spec.key][row] = value
