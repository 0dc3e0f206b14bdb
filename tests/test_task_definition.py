"""One task model for training and evaluation: `TaskDefinition` is frozen, and a training task and
the demo corpus's evaluation task of the same name read the same data with the same labels."""

from __future__ import annotations

import dataclasses

import pytest

from speechft_jax.data.config import DataConfig
from speechft_jax.data.synth import corpus_task
from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.demo_tasks import demo_task
from speechft_jax.evaluate.runner import probe_spec
from speechft_jax.tasks.definition import HeadSpec, TaskDefinition
from speechft_jax.train.config import TaskConfig


def test_a_definition_is_immutable(demo_corpus_tiny):
    definition = demo_task(demo_corpus_tiny, "pr")
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.kind = "classification"
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.head.kind = "bilstm"
    with pytest.raises(TypeError):
        definition.splits["train"] = DataConfig(task="asr")
    splits = {"train": DataConfig(task="sid")}
    built = TaskDefinition("sid", "classification", splits)
    splits["dev"] = DataConfig(task="sid", split="dev")  # the caller's dict was copied
    assert list(built.splits) == ["train"] and built.metric == "accuracy"
    with pytest.raises(ConfigError, match="splits"):
        TaskDefinition("sid", "classification", {"validation": DataConfig(task="sid")})


@pytest.mark.parametrize("name,kind", [("pr", "ctc"), ("asr", "ctc"), ("sid", "classification")])
def test_training_and_evaluation_share_the_labels_and_train_source(demo_corpus_tiny, name, kind):
    data = DataConfig(type="corpus", corpus_dir=str(demo_corpus_tiny), task=name)
    trained = TaskConfig(name=name, kind=kind, data=data).definition()
    evaluated = demo_task(demo_corpus_tiny, name)
    assert (trained.name, trained.kind, trained.metric) == (evaluated.name, evaluated.kind, evaluated.metric)
    assert trained.labels == evaluated.labels
    assert trained.splits["train"] == evaluated.splits["train"]
    (train_source, train_spec), (eval_source, eval_spec) = trained.open("train"), evaluated.open("train")
    assert train_spec == eval_spec
    assert [e.path for e in train_source.examples] == [e.path for e in eval_source.examples]
    # what the probes read is what the corpus has, split by split
    for split in ("train", "dev", "test"):
        source, spec = evaluated.open(split)
        expected_source, expected_spec = corpus_task(demo_corpus_tiny, name, split)
        assert spec == expected_spec and source.examples == expected_source.examples


def test_the_probe_head_comes_from_the_definition(demo_corpus_tiny):
    asr = demo_task(demo_corpus_tiny, "asr")
    spec = probe_spec(asr, asr.open("train")[1])
    assert (spec.kind, spec.head, spec.lstm_layers, spec.metric) == ("ctc", "bilstm", 2, asr.metric)
    assert demo_task(demo_corpus_tiny, "pr").head == HeadSpec("linear", lstm_layers=2)
    task = TaskConfig(name="pr", kind="ctc", head="bilstm", lstm_units=32, lstm_layers=1, head_dropout=0.1,
                      data=DataConfig(task="pr"))
    assert task.definition().head == HeadSpec("bilstm", 32, 1, 0.1, 256)
