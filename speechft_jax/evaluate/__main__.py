"""`python -m speechft_jax.evaluate --encoder DIR --config eval.yaml [--tasks a,b]`: SUPERB-style probes.

The encoder is frozen; each task trains a weighted sum of its hidden states plus a downstream
head on its train split, over a learning-rate grid picked on dev, and reports test. The tasks
are declared in `--config` (evaluate/config.py: your own data, SUPERB's datasets, the demo
corpus); without it, `--tasks` names the demo corpus's built-in tasks (configs/eval/demo.yaml).
`--random-init` evaluates a randomly initialised encoder of the same shape instead (a baseline).
`--similarity-to DIR` adds the feature similarity to a reference encoder (theta_0): linear CKA and
R^2 per hidden state on the first task's test split, and the size of the weight update. `qbe`
(query-by-example detection, no training) reports the MTWV of the best dev layer. Prints a
table (each test metric with its 95 % interval, `evaluate/intervals.py`; the metrics reported
beside a task's own: slot-value CER, minDCF, DER's parts), the
SUPERB score of the tasks that stand for SUPERB's (`superb:` in the file) against the reference
set `--reference`, and writes `--out` JSON, and the log (notes, warnings, errors) to
`evaluate.log` beside it.
`--seeds N` trains each task's probes with N seeds (`--seed` onwards) on the same features and adds
the test metric's mean ± sd over them to the table and to `--out`.
`--readout` adds, per classification or intent task (others are skipped with a note), a linear
readout of every hidden state (`evaluate/linear_readout.py`: mean+std pooled utterance vectors,
multinomial logistic regression, C chosen on dev): a table of what each layer holds, dev and test
accuracy with the test's Wilson 95 % interval, also in `--out` under `readout`; its vectors are
pooled from the probes' feature cache when there is one.
The probes read their hidden states from a feature cache on disk or run the encoder in their own
step (`--probe-mode`; auto: cached when the features fit `--cache-budget-gb`, a line in the log says
which); each task's probe checkpoints and `metrics.jsonl` go to `--work-dir/<task>/`, from which an
interrupted evaluation resumes.
An utterance's features do not depend on what it is batched with: a group-norm CNN takes its
statistics over each utterance's own samples (`EncoderConfig.batch_independent`); `--batch-dependent`
normalises over the padded batch instead, as transformers does.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.cli import QUIET_HELP, ArgumentParser, log_to_file, run_command
from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.intervals import format_interval
from speechft_jax.evaluate.probe_settings import DEFAULT_CACHE_BUDGET_GB, PROBE_MODES, ProbeSettings
from speechft_jax.evaluate.superb import reference_set, reference_set_names, score_results
from speechft_jax.files import atomic_write_json

LOG_NAME = "evaluate.log"  # beside --out


def _learning_rates(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--lr {text}: expected comma-separated numbers, e.g. 1e-4,1e-3") from None


MAX_SEEDS = 100


def _seed_count(text: str) -> int:
    """`--seeds`' value: a count of probe seeds, 1 to `MAX_SEEDS` (argparse makes a bad one exit 2)."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"{text}: expected an integer from 1 to {MAX_SEEDS}")
    return count


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", help="encoder directory (transformers or speechft) or hub id "
                                           "(default: the --config file's encoder)")
    parser.add_argument("--config", help="an evaluation YAML declaring the tasks (configs/eval/, configs/superb/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a --config key, e.g. root=/data/x or tasks.0.probe.steps=100 (repeatable)")
    parser.add_argument("--tasks", help="comma-separated task names (default: every task of --config; without "
                                        "--config, demo tasks of pr, asr, sid, ks, style, qbe: pr,sid,ks,style)")
    parser.add_argument("--corpus", default="demo", choices=("tiny", "demo", "full"),
                        help="demo corpus preset, without --config (default: demo)")
    parser.add_argument("--corpus-dir", help="an already built demo corpus (instead of --corpus)")
    parser.add_argument("--steps", type=int, help="probe training steps per learning rate (default: the "
                                                  "task's, else 1000)")
    parser.add_argument("--lr", help="learning-rate grid, picked on dev (default: the task's, else 1e-4,1e-3,1e-2)")
    parser.add_argument("--batch-size", type=int, help="probe batch size (default: the task's, else 16)")
    parser.add_argument("--cache-dir", help="cache frozen features here (reused across runs)")
    parser.add_argument("--probe-mode", choices=PROBE_MODES,
                        help="probes on features cached on disk, computed on the fly in the probes' step, or auto: "
                             "cached when they fit --cache-budget-gb (default: the task's, else auto)")
    parser.add_argument("--cache-budget-gb", type=float,
                        help=f"largest feature cache for --probe-mode auto (default: the task's, else "
                             f"{DEFAULT_CACHE_BUDGET_GB:g})")
    parser.add_argument("--work-dir", help="probe checkpoints and metrics.jsonl, per task (default: beside --out, "
                                           "OUT.probes/)")
    parser.add_argument("--random-init", action="store_true", help="a random encoder of the same shape")
    parser.add_argument("--batch-dependent", action="store_true",
                        help="a group-norm CNN normalises over the padded batch, as transformers does (an "
                             "utterance's features then depend on its batch); default: over its own samples")
    parser.add_argument("--similarity-to", metavar="DIR", help="compare features and weights with this encoder (theta_0)")
    parser.add_argument("--seed", type=int, default=0,
                        help="probe initialisation and data order, and --random-init's weights (default: 0)")
    parser.add_argument("--seeds", type=_seed_count, default=1, metavar="N",
                        help="train every task's probes with seeds --seed, --seed+1, ..., --seed+N-1 on the same "
                             "features; the table adds the test metric's mean ± sd over them (default: 1)")
    parser.add_argument("--readout", action="store_true",
                        help="also a per-layer linear readout (logistic regression on mean+std pooled states) of "
                             "each classification or intent task")
    parser.add_argument("--readout-pooling", choices=("mean_std", "mean"), default="mean_std",
                        help="the readout's utterance vector: mean and std of the frames, or the mean alone "
                             "(default: mean_std)")
    parser.add_argument("--reference", help="the SUPERB score's reference set: "
                                            f"{', '.join(reference_set_names())} (default: leaderboard)")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    args = parser.parse_args(argv)
    return run_command(lambda: run(args), quiet=args.quiet)


def _eval_tasks(args) -> tuple[list, str | None]:
    """`(EvalTask list, the config file's encoder)` of the command line: the `--config` file's tasks
    (those of `--tasks`), or the demo corpus's built-in ones; `--steps`, `--lr` and `--batch-size`
    replace each task's probe settings."""
    import dataclasses

    from speechft_jax.evaluate.config import load_eval_config
    from speechft_jax.evaluate.demo_tasks import demo_eval_tasks

    names = [t for t in (args.tasks or "").split(",") if t]
    changes = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size),
                                 ("learning_rates", _learning_rates(args.lr) if args.lr else None),
                                 ("mode", args.probe_mode), ("cache_budget_gb", args.cache_budget_gb)) if v is not None}
    demo_probe = ProbeSettings(steps=1000, learning_rates=(1e-4, 1e-3, 1e-2), batch_size=16)
    dataclasses.replace(demo_probe, **changes).validate()  # a bad value fails before a corpus is built or read
    if args.config:
        if args.corpus_dir:
            raise ConfigError("--corpus-dir: only without --config (a config's corpus tasks name their corpus_dir)")
        config, dirs = load_eval_config(args.config, args.set)
        tasks = config.eval_tasks(dirs, names or None)
        encoder = config.encoder
    else:
        if args.set:
            raise ConfigError("--set: only with --config (it overrides the evaluation file's keys)")
        from speechft_jax.data.synth import ensure_corpus, require_built_corpus

        root = require_built_corpus(args.corpus_dir, "--corpus-dir") if args.corpus_dir else ensure_corpus(args.corpus)
        tasks = demo_eval_tasks(root, names or ["pr", "sid", "ks", "style"], demo_probe)
        encoder = None
    tasks = [dataclasses.replace(t, probe=dataclasses.replace(t.probe, **changes)) for t in tasks]
    for task in tasks:
        task.probe.validate()
    return tasks, encoder


def _readouts(bundle, tasks, pooling: str, cache_dir) -> dict:
    """`{task: Readout.to_json()}` of the encoder's linear readout on each of `tasks`."""
    from speechft_jax.evaluate.frozen_encoders import single_encoder
    from speechft_jax.evaluate.linear_readout import encoder_readouts

    encoders = single_encoder(bundle) if tasks else None
    return {task.name: encoder_readouts(encoders, task.definition, pooling=pooling, cache_dir=cache_dir,
                                        num_buckets=task.probe.num_buckets)[0].to_json() for task in tasks}


def run(args) -> None:
    """The evaluation of `args` (parsed): tables on stdout, the JSON report in `--out`."""
    from speechft_jax.evaluate.features import check_writable
    from speechft_jax.evaluate.linear_readout import format_readout, readout_tasks
    from speechft_jax.evaluate.runner import evaluate_encoder, similarity_to_reference
    from speechft_jax.models.pretrained import check_same_architecture, init_encoder

    if args.out:
        log_to_file(Path(args.out).parent / LOG_NAME)
    if args.cache_dir:  # before any work: features computed for a cache that cannot take them are lost
        check_writable(Path(args.cache_dir), "--cache-dir")
    work_dir = Path(args.work_dir) if args.work_dir else Path(args.out).with_suffix(".probes") if args.out else None
    if work_dir is not None:
        check_writable(work_dir, "--work-dir")
    reference_points = reference_set(args.reference)  # an unknown name fails before any work
    tasks, config_encoder = _eval_tasks(args)
    read_out = readout_tasks(tasks, "--readout") if args.readout else []
    args.encoder = args.encoder or config_encoder
    if not args.encoder:
        raise ConfigError("--encoder: missing (the evaluation file names no encoder either)")
    runtime = {"batch_independent": not args.batch_dependent}
    bundle = load_pretrained(args.encoder).with_runtime(**runtime)
    if args.random_init:
        bundle = init_encoder(bundle.config, seed=args.seed, preprocessor=bundle.preprocessor)
    reference = None
    if args.similarity_to:
        reference = load_pretrained(args.similarity_to).with_runtime(**runtime)
        check_same_architecture(reference, bundle, args.similarity_to, args.encoder)
    started = time.time()
    with contextlib.ExitStack() as stack:
        # the similarity reads the probes' test features back: a cache, if only for this run
        # (and the readout pools the probes' features, and every probe seed reads them, instead of
        # running the encoder again)
        cache_dir = (Path(args.cache_dir) if args.cache_dir else
                     Path(stack.enter_context(tempfile.TemporaryDirectory()))
                     if reference or read_out or args.seeds > 1 else None)
        results = evaluate_encoder(bundle, tasks, seed=args.seed, seeds=args.seeds, cache_dir=cache_dir,
                                   work_dir=work_dir)
        readouts = _readouts(bundle, read_out, args.readout_pooling, cache_dir)
        measured = next((t.definition for t in tasks if t.definition.kind != "qbe"), None)
        if reference is not None and measured is None:
            raise ConfigError("--similarity-to: needs a task with train/dev/test utterances (not only qbe)")
        similarity = None if reference is None else similarity_to_reference(
            bundle, reference, measured, cache_dir=cache_dir)
    name = f"{args.encoder}{' (random init)' if args.random_init else ''}"
    print(f"\n{name}: {len(tasks)} task(s) in {time.time() - started:.0f} s")
    # with several probe seeds: the first seed's test and interval, then the mean ± sd over all
    seeds_cell = lambda r: (f"{r.details['test_mean']:.4f} ± {r.details['test_sd']:.4f} ({len(r.details['seeds'])} "
                            f"seeds)" if "test_sd" in r.details else "-")
    seeds_head = f" {'test over seeds':>26}" if args.seeds > 1 else ""
    print(f"{'task':<6} {'metric':<13} {'dev':>8} {'test [95 % interval]':>23}{seeds_head} {'lr':>8}  layer weights")
    for task, r in results.items():
        lr = "-" if r.learning_rate is None else f"{r.learning_rate:g}"
        test = format_interval(r.test, r.details.get("test_ci95"))
        over_seeds = f" {seeds_cell(r):>26}" if args.seeds > 1 else ""
        print(f"{task:<6} {r.metric:<13} {r.dev:>8.4f} {test:>23}{over_seeds} {lr:>8}  "
              + " ".join(f"{w:.2f}" for w in r.layer_weights))
        # the metrics reported beside the task's own, each on dev (at the chosen probe) and test
        for name in sorted(k[len("dev_"):] for k in r.details if k.startswith("dev_") and f"test_{k[4:]}" in r.details):
            print(f"{'':<6} {name:<13} {r.details['dev_' + name]:>8.4f} {r.details['test_' + name]:>23.4f}")
    if "qbe" in results:
        d = results["qbe"].details
        print(f"qbe: layer {d['layer']} (dev MTWV by layer: {' '.join(f'{x:.4f}' for x in d['dev_mtwv_by_layer'])}; "
              f"dev MAP: {' '.join(f'{x:.4f}' for x in d['dev_map_by_layer'])}); "
              f"test MAP {d['test_map']:.4f} over {d['test_queries']} queries x {d['test_documents']} documents")
    report = {"encoder": name, "results": {k: r.to_json() for k, r in results.items()}}
    stand_ins = {t.name: t.superb for t in tasks if t.superb}
    if stand_ins:
        score, metrics = score_results(results, stand_ins, reference_points)
        report["superb"] = {"reference": reference_points.name, "source": reference_points.source, "score": score,
                            "tasks": metrics}
        demo = any(d.type == "corpus" for t in tasks for d in t.definition.splits.values())
        print(f"\nSUPERB score over {len(metrics)} task(s) ({', '.join(metrics)}), reference set "
              f"{reference_points.name!r}: {score:.1f}"
              + ("\n(the demo corpus's tasks stand in for SUPERB's datasets: not comparable with published scores)"
                 if demo else ""))
    if similarity is not None:
        report["similarity"] = {"reference": args.similarity_to, **similarity}
        print(f"\nsimilarity to {args.similarity_to} on {similarity['task']} test: weight update "
              f"{similarity['l2']:.4g} ({similarity['relative']:.2%} of theta_0)")
        print(f"{'layer':<6} {'CKA':>7} {'R2':>7}")
        for layer in similarity["layers"]:
            print(f"{layer['layer']:<6} {layer['cka']:>7.4f} {layer['r2']:>7.4f}")
    if readouts:
        report["readout"] = readouts
        for task, readout in readouts.items():
            print("\n" + format_readout(readout, task))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(args.out), report)


if __name__ == "__main__":
    sys.exit(main())
