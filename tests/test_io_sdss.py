"""SDSS/BOSS spec-*.fits reader on files built with astropy in the real layout."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits

from xmpspec import FLUX_UNIT, InputError
from xmpspec.cli import main
from xmpspec.io import detect_format, read_spectrum

NPIX = 3000
LOGLAM = (3.5800 + 1e-4 * np.arange(NPIX)).astype(np.float32)  # 3802-7606 A


def make_sdss(path, z=0.02345, zerr=1.2e-5, hdu2="SPECOBJ", drop_col=None, zwarning=0,
              with_specobj=True):
    """A spec-PLATE-MJD-FIBER.fits file with the DR8+ layout (float32 COADD columns)."""
    rng = np.random.default_rng(7)
    wave = 10 ** LOGLAM.astype(float)
    flux = (5.0 + 30.0 * np.exp(-0.5 * ((wave - 6564.61 * (1 + z)) / 2.5) ** 2)
            + rng.normal(0, 0.5, NPIX)).astype(np.float32)
    ivar = np.full(NPIX, 4.0, np.float32)
    ivar[100] = 0.0
    and_mask = np.zeros(NPIX, np.int32)
    and_mask[200:203] = 2**23  # BRIGHTSKY-like bit
    or_mask = and_mask.copy()
    or_mask[300] = 1
    wdisp = np.full(NPIX, 1.1, np.float32)
    cols = {"flux": ("E", flux), "loglam": ("E", LOGLAM), "ivar": ("E", ivar),
            "and_mask": ("J", and_mask), "or_mask": ("J", or_mask), "wdisp": ("E", wdisp),
            "sky": ("E", np.ones(NPIX, np.float32)), "model": ("E", flux)}
    coadd = fits.BinTableHDU.from_columns(
        [fits.Column(name=k, format=f, array=a) for k, (f, a) in cols.items() if k != drop_col],
        name="COADD")
    h0 = fits.Header()
    h0["TELESCOP"] = "SDSS 2.5-M"
    h0["PLUG_RA"] = 146.71421
    h0["PLUG_DEC"] = -1.0413
    h0["EXPTIME"] = 2701.0
    h0["BUNIT"] = "1E-17 erg/cm^2/s/Ang"
    h0["VACUUM"] = (True, "Wavelengths are in vacuum")
    h0["PLATEID"] = 266
    h0["MJD"] = 51602
    hdus = [fits.PrimaryHDU(header=h0), coadd]
    if with_specobj:
        so = fits.BinTableHDU.from_columns([
            fits.Column(name="PLATE", format="J", array=[266]),
            fits.Column(name="MJD", format="J", array=[51602]),
            fits.Column(name="FIBERID", format="J", array=[3]),
            fits.Column(name="CLASS", format="6A", array=["GALAXY"]),
            fits.Column(name="Z", format="E", array=[z]),
            fits.Column(name="Z_ERR", format="E", array=[zerr]),
            fits.Column(name="ZWARNING", format="J", array=[zwarning]),
            fits.Column(name="PLUG_RA", format="D", array=[146.71421]),
            fits.Column(name="PLUG_DEC", format="D", array=[-1.0413]),
        ], name=hdu2)
        hdus.append(so)
        hdus.append(fits.BinTableHDU.from_columns(
            [fits.Column(name="LINEWAVE", format="D", array=[6564.61])], name="SPZLINE"))
    fits.HDUList(hdus).writeto(path)
    return path, wave, flux, ivar


def test_sdss_reader(tmp_path):
    path, wave, flux, ivar = make_sdss(tmp_path / "spec-0266-51602-0003.fits")
    assert detect_format(path) == "sdss"
    s = read_spectrum(path)
    assert s.meta["format"] == "sdss"
    assert np.allclose(s.wavelength.to_value(u.AA), wave, rtol=1e-12)
    assert s.flux.unit == FLUX_UNIT
    assert np.array_equal(s.flux.value, flux.astype(float))
    assert np.allclose(s.error.value[s.good], 0.5)
    assert s.mask[100] and s.mask[200:203].all() and not s.mask[300]  # or_mask ignored
    assert s.mask.sum() == 4
    assert s.redshift == pytest.approx(0.02345, rel=1e-6)
    assert s.redshift_err == pytest.approx(1.2e-5, rel=1e-5)
    assert s.medium == "vacuum"
    assert s.name == "spec-0266-51602-0003"
    assert s.meta["ra"] == pytest.approx(146.71421) and s.meta["dec"] == pytest.approx(-1.0413)
    assert s.meta["class"] == "GALAXY" and s.meta["setup"] == "sdss"
    assert s.meta["exptime"] == 2701.0
    # wdisp 1.1 pix of 1e-4 dex -> sigma 75.9 km/s -> R = c / (2.355 sigma) ~ 1677
    assert s.meta["resolution"] == pytest.approx(1677, rel=0.01)
    # the redshifted Halpha is where the redshift says
    i = np.argmax(s.flux.value)
    assert s.wavelength.value[i] == pytest.approx(6564.61 * 1.02345, abs=2.0)


def test_eboss_spall_and_override(tmp_path):
    path, *_ = make_sdss(tmp_path / "spec-9000-58000-0100.fits", hdu2="SPALL", z=0.1)
    s = read_spectrum(path, format="boss")
    assert s.redshift == pytest.approx(0.1)
    assert read_spectrum(path, medium="air").medium == "air"


def test_sdss_without_specobj_has_no_redshift(tmp_path):
    path, *_ = make_sdss(tmp_path / "spec-0266-51602-0003.fits", with_specobj=False)
    s = read_spectrum(path)
    assert s.redshift is None
    assert s.name == "spec-0266-51602-0003"


def test_sdss_zwarning_kept(tmp_path):
    path, *_ = make_sdss(tmp_path / "spec-0266-51602-0003.fits", zwarning=4)
    assert read_spectrum(path).meta["zwarning"] == 4


def test_sdss_missing_column(tmp_path, capsys):
    path, *_ = make_sdss(tmp_path / "spec-0266-51602-0003.fits", drop_col="ivar")
    # without ivar the file is still recognised as SDSS and the missing column named
    with pytest.raises(InputError, match=r"COADD table lacks the 'ivar' column") as ei:
        read_spectrum(path)
    assert str(ei.value).startswith(str(path))
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "lacks the 'ivar' column" in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1


def test_sdss_format_on_other_fits(tmp_path, capsys):
    p = tmp_path / "img.fits"
    h = fits.PrimaryHDU(np.ones(10))
    h.header["CRVAL1"], h.header["CDELT1"] = 5000.0, 1.0
    h.writeto(p)
    with pytest.raises(InputError, match="lacks the COADD extension"):
        read_spectrum(p, format="sdss")
    assert main(["inspect", str(p), "--format", "sdss"]) == 2
    assert "COADD" in capsys.readouterr().err


def test_sdss_truncated(tmp_path):
    path, *_ = make_sdss(tmp_path / "spec-0266-51602-0003.fits")
    raw = path.read_bytes()
    path.write_bytes(raw[:20000])
    with pytest.raises(InputError, match="truncated|corrupt"):
        read_spectrum(path)


def test_sdss_cli(tmp_path, capsys):
    path, *_ = make_sdss(tmp_path / "spec-0266-51602-0003.fits")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "spec-0266-51602-0003" in out and "0.02345" in out and "sdss" in out


def test_sdss_v_layout(tmp_path):
    """SDSS-V (DR19) spec-FIELD-MJD-CATALOGID: upper-case COADD columns, SPALL with RACAT."""
    wave = 10 ** LOGLAM.astype(float)
    flux = np.ones(NPIX, np.float32)
    coadd = fits.BinTableHDU.from_columns([
        fits.Column(name="FLUX", format="E", array=flux),
        fits.Column(name="LOGLAM", format="E", array=LOGLAM),
        fits.Column(name="IVAR", format="E", array=np.full(NPIX, 100.0, np.float32)),
        fits.Column(name="AND_MASK", format="J", array=np.zeros(NPIX, np.int32)),
        fits.Column(name="WDISP", format="E", array=np.full(NPIX, 1.0, np.float32))],
        name="COADD")
    spall = fits.BinTableHDU.from_columns([
        fits.Column(name="FIELD", format="J", array=[101234]),
        fits.Column(name="MJD", format="J", array=[60123]),
        fits.Column(name="CATALOGID", format="K", array=[27021597850000000]),
        fits.Column(name="Z", format="D", array=[0.0321]),
        fits.Column(name="Z_ERR", format="D", array=[3e-5]),
        fits.Column(name="RACAT", format="D", array=[200.5]),
        fits.Column(name="DECCAT", format="D", array=[-5.25])], name="SPALL")
    p = tmp_path / "spec-101234-60123-27021597850000000.fits"
    fits.HDUList([fits.PrimaryHDU(), coadd, spall]).writeto(p)
    s = read_spectrum(p)
    assert s.meta["format"] == "sdss"
    assert np.allclose(s.wavelength.value, wave)
    assert s.redshift == pytest.approx(0.0321)
    assert s.meta["ra"] == 200.5 and s.meta["dec"] == -5.25
    assert s.meta["catalogid"] == 27021597850000000
    assert s.name == "spec-101234-60123-27021597850000000"
    assert np.allclose(s.error.value, 0.1)
