"""Hugging Face datasets (map-style and streaming) through the loaders."""

import io

import numpy as np
import pytest
import soundfile as sf

datasets = pytest.importorskip("datasets")

from speechft_jax.data.errors import DataError  # noqa: E402
from speechft_jax.data.hf_datasets import HFDatasetSource, hf_stream, load_hf_dataset  # noqa: E402
from speechft_jax.data.labels import ClassLabel, SequenceLabels  # noqa: E402
from speechft_jax.data.loader import AudioLoader, LoaderConfig  # noqa: E402
from speechft_jax.data.streaming import StreamingLoader  # noqa: E402
from speechft_jax.data.vocab import Vocabulary  # noqa: E402

WORDS = ["yes", "no", "up", "down"]


@pytest.fixture
def saved_dataset(tmp_path):
    """A dataset on disk: 8 kHz and 22.05 kHz FLAC, a ClassLabel and a text column."""
    rng = np.random.default_rng(0)
    rows = {"audio": [], "keyword": [], "text": []}
    for i in range(10):
        rate = 8000 if i % 2 else 22050
        n = int(rate * (0.3 + 0.1 * (i % 4)))
        buf = io.BytesIO()
        sf.write(buf, rng.standard_normal(n).astype(np.float32) * 0.1, rate, format="FLAC")
        rows["audio"].append({"bytes": buf.getvalue(), "path": f"{i}.flac"})
        rows["keyword"].append(i % 4)
        rows["text"].append(WORDS[i % 4])
    # Written as a plain struct and cast at the Arrow level: encoding through the Audio
    # feature would need torchcodec, which the loaders themselves never use.
    features = datasets.Features({
        "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        "keyword": datasets.ClassLabel(names=WORDS), "text": datasets.Value("string")})
    ds = datasets.Dataset.from_dict(rows, features=features)
    ds = ds.cast_column("audio", datasets.Audio())
    ds.save_to_disk(str(tmp_path / "ds"))
    return tmp_path / "ds"


def test_map_style_dataset(saved_dataset):
    source = HFDatasetSource(load_hf_dataset(saved_dataset), name="kw")
    assert source.num_samples(0) == 4800 and source.num_samples(1) == 6400
    assert source.fields(1) == {"keyword": "no", "text": "no"}
    classes = source.class_labels("keyword")
    vocab = Vocabulary.build(WORDS, kind="char")
    loader = AudioLoader(source, [ClassLabel("keyword", classes),
                                  SequenceLabels("text", vocab, key="chars")],
                         batch_size=4, train=False, process_index=0, process_count=1)
    batches = list(loader)
    rows = [(b, r) for b in batches for r in range(4) if b["example_mask"][r]]
    assert len(rows) == 10
    for b, r in rows:
        i = b["example_index"][r]
        assert b["label"][r] == i % 4
        assert abs(b["audio_mask"][r].sum() - source.num_samples(i)) <= 1
        assert vocab.decode(b["chars"][r, :b["chars_lengths"][r]]) == WORDS[i % 4]
    with pytest.raises(DataError, match="column 'sound'"):
        HFDatasetSource(load_hf_dataset(saved_dataset), audio_column="sound")


def test_streaming_dataset_resumes_exactly(saved_dataset):
    ds = load_hf_dataset(saved_dataset, streaming=True)
    vocab = Vocabulary.build(WORDS, kind="char")
    labels = [SequenceLabels("text", vocab, max_length=8), ClassLabel(
        "keyword", HFDatasetSource(load_hf_dataset(saved_dataset)).class_labels("keyword"))]
    cfg = LoaderConfig(batch_size=2, bucket_lengths=(5120, 9600), train=True, repeat=False, seed=3)

    def make():
        return StreamingLoader(lambda: hf_stream(ds, name="kw"), labels, cfg,
                               process_index=0, process_count=1)

    full = list(make())
    assert sum(int(b["example_mask"].sum()) for b in full) == 10
    assert {b["audio"].shape[1] for b in full} <= {5120, 9600}
    first = make()
    it = iter(first)
    head = [next(it) for _ in range(2)]
    state = first.get_state()
    assert state["pending"]  # a part-filled bucket is waiting
    resumed = make()
    resumed.set_state(state)
    rest = list(resumed)
    for a, b in zip(head + rest, full):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    assert len(head) + len(rest) == len(full)


def test_parquet_files_like_a_hub_dataset(saved_dataset, tmp_path):
    ds = load_hf_dataset(saved_dataset)
    (tmp_path / "pq" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))
    loaded = load_hf_dataset(tmp_path / "pq", split="train", cache_dir=str(tmp_path / "cache"))
    source = HFDatasetSource(loaded)
    assert len(source) == 10 and source.num_samples(1) == 6400
    assert source.fields(2)["keyword"] == "up"
    stream = load_hf_dataset(tmp_path / "pq", split="train", streaming=True)
    assert [item.fields["text"] for item in hf_stream(stream)][:3] == WORDS[:3]


def test_audio_folder_without_torchcodec_points_to_file_source(tmp_path, data_wav_factory):
    try:
        import torchcodec  # noqa: F401
        pytest.skip("torchcodec is installed: datasets can build audiofolders")
    except ImportError:
        pass
    data_wav_factory("af/train/a.wav", seconds=0.5)
    with pytest.raises(DataError, match="FileSource.from_folder"):
        load_hf_dataset(tmp_path / "af", split="train", cache_dir=str(tmp_path / "cache"))
