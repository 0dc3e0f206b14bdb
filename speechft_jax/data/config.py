"""Where a training task's utterances and labels come from: `DataConfig`, a task's `data` section.

`DataConfig.source()` opens what it names (the shipped synthetic corpus, a manifest, a Hugging
Face dataset or a TFDS dataset) as an audio source, with the corpus's own label spec when the
corpus fixes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from speechft_jax.config_loading import Range, build, check, to_dict
from speechft_jax.data.source import FileSource
from speechft_jax.errors import DataError

CORPUS_TASKS = ("pr", "asr", "sid", "ks", "style", "xl_cmn", "xl_es")
CORPUS_AUDIO = "audio"  # every utterance of a split, no labels (self-supervised objectives)
# SUPERB's datasets as downloaded, each read from its official layout under `root` (data/superb/)
DATASET_TYPES = ("librispeech", "speech_commands", "voxceleb1", "iemocap", "fluent_commands", "quesst14")


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
    type `tfds`: a TensorFlow Datasets name at `path` with `split`;
    type `librispeech`, `speech_commands`, `voxceleb1`, `iemocap`, `fluent_commands` or `quesst14`:
      one of SUPERB's datasets in the folder a user downloaded (`root`; Speech Commands' separate
      test archive at `test_root`; IEMOCAP's test session `fold`), `split` train, dev or test,
      with SUPERB's splits and labels (data/superb/).
    For `manifest`/`hf`/`tfds`, `field` names the label column; CTC vocabularies come from `vocab`
    (a file) or are built from the training split; class lists from `classes` or from the data.
    `lexicon`: a `WORD PH1 PH2 ...` file; the `field` (a word transcription) is turned into
    phones through it (SUPERB's phone recognition on LibriSpeech).
    """

    type: Literal["corpus", "manifest", "hf", "tfds", "folder", "librispeech", "speech_commands", "voxceleb1",
                  "iemocap", "fluent_commands", "quesst14"] = "corpus"
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
    root: str | None = None
    test_root: str | None = None
    fold: Annotated[int, Range(1, 5)] = 1

    def validate(self):
        if self.type == "corpus":
            tasks = CORPUS_TASKS + (CORPUS_AUDIO,)
            check(self.task in tasks, "task", self.task, "one of " + ", ".join(tasks))
        elif self.type in DATASET_TYPES:
            check(bool(self.root), "root", self.root, f"the folder of the downloaded {self.type} dataset")
        else:
            check(bool(self.path), "path", self.path, f"a {self.type} path or name")

    def for_split(self, split: str, changes=None) -> "DataConfig":
        """This section for another split: `split` set to its name, then `changes` (a mapping of
        this section's keys, e.g. `{path: dev.jsonl}` or `{split: validation}`) laid over it;
        checked as a section of its own (`splits.<split>.<key>` in errors)."""
        return build(DataConfig, {**to_dict(self), "split": split, **dict(changes or {})}, source="",
                     prefix=f"splits.{split}.")

    def source(self):
        """`(source, label_spec)`: the audio source, and the corpus task's label spec (None where
        the labels are not fixed by the source: a manifest, hf or tfds field, or corpus audio)."""
        if self.type == "corpus":
            from speechft_jax.data.synth import corpus_audio, corpus_task, ensure_corpus

            root = self.corpus_dir or ensure_corpus(self.corpus)
            if self.task == CORPUS_AUDIO:
                return corpus_audio(root, self.split), None
            return corpus_task(root, self.task, self.split)
        if self.type in DATASET_TYPES:
            from speechft_jax.data.superb import open_dataset

            return open_dataset(self)
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
