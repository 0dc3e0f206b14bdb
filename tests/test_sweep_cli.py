"""`python -m speechft_jax.sweep`: per-alpha probe scores, the chosen alpha, sweep.json and the plot."""

from __future__ import annotations

import json

import pytest
import yaml

import speechft_jax as sj
from conftest import tiny_encoder_config
from speechft_jax.sweep.__main__ import main as sweep_main


def test_sweep_cli_writes_scores_table_and_plot(demo_corpus_tiny, tmp_path, capsys):
    config = tiny_encoder_config()
    sj.save_pretrained(sj.init_encoder(config, seed=0), tmp_path / "base")
    sj.save_pretrained(sj.init_encoder(config, seed=1), tmp_path / "ft")
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "pretrained": str(tmp_path / "base"), "finetuned": str(tmp_path / "ft"), "output_dir": str(tmp_path / "out"),
        "alphas": [0.0, 0.5, 1.0], "tasks": ["sid", "pr"], "select_on": ["sid"], "corpus_dir": str(demo_corpus_tiny),
        "probe": {"steps": 20, "learning_rates": [1e-2], "batch_size": 8}}))
    assert sweep_main(["--config", str(path)]) == 0
    summary = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert summary["alphas"] == [0.0, 0.5, 1.0] and summary["best_alpha"] in summary["alphas"]
    for alpha in ("0.0", "0.5", "1.0"):
        assert summary["results"][alpha]["sid"]["metric"] == "accuracy"
        assert summary["results"][alpha]["pr"]["metric"] == "error_rate"
        for task in ("sid", "pr"):  # each test metric's 95 % interval, in the metric's own units
            low, high = summary["results"][alpha][task]["ci95"]
            assert low <= summary["results"][alpha][task]["test"] <= high
            assert summary["results"][alpha][task]["details"]["test_ci95"] == [low, high]
        # alpha is chosen on dev; test is reported beside it
        assert summary["objective"][alpha] == summary["results"][alpha]["sid"]["dev"]
        assert summary["test_objective"][alpha] == summary["results"][alpha]["sid"]["test"]
    best = max(summary["objective"].values())
    assert summary["objective"][str(summary["best_alpha"])] == best and summary["chosen_on"] == "dev"
    tied = [float(a) for a, v in summary["objective"].items() if v == best]
    assert summary["best_alpha"] == tied[0] and summary["tied_alphas"] == (tied if len(tied) > 1 else [])
    assert summary["figures"] == ["scores.png", "scores.pdf"]
    assert (tmp_path / "out" / "scores.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (tmp_path / "out" / "scores.pdf").read_bytes().startswith(b"%PDF-")
    out = capsys.readouterr().out
    assert "sweep.json, scores.png, scores.pdf written" in out
    assert "Speech-FT" in out and "fine-tuned" in out  # alpha 1 without a finetuned_label
    assert "marked * where it does not overlap alpha 0's and + where it does not overlap alpha 1's" in out


def _tiny_sweep(tmp_path, corpus_dir, output_dir, *, encoders=True, **changes):
    """Two saved random encoders (unless not `encoders`) and a one-task sweep config over three
    alphas; the config's path."""
    for name, seed in (("base", 0), ("ft", 1)):
        if encoders and not (tmp_path / name).exists():
            sj.save_pretrained(sj.init_encoder(tiny_encoder_config(), seed=seed), tmp_path / name)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "pretrained": str(tmp_path / "base"), "finetuned": str(tmp_path / "ft"), "output_dir": str(output_dir),
        "alphas": [0.0, 0.5, 1.0], "tasks": ["sid"], "corpus_dir": str(corpus_dir),
        "probe": {"steps": 10, "learning_rates": [1e-2], "batch_size": 8}, **changes}))
    return path


def test_an_unwritable_output_dir_fails_before_any_work(demo_corpus_tiny, tmp_path, monkeypatch, capsys):
    import speechft_jax.sweep.runner as runner

    (tmp_path / "a_file").write_text("not a folder")
    output_dir = tmp_path / "a_file" / "out"  # as root, a read-only folder would still take files
    path = _tiny_sweep(tmp_path, demo_corpus_tiny, output_dir, encoders=False)  # never read
    work = []
    monkeypatch.setattr(runner, "sweep_feature_sets", lambda *args, **kwargs: work.append(1))
    monkeypatch.setattr(runner, "load_pretrained", lambda *args, **kwargs: work.append(1))
    assert sweep_main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"output_dir={output_dir}: cannot write there" in err and err.count("\n") == 1
    assert work == []


def test_an_interrupted_sweep_resumes_where_it_stopped(demo_corpus_tiny, tmp_path, monkeypatch):
    import speechft_jax.sweep.runner as runner
    from speechft_jax.evaluate.probe_state import ProbeMetrics
    from speechft_jax.sweep.runner import format_table

    probe = {"steps": 10, "learning_rates": [1e-2], "batch_size": 8, "checkpoint_every": 4, "num_buckets": 1,
             "mode": "on_the_fly"}
    assert sweep_main(["--config", str(_tiny_sweep(tmp_path, demo_corpus_tiny, tmp_path / "whole", probe=probe))]) == 0
    whole = json.loads((tmp_path / "whole" / "sweep.json").read_text())
    assert not (tmp_path / "whole" / "sweep.partial.json").exists()  # complete: nothing left to resume

    trained, feature_alphas, steps = [], [], []
    real_probes, real_features, real_add = runner.train_probes, runner.sweep_feature_sets, ProbeMetrics.add

    def probes(spec, encoders, *args, **kwargs):
        trained.append([float(a) for a in encoders.inputs["alphas"]])
        return real_probes(spec, encoders, *args, **kwargs)

    def features(bundle, theta_ft, alphas, *args, **kwargs):
        feature_alphas.append(list(alphas))
        return real_features(bundle, theta_ft, alphas, *args, **kwargs)

    def add(self, step, *args):
        steps.append(step)
        if step == stop_at:
            raise RuntimeError("interrupted")
        return real_add(self, step, *args)

    monkeypatch.setattr(runner, "train_probes", probes)
    monkeypatch.setattr(runner, "sweep_feature_sets", features)
    monkeypatch.setattr(ProbeMetrics, "add", add)
    path = _tiny_sweep(tmp_path, demo_corpus_tiny, tmp_path / "parts", probe=probe)
    stop_at = 6  # the three alphas' probes, trained together, stop after their checkpoint of step 4
    with pytest.raises(RuntimeError, match="interrupted"):
        sweep_main(["--config", str(path)])
    partial = json.loads((tmp_path / "parts" / "sweep.partial.json").read_text())
    assert partial["results"] == {} and set(partial["similarity"]) == {"0.0", "0.5", "1.0"}

    stop_at, trained[:], feature_alphas[:], steps[:] = None, [], [], []
    assert sweep_main(["--config", str(path)]) == 0
    assert trained == [[0.0, 0.5, 1.0]] and steps == [5, 6, 7, 8, 9, 10] and feature_alphas == []
    resumed = json.loads((tmp_path / "parts" / "sweep.json").read_text())
    assert format_table(resumed) == format_table(whole)
    assert {k: v for k, v in resumed.items() if k != "wall_seconds"} == {
        k: v for k, v in whole.items() if k != "wall_seconds"}
    assert not (tmp_path / "parts" / "sweep.partial.json").exists()

    # the (task, alpha) results kept in the partial file are not trained again: alpha 0's is there
    stop_at, path = 6, _tiny_sweep(tmp_path, demo_corpus_tiny, tmp_path / "third", probe=probe)
    with pytest.raises(RuntimeError, match="interrupted"):
        sweep_main(["--config", str(path)])
    partial = json.loads((tmp_path / "third" / "sweep.partial.json").read_text())
    kept = {k: v for k, v in whole["results"]["0.0"]["sid"].items() if k != "ci95"}  # a ProbeResult's JSON
    partial["results"] = {"sid": {"0.0": kept}}
    (tmp_path / "third" / "sweep.partial.json").write_text(json.dumps(partial))
    stop_at, trained[:] = None, []
    assert sweep_main(["--config", str(path)]) == 0
    assert trained == [[0.5, 1.0]]
    third = json.loads((tmp_path / "third" / "sweep.json").read_text())
    assert third["results"]["0.0"] == whole["results"]["0.0"] and set(third["results"]) == {"0.0", "0.5", "1.0"}

    # a changed setting never reuses a kept result: interrupted again, then run with another seed
    stop_at = 6
    with pytest.raises(RuntimeError, match="interrupted"):
        sweep_main(["--config", str(path)])
    feature_alphas[:] = []
    with pytest.raises(RuntimeError, match="interrupted"):
        sweep_main(["--config", str(path), "--set", "seed=1"])
    assert feature_alphas == [[0.0, 0.5, 1.0]]


@pytest.mark.parametrize("config,method", [
    ("demo.yaml", "Stable-FT"), ("demo_full.yaml", "full FT"), ("demo_pr_lora.yaml", "LoRA"),
    ("demo_pr_l2.yaml", "L2 reg."), ("demo_pr_early.yaml", "Stable-FT"), ("demo_score.yaml", "SCORE"),
    ("demo_hubert.yaml", "HuBERT PT"),
])
def test_a_training_run_names_alpha_1_by_its_method(config, method):
    from pathlib import Path

    from speechft_jax.pipeline import finetuning_method
    from speechft_jax.train import load_train_config

    configs = Path(__file__).resolve().parent.parent / "configs"
    assert finetuning_method(load_train_config(configs / config)) == method


@pytest.mark.parametrize("change, message", [
    ({"select_on": ["sid"]}, "select_on: 'sid' is not one of tasks ['pr']"),
    ({"alphas": [0.0, float("nan")]}, "alphas[1]=nan, expected a finite number"),
    ({"probe": {"learning_rates": [-1e-3]}}, "learning_rates=[-0.001]: expected one or more positive numbers"),
])
def test_sweep_config_errors_name_the_key(tmp_path, capsys, change, message):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"pretrained": "a", "finetuned": "b", "output_dir": "c", "tasks": ["pr"],
                                    **change}))
    assert sweep_main(["--config", str(path)]) == 2
    assert message in capsys.readouterr().err


def _speech_ft_config(tmp_path, corpus_dir, **sweep):
    from conftest import write_train_config

    sj.save_pretrained(sj.init_encoder(tiny_encoder_config(), seed=0), tmp_path / "base")
    path = write_train_config(tmp_path / "config.yaml", corpus_dir, tmp_path / "run",
                              optimizer={"steps": 4}, finetune={"early_checkpoints": []})
    config = yaml.safe_load(path.read_text())
    config["model"] = {"pretrained": str(tmp_path / "base")}
    config["tasks"][0]["splits"] = {"dev": {}, "test": {}}  # the sweep probes the run's own task on them
    config["sweep"] = {"alphas": [0.0, 0.5, 1.0], "tasks": ["pr", "sid"], "corpus_dir": str(corpus_dir),
                       "probe": {"steps": 10, "learning_rates": [1e-2], "batch_size": 8}, **sweep}
    path.write_text(yaml.safe_dump(config))
    return path


def test_training_config_with_a_sweep_section_runs_all_of_speech_ft(demo_corpus_tiny, tmp_path, capsys):
    from speechft_jax.train.__main__ import main as train_main

    path = _speech_ft_config(tmp_path, demo_corpus_tiny)
    assert train_main(["--config", str(path)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "sweep" / "sweep.json").read_text())
    assert summary["finetuned"] == str(tmp_path / "run" / "encoder")
    assert summary["pretrained"] == str(tmp_path / "base")
    similarity = summary["similarity"]
    assert set(similarity) == {"0.0", "0.5", "1.0"}
    for layer in similarity["0.0"]["layers"]:  # alpha 0 is theta_0 itself
        assert layer["cka"] == pytest.approx(1.0, abs=1e-4) and layer["r2"] == pytest.approx(1.0, abs=1e-3)
    assert len(similarity["1.0"]["layers"]) == 1 + tiny_encoder_config().num_hidden_layers
    assert similarity["0.0"]["l2"] == 0.0
    assert similarity["1.0"]["l2"] > 0
    assert similarity["1.0"]["l2"] == pytest.approx(2 * similarity["0.5"]["l2"], rel=1e-4)
    assert similarity["1.0"]["layers"][-1]["cka"] < 1.0
    assert (tmp_path / "run" / "sweep" / "scores.png").is_file()
    assert "pre-trained" in out and "Stable-FT" in out and "CKA last" in out and "best alpha" in out

    # The run is finished: running it again (with another sweep) only sweeps.
    path = _speech_ft_config(tmp_path, demo_corpus_tiny, alphas=[0.25], similarity=False)
    assert train_main(["--config", str(path)]) == 0
    assert "this run already finished" in capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "sweep" / "sweep.json").read_text())
    assert summary["alphas"] == [0.25] and summary["similarity"] == {}


@pytest.mark.parametrize("change,message", [
    ({"sweep": {"pretrained": "x"}}, "sweep.pretrained='x', expected nothing"),
    ({"sweep": {"finetuned_label": "mine"}}, "sweep.finetuned_label='mine', expected nothing"),
    ({"model": {"config": "c.json"}}, "model.pretrained=None, expected a pre-trained encoder when there is a sweep section"),
])
def test_training_sweep_section_errors(demo_corpus_tiny, tmp_path, capsys, change, message):
    from speechft_jax.train.__main__ import main as train_main

    path = _speech_ft_config(tmp_path, demo_corpus_tiny)
    config = yaml.safe_load(path.read_text())
    for key, value in change.items():
        config[key] = {**config[key], **value} if key == "sweep" else value
    path.write_text(yaml.safe_dump(config))
    assert train_main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_sweep_selects_alpha_over_the_new_superb_kinds(demo_corpus_tiny, tmp_path):
    """Intent, verification and diarization probes in a sweep (slot filling's CTC is the old CTC
    probe); alpha is chosen on the mean dev score of verification and diarization (1 - EER, 1 - DER)."""
    data = lambda task: {"type": "corpus", "corpus_dir": str(demo_corpus_tiny), "task": task}
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({"tasks": [  # the demo's tasks with small heads
        {"name": "ic", "kind": "intent", "projection_dim": 16, "data": data("ic")},
        {"name": "asv", "kind": "verification", "projection_dim": 16, "data": data("asv")},
        {"name": "sd", "kind": "diarization", "lstm_units": 8, "lstm_layers": 1, "data": data("sd")}]}))
    probe = {"steps": 10, "learning_rates": [1e-2], "batch_size": 8, "num_buckets": 1}  # one compile per split
    path = _tiny_sweep(tmp_path, demo_corpus_tiny, tmp_path / "out", tasks=["ic", "asv", "sd"], select_on=["asv", "sd"],
                       alphas=[0.0, 1.0], evaluation=str(tmp_path / "eval.yaml"), probe=probe, readout=True)
    assert sweep_main(["--config", str(path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "out" / "sweep.json").read_text())
    # the linear readout of the utterance-level task (an intent: right when every slot is), per alpha
    assert list(summary["readout"]) == ["ic"] and list(summary["readout"]["ic"]) == ["0.0", "1.0"]
    assert all(len(curve["layers"][0]["c"]) == 3 and 0 <= curve["layers"][0]["test"] <= 1
               for curve in summary["readout"]["ic"].values())
    assert {task: summary["results"]["1.0"][task]["metric"] for task in ("ic", "asv", "sd")} == {
        "ic": "accuracy", "asv": "eer", "sd": "der"}
    for alpha in ("0.0", "1.0"):
        results = summary["results"][alpha]
        assert summary["objective"][alpha] == pytest.approx(1 - (results["asv"]["dev"] + results["sd"]["dev"]) / 2)
        assert "test_min_dcf" in results["asv"]["details"] and "test_confusion" in results["sd"]["details"]
