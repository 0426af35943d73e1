"""Paper tables: observing log, line measurements, derived properties.

Each table is built once as a :class:`PaperTable` (typed cells plus the
machine-readable values) and then rendered as

- LaTeX: AASTeX ``deluxetable`` or a plain ``table``/``tabular``;
- CDS/AAS machine-readable table (``ascii.mrt``), with ``l_X`` limit-flag
  and ``e_X`` error columns, values rounded as in the typeset table;
- ECSV and FITS (full precision, unscaled units, with provenance).

Values with errors are rounded to the error's significant digits
(``products.error_digits``), upper limits are written ``<-1.50``, missing
values ``...`` (``\\nodata`` in AASTeX), and quantities far from unity are
given in scaled units stated in the header.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Column, MaskedColumn, Table

from ..config import Config, get_active_config
from ..errors import ConfigError, InputError
from .formatting import (
    Cell,
    choose_exponent,
    error_decimals,
    format_number,
    latex_escape,
    sexagesimal_dec,
    sexagesimal_ra,
    unit_latex,
    unit_text,
)

__all__ = [
    "ColumnSpec",
    "PaperTable",
    "prepare_context",
    "observing_log_table",
    "line_table",
    "line_flux_table",
    "FLUX_TABLE_LINES",
    "derived_table",
    "build_tables",
    "write_paper_table",
    "write_tables",
    "TABLE_STYLES",
]

log = logging.getLogger(__name__)

TABLE_STYLES = ("aastex", "latex", "mrt")

SELECTION_ALIASES = {
    "instrument": ("instrument", "instr", "inst", "telescope"),
    "obsdate": ("obsdate", "date_obs", "date-obs", "obs_date", "date", "night"),
    "exptime": ("exptime_s", "exptime", "texp", "exp_time", "t_exp", "exposure"),
    "nexp": ("nexp", "n_exp", "nexposures", "n_exposures"),
    "refs": ("refs", "ref", "references", "literature"),
}


# ----------------------------------------------------------------------------- model

@dataclass
class ColumnSpec:
    """One column of a paper table.

    ``kind`` is ``text``, ``ra``, ``dec`` or ``value``. For ``value``
    columns ``values``/``errors`` hold the unscaled numbers (masked where
    absent), ``limits`` the limit flags (``"<"``, ``">"`` or ``""``),
    ``exponent`` the power of ten the typeset/MRT values are divided by.
    """

    key: str
    header: str
    kind: str
    cells: list
    description: str = ""
    unit: u.UnitBase | None = None
    exponent: int = 0
    values: object = None
    errors: object = None
    limits: object = None
    decimals: int = 2
    text_values: list | None = None
    integer: bool = False
    errors_lo: object = None
    header_unit: bool = True  # False: the unit is stated once for the table (latex_notes)

    def header_latex(self) -> str:
        unit = unit_latex(self.unit, self.exponent) if self.header_unit else ""
        return self.header + (f" ({unit})" if unit else "")

    def header_plain(self) -> str:
        unit = unit_text(self.unit, self.exponent)
        return self.key + (f" [{unit}]" if unit else "")


@dataclass
class PaperTable:
    """A typeset-ready table: columns of :class:`Cell` plus machine-readable data."""

    name: str
    caption: str
    label: str
    columns: list
    notes: list = field(default_factory=list)
    omitted: list = field(default_factory=list)
    latex_notes: list = field(default_factory=list)  # raw LaTeX appended to the notes
    #: LaTeX only: the columns (keys) of each printed part when the table is too wide
    #: for a page; the first column (name) starts every part. The MRT/ECSV stay whole.
    column_groups: list | None = None
    tabletypesize: str | None = None  # e.g. "scriptsize"

    @property
    def nrows(self) -> int:
        return len(self.columns[0].cells) if self.columns else 0

    # ------------------------------------------------------------------ LaTeX
    def to_latex(self, style: str = "aastex") -> str:
        """The table as LaTeX: ``aastex`` (deluxetable) or ``latex`` (table + tabular).

        A table with :attr:`column_groups` is printed as one LaTeX table per
        group (labels ``<label>a``, ``<label>b``, ...), each starting with the
        first (name) column.
        """
        if style not in ("aastex", "latex"):
            raise InputError(f"unknown LaTeX style '{style}' (aastex or latex)")
        if not self.column_groups:
            return self._latex_part(self.columns, self.caption, self.label, style)
        keys = {c.key: c for c in self.columns}
        parts = []
        groups = [[k for k in g if k in keys] for g in self.column_groups]
        groups = [g for g in groups if g]
        for j, group in enumerate(groups):
            cols = [self.columns[0]] + [keys[k] for k in group if k != self.columns[0].key]
            caption = self.caption + (f" ({j + 1} of {len(groups)})" if len(groups) > 1
                                      else "")
            parts.append(self._latex_part(cols, caption, f"{self.label}{chr(97 + j)}", style))
        return "\n".join(parts)

    def _latex_part(self, columns: list, caption: str, label: str, style: str) -> str:
        align = "".join("l" if c.kind == "text" and i == 0 else "c"
                        for i, c in enumerate(columns))
        rows = [" & ".join(c.cells[i].latex(style) for c in columns)
                for i in range(self.nrows)]
        notes = " ".join([latex_escape(n) for n in self.notes] + list(self.latex_notes))
        if style == "aastex":
            out = [f"\\begin{{deluxetable*}}{{{align}}}"]
            if self.tabletypesize:
                out.append(f"\\tabletypesize{{\\{self.tabletypesize}}}")
            out += ["\\tablewidth{0pt}",
                    f"\\tablecaption{{{latex_escape(caption)}\\label{{{label}}}}}",
                    "\\tablehead{" + " & ".join(f"\\colhead{{{c.header_latex()}}}"
                                                for c in columns) + "}",
                    "\\startdata"]
            out += [r + (" \\\\" if i < len(rows) - 1 else "") for i, r in enumerate(rows)]
            out.append("\\enddata")
            if notes:
                out.append(f"\\tablecomments{{{notes}}}")
            out.append("\\end{deluxetable*}")
        else:
            out = ["\\begin{table*}", "\\centering"]
            if self.tabletypesize:
                out.append(f"\\{self.tabletypesize}")
            out += [f"\\caption{{{latex_escape(caption)}}}",
                    f"\\label{{{label}}}",
                    f"\\begin{{tabular}}{{{align}}}",
                    "\\hline\\hline",
                    " & ".join(c.header_latex() for c in columns) + " \\\\",
                    "\\hline"]
            out += [r + " \\\\" for r in rows]
            out.append("\\hline")
            out.append("\\end{tabular}")
            if notes:
                out.append(f"\\par\\smallskip{{\\footnotesize {notes}}}")
            out.append("\\end{table*}")
        return "\n".join(out) + "\n"

    def to_text(self) -> str:
        """Aligned plain-text rendering (for terminals and READMEs)."""
        heads = [c.header_plain() for c in self.columns]
        body = [[c.cells[i].plain() for c in self.columns] for i in range(self.nrows)]
        widths = [max([len(h)] + [len(r[k]) for r in body]) for k, h in enumerate(heads)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ machine readable
    def to_machine(self, rounded: bool) -> Table:
        """Numeric table: ``l_X`` limit flags, ``X`` values, ``e_X`` errors.

        Parameters
        ----------
        rounded : bool
            True: values scaled by the column exponent and rounded as typeset
            (for the MRT file); False: full precision in unscaled units
            (ECSV/FITS).
        """
        t = Table()
        n = self.nrows
        for c in self.columns:
            if c.kind == "text":
                vals = c.text_values if c.text_values is not None else [
                    cell.plain() if cell.kind != "missing" else "" for cell in c.cells]
                mask = [cell.kind == "missing" for cell in c.cells]
                col = (MaskedColumn([str(v) for v in vals], name=c.key, mask=mask) if any(mask)
                       else Column([str(v) for v in vals], name=c.key))
                col.description = c.description
                t[c.key] = col
            elif c.kind in ("ra", "dec"):
                deg = np.ma.asarray(c.values, dtype=float)
                miss = np.ma.getmaskarray(deg)
                if not rounded:
                    t[c.key + "_deg"] = MaskedColumn(np.ma.getdata(deg), mask=miss, unit=u.deg,
                                                     description=c.description + " (degrees)")
                    continue
                _sexagesimal_columns(t, c.kind, np.ma.getdata(deg), miss)
            else:
                vals = np.ma.masked_invalid(np.ma.asarray(c.values, dtype=float))
                errs = np.ma.masked_invalid(np.ma.asarray(c.errors, dtype=float)) \
                    if c.errors is not None else None
                lims = np.asarray(c.limits if c.limits is not None else [""] * n)
                scale = 10.0 ** c.exponent if rounded else 1.0
                unit = c.unit
                if rounded and c.exponent and unit is not None:
                    unit = u.Unit(10.0 ** c.exponent * u.Unit(unit))
                elif rounded and c.exponent:
                    unit = u.Unit(10.0 ** c.exponent)
                v_out = np.ma.array(np.ma.getdata(vals) / scale, mask=np.ma.getmaskarray(vals))
                e_out = (np.ma.array(np.ma.getdata(errs) / scale, mask=np.ma.getmaskarray(errs))
                         if errs is not None else None)
                if e_out is not None:
                    e_out[lims != ""] = np.ma.masked
                lo_out = None
                if c.errors_lo is not None and e_out is not None:
                    elo = np.ma.masked_invalid(np.ma.asarray(c.errors_lo, dtype=float))
                    asym = np.array([cell.kind == "value_asym" for cell in c.cells])
                    lo_out = np.ma.array(np.ma.getdata(elo) / scale,
                                         mask=np.ma.getmaskarray(elo) | ~asym)
                    if not (~np.ma.getmaskarray(lo_out)).any():
                        lo_out = None
                decs = []
                if rounded:
                    for i in range(n):
                        cell = c.cells[i]
                        if cell.kind == "missing":
                            v_out[i] = np.ma.masked
                            if e_out is not None:
                                e_out[i] = np.ma.masked
                            continue
                        if cell.kind == "value_err":
                            d = error_decimals(cell.err, cell.sig)
                        elif cell.kind == "value_asym":
                            d = cell.asym_parts()[3]
                        else:
                            d = cell.decimals
                        d = int(d)
                        v_out[i] = round(float(v_out[i]), d)
                        if e_out is not None and not np.ma.is_masked(e_out[i]) \
                                and cell.kind in ("value_err", "value_asym"):
                            e_out[i] = round(float(e_out[i]), d)
                        if lo_out is not None and not np.ma.is_masked(lo_out[i]) \
                                and cell.kind == "value_asym":
                            lo_out[i] = round(float(lo_out[i]), d)
                        decs.append((i, d, float(v_out[i])))
                fmt = _machine_format([(d, v) for _, d, v in decs])
                if (lims != "").any():
                    t["l_" + c.key] = MaskedColumn([str(x) for x in lims], mask=lims == "",
                                                   description=f"Limit flag on {c.key}")
                data = np.ma.getdata(v_out)
                if c.integer:
                    data = np.where(np.ma.getmaskarray(v_out), 0, np.round(data)).astype(int)
                col = MaskedColumn(data, mask=np.ma.getmaskarray(v_out), unit=unit,
                                   description=c.description)
                if rounded and not c.integer:
                    col.format = fmt
                t[c.key] = col
                if e_out is not None and (~np.ma.getmaskarray(e_out)).any():
                    ecol = MaskedColumn(np.ma.getdata(e_out), mask=np.ma.getmaskarray(e_out),
                                        unit=unit, description=f"Uncertainty in {c.key}")
                    if rounded:
                        ecol.format = fmt if fmt.endswith("f") else _machine_format(
                            [(d, float(e_out[i])) for i, d, _ in decs
                             if not np.ma.is_masked(e_out[i])], force_exp=True)
                    if lo_out is None:
                        t["e_" + c.key] = ecol
                    else:
                        # CDS convention: E_X upper (positive) error, e_X lower error;
                        # symmetric cells have both equal
                        lo = np.ma.where(np.ma.getmaskarray(lo_out), e_out, lo_out)
                        ecol.description = f"Upper uncertainty in {c.key}"
                        t["E_" + c.key] = ecol
                        lcol = MaskedColumn(np.ma.getdata(lo), mask=np.ma.getmaskarray(lo),
                                            unit=unit,
                                            description=f"Lower uncertainty in {c.key}")
                        lcol.format = ecol.format
                        t["e_" + c.key] = lcol
        return t


def _machine_format(decs: list, force_exp: bool = False) -> str:
    """One MRT number format for a column whose cells were rounded to ``decs``.

    ``decs`` holds ``(decimals, value)`` per typeset cell. A fixed format
    with the largest number of decimals is used when the cells' decimals
    differ by at most one; otherwise (values over decades, e.g. L(Halpha))
    an exponential format with the largest number of significant digits of
    any cell, so that no cell is padded with digits it does not have.
    """
    if not decs:
        return ".0f"
    ds = [int(d) for d, _ in decs]
    if not force_exp and max(ds) - min(ds) <= 1:
        return f".{max(max(ds), 0)}f"
    sig = 1
    for d, v in decs:
        if v != 0 and np.isfinite(v):
            sig = max(sig, int(d) + int(np.floor(np.log10(abs(v)))) + 1)
    return f".{max(sig - 1, 0)}e"


def _sexagesimal_columns(t: Table, kind: str, deg: np.ndarray, miss: np.ndarray) -> None:
    from astropy.coordinates import Angle
    if kind == "ra":
        h, m, s = Angle(np.where(miss, 0, deg), u.deg).hms
        s = np.round(s, 2)
        carry = s >= 60
        s[carry] -= 60
        m = m + carry
        carry = m >= 60
        m[carry] -= 60
        h = (h + carry) % 24
        for name, vals, unit, desc, fmt in (
                ("RAh", h, u.h, "Hour of Right Ascension (J2000)", "02d"),
                ("RAm", m, u.min, "Minute of Right Ascension (J2000)", "02d"),
                ("RAs", s, u.s, "Second of Right Ascension (J2000)", "05.2f")):
            data = vals.astype(int) if name != "RAs" else vals
            col = MaskedColumn(data, mask=miss, unit=unit, description=desc)
            col.format = fmt
            t[name] = col
    else:
        sign = np.where(deg < 0, "-", "+")
        a = Angle(np.abs(np.where(miss, 0, deg)), u.deg)
        d, m, s = a.dms
        s = np.round(s, 1)
        carry = s >= 60
        s[carry] -= 60
        m = m + carry
        carry = m >= 60
        m[carry] -= 60
        d = d + carry
        # astropy's MRT writer gives the sign its own byte ``DE-`` before ``DEd``: DEd is
        # written as text "-00" so that declinations between -1 and 0 deg keep their sign
        degrees = [f"{sg}{int(x):02d}" for sg, x in zip(sign, d, strict=True)]
        t["DEd"] = MaskedColumn(degrees, mask=miss, unit=u.deg,
                                description="Degree of Declination (J2000)")
        for name, vals, unit, desc, fmt in (("DEm", m, u.arcmin, "Arcminute of Declination "
                                             "(J2000)", "02d"),
                                            ("DEs", s, u.arcsec, "Arcsecond of Declination "
                                             "(J2000)", "04.1f")):
            data = vals.astype(int) if name != "DEs" else vals
            col = MaskedColumn(data, mask=miss, unit=unit, description=desc)
            col.format = fmt
            t[name] = col


# ----------------------------------------------------------------------------- column helpers

def _col_float(table: Table, name: str | None) -> np.ma.MaskedArray:
    n = len(table)
    if name is None or name not in table.colnames:
        return np.ma.masked_all(n)
    col = table[name]
    data = col.value if hasattr(col, "value") and not isinstance(col, np.ma.MaskedArray) \
        else col
    try:
        return np.ma.masked_invalid(np.ma.asarray(data, dtype=float))
    except (TypeError, ValueError):
        raise InputError(f"column '{name}' is not numeric") from None


def _col_unit(table: Table, name: str, default: u.UnitBase | None) -> u.UnitBase | None:
    if name in table.colnames and getattr(table[name], "unit", None) is not None:
        return u.Unit(table[name].unit)
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


def value_column(key: str, header: str, values, errors=None, upper=None, lower=None,
                 unit: u.UnitBase | None = None, description: str = "",
                 default_decimals: int = 2, exponent: int | None = None,
                 sig: int = 2, errors_lo=None) -> ColumnSpec:
    """Build a value column: value +- error, limits, or missing, with a common scale.

    Parameters
    ----------
    values, errors : array-like (masked allowed)
        In ``unit``; errors may be None.
    upper, lower : array-like of bool, optional
        Upper / lower limit flags (the value is the limit).
    exponent : int, optional
        Power of ten of the scale (automatic when None, see
        :func:`~xmpspec.products.formatting.choose_exponent`).
    default_decimals : int
        Decimals of values without an error (and of limits when no
        detection of the column sets a typical precision).
    sig : int
        Significant digits of errors.
    errors_lo : array-like, optional
        Lower errors of an asymmetric interval (``errors`` is then the upper
        error): such cells are written value^{+upper}_{-lower}; the machine
        tables get ``E_X`` (upper) and ``e_X`` (lower) columns.
    """
    vals = np.ma.masked_invalid(np.ma.asarray(values, dtype=float))
    n = len(vals)
    errs = (np.ma.masked_invalid(np.ma.asarray(errors, dtype=float)) if errors is not None
            else np.ma.masked_all(n))
    upper = np.zeros(n, bool) if upper is None else np.asarray(upper, bool)
    lower = np.zeros(n, bool) if lower is None else np.asarray(lower, bool)
    elo = (np.ma.masked_invalid(np.ma.asarray(errors_lo, dtype=float)) if errors_lo is not None
           else np.ma.masked_all(n))
    exp = choose_exponent(vals, exponent)
    scale = 10.0 ** exp
    have = ~np.ma.getmaskarray(vals)
    has_err = have & ~np.ma.getmaskarray(errs) & ~upper & ~lower
    has_err &= np.ma.getdata(errs) > 0
    # typical precision of the column (for limits and values without error)
    decs = [error_decimals(float(errs[i]) / scale, sig) for i in np.flatnonzero(has_err)]
    typical = Counter(decs).most_common(1)[0][0] if decs else default_decimals
    typical = max(int(typical), 0) if decs else default_decimals
    cells, limits = [], []
    for i in range(n):
        if not have[i]:
            cells.append(Cell("missing"))
            limits.append("")
            continue
        v = float(vals[i]) / scale
        if upper[i]:
            cells.append(Cell("upper", value=v, decimals=typical))
            limits.append("<")
        elif lower[i]:
            cells.append(Cell("lower", value=v, decimals=typical))
            limits.append(">")
        elif has_err[i] and not np.ma.is_masked(elo[i]) and float(elo[i]) > 0:
            cells.append(Cell("value_asym", value=v, err=float(errs[i]) / scale,
                              err_lo=float(elo[i]) / scale, sig=sig))
            limits.append("")
        elif has_err[i]:
            cells.append(Cell("value_err", value=v, err=float(errs[i]) / scale, sig=sig))
            limits.append("")
        else:
            cells.append(Cell("number", value=v, decimals=typical))
            limits.append("")
    return ColumnSpec(key=key, header=header, kind="value", cells=cells,
                      description=description, unit=unit, exponent=exp,
                      values=vals, errors=errs if errors is not None else None,
                      limits=np.array(limits), decimals=typical,
                      errors_lo=elo if errors_lo is not None else None)


def text_column(key: str, header: str, values: list, description: str = "") -> ColumnSpec:
    """A text column (``None`` entries are missing)."""
    cells = [Cell("missing") if v is None else Cell("text", text=str(v)) for v in values]
    return ColumnSpec(key=key, header=header, kind="text", cells=cells, description=description,
                      text_values=["" if v is None else str(v) for v in values])


# ----------------------------------------------------------------------------- context

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
        cnn = _col_float(ctx, c)
        cnn_err = _col_float(ctx, _find(ctx, COLUMN_ALIASES["n2_cnn_err"]))

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
            v = _col_float(sel, "n2_cnn")[j]
            cnn[ok] = v[ok]
            cnn.mask[ok] = np.ma.getmaskarray(v)[ok]
            if "n2_cnn_err" in sel.colnames:
                e = _col_float(sel, "n2_cnn_err")[j]
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


def observing_log_table(ctx: Table, config: Config | None = None) -> PaperTable:
    """Observing log: name, RA, Dec, CNN N2, instrument, date, exposure time, exposures.

    A ``refs`` column of the selection catalogue / observing log (literature
    references) becomes a last ``Ref.`` column.
    """
    cfg = config if config is not None else get_active_config()
    names = [str(x) for x in ctx["name"]]
    cols = [text_column("Name", "Name", names, "Object name")]
    ra = np.ma.asarray(ctx["_ra_deg"])
    dec = np.ma.asarray(ctx["_dec_deg"])
    notes = []
    if not np.ma.getmaskarray(ra).all():
        ra_cells = [Cell("missing") if m else Cell("text", text=sexagesimal_ra(float(v)))
                    for v, m in zip(np.ma.getdata(ra), np.ma.getmaskarray(ra), strict=True)]
        dec_cells = [Cell("missing") if m else Cell("text", text=sexagesimal_dec(float(v)))
                     for v, m in zip(np.ma.getdata(dec), np.ma.getmaskarray(dec), strict=True)]
        cols.append(ColumnSpec("RA", "R.A. (J2000)", "ra", ra_cells,
                               "Right Ascension (J2000)", values=ra))
        cols.append(ColumnSpec("DE", "Decl. (J2000)", "dec", dec_cells,
                               "Declination (J2000)", values=dec))
    if not np.ma.getmaskarray(ctx["_n2_cnn"]).all():
        cols.append(value_column("N2cnn", r"N2$_{\rm CNN}$", ctx["_n2_cnn"], ctx["_n2_cnn_err"],
                                 description="N2 = log([NII]6585/Halpha) predicted by the CNN "
                                             "(median of the models) and its spread",
                                 exponent=0, sig=_sig(cfg)))
    heads = {"instrument": ("Inst", "Instrument", "Telescope/instrument"),
             "obsdate": ("Date", "Date", "Observing date (UT)")}
    for k, (key, head, desc) in heads.items():
        vals = [None if m else str(v) for v, m in zip(
            np.ma.getdata(ctx["_" + k]), np.ma.getmaskarray(ctx["_" + k]), strict=True)]
        if any(v is not None for v in vals):
            cols.append(text_column(key, head, vals, desc))
    for k, key, head, desc in (("exptime", "texp", r"$t_{\rm exp}$", "Single exposure time"),
                               ("nexp", "Nexp", r"$N_{\rm exp}$", "Number of exposures")):
        raw = [None if m else str(v) for v, m in zip(
            np.ma.getdata(ctx["_" + k]), np.ma.getmaskarray(ctx["_" + k]), strict=True)]
        if not any(v is not None for v in raw):
            continue
        try:
            nums = np.ma.masked_invalid(np.array([np.nan if v is None else float(v)
                                                  for v in raw]))
        except ValueError:
            cols.append(text_column(key, head, raw, desc))
            continue
        integer = bool(np.all(np.mod(np.ma.compressed(nums), 1) == 0))
        col = value_column(key, head, nums, unit=u.s if k == "exptime" else None,
                           description=desc, default_decimals=0 if integer else 1, exponent=0)
        col.integer = integer
        cols.append(col)
    refs = [None if m else str(v) for v, m in zip(
        np.ma.getdata(ctx["_refs"]), np.ma.getmaskarray(ctx["_refs"]), strict=True)]
    if any(v is not None for v in refs):
        cols.append(text_column("Refs", "Ref.", refs, "Literature references"))
    missing = [h for h, present in (("coordinates", any(c.kind == "ra" for c in cols)),
                                    ("CNN N2", any(c.key == "N2cnn" for c in cols)),
                                    ("dates", any(c.key == "Date" for c in cols)),
                                    ("exposure times", any(c.key == "texp" for c in cols)))
               if not present]
    if missing:
        notes.append("not available: " + ", ".join(missing))
    return PaperTable("observing_log", "Observing log of the CNN-selected XMP candidates",
                      "tab:obslog", cols, notes=[])


def line_table(ctx: Table, config: Config | None = None) -> PaperTable:
    """Line measurements: z, F(Halpha), significance of [NII]6585, N2, O3."""
    from ..spectrum import LINE_FLUX_UNIT
    cfg = config if config is not None else get_active_config()
    sig = _sig(cfg)
    for col in ("z", "n2"):
        if col not in ctx.colnames:
            raise InputError(f"no '{col}' column: cannot write the line-measurement table")
    cols = [text_column("Name", "Name", [str(x) for x in ctx["name"]], "Object name")]
    zerr = _col_float(ctx, "z_err") if "z_err" in ctx.colnames else None
    z = _col_float(ctx, "z")
    zdec = max((len(f"{v:g}".split(".")[1]) if "." in f"{v:g}" else 0)
               for v in np.ma.compressed(z)) if z.count() else 4
    cols.append(value_column("z", "$z$", z, zerr, description="Redshift",
                             default_decimals=min(max(zdec, 4), 6), exponent=0, sig=sig))
    if "f_ha" in ctx.colnames:
        unit = _col_unit(ctx, "f_ha", LINE_FLUX_UNIT)
        fha = _col_float(ctx, "f_ha")
        fha_err = _col_float(ctx, "f_ha_err")
        # express in erg/s/cm2 with a power-of-ten scale in the header
        factor = u.Unit(unit).to(u.erg / u.s / u.cm ** 2)
        vals, errs = fha * factor, fha_err * factor
        # keep the scale of the input unit (1e-17 erg/s/cm2 for xmpspec line fluxes)
        exp = int(round(np.log10(factor))) if factor != 1.0 else choose_exponent(vals, None)
        cols.append(value_column("FHa", r"$F({\rm H}\alpha)$", vals, errs,
                                 unit=u.erg / u.s / u.cm ** 2, exponent=exp,
                                 description="Halpha flux", default_decimals=1, sig=sig))
    if "significance" in ctx.colnames:
        cols.append(value_column("SNR", r"S/N$_{\rm [N\,II]}$", _col_float(ctx, "significance"),
                                 description="Significance of [NII]6585 (amplitude ratio over "
                                             "its uncertainty)", default_decimals=2, exponent=0))
    for key, head, desc in (("n2", "N2", "N2 = log([NII]6585/Halpha)"),
                            ("o3", "O3", "O3 = log([OIII]5008/Hbeta)")):
        if key not in ctx.colnames:
            continue
        vals = _col_float(ctx, key)
        upper = _flags(ctx, f"{key}_upper_limit")
        if f"{key}_state" in ctx.colnames:
            st = np.array([str(s).strip().lower() for s in ctx[f"{key}_state"]])
            upper = upper | (st == "upper_limit")
            vals = np.ma.masked_where(~np.isin(st, ["detected", "upper_limit"]), vals)
        if vals.count() == 0:
            continue
        errs, errs_lo, note = _interval(ctx, key, vals, _col_float(ctx, f"{key}_err"), upper)
        desc += note
        cols.append(value_column(key.upper(), head, vals, errs, errors_lo=errs_lo,
                                 upper=upper, description=desc + " (upper limits flagged)",
                                 exponent=0, sig=sig))
    notes = ["Upper limits (2 sigma) are marked <."]
    return PaperTable("line_measurements", "Emission-line measurements", "tab:lines", cols,
                      notes=notes)


def _interval(ctx: Table, key: str, vals, errs, upper):
    """Upper and lower errors from ``<key>_p16``/``<key>_p84`` where the table has them.

    The 68% interval of the posterior (H-gate's columns of ``measure`` and
    ``derive``) replaces the symmetric error of detections whose interval
    brackets the value; elsewhere the symmetric error stays.

    Returns
    -------
    errors (upper where asymmetric), errors_lo (masked where symmetric) or None, note
    """
    if f"{key}_p16" not in ctx.colnames or f"{key}_p84" not in ctx.colnames:
        return errs, None, ""
    hi = _col_float(ctx, f"{key}_p84") - vals
    lo = vals - _col_float(ctx, f"{key}_p16")
    ok = ~np.asarray(upper, bool) & ~np.ma.getmaskarray(hi) & ~np.ma.getmaskarray(lo) \
        & (np.ma.filled(hi, 0) > 0) & (np.ma.filled(lo, 0) > 0)
    if not ok.any():
        return errs, None, ""
    return (np.ma.where(ok, hi, errs), np.ma.masked_where(~ok, lo),
            " (68% interval of its posterior where given)")


#: Lines of the line-flux table: (key, LaTeX header, plain name), blue to red.
FLUX_TABLE_LINES = (
    ("oii_blend", r"[O\,{\sc ii}]$\lambda\lambda$3727,3730", "[OII]3727+3730"),
    ("oii3727", r"[O\,{\sc ii}]$\lambda$3727", "[OII]3727"),
    ("oii3730", r"[O\,{\sc ii}]$\lambda$3730", "[OII]3730"),
    ("hb", r"H$\beta$", "Hbeta"),
    ("oiii4364", r"[O\,{\sc iii}]$\lambda$4364", "[OIII]4364"),
    ("oiii4960", r"[O\,{\sc iii}]$\lambda$4960", "[OIII]4960"),
    ("oiii5008", r"[O\,{\sc iii}]$\lambda$5008", "[OIII]5008"),
    ("hei5877", r"He\,{\sc i}$\lambda$5877", "HeI5877"),
    ("oi6302", r"[O\,{\sc i}]$\lambda$6302", "[OI]6302"),
    ("ha", r"H$\alpha$", "Halpha"),
    ("nii6585", r"[N\,{\sc ii}]$\lambda$6585", "[NII]6585"),
    ("sii6718", r"[S\,{\sc ii}]$\lambda$6718", "[SII]6718"),
    ("sii6733", r"[S\,{\sc ii}]$\lambda$6733", "[SII]6733"),
)


_MRT_LABELS = {"oii_blend": "FOII", "hb": "FHb", "ha": "FHa"}


def _mrt_label(key: str) -> str:
    """MRT/ECSV column label of a line flux: ``FHb``, ``FOIII5008``, ``FOII`` (blend)..."""
    if key in _MRT_LABELS:
        return _MRT_LABELS[key]
    ion = key.rstrip("0123456789")
    return "F" + _ion_name(ion) + key[len(ion):]


def _ion_name(ion: str) -> str:
    """``oiii`` -> ``OIII``, ``hei`` -> ``HeI``, ``sii`` -> ``SII``."""
    elements = ("he", "ne", "fe", "o", "n", "s", "h")
    for el in elements:
        if ion.startswith(el):
            return el.capitalize() + ion[len(el):].upper()
    return ion.upper()


def line_flux_table(ctx: Table, config: Config | None = None) -> PaperTable:
    """Observed fluxes of every measured line, with 2-sigma upper limits.

    Reads ``f_<key>``, ``f_<key>_err``, ``f_<key>_limit`` and ``<key>_state``
    of the objects table (``xmpspec measure``) for the lines of
    :data:`FLUX_TABLE_LINES`. Detections are value +- error, ``upper_limit``
    states the limit (``f_<key>_limit``, else the value column), other states
    (``not_covered``, ``failed``) are missing. The [OII] doublet is given as
    the blend when the blend was measured, else as its two lines. Columns
    without any value are left out; fewer than two lines: no table.
    """
    from ..spectrum import LINE_FLUX_UNIT
    cfg = config if config is not None else get_active_config()
    sig = _sig(cfg)
    cols = [text_column("Name", "Name", [str(x) for x in ctx["name"]], "Object name")]
    have_blend = "f_oii_blend" in ctx.colnames and _col_float(ctx, "f_oii_blend").count() > 0
    exp = None
    for key, head, plain in FLUX_TABLE_LINES:
        if key in ("oii3727", "oii3730") and have_blend:
            continue
        if f"f_{key}" not in ctx.colnames:
            continue
        unit = _col_unit(ctx, f"f_{key}", LINE_FLUX_UNIT)
        factor = u.Unit(unit).to(u.erg / u.s / u.cm ** 2)
        vals = _col_float(ctx, f"f_{key}")
        errs = _col_float(ctx, f"f_{key}_err")
        if f"{key}_state" in ctx.colnames:
            st = np.array([str(x).strip().lower() for x in np.ma.filled(
                np.ma.asarray(ctx[f"{key}_state"]).astype(str), "")])
        else:
            st = np.where(np.ma.getmaskarray(vals), "", "detected")
        upper = st == "upper_limit"
        if f"f_{key}_limit" in ctx.colnames:
            lim = _col_float(ctx, f"f_{key}_limit")
            vals = np.ma.where(upper & ~np.ma.getmaskarray(lim), lim, vals)
        vals = np.ma.masked_where(~np.isin(st, ["detected", "upper_limit"]), vals)
        if vals.count() == 0:
            continue
        if exp is None:
            exp = int(round(np.log10(factor))) if factor != 1.0 else choose_exponent(
                vals * factor, None)
        cols.append(value_column(_mrt_label(key), head, vals * factor, errs * factor,
                                 upper=upper, unit=u.erg / u.s / u.cm ** 2, exponent=exp,
                                 description=f"{plain} observed flux (upper limits flagged)",
                                 default_decimals=1, sig=sig))
    if len(cols) < 3:
        raise InputError("fewer than two lines with a flux (f_<line> columns of xmpspec "
                         "measure): no line-flux table")
    notes = ["Observed fluxes, not corrected for extinction. Upper limits (2 sigma) are "
             "marked <; ... : line not covered or not measured."]
    for c in cols[1:]:  # one unit for the whole table, stated in the notes
        c.header_unit = False
    unit_tex = unit_latex(cols[1].unit, cols[1].exponent)
    table = PaperTable("line_fluxes", "Observed emission-line fluxes", "tab:fluxes", cols,
                       notes=notes, latex_notes=[f"Fluxes in units of {unit_tex}."],
                       tabletypesize="scriptsize")
    # two printed parts (blue: [OII]..HeI, red: [OI]..[SII]) so that each fits a page
    blue = [_mrt_label(k) for k, _, _ in FLUX_TABLE_LINES[:8]]
    red = [_mrt_label(k) for k, _, _ in FLUX_TABLE_LINES[8:]]
    if len(cols) > 7:
        table.column_groups = [blue, red]
    return table


def derived_table(ctx: Table, config: Config | None = None) -> PaperTable:
    """Derived properties: 12+log(O/H), D_L, corrected D_L, L(Halpha), SFR, M*."""
    cfg = config if config is not None else get_active_config()
    sig = _sig(cfg)
    cols = [text_column("Name", "Name", [str(x) for x in ctx["name"]], "Object name")]
    added, dropped = [], []

    def add(col: ColumnSpec | None):
        if col is not None and any(c.kind != "missing" for c in col.cells):
            cols.append(col)
            added.append(col.key)
        elif col is not None:
            dropped.append(col.description.split(" (")[0])

    if "oh_n2" in ctx.colnames:
        calib = str(ctx.meta.get("oh_n2_calibration", "Y07"))
        oh, oh_up = _col_float(ctx, "oh_n2"), _flags(ctx, "oh_n2_upper_limit")
        errs, errs_lo, note = _interval(ctx, "oh_n2", oh, _col_float(ctx, "oh_n2_err"), oh_up)
        add(value_column("OH_N2", r"12+log(O/H)$_{\rm N2}$", oh, errs, errors_lo=errs_lo,
                         upper=oh_up,
                         description=f"Oxygen abundance from N2 ({calib}; statistical "
                                     f"error{note})", exponent=0, sig=sig))
    if "oh_direct" in ctx.colnames:
        add(value_column("OH_Te", r"12+log(O/H)$_{T_e}$", _col_float(ctx, "oh_direct"),
                         _col_float(ctx, "oh_direct_err"),
                         upper=_flags(ctx, "oh_direct_upper_limit"),
                         description="Oxygen abundance, direct Te method", exponent=0, sig=sig))
    if "dl_mpc" in ctx.colnames:
        add(value_column("DL", r"$D_L$", _col_float(ctx, "dl_mpc"), _col_float(ctx, "dl_mpc_err"),
                         unit=_col_unit(ctx, "dl_mpc", u.Mpc), exponent=0,
                         description="Luminosity distance from the redshift", sig=sig))
    if "dl_used_mpc" in ctx.colnames:
        corr = np.zeros(len(ctx), bool)
        if "dl_source" in ctx.colnames:
            corr = np.array([str(s).strip() == "corrected" for s in ctx["dl_source"]])
        elif "dl_corr_mpc" in ctx.colnames:
            corr = ~np.ma.getmaskarray(_col_float(ctx, "dl_corr_mpc"))
        vals = np.ma.masked_where(~corr, _col_float(ctx, "dl_used_mpc"))
        add(value_column("DLcorr", r"$D_{L,\rm corr}$", vals, _col_float(ctx, "dl_used_mpc_err"),
                         unit=_col_unit(ctx, "dl_used_mpc", u.Mpc), exponent=0,
                         description="Peculiar-velocity corrected luminosity distance", sig=sig))
    if "l_halpha" in ctx.colnames:
        unit = _col_unit(ctx, "l_halpha", u.erg / u.s)
        add(value_column("LHa", r"$L({\rm H}\alpha)$", _col_float(ctx, "l_halpha"),
                         _col_float(ctx, "l_halpha_err"), unit=unit,
                         description="Halpha luminosity", sig=sig))
    if "sfr" in ctx.colnames:
        add(value_column("SFR", "SFR", _col_float(ctx, "sfr"), _col_float(ctx, "sfr_err"),
                         unit=_col_unit(ctx, "sfr", u.Msun / u.yr), exponent=0,
                         description="Star formation rate from L(Halpha) (Kennicutt 1998, "
                                     "Chabrier IMF)", sig=sig, default_decimals=3))
    if "log_mstar" in ctx.colnames:
        add(value_column("logM", r"log $M_\star$", _col_float(ctx, "log_mstar"),
                         _col_float(ctx, "log_mstar_err"), exponent=0,
                         description="log10 stellar mass in solar masses (Bell et al. 2003, "
                                     "Chabrier)", sig=sig))
    if not added:
        raise InputError("no derived-property column (oh_n2, dl_mpc, l_halpha, sfr, log_mstar) "
                         "holds a value: run xmpspec derive first")
    notes = ["Upper limits are marked <."]
    if dropped:
        log.info("derived-property table: no value for %s; column(s) omitted", ", ".join(dropped))
    table = PaperTable("derived_properties", "Derived properties", "tab:derived", cols,
                       notes=notes)
    table.omitted = dropped
    return table


def build_tables(derived: Table, selection: Table | None = None, sort: str = "ra",
                 config: Config | None = None, derived_source=None,
                 selection_source=None) -> tuple[list[PaperTable], list[str]]:
    """All paper tables the inputs allow (observing log, lines, derived properties).

    Returns
    -------
    tables : list of PaperTable
    notes : list of str
        Matching problems and tables that could not be made (and why).
    """
    ctx, notes = prepare_context(derived, selection, sort, config, derived_source,
                                 selection_source)
    tables = []
    for builder in (observing_log_table, line_table, line_flux_table, derived_table):
        try:
            tables.append(builder(ctx, config))
            if tables[-1].omitted:
                notes.append(f"{tables[-1].name}: no value anywhere, column(s) omitted: "
                             + ", ".join(tables[-1].omitted))
        except InputError as exc:
            notes.append(f"{builder.__name__.replace('_table', '')}: skipped ({exc.problem})")
    if not tables:
        raise InputError("no table could be made: " + "; ".join(notes), derived_source)
    return tables, notes


def write_paper_table(table: PaperTable, outdir: str | Path, style: str = "aastex",
                      provenance: dict | None = None,
                      config: Config | None = None) -> list[Path]:
    """Write one table: ``.tex`` (unless style is mrt), ``.mrt``, ``.ecsv``, ``.fits``.

    Returns
    -------
    list of pathlib.Path
    """
    from ..tableio import atomic_path, write_table
    if style not in TABLE_STYLES:
        raise InputError(f"unknown table style '{style}' ({', '.join(TABLE_STYLES)})")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    if style in ("aastex", "latex"):
        target = outdir / f"{table.name}.tex"
        with atomic_path(target) as tmp:
            tmp.write_text(table.to_latex(style))
        written.append(target)
    target = outdir / f"{table.name}.txt"
    with atomic_path(target) as tmp:
        tmp.write_text(table.to_text())
    written.append(target)
    mrt = table.to_machine(rounded=True)
    mrt.meta.clear()
    target = outdir / f"{table.name}.mrt"
    import warnings
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = _mrt_text(mrt, table, config)
        tmp.write_text(text)
    written.append(target)
    full = table.to_machine(rounded=False)
    full.meta["caption"] = table.caption
    written += write_table(full, outdir / table.name, provenance=provenance,
                           formats=("ecsv", "fits"))
    return written


def write_tables(derived_path: str | Path, outdir: str | Path,
                 selection_path: str | Path | None = None, style: str = "aastex",
                 sort: str = "ra", config: Config | None = None,
                 iterate=None) -> tuple[list[PaperTable], list[str], list[Path]]:
    """Read the inputs, build every paper table and write them (``xmpspec tables``).

    Parameters
    ----------
    derived_path : path-like
        Output of ``xmpspec derive`` (or any per-object table with its column names).
    outdir : path-like
        Output folder.
    selection_path : path-like, optional
        Selection catalogue / observing log.
    style : {"aastex", "latex", "mrt"}
    sort : {"ra", "n2_cnn", "name", "none"}
    iterate : callable, optional
        Wraps the iteration over tables (e.g. a progress bar).

    Returns
    -------
    tables, notes, files
    """
    from ..provenance import provenance_record
    from ..tableio import read_table
    if style not in TABLE_STYLES:
        raise InputError(f"unknown table style '{style}' ({', '.join(TABLE_STYLES)})")
    cfg = config if config is not None else get_active_config()
    derived = read_table(derived_path)
    selection = read_table(selection_path) if selection_path is not None else None
    built, notes = build_tables(derived, selection, sort=sort, config=cfg,
                                derived_source=derived_path, selection_source=selection_path)
    inputs = [derived_path] + ([selection_path] if selection_path is not None else [])
    written: list[Path] = []
    for t in (iterate(built) if iterate is not None else built):
        prov = provenance_record(inputs, cfg, step=f"tables:{t.name}",
                                 extra={"style": style, "sort": sort, "notes": notes})
        written += write_paper_table(t, outdir, style=style, provenance=prov, config=cfg)
    return built, notes, written


_COORD_PARTS = ("RAh", "RAm", "RAs", "DEd", "DEm", "DEs")
_BBB_ROW = re.compile(r"^(?P<head>\s*(?:\d+\s*-\s*)?\d+\s+(?P<fmt>[AIFE][\d.]+)\s+\S+\s+"
                      r"(?P<label>\S+)\s+)(?P<descr>.*)$")


def _mrt_limits(col) -> str:
    """``[min/max]`` of a numeric MRT column, written with the column's own format."""
    if col.name in _COORD_PARTS or col.dtype.kind not in "iuf":
        return ""
    vals = np.ma.compressed(np.ma.asarray(col))
    if vals.size == 0:
        return ""
    lo, hi = vals.min(), vals.max()
    if col.dtype.kind in "iu":
        text = [str(int(lo)), str(int(hi))]
    else:
        fmt = col.format or ".6g"
        fmt = fmt.lstrip("0") if fmt.startswith("0") else fmt
        text = [format(float(lo), fmt).strip(), format(float(hi), fmt).strip()]
    return f"[{text[0]}]" if text[0] == text[1] else f"[{text[0]}/{text[1]}]"


def _mrt_text(mrt: Table, table: PaperTable, config: Config | None = None) -> str:
    """The MRT file of ``mrt`` written by astropy's ``ascii.mrt`` writer, completed.

    Title and Authors come from ``[tables] title`` / ``authors`` (the title
    defaults to the table caption), the ``Table:`` line is the caption, and
    the limits in the byte-by-byte description are the minimum and maximum
    as written in the data (astropy rounds them to two decimals
    regardless of the column format).
    """
    import io
    import textwrap
    cfg = config if config is not None else get_active_config()
    title = str(cfg.get("tables.title", "") or "").strip() or table.caption
    authors = str(cfg.get("tables.authors", "") or "").strip()
    from ..tableio import ascii_table
    buf = io.StringIO()
    ascii_table(mrt).write(buf, format="ascii.mrt")  # MRT is ASCII: names transliterated
    lines = buf.getvalue().split("\n")
    out: list[str] = []
    i = 0
    in_bbb = False
    rules = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("Title:"):
            out.append(f"Title: {title}")
        elif line.startswith("Authors:"):
            out.append(f"Authors: {authors}".rstrip())
        elif line.startswith("Table:"):
            out.append(f"Table: {table.caption}")
        elif line.startswith("Byte-by-byte Description of file:"):
            out.append(f"Byte-by-byte Description of file: {table.name}.mrt")
            in_bbb = True
        elif in_bbb and line.startswith("-" * 10):
            rules += 1
            out.append(line)
            if rules == 3:
                in_bbb = False
        elif in_bbb and rules == 2 and (m := _BBB_ROW.match(line)):
            descr = [m.group("descr").strip()]
            while i + 1 < len(lines) and lines[i + 1].startswith(" ") \
                    and not _BBB_ROW.match(lines[i + 1]):
                i += 1
                descr.append(lines[i].strip())
            text = " ".join(descr)
            label = m.group("label")
            fmt = m.group("fmt")
            if label in mrt.colnames:
                text = re.sub(r"^\[[^\]]*\]", "", text)
                text = _mrt_limits(mrt[label]) + text
                cf = mrt[label].format or ""
                if fmt.startswith("E") and cf.endswith("e"):
                    width = fmt[1:].split(".")[0]
                    fmt = f"E{width}.{cf.strip('.e') or 0}"
            head = m.group("head")
            head = head.replace(m.group("fmt"), fmt.ljust(len(m.group("fmt"))), 1)
            indent = " " * len(head)
            wrapped = textwrap.wrap(text, width=max(80 - len(head), 30)) or [""]
            # a continuation line must not start with a digit (it would read as a column)
            merged: list[str] = []
            for w in wrapped:
                if merged and w[:1].isdigit():
                    merged[-1] += " " + w
                else:
                    merged.append(w)
            out.append(head + merged[0])
            out += [indent + w for w in merged[1:]]
        else:
            out.append(line)
        i += 1
    return "\n".join(out)


def format_limit(value: float, decimals: int = 2) -> str:
    """``<value`` with ``decimals`` (helper for captions and READMEs)."""
    return "<" + format_number(value, decimals)
