"""Column reading for the comparison: accepted column spellings, flags, floats, names, coordinates.

:data:`COLUMN_ALIASES` lists the accepted spellings of observed and catalogue
columns; :func:`normalise_catalogue` renames a catalogue's columns to the
canonical ones. Flags and coordinates are read by the one reader of the
package (:mod:`xmpspec.boolparse`, :mod:`xmpspec.coords`).
"""

from __future__ import annotations

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..errors import InputError

#: accepted spellings of catalogue / observed columns (lower-cased), first is canonical
COLUMN_ALIASES = {
    "name": ("name", "object", "target", "id", "objname"),
    "ra": ("ra", "raj2000", "ra_deg", "ra_j2000", "_raj2000"),
    "dec": ("dec", "dej2000", "decj2000", "dec_deg", "dec_j2000", "_dej2000", "de"),
    "n2_cnn": ("n2_cnn", "n2_pred", "n2_predicted"),
    "n2_cnn_err": ("n2_cnn_err", "e_n2_cnn", "n2_pred_err"),
    "p_mp": ("p_mp",),
    "p_xmp": ("p_xmp",),
}

def as_bool(column, source=None) -> np.ndarray:
    """Flags written as bool, 0/1 or text: :func:`xmpspec.boolparse.bool_array`.

    Masked or empty entries are False.
    """
    from ..boolparse import bool_array
    return bool_array(column, source)


def _float_column(table: Table, name: str, source=None) -> np.ma.MaskedArray:
    """A column as a masked float array (non-finite and empty values masked).

    Raises :class:`~xmpspec.physics._columns.ColumnValueError` (an InputError)
    naming ``source``, the column and the row of a cell that is not a number
    (e.g. ``n2_cnn = abc``), or of a negative value in an error column
    (:func:`~xmpspec.physics._columns.check_error_values`).
    """
    from ..physics._columns import ColumnValueError, check_error_values, is_error_column

    col = table[name]
    unit = getattr(col, "unit", None)
    if hasattr(col, "to_value") and unit is not None:
        col = col.value
    try:
        out = np.ma.masked_invalid(np.ma.asarray(col, dtype=float))
    except (TypeError, ValueError):
        pass
    else:
        return check_error_values(out, name, source) if is_error_column(name) else out
    mask = np.ma.getmaskarray(col)
    out = np.full(len(col), np.nan)
    for i, v in enumerate(np.ma.getdata(col)):
        text = v.decode() if isinstance(v, bytes) else str(v)
        if mask[i] or text.strip().lower() in ("", "--", "nan", "none"):
            continue
        try:
            out[i] = float(text)
        except ValueError:
            raise ColumnValueError(f"column '{name}' row {i + 1}: '{text.strip()}' is not a "
                                   "number", source) from None
    out = np.ma.masked_invalid(out)
    return check_error_values(out, name, source) if is_error_column(name) else out


def _norm_name(name) -> str:
    return "".join(str(name).split()).upper()


def _find_column(table: Table, key: str) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    for alias in COLUMN_ALIASES.get(key, (key,)):
        if alias in lower:
            return lower[alias]
    return None


def normalise_catalogue(catalogue: Table, source=None) -> Table:
    """Copy of a selection catalogue with canonical column names.

    Accepts the spellings of :data:`COLUMN_ALIASES` in any case (``RA``,
    ``RAJ2000``, ``N2_CNN`` ...). Requires ``name`` or coordinates, and ``n2_cnn``.

    Raises
    ------
    InputError
        ``n2_cnn`` is absent, or neither names nor coordinates are present.
    """
    cat = catalogue.copy(copy_data=False)
    for key in COLUMN_ALIASES:
        col = _find_column(cat, key)
        if col is not None and col != key:
            if key in cat.colnames:
                continue
            cat.rename_column(col, key)
    if "n2_cnn" not in cat.colnames:
        raise InputError("selection catalogue has no 'n2_cnn' column (predicted N2); "
                         f"present: {', '.join(cat.colnames)}", source)
    if "name" not in cat.colnames and not ("ra" in cat.colnames and "dec" in cat.colnames):
        raise InputError("selection catalogue has neither a 'name' column nor 'ra'/'dec'",
                         source)
    for key in ("n2_cnn", "n2_cnn_err", "p_mp", "p_xmp"):  # numbers, or an error naming the row
        if key in cat.colnames:
            _float_column(cat, key, source)
    return cat


def parse_coordinates(ra, dec, source=None) -> tuple[SkyCoord | None, np.ndarray]:
    """Sky positions from RA/Dec columns: :func:`xmpspec.coords.parse_coordinates`.

    Degrees (or the column's angular unit) or sexagesimal text (RA in hours);
    returns ``(SkyCoord or None, valid rows)``; InputError names file, row and column.
    """
    from ..coords import parse_coordinates as _parse
    return _parse(ra, dec, source)


def _duplicates(names) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for i, nm in enumerate(names):
        key = _norm_name(nm)
        if key in ("", "--"):
            continue
        seen.setdefault(key, []).append(i)
    return {k: v for k, v in seen.items() if len(v) > 1}


# ----------------------------------------------------------------------------- matching
