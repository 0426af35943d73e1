"""Tabular spectra: ECSV, CSV, whitespace ASCII and FITS binary tables; the xmpspec writer.

Columns are found by name (case-insensitive): wavelength (``wave``,
``wavelength``, ``lambda``, ``loglam`` = log10 Angstrom, ...), flux
(``flux``, ``flam``, ...), uncertainty (``error``/``err``/``sigma`` = 1-sigma,
``ivar`` = inverse variance, ``var`` = variance) and an optional mask
(``mask``/``bad``/``and_mask``: non-zero = bad; ``good``/``goodpix``:
non-zero = good). A table whose columns have none of these names is read by
position: wavelength, flux, error[, mask].

Units come from the column units (ECSV, FITS ``TUNITn``), else from table
metadata (``BUNIT``/``flux_unit``, ``wave_unit``/``CUNIT1``), else the
defaults (Angstrom, :data:`xmpspec.FLUX_UNIT`).

:func:`write_spectrum` writes the xmpspec layout (columns ``wavelength``,
``flux``, ``error``, ``mask`` with units; redshift, medium and metadata in
the table metadata) that reads back exactly.
"""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import InputError
from ..spectrum import FLUX_UNIT, Spectrum, is_flux_density
from ._common import (
    AIR_WAVE_NAMES,
    BADMASK_NAMES,
    ERR_NAMES,
    FLUX_NAMES,
    GOODMASK_NAMES,
    IVAR_NAMES,
    LOGWAVE_NAMES,
    VAR_NAMES,
    WAVE_NAMES,
    WAVE_PREFIXES,
    assumed_flux_unit,
    check_file,
    coerce_meta,
    error_from,
    float_or_none,
    log,
    medium_from_header,
    medium_from_text,
    open_fits,
    orient,
    parse_unit,
    resolve_medium,
    to_wave_unit,
)

__all__ = ["read_text_spectrum", "read_fits_table_spectrum", "read_native_fits",
           "spectrum_from_table",
           "write_spectrum", "NATIVE_KEY", "NATIVE_VALUE"]

NATIVE_KEY = "XMPFMT"
NATIVE_VALUE = "xmpspec-spectrum"
NATIVE_VERSION = 1

_ASCII_FORMATS = {"ecsv": "ascii.ecsv", "csv": "ascii.csv", "ascii": "ascii"}


# ---------------------------------------------------------------------- reading
def read_text_spectrum(path: Path, kind: str, medium: str | None = None) -> Spectrum:
    """Read an ECSV, CSV or whitespace-separated ASCII spectrum.

    Parameters
    ----------
    path : Path
        The file.
    kind : {'ecsv', 'csv', 'ascii'}
        Text flavour (``ascii`` lets astropy guess header and delimiter).
    medium : {'vacuum', 'air'}, optional
        Overrides the medium declared in the file.
    """
    check_file(path)
    fmt = _ASCII_FORMATS[kind]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = Table.read(path, format=fmt)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "guess" in first.lower():
            first = "rows do not form consistent columns"
        raise InputError(f"cannot parse as {kind.upper()} table of columns "
                         f"({type(exc).__name__}: {first[:200]})", path) from None
    return spectrum_from_table(table, path, medium=medium, fmt=kind)


def read_fits_table_spectrum(path: Path, medium: str | None = None,
                             hdu: int | str | None = None) -> Spectrum:
    """Read a spectrum stored as columns of a FITS binary table.

    The first binary-table HDU with wavelength and flux columns is used
    (or ``hdu``). Columns may also be arrays in a single row.
    """
    with open_fits(path) as hdul:
        header = fits.Header(hdul[0].header)
        candidates = [hdu] if hdu is not None else [
            i for i, h in enumerate(hdul) if isinstance(h, fits.BinTableHDU | fits.TableHDU)]
        if not candidates:
            raise InputError("FITS file has no binary-table extension with spectrum columns",
                             path)
        chosen = None
        for i in candidates:
            try:
                h = hdul[i]
            except (KeyError, IndexError):
                raise InputError(f"FITS file has no HDU {i!r}", path) from None
            names = [n.lower() for n in (h.columns.names if h.columns is not None else [])]
            roles = _identify(names)
            if (roles[0] or roles[1]) and roles[2]:
                chosen = h
                break
        if chosen is None:
            h = hdul[candidates[0]]
            cols = ", ".join(h.columns.names) if h.columns is not None else "none"
            raise InputError(f"no wavelength/flux columns in FITS table HDU "
                             f"{candidates[0]} (columns: {cols})", path)
        native = _native_fits_columns(chosen)
        if native is not None:  # xmpspec's own layout: no astropy Table on the hot path
            meta = {k: h[k] for k in ("XMPMETA", "REDSHIFT", "REDSHERR", "MEDIUM")
                    for h in (header, chosen.header) if k in h}  # table HDU wins
            return _native_spectrum(*native, meta, path, medium, "fits-table")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = Table.read(chosen, format="fits")
        except Exception as exc:
            raise InputError(f"cannot read FITS table ({type(exc).__name__}: {exc})",
                             path) from None
        for key, val in chosen.header.items():
            if key not in header and key not in ("", "COMMENT", "HISTORY"):
                header[key] = val
    for key in ("XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT",
                "TFIELDS", "EXTEND", "SIMPLE"):
        header.remove(key, ignore_missing=True, remove_all=True)
    for key, val in header.items():
        if key and not key.startswith(("TTYPE", "TFORM", "TUNIT", "TDIM", "TNULL")) \
                and key not in table.meta and key not in ("COMMENT", "HISTORY"):
            table.meta[key] = val
    return spectrum_from_table(table, path, medium=medium, fmt="fits-table")


def _find(names_lower: list[str], wanted: tuple[str, ...]) -> str | None:
    for w in wanted:
        if w in names_lower:
            return w
    return None


def _identify(lower: list[str]):
    """Column roles from lower-case names: exact names first, then looser ones."""
    wave_key = _find(lower, WAVE_NAMES)
    logwave_key = None if wave_key else _find(lower, LOGWAVE_NAMES)
    flux_key = _find(lower, FLUX_NAMES)
    err_kind, err_key = None, None
    for kind, names in (("sigma", ERR_NAMES), ("ivar", IVAR_NAMES), ("var", VAR_NAMES)):
        k = _find(lower, names)
        if k:
            err_kind, err_key = kind, k
            break
    bad_key = _find(lower, BADMASK_NAMES)
    good_key = None if bad_key else _find(lower, GOODMASK_NAMES)
    # looser names (wave_obs, flux_corr, flux_err ...) when the exact ones are absent
    if not (wave_key or logwave_key):
        wave_key = _unique([c for c in lower if c.startswith(WAVE_PREFIXES)
                            and "rest" not in c and not c.startswith("log")])
    if not flux_key:
        flux_key = _unique([c for c in lower if c.startswith(("flux", "flam"))
                            and not _is_uncertainty(c) and "mask" not in c])
    if not err_key:
        for kind, test in (("ivar", lambda c: "ivar" in c or "invvar" in c),
                           ("var", lambda c: c.endswith("var") and "ivar" not in c),
                           ("sigma", lambda c: any(t in c for t in
                                                   ("err", "sig", "unc", "noise", "std")))):
            k = _unique([c for c in lower if test(c) and c not in (wave_key, flux_key)])
            if k:
                err_kind, err_key = kind, k
                break

    return wave_key, logwave_key, flux_key, err_kind, err_key, bad_key, good_key


def _unique(cands: list[str]) -> str | None:
    return cands[0] if len(cands) == 1 else None


def _is_uncertainty(name: str) -> bool:
    return any(t in name for t in ("err", "sig", "ivar", "var", "unc", "noise", "std"))


def _meta_get(meta: dict, *keys):
    low = {str(k).lower(): v for k, v in meta.items()}
    for k in keys:
        if k.lower() in low:
            v = low[k.lower()]
            if v is not None and not (isinstance(v, str) and not v.strip()):
                return v
    return None


def spectrum_from_table(table: Table, path: Path, medium: str | None = None,
                        fmt: str = "table") -> Spectrum:
    """Build a :class:`Spectrum` from a table with named or positional columns.

    Parameters
    ----------
    table : astropy.table.Table
        Columns as described in the module docstring; ``table.meta`` may hold
        units, medium, redshift and object metadata (xmpspec's own layout is
        restored exactly).
    path : Path
        Source file (for messages and metadata).
    medium : str, optional
        Overrides the medium declared in the table.
    fmt : str
        Format name recorded in ``meta['format']``.
    """
    if len(table) == 0:
        raise InputError("table has no rows", path)
    if str(table.meta.get(NATIVE_KEY, "")) == NATIVE_VALUE:
        return _from_native(table, path, medium, fmt)

    orig = list(table.colnames)
    lower = [c.lower().strip() for c in orig]
    by_lower = dict(zip(lower, orig, strict=True))

    # single row holding array columns (e.g. some FITS tables): unpack
    if len(table) == 1 and any(np.ndim(table[c][0]) == 1 and np.size(table[c][0]) > 1
                               for c in orig):
        t = Table()
        for c in orig:
            v = table[c][0]
            if np.ndim(v) == 1 and np.size(v) > 1:
                t[c] = np.asarray(v)
                if table[c].unit is not None:
                    t[c].unit = table[c].unit
        t.meta.update(table.meta)
        return spectrum_from_table(t, path, medium=medium, fmt=fmt)

    wave_key, logwave_key, flux_key, err_kind, err_key, bad_key, good_key = \
        _identify(lower)

    positional = not (wave_key or logwave_key or flux_key or err_key)
    if positional:
        numeric = [c for c in orig if table[c].dtype.kind in "fiub" and table[c].ndim == 1]
        if len(numeric) < 3:
            raise InputError(
                f"cannot identify spectrum columns: expected named columns (wave/wavelength/"
                f"lambda/loglam, flux, error/err/sigma/ivar[, mask]) or at least 3 numeric "
                f"columns (wave flux error [mask]); present: {', '.join(orig)}", path)
        wcol, fcol, ecol = (table[c] for c in numeric[:3])
        mcol = table[numeric[3]] if len(numeric) > 3 else None
        err_kind, mask_is_good = "sigma", False
        logwave = False
        colnames_used = numeric[:4]
    else:
        missing = []
        if not (wave_key or logwave_key):
            missing.append("wavelength (wave/wavelength/lambda/loglam)")
        if not flux_key:
            missing.append("flux (flux/flam)")
        if not err_key:
            missing.append("error (error/err/sigma/ivar/var)")
        if missing:
            raise InputError(f"missing column(s): {'; '.join(missing)}; present: "
                             f"{', '.join(orig)}", path)
        wcol = table[by_lower[wave_key or logwave_key]]
        fcol = table[by_lower[flux_key]]
        ecol = table[by_lower[err_key]]
        mkey = bad_key or good_key
        mcol = table[by_lower[mkey]] if mkey else None
        mask_is_good = good_key is not None
        logwave = logwave_key is not None
        colnames_used = [by_lower[k] for k in (wave_key or logwave_key, flux_key, err_key, mkey)
                         if k]

    meta_in = {str(k): v for k, v in table.meta.items()}
    for c in (wcol, fcol, ecol):
        if c.dtype.kind not in "fiu":
            raise InputError(f"column '{c.name}' is not numeric (dtype {c.dtype})", path)

    # wavelength
    wave = np.asarray(_filled(wcol), float)
    if logwave:
        wave = 10.0 ** wave
        wave_unit = u.AA
    else:
        wave_unit = to_wave_unit(wcol.unit if wcol.unit is not None else
                                 _meta_get(meta_in, "wave_unit", "wavelength_unit", "CUNIT1",
                                           "WAVEUNIT", "WAT_UNIT"), path)

    # flux unit
    flux_unit = fcol.unit if fcol.unit is not None else parse_unit(
        _meta_get(meta_in, "flux_unit", "BUNIT", "FLUXUNIT"), None, path, "flux unit")
    flux = np.asarray(_filled(fcol), float)
    if flux_unit is None:
        flux_unit = assumed_flux_unit(flux, path)
    err_vals = np.asarray(_filled(ecol), float)
    error, bad = error_from(err_kind, err_vals)
    err_unit = ecol.unit
    if err_unit is not None:
        if err_kind == "ivar":
            err_unit = err_unit ** -0.5
        elif err_kind == "var":
            err_unit = err_unit ** 0.5
        try:
            error = (error * err_unit).to_value(flux_unit)
        except u.UnitConversionError:
            raise InputError(f"error column '{ecol.name}' unit '{ecol.unit}' does not match "
                             f"flux unit '{flux_unit}'", path) from None

    mask = bad
    if mcol is not None:
        mv = np.asarray(_filled(mcol, 0))
        if mv.dtype.kind not in "biuf":
            raise InputError(f"mask column '{mcol.name}' is not boolean or integer", path)
        mv = mv.astype(float) != 0
        mask = mask | (~mv if mask_is_good else mv)
    for c in (fcol, ecol):  # empty cells in flux/error: bad pixels
        if hasattr(c, "mask"):
            mask = mask | np.ma.getmaskarray(c)
    if hasattr(wcol, "mask") and np.ma.getmaskarray(wcol).any():
        raise InputError(f"wavelength column '{wcol.name}' has missing values", path)

    wave, flux, error, mask = orient(wave, flux, error, mask, path=path)

    declared = None
    if not positional and (wave_key in AIR_WAVE_NAMES or "air" in (wave_key or "")):
        declared = "air"
    elif not positional and "vac" in (wave_key or ""):
        declared = "vacuum"
    declared = declared or medium_from_text(_meta_get(meta_in, "medium", "wave_medium",
                                                      "airorvac", "wavemed")) \
        or medium_from_header(_HeaderLike(meta_in))
    med = resolve_medium(medium, declared, path)

    meta = {"source_file": str(path), "format": fmt, "columns": list(colnames_used)}
    name = _meta_get(meta_in, "name", "object", "objname", "target", "obj_name")
    if name is not None:
        meta["name"] = str(name).strip()
    for key, cands in (("ra", ("ra", "ra_obj", "plug_ra", "ra_deg")),
                       ("dec", ("dec", "dec_obj", "plug_dec", "dec_deg")),
                       ("exptime", ("exptime", "exposure", "texp")),
                       ("airmass", ("airmass",))):
        v = float_or_none(_meta_get(meta_in, *cands))
        if v is not None:
            meta[key] = v
    inst = _meta_get(meta_in, "instrument", "instrume", "telescop")
    if inst is not None:
        meta["instrument"] = str(inst).strip()
    date = _meta_get(meta_in, "date_obs", "date-obs")
    if date is not None:
        meta["date_obs"] = str(date)
    z = float_or_none(_meta_get(meta_in, "redshift", "z"))
    zerr = float_or_none(_meta_get(meta_in, "redshift_err", "z_err", "zerr"))
    meta["fluxed"] = is_flux_density(flux_unit)

    return Spectrum(wavelength=wave * wave_unit, flux=flux * flux_unit,
                    error=error * flux_unit, mask=mask, redshift=z, redshift_err=zerr,
                    medium=med, meta=meta)


class _HeaderLike(dict):
    """Case-insensitive dict so header helpers work on table metadata."""

    def __init__(self, meta: dict):
        super().__init__({str(k).upper(): v for k, v in meta.items()})

    def __contains__(self, key) -> bool:
        return super().__contains__(str(key).upper())

    def __getitem__(self, key):
        return super().__getitem__(str(key).upper())

    def get(self, key, default=None):
        return super().get(str(key).upper(), default)


def _filled(col, fill=np.nan):
    """Column values with masked entries replaced by ``fill``."""
    if hasattr(col, "filled") and hasattr(col, "mask"):
        try:
            return col.filled(fill)
        except (TypeError, ValueError):
            return col.filled(0)
    return np.asarray(col)


@functools.lru_cache(maxsize=64)
def _fits_unit(text: str):
    """A ``TUNITn`` value parsed as astropy's FITS table reader does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return u.Unit(text, format="fits", parse_strict="silent")


_NATIVE_FORMS = {"wavelength": ("D", "E"), "flux": ("D", "E"), "error": ("D", "E"),
                 "mask": ("L",)}


def _native_fits_columns(hdu):
    """(wavelength, flux, error, mask) arrays with units of an xmpspec FITS spectrum HDU.

    None unless ``hdu`` is in xmpspec's own layout with plain columns (no
    scaling, nulls or dimensions), in which case the values are exactly what
    ``Table.read`` followed by :func:`_from_native` would give.
    """
    h = hdu.header
    if str(h.get(NATIVE_KEY, "")).strip() != NATIVE_VALUE or not isinstance(hdu,
                                                                           fits.BinTableHDU):
        return None
    cols = {c.name: c for c in hdu.columns}
    out = []
    for name, forms in _NATIVE_FORMS.items():
        c = cols.get(name)
        if c is None or str(c.format) not in forms or c.bscale is not None \
                or c.bzero is not None or c.null is not None or c.dim is not None:
            return None
        out.append((np.asarray(hdu.data[name]), _fits_unit(c.unit) if c.unit else None))
    return out


_FITS_CODES = {"L": "u1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_BLOCK = 2880
_STRING_VALUE = re.compile(r"\s*'((?:[^']|'')*)'\s*(?:/.*)?$")
_INT_VALUE = re.compile(r"[+-]?\d+$")
_FLOAT_VALUE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?$")


class _Cards:
    """Structural cards of one FITS header, parsed only as far as the fast reader needs.

    Fixed-format values (logical, integer, short string) are read directly;
    ``header(keys)`` gives astropy's :class:`~astropy.io.fits.Header` of some
    cards for anything else (long ``CONTINUE`` strings, floats, metadata).
    """

    def __init__(self, text: str):
        self.text = text
        self.raw: dict[str, str] = {}
        self.pos: dict[str, int] = {}
        for i in range(0, len(text), 80):
            card = text[i:i + 80]
            key = card[:8].rstrip()
            if key == "END":
                break
            if card[8:10] == "= " and key not in self.raw:
                self.raw[key] = card[10:]
                self.pos[key] = i

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def get(self, key: str, default=None):
        """Value of a logical, integer or string card (ValueError for anything else)."""
        text = self.raw.get(key)
        if text is None:
            return default
        m = _STRING_VALUE.match(text)
        if m:
            if m.group(1).endswith("&"):
                raise ValueError(f"{key}: long string")
            return m.group(1).replace("''", "'").rstrip()
        token = text.split("/", 1)[0].strip()
        if token in ("T", "F"):
            return token == "T"
        if _INT_VALUE.match(token):
            return int(token)
        raise ValueError(f"{key}: not a logical, integer or string value")

    def value(self, key: str):
        """Value of a logical, integer, float or (``CONTINUE``-d long) string card.

        Long strings follow astropy's reading of the convention (each piece
        right-stripped, ``''`` unescaped, a trailing ``&`` removed); anything
        unusual is a ValueError (the caller then asks astropy, :meth:`header`).
        """
        text = self.raw[key]
        if _STRING_VALUE.match(text) is None:
            token = text.split("/", 1)[0].strip()
            if _FLOAT_VALUE.match(token) and not _INT_VALUE.match(token):
                return float(token.replace("D", "E").replace("d", "e"))
            return self.get(key)
        pieces, i = [], self.pos[key]
        card = text
        while True:
            m = _STRING_VALUE.match(card)
            if m is None:
                raise ValueError(f"{key}: unusual CONTINUE card")
            piece = m.group(1).rstrip().replace("''", "'")
            more = self.text.startswith("CONTINUE", i + 80)
            if not pieces and not more:   # one card: a plain string ('&' is text)
                return m.group(1).replace("''", "'").rstrip()
            if piece.endswith("&"):
                piece = piece[:-1]
                pieces.append(piece)
                if not more:
                    break
                i += 80
                card = self.text[i + 8:i + 80]
                continue
            if more:
                raise ValueError(f"{key}: CONTINUE after a complete string")
            pieces.append(piece)
            break
        return "".join(pieces)

    def header(self, keys) -> fits.Header:
        """astropy's Header of the cards ``keys`` (with their ``CONTINUE`` cards)."""
        images = []
        for key in keys:
            i = self.pos[key]
            images.append(self.text[i:i + 80])
            i += 80
            while self.text.startswith("CONTINUE", i):
                images.append(self.text[i:i + 80])
                i += 80
        return fits.Header.fromstring("".join(images))


def _fits_hdus(raw: bytes) -> list | None:
    """(cards, data offset, data bytes) of every HDU of a FITS file held in ``raw``.

    None unless the file is cleanly structured: every header ends with an
    ``END`` card, every data block is complete and nothing follows the last
    HDU (anything else goes through astropy's reader and its checks).
    """
    hdus, pos, n = [], 0, len(raw)
    while pos < n:
        end = None
        for block in range(pos, n, _BLOCK):
            chunk = raw[block:block + _BLOCK]
            if len(chunk) < _BLOCK:
                return None
            for card in range(0, _BLOCK, 80):
                if chunk[card:card + 8] == b"END     ":
                    end = block + _BLOCK
                    break
            if end is not None:
                break
        if end is None:
            return None
        try:
            cards = _Cards(raw[pos:end].decode("ascii"))
            naxis = cards.get("NAXIS")
            size = 0
            if naxis:
                size = abs(cards.get("BITPIX")) // 8 * cards.get("GCOUNT", 1) * (
                    cards.get("PCOUNT", 0)
                    + int(np.prod([cards.get(f"NAXIS{i}") for i in range(1, naxis + 1)])))
        except Exception:  # noqa: BLE001 - unusual header: astropy's reader decides
            return None
        if end + size > n:
            return None
        hdus.append((cards, end, size))
        pos = end + -(-size // _BLOCK) * _BLOCK
    return hdus if pos == n and hdus else None


def read_native_fits(path: Path, medium: str | None = None) -> Spectrum | None:
    """Fast reader of xmpspec's own FITS spectra (:func:`write_spectrum`'s layout).

    The file is read once; the structural header cards (sizes, column
    formats and units) are read directly from the fixed-format card images,
    the metadata cards by astropy (``fits.Header.fromstring``), and the binary
    table's rows are viewed as a NumPy record array described by the
    ``TFORMn`` cards, skipping astropy's ``FITS_rec`` machinery. Returns None
    (and the caller uses the general readers, with their checks and messages)
    for anything else: not FITS, compressed, PypeIt/SDSS layouts, truncated or
    trailing bytes, another first binary table, scaled/null/multi-dimensional
    columns, unusual card values. The spectrum is the same, to the bit, as the
    general reader's (tests/test_io.py).

    Parameters
    ----------
    path : Path
        The file.
    medium : {'vacuum', 'air'}, optional
        Overrides the medium declared in the file.
    """
    with open(path, "rb") as fh:
        head = fh.read(_BLOCK)
        if not head.startswith(b"SIMPLE  =") or b"DMODCLS =" in head:
            return None  # not FITS, or a PypeIt file (possibly large): not read twice
        raw = head + fh.read()
    if len(raw) % _BLOCK:
        return None
    hdus = _fits_hdus(raw)
    if hdus is None:
        return None
    try:
        return _native_from_hdus(hdus, raw, path, medium)
    except (ValueError, TypeError):  # a card the fast path does not parse: general reader
        return None


def _native_from_hdus(hdus: list, raw: bytes, path: Path, medium: str | None):
    headers = [h for h, _, _ in hdus]
    if any("DMODCLS" in h for h in headers) or any(
            str(h.get("EXTNAME", "")).strip().upper() == "COADD" for h in headers[1:]):
        return None
    tables = [i for i, h in enumerate(headers)
              if str(h.get("XTENSION", "")).strip() in ("BINTABLE", "TABLE")]
    if not tables:
        return None
    header, offset, size = hdus[tables[0]]
    if str(header.get("XTENSION", "")).strip() != "BINTABLE" \
            or str(header.get(NATIVE_KEY, "")).strip() != NATIVE_VALUE \
            or header.get("PCOUNT", 0) or header.get("GCOUNT", 1) != 1:
        return None
    names, formats, units = [], [], {}
    for i in range(1, header.get("TFIELDS") + 1):
        name = str(header.get(f"TTYPE{i}", "")).strip()
        form = str(header.get(f"TFORM{i}", "")).strip()
        repeat, code = form[:-1] or "1", form[-1:]
        if not repeat.isdigit() or code not in _FITS_CODES and code != "A":
            return None
        if name in _NATIVE_FORMS:
            if code not in _NATIVE_FORMS[name] or repeat != "1" or any(
                    f"{k}{i}" in header for k in ("TSCAL", "TZERO", "TNULL", "TDIM")):
                return None
            units[name] = str(header.get(f"TUNIT{i}", "")).strip()
        names.append(name or f"col{i}")
        formats.append(f"S{repeat}" if code == "A" else
                       (f"({repeat},){_FITS_CODES[code]}" if repeat != "1" else _FITS_CODES[code]))
    if set(_NATIVE_FORMS) - set(names) or len(set(names)) != len(names):
        return None
    dtype = np.dtype({"names": names, "formats": formats})
    nrows = header.get("NAXIS2")
    if dtype.itemsize != header.get("NAXIS1") or dtype.itemsize * nrows != size:
        return None
    rows = np.frombuffer(raw, dtype=dtype, count=nrows, offset=offset)
    cols = [(rows[c], _fits_unit(units[c]) if units[c] else None)
            for c in ("wavelength", "flux", "error")]
    cols.append((rows["mask"] == ord("T"), None))
    meta = {}
    for cards in (headers[0], header):  # the table HDU wins over the primary
        keys = [k for k in ("XMPMETA", "REDSHIFT", "REDSHERR", "MEDIUM") if k in cards]
        if keys:
            try:
                meta.update({k: cards.value(k) for k in keys})
            except ValueError:   # an unusual card: astropy reads these
                h = cards.header(keys)
                meta.update({k: h[k] for k in keys})
    return _native_spectrum(*cols, meta, path, medium, "fits-table")


def _native_spectrum(wave, flux, error, mask, m: dict, path: Path, medium: str | None,
                     fmt: str) -> Spectrum:
    """Spectrum of xmpspec's own layout from (values, unit) columns and its table metadata."""
    raw = m.get("spectrum_meta", m.get("XMPMETA", "{}"))
    if isinstance(raw, str):
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"corrupt xmpspec metadata ({exc})", path) from None
    else:
        meta = dict(raw)
    meta = dict(meta)
    # bookkeeping keys describe the file just read; the original source is kept
    origin = meta.get("origin_file") or meta.get("source_file")
    if origin and str(origin) != str(path):
        meta["origin_file"] = str(origin)
        if meta.get("format") and "origin_format" not in meta:
            meta["origin_format"] = meta["format"]
    meta["source_file"] = str(path)
    meta["format"] = fmt
    z = m.get("REDSHIFT")
    zerr = m.get("REDSHERR")
    wunit = wave[1] or u.AA
    funit = flux[1] or FLUX_UNIT
    eunit = error[1] or funit
    med = resolve_medium(medium, str(m.get("MEDIUM", "vacuum")), path)
    return Spectrum(
        wavelength=np.asarray(wave[0], float) * wunit,
        flux=np.asarray(_filled(flux[0]), float) * funit,
        error=np.asarray(_filled(error[0]), float) * eunit,
        mask=np.asarray(_filled(mask[0], True), bool),
        redshift=None if z is None or (isinstance(z, float) and math.isnan(z)) else float(z),
        redshift_err=None if zerr is None or (isinstance(zerr, float) and math.isnan(zerr))
        else float(zerr),
        medium=med, meta=meta)


def _from_native(table: Table, path: Path, medium: str | None, fmt: str) -> Spectrum:
    """Restore a spectrum written by :func:`write_spectrum`."""
    for c in ("wavelength", "flux", "error", "mask"):
        if c not in table.colnames:
            raise InputError(f"xmpspec spectrum file lacks its '{c}' column", path)
    cols = [(table[c], table[c].unit) for c in ("wavelength", "flux", "error", "mask")]
    return _native_spectrum(*cols, table.meta, path, medium, fmt)


# ---------------------------------------------------------------------- writing
def _native_table(spec: Spectrum, for_fits: bool) -> Table:
    t = Table()
    t["wavelength"] = spec.wavelength.value
    t["wavelength"].unit = spec.wavelength.unit
    t["flux"] = spec.flux.value
    t["flux"].unit = spec.flux.unit
    t["error"] = spec.error.to_value(spec.flux.unit)
    t["error"].unit = spec.flux.unit
    t["mask"] = np.asarray(spec.mask, bool)
    t["wavelength"].description = f"pixel-centre wavelength ({spec.medium})"
    t["mask"].description = "True = bad pixel"
    meta = coerce_meta(dict(spec.meta))
    try:
        text = json.dumps(meta, allow_nan=True)
    except (TypeError, ValueError) as exc:  # unusual objects: written as their text
        log.warning("%s: metadata written as text where not JSON-serialisable (%s)",
                    spec.source, exc)
        text = json.dumps(meta, allow_nan=True, default=str)
    t.meta[NATIVE_KEY] = NATIVE_VALUE
    t.meta["XMPFVER"] = NATIVE_VERSION
    t.meta["MEDIUM"] = spec.medium
    if spec.redshift is not None:
        t.meta["REDSHIFT"] = float(spec.redshift)
    if spec.redshift_err is not None:
        t.meta["REDSHERR"] = float(spec.redshift_err)
    if for_fits:
        t.meta["XMPMETA"] = text
    else:
        t.meta["spectrum_meta"] = json.loads(text)
    return t


def write_spectrum(spec: Spectrum, path: str | Path, overwrite: bool = True,
                   provenance: dict | None = None) -> Path:
    """Write a spectrum as ECSV or FITS (by suffix), reading back exactly.

    Parameters
    ----------
    spec : Spectrum
        The spectrum (wavelength, flux, error, mask, redshift, medium, metadata).
    path : path-like
        Output file; ``.ecsv`` or ``.fits``/``.fit``/``.fits.gz``.
    overwrite : bool
        Replace an existing file (default true).
    provenance : dict, optional
        Provenance record (default: :func:`xmpspec.provenance.provenance_record`
        naming the spectrum's source file).

    Returns
    -------
    pathlib.Path
        The file written (atomically, through :func:`xmpspec.tableio.write_table`).

    Raises
    ------
    InputError
        Unknown suffix, existing file with ``overwrite=False``, or metadata
        that cannot be serialised to JSON.
    """
    from ..provenance import provenance_record
    from ._write import write_table

    path = Path(path)
    name = path.name.lower()
    if name.endswith(".ecsv"):
        for_fits = False
    elif name.endswith((".fits", ".fit", ".fits.gz")):
        for_fits = True
    else:
        raise InputError("spectrum files are written as .ecsv or .fits", path)
    if provenance is None:
        src = spec.meta.get("source_file")
        provenance = provenance_record(inputs=[src] if src else [], step="write_spectrum")
    table = _native_table(spec, for_fits)
    write_table(table, path, provenance=provenance, overwrite=overwrite)
    return path
