"""Reading measured quantities (value, error, state) from per-object tables.

A measured quantity in xmpspec has a value, a 1-sigma error and a state
(``detected``, ``upper_limit``, ``lower_limit``, ``not_covered``/``missing``,
``failed``). Input tables encode the state in several ways (``n2_state``,
``n2_upper_limit``, masked cells); the helpers here turn them into plain
float arrays (NaN = no number) plus string state arrays, which the physics
functions use internally. NaN never leaves the physics package: the output
table masks such cells and explains them in a flag column.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..io._common import ColumnValueError, check_error_values, is_error_column
from ..spectrum import LINE_FLUX_UNIT

__all__ = ["DETECTED", "UPPER", "LOWER", "MISSING", "ColumnValueError", "check_error_values",
           "column_float", "column_bool", "column_state", "flux_column", "is_error_column",
           "Measured", "read_measured", "add_flag"]

DETECTED = "detected"
UPPER = "upper_limit"
LOWER = "lower_limit"
MISSING = "missing"


def column_float(table: Table, name: str, unit: u.UnitBase | None = None,
                 source: str | None = None) -> np.ndarray:
    """A column as a float array (NaN where absent or masked).

    Parameters
    ----------
    table : Table
        Input table.
    name : str
        Column name; an absent column gives an all-NaN array.
    unit : Unit, optional
        Convert to this unit when the column has a unit (a column without a
        unit is taken to be in ``unit`` already).
    source : str, optional
        File name for error messages.

    Raises
    ------
    ColumnValueError
        Values that are not numbers, a unit not convertible to ``unit``, or a
        negative value in an error column (:func:`check_error_values`).
    """
    n = len(table)
    if name not in table.colnames:
        return np.full(n, np.nan)
    col = table[name]
    data = col.value if hasattr(col, "value") and not isinstance(col, np.ma.MaskedArray) else col
    try:
        arr = np.ma.asarray(data).astype(float)
    except (TypeError, ValueError):
        raise ColumnValueError(f"column '{name}' is not numeric", source) from None
    out = np.ma.filled(arr, np.nan).astype(float)
    col_unit = getattr(col, "unit", None)
    if (unit is not None and col_unit is not None and str(col_unit) not in ("", "None")
            and u.Unit(col_unit) != u.dimensionless_unscaled):  # unitless: taken as given
        try:
            out = (out * u.Unit(col_unit)).to_value(unit)
        except u.UnitConversionError:
            raise ColumnValueError(f"column '{name}' has unit '{col_unit}', not convertible "
                                   f"to '{unit}'", source) from None
    if is_error_column(name):
        check_error_values(out, name, source)
    return out


def column_bool(table: Table, name: str, source: str | None = None) -> np.ndarray:
    """A boolean column; False where absent or masked (:func:`xmpspec.boolparse.column_bool`)."""
    from ..boolparse import column_bool as _column_bool
    return _column_bool(table, name, source)


def column_state(table: Table, name: str) -> np.ndarray | None:
    """A state column as lower-case strings (None if the column is absent)."""
    if name not in table.colnames:
        return None
    col = table[name]
    mask = np.ma.getmaskarray(col)
    vals = np.array([str(v).strip().lower() for v in np.ma.getdata(col)], dtype=object)
    vals[mask] = MISSING
    vals[vals == "not_covered"] = MISSING
    vals[vals == ""] = MISSING
    return vals.astype(str)


def flux_column(table: Table, name: str, source: str | None = None) -> np.ndarray:
    """A line-flux column in units of :data:`xmpspec.LINE_FLUX_UNIT` (or as given if unitless)."""
    return column_float(table, name, LINE_FLUX_UNIT, source)


class Measured:
    """Value, 1-sigma error and state of one quantity for every row.

    Parameters
    ----------
    value, err : ndarray
        Float arrays (NaN where no number). For limits ``value`` is the limit.
    state : ndarray of str
        ``detected``, ``upper_limit``, ``lower_limit`` or ``missing``.
    flag : ndarray of str, optional
        Why a value is missing or special ('' when fine).
    """

    def __init__(self, value, err, state, flag=None):
        self.value = np.asarray(value, float)
        self.err = np.asarray(err, float)
        self.state = np.asarray(state).astype("U16")
        n = self.value.shape
        self.flag = np.full(n, "", dtype=object) if flag is None else np.asarray(flag, object)

    def __len__(self) -> int:
        return len(self.value)

    @property
    def detected(self) -> np.ndarray:
        return self.state == DETECTED

    @property
    def usable(self) -> np.ndarray:
        """Rows with a number (a detection or a limit)."""
        return np.isin(self.state, (DETECTED, UPPER, LOWER)) & np.isfinite(self.value)


def add_flag(flags: np.ndarray, where: np.ndarray, text: str) -> None:
    """Append ``text`` to ``flags[where]`` ('; '-separated), in place."""
    for k in np.flatnonzero(where):
        flags[k] = text if not flags[k] else f"{flags[k]}; {text}"


def read_measured(table: Table, name: str, source: str | None = None) -> Measured:
    """Read ``<name>``, ``<name>_err`` and its state from a per-object table.

    The state comes from ``<name>_state`` if present (``detected``,
    ``upper_limit``, ``not_covered``, ``failed``), else from the boolean
    ``<name>_upper_limit`` column, else rows with a finite value are
    ``detected``. Rows without a finite value are ``missing``.
    """
    value = column_float(table, name, source=source)
    err = column_float(table, name + "_err", source=source)
    n = len(table)
    state = column_state(table, name + "_state")
    if state is None:
        state = np.full(n, DETECTED, dtype="U16")
        state[column_bool(table, name + "_upper_limit", source)] = UPPER
    else:
        state = state.astype("U16")
        ul = column_bool(table, name + "_upper_limit", source)
        state[ul & (state == DETECTED)] = UPPER
    known = np.isin(state, (DETECTED, UPPER, LOWER))
    flag = np.full(n, "", dtype=object)
    for k in np.flatnonzero(~known & (state != MISSING)):
        flag[k] = f"{name} {state[k]}"
    state = np.where(known, state, MISSING).astype("U16")
    nofinite = ~np.isfinite(value)
    for k in np.flatnonzero(nofinite & (state != MISSING)):
        flag[k] = f"{name} has no value"
    state[nofinite] = MISSING
    for k in np.flatnonzero((state == MISSING) & (flag == "")):
        flag[k] = f"missing {name}"
    return Measured(value, err, state, flag)
