"""The paper-table model and its LaTeX/AASTeX rendering.

A :class:`PaperTable` holds typed cells (:class:`ColumnSpec`, built with
:func:`value_column` / :func:`text_column`) and the machine-readable values;
it renders AASTeX ``deluxetable`` or plain LaTeX, text, and the table behind
the MRT, ECSV and FITS files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.table import Column, MaskedColumn, Table

from ..errors import InputError
from .formatting import (
    Cell,
    choose_exponent,
    error_decimals,
    latex_escape,
    unit_latex,
    unit_text,
)

TABLE_STYLES = ("aastex", "latex", "mrt")

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


def _carry_sexagesimal(big, minutes, seconds, decimals: int):
    """Seconds rounded to ``decimals``; 60 s carried into minutes, 60 min into ``big``."""
    seconds = np.round(seconds, decimals)
    carry = seconds >= 60
    seconds[carry] -= 60
    minutes = minutes + carry
    carry = minutes >= 60
    minutes[carry] -= 60
    return big + carry, minutes, seconds


def _sexagesimal_columns(t: Table, kind: str, deg: np.ndarray, miss: np.ndarray) -> None:
    from astropy.coordinates import Angle
    if kind == "ra":
        h, m, s = _carry_sexagesimal(*Angle(np.where(miss, 0, deg), u.deg).hms, 2)
        h = h % 24
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
        d, m, s = _carry_sexagesimal(*a.dms, 1)
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
