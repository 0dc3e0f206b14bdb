"""Bucketed batches from a stream (HF streaming datasets, TFDS), for data too large to index.

`StreamingLoader(make_stream, labels, config)` reads `StreamItem`s in stream order, decodes each,
applies the training augmentations, puts it in the smallest bucket that holds it and yields a
batch whenever a bucket holds `batch_size` utterances; at the end of the stream the part-filled
buckets are yielded padded and masked. Shuffle the stream itself (e.g. HF
`IterableDataset.shuffle(seed, buffer_size)`). `make_stream()` must give the same items in the
same order every time; the state (`epoch`, items consumed, items waiting in buckets) then restores
the position exactly by replaying the stream without decoding what was already used.

Fixed shapes need fixed label lengths: every `SequenceLabels` spec needs `max_length`, and
`config.bucket_lengths` must be given. With several processes, item k goes to process
`k % process_count`, and there must be a single bucket so that every process yields the same
shapes at each step. A whole pass over the stream that makes no batch (too few items for
`batch_size` with `drop_remainder`, or all of them bad) is a `DataError`, not an endless loop.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from speechft_jax.data.audio import check_waveform, normalize_waveform
from speechft_jax.data.augment import augment_waveform, speed_perturb
from speechft_jax.data.batch import empty_batch, fill_row
from speechft_jax.data.errors import DataError, SkipLog, handle_bad
from speechft_jax.data.labels import LabelSpec, SequenceLabels, check_label_keys

STATE_VERSION = 1


@dataclass(frozen=True)
class StreamItem:
    """One utterance of a stream: `load()` gives its 16 kHz float32 waveform."""

    load: Callable[[], np.ndarray]
    fields: Mapping[str, Any]
    origin: str


class StreamingLoader:
    """Iterable of batches over a replayable stream (see the module docstring)."""

    def __init__(self, make_stream: Callable[[], Iterable[StreamItem]],
                 labels: Sequence[LabelSpec] = (), config=None, *,
                 process_index: int | None = None, process_count: int | None = None,
                 **config_kwargs: Any):
        from speechft_jax.data.loader import LoaderConfig

        config = config if config is not None else LoaderConfig(**config_kwargs)
        if config.bucket_lengths is None:
            raise ValueError("a StreamingLoader needs config.bucket_lengths (it cannot scan the data)")
        self.labels = tuple(labels)
        check_label_keys(self.labels)
        for spec in self.labels:
            if isinstance(spec, SequenceLabels) and spec.max_length is None:
                raise ValueError(f"label spec {spec.key!r} needs max_length for streaming")
        if process_index is None or process_count is None:
            import jax
            process_index, process_count = jax.process_index(), jax.process_count()
        if process_count > 1 and len(config.bucket_lengths) != 1:
            raise ValueError("multi-process streaming needs a single bucket length")
        self.make_stream = make_stream
        self.config = config
        self.process_index, self.process_count = process_index, process_count
        self.bucket_lengths = config.bucket_lengths
        self.repeat = config.train if config.repeat is None else config.repeat
        self.crops = config.train and not any(isinstance(s, SequenceLabels) for s in self.labels)
        self.max_length = min(config.max_length or self.bucket_lengths[-1], self.bucket_lengths[-1])
        self.label_widths = {s.key: s.max_length for s in self.labels
                              if isinstance(s, SequenceLabels)}
        self.skipped = SkipLog("streaming loader") if config.skip_bad else None
        self.too_long = 0
        self._epoch, self._consumed, self._buckets = 0, 0, self._empty_buckets()

    def _empty_buckets(self) -> list[list[tuple[int, np.ndarray, dict]]]:
        return [[] for _ in self.bucket_lengths]

    def get_state(self) -> dict[str, Any]:
        """Epoch, stream items consumed, and the items waiting in buckets (by stream position)."""
        return {"version": STATE_VERSION, "epoch": self._epoch, "consumed": self._consumed,
                "pending": [k for bucket in self._buckets for k, _, _ in bucket],
                "seed": self.config.seed, "process_count": self.process_count}

    def set_state(self, state: Mapping[str, Any]) -> None:
        for key, want in (("version", STATE_VERSION), ("seed", self.config.seed),
                          ("process_count", self.process_count)):
            if state.get(key) != want:
                raise ValueError(f"streaming state has {key}={state.get(key)!r}, expected {want}")
        self._epoch, self._consumed = int(state["epoch"]), int(state["consumed"])
        self._restore = set(int(k) for k in state["pending"])
        self._buckets = self._empty_buckets()

    def _prepare(self, k: int, item: StreamItem) -> tuple[int, np.ndarray, dict] | None:
        """Decode, augment and bucket one item; None if it is skipped."""
        cfg = self.config
        try:
            encoded = {s.key: s.encode(item.fields, item.origin) for s in self.labels}
            for s in self.labels:
                if isinstance(s, SequenceLabels) and len(encoded[s.key]) > s.max_length:
                    raise DataError(item.origin, f"label {s.field!r} has {len(encoded[s.key])} "
                                                 f"tokens, more than max_length {s.max_length}")
            try:
                audio = item.load()
            except DataError:
                raise
            except Exception as e:
                raise DataError(item.origin, f"cannot load audio: {type(e).__name__}: {e}") from None
            rng = np.random.default_rng([cfg.seed, self._epoch, k])
            if cfg.train:
                if cfg.augment.speed_factors:
                    audio = speed_perturb(audio, float(rng.choice(cfg.augment.speed_factors)))
                if cfg.augment.active:
                    audio = augment_waveform(audio, cfg.augment, rng)
            if len(audio) > self.max_length:
                if self.crops:
                    start = int(rng.integers(0, len(audio) - self.max_length + 1))
                    audio = audio[start:start + self.max_length]
                elif cfg.train:
                    self.too_long += 1  # CTC labels cannot be cropped: leave it out
                    return None
                else:
                    raise DataError(item.origin, f"audio has {len(audio)} samples, longer than "
                                                 f"the largest bucket {self.bucket_lengths[-1]}")
            check_waveform(audio, item.origin, cfg.min_samples)
            if cfg.normalize:
                audio = normalize_waveform(audio)
        except DataError as err:
            handle_bad(err, self.skipped)
            return None
        return k, audio, encoded

    def _batch(self, bucket: int) -> dict[str, np.ndarray]:
        rows = self._buckets[bucket]
        self._buckets[bucket] = []
        batch = empty_batch(self.config.batch_size, self.bucket_lengths[bucket], self.labels,
                            self.label_widths)
        for r, (k, audio, encoded) in enumerate(rows):
            fill_row(batch, r, k, audio, self.labels, encoded)
        return batch

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        bs = self.config.batch_size
        while True:
            restore = getattr(self, "_restore", set())
            self._restore = set()
            # A whole epoch from its start without a batch would repeat forever: an error.
            fresh, yielded, items = self._consumed == 0 and not restore, 0, 0
            for k, item in enumerate(self.make_stream()):
                items += 1
                if k % self.process_count != self.process_index:
                    continue
                if k < self._consumed:
                    if k in restore:  # waiting in a bucket when the state was saved
                        prepared = self._prepare(k, item)
                        if prepared is not None:
                            b = int(np.searchsorted(self.bucket_lengths, len(prepared[1])))
                            self._buckets[b].append(prepared)
                    continue
                prepared = self._prepare(k, item)
                self._consumed = k + 1
                if prepared is None:
                    continue
                b = int(np.searchsorted(self.bucket_lengths, len(prepared[1])))
                self._buckets[b].append(prepared)
                if len(self._buckets[b]) == bs:
                    yielded += 1
                    yield self._batch(b)
            for b in range(len(self.bucket_lengths)):
                if self._buckets[b]:
                    if self.config.drop_remainder:
                        self._buckets[b] = []
                    else:
                        yielded += 1
                        yield self._batch(b)
            if self.skipped is not None:
                self.skipped.warn()
            if self.too_long:
                warnings.warn(f"streaming loader: left out {self.too_long} utterance(s) longer "
                              f"than {self.max_length} samples (sequence labels cannot be cropped)",
                              stacklevel=2)
                self.too_long = 0
            if fresh and not yielded:
                remainder = " with drop_remainder" if self.config.drop_remainder else ""
                raise DataError("streaming loader", f"a whole pass over the stream ({items} item(s)) "
                                                    f"made no batch of {bs}{remainder}; lower the batch size")
            self._epoch, self._consumed = self._epoch + 1, 0
            if not self.repeat:
                return
