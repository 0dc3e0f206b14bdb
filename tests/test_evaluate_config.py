"""Evaluation files (evaluate/config.py): tasks declared in YAML, their splits, `root`, and the
one-line errors; the shipped files parse, and the demo's file declares the built-in demo tasks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.config import load_eval_config
from speechft_jax.evaluate.demo_tasks import EVAL_TASKS, QBE, demo_eval_tasks, demo_task
from speechft_jax.evaluate.superb import SUPERB_TASKS

CONFIGS = Path(__file__).parents[1] / "configs"
SHIPPED = sorted([*(CONFIGS / "eval").glob("*.yaml"), *(CONFIGS / "superb").glob("*.yaml")])


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_evaluation_files_parse(path):
    config, dirs = load_eval_config(path)
    assert config.tasks and dirs == [path.parent.resolve()]
    if path.parent.name == "superb":  # SUPERB's files need their dataset's folder, and only that
        assert config.root is None and config.encoder == "facebook/hubert-base-ls960"
        with pytest.raises(ConfigError, match="data.root is missing"):
            config.eval_tasks(dirs)


def test_the_demo_file_declares_the_built_in_demo_tasks(demo_corpus_tiny):
    config, dirs = load_eval_config(CONFIGS / "eval" / "demo.yaml", [f"tasks.{i}.data.corpus_dir={demo_corpus_tiny}"
                                                                      for i in range(10)])
    built_ins = {t.name: t for t in demo_eval_tasks(demo_corpus_tiny, EVAL_TASKS + (QBE,), config.probe)}
    assert set(config.task_names) == set(built_ins)
    for task in config.eval_tasks(dirs):
        assert task.definition == demo_task(demo_corpus_tiny, task.name), task.name
        assert task.superb == built_ins[task.name].superb, task.name
    assert sorted(t.superb for t in built_ins.values()) == sorted(SUPERB_TASKS)  # all ten kinds of SUPERB task


def test_splits_train_as_written_dev_and_test_renamed_with_their_changes(tmp_path):
    (tmp_path / "all.jsonl").write_text("")
    (tmp_path / "held_out.jsonl").write_text("")
    path = write(tmp_path / "eval.yaml", {"tasks": [
        {"name": "cmd", "kind": "classification", "data": {"type": "manifest", "path": "all.jsonl", "field": "label"},
         "splits": {"test": {"path": "held_out.jsonl", "split": "test"}}, "probe": {"steps": 7}},
        {"name": "spk", "kind": "classification", "data": {"type": "hf", "path": "some/dataset", "split": "train.100",
                                                           "field": "speaker"},
         "splits": {"dev": {"split": "validation"}}}]})
    config, dirs = load_eval_config(path)
    cmd, spk = config.eval_tasks(dirs)
    assert {s: (d.path, d.split) for s, d in cmd.definition.splits.items()} == {
        "train": (str(tmp_path / "all.jsonl"), "train"), "dev": (str(tmp_path / "all.jsonl"), "dev"),
        "test": (str(tmp_path / "held_out.jsonl"), "test")}
    assert {s: d.split for s, d in spk.definition.splits.items()} == {"train": "train.100", "dev": "validation",
                                                                      "test": "test"}
    assert spk.definition.splits["train"].path == "some/dataset"  # a hub name, not a local path
    assert cmd.probe.steps == 7 and spk.probe == config.probe  # a task's own settings, else the file's


def test_root_fills_each_dataset_task_and_names_select_tasks(tmp_path):
    (tmp_path / "ks").mkdir()
    path = write(tmp_path / "eval.yaml", {"root": "ks", "tasks": [
        {"name": "ks", "kind": "classification", "data": {"type": "speech_commands"}},
        {"name": "er", "kind": "classification", "data": {"type": "iemocap", "root": "ks", "fold": 2}}]})
    config, dirs = load_eval_config(path)
    (er,) = config.eval_tasks(dirs, ["er"])
    assert er.definition.splits["test"].root == str(tmp_path / "ks") and er.definition.splits["dev"].fold == 2
    assert config.eval_tasks(dirs)[0].definition.splits["train"].root == str(tmp_path / "ks")
    with pytest.raises(ConfigError, match=r"task 'sid': not in the evaluation file \(it has ks, er\)"):
        config.eval_tasks(dirs, ["sid"])


@pytest.mark.parametrize("task, message", [
    ({"name": "a", "kind": "ctc", "data": {"type": "manifest", "path": "m.jsonl"}}, r"tasks\[0\]\.data\.field=None"),
    ({"name": "a", "kind": "classification", "metric": "wer", "data": {"type": "corpus", "task": "ks"}},
     r"metric='wer', expected one of accuracy for a classification task"),
    ({"name": "a", "kind": "qbe", "data": {"type": "manifest", "path": "m.jsonl", "field": "x"}},
     r"data.type='manifest', expected one of corpus, quesst14 for a qbe task"),
    ({"name": "a", "kind": "ctc", "data": {"type": "corpus", "task": "pr"}, "splits": {"valid": {}}},
     r"splits='valid', expected one of train, dev, test"),
    ({"name": "a", "kind": "ctc", "data": {"type": "corpus", "task": "pr"}, "splits": {"dev": {"pth": "x"}}},
     r"unknown key splits\.dev\.pth"),
    ({"name": "a", "kind": "regression", "data": {"type": "corpus", "task": "pr"}}, r"tasks\[0\]\.kind='regression'"),
])
def test_bad_tasks_are_one_line_errors_naming_the_key(tmp_path, task, message):
    path = write(tmp_path / "eval.yaml", {"tasks": [task]})
    with pytest.raises(ConfigError, match=message) as err:
        load_eval_config(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_duplicate_task_names_and_set_on_list_items(tmp_path):
    task = {"name": "a", "kind": "ctc", "data": {"type": "corpus", "task": "pr"}}
    path = write(tmp_path / "eval.yaml", {"tasks": [task, dict(task)]})
    with pytest.raises(ConfigError, match="distinct task names"):
        load_eval_config(path)
    config, _ = load_eval_config(path, ["tasks.1.name=b", "tasks.1.probe.steps=3"])
    assert config.task_names == ("a", "b") and config.tasks[1].probe == dataclasses.replace(config.probe, steps=3)
