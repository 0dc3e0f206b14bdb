"""CTC head, loss and decoding: parity with torch's ctc_loss, padding invariance, error rates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from speechft_jax.tasks import CTCHead, CTCTask, ctc_greedy_decode, ctc_loss, ctc_mean_loss, error_rate

VOCAB = 7
FRAME_LENGTHS = np.array([30, 22, 15, 9])
LABEL_LENGTHS = np.array([10, 6, 5, 1])
HIDDEN = 4
# one BiLSTM configuration for every test: initialising LSTMs costs about a second per layer on CPU
BILSTM_TASK = CTCTask("asr", vocab_size=VOCAB, blank_id=0, head_kind="bilstm", lstm_units=6, lstm_layers=2,
                      dropout=0.5)


@pytest.fixture(scope="module")
def bilstm():
    """(variables, jitted head.apply), shared so that each input shape compiles once."""
    variables = {"params": BILSTM_TASK.init(jax.random.PRNGKey(0), HIDDEN)}
    return variables, jax.jit(BILSTM_TASK.head.apply, static_argnames="train")


def _mask(lengths, width):
    return np.arange(width)[None, :] < np.asarray(lengths)[:, None]


def _ctc_batch(blank_id, seed=0):
    """Random logits `[4, 30, VOCAB]` and non-blank labels, padding filled with garbage."""
    rng = np.random.default_rng(seed)
    frame_mask = _mask(FRAME_LENGTHS, FRAME_LENGTHS.max())
    label_mask = _mask(LABEL_LENGTHS, LABEL_LENGTHS.max())
    logits = rng.normal(size=(*frame_mask.shape, VOCAB)).astype(np.float32) * 2
    non_blank = np.array([v for v in range(VOCAB) if v != blank_id])
    labels = non_blank[rng.integers(0, len(non_blank), label_mask.shape)]
    labels = np.where(label_mask, labels, blank_id).astype(np.int32)  # padded labels: anything in range
    return logits, frame_mask, labels, label_mask.astype(np.int32)


def _torch_ctc(logits, frame_lengths, labels, label_lengths, blank_id, reduction):
    log_probs = torch.log_softmax(torch.tensor(logits, dtype=torch.float64), dim=-1).transpose(0, 1)
    return torch.nn.functional.ctc_loss(log_probs, torch.tensor(labels, dtype=torch.long),
                                        torch.tensor(frame_lengths), torch.tensor(label_lengths),
                                        blank=blank_id, reduction=reduction).numpy()


@pytest.mark.parametrize("blank_id", [0, VOCAB - 1])
def test_ctc_loss_matches_torch(blank_id):
    logits, frame_mask, labels, label_mask = _ctc_batch(blank_id)
    ours = np.asarray(ctc_loss(jnp.asarray(logits), frame_mask, labels, label_mask, blank_id))
    reference = _torch_ctc(logits, FRAME_LENGTHS, labels, LABEL_LENGTHS, blank_id, "none")
    assert ours.shape == (4,) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=1e-4)


def test_task_loss_is_torch_mean_over_real_rows_and_filler_rows_change_nothing():
    task = CTCTask("asr", vocab_size=VOCAB, blank_id=0)
    hidden = 5
    params = task.init(jax.random.PRNGKey(0), hidden)
    rng = np.random.default_rng(1)
    _, frame_mask, labels, label_mask = _ctc_batch(0)
    features = rng.normal(size=(*frame_mask.shape, hidden)).astype(np.float32)
    batch = {"labels": labels, "label_mask": label_mask, "example_mask": np.ones(4, bool)}
    loss_fn = jax.jit(lambda p, f, m, b: task.loss(p, f, m, b, None, False))
    loss, metrics = loss_fn(params, features, frame_mask, batch)
    logits = np.asarray(task.predict(params, features, frame_mask))
    reference = _torch_ctc(logits, FRAME_LENGTHS, labels, LABEL_LENGTHS, 0, "mean")
    np.testing.assert_allclose(float(loss), reference, rtol=1e-4)
    assert set(metrics) == {"loss"} and float(metrics["loss"]) == float(loss)

    # a filler row: garbage features, full frame mask, random labels; it must not count
    filler_features = np.concatenate([features, 100 * rng.normal(size=(1, *features.shape[1:]))]).astype(np.float32)
    filler_batch = {"labels": np.concatenate([labels, np.full((1, labels.shape[1]), 3, np.int32)]),
                    "label_mask": np.concatenate([label_mask, np.ones((1, labels.shape[1]), np.int32)]),
                    "example_mask": np.array([True] * 4 + [False])}
    filler_frame_mask = np.concatenate([frame_mask, np.ones((1, frame_mask.shape[1]), bool)])
    filler_loss, _ = loss_fn(params, filler_features, filler_frame_mask, filler_batch)
    np.testing.assert_allclose(float(filler_loss), float(loss), rtol=1e-6)


def test_no_real_rows_gives_zero_loss():
    logits, frame_mask, labels, label_mask = _ctc_batch(0)
    loss = ctc_mean_loss(jnp.asarray(logits), frame_mask, labels, label_mask, np.zeros(4, bool), 0)
    assert float(loss) == 0.0


def test_gradient_is_finite_and_zero_on_padded_frames_and_filler_rows(bilstm):
    logits, frame_mask, labels, label_mask = _ctc_batch(0)
    example_mask = np.array([True, True, True, False])
    grad_fn = jax.jit(jax.grad(ctc_mean_loss), static_argnums=5)
    grad = np.asarray(grad_fn(jnp.asarray(logits), frame_mask, labels, label_mask, example_mask, 0))
    assert np.isfinite(grad).all()
    assert np.abs(grad[~frame_mask]).max() == 0.0
    assert np.abs(grad[3]).max() == 0.0
    assert np.abs(grad[0]).max() > 0.0

    # through a BiLSTM head in training (dropout on), with NaN in the padding: still finite, still zero there
    params = bilstm[0]["params"]
    features = np.where(frame_mask[..., None], np.random.default_rng(2).normal(size=(*frame_mask.shape, HIDDEN)),
                        np.nan)
    batch = {"labels": labels, "label_mask": label_mask, "example_mask": example_mask}
    grad_fn = jax.jit(jax.grad(lambda f, rng: BILSTM_TASK.loss(params, f, frame_mask, batch, rng, True)[0]))
    grad_features = np.asarray(grad_fn(jnp.asarray(features, jnp.float32), jax.random.PRNGKey(1)))
    assert np.isfinite(grad_features).all()
    assert np.abs(grad_features[~frame_mask]).max() == 0.0


def _variables_and_apply(kind, bilstm):
    if kind == "bilstm":
        return bilstm
    head = CTCHead(VOCAB, kind=kind)
    return head.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, HIDDEN)), jnp.ones((1, 4), bool)), jax.jit(head.apply)


@pytest.mark.parametrize("kind", ["linear", "bilstm"])
def test_valid_frame_logits_do_not_depend_on_padding(kind, bilstm):
    params, apply = _variables_and_apply(kind, bilstm)
    rng = np.random.default_rng(3)
    lengths = np.array([10, 6])
    features = rng.normal(size=(2, 10, HIDDEN)).astype(np.float32)
    frame_mask = _mask(lengths, 10)
    short = np.asarray(apply(params, features, frame_mask))
    assert short.shape == (2, 10, VOCAB) and short.dtype == np.float32
    # 5 more frames of garbage (NaN in row 0, huge values in row 1) and garbage in row 1's own padding
    garbage = np.concatenate([np.full((1, 5, HIDDEN), np.nan), 1e4 * rng.normal(size=(1, 5, HIDDEN))])
    garbage = garbage.astype(np.float32)
    long_features = np.concatenate([features, garbage], axis=1)
    long_features[1, 6:10] = -1e4
    long = np.asarray(apply(params, long_features, _mask(lengths, 15)))
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(long[row, :n], short[row, :n], atol=1e-5)


@pytest.mark.parametrize("kind,first_frame_changes", [("bilstm", True), ("linear", False)])
def test_backward_direction_carries_the_last_valid_frame_to_the_first(kind, first_frame_changes, bilstm):
    params, apply = _variables_and_apply(kind, bilstm)
    features = np.random.default_rng(4).normal(size=(2, 10, HIDDEN)).astype(np.float32)
    frame_mask = _mask([10, 6], 10)
    before = np.asarray(apply(params, features, frame_mask))
    changed = features.copy()
    changed[1, 5] += 3.0  # row 1's last valid frame
    after = np.asarray(apply(params, changed, frame_mask))
    assert bool(np.abs(after[1, 0] - before[1, 0]).max() > 1e-4) is first_frame_changes
    np.testing.assert_array_equal(after[0], before[0])


def test_parameter_shapes_and_dropout_only_in_training(bilstm):
    variables, apply = bilstm
    params = variables["params"]
    assert params["lstm_0_backward"]["ii"]["kernel"].shape == (HIDDEN, 6)
    assert params["lstm_1_forward"]["ii"]["kernel"].shape == (12, 6)  # input = both directions of layer 0
    assert params["projection"]["kernel"].shape == (12, VOCAB)
    features = np.random.default_rng(5).normal(size=(2, 10, HIDDEN)).astype(np.float32)
    frame_mask = _mask([10, 5], 10)
    evaluated = [np.asarray(apply(variables, features, frame_mask)) for _ in range(2)]
    trained = [np.asarray(apply(variables, features, frame_mask, train=True, rngs={"dropout": jax.random.PRNGKey(k)}))
               for k in range(2)]
    np.testing.assert_array_equal(evaluated[0], evaluated[1])
    assert np.isfinite(trained).all()
    assert np.abs(trained[0] - trained[1]).max() > 1e-3 and np.abs(trained[0] - evaluated[0]).max() > 1e-3


def test_unknown_head_kind_is_a_value_error():
    with pytest.raises(ValueError, match="'gru'"):
        CTCHead(VOCAB, kind="gru").init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 3)), jnp.ones((1, 4), bool))
    with pytest.raises(ValueError, match="'gru'"):
        CTCTask("asr", vocab_size=VOCAB, blank_id=0, head_kind="gru")


def test_greedy_decode_collapses_repeats_drops_blanks_and_stops_at_padding():
    blank = 0
    paths = [[1, 1, 0, 1, 2, 2, 0, 0, 3], [0, 2, 2, 2, 0, 0, 4, 4, 4]]  # row 1 has 6 valid frames
    logits = np.eye(5)[np.array(paths)] * 5.0
    assert ctc_greedy_decode(logits, _mask([9, 6], 9), blank) == [[1, 1, 2, 3], [2]]
    assert ctc_greedy_decode(logits, _mask([9, 0], 9), blank_id=4) == [[1, 0, 1, 2, 0, 3], []]


def test_error_rate():
    assert error_rate(["sh iy hh ae d"], ["sh iy hh eh d"]) == pytest.approx(0.2)
    assert error_rate(["a b c d", "x  y"], ["a b e d", ""]) == pytest.approx(3 / 6)  # 1 sub, 2 deletions
    assert error_rate(["abcd"], ["abed"], unit="char") == pytest.approx(0.25)
    assert error_rate(["the cat"], ["the cat"]) == 0.0
    with pytest.raises(ValueError, match="2 references and 1 hypotheses"):
        error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no references"):
        error_rate([], [])
    with pytest.raises(ValueError, match="'phone'"):
        error_rate(["a"], ["a"], unit="phone")
