"""TFDS sources under `tfds.testing.mock_data` (skipped without the tfds extra and TensorFlow)."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from speechft_jax.data.errors import DataError  # noqa: E402
from speechft_jax.data.labels import ClassLabel  # noqa: E402
from speechft_jax.data.loader import AudioLoader  # noqa: E402
from speechft_jax.data.streaming import StreamingLoader  # noqa: E402
from speechft_jax.data.tfds_source import TFDSSource, tfds_stream  # noqa: E402


def _examples(n=6):
    rng = np.random.default_rng(0)
    return [{"audio": (rng.standard_normal(8000 + 1600 * (i % 3)) * 3000).astype(np.int16),
             "label": np.int64(i % 12)} for i in range(n)]


def test_random_mock_audio_is_reported_as_too_short():
    # mock_data's random audio is a few dozen samples: shorter than the CNN's receptive field.
    with tfds.testing.mock_data(num_examples=3):
        source = TFDSSource("speech_commands", split="train")
        with pytest.raises(DataError, match=r"tfds:speech_commands/train\[0\]: audio has .* fewer"):
            source.load(0)


def test_data_source_through_the_loader():
    examples = _examples()
    with tfds.testing.mock_data(as_data_source_fn=lambda self, split, **kw: examples):
        source = TFDSSource("speech_commands", split="train")
        classes = source.class_labels("label")
        assert source.fields(1) == {"label": classes.names[1]}
        loader = AudioLoader(source, [ClassLabel("label", classes)], batch_size=4, train=False,
                             process_index=0, process_count=1)
        batches = list(loader)
    got = {int(b["example_index"][r]): int(b["label"][r]) for b in batches for r in range(4)
           if b["example_mask"][r]}
    assert got == {i: i % 12 for i in range(6)}
    assert {b["audio"].shape[1] for b in batches} <= set(loader.bucket_lengths)


def test_stream_through_the_streaming_loader():
    examples = _examples()

    def as_dataset(self, split, **kwargs):
        return tf.data.Dataset.from_generator(
            lambda: iter(examples),
            output_signature={"audio": tf.TensorSpec([None], tf.int16),
                              "label": tf.TensorSpec([], tf.int64)})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        make = tfds_stream("speech_commands", split="train")
        classes = TFDSSource("speech_commands", split="train").class_labels("label")
        loader = StreamingLoader(make, [ClassLabel("label", classes)], batch_size=2,
                                 bucket_lengths=(12800,), train=False, process_index=0,
                                 process_count=1)
        batches = list(loader)
    assert [b["label"].tolist() for b in batches] == [[0, 1], [2, 3], [4, 5]]
