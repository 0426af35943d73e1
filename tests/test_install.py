"""Installs: declared dependencies and extras, and a core install without PypeIt and Dask.

Issue 14 ("Fresh installs fail their tests"; declared minimum versions) and issue 15
item 6 (lighter installs). `.ci/run` makes a brand-new virtual environment; these tests
keep the declarations honest in any environment:

* every third-party package imported by ``xmpspec`` is declared (core or an extra);
* PypeIt and Dask are extras (``reduce``, ``dask``, ``all``), never imported at module level;
* the Python range and the numpy/astropy minimums are those of the PypeIt release pinned;
* with ``pypeit``/``dask``/``distributed`` made unimportable, ``xmpspec`` imports and
  ``simulate``/``measure``/``derive``/``compare``/``tables`` run through the CLI, and the
  commands that need an extra say which one to install (exit 2).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
EXTRA_MODULES = ("pypeit", "dask", "distributed")


def _req_name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _declared(group: str | None = None) -> dict[str, str]:
    """name -> requirement string of the core (None) or of one extra."""
    proj = PYPROJECT["project"]
    reqs = proj["dependencies"] if group is None else proj["optional-dependencies"][group]
    return {_req_name(r): r for r in reqs}


def _module_imports():
    """(top-level module, file, optional?, at module level?) for every absolute import."""
    out = []
    for f in sorted((REPO / "xmpspec").rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        optional_nodes = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                    isinstance(h.type, ast.Name) and h.type.id in ("ImportError",
                                                                   "ModuleNotFoundError")
                    for h in node.handlers):
                for sub in node.body:
                    optional_nodes.update(id(n) for n in ast.walk(sub))
        top_level = {id(n) for stmt in tree.body for n in ast.walk(stmt)
                     if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef
                                       | ast.ClassDef)}
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                out.append((n.split(".")[0], f.relative_to(REPO).as_posix(),
                            id(node) in optional_nodes, id(node) in top_level))
    return out


def test_every_imported_package_is_declared():
    dists = metadata.packages_distributions()
    declared = set(_declared())
    for extra in PYPROJECT["project"]["optional-dependencies"]:
        declared |= set(_declared(extra))
    declared |= {"distributed"} if any("dask[distributed]" in r.replace(" ", "") for r in
                                      _declared("dask").values()) else set()
    missing = []
    for mod, path, optional, _ in _module_imports():
        if mod in sys.stdlib_module_names or mod == "xmpspec" or optional:
            continue
        names = {d.lower().replace("_", "-") for d in dists.get(mod, [mod])}
        if not names & declared:
            missing.append(f"{path}: import {mod} (distribution {sorted(names)})")
    assert not missing, "imports without a declared dependency:\n" + "\n".join(missing)


def test_pypeit_and_dask_are_extras_imported_lazily():
    core = _declared()
    assert not {"pypeit", "dask", "distributed"} & set(core)
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "pypeit" in _declared("reduce") and "dask" in _declared("dask")
    assert any("reduce" in r and "dask" in r for r in extras["all"])
    eager = [f"{path}: import {mod}" for mod, path, optional, top in _module_imports()
             if mod in EXTRA_MODULES and top and not optional]
    assert not eager, "module-level imports of an extra:\n" + "\n".join(eager)


def test_python_range_and_minimums_follow_the_pinned_pypeit():
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version
    pin = _declared("reduce")["pypeit"]
    assert "==" in pin, "PypeIt is pinned: its metadata sets the ranges checked here"
    ours = SpecifierSet(PYPROJECT["project"]["requires-python"])
    try:
        meta = metadata.metadata("pypeit")
    except metadata.PackageNotFoundError:  # core-only install: the pin's numbers (2.0.1)
        theirs_py = SpecifierSet("<3.14,>=3.11")
        theirs = {"numpy": SpecifierSet(">=2.4.1"), "astropy": SpecifierSet(">=7.0")}
    else:
        assert meta["Version"] == pin.split("==")[1].strip()
        theirs_py = SpecifierSet(meta["Requires-Python"])
        theirs = {}
        for r in metadata.requires("pypeit") or []:
            if "extra ==" in r:
                continue
            name = _req_name(r)
            if name in ("numpy", "astropy", "scipy", "matplotlib"):
                theirs[name] = SpecifierSet(re.sub(r"^[A-Za-z0-9_.\-\[\]]+", "", r).split(";")[0])
    # the same Python versions: every 3.x that PypeIt accepts we accept, and no other
    probe = [Version(f"3.{m}") for m in range(8, 16)]
    assert [v for v in probe if v in ours] == [v for v in probe if v in theirs_py]
    core = _declared()
    for name, spec in theirs.items():
        ours_min = [s.version for s in SpecifierSet(core[name].split(name, 1)[1].split(";")[0])
                    if s.operator in (">=", "==")]
        their_min = [s.version for s in spec if s.operator in (">=", "==")]
        if their_min:
            assert ours_min and Version(ours_min[0]) >= Version(their_min[0]), (name, core[name],
                                                                                str(spec))


# An install without the extras, emulated: every import finder is told to not see them,
# so "import pypeit" fails and importlib.util.find_spec("dask") is None, as when absent.
_BLOCK = textwrap.dedent("""
    import sys
    BLOCKED = {"pypeit", "dask", "distributed"}
    class _Hide:
        def __init__(self, finder):
            self.finder = finder
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED or not hasattr(self.finder, "find_spec"):
                return None
            return self.finder.find_spec(name, path, target)
        def invalidate_caches(self):
            if hasattr(self.finder, "invalidate_caches"):
                self.finder.invalidate_caches()
    sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
    for m in list(sys.modules):
        if m.split(".")[0] in BLOCKED:
            del sys.modules[m]
""")


def _run_blocked(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK + textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # ~10 s idle, 30 s on a loaded 2-core machine
def test_core_commands_run_without_pypeit_and_dask(tmp_path):
    """A core install: import xmpspec and run simulate/measure/derive/compare/tables."""
    (tmp_path / "sel.csv").write_text("name,ra,dec,n2_cnn,n2_cnn_err\n"
                                      "XMPC1,150.0,2.0,-1.9,0.1\n", encoding="utf-8")
    proc = _run_blocked("""
        import sys
        from xmpspec.cli import main
        steps = [
            ["simulate", "spectrum", "--setup", "sdss", "--z", "0.03", "--n2", "-1.8",
             "--name", "XMPC1", "--seed", "4", "-o", "sim"],
            ["measure", "sim/XMPC1.fits", "-o", "m"],
            ["derive", "m/objects.ecsv", "-o", "derived"],
            ["compare", "derived.ecsv", "--selection", "sel.csv", "-o", "c"],
            ["tables", "derived.ecsv", "--selection", "sel.csv", "-o", "t"],
        ]
        for args in steps:
            code = main(args)
            if code != 0:
                print("FAILED", args, code)
                sys.exit(10)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print("LOADED", loaded)
        sys.exit(11 if loaded else 0)
    """, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for f in ("m/objects.ecsv", "derived.ecsv", "c/comparison.ecsv"):
        assert (tmp_path / f).is_file(), f
    assert any((tmp_path / "t").iterdir())


@pytest.mark.parametrize("args, message", [
    (["setup", "raw", "--instrument", "int_ids"],
     "xmpspec setup needs PypeIt: pip install 'xmpspec[reduce]'"),
    (["cache", "status"], "xmpspec cache status needs PypeIt: pip install 'xmpspec[reduce]'"),
    (["batch", "sim", "--scheduler", "tcp://127.0.0.1:9", "-o", "b"],
     "xmpspec batch needs Dask"),
])
def test_commands_needing_an_extra_say_which(tmp_path, args, message):
    (tmp_path / "raw").mkdir()
    (tmp_path / "sim").mkdir()
    from xmpspec.io import write_spectrum
    from xmpspec.simulate import simulate_spectrum
    spec, _ = simulate_spectrum("sdss", z=0.03, n2=-1.8, seed=1, name="XMPC2")
    write_spectrum(spec, tmp_path / "sim" / "XMPC2.fits")
    proc = _run_blocked(f"""
        import sys
        from xmpspec.cli import main
        sys.exit(main({args!r}))
    """, tmp_path)
    err = proc.stderr
    assert proc.returncode == 2, proc.stdout[-2000:] + err[-2000:]
    lines = [ln for ln in err.splitlines() if "xmpspec: error:" in ln]
    assert len(lines) == 1 and message in lines[0], err[-2000:]
    assert "internal error" not in err and "Traceback" not in err


def test_require_names_the_extra(monkeypatch):
    from xmpspec.extras import MissingExtraError, missing_extra, require
    monkeypatch.setitem(sys.modules, "pypeit", None)  # "import pypeit" now fails
    with pytest.raises(MissingExtraError) as e:
        require("pypeit", "xmpspec setup")
    assert str(e.value) == "xmpspec setup needs PypeIt: pip install 'xmpspec[reduce]'"
    assert e.value.exit_code == 2
    exc = ModuleNotFoundError("No module named 'distributed'", name="distributed")
    assert missing_extra(exc, "xmpspec batch") == ("xmpspec batch needs Dask distributed: "
                                                   "pip install 'xmpspec[dask]'")
    assert missing_extra(ModuleNotFoundError("x", name="scipy")) is None
    with pytest.raises(ValueError):
        require("scipy")


def test_reading_a_pypeit_file_without_pypeit_names_the_extra(monkeypatch):
    from xmpspec.errors import XmpspecError
    from xmpspec.io.pypeit import _import_pypeit
    for name in ("pypeit", "pypeit.specobjs", "pypeit.onespec"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(XmpspecError) as e:
        _import_pypeit(Path("spec1d_x.fits"))
    assert str(e.value) == ("spec1d_x.fits: reading PypeIt files needs PypeIt: "
                            "pip install 'xmpspec[reduce]'")
