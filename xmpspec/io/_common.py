"""Helpers shared by the spectrum readers: safe FITS opening, units, errors, masks."""

from __future__ import annotations

import gzip
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..spectrum import FLUX_UNIT

log = logging.getLogger("xmpspec.io")

MATCH_RADIUS_ARCSEC = 2.0
"""Fallback radius (arcsec) for selecting an object by position; the configured
``measure.target_match_arcsec`` (science.md: 2 arcsec) is used when set."""


def match_radius_arcsec(radius: float | None = None) -> float:
    """Position-match radius in arcsec: ``radius`` if given, else the configuration's."""
    if radius is not None:
        return float(radius)
    try:
        from ..config import get_active_config
        value = get_active_config().get("measure.target_match_arcsec", MATCH_RADIUS_ARCSEC)
        return float(value)
    except Exception:  # no usable configuration: the documented default
        return MATCH_RADIUS_ARCSEC

FITS_MAGIC = b"SIMPLE  ="
GZIP_MAGIC = b"\x1f\x8b"

# Column / extension names understood by the generic readers (lower case).
WAVE_PREFIXES = ("wave", "wavelength", "lambda", "lam_", "wl_", "awav")
WAVE_NAMES = ("wavelength", "wave", "lambda", "lam", "wl", "wav", "wavelen", "awav",
              "wave_air", "air_wave", "lambda_air", "wave_vac", "vac_wave", "lambda_vac",
              "vacuum_wave", "wave_vacuum", "opt_wave", "box_wave")
LOGWAVE_NAMES = ("loglam", "log_lambda", "log_wave", "logwave", "log10lam")
AIR_WAVE_NAMES = ("awav", "wave_air", "air_wave", "lambda_air")
FLUX_NAMES = ("flux", "flam", "f_lambda", "flux_density", "fluxdensity", "spec", "spectrum",
              "fnu", "counts", "opt_flam", "box_flam")
ERR_NAMES = ("error", "err", "sigma", "flux_err", "flux_error", "fluxerr", "e_flux", "eflux",
             "uncertainty", "unc", "noise", "stddev", "std", "flux_sigma", "sig", "flam_sig",
             "opt_flam_sig", "box_flam_sig")
IVAR_NAMES = ("ivar", "invvar", "inverse_variance", "flux_ivar", "inv_var", "weight",
              "opt_flam_ivar", "box_flam_ivar")
VAR_NAMES = ("var", "variance", "flux_var")
BADMASK_NAMES = ("mask", "bad", "badpix", "bad_pixel", "and_mask", "flag", "flags", "dq")
GOODMASK_NAMES = ("good", "goodpix", "good_pixel", "opt_mask", "box_mask")

AIR_WORDS = ("air",)
VAC_WORDS = ("vac", "vacuum")


def check_file(path: Path) -> None:
    """Raise :class:`InputError` if ``path`` is missing, a folder or empty."""
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a folder, not a spectrum file", path)
    if path.stat().st_size == 0:
        raise InputError("file is empty", path)


def head_bytes(path: Path, n: int = 2880) -> bytes:
    """First ``n`` bytes of ``path`` (decompressed if gzip)."""
    with open(path, "rb") as fh:
        start = fh.read(2)
    opener = gzip.open if start == GZIP_MAGIC else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read file ({exc})", path) from None


def is_fits(path: Path) -> bool:
    """True if the file starts like a FITS file (plain or gzip-compressed)."""
    return head_bytes(path, len(FITS_MAGIC)) == FITS_MAGIC


_TRAILING_WARNED: set[str] = set()


def _starts_another_hdu(path: Path, hdul: fits.HDUList) -> bool:
    """True if the bytes after the last complete HDU begin a new (cut-off) extension."""
    try:
        info = hdul.fileinfo(len(hdul) - 1)
        end = int(info["datLoc"]) + int(info["datSpan"])
        with open(path, "rb") as fh:
            gz = fh.read(2) == GZIP_MAGIC
        opener = gzip.open if gz else open
        with opener(path, "rb") as fh:
            fh.seek(end)
            nxt = fh.read(8)
    except Exception:  # cannot tell: be strict
        return True
    return nxt.startswith(b"XTENSION")


_OPEN = threading.local()


@contextmanager
def open_fits(path: Path) -> Iterator[fits.HDUList]:
    """Open a FITS file fully, turning corruption and truncation into :class:`InputError`.

    Every HDU header is parsed and every data array read on opening so that
    a truncated file fails here, with the file named, not deep inside a reader.
    Re-entrant: inside an ``open_fits(path)`` block (e.g. format detection in
    :func:`xmpspec.io.read_spectrum`), a reader opening the same path gets the
    HDU list already open instead of reading the file a second time.
    """
    key = str(path)
    stack = getattr(_OPEN, "files", None)
    if stack is None:
        stack = _OPEN.files = {}
    if key in stack:
        yield stack[key]
        return
    with _open_fits(path) as hdul:
        stack[key] = hdul
        try:
            yield hdul
        finally:
            stack.pop(key, None)


@contextmanager
def _open_fits(path: Path) -> Iterator[fits.HDUList]:
    check_file(path)
    if not is_fits(path):
        raise InputError("not a FITS file (no 'SIMPLE' card at the start)", path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
        except Exception as exc:  # astropy raises OSError, ValueError, TypeError ...
            raise InputError(f"corrupt FITS file ({exc})", path) from None
        try:
            for hdu in hdul:
                _ = hdu.data  # force reading: truncated data fail here
        except Exception as exc:
            hdul.close()
            raise InputError(f"corrupt or truncated FITS file ({type(exc).__name__}: {exc})",
                             path) from None
    for w in caught:
        msg = str(w.message)
        low = msg.lower()
        if "truncated" in low or "corrupt" in low:
            m = re.search(r"HDU #(\d+)", msg)
            if m and "truncated" not in low and int(m.group(1)) >= len(hdul) \
                    and not _starts_another_hdu(path, hdul):
                # bytes after the last complete HDU: the spectrum itself is intact
                if str(path) not in _TRAILING_WARNED:
                    _TRAILING_WARNED.add(str(path))
                    log.warning("%s: unreadable bytes after the last HDU ignored", path)
                continue
            hdul.close()
            raise InputError(f"truncated or corrupt FITS file ({msg.splitlines()[0]})", path)
    try:
        yield hdul
    finally:
        hdul.close()


def parse_unit(text, default: u.UnitBase | None, path: Path | None = None,
               what: str = "unit") -> u.UnitBase | None:
    """Parse a unit string from a header/column, tolerating common spellings.

    Returns ``default`` for empty values; raises :class:`InputError` for a
    string that cannot be understood.
    """
    if text is None:
        return default
    if isinstance(text, u.UnitBase):
        return text
    s = str(text).strip()
    if not s:
        return default
    low = s.lower().replace(" ", "")
    aliases = {
        "angstrom": u.AA, "angstroms": u.AA, "a": u.AA, "ang": u.AA, "aa": u.AA,
        "nm": u.nm, "nanometer": u.nm, "nanometers": u.nm, "um": u.um, "micron": u.um,
        "microns": u.um, "micrometer": u.um, "micrometers": u.um,
        "counts": u.count, "count": u.count, "ct": u.count, "adu": u.adu, "e-": u.electron,
        "electrons": u.electron,
    }
    if low in aliases:
        return aliases[low]
    candidates = [s, s.replace("Ang", "Angstrom").replace("Angstromstrom", "Angstrom"),
                  s.replace("ergs", "erg").replace("Ang", "Angstrom")
                  .replace("Angstromstrom", "Angstrom").replace("^", "")]
    for cand in candidates:
        for fmt in (None, "fits", "cds"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return u.Unit(cand, format=fmt) if fmt else u.Unit(cand)
            except (ValueError, TypeError):
                continue
    raise InputError(f"cannot understand {what} '{s}'", path)


def to_wave_unit(unit, path: Path | None) -> u.UnitBase:
    """Validate a wavelength unit (a length)."""
    unit = parse_unit(unit, u.AA, path, "wavelength unit")
    if unit is u.dimensionless_unscaled or unit == u.one:
        return u.AA
    if not unit.is_equivalent(u.AA):
        raise InputError(f"wavelength unit '{unit}' is not a length", path)
    return unit


# Ground-based optical/near-IR spectra: the atmosphere is opaque below ~3000 A.
_GROUND_WINDOW_AA = (3000.0, 30000.0)


def check_wavelength_scale(wave_aa: np.ndarray, path: Path | None) -> None:
    """Raise if the wavelengths look like another length unit read as Angstrom.

    The observed range (and pixel spacing) is compared with what the unit
    makes of it: optical spectra in nm labelled (or defaulted to) Angstrom
    read as ~300-1000 A with ~0.1-0.3 A pixels, far below the atmospheric
    cut-off; in micron as < 10 A; Angstrom values labelled nm as 30000-110000 A
    (3-11 micron). When the range is impossible for the unit and the same
    numbers in another unit (x10, x1e4, /10, /1e4) give a ground-based
    optical/near-IR range (3000-30000 A; 3000-11000 A for values labelled nm),
    an :class:`InputError` says so, instead of the lines being "not covered"
    later. Genuine ultraviolet spectra (912-3000 A) are left alone.

    Parameters
    ----------
    wave_aa : ndarray
        Wavelengths in Angstrom as read (after the file's unit was applied).
    path : Path or None
        The file, for the message.
    """
    w = np.asarray(wave_aa, float)
    w = w[np.isfinite(w)]
    if w.size < 2:
        return
    lo, hi = float(w.min()), float(w.max())
    step = (hi - lo) / (w.size - 1)
    win_lo, win_hi = _GROUND_WINDOW_AA
    guess = None
    if hi < 1100.0:
        for factor, unit in ((10.0, "nm"), (1e4, "micron")):
            if win_lo <= lo * factor and hi * factor <= win_hi:
                guess = (factor, unit)
                break
    elif lo >= 3e4 and hi <= 1.1e5 and win_lo <= lo / 10 and hi / 10 <= 11000.0:
        guess = (0.1, "Angstrom read as nm")
    elif lo >= 3e7 and win_lo <= lo / 1e4 and hi / 1e4 <= win_hi:
        guess = (1e-4, "Angstrom read as micron")
    if guess is None:
        return
    factor, unit = guess
    what = (f"they look like {unit} (x{factor:g}: {lo * factor:.0f}-{hi * factor:.0f} A)"
            if factor > 1 else f"they look like {unit} ({lo * factor:.0f}-{hi * factor:.0f} A)")
    raise InputError(
        f"wavelength unit looks wrong: the wavelengths read as {lo:.6g}-{hi:.6g} Angstrom "
        f"(mean pixel spacing {step:.3g} A), outside the ground-based optical/near-IR range "
        f"({win_lo:.0f}-{win_hi:.0f} A); {what}. Declare the wavelength unit in the file "
        "(ECSV column unit, FITS TUNITn or CUNIT1)", path)


def error_from(kind: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-sigma error and a bad-pixel mask from an uncertainty array.

    Parameters
    ----------
    kind : {'sigma', 'ivar', 'var'}
        What ``values`` holds.
    values : ndarray

    Returns
    -------
    error, bad : ndarray, ndarray of bool
        For inverse variances, pixels with ``ivar <= 0`` (PypeIt's and SDSS's
        convention for no data) are flagged bad and get a NaN error. Sigma
        arrays are returned unchanged (zero/negative sigma is caught later by
        :meth:`Spectrum.validate_errors`).
    """
    v = np.asarray(values, float)
    if kind == "sigma":
        return v.copy(), ~np.isfinite(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "ivar":
            bad = ~(np.isfinite(v) & (v > 0))
            err = np.where(bad, np.nan, 1.0 / np.sqrt(np.where(bad, 1.0, v)))
        elif kind == "var":
            bad = ~(np.isfinite(v) & (v > 0))
            err = np.where(bad, np.nan, np.sqrt(np.where(bad, 1.0, v)))
        else:  # pragma: no cover - programming error
            raise ValueError(kind)
    return err, bad


def medium_from_text(value) -> str | None:
    """'air' / 'vacuum' from a header or metadata value, None if undetermined."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "vacuum" if value else "air"  # e.g. VACUUM = T
    s = str(value).strip().lower()
    if not s:
        return None
    if s.startswith("air") or s == "awav":
        return "air"
    if s.startswith("vac") or s == "wave":
        return "vacuum"
    return None


def medium_from_header(header) -> str | None:
    """Medium declared by common header cards (AIRORVAC, VACUUM, MEDIUM, CTYPE1, WAVEMED)."""
    for key in ("AIRORVAC", "MEDIUM", "WAVEMED", "WAVMEDIU", "WAV_MED", "AIRVAC"):
        if key in header:
            m = medium_from_text(header[key])
            if m:
                return m
    if "VACUUM" in header:
        return medium_from_text(bool(header["VACUUM"]))
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    if ctype.startswith("AWAV"):
        return "air"
    if ctype == "WAVE" or ctype.startswith("WAVE-") or ctype.startswith("VWAV"):
        return "vacuum"
    return None


def resolve_medium(requested: str | None, declared: str | None, path: Path) -> str:
    """The medium to use: the caller's, else the file's, else vacuum."""
    if requested is not None:
        m = medium_from_text(requested)
        if m is None:
            raise InputError(f"medium must be 'vacuum' or 'air', not {requested!r}", path)
        if declared is not None and declared != m:
            log.warning("%s: file declares %s wavelengths; using %s as requested",
                        path, declared, m)
        return m
    return declared or "vacuum"


def orient(wave: np.ndarray, *arrays: np.ndarray, path: Path | None = None):
    """Reverse all arrays if ``wave`` is strictly decreasing (stored red to blue)."""
    w = np.asarray(wave, float)
    if w.size > 1 and np.all(np.isfinite(w)) and np.all(np.diff(w) < 0):
        return (w[::-1].copy(),) + tuple(None if a is None else np.asarray(a)[::-1].copy()
                                         for a in arrays)
    return (w,) + tuple(arrays)


def header_value(header, *keys, default=None):
    """First present, non-empty value of ``keys`` in ``header`` (case-insensitive)."""
    for key in keys:
        if key in header:
            val = header[key]
            if val is None or (isinstance(val, str) and not val.strip()):
                continue
            if isinstance(val, fits.card.Undefined):
                continue
            return val.strip() if isinstance(val, str) else val
    return default


def float_or_none(value) -> float | None:
    """``float(value)`` or None if it is missing / not a finite number."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def coerce_meta(value):
    """Plain Python types for metadata (numpy scalars -> Python, bytes -> str)."""
    if isinstance(value, u.Quantity):
        return str(value)  # JSON has no units: keep it readable
    if isinstance(value, np.ndarray):
        return coerce_meta(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return [coerce_meta(v) for v in sorted(value, key=str)]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {str(k): coerce_meta(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [coerce_meta(v) for v in value]
    return value


def assumed_flux_unit(flux: np.ndarray, path: Path | None) -> u.UnitBase:
    """Flux unit for a file that declares none.

    The xmpspec default (1e-17 erg/s/cm2/A), unless the values are so small
    (median |flux| < 1e-10) that they can only be erg/s/cm2/A; a warning
    says which was assumed.
    """
    f = np.abs(np.asarray(flux, float))
    f = f[np.isfinite(f) & (f > 0)]
    if f.size and np.median(f) < 1e-10:
        unit = u.erg / u.s / u.cm**2 / u.AA
        log.warning("%s: no flux unit declared and values ~%.1e: assuming erg/s/cm2/A "
                    "(declare the unit: ECSV column unit, TUNITn or BUNIT)", path,
                    float(np.median(f)))
        return unit
    log.debug("%s: no flux unit declared: assuming the default %s", path, FLUX_UNIT)
    return FLUX_UNIT


def position_deg(ra, dec, path: Path | None) -> tuple[float, float]:
    """RA/Dec in degrees from numbers (deg), Quantities, or sexagesimal strings.

    The rules of :func:`xmpspec.coords.parse_position` (RA text without unit
    letters in hours, Dec in degrees); InputError if either cannot be read or is empty.
    """
    from ..coords import parse_position

    pos = parse_position(ra, dec, path, ra_column="RA", dec_column="Dec")
    if pos is None:
        raise InputError(f"cannot understand position RA={ra!r} Dec={dec!r} (empty)", path)
    return pos


def angular_sep_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angular separation (arcsec) between two positions in degrees (astropy SkyCoord)."""
    from astropy.coordinates import SkyCoord

    a = SkyCoord(ra1 * u.deg, dec1 * u.deg)
    b = SkyCoord(ra2 * u.deg, dec2 * u.deg)
    return float(a.separation(b).arcsec)


# ----------------------------------------------------------------------------- table columns
# The rule for the numbers of any table column, here (spectrum layer) so that every layer
# above reaches the same one: targets tables (lines.targets), derive (physics._columns, which
# re-exports it), compare and the paper products.

class ColumnValueError(InputError):
    """A column is present but its values cannot be used: not numbers, a unit of another
    kind, negative 1-sigma errors. Always an input error (exit 2), also where an *absent*
    column only skips a product (a table or figure of ``xmpspec tables``/``plots``)."""


def is_error_column(name: str) -> bool:
    """Whether a column holds 1-sigma errors (``<quantity>_err``, the xmpspec spelling)."""
    return str(name).endswith("_err")


def check_error_values(values, name: str, source: str | None = None):
    """The rule for 1-sigma error columns: no negative value (NaN or masked = no error).

    Parameters
    ----------
    values : array-like
        The column as floats (masked or NaN cells are skipped).
    name : str
        Column name, for the message.
    source : str, optional
        File name, for the message.

    Returns
    -------
    array-like
        ``values`` unchanged.

    Raises
    ------
    ColumnValueError
        A finite negative error; the message names the column, the first such row
        (1-based) and its value, and how many rows have one.
    """
    arr = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan)
    bad = np.flatnonzero(np.isfinite(arr) & (arr < 0))
    if bad.size:
        more = f" ({bad.size} rows)" if bad.size > 1 else ""
        raise ColumnValueError(f"column '{name}' row {bad[0] + 1}: negative error "
                               f"{arr[bad[0]]:g}{more}", source)
    return values
