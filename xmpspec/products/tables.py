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

This module builds the observing-log, line and derived tables and writes
them; the table model and LaTeX rendering are in
:mod:`~xmpspec.products.papertable`, the context and column readers in
:mod:`~xmpspec.products.tablecontext`, the line-flux table in
:mod:`~xmpspec.products.fluxtable` and the MRT text in :mod:`~xmpspec.products.mrt`
(their public names are importable from here).
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..config import Config, get_active_config
from ..errors import InputError
from ..physics._columns import ColumnValueError
from .fluxtable import FLUX_TABLE_LINES, line_flux_table
from .formatting import (
    Cell,
    choose_exponent,
    format_number,
    sexagesimal_dec,
    sexagesimal_ra,
)
from .mrt import _mrt_text
from .papertable import TABLE_STYLES, ColumnSpec, PaperTable, text_column, value_column
from .tablecontext import _col_float, _col_unit, _flags, _interval, _sig, prepare_context

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
        except ColumnValueError as exc:      # a bad value is an input error, not a skip
            raise ColumnValueError(exc.problem, exc.source or derived_source) from None
        except InputError as exc:
            notes.append(f"{builder.__name__.replace('_table', '')}: skipped ({exc.problem})")
    if not tables:
        raise InputError("no table could be made: " + "; ".join(notes), derived_source)
    return tables, notes


def write_paper_table(table: PaperTable, outdir: str | Path, style: str = "aastex",
                      provenance: dict | None = None,
                      config: Config | None = None) -> list[Path]:
    """Write one table: ``.tex`` (unless style is mrt), ``.txt``, ``.mrt``, ``.ecsv``, ``.fits``.

    Every file carries the provenance: the ECSV/FITS files the whole record, the
    others its text form (:func:`xmpspec.provenance.provenance_lines`) as ``%``
    comments (LaTeX), ``#`` comments (text) or in the MRT ``Notes`` section (ASCII).

    Parameters
    ----------
    table : PaperTable
        The table.
    outdir : path-like
        Output folder.
    style : str
        ``aastex``, ``latex`` or ``mrt`` (no ``.tex``).
    provenance : dict, optional
        Provenance record (default: the active configuration and the running command).
    config : Config, optional
        Configuration (default: active).

    Returns
    -------
    list of pathlib.Path
    """
    from ..provenance import provenance_lines, provenance_record
    from ..tableio import atomic_path, fits_ascii, write_table
    if style not in TABLE_STYLES:
        raise InputError(f"unknown table style '{style}' ({', '.join(TABLE_STYLES)})")
    if provenance is None:
        provenance = provenance_record(config=config, step=f"tables:{table.name}")
    about = provenance_lines(provenance)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    if style in ("aastex", "latex"):
        target = outdir / f"{table.name}.tex"
        with atomic_path(target) as tmp:
            tmp.write_text("".join(f"% {line}\n" for line in about) + table.to_latex(style),
                           encoding="utf-8")
        written.append(target)
    target = outdir / f"{table.name}.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("".join(f"# {line}\n" for line in about) + table.to_text(),
                       encoding="utf-8")
    written.append(target)
    mrt = table.to_machine(rounded=True)
    mrt.meta.clear()
    target = outdir / f"{table.name}.mrt"
    import warnings
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = _mrt_text(mrt, table, config)
        notes = [fits_ascii(n) for n in ["Provenance: " + about[0], *about[1:]]]  # ASCII
        text = text.replace("\nNotes:\n", "\nNotes:\n" + "".join(
            textwrap.fill(n, 80, subsequent_indent="  ", break_long_words=True,
                          break_on_hyphens=False) + "\n" for n in notes), 1)
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


def format_limit(value: float, decimals: int = 2) -> str:
    """``<value`` with ``decimals`` (helper for captions and READMEs)."""
    return "<" + format_number(value, decimals)
