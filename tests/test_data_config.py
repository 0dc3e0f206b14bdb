"""A task's `data` section: audio folders (labels from sub-folders or sidecar transcripts, split
sub-folders), manifests asked for a split they cannot tell apart, and `resolved` (relative paths
beside the config, then in the working directory)."""

from __future__ import annotations

import pytest

from speechft_jax.data.config import DataConfig
from speechft_jax.data.manifest import write_manifest
from speechft_jax.errors import ConfigError, DataError


def _labels(source, field):
    return [(e.path.rsplit("/", 1)[-1], e.fields[field]) for e in source.examples]


def test_a_folder_gives_sub_folder_names_or_sidecar_transcripts(tmp_path, data_wav_factory):
    data_wav_factory("words/yes/1.wav", seconds=0.1)
    data_wav_factory("words/no/2.flac", seconds=0.1)
    data = DataConfig(type="folder", path=str(tmp_path / "words"))
    source, spec = data.for_kind("classification").source()
    assert spec is None and _labels(source, "label") == [("2.flac", "no"), ("1.wav", "yes")]
    keyword = DataConfig(type="folder", path=str(tmp_path / "words"), field="keyword")
    source, _ = keyword.for_kind("classification").source()
    assert _labels(source, "keyword") == [("2.flac", "no"), ("1.wav", "yes")]
    assert data.for_kind("hubert").labels_from == "none"
    assert source.num_samples(0) == 1600

    data_wav_factory("said/a.wav", seconds=0.1)
    (tmp_path / "said/a.txt").write_text("hello there\n")
    ctc = DataConfig(type="folder", path=str(tmp_path / "said")).for_kind("ctc")
    assert (ctc.labels_from, ctc.field) == ("sidecar", "text")
    assert _labels(ctc.source()[0], "text") == [("a.wav", "hello there")]
    words = DataConfig(type="folder", path=str(tmp_path / "said"), field="words", labels_from="sidecar")
    assert _labels(words.source()[0], "words") == [("a.wav", "hello there")]
    data_wav_factory("said/b.wav", seconds=0.1)
    with pytest.raises(DataError, match=r"said/b.wav: transcript b.txt not found beside the audio file"):
        ctc.source()
    # a file straight in the folder has no class: its "label" would be the folder's own name
    with pytest.raises(DataError, match=r"said/a.wav: directly in .*said; expected it in a sub-folder named "
                                        r"for its class \(labels_from: folder\)"):
        DataConfig(type="folder", path=str(tmp_path / "said"), labels_from="folder").source()


def test_a_folder_with_split_sub_folders_gives_each_split_its_own(tmp_path, data_wav_factory):
    for split, word in (("train", "yes"), ("train", "no"), ("dev", "no"), ("test", "yes")):
        data_wav_factory(f"data/{split}/{word}/{split}_{word}.wav", seconds=0.1)
    train = DataConfig(type="folder", path=str(tmp_path / "data"), labels_from="folder")
    assert _labels(train.source()[0], "label") == [("train_no.wav", "no"), ("train_yes.wav", "yes")]
    assert _labels(train.for_split("dev").source()[0], "label") == [("dev_no.wav", "no")]
    assert _labels(train.for_split("test").source(shared=True)[0], "label") == [("test_yes.wav", "yes")]

    (tmp_path / "data/test").rename(tmp_path / "elsewhere")  # a split without its sub-folder is refused
    with pytest.raises(DataError) as err:
        train.for_split("test").source()
    assert str(err.value) == (f"{tmp_path / 'data'}: audio folder has no test/ sub-folder (it has train, dev) to "
                              f"pick the 'test' utterances from; put this split's audio in {tmp_path / 'data/test'}, "
                              "or give that split its own path (splits.test.path)")
    own = train.for_split("test", {"path": str(tmp_path / "elsewhere")})
    assert _labels(own.source(shared=False)[0], "label") == [("test_yes.wav", "yes")]


def test_an_unsplit_folder_is_the_train_split_only(tmp_path, data_wav_factory):
    data_wav_factory("flat/yes/1.wav", seconds=0.1)
    train = DataConfig(type="folder", path=str(tmp_path / "flat"), labels_from="folder")
    assert len(train.source()[0]) == 1
    with pytest.raises(DataError) as err:
        train.for_split("dev").source()
    assert str(err.value) == (f"{tmp_path / 'flat'}: audio folder has no dev/ sub-folder to pick the 'dev' "
                              f"utterances from; put this split's audio in {tmp_path / 'flat/dev'}, or give that "
                              "split its own path (splits.dev.path)")
    with pytest.raises(DataError, match="and the dev/test splits read it too, so training would include their "
                                        "utterances"):
        train.source(shared=True)
    with pytest.raises(DataError, match="audio folder not found"):
        DataConfig(type="folder", path=str(tmp_path / "nope")).source()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: audio folder has no audio files \(.wav, .flac or .ogg\)"):
        DataConfig(type="folder", path=str(tmp_path / "empty")).source()


def test_a_manifest_without_a_split_field_serves_the_train_split_only(tmp_path, data_wav_factory):
    data_wav_factory("a.wav", seconds=0.1)
    write_manifest(tmp_path / "all.jsonl", [{"path": "a.wav", "intent": "on"}] * 3)
    train = DataConfig(type="manifest", path=str(tmp_path / "all.jsonl"), field="intent")
    assert len(train.source()[0]) == 3 and len(train.source(shared=False)[0]) == 3
    dev = train.for_split("dev")
    with pytest.raises(DataError) as err:
        dev.source()
    assert str(err.value) == (f"{tmp_path / 'all.jsonl'}: manifest has no 'split' field to pick the 'dev' utterances "
                              "from; add one (train/dev/test) to its entries, or give that split its own path "
                              "(splits.dev.path)")
    assert len(dev.source(shared=False)[0]) == 3  # the dev split's own file is read whole
    with pytest.raises(DataError, match="all.jsonl: manifest has no 'split' field, and the dev/test splits read it "
                                        "too, so training would include their utterances"):
        train.source(shared=True)
    write_manifest(tmp_path / "split.jsonl", [{"path": "a.wav", "split": s} for s in ("train", "dev", "train")])
    split = DataConfig(type="manifest", path=str(tmp_path / "split.jsonl"))
    assert len(split.source(shared=True)[0]) == 2 and len(split.for_split("dev").source(shared=True)[0]) == 1
    with pytest.raises(DataError, match=r"split.jsonl: has no 'test' utterances"):
        split.for_split("test").source()


def test_resolved_finds_local_paths_beside_the_config_then_in_the_working_directory(tmp_path, monkeypatch):
    configs, cwd = tmp_path / "configs", tmp_path / "cwd"
    (configs / "audio").mkdir(parents=True)
    (cwd / "hub").mkdir(parents=True)
    monkeypatch.chdir(cwd)
    (configs / "train.jsonl").write_text("")
    (configs / "vocab.txt").write_text("")
    (cwd / "classes.txt").write_text("")
    data = DataConfig(type="manifest", path="train.jsonl", vocab="vocab.txt", classes="classes.txt", field="text")
    found = data.resolved([configs], "tasks.asr.data")
    assert (found.path, found.vocab, found.classes) == (str(configs / "train.jsonl"), str(configs / "vocab.txt"),
                                                       "classes.txt")
    assert DataConfig(type="folder", path="audio").resolved([configs]).path == str(configs / "audio")
    # an hf path is a local folder when one exists, else a hub name; a tfds path is always a name
    assert DataConfig(type="hf", path="hub").resolved([configs]).path == "hub"
    assert DataConfig(type="hf", path="org/speech").resolved([configs]).path == "org/speech"
    assert DataConfig(type="tfds", path="audio").resolved([configs]).path == "audio"
    with pytest.raises(ConfigError) as err:
        DataConfig(type="manifest", path="train.jsonl", lexicon="words.lex").resolved([configs], "tasks.pr.data")
    assert str(err.value) == (f"tasks.pr.data.lexicon=words.lex: not found beside the config "
                              f"({configs / 'words.lex'}) nor in the working directory ({cwd / 'words.lex'})")
    with pytest.raises(ConfigError, match=r"^data.root=gone: not found beside the config"):
        DataConfig(type="voxceleb1", root="gone").resolved([configs])
    # a dataset's own file (VoxCeleb1's split list) is found when it exists; else its reader says so
    voxceleb = DataConfig(type="voxceleb1", root="audio", path="train.jsonl").resolved([configs])
    assert (voxceleb.root, voxceleb.path) == (str(configs / "audio"), str(configs / "train.jsonl"))
    assert DataConfig(type="voxceleb1", root="audio", path="splits.txt").resolved([configs]).path == "splits.txt"


def test_labels_from_belongs_to_a_folder():
    from speechft_jax.config_loading import build

    with pytest.raises(ConfigError, match=r"^labels_from='folder', expected it unset for type manifest "
                                          r"\(it is for type folder\)$"):
        build(DataConfig, {"type": "manifest", "path": "m.jsonl", "labels_from": "folder"}, source="")
