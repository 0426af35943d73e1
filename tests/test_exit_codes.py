"""Every user error exits 2 with one line naming the file (row/column where there is one);
exit 3 is left for bugs (issue 14, "Internal-error exit code (3) for user errors")."""

from __future__ import annotations

import builtins
import errno
import io
import os
from contextlib import contextmanager
from pathlib import Path

import pytest
from astropy.table import Table

from xmpspec.cli import main, user_os_error
from xmpspec.io import write_spectrum
from xmpspec.simulate import simulate_spectrum


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One simulated spectrum, its objects table (measure) and derived table (derive)."""
    d = tmp_path_factory.mktemp("exitcodes")
    spec, _ = simulate_spectrum("sdss", z=0.03, n2=-1.8, halpha_flux=400.0, seed=3,
                                name="XMPE1", ra=150.0, dec=2.0)
    p = d / "XMPE1.fits"
    write_spectrum(spec, p)
    assert main(["measure", str(p), "-o", str(d / "m")]) == 0
    assert main(["derive", str(d / "m" / "objects.ecsv"), "-o", str(d / "derived")]) == 0
    sel = d / "selection.csv"
    sel.write_text("name,ra,dec,n2_cnn\nXMPE1,150.0,2.0,-1.9\n", encoding="utf-8")
    blocker = d / "a_file"
    blocker.write_text("not a folder\n")
    return {"spec": p, "objects": d / "m" / "objects.ecsv", "derived": d / "derived.ecsv",
            "selection": sel, "file": blocker, "dir": d}


def _run(args, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if "xmpspec: " in ln and "error" in ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def _assert_user_error(code, err, *needles):
    line = _error_line(err)
    assert code == 2, err
    for n in needles:
        assert str(n) in line, (n, line)


# ----------------------------------------------------------------------------- outputs

@pytest.mark.parametrize("command", ["measure", "derive", "compare", "batch"])
def test_output_path_under_an_existing_file(data, command, capsys):
    out = data["file"] / "sub"
    args = {"measure": ["measure", data["spec"], "-o", out],
            "derive": ["derive", data["objects"], "-o", out / "derived"],
            "compare": ["compare", data["derived"], "--selection", data["selection"], "-o", out],
            "batch": ["batch", data["spec"], "-o", out]}[command]
    code, err = _run(args, capsys)
    _assert_user_error(code, err, "a_file")


@contextmanager
def _unwritable(folder: Path, monkeypatch):
    """``folder`` cannot be written: chmod for a normal user; for root (who ignores
    permissions) every attempt to create or write a file in it raises EACCES."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    root = str(folder.resolve())

    def inside(path) -> bool:
        try:
            p = os.path.abspath(os.fsdecode(path))
        except TypeError:  # file descriptors
            return False
        return p == root or p.startswith(root + os.sep)

    def deny(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    real_open, real_io_open, real_os_open = builtins.open, io.open, os.open
    real_mkdir, real_replace, real_rename = os.mkdir, os.replace, os.rename

    def fake_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and inside(file):
            deny(file)
        return real_open(file, mode, *a, **k)

    def fake_io_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and inside(file):
            deny(file)
        return real_io_open(file, mode, *a, **k)

    def fake_os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            deny(path)
        return real_os_open(path, flags, *a, **k)

    def fake_mkdir(path, *a, **k):
        if inside(path) and os.path.abspath(os.fsdecode(path)) != root:
            deny(path)
        return real_mkdir(path, *a, **k)

    def fake_replace(src, dst, *a, **k):
        if inside(dst):
            deny(dst)
        return real_replace(src, dst, *a, **k)

    def fake_rename(src, dst, *a, **k):
        if inside(dst):
            deny(dst)
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_io_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "replace", fake_replace)
    monkeypatch.setattr(os, "rename", fake_rename)
    yield


@pytest.mark.parametrize("command", ["measure", "derive", "compare", "batch"])
def test_unwritable_output_folder(data, command, tmp_path, monkeypatch, capsys):
    out = tmp_path / "locked"
    args = {"measure": ["measure", data["spec"], "-o", out],
            "batch": ["batch", data["spec"], "-o", out],
            "derive": ["derive", data["objects"], "-o", out / "derived"],
            "compare": ["compare", data["derived"], "--selection", data["selection"],
                        "-o", out]}[command]
    with _unwritable(out, monkeypatch):
        code, err = _run(args, capsys)
    _assert_user_error(code, err, "locked")


# ----------------------------------------------------------------------------- inputs

def _targets(tmp_path, text) -> Path:
    p = tmp_path / "targets.csv"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("command", ["measure", "batch"])
def test_targets_with_non_numeric_z(data, command, tmp_path, capsys):
    t = _targets(tmp_path, "name,z\nother,0.01\nXMPE1,abc\n")
    code, err = _run([command, data["spec"], "--targets", t, "-o", tmp_path / "o"], capsys)
    _assert_user_error(code, err, "targets.csv", "column 'z'", "row 2", "abc")


def test_targets_with_negative_z(data, tmp_path, capsys):
    t = _targets(tmp_path, "name,z\nXMPE1,-0.03\n")
    code, err = _run(["measure", data["spec"], "--targets", t, "-o", tmp_path / "o"], capsys)
    _assert_user_error(code, err, "targets.csv", "column 'z'", "row 1", "negative")


def test_targets_with_duplicate_names_and_different_z(data, tmp_path, capsys):
    t = _targets(tmp_path, "name,z\nXMPE1,0.03\nB,0.01\nXMPE1,0.05\n")
    code, err = _run(["measure", data["spec"], "--targets", t, "-o", tmp_path / "o"], capsys)
    _assert_user_error(code, err, "targets.csv", "rows 1, 3", "XMPE1")


def test_targets_with_unreadable_coordinates(data, tmp_path, capsys):
    t = _targets(tmp_path, "name,z,ra,dec\nXMPE1,0.03,10:00:00,+02:00:00\nB,0.01,10:00:00,"
                           "north\n")
    code, err = _run(["measure", data["spec"], "--targets", t, "-o", tmp_path / "o"], capsys)
    _assert_user_error(code, err, "targets.csv", "column 'dec'", "row 2", "north")


def test_selection_catalogue_with_non_numeric_n2_cnn(data, tmp_path, capsys):
    sel = tmp_path / "sel.csv"
    sel.write_text("name,ra,dec,n2_cnn\nXMPE1,150.0,2.0,abc\n", encoding="utf-8")
    code, err = _run(["compare", data["derived"], "--selection", sel, "-o", tmp_path / "c"],
                     capsys)
    _assert_user_error(code, err, "sel.csv", "column 'n2_cnn'", "row 1", "abc")


def test_derive_with_non_numeric_column(data, tmp_path, capsys):
    t = Table.read(data["objects"])
    t["z"] = t["z"].astype(str)
    t["z"][0] = "abc"
    p = tmp_path / "objects.ecsv"
    t.write(p)
    code, err = _run(["derive", p, "-o", tmp_path / "d"], capsys)
    _assert_user_error(code, err, "objects.ecsv", "'z'")


# ----------------------------------------------------------------------------- the mapping

def test_oserror_mapping_is_for_paths_only(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    for exc in (PermissionError(errno.EACCES, "Permission denied", "/x/out.ecsv"),
                NotADirectoryError(errno.ENOTDIR, "Not a directory", "f/out"),
                IsADirectoryError(errno.EISDIR, "Is a directory", "out"),
                OSError(errno.ENOSPC, "No space left on device", "big.fits"),
                OSError(errno.EROFS, "Read-only file system", "ro/x")):
        msg = user_os_error(exc)
        assert msg is not None and msg.startswith(exc.filename + ": "), msg
    assert "is a file, not a folder" in user_os_error(
        FileExistsError(errno.EEXIST, "File exists", str(f)))
    # not a user error: no path, or not a path problem, or not an OSError at all
    assert user_os_error(OSError(errno.EACCES, "Permission denied")) is None
    assert user_os_error(OSError(errno.EIO, "I/O error", "x")) is None
    assert user_os_error(ValueError("bug")) is None


def test_a_bug_still_exits_3(monkeypatch, data, tmp_path, capsys):
    import xmpspec.physics.derive as derive_mod

    def broken(*a, **k):
        raise ValueError("a bug")

    monkeypatch.setattr(derive_mod, "derive_table", broken)
    code, err = _run(["derive", data["objects"], "-o", tmp_path / "d"], capsys)
    assert code == 3 and "internal error" in err and "ValueError: a bug" in err


@pytest.mark.parametrize("args", [["measur"], ["measure", "--no-such-option", "x.fits"],
                                  ["measure", "x.fits", "--z", "-0.01", "-o", "out"],
                                  ["measure", "x.fits", "--z", "abc", "-o", "out"]])
def test_usage_errors_exit_2(args, capsys):
    """Usage errors (typer's own or click's) and a negative --z: exit 2, not 3."""
    code, err = _run(args, capsys)
    assert code == 2, err
    assert "internal error" not in err and "Traceback" not in err


def test_usage_errors_exit_2_without_click(tmp_path):
    """typer >= 0.20 does not need click: usage errors still exit 2 when it is absent."""
    import subprocess
    import sys
    code = ("import sys\n"
            "class _Hide:\n"
            "    def __init__(self, f): self.f = f\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'click' or not hasattr(self.f, 'find_spec'):\n"
            "            return None\n"
            "        return self.f.find_spec(name, path, target)\n"
            "sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]\n"
            "for m in [m for m in sys.modules if m.split('.')[0] == 'click']: del sys.modules[m]\n"
            "from xmpspec.cli import main\n"
            "sys.exit(main(['measur']))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "internal error" not in proc.stderr
