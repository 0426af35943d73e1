"""Publication figures: CNN comparison, property distributions, BPT diagram.

Every figure is sized for one journal column (3.4 inch wide), uses font sizes
readable at that size, labels its axes with units, and is written as PNG
(300 dpi) and PDF (TrueType fonts embedded) with matplotlib's Agg backend.
Upper limits stay upper limits: arrows in scatter plots, a separate hatched
histogram in distributions.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..config import Config, get_active_config
from ..errors import InputError
from ..physics._columns import ColumnValueError
from ..tableio import atomic_path

__all__ = [
    "COLUMN_WIDTH_IN",
    "figure_style",
    "save_figure",
    "draw_upper_limits",
    "comparison_plot",
    "distribution_plot",
    "bpt_plot",
    "make_all_plots",
    "DISTRIBUTIONS",
]

log = logging.getLogger(__name__)

COLUMN_WIDTH_IN = 3.4

STYLE = {
    "font.size": 8.5,
    "axes.labelsize": 9,
    "axes.titlesize": 9,
    "legend.fontsize": 7,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "xtick.minor.visible": True,
    "ytick.minor.visible": True,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.0,
    "lines.markersize": 4,
    "errorbar.capsize": 0,
    "legend.frameon": False,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "mathtext.default": "regular",
}

#: colours (colour-blind safe, Okabe & Ito)
C_GOOD = "#0072B2"
C_FAIR = "#E69F00"
C_LIMIT = "#555555"
C_AGN = "#D55E00"
C_COMP = "#009E73"


@contextmanager
def figure_style():
    """Context: matplotlib with the Agg backend and the column-width style."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    with plt.rc_context(STYLE):
        yield plt


class OutputPathError(InputError):
    """A figure cannot be written (folder unwritable, disk full): an input error of the
    command (exit 2) that :func:`make_all_plots` reports as such, not as a skipped figure."""


def figure_metadata(kind: str, provenance: dict | None = None) -> dict:
    """Provenance in a figure file's own metadata (matplotlib ``savefig(metadata=...)``).

    PNG: ``Software``, ``Description`` (:func:`xmpspec.provenance.provenance_lines`) and
    ``xmpspec_provenance`` (the record as JSON); PDF: ``Creator``, ``Subject`` (the lines)
    and ``Keywords`` (JSON), no creation date; SVG: ``Creator`` and ``Description``;
    EPS/PS: ``Creator``. The record's creation time is left out, so that re-running a
    command gives identical figures.

    Parameters
    ----------
    kind : str
        File format (png, pdf, svg, eps, ps).
    provenance : dict, optional
        A :func:`~xmpspec.provenance.provenance_record` (default: one built from the
        active configuration and the running command).
    """
    import json

    from ..provenance import provenance_lines, provenance_record
    record = dict(provenance) if provenance is not None else provenance_record(step="figure")
    record.pop("created_utc", None)
    creator = f"xmpspec {record.get('xmpspec_version', '')}".strip()
    text = "\n".join(provenance_lines(record))
    full = json.dumps(record, default=str, ensure_ascii=False)
    if kind == "png":
        return {"Software": creator, "Description": text, "xmpspec_provenance": full}
    if kind == "pdf":
        return {"Creator": creator, "Subject": text, "Keywords": full, "CreationDate": None}
    if kind == "svg":
        return {"Creator": creator, "Description": text}
    if kind in ("eps", "ps"):
        return {"Creator": creator}
    return {}


def save_figure(fig, path_stem: str | Path, formats: Sequence[str] = ("png", "pdf"),
                provenance: dict | None = None) -> list[Path]:
    """Write ``fig`` to ``path_stem.<fmt>`` for each format (atomically) and close it.

    Every file carries the provenance record in its metadata (:func:`figure_metadata`;
    default: the active configuration and the running command).
    """
    import matplotlib.pyplot as plt
    stem = Path(path_stem)
    written = []
    for fmt in formats:
        target = stem.with_name(stem.name + "." + fmt.lstrip("."))
        try:
            with atomic_path(target) as tmp:
                kind = fmt.lstrip(".").lower()
                fig.savefig(tmp, format=kind, metadata=figure_metadata(kind, provenance))
        except InputError as exc:        # the output cannot be written: never a skipped figure
            plt.close(fig)
            raise OutputPathError(exc.problem, exc.source) from None
        written.append(target)
    plt.close(fig)
    return written


def draw_upper_limits(ax, x, y, length: float, color, label: str | None = None) -> None:
    """Upper limits as downward arrows from a bar at the limit (the one way figures draw them).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    x, y : array-like
        Positions; ``y`` is the limit.
    length : float
        Arrow length in data units of the y axis.
    color : color
    label : str, optional
        Legend label; the legend entry is an arrow, as drawn (not an error-bar cap).
    """
    ax.errorbar(x, y, yerr=length, uplims=True, marker="_", ms=6, mew=1.2, color=color,
                ls="none", elinewidth=0.8, capsize=2, zorder=3)
    if label is not None:
        ax.plot([], [], ls="none", marker=r"$\downarrow$", ms=8, color=color, label=label)


def _masked(table: Table, name: str) -> np.ma.MaskedArray:
    """A column as a masked float array (all masked when absent); the one reader of
    :mod:`xmpspec.compare.columns`: a cell that is not a number or a negative error
    raises :class:`~xmpspec.physics._columns.ColumnValueError` (an input error)."""
    from ..compare.columns import _float_column
    if name not in table.colnames:
        return np.ma.masked_all(len(table))
    return _float_column(table, name)


def _flag(table: Table, name: str) -> np.ndarray:
    from ..compare import as_bool
    if name not in table.colnames:
        return np.zeros(len(table), bool)
    return as_bool(table[name], name)


def _padded(lo, hi, frac=0.08, min_span=0.2):
    span = max(hi - lo, min_span)
    mid = 0.5 * (lo + hi)
    return mid - 0.5 * span * (1 + 2 * frac), mid + 0.5 * span * (1 + 2 * frac)


# ----------------------------------------------------------------------------- comparison

FLAG_WEAKER = "n2_flux_weaker_than_gate"


def _weaker_than_gate(t: Table, observed=None) -> np.ndarray:
    """Per row of the comparison table: reported [NII] flux weaker than the gate said."""
    if FLAG_WEAKER in t.colnames:
        return _flag(t, FLAG_WEAKER)
    out = np.zeros(len(t), bool)
    if observed is None:
        return out
    if not isinstance(observed, Table):
        from ..tableio import read_table
        observed = read_table(observed)
    if FLAG_WEAKER not in observed.colnames or "name" not in observed.colnames:
        return out
    flags = dict(zip([str(n) for n in observed["name"]], _flag(observed, FLAG_WEAKER),
                     strict=True))
    return np.array([bool(flags.get(str(n), False)) for n in t["name"]])


def background_points(background: Table | None, source=None):
    """The (n2_cnn, n2) points of a comparison figure's background table.

    Parameters
    ----------
    background : Table or None
        Table with ``n2`` and ``n2_cnn`` (e.g. the CNN's training set).
    source : path-like, optional
        Its file, for messages.

    Returns
    -------
    (ndarray, ndarray) or (None, None)
        x = n2_cnn and y = n2 where both are numbers; None without any.

    Raises
    ------
    InputError
        A column is absent, or a cell is not a number (naming ``source``): ``xmpspec
        compare`` calls this before it writes anything.
    """
    if background is None:
        return None, None
    from ..tableio import require_columns
    src = source or "background table"
    require_columns(background, ["n2", "n2_cnn"], src)
    try:
        bx, by = _masked(background, "n2_cnn"), _masked(background, "n2")
    except ColumnValueError as exc:
        raise ColumnValueError(exc.problem, src) from None
    good = ~(np.ma.getmaskarray(bx) | np.ma.getmaskarray(by))
    if not good.any():
        return None, None
    return np.ma.getdata(bx)[good], np.ma.getdata(by)[good]


def comparison_plot(result, path_stem: str | Path, background: Table | None = None,
                    formats: Sequence[str] = ("png", "pdf"), observed=None,
                    provenance: dict | None = None, background_source=None) -> list[Path]:
    """Observed versus CNN-predicted N2 for a :class:`~xmpspec.compare.ComparisonResult`.

    Labels follow the N2 gate (its significance, ``significance``): good
    (gate >= 3) detections are filled circles, fair (2 <= gate < 3) open
    circles, limits (gate < 2) downward arrows (an arrow in the legend too).
    Objects whose reported [NII] flux is weaker than the gate said
    (``n2_flux_weaker_than_gate`` in the result table, when present) are
    framed by a red square (read from ``observed``, the measured/derived table or its
    file, by name, when the result table does not carry the column). The axes take in
    the error bars up to 0.5 dex;
    longer ones are clipped with an arrow at the edge. The one-to-one line and the band
    of +-``result.band`` dex are drawn. ``background`` (columns ``n2`` and
    ``n2_cnn``, e.g. the CNN's training or test set) is shown as a grey
    density behind the points (``background_source``: its file, for messages).
    ``provenance`` (a record of :func:`xmpspec.provenance.provenance_record`) goes into
    the files' metadata (:func:`figure_metadata`).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    InputError
        No matched object has both observed and predicted N2.
    """
    t = result.table
    n2 = _masked(t, "n2")
    cnn = _masked(t, "n2_cnn")
    ok = (t["match_status"] == "matched") & ~np.ma.getmaskarray(n2) & ~np.ma.getmaskarray(cnn)
    if not ok.any():
        raise InputError("no matched object has both an observed and a predicted N2: "
                         "no comparison figure written", path_stem)
    n2_err = np.ma.filled(_masked(t, "n2_err"), 0.0)
    cnn_err = np.ma.filled(_masked(t, "n2_cnn_err"), 0.0)
    limit = np.asarray(t["n2_upper_limit"], bool)
    grade = np.asarray(t["grade"])
    excl = (np.asarray(t["excluded"], bool) if "excluded" in t.colnames
            else np.zeros(len(t), bool))
    x = np.ma.getdata(cnn)
    y = np.ma.getdata(n2)

    weaker = _weaker_than_gate(t, observed)

    # range from the points and their error bars; a few huge error bars must not squash
    # the plot: bars are counted up to MAX_BAR dex and the rest is clipped with an arrow
    max_bar = 0.5
    xe, ye = np.minimum(cnn_err, max_bar), np.minimum(np.where(limit, 0.0, n2_err), max_bar)
    lo = min((x[ok] - xe[ok]).min(), (y[ok] - ye[ok]).min()) - 0.15
    hi = max((x[ok] + xe[ok]).max(), (y[ok] + ye[ok]).max()) + 0.1
    lo, hi = _padded(lo, hi, frac=0.0, min_span=0.6)
    bg_x, bg_y = background_points(background, background_source)

    with figure_style() as plt:
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 1.12 * COLUMN_WIDTH_IN))
        if bg_x is not None:
            if len(bg_x) > 300:
                ax.hexbin(bg_x, bg_y, gridsize=45, extent=(lo, hi, lo, hi), cmap="Greys",
                          bins="log", mincnt=1, linewidths=0, alpha=0.6, zorder=0)
            else:
                ax.scatter(bg_x, bg_y, s=3, c="0.75", lw=0, zorder=0)
            ax.plot([], [], "s", color="0.7", ms=4, label=f"training set (N={len(bg_x)})")
        grid = np.array([lo, hi])
        ax.fill_between(grid, grid - result.band, grid + result.band, color="#9ecae1",
                        alpha=0.45, lw=0, zorder=1,
                        label=rf"$\pm$MAE band ({result.band:.2f} dex)")
        ax.plot(grid, grid, "k-", lw=0.9, zorder=2, label="one-to-one")

        sel_good = ok & ~excl & ~limit & (grade == "good")
        sel_fair = ok & ~excl & ~limit & (grade == "fair")
        sel_other = ok & ~excl & ~limit & ~np.isin(grade, ["good", "fair"])
        sel_lim = ok & ~excl & limit
        sel_exc = ok & excl
        if sel_exc.any():
            ax.scatter(x[sel_exc], y[sel_exc], marker="x", s=24, c="k", lw=1.0, zorder=6,
                       label=f"excluded: {t.meta.get('exclude_flag', 'flag')} "
                             f"({sel_exc.sum()})")
        ekw = dict(ls="none", elinewidth=0.6, zorder=4)
        if sel_good.any():
            ax.errorbar(x[sel_good], y[sel_good], xerr=cnn_err[sel_good], yerr=n2_err[sel_good],
                        marker="o", ms=4, color=C_GOOD, mec=C_GOOD,
                        label=f"good, gate $\\geq$ 3 ({sel_good.sum()})", **ekw)
        if sel_fair.any():
            ax.errorbar(x[sel_fair], y[sel_fair], xerr=cnn_err[sel_fair], yerr=n2_err[sel_fair],
                        marker="o", ms=4, mfc="white", color=C_FAIR, mec=C_FAIR, mew=1.0,
                        label=f"fair, 2 $\\leq$ gate < 3 ({sel_fair.sum()})", **ekw)
        if sel_other.any():
            ax.errorbar(x[sel_other], y[sel_other], xerr=cnn_err[sel_other],
                        yerr=n2_err[sel_other], marker="D", ms=3.5, mfc="white", color="0.3",
                        label=f"detection, gate < 2 or unknown ({sel_other.sum()})", **ekw)
        if sel_lim.any():
            arrow = 0.06 * (hi - lo)
            ax.errorbar(x[sel_lim], y[sel_lim], xerr=cnn_err[sel_lim], ls="none", marker="none",
                        color=C_LIMIT, elinewidth=0.6, capsize=0, zorder=3)
            draw_upper_limits(ax, x[sel_lim], y[sel_lim], arrow, C_LIMIT,
                              label=rf"limit (2$\sigma$), gate < 2 ({sel_lim.sum()})")
        sel_weak = ok & weaker & ~excl
        if sel_weak.any():
            ax.scatter(x[sel_weak], y[sel_weak], marker="s", s=55, facecolors="none",
                       edgecolors="C3", lw=0.9, zorder=7,
                       label=f"[N II] flux weaker than gate ({sel_weak.sum()})")
        # error bars running off the axes: clipped there, an arrow shows they continue
        clip = dict(ls="none", ms=3.5, zorder=5, clip_on=False)
        sel_det = ok & ~excl & ~limit
        col = np.where(grade == "good", C_GOOD, np.where(grade == "fair", C_FAIR, "0.3"))
        for i in np.flatnonzero(sel_det | (ok & ~excl & limit)):
            c = C_LIMIT if limit[i] else col[i]
            if not limit[i] and y[i] - n2_err[i] < lo:
                ax.plot(x[i], lo, marker="v", color=c, **clip)
            if not limit[i] and y[i] + n2_err[i] > hi:
                ax.plot(x[i], hi, marker="^", color=c, **clip)
            if x[i] - cnn_err[i] < lo:
                ax.plot(lo, y[i], marker="<", color=c, **clip)
            if x[i] + cnn_err[i] > hi:
                ax.plot(hi, y[i], marker=">", color=c, **clip)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(r"N2$_{\rm CNN}$ (predicted) [dex]")
        ax.set_ylabel(r"N2$_{\rm obs}$ = log([N II]$\lambda$6585/H$\alpha$) [dex]")
        s = result.statistics["all"]
        if s["n"]:
            ax.text(0.97, 0.04, f"N = {s['n']}\nMAE = {s['mae']:.2f}\nbias = {s['bias']:+.2f}\n"
                                f"RMS = {s['rms']:.2f}", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=7)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, handlelength=1.5,
                  columnspacing=0.8, labelspacing=0.3, fontsize=6.5)
        return save_figure(fig, path_stem, formats, provenance)


# ----------------------------------------------------------------------------- distributions

#: name -> (column, axis label, log10 of the values?, config threshold key, threshold label)
DISTRIBUTIONS = {
    "oh": ("oh_n2", "12 + log(O/H)  (N2{calib}) [dex]", False),
    "sfr": ("sfr", r"log(SFR$_{\rm H\alpha}$ / M$_\odot$ yr$^{-1}$)", True),
    "mstar": ("log_mstar", r"log(M$_*$ / M$_\odot$)  (Bell+03)", False),
}

#: the figures of :func:`make_all_plots` (file stems in its output folder)
PLOT_NAMES = (*(f"{k}_distribution" for k in DISTRIBUTIONS), "bpt")

#: units of the distributions' columns that have one (converted; another kind is an error)
_DISTRIBUTION_UNITS = {"sfr": "solMass / yr"}


def _distribution_values(table: Table, col: str) -> np.ma.MaskedArray:
    """A distribution's column as numbers in its unit (:data:`_DISTRIBUTION_UNITS`)."""
    import astropy.units as u
    vals = _masked(table, col)
    want = _DISTRIBUTION_UNITS.get(col)
    have = getattr(table[col], "unit", None) if col in table.colnames else None
    if want is not None and have is not None and u.Unit(have) != u.dimensionless_unscaled:
        if not u.Unit(have).is_equivalent(want):
            raise ColumnValueError(f"column '{col}' has unit '{have}', not convertible to "
                                   f"'{u.Unit(want)}'")
        vals = vals * u.Unit(have).to(want)
    return vals


#: the numeric columns of the BPT diagram (with their ``_err``)
_BPT_COLUMNS = ("n2", "o3")


def _limit_flags(table: Table, col: str) -> np.ndarray:
    for cand in (f"{col}_upper_limit", f"{col}_limit"):
        if cand in table.colnames:
            return _flag(table, cand)
    if col.startswith("oh_n2"):
        return _flag(table, "n2_upper_limit")
    return np.zeros(len(table), bool)


def distribution_plot(table: Table, key: str, path_stem: str | Path,
                      config: Config | None = None,
                      formats: Sequence[str] = ("png", "pdf"),
                      provenance: dict | None = None) -> list[Path]:
    """Histogram of one derived quantity, detections and upper limits separately.

    Parameters
    ----------
    table : astropy.table.Table
        Output of ``xmpspec derive``.
    key : {"oh", "sfr", "mstar"}
        Which quantity (see :data:`DISTRIBUTIONS`).
    path_stem : path-like
        Output path without suffix.
    provenance : dict, optional
        Provenance record for the figures' metadata (:func:`figure_metadata`).

    Raises
    ------
    InputError
        The column is absent or holds no value.
    """
    cfg = config if config is not None else get_active_config()
    col, label, take_log = DISTRIBUTIONS[key]
    if col not in table.colnames:
        raise InputError(f"no '{col}' column: no {key} distribution", path_stem)
    vals = _distribution_values(table, col)
    lim = _limit_flags(table, col)
    if take_log:
        bad = np.ma.getdata(vals) <= 0
        vals = np.ma.masked_where(bad | np.ma.getmaskarray(vals), vals)
        vals = np.ma.log10(vals)
    have = ~np.ma.getmaskarray(vals)
    if not have.any():
        raise InputError(f"'{col}' has no value: no {key} distribution", path_stem)
    v = np.ma.getdata(vals)
    det = have & ~lim
    ul = have & lim
    lo, hi = v[have].min(), v[have].max()
    span = max(hi - lo, 0.3)
    width = _nice_bin(span / max(6, min(15, int(np.sqrt(have.sum()) * 2))))
    start = np.floor((lo - 0.5 * width) / width) * width
    bins = np.arange(start, hi + 1.5 * width, width)
    n_missing = int((~have).sum())

    with figure_style() as plt:
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 0.72 * COLUMN_WIDTH_IN))
        data, colors, labels, hatches = [], [], [], []
        if det.any():
            data.append(v[det])
            colors.append(C_GOOD)
            labels.append(f"measured ({det.sum()})")
            hatches.append(None)
        if ul.any():
            data.append(v[ul])
            colors.append("white")
            labels.append(f"upper limits ({ul.sum()})")
            hatches.append("////")
        _, _, patches = ax.hist(data, bins=bins, stacked=True, color=colors, label=labels,
                                edgecolor="k", linewidth=0.6)
        if len(data) == 1:
            patches = [patches]
        for group, hatch in zip(patches, hatches, strict=True):
            if hatch:
                for p in group:
                    p.set_hatch(hatch)
                    p.set_edgecolor(C_LIMIT)
        if key == "oh":
            empg = float(cfg["abundances"]["empg_oh"])
            if bins[0] < empg < bins[-1] + width:
                ax.axvline(empg, color=C_AGN, ls="--", lw=0.9,
                           label=f"EMPG ({empg:g} = 0.1 Z$_\\odot$)")
        if "{calib}" in label:
            calib = str(table.meta.get("oh_n2_calibration", "")).strip()
            names = {"Y07": "Yin+07", "PP04": "PP04"}
            label = label.format(calib=f", {names.get(calib, calib)}" if calib else "")
        ax.set_xlabel(label)
        ax.set_ylabel("number of galaxies")
        from matplotlib.ticker import MaxNLocator
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, ax.get_ylim()[1] * 1.55)
        if n_missing:
            ax.text(0.98, 0.96, f"{n_missing} without value", transform=ax.transAxes,
                    ha="right", va="top", fontsize=7, color="0.3")
        # an opaque legend box: vertical threshold lines pass behind it
        ax.legend(loc="upper left", frameon=True, framealpha=1.0, edgecolor="none")
        return save_figure(fig, path_stem, formats, provenance)


def _nice_bin(w: float) -> float:
    exp = np.floor(np.log10(w))
    f = w / 10 ** exp
    nice = 1 if f < 1.5 else 2 if f < 3.5 else 5 if f < 7.5 else 10
    return float(nice * 10 ** exp)


# ----------------------------------------------------------------------------- BPT

def bpt_curve(params: Sequence[float], x: np.ndarray) -> np.ndarray:
    """``y = a / (x - b) + c`` of a BPT demarcation (science.md); NaN at x >= b."""
    a, b, c = (float(p) for p in params)
    x = np.asarray(x, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = a / (x - b) + c
    return np.where(x < b, y, np.nan)


def bpt_plot(table: Table, path_stem: str | Path, config: Config | None = None,
             formats: Sequence[str] = ("png", "pdf"),
             provenance: dict | None = None) -> list[Path]:
    """BPT diagram: log([OIII]5008/Hbeta) versus log([NII]6585/Halpha).

    Draws Kauffmann et al. (2003), Kewley et al. (2001) and the Kewley et al.
    (2013) star-forming sequence +- its width (configuration ``[bpt]``).
    N2 upper limits are leftward arrows, O3 upper limits downward arrows;
    ``bpt_class`` (when present) sets the symbol colour and
    ``low_z_agn_candidate`` rows are ringed. ``provenance`` goes into the files'
    metadata (:func:`figure_metadata`).

    Raises
    ------
    InputError
        No object has both N2 and O3.
    """
    cfg = config if config is not None else get_active_config()
    bcfg = cfg["bpt"]
    for col in ("n2", "o3"):
        if col not in table.colnames:
            raise InputError(f"no '{col}' column: no BPT diagram", path_stem)
    x = _masked(table, "n2")
    y = _masked(table, "o3")
    xl = _limit_flags(table, "n2")
    yl = _limit_flags(table, "o3")
    if "n2_state" in table.colnames:
        st = np.array([str(s) for s in table["n2_state"]])
        x = np.ma.masked_where(~np.isin(st, ["detected", "upper_limit"]), x)
    if "o3_state" in table.colnames:
        st = np.array([str(s) for s in table["o3_state"]])
        y = np.ma.masked_where(~np.isin(st, ["detected", "upper_limit"]), y)
    ok = ~(np.ma.getmaskarray(x) | np.ma.getmaskarray(y))
    if not ok.any():
        raise InputError("no object has both N2 and O3: no BPT diagram", path_stem)
    xe = np.ma.filled(_masked(table, "n2_err"), 0.0)
    ye = np.ma.filled(_masked(table, "o3_err"), 0.0)
    xd, yd = np.ma.getdata(x), np.ma.getdata(y)
    cls = (np.array([str(c).strip().lower() for c in np.ma.filled(
        np.ma.asarray(table["bpt_class"]).astype(str), "")])
        if "bpt_class" in table.colnames else np.full(len(table), ""))
    agn_cand = _flag(table, "low_z_agn_candidate")

    xmin = min(-2.0, np.nanmin(xd[ok]) - 0.3)
    xmax = 0.6
    ymin = min(-1.0, np.nanmin(yd[ok]) - 0.25)
    ymax = max(1.5, np.nanmax(yd[ok]) + 0.2)

    with figure_style() as plt:
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 0.9 * COLUMN_WIDTH_IN))
        xs = np.linspace(xmin, xmax, 600)
        k13 = bpt_curve(bcfg["kewley13"], xs)
        w = float(bcfg["kewley13_width"])
        ax.fill_between(xs, k13 - w, k13 + w, color="0.85", lw=0, zorder=0,
                        label=rf"Kewley+13 SF sequence $\pm${w:g}")
        ax.plot(xs, k13, color="0.45", lw=0.8, ls=":", zorder=1)
        ax.plot(xs, bpt_curve(bcfg["kauffmann03"], xs), "k--", lw=0.9, zorder=1,
                label="Kauffmann+03")
        ax.plot(xs, bpt_curve(bcfg["kewley01"], xs), "k-", lw=0.9, zorder=1,
                label="Kewley+01")

        colour = np.full(len(table), C_GOOD, dtype=object)
        colour[np.char.find(cls.astype(str), "comp") >= 0] = C_COMP
        colour[np.char.find(cls.astype(str), "agn") >= 0] = C_AGN
        arrow_x = 0.07 * (xmax - xmin)
        arrow_y = 0.07 * (ymax - ymin)
        det = ok & ~xl & ~yl
        for c in np.unique(colour[ok]):
            sel = det & (colour == c)
            if sel.any():
                ax.errorbar(xd[sel], yd[sel], xerr=xe[sel], yerr=ye[sel], ls="none",
                            marker="o", ms=3.5, color=c, elinewidth=0.5, zorder=3)
            sel = ok & (xl | yl) & (colour == c)
            if sel.any():
                # limits: open symbol at the limit, error bar of the measured axis, arrow(s)
                ax.errorbar(xd[sel], yd[sel], xerr=np.where(xl[sel], 0, xe[sel]),
                            yerr=np.where(yl[sel], 0, ye[sel]), ls="none", marker="o", ms=3.5,
                            mfc="white", color=c, elinewidth=0.5, capsize=0, zorder=3)
            sel_x = ok & xl & (colour == c)
            if sel_x.any():
                ax.errorbar(xd[sel_x], yd[sel_x], xerr=arrow_x, xuplims=True, ls="none",
                            marker="none", color=c, elinewidth=0.7, capsize=2.5, zorder=3)
            sel_y = ok & yl & (colour == c)
            if sel_y.any():
                ax.errorbar(xd[sel_y], yd[sel_y], yerr=arrow_y, uplims=True, ls="none",
                            marker="none", color=c, elinewidth=0.7, capsize=2.5, zorder=3)
        # legend proxies
        ax.plot([], [], "o", color=C_GOOD, ms=3.5, label=f"detected N2 ({(det).sum()})")
        limit_label = None
        if (ok & xl).any():
            limit_label = f"N2 upper limit ({(ok & xl).sum()})"
            ax.plot([], [], marker="o", mfc="white", ls="none", color=C_GOOD, ms=3.5,
                    label=limit_label)
        for name, c in (("composite", C_COMP), ("AGN", C_AGN)):
            if (ok & (colour == c)).any():
                ax.plot([], [], "o", color=c, ms=3.5, label=f"{name} ({(ok & (colour == c)).sum()})")
        cand = ok & agn_cand
        if cand.any():
            ax.scatter(xd[cand], yd[cand], s=70, facecolors="none", edgecolors=C_AGN, lw=1.0,
                       zorder=4, label=f"low-Z AGN candidate ({cand.sum()})")
        ax.text(0.97, 0.96, "AGN", transform=ax.transAxes, ha="right", va="top", fontsize=8,
                color="0.3")
        ax.text(0.03, 0.03, "star-forming", transform=ax.transAxes, ha="left", va="bottom",
                fontsize=8, color="0.3")
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
        ax.set_xlabel(r"log([N II]$\lambda$6585/H$\alpha$)")
        ax.set_ylabel(r"log([O III]$\lambda$5008/H$\beta$)")
        handles, labels = ax.get_legend_handles_labels()
        if limit_label is not None:  # the legend symbol of a limit: arrow + open circle
            from matplotlib.legend_handler import HandlerTuple
            from matplotlib.lines import Line2D
            k = labels.index(limit_label)
            arrow = Line2D([], [], marker=r"$\leftarrow$", ls="none", color=C_GOOD, ms=7)
            handles[k] = (arrow, handles[k])
            ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 0.07),
                      fontsize=6.5, handlelength=1.6, labelspacing=0.25,
                      handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)})
        else:
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 0.07), fontsize=6.5,
                      handlelength=1.6, labelspacing=0.25)
        n_missing = int((~ok).sum())
        if n_missing:
            ax.text(0.97, 0.04, f"{n_missing} without N2 or O3", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=6.5, color="0.3")
        return save_figure(fig, path_stem, formats, provenance)


# ----------------------------------------------------------------------------- all

def make_all_plots(table: Table, outdir: str | Path, config: Config | None = None,
                   formats: Sequence[str] = ("png", "pdf"),
                   source=None, provenance: dict | None = None,
                   ) -> tuple[dict[str, list[Path]], list[str]]:
    """Every figure that the columns of a derived table allow.

    Parameters
    ----------
    table : astropy.table.Table
        Output of ``xmpspec derive`` (or any table with the same columns).
    outdir : path-like
        Folder for ``oh_distribution``, ``sfr_distribution``,
        ``mstar_distribution`` and ``bpt`` (.png and .pdf).
    config : Config, optional
        Configuration (default: active).
    formats : sequence of str
        Figure formats.
    source : path-like, optional
        File of ``table``, for messages.
    provenance : dict, optional
        Provenance record written into every figure's metadata (:func:`figure_metadata`).

    Returns
    -------
    written : dict
        Figure name -> files written.
    skipped : list of str
        Why figures were not made (missing columns or values).

    Raises
    ------
    InputError
        The table is empty, or no figure could be made.
    """
    if len(table) == 0:
        raise InputError("the table has no rows: no figures written", source)
    from ..tableio import ensure_output_dir
    # the numbers every figure reads are checked first: a bad value writes no figure at all
    for col in [*(c for c, _, _ in DISTRIBUTIONS.values()), *_BPT_COLUMNS]:
        for name in (col, f"{col}_err"):
            try:
                _distribution_values(table, name)
            except ColumnValueError as exc:
                raise ColumnValueError(exc.problem, source) from None
    outdir = Path(outdir)
    created = not outdir.exists()
    ensure_output_dir(outdir)    # an unusable output folder is an error, not a skipped figure
    written: dict[str, list[Path]] = {}
    skipped: list[str] = []
    makers = [lambda name, k=k: distribution_plot(table, k, outdir / name, config, formats,
                                                   provenance) for k in DISTRIBUTIONS]
    makers.append(lambda name: bpt_plot(table, outdir / name, config, formats, provenance))
    jobs = [(name, lambda name=name, make=make: make(name))
            for name, make in zip(PLOT_NAMES, makers, strict=True)]
    for name, job in jobs:
        try:
            written[name] = job()
        except ColumnValueError as exc:      # a bad value is an input error, not a skip
            raise ColumnValueError(exc.problem, exc.source or source) from None
        except OutputPathError:
            raise
        except InputError as exc:
            skipped.append(f"{name}: {exc.problem}")
    if not written:
        if created:
            with contextlib.suppress(OSError):   # leave no empty folder behind
                outdir.rmdir()
        raise InputError("no figure could be made: " + "; ".join(skipped), source)
    return written, skipped
