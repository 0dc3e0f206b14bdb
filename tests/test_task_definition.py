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
from speechft_jax.tasks.definition import HeadSpec, LabelDefinition, TaskDefinition
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
    assert (trained.name, trained.kind) == (evaluated.name, evaluated.kind)
    # the probes score the demo's ASR by SUPERB's WER; training reports its default, the token error rate
    assert trained.metric == ("error_rate" if kind == "ctc" else "accuracy")
    assert evaluated.metric == ("wer" if name == "asr" else trained.metric)
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


def test_splits_that_share_an_unsplit_manifest_are_refused(tmp_path, data_wav_factory):
    from speechft_jax.data.manifest import write_manifest
    from speechft_jax.errors import DataError

    data_wav_factory("a.wav", seconds=0.1)
    write_manifest(tmp_path / "all.jsonl", [{"path": "a.wav", "intent": i} for i in ("on", "off")])
    data = DataConfig(type="manifest", path=str(tmp_path / "all.jsonl"), field="intent")
    labels = LabelDefinition.of(data)
    alone = TaskDefinition("cmd", "classification", {"train": data}, labels=labels)
    assert len(alone.open("train")[0]) == 2  # training on one manifest without a split column still works
    shared = TaskDefinition("cmd", "classification", {"train": data, "dev": data.for_split("dev")}, labels=labels)
    with pytest.raises(DataError, match="all.jsonl: manifest has no 'split' field, and the dev/test splits read it "
                                        "too, so training would include their utterances"):
        shared.open("train")
    with pytest.raises(DataError, match="all.jsonl: manifest has no 'split' field to pick the 'dev' utterances"):
        shared.open("dev")
    write_manifest(tmp_path / "dev.jsonl", [{"path": "a.wav", "intent": "on"}])
    dev = data.for_split("dev", {"path": str(tmp_path / "dev.jsonl")})
    own = TaskDefinition("cmd", "classification", {"train": data, "dev": dev}, labels=labels)
    source, spec = own.open("dev")
    assert len(source) == 1 and spec.classes.names == ("off", "on")  # classes built from train


def test_a_folder_task_reads_the_labels_of_its_kind(tmp_path, data_wav_factory):
    data_wav_factory("words/yes/1.wav", seconds=0.1)
    (tmp_path / "words/yes/1.txt").write_text("y e s\n")
    folder = DataConfig(type="folder", path=str(tmp_path / "words"))
    classify = TaskConfig(name="ks", kind="classification", data=folder).definition()
    assert classify.labels.field == "label" and classify.splits["train"].labels_from == "folder"
    source, spec = classify.open("train")
    assert spec.field == "label" and spec.classes.names == ("yes",)
    ctc = TaskDefinition("asr", "ctc", {"train": dataclasses.replace(folder, vocab_kind="char")})
    source, spec = ctc.open("train")
    assert spec.field == "text" and source.fields(0) == {"text": "y e s"}
    with pytest.raises(ConfigError, match="task 'asr': data.labels_from='none', expected folder or sidecar for a "
                                          "ctc task"):
        TaskDefinition("asr", "ctc", {"train": dataclasses.replace(folder, labels_from="none")})
    from speechft_jax.config_loading import build
    with pytest.raises(ConfigError, match=r"^data.labels_from='none', expected folder or sidecar for a ctc task$"):
        build(TaskConfig, {"name": "asr", "kind": "ctc",
                           "data": {"type": "folder", "path": "x", "labels_from": "none"}}, source="")
