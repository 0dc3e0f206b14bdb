"""Speaker diarization's error rate (DER), scored exactly on segment boundaries, and frame activity -> segments.

A diarization of one recording is a list of segments `(start_s, end_s, speaker)` (an RTTM's
SPEAKER lines); the reference's and the hypothesis's speaker names are separate label sets, and
a speaker's overlapping turns count once (they are merged first).
`diarization_error(reference, hypothesis)` scores as NIST's md-eval and dscore do, overlapped
speech included. Wherever N_ref reference and N_hyp hypothesis speakers are active, each second
adds
  missed speech  max(0, N_ref - N_hyp)
  false alarm    max(0, N_hyp - N_ref)
  confusion      min(N_ref, N_hyp) - N_correct
seconds, N_correct counting the reference speakers whose mapped hypothesis speaker is active too.
The mapping is the one-to-one pairing of reference and hypothesis speakers with the most
overlapping time (the Hungarian algorithm: scipy's `linear_sum_assignment`); a speaker left
unpaired is never correct. `total` is the reference speech (N_ref integrated over time) and
DER = (missed + false alarm + confusion) / total. Time is cut at the union of all segment
boundaries, so every sum is exact rather than counted on a frame grid.

`collar` seconds either side of every reference turn boundary are not scored (md-eval's no-score
collar). The default, 0, is SUPERB's scoring: its recipe runs dscore with dscore's defaults, no
collar and overlapped speech scored. `corpus_diarization_error` sums the four quantities over
recordings, so a split's DER is all errors over all reference speech (dscore's OVERALL line).

`activity_segments(probabilities, frame_seconds)` turns frame-level speaker activity
`[frames, speakers]` into segments as SUPERB's `make_rttm.py` does: a frame is active where its
probability is above `threshold` (strictly), each speaker's column is median-filtered over
`median` frames (zeros beyond both ends, as scipy.signal.medfilt pads), and each run of active
frames becomes one segment (make_rttm also rounds the times to 10 ms when it writes them; these
are not rounded).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Hashable, Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from speechft_jax.errors import ConfigError, DataError, short_repr

Segment = tuple[float, float, Hashable]


@dataclasses.dataclass(frozen=True)
class DiarizationError:
    """Seconds of missed speech, false alarm and speaker confusion against `total` seconds of reference speech."""

    missed: float
    false_alarm: float
    confusion: float
    total: float

    @property
    def der(self) -> float:
        """(missed + false_alarm + confusion) / total, a fraction (above 1 when false alarms are many)."""
        if self.total <= 0:
            raise DataError("diarization reference", "no scored reference speech, so the DER is undefined")
        return (self.missed + self.false_alarm + self.confusion) / self.total


def diarization_error(reference: Sequence[Segment], hypothesis: Sequence[Segment],
                      collar: float = 0.0) -> DiarizationError:
    """The diarization errors of one recording's `hypothesis` against its `reference` (module docstring)."""
    collar = _checked_collar(collar)
    reference_turns = _speaker_turns(reference, "reference")
    hypothesis_turns = _speaker_turns(hypothesis, "hypothesis")
    boundaries = [turns.ravel() for turns in (*reference_turns.values(), *hypothesis_turns.values())]
    no_score = np.zeros((0, 2))
    if collar > 0 and reference_turns:
        edges = np.concatenate([turns.ravel() for turns in reference_turns.values()])
        no_score = _union(np.stack([edges - collar, edges + collar], axis=1))
        boundaries.append(no_score.ravel())
    if not boundaries:
        return DiarizationError(0.0, 0.0, 0.0, 0.0)
    # between two consecutive boundaries nobody starts or stops: one midpoint tells who is active
    cuts = np.unique(np.concatenate(boundaries))
    middles = (cuts[:-1] + cuts[1:]) / 2
    seconds = np.where(_inside(no_score, middles), 0.0, np.diff(cuts))
    reference_active = _activity(reference_turns, middles)  # [pieces, reference speakers]
    hypothesis_active = _activity(hypothesis_turns, middles)  # [pieces, hypothesis speakers]

    overlap = (reference_active * seconds[:, None]).T @ hypothesis_active  # [reference, hypothesis] seconds
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    n_correct = (reference_active[:, rows] & hypothesis_active[:, cols]).sum(axis=1)
    n_reference, n_hypothesis = reference_active.sum(axis=1), hypothesis_active.sum(axis=1)
    return DiarizationError(
        missed=float(seconds @ np.maximum(n_reference - n_hypothesis, 0)),
        false_alarm=float(seconds @ np.maximum(n_hypothesis - n_reference, 0)),
        confusion=float(seconds @ (np.minimum(n_reference, n_hypothesis) - n_correct)),
        total=float(seconds @ n_reference),
    )


def corpus_diarization_error(pairs: Iterable[tuple[Sequence[Segment], Sequence[Segment]]],
                             collar: float = 0.0) -> DiarizationError:
    """The errors of `(reference, hypothesis)` recordings summed, so `.der` is the split's overall DER."""
    errors = [diarization_error(reference, hypothesis, collar) for reference, hypothesis in pairs]
    if not errors:
        raise DataError("diarization", "expected at least one (reference, hypothesis) recording, got none")
    return DiarizationError(*(math.fsum(getattr(e, f.name) for e in errors)
                              for f in dataclasses.fields(DiarizationError)))


def activity_segments(probabilities, frame_seconds: float, threshold: float = 0.5,
                      median: int = 1) -> list[tuple[float, float, int]]:
    """`(start_s, end_s, speaker_index)` runs of active frames in `probabilities` `[frames, speakers]`.

    Frame `i` spans `[i, i + 1) * frame_seconds`. Segments come speaker by speaker, each speaker's
    in time order (module docstring: threshold, median filter).
    """
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2:
        raise DataError("speaker activity",
                        f"expected probabilities [frames, speakers], got shape {probabilities.shape}")
    if not np.isfinite(probabilities).all():
        raise DataError("speaker activity", "probabilities must be finite")
    if isinstance(frame_seconds, bool) or not (isinstance(frame_seconds, (int, float, np.number))
                                               and math.isfinite(frame_seconds) and frame_seconds > 0):
        raise ConfigError(f"frame_seconds={short_repr(frame_seconds)}, expected a number of seconds > 0")
    if isinstance(threshold, bool) or not (isinstance(threshold, (int, float, np.number)) and math.isfinite(threshold)):
        raise ConfigError(f"threshold={short_repr(threshold)}, expected a finite number (a probability)")
    if isinstance(median, bool) or not isinstance(median, (int, np.integer)) or median < 1 or median % 2 == 0:
        raise ConfigError(f"median={short_repr(median)}, expected an odd number of frames >= 1")

    active = (probabilities > threshold).astype(np.int64)
    if median > 1:
        # the median of an odd window of 0s and 1s is 1 exactly when most of the window is 1
        half = median // 2
        counts = np.cumsum(np.pad(active, ((half + 1, half), (0, 0))), axis=0)  # leading 0 row for differences
        active = (counts[median:] - counts[:-median] > half).astype(np.int64)
    segments = []
    for speaker in range(active.shape[1]):
        changes = np.flatnonzero(np.diff(np.pad(active[:, speaker], 1)))  # starts and ends alternate
        segments.extend((float(start * frame_seconds), float(end * frame_seconds), speaker)
                        for start, end in zip(changes[::2], changes[1::2]))
    return segments


def _checked_collar(collar) -> float:
    if isinstance(collar, bool) or not (isinstance(collar, (int, float, np.number)) and math.isfinite(collar)
                                        and collar >= 0):
        raise ConfigError(f"collar={short_repr(collar)}, expected a number of seconds >= 0")
    return float(collar)


def _speaker_turns(segments: Sequence[Segment], where: str) -> dict[Hashable, np.ndarray]:
    """Each speaker's turns `[turns, 2]` (start, end), sorted and disjoint; empty segments are dropped."""
    by_speaker: dict[Hashable, list[tuple[float, float]]] = {}
    for index, segment in enumerate(segments):
        try:
            start, end, speaker = segment
            start, end = float(start), float(end)
        except (TypeError, ValueError):
            raise DataError(f"{where} segment {index}",
                            f"expected (start_s, end_s, speaker), got {short_repr(segment)}") from None
        if not (math.isfinite(start) and math.isfinite(end) and start <= end):
            raise DataError(f"{where} segment {index}",
                            f"expected finite times with start <= end, got {start} to {end}")
        if end > start:
            by_speaker.setdefault(speaker, []).append((start, end))
    return {speaker: _union(np.asarray(turns)) for speaker, turns in by_speaker.items()}


def _union(intervals: np.ndarray) -> np.ndarray:
    """The union of `intervals` `[n, 2]` as sorted disjoint intervals `[m, 2]` (touching ones joined)."""
    intervals = intervals[np.argsort(intervals[:, 0], kind="stable")]
    merged: list[list[float]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.asarray(merged, np.float64).reshape(-1, 2)


def _inside(intervals: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Whether each of `times` lies in one of the sorted disjoint `intervals` `[n, 2]`: bool `[len(times)]`."""
    if len(intervals) == 0:
        return np.zeros(times.shape, bool)
    last_start = np.searchsorted(intervals[:, 0], times, side="right") - 1
    return (last_start >= 0) & (times < intervals[np.maximum(last_start, 0), 1])


def _activity(turns_by_speaker: dict[Hashable, np.ndarray], times: np.ndarray) -> np.ndarray:
    """Which speakers are active at each of `times`: bool `[len(times), speakers]`."""
    columns = [_inside(turns, times) for turns in turns_by_speaker.values()]
    return np.stack(columns, axis=1) if columns else np.zeros((len(times), 0), bool)
