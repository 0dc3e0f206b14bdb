"""HuBERT masked prediction: the loss against a NumPy computation; masked-only ignores the rest."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from speechft_jax.objectives.hubert import hubert_logits, hubert_loss, init_hubert_head


def _case(seed=0, batch=3, frames=11, hidden=8, final_dim=5, classes=7):
    rng = np.random.RandomState(seed)
    head = jax.tree_util.tree_map(np.asarray, init_hubert_head(jax.random.PRNGKey(seed), hidden, final_dim, classes))
    head["final_proj"]["bias"] = rng.randn(final_dim).astype(np.float32)
    features = rng.randn(batch, frames, hidden).astype(np.float32)
    targets = rng.randint(0, classes, (batch, frames))
    lengths = np.array([frames, 7, 4])
    frame_mask = np.arange(frames)[None] < lengths[:, None]
    masked = rng.rand(batch, frames) < 0.5
    return head, features, targets, frame_mask, masked


def _numpy_ce(head, features, targets, temperature=0.1):
    proj = features @ head["final_proj"]["kernel"] + head["final_proj"]["bias"]
    emb = head["label_embs_concat"]
    cos = (proj @ emb.T) / (np.linalg.norm(proj, axis=-1, keepdims=True) * np.linalg.norm(emb, axis=-1)[None, None])
    logits = cos.astype(np.float64) / temperature
    log_z = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    return log_z - np.take_along_axis(logits, targets[..., None], -1)[..., 0], logits


def test_loss_matches_numpy():
    head, features, targets, frame_mask, masked = _case()
    ce, logits = _numpy_ce(head, features, targets)
    np.testing.assert_allclose(hubert_logits(head, features), logits, rtol=1e-4, atol=1e-4)
    sel_m, sel_u = frame_mask & masked, frame_mask & ~masked
    expected = ce[sel_m].mean() + 0.3 * ce[sel_u].mean()
    loss, metrics = hubert_loss(head, features, targets, frame_mask, masked, unmasked_weight=0.3)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["masked_loss"]) == pytest.approx(ce[sel_m].mean(), rel=1e-5)
    accuracy = (logits.argmax(-1) == targets)[sel_m].mean()
    assert float(metrics["masked_accuracy"]) == pytest.approx(accuracy)


def test_masked_only_loss_ignores_unmasked_and_padded_frames():
    head, features, targets, frame_mask, masked = _case(seed=1)
    loss, _ = hubert_loss(head, features, targets, frame_mask, masked)
    changed = np.where(frame_mask & masked, targets, (targets + 3) % 7)   # new targets off the masked frames
    garbage = np.where(frame_mask[..., None], features, 1e3)               # garbage in the padding
    loss2, _ = hubert_loss(head, garbage, changed, frame_mask, masked)
    assert float(loss2) == pytest.approx(float(loss), rel=1e-6)
    grads = jax.grad(lambda f: hubert_loss(head, f, targets, frame_mask, masked)[0])(jnp.asarray(features))
    off = ~(frame_mask & masked)
    assert np.all(np.asarray(grads)[off] == 0) and np.abs(np.asarray(grads)[~off]).max() > 0
    none_masked, _ = hubert_loss(head, features, targets, frame_mask, np.zeros_like(masked))
    assert float(none_masked) == 0.0
