"""SDSS / BOSS / eBOSS / SDSS-V ``spec-PLATE-MJD-FIBER.fits`` files.

Layout read (DR8 and later): HDU 1 ``COADD`` binary table with ``loglam``
(log10 vacuum Angstrom), ``flux`` (1e-17 erg/s/cm2/A), ``ivar`` and
``and_mask``; HDU 2 ``SPECOBJ`` (``SPALL`` in eBOSS/SDSS-V) with ``Z``,
``Z_ERR``, ``ZWARNING``, ``PLATE``, ``MJD``, ``FIBERID``, ``PLUG_RA``,
``PLUG_DEC``. Pixels with ``ivar <= 0`` or a non-zero ``and_mask`` are
masked. ``wdisp`` (instrumental dispersion in pixels of 1e-4 dex), when
present, gives the median resolving power in ``meta['resolution']``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import InputError
from ..spectrum import FLUX_UNIT, Spectrum
from ._common import (
    coerce_meta,
    error_from,
    float_or_none,
    header_value,
    medium_from_header,
    open_fits,
    parse_unit,
    resolve_medium,
)

__all__ = ["read_sdss"]

log = logging.getLogger("xmpspec.io")

C_KMS = 299792.458
_DEX_PER_PIX = 1e-4  # SDSS/BOSS coadd sampling


def _col(table: Table, name: str, path: Path, required: bool = True):
    low = {c.lower(): c for c in table.colnames}
    if name.lower() in low:
        return np.asarray(table[low[name.lower()]])
    if required:
        raise InputError(f"COADD table lacks the '{name}' column (columns: "
                         f"{', '.join(table.colnames)})", path)
    return None


def read_sdss(path: str | Path, medium: str | None = None, **_) -> Spectrum:
    """Read an SDSS/BOSS ``spec-*.fits`` spectrum.

    Parameters
    ----------
    path : path-like
        The ``spec-PLATE-MJD-FIBER.fits`` file.
    medium : str, optional
        Override the (vacuum) wavelength medium.

    Returns
    -------
    Spectrum
        Redshift from SPECOBJ ``Z``/``Z_ERR``; ``meta`` holds ``name``
        (``spec-PLATE-MJD-FIBER``), ``ra``/``dec`` (plug position),
        ``plate``/``mjd``/``fiberid``, ``zwarning``, ``class``,
        ``instrument`` ('SDSS' or 'BOSS'), ``setup`` ('sdss'), ``resolution``.

    Raises
    ------
    InputError
        No ``COADD`` extension, missing columns, corrupt file.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        h0 = hdul[0].header.copy()
        names = [(h.name or "").upper() for h in hdul]
        if "COADD" in names:
            coadd_hdu = hdul["COADD"]
        elif len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU):
            coadd_hdu = hdul[1]
        else:
            raise InputError("SDSS spec file lacks the COADD extension (HDU 1)", path)
        if not isinstance(coadd_hdu, fits.BinTableHDU):
            raise InputError("SDSS COADD extension is not a binary table", path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coadd = Table.read(coadd_hdu)
            specobj = None
            for key in ("SPECOBJ", "SPALL"):
                if key in names and isinstance(hdul[key], fits.BinTableHDU):
                    specobj = Table.read(hdul[key])
                    break
            if specobj is None and len(hdul) > 2 and isinstance(hdul[2], fits.BinTableHDU):
                t = Table.read(hdul[2])
                if "Z" in [c.upper() for c in t.colnames]:
                    specobj = t
    if len(coadd) == 0:
        raise InputError("SDSS COADD table has no rows", path)
    loglam = _col(coadd, "loglam", path).astype(float)
    flux = _col(coadd, "flux", path).astype(float)
    ivar = _col(coadd, "ivar", path).astype(float)
    and_mask = _col(coadd, "and_mask", path, required=False)
    wdisp = _col(coadd, "wdisp", path, required=False)
    err, bad = error_from("ivar", ivar)
    if and_mask is not None:
        bad |= np.asarray(and_mask).astype(np.int64) != 0
    wave = 10.0 ** loglam

    unit = parse_unit(header_value(h0, "BUNIT"), None, path, "flux unit (BUNIT)")
    if unit is None or not unit.is_equivalent(FLUX_UNIT):
        unit = FLUX_UNIT  # SDSS convention; BUNIT is often free text

    meta: dict = {"source_file": str(path), "format": "sdss", "fluxed": True, "setup": "sdss"}
    z = zerr = None
    row = None
    if specobj is not None and len(specobj):
        row = specobj[0]
        cols = {c.upper(): c for c in specobj.colnames}

        def val(key):
            return row[cols[key]] if key in cols else None

        z = float_or_none(val("Z"))
        zerr = float_or_none(val("Z_ERR"))
        for key, col in (("plate", "PLATE"), ("mjd", "MJD"), ("fiberid", "FIBERID"),
                         ("zwarning", "ZWARNING"), ("specobjid", "SPECOBJID"),
                         ("catalogid", "CATALOGID"), ("field", "FIELD")):
            v = val(col)
            if v is not None and not np.ma.is_masked(v):
                meta[key] = v.item() if isinstance(v, np.generic) else v
        for key, col in (("class", "CLASS"), ("subclass", "SUBCLASS"), ("survey", "SURVEY"),
                         ("instrument", "INSTRUMENT")):
            v = val(col)
            if v is not None and str(v).strip():
                meta[key] = str(v.decode() if isinstance(v, bytes) else v).strip()
        ra = dec = None
        for rkey, dkey in (("PLUG_RA", "PLUG_DEC"), ("FIBER_RA", "FIBER_DEC"),
                           ("RACAT", "DECCAT"), ("RA", "DEC")):  # SDSS..SDSS-V spellings
            ra, dec = float_or_none(val(rkey)), float_or_none(val(dkey))
            if ra is not None and dec is not None:
                break
        if ra is not None and dec is not None:
            meta["ra"], meta["dec"] = ra, dec
        if meta.get("zwarning"):
            log.warning("%s: SDSS ZWARNING=%s (redshift flagged by the pipeline)", path,
                        meta["zwarning"])
    else:
        log.warning("%s: no SPECOBJ/SPALL extension: no redshift", path)
    if "ra" not in meta:
        ra, dec = float_or_none(header_value(h0, "PLUG_RA", "RA")), \
            float_or_none(header_value(h0, "PLUG_DEC", "DEC"))
        if ra is not None and dec is not None:
            meta["ra"], meta["dec"] = ra, dec
    for key, card in (("plate", "PLATEID"), ("mjd", "MJD"), ("fiberid", "FIBERID")):
        if key not in meta:
            v = header_value(h0, card)
            if v is not None:
                meta[key] = v
    if all(k in meta for k in ("plate", "mjd", "fiberid")):
        try:
            meta["name"] = (f"spec-{int(meta['plate']):04d}-{int(meta['mjd']):05d}-"
                            f"{int(meta['fiberid']):04d}")
        except (TypeError, ValueError):
            meta["name"] = path.name.split(".")[0]
    else:
        meta["name"] = path.name.split(".")[0]
    if "instrument" not in meta:
        tel = str(header_value(h0, "TELESCOP", default="SDSS"))
        meta["instrument"] = "BOSS" if "BOSS" in str(header_value(h0, "INSTRUME", default=""))\
            .upper() else ("SDSS" if "SDSS" in tel.upper() else tel)
    exptime = float_or_none(header_value(h0, "EXPTIME"))
    if exptime is not None:
        meta["exptime"] = exptime
    airmass = float_or_none(header_value(h0, "AIRMASS"))
    if airmass is not None:
        meta["airmass"] = airmass
    if wdisp is not None:
        wd = np.asarray(wdisp, float)
        good = np.isfinite(wd) & (wd > 0) & ~bad
        if good.any():
            sigma_kms = np.median(wd[good]) * _DEX_PER_PIX * np.log(10.0) * C_KMS
            meta["resolution"] = float(C_KMS / (2.0 * np.sqrt(2.0 * np.log(2.0)) * sigma_kms))
    declared = medium_from_header(h0) or "vacuum"
    return Spectrum(wavelength=wave * u.AA, flux=flux * unit, error=err * unit, mask=bad,
                    redshift=z, redshift_err=zerr,
                    medium=resolve_medium(medium, declared, path), meta=coerce_meta(meta))
