"""Wavelength-unit sanity in the spectrum readers (issue 14).

Wavelengths in nm labelled (or defaulted to) Angstrom, micron values, and
Angstrom values labelled nm give a message about units naming the file,
not a "check the redshift" from the line fits later.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from xmpspec import InputError
from xmpspec.cli import main
from xmpspec.io import read_spectrum

N = 2700
WAVE_AA = np.linspace(3800.0, 9200.0, N)
RNG = np.random.default_rng(5)


def _table(wave, unit):
    t = Table()
    t["wave"] = wave
    if unit is not None:
        t["wave"].unit = unit
    t["flux"] = 1.0 + 0.05 * RNG.standard_normal(N)
    t["err"] = np.full(N, 0.05)
    return t


@pytest.mark.parametrize("values, unit, guess", [
    (WAVE_AA / 10, "Angstrom", "nm"),            # nm labelled Angstrom
    (WAVE_AA / 10, None, "nm"),                  # nm with no unit (Angstrom by default)
    (WAVE_AA / 1e4, "Angstrom", "micron"),       # micron labelled Angstrom
    (WAVE_AA, "nm", "Angstrom read as nm"),      # Angstrom labelled nm
])
@pytest.mark.parametrize("suffix", [".ecsv", ".fits"])
def test_unit_mismatch_is_reported_as_units(tmp_path, values, unit, guess, suffix):
    p = tmp_path / f"spec{suffix}"
    _table(values, unit).write(p)
    with pytest.raises(InputError) as err:
        read_spectrum(p)
    msg = str(err.value)
    assert msg.startswith(str(p)) and "wavelength unit looks wrong" in msg
    assert f"look like {guess}" in msg and "pixel spacing" in msg
    assert "redshift" not in msg


def test_fits_image_wcs_in_nm_without_cunit(tmp_path):
    hdu = fits.PrimaryHDU(1.0 + 0.05 * RNG.standard_normal(N))
    hdu.header.update(CRVAL1=380.0, CDELT1=0.2, CRPIX1=1.0)
    err = fits.ImageHDU(np.full(N, 0.05), name="ERROR")
    p = tmp_path / "img.fits"
    fits.HDUList([hdu, err]).writeto(p)
    with pytest.raises(InputError, match=r"img.fits: wavelength unit looks wrong.*look like nm"):
        read_spectrum(p)
    hdu.header["CUNIT1"] = "nm"               # declared: read fine, in Angstrom
    fits.HDUList([hdu, err]).writeto(p, overwrite=True)
    spec = read_spectrum(p)
    assert spec.wavelength.unit == u.AA and spec.wavelength.value[0] == pytest.approx(3800.0)


@pytest.mark.parametrize("wave", [WAVE_AA, np.linspace(1150.0, 1800.0, N),
                                  np.linspace(9000.0, 24000.0, N)])
def test_plausible_ranges_are_accepted(tmp_path, wave):
    """Optical, ultraviolet (space) and near-IR spectra in Angstrom are read as they are."""
    p = tmp_path / "ok.ecsv"
    _table(wave, "Angstrom").write(p)
    assert read_spectrum(p).wavelength.value[0] == pytest.approx(wave[0])


def test_measure_cli_says_units_not_redshift(tmp_path, capsys):
    p = tmp_path / "nm.ecsv"
    _table(WAVE_AA / 10, "Angstrom").write(p)
    rc = main(["measure", str(p), "--z", "0.02", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "wavelength unit looks wrong" in err and "nm.ecsv" in err
    assert "check the redshift" not in err
