"""The one reader of true/false values in table columns.

Flags such as ``n2_upper_limit``, ``hii_region`` or ``is_xmp`` arrive as real
booleans (ECSV, FITS), as 0/1 numbers (FITS, CSV) or as text (CSV, ASCII,
hand-made tables). Every command reads them through :func:`bool_array`, so
the same cell means the same thing everywhere:

* true: ``True``, ``1`` (any non-zero finite number), and the text
  ``true``, ``t``, ``yes``, ``y``, ``1`` and ``<`` (the upper-limit marker of
  published tables), in any case;
* false: ``False``, ``0``, NaN, and the text ``false``, ``f``, ``no``, ``n``,
  ``0``, empty, ``--``, ``nan``, ``none``;
* masked (missing) cells are false;
* anything else raises :class:`~xmpspec.errors.InputError` naming the file,
  the column and the (1-based) row.

Core layer: imports only numpy and :mod:`xmpspec.errors`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from .errors import location as _where

__all__ = ["TRUE_TEXT", "FALSE_TEXT", "parse_bool", "bool_array", "column_bool"]

#: Text read as true (compared lower-case, stripped).
TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1", "<"})
#: Text read as false (compared lower-case, stripped).
FALSE_TEXT = frozenset({"false", "f", "no", "n", "0", "", "--", "nan", "none"})


def parse_bool(value, source: str | Path | None = None, *, row: int | None = None,
               column: str | None = None) -> bool:
    """One value as True/False (rules in the module docstring).

    Raises
    ------
    InputError
        The value is not one of the accepted spellings.
    """
    if value is None or np.ma.is_masked(value):
        return False
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return value != 0
    if isinstance(value, float | np.floating):
        return bool(np.isfinite(value) and value != 0)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    s = str(value).strip().lower()
    if s in TRUE_TEXT:
        return True
    if s in FALSE_TEXT:
        return False
    try:
        f = float(s)  # "1.0" / "0.0" from CSV writers
    except ValueError:
        raise InputError(f"{_where(row, column)}cannot read '{value}' as true/false "
                         "(true/false, yes/no, 1/0)", source) from None
    return bool(np.isfinite(f) and f != 0)


def bool_array(values, source: str | Path | None = None, *,
               column: str | None = None) -> np.ndarray:
    """A column of flags as a plain boolean array (masked cells are False).

    Parameters
    ----------
    values : array-like or astropy Column
        Booleans, numbers or text.
    source : str or path, optional
        File named in errors.
    column : str, optional
        Column named in errors (default: the column's own name).

    Returns
    -------
    numpy.ndarray of bool

    Raises
    ------
    InputError
        A cell is not one of the accepted spellings (names file, column and row).
    """
    if column is None:
        column = getattr(values, "name", None)
    arr = np.ma.asarray(values)
    mask = np.ma.getmaskarray(arr)
    data = np.ma.getdata(arr)
    if data.dtype.kind == "b":
        out = data.astype(bool)
    elif data.dtype.kind in "iu":
        out = data != 0
    elif data.dtype.kind == "f":
        out = np.isfinite(data) & (data != 0)
    else:
        out = np.zeros(len(data), bool)
        for i, v in enumerate(data):
            if not mask[i]:
                out[i] = parse_bool(v, source, row=i + 1, column=column)
    return np.asarray(out & ~mask, bool)


def column_bool(table, name: str, source: str | Path | None = None) -> np.ndarray:
    """Column ``name`` of ``table`` as booleans; all False when the column is absent.

    See :func:`bool_array` for the accepted values.
    """
    if name not in table.colnames:
        return np.zeros(len(table), bool)
    return bool_array(table[name], source, column=name)
