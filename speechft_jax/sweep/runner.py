"""An alpha sweep end to end: per-alpha features from one compiled program, probes, a table, a plot.

`run_sweep(config, tasks)` loads theta_0 and theta_ft, and for each task (an `EvalTask`:
declared in an evaluation file, the training run's own, or the demo corpus's; `SweepConfig.eval_tasks`)
trains the SUPERB-style probes of all alphas together with the definition's head
(`evaluate.probe_training.train_probes` on `merged_encoders`: K merges in one compiled program,
the merge inside the jit; features cached on disk or computed on the fly as the task's probe
settings say; a qbe task scores each merge's best dev layer instead), and returns
`{alpha: {task: ProbeResult}}` plus the alpha that maximises the mean **dev** score over
`select_on` (the first listed of tied alphas; the summary names the tie), with test beside it.
With `similarity`, every alpha's features on the first task's test split are compared with
theta_0's (linear CKA and R^2 per hidden state, `evaluate.similarity`; theta_0's features come from
the same compiled program, alpha 0), and the weight update's L2 size is reported. It writes
`sweep.json` and, with matplotlib, `scores.png` / `scores.pdf` (each task's test metric against alpha,
`sweep/plot.py`); `format_table` gives the printed table
(the paper's table in miniature: pre-trained = alpha 0, the fine-tuned encoder = alpha 1, named
by `finetuned_label` (Stable-FT in the demo), Speech-FT = the chosen alpha).

`output_dir` must take files before any work starts (else a one-line `ConfigError`). Each task's
probe results are kept in `output_dir/sweep.partial.json` as they finish (`sweep/partial.py`): a
sweep that stops half-way, re-run with the same settings, encoders and corpus, computes only the
(task, alpha) pairs still missing, and a task stopped mid-training resumes from its probe
checkpoints in `output_dir/probes/<task>/` (with `checkpoint_every`). The partial file is removed
once `sweep.json` is written.
With `readout: true`, each classification or intent task also gets the per-layer linear readout
(`evaluate/linear_readout.py`) of theta_0, every alpha and the fine-tuned encoder, under `readout`
in `sweep.json` (the full curves; the report prints each alpha's best dev layer).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.evaluate.config import EvalTask
from speechft_jax.evaluate.features import check_writable
from speechft_jax.evaluate.intervals import format_interval
from speechft_jax.evaluate.linear_readout import encoder_readouts, format_readout_by_alpha, readout_tasks
from speechft_jax.evaluate.probe import HIGHER_IS_BETTER as PROBE_HIGHER_IS_BETTER
from speechft_jax.evaluate.probe_training import train_probes
from speechft_jax.evaluate.runner import probe_spec, qbe_result
from speechft_jax.evaluate.similarity import similarity_report, weight_change
from speechft_jax.files import atomic_write_json
from speechft_jax.merge import interpolate
from speechft_jax.models.pretrained import check_same_architecture
from speechft_jax.sweep.config import SweepConfig
from speechft_jax.sweep.features import merged_encoders, same_cnn, sweep_feature_sets
from speechft_jax.sweep.partial import PARTIAL_NAME, PartialSweep, sweep_fingerprint
from speechft_jax.sweep.plot import SKIPPED_NOTE, write_scores_figure
from speechft_jax.tree_math import check_compatible

FINETUNED = "fine-tuned"  # alpha 1's name when nothing names the fine-tuning that made theta_ft
SPLITS = ("train", "dev", "test")
PROBES_DIR = "probes"  # output_dir/probes/<task>/: probe checkpoints and metrics
logger = logging.getLogger(__name__)


HIGHER_IS_BETTER = PROBE_HIGHER_IS_BETTER + ("mtwv",)


def task_score(result, split: str = "test") -> float:
    """A `ProbeResult`'s `split` ("dev" or "test") metric with higher better: accuracy, slot-type F1
    or MTWV as they are, 1 - an error rate (PER, WER, EER, DER)."""
    value = getattr(result, split)
    return value if result.metric in HIGHER_IS_BETTER else 1.0 - value


def run_sweep(config: SweepConfig, tasks: Sequence[EvalTask] | None = None, progress: bool = True) -> dict:
    """The sweep of `config` over `tasks` (default: `config.eval_tasks()`, the names resolved
    without a file's folders); see the module docstring."""
    started = time.time()
    out = Path(config.output_dir)
    check_writable(out, "output_dir")  # now, not after the sweep: its results would have nowhere to go
    tasks = config.eval_tasks() if tasks is None else list(tasks)
    read_out = readout_tasks(tasks, "readout") if config.readout else []  # a task list without one fails now
    base = load_pretrained(config.pretrained).with_runtime(batch_independent=config.batch_independent)
    tuned = load_pretrained(config.finetuned, like=base)
    check_same_architecture(base, tuned, config.pretrained, config.finetuned)
    check_compatible(base.params, tuned.params)
    alphas = [float(a) for a in config.alphas]
    names = [t.name for t in tasks]
    definitions = {t.name: t.definition for t in tasks}
    probes = {t.name: t.probe for t in tasks}  # each task's probe settings
    probed = [t.name for t in tasks if t.definition.kind != "qbe"]
    data = {(task, split): definitions[task].open(split) for task in probed for split in SPLITS}
    partial = PartialSweep(out / PARTIAL_NAME, sweep_fingerprint(config, base, tuned, data, probes))
    if partial.num_results and progress:
        logger.info(f"resuming the sweep: {partial.num_results} probe result(s) read from {partial.path}")
    # ||theta_alpha - theta_0|| = alpha ||theta_ft - theta_0||: one norm serves every alpha
    full_change = weight_change(tuned.params, base.params)
    shared_cnn = same_cnn(base.params, tuned.params)  # stable fine-tuning leaves the CNN as it was
    for task in [t for t in names if t not in probed]:  # qbe: no probe, the best dev layer of each merge
        for alpha in alphas:
            if not partial.has_result(task, alpha):
                partial.add_result(task, alpha, qbe_result(base, definitions[task],
                                                           params=interpolate(base.params, tuned.params, alpha)))
    for task_index, task in enumerate(probed):
        unmeasured = [a for a in alphas if str(a) not in partial.similarity]
        if config.similarity and task_index == 0 and unmeasured:
            # each alpha's test features against theta_0's (alpha 0), from one program, in memory
            source, label_spec = data[task, "test"]
            split_alphas = unmeasured + ([0.0] if 0.0 not in unmeasured else [])
            sets = sweep_feature_sets(base, tuned.params, split_alphas, source, label_spec, shared_cnn=shared_cnn,
                                      desc=f"{task} test: features for {len(split_alphas)} alphas")
            reference = sets[split_alphas.index(0.0)].features
            partial.add_similarity({a: similarity_report(sets[k].features, reference,
                                                         {key: a * v for key, v in full_change.items()}, task)
                                    for k, a in enumerate(unmeasured)})
            del sets
        need = [a for a in alphas if not partial.has_result(task, a)]
        if need:  # the missing alphas' probes train together, on one stream of the task's data
            trained = train_probes(probe_spec(definitions[task], data[task, "train"][1]),
                                   merged_encoders(base, tuned.params, need, shared_cnn),
                                   {split: data[task, split] for split in SPLITS}, probes[task],
                                   work_dir=out / PROBES_DIR / task, seed=config.seed, progress=progress)
            for alpha, result in zip(need, trained):
                partial.add_result(task, alpha, result)
    readouts = _readouts(base, tuned.params, alphas, read_out, shared_cnn, progress) if read_out else None
    results = {a: {t: partial.result(t, a) for t in names} for a in alphas}
    similarity = {a: partial.similarity[str(a)] for a in alphas} if config.similarity else {}
    select_on = list(config.select_on or names)
    # alpha is chosen on dev; test is reported beside it, never used to choose
    objective = {a: float(np.mean([task_score(results[a][t], "dev") for t in select_on])) for a in alphas}
    test_objective = {a: float(np.mean([task_score(results[a][t]) for t in select_on])) for a in alphas}
    best = max(alphas, key=lambda a: objective[a])  # the first listed of tied alphas
    tied = [a for a in alphas if objective[a] == objective[best]]
    summary = {"pretrained": config.pretrained, "finetuned": config.finetuned, "alphas": alphas,
               "select_on": select_on, "chosen_on": "dev", "objective": {str(a): objective[a] for a in alphas},
               "test_objective": {str(a): test_objective[a] for a in alphas}, "best_alpha": best,
               "tied_alphas": tied if len(tied) > 1 else [],
               "finetuned_label": config.finetuned_label or FINETUNED,
               "results": {str(a): {t: _result_json(r) for t, r in results[a].items()} for a in alphas},
               "similarity": {str(a): v for a, v in similarity.items()},
               "wall_seconds": round(time.time() - started, 1)}
    if readouts is not None:
        summary["readout"] = readouts
    # the figure's file names go into sweep.json; [] without matplotlib (the report says so)
    summary["figures"] = write_scores_figure(summary, out, higher_is_better=HIGHER_IS_BETTER)
    atomic_write_json(out / "sweep.json", summary)
    partial.remove()
    return summary


def _result_json(result) -> dict:
    """A result as `sweep.json` keeps it: the `ProbeResult`'s JSON, plus `ci95`, the test metric's
    95 % interval `[low, high]`, where the result has one (a probe's; a qbe task's has none)."""
    interval = result.details.get("test_ci95")
    return {**result.to_json(), **({"ci95": interval} if interval is not None else {})}


def _disjoint(a, b) -> bool:
    """Whether intervals `a` and `b` (`[low, high]`, or None: unknown) are known not to overlap."""
    return a is not None and b is not None and (a[1] < b[0] or b[1] < a[0])


def _method(alpha: float, best: float, finetuned_label: str) -> str:
    names = [{0.0: "pre-trained", 1.0: finetuned_label}.get(alpha), "Speech-FT" if alpha == best else None]
    return " + ".join(name for name in names if name)


def _test_cells(summary: dict, tasks: list) -> dict:
    """`{(alpha, task): the printed test cell}`: the metric, its 95 % interval where known, and the
    marks of an interval disjoint from alpha 0's (`*`) and alpha 1's (`+`); a task's cells equally wide."""
    alphas = summary["alphas"]
    interval = {(a, t): summary["results"][str(a)][t].get("ci95") for a in alphas for t in tasks}
    references = [(mark, ref) for mark, ref in (("*", 0.0), ("+", 1.0)) if ref in alphas]
    cells = {}
    for t in tasks:
        with_intervals = any(interval[a, t] is not None for a in alphas)
        for a in alphas:
            marks = "".join(mark for mark, ref in references if _disjoint(interval[a, t], interval[ref, t]))
            text = format_interval(summary["results"][str(a)][t]["test"], interval[a, t])
            cells[a, t] = text + f"{marks:<2}" if with_intervals else text
        width = max(8, *(len(cells[a, t]) for a in alphas))
        cells.update({(a, t): f"{cells[a, t]:>{width}}" for a in alphas})
    return cells


def format_table(summary: dict) -> str:
    """Rows = alphas; columns = each task's test metric with its 95 % interval (marked `*` where the
    interval does not overlap alpha 0's, `+` where not alpha 1's), the dev objective (which chose
    alpha), the test objective, and (with similarity) the last hidden state's CKA and R^2 to
    theta_0 and the relative weight update."""
    tasks = list(next(iter(summary["results"].values())))
    similarity = summary.get("similarity") or {}
    test_cells = _test_cells(summary, tasks)
    widths = {t: len(test_cells[summary["alphas"][0], t]) for t in tasks}
    extra = f"  {'CKA last':>8}  {'R2 last':>8}  {'|dW|/|W0|':>9}" if similarity else ""
    lines = [f"{'alpha':<5}  {'method':<24}  " + "  ".join(f"{t:>{widths[t]}}" for t in tasks)
             + f"  {'dev obj':>8}  {'test obj':>8}" + extra]
    finetuned_label = summary["finetuned_label"]  # run_sweep always writes it
    for a in summary["alphas"]:
        cells = "  ".join(test_cells[a, t] for t in tasks)
        method = _method(a, summary["best_alpha"], finetuned_label)
        line = (f"{a:<5g}  {method:<24}  {cells}  {summary['objective'][str(a)]:>8.4f}"
                f"  {summary['test_objective'][str(a)]:>8.4f}")
        if similarity:
            sim = similarity[str(a)]
            line += f"  {sim['layers'][-1]['cka']:>8.4f}  {sim['layers'][-1]['r2']:>8.4f}  {sim['relative']:>9.4f}"
        lines.append(line)
    metrics = ", ".join(f"{t}: {summary['results'][str(summary['alphas'][0])][t]['metric']}" for t in tasks)
    note = (f"; CKA / R2 of the last hidden state to theta_0's on {next(iter(similarity.values()))['task']} test"
            if similarity else "")
    lines.append(f"(test metrics: {metrics}; objective = mean over {', '.join(summary['select_on'])} of "
                 f"accuracy or 1 - error rate; the alpha with the best dev objective is marked Speech-FT{note})")
    references = [f"{mark} where it does not overlap alpha {ref:g}'s" for mark, ref in (("*", 0.0), ("+", 1.0))
                  if ref in summary["alphas"]]
    if references and any(r.get("ci95") is not None for row in summary["results"].values() for r in row.values()):
        lines.append(f"(test cells: metric [95 % interval: Wilson for accuracy, else bootstrap], "
                     f"marked {' and '.join(references)})")
    if summary.get("tied_alphas"):
        lines.append(f"(a tie on dev: alphas {', '.join(f'{a:g}' for a in summary['tied_alphas'])} have the same "
                     f"dev objective; the first listed, {summary['best_alpha']:g}, is taken)")
    return "\n".join(lines)


def _readouts(base, theta_ft, alphas, tasks: Sequence[EvalTask], shared_cnn: bool, progress: bool) -> dict:
    """`{task: {alpha: Readout JSON}}`: the per-layer linear readout of theta_0 (alpha 0), each alpha and
    the fine-tuned encoder (alpha 1), all K merges in one streamed pass per split."""
    alphas = list(alphas) + [a for a in (0.0, 1.0) if a not in alphas]
    encoders = merged_encoders(base, theta_ft, alphas, shared_cnn)
    return {task.name: {str(a): r.to_json() for a, r in zip(alphas, encoder_readouts(
                encoders, task.definition, num_buckets=task.probe.num_buckets, progress=progress))}
            for task in tasks}


def report(summary: dict) -> str:
    """The table and where the results went (a line saying so when the figure was skipped)."""
    written = ", ".join(["sweep.json"] + summary.get("figures", []))
    skipped = "" if summary.get("figures") else f"\n{SKIPPED_NOTE}"
    readout = f"\n\n{format_readout_by_alpha(summary['readout'])}" if summary.get("readout") else ""
    return (format_table(summary) + readout + f"\nbest alpha {summary['best_alpha']:g} (chosen on dev); {written} "
            f"written in {summary['wall_seconds']:.0f} s{skipped}")
