"""Bad input across every user-facing command (the brief: exit 2 and one line naming the
file and the problem; exit 3 only for bugs; a batch reports a bad object and goes on),
the derive command's leftovers of a killed write, and provenance on every output file.

One small simulated spectrum is measured and derived once (module fixture); every bad
file is a mutation of those good files, so each case differs from a good run by one thing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from xmpspec.cli import main
from xmpspec.io import write_spectrum
from xmpspec.simulate import simulate_spectrum

FLAM = u.Unit("1e-17 erg / (s cm2 Angstrom)")
ODD = "ünï cødé dir"          # a non-ASCII folder for bad files


# ----------------------------------------------------------------------------- data

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Good files (spectrum, objects, lines, derived, selection) and bad mutations of them."""
    d = tmp_path_factory.mktemp("matrix")
    spec, _ = simulate_spectrum("sdss", z=0.03, n2=-1.8, halpha_flux=400.0, seed=3,
                                name="XMPE1", ra=150.0, dec=2.0)
    good = d / "good.fits"
    write_spectrum(spec, good)
    assert main(["-q", "measure", str(good), "-o", str(d / "m")]) == 0
    assert main(["-q", "derive", str(d / "m" / "objects.ecsv"), "-o", str(d / "derived"),
                 "--mc-draws", "20"]) == 0
    sel = d / "selection.csv"
    sel.write_text("name,ra,dec,n2_cnn,n2_cnn_err\nXMPE1,150.0,2.0,-1.9,0.1\n",
                   encoding="utf-8")
    b = d / ODD
    b.mkdir()
    files = {"good": good, "objects": d / "m" / "objects.ecsv", "lines": d / "m" / "lines.ecsv",
             "derived": d / "derived.ecsv", "selection": sel, "measure_dir": d / "m",
             "dir": d, "bad": b}

    def save(table, name):
        table.meta.clear()
        table.write(b / name, overwrite=True)
        return b / name

    # ---- spectra
    s = Table({"wavelength": spec.wavelength, "flux": spec.flux.to(FLAM),
               "error": spec.error.to(FLAM)})
    w, f, e = s["wavelength"].quantity, s["flux"].quantity, s["error"].quantity
    (b / "corrupt.fits").write_bytes(b"SIMPLE  =   garbage" + bytes(range(256)) * 12)
    raw = good.read_bytes()
    (b / "truncated.fits").write_bytes(raw[:len(raw) // 2 + 100])
    for name in ("empty.fits", "empty.ecsv", "empty.csv"):
        (b / name).write_bytes(b"")
    files["spec_noflux"] = save(Table({"wavelength": w, "error": e}), "noflux.ecsv")
    files["spec_strflux"] = save(Table({"wavelength": w, "flux": f.value.astype(str),
                                        "error": e.value}), "strflux.ecsv")
    neg = e.copy()
    neg[100:120] *= -1
    files["spec_negerr"] = save(Table({"wavelength": w, "flux": f, "error": neg}),
                                "negerr.ecsv")
    nan = e.copy()
    nan[:] = np.nan
    files["spec_nanerr"] = save(Table({"wavelength": w, "flux": f, "error": nan}),
                                "nanerr.ecsv")
    files["spec_flux_kms"] = save(Table({"wavelength": w, "flux": f.value * u.km / u.s,
                                         "error": e.value * u.km / u.s}), "flux_kms.ecsv")
    files["spec_flux_kms_fits"] = save(Table({"wavelength": w, "flux": f.value * u.km / u.s,
                                              "error": e.value * u.km / u.s}), "flux_kms.fits")
    files["spec_wave_kg"] = save(Table({"wavelength": w.value * u.kg, "flux": f, "error": e}),
                                 "wave_kg.ecsv")

    # ---- tables
    obj = Table.read(files["objects"])
    der = Table.read(files["derived"])
    lines = Table.read(files["lines"])
    t = obj.copy()
    t.remove_column("z")
    files["objects_noz"] = save(t, "objects_noz.ecsv")
    t = obj.copy()
    t["z"] = ["abc"]
    files["objects_strz"] = save(t, "objects_strz.ecsv")
    t = obj.copy()
    t["f_ha"].unit = u.km / u.s
    files["objects_fha_kms"] = save(t, "objects_fha_kms.ecsv")
    t = obj.copy()
    t["f_ha_err"] = -np.abs(t["f_ha_err"])
    files["objects_negerr"] = save(t, "objects_negerr.ecsv")
    t = lines.copy()
    t["flux_err"] = -1.0
    files["lines_negerr"] = save(t, "lines_negerr.ecsv")
    t = der.copy()
    t.remove_column("n2")
    files["derived_non2"] = save(t, "derived_non2.ecsv")
    t = der.copy()
    t["n2"] = ["x"]
    files["derived_strn2"] = save(t, "derived_strn2.ecsv")
    t = der.copy()
    t["n2_err"] = -0.1
    files["derived_negerr"] = save(t, "derived_negerr.ecsv")
    t = der.copy()
    t["f_ha"].unit = u.km / u.s
    files["derived_fha_kms"] = save(t, "derived_fha_kms.ecsv")
    t = der.copy()
    t["sfr"].unit = u.km / u.s
    files["derived_sfr_kms"] = save(t, "derived_sfr_kms.ecsv")
    for name, text in {"sel_non2cnn.csv": "name,ra,dec\nXMPE1,150.0,2.0\n",
                       "sel_negerr.csv": "name,ra,dec,n2_cnn,n2_cnn_err\n"
                                         "XMPE1,150.0,2.0,-1.9,-0.1\n",
                       "phot_negerr.csv": "name,r,r_err,i,i_err\nXMPE1,18.0,-0.1,17.8,0.05\n",
                       "phot_strr.csv": "name,r,r_err,i,i_err\nXMPE1,bright,0.1,17.8,0.05\n",
                       "dist_str.csv": "name,dl_corr_mpc,dl_corr_mpc_err\nXMPE1,far,1\n",
                       "targets_strz.csv": "name,z\nXMPE1,abc\n",
                       "background_str.csv": "n2,n2_cnn\nx,-1.0\n",
                       "targets_noz.csv": "name,ra\nXMPE1,150.0\n",
                       "targets_negzerr.csv": "name,z,z_err\nXMPE1,0.03,-0.001\n"}.items():
        (b / name).write_text(text, encoding="utf-8")
    blocker = d / "a_file"
    blocker.write_text("not a folder\n")
    files["blocker"] = blocker
    return files


def _run(args, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _assert_user_error(code, err, path, *needles):
    """Exit 2, no traceback, and exactly one error line naming ``path`` (and the needles)."""
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("xmpspec: error")]
    assert len(lines) == 1, err
    line = lines[0]
    assert str(path) in line, (path, line)
    for n in needles:
        assert n in line, (n, line)


# ----------------------------------------------------------------------------- derive's writes

_KILLED_WRITE = """
import os, sys
from xmpspec.tableio import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    open(tmp, "w").write("half a table")
    os._exit(9)
"""


def test_derive_removes_the_leftovers_of_a_killed_derive(data, tmp_path):
    out = tmp_path / "d"
    args = ["-q", "derive", str(data["objects"]), "-o", str(out / "derived"), "--mc-draws", "20"]
    assert main(args) == 0
    first = {s: (out / f"derived.{s}").read_bytes() for s in ("ecsv", "fits")}
    for suffix in ("ecsv", "fits"):      # a derive killed in the middle of each write
        subprocess.run([sys.executable, "-c", _KILLED_WRITE, str(out / f"derived.{suffix}")],
                       check=False)
    left = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert len(left) == 2 and all(".part" in n for n in left), left
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["derived.ecsv", "derived.fits"]
    again = Table.read(out / "derived.ecsv")
    before = Table.read(first["ecsv"].decode(), format="ascii.ecsv")
    assert again.colnames == before.colnames
    for name in again.colnames:      # the same table (the provenance time differs)
        a, b = again[name], before[name]
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(np.ma.filled(a, np.nan), np.ma.filled(b, np.nan))
        else:
            assert list(a) == list(b), name


# ----------------------------------------------------------------------------- spectra

# (file in the non-ASCII folder, words the one error line must contain)
BAD_SPECTRA = [
    ("corrupt.fits", "corrupt FITS"),
    ("truncated.fits", "truncated"),
    ("empty.fits", "empty"),
    ("empty.ecsv", "empty"),
    ("empty.csv", "empty"),
    ("noflux.ecsv", "missing column"),
    ("strflux.ecsv", "not numeric"),
    ("negerr.ecsv", "zero or negative errors"),
    ("nanerr.ecsv", "no finite values"),
    ("flux_kms.ecsv", "flux unit 'km / s'"),
    ("flux_kms.fits", "flux unit 'km / s'"),
    ("wave_kg.ecsv", "not a length"),
]


@pytest.mark.parametrize("command", ["measure", "inspect"])
@pytest.mark.parametrize(("name", "problem"), BAD_SPECTRA)
def test_bad_spectrum(data, command, name, problem, tmp_path, capsys):
    path = data["bad"] / name
    args = [command, path] + (["-o", tmp_path / "o"] if command == "measure" else [])
    code, err = _run(args, capsys)
    _assert_user_error(code, err, path, problem)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_spectrum_in_counts_or_jansky_is_read(data, tmp_path):
    """The flux-unit rule refuses other kinds of units only: counts and f_nu are fine."""
    from xmpspec.io import read_spectrum
    t = Table.read(data["bad"] / "flux_kms.ecsv")
    for unit in (u.count, u.electron / u.s, u.mJy, u.W / u.m**2 / u.nm):
        t["flux"].unit = t["error"].unit = unit
        p = tmp_path / "s.ecsv"
        t.write(p, overwrite=True)
        assert read_spectrum(p).flux.unit == unit


@pytest.mark.parametrize("command", ["measure", "batch"])
def test_bad_spectra_in_a_batch_are_reported_and_skipped(data, command, tmp_path):
    """Every bad spectrum is reported (failed.ecsv and the terminal) and skipped, the good
    one is measured; exit code 1 (some objects failed)."""
    out = tmp_path / "o"
    bad = [data["bad"] / name for name, _ in BAD_SPECTRA]
    args = [command, *map(str, bad), str(data["good"]), "-o", str(out)]
    if command == "batch":
        args += ["-w", "1"]
    proc = subprocess.run(["xmpspec", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    objects = Table.read(out / "objects.ecsv")
    assert list(objects["name"]) == ["XMPE1"]
    if command == "measure":     # reported on the terminal, one line per file
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("skipped ")]
        reasons = {}
        for path in bad:
            mine = [ln for ln in lines if ln.startswith(f"skipped {path}: ")]
            assert len(mine) == 1, (path, proc.stderr[-3000:])
            reasons[path.name] = mine[0]
    else:                        # and in failed.ecsv
        failed = Table.read(out / "failed.ecsv")
        reasons = {Path(str(f)).name: str(r)
                   for f, r in zip(failed["input_file"], failed["reason"], strict=True)}
        assert "failed" in proc.stdout + proc.stderr
    assert len(reasons) == len(BAD_SPECTRA), reasons
    for name, problem in BAD_SPECTRA:
        assert problem in reasons[name], (name, reasons[name])
    assert not [p for p in out.rglob(".*") if ".part" in p.name]


# ----------------------------------------------------------------------------- tables

def _table_cases():
    """(id, command line built from the data fixture, key of the file to name, words)."""
    o = "{out}"
    return [
        # derive: the measured table, a per-line table, photometry and distances
        ("derive-corrupt", ["derive", "{bad}/corrupt.fits", "-o", o], "{bad}/corrupt.fits",
         "cannot read table"),
        ("derive-empty", ["derive", "{bad}/empty.ecsv", "-o", o], "{bad}/empty.ecsv", "empty"),
        ("derive-no-z", ["derive", "{bad}/objects_noz.ecsv", "-o", o],
         "{bad}/objects_noz.ecsv", "missing required column(s) 'z'"),
        ("derive-text-z", ["derive", "{bad}/objects_strz.ecsv", "-o", o],
         "{bad}/objects_strz.ecsv", "'z' is not numeric"),
        ("derive-flux-kms", ["derive", "{bad}/objects_fha_kms.ecsv", "-o", o],
         "{bad}/objects_fha_kms.ecsv", "'f_ha' has unit 'km / s'"),
        ("derive-negative-error", ["derive", "{bad}/objects_negerr.ecsv", "-o", o],
         "{bad}/objects_negerr.ecsv", "'f_ha_err' row 1: negative error"),
        ("derive-lines-negative-error", ["derive", "{bad}/lines_negerr.ecsv", "-o", o],
         "{bad}/lines_negerr.ecsv", "'flux_err' row 1: negative error"),
        ("derive-photometry-negative-error",
         ["derive", "{objects}", "--photometry", "{bad}/phot_negerr.csv", "-o", o],
         "{bad}/phot_negerr.csv", "'r_err' row 1: negative error"),
        ("derive-photometry-text",
         ["derive", "{objects}", "--photometry", "{bad}/phot_strr.csv", "-o", o],
         "{bad}/phot_strr.csv", "'r' is not numeric"),
        ("derive-distances-text",
         ["derive", "{objects}", "--distances", "{bad}/dist_str.csv", "-o", o],
         "{bad}/dist_str.csv", "'dl_corr_mpc' is not numeric"),
        ("derive-photometry-empty",
         ["derive", "{objects}", "--photometry", "{bad}/empty.csv", "-o", o],
         "{bad}/empty.csv", "empty"),
        # compare: the observed table and the selection catalogue
        ("compare-corrupt", ["compare", "{bad}/corrupt.fits", "-s", "{selection}", "-o", o],
         "{bad}/corrupt.fits", "cannot read table"),
        ("compare-no-n2", ["compare", "{bad}/derived_non2.ecsv", "-s", "{selection}", "-o", o],
         "{bad}/derived_non2.ecsv", "no 'n2' column"),
        ("compare-text-n2", ["compare", "{bad}/derived_strn2.ecsv", "-s", "{selection}",
                             "-o", o], "{bad}/derived_strn2.ecsv", "'x' is not a number"),
        ("compare-negative-error", ["compare", "{bad}/derived_negerr.ecsv", "-s",
                                    "{selection}", "-o", o], "{bad}/derived_negerr.ecsv",
         "'n2_err' row 1: negative error"),
        ("compare-selection-empty", ["compare", "{derived}", "-s", "{bad}/empty.csv", "-o", o],
         "{bad}/empty.csv", "empty"),
        ("compare-selection-no-n2cnn", ["compare", "{derived}", "-s", "{bad}/sel_non2cnn.csv",
                                        "-o", o], "{bad}/sel_non2cnn.csv", "no 'n2_cnn' column"),
        ("compare-selection-negative-error", ["compare", "{derived}", "-s",
                                              "{bad}/sel_negerr.csv", "-o", o],
         "{bad}/sel_negerr.csv", "'n2_cnn_err' row 1: negative error"),
        ("compare-background-text", ["compare", "{derived}", "-s", "{selection}", "-o", o,
                                     "--background", "{bad}/background_str.csv"],
         "{bad}/background_str.csv", "'x' is not a number"),
        # tables
        ("tables-corrupt", ["tables", "{bad}/corrupt.fits", "-o", o], "{bad}/corrupt.fits",
         "cannot read table"),
        ("tables-empty", ["tables", "{bad}/empty.ecsv", "-o", o], "{bad}/empty.ecsv", "empty"),
        ("tables-text-n2", ["tables", "{bad}/derived_strn2.ecsv", "-o", o],
         "{bad}/derived_strn2.ecsv", "'x' is not a number"),
        ("tables-negative-error", ["tables", "{bad}/derived_negerr.ecsv", "-o", o],
         "{bad}/derived_negerr.ecsv", "'n2_err' row 1: negative error"),
        ("tables-flux-kms", ["tables", "{bad}/derived_fha_kms.ecsv", "-o", o],
         "{bad}/derived_fha_kms.ecsv", "'f_ha' has unit 'km / s'"),
        ("tables-sfr-kms", ["tables", "{bad}/derived_sfr_kms.ecsv", "-o", o],
         "{bad}/derived_sfr_kms.ecsv", "'sfr' has unit 'km / s'"),
        ("tables-selection-corrupt", ["tables", "{derived}", "-s", "{bad}/corrupt.fits",
                                      "-o", o], "{bad}/corrupt.fits", "cannot read table"),
        ("tables-selection-negative-error", ["tables", "{derived}", "-s",
                                             "{bad}/sel_negerr.csv", "-o", o],
         "{bad}/sel_negerr.csv", "'n2_cnn_err' row 1: negative error"),
        # plots
        ("plots-corrupt", ["plots", "{bad}/corrupt.fits", "-o", o, "-f", "png"],
         "{bad}/corrupt.fits", "cannot read table"),
        ("plots-empty", ["plots", "{bad}/empty.ecsv", "-o", o, "-f", "png"], "{bad}/empty.ecsv",
         "empty"),
        ("plots-text-n2", ["plots", "{bad}/derived_strn2.ecsv", "-o", o, "-f", "png"],
         "{bad}/derived_strn2.ecsv", "'x' is not a number"),
        ("plots-negative-error", ["plots", "{bad}/derived_negerr.ecsv", "-o", o, "-f", "png"],
         "{bad}/derived_negerr.ecsv", "'n2_err' row 1: negative error"),
        ("plots-sfr-kms", ["plots", "{bad}/derived_sfr_kms.ecsv", "-o", o, "-f", "png"],
         "{bad}/derived_sfr_kms.ecsv", "'sfr' has unit 'km / s'"),
        # targets tables of measure and batch
        ("measure-targets-corrupt", ["measure", "{good}", "--targets", "{bad}/corrupt.fits",
                                     "-o", o], "{bad}/corrupt.fits", "cannot read table"),
        ("measure-targets-empty", ["measure", "{good}", "--targets", "{bad}/empty.csv", "-o", o],
         "{bad}/empty.csv", "empty"),
        ("measure-targets-text-z", ["measure", "{good}", "--targets", "{bad}/targets_strz.csv",
                                    "-o", o], "{bad}/targets_strz.csv", "column 'z'"),
        ("batch-targets-text-z", ["batch", "{good}", "--targets", "{bad}/targets_strz.csv",
                                  "-o", o], "{bad}/targets_strz.csv", "column 'z'"),
        ("measure-targets-negative-error", ["measure", "{good}", "--targets",
                                            "{bad}/targets_negzerr.csv", "-o", o],
         "{bad}/targets_negzerr.csv", "'z_err' row 1: negative error"),
        ("batch-targets-corrupt", ["batch", "{good}", "--targets", "{bad}/corrupt.fits",
                                   "-o", o], "{bad}/corrupt.fits", "cannot read table"),
        # report: not a folder, nothing to report
        ("report-a-file", ["report", "{bad}/corrupt.fits"], "{bad}/corrupt.fits",
         "not a folder"),
        ("report-nothing", ["report", "{bad}", "-o", "{out}.html"], "{bad}",
         "nothing to report"),
    ]


def _fill(text, data, out):
    return str(text).format(bad=data["bad"], objects=data["objects"], derived=data["derived"],
                            selection=data["selection"], good=data["good"], out=out)


@pytest.mark.parametrize(("args", "path", "problem"),
                         [pytest.param(a, p, w, id=i) for i, a, p, w in _table_cases()])
def test_bad_table(data, args, path, problem, tmp_path, capsys):
    out = tmp_path / "out ü"
    code, err = _run([_fill(a, data, out) for a in args], capsys)
    _assert_user_error(code, err, _fill(path, data, out), problem)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not written, written            # nothing half-written, no temporaries


# ----------------------------------------------------------------------------- outputs

def _output_cases():
    """Commands whose output goes under {out} (not covered by test_exit_codes.py)."""
    return {
        "tables": ["tables", "{derived}", "-o", "{out}"],
        "plots": ["plots", "{derived}", "-o", "{out}", "-f", "png"],
        "report": ["report", "{measure_dir}", "-o", "{out}/report.html"],
        "simulate-spectrum": ["simulate", "spectrum", "--setup", "sdss", "--z", "0.03",
                              "--n2", "-1.5", "-o", "{out}"],
        "simulate-batch": ["simulate", "batch", "-n", "2", "--truth-only", "-o", "{out}"],
        "config-init": ["config", "init", "{out}/x.toml"],
    }


def _fill_out(args, data, out):
    return [str(a).format(derived=data["derived"], measure_dir=data["measure_dir"], out=out)
            for a in args]


@pytest.mark.parametrize("command", list(_output_cases()))
def test_output_under_a_regular_file(data, command, capsys):
    args = _fill_out(_output_cases()[command], data, data["blocker"] / "sub")
    code, err = _run(args, capsys)
    _assert_user_error(code, err, data["blocker"])


@pytest.mark.parametrize("command", list(_output_cases()))
def test_unwritable_output_folder(data, command, tmp_path, monkeypatch, capsys):
    from test_exit_codes import _unwritable  # chmod, or refused writes when root
    out = tmp_path / "locked"
    args = _fill_out(_output_cases()[command], data, out)
    with _unwritable(out, monkeypatch):
        code, err = _run(args, capsys)
    _assert_user_error(code, err, out)
    assert not [p for p in out.rglob("*")], "something was written"


# ----------------------------------------------------------------------------- provenance

def _provenance_of(path: Path) -> str:
    """The provenance a file carries, as text ('' if none); raises if it is malformed."""
    import json

    from astropy.io import fits
    from PIL import Image

    from xmpspec.tableio import read_provenance
    suffix = path.suffix
    if suffix in (".ecsv", ".fits"):
        if suffix == ".fits" and "PROVENANCE" not in [h.name for h in fits.open(path)]:
            return ""
        record = read_provenance(path)
        return json.dumps(record) if record else ""
    if suffix == ".parquet":
        import pyarrow.parquet as pq
        meta = pq.read_schema(path).metadata or {}
        return meta.get(b"xmpspec_provenance", b"").decode()
    if suffix == ".png":
        return Image.open(path).info.get("xmpspec_provenance", "")
    if suffix == ".pdf":
        raw = path.read_bytes()
        return raw.decode("latin-1") if b"/Creator (xmpspec" in raw and b"/Keywords" in raw \
            else ""
    text = path.read_text(encoding="utf-8")
    if suffix == ".html":
        return text if "xmpspec_version" in text else ""
    if suffix == ".mrt":
        notes = text.split("\nNotes:\n", 1)[1].split("\n---", 1)[0]
        return notes if notes.startswith("Provenance: written by xmpspec") else ""
    prefix = {".tex": "% ", ".txt": "# ", ".toml": "# "}[suffix]
    head = "\n".join(ln[len(prefix):] for ln in text.splitlines() if ln.startswith(prefix))
    return head if head.startswith("written by xmpspec") else ""


def test_every_output_carries_provenance(data, tmp_path, monkeypatch):
    """Each file a command writes names the version, the libraries, the configuration and
    the inputs as given (relative here); the MRT files are still read by astropy."""
    import shutil
    work = tmp_path / "w"
    work.mkdir()
    for key in ("good", "derived", "selection"):
        shutil.copy(data[key], work / data[key].name)
    monkeypatch.chdir(work)
    runs = [["measure", "good.fits", "-o", "m"],
            ["derive", "m/objects.ecsv", "-o", "d/derived", "--mc-draws", "20"],
            ["compare", "derived.ecsv", "-s", "selection.csv", "-o", "c"],
            ["tables", "derived.ecsv", "-s", "selection.csv", "-o", "t"],
            ["plots", "derived.ecsv", "-o", "p"],
            ["report", "m", "-o", "r/report.html"],
            ["simulate", "spectrum", "--setup", "sdss", "--z", "0.03", "--n2", "-1.5",
             "-o", "s", "--name", "S1"],
            ["config", "init", "cfg/x.toml"]]
    for args in runs:
        assert main(["-q", *args]) == 0, args
    files = sorted(p for p in work.rglob("*") if p.is_file()
                   and p.parent != work)                    # not the copied inputs
    kinds = {p.suffix for p in files}
    assert kinds >= {".ecsv", ".fits", ".txt", ".tex", ".mrt", ".png", ".pdf", ".html",
                     ".toml"}, kinds
    inputs = {"m": "good.fits", "d": "m/objects.ecsv", "c": "selection.csv",
              "t": "selection.csv", "p": "derived.ecsv"}
    for f in files:
        text = _provenance_of(f)
        assert text, f"{f.relative_to(work)} carries no provenance"
        assert "0." in text and "astropy" in text, f        # versions
        assert "config" in text, f                          # configuration
        top = f.relative_to(work).parts[0]
        if top in inputs:                                   # inputs as given (relative)
            assert inputs[top] in text and str(work) not in text.replace(
                "\\\\", "\\"), (f, text[:500])
    for f in work.glob("t/*.mrt"):
        assert len(Table.read(f, format="ascii.mrt")) == 1


# ----------------------------------------------------------------------------- other commands

def _other_cases():
    return [
        ("measure-missing-input", ["measure", "{dir}/nonexist.fits", "-o", "{out}"],
         "{dir}/nonexist.fits", "not found"),
        ("batch-missing-input", ["batch", "{dir}/nonexist.fits", "-o", "{out}"],
         "{dir}/nonexist.fits", "no such file"),
        ("derive-missing-input", ["derive", "{dir}/nonexist.ecsv", "-o", "{out}"],
         "{dir}/nonexist.ecsv", "not found"),
        ("reduce-not-a-pypeit-file", ["reduce", "{bad}/notes.pypeit"], "{bad}/notes.pypeit",
         "instrument"),
        ("reduce-missing-pypeit-file", ["reduce", "{dir}/nonexist.pypeit"],
         "{dir}/nonexist.pypeit", "not found"),
        ("setup-targets-corrupt", ["setup", "{bad}", "-i", "goodman", "--targets",
                                   "{bad}/corrupt.fits", "--root", "{out}"],
         "{bad}/corrupt.fits", "cannot read table"),
        ("setup-targets-text-z", ["setup", "{bad}", "-i", "goodman", "--targets",
                                  "{bad}/targets_strz.csv", "--root", "{out}"],
         "{bad}/targets_strz.csv", "column 'z'"),
        ("run-targets-negative-error", ["run", "{bad}", "-i", "goodman", "--targets",
                                        "{bad}/targets_negzerr.csv", "--root", "{out}"],
         "{bad}/targets_negzerr.csv", "'z_err' row 1: negative error"),
        ("cache-import-a-file", ["cache", "import", "{bad}/corrupt.fits"],
         "{bad}/corrupt.fits", "not a folder"),
        ("demo-under-a-file", ["demo", "{blocker}/demo"], "{blocker}", "existing file"),
        ("simulate-unknown-setup", ["simulate", "spectrum", "--setup", "nosuch", "--z", "0.03",
                                    "--n2", "-1.5", "-o", "{out}"], "", "unknown instrument"),
    ]


@pytest.mark.parametrize(("args", "path", "problem"),
                         [pytest.param(a, p, w, id=i) for i, a, p, w in _other_cases()])
def test_bad_input_of_other_commands(data, args, path, problem, tmp_path, capsys):
    (data["bad"] / "notes.pypeit").write_text("not a PypeIt file\n", encoding="utf-8")

    def fill(text):
        return str(text).format(bad=data["bad"], dir=data["dir"], blocker=data["blocker"],
                                out=tmp_path / "out")
    code, err = _run([fill(a) for a in args], capsys)
    _assert_user_error(code, err, fill(path), problem)
    assert not (tmp_path / "out").exists()


def test_inspect_several_files_reports_each_bad_one(data, capsys):
    """inspect: with several files a bad one is reported on one line and the others shown
    (exit 1)."""
    bad = data["bad"] / "corrupt.fits"
    code, err = _run(["inspect", bad, data["good"]], capsys)
    assert code == 1, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if str(bad) in ln]
    assert len(lines) == 1 and "corrupt FITS" in lines[0], err


def test_nan_errors_mask_pixels_and_empty_table_errors_mean_no_error(data, tmp_path):
    """The documented rule beside the refusals above: NaN error pixels of a spectrum are
    masked (a spectrum without any finite error is refused, BAD_SPECTRA), and an empty or
    NaN cell of a table's ``*_err`` column means "no error", not an error."""
    from xmpspec.io import read_spectrum
    from xmpspec.physics._columns import column_float
    t = Table.read(data["bad"] / "negerr.ecsv")
    t["error"] = np.abs(t["error"])
    t["error"][10:15] = np.nan
    p = tmp_path / "some_nan.ecsv"
    t.write(p)
    spec = read_spectrum(p)
    assert spec.mask[10:15].all() and spec.mask.sum() == 5
    objects = Table.read(data["objects"])
    objects["f_ha_err"] = np.nan
    assert np.isnan(column_float(objects, "f_ha_err", source="x")).all()


def test_report_of_a_folder_with_a_corrupt_table(data, tmp_path, capsys):
    """report shows what it can: a table of the folder that cannot be read is named once on
    the terminal and listed on the page under "Failures and warnings" (exit 0)."""
    import shutil
    folder = tmp_path / "night ü"
    shutil.copytree(data["measure_dir"], folder)
    shutil.copy(data["bad"] / "corrupt.fits", folder / "derived.ecsv")
    code, err = _run(["report", folder], capsys)
    assert code == 0, err
    named = [ln for ln in err.splitlines() if "derived.ecsv" in ln]
    assert len(named) == 1 and "cannot read table" in named[0], err
    page = (folder / "report.html").read_text(encoding="utf-8")
    failures = page.split("id='failures'", 1)[1]
    assert "derived.ecsv: not shown, cannot read table" in failures
    assert "XMPE1" in page                     # the readable tables are still shown


def test_every_file_of_the_demo_carries_provenance(tmp_path):
    """The demo chain (measure, derive, compare, tables, figures, recovery): every file
    it writes, spectra and inputs of the simulated night included."""
    out = tmp_path / "demo"
    assert main(["-q", "demo", str(out), "-n", "3"]) == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".ecsv", ".fits", ".png", ".pdf", ".tex", ".mrt",
                                         ".txt"}
    missing = [str(p.relative_to(out)) for p in files if not _provenance_of(p)]
    assert not missing, missing


@pytest.mark.parametrize(("command", "killed"), [
    ("compare", ["comparison.ecsv", "comparison.png"]),
    ("tables", ["line_fluxes.tex", "observing_log.mrt"]),
    ("plots", ["bpt.png", "mstar_distribution.pdf"]),        # mstar: skipped in this run
    ("report", ["report.html"]),
])
def test_a_command_removes_the_leftovers_of_its_killed_run(data, command, killed, tmp_path):
    out = tmp_path / "o"
    for name in killed:                  # a run of the command killed mid-write
        out.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-c", _KILLED_WRITE, str(out / name)], check=False)
    (out / ".keep").write_text("not a temporary")
    assert len([p for p in out.iterdir() if ".part" in p.name]) == len(killed)
    args = {"compare": ["compare", data["derived"], "-s", data["selection"], "-o", out],
            "tables": ["tables", data["derived"], "-o", out],
            "plots": ["plots", data["derived"], "-o", out],
            "report": ["report", data["measure_dir"], "-o", out / "report.html"]}[command]
    assert main(["-q", *map(str, args)]) == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".keep"]


def test_the_matrix_covers_every_command():
    """A new command (or command group) gets bad-input cases here."""
    import xmpspec.cli  # noqa: F401  (registers the commands)
    from xmpspec.cli.app import app
    commands = {c.name for c in app.registered_commands} | {g.name for g in
                                                            app.registered_groups}
    covered = {"measure", "inspect", "batch"}                       # BAD_SPECTRA
    covered |= {args[0] for _, args, _, _ in _table_cases() + _other_cases()}
    covered |= {args[0] for args in _output_cases().values()}
    assert commands <= covered, sorted(commands - covered)
