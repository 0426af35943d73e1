"""The Spectrum model: construction, checks, medium, coverage, specutils conversion."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest

from xmpspec import FLUX_UNIT, InputError, Spectrum
from xmpspec.spectrum import air_to_vacuum, vacuum_to_air


def make(n=200, **kw):
    w = np.linspace(6400.0, 6700.0, n)
    rng = np.random.default_rng(3)
    f = 1.0 + rng.normal(0, 0.05, n)
    e = np.full(n, 0.05)
    args = dict(wavelength=w * u.AA, flux=f * FLUX_UNIT, error=e * FLUX_UNIT)
    args.update(kw)
    return Spectrum(**args)


def test_flux_unit_is_a_scaled_unit():
    assert isinstance(FLUX_UNIT, u.UnitBase)
    assert FLUX_UNIT.scale == pytest.approx(1e-17)
    q = 3.0 * FLUX_UNIT
    assert q.value == 3.0
    assert q.to_value(u.erg / u.s / u.cm**2 / u.AA) == pytest.approx(3e-17)


def test_defaults_and_units():
    s = Spectrum(np.linspace(4000, 5000, 11), np.ones(11), np.full(11, 0.1))
    assert s.wavelength.unit == u.AA
    assert s.flux.unit == FLUX_UNIT and s.error.unit == FLUX_UNIT
    assert s.medium == "vacuum"
    assert not s.mask.any()
    # nm are converted to Angstrom, errors to the flux unit
    s2 = Spectrum(np.linspace(400, 500, 11) * u.nm, np.ones(11) * u.erg / u.s / u.cm**2 / u.AA,
                  np.full(11, 1e-18) * u.erg / u.s / u.cm**2 / u.AA)
    assert s2.wavelength[0].value == pytest.approx(4000.0)
    assert s2.error.unit == s2.flux.unit


def test_nan_pixels_are_masked_not_fatal():
    f = np.ones(20)
    f[3] = np.nan
    e = np.full(20, 0.1)
    e[7] = np.inf
    s = Spectrum(np.arange(20.0) + 5000, f, e)
    assert s.mask[3] and s.mask[7] and s.mask.sum() == 2


@pytest.mark.parametrize("wave, msg", [
    (np.array([1.0, 2.0, 2.0, 3.0]), "not strictly increasing"),
    (np.array([1.0, 3.0, 2.0, 4.0]), "not strictly increasing"),
    (np.array([1.0, np.nan, 3.0, 4.0]), "NaN"),
])
def test_bad_wavelengths(wave, msg):
    with pytest.raises(InputError, match=msg) as ei:
        Spectrum(wave * 1000, np.ones(4), np.ones(4), meta={"source_file": "x.fits"})
    assert str(ei.value).startswith("x.fits: ")


def test_shape_and_unit_errors():
    with pytest.raises(InputError, match="equal length"):
        Spectrum(np.arange(5.0) + 1, np.ones(4), np.ones(4))
    with pytest.raises(InputError, match="not a length"):
        Spectrum(np.arange(5.0) * u.s, np.ones(5), np.ones(5))
    with pytest.raises(InputError, match="differs from flux unit"):
        Spectrum(np.arange(5.0) + 1, np.ones(5) * FLUX_UNIT, np.ones(5) * u.s)
    with pytest.raises(InputError, match="medium"):
        Spectrum(np.arange(5.0) + 1, np.ones(5), np.ones(5), medium="water")


def test_validate_errors():
    e = np.full(200, 0.05)
    e[10] = 0.0
    e[11] = -1.0
    s = make(error=e * FLUX_UNIT, meta={"source_file": "spec.ecsv"})
    with pytest.raises(InputError, match=r"^spec.ecsv: 2 unmasked pixel\(s\) have zero or negative"):
        s.validate_errors()
    s.validate_errors(allow_nonpositive=True)
    assert s.mask[10] and s.mask[11] and s.mask.sum() == 2
    # masked bad errors are fine
    m = np.zeros(200, bool)
    m[[10, 11]] = True
    make(error=e * FLUX_UNIT, mask=m).validate_errors()
    with pytest.raises(InputError, match="all pixels are masked"):
        make(mask=np.ones(200, bool)).validate_errors()


def test_covers():
    m = np.zeros(200, bool)
    m[100:105] = True
    s = make(mask=m)
    w = s.wavelength.value
    assert s.covers(w[50] * u.AA)
    assert s.covers(w[50])
    assert not s.covers(w[102])           # masked
    assert not s.covers(w[1])             # too close to the edge
    assert not s.covers(7000.0)           # outside
    assert not s.covers(6000.0)


def test_air_vacuum():
    vac = np.array([4862.69, 5008.24, 6564.61]) * u.AA
    air = vacuum_to_air(vac)
    # Halpha: vacuum 6564.61 -> air 6562.80 (standard value)
    assert air[2].value == pytest.approx(6562.80, abs=0.02)
    assert np.allclose(air_to_vacuum(air).value, vac.value, atol=1e-4)
    s = make(wavelength=air_to_vacuum(np.linspace(6400, 6700, 200) * u.AA), medium="vacuum")
    assert s.vacuum_wavelength() is s.wavelength
    sa = make(medium="air")
    assert np.all(sa.vacuum_wavelength().value > sa.wavelength.value)
    sv = sa.to_vacuum()
    assert sv.medium == "vacuum" and sa.medium == "air"
    assert np.allclose(sv.wavelength.value, sa.vacuum_wavelength().value)


def test_name_and_copy():
    s = make(meta={"source_file": "/data/spec1d_abc.fits"})
    assert s.name == "spec1d_abc"
    s.meta["name"] = "J0845+1234"
    assert s.name == "J0845+1234"
    c = s.copy()
    c.flux[0] = 99 * FLUX_UNIT
    c.mask[0] = True
    c.meta["name"] = "other"
    assert s.flux[0].value != 99 and not s.mask[0] and s.name == "J0845+1234"


def test_with_flux_unit():
    s = make()
    s2 = s.with_flux_unit(u.erg / u.s / u.cm**2 / u.AA)
    assert np.allclose(s2.flux.value, s.flux.value * 1e-17)
    assert np.allclose(s2.error.value, s.error.value * 1e-17)


def test_specutils_round_trip():
    m = np.zeros(200, bool)
    m[5] = True
    s = make(mask=m, redshift=0.0123, redshift_err=2e-5, medium="air",
             meta={"name": "J1", "ra": 10.0, "dec": -2.0, "instrument": "SOAR/Goodman"})
    sp = s.to_specutils()
    assert u.allclose(sp.spectral_axis, s.wavelength)
    assert u.allclose(sp.flux, s.flux)
    assert np.array_equal(sp.uncertainty.array, s.error.value)
    assert np.array_equal(sp.mask, m)
    back = Spectrum.from_specutils(sp)
    assert np.array_equal(back.wavelength.value, s.wavelength.value)
    assert np.array_equal(back.flux.value, s.flux.value)
    assert np.array_equal(back.error.value, s.error.value)
    assert back.flux.unit == FLUX_UNIT
    assert np.array_equal(back.mask, m)
    assert back.redshift == pytest.approx(0.0123) and back.redshift_err == 2e-5
    assert back.medium == "air"
    assert back.meta["name"] == "J1" and back.meta["instrument"] == "SOAR/Goodman"


def test_from_specutils_foreign_spectrum():
    from astropy.nddata import InverseVariance, VarianceUncertainty
    try:  # specutils >= 2
        from specutils import Spectrum as Spectrum1D
    except ImportError:
        from specutils import Spectrum1D
    w = np.linspace(5000, 6000, 50) * u.AA
    f = np.ones(50) * u.Jy
    sp = Spectrum1D(spectral_axis=w, flux=f, uncertainty=InverseVariance(np.full(50, 4.0)))
    s = Spectrum.from_specutils(sp, name="foreign")
    assert np.allclose(s.error.value, 0.5) and s.flux.unit == u.Jy
    assert s.redshift is None and s.name == "foreign"
    sp2 = Spectrum1D(spectral_axis=w, flux=f, uncertainty=VarianceUncertainty(np.full(50, 9.0)))
    assert np.allclose(Spectrum.from_specutils(sp2).error.value, 3.0)
    with pytest.raises(InputError, match="no uncertainty"):
        Spectrum.from_specutils(Spectrum1D(spectral_axis=w, flux=f))


@pytest.mark.parametrize("unit,ok", [
    ("1e-17 erg/(s cm2 Angstrom)", True), ("Jy", True), ("erg/(s cm2 Hz)", True),
    ("W/(m2 um)", True), ("erg/(s cm2 Angstrom arcsec2)", True), ("MJy/sr", True),
    ("electron/s", True), ("adu", True), ("ct/(s pix)", True), ("", True),
    ("km/s", False), ("kg", False), ("Angstrom", False)])
def test_flux_units_accepted_and_refused(unit, ok):
    """Flux densities, counts, surface brightness (per solid angle) and per-pixel units are
    spectra; anything else is an input error naming the unit."""
    wave = np.linspace(6000.0, 7000.0, 50) * u.AA
    flux = np.ones(50) * u.Unit(unit)
    if ok:
        Spectrum(wave, flux, 0.1 * flux)
    else:
        with pytest.raises(InputError, match="flux unit"):
            Spectrum(wave, flux, 0.1 * flux)
