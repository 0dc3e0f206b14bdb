"""`python -m speechft_jax.extract --encoder DIR --folder AUDIO_DIR --out DIR`: dump hidden states.

Runs a (pre-trained, fine-tuned or merged) encoder over a folder of audio files or a manifest and
writes, per utterance, the chosen hidden states as `.npy` of shape `[layers, frames, hidden]`
(valid frames only), mirroring the audio files' relative paths, plus `index.jsonl` (audio path,
features file, frames, layers) in input order. Utterances are batched into a few padded length
buckets, so the encoder compiles a handful of times. The features do not depend on the batch: a
group-norm CNN takes its statistics over each file's own samples (`EncoderConfig.batch_independent`),
so a file's features equal its unpadded forward whatever the batch size and bucket;
`--batch-dependent` normalises over the padded bucket instead, as transformers does with a padded
batch. Each file is written atomically and existing ones are kept, so a re-run after a crash
continues where it stopped; a kept file with other layers, width or dtype than the run asks for is
an error (use a new `--out` for another encoder).

Before any decoding or forward pass, every file to compute is checked from its header: one longer
than `--max-seconds` (default 60 s; the encoder's memory grows with the square of the length) or
shorter than the encoder's receptive field (its CNN would give no frame) is a one-line error naming
it. Features with a NaN or Inf value are an error naming the file and the hidden state, and that
file is not written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.cli import QUIET_HELP, ArgumentParser, run_command
from speechft_jax.errors import ConfigError, DataError
from speechft_jax.files import atomic_write_bytes

INDEX_NAME = "index.jsonl"
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_NUM_BUCKETS = 4
MAX_NUM_BUCKETS = 64


def parse_layers(text: str, num_states: int) -> list[int]:
    """`all` or comma-separated hidden-state indices (0 = the input of layer 0; negatives count back)."""
    if text == "all":
        return list(range(num_states))
    try:
        picked = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--layers {text}: expected 'all' or comma-separated integers") from None
    bad = [i for i in picked if not -num_states <= i < num_states]
    if not picked or bad:
        raise ConfigError(f"--layers {text}: expected indices in [{-num_states}, {num_states - 1}] "
                          f"(the encoder has {num_states} hidden states)")
    return [i % num_states for i in picked]


def feature_names(paths: list[str]) -> list[str]:
    """Each audio path relative to the files' common folder, with `.npy` for its extension."""
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    names = [str(Path(os.path.relpath(os.path.abspath(p), root)).with_suffix(".npy")) for p in paths]
    seen: dict[str, str] = {}
    for name, path in zip(names, paths):
        if name in seen:
            raise ConfigError(f"{path}: its features would overwrite those of {seen[name]} ({name})")
        seen[name] = path
    return names


def check_durations(source, max_seconds: float | None) -> None:
    """Raise `DataError` for the first file of a `FileSource` longer than `max_seconds`, read from
    its header (nothing is decoded)."""
    from speechft_jax.data.audio import SAMPLE_RATE, audio_num_samples

    if max_seconds is None:
        return
    for i, example in enumerate(source.examples):
        seconds = audio_num_samples(example.path, name=source.origin(i)) / SAMPLE_RATE
        if seconds > max_seconds:
            raise DataError(source.origin(i), f"audio is {seconds:.1f} s long, more than --max-seconds "
                                              f"{max_seconds:g} (the encoder's memory grows with the square "
                                              f"of the length); split the file or raise --max-seconds")


def check_finite(features: np.ndarray, where: str, layers: list[int]) -> None:
    """Raise `DataError` naming the first hidden state of `features` `[layers, frames, hidden]`
    that holds a NaN or Inf value."""
    finite = np.isfinite(features).all(axis=(1, 2))
    if finite.all():
        return
    j = int(np.argmin(finite))
    bad = int((~np.isfinite(features[j])).sum())
    cause = ("do not fit float16; drop --float16" if features.dtype == np.float16
             else "came out of the encoder (its weights or this audio hold NaN/Inf?)")
    raise DataError(where, f"hidden state {layers[j]} has {bad} NaN/Inf value(s) of {features[j].size}: "
                           f"they {cause}; its features are not written")


def _save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def extract_to_folder(bundle, source, out_dir, layers: list[int], *, batch_size: int = 8,
                      dtype=np.float32, max_seconds: float | None = DEFAULT_MAX_SECONDS,
                      num_buckets: int = DEFAULT_NUM_BUCKETS) -> list[dict]:
    """Write the features of every utterance of a `FileSource` under `out_dir`; returns the index.

    Utterances are padded to `num_buckets` lengths; whether a group-norm CNN's features depend on
    that padding is `bundle.config.batch_independent` (`PretrainedBundle.with_runtime`).
    `DataError` for a file longer than `max_seconds` or shorter than the encoder's receptive field
    (before any forward pass), or whose features hold NaN/Inf (that file is not written, nor the index).
    """
    from speechft_jax.data.source import FileSource
    from speechft_jax.models.encode import encode_source
    from speechft_jax.models.pretrained import extract_features

    out_dir = Path(out_dir)
    paths = [ex.path for ex in source.examples]
    names = feature_names(paths)
    todo = [i for i, name in enumerate(names) if not (out_dir / name).is_file()]
    frames_of: dict[int, int] = {}  # utterance -> frames: read from the kept files, then from the forward
    expected = (len(layers), bundle.config.hidden_size, np.dtype(dtype))
    for i in sorted(set(range(len(names))) - set(todo)):
        kept = np.load(out_dir / names[i], mmap_mode="r")  # the header only
        if kept.ndim != 3 or (kept.shape[0], kept.shape[2], kept.dtype) != expected:
            raise ConfigError(f"{out_dir / names[i]}: a previous run left {kept.dtype} features of shape "
                              f"{tuple(kept.shape)}, this run writes {expected[2]} [{expected[0]}, frames, "
                              f"{expected[1]}]; use another --out (or the same --layers and dtype)")
        frames_of[i] = int(kept.shape[1])
    if todo:
        pending = FileSource([source.examples[i] for i in todo])
        check_durations(pending, max_seconds)

        def forward(audio, audio_mask):  # only the asked-for hidden states leave the device
            states, frame_mask = extract_features(bundle, audio, audio_mask)
            return states[np.asarray(layers)], frame_mask

        encoded = encode_source(bundle, pending, forward, batch_size=batch_size, num_buckets=num_buckets, leave=True)
        with contextlib.closing(encoded):
            for utterance in encoded:
                index = todo[utterance.index]
                check_finite(utterance.states, source.origin(index), layers)
                features = utterance.states.astype(dtype)
                check_finite(features, source.origin(index), layers)  # float16 may overflow
                frames_of[index] = utterance.frames
                _save_npy(out_dir / names[index], features)
    index = []
    for i, (path, name) in enumerate(zip(paths, names)):
        index.append({"audio": path, "features": name, "frames": frames_of[i], "layers": layers})
    atomic_write_bytes(out_dir / INDEX_NAME, "".join(json.dumps(r) + "\n" for r in index).encode())
    return index


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m speechft_jax.extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", required=True,
                        help="encoder directory (transformers or speechft), hub id or fairseq .pt")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--folder", help="a folder of .wav/.flac/.ogg files (searched recursively)")
    inputs.add_argument("--manifest", help="a JSONL/TSV manifest of audio files")
    parser.add_argument("--out", required=True, help="output folder (existing features are kept)")
    parser.add_argument("--layers", default="all", help="'all' (default) or hidden-state indices, e.g. 0,6,-1")
    parser.add_argument("--batch-size", type=int, default=8, help="utterances per forward pass (default 8)")
    parser.add_argument("--num-buckets", type=int, default=DEFAULT_NUM_BUCKETS,
                        help=f"padded lengths the files are batched into (default {DEFAULT_NUM_BUCKETS}): fewer "
                             f"compilations against less padding")
    parser.add_argument("--float16", action="store_true", help="store float16 instead of float32")
    parser.add_argument("--batch-dependent", action="store_true",
                        help="a group-norm CNN normalises over the padded bucket, as transformers does with "
                             "padding (a file's features then depend on its bucket); default: over the file's "
                             "own samples, equal to its unpadded forward")
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                        help=f"refuse a file longer than this, read from its header before anything is "
                             f"decoded (default {DEFAULT_MAX_SECONDS:g} s; memory grows with the square of "
                             f"the length)")
    parser.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size {args.batch_size}: expected a positive integer")
    if not 1 <= args.num_buckets <= MAX_NUM_BUCKETS:
        parser.error(f"--num-buckets {args.num_buckets}: expected an integer in [1, {MAX_NUM_BUCKETS}]")
    if not args.max_seconds > 0:
        parser.error(f"--max-seconds {args.max_seconds:g}: expected a positive number of seconds")
    return run_command(lambda: run(args), quiet=args.quiet)


def run(args) -> None:
    """The extraction of `args` (parsed): a one-line summary on stdout."""
    from speechft_jax.data.source import FileSource

    bundle = load_pretrained(args.encoder).with_runtime(batch_independent=not args.batch_dependent)
    layers = parse_layers(args.layers, bundle.config.num_hidden_layers + 1)
    source = FileSource.from_folder(args.folder) if args.folder else FileSource.from_manifest(args.manifest)
    if not len(source):
        raise ConfigError(f"{args.folder or args.manifest}: no audio files found")
    index = extract_to_folder(bundle, source, args.out, layers, batch_size=args.batch_size,
                              dtype=np.float16 if args.float16 else np.float32,
                              max_seconds=args.max_seconds, num_buckets=args.num_buckets)
    frames = sum(r["frames"] for r in index)
    print(f"{len(index)} utterance(s), {frames} frames, hidden states {','.join(map(str, layers))} -> "
          f"{Path(args.out) / INDEX_NAME}")


if __name__ == "__main__":
    sys.exit(main())
