"""The demo corpus's intent (ic), slot (sf), verification (asv) and diarization (sd) tasks."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from speechft_jax.data.audio import decode_audio
from speechft_jax.data.errors import DataError
from speechft_jax.data.labels import ClassGroupLabels, ClassLabel, SequenceLabels, SpeakerActivityLabels, TrialLabels
from speechft_jax.data.synth import PRESETS, TASKS, corpus_task
from speechft_jax.data.synth.build import _chunks
from speechft_jax.data.synth.grammar import (
    IC_ACTIONS, IC_LOCATIONS, IC_OBJECTS, SF_SLOT_TYPES, sample_command, sample_slot_request, slot_tokens,
)
from speechft_jax.data.synth.plan import Job, MixJob, plan_corpus, verification_trials
from speechft_jax.data.synth.render import render_mixture
from speechft_jax.evaluate.slot_filling import parse_slots


def _rows(root, task):
    return [json.loads(line) for line in (root / TASKS[task]["manifest"]).read_text().splitlines()]


def test_version_2_pools_leave_the_older_plan_and_chunks_alone():
    # The old pools' jobs do not depend on the new pools' sizes, and their chunks hold no new job.
    preset = PRESETS["tiny"]
    none = dataclasses.replace(preset, ic_per_split=(0, 0, 0), sf_per_split=(0, 0, 0), sd_per_split=(0, 0, 0))
    (_, jobs), (_, old_jobs) = plan_corpus(preset), plan_corpus(none)
    assert jobs[:len(old_jobs)] == old_jobs and len(jobs) == len(old_jobs) + 32 + 32 + 14
    chunks = _chunks(jobs)
    assert chunks[:len(_chunks(old_jobs))] == _chunks(old_jobs)
    assert {job.pool for job in jobs[len(old_jobs):]} == {"ic", "sf", "sd"}


def test_commands_and_their_intents():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(3000):
        text, action, obj, location = sample_command(rng)
        assert action in IC_ACTIONS and obj in IC_OBJECTS and location in IC_LOCATIONS
        assert (location in text.split()) == (location != "none")
        seen.add((action, obj, location))
        if obj in ("socks", "shoes", "juice", "lamp", "music"):
            assert obj in text
    assert {a for a, _, _ in seen} == set(IC_ACTIONS) and {o for _, o, _ in seen} == set(IC_OBJECTS)
    assert len(seen) == 31  # lights and heat in 4 locations each, 15 intents without one


def test_intent_task(demo_corpus_tiny):
    rows = _rows(demo_corpus_tiny, "ic")
    assert [sum(r["split"] == s for r in rows) for s in ("train", "dev", "test")] == list(PRESETS["tiny"].ic_per_split)
    source, label = corpus_task(demo_corpus_tiny, "ic", "test")
    assert isinstance(label, ClassGroupLabels) and label.fields == ("action", "object", "location")
    assert label.sizes == (len(IC_ACTIONS), len(IC_OBJECTS), len(IC_LOCATIONS)) and label.key == "label"
    ids = label.encode(source.fields(0), "x")
    assert [group.names[i] for group, i in zip(label.groups, ids)] == [source.fields(0)[f] for f in label.fields]
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r["text"], r["split"]) == r["split"]  # no command crosses splits


def test_slot_sequences_parse_back_to_their_slots(demo_corpus_tiny):
    assert slot_tokens([("play", None), ("anna", "artist"), ("on", None), ("the radio", "service")]) == \
        "p l a y | B-artist a n n a E-artist | o n | B-service t h e | r a d i o E-service"
    rng = np.random.default_rng(1)
    for _ in range(500):
        text, slots = sample_slot_request(rng)
        tokens = slots.split()
        parsed = parse_slots(tokens)
        assert parsed and all(t in SF_SLOT_TYPES for t, _ in parsed)
        # the slot values are the text's words in order, and the characters spell the text
        assert all(f" {value} " in f" {text} " for _, value in parsed)
        assert "".join(" " if t == "|" else t for t in tokens if t[:2] not in ("B-", "E-")) == text
    source, label = corpus_task(demo_corpus_tiny, "sf", "train")
    assert isinstance(label, SequenceLabels) and label.field == "slots" and label.vocab.kind == "phone"
    for i in range(len(source)):
        ids = label.encode(source.fields(i), "x")
        assert parse_slots(label.vocab.decode(ids).split()) == parse_slots(source.fields(i)["slots"].split())


def test_verification_trials(demo_corpus_tiny):
    root = demo_corpus_tiny
    source, label = corpus_task(root, "asv", "train")
    assert isinstance(label, ClassLabel) and label.field == "speaker"
    sid_train = [r["path"] for r in _rows(root, "sid") if r["split"] == "train"]
    assert [r["path"] for r in _rows(root, "asv")] == sid_train
    unseen = {r["path"]: r["speaker"] for r in _rows(root, "pr") if r["split"] == "test_unseen"}
    info = json.loads((root / "corpus.json").read_text())
    for split in ("dev", "test"):
        source, trials = corpus_task(root, "asv", split)
        assert isinstance(trials, TrialLabels)
        paths = [str(Path(e.path).relative_to(root)) for e in source.examples]
        assert set(paths) <= set(unseen) and all((root / p).is_file() for p in paths)
        for enrol, test, same in trials.trials:
            assert same == (unseen[paths[enrol]] == unseen[paths[test]]) and enrol != test
        assert trials.trials[:, 2].sum() * 2 == len(trials.trials)  # balanced
        assert info["tasks"]["asv"]["trial_pairs"][split] == len(trials.trials)
    assert info["version"] == 2 and all(set(info["tasks"][task]["hours"]) == {"train", "dev", "test"}
                                        for task in ("ic", "sf", "asv", "sd"))
    with pytest.raises(DataError, match="has no 'test_unseen' split"):
        corpus_task(root, "asv", "test_unseen")
    _, keyed = corpus_task(root, "asv", "dev", key="speaker_trials")
    assert keyed.key == "speaker_trials"


def test_demo_trials_split_the_unseen_speakers_in_halves():
    _, jobs = plan_corpus(PRESETS["demo"])
    lists = verification_trials(jobs, 0)
    speaker = {job.path: job.speaker for job in jobs if job.pool == "en"}
    groups = {split: {speaker[p] for _, a, b in rows for p in (a, b)} for split, rows in lists.items()}
    assert len(groups["dev"]) == len(groups["test"]) == 15 and not groups["dev"] & groups["test"]
    for rows in lists.values():
        targets = [r for r in rows if r[0] == 1]
        assert len(targets) == 15 * 28 and len(rows) == 2 * len(targets)  # every same-speaker pair of 8
        assert len({(a, b) for _, a, b in rows}) == len(rows)
    assert verification_trials(jobs, 0) == lists and verification_trials(jobs, 1) != lists


def test_diarization_mixtures_and_rttm(demo_corpus_tiny):
    root = demo_corpus_tiny
    rows = _rows(root, "sd")
    english = {r["id"]: r for r in _rows(root, "pr")}
    rttm = {}
    for split in ("train", "dev", "test"):
        for line in (root / f"sd/{split}.rttm").read_text().splitlines():
            kind, rec, channel, start, dur, _, _, spk, _ = line.split()
            rttm.setdefault(rec, []).append((float(start), float(dur), spk))
    for r in rows:
        (s1, e1, a), (s2, e2, b) = r["segments"]
        assert a != b and r["speakers"] == [a, b] and s1 >= 0.1 and e2 <= r["duration"] - 0.1 + 1e-9
        assert s2 >= e1 - 0.4 * min(e1 - s1, e2 - s2) - 0.01  # overlap at most 40 % of the shorter
        sources = [english[uid] for uid in r["sources"]]
        assert [x["speaker"] for x in sources] == [a, b]
        wanted = {"train": {"train"}, "dev": {"dev"}, "test": {"test", "test_unseen"}}[r["split"]]
        assert {x["split"] for x in sources} <= wanted
        assert rttm[r["id"]] == [(round(s, 3), round(e - s, 3), spk) for s, e, spk in r["segments"]]
        audio = decode_audio(root / r["path"])
        assert len(audio) == round(r["duration"] * 16000)
        inside = np.zeros(len(audio), bool)
        for s, e, _ in r["segments"]:
            inside[round(s * 16000):round(e * 16000)] = True
        # the noise (SNR >= 10 dB against the speech) is all there is outside the segments
        assert np.mean(audio[~inside] ** 2) < np.mean(audio[inside] ** 2) / 5
    source, label = corpus_task(root, "sd", "dev")
    assert isinstance(label, SpeakerActivityLabels) and label.num_speakers == 2 and label.frame_seconds == 0.02
    assert len(source) == PRESETS["tiny"].sd_per_split[1] and label.encode(source.fields(0), "x").sum() > 0


class _BurstEngine:
    """Stands in for eSpeak: each text is a 16 kHz tone burst of `len(text)` * 0.1 s between silences."""

    sample_rate = 16000

    def synthesize(self, text, voice, **_):
        t = np.arange(len(text) * 1600) / 16000
        burst = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
        return np.concatenate([np.zeros(4800, np.int16), burst, np.zeros(3200, np.int16)])


def _source(text, speaker):
    return Job(uid=speaker + "_0", pool="en", path="", text=text, lang="en", voice="en+x", phone_voice="en",
               rate=175, pitch=50, pitch_range=50, split="train", speaker=speaker, seed=1, snr_db=20.0)


@pytest.mark.parametrize("overlap, gap", [(0.25, 0.0), (0.0, 0.5)])
def test_mixture_segments_are_the_sources_speech(tmp_path, overlap, gap):
    job = MixJob(uid="m", pool="sd", path="audio/sd/m.flac", split="train",
                 sources=(_source("x" * 12, "a"), _source("y" * 8, "b")), seed=3, snr_db=40.0,
                 lead_seconds=0.2, trail_seconds=0.3, overlap=overlap, gap_seconds=gap, gain_db=0.0)
    record = render_mixture(_BurstEngine(), job, tmp_path)
    (s1, e1, a), (s2, e2, b) = record["segments"]
    assert (a, b) == ("a", "b") and (s1, e1) == (0.2, 1.4)  # the 1.2 s burst, its silences trimmed
    assert (s2, e2) == ((1.2, 2.0) if overlap else (1.9, 2.7))  # 25 % of the shorter 0.8 s, or a 0.5 s gap
    assert record["duration"] == pytest.approx(e2 + 0.3)
    audio = decode_audio(tmp_path / "audio/sd/m.flac")
    power = (audio[:len(audio) // 160 * 160].reshape(-1, 160) ** 2).mean(axis=1)  # 10 ms frames
    active = power > power.max() * 1e-3
    wanted = np.zeros_like(active)
    for s, e, _ in record["segments"]:
        wanted[round(s * 100):round(e * 100)] = True
    assert (active == wanted).all()


def test_a_corpus_of_an_older_version_names_the_missing_task(demo_corpus_tiny, tmp_path):
    info = json.loads((demo_corpus_tiny / "corpus.json").read_text())
    old_tasks = ("pr", "asr", "sid", "ks", "style", "xl_cmn", "xl_es")
    info["tasks"] = {task: info["tasks"][task] for task in old_tasks}
    (tmp_path / "corpus.json").write_text(json.dumps(info))
    for task in old_tasks:
        (tmp_path / f"{task}.jsonl").write_bytes((demo_corpus_tiny / f"{task}.jsonl").read_bytes())
    for task, split in (("ic", "train"), ("asv", "dev"), ("sd", "test")):
        with pytest.raises(DataError, match=f"has no '{task}' task .* build a new one with"):
            corpus_task(tmp_path, task, split)
    # the self-supervised objectives read the read-speech pools, of an old corpus and a new one alike
    # (not the commands, requests and mixtures: what they trained on stays what it was)
    from speechft_jax.data.synth import corpus_audio
    wanted = {r["path"] for task in old_tasks for r in _rows(demo_corpus_tiny, task) if r["split"] == "train"}
    assert {e.path for e in corpus_audio(tmp_path, "train").examples} == {str(tmp_path / p) for p in wanted}
    assert {e.path for e in corpus_audio(demo_corpus_tiny, "train").examples} == {
        str(demo_corpus_tiny / p) for p in wanted}
