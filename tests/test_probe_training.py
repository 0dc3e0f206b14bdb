"""The probe engine: cached and on-the-fly probes agree, the mode switch, the disk cache, K encoders x
learning rates trained together, and exact resume from a work folder."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

import speechft_jax as sj
from conftest import tiny_encoder_config
from speechft_jax.evaluate.demo_tasks import demo_task
from speechft_jax.evaluate.frozen_encoders import single_encoder
from speechft_jax.evaluate.probe_settings import ProbeSettings
from speechft_jax.evaluate.probe_training import train_probes
from speechft_jax.evaluate.runner import probe_spec
from speechft_jax.sweep.features import merged_encoders

SPLITS = ("train", "dev", "test")
# one padded length per split and few steps: every program compiles once or twice
SETTINGS = ProbeSettings(steps=6, learning_rates=(1e-3, 1e-2), batch_size=8, num_buckets=1, eval_every=3)


@pytest.fixture(scope="module")
def encoders():
    """theta_0 and a theta_ft with its own weights (and the same CNN, as stable fine-tuning leaves it)."""
    config = tiny_encoder_config()
    base, tuned = sj.init_encoder(config, seed=0), sj.init_encoder(config, seed=1)
    tuned.params["feature_extractor"] = base.params["feature_extractor"]
    return base, tuned


def _task(corpus, name="sid"):
    definition = demo_task(corpus, name)
    splits = {split: definition.open(split) for split in SPLITS}
    return probe_spec(definition, splits["train"][1]), splits


@pytest.fixture
def extractions(monkeypatch):
    """The `desc` of every feature extraction into the cache (a cache hit starts none)."""
    import speechft_jax.evaluate.features as features

    calls, real = [], features.encode_source

    def counting(*args, **kwargs):
        calls.append(kwargs["desc"])
        return real(*args, **kwargs)

    monkeypatch.setattr(features, "encode_source", counting)
    return calls


def test_on_the_fly_and_cached_probes_agree_and_auto_picks_by_budget(encoders, demo_corpus_tiny, tmp_path,
                                                                     caplog, extractions):
    spec, splits = _task(demo_corpus_tiny)
    frozen = single_encoder(encoders[0])
    caplog.set_level(logging.INFO, logger="speechft_jax.evaluate.probe_training")
    (fly,) = train_probes(spec, frozen, splits, SETTINGS, cache_dir=tmp_path / "cache", cache_budget_gb=1e-6,
                          progress=False)
    assert "probe sid: on the fly (features would take 2.4 MB > budget 1e-06 GB)" in caplog.messages
    assert extractions == [] and not (tmp_path / "cache").exists()
    (cached,) = train_probes(spec, frozen, splits, SETTINGS, cache_dir=tmp_path / "cache", progress=False)
    assert any(m.startswith("probe sid: cached (features take 2.4 MB <= budget 50 GB") for m in caplog.messages)
    assert sorted(extractions) == ["sid dev features", "sid test features", "sid train features"]
    assert fly.details.pop("mode") == "on_the_fly" and cached.details.pop("mode") == "cached"
    # Both modes feed the probes the same float16-rounded states; they differ only where the
    # encoder's float32 sums, run in batches of other sizes (8 rows here, 8 to extract), round to a
    # neighbouring float16: relative 1e-3 at most, which moves the learned weights by far less.
    assert (fly.dev, fly.test, fly.learning_rate, fly.dev_by_lr) == (cached.dev, cached.test, cached.learning_rate,
                                                                      cached.dev_by_lr)
    np.testing.assert_allclose(fly.layer_weights, cached.layer_weights, atol=2e-4)
    assert fly.details["best_step"] == cached.details["best_step"]
    assert fly.details["final_train_loss"] == pytest.approx(cached.details["final_train_loss"], rel=1e-3)
    assert all(np.isfinite(fly.details["final_train_loss"]) for r in (fly, cached))


def test_the_disk_cache_is_memory_mapped_reused_and_recomputed_when_the_source_changes(encoders, demo_corpus_tiny,
                                                                                      tmp_path, extractions):
    from speechft_jax.evaluate.features import cached_feature_sets, collect_feature_sets, feature_cache_key

    base, tuned = encoders
    corpus = shutil.copytree(demo_corpus_tiny, tmp_path / "corpus")
    frozen = merged_encoders(base, tuned.params, [0.0, 1.0], shared_cnn=True)

    def read():
        source, label_spec = demo_task(corpus, "sid").open("test")
        key = feature_cache_key("sid-test", frozen.fingerprint, base, source, label_spec, num_buckets=1)
        return cached_feature_sets(tmp_path / "cache", key, base, source, label_spec, frozen.states, num_buckets=1,
                                   desc="sid test features"), source, label_spec

    sets, source, label_spec = read()
    assert len(sets) == 2 and extractions == ["sid test features"]
    expected = collect_feature_sets(base, source, label_spec, frozen.states, num_buckets=1, desc="in memory")
    for got, want in zip(sets, expected):  # the same program's states, stored and mapped back
        assert isinstance(got.features[0].base, np.memmap)
        assert got.labels == want.labels and got.indices == want.indices == list(range(len(source)))
        for a, b in zip(got.features, want.features):
            np.testing.assert_array_equal(a, b)
    again, _, _ = read()
    assert extractions.count("sid test features") == 1 and again[1].labels == sets[1].labels  # served from disk
    records = [json.loads(line) for line in (corpus / "sid.jsonl").read_text().splitlines()]
    test_rows = [r for r in records if r["split"] == "test"]
    for row, speaker in zip(test_rows, [r["speaker"] for r in test_rows[1:] + test_rows[:1]]):
        row["speaker"] = speaker  # the same audio, other labels
    (corpus / "sid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    changed, source, label_spec = read()
    assert extractions.count("sid test features") == 2
    assert changed[0].labels == [label_spec.encode(source.fields(i), source.origin(i)) for i in range(len(source))]
    assert changed[0].labels != sets[0].labels
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_k_encoders_by_learning_rates_together_equal_the_probes_one_by_one(encoders, demo_corpus_tiny):
    base, tuned = encoders
    spec, splits = _task(demo_corpus_tiny)
    settings = ProbeSettings(steps=4, learning_rates=(1e-3, 1e-2), batch_size=8, num_buckets=1, eval_every=2)
    together = train_probes(spec, merged_encoders(base, tuned.params, [0.0, 1.0], True), splits, settings,
                            mode="on_the_fly", progress=False)
    assert len(together) == 2
    for k, alpha in enumerate([0.0, 1.0]):
        for lr in settings.learning_rates:
            (alone,) = train_probes(spec, merged_encoders(base, tuned.params, [alpha], True), splits,
                                    ProbeSettings(**{**settings.__dict__, "learning_rates": (lr,)}),
                                    mode="on_the_fly", progress=False)
            assert alone.dev == together[k].dev_by_lr[str(lr)]
            assert alone.test == together[k].details["test_by_lr"][str(lr)]
            if lr == together[k].learning_rate:  # (vmapped and single programs sum in other orders)
                np.testing.assert_allclose(alone.layer_weights, together[k].layer_weights, atol=1e-4)
                assert alone.details["final_train_loss"] == pytest.approx(together[k].details["final_train_loss"],
                                                                          rel=1e-4)


class _Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_exactly_and_other_data_starts_over(encoders, demo_corpus_tiny, tmp_path,
                                                                      monkeypatch, caplog):
    from speechft_jax.evaluate.probe_state import ProbeMetrics

    spec, splits = _task(demo_corpus_tiny)
    frozen = single_encoder(encoders[0])
    settings = ProbeSettings(**{**SETTINGS.__dict__, "steps": 7, "checkpoint_every": 2})
    (whole,) = train_probes(spec, frozen, splits, settings, mode="on_the_fly", progress=False)

    real_add, seen = ProbeMetrics.add, []

    def add(self, step, losses, dev=None):
        seen.append(step)
        if step == stop_at:
            raise _Interrupted
        real_add(self, step, losses, dev)

    monkeypatch.setattr(ProbeMetrics, "add", add)
    stop_at, work = 5, tmp_path / "probes" / "sid"  # checkpoints at 2 and 4: the run resumes after step 4
    with pytest.raises(_Interrupted):
        train_probes(spec, frozen, splits, settings, mode="on_the_fly", work_dir=work, progress=False)
    assert sorted(p.name for p in (work / "checkpoints").iterdir() if p.name.isdigit()) == ["2", "4"]
    stop_at, seen[:] = None, []
    (resumed,) = train_probes(spec, frozen, splits, settings, mode="on_the_fly", work_dir=work, progress=False)
    assert seen == [5, 6, 7] and resumed.to_json() == whole.to_json()  # bit-identical
    logged = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [3, 6, 7]  # the evaluations (and every 10th step), once each
    assert set(logged[0]) == {"step", "train_loss/0/0.001", "train_loss/0/0.01", "dev_accuracy/0/0.001",
                              "dev_accuracy/0/0.01"}
    # each probe keeps its best dev evaluation (the earliest of equals); the best learning rate's is reported
    for lr in settings.learning_rates:
        devs = {r["step"]: r[f"dev_accuracy/0/{lr:g}"] for r in logged}
        assert resumed.dev_by_lr[str(lr)] == max(devs.values())
    devs = {r["step"]: r[f"dev_accuracy/0/{resumed.learning_rate:g}"] for r in logged}
    assert resumed.dev == max(resumed.dev_by_lr.values())
    assert resumed.details["best_step"] == min(step for step, dev in devs.items() if dev == resumed.dev)

    # the same folder for other data (dev and test swapped): a warning, and a run from step 1
    caplog.set_level(logging.WARNING, logger="speechft_jax.evaluate.probe_state")
    seen[:] = []
    other = dict(splits, dev=splits["test"], test=splits["dev"])
    train_probes(spec, frozen, other, settings, mode="on_the_fly", work_dir=work, progress=False)
    assert seen == list(range(1, 8))
    assert any("holds probes of other data, encoders or settings; starting over" in m for m in caplog.messages)


def test_wer_scores_the_words_between_delimiters():
    """A CTC probe with a word delimiter (metric wer) scores words: the runs of ids between delimiters."""
    from speechft_jax.evaluate.probe import ProbeSpec
    from speechft_jax.evaluate.probe_scoring import words as _words

    assert _words("1 3 4 1 1 5 1", 1) == "3_4 5" and _words("11 1 12", 1) == "11 12" and _words("", 1) == ""
    assert ProbeSpec("asr", "ctc", 9, word_delimiter_id=1).metric == "wer"
    assert ProbeSpec("asr", "ctc", 9).metric == "error_rate" and ProbeSpec("ks", "classification", 3).metric == "accuracy"
