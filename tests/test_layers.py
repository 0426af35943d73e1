"""The package's layers: every import goes down (DEVELOPERS.md "Layers").

Walks the AST of every module of ``xmpspec`` (imports inside functions too,
relative imports resolved) and fails on an import of a higher layer, on a
module that belongs to no layer, and on imports of names from the bare
``xmpspec`` package (the public facade) from inside the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "xmpspec"

#: Layers, lowest first: (layer name, module prefixes). A module belongs to the layer of
#: its longest matching prefix; a prefix names a module or a package and everything in it.
LAYERS = [
    ("core", ["xmpspec.errors", "xmpspec.config", "xmpspec.provenance", "xmpspec._version",
              "xmpspec.constants", "xmpspec.states", "xmpspec.coords", "xmpspec.boolparse",
              "xmpspec.extras"]),
    ("spectrum", ["xmpspec.spectrum", "xmpspec.instruments", "xmpspec.io"]),
    ("tableio", ["xmpspec.tableio", "xmpspec.tablestream", "xmpspec.arrowio"]),
    ("catalog", ["xmpspec.lines.catalog", "xmpspec.lines.ratios"]),
    ("lines", ["xmpspec.lines"]),
    ("physics", ["xmpspec.physics"]),
    ("compare", ["xmpspec.compare"]),
    ("products", ["xmpspec.products"]),
    ("engine", ["xmpspec.engine"]),
    ("reduce", ["xmpspec.reduce"]),
    ("workflows", ["xmpspec.workflows", "xmpspec.api"]),
    ("simulate", ["xmpspec.simulate"]),
    ("cli", ["xmpspec.cli", "xmpspec.__main__"]),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}
FACADE = "xmpspec"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


MODULES = all_modules()


def layer_of(module: str) -> str | None:
    best, best_len = None, -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = name, len(prefix)
    return best


def resolve(importer: str, is_package: bool, node: ast.AST) -> list[tuple[str, int, list]]:
    """(imported module, line, names) of one import node; only xmpspec modules."""
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == FACADE or alias.name.startswith(FACADE + "."):
                out.append((alias.name, node.lineno, []))
        return out
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not (target == FACADE or target.startswith(FACADE + ".")):
        return out
    names = [a.name for a in node.names]
    # "from pkg import module": the import of that module
    subs = [n for n in names if f"{target}.{n}" in MODULES]
    rest = [n for n in names if n not in subs]
    out += [(f"{target}.{n}", node.lineno, []) for n in subs]
    if rest or not subs:
        out.append((target, node.lineno, rest))
    return out


def imports_of(module: str, path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):   # every import, at module level or inside functions
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield from resolve(module, is_package, node)


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if m != FACADE and layer_of(m) is None]
    assert not missing, f"modules in no layer (add them to the list in DEVELOPERS.md): {missing}"


def test_resolution_of_relative_imports():
    # the resolver itself: a relative import inside a function of a subpackage module
    tree = ast.parse("def f():\n    from ..lines.catalog import load_catalog\n"
                     "    from . import tasks\n    from .. import errors\n")
    found = [t for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             for t, _, _ in resolve("xmpspec.engine.run", False, node)]
    assert found == ["xmpspec.lines.catalog", "xmpspec.engine.tasks", "xmpspec.errors"]
    assert layer_of("xmpspec.lines.catalog") == "catalog"
    assert layer_of("xmpspec.lines.measure") == "lines"
    assert RANK[layer_of("xmpspec.engine.run")] > RANK[layer_of("xmpspec.products.tables")]


def upward_imports() -> list[str]:
    bad = []
    for module, path in MODULES.items():
        if module == FACADE:
            continue
        mine = layer_of(module)
        if mine is None:
            continue
        for target, line, _ in imports_of(module, path):
            theirs = layer_of(target)
            if theirs is not None and RANK[theirs] > RANK[mine]:
                bad.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {module} ({mine}) "
                           f"imports {target} ({theirs})")
    return bad


def test_no_upward_import():
    bad = upward_imports()
    assert not bad, "upward imports:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != FACADE))
def test_no_import_from_the_bare_package(module):
    bad = [f"line {line}: from xmpspec import {', '.join(names) or '(the package)'}"
           for target, line, names in imports_of(module, MODULES[module]) if target == FACADE]
    assert not bad, f"{module} imports the public facade; import from the defining module: {bad}"
