"""What an alpha sweep has finished so far, kept on disk so that an interrupted sweep resumes.

`PartialSweep` lives in `output_dir/sweep.partial.json`: `{"fingerprint", "results": {task: {alpha:
ProbeResult as JSON}}, "similarity": {alpha: similarity report}}`, rewritten atomically after every
probe (and after the similarity), so a crash or Ctrl-C loses at most the probe in progress. The
fingerprint (`sweep_fingerprint`) hashes everything a probe's result depends on: both encoders'
weights, config and preprocessing, the alphas, tasks, each task's probe settings, seed and `similarity`, and
every task split's data and labels; a file with another fingerprint is ignored (and replaced), so a
changed setting never reuses a result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from speechft_jax.evaluate.features import label_description, source_description
from speechft_jax.evaluate.probe import ProbeResult
from speechft_jax.files import atomic_write_json
from speechft_jax.tree_math import params_fingerprint

PARTIAL_NAME = "sweep.partial.json"


def sweep_fingerprint(config, base, tuned, data: dict, probes: dict) -> str:
    """A hash of what the sweep's per-alpha results depend on (module docstring); `data` maps
    `(task, split)` to that split's `(source, label_spec)`, `probes` each task to its probe settings."""
    description = {
        "encoders": [[params_fingerprint(b.params), b.config.to_hf_dict(), b.preprocessor] for b in (base, tuned)],
        "alphas": [float(a) for a in config.alphas], "tasks": list(probes),
        "probe": {task: dataclasses.asdict(settings) for task, settings in probes.items()},
        "seed": config.seed, "similarity": config.similarity, "batch_independent": config.batch_independent,
        "data": [[task, split, source_description(source), label_description(spec)]
                 for (task, split), (source, spec) in data.items()],
    }
    return hashlib.sha1(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()


class PartialSweep:
    """The probes and similarity reports finished so far under one fingerprint (module docstring)."""

    def __init__(self, path: Path, fingerprint: str):
        self.path, self.fingerprint = Path(path), fingerprint
        self.results: dict[str, dict[str, dict]] = {}
        self.similarity: dict[str, dict] = {}
        try:
            kept = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # none yet, or unreadable: start afresh
        if isinstance(kept, dict) and kept.get("fingerprint") == fingerprint:
            self.results, self.similarity = kept.get("results") or {}, kept.get("similarity") or {}

    @property
    def num_results(self) -> int:
        return sum(len(by_alpha) for by_alpha in self.results.values())

    def has_result(self, task: str, alpha: float) -> bool:
        return str(alpha) in self.results.get(task, {})

    def result(self, task: str, alpha: float) -> ProbeResult:
        # every result, new or read back, goes through JSON: a resumed sweep reports the same values
        return ProbeResult(**self.results[task][str(alpha)])

    def add_result(self, task: str, alpha: float, result: ProbeResult) -> None:
        self.results.setdefault(task, {})[str(alpha)] = json.loads(json.dumps(result.to_json()))
        self._save()

    def add_similarity(self, reports: dict) -> None:
        """`reports`: `{alpha: similarity report}`."""
        self.similarity.update({str(a): json.loads(json.dumps(r)) for a, r in reports.items()})
        self._save()

    def _save(self) -> None:
        atomic_write_json(self.path, {"fingerprint": self.fingerprint, "results": self.results,
                                      "similarity": self.similarity})

    def remove(self) -> None:
        """The sweep is complete (`sweep.json` holds it all): the partial file has served."""
        self.path.unlink(missing_ok=True)
