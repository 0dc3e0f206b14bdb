"""Every command of the CLI on a table of broken inputs: exit code 2, one line on stderr, no traceback.

Each case builds its broken input under `tmp_path` (from a tiny encoder, the tiny demo corpus or a
few generated audio files) and runs `python -m speechft_jax COMMAND ...` in-process, through the
same `main` the console script calls. A case passes when the command returns (or exits with) 2,
stderr holds exactly one line that names what was wrong (`expect`), and nothing raised.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Callable

import jax
import numpy as np
import pytest
import soundfile as sf
import yaml
from flax import traverse_util

import speechft_jax as sj
from conftest import TRAIN_MODEL_CONFIG, tiny_encoder_config, write_train_config
from speechft_jax.__main__ import main as speechft_main
from speechft_jax.checkpoints.torch_zip_writer import torch_save_bytes


@dataclasses.dataclass
class Ctx:
    """What a case builds its input from."""

    tmp: Path
    encoder: Path        # a tiny HuBERT (random weights) saved as a transformers directory
    other_encoder: Path  # the same with another width (an architecture mismatch)
    corpus: Path         # the tiny demo corpus

    def wav(self, name: str, samples: int = 16000, rate: int = 16000) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(samples).astype(np.float32), rate)
        return path

    def text(self, name: str, content: str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return path

    def train_config(self, name: str = "train.yaml", **sections) -> Path:
        return write_train_config(self.tmp / name, self.corpus, self.tmp / "run", **sections)

    def sweep_config(self, name: str = "sweep.yaml", **changes) -> Path:
        config = {"pretrained": str(self.encoder), "finetuned": str(self.encoder), "output_dir": str(self.tmp / "sweep"),
                  "alphas": [0.0, 1.0], "tasks": ["sid"], "corpus_dir": str(self.corpus),
                  "probe": {"steps": 2, "learning_rates": [1e-3], "batch_size": 4}, "similarity": False, **changes}
        return self.text(name, yaml.safe_dump(config))


def _evaluation(ctx: Ctx, *tasks, name: str = "eval.yaml") -> str:
    """An evaluation file of `tasks` (mappings) beside the case's other inputs."""
    return str(ctx.text(name, yaml.safe_dump({"tasks": list(tasks)})))


def _manifest_without_splits(ctx: Ctx) -> str:
    lines = [json.dumps({"path": str(ctx.wav(f"m/{i}.wav")), "label": "ab"[i % 2]}) for i in range(4)]
    return str(ctx.text("m/all.jsonl", "\n".join(lines) + "\n"))


def _manifest_with_splits(ctx: Ctx) -> str:
    lines = [json.dumps({"path": str(ctx.wav(f"s/{i}.wav")), "label": "ab"[i % 2], "split": ("train", "dev", "test")[i % 3]})
             for i in range(6)]
    return str(ctx.text("s/all.jsonl", "\n".join(lines) + "\n"))


def _snips_with_a_short_tag_line(ctx: Ctx) -> str:
    """A SNIPS folder whose one transcript line has a tag too few."""
    ctx.text("SNIPS/slots.txt", "O\nartist")
    return str(ctx.text("SNIPS/all.iob.snips.txt", "Ivy-snips-train-0 BOS HI THERE EOS\tO O PlayMusic\n").parent)


def _evaluate(ctx: Ctx, *tasks, extra=()) -> list:
    return ["evaluate", "--encoder", str(ctx.encoder), "--config", _evaluation(ctx, *tasks), "--steps", "2", *extra]


SUPERB = Path(__file__).parents[1] / "configs" / "superb"


@dataclasses.dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list]
    expect: str  # a fragment of the one-line message


def _pt(ctx: Ctx, name: str, checkpoint: dict) -> str:
    """A `.pt` file of plain data and arrays (written by the project's torch-free writer)."""
    path = ctx.tmp / name
    path.write_bytes(torch_save_bytes(checkpoint))
    return str(path)


def _torch_zip(ctx: Ctx, name: str, payload: bytes, entries: dict | None = None) -> Path:
    """A `torch.save`-shaped zip whose data.pkl is `payload` (hand-written pickle opcodes)."""
    path = ctx.tmp / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        for key, data in (entries or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def _os_system_pickle() -> bytes:
    # GLOBAL 'os system', the argument, REDUCE: the classic code-execution payload
    return b"\x80\x02cos\nsystem\nq\x00X\x05\x00\x00\x00touchq\x01\x85q\x02Rq\x03."


def _tensor_pickle(numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    """`{"model": {"mask_emb": tensor}}`: one float32 tensor over storage "0", which claims `numel` elements."""
    integer = lambda v: b"J" + struct.pack("<i", v)                             # BININT
    text = lambda t: b"X" + struct.pack("<I", len(t)) + t.encode()             # BINUNICODE
    tup = lambda items: b"(" + b"".join(items) + b"t"                          # MARK ... TUPLE
    pid = tup([text("storage"), b"ctorch\nFloatStorage\n", text("0"), text("cpu"), integer(numel)]) + b"Q"
    tensor = b"ctorch._utils\n_rebuild_tensor_v2\n" + tup(
        [pid, integer(offset), tup(map(integer, size)), tup(map(integer, stride)), b"\x89", b"}"]) + b"R"
    return b"\x80\x02}" + text("model") + b"}" + text("mask_emb") + tensor + b"ss."


SIXTEEN_BYTES = {"0": np.arange(4, dtype=np.float32).tobytes()}


def _crafted(ctx: Ctx, name: str, *tensor) -> str:
    return str(_torch_zip(ctx, name, _tensor_pickle(*tensor), SIXTEEN_BYTES))


def _non_finite_encoder(ctx: Ctx, name: str) -> str:
    bundle = sj.load_pretrained(ctx.encoder)
    flat = {k: np.array(v) for k, v in traverse_util.flatten_dict(jax.device_get(bundle.params), sep="/").items()}
    flat["encoder/layers_0/attention/q_proj/kernel"][0, 0] = np.inf
    return str(sj.save_pretrained(bundle.replace(params=traverse_util.unflatten_dict(flat, sep="/")), ctx.tmp / name))


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines)


def _alias_bomb_in_overrides(ctx: Ctx) -> list:
    bomb = "".join(f"    {line}\n" for line in _alias_bomb().splitlines())
    path = ctx.text("bomb_overrides.yaml", f"base: {ctx.train_config()}\nmodel:\n  overrides:\n{bomb}"
                                           "    mask_time_length: *a8\n")
    return ["train", "--config", str(path)]


def _huge_conv_dim(ctx: Ctx) -> list:
    hf = json.loads(TRAIN_MODEL_CONFIG.read_text())
    hf["conv_dim"][1] = 1e20
    return ["train", "--config", str(ctx.train_config(model={"config": str(ctx.text("huge.json", json.dumps(hf)))}))]


def _corpus_with_unknown_speaker(ctx: Ctx) -> str:
    """A copy of the tiny corpus whose first training utterance of speaker ID has an unknown speaker."""
    root = Path(shutil.copytree(ctx.corpus, ctx.tmp / "corpus"))
    records = [json.loads(line) for line in (root / "sid.jsonl").read_text().splitlines()]
    first = next(r for r in records if r["split"] == "train")
    first["speaker"] = "spk_nobody"
    (root / "sid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(root)


def _locked_run(ctx: Ctx) -> list:
    config = ctx.train_config()
    run = ctx.tmp / "run"
    run.mkdir()
    # another run holds the directory: an exclusive lock on its lock file, as a running train does
    ctx.held = open(run / ".lock", "w")
    fcntl.flock(ctx.held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return ["train", "--config", str(config)]


def _pr_task(ctx: Ctx, **changes) -> dict:
    return {"name": "pr", "kind": "ctc", "batch_size": 8, "num_buckets": 1,
            "data": {"type": "corpus", "corpus_dir": str(ctx.corpus), "task": "pr"}, **changes}


def _merge_into_another_model(ctx: Ctx) -> list:
    # a Flax directory (another model) where the merge would write
    assert speechft_main(["convert", str(ctx.other_encoder), str(ctx.tmp / "flax"), "--to", "flax"]) == 0
    return ["merge", "--pretrained", str(ctx.encoder), "--finetuned", str(ctx.encoder), "--out", str(ctx.tmp / "flax")]


def _corrupt_audio(ctx: Ctx) -> list:
    ctx.wav("audio/good.wav")
    ctx.text("audio/broken.wav", "RIFF but not really a wave file")
    return ["extract", "--encoder", str(ctx.encoder), "--folder", str(ctx.tmp / "audio"), "--out", str(ctx.tmp / "f")]


CASES = [
    # ------------------------------------------------------------------ the entry point
    Case("unknown-command", lambda c: ["trian"], "unknown command 'trian'"),
    # ------------------------------------------------------------------ train
    Case("train-missing-config", lambda c: ["train", "--config", str(c.tmp / "nope.yaml")], "nope.yaml"),
    Case("train-no-config-flag", lambda c: ["train"], "--config"),
    Case("train-yaml-syntax", lambda c: ["train", "--config", str(c.text("bad.yaml", "tasks: [\n  - {name: pr"))],
         "bad.yaml"),
    Case("train-unknown-key", lambda c: ["train", "--config", str(c.train_config(optimiser={"steps": 2}))],
         "optimiser"),
    Case("train-beta-out-of-range", lambda c: ["train", "--config", str(c.train_config()), "--set", "optimizer.beta=1.5"],
         "optimizer.beta"),
    Case("train-set-without-equals", lambda c: ["train", "--config", str(c.train_config()), "--set", "optimizer.steps"],
         "expected key=value"),
    Case("train-wrong-type", lambda c: ["train", "--config", str(c.train_config()), "--set", "optimizer.steps=many"],
         "optimizer.steps"),
    Case("train-alias-bomb", lambda c: ["train", "--config", str(c.text("bomb.yaml", _alias_bomb()))], "bomb.yaml"),
    Case("train-conv-layers-overflow", lambda c: ["train", "--config", str(c.train_config()), "--set",
                                                  "model.overrides={conv_dim: [16, 16, 1.0e+20]}"], "conv_dim"),
    Case("train-max-seconds-inf", lambda c: ["train", "--config", str(c.train_config(tasks=[_pr_task(c, max_seconds=float("inf"))]))],
         "tasks[0].max_seconds=inf, expected a number in [0.1, 3600]"),
    Case("train-seed-huge", lambda c: ["train", "--config", str(c.train_config()), "--set", "seed=1e23"], "seed"),
    Case("train-seed-10e23", lambda c: ["train", "--config", str(c.train_config()), "--set",
                                        "seed=100000000000000000000000"],
         "seed=100000000000000000000000, expected an integer in [0, 4294967295]"),
    Case("train-steps-huge", lambda c: ["train", "--config", str(c.train_config()), "--set", "optimizer.steps=10000000000"],
         "optimizer.steps=10000000000, expected an integer in [1, 1000000000]"),
    Case("train-overrides-mask-length", lambda c: ["train", "--config", str(c.train_config()), "--set",
                                                   "model.overrides={mask_time_length: 100000000000000000000}"],
         "model.overrides.mask_time_length=100000000000000000000"),
    Case("train-alias-bomb-in-overrides", _alias_bomb_in_overrides, "aliases expand to more than 100000 nodes"),
    Case("train-recursive-alias", lambda c: ["train", "--config", str(c.text(
        "loop.yaml", f"base: {c.train_config()}\nfinetune: {{early_checkpoints: &e [0.5, *e]}}\n"))], "refers to itself"),
    Case("train-model-config-conv-dim", _huge_conv_dim, "conv_dim[1]=1e+20, expected an integer in [1, 65536]"),
    Case("train-batch-larger-than-data", lambda c: ["train", "--config", str(c.train_config(
        tasks=[{"name": "sid", "kind": "classification", "batch_size": 4096,
                "data": {"type": "corpus", "corpus_dir": str(c.corpus), "task": "sid"}}]))], "4096"),
    Case("train-output-under-a-file", lambda c: ["train", "--config", str(c.train_config()), "--set",
                                                 f"output_dir={c.text('plain_file', 'x')}/run"], "plain_file"),
    Case("train-run-dir-locked", _locked_run, "another run is using this directory"),
    Case("train-split-named-train", lambda c: ["train", "--config", str(c.train_config()), "--set",
                                               "tasks.0.splits={train: {}}"], "expected dev or test"),
    Case("train-keep-best-without-dev", lambda c: ["train", "--config", str(c.train_config()), "--set",
                                                   "dev_scoring.keep_best=true"], "expected a task with a dev split"),
    Case("train-folder-clip-outside-a-class", lambda c: [
        "train", "--config", str(c.train_config()), "--set", "tasks.0.kind=classification",
        "--set", f"tasks.0.data={{type: folder, path: {c.wav('clips/a.wav').parent}}}"],
         "expected it in a sub-folder named for its class"),
    Case("train-data-path-in-neither-place", lambda c: [
        "train", "--config", str(c.train_config()), "--set", "tasks.0.kind=classification",
        "--set", "tasks.0.data={type: folder, path: nowhere}"], "not found beside the config"),
    # ------------------------------------------------------------------ merge
    Case("merge-nan-alpha", lambda c: ["merge", "--pretrained", str(c.encoder), "--finetuned", str(c.encoder),
                                       "--alpha", "nan", "--out", str(c.tmp / "m")], "--alpha nan"),
    Case("merge-weights-count", lambda c: ["merge", "--pretrained", str(c.encoder), "--finetuned", str(c.encoder),
                                           "--weights", "0.5", "0.5", "--out", str(c.tmp / "m")], "--weights"),
    Case("merge-out-is-input", lambda c: ["merge", "--pretrained", str(c.encoder), "--finetuned", str(c.encoder),
                                          "--out", str(c.encoder)], "input directories"),
    Case("merge-missing-pretrained", lambda c: ["merge", "--pretrained", str(c.tmp / "absent"), "--finetuned",
                                                str(c.encoder), "--out", str(c.tmp / "m")], "absent"),
    Case("merge-architecture-mismatch", lambda c: ["merge", "--pretrained", str(c.encoder), "--finetuned",
                                                   str(c.other_encoder), "--out", str(c.tmp / "m")], "other"),
    Case("merge-out-holds-another-model", _merge_into_another_model, "already holds a model"),
    # ------------------------------------------------------------------ convert
    Case("convert-missing-source", lambda c: ["convert", str(c.tmp / "absent.pt"), str(c.tmp / "o")], "absent.pt"),
    Case("convert-not-a-zip", lambda c: ["convert", str(c.text("plain.pt", "not a checkpoint")), str(c.tmp / "o")],
         "plain.pt"),
    Case("convert-code-execution-pickle", lambda c: ["convert", str(_torch_zip(c, "evil.pt", _os_system_pickle())),
                                                     str(c.tmp / "o")], "os.system"),
    Case("convert-storage-smaller-than-claimed", lambda c: [
        "convert", _crafted(c, "short.pt", 200_000_000, 0, (200_000_000,), (1,)), str(c.tmp / "o")],
         "claims 200000000 float32 elements"),
    Case("convert-tensor-past-its-storage", lambda c: ["convert", _crafted(c, "past.pt", 4, 0, (768,), (1,)),
                                                       str(c.tmp / "o")], "past its 4 elements"),
    Case("convert-negative-stride", lambda c: ["convert", _crafted(c, "neg.pt", 4, 3, (2,), (-1,)), str(c.tmp / "o")],
         "must be non-negative integers"),
    Case("convert-huge-claimed-size", lambda c: ["convert", _crafted(c, "huge.pt", 4, 0, (2**20, 2**20), (0, 0)),
                                                 str(c.tmp / "o")], "above the limit of 2**34"),
    Case("convert-non-finite-weights", lambda c: ["convert", _non_finite_encoder(c, "inf_encoder"), str(c.tmp / "o")],
         "encoder.layers.0.attention.q_proj.weight holds non-finite values"),
    Case("convert-out-holds-a-model", lambda c: ["convert", str(c.encoder), str(c.other_encoder)],
         "already holds a model"),
    Case("convert-downstream-without-like", lambda c: ["convert", _pt(c, "dev-best.ckpt", {
        "Upstream": {"model.mask_emb": np.zeros(4, np.float32)}, "Step": 3}), str(c.tmp / "o")],
         "holds the fine-tuned weights only; give the pre-trained model the run started from (--like"),
    Case("convert-pt-out-without-suffix", lambda c: ["convert", str(c.encoder), str(c.tmp / "o"), "--to", "fairseq"],
         "expected a file name ending in .pt, .pth, .ckpt for a fairseq checkpoint"),
    Case("convert-pt-out-exists", lambda c: ["convert", str(c.encoder), str(c.text("o.pt", "kept")), "--to", "s3prl"],
         "o.pt: already exists; pass --overwrite to replace it"),
    Case("convert-unknown-fairseq-model", lambda c: ["convert", _pt(c, "d2v.pt", {
        "cfg": {"model": {"_name": "data2vec_audio"}, "task": {}}, "model": {"mask_emb": np.zeros(4, np.float32)}}),
        str(c.tmp / "o")], "_name='data2vec_audio' is not a pre-trained fairseq HuBERT, wav2vec 2.0 or WavLM model"),
    Case("convert-normalize-not-a-boolean", lambda c: ["convert", _pt(c, "norm.pt", {
        "cfg": {"model": {"_name": "hubert"}, "task": {"normalize": "yes"}}, "model": {"mask_emb": np.zeros(4, np.float32)}}),
        str(c.tmp / "o")], "normalize='yes', expected true or false"),
    Case("train-dora-not-a-boolean", lambda c: ["train", "--config", str(c.train_config()), "--set",
                                                "finetune.lora={dora: maybe}"], "finetune.lora.dora='maybe', expected true or false"),
    Case("merge-non-finite-finetuned", lambda c: ["merge", "--pretrained", str(c.encoder), "--finetuned",
                                                  _non_finite_encoder(c, "inf_ft"), "--out", str(c.tmp / "m")],
         "holds non-finite values"),
    # ------------------------------------------------------------------ extract
    Case("extract-bad-layers", lambda c: ["extract", "--encoder", str(c.encoder), "--folder", str(c.wav("a/x.wav").parent),
                                          "--out", str(c.tmp / "f"), "--layers", "0,99"], "--layers"),
    Case("extract-batch-size-zero", lambda c: ["extract", "--encoder", str(c.encoder), "--folder",
                                               str(c.wav("a/x.wav").parent), "--out", str(c.tmp / "f"),
                                               "--batch-size", "0"], "--batch-size"),
    Case("extract-num-buckets-zero", lambda c: ["extract", "--encoder", str(c.encoder), "--folder",
                                                str(c.wav("a/x.wav").parent), "--out", str(c.tmp / "f"),
                                                "--num-buckets", "0"], "--num-buckets 0: expected an integer in [1, 64]"),
    Case("extract-empty-folder", lambda c: ["extract", "--encoder", str(c.encoder), "--folder",
                                            str(c.text("empty/readme.txt", "no audio").parent), "--out", str(c.tmp / "f")],
         "no audio files"),
    Case("extract-corrupt-audio", _corrupt_audio, "broken.wav"),
    Case("extract-clip-shorter-than-receptive-field", lambda c: [
        "extract", "--encoder", str(c.encoder), "--folder", str(c.wav("short/x.wav", samples=300).parent),
        "--out", str(c.tmp / "f")], "x.wav: audio has 300 samples"),
    Case("extract-file-longer-than-max-seconds", lambda c: [
        "extract", "--encoder", str(c.encoder), "--folder", str(c.wav("long/x.wav", samples=32000).parent),
        "--out", str(c.tmp / "f"), "--max-seconds", "1"], "more than --max-seconds 1"),
    Case("extract-missing-encoder", lambda c: ["extract", "--encoder", str(c.tmp / "no_encoder"), "--folder",
                                               str(c.wav("a/x.wav").parent), "--out", str(c.tmp / "f")], "no_encoder"),
    # ------------------------------------------------------------------ evaluate
    Case("evaluate-lr-not-a-number", lambda c: ["evaluate", "--encoder", str(c.encoder), "--lr", "abc"], "--lr"),
    Case("evaluate-lr-zero", lambda c: ["evaluate", "--encoder", str(c.encoder), "--lr", "0"], "0"),
    Case("evaluate-unknown-task", lambda c: ["evaluate", "--encoder", str(c.encoder), "--tasks", "cmd",
                                             "--corpus-dir", str(c.corpus)], "cmd"),
    Case("evaluate-steps-huge", lambda c: ["evaluate", "--encoder", str(c.encoder), "--steps", "100000000000"],
         "steps=100000000000, expected an integer in [1, 1000000000]"),
    Case("evaluate-cache-dir-under-a-file", lambda c: [
        "evaluate", "--encoder", str(c.encoder), "--tasks", "sid", "--corpus-dir", str(c.corpus),
        "--cache-dir", f"{c.text('plain_file', 'x')}/cache"], "cannot write there"),
    Case("evaluate-unknown-label", lambda c: ["evaluate", "--encoder", str(c.encoder), "--tasks", "sid", "--steps", "2",
                                              "--corpus-dir", _corpus_with_unknown_speaker(c),
                                              "--cache-dir", str(c.tmp / "cache")],
         "speaker 'spk_nobody' is not one of the"),
    Case("evaluate-missing-corpus", lambda c: ["evaluate", "--encoder", str(c.encoder), "--tasks", "sid",
                                               "--corpus-dir", str(c.tmp / "no_corpus")], "no_corpus"),
    Case("evaluate-missing-encoder", lambda c: ["evaluate", "--encoder", str(c.tmp / "no_encoder"),
                                                "--corpus-dir", str(c.corpus)], "no_encoder"),
    Case("evaluate-corpus-dir-not-a-corpus", lambda c: ["evaluate", "--encoder", str(c.encoder), "--corpus-dir",
                                                        str(c.text("not_corpus/readme.txt", "x").parent)],
         "not a built demo corpus"),
    Case("evaluate-cache-budget-negative", lambda c: ["evaluate", "--encoder", str(c.encoder), "--tasks", "sid",
                                                      "--cache-budget-gb", "-1"], "cache_budget_gb=-1.0"),
    Case("evaluate-config-task-not-in-file", lambda c: _evaluate(c, {"name": "ks", "kind": "classification",
                                                                     "data": {"type": "corpus", "task": "ks"}},
                                                                 extra=["--tasks", "cmd"]),
         "task 'cmd': not in the evaluation file (it has ks)"),
    Case("evaluate-config-set-past-the-list", lambda c: _evaluate(c, {"name": "ks", "kind": "classification",
                                                                      "data": {"type": "corpus", "task": "ks"}},
                                                                  extra=["--set", "tasks.3.name=x"]),
         "tasks has 1 item"),
    Case("evaluate-config-missing-manifest", lambda c: _evaluate(c, {
        "name": "cmd", "kind": "classification", "data": {"type": "manifest", "path": "nowhere.jsonl", "field": "x"}}),
         "nowhere.jsonl: not found beside the config"),
    Case("evaluate-config-manifest-without-splits", lambda c: _evaluate(c, {
        "name": "cmd", "kind": "classification",
        "data": {"type": "manifest", "path": _manifest_without_splits(c), "field": "label"}}),
         "manifest has no 'split' field"),
    Case("evaluate-config-wer-on-phones", lambda c: _evaluate(c, {
        "name": "pr", "kind": "ctc", "metric": "wer", "data": {"type": "corpus", "corpus_dir": str(c.corpus),
                                                               "task": "pr"}}),
         "metric wer needs a character vocabulary"),
    Case("evaluate-config-qbe-on-a-manifest", lambda c: _evaluate(c, {
        "name": "q", "kind": "qbe", "data": {"type": "manifest", "path": "m.jsonl", "field": "x"}}),
         "expected one of corpus, quesst14 for a qbe task"),
    Case("evaluate-superb-root-unset", lambda c: ["evaluate", "--encoder", str(c.encoder), "--config",
                                                  str(SUPERB / "hubert_base_ks.yaml")], "data.root is missing"),
    Case("evaluate-superb-not-the-archive", lambda c: [
        "evaluate", "--encoder", str(c.encoder), "--config", str(SUPERB / "hubert_base_ks.yaml"),
        "--set", f"root={c.text('ks/readme.txt', 'x').parent}"], "validation_list.txt: file not found"),
    Case("evaluate-superb-iemocap-no-labels", lambda c: [
        "evaluate", "--encoder", str(c.encoder), "--config", str(SUPERB / "hubert_base_er.yaml"),
        "--set", f"root={c.text('iemocap/Session1/readme.txt', 'x').parent.parent}"], "EmoEvaluation: folder not found"),
    Case("evaluate-superb-snips-malformed-line", lambda c: _evaluate(c, {
        "name": "sf", "kind": "ctc", "data": {"type": "snips", "root": _snips_with_a_short_tag_line(c)}}),
         "all.iob.snips.txt:1: 2 words but 3 labels after the tab, expected 4 (O, a tag per word, the intent)"),
    Case("evaluate-superb-librimix-neither-layout", lambda c: _evaluate(c, {
        "name": "sd", "kind": "diarization",
        "data": {"type": "librimix", "root": str(c.text("mix/x.txt", "x").parent)}}),
         "mix: has neither train/wav.scp (the Kaldi-style folders of s3prl's prepare_diarization.py) nor metadata/"),
    Case("evaluate-superb-asv-trials-for-train", lambda c: _evaluate(c, {
        "name": "asv", "kind": "verification", "data": {
            "type": "voxceleb1_sv", "root": str(c.text("vox/dev/wav/x.txt", "x").parents[2]),
            "trials": str(c.text("t.txt", ""))}}),
         "t.txt' is set for the train split: a trial list is for the dev or test split (set it under splits.dev"),
    Case("evaluate-config-trials-for-sid", lambda c: _evaluate(c, {
        "name": "sid", "kind": "classification", "data": {"type": "voxceleb1", "root": "vox", "trials": "t.txt"}}),
         "data.trials='t.txt', expected it unset for type voxceleb1 (it is for type voxceleb1_sv, manifest, "
         "folder)"),
    Case("evaluate-config-slots-on-a-classification", lambda c: _evaluate(c, {
        "name": "ks", "kind": "classification", "slots": ["action"],
        "data": {"type": "corpus", "corpus_dir": str(c.corpus), "task": "ks"}}),
         "slots=['action'], expected a list of label fields, for an intent task only"),
    Case("evaluate-config-bilstm-diarization", lambda c: _evaluate(c, {
        "name": "sd", "kind": "diarization", "head": "bilstm",
        "data": {"type": "corpus", "corpus_dir": str(c.corpus), "task": "sd"}}),
         "head='bilstm', expected linear for a diarization task (bilstm: ctc only)"),
    Case("evaluate-config-unknown-superb-task", lambda c: _evaluate(c, {
        "name": "ks", "kind": "classification", "superb": "kws",
        "data": {"type": "corpus", "corpus_dir": str(c.corpus), "task": "ks"}}), "superb='kws'"),
    Case("evaluate-config-verification-manifest-without-trials", lambda c: _evaluate(c, {
        "name": "spk", "kind": "verification", "data": {"type": "manifest", "path": _manifest_with_splits(c),
                                                         "field": "label"}}),
         "spk.kind='verification', but manifest data gives class labels for its dev split, expected trial-list "
         "labels (a trial list: data.trials under splits.dev / splits.test)"),
    Case("evaluate-config-intent-on-the-keyword-corpus-task", lambda c: _evaluate(c, {
        "name": "ic", "kind": "intent", "data": {"type": "corpus", "corpus_dir": str(c.corpus), "task": "ks"}}),
         "ic.kind='intent', but corpus data task 'ks' gives class labels for its train split, expected slot-group "
         "labels"),
    Case("evaluate-unknown-reference-set", lambda c: ["evaluate", "--encoder", str(c.encoder), "--tasks", "sid",
                                                      "--reference", "best"],
         "SUPERB reference set 'best': expected one of leaderboard, paper-fbank+wavlm-large"),
    # ------------------------------------------------------------------ sweep
    Case("sweep-missing-config", lambda c: ["sweep", "--config", str(c.tmp / "nope.yaml")], "nope.yaml"),
    Case("sweep-batch-independent-not-a-boolean", lambda c: ["sweep", "--config",
                                                           str(c.sweep_config(batch_independent="maybe"))],
         "batch_independent='maybe', expected true or false"),
    Case("sweep-unknown-task", lambda c: ["sweep", "--config", str(c.sweep_config(tasks=["cmd"]))], "cmd"),
    Case("sweep-probe-steps-huge", lambda c: ["sweep", "--config", str(c.sweep_config(probe={"steps": 10**11}))],
         "probe.steps=100000000000, expected an integer in [1, 1000000000]"),
    Case("sweep-no-output-dir", lambda c: ["sweep", "--config", str(c.sweep_config(output_dir=None))],
         "output_dir is missing, expected a path"),
    Case("sweep-select-on-unknown", lambda c: ["sweep", "--config", str(c.sweep_config(select_on=["pr"]))],
         "select_on: 'pr' is not one of tasks ['sid']"),
    Case("sweep-unknown-label", lambda c: ["sweep", "--config", str(c.sweep_config(
        corpus_dir=_corpus_with_unknown_speaker(c)))], "speaker 'spk_nobody' is not one of the"),
    Case("sweep-nan-alpha", lambda c: ["sweep", "--config", str(c.sweep_config(alphas=[0.0, float("nan")]))], "alphas"),
    Case("sweep-probe-mode-unknown", lambda c: ["sweep", "--config", str(c.sweep_config(probe={"mode": "fast"}))],
         "probe.mode='fast'"),
    Case("sweep-task-not-in-evaluation-file", lambda c: ["sweep", "--config", str(c.sweep_config(
        evaluation=_evaluation(c, {"name": "ks", "kind": "classification", "data": {"type": "corpus", "task": "ks"}}),
        tasks=["sid"]))], "tasks: 'sid' is not a task to probe (the evaluation file"),
    Case("sweep-output-under-a-file", lambda c: ["sweep", "--config", str(c.sweep_config(
        output_dir=str(c.text("plain_file", "x") / "sweep")))], "plain_file"),
]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    sj.save_pretrained(sj.init_encoder(tiny_encoder_config(), seed=0), root / "encoder")
    sj.save_pretrained(sj.init_encoder(tiny_encoder_config(hidden_size=48, intermediate_size=64), seed=0),
                       root / "other")
    return root / "encoder", root / "other"


def test_the_table_covers_every_command():
    from speechft_jax.__main__ import COMMANDS

    assert set(COMMANDS) <= {case.id.split("-")[0] for case in CASES}
    assert len(CASES) >= 30 and len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_broken_input_is_one_line_and_exit_code_2(case, encoders, demo_corpus_tiny, tmp_path, capsys):
    ctx = Ctx(tmp_path, encoders[0], encoders[1], demo_corpus_tiny)
    argv = case.argv(ctx)
    capsys.readouterr()
    try:
        code = speechft_main(argv)
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit code {code}, stderr:\n{err}"
    assert "Traceback" not in err
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert case.expect in lines[0], f"{case.expect!r} not in {lines[0]!r}"
