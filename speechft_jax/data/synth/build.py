"""Building the demo corpus: plan, render in fresh worker processes, write manifests and vocabularies.

`build_corpus(out_dir, preset)` writes into `out_dir`:
  `audio/<pool>/<id>.flac`               16 kHz mono 16-bit FLAC
  `pr.jsonl`, `asr.jsonl`                English read speech (splits train/dev/test/test_unseen)
  `sid.jsonl`                            the same utterances of the seen speakers (closed set)
  `ks.jsonl`                             keyword spotting, 1 s clips (10 words, _unknown_, _silence_)
  `style.jsonl`                          speaking style (neutral, fast, slow, high, low, whisper)
  `xl_cmn.jsonl`, `xl_es.jsonl`          Mandarin and Spanish read speech
  `ic.jsonl`                             intent classification: spoken commands with `action`,
                                         `object` and `location` (after Fluent Speech Commands)
  `sf.jsonl`                             slot filling: requests with `slots`, the slot-tagged
                                         characters `p l a y | B-artist a d e l e E-artist` (SNIPS)
  `asv.jsonl`                            speaker verification: the seen speakers' English train
                                         utterances (`speaker`); `asv/trials_dev.txt` and
                                         `asv/trials_test.txt` pair the unseen speakers' ones
                                         (`<1|0> <enrolment path> <test path>`, from the corpus root)
  `sd.jsonl`, `sd/<split>.rttm`          diarization: two-speaker mixtures with `segments`
                                         `[[start_s, end_s, speaker], ...]` and their RTTM
  `vocab/*.json`, `classes/*.txt`        phone/char/slot vocabularies and class lists
  `corpus.json`                          preset, seed, engine version, tasks, hours per split
`ensure_corpus(preset)` builds it once into a cache folder (atomically) and returns the path.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from speechft_jax.data.manifest import write_manifest
from speechft_jax.data.synth.engine import engine_version
from speechft_jax.data.synth.grammar import (
    IC_ACTIONS, IC_LOCATIONS, IC_OBJECTS, KEYWORD_CLASSES, slot_vocabulary_tokens,
)
from speechft_jax.data.synth.phones import ARPABET_39
from speechft_jax.data.synth.plan import SPLITS, VERSION_2_POOLS, plan_corpus, verification_trials
from speechft_jax.data.synth.presets import CORPUS_VERSION, get_preset
from speechft_jax.data.synth.render import render_chunk
from speechft_jax.data.synth.voices import STYLES
from speechft_jax.data.vocab import ClassLabels, Vocabulary

log = logging.getLogger(__name__)

# Part of the corpus definition: the engine's state carries over between the utterances of one
# chunk, so the chunking must not depend on the number of workers.
CHUNK_SIZE = 64
IC_FIELDS = ("action", "object", "location")

TASKS = {
    "pr": {"manifest": "pr.jsonl", "field": "phones", "kind": "ctc", "vocab": "vocab/phones_en.json"},
    "asr": {"manifest": "asr.jsonl", "field": "text", "kind": "ctc", "vocab": "vocab/chars_en.json"},
    "sid": {"manifest": "sid.jsonl", "field": "speaker", "kind": "class",
            "classes": "classes/speakers.txt"},
    "ks": {"manifest": "ks.jsonl", "field": "keyword", "kind": "class",
           "classes": "classes/keywords.txt"},
    "style": {"manifest": "style.jsonl", "field": "style", "kind": "class",
              "classes": "classes/styles.txt"},
    "xl_cmn": {"manifest": "xl_cmn.jsonl", "field": "phones", "kind": "ctc",
               "vocab": "vocab/phones_cmn.json"},
    "xl_es": {"manifest": "xl_es.jsonl", "field": "phones", "kind": "ctc",
              "vocab": "vocab/phones_es.json"},
    "ic": {"manifest": "ic.jsonl", "fields": IC_FIELDS, "kind": "intent",
           "classes": tuple(f"classes/ic_{field}.txt" for field in IC_FIELDS)},
    "sf": {"manifest": "sf.jsonl", "field": "slots", "kind": "ctc", "vocab": "vocab/slots_en.json"},
    "asv": {"manifest": "asv.jsonl", "field": "speaker", "kind": "verification",
            "classes": "classes/asv_speakers.txt", "trials": "asv/trials_{split}.txt"},
    "sd": {"manifest": "sd.jsonl", "field": "segments", "kind": "diarization", "speakers": 2,
           "rttm": "sd/{split}.rttm"},
}


def default_cache_dir() -> Path:
    """`$SPEECHFT_CACHE/corpus`, else `~/.cache/speechft_jax/corpus`."""
    root = os.environ.get("SPEECHFT_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "speechft_jax") / "corpus"


def hours_by_split(records: list[dict]) -> dict[str, float]:
    hours: dict[str, float] = defaultdict(float)
    for r in records:
        hours[r["split"]] += r["duration"] / 3600
    return {k: round(v, 4) for k, v in sorted(hours.items())}


def _chunks(jobs: list) -> list[list]:
    """The jobs in `CHUNK_SIZE` runs; the pools of corpus version 2 start a run of their own, so
    that the older pools keep their chunks and hence their audio."""
    first_new = next((i for i, job in enumerate(jobs) if job.pool in VERSION_2_POOLS), len(jobs))
    return [part[i:i + CHUNK_SIZE] for part in (jobs[:first_new], jobs[first_new:])
            for i in range(0, len(part), CHUNK_SIZE)]


def _render_all(jobs, variants: dict[str, str], out_dir: Path, workers: int,
                progress) -> list[dict]:
    chunks = _chunks(jobs)
    results: list[list[dict] | None] = [None] * len(chunks)
    # A fresh process per chunk (max_tasks_per_child=1): eSpeak keeps state between utterances.
    # forkserver children start from a clean interpreter without the caller's threads (JAX).
    ctx = multiprocessing.get_context("forkserver")
    # Import the renderer once in the server, not once per chunk (the package imports JAX).
    ctx.set_forkserver_preload(["speechft_jax.data.synth.render"])
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                max_tasks_per_child=1) as pool:
        futures = {}
        for i, chunk in enumerate(chunks):
            used = {variant for job in chunk for variant in job.variants}
            futures[pool.submit(render_chunk, str(out_dir), chunk,
                                {name: variants[name] for name in sorted(used)})] = i
        done = 0
        try:
            for fut in cf.as_completed(futures):
                results[futures[fut]] = fut.result()
                done += len(chunks[futures[fut]])
                if progress:
                    progress(done, len(jobs))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [r for chunk in results for r in chunk]


def _write_outputs(out_dir: Path, records: list[dict], speakers, preset, seed: int,
                   trials: dict[str, list[tuple[int, str, str]]]) -> dict:
    by_pool: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_pool[r["path"].split("/")[1]].append(r)
    english = by_pool["en"]
    manifests = {
        "pr": english, "asr": english,
        "sid": [r for r in english if r["split"] != "test_unseen"],
        "ks": by_pool["ks"], "style": by_pool["style"],
        "xl_cmn": by_pool["cmn"], "xl_es": by_pool["es"],
        "ic": by_pool["ic"], "sf": by_pool["sf"],
        "asv": [r for r in english if r["split"] == "train"], "sd": by_pool["sd"],
    }
    for task, rows in manifests.items():
        write_manifest(out_dir / TASKS[task]["manifest"], rows)
    (out_dir / "vocab").mkdir()
    (out_dir / "classes").mkdir()
    Vocabulary(("<blank>", "<pad>") + ARPABET_39, kind="phone").save(out_dir / "vocab/phones_en.json")
    Vocabulary.build((r["text"] for r in english), kind="char").save(out_dir / "vocab/chars_en.json")
    for lang in ("cmn", "es"):
        Vocabulary.build((r["phones"] for r in by_pool[lang]), kind="phone").save(
            out_dir / f"vocab/phones_{lang}.json")
    seen = sorted({r["speaker"] for r in manifests["sid"]})
    ClassLabels(tuple(seen)).save(out_dir / "classes/speakers.txt")
    ClassLabels(KEYWORD_CLASSES).save(out_dir / "classes/keywords.txt")
    ClassLabels(STYLES).save(out_dir / "classes/styles.txt")
    _write_version_2_outputs(out_dir, manifests, trials)
    info = {
        "name": "speechft-synthetic", "preset": preset.name, "version": CORPUS_VERSION,
        "seed": seed, "engine": f"eSpeak NG {engine_version()} (espeakng-loader)",
        "sample_rate": 16000,
        "speakers": {"total": len(speakers), "seen": len(seen),
                     "unseen": len(speakers) - len(seen)},
        "utterances": len(records),
        "hours": round(sum(r["duration"] for r in records) / 3600, 4),
        "tasks": {task: dict(TASKS[task], utterances=len(rows), hours=hours_by_split(rows))
                  for task, rows in manifests.items()},
    }
    # asv's dev and test are its trial lists: their hours are those of the utterances they pair
    duration = {r["path"]: r["duration"] for r in english}
    asv = info["tasks"]["asv"]
    asv["trial_pairs"] = {split: len(rows) for split, rows in trials.items()}
    asv["hours"] = dict(sorted({**asv["hours"], **{
        split: round(sum(duration[path] for path in {p for _, a, b in rows for p in (a, b)}) / 3600, 4)
        for split, rows in trials.items()}}.items()))
    (out_dir / "corpus.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


def _write_version_2_outputs(out_dir: Path, manifests: dict[str, list[dict]],
                             trials: dict[str, list[tuple[int, str, str]]]) -> None:
    """The intent class lists, the slot vocabulary, the trial lists and the RTTM files."""
    for path, names in zip(TASKS["ic"]["classes"], (IC_ACTIONS, IC_OBJECTS, IC_LOCATIONS)):
        ClassLabels(names).save(out_dir / path)
    Vocabulary(("<blank>", "<pad>") + slot_vocabulary_tokens(), kind="phone").save(
        out_dir / TASKS["sf"]["vocab"])
    ClassLabels(tuple(sorted({r["speaker"] for r in manifests["asv"]}))).save(
        out_dir / TASKS["asv"]["classes"])
    (out_dir / "asv").mkdir()
    for split, rows in trials.items():
        (out_dir / TASKS["asv"]["trials"].format(split=split)).write_text(
            "".join(f"{label} {enrolment} {test}\n" for label, enrolment, test in rows), encoding="utf-8")
    (out_dir / "sd").mkdir()
    for split in SPLITS:
        (out_dir / TASKS["sd"]["rttm"].format(split=split)).write_text(
            "".join(f"SPEAKER {r['id']} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA>\n"
                    for r in manifests["sd"] if r["split"] == split
                    for start, end, speaker in r["segments"]), encoding="utf-8")


def build_corpus(out_dir: str | os.PathLike, preset: str = "demo", *, seed: int | None = None,
                 workers: int | None = None, progress=None) -> dict:
    """Render the corpus of `preset` into `out_dir` (must not exist or be empty).

    Returns the `corpus.json` content plus `build_seconds`. `progress(done, total)` is called as
    chunks finish. The result depends only on the preset, the seed and the engine version.
    """
    spec = get_preset(preset)
    seed = spec.seed if seed is None else seed
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    speakers, jobs = plan_corpus(spec, seed)
    variants = {}
    for spk in speakers:
        variants[spk.variant] = spk.variant_text
        variants[spk.whisper_variant] = spk.whisper_text
    workers = workers or os.cpu_count() or 1
    records = _render_all(jobs, variants, out_dir, workers, progress)
    info = _write_outputs(out_dir, records, speakers, spec, seed, verification_trials(jobs, seed))
    info["build_seconds"] = round(time.perf_counter() - start, 1)
    return info


def ensure_corpus(preset: str = "demo", cache_dir: str | os.PathLike | None = None, *,
                  seed: int | None = None, workers: int | None = None, progress=None) -> Path:
    """The corpus folder for `preset`, built on first use into `cache_dir`.

    The folder is `<cache_dir>/<preset>-v<version>[-seed<seed>]`; it is built in a temporary
    sibling and renamed into place, so a half-built corpus is never seen and concurrent callers
    end up sharing one.
    """
    spec = get_preset(preset)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = f"{preset}-v{CORPUS_VERSION}"
    if seed is not None and seed != spec.seed:
        name += f"-seed{seed}"
    target = cache / name
    if (target / "corpus.json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    log.warning("building the %s corpus into %s (first use; about a minute for demo)", preset, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    try:
        build_corpus(tmp, preset, seed=seed, workers=workers, progress=progress)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "corpus.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
