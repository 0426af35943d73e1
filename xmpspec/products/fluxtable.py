"""The line-flux table: one column per line of :data:`FLUX_TABLE_LINES`, MRT labels.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..config import Config, get_active_config
from ..errors import InputError
from .formatting import (
    choose_exponent,
    unit_latex,
)
from .papertable import PaperTable, text_column, value_column
from .tablecontext import _col_float, _col_unit, _sig

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
