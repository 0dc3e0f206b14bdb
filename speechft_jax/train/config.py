"""The training configuration: the typed schema of `configs/*.yaml` for `python -m speechft_jax.train`.

Every section is a frozen dataclass; `load_train_config(path, overrides)` parses and validates a
file (see `config_loading`), so a typo, a wrong type or an out-of-range value is a one-line
`ConfigError` naming the key, raised before anything is compiled.

    output_dir: runs/demo_pr          # where the run writes everything
    model:     the encoder to start from (a pre-trained directory / hub id, or a config for random init)
    tasks:     one or more supervised tasks (several = multitask), each with its data and head
    optimizer: steps, learning rates, beta (head-only warm-up fraction), clipping, accumulation
    finetune:  the method and baseline switches (frozen CNN, L2 toward theta_0, LoRA, early checkpoints)
    mesh / checkpoint / logging: devices, Orbax checkpoints, metrics
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from speechft_jax.config_loading import load_config
from speechft_jax.models.config import ConfigError

CORPUS_TASKS = ("pr", "asr", "sid", "ks", "style")


def _check(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r}, expected {expected}")


def _fraction(key: str, value: float) -> None:
    _check(0.0 <= value <= 1.0, key, value, "a number in [0, 1]")


@dataclass(frozen=True)
class ModelConfig:
    """The encoder to fine-tune.

    `pretrained`: a transformers directory, a hub id, a fairseq `.pt` or a speechft Flax
    directory. Or `config`: a transformers `config.json` for a randomly initialised encoder
    (seeded by `init_seed`); a relative path is looked up from the working directory, then
    next to the YAML file. `overrides`: `EncoderConfig` fields to change (e.g. SpecAugment's
    `mask_time_prob`, dropouts).
    """

    pretrained: str | None = None
    config: str | None = None
    init_seed: int = 0
    dtype: Literal["float32", "bfloat16"] = "float32"
    param_dtype: Literal["float32", "bfloat16"] = "float32"
    remat: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def validate(self):
        if (self.pretrained is None) == (self.config is None):
            raise ConfigError(f"pretrained={self.pretrained!r}, config={self.config!r}: expected exactly "
                              "one of them (a checkpoint, or a config.json for random initialisation)")


@dataclass(frozen=True)
class DataConfig:
    """Where a task's utterances and labels come from.

    type `corpus`: the synthetic corpus shipped with the project (`corpus` = preset, built on
      first use, or `corpus_dir` = an already built one) and its task `task` (pr, asr, sid, ks,
      style), which fixes the label field and vocabulary;
    type `manifest`: a JSONL/TSV manifest at `path` (optional `split` filter on its `split` field);
    type `hf`: a Hugging Face dataset (`path` = hub name or `save_to_disk` folder, `name` = its
      config, `split`);
    type `tfds`: a TensorFlow Datasets name at `path` with `split`.
    For `manifest`/`hf`/`tfds`, `field` names the label column; CTC vocabularies come from `vocab`
    (a file) or are built from the training split; class lists from `classes` or from the data.
    `lexicon`: a `WORD PH1 PH2 ...` file; the `field` (a word transcription) is turned into
    phones through it (SUPERB's phone recognition on LibriSpeech).
    """

    type: Literal["corpus", "manifest", "hf", "tfds"] = "corpus"
    corpus: Literal["tiny", "demo", "full"] = "demo"
    corpus_dir: str | None = None
    task: str | None = None
    path: str | None = None
    name: str | None = None
    split: str = "train"
    audio_column: str = "audio"
    field: str | None = None
    vocab: str | None = None
    vocab_kind: Literal["phone", "char", "word"] = "phone"
    classes: str | None = None
    lexicon: str | None = None
    data_dir: str | None = None

    def validate(self):
        if self.type == "corpus":
            _check(self.task in CORPUS_TASKS, "task", self.task, "one of " + ", ".join(CORPUS_TASKS))
        else:
            _check(bool(self.path), "path", self.path, f"a {self.type} path or name")
            _check(bool(self.field), "field", self.field, "the name of the label column")


@dataclass(frozen=True)
class TaskConfig:
    """One supervised task: its data, its head and its loss weight.

    kind `ctc`: a CTC head (`head: linear` or `bilstm`, `lstm_units` x `lstm_layers` per
    direction) on the last layer; kind `classification`: project to `projection_dim`, mean-pool
    over valid frames, linear. `batch_size` is global (over all processes and devices).
    `max_seconds` crops training utterances (classification) or leaves longer ones out (CTC).
    """

    name: str
    kind: Literal["ctc", "classification"]
    data: DataConfig
    head: Literal["linear", "bilstm"] = "linear"
    lstm_units: int = 256
    lstm_layers: int = 3
    head_dropout: float = 0.0
    projection_dim: int = 256
    weight: float = 1.0
    batch_size: int = 8
    max_seconds: float | None = None
    num_buckets: int = 4
    speed_perturb: bool = False

    def validate(self):
        _check(self.name.isidentifier(), "name", self.name, "a short identifier (letters, digits, _)")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "a positive integer")
        _check(self.weight > 0, "weight", self.weight, "a positive number")
        _check(self.num_buckets >= 1, "num_buckets", self.num_buckets, "a positive integer")
        _check(self.lstm_units >= 1 and self.lstm_layers >= 1, "lstm_units", self.lstm_units,
               "positive lstm_units and lstm_layers")
        _check(self.projection_dim >= 1, "projection_dim", self.projection_dim, "a positive integer")
        _fraction("head_dropout", self.head_dropout)
        _check(self.max_seconds is None or self.max_seconds >= 0.1, "max_seconds", self.max_seconds,
               "at least 0.1 (seconds) or null")
        if self.kind == "classification":
            _check(self.head == "linear", "head", self.head, "linear for a classification task")


@dataclass(frozen=True)
class OptimizerConfig:
    """Adam with the stable fine-tuning schedule (warm-up, hold, linear decay).

    `steps` counts optimizer updates; each update accumulates `grad_accum` batches. The encoder
    trains only after the first `beta` fraction of `steps` (0: from the start).
    """

    steps: int = 1000
    encoder_lr: float = 1e-4
    head_lr: float = 1e-4
    beta: float = 0.1
    clip_norm: float | None = 1.0
    weight_decay: float = 0.0
    grad_accum: int = 1
    warmup_fraction: float = 0.1
    hold_fraction: float = 0.4

    def validate(self):
        _check(self.steps >= 1, "steps", self.steps, "a positive integer")
        _check(self.encoder_lr >= 0, "encoder_lr", self.encoder_lr, "a non-negative number")
        _check(self.head_lr >= 0, "head_lr", self.head_lr, "a non-negative number")
        _fraction("beta", self.beta)
        _check(self.clip_norm is None or self.clip_norm > 0, "clip_norm", self.clip_norm,
               "a positive number or null")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a non-negative number")
        _check(self.grad_accum >= 1, "grad_accum", self.grad_accum, "a positive integer")
        _fraction("warmup_fraction", self.warmup_fraction)
        _fraction("hold_fraction", self.hold_fraction)
        _check(self.warmup_fraction + self.hold_fraction <= 1.0, "hold_fraction", self.hold_fraction,
               "warmup_fraction + hold_fraction <= 1")


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters on the transformer's projections; merged into plain weights at the end."""

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("q_proj", "v_proj")

    def validate(self):
        from speechft_jax.models.lora import LORA_TARGETS

        _check(self.rank >= 1, "rank", self.rank, "a positive integer")
        _check(self.alpha > 0, "alpha", self.alpha, "a positive number")
        _check(len(self.targets) > 0, "targets", list(self.targets), "at least one target")
        for target in self.targets:
            _check(target in LORA_TARGETS, "targets", target, "one of " + ", ".join(LORA_TARGETS))


@dataclass(frozen=True)
class FinetuneConfig:
    """The method and its baselines, as switches.

    Stable fine-tuning (Speech-FT step 1): `freeze_cnn: true` with `optimizer.beta: 0.1`.
    Full fine-tuning: `freeze_cnn: false`, `optimizer.beta: 0`. `l2_to_pretrained`: lambda of
    `lambda * ||theta - theta_0||^2`. `lora`: train adapters only. `early_checkpoints`: export
    the encoder at these fractions of the run. `spec_augment`: the encoder's time/feature masks.
    """

    freeze_cnn: bool = True
    l2_to_pretrained: float = 0.0
    lora: LoraConfig | None = None
    early_checkpoints: tuple[float, ...] = ()
    spec_augment: bool = True

    def validate(self):
        _check(self.l2_to_pretrained >= 0, "l2_to_pretrained", self.l2_to_pretrained, "a non-negative number")
        for value in self.early_checkpoints:
            _check(0.0 < value < 1.0, "early_checkpoints", value, "fractions strictly between 0 and 1")
        if self.lora is not None:
            _check(self.l2_to_pretrained == 0, "l2_to_pretrained", self.l2_to_pretrained,
                   "0 with LoRA (the base weights do not move)")


@dataclass(frozen=True)
class MeshConfig:
    """Device mesh: `data` x `fsdp` must equal the device count; -1 on `data` takes the rest."""

    data: int = -1
    fsdp: int = 1

    def validate(self):
        _check(self.data == -1 or self.data >= 1, "data", self.data, "-1 or a positive integer")
        _check(self.fsdp >= 1, "fsdp", self.fsdp, "a positive integer")


@dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints under `<output_dir>/checkpoints`: every `every_steps`, keep the last `keep`."""

    every_steps: int = 500
    keep: int = 2
    async_save: bool = True

    def validate(self):
        _check(self.every_steps >= 1, "every_steps", self.every_steps, "a positive integer")
        _check(self.keep >= 1, "keep", self.keep, "a positive integer")


@dataclass(frozen=True)
class LoggingConfig:
    """`metrics.jsonl` every `every_steps` (averaged), TensorBoard events, a progress bar."""

    every_steps: int = 10
    tensorboard: bool = True
    progress_bar: bool = True

    def validate(self):
        _check(self.every_steps >= 1, "every_steps", self.every_steps, "a positive integer")


@dataclass(frozen=True)
class TrainConfig:
    """A fine-tuning run (see the module docstring)."""

    output_dir: str
    model: ModelConfig
    tasks: tuple[TaskConfig, ...]
    objective: Literal["supervised"] = "supervised"
    seed: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def validate(self):
        _check(bool(self.output_dir), "output_dir", self.output_dir, "a directory path")
        _check(len(self.tasks) > 0, "tasks", list(self.tasks), "at least one task")
        names = [t.name for t in self.tasks]
        _check(len(set(names)) == len(names), "tasks", names, "distinct task names")


def load_train_config(path, overrides=()) -> TrainConfig:
    """Parse and validate a training YAML file with `key=value` overrides."""
    return load_config(TrainConfig, path, overrides)
