"""The README's "Your own data" walk-through, run as written on generated audio: a manifest task
and a Hugging Face dataset task, fine-tuned for a few steps, alpha swept and chosen on dev on both
tasks, the merged encoder evaluated, every step from the README's own files and commands (the
shipped tiny HuBERT in place of HuBERT Base, a few steps in place of thousands), with no
demo-corpus code on the path."""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechft_jax import TINY_HUBERT_DIR

datasets = pytest.importorskip("datasets")

README = Path(__file__).parents[1] / "README.md"
HUB_ID = "facebook/hubert-base-ls960"
COMMANDS = ("lights_on", "volume_up", "stop")
SMALL = {"train": ["optimizer.steps=4", "dev_scoring.every=2", "checkpoint.every_steps=2", "tasks.0.batch_size=4", "tasks.0.num_buckets=1",
                   "sweep.alphas=[0.0,0.5,1.0]", "sweep.probe.steps=2", "sweep.probe.batch_size=4"],
         "evaluate": ["--steps", "2", "--batch-size", "4"]}


def readme_section() -> str:
    text = README.read_text()
    start = text.index("\n## Your own data\n")
    return text[start:text.index("\n## ", start + 1)]


def blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def clip(rng, seconds: float, pitch: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * pitch * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def write_data(folder: Path) -> None:
    """`commands.jsonl` (3 commands x 4 train / 2 dev / 2 test clips) and `speakers_dataset`, a
    saved `DatasetDict` (train / validation / test) of 2 speakers with an `Audio` column."""
    rng = np.random.default_rng(0)
    lines = []
    for split, count in (("train", 4), ("dev", 2), ("test", 2)):
        for c, command in enumerate(COMMANDS):
            for k in range(count):
                path = folder / "clips" / f"{split}_{command}_{k}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, clip(rng, 0.5 + 0.1 * k, 200 + 150 * c), 16000)
                lines.append(json.dumps({"path": f"clips/{path.name}", "label": command, "split": split}))
    (folder / "commands.jsonl").write_text("\n".join(lines) + "\n")
    features = datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "speaker": datasets.Value("string")})
    splits = {}
    for split, count in (("train", 6), ("validation", 4), ("test", 4)):
        rows = {"audio": [], "speaker": []}
        for i in range(count):
            buffer = io.BytesIO()
            sf.write(buffer, clip(rng, 0.6, 300 if i % 2 else 500), 16000, format="FLAC")
            rows["audio"].append({"bytes": buffer.getvalue(), "path": f"{split}_{i}.flac"})
            rows["speaker"].append(f"speaker_{i % 2}")
        splits[split] = datasets.Dataset.from_dict(rows, features=features).cast_column("audio", datasets.Audio())
    datasets.DatasetDict(splits).save_to_disk(str(folder / "speakers_dataset"))


def run(command: str, best_alpha: float | None) -> int:
    """One README command (`python -m speechft_jax.X ...`) run in this process, made small."""
    from speechft_jax.evaluate.__main__ import main as evaluate_main
    from speechft_jax.merge.__main__ import main as merge_main
    from speechft_jax.train.__main__ import main as train_main

    argv = [TINY_HUBERT_DIR if a == HUB_ID else a for a in shlex.split(command)]
    assert argv[:2] == ["python", "-m"], command
    name, args = argv[2].rsplit(".", 1)[-1], [str(a) for a in argv[3:]]
    if name == "train":
        args += [item for value in SMALL["train"] for item in ("--set", value)]
        args += ["--set", f"model.pretrained={TINY_HUBERT_DIR}"]
        return train_main(args)
    if name == "merge":
        args[args.index("--alpha") + 1] = str(best_alpha)  # the alpha the sweep chose on dev
        return merge_main(args)
    assert name == "evaluate", command
    return evaluate_main(args + SMALL["evaluate"])


def test_the_readme_walk_through_runs_on_generated_data(tmp_path, monkeypatch):
    import speechft_jax.data.synth as synth
    import speechft_jax.data.synth.tasks as synth_tasks

    def no_demo_corpus(*args, **kwargs):
        raise AssertionError("the demo corpus was read")

    for module in (synth, synth_tasks):
        for name in ("ensure_corpus", "corpus_task", "corpus_audio"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, no_demo_corpus)
    section = readme_section()
    for text in blocks(section, "yaml"):
        name = text.splitlines()[0].lstrip("# ").strip()
        (tmp_path / name).write_text(text)
    assert {"commands.yaml", "evaluation.yaml"} <= {p.name for p in tmp_path.iterdir()}
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    commands = [" ".join(block.replace("\\\n", " ").split()) for block in blocks(section, "bash")]
    commands = [c for block in commands for c in re.split(r" (?=python -m )", block)]
    assert [c.split()[2] for c in commands] == ["speechft_jax.train", "speechft_jax.merge", "speechft_jax.evaluate"]

    assert run(commands[0], None) == 0
    run_dir = tmp_path / "runs" / "commands"
    summary = json.loads((run_dir / "summary.json").read_text())
    scored = summary["task_scores"]["cmd"]
    assert set(scored) >= {"dev", "test"}
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("dev/cmd/accuracy" in m for m in metrics)
    sweep = json.loads((run_dir / "sweep" / "sweep.json").read_text())
    assert sweep["chosen_on"] == "dev" and sweep["select_on"] == ["spk"]
    assert set(sweep["results"]["0.5"]) == {"cmd", "spk"}
    dev_objective = {float(a): sweep["results"][a]["spk"]["dev"] for a in sweep["results"]}
    assert sweep["best_alpha"] == max(dev_objective, key=dev_objective.get)  # the first of ties, on dev

    assert run(commands[1], sweep["best_alpha"]) == 0
    assert run(commands[2], None) == 0
    report = json.loads((run_dir / "eval.json").read_text())
    assert set(report["results"]) == {"cmd", "spk"}
    assert all(r["metric"] == "accuracy" and 0.0 <= r["test"] <= 1.0 for r in report["results"].values())
