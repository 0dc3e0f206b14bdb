"""Where a training task's utterances and labels come from: `DataConfig`, a task's `data` section.

`DataConfig.source()` opens what it names (the shipped synthetic corpus, a manifest, a Hugging
Face dataset or a TFDS dataset) as an audio source, with the corpus's own label spec when the
corpus fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from speechft_jax.config_loading import check
from speechft_jax.data.source import FileSource
from speechft_jax.errors import DataError

CORPUS_TASKS = ("pr", "asr", "sid", "ks", "style", "xl_cmn", "xl_es")
CORPUS_AUDIO = "audio"  # every utterance of a split, no labels (self-supervised objectives)


@dataclass(frozen=True)
class DataConfig:
    """Where a task's utterances and labels come from.

    type `corpus`: the synthetic corpus shipped with the project (`corpus` = preset, built on
      first use, or `corpus_dir` = an already built one) and its task `task` (pr, asr, sid, ks,
      style, or the cross-lingual phone tasks xl_cmn, xl_es), which fixes the label field and
      vocabulary, or `audio` (every utterance of the split, without labels, for the
      self-supervised objectives);
    type `manifest`: a JSONL/TSV manifest at `path` (optional `split` filter on its `split` field);
    type `hf`: a Hugging Face dataset (`path` = hub name or `save_to_disk` folder, `name` = its
      config, `split`);
    type `tfds`: a TensorFlow Datasets name at `path` with `split`.
    For `manifest`/`hf`/`tfds`, `field` names the label column; CTC vocabularies come from `vocab`
    (a file) or are built from the training split; class lists from `classes` or from the data.
    `lexicon`: a `WORD PH1 PH2 ...` file; the `field` (a word transcription) is turned into
    phones through it (SUPERB's phone recognition on LibriSpeech).
    """

    type: Literal["corpus", "manifest", "hf", "tfds"] = "corpus"
    corpus: Literal["tiny", "demo", "full"] = "demo"
    corpus_dir: str | None = None
    task: str | None = None
    path: str | None = None
    name: str | None = None
    split: str = "train"
    audio_column: str = "audio"
    field: str | None = None
    vocab: str | None = None
    vocab_kind: Literal["phone", "char", "word"] = "phone"
    classes: str | None = None
    lexicon: str | None = None
    data_dir: str | None = None

    def validate(self):
        if self.type == "corpus":
            tasks = CORPUS_TASKS + (CORPUS_AUDIO,)
            check(self.task in tasks, "task", self.task, "one of " + ", ".join(tasks))
        else:
            check(bool(self.path), "path", self.path, f"a {self.type} path or name")

    def source(self):
        """`(source, label_spec)`: the audio source, and the corpus task's label spec (None where
        the labels are not fixed by the source: a manifest, hf or tfds field, or corpus audio)."""
        if self.type == "corpus":
            from speechft_jax.data.synth import corpus_audio, corpus_task, ensure_corpus

            root = self.corpus_dir or ensure_corpus(self.corpus)
            if self.task == CORPUS_AUDIO:
                return corpus_audio(root, self.split), None
            return corpus_task(root, self.task, self.split)
        if self.type == "manifest":
            source = FileSource.from_manifest(self.path)
            if any("split" in e.fields for e in source.examples):
                source = FileSource([e for e in source.examples if e.fields.get("split") == self.split])
                if not len(source):
                    raise DataError(self.path, f"has no {self.split!r} utterances")
            return source, None
        if self.type == "hf":
            from speechft_jax.data.hf_datasets import HFDatasetSource, load_hf_dataset

            dataset = load_hf_dataset(self.path, split=self.split, config_name=self.name)
            return HFDatasetSource(dataset, audio_column=self.audio_column), None
        from speechft_jax.data.tfds_source import TFDSSource

        return TFDSSource(self.path, split=self.split, data_dir=self.data_dir, audio_key=self.audio_column), None
