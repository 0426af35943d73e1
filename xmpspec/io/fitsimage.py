"""Generic 1D FITS image spectra with a linear or log-linear wavelength solution.

The flux is the first HDU holding a 1D array (a 2D/3D array with one
non-degenerate axis is squeezed; IRAF band-stacked ``multispec`` images are
split with their ``BANDIDn`` cards). The wavelength of pixel ``p`` (1-based)
comes from the header of that HDU:

* ``CRVAL1``, ``CDELT1`` or ``CD1_1``, ``CRPIX1`` (default 1):
  ``x = CRVAL1 + CDELT1 * (p - CRPIX1)``;
* ``DC-FLAG = 1`` (IRAF) : ``lambda = 10**x`` (log10-linear);
* ``CTYPE1 = 'WAVE-LOG'`` / ``'AWAV-LOG'`` (FITS WCS paper III):
  ``lambda = CRVAL1 * exp(CDELT1 * (p - CRPIX1) / CRVAL1)``;
* old SDSS ``COEFF0``/``COEFF1``: ``lambda = 10**(COEFF0 + COEFF1 * (p - 1))``;
* IRAF ``CTYPE1 = 'MULTISPE'``: the first aperture's linear or log-linear
  dispersion in ``WAT2`` (``spec1 = "ap beam dtype w1 dw nw z ..."``); the
  unit from ``WAT1`` (``units=angstroms``).

``CUNIT1`` gives the wavelength unit (default Angstrom) and ``BUNIT`` the
flux unit (default :data:`xmpspec.FLUX_UNIT`). The error is taken from an
extension named like ``ERROR``/``ERR``/``SIGMA``/``NOISE``/``STDDEV``
(1-sigma), ``IVAR``/``INVVAR`` (inverse variance) or ``VAR``/``VARIANCE``;
if no extension is so named, a single other image extension of the same
length is taken as the 1-sigma error. A ``MASK``/``BADPIX``/``DQ`` extension
(non-zero = bad) is used when present. ``CTYPE1 = 'AWAV...'`` or
``AIRORVAC = 'air'`` declares air wavelengths. Instead of a WCS, the
wavelengths may be an image extension named ``WAVE``/``WAVELENGTH``/``LAMBDA``
(``AWAV``: air; ``LOGLAM``: log10 Angstrom; unit from its ``BUNIT``).
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import Spectrum, is_flux_density
from ._common import (
    assumed_flux_unit,
    error_from,
    float_or_none,
    header_value,
    log,
    medium_from_header,
    open_fits,
    orient,
    parse_unit,
    resolve_medium,
    to_wave_unit,
)

__all__ = ["read_fits_image_spectrum", "wcs_wavelength"]

_SIGMA_EXT = ("ERROR", "ERR", "ERRS", "SIGMA", "NOISE", "STDDEV", "STDEV", "UNCERT",
              "UNCERTAINTY", "FLUX_ERR", "ERROR_SPECTRUM", "SIG")
_IVAR_EXT = ("IVAR", "INVVAR", "INV_VAR", "WEIGHT", "INVERSE_VARIANCE")
_VAR_EXT = ("VAR", "VARIANCE")
_MASK_EXT = ("MASK", "BADPIX", "BPM", "DQ", "QUALITY", "FLAGS")
_WAVE_EXT = ("WAVE", "WAVELENGTH", "LAMBDA", "WAVELEN", "AWAV", "LOGLAM")
_SKIP_EXT = _SIGMA_EXT + _IVAR_EXT + _VAR_EXT + _MASK_EXT + _WAVE_EXT


def wcs_wavelength(header: fits.Header, npix: int, path: Path | None = None) -> u.Quantity:
    """Wavelengths of ``npix`` pixels from a 1D spectral WCS header.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Header with ``CRVAL1`` and ``CDELT1``/``CD1_1`` (``CRPIX1``,
        ``DC-FLAG``, ``CTYPE1``, ``CUNIT1`` optional) or ``COEFF0``/``COEFF1``.
    npix : int
        Number of pixels.
    path : Path, optional
        File name for error messages.

    Returns
    -------
    Quantity
        Wavelengths (unit from ``CUNIT1``, default Angstrom).

    Raises
    ------
    InputError
        Missing ``CRVAL1`` or step keys, or a non-positive result.
    """
    p = np.arange(1, npix + 1, dtype=float)
    if str(header.get("CTYPE1", "")).strip().upper().startswith("MULTISPE"):
        return _iraf_multispec_wavelength(header, npix, path)
    if "CRVAL1" not in header and "COEFF0" in header and "COEFF1" in header:
        c0, c1 = float_or_none(header["COEFF0"]), float_or_none(header["COEFF1"])
        if c0 is None or c1 is None:
            raise InputError("header keys COEFF0/COEFF1 are not numbers", path)
        return 10.0 ** (c0 + c1 * (p - 1.0)) * u.AA
    if "CRVAL1" not in header:
        raise InputError("missing header key CRVAL1 (no wavelength solution; expected "
                         "CRVAL1, CDELT1 or CD1_1, CRPIX1)", path)
    crval = float_or_none(header["CRVAL1"])
    step = float_or_none(header_value(header, "CDELT1", "CD1_1"))
    if crval is None:
        raise InputError(f"header key CRVAL1 is not a number ({header['CRVAL1']!r})", path)
    if step is None:
        raise InputError("missing header key CDELT1 or CD1_1 (wavelength step)", path)
    if step == 0:
        raise InputError("wavelength step CDELT1/CD1_1 is zero", path)
    crpix = float_or_none(header.get("CRPIX1", 1.0))
    if crpix is None:
        raise InputError(f"header key CRPIX1 is not a number ({header['CRPIX1']!r})", path)
    x = crval + step * (p - crpix)
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    dcflag = header.get("DC-FLAG", 0)
    try:
        dcflag = int(dcflag)
    except (TypeError, ValueError):
        raise InputError(f"header key DC-FLAG is not an integer ({dcflag!r})", path) from None
    unit = to_wave_unit(header.get("CUNIT1") or _iraf_units(header), path)
    if dcflag == 1:
        wave = 10.0 ** x
    elif ctype.endswith("-LOG"):
        wave = crval * np.exp(step * (p - crpix) / crval)
    else:
        wave = x
    if not np.all(np.isfinite(wave)) or np.any(wave <= 0):
        raise InputError("wavelength solution gives non-positive or non-finite wavelengths "
                         f"(CRVAL1={crval}, step={step}, CRPIX1={crpix}, DC-FLAG={dcflag})",
                         path)
    return wave * unit


def _iraf_wat(header: fits.Header, axis: int) -> str:
    """Concatenated IRAF ``WATn_mmm`` cards (each holds 68 characters, spaces included)."""
    keys = sorted(k for k in header if k.startswith(f"WAT{axis}_") and k[5:].isdigit())
    return "".join(str(header[k]).ljust(68) for k in keys)


def _iraf_units(header: fits.Header) -> str | None:
    """Wavelength unit from IRAF's ``WAT1_001 = 'wtype=linear label=Wavelength units=...'``."""
    wat = _iraf_wat(header, 1)
    for tok in wat.split():
        if tok.startswith("units="):
            unit = tok.split("=", 1)[1].strip()
            return unit or None
    return None


def _iraf_multispec_wavelength(header: fits.Header, npix: int, path: Path | None) -> u.Quantity:
    """Wavelengths of the first aperture of an IRAF ``MULTISPE`` header (linear/log only)."""
    import re

    wat = _iraf_wat(header, 2)
    m = re.search(r'spec1\s*=\s*"([^"]*)"', wat)
    if not m:
        raise InputError("IRAF multispec header without a readable WAT2 'spec1' dispersion",
                         path)
    fields = m.group(1).split()
    if len(fields) < 7:
        raise InputError(f"IRAF multispec 'spec1' has too few fields ({m.group(1)!r})", path)
    try:
        dtype, w1, dw, nw, z = (int(fields[2]), float(fields[3]), float(fields[4]),
                                int(float(fields[5])), float(fields[6]))
    except ValueError:
        raise InputError(f"IRAF multispec 'spec1' is not numeric ({m.group(1)!r})",
                         path) from None
    if dtype not in (0, 1):
        raise InputError(f"IRAF multispec dispersion type {dtype} (non-linear) is not "
                         "supported; resample to a linear grid or write a table", path)
    if nw != npix:
        log.warning("%s: IRAF multispec declares %d pixels, the data have %d", path, nw, npix)
    x = w1 + dw * np.arange(npix, dtype=float)
    wave = (10.0 ** x if dtype == 1 else x) / (1.0 + z)
    unit = to_wave_unit(_iraf_units(header), path)
    if not np.all(np.isfinite(wave)) or np.any(wave <= 0):
        raise InputError("IRAF multispec dispersion gives non-positive wavelengths", path)
    return wave * unit


def _squeeze(data, path: Path, what: str) -> np.ndarray:
    arr = np.asarray(data)
    arr = np.squeeze(arr)
    if arr.ndim != 1:
        raise InputError(f"{what} is not one-dimensional (shape {np.shape(data)})", path)
    return arr.astype(float)


def _band_split(hdu, path: Path):
    """IRAF band-stacked multispec: (flux, sigma) from BANDIDn cards, else None."""
    data = np.squeeze(np.asarray(hdu.data))
    if data.ndim != 2:
        return None
    bands = {i: str(hdu.header.get(f"BANDID{i + 1}", "")).lower() for i in range(data.shape[0])}
    if not any(bands.values()):
        return None
    flux_i = next((i for i, b in bands.items() if b.startswith("spectrum")), None)
    sig_i = next((i for i, b in bands.items() if b.startswith("sigma")), None)
    if flux_i is None:
        return None
    return data[flux_i].astype(float), (None if sig_i is None else data[sig_i].astype(float))


def read_fits_image_spectrum(path: Path, medium: str | None = None) -> Spectrum:
    """Read a 1D FITS image spectrum with a WCS wavelength solution.

    Parameters
    ----------
    path : Path
        The FITS file (layout in the module docstring).
    medium : {'vacuum', 'air'}, optional
        Overrides the medium declared by the header (default vacuum).

    Raises
    ------
    InputError
        No image data, missing wavelength keys, missing error extension,
        shape mismatches, unreadable units.
    """
    with open_fits(path) as hdul:
        flux_idx = None
        for i, h in enumerate(hdul):
            if isinstance(h, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU) \
                    and h.data is not None and h.data.size > 1:
                name = (h.name or "").upper()
                if name in _SKIP_EXT:
                    continue
                flux_idx = i
                break
        if flux_idx is None:
            raise InputError("FITS file has no image HDU with a spectrum", path)
        fhdu = hdul[flux_idx]
        header = fits.Header(hdul[0].header)
        if flux_idx != 0:
            header.update(fhdu.header)
        err_vals, err_kind, err_src = None, None, None
        split = _band_split(fhdu, path)
        if split is not None:
            flux, err_vals = split
            err_kind, err_src = "sigma", "BANDID sigma band"
        else:
            flux = _squeeze(fhdu.data, path, f"image in HDU {flux_idx}")
        npix = flux.size
        mask_vals, err_unit, wave_arr, wave_ext = None, None, None, None
        others = [(i, h) for i, h in enumerate(hdul) if i != flux_idx
                  and isinstance(h, fits.ImageHDU | fits.PrimaryHDU | fits.CompImageHDU)
                  and h.data is not None and h.data.size > 1]
        for _i, h in others:
            name = (h.name or "").upper()
            if err_vals is None:
                for kind, names in (("sigma", _SIGMA_EXT), ("ivar", _IVAR_EXT),
                                    ("var", _VAR_EXT)):
                    if name in names:
                        err_vals = _squeeze(h.data, path, f"{name} extension")
                        err_kind, err_src = kind, f"extension {name}"
                        err_unit = h.header.get("BUNIT")
                        break
            if name in _MASK_EXT and mask_vals is None:
                mask_vals = _squeeze(h.data, path, f"{name} extension")
            if name in _WAVE_EXT and wave_arr is None:
                wave_arr = _squeeze(h.data, path, f"{name} extension")
                wave_ext = h
        if err_vals is None:
            unnamed = [(i, h) for i, h in others
                       if (h.name or "").upper() not in _MASK_EXT + _WAVE_EXT
                       and np.squeeze(h.data).shape == (npix,)]
            if len(unnamed) == 1:
                i, h = unnamed[0]
                err_vals = _squeeze(h.data, path, f"HDU {i}")
                err_kind, err_src = "sigma", f"HDU {i} ({h.name or 'unnamed'})"
                err_unit = h.header.get("BUNIT")
            elif len(unnamed) > 1:
                names = ", ".join(f"{i}:{h.name or '?'}" for i, h in unnamed)
                raise InputError(f"cannot tell which extension holds the error ({names}); "
                                 "name it ERROR, SIGMA, IVAR or VAR", path)
            else:
                raise InputError("missing error extension: no second HDU (ERROR/SIGMA/IVAR/"
                                 "VAR or an unnamed image of the same length) with the "
                                 "uncertainty", path)
        if err_vals.size != npix:
            raise InputError(f"error array ({err_src}) has {err_vals.size} pixels, flux has "
                             f"{npix}", path)
        if mask_vals is not None and mask_vals.size != npix:
            raise InputError(f"mask extension has {mask_vals.size} pixels, flux has {npix}",
                             path)
        if wave_arr is not None:  # wavelength array in its own extension
            if wave_arr.size != npix:
                raise InputError(f"{wave_ext.name} extension has {wave_arr.size} pixels, flux "
                                 f"has {npix}", path)
            if wave_ext.name.upper() == "LOGLAM":
                wave = 10.0 ** wave_arr * u.AA
            else:
                wave = wave_arr * to_wave_unit(wave_ext.header.get("BUNIT")
                                               or wave_ext.header.get("CUNIT1"), path)
        else:
            wave = wcs_wavelength(fhdu.header if "CRVAL1" in fhdu.header or
                                  "COEFF0" in fhdu.header else header, npix, path)
        flux_unit = parse_unit(fhdu.header.get("BUNIT", header.get("BUNIT")), None, path,
                               "flux unit (BUNIT)")
        if flux_unit is None:
            flux_unit = assumed_flux_unit(flux, path)
        error, bad = error_from(err_kind, err_vals)
        if err_unit:
            eu = parse_unit(err_unit, None, path, "error unit (BUNIT)")
            if eu is not None:
                if err_kind == "ivar":
                    eu = eu ** -0.5
                elif err_kind == "var":
                    eu = eu ** 0.5
                try:
                    error = (error * eu).to_value(flux_unit)
                except u.UnitConversionError:
                    raise InputError(f"error unit '{err_unit}' does not match flux unit "
                                     f"'{flux_unit}'", path) from None
        mask = bad if mask_vals is None else (bad | (mask_vals != 0))
        declared = medium_from_header(fhdu.header) or medium_from_header(header)
        if wave_ext is not None:
            declared = ("air" if wave_ext.name.upper() == "AWAV" else None) \
                or medium_from_header(wave_ext.header) or declared
        meta = {"source_file": str(path), "format": "fits-image", "error_from": err_src}
        name = header_value(header, "OBJECT", "OBJNAME", "TARGET", "NAME")
        if name is not None:
            meta["name"] = str(name)
        for key, cards in (("ra", ("RA_OBJ", "RA", "PLUG_RA")), ("dec", ("DEC_OBJ", "DEC",
                                                                         "PLUG_DEC")),
                           ("exptime", ("EXPTIME", "EXPOSURE")), ("airmass", ("AIRMASS",))):
            v = float_or_none(header_value(header, *cards))
            if v is not None:
                meta[key] = v
        inst = header_value(header, "INSTRUME", "TELESCOP")
        if inst is not None:
            meta["instrument"] = str(inst)
        date = header_value(header, "DATE-OBS")
        if date is not None:
            meta["date_obs"] = str(date)
        z = float_or_none(header_value(header, "REDSHIFT", "Z"))
        zerr = float_or_none(header_value(header, "REDSHERR", "Z_ERR"))
    meta["fluxed"] = is_flux_density(flux_unit)
    w, flux, error, mask = orient(wave.value, flux, error, mask, path=path)
    return Spectrum(wavelength=w * wave.unit, flux=flux * flux_unit, error=error * flux_unit,
                    mask=mask, redshift=z, redshift_err=zerr,
                    medium=resolve_medium(medium, declared, path), meta=meta)
