"""`python -m speechft_jax.evaluate --encoder DIR --tasks pr,sid,ks,style`: SUPERB-style probes.

The encoder is frozen; each task trains a weighted sum of its hidden states plus a downstream
head on the demo corpus's train split, over a learning-rate grid picked on dev, and reports test.
`--random-init` evaluates a randomly initialised encoder of the same shape instead (a baseline).
`--similarity-to DIR` adds the feature similarity to a reference encoder (theta_0): linear CKA and
R^2 per hidden state on the first task's test split, and the size of the weight update. `qbe`
(query-by-example detection, no training) reports the MTWV of the best dev layer. Prints a
table and writes `--out` JSON, and the log (notes, warnings, errors) to `evaluate.log` beside it.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.cli import QUIET_HELP, ArgumentParser, log_to_file, run_command
from speechft_jax.errors import ConfigError
from speechft_jax.evaluate.probe_settings import ProbeSettings
from speechft_jax.files import atomic_write_json

LOG_NAME = "evaluate.log"  # beside --out


def _learning_rates(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--lr {text}: expected comma-separated numbers, e.g. 1e-4,1e-3") from None


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", required=True, help="encoder directory (transformers or speechft) or hub id")
    parser.add_argument("--tasks", default="pr,sid,ks,style",
                        help="comma-separated: pr, asr, sid, ks, style, qbe (default: pr,sid,ks,style)")
    parser.add_argument("--corpus", default="demo", choices=("tiny", "demo", "full"),
                        help="demo corpus preset (default: demo)")
    parser.add_argument("--corpus-dir", help="an already built corpus (instead of --corpus)")
    parser.add_argument("--steps", type=int, default=1000,
                        help="probe training steps per learning rate (default: 1000)")
    parser.add_argument("--lr", default="1e-4,1e-3,1e-2",
                        help="learning-rate grid, picked on dev (default: 1e-4,1e-3,1e-2)")
    parser.add_argument("--batch-size", type=int, default=16, help="probe batch size (default: 16)")
    parser.add_argument("--cache-dir", help="cache frozen features here (reused across runs)")
    parser.add_argument("--random-init", action="store_true", help="a random encoder of the same shape")
    parser.add_argument("--similarity-to", metavar="DIR", help="compare features and weights with this encoder (theta_0)")
    parser.add_argument("--seed", type=int, default=0,
                        help="probe initialisation and data order, and --random-init's weights (default: 0)")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    args = parser.parse_args(argv)
    return run_command(lambda: run(args), quiet=args.quiet)


def run(args) -> None:
    """The evaluation of `args` (parsed): tables on stdout, the JSON report in `--out`."""
    from speechft_jax.data.synth import ensure_corpus
    from speechft_jax.evaluate.features import check_writable
    from speechft_jax.evaluate.runner import evaluate_encoder, similarity_to_reference
    from speechft_jax.models.pretrained import check_same_architecture, init_encoder

    if args.out:
        log_to_file(Path(args.out).parent / LOG_NAME)
    probe = ProbeSettings(steps=args.steps, learning_rates=_learning_rates(args.lr), batch_size=args.batch_size)
    probe.validate()
    if args.cache_dir:  # before any work: features computed for a cache that cannot take them are lost
        check_writable(Path(args.cache_dir), "--cache-dir")
    tasks = [t for t in args.tasks.split(",") if t]
    bundle = load_pretrained(args.encoder)
    if args.random_init:
        bundle = init_encoder(bundle.config, seed=args.seed, preprocessor=bundle.preprocessor)
    root = Path(args.corpus_dir) if args.corpus_dir else ensure_corpus(args.corpus)
    reference = None
    if args.similarity_to:
        reference = load_pretrained(args.similarity_to)
        check_same_architecture(reference, bundle, args.similarity_to, args.encoder)
    started = time.time()
    with contextlib.ExitStack() as stack:
        # the similarity reads the probes' test features back: a cache, if only for this run
        cache_dir = (Path(args.cache_dir) if args.cache_dir else
                     Path(stack.enter_context(tempfile.TemporaryDirectory())) if reference else None)
        results = evaluate_encoder(bundle, tasks, corpus_root=root, steps=probe.steps,
                                   learning_rates=probe.learning_rates, batch_size=probe.batch_size, seed=args.seed,
                                   cache_dir=cache_dir)
        similarity = None if reference is None else similarity_to_reference(
            bundle, reference, next((t for t in tasks if t != "qbe"), "asr"), corpus_root=root,
            cache_dir=cache_dir)  # QbE's documents are the asr task's utterances
    name = f"{args.encoder}{' (random init)' if args.random_init else ''}"
    print(f"\n{name}: {len(tasks)} task(s) in {time.time() - started:.0f} s")
    print(f"{'task':<6} {'metric':<11} {'dev':>8} {'test':>8} {'lr':>8}  layer weights")
    for task, r in results.items():
        lr = "-" if r.learning_rate is None else f"{r.learning_rate:g}"
        print(f"{task:<6} {r.metric:<11} {r.dev:>8.4f} {r.test:>8.4f} {lr:>8}  "
              + " ".join(f"{w:.2f}" for w in r.layer_weights))
    if "qbe" in results:
        d = results["qbe"].details
        print(f"qbe: layer {d['layer']} (dev MTWV by layer: {' '.join(f'{x:.4f}' for x in d['dev_mtwv_by_layer'])}; "
              f"dev MAP: {' '.join(f'{x:.4f}' for x in d['dev_map_by_layer'])}); "
              f"test MAP {d['test_map']:.4f} over {d['test_queries']} queries x {d['test_documents']} documents")
    report = {"encoder": name, "results": {k: r.to_json() for k, r in results.items()}}
    if similarity is not None:
        report["similarity"] = {"reference": args.similarity_to, **similarity}
        print(f"\nsimilarity to {args.similarity_to} on {similarity['task']} test: weight update "
              f"{similarity['l2']:.4g} ({similarity['relative']:.2%} of theta_0)")
        print(f"{'layer':<6} {'CKA':>7} {'R2':>7}")
        for layer in similarity["layers"]:
            print(f"{layer['layer']:<6} {layer['cka']:>7.4f} {layer['r2']:>7.4f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(args.out), report)


if __name__ == "__main__":
    sys.exit(main())
