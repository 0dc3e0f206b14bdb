"""HuBERT's targets for a run: which frozen arrays they need, how they are computed in the step.

`build_hubert_task(settings, task_config, student, theta_0, source, ...)` returns the `HubertTask`
and the frozen arrays its targets read (`frozen["teacher"]`, `frozen["teacher_head"]`,
`frozen["centroids"]`). Targets are computed inside the jitted step from the batch the student
sees, so speed perturbation and cropping cannot misalign them:
  pretrained_head:  argmax of the teacher's cosine logits on its last layer (self-training);
  kmeans_mfcc:      nearest centroid of 39-dim MFCC frames (MFCC + deltas), framed with the
                    encoder's receptive field and stride, so frame t is encoder frame t;
  kmeans_features:  nearest centroid of the teacher's hidden state `layer`.
The k-means is fitted once per run (on the unaugmented training audio) and saved as `kmeans.npz`
in the run directory; a resumed run reads it back.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.data import evaluation_loader
from speechft_jax.data.mfcc import mfcc_batch
from speechft_jax.models.config import ConfigError, EncoderConfig
from speechft_jax.models.masking import frame_mask_from_samples
from speechft_jax.objectives.teacher import teacher_forward
from speechft_jax.objectives.kmeans import assign_clusters, collect_frames, fit_kmeans, load_kmeans, save_kmeans
from speechft_jax.tasks.hubert_loss import hubert_logits
from speechft_jax.tasks.hubert_task import HubertTask

KMEANS_NAME = "kmeans.npz"


def mask_overrides(settings) -> dict:
    """Encoder settings that make its span masking HuBERT's."""
    return {"apply_spec_augment": True, "mask_time_prob": settings.mask_prob,
            "mask_time_length": settings.mask_length, "mask_time_min_masks": settings.min_masks}


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


def _teacher(settings, student, model_dtype):
    """`(module, params or None (= theta_0), head, where)` of the encoder the targets come from."""
    if settings.teacher is None:
        return student.module, None, student.pretraining_head, "the starting model"
    bundle = load_pretrained(settings.teacher, dtype=model_dtype)
    return bundle.module, bundle.params, bundle.pretraining_head, settings.teacher


def build_hubert_task(settings, task_config, student, theta_0, source, *, out_dir: Path, seed: int,
                      normalize: bool, is_writer: bool = True):
    """The `HubertTask` of a run and the frozen arrays its targets read (module docstring).
    `settings.teacher`, when set, is a path the caller has already resolved."""
    module, teacher_params, teacher_head, where = _teacher(settings, student, student.config.dtype)
    frozen: dict = {}
    if settings.targets != "kmeans_mfcc":
        frozen["teacher"] = theta_0 if teacher_params is None else teacher_params
    if settings.targets == "kmeans_features":
        layers = module.config.num_hidden_layers
        if not 0 <= settings.layer <= layers:
            raise ConfigError(f"hubert.layer={settings.layer}, expected 0..{layers} ({where} has {layers} layers)")

    if settings.targets == "pretrained_head":
        if teacher_head is None:
            raise ConfigError(f"hubert.targets=pretrained_head: {where} has no pre-training head (final_proj, "
                              f"label_embs_concat); import a fairseq checkpoint or use kmeans targets")
        frozen["teacher_head"] = teacher_head
        teacher = teacher_forward(module, None)
        num_classes = int(teacher_head["label_embs_concat"].shape[0])

        def targets(frz, batch):
            last, _ = teacher(frz["teacher"], batch["audio"], batch["audio_mask"])
            return jnp.argmax(hubert_logits(frz["teacher_head"], last, settings.temperature), -1).astype(jnp.int32)
    else:
        if settings.targets == "kmeans_mfcc":
            mfcc = _mfcc_fn(student.config)
            features = lambda frz, audio, mask: mfcc(audio, mask)
        else:
            teacher = teacher_forward(module, settings.layer)
            features = lambda frz, audio, mask: teacher(frz["teacher"], audio, mask)
        compiled = jax.jit(features)  # the teacher's weights are an argument, not constants in the program
        fit_frozen = dict(frozen)
        feature_fn = lambda audio, mask: compiled(fit_frozen, audio, mask)
        frozen["centroids"] = jnp.asarray(_kmeans(settings, source, feature_fn, out_dir, seed, normalize, is_writer))
        num_classes = settings.num_clusters

        def targets(frz, batch):
            feats, _ = features(frz, batch["audio"], batch["audio_mask"])
            return assign_clusters(feats, frz["centroids"])

    initial = student.pretraining_head
    if initial is not None and int(initial["label_embs_concat"].shape[0]) != num_classes:
        initial = None  # different targets: a new head
    task = HubertTask(task_config.name, num_classes, settings.final_dim, targets, settings.temperature,
                      settings.unmasked_weight, initial)
    return task, frozen


def _kmeans(settings, source, feature_fn, out_dir: Path, seed: int, normalize: bool, is_writer: bool):
    path = Path(out_dir) / KMEANS_NAME
    if path.is_file():
        centroids, _ = load_kmeans(path)
        return centroids
    loader = evaluation_loader(source, normalize=normalize)
    try:
        frames = collect_frames(feature_fn, loader, settings.kmeans_max_frames, seed,
                                desc=f"k-means {settings.targets}")
    finally:
        loader.close()
    centroids, inertia = fit_kmeans(frames, settings.num_clusters, seed)
    print(f"k-means ({settings.targets}{'' if settings.layer is None else f', layer {settings.layer}'}): "
          f"{settings.num_clusters} clusters on {len(frames)} frames of {frames.shape[1]} dims, "
          f"inertia per frame {inertia:.4g}")
    if is_writer:
        save_kmeans(path, centroids, {"targets": settings.targets, "layer": settings.layer,
                                      "num_clusters": settings.num_clusters, "frames": len(frames),
                                      "inertia_per_frame": inertia, "seed": seed})
    return centroids
