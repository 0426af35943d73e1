"""Simulated raw nights (`xmpspec simulate night`): layout, headers, truth."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from _pypeit_env import offline_env
from astropy.io import fits
from astropy.table import Table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(shared_dir, tmp_path_factory):
    return offline_env(tmp_path_factory.mktemp("env"), shared_dir)


@pytest.fixture(scope="module")
def goodman_night(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("goodman")
    r = subprocess.run(["xmpspec", "-q", "simulate", "night", "-i", "goodman", "-o", str(out),
                        "--seed", "5"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def ids_night(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("ids")
    r = subprocess.run(["xmpspec", "-q", "simulate", "night", "-i", "int_ids", "-o", str(out),
                        "--seed", "6"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_goodman_frames_layout_and_headers(goodman_night):
    files = sorted(goodman_night.glob("*.fits.fz"))
    kinds = [f.name.split("_")[-1].split(".")[0] for f in files]
    assert kinds == ["bias", "flat", "arc", "standard", "science", "science"]
    with fits.open(files[2]) as h:
        assert isinstance(h[1], fits.CompImageHDU)
        hdr = h[1].header
        assert hdr["OBSTYPE"] == "COMP" and hdr["LAMP_HGA"] == "TRUE" and hdr["LAMP_NE"] == "TRUE"
        assert hdr["GRATING"] == "400_SYZY" and hdr["CCDSUM"] == "2 2"
        assert h[1].data.shape == (250, 2049)
        # overscan columns are bias only; arc lines in the data columns
        assert np.median(h[1].data[:, :8]) == pytest.approx(700, abs=5)
        assert h[1].data[:, 9:2049].max() > 5000
    with fits.open(files[3]) as h:
        assert h[1].header["OBJECT"] == "LTT3864"


def test_goodman_truth_tables(goodman_night):
    truth = Table.read(goodman_night / "truth.ecsv")
    targets = Table.read(goodman_night / "targets.csv")
    assert list(targets["name"]) == list(truth["name"])
    row = truth[0]
    assert row["n2"] == pytest.approx(np.log10(row["f_nii6585"] / row["f_ha"]), abs=1e-9)
    assert row["f_nii6585"] / row["f_nii6550"] == pytest.approx(2.96, rel=1e-6)
    assert 0.95 < row["aperture_fraction"] < 1.0
    w = Table.read(goodman_night / "wavelength_solution.ecsv")
    assert np.all(np.diff(w["wave_vac"]) > 0)
    lo, hi = w.meta["arc_range"]
    assert lo < 4100 and hi > 6900


def test_science_frame_contains_the_injected_line(goodman_night):
    """Counts at Halpha along the slit: extended (wider than the seeing) and above the sky."""
    truth = Table.read(goodman_night / "truth.ecsv")
    w = Table.read(goodman_night / "wavelength_solution.ecsv")
    ha = 6564.61 * (1 + truth["z"][0])
    pix = int(np.argmin(np.abs(w["wave_vac"] - ha))) + 9
    with fits.open(sorted(goodman_night.glob("*science*"))[0]) as h:
        d = h[1].data.astype(float)
    prof = d[:, pix - 1:pix + 2].sum(axis=1) - d[:, pix + 15:pix + 18].sum(axis=1)
    peak = np.argmax(prof)
    assert prof[peak] > 2000
    above_half = np.sum(prof > prof[peak] / 2)
    assert above_half > 1.0 / 0.3 + 1     # wider than the 1" seeing FWHM (0.3"/pix)


def test_ids_frames_and_end_lines(ids_night):
    files = sorted(ids_night.glob("*.fits"))
    # 11 biases (a master bias: its noise is common to the exposures of a coadd), flat,
    # arc, standard, 2 science
    assert len(files) == 16
    with fits.open(files[12]) as h:
        assert h[0].header["IMAGETYP"] == "ARC" and h[0].header["INSTRUME"] == "IDS"
        assert h[1].header["TRIMSEC"].startswith("[21:")
        data = h[1].data.astype(float)
    w = Table.read(ids_night / "wavelength_solution.ecsv")
    lo, hi = w.meta["arc_range"]
    # lamp lines were added beyond the template's usable range
    assert lo < 4000 and hi > 7300
    arc1d = np.median(data[:, 50:150], axis=1) - 1500
    red = (w["wave_vac"] > 7200)
    assert arc1d[np.asarray(red)].max() > 1000


def test_unknown_instrument_is_an_input_error(env, tmp_path):
    r = subprocess.run(["xmpspec", "simulate", "night", "-i", "hst", "-o", str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown instrument" in r.stderr
