"""AudioLoader: batch format, bucketing, seeded order, exact resume, sharding, bad input."""

import json
import warnings

import numpy as np
import pytest

from speechft_jax.data.augment import AugmentConfig
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import ClassLabel, SequenceLabels
from speechft_jax.data.loader import AudioLoader, LoaderConfig, make_global_batch
from speechft_jax.data.manifest import write_manifest
from speechft_jax.data.source import FileSource
from speechft_jax.data.synth import corpus_task, task_labels
from speechft_jax.data.vocab import ClassLabels, Vocabulary


def _multitask(root, split="train"):
    source, _ = corpus_task(root, "sid", split)
    phones = task_labels(root, "pr", key="phones")
    speaker = task_labels(root, "sid", key="speaker")
    return source, [phones, speaker]


def _take(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_batch_format_multitask(demo_corpus_tiny):
    source, labels = _multitask(demo_corpus_tiny)
    loader = AudioLoader(source, labels, LoaderConfig(batch_size=4, num_buckets=2, train=False),
                         process_index=0, process_count=1)
    batches = list(loader)
    assert len({b["audio"].shape[1] for b in batches}) <= 2  # one compile per bucket
    seen = []
    for b in batches:
        n, t = b["audio"].shape
        assert n == 4 and b["audio"].dtype == np.float32 and b["audio_mask"].dtype == np.int32
        assert b["example_mask"].dtype == bool and b["speaker"].shape == (4,)
        assert b["phones"].dtype == np.int32 and b["phones"].shape[1] % 8 == 0
        for r in range(n):
            i = b["example_index"][r]
            if not b["example_mask"][r]:
                assert i == -1 and b["audio_mask"][r].sum() == 0 and b["phones_lengths"][r] == 0
                continue
            seen.append(int(i))
            fields = source.fields(i)
            length = b["phones_lengths"][r]
            assert labels[0].vocab.decode(b["phones"][r, :length]) == fields["phones"]
            assert (b["phones"][r, length:] == labels[0].vocab.pad_id).all()
            assert b["phones_mask"][r].sum() == length
            assert labels[1].classes.names[b["speaker"][r]] == fields["speaker"]
            valid = b["audio_mask"][r].sum()
            assert abs(valid - source.num_samples(i)) <= 1  # evaluation never crops
            assert (b["audio"][r, valid:] == 0).all()
    assert sorted(seen) == list(range(len(source)))
    summary = loader.summary()
    assert 0 <= summary["padding_fraction"] < 0.5 and summary["utterances"] == len(source)


def test_default_ctc_keys(demo_corpus_tiny):
    source, label = corpus_task(demo_corpus_tiny, "asr", "dev")
    (b,) = _take(AudioLoader(source, [label], batch_size=2, train=False,
                             process_index=0, process_count=1), 1)
    assert {"labels", "label_mask", "label_lengths"} <= b.keys()


def test_order_depends_only_on_seed(demo_corpus_tiny):
    source, labels = _multitask(demo_corpus_tiny)
    cfg = dict(batch_size=3, seed=5, process_index=0, process_count=1)
    a = _take(AudioLoader(source, labels, **cfg), 6)
    b = _take(AudioLoader(source, labels, **cfg), 6)
    c = _take(AudioLoader(source, labels, **{**cfg, "seed": 6}), 6)
    assert all(_same(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x["example_index"], y["example_index"]) for x, y in zip(a, c))


@pytest.mark.parametrize("where", ["mid-epoch", "epoch-boundary"])
def test_state_restores_exactly_with_augmentation(demo_corpus_tiny, where):
    source, labels = _multitask(demo_corpus_tiny)
    cfg = LoaderConfig(batch_size=4, seed=2, augment=AugmentConfig(
        speed_factors=(0.9, 1.0, 1.1), pitch_semitones=2.0, noise_snr_db=(5.0, 20.0)))
    first = AudioLoader(source, labels, cfg, process_index=0, process_count=1)
    # Resume mid-epoch, or one batch before the end so the next batches cross into epoch 1.
    skip = 3 if where == "mid-epoch" else first.num_batches() - 1
    it = iter(first)
    for _ in range(skip):
        next(it)
    state = json.loads(json.dumps(first.get_state()))  # survives a checkpoint round trip
    expected = [next(it) for _ in range(3)]
    resumed = AudioLoader(source, labels, cfg, process_index=0, process_count=1)
    resumed.set_state(state)
    assert all(_same(x, y) for x, y in zip(expected, _take(resumed, 3)))
    with pytest.raises(ValueError, match="seed"):
        AudioLoader(source, labels, LoaderConfig(batch_size=4, seed=3), process_index=0,
                    process_count=1).set_state(state)


def test_process_shards_form_the_global_batch(demo_corpus_tiny):
    source, labels = _multitask(demo_corpus_tiny)
    cfg = LoaderConfig(batch_size=2, seed=1, repeat=False)
    shards = [list(AudioLoader(source, labels, cfg, process_index=p, process_count=2))
              for p in range(2)]
    whole = list(AudioLoader(source, labels, LoaderConfig(batch_size=4, seed=1, repeat=False),
                             process_index=0, process_count=1))
    assert len(shards[0]) == len(shards[1]) == len(whole)
    for a, b, g in zip(*shards, whole):
        assert a["audio"].shape == b["audio"].shape  # every process runs the same bucket
        assert all(np.array_equal(np.concatenate([a[k], b[k]]), g[k]) for k in g)


def test_make_global_batch_single_process(demo_corpus_tiny):
    import jax
    from jax.sharding import Mesh

    source, labels = _multitask(demo_corpus_tiny)
    (batch,) = _take(AudioLoader(source, labels, batch_size=2, train=False,
                                 process_index=0, process_count=1), 1)
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    out = make_global_batch(batch, mesh)
    assert out["audio"].shape == batch["audio"].shape
    assert np.array_equal(np.asarray(out["phones"]), batch["phones"])


def test_training_crop_and_ctc_filter(demo_corpus_tiny):
    root = demo_corpus_tiny
    source, label = corpus_task(root, "sid", "train")
    crop = AudioLoader(source, [label], LoaderConfig(batch_size=4, max_length=16000, repeat=False),
                       process_index=0, process_count=1)
    batches = list(crop)
    assert {b["audio"].shape[1] for b in batches} == {16000}
    assert sum(int(b["example_mask"].sum()) for b in batches) == len(source)
    source, label = corpus_task(root, "pr", "train")
    longest = max(source.num_samples(i) for i in range(len(source)))
    limit = sorted(source.num_samples(i) for i in range(len(source)))[len(source) // 2]
    with pytest.warns(UserWarning, match="left out of training"):
        ctc = AudioLoader(source, [label], LoaderConfig(batch_size=4, max_length=limit,
                                                        repeat=False),
                          process_index=0, process_count=1)
    kept = sum(int(b["example_mask"].sum()) for b in ctc)
    assert kept == sum(source.num_samples(i) <= limit for i in range(len(source))) < len(source)
    assert longest > limit


def _manifest(tmp_path, data_wav_factory, rows):
    data_wav_factory("ok.wav", seconds=0.5)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage" * 50)
    write_manifest(tmp_path / "m.jsonl", rows)
    return FileSource.from_manifest(tmp_path / "m.jsonl")


def test_corrupt_file_mid_epoch(tmp_path, data_wav_factory):
    rows = [{"path": "ok.wav", "duration": 0.5, "spk": "a"},
            {"path": "corrupt.wav", "duration": 0.5, "spk": "b"}]
    source = _manifest(tmp_path, data_wav_factory, rows)
    label = ClassLabel("spk", ClassLabels(("a", "b")))
    loader = AudioLoader(source, [label], batch_size=2, train=False, process_index=0,
                         process_count=1)
    with pytest.raises(DataError, match=r"m.jsonl:2 \(.*corrupt.wav\): cannot decode audio"):
        list(loader)
    loader = AudioLoader(source, [label], batch_size=2, train=False, skip_bad=True,
                         process_index=0, process_count=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (batch,) = list(loader)
    assert batch["example_mask"].tolist() == [True, False]
    assert any("skipped 1 bad example" in str(w.message) for w in caught)


def test_bad_labels_fail_before_training(tmp_path, data_wav_factory):
    rows = [{"path": "ok.wav", "duration": 0.5, "phones": "AH B"},
            {"path": "ok.wav", "duration": 0.5, "phones": "AH QQ"},
            {"path": "ok.wav", "duration": 0.5, "phones": 17}]
    source = _manifest(tmp_path, data_wav_factory, rows)
    vocab = Vocabulary.build(["AH B"])
    label = SequenceLabels("phones", vocab)
    with pytest.raises(DataError, match=r"m.jsonl:2 .* phone 'QQ' is not in the vocabulary"):
        AudioLoader(source, [label], batch_size=2, process_index=0, process_count=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = AudioLoader(source, [label], batch_size=2, skip_bad=True,
                             process_index=0, process_count=1)
    assert loader.summary()["skipped"] == 2 and "skipped 2" in str(caught[0].message)
    with pytest.raises(DataError, match="missing label field 'speaker'"):
        AudioLoader(FileSource(source.examples[:1]),
                    [ClassLabel("speaker", ClassLabels(("a",)))], batch_size=1,
                    process_index=0, process_count=1)


def test_wrong_duration_is_reported(tmp_path, data_wav_factory):
    source = _manifest(tmp_path, data_wav_factory, [{"path": "ok.wav", "duration": 2.0}])
    loader = AudioLoader(source, [], batch_size=1, train=False, process_index=0, process_count=1)
    with pytest.raises(DataError, match="has 8000 samples at 16 kHz but its metadata says 32000"):
        list(loader)


def test_given_bucket_lengths(demo_corpus_tiny):
    source, label = corpus_task(demo_corpus_tiny, "sid", "dev")
    with pytest.raises(DataError, match="longer than the largest bucket 8000; add a bucket"):
        AudioLoader(source, [label], batch_size=2, bucket_lengths=(8000,), train=False,
                    process_index=0, process_count=1)
    loader = AudioLoader(source, [label], batch_size=2, bucket_lengths=(8000,), repeat=False,
                         process_index=0, process_count=1)
    assert {b["audio"].shape for b in loader} == {(2, 8000)}  # training crops to the bucket


def test_audio_shorter_than_the_receptive_field_is_named(tmp_path, data_wav_factory):
    # 0.04 s = 640 samples: enough for the standard 400-sample CNN, not for one of 700 (the
    # shipped tiny HuBERT's); with 640 < 700 its row would hold zero frames.
    data_wav_factory("clips/short.wav", seconds=0.04)
    data_wav_factory("clips/long.wav", seconds=0.5)
    source = FileSource.from_folder(tmp_path / "clips")
    assert AudioLoader(source, [], LoaderConfig(batch_size=2, train=False), process_index=0,
                       process_count=1).summary()["utterances"] == 2
    strict = LoaderConfig(batch_size=2, train=False, min_samples=700)
    with pytest.raises(DataError, match=r"short.wav: audio has 640 samples at 16 kHz, fewer than the 700 "
                                        r"the encoder's CNN needs for one frame \(its receptive field is 700\)$"):
        AudioLoader(source, [], strict, process_index=0, process_count=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = AudioLoader(source, [], LoaderConfig(batch_size=2, train=False, min_samples=700, skip_bad=True),
                             process_index=0, process_count=1)
    assert loader.summary()["skipped"] == 1 and "skipped 1" in str(caught[0].message)
    (batch,) = list(loader)
    assert batch["example_mask"].tolist() == [True, False] and batch["audio_mask"][0].sum() == 8000
    # training speeds utterances up by as much as 1.1: 720 samples would become 655
    data_wav_factory("sped/a.wav", seconds=0.045)
    with pytest.raises(DataError, match="a.wav: audio has 720 samples .* fewer than the 770 .* once sped up"):
        AudioLoader(FileSource.from_folder(tmp_path / "sped"), [],
                    LoaderConfig(batch_size=1, min_samples=700, augment=AugmentConfig(speed_factors=(0.9, 1.0, 1.1))),
                    process_index=0, process_count=1)


def test_a_batch_larger_than_the_dataset_is_an_error_not_a_silent_hang(tmp_path, data_wav_factory):
    for i in range(3):
        data_wav_factory(f"clips/{i}.wav", seconds=0.5, seed=i)
    source = FileSource.from_folder(tmp_path / "clips")
    # training drops each bucket's part-filled batch: with 3 utterances and 4 rows, every epoch
    # would be empty and a repeating loader would spin forever
    with pytest.raises(DataError, match=r"^FileSource: 3 usable utterance\(s\) make no batch of 4 with drop_remainder"):
        AudioLoader(source, [], LoaderConfig(batch_size=4, drop_remainder=True), process_index=0, process_count=1)
    with pytest.raises(DataError, match=r"^spk clips: .* no batch of 4 \(2 per process x 2 processes\) with drop_rem"):
        AudioLoader(source, [], LoaderConfig(batch_size=2, drop_remainder=True), process_index=1, process_count=2,
                    name="spk clips")
    # without drop_remainder the batch is filled with masked rows
    assert AudioLoader(source, [], LoaderConfig(batch_size=4), process_index=0, process_count=1).num_batches() == 1


def test_a_stream_too_short_for_one_batch_is_an_error(tmp_path):
    from speechft_jax.data.streaming import StreamingLoader, StreamItem

    def stream():
        return [StreamItem(lambda: np.full(8000, 0.1, np.float32), {}, f"item{k}") for k in range(3)]

    loader = StreamingLoader(stream, [], LoaderConfig(batch_size=4, bucket_lengths=(8000,), drop_remainder=True,
                                                      repeat=False), process_index=0, process_count=1)
    with pytest.raises(DataError, match=r"a whole pass over the stream \(3 item\(s\)\) made no batch of 4"):
        list(loader)


def test_a_training_task_names_itself_when_its_data_is_too_small_or_too_short(tmp_path, data_wav_factory):
    from speechft_jax.data.config import DataConfig
    from speechft_jax.train.config import TaskConfig
    from speechft_jax.train.task_data import build_task_data

    rows = [{"path": data_wav_factory(f"{i}.wav", seconds=0.5, seed=i).name, "spk": "ab"[i % 2]} for i in range(3)]
    write_manifest(tmp_path / "m.jsonl", rows)
    task = TaskConfig(name="spk", kind="classification", batch_size=64,
                      data=DataConfig(type="manifest", path=str(tmp_path / "m.jsonl"), field="spk"))
    with pytest.raises(DataError, match=r"^tasks.spk.data \(.*m.jsonl, split train\): 3 usable utterance\(s\) "
                                        r"make no batch of 64 \(32 per process x 2 processes\) with drop_rem"):
        build_task_data(task, seed=0, normalize=False, process_index=0, process_count=2)
    data_wav_factory("0.wav", seconds=0.04)  # 640 samples, the receptive field is 700
    with pytest.raises(DataError, match=r"m.jsonl:1 \(.*0.wav\): audio has 640 samples .* fewer than the 700"):
        build_task_data(task, seed=0, normalize=False, process_index=0, process_count=1, min_samples=700)
