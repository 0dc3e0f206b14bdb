"""The SUPERB score over a set of tasks (SUPERB @ SLT 2022's definition, as SPEC section 4 gives it).

For tasks T with metrics I_t, a model u scores
`1000 / |T| * sum_t 1 / |I_t| * sum_i (s_i(u) - s_i(FBANK)) / (s_i(ref) - s_i(FBANK))`:
FBANK scores 0 and the reference model 1000. A lower-is-better metric (an error rate) needs no
sign flip: numerator and denominator are both negative when u improves on FBANK. Reference
values come from a JSON file `{task: {metric: {"fbank": x, "reference": y}}}`
(`speechft_jax/assets/superb_reference.json` holds SPEC section 4's numbers: FBANK and HuBERT Base).
"""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "assets" / "superb_reference.json"


def load_references(path: str | Path = REFERENCE_FILE) -> dict:
    return json.loads(Path(path).read_text())


def superb_score(results: dict, references: dict) -> float:
    """`results`: `{task: {metric: value}}` in the references' units; see the module docstring."""
    if not results:
        raise ValueError("superb_score needs at least one task")
    total = 0.0
    for task, metrics in results.items():
        if task not in references:
            raise ValueError(f"task {task!r}: no reference values (have {', '.join(sorted(references))})")
        if not metrics:
            raise ValueError(f"task {task!r}: no metrics")
        part = 0.0
        for metric, value in metrics.items():
            ref = references[task].get(metric)
            if ref is None or ref.get("fbank") is None or ref.get("reference") is None:
                raise ValueError(f"task {task!r}, metric {metric!r}: the references need 'fbank' and 'reference'")
            span = ref["reference"] - ref["fbank"]
            if span == 0:
                raise ValueError(f"task {task!r}, metric {metric!r}: FBANK and the reference are equal")
            part += (value - ref["fbank"]) / span
        total += part / len(metrics)
    return 1000.0 * total / len(results)
