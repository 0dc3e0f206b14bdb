"""The self-generated demo corpus: multi-speaker synthetic speech made offline with eSpeak NG.

    from speechft_jax.data.synth import ensure_corpus
    root = ensure_corpus("demo")            # built on first use into the cache, then reused
    # root / "pr.jsonl", "asr.jsonl", "sid.jsonl", "ks.jsonl", "style.jsonl", "xl_cmn.jsonl", ...,
    # "ic.jsonl", "sf.jsonl", "asv.jsonl" (+ asv/trials_*.txt), "sd.jsonl" (+ sd/*.rttm)
    source, label = corpus_task(root, "pr", "train")   # a FileSource and its SequenceLabels

Command line: `python -m speechft_jax.data.synth --out DIR --preset demo [--stats]`.
Presets: `tiny` (tests), `demo`, `full`. Layout and manifest fields: see build.py.
"""

from speechft_jax.data.synth.build import TASKS, build_corpus, default_cache_dir, ensure_corpus
from speechft_jax.data.synth.presets import CORPUS_VERSION, PRESETS, Preset, get_preset
from speechft_jax.data.synth.tasks import corpus_audio, corpus_task, require_built_corpus, task_labels

__all__ = ["CORPUS_VERSION", "PRESETS", "Preset", "TASKS", "build_corpus", "corpus_audio", "corpus_task",
           "default_cache_dir", "ensure_corpus", "get_preset", "require_built_corpus", "task_labels"]
