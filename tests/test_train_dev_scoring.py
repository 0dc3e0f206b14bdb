"""The fine-tuned task's own score: dev metrics logged while training, the best-dev step and its
encoder kept, dev and test metrics in the run summary, all of it surviving a restart."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_stopped_after_last_checkpoint, write_train_config
from safetensors.numpy import load_file

from speechft_jax.models.config import ConfigError
from speechft_jax.train import load_train_config, train
from speechft_jax.train.dev_scoring import DevHistory
from speechft_jax.train.metrics_log import read_metrics

STEPS = 6


def _config(corpus_dir, root: Path) -> Path:
    # pr is scored on dev and on a test split that reads the dev utterances (so the test metric, the
    # final encoder and heads on them, must equal the last dev metric); sid on dev only
    tasks = [{"name": "pr", "kind": "ctc", "batch_size": 8, "num_buckets": 1,
              "data": {"type": "corpus", "corpus_dir": str(corpus_dir), "task": "pr"},
              "splits": {"dev": {}, "test": {"split": "dev"}}},
             {"name": "sid", "kind": "classification", "batch_size": 8, "num_buckets": 1, "projection_dim": 16,
              "data": {"type": "corpus", "corpus_dir": str(corpus_dir), "task": "sid"}, "splits": {"dev": {}}}]
    return write_train_config(root / "config.yaml", corpus_dir, root / "run", tasks=tasks,
                              optimizer={"steps": STEPS, "beta": 0.0, "encoder_lr": 5e-4, "head_lr": 1e-2},
                              finetune={"early_checkpoints": [1 / 3, 2 / 3]},   # steps 2 and 4
                              dev_scoring={"every": 2, "keep_best": True, "batch_size": 16, "num_buckets": 1})


@pytest.fixture(scope="module")
def scored_run(demo_corpus_tiny, tmp_path_factory):
    path = _config(demo_corpus_tiny, tmp_path_factory.mktemp("dev_scoring"))
    return path, train(load_train_config(path))


def _weights(directory):
    return load_file(str(Path(directory) / "model.safetensors"))


def test_dev_metrics_are_logged_at_their_steps_and_the_best_step_is_kept(scored_run):
    _, result = scored_run
    out = result.output_dir
    records = read_metrics(out)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1)) and all("loss" in r for r in records)
    dev = {r["step"]: (r["dev/pr/error_rate"], r["dev/sid/accuracy"]) for r in records if "dev/pr/error_rate" in r}
    assert sorted(dev) == [2, 4, 6] and all(("dev/sid/accuracy" in r) == (r["step"] in dev) for r in records)
    assert all(0.0 <= accuracy <= 1.0 and error >= 0.0 for error, accuracy in dev.values())
    # best: the highest mean of accuracy and 1 - error rate, the earliest of equals
    scores = {step: ((1 - error) + accuracy) / 2 for step, (error, accuracy) in dev.items()}
    best = min(step for step in scores if scores[step] == max(scores.values()))
    assert result.best_dev_step == best
    saved = json.loads((out / "dev_scores.json").read_text())["scores"]
    assert [(e["step"], e["tasks"]["pr"]["error_rate"], e["tasks"]["sid"]["accuracy"]) for e in saved] == \
        [(step, *dev[step]) for step in (2, 4, 6)]
    # the best-dev encoder is the encoder of that step (early exports hold steps 2 and 4)
    assert result.best_dev_dir == out / "encoder_best_dev"
    that_step = out / "encoder" if best == STEPS else out / "early" / f"step_{best:06d}"
    expected, kept = _weights(that_step), _weights(result.best_dev_dir)
    assert expected.keys() == kept.keys()
    for key in expected:
        np.testing.assert_array_equal(kept[key], expected[key], err_msg=key)


def test_summary_has_each_task_s_dev_and_test_metrics(scored_run):
    _, result = scored_run
    records = {r["step"]: r for r in read_metrics(result.output_dir)}
    best = records[result.best_dev_step]
    pr, sid = result.task_scores["pr"], result.task_scores["sid"]
    assert pr["metric"] == "error_rate" and sid["metric"] == "accuracy"
    assert pr["dev"] == records[STEPS]["dev/pr/error_rate"] and sid["dev"] == records[STEPS]["dev/sid/accuracy"]
    assert pr["dev_at_best_step"] == best["dev/pr/error_rate"] and sid["dev_at_best_step"] == best["dev/sid/accuracy"]
    own = {step: r["dev/pr/error_rate"] for step, r in records.items() if "dev/pr/error_rate" in r}
    assert pr["best_step"] == min(step for step in own if own[step] == min(own.values()))
    assert pr["test"] == pytest.approx(pr["dev"]) and "test" not in sid  # pr's test split is its dev split
    summary = json.loads((result.output_dir / "summary.json").read_text())
    assert summary["task_scores"] == result.task_scores and summary["best_dev_step"] == result.best_dev_step
    assert summary["best_dev_dir"] == str(result.best_dev_dir)
    again = train(load_train_config(scored_run[0]))  # a finished run reads its summary back
    assert again.task_scores == result.task_scores and again.best_dev_dir == result.best_dev_dir


def test_a_run_resumed_after_its_last_checkpoint_ends_with_the_same_summary(scored_run, tmp_path):
    """Killed after the last checkpoint, before the test scores, the export and the summary: the
    resumed run trains and scores no dev step, yet ends with the uninterrupted run's summary (the
    dev scores and the best-dev step are read back, the test split is scored again)."""
    config_path, reference = scored_run
    run = copy_stopped_after_last_checkpoint(reference.output_dir, tmp_path / "run")
    resumed = train(load_train_config(config_path, [f"output_dir={run}"]))
    assert resumed.resumed_from == STEPS
    assert resumed.task_scores == reference.task_scores and resumed.best_dev_step == reference.best_dev_step
    assert resumed.best_dev_dir == run / "encoder_best_dev"
    assert json.loads((run / "summary.json").read_text())["task_scores"] == reference.task_scores


def test_dev_history_mean_over_tasks_ties_and_resume(tmp_path):
    metrics = {"pr": "error_rate", "sid": "accuracy"}
    history = DevHistory(tmp_path / "dev_scores.json", 0)
    assert history.best() is None
    assert history.add(2, {"pr": 0.6, "sid": 0.5}, metrics)       # mean of 0.4 and 0.5
    assert history.add(4, {"pr": 0.2, "sid": 0.3}, metrics)       # 0.55: better, though sid is worse
    assert not history.add(6, {"pr": 0.5, "sid": 0.6}, metrics)   # 0.55 again: the earlier step stays
    assert history.best()["step"] == 4
    summary = history.task_summary({"pr": 0.25}, metrics)
    assert summary == {
        "pr": {"metric": "error_rate", "dev": 0.5, "dev_at_best_step": 0.2, "best_step": 4, "test": 0.25},
        "sid": {"metric": "accuracy", "dev": 0.6, "dev_at_best_step": 0.3, "best_step": 6}}
    resumed = DevHistory(tmp_path / "dev_scores.json", 5)           # resumed from the checkpoint of step 5
    assert [e["step"] for e in resumed.entries] == [2, 4] and resumed.best()["step"] == 4
    assert [e["step"] for e in json.loads((tmp_path / "dev_scores.json").read_text())["scores"]] == [2, 4]


def test_a_corpus_task_reads_its_dev_and_test_splits(demo_corpus_tiny, tmp_path):
    config = load_train_config(_config(demo_corpus_tiny, tmp_path), ["tasks.0.splits={dev: {}, test: {}}"])
    definition = config.tasks[0].definition()
    assert {name: data.split for name, data in definition.splits.items()} == {"train": "train", "dev": "dev",
                                                                             "test": "test"}
    sizes = {split: len(definition.open(split)[0]) for split in ("train", "dev", "test")}
    assert sizes == {"train": 30, "dev": 10, "test": 10}


@pytest.mark.parametrize("override, message", [
    ("tasks.0.splits={train: {}}", "tasks[0].splits='train', expected dev or test (the train split is data)"),
    ("tasks.0.splits={dev: {pathz: x}}", "tasks[0].splits.dev.pathz: not a key of data (known: "),
    ("tasks.0.splits={dev: {task: zz}}", "tasks[0].splits.dev.task='zz', expected one of pr, asr"),
    ("tasks.0.splits={dev: 3}", "tasks[0].splits.dev=3, expected a mapping of data keys laid over data"),
    ("tasks.1.splits=null", None),   # sid without a split: allowed
])
def test_bad_splits_are_one_line_errors(demo_corpus_tiny, tmp_path, override, message):
    path = _config(demo_corpus_tiny, tmp_path)
    if message is None:
        load_train_config(path, [override])
        return
    with pytest.raises(ConfigError) as info:
        load_train_config(path, [override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_splits_on_a_self_supervised_task_and_dev_scoring_without_dev_are_errors():
    demo = Path(__file__).parents[1] / "configs"
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.splits=\['dev'\], expected no splits for a hubert task"):
        load_train_config(demo / "demo_hubert.yaml", ["tasks.0.splits={dev: {}}"])
    with pytest.raises(ConfigError, match=r"dev_scoring\.every=5, expected a task with a dev split to score"):
        load_train_config(demo / "demo_pr.yaml", ["dev_scoring.every=5"])
