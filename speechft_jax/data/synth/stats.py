"""Corpus statistics for the README: hours per split, speakers, and mean-MFCC linear probes.

The probes (a logistic regression on each utterance's mean MFCC vector, trained on `train`,
scored on `test`) show that speaker identification and speaking style are neither trivial
(~100 %) nor impossible (chance) on the generated corpus.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from speechft_jax.data.audio import decode_audio
from speechft_jax.data.manifest import read_manifest
from speechft_jax.data.mfcc import mfcc


def mean_mfcc_features(root: Path, manifest: str, field: str):
    """Mean 20-dim MFCC per utterance: `{split: (features [n, 20], labels [n])}`."""
    out: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for ex in read_manifest(root / manifest):
        feats = mfcc(decode_audio(ex.path), n_mfcc=20, n_mels=40).mean(axis=0)
        out[ex.fields["split"]][0].append(feats)
        out[ex.fields["split"]][1].append(ex.fields[field])
    return {k: (np.stack(v[0]), np.asarray(v[1])) for k, v in out.items()}


def linear_probe(root: Path, manifest: str, field: str, eval_split: str = "test") -> dict:
    """Accuracy of a logistic regression on mean MFCCs, train split -> `eval_split`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = mean_mfcc_features(root, manifest, field)
    x_train, y_train = data["train"]
    x_eval, y_eval = data[eval_split]
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    probe.fit(x_train, y_train)
    classes = len(set(y_train.tolist()))
    return {"task": manifest.split(".")[0], "field": field, "classes": classes,
            "train": len(y_train), "eval": len(y_eval),
            "accuracy": round(float(probe.score(x_eval, y_eval)), 4),
            "chance": round(1.0 / classes, 4)}


def corpus_report(root: str | Path, probes: bool = True) -> dict:
    """Hours per split and speakers (from `corpus.json`) plus the speaker and style probes."""
    root = Path(root)
    info = json.loads((root / "corpus.json").read_text())
    report = {"preset": info["preset"], "utterances": info["utterances"], "hours": info["hours"],
              "speakers": info["speakers"],
              "hours_per_split": {t: v["hours"] for t, v in info["tasks"].items()}}
    if probes:
        report["probes"] = [linear_probe(root, "sid.jsonl", "speaker"),
                            linear_probe(root, "style.jsonl", "style")]
    return report


def format_report(report: dict) -> str:
    """A plain-text table of `corpus_report`'s numbers."""
    lines = [f"corpus preset {report['preset']}: {report['utterances']} utterances, "
             f"{report['hours']:.2f} h, speakers {report['speakers']}"]
    splits = sorted({s for v in report["hours_per_split"].values() for s in v})
    lines.append("task     " + "".join(f"{s:>12}" for s in splits) + "   (hours)")
    for task, hours in report["hours_per_split"].items():
        lines.append(f"{task:<9}" + "".join(f"{hours.get(s, 0.0):>12.3f}" for s in splits))
    for p in report.get("probes", []):
        lines.append(f"mean-MFCC linear probe {p['task']:<6} {p['classes']:>4} classes: "
                     f"accuracy {p['accuracy']:.3f} (chance {p['chance']:.3f}, "
                     f"{p['train']} train / {p['eval']} test)")
    return "\n".join(lines)
