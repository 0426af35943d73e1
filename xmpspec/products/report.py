"""One self-contained HTML page per night or per measure/batch output folder.

:func:`write_report` looks through a folder written by ``xmpspec run``,
``reduce``, ``measure``, ``batch`` or ``demo`` and puts what it finds on one
page for the observer at the telescope:

- the night log(s) (``night_log.ecsv`` of ``xmpspec setup``) with their flags;
- calibration QA of the reductions (``summary.ecsv``: wavelength RMS, flux
  calibration, S/N; PypeIt's wavelength-fit and sensitivity-function QA PNGs);
- one panel per target: the spectrum with the fitted lines (Gaussians of
  the lines table over a running-median continuum), N2 with its interval or
  limit, the line states, notes and flags, derived O/H and BPT class;
- N2 against the CNN (``comparison.ecsv``/``.png``), the BPT diagram;
- failures (``failed.ecsv``) and warnings (notes, problems, flags).

The page opens offline: every figure is embedded as a base64 PNG, styles
are inline and no URL is referenced.
"""

from __future__ import annotations

import base64
import contextvars
import html
import io
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..config import Config, get_active_config
from ..errors import InputError, XmpspecError

__all__ = ["write_report", "find_report_inputs", "render_report", "ReportInputs"]

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
_MAX_WARNINGS = 500  # warnings listed on the page (the tables hold every note)
_SKIP_DIRS = {"QA", "Calibrations", "Science", "Masters", "raw", ".git"}
#: tables of the folder that could not be read while one page is rendered (path -> problem)
_UNREADABLE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("_UNREADABLE",
                                                                          default=None)

_CSS = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:1.2em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #999;margin-top:1.6em}
h3{font-size:1.1em;margin-bottom:.3em}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}
th,td{border:1px solid #bbb;padding:2px 6px;text-align:left;vertical-align:top}
th{white-space:nowrap}td.long{overflow-wrap:anywhere;min-width:16em}
th{background:#eee}td.num{text-align:right;font-family:DejaVu Sans Mono,monospace}
.flag{color:#a40000;font-weight:bold}.ok{color:#1a6b1a}.muted{color:#666}
.panel{border:1px solid #ccc;border-radius:4px;padding:.5em .8em;margin:.8em 0}
.facts{font-size:.95em;margin:.2em 0}.warn{background:#fff4e0}
img{max-width:100%;height:auto}nav a{margin-right:.8em}
figure.qa{display:inline-block;width:48%;margin:.2em;vertical-align:top}
.small{font-size:.8em}
"""


@dataclass
class ReportInputs:
    """Files of a folder that the report shows (paths; empty lists when absent)."""

    folder: Path
    night_logs: list = field(default_factory=list)
    summaries: list = field(default_factory=list)
    wave_qa: list = field(default_factory=list)
    sens_qa: list = field(default_factory=list)
    sens_files: list = field(default_factory=list)
    objects: Path | None = None
    lines: Path | None = None
    derived: Path | None = None
    comparison: Path | None = None
    comparison_png: Path | None = None
    bpt_png: Path | None = None
    fit_pngs: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)


def _walk(folder: Path, pattern: str) -> list[Path]:
    out = []
    for p in sorted(folder.rglob(pattern)):
        rel = p.relative_to(folder).parts[:-1]
        if any(part.startswith(".") for part in rel):
            continue
        out.append(p)
    return out


def _first(paths: list[Path]) -> Path | None:
    # shallowest first: the folder's own table before tables of sub-runs
    return min(paths, key=lambda p: (len(p.parts), str(p))) if paths else None


def find_report_inputs(folder: str | Path) -> ReportInputs:
    """Find the tables and figures of a run/reductions/measure folder.

    Parameters
    ----------
    folder : path-like
        Output of ``xmpspec run``, ``reduce`` (``reductions/<instrument>/<night>``),
        ``measure``, ``batch`` or ``demo``.

    Returns
    -------
    ReportInputs

    Raises
    ------
    InputError
        The folder does not exist or holds nothing a report can show.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder (give the output folder of run, reduce, measure, "
                         "batch or demo)", folder)
    inp = ReportInputs(folder=folder)
    inp.night_logs = _walk(folder, "night_log.ecsv")
    # reductions/<instrument>/<night>: the night log is in pypeit_files/<instrument>/<night>
    if not inp.night_logs and len(folder.resolve().parts) >= 3 \
            and folder.resolve().parent.parent.name == "reductions":
        night, instr = folder.resolve().name, folder.resolve().parent.name
        cand = folder.resolve().parents[2] / "pypeit_files" / instr / night / "night_log.ecsv"
        if cand.exists():
            inp.night_logs = [cand]
    inp.summaries = _walk(folder, "summary.ecsv")
    qa = [p for p in folder.rglob("*.png") if "QA" in p.parts]
    inp.wave_qa = sorted(p for p in qa if p.name.startswith(("Arc_1dfit", "Arc_2dfit")))
    inp.sens_qa = sorted(p for p in folder.rglob("*.png")
                         if "sens" in p.name.lower() and "QA" in p.parts)
    inp.sens_files = sorted(p for p in folder.rglob("sens_*.fits")
                            if not any(part.startswith(".") for part in p.parts))
    # measure/batch write objects.ecsv; xmpspec run writes measurements.ecsv
    # (batch runs above [batch] merge_text_max_rows write Parquet only)
    inp.objects = _first(_walk(folder, "objects.ecsv") or _walk(folder, "measurements.ecsv")
                         or _walk(folder, "objects.parquet"))
    inp.lines = _first(_walk(folder, "lines.ecsv") or _walk(folder, "lines.parquet"))
    inp.derived = _first(_walk(folder, "derived.ecsv"))
    inp.comparison = _first(_walk(folder, "comparison.ecsv"))
    inp.comparison_png = _first(_walk(folder, "comparison.png"))
    inp.bpt_png = _first(_walk(folder, "bpt.png"))
    inp.failed = _walk(folder, "failed.ecsv")
    if inp.objects is not None:
        for p in inp.objects.parent.rglob("*.png"):
            inp.fit_pngs.setdefault(p.stem, p)
    if not any([inp.night_logs, inp.summaries, inp.objects, inp.derived, inp.comparison,
                inp.failed]):
        raise InputError("nothing to report: no night_log.ecsv, summary.ecsv, objects.ecsv, "
                         "derived.ecsv, comparison.ecsv or failed.ecsv in it", folder)
    return inp


# ----------------------------------------------------------------------------- html helpers

def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _png_tag(data: bytes, alt: str) -> str:
    return (f'<img alt="{_e(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(data).decode("ascii")}">')


def _file_img(path: Path, alt: str) -> str:
    return _png_tag(path.read_bytes(), alt)


def _fig_img(fig, alt: str) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return _png_tag(buf.getvalue(), alt)


def _cell(v) -> str:
    """Text of a table cell: masked -> empty, booleans as flags, floats short."""
    if v is None or np.ma.is_masked(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else ""
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return ""
        return f"{v:.4g}"
    return str(v)


def _html_table(t: Table, columns=None, max_rows: int = 500) -> str:
    cols = [c for c in (columns or t.colnames) if c in t.colnames]
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    rows = []
    for row in t[:max_rows]:
        cells = []
        for c in cols:
            v = row[c]
            num = isinstance(v, (int, float, np.integer, np.floating)) \
                and not isinstance(v, (bool, np.bool_))
            text = _cell(v)
            cls = ' class="num"' if num else (' class="long"' if len(text) > 40 else "")
            cells.append(f"<td{cls}>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = (f'<p class="muted">{len(t) - max_rows} more rows in the table file</p>'
            if len(t) > max_rows else "")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def _read(path: Path) -> Table | None:
    """A table of the folder, or None if it cannot be read: a broken table must not stop
    the report; it is warned about once and listed under "Failures and warnings"."""
    from ..tableio import read_table
    unreadable = _UNREADABLE.get()
    if unreadable is not None and path in unreadable:
        return None
    try:
        return read_table(path)
    except XmpspecError as exc:
        log.warning("report: %s", exc)
        if unreadable is not None:
            unreadable[path] = exc.problem
        return None


def _fmt(x, d=2) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "..."
    return "..." if not math.isfinite(v) else f"{v:.{d}f}"


def _val(row, key):
    if key not in row.colnames:
        return None
    v = row[key]
    if np.ma.is_masked(v):
        return None
    return getattr(v, "value", v)


def n2_text(row) -> str:
    """N2 of an objects/derived row in words: value and interval, limit, or why missing."""
    state = str(_val(row, "n2_state") or "")
    n2 = _val(row, "n2")
    upper = bool(_val(row, "n2_upper_limit") or False) or state == "upper_limit"
    if n2 is None:
        return f"N2 not measured ({state or 'no value'})"
    if upper:
        return f"N2 &lt; {_fmt(n2)} (2&sigma; upper limit)"
    p16, p84 = _val(row, "n2_p16"), _val(row, "n2_p84")
    if p16 is not None and p84 is not None:
        from ..lines.ratios import interval_errors
        p50 = _val(row, "n2_p50")
        lo, hi = interval_errors(float(n2), float(p16), float(p84),
                                 None if p50 is None else float(p50))
        if not np.ma.is_masked(lo[0]):
            return (f"N2 = {_fmt(n2)} <sup>+{_fmt(float(hi[0]))}</sup>"
                    f"<sub>&minus;{_fmt(float(lo[0]))}</sub> (68% interval)")
    err = _val(row, "n2_err")
    return f"N2 = {_fmt(n2)} &plusmn; {_fmt(err)}" if err is not None else f"N2 = {_fmt(n2)}"


# ----------------------------------------------------------------------------- figures

def _spectrum_path(row, inputs: ReportInputs) -> Path | None:
    for key in ("source_file", "input_file", "file", "spectrum"):
        v = _val(row, key)
        if not v:
            continue
        p = Path(str(v))
        for cand in (p, inputs.folder / p, inputs.folder.parent / p,
                     (inputs.objects.parent / p) if inputs.objects else p):
            if cand.is_file():
                return cand
    return None


def _target_figure(spec, lines: Table | None, name: str) -> str:
    """Spectrum, fitted lines (Gaussians on a running-median continuum), two zooms."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.ndimage import median_filter

    from ..lines.plots import flux_unit_label
    from .figures import figure_style
    wave = spec.wavelength.to_value("Angstrom")
    flux = spec.flux.value
    good = np.isfinite(flux) & (~spec.mask if spec.mask is not None else True)
    cont = median_filter(np.where(good, flux, np.nanmedian(flux[good])), size=51, mode="nearest")
    model = cont.copy()
    rows = []
    if lines is not None and len(lines):
        for r in lines:
            state = str(r["state"])
            ow, fl, fw = _val(r, "obs_wave"), _val(r, "flux"), _val(r, "fwhm")
            if ow is None:
                continue
            rows.append((float(ow), str(r["label"]), state))
            if state == "detected" and fl is not None and fw is not None:
                sig = float(ow) * float(fw) / 299792.458 / 2.3548
                if sig > 0:
                    model += float(fl) / (np.sqrt(2 * np.pi) * sig) * np.exp(
                        -0.5 * ((wave - float(ow)) / sig) ** 2)
    unit = flux_unit_label(spec.flux.unit)
    with figure_style():
        fig, axes = plt.subplots(1, 3, figsize=(10.5, 2.6),
                                 gridspec_kw={"width_ratios": [2.2, 1, 1]})
        zooms = [(None, "full range")]
        for label, rest in (("H$\\beta$ + [O III]", (4850.0, 5020.0)),
                            ("H$\\alpha$ + [N II]", (6540.0, 6600.0))):
            zooms.append((rest, label))
        z = None
        if rows:
            ha = [w for w, lab, _ in rows if "alpha" in lab.lower() or lab in ("Ha", "Halpha")]
            z = None if not ha else ha[0] / 6564.61 - 1
        for ax, (rng, title) in zip(axes, zooms, strict=True):
            if rng is None:
                sel = np.ones_like(wave, bool)
            else:
                zz = z if z is not None else (spec.redshift or 0.0)
                lo, hi = rng[0] * (1 + zz) - 25, rng[1] * (1 + zz) + 25
                sel = (wave >= lo) & (wave <= hi)
            if sel.sum() < 3:
                ax.text(0.5, 0.5, "not covered", ha="center", va="center",
                        transform=ax.transAxes)
                ax.set_title(title)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            ax.plot(wave[sel], flux[sel], color="0.3", lw=0.6, drawstyle="steps-mid")
            ax.plot(wave[sel], model[sel], color="C3", lw=0.9)
            fs = flux[sel][good[sel]]
            if fs.size == 0:
                continue
            ymax = max(np.nanmax(model[sel]), np.nanpercentile(fs, 99.0))
            ymin = np.nanpercentile(fs, 0.5)
            if np.isfinite(ymax) and np.isfinite(ymin) and ymax > ymin:
                ax.set_ylim(ymin - 0.05 * (ymax - ymin), ymax + 0.15 * (ymax - ymin))
            for w, _lab, state in rows:
                if wave[sel][0] <= w <= wave[sel][-1]:
                    ax.axvline(w, color={"detected": "C2", "upper_limit": "C1"}.get(state, "0.7"),
                               lw=0.6, ls=":" if state != "detected" else "-", alpha=0.7)
            ax.set_title(title)
            ax.set_xlabel(r"observed wavelength ($\AA$)")
        axes[0].set_ylabel(f"flux ({unit})", fontsize=7)
        fig.suptitle(name, fontsize=9)
        fig.tight_layout()
        return _fig_img(fig, f"spectrum of {name}")


def _sensfunc_figure(path: Path, folder: Path) -> str:
    """Zero point and throughput of a PypeIt sensitivity-function file (``sens_*.fits``).

    Read from the HDUs of PypeIt's SensFunc data model (``WAVE``,
    ``ZEROPOINT``, ``THROUGHPUT``: one column per order or detector);
    a file without them is named with the reason instead.
    """
    from astropy.io import fits
    try:
        with fits.open(path, memmap=False) as hdul:
            wave = np.atleast_2d(np.asarray(hdul["WAVE"].data, float).T)
            zp = np.atleast_2d(np.asarray(hdul["ZEROPOINT"].data, float).T)
            thr = (np.atleast_2d(np.asarray(hdul["THROUGHPUT"].data, float).T)
                   if "THROUGHPUT" in hdul else None)
    except Exception as exc:  # not PypeIt's layout / unreadable: say so, go on
        return f"<p class='muted'>{_e(_rel(path, folder))}: not shown ({_e(exc)})</p>"
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import figure_style
    with figure_style():
        fig, axes = plt.subplots(1, 2 if thr is not None else 1, figsize=(9, 2.6),
                                 squeeze=False)
        for k in range(wave.shape[0]):
            # PypeIt pads each order/detector beyond its range (wave 0, throughput -1)
            good = (wave[k] > 0) & np.isfinite(zp[k])
            if thr is not None:
                good &= thr[k] > 0
            if good.sum() < 2:
                continue
            axes[0, 0].plot(wave[k][good], zp[k][good], lw=0.8)
            if thr is not None:
                axes[0, 1].plot(wave[k][good], thr[k][good], lw=0.8)
        axes[0, 0].set_ylabel("zero point (AB mag)")
        if thr is not None:
            axes[0, 1].set_ylabel("throughput")
        for ax in axes[0]:
            ax.set_xlabel(r"wavelength ($\mathrm{\AA}$)")
        fig.suptitle(path.name, fontsize=8)
        fig.tight_layout()
        return _fig_img(fig, f"sensitivity function {path.name}")


# ----------------------------------------------------------------------------- sections

def _night_section(inputs: ReportInputs) -> str:
    parts = []
    for path in inputs.night_logs:
        t = _read(path)
        if t is None:
            continue
        extra = (t.meta.get("provenance", {}) or {}).get("extra", {}) or {}
        flags = list(t.meta.get("flags", []) or extra.get("flags", []) or [])
        if "flag" in t.colnames:  # per-frame flags of the night log
            flags += [f"{r['file'] if 'file' in t.colnames else ''}: {r['flag']}" for r in t
                      if not np.ma.is_masked(r["flag"]) and str(r["flag"]).strip()
                      and not any(str(r["flag"]) in f for f in flags)]
        rel = _rel(path, inputs.folder)
        parts.append(f"<h3>Night log <span class='muted'>{_e(rel)}</span></h3>")
        if flags:
            parts.append("<ul>" + "".join(f"<li class='flag'>{_e(f)}</li>" for f in flags)
                         + "</ul>")
        else:
            parts.append("<p class='ok'>no flags</p>")
        parts.append(_html_table(t))
    if not parts:
        return ""
    return "<h2 id='night'>Night log</h2>" + "".join(parts)


def _rel(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return path.name


def _calibration_section(inputs: ReportInputs, max_images: int) -> str:
    parts = []
    for path in inputs.summaries:
        t = _read(path)
        if t is None:
            continue
        parts.append(f"<h3>Reductions <span class='muted'>{_e(_rel(path, inputs.folder))}"
                     "</span></h3>")
        if "wave_rms_pix" in t.colnames:
            rms = np.ma.compressed(np.ma.masked_invalid(np.ma.asarray(t["wave_rms_pix"],
                                                                      dtype=float)))
            if rms.size:
                parts.append(f"<p class='facts'>wavelength solution RMS: "
                             f"{_e(', '.join(f'{x:.3f}' for x in np.unique(rms)))} pixels</p>")
        for col in ("coadd", "spec1d", "file"):  # file names, not machine paths
            if col in t.colnames and t[col].dtype.kind in "US":
                t[col] = [Path(str(v)).name if str(v) else "" for v in t[col]]
        parts.append(_html_table(t))
    sens = [_sensfunc_figure(p, inputs.folder) for p in inputs.sens_files[:max_images]]
    sens = [x for x in sens if x]
    if sens:
        parts.append("<h3>Sensitivity function</h3>" + "".join(sens))
    for title, pngs in (("Wavelength solution (PypeIt QA)", inputs.wave_qa),
                        ("Sensitivity function (PypeIt QA)", inputs.sens_qa)):
        if pngs:
            shown = pngs[:max_images]
            parts.append(f"<h3>{_e(title)}</h3>")
            parts += [f"<figure class='qa'>{_file_img(p, p.name)}<figcaption class='muted'>"
                      f"{_e(_rel(p, inputs.folder))}</figcaption></figure>" for p in shown]
            if len(pngs) > len(shown):
                parts.append(f"<p class='muted'>{len(pngs) - len(shown)} more QA plots in "
                             "the reductions' QA/PNGs folders</p>")
    if not parts:
        return ""
    return "<h2 id='calibration'>Calibration QA</h2>" + "".join(parts)


def _targets_section(inputs: ReportInputs, max_panels: int,
                     max_text: int = 2000) -> tuple[str, list[str]]:
    objects = _read(inputs.objects) if inputs.objects else None
    derived = _read(inputs.derived) if inputs.derived else None
    base = objects if objects is not None else derived
    if base is None or "name" not in base.colnames:
        return "", []
    lines = _read(inputs.lines) if inputs.lines else None
    cmp_rows = {}
    comp = _read(inputs.comparison) if inputs.comparison else None
    if comp is not None and "name" in comp.colnames:
        cmp_rows = {str(r["name"]): r for r in comp}
    dmap = {}
    if derived is not None and "name" in derived.colnames:
        dmap = {str(n): i for i, n in enumerate(derived["name"])}
    names = [str(n) for n in base["name"]]
    overview_cols = [c for c in ("name", "z", "f_ha", "significance", "n2", "n2_err",
                                 "n2_state", "o3", "o3_state", "notes") if c in base.colnames]
    parts = ["<h2 id='targets'>Targets</h2>", _html_table(base, overview_cols)]
    warnings = []
    from ..io import read_spectrum
    for i, row in enumerate(base):
        if i >= max_text:  # big batch runs: the tables hold the rest
            parts.append(f"<p class='muted'>{len(base) - max_text} more targets in "
                         f"{_e(_rel(inputs.objects or inputs.derived, inputs.folder))} "
                         "([report] max_text_panels)</p>")
            break
        name = names[i]
        anchor = "t-" + "".join(ch if ch.isalnum() else "-" for ch in name)
        facts = [n2_text(row)]
        for key, label in (("significance", "[N II] gate significance"), ("z", "z")):
            v = _val(row, key)
            if v is not None:
                facts.append(f"{label} {_fmt(v, 2 if key != 'z' else 5)}")
        v = _val(row, "f_ha")
        if v is not None:
            facts.append(f"F(H&alpha;) {_fmt(v, 1)} &times;10<sup>&minus;17</sup> "
                         "erg s<sup>&minus;1</sup> cm<sup>&minus;2</sup>")
        drow = derived[dmap[name]] if name in dmap else None
        if drow is not None:
            oh = _val(drow, "oh_n2")
            if oh is not None:
                lim = bool(_val(drow, "oh_n2_upper_limit") or False)
                facts.append(f"12+log(O/H)<sub>N2</sub> {'&lt; ' if lim else ''}{_fmt(oh)}")
            bpt = _val(drow, "bpt_class")
            if bpt:
                facts.append(f"BPT: {_e(bpt)}")
        crow = cmp_rows.get(name)
        if crow is not None and _val(crow, "n2_cnn") is not None:
            cnn = f"N2<sub>CNN</sub> {_fmt(_val(crow, 'n2_cnn'))}"
            if _val(crow, "n2_cnn_err") is not None:
                cnn += f" &plusmn; {_fmt(_val(crow, 'n2_cnn_err'))}"
            outcome = _val(crow, "outcome")
            facts.append(cnn + (f" ({_e(outcome)})" if outcome else ""))
        # warnings: the measurement's notes and flags on N2 itself (what an observer acts
        # on); the other derived-property flags (why a quantity is missing) in small print
        warn_txt, info_txt = [], []
        for src in (row, drow):
            if src is None:
                continue
            for c in src.colnames:
                if c in ("notes", "note") or (c.endswith("_flag") and src[c].dtype.kind in "US"):
                    v = _val(src, c)
                    if v and str(v).strip():
                        target = warn_txt if c in ("notes", "note") or c.startswith("n2") \
                            else info_txt
                        target.append(f"{c}: {v}")
                elif c.endswith("_flag") or c.startswith("n2_flux_weaker"):
                    v = _val(src, c)
                    if isinstance(v, (bool, np.bool_)) and v:
                        warn_txt.append(c)
        warn_txt = list(dict.fromkeys(warn_txt))
        info_txt = list(dict.fromkeys(info_txt))
        warnings += [f"{name}: {f}" for f in warn_txt]
        cls = "panel warn" if warn_txt else "panel"
        body = [f"<div class='{cls}' id='{_e(anchor)}'><h3>{_e(name)}</h3>",
                "<p class='facts'>" + " &middot; ".join(facts) + "</p>"]
        if warn_txt:
            body.append("<ul>" + "".join(f"<li class='flag'>{_e(f)}</li>" for f in warn_txt)
                        + "</ul>")
        if info_txt:
            body.append("<p class='muted small'>flags: " + "; ".join(_e(f) for f in info_txt)
                        + "</p>")
        if i < max_panels:
            if name in inputs.fit_pngs:
                body.append(_file_img(inputs.fit_pngs[name], f"fit of {name}"))
            else:
                spath = _spectrum_path(row, inputs)
                if spath is None:
                    body.append("<p class='muted'>spectrum file not found</p>")
                else:
                    try:
                        spec = read_spectrum(spath)
                        ltab = None
                        if lines is not None and "object" in lines.colnames:
                            ltab = lines[np.asarray([str(o) == name for o in lines["object"]])]
                        body.append(_target_figure(spec, ltab, name))
                    except Exception as exc:  # one bad spectrum must not stop the page
                        body.append(f"<p class='flag'>spectrum not shown: {_e(exc)}</p>")
            if lines is not None and "object" in lines.colnames:
                lt = lines[np.asarray([str(o) == name for o in lines["object"]])]
                if len(lt):
                    body.append("<details><summary>lines</summary>" + _html_table(
                        lt, ["label", "obs_wave", "flux", "flux_err", "flux_limit", "snr",
                             "state", "method", "note"]) + "</details>")
        body.append("</div>")
        parts.append("".join(body))
    if len(base) > max_panels:
        parts.append(f"<p class='muted'>figures for the first {max_panels} targets only "
                     "([report] max_panels)</p>")
    return "".join(parts), warnings


def _comparison_section(inputs: ReportInputs) -> str:
    parts = []
    if inputs.comparison_png is not None:
        parts.append(_file_img(inputs.comparison_png, "N2 observed against the CNN"))
    if inputs.comparison is not None:
        t = _read(inputs.comparison)
        if t is not None:
            parts.append(_html_table(t, ["name", "match_status", "n2", "n2_err",
                                         "n2_upper_limit", "significance", "grade", "n2_cnn",
                                         "n2_cnn_err", "delta_n2", "outcome"]))
    txt = inputs.comparison.with_suffix(".txt") if inputs.comparison else None
    if txt is not None and txt.exists():
        parts.append(f"<pre>{_e(txt.read_text())}</pre>")
    if not parts:
        return ""
    return "<h2 id='cnn'>N2 against the CNN</h2>" + "".join(parts)


def _bpt_section(inputs: ReportInputs, config: Config) -> str:
    if inputs.bpt_png is not None:
        return "<h2 id='bpt'>BPT</h2>" + _file_img(inputs.bpt_png, "BPT diagram")
    if inputs.derived is None:
        return ""
    t = _read(inputs.derived)
    if t is None or not {"n2", "o3"} <= set(t.colnames):
        return ""
    import tempfile

    from .figures import bpt_plot
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bpt_plot(t, Path(tmp) / "bpt", config=config)
            png = Path(tmp) / "bpt.png"
            if png.exists():
                return "<h2 id='bpt'>BPT</h2>" + _file_img(png, "BPT diagram")
    except Exception as exc:  # e.g. no object with both ratios (not the temporary path)
        why = str(getattr(exc, "problem", None) or exc).removesuffix(": no BPT diagram")
        return f"<h2 id='bpt'>BPT</h2><p class='muted'>no BPT diagram: {_e(why)}</p>"
    return ""


def _failures_section(inputs: ReportInputs, warnings: list[str]) -> str:
    parts = []
    for path in inputs.failed:
        t = _read(path)
        if t is not None and len(t):
            parts.append(f"<h3>Failed inputs <span class='muted'>{_e(_rel(path, inputs.folder))}"
                         "</span></h3>" + _html_table(t))
    for path in inputs.summaries:
        t = _read(path)
        if t is not None and "problems" in t.colnames:
            probs = sorted({str(p) for p in t["problems"] if str(p).strip()
                            and not np.ma.is_masked(p)})
            warnings = [f"reduction: {p}" for p in probs] + warnings
    unreadable = _UNREADABLE.get() or {}
    warnings = [f"{_rel(p, inputs.folder)}: not shown, {why}"
                for p, why in unreadable.items()] + warnings
    if warnings:
        shown = warnings[:_MAX_WARNINGS]
        more = (f"<p class='muted'>{len(warnings) - len(shown)} more</p>"
                if len(warnings) > len(shown) else "")
        parts.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{_e(w)}</li>" for w in shown)
                     + "</ul>" + more)
    body = "".join(parts) if parts else "<p class='ok'>no failures or warnings</p>"
    return "<h2 id='failures'>Failures and warnings</h2>" + body


def _provenance_section(inputs: ReportInputs, config: Config) -> str:
    """The page's provenance: xmpspec and library versions, configuration, files shown."""
    import json

    from ..provenance import provenance_record
    files = [*inputs.night_logs, *inputs.summaries, *inputs.sens_files, inputs.objects,
             inputs.lines, inputs.derived, inputs.comparison, *inputs.failed]
    rel = [_rel(p, inputs.folder) for p in files if p is not None]
    record = provenance_record(rel, config, step="report",
                               extra={"folder": inputs.folder.resolve().name})
    text = json.dumps(record, indent=1, default=str)
    return ("<h2 id='provenance'>Provenance</h2><details><summary>versions, configuration "
            f"and the files shown</summary><pre class='small'>{_e(text)}</pre></details>")


def render_report(inputs: ReportInputs, title: str | None = None,
                  config: Config | None = None) -> str:
    """The HTML text of the report (see :func:`write_report`)."""
    token = _UNREADABLE.set({})
    try:
        return _render_report(inputs, title, config)
    finally:
        _UNREADABLE.reset(token)


def _render_report(inputs: ReportInputs, title: str | None, config: Config | None) -> str:
    from .._version import __version__
    cfg = config if config is not None else get_active_config()
    max_panels = int(cfg.get("report.max_panels", 100))
    max_images = int(cfg.get("report.max_qa_images", 4))
    max_text = int(cfg.get("report.max_text_panels", 2000))
    title = title or f"xmpspec report: {inputs.folder.resolve().name}"
    sections = [_night_section(inputs), _calibration_section(inputs, max_images)]
    targets, warnings = _targets_section(inputs, max_panels, max_text)
    sections += [targets, _comparison_section(inputs), _bpt_section(inputs, cfg),
                 _failures_section(inputs, warnings)]
    nav = []
    for anchor, label in (("night", "Night log"), ("calibration", "Calibration QA"),
                          ("targets", "Targets"), ("cnn", "N2 vs CNN"), ("bpt", "BPT"),
                          ("failures", "Failures and warnings")):
        if any(f"id='{anchor}'" in s for s in sections):
            nav.append(f"<a href='#{anchor}'>{label}</a>")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections.append(_provenance_section(inputs, cfg))
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{_e(title)}</h1><p class='muted'>written {stamp} by xmpspec {__version__} "
            f"from {_e(inputs.folder.resolve().name)}</p><nav>{''.join(nav)}</nav>"
            + "".join(s for s in sections if s) + "</body></html>\n")


def write_report(folder: str | Path, out: str | Path | None = None, *,
                 title: str | None = None, config: Config | None = None) -> Path:
    """Write the self-contained HTML report of a night or measure/batch folder.

    Parameters
    ----------
    folder : path-like
        Output folder of ``xmpspec run``, ``reduce`` (``reductions/<instrument>/<night>``),
        ``measure``, ``batch`` or ``demo``.
    out : path-like, optional
        The HTML file (default ``FOLDER/report.html``).
    title : str, optional
        Page title (default from the folder name).
    config : Config, optional
        Configuration (``[report]``); default the packaged defaults.

    Returns
    -------
    pathlib.Path
        The file written (atomically).

    Raises
    ------
    InputError
        Not a folder, or nothing in it to report.
    """
    from ..tableio import atomic_path
    inputs = find_report_inputs(folder)
    text = render_report(inputs, title=title, config=config)
    target = Path(out) if out is not None else Path(folder) / REPORT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return target
