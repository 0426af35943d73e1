"""The table context: derived rows joined to the selection catalogue, and column readers.

:func:`prepare_context` sorts the derived rows and brings in instrument,
date, exposure, references and the CNN prediction from the selection
catalogue (matched by name, else position, :mod:`xmpspec.compare`); the
readers (``_col_float``, ``_flags``...) are shared by the table builders.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, Table

from ..config import Config, get_active_config
from ..errors import ConfigError, InputError

SELECTION_ALIASES = {
    "instrument": ("instrument", "instr", "inst", "telescope"),
    "obsdate": ("obsdate", "date_obs", "date-obs", "obs_date", "date", "night"),
    "exptime": ("exptime_s", "exptime", "texp", "exp_time", "t_exp", "exposure"),
    "nexp": ("nexp", "n_exp", "nexposures", "n_exposures"),
    "refs": ("refs", "ref", "references", "literature"),
}


# ----------------------------------------------------------------------------- model

def _col_float(table: Table, name: str | None, source=None) -> np.ma.MaskedArray:
    """A column as a masked float array (all masked when absent).

    The reader of :mod:`xmpspec.compare.columns` (one rule for numbers and errors):
    :class:`~xmpspec.physics._columns.ColumnValueError` for a cell that is not a number
    or a negative error, which the table builders report as an input error (exit 2),
    not as a skipped table.
    """
    from ..compare.columns import _float_column
    if name is None or name not in table.colnames:
        return np.ma.masked_all(len(table))
    return _float_column(table, name, source)


def _col_unit(table: Table, name: str, default: u.UnitBase | None) -> u.UnitBase | None:
    """The unit of a column (``default`` when it has none); a unit of another kind than
    ``default`` (an SFR in km/s) is a :class:`~xmpspec.physics._columns.ColumnValueError`."""
    from ..physics._columns import ColumnValueError
    if name in table.colnames and getattr(table[name], "unit", None) is not None:
        unit = u.Unit(table[name].unit)
        if default is not None and unit != u.dimensionless_unscaled \
                and not unit.is_equivalent(default):
            raise ColumnValueError(f"column '{name}' has unit '{unit}', not convertible to "
                                   f"'{default}'")
        return unit
    return default


def _flags(table: Table, name: str | None) -> np.ndarray:
    from ..compare import as_bool
    if name is None or name not in table.colnames:
        return np.zeros(len(table), bool)
    return as_bool(table[name], name)


def _text(table: Table, name: str | None) -> list[str | None]:
    if name is None or name not in table.colnames:
        return [None] * len(table)
    col = np.ma.asarray(table[name])
    mask = np.ma.getmaskarray(col)
    out = []
    for v, m in zip(np.ma.getdata(col), mask, strict=True):
        s = str(v).strip()
        out.append(None if m or s in ("", "--", "...", "nan", "None") else s)
    return out


def _find(table: Table, aliases) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    for a in aliases:
        if a in lower:
            return lower[a]
    return None


def prepare_context(derived: Table, selection: Table | None = None, sort: str = "ra",
                    config: Config | None = None, derived_source=None,
                    selection_source=None) -> tuple[Table, list[str]]:
    """Per-object table with the selection/observing-log columns attached, sorted.

    Objects are matched to the selection catalogue with
    :func:`xmpspec.compare.match_catalogue` (name, else position).

    Parameters
    ----------
    derived : astropy.table.Table
        Output of ``xmpspec derive`` / ``measure`` or a user table with ``name``.
    selection : astropy.table.Table, optional
        Selection catalogue and/or observing log (name, ra, dec, n2_cnn,
        n2_cnn_err, instrument, obsdate, exptime_s, nexp ...).
    sort : {"ra", "n2_cnn", "name", "none"}
        Row order of every table.

    Returns
    -------
    table : astropy.table.Table
        ``derived`` plus ``_ra_deg``, ``_dec_deg``, ``_n2_cnn``, ``_n2_cnn_err``,
        ``_instrument``, ``_obsdate``, ``_exptime_s``, ``_nexp`` (masked where unknown).
    notes : list of str
        Matching problems and fallbacks, for the user.
    """
    from ..compare import COLUMN_ALIASES, match_catalogue, parse_coordinates
    cfg = config if config is not None else get_active_config()
    if len(derived) == 0:
        raise InputError("the table has no rows: no tables written", derived_source)
    if "name" not in derived.colnames:
        raise InputError("table has no 'name' column", derived_source)
    ctx = derived.copy(copy_data=True)
    n = len(ctx)
    notes: list[str] = []
    ra = np.ma.masked_all(n)
    dec = np.ma.masked_all(n)
    cnn = np.ma.masked_all(n)
    cnn_err = np.ma.masked_all(n)
    info = {k: [None] * n for k in SELECTION_ALIASES}

    ra_col, dec_col = _find(ctx, COLUMN_ALIASES["ra"]), _find(ctx, COLUMN_ALIASES["dec"])
    if ra_col and dec_col:
        coords, ok = parse_coordinates(ctx[ra_col], ctx[dec_col], derived_source)
        if coords is not None:
            ra[ok] = coords.ra.deg[ok]
            dec[ok] = coords.dec.deg[ok]
    for k, aliases in SELECTION_ALIASES.items():
        col = _find(ctx, aliases)
        if col:
            info[k] = _text(ctx, col)
    c = _find(ctx, COLUMN_ALIASES["n2_cnn"])
    if c:
        cnn = _col_float(ctx, c, derived_source)
        cnn_err = _col_float(ctx, _find(ctx, COLUMN_ALIASES["n2_cnn_err"]), derived_source)

    if selection is not None:
        if len(selection) == 0:
            raise InputError("the selection catalogue has no rows", selection_source)
        sel = selection.copy(copy_data=False)
        for key, aliases in COLUMN_ALIASES.items():
            col = _find(sel, aliases)
            if col is not None and col != key and key not in sel.colnames:
                sel.rename_column(col, key)
        radius = float(cfg["compare"]["match_radius_arcsec"]) * u.arcsec
        obs = Table({"name": [str(x) for x in ctx["name"]]})
        if not np.ma.getmaskarray(ra).all():
            obs["ra"] = ra
            obs["dec"] = dec
        match, report = match_catalogue(obs, sel, radius, derived_source, selection_source)
        notes += report
        ok = np.asarray(match["match_status"] == "matched")
        j = np.where(ok, match["cat_index"], 0)
        if "ra" in sel.colnames and "dec" in sel.colnames:
            sc, sv = parse_coordinates(sel["ra"], sel["dec"], selection_source)
            if sc is not None:
                use = ok & sv[j]
                ra[use] = sc.ra.deg[j][use]
                dec[use] = sc.dec.deg[j][use]
        if "n2_cnn" in sel.colnames:
            v = _col_float(sel, "n2_cnn", selection_source)[j]
            cnn[ok] = v[ok]
            cnn.mask[ok] = np.ma.getmaskarray(v)[ok]
            if "n2_cnn_err" in sel.colnames:
                e = _col_float(sel, "n2_cnn_err", selection_source)[j]
                cnn_err[ok] = e[ok]
                cnn_err.mask[ok] = np.ma.getmaskarray(e)[ok]
        for k, aliases in SELECTION_ALIASES.items():
            col = _find(sel, aliases)
            if col is None:
                continue
            vals = _text(sel, col)
            for i in np.flatnonzero(ok):
                if vals[j[i]] is not None:
                    info[k][i] = vals[j[i]]
        for i in np.flatnonzero(~ok):
            notes.append(f"{ctx['name'][i]}: {match['match_status'][i]} in the selection "
                         f"catalogue ({match['match_note'][i]}); its observing-log entries "
                         "are missing")

    ctx["_ra_deg"] = MaskedColumn(np.ma.getdata(ra), mask=np.ma.getmaskarray(ra), unit=u.deg)
    ctx["_dec_deg"] = MaskedColumn(np.ma.getdata(dec), mask=np.ma.getmaskarray(dec), unit=u.deg)
    ctx["_n2_cnn"] = MaskedColumn(np.ma.getdata(cnn), mask=np.ma.getmaskarray(cnn))
    ctx["_n2_cnn_err"] = MaskedColumn(np.ma.getdata(cnn_err), mask=np.ma.getmaskarray(cnn_err))
    for k in SELECTION_ALIASES:
        ctx["_" + k] = MaskedColumn(["" if v is None else v for v in info[k]],
                                    mask=[v is None for v in info[k]])

    if sort not in ("ra", "n2_cnn", "name", "none"):
        raise InputError(f"unknown sort key '{sort}' (ra, n2_cnn, name or none)")
    if sort == "ra" and np.ma.getmaskarray(ra).all():
        raise InputError("cannot sort by RA: no coordinates in the table nor from a selection "
                         "catalogue (give --selection, or --sort name)", derived_source)
    if sort == "n2_cnn" and np.ma.getmaskarray(cnn).all():
        raise InputError("cannot sort by predicted N2: no n2_cnn in the table nor from a "
                         "selection catalogue (give --selection)", derived_source)
    if sort != "none":
        key = {"ra": "_ra_deg", "n2_cnn": "_n2_cnn"}.get(sort)
        if key is None:
            order = np.argsort(np.array([str(x) for x in ctx["name"]]), kind="stable")
        else:
            vals = np.ma.getdata(ctx[key]).astype(float)
            vals = np.where(np.ma.getmaskarray(ctx[key]), np.inf, vals)  # unknown last
            order = np.argsort(vals, kind="stable")
        ctx = ctx[order]
    return ctx, notes


# ----------------------------------------------------------------------------- builders

def _sig(cfg: Config) -> int | str:
    val = cfg.get("products.error_digits", 2)
    if isinstance(val, str):
        if val.strip().lower() != "pdg":
            raise ConfigError(f"products.error_digits must be an integer or 'pdg', got '{val}'")
        return "pdg"
    if int(val) < 1:
        raise ConfigError(f"products.error_digits must be >= 1, got {val}")
    return int(val)


def _interval(ctx: Table, key: str, vals, errs, upper):
    """Upper and lower errors from ``<key>_p16``/``<key>_p84`` where the table has them.

    The 68% interval of the posterior (``measure``'s and ``derive``'s
    percentile columns) gives the errors of detections
    (:func:`xmpspec.lines.ratios.interval_errors`: its widths about the
    posterior median); elsewhere the symmetric error stays.

    Returns
    -------
    errors (upper where asymmetric), errors_lo (masked where symmetric) or None, note
    """
    if f"{key}_p16" not in ctx.colnames or f"{key}_p84" not in ctx.colnames:
        return errs, None, ""
    from ..lines.ratios import interval_errors
    p50 = _col_float(ctx, f"{key}_p50") if f"{key}_p50" in ctx.colnames else None
    lo, hi = interval_errors(vals, _col_float(ctx, f"{key}_p16"), _col_float(ctx, f"{key}_p84"),
                             p50)
    ok = ~np.asarray(upper, bool) & ~np.ma.getmaskarray(hi) & ~np.ma.getmaskarray(lo)
    if not ok.any():
        return errs, None, ""
    return (np.ma.where(ok, hi, errs), np.ma.masked_where(~ok, lo),
            " (68% interval of its posterior where given)")
