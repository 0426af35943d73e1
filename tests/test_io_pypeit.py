"""PypeIt spec1d (SpecObjs) and coadd1d (OneSpec) readers, on files written by PypeIt's
own classes (SpecObj/SpecObjs.write_to_fits, OneSpec.to_file)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from xmpspec import FLUX_UNIT, InputError
from xmpspec.cli import main
from xmpspec.io import detect_format, read_spectrum

NPIX = 400
TARGET = "J0845+1234"
RA, DEC = 131.2125, 12.5703


@pytest.fixture(scope="module", autouse=True)
def pypeit_offline(tmp_path_factory, shared_dir):
    """A private astropy/PypeIt cache holding astropy's site list, so PypeIt imports offline."""
    from astropy.utils.data import conf, import_file_to_cache

    root = tmp_path_factory.mktemp("xdg-cache")
    (root / "astropy").mkdir()
    (root / "pypeit").mkdir()
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(root)
    try:
        import_file_to_cache(conf.dataurl + "coordinates/sites.json",
                             str(shared_dir / "astropy-data" / "coordinates" / "sites.json"),
                             remove_original=False, pkgname="astropy")
        yield root
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old


def _arrays(seed, amp, wave0=5000.0, wave1=7000.0, n=NPIX):
    rng = np.random.default_rng(seed)
    wave = np.linspace(wave0, wave1, n)
    line = amp * 10 * np.exp(-0.5 * ((wave - 6564.61 * 1.01) / 3.0) ** 2)
    flam = amp + line + rng.normal(0, 0.05, n)
    ivar = np.full(n, 400.0)
    counts = 50.0 * flam
    civar = ivar / 2500.0
    return wave, flam, ivar, counts, civar


def _sobj(pypeline="MultiSlit", spat=100, slitid=250, amp=1.0, seed=0, fluxed=True,
          opt=True, order=None, wave_range=(5000.0, 7000.0), ra=None, dec=None,
          maskname=None, zero_ends=False):
    from pypeit.specobj import SpecObj

    if pypeline == "Echelle":
        so = SpecObj("Echelle", "DET01", ECH_ORDER=order, ECH_ORDERINDX=order % 100)
        so.ECH_FRACPOS_ID = 500
        so.ECH_OBJID = 1
        so.ECH_FRACPOS = 0.5
    else:
        so = SpecObj("MultiSlit", "DET01", SLITID=slitid)
        so.SPAT_PIXPOS = float(spat)
        so.SPAT_PIXPOS_ID = spat
    so.PYP_SPEC = "soar_goodman_blue"
    so.OBJTYPE = "science"
    wave, flam, ivar, counts, civar = _arrays(seed, amp, *wave_range)
    gpm = np.ones(NPIX, bool)
    gpm[[20, 21]] = False
    ivar = ivar.copy()
    ivar[30] = 0.0
    if zero_ends:
        wave = wave.copy()
        wave[:5] = 0.0
        wave[-3:] = 0.0
    exts = ["BOX", "OPT"] if opt else ["BOX"]
    for k, ext in enumerate(exts):
        scale = 1.0 + 0.01 * k  # OPT slightly different from BOX
        setattr(so, f"{ext}_WAVE", wave)
        setattr(so, f"{ext}_COUNTS", counts * scale)
        setattr(so, f"{ext}_COUNTS_IVAR", civar)
        setattr(so, f"{ext}_COUNTS_SIG", 1 / np.sqrt(civar))
        setattr(so, f"{ext}_MASK", gpm)
        setattr(so, f"{ext}_FWHM", np.full(NPIX, 6.5))
        if fluxed:
            setattr(so, f"{ext}_FLAM", flam * scale)
            setattr(so, f"{ext}_FLAM_IVAR", ivar)
            with np.errstate(divide="ignore"):
                setattr(so, f"{ext}_FLAM_SIG", np.where(ivar > 0, 1 / np.sqrt(ivar), 0.0))
    so.S2N = float(amp * 20)
    if ra is not None:
        so.RA, so.DEC = ra, dec
    if maskname is not None:
        so.MASKDEF_OBJNAME = maskname
    so.set_name()
    return so


def _subheader(target=TARGET, ra=RA, dec=DEC):
    return {"target": target, "ra": ra, "dec": dec, "PYP_SPEC": "soar_goodman_blue",
            "exptime": 2400.0, "airmass": 1.21, "mjd": 60000.25, "filename": "raw_0012.fz",
            "dispname": "400_SYZY", "decker": "1.0_LONG_SLIT", "binning": "2,2",
            "INSTRUME": "Goodman Spectro"}


def write_spec1d(path, sobjs_list, **sub):
    from pypeit.specobjs import SpecObjs

    sobjs = SpecObjs()
    for so in sobjs_list:
        sobjs.add_sobj(so)
    sobjs.write_to_fits(_subheader(**sub), str(path))
    return Path(path)


@pytest.fixture(scope="module")
def longslit(tmp_path_factory):
    d = tmp_path_factory.mktemp("spec1d")
    from pypeit.spectrographs.util import load_spectrograph

    faint = _sobj(spat=80, amp=0.3, seed=1)
    bright = _sobj(spat=150, amp=2.0, seed=2)
    # as PypeIt writes them: with the detector (a DET01-DETECTOR extension)
    det = load_spectrograph("soar_goodman_blue").get_detector_par(1)
    faint.DETECTOR = det
    bright.DETECTOR = det
    path = write_spec1d(d / "spec1d_b0012-J0845+1234_GOODMAN_20230214T031214.fits",
                        [faint, bright])
    return path, faint, bright


def _expected(so, ext="BOX", fl="FLAM"):
    wave = so[f"{ext}_WAVE"]
    flux = so[f"{ext}_{fl}"]
    ivar = so[f"{ext}_{fl}_IVAR"]
    gpm = so[f"{ext}_MASK"]
    keep = wave > 0
    with np.errstate(divide="ignore"):
        err = np.where(ivar > 0, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)), np.nan)
    mask = ~gpm | (ivar <= 0)
    return wave[keep], flux[keep], err[keep], mask[keep]


def _check(spec, so, ext="BOX", fl="FLAM"):
    wave, flux, err, mask = _expected(so, ext, fl)
    assert np.array_equal(spec.wavelength.to_value(u.AA), wave)
    assert np.array_equal(spec.flux.value, flux)
    good = ~mask
    assert np.allclose(spec.error.value[good], err[good], rtol=1e-12)
    assert np.array_equal(spec.mask, mask)


# ------------------------------------------------------------------ spec1d
def test_spec1d_brightest_default(longslit):
    path, faint, bright = longslit
    assert "DET01-DETECTOR" in [h.name for h in fits.open(path)]
    assert detect_format(path) == "pypeit-spec1d"
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("xmpspec.io")
    logger.addHandler(handler)  # not caplog: the CLI may have stopped propagation
    try:
        s = read_spectrum(path)
    finally:
        logger.removeHandler(handler)
    _check(s, bright)
    assert s.flux.unit == FLUX_UNIT and s.medium == "vacuum"
    assert s.name == TARGET
    assert s.meta["pypeit_name"] == bright.NAME
    assert s.meta["selected_by"] == "brightest"
    assert s.meta["instrument"] == "SOAR/Goodman" and s.meta["setup"] == "goodman_400"
    assert s.meta["extraction"] == "BOX" and s.meta["fluxed"] is True
    assert s.meta["exptime"] == 2400.0 and s.meta["airmass"] == 1.21
    assert s.meta["ra"] == pytest.approx(RA) and s.meta["dec"] == pytest.approx(DEC)
    assert s.meta["fwhm"] == pytest.approx(6.5)
    assert s.mask[20] and s.mask[21] and s.mask[30] and s.mask.sum() == 3
    # the user is told that another object was present
    assert any("2 objects in the file" in r.getMessage() and faint.NAME in r.getMessage()
               for r in records)


def test_spec1d_detected_by_content_not_name(longslit, tmp_path):
    path, faint, bright = longslit
    renamed = tmp_path / "night3_object.dat"
    renamed.write_bytes(path.read_bytes())
    assert detect_format(renamed) == "pypeit-spec1d"
    _check(read_spectrum(renamed), bright)


def test_spec1d_opt_and_counts(longslit):
    path, faint, bright = longslit
    _check(read_spectrum(path, extraction="OPT"), bright, "OPT")
    s = read_spectrum(path, fluxed=False)
    assert s.flux.unit == u.count and s.meta["fluxed"] is False
    _check(s, bright, "BOX", "COUNTS")


def test_spec1d_by_pypeit_name_and_target(longslit):
    path, faint, bright = longslit
    s = read_spectrum(path, obj=faint.NAME)
    _check(s, faint)
    assert s.name == faint.NAME and s.meta["selected_by"] == "name"
    s = read_spectrum(path, obj=faint.NAME.lower())
    assert s.meta["pypeit_name"] == faint.NAME
    s = read_spectrum(path, obj="j0845+1234")  # header TARGET, case-insensitive
    _check(s, bright)
    assert s.name == TARGET and s.meta["selected_by"] == "target"


def test_spec1d_by_position(longslit):
    path, faint, bright = longslit
    # objects have no RA/Dec in a long slit: the pointing decides, within 2 arcsec
    s = read_spectrum(path, ra=RA + 1.0 / 3600, dec=DEC)
    _check(s, bright)
    assert s.meta["selected_by"] == "pointing"
    s = read_spectrum(path, ra="08:44:51.0", dec="+12:34:13.08")  # sexagesimal, same place
    assert s.meta["pypeit_name"] == bright.NAME
    with pytest.raises(InputError, match="no object within 2 arcsec") as ei:
        read_spectrum(path, ra=RA + 10.0 / 3600, dec=DEC)
    assert faint.NAME in str(ei.value) and bright.NAME in str(ei.value)
    # a wider radius (pointing offsets) can be asked for
    s = read_spectrum(path, ra=RA + 10.0 / 3600, dec=DEC, match_arcsec=15.0)
    assert s.meta["pypeit_name"] == bright.NAME
    assert main(["inspect", str(path), "--ra", str(RA + 10.0 / 3600), "--dec", str(DEC),
                 "--match-arcsec", "15"]) == 0


def test_spec1d_object_not_found_lists_objects(longslit, capsys):
    path, faint, bright = longslit
    with pytest.raises(InputError) as ei:
        read_spectrum(path, obj="J9999+0000")
    msg = str(ei.value)
    assert msg.startswith(f"{path}: object 'J9999+0000' not found; objects present")
    assert faint.NAME in msg and bright.NAME in msg and TARGET in msg
    assert main(["inspect", str(path), "--object", "J9999+0000"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not found" in lines[0] and faint.NAME in lines[0]
    assert "Traceback" not in err


def test_spec1d_slitmask_objects_by_position(tmp_path):
    a = _sobj(spat=80, slitid=100, amp=1.0, seed=3, ra=150.0, dec=2.0, maskname="galA")
    b = _sobj(spat=90, slitid=300, amp=3.0, seed=4, ra=150.01, dec=2.01, maskname="galB")
    path = write_spec1d(tmp_path / "spec1d_mask.fits", [a, b], target="mask1", ra=150.005,
                        dec=2.005)
    s = read_spectrum(path, ra=150.0 + 0.5 / 3600, dec=2.0)
    _check(s, a)
    assert s.name == "galA" and s.meta["selected_by"] == "position"
    assert s.meta["ra"] == pytest.approx(150.0)
    assert read_spectrum(path, obj="galB").meta["pypeit_name"] == b.NAME
    with pytest.raises(InputError, match="no object within 2 arcsec"):
        read_spectrum(path, ra=150.005, dec=2.005)  # the pointing is not an object here


def test_spec1d_unfluxed_file(tmp_path, capsys):
    so = _sobj(fluxed=False, opt=False)
    path = write_spec1d(tmp_path / "spec1d_counts.fits", [so])
    with pytest.raises(InputError, match=r"has no BOX fluxed .*not flux-calibrated.*"
                                         r"available: BOX counts"):
        read_spectrum(path)
    with pytest.raises(InputError, match="has no OPT counts extraction"):
        read_spectrum(path, extraction="OPT", fluxed=False)
    _check(read_spectrum(path, fluxed=False), so, "BOX", "COUNTS")
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not flux-calibrated" in err and "Traceback" not in err
    assert main(["inspect", str(path), "--counts"]) == 0


def test_spec1d_unextracted_ends_dropped(tmp_path):
    so = _sobj(zero_ends=True)
    path = write_spec1d(tmp_path / "spec1d_ends.fits", [so])
    s = read_spectrum(path)
    assert s.wavelength.size == NPIX - 8
    _check(s, so)


def test_spec1d_echelle_orders_joined(tmp_path):
    # three orders with overlaps, written in arbitrary order
    ranges = {10: (6000.0, 7000.0), 11: (5400.0, 6100.0), 12: (4900.0, 5500.0)}
    sobjs = [_sobj("Echelle", order=o, wave_range=r, seed=o) for o, r in ranges.items()]
    path = write_spec1d(tmp_path / "spec1d_mage.fits", sobjs)
    s = read_spectrum(path)
    w = s.wavelength.value
    assert np.all(np.diff(w) > 0)
    assert w[0] == pytest.approx(4900.0) and w[-1] == pytest.approx(7000.0)
    assert sorted(s.meta["orders"]) == [10, 11, 12]
    assert s.meta["pypeit_name"] == "OBJ0500-DET01"
    # overlap 5400-5500 is cut at 5450: order 12 below, order 11 above
    o12 = sobjs[2]
    below = w < 5450
    assert np.array_equal(s.flux.value[below][: (o12.BOX_WAVE < 5450).sum()],
                          o12.BOX_FLAM[o12.BOX_WAVE < 5450])
    # no pixel is lost outside the overlaps and none duplicated
    assert np.unique(w).size == w.size


def test_spec1d_objects_listing(longslit, capsys):
    path, faint, bright = longslit
    assert main(["inspect", str(path), "--objects"]) == 0
    out = capsys.readouterr().out
    assert faint.NAME in out and bright.NAME in out and "BOX fluxed" in out
    assert out.index(bright.NAME) < out.index(faint.NAME)  # brightest first


def test_spec1d_cli_inspect(longslit, capsys):
    path, faint, bright = longslit
    assert main(["inspect", str(path), "--extraction", "OPT"]) == 0
    out = capsys.readouterr().out
    for text in (TARGET, "SOAR/Goodman", "5000.0-7000.0 A (vacuum)", "OPT, fluxed",
                 "pypeit-spec1d", "2400 s"):
        assert text in out, (text, out)


def test_spec1d_truncated(longslit, tmp_path, capsys):
    path, *_ = longslit
    raw = path.read_bytes()
    bad = tmp_path / "spec1d_truncated.fits"
    bad.write_bytes(raw[: len(raw) - 5000])
    with pytest.raises(InputError, match="truncated|corrupt"):
        read_spectrum(bad)
    assert main(["inspect", str(bad)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_spec1d_cut_at_an_hdu_boundary(longslit, tmp_path):
    path, *_ = longslit
    with fits.open(path) as hdul:
        end_first_object = hdul.fileinfo(2)["hdrLoc"]  # file ends cleanly after object 1
    bad = tmp_path / "spec1d_cut.fits"
    bad.write_bytes(path.read_bytes()[:end_first_object])
    with pytest.raises(InputError, match="truncated PypeIt spec1d file: header NSPEC=2"):
        read_spectrum(bad)


def test_spec1d_without_objects(tmp_path):
    p = tmp_path / "spec1d_empty.fits"
    h = fits.PrimaryHDU()
    h.header["DMODCLS"] = "SpecObjs"
    h.header["TARGET"] = TARGET
    h.writeto(p)
    with pytest.raises(InputError, match="no object extensions"):
        read_spectrum(p)


# ------------------------------------------------------------------ coadd1d
def write_coadd(path, pyp_spec="soar_goodman_blue", fluxed=True, zero_bins=0):
    from pypeit.onespec import OneSpec

    wave, flam, ivar, *_ = _arrays(9, 1.5)
    grid = wave.copy()
    wave = wave + 0.01  # weighted wavelengths differ slightly from the grid centres
    mask = np.ones(NPIX, int)
    mask[[40, 41]] = 0
    if zero_bins:
        wave[-zero_bins:] = 0.0
        ivar = ivar.copy()
        ivar[-zero_bins:] = 0.0
        mask[-zero_bins:] = 0
    spec = OneSpec(wave=wave, wave_grid_mid=grid, flux=flam, PYP_SPEC=pyp_spec, ivar=ivar,
                   sigma=1 / np.sqrt(np.where(ivar > 0, ivar, np.inf)), mask=mask,
                   ext_mode="BOX", fluxed=fluxed)
    head = fits.Header()
    for key, val in {"TARGET": TARGET, "RA": RA, "DEC": DEC, "EXPTIME": 7200.0,
                     "AIRMASS": 1.3, "MJD": 60000.3, "DISPNAME": "400_SYZY",
                     "DECKER": "1.0_LONG_SLIT", "BINNING": "2,2", "FILENAME": "raw.fz",
                     "INSTRUME": "Goodman Spectro", "DATE-OBS": "2023-02-14T03:12:14",
                     "RA_OBJ": RA, "DEC_OBJ": DEC}.items():
        head[key] = val
    spec.head0 = head
    spec.to_file(str(path), overwrite=True)
    return Path(path), wave, grid, flam, ivar, mask


def test_coadd1d_reader(tmp_path):
    path, wave, grid, flam, ivar, mask = write_coadd(tmp_path / "J0845+1234_coadd.fits")
    assert detect_format(path) == "pypeit-coadd1d"
    s = read_spectrum(path)
    assert np.array_equal(s.wavelength.value, wave)
    assert np.array_equal(s.flux.value, flam)
    assert np.allclose(s.error.value, 1 / np.sqrt(ivar))
    assert np.array_equal(s.mask, mask == 0)
    assert s.flux.unit == FLUX_UNIT and s.medium == "vacuum"
    assert s.name == TARGET
    assert s.meta["ra"] == pytest.approx(RA) and s.meta["dec"] == pytest.approx(DEC)
    assert s.meta["instrument"] == "SOAR/Goodman" and s.meta["extraction"] == "BOX"
    assert s.meta["wave_column"] == "wave"


def test_coadd1d_empty_bins(tmp_path):
    # bins that received no data have wave = 0 in PypeIt's coadd: they are dropped
    path, wave, grid, flam, ivar, mask = write_coadd(tmp_path / "coadd.fits", zero_bins=6)
    s = read_spectrum(path)
    assert s.wavelength.size == NPIX - 6
    assert np.array_equal(s.wavelength.value, wave[:-6])
    assert np.array_equal(s.flux.value, flam[:-6])


def test_coadd1d_unknown_spectrograph_falls_back(tmp_path):
    path, wave, grid, flam, ivar, mask = write_coadd(tmp_path / "coadd.fits")
    with fits.open(path, mode="update") as hdul:  # as written by an unregistered plug-in
        hdul[0].header["PYP_SPEC"] = "int_ids_redplus2_unregistered"
        hdul[1].header["PYP_SPEC"] = "int_ids_redplus2_unregistered"
    s = read_spectrum(path)
    assert np.array_equal(s.flux.value, flam)
    assert s.meta["pypeit_spectrograph"] == "int_ids_redplus2_unregistered"


def test_coadd1d_counts(tmp_path):
    path, *_ = write_coadd(tmp_path / "coadd.fits", fluxed=False)
    s = read_spectrum(path)
    assert s.flux.unit == u.count and s.meta["fluxed"] is False


def test_coadd1d_object_check(tmp_path, capsys):
    path, *_ = write_coadd(tmp_path / "coadd.fits")
    assert read_spectrum(path, obj="J0845+1234").name == TARGET
    assert read_spectrum(path, ra=RA, dec=DEC + 1 / 3600).name == TARGET
    with pytest.raises(InputError, match="object 'J0000' not found; the file holds one "
                                         "object: 'J0845\\+1234'"):
        read_spectrum(path, obj="J0000")
    with pytest.raises(InputError, match="no object within 2 arcsec"):
        read_spectrum(path, ra=RA + 0.01, dec=DEC)
    assert main(["inspect", str(path), "--object", "J0000"]) == 2
    assert "not found" in capsys.readouterr().err


def test_spec1d_coadd_round_trip_through_writer(longslit, tmp_path):
    from xmpspec.io import write_spectrum
    path, faint, bright = longslit
    s = read_spectrum(path, extraction="OPT")
    back = read_spectrum(write_spectrum(s, tmp_path / "J0845.fits"))
    assert np.array_equal(back.flux.value, s.flux.value)
    assert np.array_equal(back.mask, s.mask)
    assert back.meta["pypeit_name"] == bright.NAME
    assert back.meta["origin_file"] == str(path)
    assert back.meta["origin_format"] == "pypeit-spec1d"


def test_pypeit_offline_without_site_list_is_a_clear_error(longslit, tmp_path):
    """A fresh machine with no network and no cached site list: one-line error, exit 2."""
    import subprocess
    import sys

    path, *_ = longslit
    home = tmp_path / "home"
    (tmp_path / "cache" / "astropy").mkdir(parents=True)
    (tmp_path / "config" / "astropy").mkdir(parents=True)
    (tmp_path / "config" / "astropy" / "astropy.cfg").write_text(
        "[utils.data]\nallow_internet = False\n")
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    exe = Path(sys.executable).with_name("xmpspec")
    cmd = [str(exe)] if exe.exists() else ["xmpspec"]
    r = subprocess.run(cmd + ["inspect", str(path)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in r.stderr
    assert lines[-1].startswith(f"xmpspec: error: {path}: PypeIt cannot be imported offline")
    assert "xmpspec cache import" in lines[-1]


def test_wrong_pypeit_format_override(longslit, tmp_path):
    path, *_ = longslit
    coadd, *_ = write_coadd(tmp_path / "coadd.fits")
    with pytest.raises(InputError, match="cannot read PypeIt spec1d file .*OneSpec"):
        read_spectrum(coadd, format="spec1d")
    with pytest.raises(InputError, match="cannot read PypeIt coadd1d file"):
        read_spectrum(path, format="coadd1d")


def test_read_spectra_every_object(longslit, tmp_path):
    from xmpspec.io import read_spectra
    path, faint, bright = longslit
    specs = read_spectra(path, extraction="OPT")
    assert [s.meta["pypeit_name"] for s in specs] == [bright.NAME, faint.NAME]
    _check(specs[0], bright, "OPT")
    _check(specs[1], faint, "OPT")
    assert specs[0].name == TARGET and specs[1].name == faint.NAME
    coadd, *_ = write_coadd(tmp_path / "coadd.fits")
    assert [s.name for s in read_spectra(coadd)] == [TARGET]


def test_cli_fresh_interpreter_reads_pypeit_files(longslit, tmp_path, pypeit_offline):
    """`xmpspec inspect` in a new process (PypeIt imported by the reader itself, as for users)."""
    import subprocess
    import sys

    path, faint, bright = longslit
    coadd, *_ = write_coadd(tmp_path / "coadd.fits")
    env = dict(os.environ, XDG_CACHE_HOME=str(pypeit_offline))
    exe = Path(sys.executable).with_name("xmpspec")
    cmd = [str(exe)] if exe.exists() else ["xmpspec"]
    r = subprocess.run(cmd + ["-q", "inspect", str(path), str(coadd)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "pypeit-spec1d" in r.stdout and "pypeit-coadd1d" in r.stdout
    assert TARGET in r.stdout and "Traceback" not in r.stderr
