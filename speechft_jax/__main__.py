"""`python -m speechft_jax COMMAND ...` (or `speechft COMMAND ...`): one entry point for the commands.

`python -m speechft_jax train --config configs/demo.yaml` is `python -m speechft_jax.train --config
configs/demo.yaml`; with no command, or `--help`, it lists them.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("speechft_jax.train.__main__", "fine-tune an encoder (and, with a sweep: section, run all of Speech-FT)"),
    "sweep": ("speechft_jax.sweep.__main__", "evaluate the merge theta_0 -> theta_ft at several alphas, pick one"),
    "evaluate": ("speechft_jax.evaluate.__main__", "SUPERB-style probes of a frozen encoder, feature similarity"),
    "merge": ("speechft_jax.merge.__main__", "write (1 - alpha) theta_0 + alpha theta_ft as a transformers directory"),
    "convert": ("speechft_jax.convert", "convert checkpoints: transformers, fairseq HuBERT, this project's Flax"),
    "extract": ("speechft_jax.extract", "write an encoder's hidden states for a folder or manifest of audio files"),
}


def usage() -> str:
    lines = ["usage: speechft COMMAND [ARGS ...]  (or python -m speechft_jax COMMAND; COMMAND --help for its options)",
             "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}, expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
