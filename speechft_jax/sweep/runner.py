"""An alpha sweep end to end: per-alpha features from one compiled program, probes, a table, a plot.

`run_sweep(config)` loads theta_0 and theta_ft, and for each task computes every split's
features for all alphas at once (`sweep_feature_sets`: the merge inside the jit), trains the
SUPERB-style probe of each alpha (`evaluate.probe.train_probe`), and returns
`{alpha: {task: ProbeResult}}` plus the alpha that maximises the mean score over `select_on`.
It writes `sweep.json`, `scores.svg` (score against alpha per task) and prints the table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.evaluate.probe import train_probe
from speechft_jax.evaluate.runner import probe_spec
from speechft_jax.merge import check_compatible, check_same_architecture
from speechft_jax.sweep.config import SweepConfig
from speechft_jax.sweep.features import sweep_feature_sets
from speechft_jax.sweep.plot import line_plot_svg


def task_score(result) -> float:
    """Higher is better: accuracy, or 1 - error rate."""
    return result.test if result.metric == "accuracy" else 1.0 - result.test


def run_sweep(config: SweepConfig, progress: bool = True) -> dict:
    from speechft_jax.data.synth import corpus_task, ensure_corpus

    started = time.time()
    base = load_pretrained(config.pretrained)
    tuned = load_pretrained(config.finetuned)
    check_same_architecture(base, tuned, config.pretrained, config.finetuned)
    check_compatible(base.params, tuned.params)
    root = Path(config.corpus_dir) if config.corpus_dir else ensure_corpus(config.corpus)
    alphas = [float(a) for a in config.alphas]
    results: dict[float, dict] = {a: {} for a in alphas}
    for task in config.tasks:
        per_split = {}
        for split in ("train", "dev", "test"):
            source, label_spec = corpus_task(root, task, split)
            per_split[split] = sweep_feature_sets(base, tuned.params, alphas, source, label_spec,
                                                  desc=f"{task} {split}: features for {len(alphas)} alphas")
        spec = probe_spec(task, label_spec)
        for k, alpha in enumerate(alphas):
            results[alpha][task] = train_probe(
                spec, per_split["train"][k], per_split["dev"][k], per_split["test"][k],
                learning_rates=config.probe.learning_rates, steps=config.probe.steps,
                batch_size=config.probe.batch_size, seed=config.seed, progress=progress)
        del per_split
    select_on = list(config.select_on or config.tasks)
    objective = {a: float(np.mean([task_score(results[a][t]) for t in select_on])) for a in alphas}
    best = max(alphas, key=lambda a: objective[a])
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"pretrained": config.pretrained, "finetuned": config.finetuned, "alphas": alphas,
               "select_on": select_on, "objective": {str(a): objective[a] for a in alphas}, "best_alpha": best,
               "results": {str(a): {t: r.to_json() for t, r in results[a].items()} for a in alphas},
               "wall_seconds": round(time.time() - started, 1)}
    (out / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")
    line_plot_svg(out / "scores.svg", alphas, {t: [task_score(results[a][t]) for a in alphas] for t in config.tasks},
                  title="Speech-FT alpha sweep (test scores)", y_label="accuracy or 1 - error rate")
    return summary


def format_table(summary: dict) -> str:
    tasks = list(next(iter(summary["results"].values())))
    lines = ["alpha  " + "  ".join(f"{t:>8}" for t in tasks) + f"  {'objective':>9}"]
    for a in summary["alphas"]:
        row = summary["results"][str(a)]
        cells = "  ".join(f"{row[t]['test']:>8.4f}" for t in tasks)
        mark = "  <- best" if a == summary["best_alpha"] else ""
        lines.append(f"{a:<5g}  {cells}  {summary['objective'][str(a)]:>9.4f}{mark}")
    metrics = ", ".join(f"{t}: {summary['results'][str(summary['alphas'][0])][t]['metric']}" for t in tasks)
    lines.append(f"(test metrics: {metrics}; objective = mean over {', '.join(summary['select_on'])} of "
                 f"accuracy or 1 - error rate)")
    return "\n".join(lines)
