"""`python -m speechft_jax.extract`: per-file hidden states from a folder, the index, resuming, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import speechft_jax as sj
from conftest import tiny_encoder_config
from speechft_jax.data.audio import decode_audio
from speechft_jax.data.errors import DataError
from speechft_jax.extract import main as extract_main


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    # per-frame LayerNorm in the CNN: a file's features do not depend on what it is batched with
    path = tmp_path_factory.mktemp("extract") / "encoder"
    sj.save_pretrained(sj.init_encoder(tiny_encoder_config(feat_extract_norm="layer"), seed=0), path)
    return path


def _audio_folder(root):
    rng = np.random.default_rng(0)
    (root / "spk1").mkdir(parents=True)
    sf.write(root / "spk1" / "a.wav", 0.1 * rng.normal(size=8000).astype(np.float32), 16000)
    sf.write(root / "spk1" / "b.flac", 0.1 * rng.normal(size=21000).astype(np.float32), 16000)
    sf.write(root / "c.wav", 0.1 * rng.normal(size=(30000, 2)).astype(np.float32), 44100)  # stereo, resampled
    return ["c.wav", "spk1/a.wav", "spk1/b.flac"]


def test_each_file_gets_its_own_unbatched_features_and_a_rerun_keeps_them(encoder_dir, tmp_path, capsys):
    names = _audio_folder(tmp_path / "audio")
    out = tmp_path / "features"
    argv = ["--encoder", str(encoder_dir), "--folder", str(tmp_path / "audio"), "--out", str(out),
            "--layers", "0,-1", "--batch-size", "2"]
    assert extract_main(argv) == 0
    bundle = sj.load_pretrained(encoder_dir)
    last = bundle.config.num_hidden_layers
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [r["features"] for r in index] == [n.rsplit(".", 1)[0] + ".npy" for n in names]
    for record, name in zip(index, names):
        wave = decode_audio(tmp_path / "audio" / name)
        states, _ = sj.extract_features(bundle, wave[None])
        expected = np.asarray(states)[[0, last], 0]
        got = np.load(out / record["features"])
        assert got.shape == expected.shape and record["frames"] == expected.shape[1] and record["layers"] == [0, last]
        np.testing.assert_allclose(got, expected, atol=1e-4)
    assert "3 utterance(s)" in capsys.readouterr().out

    # a re-run computes only what is missing (as after a crash), and leaves the rest untouched
    kept = (out / "c.npy").stat().st_mtime_ns
    saved = np.load(out / "spk1" / "a.npy")
    (out / "spk1" / "a.npy").unlink()
    assert extract_main(argv) == 0
    assert (out / "c.npy").stat().st_mtime_ns == kept
    np.testing.assert_array_equal(np.load(out / "spk1" / "a.npy"), saved)

    # a kept file written with other layers is not silently mixed into this run's index
    capsys.readouterr()
    assert extract_main(argv[:-4] + ["--layers", "all"]) == 2
    err = capsys.readouterr().err
    assert "a previous run left float32 features of shape (2, " in err and "use another --out" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("extra, message", [
    (["--layers", "9"], "--layers 9: expected indices in [-3, 2] (the encoder has 3 hidden states)"),
    (["--layers", "last"], "--layers last: expected 'all' or comma-separated integers"),
])
def test_bad_layers_are_a_one_line_error(encoder_dir, tmp_path, capsys, extra, message):
    _audio_folder(tmp_path / "audio")
    argv = ["--encoder", str(encoder_dir), "--folder", str(tmp_path / "audio"), "--out", str(tmp_path / "f")]
    assert extract_main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_two_files_that_would_share_a_features_file_are_refused(encoder_dir, tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    for ext in ("wav", "flac"):
        sf.write(tmp_path / "audio" / f"x.{ext}", np.zeros(4000, np.float32), 16000)
    argv = ["--encoder", str(encoder_dir), "--folder", str(tmp_path / "audio"), "--out", str(tmp_path / "f")]
    assert extract_main(argv) == 2
    assert "would overwrite those of" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_a_broken_audio_file_is_named(encoder_dir, tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "broken.wav").write_bytes(b"RIFF\x00\x00")
    argv = ["--encoder", str(encoder_dir), "--folder", str(tmp_path / "audio"), "--out", str(tmp_path / "f")]
    assert extract_main(argv) == 2
    err = capsys.readouterr().err
    assert "broken.wav" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def wide_cnn_encoder_dir(tmp_path_factory):
    # the shipped tiny HuBERT's CNN (kernels 400, 16; strides 20, 16): a receptive field of 700 samples
    config = tiny_encoder_config(feat_extract_norm="layer", conv_dim=[32, 32], conv_kernel=[400, 16],
                                 conv_stride=[20, 16])
    path = tmp_path_factory.mktemp("extract") / "wide-cnn"
    sj.save_pretrained(sj.init_encoder(config, seed=0), path)
    return path


@pytest.mark.parametrize("with_long", [False, True], ids=["alone", "batched"])
def test_a_clip_shorter_than_the_receptive_field_is_named(wide_cnn_encoder_dir, tmp_path, capsys, with_long):
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "short.wav", np.full(640, 0.1, np.float32), 16000)  # 0.04 s
    if with_long:  # batched with it, the short clip used to come out as a [layers, 0, hidden] file
        sf.write(tmp_path / "audio" / "long.wav", np.full(16000, 0.1, np.float32), 16000)
    argv = ["--encoder", str(wide_cnn_encoder_dir), "--folder", str(tmp_path / "audio"), "--out", str(tmp_path / "f")]
    assert extract_main(argv) == 2
    err = capsys.readouterr().err
    assert "short.wav: audio has 640 samples at 16 kHz, fewer than the 700 the encoder's CNN needs" in err
    assert err.count("\n") == 1
    assert not list(tmp_path.glob("f/**/*.npy"))


def test_a_file_longer_than_max_seconds_is_refused_from_its_header(encoder_dir, tmp_path, capsys, monkeypatch):
    import speechft_jax.data.source as source_module

    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "ok.wav", np.zeros(16000, np.float32), 16000)
    sf.write(tmp_path / "audio" / "talk.flac", np.zeros(61 * 16000, np.float32), 16000)

    def no_decoding(*args, **kwargs):
        raise AssertionError("audio decoded before its length was checked")

    monkeypatch.setattr(source_module, "decode_audio", no_decoding)
    argv = ["--encoder", str(encoder_dir), "--folder", str(tmp_path / "audio"), "--out", str(tmp_path / "f")]
    assert extract_main(argv) == 2  # the default limit is 60 s
    err = capsys.readouterr().err
    assert "talk.flac: audio is 61.0 s long, more than --max-seconds 60" in err and err.count("\n") == 1
    assert extract_main(argv + ["--max-seconds", "0.5"]) == 2
    assert "ok.wav: audio is 1.0 s long, more than --max-seconds 0.5" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()
    with pytest.raises(SystemExit) as exit_info:
        extract_main(argv + ["--max-seconds", "0"])
    assert exit_info.value.code == 2 and "--max-seconds 0: expected a positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        extract_main(["--help"])
    assert "default 60 s" in capsys.readouterr().out


def test_non_finite_features_are_an_error_and_nothing_is_half_written(tmp_path):
    import jax
    import jax.numpy as jnp

    from speechft_jax.data.source import FileSource
    from speechft_jax.extract import extract_to_folder

    bundle = sj.init_encoder(tiny_encoder_config(feat_extract_norm="layer"), seed=0)
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", np.full(8000, 0.1, np.float32), 16000)
    out = tmp_path / "f"
    extract_to_folder(bundle, FileSource.from_folder(tmp_path / "audio"), out, [0, 2])
    index_before = (out / "index.jsonl").read_bytes()

    # one NaN weight in the last layer: hidden states 0 and 1 stay finite, 2 is all NaN
    params = jax.tree_util.tree_map(lambda x: x, bundle.params)
    dense = params["encoder"]["layers_1"]["feed_forward"]["output_dense"]
    dense["kernel"] = jnp.asarray(dense["kernel"]).at[0, 0].set(jnp.nan)
    poisoned = bundle.replace(params=params)
    sf.write(tmp_path / "audio" / "b.wav", np.full(8000, 0.2, np.float32), 16000)
    source = FileSource.from_folder(tmp_path / "audio")
    with pytest.raises(DataError, match=r"b.wav: hidden state 2 has \d+ NaN/Inf value\(s\) of \d+"):
        extract_to_folder(poisoned, source, out, [0, 2])
    assert not (out / "b.npy").exists() and (out / "index.jsonl").read_bytes() == index_before
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "index.jsonl"]  # no temporary left
    # the layers before the poisoned one are fine
    assert extract_to_folder(poisoned, source, tmp_path / "g", [0, 1])[1]["frames"] > 0
