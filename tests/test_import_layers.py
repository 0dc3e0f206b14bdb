"""The package's imports point down its stack only, and no two modules import each other in a circle.

The stack, bottom to top (README, "Layout"): the foundation modules, data, models, checkpoints,
tasks, objectives, then train / evaluate / merge (which never import each other), sweep, the
pipeline, and the entry points (the commands and the public API), which may import anything. A
module may import its own package and any lower layer. The imports are read with `ast` from the
source, including those inside functions (a lazy import is still an import).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "speechft_jax"
FOUNDATION = ("errors", "files", "tree_math", "config_loading", "cli")
# bottom to top; the names in one tuple are one layer
LAYERS = (FOUNDATION, ("data",), ("models",), ("checkpoints",), ("tasks",), ("objectives",),
          ("train", "evaluate", "merge"), ("sweep",), ("pipeline",))
ENTRY_POINTS = ("__init__", "__main__", "extract", "convert")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The part of the package a module belongs to: `speechft_jax.train.loop` -> `train`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(module: str) -> int | None:
    """The module's layer (an index into LAYERS), or None for an entry point."""
    if module.rsplit(".", 1)[-1] == "__main__" or (module.count(".") == 1 and unit_of(module) in ENTRY_POINTS) \
            or module == "speechft_jax":
        return None
    unit = unit_of(module)
    for index, names in enumerate(LAYERS):
        if unit in names:
            return index
    raise AssertionError(f"{module}: in no layer of tests/test_import_layers.py's LAYERS; add it there and to "
                         "the README's Layout")


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str:
    """The module an imported dotted name lands in (`a.b.c` may be module `a.b.c` or a name in `a.b`)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(module: str) -> list[tuple[str, int, bool]]:
    """`(imported module, line, at module level)` for every import of the package in `module`'s source."""
    tree = ast.parse(MODULES[module].read_text())
    top_level = {id(node) for node in tree.body}
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                base = ".".join(anchor[:len(anchor) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] == "speechft_jax":
                found.append((resolve(name), node.lineno, id(node) in top_level))
    return found


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_stack(module):
    layer = layer_of(module)
    if layer is None:
        return
    for target, line, _ in imports_of(module):
        if target == module or unit_of(target) == unit_of(module):
            continue
        if layer == 0 and layer_of(target) == 0:  # the foundation modules import each other (acyclic: below)
            continue
        target_layer = layer_of(target)
        assert target_layer is not None and target_layer < layer, (
            f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {target}, which is "
            + ("an entry point" if target_layer is None else
               "in the same layer" if target_layer == layer else "higher up the stack"))


def test_no_circular_imports_at_module_level():
    graph = {m: sorted({t for t, _, top in imports_of(m) if top and t != m}) for m in MODULES}
    state: dict[str, str] = {}

    def visit(module, path):
        state[module] = "open"
        for target in graph.get(module, ()):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                raise AssertionError("circular import: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
