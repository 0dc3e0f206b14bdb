"""The fine-tuned task's own score: its head on its dev split while it trains, on test at the end.

A supervised task with `splits: {dev: ..., test: ...}` (train/config.py) is scored with the
current encoder and its own head in eval mode, over every utterance of the split in a few padded
length buckets (`models.encode.encode_source`): a CTC head by greedy decoding and the error rate
of the decoded label ids against the reference ids (PER for phones, CER for characters), a
classification head by accuracy. The `dev_scoring` section (`DevScoringConfig`) says when: every
`every` optimizer steps and at the last one (`every: 0`: at the last one only). The run's "dev
score" is the mean over the scored tasks of accuracy or 1 - error rate; the best-dev step is the
one with the highest (the earliest of equals). `DevHistory` keeps every dev scoring in
`dev_scores.json`, written before the checkpoint of its step, so a resumed run keeps the scores
up to the step it resumes from and ends with the summary of an uninterrupted run. The test split
is scored once, with the final encoder and heads.

Every process reads the whole split and feeds the same batches, replicated, to the same sharded
parameters, so all of them reach the same scores and the same best step (and take a best-dev
export, a collective, together). Scoring draws no random numbers and reads its own loader: the
training is the same with or without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jax
import numpy as np

from speechft_jax.config_loading import COUNT, Range
from speechft_jax.data import evaluation_loader
from speechft_jax.files import atomic_write_json
from speechft_jax.models.encode import encode_source
from speechft_jax.tasks import ctc_greedy_decode, error_rate
from speechft_jax.tasks.definition import METRICS
from speechft_jax.train.sharding import replicated

DEV_SCORES_NAME = "dev_scores.json"
BEST_DEV_DIR = "encoder_best_dev"
SCORED_SPLITS = ("dev", "test")


@dataclass(frozen=True)
class DevScoringConfig:
    """The `dev_scoring` section: score dev every `every` optimizer steps and at the end (0: at the
    end only), on its first `max_utterances` (None: all); `keep_best` exports the encoder of the
    best-dev step as `<output_dir>/encoder_best_dev/`. Dev and test are read in batches of
    `batch_size` utterances (a multiple of mesh.data x mesh.fsdp) padded to `num_buckets` lengths
    (each a program compiled once: fewer compile faster, more pad less)."""

    every: Annotated[int, Range(0, 10**9)] = 0
    keep_best: bool = False
    max_utterances: Annotated[int, Range(1, 10**9)] | None = None
    batch_size: Annotated[int, COUNT] = 8
    num_buckets: Annotated[int, Range(1, 64)] = 4


def task_score(metric: str, value: float) -> float:
    """A metric on the dev score's scale, higher is better: accuracy, or 1 - error rate."""
    return 1.0 - value if metric == "error_rate" else value


class _FirstUtterances:
    """The first `count` utterances of an audio source (an audio source itself)."""

    def __init__(self, source, count: int):
        self.source, self.count = source, min(count, len(source))

    def __len__(self) -> int:
        return self.count

    def num_samples(self, index: int) -> int:
        return self.source.num_samples(index)

    def fields(self, index: int):
        return self.source.fields(index)

    def origin(self, index: int) -> str:
        return self.source.origin(index)

    def load(self, index: int) -> np.ndarray:
        return self.source.load(index)


@dataclass(frozen=True)
class _ScoredSplit:
    """One task's split to score: its task object (head), kind, audio source and label spec."""

    task: Any
    kind: str
    source: Any
    spec: Any


class DevScorer:
    """Scores the tasks' heads on their dev or test splits (see the module docstring)."""

    def __init__(self, settings: DevScoringConfig, bundle, mesh, splits: dict[str, dict[str, _ScoredSplit]]):
        self.settings, self.bundle, self.splits = settings, bundle, splits
        # the metric of every scored task, dev or test
        self.metrics = {name: METRICS[scored.kind] for split in splits.values() for name, scored in split.items()}
        self._replicated = replicated(mesh)
        self._predict: dict[str, Any] = {}  # task -> jitted (encoder, head, audio, audio_mask) -> (logits, mask)

    def due(self, step: int, total: int) -> bool:
        """Whether dev is scored after optimizer step `step` of `total`."""
        every = self.settings.every
        return bool(self.splits["dev"]) and (step == total or (every > 0 and step % every == 0))

    def score(self, split: str, encoder, heads) -> dict[str, float]:
        """`{task: metric}` of every task with a `split`, with `encoder` and `heads[task]`."""
        return {name: self._score_task(name, scored, encoder, heads[name], split)
                for name, scored in self.splits[split].items()}

    def _forward(self, name: str, scored: _ScoredSplit, encoder, head):
        """`forward(audio, audio_mask) -> (logits [B, T, V] or [B, 1, C], mask)` for `encode_source`."""
        if name not in self._predict:
            module, task, frame_level = self.bundle.module, scored.task, scored.kind == "ctc"

            def predict(encoder, head, audio, audio_mask):
                out = module.apply({"params": encoder}, audio, audio_mask)
                logits = task.predict(head, out.last_hidden_state, out.frame_mask)
                if frame_level:
                    return logits, out.frame_mask
                return logits[:, None, :], out.frame_mask[:, :1]  # an utterance's prediction as one frame

            self._predict[name] = jax.jit(predict, out_shardings=(self._replicated, self._replicated))
        jitted = self._predict[name]

        def forward(audio, audio_mask):
            # every process holds the whole batch: it enters replicated, the logits leave replicated
            inputs = [jax.make_array_from_process_local_data(self._replicated, x) for x in (audio, audio_mask)]
            return jitted(encoder, head, *inputs)

        return forward

    def _score_task(self, name: str, scored: _ScoredSplit, encoder, head, split: str) -> float:
        forward = self._forward(name, scored, encoder, head)
        utterances = encode_source(self.bundle, scored.source, forward, labels=[scored.spec],
                                   batch_size=self.settings.batch_size, num_buckets=self.settings.num_buckets,
                                   desc=f"{split} {name}")
        if scored.kind == "ctc":
            references, hypotheses = [], []
            for utterance in utterances:
                decoded = ctc_greedy_decode(utterance.states[None], np.ones((1, utterance.frames), bool),
                                            scored.task.blank_id)[0]
                hypotheses.append(" ".join(map(str, decoded)))
                references.append(" ".join(map(str, utterance.labels[0])))
            return error_rate(references, hypotheses)
        correct = [int(utterance.states[0].argmax()) == utterance.labels[0] for utterance in utterances]
        return float(np.mean(correct))


def build_dev_scorer(settings: DevScoringConfig, task_data, bundle, mesh) -> DevScorer | None:
    """The scorer of the supervised tasks that have a dev or test split (None when none has).
    Each split is opened now and every utterance's length and label read once, so a missing file
    or an unknown label is an error before training, not at its end."""
    splits: dict[str, dict[str, _ScoredSplit]] = {split: {} for split in SCORED_SPLITS}
    for td in task_data:
        definition = td.config.definition()
        if definition.self_supervised:
            continue
        for split in SCORED_SPLITS:
            if split not in definition.splits:
                continue
            source, spec = definition.open(split, f"tasks.{definition.name}.splits.{split}")
            if split == "dev" and settings.max_utterances is not None:
                source = _FirstUtterances(source, settings.max_utterances)
            evaluation_loader(source, [spec], batch_size=settings.batch_size, num_buckets=settings.num_buckets,
                              min_samples=bundle.config.receptive_field).close()
            splits[split][definition.name] = _ScoredSplit(td.task, definition.kind, source, spec)
    if not any(splits.values()):
        return None
    return DevScorer(settings, bundle, mesh, splits)


class DevHistory:
    """Every dev scoring of a run, `{"step", "tasks": {task: {metric: value}}, "score"}` in step
    order, kept in `path` (written by `enabled`, process 0). Opened at `through_step` (the step a
    run resumes from), it forgets later scorings: the resumed run scores those steps again."""

    def __init__(self, path: Path, through_step: int, *, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled
        saved = json.loads(self.path.read_text())["scores"] if self.path.is_file() else []
        self.entries = [entry for entry in saved if entry["step"] <= through_step]
        if enabled and len(self.entries) < len(saved):
            atomic_write_json(self.path, {"scores": self.entries})

    def add(self, step: int, values: dict[str, float], metrics: dict[str, str]) -> bool:
        """Record step `step`'s dev metrics (`values[task]`, each a `metrics[task]`); whether it is
        the best dev score so far (ties keep the earlier step)."""
        score = float(np.mean([task_score(metrics[name], value) for name, value in values.items()]))
        best = self.best()
        self.entries.append({"step": step, "tasks": {name: {metrics[name]: value} for name, value in values.items()},
                             "score": score})
        if self.enabled:
            atomic_write_json(self.path, {"scores": self.entries})
        return best is None or score > best["score"]

    def best(self) -> dict | None:
        """The entry of the best-dev step (None before the first scoring)."""
        return max(self.entries, key=lambda entry: entry["score"], default=None)  # max keeps the first

    def task_summary(self, test: dict[str, float], metrics: dict[str, str]) -> dict[str, dict]:
        """Per task (`metrics[task]`: its metric): the dev value at the last scoring (`dev`) and at
        the best-dev step (`dev_at_best_step`), the task's own best-dev step (`best_step`), and its
        `test` value, of those it has."""
        summary: dict[str, dict] = {}
        best = self.best()
        for name, metric in metrics.items():
            values = [(entry["step"], entry["tasks"][name][metric]) for entry in self.entries if name in entry["tasks"]]
            if values:
                own_best = max(values, key=lambda item: task_score(metric, item[1]))
                summary[name] = {"metric": metric, "dev": values[-1][1],
                                 "dev_at_best_step": best["tasks"][name][metric], "best_step": own_best[0]}
        for name, value in test.items():
            summary.setdefault(name, {"metric": metrics[name]})["test"] = value
        return summary


def log_scalars(values: dict[str, float], metrics: dict[str, str]) -> dict[str, float]:
    """Dev metrics as the run's metrics log names them: `dev/<task>/<metric>`."""
    return {f"dev/{name}/{metrics[name]}": value for name, value in values.items()}


def describe_task_scores(task_scores: dict[str, dict], best_step: int | None, best_dir: Path | None) -> list[str]:
    """The run summary's task scores as log lines, one per task (and one for the best-dev export)."""
    lines = []
    for name, scores in task_scores.items():
        metric, parts = scores["metric"], []
        if "dev" in scores:
            parts.append(f"dev {metric} {scores['dev']:.4f} at the last step, {scores['dev_at_best_step']:.4f} at "
                         f"the best-dev step {best_step} (the task's own best: step {scores['best_step']})")
        if "test" in scores:
            parts.append(f"test {metric} {scores['test']:.4f}")
        lines.append(f"{name}: " + "; ".join(parts))
    if best_dir is not None:
        lines.append(f"the encoder of the best-dev step {best_step} is in {best_dir}")
    return lines
