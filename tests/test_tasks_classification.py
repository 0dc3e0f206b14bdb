"""Utterance classification: padding-invariant pooling, cross-entropy and accuracy over real rows."""

import jax
import jax.numpy as jnp
import numpy as np

from speechft_jax.tasks import ClassificationTask, UtteranceClassifier

HIDDEN = 5
CLASSES = 4


def _mask(lengths, width):
    return np.arange(width)[None, :] < np.asarray(lengths)[:, None]


def _numpy_cross_entropy(logits, labels):
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def test_pooling_ignores_padding():
    head = UtteranceClassifier(CLASSES, projection_dim=8)
    rng = np.random.default_rng(0)
    lengths = np.array([7, 3])
    features = rng.normal(size=(2, 7, HIDDEN)).astype(np.float32)
    features[1, 3:] = 1e4  # row 1's own padding
    params = head.init(jax.random.PRNGKey(0), features, _mask(lengths, 7))
    apply = jax.jit(head.apply)
    short = np.asarray(apply(params, features, _mask(lengths, 7)))
    assert short.shape == (2, CLASSES) and short.dtype == np.float32
    padded = np.concatenate([features, np.full((2, 6, HIDDEN), np.nan, np.float32)], axis=1)
    np.testing.assert_allclose(np.asarray(apply(params, padded, _mask(lengths, 13))), short, atol=1e-5)
    # and it is the mean over the valid frames: same as the unpadded row 1 alone
    alone = np.asarray(apply(params, features[1:, :3], np.ones((1, 3), bool)))
    np.testing.assert_allclose(alone[0], short[1], atol=1e-5)


def test_loss_is_numpy_cross_entropy_over_real_rows():
    task = ClassificationTask("speaker", num_classes=CLASSES, projection_dim=8)
    params = task.init(jax.random.PRNGKey(1), HIDDEN)
    rng = np.random.default_rng(1)
    lengths = np.array([9, 4, 6, 9])
    features = (3 * rng.normal(size=(4, 9, HIDDEN))).astype(np.float32)
    frame_mask = _mask(lengths, 9)
    labels = np.array([2, 0, 3, -1], np.int32)  # row 3 is a filler row with a junk label
    example_mask = np.array([True, True, True, False])
    batch = {"label": labels, "example_mask": example_mask}
    loss, metrics = jax.jit(lambda p, f, m, b: task.loss(p, f, m, b, None, False))(params, features, frame_mask, batch)
    logits = np.asarray(task.predict(params, features, frame_mask))
    expected = _numpy_cross_entropy(logits[:3], labels[:3]).mean()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert set(metrics) == {"loss", "accuracy"}
    expected_accuracy = (logits[:3].argmax(-1) == labels[:3]).mean()
    np.testing.assert_allclose(float(metrics["accuracy"]), expected_accuracy, rtol=1e-6)

    # the filler row changes nothing, whatever it holds
    features[3] = 1e3
    batch["label"] = np.array([2, 0, 3, 1], np.int32)
    again, _ = task.loss(params, features, frame_mask, batch, None, False)
    np.testing.assert_allclose(float(again), float(loss), rtol=1e-6)
    # no real rows: zero, not NaN
    empty, empty_metrics = task.loss(params, features, frame_mask, dict(batch, example_mask=np.zeros(4, bool)),
                                     None, False)
    assert float(empty) == 0.0 and float(empty_metrics["accuracy"]) == 0.0


def test_accuracy_and_loss_on_a_hand_made_case():
    # identity projection and classifier: logits = mean of the valid frames
    task = ClassificationTask("intent", num_classes=3, projection_dim=3)
    eye = jnp.eye(3)
    params = {"projection": {"kernel": eye, "bias": jnp.zeros(3)},
              "classifier": {"kernel": eye, "bias": jnp.zeros(3)}}
    features = np.zeros((4, 3, 3), np.float32)
    features[0, :2] = [[0, 0, 2], [0, 0, 4]]      # mean [0, 0, 3] -> class 2, label 2: right
    features[1, :1] = [[1, 0, 0]]                 # class 0, label 1: wrong
    features[1, 1:] = [[0, 50, 0], [0, 50, 0]]    # padding that would make it right
    features[2, :3] = [[0, 1, 0]] * 3             # class 1, label 1: right
    features[3, :3] = [[9, 0, 0]] * 3             # filler row, would be wrong
    frame_mask = _mask([2, 1, 3, 3], 3)
    batch = {"label": np.array([2, 1, 1, 2], np.int32), "example_mask": np.array([True, True, True, False])}
    loss, metrics = task.loss(params, features, frame_mask, batch, None, False)
    np.testing.assert_allclose(float(metrics["accuracy"]), 2 / 3, rtol=1e-6)
    means = np.array([[0, 0, 3], [1, 0, 0], [0, 1, 0]], np.float32)
    expected = _numpy_cross_entropy(means, np.array([2, 1, 1])).mean()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_training_gradient_reaches_the_head_and_is_finite():
    task = ClassificationTask("kws", num_classes=CLASSES, projection_dim=8)
    params = task.init(jax.random.PRNGKey(2), HIDDEN)
    assert params["projection"]["kernel"].shape == (HIDDEN, 8)
    assert params["classifier"]["kernel"].shape == (8, CLASSES)
    features = np.random.default_rng(2).normal(size=(2, 5, HIDDEN)).astype(np.float32)
    features[1, 3:] = np.nan
    batch = {"label": np.array([1, 3], np.int32), "example_mask": np.ones(2, bool)}
    grads = jax.grad(lambda p: task.loss(p, features, _mask([5, 3], 5), batch, jax.random.PRNGKey(0), True)[0])(params)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.isfinite(np.asarray(g)).all() for g in leaves)
    assert np.abs(np.asarray(grads["classifier"]["kernel"])).max() > 0
