"""The one reader of sky coordinates (RA/Dec) in xmpspec.

Every table and header position goes through this module: target tables,
selection catalogues, spectrum headers, derived tables. The rules:

* numbers (or text holding a plain number) are **degrees**, unless the column
  carries an angular unit (``rad``, ``hourangle``, ``arcsec`` ...), which is used;
* astropy Quantities are converted from their unit;
* sexagesimal text is read with astropy's :class:`~astropy.coordinates.Angle`:
  ``"02:24:16.71"``, ``"02 24 16.71"``, ``"2h24m16.71s"``, ``"-00 59 14.3"``,
  ``"-10d30m00s"``, ``"12°30′00″"``. Without unit letters RA is in **hours** and
  Dec in **degrees**; unit letters (``h``/``d``/``°``) win;
* empty, masked, ``--``, ``nan``, ``None`` entries are "no position" (not an error);
* Dec outside [-90, 90] deg, or text that cannot be read, raises
  :class:`~xmpspec.errors.InputError` naming the file, the row (1-based data row)
  and the column. RA is wrapped into [0, 360) deg (-10 deg is 350 deg).

Core layer: imports only numpy, astropy and :mod:`xmpspec.errors`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord

from .errors import InputError
from .errors import location as _where

__all__ = [
    "BLANK_VALUES",
    "parse_angle",
    "parse_position",
    "parse_angles",
    "parse_coordinates",
    "separation_arcsec",
]

#: Text entries read as "no position".
BLANK_VALUES = frozenset({"", "--", "...", "nan", "none", "null", "n/a"})

_SEXA_SPLIT = re.compile(r"[\s:]+")
_PLAIN_SEXA = re.compile(r"^[+-]?\d+(\.\d*)?([\s:]+\d+(\.\d*)?){1,2}$")
_WHAT = {"ra": "RA (degrees, or sexagesimal hours such as 02:24:16.71)",
         "dec": "Dec (degrees, or sexagesimal degrees such as -00:59:14.3)"}


def _is_blank(value) -> bool:
    if value is None or np.ma.is_masked(value):
        return True
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value.strip().lower() in BLANK_VALUES
    if isinstance(value, float | np.floating):
        return not np.isfinite(value)
    return False


def _fast_sexagesimal(text: str) -> float:
    """``"dd mm ss.s"`` / ``"dd:mm:ss.s"`` to decimal units (ValueError otherwise)."""
    s = text.strip()
    if not _PLAIN_SEXA.match(s):
        raise ValueError(text)
    parts = _SEXA_SPLIT.split(s)
    neg = parts[0].startswith("-")
    vals = [abs(float(parts[0]))] + [float(p) for p in parts[1:]]
    if any(v >= 60 for v in vals[1:]):
        raise ValueError(text)
    val = vals[0] + vals[1] / 60.0 + (vals[2] / 3600.0 if len(vals) == 3 else 0.0)
    return -val if neg else val


def _text_to_deg(text: str, kind: str) -> float:
    """One text value in degrees (ValueError if it cannot be read)."""
    s = text.strip()
    try:
        return float(s)  # decimal degrees written as text
    except ValueError:
        pass
    try:
        return _fast_sexagesimal(s) * (15.0 if kind == "ra" else 1.0)
    except ValueError:
        pass
    unit = u.hourangle if kind == "ra" else u.deg
    try:
        return float(Angle(s, unit=unit).to_value(u.deg))
    except Exception:  # astropy raises ValueError/UnitsError/IllegalSecondError...
        raise ValueError(text) from None


def _check(value_deg: float, kind: str, raw, source, row, column) -> float:
    if not np.isfinite(value_deg):
        raise InputError(f"{_where(row, column)}cannot read {kind} value {raw!r} as an "
                         f"angle", source)
    if kind == "dec":
        if not -90.0 <= value_deg <= 90.0:
            raise InputError(f"{_where(row, column)}declination out of range: "
                             f"dec={value_deg:g} deg (must be within [-90, 90])", source)
        return float(value_deg)
    return float(np.mod(value_deg, 360.0))


def parse_angle(value, kind: str, source: str | Path | None = None, *, row: int | None = None,
                column: str | None = None, unit=None) -> float | None:
    """One RA or Dec value in degrees.

    Parameters
    ----------
    value : float, int, str, bytes or Quantity
        Degrees (numbers and plain numeric text), a Quantity with an angular unit,
        or sexagesimal text (RA in hours, Dec in degrees unless unit letters say otherwise).
    kind : {'ra', 'dec'}
        Which coordinate (decides the sexagesimal unit and the range check).
    source : str or path, optional
        File named in errors.
    row : int, optional
        1-based data row named in errors.
    column : str, optional
        Column (or header keyword) named in errors.
    unit : astropy unit, optional
        Unit of a plain number (a column's unit); degrees when None.

    Returns
    -------
    float or None
        Degrees (RA wrapped to [0, 360)), or None for an empty/masked/NaN entry.

    Raises
    ------
    InputError
        Unreadable text, a non-angular unit, or a declination outside [-90, 90].
    """
    if kind not in ("ra", "dec"):
        raise ValueError(f"kind must be 'ra' or 'dec', not {kind!r}")
    if _is_blank(value):
        return None
    if isinstance(value, Angle | u.Quantity):
        try:
            deg = float(u.Quantity(value).to_value(u.deg))
        except u.UnitConversionError:
            raise InputError(f"{_where(row, column)}{kind} has unit '{value.unit}', not an "
                             "angle", source) from None
        return _check(deg, kind, value, source, row, column)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            deg = _text_to_deg(value, kind)
        except ValueError:
            raise InputError(f"{_where(row, column)}cannot read {kind} value '{value.strip()}'"
                             f" as {_WHAT[kind]}", source) from None
        if unit is not None and _is_number(value):
            deg = _convert(deg, unit, kind, source, row, column)
        return _check(deg, kind, value, source, row, column)
    try:
        deg = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{_where(row, column)}cannot read {kind} value {value!r} as "
                         f"{_WHAT[kind]}", source) from None
    if unit is not None:
        deg = _convert(deg, unit, kind, source, row, column)
    return _check(deg, kind, value, source, row, column)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _angular_unit(unit, kind, source, row, column):
    """The unit as an astropy unit if it is angular, None if dimensionless/absent."""
    if unit is None or str(unit) in ("", "None"):
        return None
    try:
        un = u.Unit(unit)
    except ValueError:
        raise InputError(f"{_where(row, column)}{kind} has an unknown unit '{unit}'",
                         source) from None
    if un == u.dimensionless_unscaled:
        return None
    if un.physical_type != "angle":
        raise InputError(f"{_where(row, column)}{kind} has unit '{unit}', not an angle",
                         source)
    return un


def _convert(deg, unit, kind, source, row, column):
    un = _angular_unit(unit, kind, source, row, column)
    return deg if un is None else float((deg * un).to_value(u.deg))


def parse_position(ra, dec, source: str | Path | None = None, *, row: int | None = None,
                   ra_column: str | None = None,
                   dec_column: str | None = None) -> tuple[float, float] | None:
    """One position (RA, Dec) in degrees, or None when either is empty.

    See :func:`parse_angle` for the accepted forms.

    Raises
    ------
    InputError
        Either value cannot be read (message names source, row and column).
    """
    a = parse_angle(ra, "ra", source, row=row, column=ra_column)
    d = parse_angle(dec, "dec", source, row=row, column=dec_column)
    if a is None or d is None:
        return None
    return a, d


def parse_angles(values, kind: str, source: str | Path | None = None, *,
                 column: str | None = None, first_row: int = 1) -> np.ndarray:
    """A column of RA or Dec values in degrees (NaN where empty).

    Parameters
    ----------
    values : array-like, astropy Column or Quantity
        Numbers (degrees, or the column's angular unit) or text.
    kind : {'ra', 'dec'}
        Which coordinate.
    source : str or path, optional
        File named in errors.
    column : str, optional
        Column named in errors (default: the column's own name, else ``kind``).
    first_row : int
        Row number of the first value in messages (1 = first data row).

    Returns
    -------
    numpy.ndarray
        Degrees; RA wrapped to [0, 360); NaN for empty/masked entries.

    Raises
    ------
    InputError
        The first value that cannot be read, or a Dec outside [-90, 90].
    """
    if column is None:
        column = getattr(values, "name", None) or kind
    if isinstance(values, u.Quantity) and not hasattr(values, "mask"):
        unit = values.unit
        values = values.value
    else:
        unit = getattr(values, "unit", None)
    arr = np.ma.asarray(values)
    mask = np.ma.getmaskarray(arr)
    data = np.ma.getdata(arr)
    out = np.full(len(data), np.nan)
    if data.dtype.kind in "iuf":  # numeric column: vectorised
        un = _angular_unit(unit, kind, source, None, column)
        vals = data.astype(float)
        if un is not None:
            vals = (vals * un).to_value(u.deg)
        ok = ~mask & np.isfinite(vals)
        out[ok] = vals[ok]
    else:
        for i, v in enumerate(data):
            if mask[i]:
                continue
            deg = parse_angle(v, kind, source, row=i + first_row, column=column, unit=unit)
            if deg is not None:
                out[i] = deg
        return out
    if kind == "dec":
        bad = np.isfinite(out) & ((out < -90) | (out > 90))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{_where(i + first_row, column)}declination out of range: "
                             f"dec={out[i]:g} deg (must be within [-90, 90])", source)
    else:
        out = np.where(np.isfinite(out), np.mod(out, 360.0), np.nan)
    return out


def parse_coordinates(ra, dec, source: str | Path | None = None, *,
                      ra_column: str | None = None, dec_column: str | None = None,
                      ) -> tuple[SkyCoord | None, np.ndarray]:
    """Sky positions of a whole table from its RA and Dec columns.

    Parameters
    ----------
    ra, dec : array-like or astropy Column
        The coordinate columns (any form accepted by :func:`parse_angle`).
    source : str or path, optional
        File named in errors.
    ra_column, dec_column : str, optional
        Column names for messages (default: the columns' own names).

    Returns
    -------
    coords : SkyCoord or None
        ICRS positions, one per row (rows without a position hold (0, 0));
        None when no row has a position.
    valid : numpy.ndarray of bool
        Rows with a usable position.

    Raises
    ------
    InputError
        A value cannot be read as an angle (names file, row and column), or a
        declination outside [-90, 90].
    """
    ra_deg = parse_angles(ra, "ra", source, column=ra_column)
    dec_deg = parse_angles(dec, "dec", source, column=dec_column)
    if len(ra_deg) != len(dec_deg):
        raise InputError(f"RA and Dec columns differ in length ({len(ra_deg)} and "
                         f"{len(dec_deg)})", source)
    valid = np.isfinite(ra_deg) & np.isfinite(dec_deg)
    if not valid.any():
        return None, valid
    return (SkyCoord(np.where(valid, ra_deg, 0.0) * u.deg, np.where(valid, dec_deg, 0.0) * u.deg,
                     frame="icrs"), valid)


def separation_arcsec(ra_deg: float, dec_deg: float, ra2: float | Sequence[float] | np.ndarray,
                      dec2: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
    """Angular separation(s) in arcsec from one position to one or more (degrees, ICRS)."""
    a = SkyCoord(float(ra_deg) * u.deg, float(dec_deg) * u.deg)
    b = SkyCoord(np.asarray(ra2, float) * u.deg, np.asarray(dec2, float) * u.deg)
    sep = a.separation(b).arcsec
    return float(sep) if np.ndim(sep) == 0 else np.asarray(sep)
