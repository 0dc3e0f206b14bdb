"""The SUPERB score: FBANK scores 0, SOTA 1000, linear in between, error rates unflipped, a task's
metrics averaged first; the paper's three rows give the totals computed by hand under both named
reference sets; a task or set that is not there is a one-line error naming it."""

from __future__ import annotations

import pytest

from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.superb import reference_set, reference_set_names, superb_score

# the Speech-FT paper's rows (HuBERT Base fine-tuned on ASR): PR PER, ASR WER, KS, QbE MTWV, SID,
# ASV EER, SD DER, ER, IC, SF F1 / CER
PAPER_ROWS = {"Speech-FT": (3.94, 5.75, 96.69, 0.1011, 84.11, 5.27, 5.99, 67.78, 98.97, 88.84, 23.46),
              "Stable-FT": (5.22, 7.63, 96.92, 0.0970, 79.89, 5.34, 6.02, 65.38, 98.71, 88.52, 23.80),
              "pre-trained": (5.17, 6.38, 96.59, 0.0687, 81.86, 5.56, 6.32, 64.99, 98.02, 88.54, 24.70)}
# by hand: sum over the ten tasks of (s - fbank) / (sota - fbank), SF's two metrics averaged, x 100
TOTALS = {"leaderboard": {"Speech-FT": 1004.37, "Stable-FT": 965.23, "pre-trained": 916.26},
          "paper-fbank+wavlm-large": {"Speech-FT": 899.48, "Stable-FT": 869.28, "pre-trained": 831.85}}


def results(row) -> dict:
    pr, asr, ks, qbe, sid, asv, sd, er, ic, f1, cer = row
    return {"pr": {"per": pr}, "asr": {"wer": asr}, "ks": {"accuracy": ks}, "qbe": {"mtwv": qbe},
            "sid": {"accuracy": sid}, "asv": {"eer": asv}, "sd": {"der": sd}, "er": {"accuracy": er},
            "ic": {"accuracy": ic}, "sf": {"f1": f1, "cer": cer}}


@pytest.mark.parametrize("name", sorted(TOTALS))
def test_the_papers_rows_score_the_hand_computed_totals(name):
    reference = reference_set(name)
    assert reference.source and len(reference.tasks) == 10
    for method, row in PAPER_ROWS.items():
        assert superb_score(results(row), reference) == pytest.approx(TOTALS[name][method], abs=0.005), method


def test_leaderboard_is_the_default_and_both_sets_are_named():
    assert reference_set().name == "leaderboard"
    assert reference_set_names() == ("leaderboard", "paper-fbank+wavlm-large")


def test_fbank_scores_zero_sota_one_thousand_and_subsets_average():
    reference = reference_set("leaderboard")
    fbank = {t: {m: p["fbank"] for m, p in metrics.items()} for t, metrics in reference.tasks.items()}
    sota = {t: {m: p["sota"] for m, p in metrics.items()} for t, metrics in reference.tasks.items()}
    assert superb_score(fbank, reference) == pytest.approx(0.0)
    assert superb_score(sota, reference) == pytest.approx(1000.0)
    # a lower-is-better metric halfway: 500; better than SOTA: above 1000; two tasks average
    assert superb_score({"pr": {"per": (82.01 + 3.53) / 2}}, reference) == pytest.approx(500.0)
    assert superb_score({"pr": {"per": 3.0}}, reference) > 1000.0
    assert superb_score({"pr": {"per": 3.53}, "sid": {"accuracy": 20.058174}}, reference) == pytest.approx(500.0)
    # SF's two metrics are averaged within the task: F1 at SOTA, CER at FBANK
    assert superb_score({"sf": {"f1": 89.81, "cer": 52.94}}, reference) == pytest.approx(500.0)


@pytest.mark.parametrize("scored, message", [
    ({"lid": {"accuracy": 90.0}}, "task 'lid': not in the SUPERB reference set 'leaderboard' (it has pr, asr"),
    ({"sf": {"wer": 20.0}}, "task 'sf': metric 'wer' is not in the SUPERB reference set 'leaderboard' (it has f1, cer)"),
    ({}, "the SUPERB score needs at least one task"),
])
def test_what_the_set_does_not_hold_is_a_one_line_error(scored, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")) as err:
        superb_score(scored, reference_set())
    assert "\n" not in str(err.value)


def test_an_unknown_set_is_named():
    with pytest.raises(ConfigError, match=r"SUPERB reference set 'paper': expected one of leaderboard, paper-fbank\+wavlm-large"):
        reference_set("paper")


def _probe(task, metric, test, **details):
    from speechft_jax.evaluate.probe import ProbeResult

    return ProbeResult(task, metric, dev=0.0, test=test, learning_rate=1e-3, layer_weights=[1.0], dev_by_lr={},
                       details=details)


def test_probe_results_in_fractions_score_as_the_papers_row_in_percent():
    """The Speech-FT row as probe results (fractions, SF's CER reported beside its F1) scores the
    total computed by hand from the row in %; tasks without a SUPERB stand-in are left out."""
    from speechft_jax.evaluate.superb import score_results

    pr, asr, ks, qbe, sid, asv, sd, er, ic, f1, cer = PAPER_ROWS["Speech-FT"]
    probes = {"pr": _probe("pr", "error_rate", pr / 100), "asr": _probe("asr", "wer", asr / 100),
              "ks": _probe("ks", "accuracy", ks / 100), "qbe": _probe("qbe", "mtwv", qbe),
              "sid": _probe("sid", "accuracy", sid / 100), "asv": _probe("asv", "eer", asv / 100, test_min_dcf=0.3),
              "sd": _probe("sd", "der", sd / 100), "style": _probe("style", "accuracy", er / 100),
              "ic": _probe("ic", "accuracy", ic / 100),
              "sf": _probe("sf", "slot_type_f1", f1 / 100, test_slot_value_cer=cer / 100),
              "mine": _probe("mine", "accuracy", 0.5)}
    stand_ins = {name: name for name in probes if name not in ("style", "mine")} | {"style": "er"}
    score, metrics = score_results(probes, stand_ins, reference_set("leaderboard"))
    assert score == pytest.approx(TOTALS["leaderboard"]["Speech-FT"], abs=0.01)
    assert metrics["sf"] == pytest.approx({"f1": f1, "cer": cer}) and set(metrics) == set(stand_ins.values())


@pytest.mark.parametrize("probe, message", [
    (("pr", "wer", 0.1), "task 'pr': SUPERB's pr is scored by error_rate, but the probe reports wer"),
    (("sf", "slot_type_f1", 0.9), "task 'sf': SUPERB's sf is scored by test_slot_value_cer, but the probe reports "
                                  "slot_type_f1"),
])
def test_a_result_scored_by_another_metric_is_a_one_line_error(probe, message):
    from speechft_jax.evaluate.superb import score_results

    with pytest.raises(ConfigError) as err:
        score_results({probe[0]: _probe(*probe)}, {probe[0]: probe[0]}, reference_set())
    assert str(err.value) == message


def test_two_tasks_standing_for_one_superb_task_is_an_error():
    from speechft_jax.evaluate.superb import score_results

    with pytest.raises(ConfigError, match="two tasks stand for SUPERB's 'ks'"):
        score_results({"a": _probe("a", "accuracy", 0.5), "b": _probe("b", "accuracy", 0.6)}, {"a": "ks", "b": "ks"},
                      reference_set())
