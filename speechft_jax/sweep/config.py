"""The schema of `python -m speechft_jax.sweep --config sweep.yaml`.

    pretrained: speechft_jax/assets/tiny-hubert     # theta_0
    finetuned: runs/demo_pr/encoder                 # theta_ft (Speech-FT step 1's output)
    alphas: [0.0, 0.25, 0.5, 0.75, 1.0]
    evaluation: ../eval/demo.yaml                   # the tasks, declared in an evaluation file
    tasks: [pr, sid, ks, style]                     # which of them (default: all of its tasks)
    select_on: [sid, ks, style]                     # tasks whose mean dev score picks alpha (default: all)
    probe: {steps: 500, learning_rates: [1.0e-3, 1.0e-2], batch_size: 16}
    output_dir: runs/demo_sweep
    finetuned_label: Stable-FT                      # alpha 1's name in the table (default: fine-tuned)

A task name is looked up in the `evaluation` file (evaluate/config.py: your own data, SUPERB's
datasets, the demo corpus), then, under a training config's `sweep:`, among the run's own tasks
(which then need dev and test splits), then among the demo corpus's built-in tasks (pr, asr, sid,
ks, style on the `corpus` preset or `corpus_dir`). Every task is probed with `probe` unless the
evaluation file gives that task its own settings. A task's score is its accuracy, or 1 - its
error rate, so that higher is better everywhere; the chosen alpha maximises the mean **dev** score
over `select_on` (test scores are reported, never used to choose; a tie is reported as such).
`similarity: true` (the default) also compares every alpha's features with theta_0's on the first
task's test split (CKA and R^2 per layer) and reports the size of the weight update.
`readout: true` (default false) adds the per-layer linear readout (logistic regression on mean+std
pooled states, C chosen on dev) of theta_0, each alpha and theta_ft on the classification and intent
tasks (others are skipped with a note), under `readout` in sweep.json.
`batch_independent: true` (the default) takes a group-norm CNN's statistics over each utterance's
own samples, so that its features (the shared CNN's too) do not depend on what it is batched with;
`false` normalises over the padded batch, as transformers does.

The same section, without `pretrained`, `finetuned` and `output_dir`, can sit under `sweep:` in a
training config: the run then sweeps its own result (theta_0 = `model.pretrained`, theta_ft = the
run's `encoder/`, written under the run's `sweep/`), which is how `configs/demo.yaml` runs all of
Speech-FT in one command (`speechft_jax/pipeline.py`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Annotated, Literal, Mapping, Sequence

from speechft_jax.config_loading import SEED, config_dirs, load_config, resolve_path
from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.config import EvalTask, load_eval_config
from speechft_jax.evaluate.probe_settings import ProbeSettings
from speechft_jax.tasks.definition import SPLITS, TaskDefinition

DEMO_DEFAULT_TASKS = ("pr", "sid", "ks", "style")  # without an evaluation file or task names


@dataclass(frozen=True)
class SweepConfig:
    pretrained: str | None = None
    finetuned: str | None = None
    output_dir: str | None = None
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    evaluation: str | None = None
    tasks: tuple[str, ...] = ()
    select_on: tuple[str, ...] = ()
    corpus: Literal["tiny", "demo", "full"] = "demo"
    corpus_dir: str | None = None
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    similarity: bool = True
    readout: bool = False  # the per-layer linear readout of the classification and intent tasks
    batch_independent: bool = True  # a group-norm CNN's statistics over each utterance's own samples
    seed: Annotated[int, SEED] = 0
    finetuned_label: str | None = None  # alpha 1's name in the table: "fine-tuned" unless given

    def validate(self):
        if not self.alphas or not all(math.isfinite(a) for a in self.alphas):
            raise ConfigError(f"alphas={list(self.alphas)}: expected one or more finite numbers")
        if len(set(self.tasks)) != len(self.tasks):
            raise ConfigError(f"tasks={list(self.tasks)}: expected distinct task names")
        for task in self.select_on:
            if self.tasks and task not in self.tasks:
                raise ConfigError(f"select_on: {task!r} is not one of tasks {list(self.tasks)}")

    def eval_tasks(self, dirs: Sequence = (), run_tasks: Mapping[str, TaskDefinition] | None = None) -> list[EvalTask]:
        """The tasks to probe (module docstring), `evaluation` looked up in `dirs` (the sweep or
        training file's folders), `run_tasks` the training run's own tasks by name."""
        from speechft_jax.data.synth import ensure_corpus, require_built_corpus
        from speechft_jax.evaluate.demo_tasks import EVAL_TASKS, demo_task

        declared = {}
        if self.evaluation:
            path = resolve_path(self.evaluation, list(dirs))
            evaluation, eval_dirs = load_eval_config(path)
            declared = {t.name: t for t in evaluation.eval_tasks(eval_dirs)}
        run_tasks = dict(run_tasks or {})
        names = list(self.tasks or (declared or DEMO_DEFAULT_TASKS))
        for name in self.select_on:
            if name not in names:
                raise ConfigError(f"select_on: {name!r} is not one of tasks {names}")
        tasks, corpus_root = [], None
        for name in names:
            if name in declared:
                task = declared[name]
                # the file's own default yields to the sweep's `probe`; a task's own settings stay
                own = next(t.probe for t in evaluation.tasks if t.name == name)
                tasks.append(task if own is not None else dataclasses.replace(task, probe=self.probe))
            elif name in run_tasks:
                definition = run_tasks[name]
                missing = [s for s in SPLITS if s not in definition.splits]
                if missing or definition.self_supervised:
                    raise ConfigError(f"sweep.tasks: {name!r} is the training run's task, which has no "
                                      f"{' and no '.join(missing) or 'labels'} split to probe: give it "
                                      "splits: {dev: ..., test: ...}, or declare it in an evaluation file")
                tasks.append(EvalTask(definition, self.probe))
            elif name in EVAL_TASKS and not declared:
                if corpus_root is None:
                    corpus_root = (require_built_corpus(self.corpus_dir, "corpus_dir") if self.corpus_dir
                                   else ensure_corpus(self.corpus))
                tasks.append(EvalTask(demo_task(corpus_root, name), self.probe))
            else:
                where = (f"the evaluation file {self.evaluation} has {', '.join(declared)}" if declared else
                         f"the demo corpus has {', '.join(EVAL_TASKS)}")
                if run_tasks:
                    where += f"; the training run has {', '.join(run_tasks)}"
                raise ConfigError(f"tasks: {name!r} is not a task to probe ({where}; declare other tasks "
                                  "in an evaluation file and name it: evaluation: eval.yaml)")
        return tasks


def load_sweep_config(path, overrides=()) -> tuple[SweepConfig, list]:
    """A standalone sweep file (`pretrained`, `finetuned` and `output_dir` are required there) and
    the folders its relative paths are looked up in (`config_dirs`)."""
    config = load_config(SweepConfig, path, overrides)
    for key in ("pretrained", "finetuned", "output_dir"):
        if not getattr(config, key):
            raise ConfigError(f"{path}: {key} is missing, expected a path")
    return config, config_dirs(path)
