"""The training/evaluation loader: bucketed fixed-shape batches in a seeded, resumable order.

`AudioLoader(source, labels, config)` reads every utterance's length and labels once (so bad
labels and missing files fail before the first step), chooses a few bucket lengths, and then
yields batches (format in batch.py). The order of an epoch depends only on `(seed, epoch)`;
`get_state()` / `set_state()` save and restore the position exactly (store the state with the
checkpoint). For multi-host runs every process plans the same global batches of
`batch_size * process_count` rows and keeps its own slice (rows
`process_index * batch_size ...`), so all processes run the same bucket at each step;
`make_global_batch` assembles the per-process slices into global `jax.Array`s.

With `view` set (SCORE), every row also carries a second, perturbed view of the same utterance
(`view_audio`, `view_audio_mask`; see `augment.make_views`), and buckets leave room for the
slowest speed factor of that view.

Training (`train=True`) shuffles, applies `augment` (speed factor drawn per utterance and epoch,
pitch shift, noise; all seeded per utterance) and crops utterances longer than `max_length` at a
random offset, unless the labels are sequences (CTC), where such utterances are left out of the
epoch instead. Evaluation (`train=False`) keeps the source order, never crops and never drops.

An utterance shorter than `min_samples` (the encoder's receptive field: its CNN would give no
frame) is bad input, and so is a dataset too small for one batch: a `DataError` rather than a
loader that spins through empty epochs.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from speechft_jax.data.audio import MIN_SAMPLES, check_waveform, normalize_waveform
from speechft_jax.data.augment import AugmentConfig, ViewConfig, augment_waveform, make_views, speed_perturb
from speechft_jax.data.batch import empty_batch, fill_row
from speechft_jax.data.buckets import (
    FRAME_SAMPLES, BatchPlan, choose_bucket_lengths, padding_fraction, plan_batches,
)
from speechft_jax.data.errors import DataError, SkipLog, handle_bad
from speechft_jax.data.labels import LabelSpec, SequenceLabels, SpeakerActivityLabels, check_label_keys
from speechft_jax.data.source import AudioSource

STATE_VERSION = 1


@dataclass(frozen=True)
class LoaderConfig:
    """How to batch a source. Lengths are in samples at 16 kHz.

    `batch_size` is per process. `bucket_lengths` None: `num_buckets` chosen from the data.
    `max_length`: training crop (or filter, for CTC labels). `repeat` None means `train`.
    `normalize` is the encoder config's `do_normalize`. `min_samples` is the shortest usable
    utterance: the encoder's receptive field (`EncoderConfig.receptive_field`), below which its CNN
    gives no frame; a shorter one (after the fastest speed perturbation, in training) is a
    `DataError`, or skipped with `skip_bad`.
    """

    batch_size: int
    num_buckets: int = 4
    bucket_lengths: tuple[int, ...] | None = None
    max_length: int | None = None
    train: bool = True
    seed: int = 0
    repeat: bool | None = None
    drop_remainder: bool = False
    normalize: bool = False
    skip_bad: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    view: ViewConfig | None = None
    num_threads: int = 2
    prefetch_batches: int = 2
    length_multiple: int = FRAME_SAMPLES
    min_samples: int = MIN_SAMPLES

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {self.min_samples}")
        if self.max_length is not None and self.max_length < self.min_samples:
            raise ValueError(f"max_length must be >= min_samples ({self.min_samples}), got {self.max_length}")
        if self.bucket_lengths is not None:
            object.__setattr__(self, "bucket_lengths", tuple(sorted(int(b) for b in self.bucket_lengths)))


def _length_tolerance(expected: int) -> int:
    # Durations in manifests are rounded; a larger mismatch means a wrong duration or a bad file.
    return max(FRAME_SAMPLES, expected // 100)


class AudioLoader:
    """Iterable of batches over an `AudioSource` (see the module docstring); `name` says what
    the source is in error messages (default: its class name)."""

    def __init__(self, source: AudioSource, labels: Sequence[LabelSpec] = (),
                 config: LoaderConfig | None = None, *, process_index: int | None = None,
                 process_count: int | None = None, name: str | None = None, **config_kwargs: Any):
        if config is None:
            config = LoaderConfig(**config_kwargs)
        elif config_kwargs:
            raise TypeError("pass either a LoaderConfig or keyword arguments, not both")
        self.source = source
        self.name = name or type(source).__name__
        self.labels = tuple(labels)
        check_label_keys(self.labels)
        self.config = config
        if process_index is None or process_count is None:
            import jax
            process_index = jax.process_index() if process_index is None else process_index
            process_count = jax.process_count() if process_count is None else process_count
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index {process_index} not in [0, {process_count})")
        self.process_index, self.process_count = process_index, process_count
        self.repeat = config.train if config.repeat is None else config.repeat
        self.skipped = SkipLog(f"{self.name} loader") if config.skip_bad else None
        self._read_metadata()
        self._choose_buckets()
        self._epoch, self._batch = 0, 0
        self._plan_cache: tuple[int, Any] | None = None
        self._pool: cf.ThreadPoolExecutor | None = None
        self._check_batches(0)

    # ----------------------------------------------------------------- metadata, buckets
    @property
    def min_length(self) -> int:
        """The shortest usable utterance in samples: `min_samples`, raised in training so that
        the fastest speed perturbation (and view) still leaves the CNN one frame."""
        cfg = self.config
        fastest = max(cfg.augment.speed_factors) if cfg.train and cfg.augment.speed_factors else 1.0
        if cfg.view is not None:
            fastest *= max(cfg.view.speed_factors)
        return max(cfg.min_samples, int(np.ceil(cfg.min_samples * fastest - 1e-9)))

    def _read_metadata(self) -> None:
        n = len(self.source)
        self.lengths = np.full(n, -1, np.int64)
        self.encoded: list[dict[str, Any] | None] = [None] * n
        shortest = self.min_length
        for i in range(n):
            try:
                where = self.source.origin(i)
                length = int(self.source.num_samples(i))
                if length < shortest:
                    sped = "" if shortest == self.config.min_samples else " once sped up for augmentation"
                    raise DataError(where, f"audio has {length} samples at 16 kHz, fewer than the "
                                           f"{shortest} the encoder's CNN needs for one frame{sped} "
                                           f"(its receptive field is {self.config.min_samples})")
                fields = self.source.fields(i)
                self.encoded[i] = {s.key: s.encode(fields, where) for s in self.labels}
                self.lengths[i] = length
            except DataError as err:
                handle_bad(err, self.skipped)
        if self.skipped is not None:
            self.skipped.warn()
        if not (self.lengths >= 0).any():
            raise DataError(self.name, "no usable utterances")
        self.label_widths: dict[str, int] = {}
        for spec in self.labels:
            if not isinstance(spec, (SequenceLabels, SpeakerActivityLabels)):
                continue
            longest = max((len(e[spec.key]) for e in self.encoded if e is not None), default=1)
            if isinstance(spec, SpeakerActivityLabels):  # as long as the longest utterance's frames
                audio_frames = int(self.lengths.max() / (16000 * spec.frame_seconds)) + 1
                self.label_widths[spec.key] = -(-max(longest, audio_frames) // 8) * 8
                continue
            if spec.max_length is None:
                self.label_widths[spec.key] = -(-longest // 8) * 8
                continue
            self.label_widths[spec.key] = spec.max_length
            for i, e in enumerate(self.encoded):
                if e is not None and len(e[spec.key]) > spec.max_length:
                    err = DataError(self.source.origin(i),
                                    f"label {spec.field!r} has {len(e[spec.key])} tokens, more "
                                    f"than max_length {spec.max_length}")
                    handle_bad(err, self.skipped)
                    self.lengths[i], self.encoded[i] = -1, None

    @property
    def _has_sequences(self) -> bool:
        # cropping audio would move frame labels: neither CTC nor speaker-activity labels allow it
        return any(isinstance(s, (SequenceLabels, SpeakerActivityLabels)) for s in self.labels)

    @property
    def crops(self) -> bool:
        """Whether training crops long utterances (else, with CTC labels, leaves them out)."""
        return self.config.train and not self._has_sequences

    @property
    def _stretch(self) -> float:
        """How much longer than its source a row's audio can get (speed perturbation, a view)."""
        cfg = self.config
        stretch = cfg.augment.max_speed_stretch if cfg.train else 1.0
        return stretch * (cfg.view.max_stretch if cfg.view is not None else 1.0)

    def _choose_buckets(self) -> None:
        cfg = self.config
        valid = self.lengths[self.lengths >= 0]
        stretch = self._stretch
        longest = int(np.ceil(valid.max() * stretch))
        self.max_length = cfg.max_length if cfg.train else None
        if cfg.bucket_lengths is not None:
            self.bucket_lengths = cfg.bucket_lengths
            largest = self.bucket_lengths[-1]
            if cfg.train and (self.crops or self.max_length is not None):
                # Crop (or, with sequence labels, leave out) what the largest bucket cannot hold.
                self.max_length = min(self.max_length or largest, largest)
            if self.max_length is None and longest > largest:
                i = int(np.argmax(self.lengths))
                raise DataError(self.source.origin(i),
                                f"audio has {self.lengths[i]} samples (x{stretch:.2f} with speed "
                                f"perturbation), longer than the largest bucket {largest}; add a "
                                f"bucket or set max_length")
        else:
            planned = np.ceil(valid * stretch).astype(np.int64)
            self.bucket_lengths = choose_bucket_lengths(
                planned, cfg.num_buckets, multiple=cfg.length_multiple, max_length=self.max_length)
        if not self.crops and self.max_length is not None:
            dropped = int((self.lengths > self.max_length).sum())
            if dropped:
                warnings.warn(f"{dropped} utterance(s) longer than max_length {self.max_length} "
                              f"samples are left out of training (sequence labels cannot be "
                              f"cropped)", stacklevel=3)

    # ----------------------------------------------------------------- epoch plan
    def _plan(self, epoch: int) -> tuple[list[BatchPlan], np.ndarray, np.ndarray]:
        """Global batches of an epoch, the speed factor and planned length of each utterance."""
        if self._plan_cache is not None and self._plan_cache[0] == epoch:
            return self._plan_cache[1]
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, epoch])
        factors = np.ones(len(self.lengths))
        planned = self.lengths.copy()
        if cfg.train and cfg.augment.speed_factors:
            factors = rng.choice(np.asarray(cfg.augment.speed_factors, np.float64), len(planned))
            planned = np.where(planned >= 0, np.round(planned / factors), -1).astype(np.int64)
        if cfg.view is not None:  # room for the slowest view
            planned = np.where(planned >= 0, np.ceil(planned * cfg.view.max_stretch), -1).astype(np.int64)
        if self.max_length is not None:
            if self.crops:
                planned = np.minimum(planned, self.max_length)
            else:
                planned = np.where(planned > self.max_length, -1, planned)
        plans = plan_batches(planned, self.bucket_lengths,
                             cfg.batch_size * self.process_count,
                             rng=rng if cfg.train else None, drop_remainder=cfg.drop_remainder)
        self._plan_cache = (epoch, (plans, factors, planned))
        return plans, factors, planned

    def _check_batches(self, epoch: int) -> None:
        """An epoch without a batch would make a repeating loader spin forever: refuse it."""
        plans, _, planned = self._plan(epoch)
        if plans:
            return
        cfg = self.config
        usable = int((planned >= 0).sum())
        if not usable:
            raise DataError(self.name, f"no utterance is left after leaving out those longer than "
                                       f"max_length {self.max_length} samples")
        size = cfg.batch_size * self.process_count
        per_process = (f" ({cfg.batch_size} per process x {self.process_count} processes)"
                       if self.process_count > 1 else "")
        remainder = (" with drop_remainder, which drops each length bucket's last part-filled batch"
                     if cfg.drop_remainder else "")
        raise DataError(self.name, f"{usable} usable utterance(s) make no batch of {size}{per_process}"
                                   f"{remainder}; lower the batch size (or the number of buckets)")

    def num_batches(self, epoch: int | None = None) -> int:
        """Batches in an epoch (the current one by default); the same on every process."""
        return len(self._plan(self._epoch if epoch is None else epoch)[0])

    def __len__(self) -> int:
        return self.num_batches()

    def padding_fraction(self, epoch: int | None = None) -> float:
        """Share of padded samples in an epoch's global batches (filler rows included)."""
        plans, _, planned = self._plan(self._epoch if epoch is None else epoch)
        return padding_fraction(plans, planned)

    def summary(self) -> dict[str, Any]:
        """Numbers worth logging: utterances, skipped, buckets, batches, padding fraction."""
        valid = self.lengths >= 0
        return {
            "utterances": int(valid.sum()),
            "skipped": 0 if self.skipped is None else self.skipped.count,
            "hours": float(self.lengths[valid].sum() / 16000 / 3600),
            "bucket_lengths": list(self.bucket_lengths),
            "label_widths": dict(self.label_widths),
            "batches_per_epoch": self.num_batches(),
            "padding_fraction": round(self.padding_fraction(), 4),
        }

    # ----------------------------------------------------------------- state
    def get_state(self) -> dict[str, int]:
        """Position of the next batch; save it with the checkpoint."""
        return {"version": STATE_VERSION, "epoch": self._epoch, "batch": self._batch,
                "seed": self.config.seed, "num_utterances": len(self.lengths),
                "process_count": self.process_count}

    def set_state(self, state: dict[str, int]) -> None:
        """Resume at a position from `get_state` (same data, seed and process count)."""
        expected = {"version": STATE_VERSION, "seed": self.config.seed,
                    "num_utterances": len(self.lengths), "process_count": self.process_count}
        for key, want in expected.items():
            if int(state.get(key, -1)) != want:
                raise ValueError(f"loader state has {key}={state.get(key)!r} but this loader "
                                 f"has {want}; resuming would not reproduce the order")
        epoch, batch = int(state["epoch"]), int(state["batch"])
        if epoch < 0 or not 0 <= batch <= self.num_batches(epoch):
            raise ValueError(f"loader state position epoch={epoch} batch={batch} is out of range")
        self._epoch, self._batch = epoch, batch

    # ----------------------------------------------------------------- loading
    def _load_row(self, epoch: int, index: int, factor: float, planned: int,
                  bucket_length: int):
        where = self.source.origin(index)
        try:
            audio = self.source.load(index)
        except DataError:
            raise
        except Exception as e:  # a decoder bug must still name the file
            raise DataError(where, f"cannot load audio: {type(e).__name__}: {e}") from None
        cfg = self.config
        expected = int(self.lengths[index])
        if abs(len(audio) - expected) > _length_tolerance(expected):
            raise DataError(where, f"audio has {len(audio)} samples at 16 kHz but its metadata "
                                   f"says {expected} (truncated file or wrong duration?)")
        rng = np.random.default_rng([cfg.seed, epoch, index])
        if cfg.train:
            audio = speed_perturb(audio, factor)
            if cfg.augment.active:
                audio = augment_waveform(audio, cfg.augment, rng)
        limit = bucket_length
        if self.crops and self.max_length is not None:
            limit = min(limit, self.max_length)
        if cfg.view is not None:  # crop the source so that its slowest view still fits
            limit = int(limit / cfg.view.max_stretch)
        if len(audio) > limit:
            if self.crops:
                start = int(rng.integers(0, len(audio) - limit + 1))
                audio = audio[start:start + limit]
            else:  # a rounding difference between metadata and decoded length
                audio = audio[:limit]
        check_waveform(audio, where, cfg.min_samples)
        if cfg.view is not None:
            first, second = make_views(audio, cfg.view, np.random.default_rng([cfg.seed, epoch, index, 1]))
            second = second[:bucket_length]
            check_waveform(second, where, cfg.min_samples)
            return tuple(normalize_waveform(a) if cfg.normalize else a for a in (first[:bucket_length], second))
        return normalize_waveform(audio) if cfg.normalize else audio

    def _local_rows(self, plan: BatchPlan) -> np.ndarray:
        bs = self.config.batch_size
        return plan.indices[self.process_index * bs:(self.process_index + 1) * bs]

    def _assemble(self, plan: BatchPlan, rows: list[cf.Future | None]) -> dict[str, np.ndarray]:
        batch = empty_batch(self.config.batch_size, plan.bucket_length, self.labels,
                            self.label_widths)
        if self.config.view is not None:
            batch["view_audio"] = np.zeros_like(batch["audio"])
            batch["view_audio_mask"] = np.zeros_like(batch["audio_mask"])
        for r, (index, fut) in enumerate(zip(self._local_rows(plan), rows)):
            if fut is None:
                continue
            try:
                audio = fut.result()
            except DataError as err:
                handle_bad(err, self.skipped)  # skipped: the row stays a masked filler row
                continue
            if isinstance(audio, tuple):
                audio, view = audio
                batch["view_audio"][r, :len(view)] = view
                batch["view_audio_mask"][r, :len(view)] = 1
            fill_row(batch, r, int(index), audio, self.labels, self.encoded[index])
        return batch

    def _executor(self) -> cf.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(max(1, self.config.num_threads),
                                               thread_name_prefix="audio-loader")
        return self._pool

    def close(self) -> None:
        """Stop the decoding threads (a later iteration starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        """Batches from the current position to the end of the epoch (forever if `repeat`)."""
        pool = self._executor()
        pending: collections.deque = collections.deque()
        try:
            while True:
                epoch = self._epoch
                self._check_batches(epoch)
                plans, factors, planned = self._plan(epoch)
                next_submit = self._batch
                while self._batch < len(plans):
                    while next_submit < len(plans) and len(pending) <= self.config.prefetch_batches:
                        plan = plans[next_submit]
                        pending.append((plan, [None if i < 0 else pool.submit(
                            self._load_row, epoch, int(i), float(factors[i]), int(planned[i]),
                            plan.bucket_length) for i in self._local_rows(plan)]))
                        next_submit += 1
                    plan, futures = pending.popleft()
                    batch = self._assemble(plan, futures)
                    self._batch += 1
                    yield batch
                if self.skipped is not None:
                    self.skipped.warn()
                self._epoch, self._batch = epoch + 1, 0
                if not self.repeat:
                    return
        finally:
            # Abandoned mid-epoch: drop the prefetched rows; the state already points past
            # the last batch handed out.
            for _, futures in pending:
                for fut in futures:
                    if fut is not None:
                        fut.cancel()


def evaluation_loader(source: AudioSource, labels: Sequence[LabelSpec] = (), *, batch_size: int = 8,
                      normalize: bool = False, min_samples: int = MIN_SAMPLES, num_buckets: int = 4) -> AudioLoader:
    """Every utterance of `source` once, in order, uncropped, read whole by this process (features
    for probes, sweeps and k-means), padded to `num_buckets` lengths; rows keep `example_index` to
    map back to the source. `min_samples`: the encoder's receptive field (a shorter utterance is a
    `DataError`)."""
    return AudioLoader(source, labels, LoaderConfig(batch_size=batch_size, num_buckets=num_buckets, train=False,
                                                    repeat=False, normalize=normalize, min_samples=min_samples),
                       process_index=0, process_count=1)


def make_global_batch(batch: dict[str, np.ndarray], mesh, batch_axes: str | tuple[str, ...] = "data"):
    """Assemble every process's local batch into global `jax.Array`s sharded on dimension 0.

    `mesh` is a `jax.sharding.Mesh`; `batch_axes` the mesh axis (or axes) the batch is split over.
    Each process passes its own `AudioLoader` batch; the global leading dimension is
    `batch_size * process_count`.
    """
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    axes = (batch_axes,) if isinstance(batch_axes, str) else tuple(batch_axes)
    sharding = NamedSharding(mesh, PartitionSpec(axes))
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
