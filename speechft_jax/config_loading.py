"""Typed configuration files: YAML -> frozen dataclasses, with `--set key=value` overrides.

`load_config(Schema, path, overrides)` reads a YAML file, applies dotted overrides
(`optimizer.lr=3e-4`, `output_dir=/tmp/run1`), and builds `Schema` strictly: an unknown key, a
missing required key, a value of the wrong type, or a failed `validate()` is a one-line
`ConfigError` naming the file and the dotted key, raised before anything is compiled. Numbers
are checked generically: a float must be finite, an int must fit 64 bits, and either must lie in
the `Range` given in the schema's type (`seed: Annotated[int, SEED]`).

YAML is read by `load_yaml`, a safe loader that refuses alias expansion beyond a small bound (a
"billion laughs" file), recursive aliases and absurd nesting; `--set` values go through it too.

A file may start from another: `base: demo_pr.yaml` reads that file first (mappings merge key
by key, lists and values replace); `config_dirs(path)` lists the folders of the chain, where
relative paths are looked up before the working directory (`resolve_path`; `require_path` names
both places when a file is in neither). `--set` reaches list items by number (`tasks.0.data.path=x`).

Supported field types: bool, int, float (ints, and strings such as `5e-4`, accepted), str,
Optional[...], Literal[...], tuple[T, ...] / list[T] (YAML lists), dict[str, T],
Annotated[int or float, Range(low, high)], and nested dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from pathlib import Path

import yaml

from speechft_jax.errors import ConfigError, short_repr

# A config uses a few aliases at most; a file whose aliases expand to more nodes than this is an
# alias bomb (9 levels of 9 aliases are 387 million nodes in 600 bytes).
MAX_ALIAS_USES = 100
MAX_ALIAS_NODES = 100_000
MAX_NESTING = 64
_INT_BOUNDS = (-2**63, 2**63 - 1)  # any int field: it must fit a 64-bit integer


class _LimitedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that counts what aliases add while composing, and refuses a document
    whose aliases would expand past `MAX_ALIAS_NODES` nodes (or are used more than
    `MAX_ALIAS_USES` times, or refer to themselves), or that nests deeper than `MAX_NESTING`."""

    def __init__(self, stream):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> its node count with aliases expanded
        self._alias_uses = self._alias_nodes = self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) and event.anchor in self.anchors:
            size = self._sizes.get(id(self.anchors[event.anchor]))
            where = f"line {event.start_mark.line + 1}"
            if size is None:
                raise yaml.YAMLError(f"alias *{event.anchor} refers to itself ({where})")
            self._alias_uses += 1
            self._alias_nodes += size
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise yaml.YAMLError(f"aliases expand to more than {MAX_ALIAS_NODES} nodes ({where})")
            if self._alias_uses > MAX_ALIAS_USES:
                raise yaml.YAMLError(f"more than {MAX_ALIAS_USES} aliases ({where}); write the values out")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise yaml.YAMLError(f"nested deeper than {MAX_NESTING} levels (line {event.start_mark.line + 1})")
        node = super().compose_node(parent, index)
        self._depth -= 1
        children = node.value if isinstance(node, yaml.SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        self._sizes[id(node)] = 1 + sum(self._sizes[id(child)] for child in children)
        return node


def load_yaml(text: str, source: str):
    """`text` parsed as YAML by the limited safe loader; a `ConfigError` naming `source` otherwise."""
    try:
        return yaml.load(text, Loader=_LimitedLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML ({' '.join(str(err).split())})") from None
    except ValueError as err:  # an integer of more than 4300 digits
        raise ConfigError(f"{source}: not valid YAML ({err})") from None


def parse_override(text: str) -> tuple[list[str], object]:
    """`"a.b=value"` -> `(["a", "b"], value)`, the value parsed as YAML (`1e-4`, `true`, `[1, 2]`)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"--set {text!r}: the key is empty")
    value = load_yaml(raw, f"--set {text!r}: the value") if raw.strip() else ""
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides) -> dict:
    """A copy of `data` with each `key=value` override set. A part of the dotted key names a
    mapping's key (a missing intermediate mapping is created) or, as a number, a list's item
    (`tasks.0.data.path=x`); an item past the list's end is an error, not an append."""
    data = copy.deepcopy(data)
    for text in overrides or ():
        path, value = parse_override(text)
        node, created = data, False
        for i, part in enumerate(path):
            where = ".".join(path[:i]) or "the config"
            if isinstance(node, list):
                if not part.isdigit():
                    raise ConfigError(f"--set {text!r}: {where} is a list; name an item by its number, not {part!r}")
                if int(part) >= len(node):
                    raise ConfigError(f"--set {text!r}: {where} has {len(node)} item{'s' * (len(node) != 1)}")
                part = int(part)
            elif not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {where} is not a mapping or a list")
            elif part.isdigit() and part not in node:
                raise ConfigError(f"--set {text!r}: {where} is "
                                  f"{'not in the config (no list to index)' if created else 'a mapping, not a list'}")
            if i == len(path) - 1:
                node[part] = value
            elif isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
                node, created = node[part], True
            else:
                node = node[part]
    return data


@dataclasses.dataclass(frozen=True)
class Range:
    """Inclusive bounds of a numeric field, given in its type: `steps: Annotated[int, Range(1, 10**9)]`."""

    low: float = -math.inf
    high: float = math.inf

    def describe(self, kind: str) -> str:
        number = lambda x: str(int(x)) if float(x).is_integer() else f"{x:g}"  # 4294967295, not 4.29e+09
        if math.isinf(self.high):
            return f"{kind} >= {number(self.low)}"
        return f"{kind} in [{number(self.low)}, {number(self.high)}]"


# Bounds shared by the schemas (a step count of a billion is past any real run).
SEED = Range(0, 2**32 - 1)
STEPS = Range(1, 10**9)
COUNT = Range(1, 65536)          # batch sizes, widths, ranks, clusters
FRACTION = Range(0.0, 1.0)
NON_NEGATIVE = Range(0.0)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value, tp, key: str, source: str):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    where = f"{source}: " if source else ""
    fail = lambda expected: ConfigError(f"{where}{key}={short_repr(value)}, expected {expected}")
    if tp is typing.Any:
        return value
    if origin is typing.Annotated:
        def check_ranges(number):
            for bounds in (m for m in tp.__metadata__ if isinstance(m, Range)):
                if isinstance(number, (int, float)) and not isinstance(number, bool) \
                        and not bounds.low <= number <= bounds.high:
                    raise fail(bounds.describe("an integer" if args[0] is int else "a number"))

        check_ranges(value)  # first: the field's range says more than the type's own bounds
        value = _convert(value, args[0], key, source)
        check_ranges(value)  # and a converted one ("5e-4")
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
        # the schema's Range (Annotated[int, ...]) narrows this; it stops 10**23 in any int field
        if not _INT_BOUNDS[0] <= value <= _INT_BOUNDS[1]:
            raise fail(f"an integer in [{_INT_BOUNDS[0]}, {_INT_BOUNDS[1]}]")
        return value
    if tp is float:
        number = value
        if isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                raise fail("a number") from None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise fail("a number")
        if abs(number) > 1e300 or not math.isfinite(number):  # .inf, .nan, or an int too big for a float
            raise fail("a finite number")
        return float(number)
    if tp is str:
        if not isinstance(value, str):
            raise fail("a string")
        return value
    raise ConfigError(f"{source}: {key}: unsupported field type {_type_name(tp)}")


def build(schema, data: dict, source: str = "config", prefix: str = ""):
    """Build the dataclass `schema` from a mapping, strictly (see the module docstring)."""
    where = f"{source}: " if source else ""  # a section built on its own is named by its caller
    if not isinstance(data, dict):
        raise ConfigError(f"{where}{prefix.rstrip('.') or 'the file'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(schema, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(fields))})")
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], f"{prefix}{name}", source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}missing required key {prefix}{name}")
    try:
        instance = schema(**values)
        validate = getattr(instance, "validate", None)
        if callable(validate):
            validate()
    except ConfigError as err:
        raise ConfigError(f"{where}{prefix}{err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}{prefix.rstrip('.') or schema.__name__}: {err}") from None
    return instance


def check(ok: bool, key: str, value, expected: str) -> None:
    """One test of a schema's `validate()`: a one-line `ConfigError` `key=value, expected ...` unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}={short_repr(value)}, expected {expected}")


def check_fields(instance) -> None:
    """The checks `build` makes (types, finite numbers, `Range`s), for a dataclass made in Python
    rather than read from a file: a one-line `ConfigError` `key=value, expected ...`."""
    hints = typing.get_type_hints(type(instance), include_extras=True)
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if field.init and not dataclasses.is_dataclass(value):  # a nested section checks itself
            _convert(value, hints[field.name], field.name, source="")


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
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a YAML file (not UTF-8 text)") from None
    data = load_yaml(text, str(path)) or {}
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


def _folders(config_dir) -> list[Path]:
    if config_dir is None:
        return []
    return [Path(config_dir)] if isinstance(config_dir, (str, Path)) else [Path(f) for f in config_dir]


def resolve_path(path: str, config_dir: Path | typing.Sequence[Path] | None) -> Path:
    """Where a relative `path` written in a config file is: beside the first YAML file that has it
    (`config_dir`: the folder of the run's YAML file, or the folders of its `base:` chain,
    `config_dirs`), else in the working directory. An absolute path, or one found in neither place,
    is returned as given (it may be a hub id); `require_path` makes the latter an error."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        return candidate
    for folder in _folders(config_dir):
        beside = folder / candidate
        if beside.exists():
            return beside
    return candidate


def require_path(path: str, config_dir: Path | typing.Sequence[Path] | None, key: str) -> Path:
    """`resolve_path` for a local file or folder that must exist: a one-line `ConfigError` naming
    `key` and every place tried when it is in none of them."""
    found = resolve_path(path, config_dir)
    if found.exists():
        return found
    if found.is_absolute():
        raise ConfigError(f"{key}={path}: not found")
    beside = ", ".join(str(folder / found) for folder in _folders(config_dir))
    in_cwd = f"in the working directory ({Path.cwd() / found})"
    raise ConfigError(f"{key}={path}: not found {f'beside the config ({beside}) nor ' if beside else ''}{in_cwd}")


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
