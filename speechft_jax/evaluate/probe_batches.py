"""The batches probes train and are scored on: cached features, or audio for the encoders to run.

A split is read once (`read_split`: the evaluation loader checks every utterance's audio length and
label before any work) into its lengths in samples, its encoded labels and its few padded length
buckets (the evaluation loader's choice, which feature extraction pads to as well, so that both
modes give the encoder the same padded input). Both kinds of batches plan an epoch alike: the
utterances of each bucket in batches of one fixed size (filler rows masked out), the train split
shuffled by `numpy.random.default_rng([seed, epoch])` through `data.buckets.plan_batches`, exactly
as `data.AudioLoader` shuffles a training epoch. So the batch of a train step is a pure function of
(seed, epoch, position): a resumed run reads what an uninterrupted one would, and the cached and
on-the-fly modes read the same batches.

Every batch holds `example_mask` bool `[B]` and the labels (`label_layout` of the probe's kind):
`labels` int32 `[B]` (class ids; zeros for a verification split's trial utterances), `[B, G]`
(an intent's slots), `[B, W]` with `label_mask` (CTC) or uint8 `[B, W, S]` (speaker activity), plus either `audio` float32 `[B, S]` and `audio_mask` int32
`[B, S]` (`AudioBatches`: decoded by the loader's threads while the device works) or `features`
float16 `[K, L+1, B, T, D]` and `frame_mask` bool `[B, T]` (`FeatureBatches`: read from memory-
mapped cache entries by a background thread).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
from typing import Callable, Iterator, Sequence

import numpy as np

from speechft_jax.data import evaluation_loader
from speechft_jax.data.buckets import plan_batches
from speechft_jax.data.labels import SequenceLabels
from speechft_jax.data.loader import AudioLoader, LoaderConfig
from speechft_jax.evaluate.features import FeatureSet

PREFETCH = 2  # batches assembled ahead of the device


@dataclasses.dataclass
class SplitData:
    """One split as the probes read it: `lengths` int64 `[n]` (samples at 16 kHz, or frames for
    features held in memory), the encoded `labels` in source order, and the padded `bucket_lengths`."""

    lengths: np.ndarray
    labels: list
    bucket_lengths: tuple[int, ...]


def read_split(bundle, source, label_spec, batch_size: int, num_buckets: int) -> tuple[SplitData, AudioLoader]:
    """The split's `SplitData` and its evaluation loader (every utterance once, in order)."""
    loader = evaluation_loader(source, [label_spec], batch_size=batch_size,
                               normalize=bool(bundle.preprocessor.get("do_normalize")),
                               min_samples=bundle.config.receptive_field, num_buckets=num_buckets)
    labels = [None if e is None else e[label_spec.key] for e in loader.encoded]
    return SplitData(loader.lengths.copy(), labels, tuple(loader.bucket_lengths)), loader


def label_layout(kind: str) -> str:
    """How a probe kind's labels are batched: `sequence` (CTC), `frames` (speaker activity),
    `groups` (intent slots) or `class` (one id)."""
    return {"ctc": "sequence", "diarization": "frames", "intent": "groups"}.get(kind, "class")


def label_width(labels: Sequence, layout: str) -> int | None:
    """The padded width of sequence or frame labels (the loader's rule: the longest, rounded up to 8);
    None for the other layouts, whose labels have no width."""
    if layout not in ("sequence", "frames"):
        return None
    return -(-max((len(label) for label in labels), default=1) // 8) * 8


def _ahead(items: Iterator, work: Callable, depth: int = PREFETCH) -> Iterator:
    """`work(item)` for each item, computed `depth` items ahead on a background thread."""
    with cf.ThreadPoolExecutor(1, thread_name_prefix="probe-batches") as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class FeatureBatches:
    """Batches of K `FeatureSet`s sharing labels (module docstring). `split` gives the planning
    lengths and buckets; `padded_frames(bucket)` is a bucket's frame count (the encoder's frame
    rule for buckets in samples, the bucket itself for buckets in frames); `width`: the padded
    width of sequence or frame labels; `layout`: `label_layout` of the probe's kind; `source` and
    `label_spec`: what verification and diarization score against (the trials, reference segments),
    as `AudioBatches` has them."""

    def __init__(self, sets: Sequence[FeatureSet], split: SplitData, batch_size: int,
                 padded_frames: Callable[[int], int], width: int | None, layout: str = "class",
                 source=None, label_spec=None):
        self.sets, self.split, self.batch_size, self.width = list(sets), split, batch_size, width
        self.layout, self.source, self.label_spec = layout, source, label_spec
        self.padded_frames = padded_frames
        self.labels = sets[0].labels
        self.steps_per_epoch = len(self._plan(None))

    def _plan(self, rng):
        return plan_batches(self.split.lengths, self.split.bucket_lengths, self.batch_size, rng=rng)

    def _assemble(self, plan) -> tuple[np.ndarray, dict]:
        first = self.sets[0]
        frames = self.padded_frames(plan.bucket_length)
        features = np.zeros((len(self.sets), first.num_states, self.batch_size, frames, first.hidden), np.float16)
        frame_mask = np.zeros((self.batch_size, frames), bool)
        for row, i in enumerate(plan.indices):
            if i < 0:
                continue
            for k, data in enumerate(self.sets):
                states = data.features[i]
                n = min(states.shape[1], frames)
                features[k, :, row, :n] = states[:, :n]
            frame_mask[row, :n] = True
        batch = {"features": features, "frame_mask": frame_mask, "example_mask": plan.indices >= 0}
        batch.update(_labels(self.labels, plan.indices, self.width, self.layout))
        return plan.indices, batch

    def train(self, seed: int, start_step: int) -> Iterator[dict]:
        """Shuffled batches from train step `start_step` on, epoch after epoch."""
        def plans():
            epoch, position = divmod(start_step, self.steps_per_epoch)
            while True:
                yield from self._plan(np.random.default_rng([seed, epoch]))[position:]
                epoch, position = epoch + 1, 0

        for _, batch in _ahead(plans(), self._assemble):
            yield batch

    def once(self) -> Iterator[tuple[np.ndarray, dict]]:
        """`(positions in the sets, -1 for filler rows; batch)` over every utterance once, in order."""
        return _ahead(iter(self._plan(None)), self._assemble)


def _labels(labels: Sequence, rows: np.ndarray, width: int | None, layout: str = "class") -> dict:
    """`labels` (and `label_mask`) of a batch's rows (-1: filler), batched as `layout` says."""
    if layout == "class":
        return {"labels": np.array([labels[i] if i >= 0 else 0 for i in rows], np.int32)}
    if layout == "groups":
        groups = len(next(labels[i] for i in rows if i >= 0))
        return {"labels": np.array([labels[i] if i >= 0 else np.zeros(groups) for i in rows], np.int32)}
    if layout == "frames":
        speakers = next(labels[i] for i in rows if i >= 0).shape[1]
        values = np.zeros((len(rows), width, speakers), np.uint8)
        for row, i in enumerate(rows):
            if i >= 0:
                values[row, :len(labels[i])] = labels[i][:width]
        return {"labels": values}
    values, mask = np.zeros((len(rows), width), np.int32), np.zeros((len(rows), width), np.int32)
    for row, i in enumerate(rows):
        if i >= 0:
            values[row, :len(labels[i])] = labels[i]
            mask[row, :len(labels[i])] = 1
    return {"labels": values, "label_mask": mask}


class AudioBatches:
    """Batches of a split's audio for the encoders to run in the probes' step (module docstring);
    `loader` is the split's evaluation loader from `read_split`."""

    def __init__(self, source, label_spec, split: SplitData, loader: AudioLoader, batch_size: int):
        self.source, self.label_spec, self.split, self.loader = source, label_spec, split, loader
        self.batch_size = batch_size
        self.labels = split.labels

    def _device_batch(self, batch: dict) -> dict:
        spec = self.label_spec
        out = {"audio": batch["audio"], "audio_mask": batch["audio_mask"], "example_mask": batch["example_mask"],
               "labels": batch[spec.key]}
        if isinstance(spec, SequenceLabels):
            out["label_mask"] = batch[spec.mask_key]
        return out

    def train(self, seed: int, start_step: int) -> Iterator[dict]:
        """Shuffled batches from train step `start_step` on, epoch after epoch (an `AudioLoader` in
        training mode without augmentation, on the split's buckets, placed at that step)."""
        cfg = self.loader.config
        loader = AudioLoader(self.source, [self.label_spec], LoaderConfig(
            batch_size=self.batch_size, bucket_lengths=self.split.bucket_lengths, train=True, seed=seed,
            repeat=True, normalize=cfg.normalize, min_samples=cfg.min_samples, num_threads=4, prefetch_batches=4),
            process_index=0, process_count=1)
        epoch, position = divmod(start_step, loader.num_batches())
        loader.set_state({**loader.get_state(), "epoch": epoch, "batch": position})
        try:
            for batch in loader:
                yield self._device_batch(batch)
        finally:
            loader.close()

    def once(self) -> Iterator[tuple[np.ndarray, dict]]:
        """`(source indices, -1 for filler rows; batch)` over every utterance once, in order."""
        try:
            for batch in self.loader:
                yield np.where(batch["example_mask"], batch["example_index"], -1), self._device_batch(batch)
        finally:
            self.loader.close()
