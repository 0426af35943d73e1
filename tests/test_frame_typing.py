"""Frame typing on real headers (issue 13): the lamp state decides arcs and flats.

Real Kast frames (../shared/data/real_nights), real Goodman red-camera arcs
(../shared/data/goodman_red_real_arcs) and ING-style cards made here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _pypeit_env import offline_env
from astropy.io import fits
from astropy.table import Table

from xmpspec.reduce.frametype import (
    apply_lamp_rules,
    decide_frame_type,
    declared_kind,
    is_raw_name,
    lamp_state,
    read_headers,
)

KAST = "data/real_nights/shane_kast_blue_2015-05-20"
GOODMAN_RED = "data/goodman_red_real_arcs"


def _ing(imagetyp, lamps, exptime=30.0, obstype=None):
    h = fits.Header({"INSTRUME": "ISIS", "IMAGETYP": imagetyp, "CAGLAMPS": lamps,
                     "EXPTIME": exptime})
    if obstype:
        h["OBSTYPE"] = obstype
    return [h]


# ------------------------------------------------------------------ Lick/Kast
@pytest.mark.parametrize("name,kind,said", [
    ("b1.fits.gz", "arc", "OBSTYPE = 'OBJECT'"),
    ("b11.fits.gz", "flat", "OBSTYPE = 'OBJECT'"),
    ("b12.fits.gz", "flat", "OBSTYPE = 'OBJECT'"),
    ("b13.fits.gz", "flat", "OBSTYPE = 'OBJECT'"),
    ("b21.fits.gz", "bias", "OBSTYPE = 'DARK'"),
    ("b22.fits.gz", "bias", "OBSTYPE = 'DARK'"),
    ("b23.fits.gz", "bias", "OBSTYPE = 'DARK'"),
])
def test_kast_calibrations_typed_by_lamps(shared_dir, name, kind, said):
    d = decide_frame_type(read_headers(shared_dir / KAST / name))
    assert d.kind == kind
    assert said in d.reason and f"typed {kind}" in d.reason
    if kind == "arc":
        assert "LAMPSTAF = 'on'" in d.reason and "LAMPSTAG = 'on'" in d.reason
    if kind == "flat":
        assert "LAMPSTA5 = 'on'" in d.reason


@pytest.mark.parametrize("name", ["b24.fits.gz", "b27.fits.gz"])
def test_kast_standard_and_science_left_to_pypeit(shared_dir, name):
    hdrs = read_headers(shared_dir / KAST / name)
    st = lamp_state(hdrs)
    assert st.known and not st.any_on
    d = decide_frame_type(hdrs)
    assert d.kind is None and d.reason == "" and d.warning == ""
    assert declared_kind(hdrs)[0] == "object"


# ------------------------------------------------------------------ Goodman red (real)
@pytest.mark.parametrize("name", ["sp_400m1.fits", "sp_400m2.fits"])
def test_goodman_red_focus_arcs_are_arcs(shared_dir, name):
    hdrs = read_headers(shared_dir / GOODMAN_RED / name)
    assert declared_kind(hdrs) == ("unknown", "OBSTYPE", "FOCUS")
    st = lamp_state(hdrs)
    assert st.arc == ("HgAr", "Ne") and st.continuum == ()
    d = decide_frame_type(hdrs)
    assert d.frametype == "arc,tilt"
    assert "OBSTYPE = 'FOCUS'" in d.reason and "LAMP_HGA = 'TRUE'" in d.reason


# ------------------------------------------------------------------ ING cards
def test_ing_arc_stored_as_object_is_an_arc():
    for hdrs in (_ing("object", "CuNe+CuAr"), _ing("OBJECT", "CuNe+CuAr", obstype="TARGET"),
                 _ing("TARGET", "CuAr+CuNe")):
        d = decide_frame_type(hdrs)
        assert d.kind == "arc", hdrs
        assert "arc lamp(s)" in d.reason and "CAGLAMPS" in d.reason


def test_ing_flat_bias_and_science():
    d = decide_frame_type(_ing("object", "W"))
    assert d.kind == "flat" and "continuum lamp(s) W" in d.reason
    d = decide_frame_type(_ing("flat", "W"))
    assert d.kind == "flat" and d.reason == ""          # declared right: nothing to report
    d = decide_frame_type(_ing("arc", "CuAr+CuNe"))
    assert d.kind == "arc" and d.reason == ""
    d = decide_frame_type(_ing("object", "Off"))
    assert d.kind is None                               # a science frame: PypeIt decides
    d = decide_frame_type(_ing("bias", "Off", exptime=0.0))
    assert d.kind == "bias" and d.reason == ""
    d = decide_frame_type(_ing("arc", "Off"))
    assert d.kind is None and "every lamp is off" in d.warning
    d = decide_frame_type(_ing("object", "CuAr+W"))
    assert d.kind is None and "together" in d.warning


def test_no_lamp_cards_keep_the_declared_type():
    h = [fits.Header({"EXPTYPE": "Object", "EXPTIME": 600.0})]
    assert not lamp_state(h).known
    assert decide_frame_type(h).kind is None


def test_raw_file_names():
    for name in ("r1234567.fit", "r1234567.fit.gz", "b1.fits.gz", "x.fits.fz", "x.fz",
                 "x.fts", "x.FITS", "x.fits.bz2", "x.fit.bz2", "x.fts.gz"):
        assert is_raw_name(name), name
    for name in ("x.txt", "x.fits.txt", "notes.md", "x.gz"):
        assert not is_raw_name(name), name


def test_apply_lamp_rules_retypes_and_reports(tmp_path):
    files = {"r1.fit.gz": _ing("object", "CuNe+CuAr"), "r2.fit": _ing("object", "W"),
             "r3.fit": _ing("object", "Off", exptime=900.0), "r4.fit": _ing("zero", "Off", 0.0)}
    table = Table({"filename": list(files), "directory": [str(tmp_path)] * 4,
                   "frametype": ["science", "science", "science", "None"],
                   "exptime": [30.0, 30.0, 900.0, 0.0]})
    reasons, notes = apply_lamp_rules(table, headers_of=lambda p: files[p.name])
    assert list(table["frametype"]) == ["arc,tilt", "pixelflat,illumflat,trace", "science",
                                        "bias"]
    assert set(reasons) == {"r1.fit.gz", "r2.fit"}
    assert any("r1.fit.gz" in n and "'science'" in n for n in notes)
    # without bias typing (Goodman: overscan only) the zero frame keeps PypeIt's type
    table["frametype"] = ["science", "science", "science", "None"]
    apply_lamp_rules(table, headers_of=lambda p: files[p.name], kinds=("arc", "flat"))
    assert table["frametype"][3] == "None"


IDS_CHECK = textwrap.dedent("""
    import numpy as np
    from astropy.table import Table
    from xmpspec.reduce.registry import get_instrument
    from xmpspec.reduce.runner import prepare_pypeit
    from pypeit.spectrographs.util import load_spectrograph
    plugin = get_instrument("int_ids")
    prepare_pypeit(plugin)
    spec = load_spectrograph(plugin.pypeit_name)
    t = Table({"filename": ["r1.fit.gz", "r2.fit", "r3.fit", "r4.fit", "r5.fit"],
               "idname": ["object", "object", "flat", "object", "bias"],
               "lampstat01": ["CuNe+CuAr", "W", "W", "Off", "Off"],
               "exptime": [30.0, 20.0, 20.0, 1200.0, 0.0],
               "ra": [10.0] * 5, "dec": [-60.0] * 5})
    for ft in ("arc", "tilt", "pixelflat", "trace", "science", "bias", "standard"):
        print(ft, "".join("1" if b else "0" for b in spec.check_frame_type(ft, t, None)))
    print("ext", ".fit.gz" in spec.allowed_extensions, ".fits.bz2" in spec.allowed_extensions)
    print("patterns", any(__import__("fnmatch").fnmatch("r1234567.fit.gz", p)
                          for p in plugin.raw_patterns))
""")


@pytest.mark.slow
def test_ids_plugin_types_by_lamps(shared_dir, tmp_path):
    env = offline_env(tmp_path, shared_dir)
    r = subprocess.run([sys.executable, "-c", IDS_CHECK], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert got["arc"] == got["tilt"] == "10000"       # the IMAGETYP='object' arc
    assert got["pixelflat"] == got["trace"] == "01100"
    assert got["science"] == "00010"
    assert got["bias"] == "00001"
    assert got["standard"] == "00000"
    assert got["ext"] == "True True" and got["patterns"] == "True"


@pytest.mark.slow
def test_kast_setup_night_log_lists_overrides(shared_dir, tmp_path):
    env = offline_env(tmp_path, shared_dir)
    # the real frames, two of them under other FITS names: .fit (plain) and .fits.bz2
    import bz2
    import gzip
    import shutil
    raw = tmp_path / "shane_kast_blue_2015-05-20"
    raw.mkdir()
    for f in (shared_dir / KAST).glob("*.fits.gz"):
        if f.name == "b27.fits.gz":
            (raw / "b27.fit").write_bytes(gzip.decompress(f.read_bytes()))
        elif f.name == "b24.fits.gz":
            (raw / "b24.fits.bz2").write_bytes(bz2.compress(gzip.decompress(f.read_bytes())))
        else:
            shutil.copy(f, raw / f.name)
    r = subprocess.run(["xmpspec", "setup", str(raw), "-i", "shane_kast_blue",
                        "--root", str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = " ".join((r.stdout + r.stderr).split())
    assert "frame type from the lamps" in out
    night = tmp_path / "pypeit_files" / "shane_kast_blue" / "shane_kast_blue_2015-05-20"
    log = Table.read(night / "night_log.ecsv")
    typing = log["typing"].filled("") if hasattr(log["typing"], "filled") else log["typing"]
    row = {str(f): (str(t), str(why)) for f, t, why in
           zip(log["file"], log["frametype"], typing, strict=True)}
    assert set(row["b1.fits.gz"][0].split(",")) == {"arc", "tilt"}
    assert "OBSTYPE = 'OBJECT'" in row["b1.fits.gz"][1]
    for f in ("b11.fits.gz", "b12.fits.gz", "b13.fits.gz"):
        assert {"pixelflat", "trace"} <= set(row[f][0].split(",")), row[f]
        assert "continuum lamp" in row[f][1]
    for f in ("b21.fits.gz", "b22.fits.gz", "b23.fits.gz"):
        assert row[f][0] == "bias" and "OBSTYPE = 'DARK'" in row[f][1]
    assert row["b24.fits.bz2"] == ("standard", "")
    assert row["b27.fit"] == ("science", "")
    pfile = next(night.glob("*.pypeit")).read_text()
    assert "spectrograph = shane_kast_blue" in pfile
    assert np.sum(["b1.fits.gz" in line and "arc" in line for line in pfile.splitlines()]) == 1


def test_missing_calibrations_say_what_is_left_and_how():
    from types import SimpleNamespace

    from xmpspec.reduce.nightlog import missing_calibration_flags
    plugin = SimpleNamespace(generic=True)
    types = {"science", "arc"}
    flags = " ".join(missing_calibration_flags(lambda k: k in types, plugin))
    assert "no flat-field frames" in flags and "'trace'" in flags and "add_slits" in flags
    assert "no flux standard" in flags and "N2, O3N2" in flags and "not flux-calibrated" in flags
    assert "no bias frames" in flags
    assert "no arc frames" not in flags
    types = {"science", "pixelflat", "trace", "standard", "bias"}
    flags = " ".join(missing_calibration_flags(lambda k: k in types, plugin))
    assert "no arc frames" in flags and "nothing can be reduced" in flags
    types |= {"arc"}
    assert missing_calibration_flags(lambda k: k in types, plugin) == []


SIM_ING = textwrap.dedent("""
    import gzip, sys
    from pathlib import Path
    from astropy.io import fits
    from xmpspec.simulate.night_ids import simulate_night
    from xmpspec.simulate.night import NightPlan
    sim, out = Path(sys.argv[1]), Path(sys.argv[2])
    simulate_night(str(sim), seed=2, plan=NightPlan(n_science=1))
    out.mkdir()
    for i, f in enumerate(sorted(sim.glob("int_ids_*.fits"))):
        with fits.open(f) as hdul:
            if "arc" in f.name:          # a real ING arc: IMAGETYP='object', OBSTYPE='TARGET'
                hdul[0].header["IMAGETYP"] = "object"
                hdul[0].header["OBSTYPE"] = "TARGET"
                hdul[0].header["CAGLAMPS"] = "CuNe+CuAr"
            name = out / f"r{1234560 + i}.fit"
            hdul.writeto(name)
        if i % 2 == 0:                   # ING files often arrive gzip-compressed
            (out / (name.name + ".gz")).write_bytes(gzip.compress(name.read_bytes()))
            name.unlink()
        print(name.name, f.name)
""")


@pytest.mark.slow
def test_ids_night_with_ing_style_arcs_and_fit_gz(shared_dir, tmp_path):
    """An IDS night named r*.fit(.gz) whose arc says IMAGETYP='object': typed by CAGLAMPS."""
    env = offline_env(tmp_path, shared_dir)
    env["COLUMNS"] = "300"
    r = subprocess.run([sys.executable, "-c", SIM_ING, str(tmp_path / "sim"),
                        str(tmp_path / "ing")], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    arc_file = next(line.split()[0] for line in r.stdout.splitlines() if "arc" in line)
    r = subprocess.run(["xmpspec", "setup", str(tmp_path / "ing"), "-i", "int_ids",
                        "--root", str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    log = Table.read(tmp_path / "pypeit_files" / "int_ids" / "ing" / "night_log.ecsv")
    assert len(log) == 5 and all(str(f).startswith("r123456") for f in log["file"])
    assert sum(str(f).endswith(".fit.gz") for f in log["file"]) == 3
    row = log[[str(f).startswith(arc_file) for f in log["file"]]][0]   # r*.fit or r*.fit.gz
    assert set(str(row["frametype"]).split(",")) == {"arc", "tilt"}
    assert "IMAGETYP = 'object' but arc lamp(s) CuNe, CuAr on" in str(row["typing"])
    types = sorted(str(t) for t in log["frametype"])
    assert types.count("science") == 1 and types.count("standard") == 1
    assert "bias" in types


def test_pypeit_typing_that_agrees_with_the_lamps_is_kept(tmp_path):
    files = {"a.fits": _ing("object", "CuAr"), "f.fits": _ing("object", "W"),
             "s.fits": _ing("object", "W")}
    table = Table({"filename": list(files), "directory": [str(tmp_path)] * 3,
                   "frametype": ["arc", "pixelflat,trace", "pixelflat,science"],
                   "exptime": [30.0, 10.0, 10.0]})
    reasons, notes = apply_lamp_rules(table, headers_of=lambda p: files[p.name])
    # PypeIt's own combinations stand; a lamp-on frame loses its science type
    assert list(table["frametype"]) == ["arc", "pixelflat,trace", "pixelflat,illumflat,trace"]
    assert len(reasons) == 3 and len(notes) == 1 and "s.fits" in notes[0]
