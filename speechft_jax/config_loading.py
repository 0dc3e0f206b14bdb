"""Typed configuration files: YAML -> frozen dataclasses, with `--set key=value` overrides.

`load_config(Schema, path, overrides)` reads a YAML file, applies dotted overrides
(`optimizer.lr=3e-4`, `output_dir=/tmp/run1`), and builds `Schema` strictly: an unknown key, a
missing required key, a value of the wrong type, or a failed `validate()` is a one-line
`ConfigError` naming the file and the dotted key, raised before anything is compiled.

A file may start from another: `base: demo_pr.yaml` reads that file first (mappings merge key
by key, lists and values replace); `config_dirs(path)` lists the folders of the chain, where
the trainer looks for relative paths. Supported field types: bool, int, float (ints, and strings such as `5e-4`, accepted), str, Optional[...], Literal[...],
tuple[T, ...] / list[T] (YAML lists), dict[str, T], and nested dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path

import yaml

from speechft_jax.models.config import ConfigError


def parse_override(text: str) -> tuple[list[str], object]:
    """`"a.b=value"` -> `(["a", "b"], value)`, the value parsed as YAML (`1e-4`, `true`, `[1, 2]`)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"--set {text!r}: the key is empty")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({str(err).splitlines()[0]})") from None
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides) -> dict:
    """A copy of `data` with each `key=value` override set (intermediate mappings are created)."""
    data = copy.deepcopy(data)
    for text in overrides or ():
        path, value = parse_override(text)
        node = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(path[:i + 1])} is not a mapping")
            node = child
        node[path[-1]] = value
    return data


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value, tp, key: str, source: str):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    fail = lambda expected: ConfigError(f"{source}: {key}={value!r}, expected {expected}")
    if tp is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own error names the key precisely
            return _convert(value, options[0], key, source)
        for option in options:
            try:
                return _convert(value, option, key, source)
            except ConfigError:
                continue
        raise fail(" or ".join(_type_name(o) for o in options))
    if origin is typing.Literal:
        if value not in args:
            raise fail("one of " + ", ".join(repr(a) for a in args))
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise fail(f"a mapping of {tp.__name__} fields")
        return build(tp, value, source, prefix=f"{key}.")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise fail("a list")
        item = args[0] if args else typing.Any
        items = [_convert(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise fail("a mapping")
        value_type = args[1] if len(args) == 2 else typing.Any
        return {str(k): _convert(v, value_type, f"{key}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise fail("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail("a string")
        return value
    raise ConfigError(f"{source}: {key}: unsupported field type {_type_name(tp)}")


def build(schema, data: dict, source: str = "config", prefix: str = ""):
    """Build the dataclass `schema` from a mapping, strictly (see the module docstring)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the file'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(fields))})")
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], f"{prefix}{name}", source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key {prefix}{name}")
    try:
        instance = schema(**values)
        validate = getattr(instance, "validate", None)
        if callable(validate):
            validate()
    except ConfigError as err:
        raise ConfigError(f"{source}: {prefix}{err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: {prefix.rstrip('.') or schema.__name__}: {err}") from None
    return instance


def _merge(base: dict, update: dict) -> dict:
    """`base` with `update` laid over it; mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _chain(path, _seen=()) -> list[tuple[Path, dict]]:
    """`(file, its own keys)` for the `base:` chain of the YAML file at `path`, the furthest base first."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must be a mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return [(path, data)]
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base={base!r}, expected the path of another YAML file")
    base_path = (path.parent / base).resolve()
    if base_path in _seen:
        raise ConfigError(f"{path}: base={base!r} includes itself")
    return [*_chain(base_path, (*_seen, path.resolve())), (path, data)]


def read_yaml(path) -> dict:
    """A YAML mapping; a top-level `base: other.yaml` (relative to this file) is read first and
    this file's keys are laid over it."""
    merged: dict = {}
    for _, data in _chain(path):
        merged = _merge(merged, data)
    return merged


def config_dirs(path) -> list[Path]:
    """The folders of the YAML file at `path` and of its `base:` chain, this file's first: where a
    relative path written in any of them may be found."""
    dirs: list[Path] = []
    for file, _ in reversed(_chain(path)):
        if file.resolve().parent not in dirs:
            dirs.append(file.resolve().parent)
    return dirs


def load_config(schema, path, overrides=()):
    """Read the YAML file at `path` (and its `base:` chain), apply `overrides` (`key=value`
    strings), build `schema`."""
    return build(schema, apply_overrides(read_yaml(path), overrides), source=str(path))


def to_dict(config) -> dict:
    """A dataclass config as plain YAML-ready data (tuples become lists)."""
    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(config)
