"""HuBERT masked prediction (`objective: hubert`): its config, targets, task and loss.

`HubertConfig` is the run's `hubert` section and the objective (objectives/__init__.py): the encoder
runs with HuBERT's span masking, and `prepare(...)` builds the `HubertTask` and the frozen arrays
its targets read (`frozen["teacher"]`, `frozen["teacher_head"]`, `frozen["centroids"]`).

Targets are computed inside the jitted step from the batch the student sees, so speed
perturbation and cropping cannot misalign them:
  pretrained_head:  argmax of the teacher's cosine logits on its last layer (self-training);
  kmeans_mfcc:      nearest centroid of 39-dim MFCC frames (MFCC + deltas), framed with the
                    encoder's receptive field and stride, so frame t is encoder frame t;
  kmeans_features:  nearest centroid of the teacher's hidden state `layer`.
The k-means is fitted once per run (on the unaugmented training audio) and saved as `kmeans.npz`
in the run directory; a resumed run reads it back.

The head (fairseq's names, as `load_pretrained` keeps them in `bundle.pretraining_head`):
`final_proj` {kernel `[hidden, final_dim]`, bias `[final_dim]`} and `label_embs_concat`
`[num_classes, final_dim]`: a copy of the pre-trained model's when it has one with the same number
of classes (continued pre-training), else a new one. Logits are the cosine similarity between the
projected frame and every label embedding, divided by a temperature (0.1); the loss is
cross-entropy against the frame's target, averaged over masked frames (weight 1) and, optionally,
over unmasked frames (weight 0 by default), padding excluded.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import jax
import jax.numpy as jnp
import optax

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.checkpoints.pretraining_head import head_kind
from speechft_jax.config_loading import COUNT, FRACTION, NON_NEGATIVE, Range, check, resolve_path
from speechft_jax.data.audio import MIN_SAMPLES
from speechft_jax.data.mfcc import mfcc_batch
from speechft_jax.models.config import ConfigError, EncoderConfig
from speechft_jax.models.encode import encode_source
from speechft_jax.models.masking import frame_mask_from_samples
from speechft_jax.objectives.kmeans import assign_clusters, collect_frames, fit_kmeans, load_kmeans, save_kmeans
from speechft_jax.objectives.teacher import teacher_forward

KMEANS_NAME = "kmeans.npz"
LAYER = Range(0, 256)  # a hidden state: 0 = the CNN projection's output, up to the encoder's own bound
_EPS = 1e-8  # torch.cosine_similarity's default
logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ the config
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
    layer: Annotated[int, LAYER] | None = None
    teacher: str | None = None
    kmeans_max_frames: Annotated[int, Range(2, 10**9)] = 200_000
    final_dim: Annotated[int, COUNT] = 256
    mask_prob: Annotated[float, FRACTION] = 0.8
    mask_length: Annotated[int, COUNT] = 10
    min_masks: Annotated[int, Range(0, 65536)] = 2
    unmasked_weight: Annotated[float, NON_NEGATIVE] = 0.0
    temperature: float = 0.1

    def validate(self):
        check(self.kmeans_max_frames >= self.num_clusters, "kmeans_max_frames", self.kmeans_max_frames,
              "at least num_clusters")
        check(self.mask_prob > 0.0, "mask_prob", self.mask_prob, "a number in (0, 1]")
        check(self.temperature > 0, "temperature", self.temperature, "a positive number")
        if self.targets == "kmeans_features":
            check(self.layer is not None, "layer", self.layer,
                  "the hidden state to cluster (0 = CNN projection output, L = last layer)")
        else:
            check(self.layer is None, "layer", self.layer, "null unless targets is kmeans_features")

    # -------------------------------------------------------------- the objective's API
    def encoder_settings(self, model, spec_augment: bool):
        """`(model config, spec_augment)`: HuBERT's span masking replaces SpecAugment's settings."""
        masking = {"apply_spec_augment": True, "mask_time_prob": self.mask_prob,
                   "mask_time_length": self.mask_length, "mask_time_min_masks": self.min_masks}
        return dataclasses.replace(model, overrides={**model.overrides, **masking}), True

    def loader_view(self):
        return None

    def layers_to_train(self, num_layers: int):
        return None  # every layer (the CNN as `finetune.freeze_cnn` says)

    def prepare(self, task_config, bundle, theta_0, source, *, out_dir: Path, seed: int, is_writer: bool = True,
                config_dir=None):
        """`(HubertTask, frozen arrays)` of a run starting from `bundle` / `theta_0` (module
        docstring); `source` is the task's training audio (the k-means data); a relative `teacher`
        path is looked up as `model.pretrained` is (`config_loading.resolve_path`, `config_dir`)."""
        teacher_path = None if self.teacher is None else str(resolve_path(self.teacher, config_dir))
        module, teacher_params, teacher_head, where = _teacher(teacher_path, bundle, bundle.config.dtype)
        frozen: dict = {}
        if self.targets != "kmeans_mfcc":
            frozen["teacher"] = theta_0 if teacher_params is None else teacher_params
        if self.targets == "kmeans_features":
            layers = module.config.num_hidden_layers
            if not 0 <= self.layer <= layers:
                raise ConfigError(f"hubert.layer={self.layer}, expected 0..{layers} ({where} has {layers} layers)")

        if self.targets == "pretrained_head":
            if teacher_head is None:
                raise ConfigError(f"hubert.targets=pretrained_head: {where} has no pre-training head (final_proj, "
                                  f"label_embs_concat); import a fairseq checkpoint or use kmeans targets")
            if head_kind(teacher_head) != "hubert":
                raise ConfigError(f"hubert.targets=pretrained_head: {where} has a {head_kind(teacher_head)} "
                                  "pre-training head, not HuBERT's (final_proj, label_embs_concat); use kmeans targets")
            frozen["teacher_head"] = teacher_head
            teacher = teacher_forward(module, None)
            num_classes = int(teacher_head["label_embs_concat"].shape[0])

            def targets(frz, batch):
                last, _ = teacher(frz["teacher"], batch["audio"], batch["audio_mask"])
                return jnp.argmax(hubert_logits(frz["teacher_head"], last, self.temperature), -1).astype(jnp.int32)
        else:
            if self.targets == "kmeans_mfcc":
                mfcc = _mfcc_fn(bundle.config)
                features = lambda frz, audio, mask: mfcc(audio, mask)
            else:
                teacher = teacher_forward(module, self.layer)
                features = lambda frz, audio, mask: teacher(frz["teacher"], audio, mask)
            compiled = jax.jit(features)  # the teacher's weights are an argument, not constants in the program
            fit_frozen = dict(frozen)
            feature_fn = lambda audio, mask: compiled(fit_frozen, audio, mask)
            frozen["centroids"] = jnp.asarray(_kmeans(self, bundle, source, feature_fn, out_dir, seed, is_writer))
            num_classes = self.num_clusters

            def targets(frz, batch):
                feats, _ = features(frz, batch["audio"], batch["audio_mask"])
                return assign_clusters(feats, frz["centroids"])

        initial = bundle.pretraining_head
        if head_kind(initial) not in (None, "hubert"):
            logger.warning(f"the starting model's {head_kind(initial)} pre-training head is not HuBERT's: "
                           "ignored, the run starts a new HuBERT head")
            initial = None
        if initial is not None and int(initial["label_embs_concat"].shape[0]) != num_classes:
            initial = None  # different targets: a new head
        task = HubertTask(task_config.name, num_classes, self.final_dim, targets, self.temperature,
                          self.unmasked_weight, initial)
        return task, frozen


# ------------------------------------------------------------------------------ targets
def _mfcc_fn(config: EncoderConfig):
    """`(audio, audio_mask) -> (mfcc [B, F, 39], frame_mask [B, F])`, F = the encoder's frames."""

    def fn(audio, audio_mask):
        frames = config.num_frames(audio.shape[-1])
        feats = mfcc_batch(audio, audio_mask.sum(-1), xp=jnp, hop=config.total_stride,
                           window_samples=config.receptive_field, deltas=True)
        if feats.shape[1] < frames:  # a CNN whose padding rounds differently: repeat the last frame
            feats = jnp.pad(feats, ((0, 0), (0, frames - feats.shape[1]), (0, 0)), mode="edge")
        return feats[:, :frames], frame_mask_from_samples(config, audio_mask, frames)

    return fn


def _teacher(path: str | None, student, model_dtype):
    """`(module, params or None (= theta_0), head, where)` of the encoder the targets come from:
    the one at `path`, or the student's starting point."""
    if path is None:
        return student.module, None, student.pretraining_head, "the starting model"
    bundle = load_pretrained(path, dtype=model_dtype)
    return bundle.module, bundle.params, bundle.pretraining_head, path


def _kmeans(settings: HubertConfig, bundle, source, feature_fn, out_dir: Path, seed: int, is_writer: bool):
    """The centroids: read from the run directory, else fitted on `feature_fn`'s frames of `source`
    (`bundle`'s preprocessing) and saved there."""
    path = Path(out_dir) / KMEANS_NAME
    if path.is_file():
        centroids, _ = load_kmeans(path)
        return centroids
    # `feature_fn` is MFCC or the teacher, not `bundle`'s CNN: the loader's floor, not its receptive field
    encoded = encode_source(bundle, source, feature_fn, min_samples=MIN_SAMPLES, desc=f"k-means {settings.targets}")
    frames = collect_frames((utterance.states for utterance in encoded), settings.kmeans_max_frames, seed)
    centroids, inertia = fit_kmeans(frames, settings.num_clusters, seed)
    logger.info(f"k-means ({settings.targets}{'' if settings.layer is None else f', layer {settings.layer}'}): "
                f"{settings.num_clusters} clusters on {len(frames)} frames of {frames.shape[1]} dims, "
                f"inertia per frame {inertia:.4g}")
    if is_writer:
        save_kmeans(path, centroids, {"targets": settings.targets, "layer": settings.layer,
                                      "num_clusters": settings.num_clusters, "frames": len(frames),
                                      "inertia_per_frame": inertia, "seed": seed})
    return centroids


# ------------------------------------------------------------------------------ head and loss
def init_hubert_head(rng, hidden_dim: int, final_dim: int, num_classes: int) -> dict:
    """A fresh head: normal(0.02) projection, zero bias, normal(1) label embeddings."""
    k_proj, k_emb = jax.random.split(rng)
    return {"final_proj": {"kernel": 0.02 * jax.random.normal(k_proj, (hidden_dim, final_dim)),
                           "bias": jnp.zeros((final_dim,))},
            "label_embs_concat": jax.random.normal(k_emb, (num_classes, final_dim))}


def hubert_logits(head: dict, features, temperature: float = 0.1):
    """features `[batch, frames, hidden]` -> logits `[batch, frames, num_classes]` (float32)."""
    proj = features.astype(jnp.float32) @ head["final_proj"]["kernel"] + head["final_proj"]["bias"]
    labels = head["label_embs_concat"].astype(jnp.float32)
    proj = proj / jnp.maximum(jnp.linalg.norm(proj, axis=-1, keepdims=True), _EPS)
    labels = labels / jnp.maximum(jnp.linalg.norm(labels, axis=-1, keepdims=True), _EPS)
    return (proj @ labels.T) / temperature


def _mean_over(values, weights):
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def hubert_loss(head: dict, features, targets, frame_mask, mask_time_indices, *, masked_weight: float = 1.0,
                unmasked_weight: float = 0.0, temperature: float = 0.1):
    """`(loss, metrics)`. targets int `[batch, frames]`; frame_mask / mask_time_indices bool `[batch, frames]`.

    loss = masked_weight * mean CE over masked valid frames + unmasked_weight * mean CE over
    unmasked valid frames. Metrics: `masked_loss`, `masked_accuracy`, `unmasked_loss`.
    """
    logits = hubert_logits(head, features, temperature)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    valid = frame_mask.astype(bool)
    masked = (valid & mask_time_indices.astype(bool)).astype(jnp.float32)
    unmasked = (valid & ~mask_time_indices.astype(bool)).astype(jnp.float32)
    masked_loss = _mean_over(ce, masked)
    unmasked_loss = _mean_over(ce, unmasked)
    accuracy = _mean_over(correct, masked)
    loss = masked_weight * masked_loss + (unmasked_weight * unmasked_loss if unmasked_weight else 0.0)
    return loss, {"masked_loss": masked_loss, "masked_accuracy": accuracy, "unmasked_loss": unmasked_loss}


# ------------------------------------------------------------------------------ the task
@dataclass(frozen=True, eq=False)
class HubertTask:
    """Masked prediction as a trainer task (tasks/task.py's API): `targets(frozen, batch) -> int32
    [batch, frames]` sees the run's frozen arrays (teacher parameters, k-means centroids); no
    gradient flows through it. Its head is the one the exported encoder keeps."""

    head_is_pretraining_head = True  # the loop saves this head with the encoder

    name: str
    num_classes: int
    final_dim: int
    targets: Callable[[Any, dict], Any]
    temperature: float = 0.1
    unmasked_weight: float = 0.0
    initial_head: Any = None

    def init(self, rng, hidden_dim: int):
        if self.initial_head is not None:
            return jax.tree_util.tree_map(lambda x: x.astype("float32"), self.initial_head)
        return init_hubert_head(rng, hidden_dim, self.final_dim, self.num_classes)

    def train_loss(self, encode, head_params, frozen, batch, rng):
        """One batch: teacher targets, the masked student forward, the masked cross-entropy."""
        targets = jax.lax.stop_gradient(self.targets(frozen, batch))
        out = encode(batch, rng)
        if out.mask_time_indices is None:
            raise ValueError("the hubert objective needs the encoder's span masking (mask_time_prob > 0)")
        frame_mask = out.frame_mask & batch["example_mask"][:, None].astype(bool)
        loss, metrics = hubert_loss(head_params, out.last_hidden_state, targets, frame_mask, out.mask_time_indices,
                                    unmasked_weight=self.unmasked_weight, temperature=self.temperature)
        return loss, dict(metrics, loss=loss)
