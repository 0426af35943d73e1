"""Comparison outputs: the text summary and the files of ``xmpspec compare``.

:func:`summary_text` renders a :class:`~xmpspec.compare.assemble.ComparisonResult`;
:func:`run_comparison` reads the observed and selection tables, compares them
and writes the table and summary.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np

from ..config import Config, get_active_config
from .assemble import STATISTICS_GROUPS, ComparisonResult, compare_tables


def _fmt(x, digits=3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def summary_text(result: ComparisonResult, observed_source=None, catalogue_source=None) -> str:
    """The short plain-text summary written to ``comparison.txt``."""
    t = result.table
    lines = ["xmpspec compare: observed N2 versus CNN-predicted N2 (N2_obs - N2_CNN)", ""]
    if observed_source:
        lines.append(f"observed table     : {observed_source}")
    if catalogue_source:
        lines.append(f"selection catalogue: {catalogue_source} ({result.n_catalogue} rows)")
    status = t["match_status"]
    methods = t["match_method"]
    lines.append(f"match radius       : {t.meta['match_radius_arcsec']:g} arcsec")
    lines.append(
        f"observed objects   : {len(t)}; matched {int((status == 'matched').sum())} "
        f"(by name {int(((status == 'matched') & np.isin(methods, ['name', 'name+pos'])).sum())}, "
        f"by position {int(((status == 'matched') & (methods == 'position')).sum())}), "
        f"unmatched {int((status == 'unmatched').sum())}, "
        f"ambiguous {int((status == 'ambiguous').sum())}")
    lines.append("")
    lines.append("detections         N     MAE   MedAE     RMS    bias")
    labels = {"all": "all", "good": "good (S/N>=3)", "fair": "fair (2<=S/N<3)"}
    for g in STATISTICS_GROUPS:
        s = result.statistics[g]
        lines.append(f"{labels[g]:<16} {s['n']:>4} {_fmt(s['mae']):>7} {_fmt(s['median_ae']):>7} "
                     f"{_fmt(s['rms']):>7} {_fmt(s['bias']):>7}")
    km = result.km or {}
    if km.get("km_median") is not None:
        cl = f"{100 * km['confidence']:g}%"
        rmark = " (restricted: lowest value a limit)" if km.get("km_mean_restricted") else ""
        lines.append(f"Kaplan-Meier, detections + limits (N={km['n']}, {km['n_censored']} "
                     f"censored): median {_fmt(km['km_median'])} [{_fmt(km['km_median_lo'])}, "
                     f"{_fmt(km['km_median_hi'])}], mean {_fmt(km['km_mean'])} "
                     f"[{_fmt(km['km_mean_lo'])}, {_fmt(km['km_mean_hi'])}]{rmark} ({cl} "
                     "intervals; N2_obs - N2_CNN)")
    lines.append("")
    lines.append(f"band (outliers)    : +-{result.band:.3f} dex ({result.band_source})")
    excl = np.asarray(t["excluded"], bool) if "excluded" in t.colnames else np.zeros(len(t), bool)
    if excl.any():
        lines.append(f"excluded ({t.meta.get('exclude_flag', 'flag')}): "
                     f"{', '.join(t['name'][excl])} (listed, not in the statistics)")
        lines.append("")
    det = ~t["n2_upper_limit"] & (t["match_status"] == "matched") & ~excl
    up = t["name"][det & (t["outcome"] == "upper_outlier")]
    lo = t["name"][det & (t["outcome"] == "lower_outlier")]
    n_cons = int((det & (t["outcome"] == "consistent")).sum())
    lines.append(f"detections         : {n_cons} within the band, {len(up)} upper outlier(s), "
                 f"{len(lo)} lower outlier(s)")
    if len(up):
        lines.append(f"  upper outliers (observed above prediction): {', '.join(up)}")
    if len(lo):
        lines.append(f"  lower outliers (observed below prediction): {', '.join(lo)}")
    c = result.censored
    lim = t["n2_upper_limit"] & (t["match_status"] == "matched") & ~excl
    lo_lim = t["name"][lim & (t["outcome"] == "lower_outlier")]
    lines.append(f"upper limits       : {c['n']} (censored): {c['consistent']} consistent, "
                 f"{c['lower_outlier']} lower outlier(s) (limit below prediction - band); "
                 f"{c['above_band']} of the consistent limits lie above prediction + band "
                 "(uninformative)")
    if len(lo_lim):
        lines.append(f"  lower-outlier limits: {', '.join(lo_lim)}")
    for label, name in (("xmp", "XMP"), ("mp", "MP")):
        c = result.classes.get(label)
        if c:
            head = f"{name} (N2 <= {c['threshold']:g})"
            lines.append(f"{head:<19}: "
                         f"{c['yes']} of {c['n_with_n2']} confirmed, {c['no']} not, "
                         f"{c['undetermined']} undetermined (limit above the threshold)")
    for oc in ("no_n2", "no_prediction"):
        names = t["name"][t["outcome"] == oc]
        if len(names):
            what = "no observed N2" if oc == "no_n2" else "no CNN prediction in the catalogue"
            lines.append(f"{what}: {', '.join(names)}")
    lines.append("")
    if result.report:
        lines.append("matching report:")
        lines.extend(f"  - {r}" for r in result.report)
    else:
        lines.append("matching report: every observed object matched exactly one catalogue entry")
    return "\n".join(lines) + "\n"


def run_comparison(observed_path: str | Path, selection_path: str | Path, outdir: str | Path,
                   config: Config | None = None, radius: u.Quantity | None = None,
                   band: float | None = None,
                   exclude_flag: str | None = None) -> tuple[ComparisonResult, list[Path]]:
    """Read the tables, compare, and write ``comparison.{ecsv,fits,txt}``.

    The library form of ``xmpspec compare`` (used by the command and the chain).
    Numbers only: the figure is drawn by
    :func:`xmpspec.products.figures.comparison_plot` (the command and the chain
    call it with the result).

    Parameters
    ----------
    observed_path, selection_path : path-like
        Observed per-object table and selection catalogue.
    outdir : path-like
        Output folder (created).
    radius, band : optional
        Matching radius and outlier band (defaults from the configuration).
    exclude_flag : str, optional
        Boolean column whose flagged objects are left out of the statistics
        (see :func:`compare_tables`).

    Returns
    -------
    result : ComparisonResult
    files : list of pathlib.Path
    """
    from ..provenance import provenance_lines, provenance_record
    from ..tableio import atomic_path, read_table, write_table
    cfg = config if config is not None else get_active_config()
    obs = read_table(observed_path)
    cat = read_table(selection_path)
    result = compare_tables(obs, cat, radius=radius, config=cfg, band=band,
                            observed_source=observed_path, catalogue_source=selection_path,
                            exclude_flag=exclude_flag)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    inputs = [observed_path, selection_path]
    prov = provenance_record(inputs, cfg, step="compare", extra={
        "match_radius_arcsec": result.table.meta["match_radius_arcsec"],
        "band_dex": result.band, "band_source": result.band_source,
        "statistics": result.statistics, "censored": result.censored, "km": result.km,
        "report": result.report, "exclude_flag": exclude_flag})
    files = write_table(result.table, outdir / "comparison", provenance=prov,
                        formats=("ecsv", "fits"))
    short = dict(prov, extra={k: prov["extra"][k] for k in ("match_radius_arcsec", "band_dex",
                                                            "band_source", "exclude_flag")})
    about = provenance_lines(short)      # the statistics follow in the text itself
    with atomic_path(outdir / "comparison.txt") as tmp:
        tmp.write_text("".join(f"# {line}\n" for line in about)
                       + summary_text(result, observed_path, selection_path), encoding="utf-8")
    files.append(outdir / "comparison.txt")
    return result, files
