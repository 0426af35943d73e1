"""Tables of measurements: :func:`lines_table` (one row per line) and
:func:`objects_table` (one row per object), with units and masked columns.
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, QTable

from ..errors import InputError
from .results import Measurement

# --------------------------------------------------------------------------- tables
_LINE_COLS = [
    ("object", str, None), ("line", str, None), ("label", str, None), ("group", str, None),
    ("rest_wave", float, u.AA), ("obs_wave", float, u.AA), ("obs_wave_err", float, u.AA),
    ("flux", float, "L"), ("flux_err", float, "L"), ("flux_limit", float, "L"),
    ("method", str, None), ("snr", float, None), ("state", str, None),
    ("gauss_flux", float, "L"), ("gauss_flux_err", float, "L"),
    ("ew", float, u.AA), ("ew_err", float, u.AA), ("fwhm", float, u.km / u.s),
    ("fwhm_intrinsic", float, u.km / u.s), ("kinematics", str, None), ("note", str, None),
]


def _column(name, values, dtype, unit):
    # numpy arrays, not lists: MaskedColumn deep-copies a list mask and numpy.ma
    # inspects a list of strings element by element (most of a chunk's table time)
    # (math.isfinite: numpy's ufunc on one Python float costs ~1 us, most of the table time)
    flags = [v is None or (isinstance(v, float) and not math.isfinite(v)) for v in values]
    mask = np.array(flags, dtype=bool)
    if dtype is str:
        data = np.array(["" if v is None else str(v) for v in values], dtype=str)
        return MaskedColumn(data, name=name, mask=mask if mask.any() else None, dtype=str)
    if dtype is bool:
        return MaskedColumn(np.array([bool(v) if v is not None else False for v in values],
                                     dtype=bool), name=name, mask=mask, dtype=bool)
    data = np.array([np.nan if m else float(v) for v, m in zip(values, flags, strict=True)])
    return MaskedColumn(data, name=name, mask=mask, unit=unit, dtype=float)


def _lines_qtable(rows: list[dict], lunit) -> QTable:
    # one table from the columns (setting them one by one copies each column again)
    return QTable([_column(name, [r.get(name) for r in rows], dtype,
                           lunit if unit == "L" else unit)
                   for name, dtype, unit in _LINE_COLS], copy=False)


def lines_table(measurements: list[Measurement]) -> QTable:
    """Stack the per-line tables of several measurements.

    Columns: ``object, line, label, group, rest_wave, obs_wave, obs_wave_err,
    flux, flux_err, flux_limit, method (gaussian/integrated), snr, state
    (detected/upper_limit/not_covered/failed), gauss_flux, gauss_flux_err,
    ew (rest frame), ew_err, fwhm (observed, km/s), fwhm_intrinsic, kinematics, note``.
    """
    rows = [r for m in measurements for r in m.line_rows]
    unit = next((m.line_flux_unit for m in measurements if m.line_flux_unit is not None),
                u.dimensionless_unscaled)
    units = {str(m.line_flux_unit) for m in measurements if m.line_flux_unit is not None}
    if len(units) > 1:
        raise InputError(f"measurements have different flux units ({', '.join(sorted(units))}); "
                         "write them to separate tables")
    return _lines_qtable(rows, unit)


_BOOL_COLS = ("n2_upper_limit", "o3_upper_limit", "o3n2_upper_limit", "mcmc_converged",
              "n2_flux_weaker_than_gate", "error_scale_applied")
_FLOAT_COLS = ("z_err", "n2", "n2_err", "o3", "o3_err", "o3n2", "o3n2_err", "significance", "ra",
               "dec", "n2_gaussian", "n2_integrated", "n2_p16", "n2_p50", "n2_p84", "n2_p977",
               "nii6585_snr_reported", "error_scale", "n2_gate_bias")


def objects_table(measurements: list[Measurement]) -> QTable:
    """One row per measurement with the column names of DEVELOPERS.md.

    Fluxes ``f_<key>``, ``f_<key>_err``, ``f_<key>_limit`` carry the line-flux
    unit; states are strings; undefined values are masked.
    """
    keys = list(dict.fromkeys(k for m in measurements for k in m.row))  # first-seen order
    t = {}
    lunit = next((m.line_flux_unit for m in measurements if m.line_flux_unit is not None), None)
    for k in keys:
        vals = [m.row.get(k) for m in measurements]
        nonnull = [v for v in vals if v is not None]
        if k in _BOOL_COLS:
            t[k] = _column(k, vals, bool, None)
        elif nonnull and all(isinstance(v, bool | np.bool_) for v in nonnull):
            t[k] = _column(k, vals, bool, None)
        elif nonnull and all(isinstance(v, int | float | np.integer | np.floating)
                             for v in nonnull):
            unit = None
            if k.startswith("f_") or k in ("f_ha", "f_ha_err"):
                unit = lunit
            t[k] = _column(k, vals, float, unit)
        elif not nonnull and (k.startswith("f_") or k in _FLOAT_COLS):
            t[k] = _column(k, vals, float, lunit if k.startswith("f_") else None)
        else:
            t[k] = _column(k, vals, str, None)
    for k in ("ra", "dec"):
        if k in t and t[k].dtype.kind == "f":
            t[k].unit = u.deg
    # one table from the columns (setting them one by one copies each column again)
    return QTable(list(t.values()), copy=False)
