"""configs/superb/*.yaml run with only `root` set: each file, on a tiny fake tree of its dataset in
the official layout (tests/superb_trees.py), evaluates the shipped tiny HuBERT for a few probe
steps through `python -m speechft_jax.evaluate` and reports its metric on dev and test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechft_jax import TINY_HUBERT_DIR
from speechft_jax.evaluate.__main__ import main as evaluate_main
from superb_trees import (LIBRISPEECH, make_fluent, make_iemocap, make_librimix_kaldi, make_librispeech, make_quesst,
                          make_snips, make_speech_commands, make_voxceleb1, make_voxceleb1_sv)

CONFIGS = Path(__file__).parents[1] / "configs" / "superb"
PHONES = "AH0 B K D EH1 F G HH IY1 JH L M N OW1 P R S T UW1 V W Z".split()


def write_lexicon(path: Path) -> Path:
    """A `WORD<TAB>PH PH ...` lexicon (SUPERB's g2p format) of every word of the fake LibriSpeech."""
    words = sorted({w for speakers in LIBRISPEECH.values() for chapters in speakers.values()
                    for lines in chapters.values() for line in lines for w in line.split()})
    path.write_text("".join(f"{w}\t{' '.join(PHONES[(ord(c) * 7) % len(PHONES)] for c in w[:3])}\n" for w in words))
    return path


TREES = {  # config -> (tree builder, extra --set, metric)
    "hubert_base_pr.yaml": (make_librispeech, lambda tmp: [f"tasks.0.data.lexicon={write_lexicon(tmp / 'lex.txt')}"],
                            "error_rate"),
    "hubert_base_asr.yaml": (make_librispeech, lambda tmp: ["tasks.0.lstm_units=8"], "wer"),
    "hubert_base_ks.yaml": (lambda tmp, corpus: make_speech_commands(tmp, corpus)[0].parent, None, "accuracy"),
    "hubert_base_sid.yaml": (make_voxceleb1, None, "accuracy"),
    "hubert_base_er.yaml": (lambda tmp, corpus: make_iemocap(tmp / "IEMOCAP_full_release"), None, "accuracy"),
    "hubert_base_ic.yaml": (lambda tmp, corpus: make_fluent(tmp / "fluent_speech_commands_dataset"), None, "accuracy"),
    "hubert_base_qbe.yaml": (lambda tmp, corpus: make_quesst(tmp / "quesst14Database"), None, "mtwv"),
    "hubert_base_asv.yaml": (make_voxceleb1_sv, lambda tmp: ["tasks.0.projection_dim=16"], "eer"),
    "hubert_base_sd.yaml": (make_librimix_kaldi, lambda tmp: ["tasks.0.lstm_units=8"], "der"),
    "hubert_base_sf.yaml": (lambda tmp, corpus: make_snips(tmp), lambda tmp: ["tasks.0.lstm_units=8"], "slot_type_f1"),
}


def test_every_superb_config_has_a_tree():
    assert sorted(TREES) == sorted(p.name for p in CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(TREES))
def test_superb_config_runs_with_only_root_set(name, demo_corpus_tiny, tmp_path, capsys):
    make, extra, metric = TREES[name]
    root = make(tmp_path, demo_corpus_tiny)
    sets = [f"root={root}", *(extra(tmp_path) if extra else [])]
    if metric != "mtwv":  # one padded length per split: a compile each, not four
        sets.append("tasks.0.probe.num_buckets=1")
    out = tmp_path / "out" / "result.json"
    argv = ["--config", str(CONFIGS / name), "--encoder", str(TINY_HUBERT_DIR), "--steps", "2", "--lr", "1e-3",
            "--batch-size", "2", "--out", str(out), "--quiet"]
    for value in sets:
        argv += ["--set", value]
    assert evaluate_main(argv) == 0, capsys.readouterr().err
    (result,) = json.loads(out.read_text())["results"].values()
    assert result["metric"] == metric
    bounded = metric not in ("error_rate", "wer", "der")  # an error rate may pass 1 (insertions, false alarms)
    assert result["test"] >= -1.0 if metric == "mtwv" else 0.0 <= result["test"] <= (1.0 if bounded else 10.0)
