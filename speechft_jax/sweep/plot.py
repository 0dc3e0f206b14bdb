"""The sweep's figure: each task's test metric against alpha, one panel per task, as PNG and PDF.

Drawn with matplotlib (the optional `plot` extra) on the non-interactive Agg canvas, never pyplot,
so no display or global backend is touched. Each panel has its own y axis in the metric's own units
(an error rate is drawn as an error rate), error bars from the 95 % interval when the results carry
one (`ci95`), alpha 0's and alpha 1's values as dashed horizontal reference lines, and the chosen
alpha (chosen on dev) as a pale vertical band and a star; one legend serves every panel.
"""

from __future__ import annotations

import importlib
import io
import math
from pathlib import Path
from typing import Collection

from speechft_jax.files import atomic_write_bytes

FIGURE_NAMES = ("scores.png", "scores.pdf")
SKIPPED_NOTE = "the figure was skipped: matplotlib is not installed (pip install speechft-jax[plot])"
# axis labels for the metrics the probes and QbE report; any other name is shown as it is
METRIC_LABELS = {"accuracy": "accuracy", "error_rate": "token error rate", "wer": "WER", "eer": "EER",
                 "der": "DER", "slot_type_f1": "slot-type F1", "mtwv": "MTWV"}
PANEL_INCHES = (4.2, 3.2)  # width, height of one panel: 3 across fits a page at 10-pt ticks
REFERENCE_COLOURS = {0.0: "tab:gray", 1.0: "tab:red"}  # alpha 0's and alpha 1's horizontal lines


def matplotlib_available() -> bool:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return False
    return True


def _grid(num_tasks: int) -> tuple[int, int]:
    """(rows, columns) for `num_tasks` panels: at most 3 across, 4 as 2 x 2."""
    columns = 2 if num_tasks == 4 else min(num_tasks, 3)
    return math.ceil(num_tasks / columns), columns


def interval(result: dict) -> tuple[float, float] | None:
    """A result's 95 % interval of its test metric, `[low, high]` in the metric's units, or None."""
    bounds = result.get("ci95") or result.get("details", {}).get("test_ci95")
    return None if bounds is None else (float(bounds[0]), float(bounds[1]))


def scores_figure(summary: dict, *, higher_is_better: Collection[str]):
    """The figure (a `matplotlib.figure.Figure`) of a sweep `summary` (`run_sweep`'s, as in sweep.json):
    one axes per task, in the order of the results, then any unused grid cells removed;
    `higher_is_better` names the metrics whose larger values are better (for the axis labels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    alphas = [float(a) for a in summary["alphas"]]
    results = [summary["results"][str(a)] for a in alphas]
    tasks = list(results[0])
    best = float(summary["best_alpha"])
    names = {0.0: "alpha 0 (pre-trained)", 1.0: f"alpha 1 ({summary['finetuned_label']})"}
    references = {a: name for a, name in names.items() if a in alphas}
    rows, columns = _grid(len(tasks))
    figure = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 0.9), layout="constrained")
    FigureCanvasAgg(figure)
    axes_grid = figure.subplots(rows, columns, squeeze=False)
    for index, task in enumerate(tasks):
        axes = axes_grid[index // columns][index % columns]
        metric = results[0][task]["metric"]
        values = [row[task]["test"] for row in results]
        bounds = [interval(row[task]) for row in results]
        if all(b is not None for b in bounds):
            # a percentile bootstrap may leave the estimate just outside its interval: no negative bar
            error = [[max(v - lo, 0.0) for v, (lo, _) in zip(values, bounds)],
                     [max(hi - v, 0.0) for v, (_, hi) in zip(values, bounds)]]
            axes.errorbar(alphas, values, yerr=error, color="tab:blue", marker="o", markersize=5, linewidth=1.8,
                          capsize=4, elinewidth=1.2, label="test metric (95 % interval)", zorder=3)
        else:
            axes.plot(alphas, values, color="tab:blue", marker="o", markersize=5, linewidth=1.8, label="test metric",
                      zorder=3)
        for alpha, label in references.items():
            axes.axhline(values[alphas.index(alpha)], color=REFERENCE_COLOURS[alpha], linestyle="--",
                         linewidth=1.2, label=label, zorder=2)
        # a wide pale band rather than a thin line: it must not hide the chosen alpha's error bar
        axes.axvline(best, color="tab:green", linewidth=7, alpha=0.25, label=f"chosen alpha {best:g} (on dev)",
                     zorder=1)
        axes.plot([best], [values[alphas.index(best)]], linestyle="none", marker="*", markersize=14,
                  color="tab:green", markeredgecolor="black", markeredgewidth=0.6, zorder=4)
        direction = "higher" if metric in higher_is_better else "lower"
        axes.set_title(task, fontsize=12)
        axes.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} ({direction} is better)", fontsize=10)
        axes.set_xlabel("alpha", fontsize=10)
        if len(alphas) <= 11:
            axes.set_xticks(alphas, [f"{a:g}" for a in alphas])
        axes.yaxis.set_major_locator(MaxNLocator(nbins=5))
        axes.tick_params(labelsize=9)
        axes.grid(True, color="0.9", linewidth=0.8)
        axes.set_axisbelow(True)
    for index in range(len(tasks), rows * columns):  # the grid's unused cells
        axes_grid[index // columns][index % columns].remove()
    legend = {}  # label -> handle over all panels (a panel without intervals has a plain line)
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    labels = sorted(legend, key=lambda label: not label.startswith("test"))  # the data first, then the marks
    handles = [legend[label] for label in labels]
    # a legend entry is about half a panel wide: 1 per row under one panel, 2 under two, 4 under three
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4 if columns == 3 else columns),
                  fontsize=10, frameon=False)
    figure.suptitle("Speech-FT alpha sweep: test metric per task", fontsize=13)
    return figure


def write_scores_figure(summary: dict, out_dir: Path, *, higher_is_better: Collection[str]) -> list[str]:
    """`scores_figure(summary)` written as `out_dir`/scores.png and scores.pdf (atomically); the names
    written, or [] when matplotlib is not installed (the sweep runs on; `SKIPPED_NOTE` says why)."""
    if not matplotlib_available():
        return []
    figure = scores_figure(summary, higher_is_better=higher_is_better)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in FIGURE_NAMES:
        buffer = io.BytesIO()
        # no creation date in the PDF: the same sweep writes the same bytes
        figure.savefig(buffer, format=Path(name).suffix[1:], dpi=150,
                       metadata={"CreationDate": None} if name.endswith(".pdf") else None)
        atomic_write_bytes(out_dir / name, buffer.getvalue())
    return list(FIGURE_NAMES)
