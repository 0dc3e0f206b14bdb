"""`evaluate --seeds N`: each task's probes trained with N seeds on features computed once."""

from __future__ import annotations

import json
import statistics

import pytest

import speechft_jax as sj
from conftest import tiny_encoder_config
from speechft_jax.evaluate.__main__ import main as evaluate_main


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("encoders") / "base"
    sj.save_pretrained(sj.init_encoder(tiny_encoder_config(), seed=0), path)
    return path


def _losses(folder) -> list:
    return [json.loads(line)["train_loss/0/0.01"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_two_seeds_report_mean_and_sd_over_features_computed_once(encoder, demo_corpus_tiny, tmp_path, capsys,
                                                                   monkeypatch):
    import speechft_jax.evaluate.features as features

    extracted, real = [], features.encode_source
    monkeypatch.setattr(features, "encode_source",
                        lambda *args, **kwargs: extracted.append(kwargs["desc"]) or real(*args, **kwargs))
    out = tmp_path / "eval.json"
    argv = ["--encoder", str(encoder), "--tasks", "sid", "--corpus-dir", str(demo_corpus_tiny), "--steps", "5",
            "--lr", "1e-2", "--seed", "3", "--seeds", "2", "--out", str(out)]
    assert evaluate_main(argv) == 0
    assert sorted(extracted) == ["sid dev features", "sid test features", "sid train features"]  # not per seed
    result = json.loads(out.read_text())["results"]["sid"]
    details = result["details"]
    assert details["seeds"] == [3, 4] and len(details["test_by_seed"]) == 2
    assert details["test_by_seed"][0] == result["test"]  # the table's first cell is the first seed's
    assert details["test_mean"] == pytest.approx(statistics.mean(details["test_by_seed"]))
    assert details["test_sd"] == pytest.approx(statistics.stdev(details["test_by_seed"]))
    printed = capsys.readouterr().out
    assert f"{details['test_mean']:.4f} ± {details['test_sd']:.4f} (2 seeds)" in printed
    # each seed in its own work folder: another initialisation and data order, so other losses
    first, second = tmp_path / "eval.probes" / "sid", tmp_path / "eval.probes" / "sid" / "seed4"
    assert _losses(first) != _losses(second)


@pytest.mark.parametrize("count", ["0", "101", "two"])
def test_a_seed_count_out_of_range_is_a_one_line_usage_error(tmp_path, capsys, count):
    argv = ["--encoder", str(tmp_path / "never_read"), "--tasks", "sid", "--seeds", count]
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --seeds: {count}: expected an integer from 1 to 100" in err and err.count("\n") == 1
