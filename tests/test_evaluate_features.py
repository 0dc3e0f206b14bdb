"""The evaluation feature cache: an entry is served only for the data, labels and settings it was made from."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import speechft_jax as sj
from conftest import tiny_encoder_config
from speechft_jax.data.errors import DataError
from speechft_jax.data.synth import corpus_task


@pytest.fixture(scope="module")
def bundle():
    return sj.init_encoder(tiny_encoder_config(), seed=0)


@pytest.fixture
def corpus(demo_corpus_tiny, tmp_path):
    """A copy of the tiny corpus that a test may edit."""
    return shutil.copytree(demo_corpus_tiny, tmp_path / "corpus")


@pytest.fixture
def extractions(monkeypatch):
    """The `desc` of every feature extraction the runner starts (a cache hit starts none)."""
    import speechft_jax.evaluate.runner as runner

    calls, real = [], runner.extract_feature_set

    def counting(bundle, source, label_spec, **kwargs):
        calls.append(kwargs["desc"])
        return real(bundle, source, label_spec, **kwargs)

    monkeypatch.setattr(runner, "extract_feature_set", counting)
    return calls


def _edit_manifest(path, change):
    """Rewrite a JSONL manifest: `change(records)` edits the list of records in place."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    change(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _rotate_speakers(split):
    def change(records):
        rows = [r for r in records if r["split"] == split]
        speakers = [r["speaker"] for r in rows]
        for r, speaker in zip(rows, speakers[1:] + speakers[:1]):
            r["speaker"] = speaker
    return change


def _expected_labels(corpus, task, split):
    source, spec = corpus_task(corpus, task, split)
    return [spec.encode(source.fields(i), source.origin(i)) for i in range(len(source))]


def _features(bundle, corpus, cache, split="test", task="sid"):
    from speechft_jax.evaluate.demo_tasks import demo_task
    from speechft_jax.evaluate.runner import split_features

    return split_features(bundle, demo_task(corpus, task), split, cache_dir=cache)


def test_rotated_labels_are_served_fresh(bundle, corpus, tmp_path, extractions):
    first = _features(bundle, corpus, tmp_path / "cache")
    assert first.labels == _expected_labels(corpus, "sid", "test")
    _edit_manifest(corpus / "sid.jsonl", _rotate_speakers("test"))
    rotated = _expected_labels(corpus, "sid", "test")
    assert rotated != first.labels
    second = _features(bundle, corpus, tmp_path / "cache")
    assert second.labels == rotated and len(extractions) == 2
    _features(bundle, corpus, tmp_path / "cache")  # unchanged since: a cache hit
    assert len(extractions) == 2


def test_an_unknown_label_fails_as_without_a_cache(bundle, corpus, tmp_path):
    _features(bundle, corpus, tmp_path / "cache", split="dev")

    def unknown(records):
        next(r for r in records if r["split"] == "dev")["speaker"] = "spk_nobody"

    _edit_manifest(corpus / "sid.jsonl", unknown)
    with pytest.raises(DataError) as uncached:
        _features(bundle, corpus, None, split="dev")
    with pytest.raises(DataError) as cached:
        _features(bundle, corpus, tmp_path / "cache", split="dev")
    assert "'spk_nobody' is not one of the" in str(uncached.value)
    assert str(cached.value) == str(uncached.value)


def _replace_audio(corpus):
    import soundfile as sf

    path = corpus / json.loads((corpus / "sid.jsonl").read_text().splitlines()[-1])["path"]
    audio, rate = sf.read(path)
    sf.write(path, np.ascontiguousarray(audio[::-1]), rate)


@pytest.mark.parametrize("change", ["audio", "classes", "normalize"])
def test_what_features_depend_on_is_in_the_key(bundle, corpus, tmp_path, extractions, change):
    import dataclasses

    _features(bundle, corpus, tmp_path / "cache")
    if change == "audio":  # the same manifest, another recording
        _replace_audio(corpus)
    elif change == "classes":  # the same speakers, listed in another order: other class ids
        names = (corpus / "classes" / "speakers.txt").read_text().split()
        (corpus / "classes" / "speakers.txt").write_text("\n".join(reversed(names)) + "\n")
    else:
        preprocessor = {**bundle.preprocessor, "do_normalize": not bundle.preprocessor.get("do_normalize")}
        bundle = dataclasses.replace(bundle, preprocessor=preprocessor)
    again = _features(bundle, corpus, tmp_path / "cache")
    assert len(extractions) == 2
    assert again.labels == _expected_labels(corpus, "sid", "test")


def test_a_stale_file_under_a_key_is_recomputed(bundle, corpus, tmp_path, extractions):
    """The labels and utterances stored in the file are checked on read, whatever the key says."""
    cache = tmp_path / "cache"
    _features(bundle, corpus, cache)
    (old,) = cache.iterdir()  # an entry: a folder of memory-mapped states and an index
    _edit_manifest(corpus / "sid.jsonl", _rotate_speakers("test"))
    _features(bundle, corpus, cache)
    (new,) = set(cache.iterdir()) - {old}
    shutil.rmtree(new)
    shutil.copytree(old, new)  # as if the key had missed the change
    served = _features(bundle, corpus, cache)
    assert served.labels == _expected_labels(corpus, "sid", "test") and len(extractions) == 3
