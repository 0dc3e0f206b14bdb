"""The sweep's figure (`sweep/plot.py`): PNG and PDF files, one panel per task in the metric's own
units, error bars iff the results carry intervals, the chosen alpha and the alpha 0 / alpha 1 lines,
and the one-line note when matplotlib is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

import speechft_jax.sweep.runner as runner
from speechft_jax.sweep.plot import SKIPPED_NOTE, scores_figure, write_scores_figure
from speechft_jax.sweep.runner import HIGHER_IS_BETTER

ALPHAS = [0.0, 0.25, 0.5, 0.75, 1.0]
METRICS = {"pr": "error_rate", "sid": "accuracy", "ks": "accuracy", "asv": "eer", "sd": "der"}


def _summary(tasks=("pr", "sid", "ks"), *, intervals=True, best=0.5, alphas=ALPHAS) -> dict:
    """A sweep summary shaped like sweep.json's: test value 0.2 + 0.1 * alpha + 0.01 * task index,
    with `ci95` = value - 0.02, value + 0.03 when `intervals`."""
    results = {}
    for alpha in alphas:
        row = {}
        for index, task in enumerate(tasks):
            value = 0.2 + 0.1 * alpha + 0.01 * index
            row[task] = {"task": task, "metric": METRICS[task], "dev": value, "test": value, "details": {}}
            if intervals:
                row[task]["ci95"] = [value - 0.02, value + 0.03]
        results[str(alpha)] = row
    return {"alphas": list(alphas), "best_alpha": best, "finetuned_label": "Stable-FT", "results": results}


def _lines(axes, label):
    return [line for line in axes.get_lines() if line.get_label() == label]


def test_the_files_are_a_png_and_a_pdf(tmp_path):
    assert write_scores_figure(_summary(), tmp_path / "out", higher_is_better=HIGHER_IS_BETTER) == [
        "scores.png", "scores.pdf"]
    png, pdf = (tmp_path / "out" / "scores.png").read_bytes(), (tmp_path / "out" / "scores.pdf").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.rstrip().endswith(b"IEND\xaeB`\x82") and len(png) > 20_000
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF") and len(pdf) > 5_000
    assert not list((tmp_path / "out").glob("*.tmp*"))  # written atomically


@pytest.mark.parametrize("tasks", [("pr",), ("pr", "sid", "ks", "asv"), ("pr", "sid", "ks", "asv", "sd")])
def test_one_panel_per_task_with_its_metric_as_the_axis_label(tasks):
    figure = scores_figure(_summary(tasks), higher_is_better=HIGHER_IS_BETTER)
    assert [axes.get_title() for axes in figure.axes] == list(tasks)  # unused grid cells are removed
    labels = {axes.get_title(): axes.get_ylabel() for axes in figure.axes}
    assert labels["pr"] == "token error rate (lower is better)"
    if "sid" in labels:
        assert labels["sid"] == "accuracy (higher is better)" and labels["asv"] == "EER (lower is better)"
    for axes in figure.axes:
        assert [tick.get_text() for tick in axes.get_xticklabels()] == ["0", "0.25", "0.5", "0.75", "1"]


def test_error_rates_are_drawn_as_error_rates_with_the_chosen_alpha_and_references_marked():
    summary = _summary(("pr", "sid"), best=0.25)
    figure = scores_figure(summary, higher_is_better=HIGHER_IS_BETTER)
    for index, axes in enumerate(figure.axes):
        values = [0.2 + 0.1 * a + 0.01 * index for a in ALPHAS]
        (data,) = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
        np.testing.assert_allclose(np.asarray(data.lines[0].get_ydata(), float), values)  # not 1 - rate
        (chosen,) = _lines(axes, "chosen alpha 0.25 (on dev)")
        assert list(chosen.get_xdata()) == [0.25, 0.25]
        (star,) = [line for line in axes.get_lines() if line.get_marker() == "*"]
        assert (star.get_xdata()[0], star.get_ydata()[0]) == pytest.approx((0.25, values[1]))
        for label, value in (("alpha 0 (pre-trained)", values[0]), ("alpha 1 (Stable-FT)", values[-1])):
            (reference,) = _lines(axes, label)
            assert list(reference.get_ydata()) == pytest.approx([value, value])
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["test metric (95 % interval)", "alpha 0 (pre-trained)", "alpha 1 (Stable-FT)",
                      "chosen alpha 0.25 (on dev)"]


def test_no_reference_line_for_an_alpha_the_sweep_did_not_run():
    figure = scores_figure(_summary(("sid",), alphas=[0.25, 0.5, 1.0]), higher_is_better=HIGHER_IS_BETTER)
    assert not _lines(figure.axes[0], "alpha 0 (pre-trained)") and _lines(figure.axes[0], "alpha 1 (Stable-FT)")


def test_error_bars_span_the_intervals_and_are_absent_without_them():
    axes = scores_figure(_summary(("sid",)), higher_is_better=HIGHER_IS_BETTER).axes[0]
    (bars,) = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    (segments,) = [collection.get_segments() for collection in bars.lines[2]]
    for alpha, segment in zip(ALPHAS, segments):
        value = 0.2 + 0.1 * alpha
        assert sorted(segment[:, 1]) == pytest.approx([value - 0.02, value + 0.03])

    axes = scores_figure(_summary(("sid",), intervals=False), higher_is_better=HIGHER_IS_BETTER).axes[0]
    assert not [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    (line,) = _lines(axes, "test metric")
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), [0.2 + 0.1 * a for a in ALPHAS])


def test_without_matplotlib_the_figure_is_skipped_with_a_one_line_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    assert write_scores_figure(_summary(), tmp_path, higher_is_better=HIGHER_IS_BETTER) == []
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(runner, "format_table", lambda summary: "the table")
    lines = runner.report({**_summary(), "figures": [], "wall_seconds": 3.0}).splitlines()
    assert lines == ["the table", "best alpha 0.5 (chosen on dev); sweep.json written in 3 s", SKIPPED_NOTE]
    assert "pip install speechft-jax[plot]" in SKIPPED_NOTE
