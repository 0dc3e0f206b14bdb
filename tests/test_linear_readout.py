"""The per-layer linear readout: toy separability, pooling, intent slots, bad input, and `evaluate --readout`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import speechft_jax as sj
from speechft_jax.errors import ConfigError, DataError
from speechft_jax.evaluate.linear_readout import (
    PooledSplit, encoder_readouts, pool_states, readout_layers,
)

TINY_HUBERT = str(sj.TINY_HUBERT_DIR)


def _toy_split(rng, n: int) -> PooledSplit:
    """3 Gaussian classes; layer 0 is noise, layer 1 holds the class (means 6 sd apart)."""
    labels = np.arange(n) % 3
    noise = rng.standard_normal((n, 8))
    centres = 6.0 * np.eye(3, 8)[labels]
    informative = centres + rng.standard_normal((n, 8))
    return PooledSplit(np.stack([noise, informative], axis=1).astype(np.float32), labels[:, None])


def test_the_informative_layer_reads_out_perfectly_and_the_noise_at_chance():
    rng = np.random.default_rng(0)
    train, dev, test = (_toy_split(rng, n) for n in (150, 90, 90))
    noise, informative = readout_layers(train, dev, test, progress=False)
    assert informative.test_accuracy >= 0.99 and informative.dev_accuracy >= 0.99
    assert informative.train_accuracy >= 0.99 and informative.converged
    assert noise.test_accuracy < 0.55  # chance is 1/3; 90 test utterances
    assert (noise.test_count, informative.test_count) == (90, 90)
    assert informative.test_correct == round(informative.test_accuracy * 90)
    assert all(len(r.c) == 1 and r.c[0] in (0.01, 0.1, 1.0, 10.0, 100.0) for r in (noise, informative))


def test_the_std_pooling_reads_out_what_the_mean_misses():
    """Classes that differ only in how much the frames vary: the mean alone cannot tell them apart."""
    rng = np.random.default_rng(1)

    def split(n):
        labels = np.arange(n) % 2
        utterances = [rng.standard_normal((1, 40, 4)) * (1.0 + 2.0 * y) for y in labels]  # [L+1, frames, D]
        return labels, utterances

    splits = {name: split(n) for name, n in (("train", 80), ("dev", 40), ("test", 40))}
    results = {}
    for pooling in ("mean", "mean_std"):
        pooled = [PooledSplit(np.stack([pool_states(u, pooling) for u in utts]), labels[:, None])
                  for labels, utts in splits.values()]
        (results[pooling],) = readout_layers(*pooled, progress=False)
    assert pool_states(splits["train"][1][0], "mean").shape == (1, 4)
    assert pool_states(splits["train"][1][0]).shape == (1, 8)
    assert results["mean_std"].test_accuracy >= 0.95
    assert results["mean"].test_accuracy < 0.75


def test_an_intent_is_right_only_when_every_slot_is():
    rng = np.random.default_rng(2)

    def split(n):
        slots = np.stack([np.arange(n) % 2, (np.arange(n) // 2) % 3], axis=1)
        # slot 0 is readable from the vectors, slot 1 is not: joint accuracy follows the weaker slot
        vectors = np.concatenate([4.0 * slots[:, :1] + rng.standard_normal((n, 1)), rng.standard_normal((n, 3))],
                                 axis=1)
        return PooledSplit(vectors[:, None].astype(np.float32), slots)

    (layer,) = readout_layers(split(120), split(60), split(60), c_grid=(0.1, 1.0), progress=False)
    assert len(layer.c) == 2
    assert layer.test_accuracy < 0.6  # slot 1 at chance (1/3) and slot 0 near 1


def test_the_test_interval_is_wilsons():
    rng = np.random.default_rng(3)
    train, dev, test = (_toy_split(rng, n) for n in (60, 30, 30))
    noise = readout_layers(train, dev, test, c_grid=(1.0,), progress=False)[0]
    k, n, z = noise.test_correct, noise.test_count, 1.959963984540054
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (
        1 + z * z / n)
    assert noise.to_json()["test_interval"] == pytest.approx([centre - half, centre + half], abs=1e-6)


@pytest.mark.parametrize("change, error, message", [
    ({"labels": np.zeros((30, 1), np.int64)}, DataError, "the train split has a single class"),
    ({"c_grid": (0.0, 1.0)}, ConfigError, "readout C grid [0.0, 1.0]: expected one or more positive numbers"),
])
def test_bad_readout_input_is_a_one_line_error(change, error, message):
    rng = np.random.default_rng(4)
    train, dev, test = (_toy_split(rng, 30) for _ in range(3))
    if "labels" in change:
        train = PooledSplit(train.vectors, change["labels"])
    with pytest.raises(error) as caught:
        readout_layers(train, dev, test, c_grid=change.get("c_grid", (1.0,)), name="toy", progress=False)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# ---------------------------------------------------------------------------------- the demo corpus
def _evaluate(corpus, *extra):
    from speechft_jax.evaluate.__main__ import main as evaluate_main

    return evaluate_main(["--encoder", TINY_HUBERT, "--corpus-dir", str(corpus), "--steps", "2", "--lr", "1e-2",
                          "--readout", *extra])


def _sid_config(corpus, path):
    """The demo corpus's sid task with one padded length per split (fewer compilations: a fast test)."""
    path.write_text(f"""tasks:
  - name: sid
    kind: classification
    data: {{type: corpus, corpus_dir: {corpus}, task: sid}}
    probe: {{steps: 2, learning_rates: [1.0e-2], num_buckets: 1}}
""")
    return path


def test_evaluate_readout_writes_the_layer_table_from_the_probes_features(demo_corpus_tiny, tmp_path, monkeypatch,
                                                                         capsys):
    import speechft_jax.evaluate.linear_readout as linear_readout
    from speechft_jax.evaluate.__main__ import main as evaluate_main

    def no_second_pass(*args, **kwargs):
        raise AssertionError("the readout ran the encoder again instead of reading the probes' feature cache")

    monkeypatch.setattr(linear_readout, "encode_source", no_second_pass)
    out = tmp_path / "eval.json"
    assert evaluate_main(["--encoder", TINY_HUBERT, "--config", str(_sid_config(demo_corpus_tiny, tmp_path / "sid.yaml")),
                          "--readout", "--out", str(out)]) == 0
    readout = json.loads(out.read_text())["readout"]
    assert list(readout) == ["sid"]
    sid = readout["sid"]
    assert sid["pooling"] == "mean_std" and len(sid["layers"]) == 5  # the CNN's projection and 4 layers
    for layer in sid["layers"]:
        assert 0.0 <= layer["test"] <= 1.0 and layer["test_interval"][0] <= layer["test"] <= layer["test_interval"][1]
    assert max(layer["dev"] for layer in sid["layers"]) == sid["layers"][sid["best_layer"]]["dev"]
    printed = capsys.readouterr()
    assert "sid: linear readout (mean+std pooling" in printed.out and "<- best dev" in printed.out

    # streamed (no cache): the same states, rounded alike, read out alike
    monkeypatch.undo()
    from speechft_jax.checkpoints import load_pretrained
    from speechft_jax.evaluate.demo_tasks import demo_task
    from speechft_jax.evaluate.frozen_encoders import single_encoder

    (streamed,) = encoder_readouts(single_encoder(load_pretrained(TINY_HUBERT).with_runtime(batch_independent=True)),
                                   demo_task(demo_corpus_tiny, "sid"), num_buckets=1, progress=False)
    assert [r.test_accuracy for r in streamed.layers] == [layer["test"] for layer in sid["layers"]]


def test_readout_skips_a_task_that_is_not_utterance_level_with_a_note(demo_corpus_tiny, caplog):
    from speechft_jax.evaluate.demo_tasks import demo_eval_tasks
    from speechft_jax.evaluate.linear_readout import readout_tasks
    from speechft_jax.evaluate.probe_settings import ProbeSettings

    tasks = demo_eval_tasks(demo_corpus_tiny, ["pr", "sid", "style"], ProbeSettings())
    assert [t.name for t in readout_tasks(tasks, "--readout")] == ["sid", "style"]
    assert "--readout: skipping pr (ctc): not an utterance-level task scored by accuracy" in caplog.text


def test_readout_without_an_utterance_level_task_is_a_one_line_error(demo_corpus_tiny, capsys):
    assert _evaluate(demo_corpus_tiny, "--tasks", "pr") == 2
    err = capsys.readouterr().err
    assert "--readout: needs a classification or intent task; these are not: pr (ctc)" in err
    assert err.count("\n") == 1


# ---------------------------------------------------------------------------------- the sweep
def _sweep_config(tmp_path, corpus, *, encoders=True, **changes):
    import yaml

    from conftest import tiny_encoder_config

    for name, seed in (("base", 0), ("ft", 1)):
        if encoders:
            sj.save_pretrained(sj.init_encoder(tiny_encoder_config(), seed=seed), tmp_path / name)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "pretrained": str(tmp_path / "base"), "finetuned": str(tmp_path / "ft"), "output_dir": str(tmp_path / "out"),
        "alphas": [0.0], "tasks": ["sid"], "corpus_dir": str(corpus), "similarity": False, "readout": True,
        "probe": {"steps": 2, "learning_rates": [1e-2], "batch_size": 8, "num_buckets": 1}, **changes}))
    return path


def test_a_sweep_readout_without_an_utterance_level_task_is_a_one_line_error(demo_corpus_tiny, tmp_path, capsys):
    from speechft_jax.sweep.__main__ import main as sweep_main

    assert sweep_main(["--config", str(_sweep_config(tmp_path, demo_corpus_tiny, encoders=False, tasks=["pr"]))]) == 2
    err = capsys.readouterr().err
    assert "readout: needs a classification or intent task; these are not: pr (ctc)" in err and err.count("\n") == 1


def test_the_sweep_prints_each_alphas_best_dev_layer():
    from speechft_jax.evaluate.linear_readout import Readout, format_readout_by_alpha

    rng = np.random.default_rng(5)
    train, dev, test = (_toy_split(rng, n) for n in (60, 30, 30))
    curve = Readout("toy", "mean_std", (1.0,), readout_layers(train, dev, test, c_grid=(1.0,), progress=False))
    assert curve.best_layer == 1
    printed = format_readout_by_alpha({"toy": {"0.0": curve.to_json(), "0.5": curve.to_json()}})
    best = curve.layers[1]
    low, high = best.test_interval()
    assert f"toy      0.5        1 {best.dev_accuracy:>7.4f} {best.test_accuracy:>7.4f}  [{low:.4f}, {high:.4f}]" in printed
