"""The training configuration: the typed schema of `configs/*.yaml` for `python -m speechft_jax.train`.

Every section is a frozen dataclass; `load_train_config(path, overrides)` parses and validates a
file (see `config_loading`), so a typo, a wrong type or an out-of-range value is a one-line
`ConfigError` naming the key, raised before anything is compiled. Numeric bounds sit in the
field types (`Annotated[int, STEPS]`); every float must be finite.

    output_dir: runs/demo_pr          # where the run writes everything
    model:     the encoder to start from (a pre-trained directory / hub id, or a config for random init)
    tasks:     one or more tasks (several = multitask), each with its data and head
    objective: supervised, hubert (masked prediction; the `hubert` section) or score (SCORE; `score`)
    optimizer: steps, learning rates, beta (head-only warm-up fraction), clipping, accumulation
    finetune:  the method and baseline switches (frozen CNN, L2 toward theta_0, LoRA, early checkpoints)
    mesh / checkpoint / logging: devices, Orbax checkpoints, metrics
    dev_scoring: when the tasks' heads are scored on their dev splits, and the best-dev export

Each section's schema sits beside the code it configures: `model` in `start_encoder.py`,
`data` in `data/config.py`, `optimizer` in `optimizer.py`, `finetune.lora` in `models/lora.py`,
`hubert` / `score` in `objectives/`, `mesh` in `sharding.py`, `checkpoint` in
`checkpointing.py`, `logging` in `metrics_log.py`, `dev_scoring` in `dev_scoring.py`. A training
YAML may also carry a `sweep:` section (Speech-FT steps 2 and 3 after training); that is the
pipeline's (`speechft_jax.pipeline`), not the run's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from speechft_jax.config_loading import (
    COUNT, FRACTION, NON_NEGATIVE, SEED, Range, apply_overrides, build, check, read_yaml, to_dict,
)
from speechft_jax.data.config import CORPUS_AUDIO, DataConfig
from speechft_jax.errors import ConfigError
from speechft_jax.models.lora import LoraConfig
from speechft_jax.objectives.hubert import HubertConfig
from speechft_jax.objectives.score import ScoreConfig
from speechft_jax.tasks.definition import SELF_SUPERVISED_KINDS, HeadSpec, LabelDefinition, TaskDefinition
from speechft_jax.train.checkpointing import CheckpointConfig
from speechft_jax.train.dev_scoring import SCORED_SPLITS, DevScoringConfig
from speechft_jax.train.metrics_log import LoggingConfig
from speechft_jax.train.optimizer import OptimizerConfig
from speechft_jax.train.sharding import MeshConfig
from speechft_jax.train.start_encoder import ModelConfig

# sections of a training YAML that the stages after training read (speechft_jax/pipeline.py)
LATER_STAGES = ("sweep",)
MAX_SECONDS = Range(0.1, 3600)  # an utterance crop of an hour is past any real training batch


@dataclass(frozen=True)
class TaskConfig:
    """One task: its data, its head and its loss weight.

    kind `ctc`: a CTC head (`head: linear` or `bilstm`, `lstm_units` x `lstm_layers` per
    direction) on the last layer; kind `classification`: project to `projection_dim`, mean-pool
    over valid frames, linear; kind `hubert`: HuBERT's masked prediction on unlabelled audio (the
    run's `hubert` section says how); kind `score`: SCORE's correspondence loss between two views
    (the `score` section). `batch_size` is global (over all processes and devices).
    `max_seconds` crops training utterances (classification) or leaves longer ones out (CTC).
    `splits` (supervised tasks): the task's `dev` and `test` splits, each a mapping of `data` keys
    laid over `data` (`{}`: the same data with `split: dev`; `{path: dev.jsonl}`; `{split:
    validation}`); the run scores the head on them (the `dev_scoring` section, dev_scoring.py).
    What the task is (head, labels, data) is its `definition()`, the model evaluation shares; the
    rest (weight, batching, augmentation) is how this run trains it.
    """

    name: str
    kind: Literal["ctc", "classification", "hubert", "score"]
    data: DataConfig
    head: Literal["linear", "bilstm"] = "linear"
    lstm_units: Annotated[int, COUNT] = 256
    lstm_layers: Annotated[int, Range(1, 64)] = 3
    head_dropout: Annotated[float, FRACTION] = 0.0
    projection_dim: Annotated[int, COUNT] = 256
    weight: Annotated[float, NON_NEGATIVE] = 1.0
    batch_size: Annotated[int, COUNT] = 8
    max_seconds: Annotated[float, MAX_SECONDS] | None = None
    num_buckets: Annotated[int, Range(1, 1024)] = 4
    speed_perturb: bool = False
    splits: dict[str, Any] | None = None

    def validate(self):
        check(self.name.isidentifier(), "name", self.name, "a short identifier (letters, digits, _)")
        check(self.weight > 0, "weight", self.weight, "a positive number")
        if self.kind == "classification":
            check(self.head == "linear", "head", self.head, "linear for a classification task")
        if self.kind not in SELF_SUPERVISED_KINDS:
            check(self.data.task != CORPUS_AUDIO, "data.task", self.data.task,
                  f"a labelled corpus task for a {self.kind} task")
            # a corpus fixes its labels; a folder's default to its sub-folder names or transcripts
            check(not self.data.needs_field or bool(self.data.field), "data.field", self.data.field,
                  "the name of the label column")
            check(self.data.labels_from != "none", "data.labels_from", self.data.labels_from,
                  f"folder or sidecar for a {self.kind} task")
        if self.splits is not None:
            self._validate_splits()

    def _validate_splits(self):
        check(self.kind not in SELF_SUPERVISED_KINDS, "splits", sorted(self.splits),
              f"no splits for a {self.kind} task (it trains on data and has no head to score)")
        known = [f.name for f in dataclasses.fields(DataConfig)]
        for split, changes in self.splits.items():
            check(split in SCORED_SPLITS, "splits", split, "dev or test (the train split is data)")
            check(changes is None or isinstance(changes, dict), f"splits.{split}", changes,
                  f"a mapping of data keys laid over data ({{}}: the same data with split: {split})")
            unknown = sorted(set(changes or {}) - set(known))
            if unknown:  # named as the key it is, not as `build` names a section's own unknown key
                raise ConfigError(f"splits.{split}.{unknown[0]}: not a key of data (known: {', '.join(sorted(known))})")
            self.data.for_split(split, changes)  # checked as a section: splits.<split>.<key> in errors

    def definition(self) -> TaskDefinition:
        """The task as training and evaluation share it (tasks/definition.py): `data` its train
        split, `splits` its dev and test."""
        head = HeadSpec(self.head, self.lstm_units, self.lstm_layers, self.head_dropout, self.projection_dim)
        splits = {"train": self.data, **{split: self.data.for_split(split, changes)
                                         for split, changes in (self.splits or {}).items()}}
        return TaskDefinition(self.name, self.kind, splits, head, LabelDefinition.of(self.data))

    def resolved(self, config_dirs=None) -> "TaskConfig":
        """This task with the local paths of its data and of each split found (`DataConfig.resolved`:
        beside the YAML file, then in the working directory)."""
        where = f"tasks.{self.name}"
        splits = None if self.splits is None else {
            split: to_dict(self.data.for_split(split, changes).resolved(config_dirs, f"{where}.splits.{split}"))
            for split, changes in self.splits.items()}
        return dataclasses.replace(self, data=self.data.resolved(config_dirs, f"{where}.data"), splits=splits)


@dataclass(frozen=True)
class FinetuneConfig:
    """The method and its baselines, as switches.

    Stable fine-tuning (Speech-FT step 1): `freeze_cnn: true` with `optimizer.beta: 0.1`.
    Full fine-tuning: `freeze_cnn: false`, `optimizer.beta: 0`. `l2_to_pretrained`: lambda of
    `lambda * ||theta - theta_0||^2`. `lora`: train adapters only (`lora.dora: true`: DoRA's
    adapters and magnitudes). `early_checkpoints`: export the encoder at these fractions of the
    run. `spec_augment`: the encoder's time/feature masks.
    """

    freeze_cnn: bool = True
    l2_to_pretrained: Annotated[float, NON_NEGATIVE] = 0.0
    lora: LoraConfig | None = None
    early_checkpoints: tuple[float, ...] = ()
    spec_augment: bool = True

    def validate(self):
        for value in self.early_checkpoints:
            check(0.0 < value < 1.0, "early_checkpoints", value, "fractions strictly between 0 and 1")
        if self.lora is not None:
            check(self.l2_to_pretrained == 0, "l2_to_pretrained", self.l2_to_pretrained,
                  "0 with LoRA or DoRA (the base weights do not move)")


@dataclass(frozen=True)
class TrainConfig:
    """A fine-tuning run (see the module docstring)."""

    output_dir: str
    model: ModelConfig
    tasks: tuple[TaskConfig, ...]
    objective: Literal["supervised", "hubert", "score"] = "supervised"
    hubert: HubertConfig | None = None
    score: ScoreConfig | None = None
    seed: Annotated[int, SEED] = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    dev_scoring: DevScoringConfig = field(default_factory=DevScoringConfig)

    def validate(self):
        check(bool(self.output_dir), "output_dir", self.output_dir, "a directory path")
        check(len(self.tasks) > 0, "tasks", list(self.tasks), "at least one task")
        names = [t.name for t in self.tasks]
        check(len(set(names)) == len(names), "tasks", names, "distinct task names")
        kinds = [t.kind for t in self.tasks]
        if self.objective == "supervised":
            check(not set(kinds) & set(SELF_SUPERVISED_KINDS), "objective", self.objective,
                  "hubert or score when a task has that kind")
        else:
            check(kinds.count(self.objective) == 1, "tasks", kinds,
                  f"exactly one task of kind {self.objective} for objective {self.objective}")
        for name in SELF_SUPERVISED_KINDS:
            check(getattr(self, name) is None or self.objective == name, name, "...",
                  f"no {name} section unless objective is {name}")
        if self.objective == "score":
            check(self.model.pretrained is not None, "model.pretrained", None,
                  "a pre-trained encoder for objective score (it fine-tunes theta_0's top layers)")
        if not any(t.splits and "dev" in t.splits for t in self.tasks):
            for name in ("every", "keep_best", "max_utterances"):  # settings of dev scoring alone
                value = getattr(self.dev_scoring, name)
                check(value == getattr(DevScoringConfig(), name), f"dev_scoring.{name}", value,
                      "a task with a dev split to score (tasks[i].splits.dev)")
        if self.objective == "hubert" and self.model.pretrained is None:
            check(self.hubert is None or self.hubert.targets != "pretrained_head" or self.hubert.teacher is not None,
                  "hubert.targets", "pretrained_head", "a pre-trained model or teacher with a pre-training head")

    @property
    def hubert_settings(self) -> HubertConfig:
        """The `hubert` section, or its defaults."""
        return self.hubert or HubertConfig()

    @property
    def score_settings(self) -> ScoreConfig:
        """The `score` section, or its defaults."""
        return self.score or ScoreConfig()


def load_train_config(path, overrides=()) -> TrainConfig:
    """Parse and validate a training YAML file with `key=value` overrides. The sections of the
    stages after training (`LATER_STAGES`) are not the run's: `speechft_jax.pipeline` reads them."""
    data = apply_overrides(read_yaml(path), overrides)
    return build(TrainConfig, {k: v for k, v in data.items() if k not in LATER_STAGES}, source=str(path))
