"""End-to-end PypeIt nights: `xmpspec simulate night` -> `xmpspec run`, offline.

Each night takes minutes (PypeIt: ~2.5 min Goodman, ~5 min IDS on an idle
2-core machine); they run under the ``pypeit_night`` marker.
Acceptance (issue 6): fluxes of the bright lines within 10% of the injected
ones (times the fraction of the galaxy's light inside the boxcar), N2 within
2 sigma of the truth, PypeIt's wavelength solution within 0.1 pixel RMS of the
simulated one over the range the arc lines constrain.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
from _pypeit_env import offline_env
from astropy.table import Table

pytestmark = pytest.mark.pypeit_night

BRIGHT = ("ha", "hb", "oiii5008", "oiii4960")


def _run_night(instrument, shared_dir, tmp):
    env = offline_env(tmp, shared_dir, seed=False)
    raw = tmp / "raw"
    # the simulator needs PypeIt's standards: import only what it needs first
    subprocess.run(["xmpspec", "-q", "cache", "import", str(shared_dir / "pypeit-data"),
                    str(shared_dir / "astropy-data")], env=env, check=True, capture_output=True)
    r = subprocess.run(["xmpspec", "-q", "simulate", "night", "-i", instrument, "-o", str(raw),
                        "--seed", "11"], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    t0 = time.time()
    # run from the project folder with relative paths, as an observer would: the PypeIt
    # files and the outputs must name no absolute path of it (test_no_absolute_paths_...)
    r = subprocess.run(["xmpspec", "run", "raw", "-i", instrument, "--targets",
                        "raw/targets.csv", "--night", "sim", "--root", ".",
                        "--reference-data", str(shared_dir / "pypeit-data")],
                       env=env, capture_output=True, text=True, timeout=3600, cwd=tmp)
    elapsed = time.time() - t0
    print(f"{instrument}: xmpspec run took {elapsed:.0f} s")
    return r, raw, tmp / "reductions" / instrument / "sim", env


_NIGHTS: dict = {}


def _night(instrument, shared_dir, tmp_path_factory):
    """One simulated night per instrument per session (shared by the tests below)."""
    if instrument not in _NIGHTS:
        tmp = tmp_path_factory.mktemp(instrument)
        _NIGHTS[instrument] = (instrument, *_run_night(instrument, shared_dir, tmp))
    return _NIGHTS[instrument]


@pytest.fixture(scope="module", params=["goodman", "int_ids"])
def night(request, shared_dir, tmp_path_factory):
    return _night(request.param, shared_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def goodman_night(shared_dir, tmp_path_factory):
    return _night("goodman", shared_dir, tmp_path_factory)


def test_run_succeeds_and_writes_products(night):
    instrument, r, raw, nightdir, _ = night
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    summary = Table.read(nightdir / "summary.ecsv")
    truth = Table.read(raw / "truth.ecsv")
    assert set(summary["target"]) == set(truth["name"])
    assert all(s == "fluxed" for s in summary["flux_calibration"])
    for row in summary:
        assert row["n_exposures"] == truth["n_exposures"][0]
        assert (nightdir / row["setup"] / f"{row['target']}.fits").is_file()
    assert (nightdir / "measurements.ecsv").is_file()
    assert (nightdir / "derived.ecsv").is_file()


def _holding(files, needles: list[bytes]) -> list[str]:
    return [str(f) for f in files if any(n in f.read_bytes() for n in needles)]


def test_no_absolute_paths_in_pypeit_files_and_outputs(goodman_night):
    """PypeIt files and xmpspec's outputs of a night run with relative paths name no
    absolute path of the project folder (``tmp``): data paths relative to the PypeIt
    file's folder, coadds, summary, measurements, provenance and report as given.

    PypeIt's own products (spec1d/spec2d/calibration headers, its log, the ``.calib``
    file) hold what PypeIt writes; they are listed, not checked.
    """
    instrument, r, raw, nightdir, _ = goodman_night
    assert r.returncode == 0, r.stderr[-2000:]
    root = nightdir.parents[2]
    needles = sorted({str(root).encode(), str(root.resolve()).encode()})
    pfiles = sorted((root / "pypeit_files").rglob("*"))
    pfile = next(f for f in pfiles if f.suffix == ".pypeit")
    text = pfile.read_text()
    assert " path ../../../raw\n" in text and "# xmpspec: raw_dir = ../../../raw\n" in text
    ours = [f for f in pfiles if f.is_file()]
    ours += [f for f in nightdir.iterdir() if f.is_file()]             # tables, report
    for setup in (p for p in nightdir.iterdir() if p.is_dir()):
        ours += sorted(setup.glob("*.pypeit"))                          # the run copy
    assert {f.name for f in ours} >= {"night_log.ecsv", "summary.ecsv", "measurements.ecsv",
                                      "measurements.fits", "lines.ecsv", "derived.ecsv",
                                      "report.html", pfile.name}
    assert not _holding(ours, needles)
    summary = Table.read(nightdir / "summary.ecsv")
    assert all(str(c).startswith(f"reductions/{instrument}/sim/") for c in summary["coadd"])
    meas = Table.read(nightdir / "measurements.ecsv")
    assert all(str(c).startswith(f"reductions/{instrument}/sim/") for c in meas["source_file"])
    # informational: PypeIt's own files that hold the folder's absolute path
    pypeits = [f for f in nightdir.rglob("*") if f.is_file() and f not in ours]
    print("PypeIt's own files with the absolute path:", _holding(pypeits, needles))


def test_wavelength_solution_matches_truth(night):
    instrument, r, raw, nightdir, env = night
    redux = next(p for p in nightdir.iterdir() if p.is_dir())
    code = ("import pypeit.spectrographs\n"
            "from xmpspec.reduce.verify import wavelength_accuracy\n"
            f"print(wavelength_accuracy({str(redux)!r}, "
            f"{str(raw / 'wavelength_solution.ecsv')!r})['rms_pix'])\n")
    out = subprocess.run(["python", "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rms = float(out.stdout.strip().splitlines()[-1])
    print(f"{instrument}: wavelength RMS vs truth {rms:.3f} pix")
    assert rms < 0.1


def test_fluxes_and_n2_recovered(night):
    instrument, r, raw, nightdir, _ = night
    truth = Table.read(raw / "truth.ecsv")
    meas = Table.read(nightdir / "measurements.ecsv")
    for t in truth:
        m = meas[np.asarray(meas["name"]).astype(str) == t["name"]][0]
        for key in BRIGHT:
            expected = t[f"f_{key}"] * t["aperture_fraction"]
            got = float(m[f"f_{key}"])
            print(f"{instrument} {t['name']} {key}: {got:.1f} vs {expected:.1f}")
            assert got == pytest.approx(expected, rel=0.10), key
        print(f"{instrument} {t['name']} N2: {float(m['n2']):.3f} +- {float(m['n2_err']):.3f} "
              f"vs {t['n2']:.3f}")
        assert str(m["n2_state"]) == "detected"
        assert abs(float(m["n2"]) - t["n2"]) <= 2 * float(m["n2_err"])


def test_every_line_within_its_error(night):
    """Every catalogue line against the injected flux (issue 13 item 5).

    A detected line within 3 sqrt(error^2 + (3% x expected)^2) of the injected flux
    x the boxcar light fraction, a line reported as an upper limit above it
    (``line_verdicts`` of test_mage_night.py, the rule of all simulated nights).
    """
    from test_mage_night import line_verdicts

    instrument, r, raw, nightdir, _ = night
    truth = Table.read(raw / "truth.ecsv")
    meas = Table.read(nightdir / "measurements.ecsv")
    for t in truth:
        m = meas[np.asarray(meas["name"]).astype(str) == t["name"]][0]
        verdicts = line_verdicts(m, t, wave_range=truth.meta.get("wavelength_range_arcs"))
        print(f"{instrument} {t['name']}: " + "; ".join(text for _, _, text in verdicts))
        assert len(verdicts) >= 15
        assert all(ok for _, ok, _ in verdicts), [text for _, ok, text in verdicts if not ok]


def test_error_arrays_match_the_scatter(night):
    """The coadd's error spectrum describes its pixel scatter (issue 12 item 4).

    ``error_scale`` of ``xmpspec measure`` (robust std of (flux - running
    median) / error away from the lines, xmpspec.lines.noise) must be
    0.9-1.1. Measured (seed 11, 2026-12-06): Goodman 0.918, IDS 1.064. The IDS
    night with a single bias frame gave 1.245: the master bias's read noise is
    subtracted from both exposures, so it is common to them (each exposure 0.99-1.05);
    the simulator now takes 11 biases. The sky model's noise (xmpspec.reduce.skyvar)
    adds 0-3% on these long slits.
    """
    instrument, r, raw, nightdir, _ = night
    meas = Table.read(nightdir / "measurements.ecsv")
    for m in meas:
        scale = float(m["error_scale"])
        print(f"{instrument} {m['name']}: error_scale {scale:.3f}")
        assert 0.9 <= scale <= 1.1, (m["name"], scale)


def _coadd_arrays(path):
    from astropy.io import fits
    with fits.open(path) as hdul:
        d = hdul[1].data
        return {k: np.asarray(d[k], float) for k in ("wave", "flux", "ivar")}


def test_parallel_reduce_gives_the_same_coadds(goodman_night, shared_dir, tmp_path):
    """`xmpspec reduce --workers 2` on two PypeIt files = the sequential reduction of each.

    The Goodman night's PypeIt file is reduced twice, as two set-ups, in two
    worker processes; each coadd must equal the one `xmpspec run` made
    (sequentially) for the night. Takes ~2 Goodman reductions on 2 cores
    (~3-4 min idle; see the printed time).
    """
    instrument, r, raw, nightdir, env = goodman_night
    assert r.returncode == 0, r.stderr[-2000:]
    root = nightdir.parents[2]
    pfile = next((root / "pypeit_files" / instrument / "sim").glob("*.pypeit"))
    # copies at the same depth (their data path is relative to their folder); reduced from
    # another working folder (pytest's), which must give the same coadds
    work = root / "pypeit_files" / instrument / "par"
    work.mkdir()
    files = [work / pfile.name, work / f"{pfile.stem}_copy.pypeit"]
    for f in files:
        f.write_text(pfile.read_text())
    t0 = time.time()
    out = subprocess.run(["xmpspec", "reduce", *map(str, files), "--workers", "2", "--root",
                          str(tmp_path), "--targets", str(raw / "targets.csv"),
                          "--reference-data", str(shared_dir / "pypeit-data")],
                         env=env, capture_output=True, text=True, timeout=3600)
    print(f"xmpspec reduce --workers 2 (2 Goodman PypeIt files) took {time.time() - t0:.0f} s")
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    par_night = tmp_path / "reductions" / instrument / "sim"
    summary = Table.read(par_night / "summary.ecsv")
    truth = Table.read(raw / "truth.ecsv")
    assert list(summary["setup"]) == [f.stem for f in files for _ in truth]
    assert all(s == "fluxed" for s in summary["flux_calibration"])
    for name in truth["name"]:
        ref = _coadd_arrays(nightdir / pfile.stem / f"{name}.fits")
        for f in files:
            got = _coadd_arrays(par_night / f.stem / f"{name}.fits")
            for k in ref:
                # measured 2026-12-06 (archived-sky Goodman night): the two workers'
                # coadds are bit-identical to each other; against the sequential run the
                # wavelengths differ by <= 3e-10, the fluxes by <= 1.0e-4 (median 4e-7)
                # and the ivar by <= 4e-6 (relative). Source not found (was bit-identical
                # with the line-list sky); far below the errors (~1e-2)
                np.testing.assert_allclose(got[k], ref[k], rtol=1e-3, atol=0,
                                           err_msg=f"{f.stem} {name} {k}")
