"""The synthetic corpus: manifests, labels, splits, determinism and the build cache."""

import hashlib
import json
import time

import numpy as np
import pytest

from speechft_jax.data.audio import decode_audio
from speechft_jax.data.manifest import read_manifest
from speechft_jax.data.synth import PRESETS, TASKS, build_corpus, ensure_corpus
from speechft_jax.data.synth.engine import EspeakEngine
from speechft_jax.data.synth.grammar import KEYWORD_CLASSES, KEYWORDS, UNKNOWN_WORDS, grammar_words, intent_words
from speechft_jax.data.synth.phones import ARPABET_39, phone_labels
from speechft_jax.data.synth.plan import plan_corpus
from speechft_jax.data.synth.voices import ACCENTS, STYLES
from speechft_jax.data.vocab import Vocabulary

REQUIRED = ("path", "duration", "split", "speaker", "lang", "text", "phones")
REQUIRED_MIXTURE = ("path", "duration", "split", "speakers", "segments")


def _rows(root, task):
    return [json.loads(line) for line in (root / TASKS[task]["manifest"]).read_text().splitlines()]


def test_manifests_fields_and_labels(demo_corpus_tiny):
    root = demo_corpus_tiny
    info = json.loads((root / "corpus.json").read_text())
    assert info["preset"] == "tiny" and info["speakers"]["unseen"] == PRESETS["tiny"].unseen_speakers
    for task in TASKS:
        rows = _rows(root, task)
        assert rows, task
        for r in rows:
            assert all(k in r for k in (REQUIRED_MIXTURE if task == "sd" else REQUIRED)), (task, r)
            assert (root / r["path"]).is_file()
    assert all(set(r["phones"].split()) <= set(ARPABET_39) for r in _rows(root, "pr"))
    assert {r["keyword"] for r in _rows(root, "ks")} == set(KEYWORD_CLASSES)
    assert {r["style"] for r in _rows(root, "style")} == set(STYLES)
    assert {r["lang"] for r in _rows(root, "xl_cmn")} == {"cmn"}
    assert all(r["phones"] for r in _rows(root, "xl_es"))
    for task in ("pr", "asr", "xl_cmn", "xl_es"):  # vocabularies cover their manifests
        vocab = Vocabulary.load(root / TASKS[task]["vocab"],
                                kind="char" if task == "asr" else "phone")
        for r in _rows(root, task):
            vocab.encode(r[TASKS[task]["field"]], r["path"])
    audio = decode_audio(root / _rows(root, "ks")[0]["path"])
    assert len(audio) == 16000 and np.isfinite(audio).all() and np.abs(audio).max() > 0.01


def test_splits_by_sentence_and_unseen_speakers(demo_corpus_tiny):
    rows = [r for task in ("asr", "style", "ic", "sf") for r in _rows(demo_corpus_tiny, task)]
    split_of = {}
    for r in rows:
        base = "test" if r["split"] == "test_unseen" else r["split"]
        assert split_of.setdefault(r["text"], base) == base  # no sentence crosses splits
    train_speakers = {r["speaker"] for r in rows if r["split"] == "train"}
    unseen = {r["speaker"] for r in rows if r["split"] == "test_unseen"}
    assert unseen and not unseen & train_speakers
    sid = _rows(demo_corpus_tiny, "sid")
    assert {r["split"] for r in sid} == {"train", "dev", "test"}
    assert {r["speaker"] for r in sid if r["split"] == "test"} <= train_speakers


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


def test_build_is_deterministic(demo_corpus_tiny, tmp_path):
    # Another build, with a different number of worker processes, is byte-identical.
    info = build_corpus(tmp_path / "again", "tiny", workers=1)
    assert info["utterances"] == len(list((demo_corpus_tiny / "audio").rglob("*.flac")))
    assert _digest(tmp_path / "again") == _digest(demo_corpus_tiny)
    for task in TASKS:
        assert (tmp_path / "again" / TASKS[task]["manifest"]).read_bytes() == \
            (demo_corpus_tiny / TASKS[task]["manifest"]).read_bytes()


def test_seed_changes_the_plan():
    preset = PRESETS["tiny"]
    (_, a), (_, b), (_, c) = plan_corpus(preset), plan_corpus(preset), plan_corpus(preset, seed=1)
    assert a == b and [j.text for j in a if j.pool == "en"] != [j.text for j in c if j.pool == "en"]


def test_ensure_corpus_reuses_the_cache(demo_corpus_tiny):
    start = time.perf_counter()
    assert ensure_corpus("tiny", cache_dir=demo_corpus_tiny.parent) == demo_corpus_tiny
    assert time.perf_counter() - start < 1.0
    assert not [p for p in demo_corpus_tiny.parent.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError, match="unknown corpus preset"):
        ensure_corpus("huge", cache_dir=demo_corpus_tiny.parent)
    assert read_manifest(demo_corpus_tiny / "pr.jsonl")[0].path.startswith(str(demo_corpus_tiny))


@pytest.mark.parametrize("accent", sorted(set(ACCENTS)))
def test_every_grammar_word_maps_to_arpabet(accent):
    engine = _engine()
    text = " ".join(grammar_words("en") + list(KEYWORDS + UNKNOWN_WORDS) + intent_words())
    phones = phone_labels(engine.phonemize(text, accent), "en", accent)
    assert set(phones) <= set(ARPABET_39) and len(phones) > 500


def test_other_languages_stay_in_language():
    engine = _engine()
    for lang, voice in (("es", "es"), ("cmn", "cmn-latn-pinyin")):
        phone_labels(engine.phonemize(" ".join(grammar_words(lang)), voice), lang, voice)
    with pytest.raises(ValueError, match="no voice variant"):
        engine.set_voice("en-us+doesnotexist")


_ENGINE = []


def _engine():
    # The library is a per-process singleton: initialise it once for these tests.
    if not _ENGINE:
        _ENGINE.append(EspeakEngine())
    return _ENGINE[0]
