"""An alpha sweep end to end: per-alpha features from one compiled program, probes, a table, a plot.

`run_sweep(config)` loads theta_0 and theta_ft, and for each task (a `TaskDefinition` of the
demo corpus, `evaluate.demo_tasks`) computes every split's features for all alphas at once
(`sweep_feature_sets`: the merge inside the jit), trains the SUPERB-style probe of each alpha
with the definition's head (`evaluate.probe.train_probe`), and returns
`{alpha: {task: ProbeResult}}` plus the alpha that maximises the mean score over `select_on`.
With `similarity`, every alpha's features on the first task's test split are compared with
theta_0's (linear CKA and R^2 per hidden state, `evaluate.similarity`; theta_0's features come from
the same compiled program, alpha 0), and the weight update's L2 size is reported. It writes
`sweep.json`, `scores.svg` (score against alpha per task); `format_table` gives the printed table
(the paper's table in miniature: pre-trained = alpha 0, the fine-tuned encoder = alpha 1, named
by `finetuned_label` (Stable-FT in the demo), Speech-FT = the chosen alpha).

`output_dir` must take files before any work starts (else a one-line `ConfigError`). Each probe's
result is kept in `output_dir/sweep.partial.json` as it finishes (`sweep/partial.py`): a sweep
that stops half-way, re-run with the same settings, encoders and corpus, computes only the
(task, alpha) pairs still missing. The file is removed once `sweep.json` is written.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.evaluate.demo_tasks import demo_task
from speechft_jax.evaluate.features import check_writable
from speechft_jax.evaluate.probe import train_probe
from speechft_jax.evaluate.runner import probe_spec
from speechft_jax.evaluate.similarity import similarity_report, weight_change
from speechft_jax.files import atomic_write_json
from speechft_jax.models.pretrained import check_same_architecture
from speechft_jax.sweep.config import SweepConfig
from speechft_jax.sweep.features import same_cnn, sweep_feature_sets
from speechft_jax.sweep.partial import PARTIAL_NAME, PartialSweep, sweep_fingerprint
from speechft_jax.sweep.plot import line_plot_svg
from speechft_jax.tree_math import check_compatible

FINETUNED = "fine-tuned"  # alpha 1's name when nothing names the fine-tuning that made theta_ft
SPLITS = ("train", "dev", "test")
logger = logging.getLogger(__name__)


def task_score(result) -> float:
    """Higher is better: accuracy, or 1 - error rate."""
    return result.test if result.metric == "accuracy" else 1.0 - result.test


def run_sweep(config: SweepConfig, progress: bool = True) -> dict:
    from speechft_jax.data.synth import ensure_corpus

    started = time.time()
    out = Path(config.output_dir)
    check_writable(out, "output_dir")  # now, not after the sweep: its results would have nowhere to go
    base = load_pretrained(config.pretrained)
    tuned = load_pretrained(config.finetuned)
    check_same_architecture(base, tuned, config.pretrained, config.finetuned)
    check_compatible(base.params, tuned.params)
    root = Path(config.corpus_dir) if config.corpus_dir else ensure_corpus(config.corpus)
    alphas = [float(a) for a in config.alphas]
    definitions = {task: demo_task(root, task) for task in config.tasks}
    data = {(task, split): definitions[task].open(split) for task in config.tasks for split in SPLITS}
    partial = PartialSweep(out / PARTIAL_NAME, sweep_fingerprint(config, base, tuned, data))
    if partial.num_results and progress:
        logger.info(f"resuming the sweep: {partial.num_results} probe result(s) read from {partial.path}")
    # ||theta_alpha - theta_0|| = alpha ||theta_ft - theta_0||: one norm serves every alpha
    full_change = weight_change(tuned.params, base.params)
    shared_cnn = same_cnn(base.params, tuned.params)  # stable fine-tuning leaves the CNN as it was
    for task_index, task in enumerate(config.tasks):
        measure_task = config.similarity and task_index == 0
        # the alphas whose features this task still needs: a missing probe, or a missing similarity
        need = [a for a in alphas if not partial.has_result(task, a)
                or (measure_task and str(a) not in partial.similarity)]
        if not need:
            continue
        per_split = {}
        for split in SPLITS:
            source, label_spec = data[task, split]
            measure = measure_task and split == "test" and any(str(a) not in partial.similarity for a in need)
            split_alphas = need + [0.0] if measure and 0.0 not in need else need
            per_split[split] = sweep_feature_sets(base, tuned.params, split_alphas, source, label_spec,
                                                  shared_cnn=shared_cnn,
                                                  desc=f"{task} {split}: features for {len(split_alphas)} alphas")
            if measure:
                reference = per_split[split][split_alphas.index(0.0)].features
                partial.add_similarity({a: similarity_report(per_split[split][k].features, reference,
                                                             {key: a * v for key, v in full_change.items()}, task)
                                        for k, a in enumerate(need)})
        spec = probe_spec(definitions[task], data[task, "train"][1])
        for k, alpha in enumerate(need):
            if not partial.has_result(task, alpha):
                partial.add_result(task, alpha, train_probe(
                    spec, per_split["train"][k], per_split["dev"][k], per_split["test"][k],
                    learning_rates=config.probe.learning_rates, steps=config.probe.steps,
                    batch_size=config.probe.batch_size, seed=config.seed, progress=progress))
        del per_split
    results = {a: {t: partial.result(t, a) for t in config.tasks} for a in alphas}
    similarity = {a: partial.similarity[str(a)] for a in alphas} if config.similarity else {}
    select_on = list(config.select_on or config.tasks)
    objective = {a: float(np.mean([task_score(results[a][t]) for t in select_on])) for a in alphas}
    best = max(alphas, key=lambda a: objective[a])
    summary = {"pretrained": config.pretrained, "finetuned": config.finetuned, "alphas": alphas,
               "select_on": select_on, "objective": {str(a): objective[a] for a in alphas}, "best_alpha": best,
               "finetuned_label": config.finetuned_label or FINETUNED,
               "results": {str(a): {t: r.to_json() for t, r in results[a].items()} for a in alphas},
               "similarity": {str(a): v for a, v in similarity.items()},
               "wall_seconds": round(time.time() - started, 1)}
    atomic_write_json(out / "sweep.json", summary)
    line_plot_svg(out / "scores.svg", alphas, {t: [task_score(results[a][t]) for a in alphas] for t in config.tasks},
                  title="Speech-FT alpha sweep (test scores)", y_label="accuracy or 1 - error rate")
    partial.remove()
    return summary


def _method(alpha: float, best: float, finetuned_label: str) -> str:
    names = [{0.0: "pre-trained", 1.0: finetuned_label}.get(alpha), "Speech-FT" if alpha == best else None]
    return " + ".join(name for name in names if name)


def format_table(summary: dict) -> str:
    """Rows = alphas; columns = each task's test metric, the objective, and (with similarity) the
    last hidden state's CKA and R^2 to theta_0 and the relative weight update."""
    tasks = list(next(iter(summary["results"].values())))
    similarity = summary.get("similarity") or {}
    extra = f"  {'CKA last':>8}  {'R2 last':>8}  {'|dW|/|W0|':>9}" if similarity else ""
    lines = [f"{'alpha':<5}  {'method':<24}  " + "  ".join(f"{t:>8}" for t in tasks) + f"  {'objective':>9}" + extra]
    finetuned_label = summary["finetuned_label"]  # run_sweep always writes it
    for a in summary["alphas"]:
        row = summary["results"][str(a)]
        cells = "  ".join(f"{row[t]['test']:>8.4f}" for t in tasks)
        method = _method(a, summary["best_alpha"], finetuned_label)
        line = f"{a:<5g}  {method:<24}  {cells}  {summary['objective'][str(a)]:>9.4f}"
        if similarity:
            sim = similarity[str(a)]
            line += f"  {sim['layers'][-1]['cka']:>8.4f}  {sim['layers'][-1]['r2']:>8.4f}  {sim['relative']:>9.4f}"
        lines.append(line)
    metrics = ", ".join(f"{t}: {summary['results'][str(summary['alphas'][0])][t]['metric']}" for t in tasks)
    note = (f"; CKA / R2 of the last hidden state to theta_0's on {next(iter(similarity.values()))['task']} test"
            if similarity else "")
    lines.append(f"(test metrics: {metrics}; objective = mean over {', '.join(summary['select_on'])} of "
                 f"accuracy or 1 - error rate; the chosen alpha is marked Speech-FT{note})")
    return "\n".join(lines)


def report(summary: dict) -> str:
    """The table and where the results went."""
    return (format_table(summary) + f"\nbest alpha {summary['best_alpha']:g}; sweep.json and scores.svg written "
            f"in {summary['wall_seconds']:.0f} s")

