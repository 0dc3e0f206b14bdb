"""`python -m speechft_jax.evaluate`: probes, the table, JSON, and similarity to a reference encoder."""

from __future__ import annotations

import json

import pytest

import speechft_jax as sj
from conftest import tiny_encoder_config
from speechft_jax.evaluate.__main__ import main as evaluate_main


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    config = tiny_encoder_config()
    for name, seed in (("base", 0), ("other", 1)):
        sj.save_pretrained(sj.init_encoder(config, seed=seed), root / name)
    sj.save_pretrained(sj.init_encoder(tiny_encoder_config(num_hidden_layers=1), seed=0), root / "shallow")
    return root


def _run(encoders, corpus, *extra):
    return evaluate_main(["--encoder", str(encoders / "base"), "--tasks", "sid", "--corpus-dir", str(corpus),
                          "--steps", "5", "--lr", "1e-2", *extra])


def test_evaluate_reports_probes_and_similarity(encoders, demo_corpus_tiny, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert _run(encoders, demo_corpus_tiny, "--similarity-to", str(encoders / "other"), "--out", str(out)) == 0
    report = json.loads(out.read_text())
    assert report["results"]["sid"]["metric"] == "accuracy" and 0.0 <= report["results"]["sid"]["test"] <= 1.0
    similarity = report["similarity"]
    assert similarity["reference"] == str(encoders / "other") and similarity["task"] == "sid"
    assert len(similarity["layers"]) == 1 + tiny_encoder_config().num_hidden_layers
    assert all(layer["cka"] < 0.99 for layer in similarity["layers"])  # a different random encoder
    assert similarity["l2"] > 0 and similarity["relative"] > 0
    printed = capsys.readouterr().out
    assert "similarity to" in printed and "CKA" in printed
    low, high = report["results"]["sid"]["details"]["test_ci95"]  # Wilson's, printed beside the accuracy
    assert low <= report["results"]["sid"]["test"] <= high and f"[{low:.4f}, {high:.4f}]" in printed

    assert _run(encoders, demo_corpus_tiny, "--similarity-to", str(encoders / "base"), "--out", str(out)) == 0
    itself = json.loads(out.read_text())["similarity"]
    assert itself["l2"] == 0.0
    assert all(layer["cka"] == pytest.approx(1.0, abs=1e-4) for layer in itself["layers"])


def test_similarity_to_another_architecture_is_a_one_line_error(encoders, demo_corpus_tiny, capsys):
    assert _run(encoders, demo_corpus_tiny, "--similarity-to", str(encoders / "shallow")) == 2
    err = capsys.readouterr().err
    assert "num_hidden_layers" in err and err.count("\n") == 1


def _count_extractions(monkeypatch) -> list:
    """The `desc` of every feature extraction (the probes' cache and the similarity's features)."""
    import speechft_jax.evaluate.features as features

    extracted, real = [], features.encode_source
    monkeypatch.setattr(features, "encode_source",
                        lambda *args, **kwargs: extracted.append(kwargs["desc"]) or real(*args, **kwargs))
    return extracted


def test_similarity_reuses_the_probes_test_features(encoders, demo_corpus_tiny, monkeypatch):
    extracted = _count_extractions(monkeypatch)
    assert _run(encoders, demo_corpus_tiny, "--similarity-to", str(encoders / "other")) == 0
    assert sorted(extracted) == ["sid dev features", "sid test features", "sid test reference features",
                                 "sid train features"]
    extracted.clear()  # the same weights as reference: its features are the encoder's, read back too
    assert _run(encoders, demo_corpus_tiny, "--similarity-to", str(encoders / "base")) == 0
    assert sorted(extracted) == ["sid dev features", "sid test features", "sid train features"]


def test_cache_dir_serves_no_features_of_other_labels(encoders, demo_corpus_tiny, tmp_path, monkeypatch, capsys):
    import shutil

    corpus, cache = shutil.copytree(demo_corpus_tiny, tmp_path / "corpus"), str(tmp_path / "cache")
    extracted = _count_extractions(monkeypatch)

    def edit(split, change):
        records = [json.loads(line) for line in (corpus / "sid.jsonl").read_text().splitlines()]
        change([r for r in records if r["split"] == split])
        (corpus / "sid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    def rotate(rows):
        for row, speaker in zip(rows, [r["speaker"] for r in rows[1:] + rows[:1]]):
            row["speaker"] = speaker

    assert _run(encoders, corpus, "--cache-dir", cache) == 0
    extracted.clear()
    edit("test", rotate)  # the test split's speakers rotated: its cached features' labels are stale
    assert _run(encoders, corpus, "--cache-dir", cache) == 0
    assert extracted == ["sid test features"]
    edit("dev", lambda rows: rows[0].update(speaker="spk_nobody"))
    capsys.readouterr()
    assert _run(encoders, corpus, "--cache-dir", cache) == 2
    err = capsys.readouterr().err
    assert "speaker 'spk_nobody' is not one of the" in err and err.count("\n") == 1


@pytest.mark.parametrize("extra, message", [
    (["--lr", "0"], "learning_rates=[0.0]: expected one or more positive numbers"),
    (["--lr", "1e-3,abc"], "--lr 1e-3,abc: expected comma-separated numbers"),
    (["--steps", "0"], "steps=0, batch_size=16: expected positive integers"),
    (["--batch-size", "-1"], "batch_size=-1: expected positive integers"),
    (["--cache-budget-gb", "-1"], "cache_budget_gb=-1.0, expected a number >= 0"),
])
def test_probe_settings_are_checked_before_any_loading(tmp_path, capsys, extra, message):
    argv = ["--encoder", str(tmp_path / "never_read"), "--tasks", "sid", "--out", str(tmp_path / "eval.json")]
    assert evaluate_main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "eval.json").exists()


def test_probes_on_the_fly_keep_metrics_in_the_work_dir_beside_out(encoders, demo_corpus_tiny, tmp_path):
    out = tmp_path / "eval.json"
    assert _run(encoders, demo_corpus_tiny, "--probe-mode", "on_the_fly", "--out", str(out)) == 0
    assert json.loads(out.read_text())["results"]["sid"]["details"]["mode"] == "on_the_fly"
    logged = [json.loads(line) for line in (tmp_path / "eval.probes" / "sid" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [5] and "dev_accuracy/0/0.01" in logged[0]


def test_an_unwritable_cache_dir_fails_before_any_loading(tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    cache = tmp_path / "a_file" / "cache"  # tests run as root: a read-only folder would still take files
    argv = ["--encoder", str(tmp_path / "never_read"), "--tasks", "sid", "--cache-dir", str(cache)]
    assert evaluate_main(argv) == 2
    err = capsys.readouterr().err
    assert f"--cache-dir={cache}: cannot write there (Not a directory)" in err and err.count("\n") == 1


def test_the_superb_score_of_the_tasks_standing_for_superbs(encoders, demo_corpus_tiny, tmp_path, capsys):
    """Intent, verification, diarization and a stand-in for ER (`superb: er`) are scored against the
    reference set named; a task standing for none is left out; every metric is printed."""
    import yaml

    from speechft_jax.evaluate.probe import ProbeResult
    from speechft_jax.evaluate.superb import reference_set, score_results

    data = lambda task: {"type": "corpus", "corpus_dir": str(demo_corpus_tiny), "task": task}
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({
        "probe": {"steps": 2, "learning_rates": [1e-2], "batch_size": 4, "num_buckets": 1},
        "tasks": [{"name": "ic", "kind": "intent", "projection_dim": 8, "data": data("ic")},
                  {"name": "asv", "kind": "verification", "projection_dim": 8, "data": data("asv")},
                  {"name": "sd", "kind": "diarization", "lstm_units": 8, "lstm_layers": 1, "data": data("sd")},
                  {"name": "mood", "kind": "classification", "superb": "er", "data": data("style")},
                  {"name": "who", "kind": "classification", "data": data("sid")}]}))
    out = tmp_path / "eval.json"
    argv = ["--encoder", str(encoders / "base"), "--config", str(tmp_path / "eval.yaml"), "--out", str(out),
            "--reference", "paper-fbank+wavlm-large"]
    assert evaluate_main(argv) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    results = {name: ProbeResult(**r) for name, r in report["results"].items()}
    score, metrics = score_results(results, {"ic": "ic", "asv": "asv", "sd": "sd", "mood": "er"},
                                   reference_set("paper-fbank+wavlm-large"))
    assert report["superb"]["score"] == pytest.approx(score) and report["superb"]["tasks"] == metrics
    assert report["superb"]["reference"] == "paper-fbank+wavlm-large" and set(metrics) == {"ic", "asv", "sd", "er"}
    assert f"SUPERB score over 4 task(s) (ic, asv, sd, er), reference set 'paper-fbank+wavlm-large': {score:.1f}" in printed
    for metric in ("accuracy", "eer", "min_dcf", "der", "missed", "false_alarm", "confusion"):
        assert f" {metric} " in printed, metric
    assert "not comparable with published scores" in printed  # demo-corpus tasks


def test_an_unknown_reference_set_fails_before_any_loading(tmp_path, capsys):
    argv = ["--encoder", str(tmp_path / "never_read"), "--tasks", "sid", "--reference", "mine"]
    assert evaluate_main(argv) == 2
    err = capsys.readouterr().err
    assert "SUPERB reference set 'mine': expected one of leaderboard, paper-fbank+wavlm-large" in err
    assert err.count("\n") == 1
