"""Parity with transformers' PyTorch models: every hidden state, padded batches, all variants."""

import numpy as np
import pytest
import torch

import speechft_jax as sj
from model_factory import VARIANTS, fairseq_frame_counts, padded_batch, reference_model, reference_outputs

TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def pair(request, tmp_path_factory):
    model = reference_model(request.param)
    directory = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(directory)
    return request.param, model, sj.load_pretrained(directory)


def _valid_max_diff(ours, theirs, frame_mask):
    return float(np.abs(np.asarray(ours)[frame_mask] - np.asarray(theirs)[frame_mask]).max())


def test_every_hidden_state_matches_on_padded_batch(pair):
    name, model, bundle = pair
    x, mask = padded_batch()
    ref = reference_outputs(model, x, mask)
    hidden, frame_mask = sj.extract_features(bundle, x, mask)
    frame_mask = np.asarray(frame_mask)
    assert hidden.shape == (bundle.config.num_hidden_layers + 1, 2) + tuple(ref.last_hidden_state.shape[1:])
    expected_mask = model._get_feature_vector_attention_mask(hidden.shape[2], torch.tensor(mask)).numpy()
    np.testing.assert_array_equal(frame_mask, expected_mask)
    assert frame_mask[1].sum() < frame_mask[0].sum()  # the second example really is padded
    for i, ref_state in enumerate(ref.hidden_states):
        assert _valid_max_diff(hidden[i], ref_state.numpy(), frame_mask) <= TOLERANCE, f"{name}: hidden state {i}"


def test_last_state_and_cnn_features_match(pair):
    name, model, bundle = pair
    x, mask = padded_batch(seed=1)
    ref = reference_outputs(model, x, mask)
    out = bundle.module.apply({"params": bundle.params}, x, mask)
    frame_mask = np.asarray(out.frame_mask)
    assert _valid_max_diff(out.last_hidden_state, ref.last_hidden_state.numpy(), frame_mask) <= TOLERANCE
    with torch.no_grad():
        cnn = model.feature_extractor(torch.tensor(x)).transpose(1, 2).numpy()
    assert float(np.abs(np.asarray(out.cnn_features) - cnn).max()) <= TOLERANCE


def test_unpadded_batch_matches(pair):
    name, model, bundle = pair
    x, _ = padded_batch(seed=2, lengths=(3000, 3000))
    ref = reference_outputs(model, x, None)
    hidden, frame_mask = sj.extract_features(bundle, x)
    assert np.asarray(frame_mask).all()
    for i, ref_state in enumerate(ref.hidden_states):
        assert float(np.abs(np.asarray(hidden[i]) - ref_state.numpy()).max()) <= TOLERANCE


def test_given_time_mask_matches(pair):
    name, model, bundle = pair
    assert bundle.config.has_masked_spec_embed  # transformers' default mask_time_prob is 0.05
    x, mask = padded_batch(seed=3)
    frames = int(np.asarray(sj.extract_features(bundle, x, mask)[1]).shape[1])
    time_mask = np.zeros((2, frames), bool)
    time_mask[0, 5:15] = True
    time_mask[1, 40:50] = True
    with torch.no_grad():
        ref = model(torch.tensor(x), attention_mask=torch.tensor(mask),
                    mask_time_indices=torch.tensor(time_mask), output_hidden_states=True)
    out = bundle.module.apply({"params": bundle.params}, x, mask, mask_time_indices=time_mask)
    frame_mask = np.asarray(out.frame_mask)
    assert _valid_max_diff(out.last_hidden_state, ref.last_hidden_state.numpy(), frame_mask) <= TOLERANCE


def test_bfloat16_compute_is_close(pair):
    name, model, bundle = pair
    x, mask = padded_batch(seed=4)
    ref = reference_outputs(model, x, mask)
    bf16 = bundle.replace(config=bundle.config.replace(dtype="bfloat16"))
    hidden, frame_mask = sj.extract_features(bf16, x, mask)
    assert hidden.dtype == np.dtype("bfloat16")
    frame_mask = np.asarray(frame_mask)
    last = np.asarray(hidden[-1], np.float32)[frame_mask]
    expected = ref.hidden_states[-1].numpy()[frame_mask]
    relative = np.abs(last - expected).mean() / np.abs(expected).mean()
    assert relative < 0.05, f"{name}: mean relative error {relative:.3f} in bf16"


def test_fairseq_frame_rule_keeps_the_frames_fairseq_keeps(pair):
    """Under `frame_mask: fairseq` a padded utterance keeps fairseq's frames; the states then equal
    transformers' run with a sample mask long enough for its formula to give that many frames (the
    audio is the same, zero padded), so every layer is checked, not only the mask."""
    name, model, bundle = pair
    config = bundle.config.replace(frame_mask="fairseq")
    fairseq_bundle = bundle.replace(config=config, module=sj.SpeechEncoder(config))
    total, frames = 4000, config.num_frames(4000)
    counts = {n: int(fairseq_frame_counts(padded_batch(lengths=(total, n))[1], frames)[1]) for n in range(2000, 2400)}
    differing = [n for n, count in counts.items() if count != config.num_frames(n)]
    assert len(differing) > 100  # about half of the lengths (one frame more under fairseq's rule)
    short = differing[0]
    x, mask = padded_batch(seed=5, lengths=(total, short))
    hidden, frame_mask = sj.extract_features(fairseq_bundle, x, mask)
    np.testing.assert_array_equal(np.asarray(frame_mask).sum(-1), fairseq_frame_counts(mask, frames))
    longer = next(n for n in range(short, total) if config.num_frames(n) == counts[short])
    stretched = mask.copy()
    stretched[1, :longer] = 1  # the audio stays zero there: only the frame count changes
    ref = reference_outputs(model, x, stretched)
    for i, ref_state in enumerate(ref.hidden_states):
        assert _valid_max_diff(hidden[i], ref_state.numpy(), np.asarray(frame_mask)) <= TOLERANCE, f"{name}: state {i}"
    plain = np.asarray(sj.extract_features(bundle, x, mask)[1]).sum(-1)
    assert plain[1] == counts[short] - 1  # the default rule is transformers' formula
