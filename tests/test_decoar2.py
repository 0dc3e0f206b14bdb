"""DeCoAR 2.0: the Kaldi filterbank front end, the encoder against a torch re-computation of s3prl's
model from the same weights, s3prl's checkpoint format, and training / merging / sweeping it."""

from __future__ import annotations

import json
import logging
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import yaml
from conftest import write_train_config
from flax.traverse_util import flatten_dict
from model_factory import randomize_

import speechft_jax as sj
from speechft_jax.checkpoints import CheckpointError, load_pretrained, safe_unpickle, save_flax
from speechft_jax.checkpoints.decoar2_import import decoar2_from_state, decoar2_state_from_params, is_decoar2_state
from speechft_jax.models import ConfigError, EncoderConfig
from speechft_jax.models.fbank_front_end import FbankFrontEnd, log_mel_fbank

# s3prl's Decoar2 has 12 heads whatever the width: 48 = 12 x 4
TINY = dict(model_type="decoar2", hidden_size=48, num_hidden_layers=2, num_attention_heads=12, intermediate_size=64,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


def tiny_config(**changes) -> EncoderConfig:
    return EncoderConfig.from_hf_dict({**TINY, **changes})


@jax.jit
def fbank_features(waves, mask=None):
    return FbankFrontEnd(tiny_config()).apply({}, waves, mask)


# ---------------------------------------------------------------------------------- the reference
def kaldi_fbank_reference(wave: np.ndarray) -> np.ndarray:
    """Kaldi's `compute-fbank-feats` as s3prl calls it, in float64, written from Kaldi's definitions
    (feature-window.cc, mel-computations.cc): `[samples]` -> `[frames, 80]` log-mel energies."""
    wave = np.asarray(wave, np.float64)
    length, shift, padded, bins, low, high = 400, 160, 512, 80, 20.0, 8000.0
    frames = 1 + (len(wave) - length) // shift if len(wave) >= length else 0
    window = np.array([0.54 - 0.46 * math.cos(2 * math.pi * n / (length - 1)) for n in range(length)])

    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    delta = (mel(high) - mel(low)) / (bins + 1)
    banks = np.zeros((bins, padded // 2 + 1))
    for b in range(bins):
        left, centre, right = mel(low) + b * delta, mel(low) + (b + 1) * delta, mel(low) + (b + 2) * delta
        for i in range(padded // 2):  # the Nyquist bin gets no weight
            m = mel(i * 16000.0 / padded)
            if left < m < right:
                banks[b, i] = (m - left) / (centre - left) if m <= centre else (right - m) / (right - centre)
    out = np.zeros((frames, bins))
    for t in range(frames):
        w = wave[t * shift: t * shift + length].copy()
        w -= w.mean()
        for i in range(length - 1, 0, -1):
            w[i] -= 0.97 * w[i - 1]
        w[0] -= 0.97 * w[0]
        spectrum = np.fft.rfft(np.concatenate([w * window, np.zeros(padded - length)]))
        energies = banks @ (spectrum.real ** 2 + spectrum.imag ** 2)
        out[t] = np.log(np.maximum(energies, np.finfo(np.float32).eps))
    return out


def decoar2_features_reference(wave: np.ndarray) -> np.ndarray:
    """s3prl's `FeatureExtractor`: fbank, CMVN (unbiased std, eps 1e-10), every second frame."""
    fbank = kaldi_fbank_reference(wave)
    normalised = (fbank - fbank.mean(0, keepdims=True)) / (1e-10 + fbank.std(0, ddof=1, keepdims=True))
    return normalised[::2]


def waveform(samples: int, seed: int = 0) -> np.ndarray:
    """Speech-like test audio in [-1, 1]: a few harmonics under an envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000.0
    pitch = 120 + 40 * rng.random()
    voiced = sum(np.sin(2 * np.pi * k * pitch * t + rng.random()) / k for k in range(1, 8))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    return (0.3 * voiced * envelope + 0.01 * rng.standard_normal(samples)).astype(np.float32)


# ---------------------------------------------------------------------------------- the front end
@pytest.mark.parametrize("samples", [400, 561, 4321])
def test_log_mel_matches_kaldi_definition(samples):
    wave = waveform(samples, seed=samples)
    ours = np.asarray(jax.jit(log_mel_fbank)(jnp.asarray(wave)[None]))[0]
    ref = kaldi_fbank_reference(wave)
    assert ours.shape == ref.shape == (1 + (samples - 400) // 160, 80)
    assert np.abs(ours - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("samples", [399, 400, 559, 560, 719, 720, 880, 881, 12345])
def test_frame_count_is_the_config_length_formula(samples):
    """`fbank(snip_edges)` then every second frame == the conv formula over kernels (400, 1),
    strides (160, 2), which the decoar2 config carries."""
    config = tiny_config()
    fbank_frames = 1 + (samples - 400) // 160 if samples >= 400 else 0
    out = jax.eval_shape(lambda x: FbankFrontEnd(config).apply({}, x), jax.ShapeDtypeStruct((1, samples), jnp.float32))
    assert out.shape == (1, math.ceil(fbank_frames / 2), 80)
    assert config.num_frames(samples) == out.shape[1]
    assert (config.receptive_field, config.total_stride) == (400, 320)


def test_front_end_matches_s3prl_features_and_ignores_padding():
    config = tiny_config()
    lengths = (6000, 4321, 961)  # 961 samples: 4 filterbank frames, 2 kept
    batch = np.zeros((3, max(lengths)), np.float32)
    mask = np.zeros((3, max(lengths)), np.int32)
    for i, n in enumerate(lengths):
        batch[i, :n], mask[i, :n] = waveform(n, seed=i), 1
    padded = np.asarray(fbank_features(jnp.asarray(batch), jnp.asarray(mask)))
    for i, n in enumerate(lengths):
        alone = np.asarray(fbank_features(jnp.asarray(batch[i:i + 1, :n])))[0]
        ref = decoar2_features_reference(batch[i, :n])
        frames = config.num_frames(n)
        assert alone.shape == ref.shape == (frames, 80)
        assert np.abs(alone - ref).max() <= 1e-4
        assert np.abs(padded[i, :frames] - alone).max() <= 1e-5  # the padding changes nothing
        assert not padded[i, frames:].any()  # padded frames are 0


# ---------------------------------------------------------------------------------- s3prl's model in torch
class _Layer(torch.nn.Module):
    """fairseq's `TransformerSentenceEncoderLayer`, post-LN, eval mode."""

    def __init__(self, hidden: int, ffn: int, heads: int):
        super().__init__()
        self.heads = heads
        self.self_attn = torch.nn.Module()
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self.self_attn, name, torch.nn.Linear(hidden, hidden))
        self.self_attn_layer_norm = torch.nn.LayerNorm(hidden)
        self.fc1, self.fc2 = torch.nn.Linear(hidden, ffn), torch.nn.Linear(ffn, hidden)
        self.final_layer_norm = torch.nn.LayerNorm(hidden)

    def forward(self, x, padding_mask):  # x [T, B, C]
        steps, batch, hidden = x.shape
        attn = self.self_attn

        def split(y):  # [T, B, C] -> [B, heads, T, C / heads]
            return y.reshape(steps, batch, self.heads, hidden // self.heads).permute(1, 2, 0, 3)

        q = split(attn.q_proj(x) * (hidden // self.heads) ** -0.5)
        scores = q @ split(attn.k_proj(x)).transpose(-1, -2)
        scores = scores.masked_fill(padding_mask[:, None, None, :], float("-inf"))
        context = (scores.softmax(-1) @ split(attn.v_proj(x))).permute(2, 0, 1, 3).reshape(steps, batch, hidden)
        x = self.self_attn_layer_norm(x + attn.out_proj(context))
        return self.final_layer_norm(x + self.fc2(torch.nn.functional.gelu(self.fc1(x))))


class _Encoder(torch.nn.Module):
    """fairseq's wav2vec 2.0 `TransformerEncoder` (post-LN), eval mode."""

    def __init__(self, hidden: int, layers: int, ffn: int, heads: int, kernel: int, groups: int):
        super().__init__()
        conv = torch.nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, groups=groups)
        with warnings.catch_warnings():  # deprecated, but what s3prl builds: keys weight_g / weight_v
            warnings.simplefilter("ignore", FutureWarning)
            self.pos_conv = torch.nn.Sequential(torch.nn.utils.weight_norm(conv, name="weight", dim=2))
        self.kernel = kernel
        self.layer_norm = torch.nn.LayerNorm(hidden)
        self.layers = torch.nn.ModuleList([_Layer(hidden, ffn, heads) for _ in range(layers)])

    def forward(self, x, padding_mask):
        """`[B, T, C]`, `[B, T]` (True on padding) -> s3prl's hidden states: every layer's input, then
        the output."""
        x = x.masked_fill(padding_mask[..., None], 0.0)
        conv = self.pos_conv(x.transpose(1, 2))
        conv = conv[..., :-1] if self.kernel % 2 == 0 else conv  # SamePad
        x = self.layer_norm(x + torch.nn.functional.gelu(conv).transpose(1, 2))
        frames = x.shape[1]
        if frames % 2:  # required_seq_len_multiple = 2: one more padded frame
            x = torch.nn.functional.pad(x, (0, 0, 0, 1))
            padding_mask = torch.nn.functional.pad(padding_mask, (0, 1), value=True)
        x, states = x.transpose(0, 1), []
        for layer in self.layers:
            states.append(x.transpose(0, 1))
            x = layer(x, padding_mask)
        states.append(x.transpose(0, 1))
        return [state[:, :frames] for state in states]  # the extra frame undone


class S3prlDecoar2(torch.nn.Module):
    """s3prl's `Decoar2`: `post_extract_proj` straight into the encoder; the module names are its
    state-dict keys."""

    def __init__(self, hidden=48, layers=2, ffn=64, heads=12, kernel=16, groups=4):
        super().__init__()
        self.post_extract_proj = torch.nn.Linear(80, hidden)
        self.encoder = _Encoder(hidden, layers, ffn, heads, kernel, groups)

    def forward(self, waves):
        """s3prl's `UpstreamExpert.forward`: features per utterance, padded, with a padding mask."""
        features = [torch.tensor(decoar2_features_reference(w)) for w in waves]
        lengths = [len(f) for f in features]
        padded = torch.nn.utils.rnn.pad_sequence(features, batch_first=True)
        padding_mask = torch.arange(max(lengths))[None, :] >= torch.tensor(lengths)[:, None]
        return self.encoder(self.post_extract_proj(padded), padding_mask)


def _s3prl_checkpoint(tmp_path, seed: int = 0, extra=None):
    """A random s3prl DeCoAR 2.0 model (every weight perturbed) saved as s3prl's checkpoint
    `{"model": state_dict, ...}` with torch.save; `(model in float64, path)`."""
    torch.manual_seed(seed)
    model = randomize_(S3prlDecoar2().eval(), seed)
    path = tmp_path / "checkpoint_decoar2.pt"
    torch.save({"model": {**model.state_dict(), **(extra or {})}, "updates": 1000}, path)
    return model.double(), path


def _same_leaves(a, b) -> bool:
    a, b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _read(path) -> dict:
    return safe_unpickle.tensor_arrays(safe_unpickle.load_torch_zip(path)["model"])


def test_every_hidden_state_matches_s3prl_on_a_padded_batch(tmp_path, caplog):
    extra = {"quantizer.vars": torch.zeros(1, 4, 2), "final_proj.weight": torch.zeros(3, 48)}  # pre-training heads
    model, path = _s3prl_checkpoint(tmp_path, extra=extra)
    state = _read(path)
    assert is_decoar2_state(state)
    with caplog.at_level(logging.INFO, logger="speechft_jax.checkpoints.decoar2_import"):
        config, params = decoar2_from_state(state, str(path), {})
    assert "ignored 2 keys" in caplog.text and "quantizer.vars" in caplog.text
    assert config == tiny_config() and not config.in_transformers
    bundle = sj.PretrainedBundle(config, params, sj.SpeechEncoder(config), str(path))
    lengths = (6000, 4321, 961)
    waves = [waveform(n, seed=10 + i) for i, n in enumerate(lengths)]
    batch = np.zeros((3, max(lengths)), np.float32)
    mask = np.zeros((3, max(lengths)), np.int32)
    for i, (n, w) in enumerate(zip(lengths, waves)):
        batch[i, :n], mask[i, :n] = w, 1
    hidden, frame_mask = sj.extract_features(bundle, batch, mask)
    frame_mask = np.asarray(frame_mask)
    assert list(frame_mask.sum(1)) == [config.num_frames(n) for n in lengths]
    with torch.no_grad():
        reference = [state.numpy() for state in model(waves)]
    assert len(reference) == len(hidden) == config.num_hidden_layers + 1
    for i, state in enumerate(reference):
        assert state.shape[:2] == (3, frame_mask.shape[1])
        assert np.abs(np.asarray(hidden[i])[frame_mask] - state[frame_mask]).max() <= 1e-4, f"hidden state {i}"
    # each utterance alone gives its padded-batch features
    alone, _ = sj.extract_features(bundle, batch[2:, :lengths[2]])
    assert np.abs(np.asarray(alone)[:, 0] - np.asarray(hidden)[:, 2, :alone.shape[2]]).max() <= 1e-5


# ---------------------------------------------------------------------------------- the checkpoint format
@pytest.fixture(scope="module")
def s3prl_state(tmp_path_factory):
    _, path = _s3prl_checkpoint(tmp_path_factory.mktemp("s3prl"), seed=1)
    return _read(path)


def test_export_gives_back_the_s3prl_state_dict(s3prl_state):
    config, params = decoar2_from_state(s3prl_state, "ckpt.pt", {})
    exported = decoar2_state_from_params(params, config)
    assert sorted(exported) == sorted(s3prl_state)
    for key, value in s3prl_state.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
    # torch's new weight-norm names load the same model
    new_names = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
    renamed = {key.replace("weight_g", new_names["weight_g"]).replace("weight_v", new_names["weight_v"]): value
               for key, value in s3prl_state.items()}
    _, again = decoar2_from_state(renamed, "ckpt.pt", {})
    assert _same_leaves(params, again)


@pytest.mark.parametrize("change,message", [
    (lambda s: s.pop("encoder.layers.1.fc2.bias"),
     "ckpt.pt: does not fit s3prl's Decoar2 model: missing keys: encoder.layers.1.fc2.bias"),
    (lambda s: s.update({"encoder.layers.0.self_attn.rotary": np.zeros(2, np.float32)}),
     "unexpected keys: encoder.layers.0.self_attn.rotary"),
    (lambda s: s.update({"post_extract_proj.weight": np.zeros((48, 40), np.float32)}),
     "ckpt.pt: post_extract_proj.weight has shape (48, 40), expected 80 inputs (the filterbank's mel bins)"),
    (lambda s: s.update({"encoder.layers.1.fc1.weight": np.zeros((32, 48), np.float32)}),
     "encoder.layers.1.feed_forward.intermediate_dense.weight has shape (32, 48), the model expects (64, 48)"),
    (lambda s: s.update({"encoder.layer_norm.weight": np.full(48, np.nan, np.float32)}),
     "ckpt.pt: parameter encoder.layer_norm.weight holds non-finite values"),
    (lambda s: s.update({"post_extract_proj.weight": np.zeros((40, 80), np.float32)}),
     "ckpt.pt: encoder.pos_conv.0.weight_v has shape (48, 12, 16), expected (40, 40 / groups, kernel)"),
    (lambda s: s.update({"post_extract_proj.weight": np.zeros((40, 80), np.float32),
                         "encoder.pos_conv.0.weight_v": np.zeros((40, 10, 16), np.float32)}),
     "ckpt.pt: encoder config: num_attention_heads=12, expected a divisor of hidden_size=40"),
])
def test_a_checkpoint_that_does_not_fit_is_a_one_line_error(s3prl_state, change, message):
    state = dict(s3prl_state)
    change(state)
    with pytest.raises(CheckpointError) as err:
        decoar2_from_state(state, "ckpt.pt", {})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_only_decoar2_states_are_recognised(s3prl_state):
    assert is_decoar2_state(s3prl_state)
    assert not is_decoar2_state({**s3prl_state, "feature_extractor.conv_layers.0.0.weight": np.zeros((4, 1, 10))})
    assert not is_decoar2_state({k: v for k, v in s3prl_state.items() if k != "post_extract_proj.weight"})
    with pytest.raises(CheckpointError, match="model_type 'hubert': only a decoar2 encoder"):
        decoar2_state_from_params({}, EncoderConfig())


def test_flax_directory_round_trip_and_no_transformers_export(s3prl_state, tmp_path):
    config, params = decoar2_from_state(s3prl_state, "ckpt.pt", {})
    bundle = sj.PretrainedBundle(config, params, sj.SpeechEncoder(config), "ckpt.pt")
    save_flax(bundle, tmp_path / "flax")
    assert json.loads((tmp_path / "flax" / "config.json").read_text())["model_type"] == "decoar2"
    again = load_pretrained(tmp_path / "flax")
    assert again.config == config and EncoderConfig.from_hf_dict(config.to_hf_dict()) == config
    assert _same_leaves(params, again.params)
    with pytest.raises(CheckpointError) as err:
        sj.save_pretrained(bundle, tmp_path / "hf")
    assert str(err.value).startswith("model_type 'decoar2': transformers has no such model")
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("changes,message", [
    (dict(conv_kernel=[400, 2]), "encoder config: conv_kernel=(400, 2), expected (400, 1) for model_type 'decoar2'"),
    (dict(conv_dim=[512, 512]), "encoder config: conv_dim=(512, 512), expected (80, 80) for model_type 'decoar2'"),
    (dict(feat_proj_layer_norm=True), "feat_proj_layer_norm=True, expected False for model_type 'decoar2'"),
    (dict(do_stable_layer_norm=True), "do_stable_layer_norm=True, expected False for model_type 'decoar2'"),
    (dict(frame_mask="fairseq"), "frame_mask='fairseq', expected 'transformers' for model_type 'decoar2'"),
])
def test_a_decoar2_config_other_than_its_front_end_is_refused(changes, message):
    with pytest.raises(ConfigError) as err:
        tiny_config(**changes)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_filterbank_cnn_start_is_refused():
    from speechft_jax.models.filterbank_init import filterbank_cnn

    with pytest.raises(ConfigError, match="model_type 'decoar2' has no CNN"):
        filterbank_cnn(tiny_config(), {})


# ---------------------------------------------------------------------------------- train, merge, sweep
@pytest.fixture(scope="module")
def decoar2_run(demo_corpus_tiny, tmp_path_factory):
    """A few steps of stable fine-tuning of a tiny random DeCoAR 2.0 (hidden 32, 2 layers, pos conv
    16 / 4 groups): `(theta_0 directory, TrainResult)`."""
    from speechft_jax.train import load_train_config, train
    from speechft_jax.train.start_encoder import init_fn, start_encoder

    root = tmp_path_factory.mktemp("decoar2_run")
    (root / "decoar2.json").write_text(json.dumps({**TINY, "hidden_size": 32, "num_attention_heads": 4}))
    path = write_train_config(root / "config.yaml", demo_corpus_tiny, root / "run",
                              model={"config": str(root / "decoar2.json")},
                              optimizer={"steps": 4, "beta": 0.25, "encoder_lr": 5e-3, "head_lr": 1e-3},
                              checkpoint={"every_steps": 4, "keep": 1})
    config = load_train_config(path)
    start = start_encoder(config.model)
    theta_0 = jax.jit(init_fn(start.config, config.model.init_seed))()
    save_flax(start.replace(params=theta_0), root / "theta_0")
    return root / "theta_0", train(config)


def _flat(params) -> dict:
    return {"/".join(k): np.asarray(v) for k, v in flatten_dict(jax.device_get(params)).items()}


def test_stable_fine_tuning_trains_every_parameter_after_the_warm_up(decoar2_run):
    theta_0_dir, result = decoar2_run
    theta_0 = _flat(load_pretrained(theta_0_dir).params)
    assert not any(key.startswith("feature_extractor/") for key in theta_0)  # a filterbank: nothing to freeze
    (early_dir,) = result.early_dirs  # the end of the head-only warm-up
    warm, final = _flat(load_pretrained(early_dir).params), load_pretrained(result.encoder_dir)
    assert final.config.model_type == "decoar2"  # written as a Flax directory: transformers has no DeCoAR 2.0
    assert json.loads((result.encoder_dir / "config.json").read_text())["model_type"] == "decoar2"
    for key, value in theta_0.items():
        np.testing.assert_array_equal(warm[key], value, err_msg=f"{key} moved during the warm-up")
    unchanged = [k for k, v in _flat(final.params).items() if np.array_equal(v, theta_0[k])]
    assert not unchanged, f"never trained: {unchanged}"


def test_merge_and_a_two_alpha_sweep_of_the_fine_tuned_model(decoar2_run, demo_corpus_tiny, tmp_path):
    from speechft_jax.merge.__main__ import main as merge_main
    from speechft_jax.sweep.__main__ import main as sweep_main
    from speechft_jax.sweep.features import same_cnn, sweep_forward

    theta_0_dir, result = decoar2_run
    assert merge_main(["--pretrained", str(theta_0_dir), "--finetuned", str(result.encoder_dir), "--alpha", "0.5",
                       "--out", str(tmp_path / "merged")]) == 0
    base, tuned, merged = (load_pretrained(d) for d in (theta_0_dir, result.encoder_dir, tmp_path / "merged"))
    expected = _flat(sj.interpolate(base.params, tuned.params, 0.5))
    for key, value in _flat(merged.params).items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-6, atol=1e-7, err_msg=key)
    # the sweep's program (the filterbank run once for all alphas) against separate merges
    assert same_cnn(base.params, tuned.params)
    audio = np.stack([waveform(6000, seed=1), np.pad(waveform(4000, seed=2), (0, 2000))])
    mask = np.ones_like(audio, np.int32)
    mask[1, 4000:] = 0
    states, frame_mask = sweep_forward(base.config, True)(base.params, tuned.params, jnp.array([0.5]), audio, mask)
    hidden, _ = sj.extract_features(base, audio, mask, params=merged.params)
    valid = np.asarray(frame_mask)
    assert np.abs(np.asarray(states[0])[:, valid] - np.asarray(hidden)[:, valid]).max() <= 1e-4
    # and the sweep command: probes on theta_0 and theta_ft
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "pretrained": str(theta_0_dir), "finetuned": str(result.encoder_dir), "output_dir": str(tmp_path / "sweep"),
        "alphas": [0.0, 1.0], "tasks": ["sid"], "corpus_dir": str(demo_corpus_tiny), "similarity": False,
        "probe": {"steps": 4, "learning_rates": [1e-2], "batch_size": 8, "num_buckets": 1}}))
    assert sweep_main(["--config", str(config)]) == 0
    summary = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert summary["alphas"] == [0.0, 1.0] and summary["best_alpha"] in (0.0, 1.0)
    assert all(summary["results"][a]["sid"]["metric"] == "accuracy" for a in ("0.0", "1.0"))


def test_the_s3prl_file_loads_converts_and_comes_back_from_a_downstream_checkpoint(tmp_path, capsys):
    from speechft_jax.convert import main as convert_main

    _, path = _s3prl_checkpoint(tmp_path, seed=2)
    bundle = sj.load_pretrained(path)
    assert bundle.config == tiny_config() and bundle.preprocessor["do_normalize"] is False
    assert convert_main([str(path), str(tmp_path / "out.pt"), "--to", "s3prl"]) == 0
    written = torch.load(tmp_path / "out.pt", weights_only=True)  # what s3prl's expert reads: ["model"]
    assert sorted(written) == ["model"] and sorted(written["model"]) == sorted(_read(path))
    assert _same_leaves(sj.load_pretrained(tmp_path / "out.pt").params, bundle.params)
    for fmt, message in (("fairseq", "DeCoAR 2.0 has no fairseq checkpoint"), ("hf", "transformers has no such model")):
        assert convert_main([str(path), str(tmp_path / f"x_{fmt}.pt"), "--to", fmt]) == 2
        assert message in capsys.readouterr().err
    upstream = {f"model.{k}": torch.tensor(v * 2) for k, v in _read(path).items()}
    torch.save({"Upstream": upstream, "Step": 5}, tmp_path / "dev-best.ckpt")
    tuned = sj.load_pretrained(tmp_path / "dev-best.ckpt", like=bundle)
    assert tuned.config == bundle.config
    assert _same_leaves(tuned.params, jax.tree_util.tree_map(lambda p: p * 2, bundle.params))
