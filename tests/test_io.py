"""Generic spectrum readers (ECSV/CSV/ASCII, FITS tables, 1D FITS WCS images), the
xmpspec writer, format detection, and every bad-input case through the API and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from xmpspec import FLUX_UNIT, InputError, Spectrum
from xmpspec.cli import main
from xmpspec.io import detect_format, list_formats, read_spectrum, write_spectrum
from xmpspec.io.fitsimage import wcs_wavelength

N = 120
WAVE = np.linspace(6400.0, 6700.0, N)
RNG = np.random.default_rng(42)
FLUX = 2.0 + RNG.normal(0.0, 0.1, N)
ERR = np.full(N, 0.1) + RNG.uniform(0, 0.01, N)


def _assert_basic(spec, wave=WAVE, flux=FLUX, err=ERR, unit=FLUX_UNIT):
    assert spec.wavelength.unit == u.AA
    assert np.allclose(spec.wavelength.value, wave, rtol=1e-12)
    assert spec.flux.unit == unit
    assert np.allclose(spec.flux.value, flux, rtol=1e-12)
    assert np.allclose(spec.error.value, err, rtol=1e-9)


# ------------------------------------------------------------------ text tables
def test_ecsv_named_columns_with_units(tmp_path):
    t = Table()
    t["wavelength"] = WAVE / 10.0 * u.nm
    t["flux"] = FLUX * 1e-17 * u.erg / u.s / u.cm**2 / u.AA
    t["err"] = ERR * 1e-17 * u.erg / u.s / u.cm**2 / u.AA
    t.meta["object"] = "J0845+1234"
    t.meta["medium"] = "air"
    p = tmp_path / "s.ecsv"
    t.write(p)
    assert detect_format(p) == "ecsv"
    s = read_spectrum(p)
    assert np.allclose(s.wavelength.to_value(u.AA), WAVE)
    assert s.flux.unit == u.erg / u.s / u.cm**2 / u.AA
    assert np.allclose(s.flux.to_value(FLUX_UNIT), FLUX)
    assert np.allclose(s.error.to_value(FLUX_UNIT), ERR)
    assert s.medium == "air" and s.name == "J0845+1234"
    assert s.meta["source_file"] == str(p) and s.meta["format"] == "ecsv"
    # the caller's medium wins
    assert read_spectrum(p, medium="vacuum").medium == "vacuum"


def test_csv_named_ivar_and_mask(tmp_path):
    ivar = 1.0 / ERR**2
    ivar[4] = 0.0  # no data
    mask = np.zeros(N, int)
    mask[9] = 1
    p = tmp_path / "s.csv"
    lines = ["Lambda,FLUX,IVAR,Mask"] + [f"{float(a)!r},{float(b)!r},{float(c)!r},{d}" for a, b, c, d in
                                         zip(WAVE, FLUX, ivar, mask, strict=True)]
    p.write_text("\n".join(lines) + "\n")
    assert detect_format(p) == "csv"
    s = read_spectrum(p)
    err = ERR.copy()
    err[4] = np.nan
    good = np.isfinite(err)
    assert np.allclose(s.error.value[good], ERR[good])
    assert s.mask[4] and s.mask[9] and s.mask.sum() == 2
    assert s.flux.unit == FLUX_UNIT and s.medium == "vacuum"


def test_ascii_positional_with_mask_and_descending_order(tmp_path):
    p = tmp_path / "s.txt"
    mask = np.zeros(N)
    mask[[3, 50]] = 1
    arr = np.c_[WAVE, FLUX, ERR, mask][::-1]  # stored red to blue
    np.savetxt(p, arr)
    assert detect_format(p) == "ascii"
    s = read_spectrum(p)
    _assert_basic(s)
    assert s.mask[3] and s.mask[50] and s.mask.sum() == 2


def test_undeclared_flux_unit(tmp_path):
    p = tmp_path / "cgs.txt"
    np.savetxt(p, np.c_[WAVE, FLUX * 1e-17, ERR * 1e-17])
    s = read_spectrum(p)  # values ~1e-17 can only be erg/s/cm2/A
    assert s.flux.unit == u.erg / u.s / u.cm**2 / u.AA
    assert np.allclose(s.flux.to_value(FLUX_UNIT), FLUX)
    p2 = tmp_path / "scaled.txt"
    np.savetxt(p2, np.c_[WAVE, FLUX, ERR])
    assert read_spectrum(p2).flux.unit == FLUX_UNIT


def test_ascii_commented_header_and_air_column(tmp_path):
    p = tmp_path / "s.dat"
    with open(p, "w") as fh:
        fh.write("# awav flux sigma\n")
        for a, b, c in zip(WAVE, FLUX, ERR, strict=True):
            fh.write(f"{float(a)!r} {float(b)!r} {float(c)!r}\n")
    s = read_spectrum(p)
    _assert_basic(s)
    assert s.medium == "air"
    assert s.vacuum_wavelength()[0].value > WAVE[0]


def test_loglam_column(tmp_path):
    t = Table({"loglam": np.log10(WAVE), "flux": FLUX, "ivar": 1 / ERR**2})
    p = tmp_path / "s.ecsv"
    t.write(p)
    _assert_basic(read_spectrum(p))


def test_detection_by_content_not_suffix(tmp_path):
    p = write_spectrum(_spectrum(), tmp_path / "a.ecsv")
    renamed = tmp_path / "spectrum.txt"
    renamed.write_text(p.read_text())
    assert detect_format(renamed) == "ecsv"
    _assert_same(_spectrum(), read_spectrum(renamed))
    f = write_spectrum(_spectrum(), tmp_path / "a.fits")
    renamed = tmp_path / "spectrum.bin"
    renamed.write_bytes(f.read_bytes())
    assert detect_format(renamed) == "fits-table"
    _assert_same(_spectrum(), read_spectrum(renamed))


def test_text_format_override(tmp_path):
    p = tmp_path / "s.data"
    np.savetxt(p, np.c_[WAVE, FLUX, ERR], delimiter=",", header="wave,flux,error",
               comments="")
    _assert_basic(read_spectrum(p, format="csv"))
    _assert_basic(read_spectrum(p))  # detected as csv from the commas


# ------------------------------------------------------------------ FITS tables
def test_fits_binary_table(tmp_path):
    cols = [fits.Column(name="WAVE", format="D", array=WAVE, unit="Angstrom"),
            fits.Column(name="FLUX", format="D", array=FLUX),
            fits.Column(name="ERROR", format="D", array=ERR)]
    hdu = fits.BinTableHDU.from_columns(cols)
    hdr = fits.Header()
    hdr["OBJECT"] = "J1"
    hdr["BUNIT"] = "1e-17 erg/s/cm2/Angstrom"
    hdr["AIRORVAC"] = "air"
    p = tmp_path / "tab.fits"
    fits.HDUList([fits.PrimaryHDU(header=hdr), hdu]).writeto(p)
    assert detect_format(p) == "fits-table"
    s = read_spectrum(p)
    _assert_basic(s)
    assert s.medium == "air" and s.name == "J1"


def test_fits_single_row_array_columns(tmp_path):
    t = Table()
    t["wavelength"] = WAVE[None, :]
    t["flux"] = FLUX[None, :]
    t["ivar"] = (1 / ERR**2)[None, :]
    p = tmp_path / "row.fits"
    t.write(p)
    s = read_spectrum(p)
    _assert_basic(s)


# ------------------------------------------------------------------ FITS images
def _image(tmp_path, header: dict, err_name=None, name="img.fits", extra=()):
    h = fits.PrimaryHDU(FLUX)
    for k, v in header.items():
        h.header[k] = v
    e = fits.ImageHDU(ERR if err_name != "IVAR" else 1 / ERR**2, name=err_name)
    p = tmp_path / name
    fits.HDUList([h, *extra, e]).writeto(p)
    return p


@pytest.mark.parametrize("header, expect", [
    ({"CRVAL1": 6400.0, "CDELT1": 300.0 / (N - 1)}, WAVE),
    ({"CRVAL1": 6400.0 + 10 * 300.0 / (N - 1), "CD1_1": 300.0 / (N - 1), "CRPIX1": 11.0},
     WAVE),
    ({"CRVAL1": 640.0, "CDELT1": 30.0 / (N - 1), "CUNIT1": "nm"}, WAVE),
    ({"CRVAL1": np.log10(6400.0), "CDELT1": 1e-4, "DC-FLAG": 1},
     10 ** (np.log10(6400.0) + 1e-4 * np.arange(N))),
    ({"CTYPE1": "WAVE-LOG", "CRVAL1": 6400.0, "CDELT1": 0.5, "CRPIX1": 1.0},
     6400.0 * np.exp(0.5 * np.arange(N) / 6400.0)),
    ({"COEFF0": np.log10(6400.0), "COEFF1": 1e-4},
     10 ** (np.log10(6400.0) + 1e-4 * np.arange(N))),
])
def test_fits_image_wcs(tmp_path, header, expect):
    p = _image(tmp_path, header)
    assert detect_format(p) == "fits-image"
    s = read_spectrum(p)
    assert np.allclose(s.wavelength.to_value(u.AA), expect, rtol=1e-10)
    assert np.allclose(s.flux.value, FLUX) and np.allclose(s.error.value, ERR)
    assert s.medium == "vacuum"


def test_fits_image_named_ivar_extension_air_and_bunit(tmp_path):
    junk = fits.ImageHDU(np.zeros(N), name="SKY")
    p = _image(tmp_path, {"CRVAL1": 6400.0, "CDELT1": 300.0 / (N - 1), "CTYPE1": "AWAV",
                          "BUNIT": "1E-17 erg/cm^2/s/Ang", "OBJECT": "J0845"},
               err_name="IVAR", extra=(junk,))
    s = read_spectrum(p)
    assert s.medium == "air"
    assert s.flux.unit == FLUX_UNIT
    assert np.allclose(s.error.value, ERR)
    assert s.meta["error_from"] == "extension IVAR"
    assert s.name == "J0845"


def test_iraf_multispec_band_stacked(tmp_path):
    data = np.zeros((4, 1, N))
    data[0, 0] = FLUX
    data[1, 0] = FLUX * 1.1
    data[2, 0] = 0.3
    data[3, 0] = ERR
    h = fits.PrimaryHDU(data)
    h.header["CTYPE1"] = "MULTISPE"
    h.header["CRVAL1"] = 1.0
    h.header["CDELT1"] = 1.0
    h.header["WAT0_001"] = "system=multispec"
    h.header["WAT1_001"] = "wtype=multispec label=Wavelength units=angstroms"
    step = 300.0 / (N - 1)
    h.header["WAT2_001"] = f'wtype=multispec spec1 = "1 1 0 6400. {step!r} {N} 0. 50.0 60.0"'
    for i, band in enumerate(["spectrum - background fit, weights variance, clean no",
                              "raw - background fit, weights none, clean no",
                              "background - background fit", "sigma - background fit"]):
        h.header[f"BANDID{i + 1}"] = band
    h.header["OBJECT"] = "J0845"
    p = tmp_path / "iraf_ms.fits"
    h.writeto(p)
    s = read_spectrum(p)
    _assert_basic(s)
    assert s.meta["error_from"] == "BANDID sigma band"
    # a non-linear IRAF dispersion is refused, not silently misread
    h.header["WAT2_001"] = 'wtype=multispec spec1 = "1 1 2 6400. 2.5 120 0. 50.0 60.0 1. 0."'
    h.writeto(p, overwrite=True)
    with pytest.raises(InputError, match="dispersion type 2 .non-linear. is not supported"):
        read_spectrum(p)


def test_iraf_linear_units_from_wat(tmp_path):
    p = _image(tmp_path, {"CTYPE1": "LINEAR", "CRVAL1": 640.0, "CD1_1": 30.0 / (N - 1),
                          "WAT1_001": "wtype=linear label=Wavelength units=nanometers"})
    _assert_basic(read_spectrum(p))


def test_fits_image_wavelength_extension(tmp_path):
    wave_hdu = fits.ImageHDU(WAVE / 10.0, name="WAVELENGTH")
    wave_hdu.header["BUNIT"] = "nm"
    p = tmp_path / "xspec.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(FLUX, name="FLUX"), wave_hdu,
                  fits.ImageHDU(ERR, name="ERROR")]).writeto(p)
    assert detect_format(p) == "fits-image"
    _assert_basic(read_spectrum(p))
    p2 = tmp_path / "awav.fits"
    fits.HDUList([fits.PrimaryHDU(FLUX), fits.ImageHDU(WAVE, name="AWAV"),
                  fits.ImageHDU(1 / ERR**2, name="IVAR")]).writeto(p2)
    s = read_spectrum(p2)
    _assert_basic(s)
    assert s.medium == "air"


def test_eso_like_table_with_loose_names(tmp_path):
    # ESO Phase-3 style: one row of array columns, units in TUNIT, names not exact
    cols = [fits.Column(name="WAVE_AIR", format=f"{N}D", array=(WAVE / 10)[None, :],
                        unit="nm"),
            fits.Column(name="FLUX_REDUCED", format=f"{N}D",
                        array=(FLUX * 1e-17)[None, :], unit="erg cm**(-2) s**(-1) angstrom**(-1)"),
            fits.Column(name="ERR_REDUCED", format=f"{N}D", array=(ERR * 1e-17)[None, :],
                        unit="erg cm**(-2) s**(-1) angstrom**(-1)")]
    p = tmp_path / "eso.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(p)
    s = read_spectrum(p)
    assert s.medium == "air"
    assert np.allclose(s.wavelength.to_value(u.AA), WAVE)
    assert np.allclose(s.flux.to_value(FLUX_UNIT), FLUX)
    assert np.allclose(s.error.to_value(FLUX_UNIT), ERR)


def test_pypeit_non_spectrum_file_is_refused(tmp_path):
    p = tmp_path / "spec2d.fits"
    h = fits.ImageHDU(np.zeros((5, 5)), name="DET01-SCIIMG")
    h.header["DMODCLS"] = "Spec2DObj"
    fits.HDUList([fits.PrimaryHDU(), h]).writeto(p)
    with pytest.raises(InputError, match="PypeIt Spec2DObj file .2D spectra."):
        read_spectrum(p)


def test_wcs_wavelength_missing_keys():
    with pytest.raises(InputError, match="CRVAL1"):
        wcs_wavelength(fits.Header(), 10, "f.fits")
    h = fits.Header()
    h["CRVAL1"] = 5000.0
    with pytest.raises(InputError, match="CDELT1 or CD1_1"):
        wcs_wavelength(h, 10, "f.fits")


# ------------------------------------------------------------------ round trips
def _spectrum(unit=FLUX_UNIT, **kw):
    mask = np.zeros(N, bool)
    mask[[0, 17, 18]] = True
    err = ERR.copy()
    err[17] = np.nan  # a masked pixel with no error survives the trip
    args = dict(wavelength=WAVE * u.AA, flux=FLUX * unit, error=err * unit, mask=mask,
                redshift=0.012345678901234, redshift_err=1.5e-5, medium="air",
                meta={"name": "J0845+1234", "ra": 131.2125, "dec": 12.5703,
                      "instrument": "SOAR/Goodman", "exptime": 2400.0, "extraction": "BOX",
                      "fluxed": True, "orders": [7, 8], "nested": {"a": 1, "b": [1.5, None]},
                      "note": "x" * 300})
    args.update(kw)
    return Spectrum(**args)


def _assert_same(a: Spectrum, b: Spectrum):
    assert np.array_equal(a.wavelength.value, b.wavelength.value)
    assert a.wavelength.unit == b.wavelength.unit
    assert np.array_equal(a.flux.value, b.flux.value, equal_nan=True)
    assert np.array_equal(a.error.value, b.error.value, equal_nan=True)
    assert a.flux.unit == b.flux.unit and a.error.unit == b.error.unit
    assert np.array_equal(a.mask, b.mask)
    assert a.redshift == b.redshift and a.redshift_err == b.redshift_err
    assert a.medium == b.medium
    skip = {"source_file", "format", "origin_file", "origin_format"}
    assert {k: v for k, v in a.meta.items() if k not in skip} == \
        {k: v for k, v in b.meta.items() if k not in skip}


@pytest.mark.parametrize("suffix", [".ecsv", ".fits", ".fits.gz"])
@pytest.mark.parametrize("unit", [FLUX_UNIT, u.count, u.erg / u.s / u.cm**2 / u.Hz])
def test_round_trip_exact(tmp_path, suffix, unit):
    s = _spectrum(unit=unit)
    p = tmp_path / f"rt{suffix}"
    assert write_spectrum(s, p) == p
    back = read_spectrum(p)
    _assert_same(s, back)
    assert back.meta["source_file"] == str(p)
    # second generation: identical again, and the first file is remembered
    p2 = tmp_path / f"rt2{suffix}"
    write_spectrum(back, p2)
    back2 = read_spectrum(p2)
    _assert_same(s, back2)
    assert back2.meta["origin_file"] == str(p)


@pytest.mark.parametrize("kw", [{}, {"redshift": None, "redshift_err": None, "medium": "vacuum",
                                    "meta": {"name": "Léo-P 天体"}}])
def test_fast_native_fits_reader_equals_general_reader(tmp_path, kw):
    """xmpspec's own FITS spectra: the fast reader gives what astropy's Table path gives."""
    from xmpspec.io.table import _from_native, read_fits_table_spectrum, read_native_fits

    s = _spectrum(**kw)
    p = write_spectrum(s, tmp_path / "n.fits")
    fast = read_native_fits(p)
    assert fast is not None
    general = _from_native(Table.read(p, hdu=1), p, None, "fits-table")
    for other in (general, read_fits_table_spectrum(p), read_spectrum(p)):
        _assert_same(fast, other)
        assert fast.meta == other.meta
        assert fast.flux.dtype == other.flux.dtype and fast.mask.dtype == other.mask.dtype
    assert read_native_fits(p, medium="vacuum").medium == "vacuum"
    # anything else is left to the general readers, with their checks
    raw = p.read_bytes()
    (tmp_path / "cut.fits").write_bytes(raw[:-2880])
    (tmp_path / "tail.fits").write_bytes(raw + b"x" * 100)
    for name in ("cut.fits", "tail.fits"):
        assert read_native_fits(tmp_path / name) is None
    with pytest.raises(InputError, match="cut.fits: .*truncated"):
        read_spectrum(tmp_path / "cut.fits")
    _assert_same(s, read_spectrum(tmp_path / "tail.fits"))
    with fits.open(p) as hdul:
        hdul[1].header["TSCAL2"] = 1.0
        hdul.writeto(tmp_path / "scaled.fits")
    assert read_native_fits(tmp_path / "scaled.fits") is None
    assert read_native_fits(write_spectrum(s, tmp_path / "n.fits.gz")) is None


def test_round_trip_without_redshift_and_vacuum(tmp_path):
    s = _spectrum(redshift=None, redshift_err=None, medium="vacuum", meta={})
    for suffix in (".ecsv", ".fits"):
        back = read_spectrum(write_spectrum(s, tmp_path / f"a{suffix}"))
        _assert_same(s, back)
        assert back.redshift is None and back.medium == "vacuum"


def test_writer_errors_and_provenance(tmp_path):
    from xmpspec.tableio import read_provenance
    s = _spectrum()
    with pytest.raises(InputError, match="written as .ecsv or .fits"):
        write_spectrum(s, tmp_path / "x.txt")
    p = write_spectrum(s, tmp_path / "x.fits")
    with pytest.raises(InputError, match="exists"):
        write_spectrum(s, p, overwrite=False)
    prov = read_provenance(p)
    assert prov["step"] == "write_spectrum"
    assert "astropy" in prov["versions"]
    assert read_provenance(write_spectrum(s, tmp_path / "x.ecsv"))["step"] == "write_spectrum"


def test_list_formats_and_aliases(tmp_path):
    fm = list_formats()
    for key in ("pypeit-spec1d", "pypeit-coadd1d", "sdss", "fits-image", "fits-table",
                "ecsv", "csv", "ascii"):
        assert key in fm and fm[key]
    p = write_spectrum(_spectrum(), tmp_path / "a.fits")
    assert read_spectrum(p, format="fits").meta["format"] == "fits-table"
    assert read_spectrum(p, format="table").meta["format"] == "fits-table"


# ------------------------------------------------------------------ bad input
def _bad_files(tmp_path):
    """name -> (path, format or None, expected message fragment)."""
    out = {}
    good = write_spectrum(_spectrum(), tmp_path / "good.fits")
    raw = good.read_bytes()

    p = tmp_path / "corrupt.fits"
    p.write_bytes(b"SIMPLE  =                    T" + b"\x07garbage" * 500)
    out["corrupt"] = (p, None, "corrupt")

    p = tmp_path / "truncated.fits"
    p.write_bytes(raw[: len(raw) // 2 + 100])
    out["truncated"] = (p, None, "truncated")

    with fits.open(good) as hdul:  # cut inside the header of the last extension
        last = hdul.fileinfo(len(hdul) - 1)["hdrLoc"]
    p = tmp_path / "truncated_header.fits"
    p.write_bytes(raw[: last + 100])
    out["truncated in a header"] = (p, None, "truncated or corrupt FITS file")

    p = tmp_path / "empty.fits"
    p.write_bytes(b"")
    out["empty"] = (p, None, "file is empty")

    out["missing file"] = (tmp_path / "nope.fits", None, "file not found")

    p = tmp_path / "noerr.fits"
    h = fits.PrimaryHDU(FLUX)
    h.header["CRVAL1"], h.header["CDELT1"] = 6400.0, 2.5
    h.writeto(p)
    out["missing error extension"] = (p, None, "missing error extension")

    p = tmp_path / "nowcs.fits"
    fits.HDUList([fits.PrimaryHDU(FLUX), fits.ImageHDU(ERR, name="ERROR")]).writeto(p)
    out["missing header key"] = (p, "fits-image", "missing header key CRVAL1")

    p = tmp_path / "errlen.fits"
    h = fits.PrimaryHDU(FLUX)
    h.header["CRVAL1"], h.header["CDELT1"] = 6400.0, 2.5
    fits.HDUList([h, fits.ImageHDU(ERR[:-5], name="SIGMA")]).writeto(p)
    out["wrong error length"] = (p, None, "has 115 pixels, flux has 120")

    p = tmp_path / "nocol.ecsv"
    Table({"wave": WAVE, "flux": FLUX}).write(p)
    out["missing column"] = (p, None, "missing column(s): error")

    p = tmp_path / "noflux.csv"
    Table({"wave": WAVE, "sigma": ERR}).write(p, format="ascii.csv")
    out["missing flux column"] = (p, None, "flux (flux/flam)")

    p = tmp_path / "nonmono.txt"
    w = WAVE.copy()
    w[60], w[61] = w[61], w[60]
    np.savetxt(p, np.c_[w, FLUX, ERR])
    out["non-monotonic"] = (p, None, "not strictly increasing")

    p = tmp_path / "negerr.txt"
    e = ERR.copy()
    e[5] = -0.1
    e[6] = 0.0
    np.savetxt(p, np.c_[WAVE, FLUX, e])
    out["negative errors"] = (p, None, "2 unmasked pixel(s) have zero or negative errors")

    p = tmp_path / "nan.txt"
    np.savetxt(p, np.c_[WAVE, np.full(N, np.nan), ERR])
    out["all NaN"] = (p, None, "all pixels are masked")

    p = tmp_path / "nanerr.txt"
    np.savetxt(p, np.c_[WAVE, FLUX, np.full(N, np.nan)])
    out["NaN errors"] = (p, None, "error array has no finite values")

    p = tmp_path / "allmasked.ecsv"
    Table({"wave": WAVE, "flux": FLUX, "error": ERR, "mask": np.ones(N, bool)}).write(p)
    out["all masked"] = (p, None, "all pixels are masked")

    p = tmp_path / "junk.bin"
    p.write_bytes(bytes(range(256)) * 4)
    out["unknown format"] = (p, None, "unknown format")

    p = tmp_path / "words.txt"
    p.write_text("hello world\nthis is not a spectrum\n")
    out["text not a spectrum"] = (p, None, "cannot parse as ASCII table of columns")

    p = tmp_path / "wordcols.txt"
    p.write_text("alpha beta gamma\ndelta epsilon zeta\n")
    out["text columns not numeric"] = (p, None, "cannot identify spectrum columns")

    out["unknown format name"] = (good, "foo", "unknown format 'foo'")
    p = tmp_path / "plain.ecsv"
    Table({"wave": WAVE, "flux": FLUX, "error": ERR}).write(p)
    out["FITS format on text"] = (p, "spec1d", "expects a FITS file")

    p = tmp_path / "notfits.fits"
    p.write_text("wave flux error\n1 2 3\n")
    out["named FITS but text"] = (p, None, "does not start with a FITS header")

    p = tmp_path / "noimage.fits"
    fits.PrimaryHDU().writeto(p)
    out["FITS without data"] = (p, None, "holds no spectrum")
    return out


BAD_CASES = ["corrupt", "truncated", "truncated in a header", "empty", "missing file", "missing error extension",
             "missing header key", "wrong error length", "missing column",
             "missing flux column", "non-monotonic", "negative errors", "all NaN", "NaN errors",
             "all masked", "unknown format", "text not a spectrum", "text columns not numeric",
             "unknown format name",
             "FITS format on text", "named FITS but text", "FITS without data"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return _bad_files(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_api(bad_files, case):
    path, fmt, fragment = bad_files[case]
    with pytest.raises(InputError) as ei:
        read_spectrum(path, format=fmt)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: "), msg
    assert fragment in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_cli(bad_files, case, capsys):
    path, fmt, fragment = bad_files[case]
    args = ["inspect", str(path)] + (["--format", fmt] if fmt else [])
    code = main(args)
    out = capsys.readouterr()
    assert code == 2
    lines = [ln for ln in out.err.splitlines() if ln.strip()]
    assert len(lines) == 1, out.err
    assert lines[0].startswith(f"xmpspec: error: {path}: ")
    assert fragment in lines[0]
    assert "Traceback" not in out.err + out.out


def test_trailing_bytes_after_last_hdu_are_tolerated(tmp_path):
    p = write_spectrum(_spectrum(), tmp_path / "a.fits")
    padded = tmp_path / "padded.fits"
    padded.write_bytes(p.read_bytes() + b"junk after the end" * 20)
    _assert_same(_spectrum(), read_spectrum(padded))


def test_negative_errors_can_be_masked(bad_files):
    path, _, _ = bad_files["negative errors"]
    s = read_spectrum(path, ignore_bad_errors=True)
    assert s.mask[5] and s.mask[6] and s.mask.sum() == 2


def test_nan_pixels_are_masked(tmp_path):
    f = FLUX.copy()
    f[[10, 11]] = np.nan
    e = ERR.copy()
    e[40] = np.nan
    p = tmp_path / "nanpix.txt"
    np.savetxt(p, np.c_[WAVE, f, e])
    s = read_spectrum(p)
    assert s.mask[10] and s.mask[11] and s.mask[40] and s.mask.sum() == 3


def test_cli_subprocess_exit_code_and_no_traceback(bad_files):
    path, _, fragment = bad_files["truncated"]
    exe = Path(sys.executable).with_name("xmpspec")
    cmd = [str(exe)] if exe.exists() else ["xmpspec"]
    r = subprocess.run(cmd + ["inspect", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and fragment in lines[0]


# ------------------------------------------------------------------ CLI output
def test_cli_inspect_output(tmp_path, capsys):
    p = write_spectrum(_spectrum(), tmp_path / "J0845.ecsv")
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    for text in ("J0845+1234", "SOAR/Goodman", "6400.0-6700.0 A (air)", "120", "2.5%",
                 "1e-17 erg", "0.01235", "131.21250", "2400 s"):
        assert text in out, (text, out)


def test_cli_inspect_several_files_one_bad(tmp_path, bad_files, capsys):
    good = write_spectrum(_spectrum(), tmp_path / "good.ecsv")
    bad = bad_files["corrupt"][0]
    code = main(["--quiet", "inspect", str(good), str(bad)])
    out = capsys.readouterr()
    assert code == 1
    assert "J0845+1234" in out.out
    assert str(bad) in out.err and "Traceback" not in out.err


def test_cli_list_formats(capsys):
    assert main(["inspect", "--list-formats"]) == 0
    out = capsys.readouterr().out
    assert "pypeit-spec1d" in out and "sdss" in out and "fits-image" in out


def test_cli_help_has_examples(capsys):
    main(["inspect", "--help"])
    assert "Examples:" in capsys.readouterr().out
