"""The one encode path: a forward pass run over every utterance of a source, utterance by utterance.

`encode_source(bundle, source, forward, ...)` batches the source into a few padded length buckets
(`data.evaluation_loader`: every utterance once, uncropped; the bundle says whether to normalise the
waveform), runs `forward(audio [B, samples], audio_mask [B, samples]) -> (states [..., B, T, D],
frame_mask [B, T])` per batch (one encoder's hidden states, K merged encoders stacked in front, a
teacher's layer, MFCC frames), brings each batch's result to the host once and yields one
`EncodedUtterance` per real row: its index in the source, its states over its valid frames, its
frame count and its encoded labels. Extraction to files, evaluation features, the alpha sweep and
HuBERT's k-means all read their audio through it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from speechft_jax.cli import progress_bars_shown
from speechft_jax.data import evaluation_loader
from speechft_jax.data.labels import LabelSpec, SequenceLabels


@dataclasses.dataclass(frozen=True)
class EncodedUtterance:
    """One utterance's forward output. `states` `[..., frames, D]` is a view of its batch's host
    array (copy or cast it to keep it past the batch); `labels` holds one encoded label per label
    spec asked for: an int (a class), an int32 array `[tokens]` (a sequence) or `[slots]`, or uint8
    `[frames, speakers]` (speaker activity)."""

    index: int
    states: np.ndarray
    frames: int
    labels: tuple[Any, ...] = ()


def _row_label(batch: dict, spec: LabelSpec, row: int, encoded: dict):
    if isinstance(spec, SequenceLabels):
        return batch[spec.key][row, :batch[spec.lengths_key][row]].copy()
    if batch[spec.key].ndim > 1:  # slot ids, or speaker activity (whose padding the batch does not keep)
        return encoded[spec.key]
    return int(batch[spec.key][row])


def encode_source(bundle, source, forward: Callable, *, labels: Sequence[LabelSpec] = (), batch_size: int = 8,
                  min_samples: int | None = None, num_buckets: int = 4, desc: str = "features",
                  leave: bool = False) -> Iterator[EncodedUtterance]:
    """Every utterance of `source` through `forward`, in the loader's order (by length bucket; sort
    by `index` for source order), each once.

    `bundle` (a `PretrainedBundle`) gives the preprocessing (`do_normalize`) and, unless
    `min_samples` says otherwise, the shortest usable utterance (its receptive field; a shorter
    one is a `DataError`). Utterances are padded to `num_buckets` lengths chosen from the source;
    valid frames are the first `frame_mask[row].sum()` (right padding).
    The progress bar (`desc`, kept on screen when `leave`) follows `--quiet`. Close the iterator
    (`contextlib.closing`) when stopping early, so the loader's decoding threads stop at once.
    """
    loader = evaluation_loader(source, list(labels), batch_size=batch_size,
                               normalize=bool(bundle.preprocessor.get("do_normalize")),
                               min_samples=bundle.config.receptive_field if min_samples is None else min_samples,
                               num_buckets=num_buckets)
    try:
        for batch in tqdm(loader, total=loader.num_batches(), desc=desc, unit="batch", leave=leave,
                          disable=not progress_bars_shown()):
            states, frame_mask = jax.device_get(forward(batch["audio"], batch["audio_mask"]))
            for row in np.flatnonzero(batch["example_mask"]):
                frames = int(frame_mask[row].sum())
                index = int(batch["example_index"][row])
                yield EncodedUtterance(index, states[..., row, :frames, :], frames,
                                       tuple(_row_label(batch, spec, row, loader.encoded[index]) for spec in labels))
    finally:
        loader.close()
