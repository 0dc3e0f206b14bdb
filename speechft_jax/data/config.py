"""Where a training task's utterances and labels come from: `DataConfig`, a task's `data` section.

`DataConfig.source()` opens what it names (the shipped synthetic corpus, a manifest, a folder of
audio files, a Hugging Face dataset, a TFDS dataset or one of SUPERB's datasets) as an audio
source, with the corpus's own label spec when the corpus fixes it. `DataConfig.resolved(dirs)`
looks its relative local paths up beside the YAML file, then in the working directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from speechft_jax.config_loading import Range, build, check, require_path, resolve_path, to_dict
from speechft_jax.data.source import FileSource
from speechft_jax.errors import DataError

CORPUS_TASKS = ("pr", "asr", "sid", "ks", "style", "xl_cmn", "xl_es", "ic", "sf", "asv", "sd")
CORPUS_AUDIO = "audio"  # every utterance of a split, no labels (self-supervised objectives)
# SUPERB's datasets as downloaded, each read from its official layout under `root` (data/superb/)
DATASET_TYPES = ("librispeech", "speech_commands", "voxceleb1", "iemocap", "fluent_commands", "quesst14",
                 "voxceleb1_sv", "librimix", "snips")
# a `folder` source's labels by task kind when `labels_from` is not given, and the field each mode fills
FOLDER_LABELS = {"classification": "folder", "ctc": "sidecar"}
FOLDER_LABEL_FIELDS = {"folder": "label", "sidecar": "text"}
SPLIT_NAMES = ("train", "dev", "test")  # the sub-folders a `folder` source may be split into
# keys naming a local file or folder, resolved by `resolved` (`path` too for a manifest or folder)
LOCAL_PATH_KEYS = ("vocab", "classes", "lexicon", "root", "test_root", "corpus_dir", "trials")
TRIAL_TYPES = ("voxceleb1_sv", "manifest", "folder")  # the sources a verification split's `trials` may list


@dataclass(frozen=True)
class DataConfig:
    """Where a task's utterances and labels come from.

    type `corpus`: the synthetic corpus shipped with the project (`corpus` = preset, built on
      first use, or `corpus_dir` = an already built one) and its task `task` (pr, asr, sid, ks,
      style, the cross-lingual phone tasks xl_cmn, xl_es, intent classification ic, slot filling
      sf, speaker verification asv (dev and test: trial lists) or diarization sd), which fixes
      the label field and vocabulary, or `audio` (every utterance of the split, without labels,
      for the self-supervised objectives);
    type `manifest`: a JSONL/TSV manifest at `path` (optional `split` filter on its `split` field);
    type `folder`: the audio files under the folder `path` (its sub-folder `split`, e.g.
      `path/dev/`, when there is one; else the folder is the train split's alone); `labels_from`
      `folder` stores each file's sub-folder name in `field` (default `label`), `sidecar` the
      transcript `name.txt` beside `name.wav` (default field `text`), `none` reads no labels; by
      default a classification task reads sub-folder names, a ctc task transcripts;
    type `hf`: a Hugging Face dataset (`path` = hub name or `save_to_disk` folder, `name` = its
      config, `split`);
    type `tfds`: a TensorFlow Datasets name at `path` with `split`;
    type `librispeech`, `speech_commands`, `voxceleb1`, `iemocap`, `fluent_commands`, `quesst14`,
      `voxceleb1_sv` (VoxCeleb1 for speaker verification), `librimix` (Libri2Mix for diarization)
      or `snips` (SUPERB's audio SNIPS for slot filling): one of SUPERB's datasets in the folder a
      user downloaded (`root`; Speech Commands' separate test archive at `test_root`; IEMOCAP's
      test session `fold`; a verification trial list for the dev or test split at `trials`, in
      VoxCeleb's `veri_test.txt` layout, replacing the default one), `split` train, dev or test,
      with SUPERB's splits and labels (data/superb/).
    For `manifest`/`hf`/`tfds`, `field` names the label column; CTC vocabularies come from `vocab`
    (a file) or are built from the training split; class lists from `classes` or from the data.
    `lexicon`: a `WORD PH1 PH2 ...` file; the `field` (a word transcription) is turned into
    phones through it (SUPERB's phone recognition on LibriSpeech); the phones' stress digits are
    stripped (AH0 -> AH) unless `lexicon_stress: true` (SUPERB scores stress-marked phones).
    """

    type: Literal["corpus", "manifest", "hf", "tfds", "folder", "librispeech", "speech_commands", "voxceleb1",
                  "iemocap", "fluent_commands", "quesst14", "voxceleb1_sv", "librimix", "snips"] = "corpus"
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
    lexicon_stress: bool = False
    data_dir: str | None = None
    root: str | None = None
    test_root: str | None = None
    fold: Annotated[int, Range(1, 5)] = 1
    trials: str | None = None
    labels_from: Literal["folder", "sidecar", "none"] | None = None

    def validate(self):
        check(self.labels_from is None or self.type == "folder", "labels_from", self.labels_from,
              f"it unset for type {self.type} (it is for type folder)")
        check(self.trials is None or self.type in TRIAL_TYPES, "trials", self.trials,
              f"it unset for type {self.type} (it is for type {', '.join(TRIAL_TYPES)})")
        if self.type == "corpus":
            tasks = CORPUS_TASKS + (CORPUS_AUDIO,)
            check(self.task in tasks, "task", self.task, "one of " + ", ".join(tasks))
        elif self.type in DATASET_TYPES:
            pass  # `root` may come from an evaluation file's top-level `root:`; opening checks it
        else:
            check(bool(self.path), "path", self.path, f"a {self.type} path or name")

    @property
    def needs_field(self) -> bool:
        """Whether a labelled task on this data must name its label column (`field`): the corpus,
        a folder and most of SUPERB's datasets fix their labels; a manifest, a dataset, Fluent Speech
        Commands (which slot?) and LibriSpeech with a lexicon or vocabulary file do not."""
        if self.type in ("manifest", "hf", "tfds", "fluent_commands"):
            return True
        return self.type == "librispeech" and bool(self.lexicon or self.vocab)

    def for_split(self, split: str, changes=None) -> "DataConfig":
        """This section for another split: `split` set to its name, then `changes` (a mapping of
        this section's keys, e.g. `{path: dev.jsonl}` or `{split: validation}`) laid over it;
        checked as a section of its own (`splits.<split>.<key>` in errors)."""
        return build(DataConfig, {**to_dict(self), "split": split, **dict(changes or {})}, source="",
                     prefix=f"splits.{split}.")

    def for_kind(self, kind: str) -> "DataConfig":
        """This section with a `folder` source's label reading settled for a task of `kind`:
        `labels_from` (default: `FOLDER_LABELS`, none for a self-supervised task) and `field`
        (default: `FOLDER_LABEL_FIELDS`). Any other type is returned as it is."""
        if self.type != "folder":
            return self
        labels_from = self.labels_from or FOLDER_LABELS.get(kind, "none")
        field = self.field or FOLDER_LABEL_FIELDS.get(labels_from)
        return dataclasses.replace(self, labels_from=labels_from, field=field)

    def resolved(self, config_dirs=None, where: str = "data") -> "DataConfig":
        """This section with its local paths found (`config_loading.resolve_path`: beside the YAML
        file or the files of its `base:` chain, `config_dirs`, then in the working directory): the
        `LOCAL_PATH_KEYS`, a manifest's or folder's `path`, and where such a file exists a TFDS
        `data_dir`, an hf `path` or a dataset's `path` (else they stay as written: a folder TFDS
        may fill, a hub name, a file the dataset's reader reports). A required one found nowhere
        is a one-line `ConfigError` naming `where.key` and the places tried."""
        required = LOCAL_PATH_KEYS + (("path",) if self.type in ("manifest", "folder") else ())
        changes = {key: str(require_path(getattr(self, key), config_dirs, f"{where}.{key}"))
                   for key in required if getattr(self, key)}
        for key in ("data_dir",) + (("path",) if self.type in ("hf",) + DATASET_TYPES else ()):
            value = getattr(self, key)
            if value and (found := resolve_path(value, config_dirs)).exists():
                changes[key] = str(found)
        return dataclasses.replace(self, **changes)

    def source(self, shared: bool | None = None):
        """`(source, label_spec)`: the audio source, and the corpus task's label spec (None where
        the labels are not fixed by the source: a manifest, folder, hf or tfds field, or corpus
        audio). `shared`: whether another split of the task reads the same manifest or folder;
        then one without a `split` field (sub-folder) cannot tell the splits apart and is an error
        for every split. Not shared, it is this split's own and is read whole; unknown (None), it
        is read whole for the train split only."""
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
            elif self._needs_split(shared):
                raise DataError(self.path, self._unsplit_problem("manifest has no 'split' field", "add one "
                                "(train/dev/test) to its entries"))
            return source, None
        if self.type == "folder":
            return self._folder_source(shared), None
        if self.type == "hf":
            from speechft_jax.data.hf_datasets import HFDatasetSource, load_hf_dataset

            dataset = load_hf_dataset(self.path, split=self.split, config_name=self.name)
            return HFDatasetSource(dataset, audio_column=self.audio_column), None
        from speechft_jax.data.tfds_source import TFDSSource

        return TFDSSource(self.path, split=self.split, data_dir=self.data_dir, audio_key=self.audio_column), None

    def _needs_split(self, shared: bool | None) -> bool:
        """Whether this split may not read an unsplit manifest or folder whole (see `source`)."""
        return bool(shared) or (shared is None and self.split != "train")

    def _unsplit_problem(self, what: str, fix: str) -> str:
        if self.split == "train":  # shared with dev or test: training would include their utterances
            return (f"{what}, and the dev/test splits read it too, so training would include their "
                    f"utterances; {fix}, or give each split its own path")
        return (f"{what} to pick the {self.split!r} utterances from; {fix}, or give that split its own "
                f"path (splits.{self.split}.path)")

    def _folder_source(self, shared: bool | None) -> FileSource:
        """The audio files of this split under `path` (see the class docstring), with their labels."""
        root = Path(self.path)
        if not root.is_dir():
            raise DataError(self.path, "audio folder not found")
        if (root / self.split).is_dir():
            root = root / self.split
        else:
            present = [name for name in SPLIT_NAMES if (root / name).is_dir()]
            if present or self._needs_split(shared):
                what = f"audio folder has no {self.split}/ sub-folder"
                what += f" (it has {', '.join(present)})" if present else ""
                fix = f"put this split's audio in {root / self.split}"
                raise DataError(self.path, self._unsplit_problem(what, fix))
        mode = self.labels_from or "none"
        field = self.field or FOLDER_LABEL_FIELDS.get(mode)
        source = FileSource.from_folder(root, label_field=field if mode == "folder" else None,
                                        transcripts=mode == "sidecar", transcript_field=field or "text")
        if not len(source):
            raise DataError(str(root), "audio folder has no audio files (.wav, .flac or .ogg)")
        if mode == "folder":
            for example in source.examples:
                if Path(example.path).parent == root:  # its "class" would be the split folder's name
                    raise DataError(example.path, f"directly in {root}; expected it in a sub-folder named "
                                                  "for its class (labels_from: folder)")
        return source
