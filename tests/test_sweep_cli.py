"""`python -m speechft_jax.sweep`: per-alpha probe scores, the chosen alpha, sweep.json and the plot."""

from __future__ import annotations

import json

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
        assert summary["objective"][alpha] == summary["results"][alpha]["sid"]["test"]
    best = max(summary["objective"].values())
    assert summary["objective"][str(summary["best_alpha"])] == best
    svg = (tmp_path / "out" / "scores.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert "<- best" in capsys.readouterr().out


def test_sweep_config_errors_name_the_key(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"pretrained": "a", "finetuned": "b", "output_dir": "c", "tasks": ["pr"],
                                    "select_on": ["sid"]}))
    assert sweep_main(["--config", str(path)]) == 2
    assert "select_on" in capsys.readouterr().err
