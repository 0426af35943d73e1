"""SOAR/Goodman red camera (issue 13): real 400 M1/M2 arcs against the Goodman pipeline.

The real arcs (``../shared/data/goodman_red_real_arcs``: 1x1, 400 rows read
out, single-extension ``.fits``, ``GRATING = 'SYZY_400'``, ``OBSTYPE =
'FOCUS'``) are calibrated through xmpspec's red-camera plug-in
(:func:`xmpspec.reduce.verify.arc_wavelength_solution`: PypeIt's
``full_template`` with ``soar_goodman_red_400_SYZY.fits``) and compared with
the lines the Goodman pipeline identified in lamps of the same modes
(``../shared/data/goodman_lamps``; GSP_Annn are AIR wavelengths, converted to
vacuum; the M2 list has two bad entries, 6143.5939 and 7435.37).

Measured here (PypeIt's own centroids of the lines in the 1D cut, our
solution there minus the reference vacuum wavelength):

- M1: fit RMS 0.038 pix (37 lines); all 23 reference lines identified,
  -0.012 +- 0.154 A (max 0.40 A, the weak Hg 5770/5791 doublet and Ne 6929);
- M2: fit RMS 0.031 pix (60 lines); 37 of the 38 good reference lines
  identified (Ne 7032.41 saturates at 56k ADU and is dropped), -0.001 +-
  0.034 A (max 0.10 A);
- the same M1 arc binned 2x2 and written as fpack ``.fz`` (image in
  extension 1) calibrates too.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _pypeit_env import offline_env
from astropy.io import fits

from xmpspec.reduce.spectrographs.goodman_red import normalise_grating, normalise_mode

pytestmark = pytest.mark.slow

ARCS = "data/goodman_red_real_arcs"
LAMPS = "data/goodman_lamps"
BAD_ENTRIES = (6143.5939, 7435.37)


def test_header_spellings_are_normalised():
    for g in ("SYZY_400", "400_SYZY", "400", "syzy_400", "400 SYZY"):
        assert normalise_grating(g) == "400_SYZY"
    assert normalise_grating("930_SYZY") == "930_SYZY"
    assert normalise_mode("400 m1") == "400_M1" and normalise_mode("400_M2") == "400_M2"


def test_camera_mixup_and_old_spellings_are_named(shared_dir):
    from xmpspec.reduce.registry import get_instrument
    w = " ".join(get_instrument("goodman").check_raw_files(shared_dir / ARCS))
    assert "red camera" in w and "--instrument goodman_red" in w
    w = " ".join(get_instrument("goodman_red").check_raw_files(shared_dir / ARCS))
    assert "2 frame(s) spell the grating the old way" in w and "read as GRATING = '400_SYZY'" in w
    assert "blue camera" not in w


SOLVE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from pypeit.core import arc
    from xmpspec.reduce.verify import arc_wavelength_solution
    out = {}
    for path in sys.argv[1:]:
        r = arc_wavelength_solution(path, "goodman_red")
        _, _, tcent, _, _, good, _, _ = arc.detect_lines(
            r["spectrum"], sigdetect=5.0, fwhm=4.0 / r["binning"], nonlinear_counts=56000.0)
        out[path] = {"wave": r["wave"].tolist(), "rms_pix": r["rms_pix"],
                     "n_lines": r["n_lines"], "first_column": r["first_column"],
                     "binning": r["binning"], "template": r["template"],
                     "centroids": np.asarray(tcent)[good].tolist()}
    print("JSON" + json.dumps(out))
""")


@pytest.fixture(scope="module")
def solutions(shared_dir, tmp_path_factory):
    """Solutions of the two real arcs and of M1 binned 2x2 as .fits.fz (one subprocess)."""
    tmp = tmp_path_factory.mktemp("goodman_red")
    env = offline_env(tmp, shared_dir)
    m1 = shared_dir / ARCS / "sp_400m1.fits"
    with fits.open(m1) as hdul:
        data = hdul[0].data.astype(np.float64)
        hdr = hdul[0].header.copy()
    ny, nx = (s // 2 * 2 for s in data.shape)
    binned = data[:ny, :nx].reshape(ny // 2, 2, nx // 2, 2).sum(axis=(1, 3))
    binned = np.clip(binned / 4.0, 0, 65535).astype(np.uint16)    # a 2x2 read-out's ADU
    for k in ("BSCALE", "BZERO", "NAXIS1", "NAXIS2", "BITPIX"):
        hdr.remove(k, ignore_missing=True)
    hdr["CCDSUM"] = "2 2"
    fz = tmp / "sp_400m1_2x2.fits.fz"
    fits.HDUList([fits.PrimaryHDU(header=hdr),
                  fits.CompImageHDU(binned, header=hdr)]).writeto(fz)
    paths = [str(m1), str(shared_dir / ARCS / "sp_400m2.fits"), str(fz)]
    r = subprocess.run([sys.executable, "-c", SOLVE, *paths], env=env, capture_output=True,
                       text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    import json
    got = json.loads(r.stdout.split("JSON", 1)[1])
    return {"m1": got[paths[0]], "m2": got[paths[1]], "m1_2x2": got[paths[2]]}


def _reference_lines(path):
    """(pixel, vacuum wavelength) of the Goodman pipeline's identified lines."""
    from astropy import units as u
    from pypeit.core.wave import airtovac
    h = fits.getheader(path)
    pix, air = [], []
    for key in h:
        m = re.fullmatch(r"GSP_P(\d+)", key)
        if m:
            pix.append(float(h[key]))
            air.append(float(h[f"GSP_A{m.group(1)}"]))
    air = np.array(air)
    good = ~np.any([np.isclose(air, b, atol=0.01) for b in BAD_ENTRIES], axis=0)
    return np.array(pix)[good], airtovac(air[good] * u.AA).value


def _compare(sol, ref_path):
    """Our wavelength at each reference line's centroid minus its vacuum wavelength."""
    wave = np.asarray(sol["wave"])
    pix = np.arange(wave.size)
    cen = np.asarray(sol["centroids"])
    _, vac = _reference_lines(ref_path)
    expect = np.interp(vac, wave, pix)                        # where our solution puts it
    j = np.array([np.argmin(np.abs(cen - p)) for p in expect])
    found = np.abs(cen[j] - expect) < 2.0
    diff = np.interp(cen[j], pix, wave) - vac
    return diff[found], found, vac


@pytest.mark.parametrize("mode,ref,min_found,max_std", [
    ("m1", "goodman_comp_400M1_HgArNe.fits", 23, 0.25),
    ("m2", "goodman_comp_400M2_GG455_HgArNe.fits", 36, 0.10),
])
def test_real_arc_against_goodman_pipeline(solutions, shared_dir, mode, ref, min_found,
                                           max_std):
    sol = solutions[mode]
    assert sol["template"] == "soar_goodman_red_400_SYZY.fits"   # GRATING was 'SYZY_400'
    assert sol["rms_pix"] < 0.06 and sol["n_lines"] >= 25
    assert sol["first_column"] == 50                  # the prescan is not spectrum
    diff, found, vac = _compare(sol, shared_dir / LAMPS / ref)
    assert found.sum() >= min_found, vac[~found]
    assert abs(np.mean(diff)) < 0.05
    assert np.std(diff) < max_std
    assert np.max(np.abs(diff)) < 0.5
    # the red camera's mode: M1 ~3000-7070 A, M2 ~4950-8990 A, ~0.99 A/pix
    wave = np.asarray(sol["wave"])
    lo, hi = (3000, 7080) if mode == "m1" else (4940, 9000)
    assert abs(wave[0] - lo) < 30 and abs(wave[-1] - hi) < 30
    assert 0.98 < np.median(np.diff(wave)) < 1.0


def test_binned_fpack_arc_calibrates(solutions):
    """2x2 binning and .fz (image in extension 1): PypeIt's own reader accepts neither."""
    one, two = solutions["m1"], solutions["m1_2x2"]
    assert two["binning"] == 2 and two["rms_pix"] < 0.1
    w1, w2 = np.asarray(one["wave"]), np.asarray(two["wave"])
    assert w2.size == pytest.approx(w1.size / 2, abs=2)
    # the same wavelengths at the same raw columns (binned pixel k covers 2k, 2k+1)
    raw = 2 * np.arange(w2.size) + 0.5
    assert np.median(np.abs(w2 - np.interp(raw, np.arange(w1.size), w1))) < 0.3


def test_setup_of_the_real_red_arcs(shared_dir, tmp_path):
    """`xmpspec setup -i goodman_red`: single-extension .fits read, spellings normalised."""
    env = offline_env(tmp_path, shared_dir)
    env["COLUMNS"] = "300"
    r = subprocess.run(["xmpspec", "setup", str(shared_dir / ARCS), "-i", "goodman_red",
                        "--root", str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = " ".join((r.stdout + r.stderr).split())
    assert "OBSTYPE = 'FOCUS' but arc lamp(s) HgAr, Ne on" in out
    assert "no flat-field frames" in out and "[calibrations][slitedges] add_slits" in out
    files = sorted((tmp_path / "pypeit_files" / "goodman_red" / "goodman_red_real_arcs")
                   .glob("*.pypeit"))
    assert len(files) == 2                        # M1 and M2 are two configurations
    text = " ".join(f.read_text() for f in files)
    assert "spectrograph = soar_goodman_red_xmpspec" in text
    assert "dispname: 400_SYZY" in text and "mode: 400_M1" in text and "mode: 400_M2" in text
    assert text.count("arc,tilt") == 2
