"""The SUPERB score over any set of tasks, against a named set of FBANK and SOTA reference points.

For tasks T with metrics I_t, a model u scores
`1000 / |T| * sum_t 1 / |I_t| * sum_i (s_i(u) - s_i(FBANK)) / (s_i(SOTA) - s_i(FBANK))`
(the SUPERB leaderboard's formula): FBANK scores 0 and the SOTA point 1000, a task with two
metrics (SF's F1 and CER) averages them first. A lower-is-better metric (an error rate) needs no
sign flip: numerator and denominator are both negative when u improves on FBANK.

The reference points are named sets (`REFERENCE_FILE`, `speechft_jax/assets/superb_reference.json`;
`reference_set(name)`), each with its source: `leaderboard` (the default: the SUPERB leaderboard's
FBANK and SOTA points) and `paper-fbank+wavlm-large` (the SUPERB paper's FBANK, with CMVN, and the
WavLM paper's Large results as SOTA). No public set reproduces the Speech-FT paper's totals
exactly; a score is only comparable with scores computed against the same set, so it is always
reported with the set's name. Units: % for error rates, accuracies, EER, DER, F1 and CER; QbE's
MTWV as a fraction. `superb_metrics(task, result)` turns a probe's result (fractions) into the
set's metrics of SUPERB task `task` (one of `SUPERB_TASKS`); `score_results` scores the tasks of an
evaluation that stand for SUPERB tasks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from speechft_jax.errors import ConfigError

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "assets" / "superb_reference.json"
SUPERB_TASKS = ("pr", "asr", "ks", "qbe", "sid", "asv", "sd", "er", "ic", "sf")
# SUPERB task -> {the reference set's metric: (the probe result's metric, or details key of the
# test value reported beside it; the factor to the set's unit)}
RESULT_METRICS = {
    "pr": {"per": ("error_rate", 100.0)}, "asr": {"wer": ("wer", 100.0)}, "ks": {"accuracy": ("accuracy", 100.0)},
    "qbe": {"mtwv": ("mtwv", 1.0)}, "sid": {"accuracy": ("accuracy", 100.0)}, "asv": {"eer": ("eer", 100.0)},
    "sd": {"der": ("der", 100.0)}, "er": {"accuracy": ("accuracy", 100.0)}, "ic": {"accuracy": ("accuracy", 100.0)},
    "sf": {"f1": ("slot_type_f1", 100.0), "cer": ("test_slot_value_cer", 100.0)},
}


@dataclass(frozen=True)
class ReferenceSet:
    """One named set of reference points: `tasks` is `{task: {metric: {"fbank": x, "sota": y}}}`."""

    name: str
    source: str
    tasks: Mapping[str, Mapping[str, Mapping[str, float]]]


def reference_set_names(path: str | Path = REFERENCE_FILE) -> tuple[str, ...]:
    return tuple(json.loads(Path(path).read_text())["sets"])


def reference_set(name: str | None = None, path: str | Path = REFERENCE_FILE) -> ReferenceSet:
    """The set `name` (default: the file's `default`); an unknown name is a one-line `ConfigError`."""
    data = json.loads(Path(path).read_text())
    name = name or data["default"]
    if name not in data["sets"]:
        raise ConfigError(f"SUPERB reference set {name!r}: expected one of {', '.join(data['sets'])}")
    chosen = data["sets"][name]
    return ReferenceSet(name, chosen["source"], chosen["tasks"])


def superb_score(results: Mapping[str, Mapping[str, float]], reference: ReferenceSet) -> float:
    """The score of `results` (`{task: {metric: value}}`, in the set's units) over its tasks; a task
    or metric the set does not hold is a one-line `ConfigError` naming it."""
    if not results:
        raise ConfigError("the SUPERB score needs at least one task")
    total = 0.0
    for task, metrics in results.items():
        if task not in reference.tasks:
            raise ConfigError(f"task {task!r}: not in the SUPERB reference set {reference.name!r} "
                              f"(it has {', '.join(reference.tasks)})")
        if not metrics:
            raise ConfigError(f"task {task!r}: no metrics to score")
        part = 0.0
        for metric, value in metrics.items():
            points = reference.tasks[task].get(metric)
            if points is None:
                raise ConfigError(f"task {task!r}: metric {metric!r} is not in the SUPERB reference set "
                                  f"{reference.name!r} (it has {', '.join(reference.tasks[task])})")
            part += (value - points["fbank"]) / (points["sota"] - points["fbank"])
        total += part / len(metrics)
    return 1000.0 * total / len(results)


def superb_metrics(task: str, result) -> dict[str, float]:
    """`{metric: test value in the set's unit}` of a `ProbeResult` standing for SUPERB task `task`;
    a result scored by another metric (a PR probe reporting WER, say) is a one-line `ConfigError`."""
    if task not in RESULT_METRICS:
        raise ConfigError(f"superb: {task!r}, expected one of {', '.join(SUPERB_TASKS)}")
    values = {}
    for metric, (name, factor) in RESULT_METRICS[task].items():
        if name == result.metric:
            values[metric] = result.test * factor
        elif name in result.details:
            values[metric] = result.details[name] * factor
        else:
            raise ConfigError(f"task {result.task!r}: SUPERB's {task} is scored by {name}, but the probe reports "
                              f"{result.metric}")
    return values


def score_results(results: Mapping[str, object], superb_tasks: Mapping[str, str],
                  reference: ReferenceSet) -> tuple[float, dict[str, dict[str, float]]]:
    """`(SUPERB score, {SUPERB task: its metrics})` of the `results` (`{task name: ProbeResult}`)
    whose tasks stand for a SUPERB task (`superb_tasks`: task name -> SUPERB task); two tasks
    standing for the same SUPERB task are a one-line `ConfigError`."""
    metrics: dict[str, dict[str, float]] = {}
    for name, result in results.items():
        task = superb_tasks.get(name)
        if task is None:
            continue
        if task in metrics:
            raise ConfigError(f"superb: two tasks stand for SUPERB's {task!r}; mark one only")
        metrics[task] = superb_metrics(task, result)
    return superb_score(metrics, reference), metrics
