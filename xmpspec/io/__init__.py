"""Spectrum readers and writers.

:func:`read_spectrum` reads any supported file into a :class:`xmpspec.Spectrum`,
detecting the format from the file's content (FITS structure, PypeIt data
model classes, SDSS HDU layout, ECSV header, delimiters), or using
``format=``; :func:`read_spectra` reads every object of a PypeIt spec1d file.
:func:`write_spectrum` writes ECSV or FITS that read back exactly.
:func:`list_formats` describes the formats. Every problem with an input file
raises :class:`xmpspec.errors.InputError` naming the file and the problem.

Examples
--------
>>> from xmpspec.io import read_spectrum, write_spectrum       # doctest: +SKIP
>>> spec = read_spectrum("spec1d_sci-0012.fits", obj="J0845+1234", extraction="OPT")
>>> write_spectrum(spec, "J0845+1234.ecsv")
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError
from ..spectrum import Spectrum
from ._common import (
    angular_sep_arcsec,
    check_file,
    check_wavelength_scale,
    head_bytes,
    is_fits,
    match_radius_arcsec,
    open_fits,
    position_deg,
)
from .table import NATIVE_KEY, NATIVE_VALUE, read_native_fits, write_spectrum

__all__ = ["read_spectrum", "read_spectra", "write_spectrum", "list_formats", "detect_format",
           "FORMATS"]

FORMATS: dict[str, str] = {
    "pypeit-spec1d": "PypeIt spec1d_*.fits (SpecObjs): one object by name, position or "
                     "brightest; BOX/OPT extraction; fluxed or counts",
    "pypeit-coadd1d": "PypeIt coadd1d output (OneSpec): wave, flux, ivar, mask",
    "sdss": "SDSS/BOSS spec-*.fits: COADD loglam/flux/ivar/and_mask, z from SPECOBJ/SPALL",
    "fits-image": "generic 1D FITS image, linear or log WCS (CRVAL1, CDELT1/CD1_1, CRPIX1, "
                  "DC-FLAG), error in a second extension",
    "fits-table": "FITS binary table with wave/flux/error[/mask] columns (also xmpspec's "
                  "own FITS spectra)",
    "ecsv": "ECSV table with named columns and units (also xmpspec's own ECSV spectra)",
    "csv": "comma-separated table, named (wave, flux, error[, mask]) or positional columns",
    "ascii": "whitespace-separated text, named or positional columns (wave flux error [mask])",
}

ALIASES = {
    "spec1d": "pypeit-spec1d", "pypeit": "pypeit-spec1d", "specobjs": "pypeit-spec1d",
    "coadd1d": "pypeit-coadd1d", "onespec": "pypeit-coadd1d",
    "boss": "sdss", "sdss-spec": "sdss",
    "fits-wcs": "fits-image", "wcs": "fits-image", "image": "fits-image",
    "table": "fits-table", "bintable": "fits-table",
    "txt": "ascii", "dat": "ascii", "text": "ascii", "whitespace": "ascii",
}


_PYPEIT_NOT_SPECTRA = {
    "AllSpec2DObj": "2D spectra",
    "Spec2DObj": "2D spectra",
    "OrderStack": "echelle order stack; read the coadd1d file",
    "SensFunc": "sensitivity function",
    "Telluric": "telluric model",
    "PypeItImage": "calibration image",
    "WaveCalib": "wavelength calibration",
}


def list_formats() -> dict[str, str]:
    """Supported spectrum formats: ``{name: description}``.

    Names (and aliases such as ``spec1d``, ``coadd1d``, ``boss``, ``txt``)
    are accepted by ``read_spectrum(..., format=...)`` and ``--format``.
    """
    return dict(FORMATS)


def _canonical(fmt: str, path: Path) -> str:
    key = str(fmt).strip().lower()
    if key == "fits":
        return "fits"  # resolved by content below
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise InputError(f"unknown format '{fmt}'; known: {', '.join(FORMATS)} "
                         f"(aliases: {', '.join(sorted(ALIASES))})", path)
    return key


def _detect_fits(path: Path, hdul=None) -> str:
    from astropy.io import fits

    with open_fits(path) if hdul is None else _same(hdul) as hdul:
        h0 = hdul[0].header
        dmod0 = str(h0.get("DMODCLS", "")).strip()
        if dmod0 == "SpecObjs":
            return "pypeit-spec1d"
        names = [(h.name or "").upper() for h in hdul]
        ext_dmod = [str(h.header.get("DMODCLS", "")).strip() for h in hdul[1:]]
        if "OneSpec" in ext_dmod:
            return "pypeit-coadd1d"
        if "SpecObj" in ext_dmod:
            return "pypeit-spec1d"
        other = [d for d in [dmod0, *ext_dmod]
                 if d and d not in ("DetectorContainer", "Mosaic")]
        if other:
            what = _PYPEIT_NOT_SPECTRA.get(other[0], "not a 1D spectrum")
            raise InputError(f"PypeIt {other[0]} file ({what}): read the spec1d_*.fits or "
                             "coadd1d output instead", path)
        if "COADD" in names:
            cols = [c.lower() for c in (hdul["COADD"].columns.names or [])] \
                if isinstance(hdul["COADD"], fits.BinTableHDU) else []
            if "loglam" in cols and "flux" in cols:
                return "sdss"
        for h in hdul:
            if isinstance(h, fits.BinTableHDU) and \
                    str(h.header.get(NATIVE_KEY, "")).strip() == NATIVE_VALUE:
                return "fits-table"
        has_image = any(isinstance(h, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU)
                        and h.data is not None and h.data.size > 1 for h in hdul)
        has_table = any(isinstance(h, fits.BinTableHDU | fits.TableHDU) for h in hdul)
        if has_image and ("CRVAL1" in h0 or "COEFF0" in h0 or any(
                "CRVAL1" in h.header for h in hdul[1:])):
            return "fits-image"
        if has_table:
            return "fits-table"
        if has_image:
            return "fits-image"
    raise InputError("FITS file holds no spectrum (no image data, no binary table)", path)


@contextmanager
def _same(hdul):
    yield hdul


def detect_format(path: str | Path) -> str:
    """Guess the format of a spectrum file from its content.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    str
        A key of :data:`FORMATS`.

    Raises
    ------
    InputError
        Missing, empty, corrupt or unrecognisable file.
    """
    path = Path(path)
    check_file(path)
    if is_fits(path):
        return _detect_fits(path)
    head = head_bytes(path, 8192)
    if b"\x00" in head:
        raise InputError("unknown format: binary file that is not FITS", path)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
            raise InputError("unknown format: not text and not FITS", path) from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError("unknown format: text file with no content", path)
    if lines[0].lstrip().startswith("# %ECSV"):
        return "ecsv"
    if path.name.lower().endswith((".fits", ".fit", ".fits.gz", ".fz")):
        raise InputError("named like FITS but does not start with a FITS header "
                         "(corrupt or not FITS)", path)
    data_lines = [ln for ln in lines if not ln.lstrip().startswith("#")]
    if not data_lines:
        raise InputError("unknown format: text file with only comment lines", path)
    sample = data_lines[:5]
    if all("," in ln for ln in sample):
        return "csv"
    return "ascii"


def _reader(fmt: str) -> Callable[..., Spectrum]:
    if fmt == "pypeit-spec1d":
        from .pypeit import read_spec1d
        return read_spec1d
    if fmt == "pypeit-coadd1d":
        from .pypeit import read_coadd1d
        return read_coadd1d
    if fmt == "sdss":
        from .sdss import read_sdss
        return read_sdss
    if fmt == "fits-image":
        from .fitsimage import read_fits_image_spectrum
        return lambda path, medium=None, **kw: read_fits_image_spectrum(path, medium=medium)
    if fmt == "fits-table":
        from .table import read_fits_table_spectrum
        return lambda path, medium=None, **kw: read_fits_table_spectrum(path, medium=medium)
    from .table import read_text_spectrum
    return lambda path, medium=None, **kw: read_text_spectrum(path, fmt, medium=medium)


def read_spectrum(path: str | Path, format: str | None = None, obj: str | None = None,
                  ra: float | None = None, dec: float | None = None,
                  extraction: str = "BOX", fluxed: bool = True, medium: str | None = None,
                  ignore_bad_errors: bool = False, match_arcsec: float | None = None) -> Spectrum:
    """Read a 1D spectrum from any supported file.

    Parameters
    ----------
    path : path-like
        The file.
    format : str, optional
        A name from :func:`list_formats` (or an alias, or ``"fits"`` to let
        the FITS content decide); detected from the content when omitted.
    obj : str, optional
        PypeIt spec1d: object to read, by PypeIt name (``SPAT0123-SLIT0456-DET01``)
        or target name (header ``TARGET``/``OBJECT``, slit-mask object name).
    ra, dec : float, str or Quantity, optional
        PypeIt spec1d: pick the object within ``match_arcsec`` of this position
        (plain numbers are degrees; strings may be sexagesimal). Without
        ``obj``/``ra``/``dec`` the brightest object is read. For one-object
        files, the position (and ``obj``) must match the file's object.
    extraction : {'BOX', 'OPT'}
        PypeIt spec1d/coadd: boxcar (default) or optimal extraction.
    fluxed : bool
        PypeIt spec1d: flux-calibrated ``*_FLAM`` (default) or ``*_COUNTS``.
    medium : {'vacuum', 'air'}, optional
        Declare the wavelength medium, overriding the file (default: what the
        file declares, else vacuum).
    ignore_bad_errors : bool
        Mask pixels with zero or negative errors instead of raising.
    match_arcsec : float, optional
        Position-match radius in arcsec (default: the configuration's
        ``measure.target_match_arcsec``, 2 arcsec in science.md).

    Returns
    -------
    Spectrum
        With ``meta['source_file']`` and ``meta['format']`` set.

    Raises
    ------
    InputError
        Unreadable, corrupt or truncated file, unknown format, missing
        extension/column/header key, non-monotonic wavelengths, zero or
        negative errors on unmasked pixels, every pixel masked, requested
        object absent (the message lists the objects present).
    """
    path = Path(path).expanduser()
    check_file(path)
    ext = str(extraction).strip().upper()
    if ext not in ("BOX", "OPT"):
        raise InputError(f"extraction must be BOX or OPT, not {extraction!r}", path)
    fmt = None if format is None else _canonical(format, path)
    fits_file = is_fits(path)
    if fmt is not None and fmt.startswith(("pypeit", "sdss", "fits")) and not fits_file:
        if fmt == "fits":
            raise InputError("not a FITS file (no 'SIMPLE' card at the start)", path)
        raise InputError(f"format '{fmt}' expects a FITS file, but this is not FITS", path)
    radius = match_radius_arcsec(match_arcsec)
    spec = None
    if fits_file and fmt in (None, "fits", "fits-table"):
        spec = read_native_fits(path, medium=medium)  # xmpspec's own layout, else None
        if spec is not None:
            fmt = "fits-table"
    if spec is None and fits_file and fmt in (None, "fits", "fits-table", "fits-image", "sdss"):
        # open once: detection and the reader share the HDU list (open_fits is re-entrant)
        with open_fits(path) as hdul:
            if fmt in (None, "fits"):
                fmt = _detect_fits(path, hdul)
            if fmt.startswith(("fits", "sdss")):
                spec = _reader(fmt)(path, obj=obj, ra=ra, dec=dec, extraction=ext,
                                    fluxed=fluxed, medium=medium, match_arcsec=radius)
    elif fmt is None:
        fmt = detect_format(path)
    if spec is None:
        spec = _reader(fmt)(path, obj=obj, ra=ra, dec=dec, extraction=ext, fluxed=fluxed,
                            medium=medium, match_arcsec=radius)
    spec.meta.setdefault("source_file", str(path))
    spec.meta.setdefault("format", fmt)
    check_wavelength_scale(spec.wavelength.value, path)
    if fmt != "pypeit-spec1d":
        _check_single_object(spec, obj, ra, dec, path, radius)
    spec.validate_errors(allow_nonpositive=ignore_bad_errors)
    return spec


def read_spectra(path: str | Path, format: str | None = None, extraction: str = "BOX",
                 fluxed: bool = True, medium: str | None = None,
                 ignore_bad_errors: bool = False) -> list[Spectrum]:
    """Read every object of a file: all objects of a PypeIt spec1d, else the one spectrum.

    Parameters
    ----------
    path : path-like
        The file.
    format, extraction, fluxed, medium, ignore_bad_errors
        As for :func:`read_spectrum`.

    Returns
    -------
    list of Spectrum
        Brightest first for spec1d files.

    Raises
    ------
    InputError
        As :func:`read_spectrum`; for a spec1d file, if any object cannot be read
        with the requested extraction.
    """
    path = Path(path).expanduser()
    fmt = detect_format(path) if format is None else _canonical(format, path)
    if fmt == "fits":
        fmt = _detect_fits(path)
    if fmt != "pypeit-spec1d":
        return [read_spectrum(path, format=fmt, extraction=extraction, fluxed=fluxed,
                              medium=medium, ignore_bad_errors=ignore_bad_errors)]
    from .pypeit import list_spec1d_objects
    return [read_spectrum(path, format=fmt, obj=o["name"], extraction=extraction,
                          fluxed=fluxed, medium=medium, ignore_bad_errors=ignore_bad_errors)
            for o in list_spec1d_objects(path)]


def _norm_name(name) -> str:
    return "".join(str(name).split()).lower()


def _check_single_object(spec: Spectrum, obj, ra, dec, path: Path, radius: float) -> None:
    """For one-object files: a requested name/position must match what the file holds."""
    if obj is not None:
        have = spec.meta.get("name")
        if have is None:
            spec.meta["name"] = str(obj)
        elif _norm_name(have) != _norm_name(obj):
            raise InputError(f"object '{obj}' not found; the file holds one object: "
                             f"'{have}'", path)
    if ra is not None or dec is not None:
        if ra is None or dec is None:
            raise InputError("give both RA and Dec to select by position", path)
        if spec.meta.get("ra") is None or spec.meta.get("dec") is None:
            raise InputError("cannot select by position: the file has no RA/Dec", path)
        ra_d, dec_d = position_deg(ra, dec, path)
        sep = angular_sep_arcsec(ra_d, dec_d, spec.meta["ra"], spec.meta["dec"])
        if sep > radius:
            raise InputError(f"no object within {radius:g} arcsec of RA={ra_d:.6f} "
                             f"Dec={dec_d:.6f}; the file's object '{spec.name}' is at "
                             f"RA={spec.meta['ra']:.6f} Dec={spec.meta['dec']:.6f} "
                             f"({sep:.1f} arcsec away)", path)
