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
    sweep:     optional Speech-FT steps 2 and 3 after training: the alpha sweep of theta_0 and the
               run's encoder with SUPERB-style probes and feature similarity (`sweep.config`)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from speechft_jax.config_loading import COUNT, FRACTION, NON_NEGATIVE, SEED, STEPS, Range, load_config
from speechft_jax.models.config import TRAINING_SETTINGS, ConfigError, EncoderConfig, short_repr
from speechft_jax.sweep.config import SweepConfig

CORPUS_TASKS = ("pr", "asr", "sid", "ks", "style", "xl_cmn", "xl_es")
CORPUS_AUDIO = "audio"  # every utterance of a split, no labels (self-supervised objectives)
SELF_SUPERVISED_KINDS = ("hubert", "score")
LAYERS = Range(0, 256)         # a layer index or count (the encoder's own bound, models/config.py)
MAX_SECONDS = Range(0.1, 3600)  # an utterance crop of an hour is past any real training batch


def _check(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={short_repr(value)}, expected {expected}")


@dataclass(frozen=True)
class ModelConfig:
    """The encoder to fine-tune.

    `pretrained`: a transformers directory, a hub id, a fairseq `.pt` or a speechft Flax
    directory. Or `config`: a transformers `config.json` for a randomly initialised encoder
    (seeded by `init_seed`; `cnn_init: filterbank` starts its CNN as a mel-spaced Gabor filterbank
    followed by per-channel averages, `models/filterbank_init.py`); a relative path is looked up
    from the working directory, then next to the YAML file, then next to each file of its `base:`
    chain. `overrides`: `EncoderConfig` training settings to change (`models.config.TRAINING_SETTINGS`:
    SpecAugment's `mask_time_prob`, dropouts). `dtype` / `param_dtype` (float32, bfloat16), `remat` (recompute
    each layer in the backward pass) and `scan_layers` (alike layers as one `lax.scan`: shorter
    compiles for deep models) change how it runs, not what it computes.
    """

    pretrained: str | None = None
    config: str | None = None
    init_seed: Annotated[int, SEED] = 0
    cnn_init: Literal["random", "filterbank"] = "random"
    dtype: Literal["float32", "bfloat16"] = "float32"
    param_dtype: Literal["float32", "bfloat16"] = "float32"
    remat: bool = False
    scan_layers: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def validate(self):
        if (self.pretrained is None) == (self.config is None):
            raise ConfigError(f"pretrained={self.pretrained!r}, config={self.config!r}: expected exactly "
                              "one of them (a checkpoint, or a config.json for random initialisation)")
        if self.cnn_init != "random" and self.pretrained is not None:
            raise ConfigError(f"cnn_init={self.cnn_init!r}: only for a random start (model.config), "
                              f"not for model.pretrained={self.pretrained!r}")
        for key in self.overrides:
            _check(key in TRAINING_SETTINGS, f"overrides.{key}", self.overrides[key],
                   f"an overridable encoder setting (one of {', '.join(TRAINING_SETTINGS)})")
        try:  # the values' own ranges (the encoder's validation), before any checkpoint is read
            EncoderConfig().replace(**self.overrides)
        except ConfigError as err:
            raise ConfigError(f"overrides.{str(err).removeprefix('encoder config: ')}") from None


@dataclass(frozen=True)
class DataConfig:
    """Where a task's utterances and labels come from.

    type `corpus`: the synthetic corpus shipped with the project (`corpus` = preset, built on
      first use, or `corpus_dir` = an already built one) and its task `task` (pr, asr, sid, ks,
      style, or the cross-lingual phone tasks xl_cmn, xl_es), which fixes the label field and
      vocabulary, or `audio` (every utterance of the split, without labels, for the
      self-supervised objectives);
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
            tasks = CORPUS_TASKS + (CORPUS_AUDIO,)
            _check(self.task in tasks, "task", self.task, "one of " + ", ".join(tasks))
        else:
            _check(bool(self.path), "path", self.path, f"a {self.type} path or name")


@dataclass(frozen=True)
class TaskConfig:
    """One task: its data, its head and its loss weight.

    kind `ctc`: a CTC head (`head: linear` or `bilstm`, `lstm_units` x `lstm_layers` per
    direction) on the last layer; kind `classification`: project to `projection_dim`, mean-pool
    over valid frames, linear; kind `hubert`: HuBERT's masked prediction on unlabelled audio (the
    run's `hubert` section says how); kind `score`: SCORE's correspondence loss between two views
    (the `score` section). `batch_size` is global (over all processes and devices).
    `max_seconds` crops training utterances (classification) or leaves longer ones out (CTC).
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

    def validate(self):
        _check(self.name.isidentifier(), "name", self.name, "a short identifier (letters, digits, _)")
        _check(self.weight > 0, "weight", self.weight, "a positive number")
        if self.kind == "classification":
            _check(self.head == "linear", "head", self.head, "linear for a classification task")
        if self.kind not in SELF_SUPERVISED_KINDS:
            _check(self.data.task != CORPUS_AUDIO, "data.task", self.data.task,
                   f"a labelled corpus task for a {self.kind} task")
            _check(self.data.type == "corpus" or bool(self.data.field), "data.field", self.data.field,
                   "the name of the label column")


@dataclass(frozen=True)
class OptimizerConfig:
    """Adam with the stable fine-tuning schedule (warm-up, hold, linear decay).

    `steps` counts optimizer updates; each update accumulates `grad_accum` batches. The encoder
    trains only after the first `beta` fraction of `steps` (0: from the start).
    """

    steps: Annotated[int, STEPS] = 1000
    encoder_lr: Annotated[float, NON_NEGATIVE] = 1e-4
    head_lr: Annotated[float, NON_NEGATIVE] = 1e-4
    beta: Annotated[float, FRACTION] = 0.1
    clip_norm: float | None = 1.0
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.0
    grad_accum: Annotated[int, COUNT] = 1
    warmup_fraction: Annotated[float, FRACTION] = 0.1
    hold_fraction: Annotated[float, FRACTION] = 0.4

    def validate(self):
        _check(self.clip_norm is None or self.clip_norm > 0, "clip_norm", self.clip_norm,
               "a positive number or null")
        _check(self.warmup_fraction + self.hold_fraction <= 1.0, "hold_fraction", self.hold_fraction,
               "warmup_fraction + hold_fraction <= 1")


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters on the transformer's projections; merged into plain weights at the end."""

    rank: Annotated[int, COUNT] = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("q_proj", "v_proj")

    def validate(self):
        from speechft_jax.models.lora import LORA_TARGETS

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
    l2_to_pretrained: Annotated[float, NON_NEGATIVE] = 0.0
    lora: LoraConfig | None = None
    early_checkpoints: tuple[float, ...] = ()
    spec_augment: bool = True

    def validate(self):
        for value in self.early_checkpoints:
            _check(0.0 < value < 1.0, "early_checkpoints", value, "fractions strictly between 0 and 1")
        if self.lora is not None:
            _check(self.l2_to_pretrained == 0, "l2_to_pretrained", self.l2_to_pretrained,
                   "0 with LoRA (the base weights do not move)")


@dataclass(frozen=True)
class HubertConfig:
    """HuBERT masked prediction (`objective: hubert`, tasks of `kind: hubert`).

    `targets`: `pretrained_head` (argmax of the teacher's codeword logits: self-training, needs a
    pre-training head, e.g. from a fairseq checkpoint), `kmeans_mfcc` (k-means of 39-dim MFCC
    frames at the encoder's frame rate: iteration 1) or `kmeans_features` (k-means of the
    teacher's hidden state `layer`: iteration 2). The teacher is `teacher` (an encoder directory)
    or, by default, the run's starting encoder theta_0; targets are computed on the fly from the
    same (augmented) audio the student sees. The k-means (`num_clusters`, fitted by scikit-learn's
    MiniBatchKMeans on at most `kmeans_max_frames` frames of the training data) is saved in the
    run directory as `kmeans.npz`. Masking: `mask_prob` x frames / `mask_length` spans, at least
    `min_masks`. The loss is cross-entropy on masked frames plus `unmasked_weight` x on unmasked
    ones, cosine logits over `temperature`. `final_dim`: the projection width of a new head.
    """

    targets: Literal["pretrained_head", "kmeans_mfcc", "kmeans_features"] = "kmeans_mfcc"
    num_clusters: Annotated[int, Range(2, 65536)] = 100
    layer: Annotated[int, LAYERS] | None = None
    teacher: str | None = None
    kmeans_max_frames: Annotated[int, Range(2, 10**9)] = 200_000
    final_dim: Annotated[int, COUNT] = 256
    mask_prob: Annotated[float, FRACTION] = 0.8
    mask_length: Annotated[int, COUNT] = 10
    min_masks: Annotated[int, Range(0, 65536)] = 2
    unmasked_weight: Annotated[float, NON_NEGATIVE] = 0.0
    temperature: float = 0.1

    def validate(self):
        _check(self.kmeans_max_frames >= self.num_clusters, "kmeans_max_frames", self.kmeans_max_frames,
               "at least num_clusters")
        _check(self.mask_prob > 0.0, "mask_prob", self.mask_prob, "a number in (0, 1]")
        _check(self.temperature > 0, "temperature", self.temperature, "a positive number")
        if self.targets == "kmeans_features":
            _check(self.layer is not None, "layer", self.layer,
                   "the hidden state to cluster (0 = CNN projection output, L = last layer)")
        else:
            _check(self.layer is None, "layer", self.layer, "null unless targets is kmeans_features")


@dataclass(frozen=True)
class ScoreConfig:
    """SCORE correspondence fine-tuning (`objective: score`, a task of `kind: score`).

    The top `trainable_layers` transformer layers train, everything else stays theta_0; a frozen
    copy of theta_0 encodes the other view. Views: speed factor from `speed_factors`, then a
    pitch shift from `pitch_semitones`, order random with `random_order`. One shared projection
    to `projection_dim`, L2 normalisation, normalised soft-DTW with `gamma`.
    """

    trainable_layers: Annotated[int, Range(1, 256)] = 2
    projection_dim: Annotated[int, COUNT] = 256
    gamma: float = 0.1
    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    pitch_semitones: tuple[float, ...] = (-2.0, 2.0)
    random_order: bool = True

    def validate(self):
        _check(self.gamma > 0, "gamma", self.gamma, "a positive number")
        _check(len(self.speed_factors) > 0 and all(0.5 <= f <= 2.0 for f in self.speed_factors),
               "speed_factors", list(self.speed_factors), "factors in [0.5, 2]")
        _check(all(abs(p) <= 12 for p in self.pitch_semitones), "pitch_semitones", list(self.pitch_semitones),
               "shifts within +-12 semitones")


@dataclass(frozen=True)
class MeshConfig:
    """Device mesh: `data` x `fsdp` must equal the device count; -1 on `data` takes the rest."""

    data: Annotated[int, Range(-1, 65536)] = -1
    fsdp: Annotated[int, COUNT] = 1

    def validate(self):
        _check(self.data != 0, "data", self.data, "-1 or a positive integer")


@dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints under `<output_dir>/checkpoints`: every `every_steps`, keep the last `keep`."""

    every_steps: Annotated[int, STEPS] = 500
    keep: Annotated[int, COUNT] = 2
    async_save: bool = True


@dataclass(frozen=True)
class LoggingConfig:
    """`metrics.jsonl` every `every_steps` (averaged), TensorBoard events, a progress bar."""

    every_steps: Annotated[int, STEPS] = 10
    tensorboard: bool = True
    progress_bar: bool = True


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
    sweep: SweepConfig | None = None

    def validate(self):
        _check(bool(self.output_dir), "output_dir", self.output_dir, "a directory path")
        _check(len(self.tasks) > 0, "tasks", list(self.tasks), "at least one task")
        names = [t.name for t in self.tasks]
        _check(len(set(names)) == len(names), "tasks", names, "distinct task names")
        kinds = [t.kind for t in self.tasks]
        if self.objective == "supervised":
            _check(not set(kinds) & set(SELF_SUPERVISED_KINDS), "objective", self.objective,
                   "hubert or score when a task has that kind")
        else:
            _check(kinds.count(self.objective) == 1, "tasks", kinds,
                   f"exactly one task of kind {self.objective} for objective {self.objective}")
        for name in SELF_SUPERVISED_KINDS:
            _check(getattr(self, name) is None or self.objective == name, name, "...",
                   f"no {name} section unless objective is {name}")
        if self.objective == "score":
            _check(self.model.pretrained is not None, "model.pretrained", None,
                   "a pre-trained encoder for objective score (it fine-tunes theta_0's top layers)")
        if self.sweep is not None:
            for key in ("pretrained", "finetuned", "output_dir", "finetuned_label"):
                _check(getattr(self.sweep, key) is None, f"sweep.{key}", getattr(self.sweep, key),
                       "nothing: a training run sweeps model.pretrained against its own encoder/ and names its method")
            _check(self.model.pretrained is not None, "model.pretrained", None,
                   "a pre-trained encoder when there is a sweep section (theta_0 of the merge)")
        if self.objective == "hubert" and self.model.pretrained is None:
            _check(self.hubert is None or self.hubert.targets != "pretrained_head" or self.hubert.teacher is not None,
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
    """Parse and validate a training YAML file with `key=value` overrides."""
    return load_config(TrainConfig, path, overrides)
