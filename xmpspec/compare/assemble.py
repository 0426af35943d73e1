"""The comparison table: match, observed and predicted N2, grade, outcome and statistics.

:func:`compare_tables` assembles one :class:`ComparisonResult` from the
matching (:mod:`.matching`), the detections-only (:mod:`.statistics`) and
the censored (:mod:`.censored`) statistics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, Table

from ..config import Config, get_active_config
from ..errors import ConfigError, InputError
from .censored import censored_statistics
from .columns import _find_column, _float_column, as_bool, normalise_catalogue
from .matching import _positions, match_catalogue
from .statistics import _grade, classify_outcomes, n2_statistics, observed_n2

log = logging.getLogger('xmpspec.compare')


STATISTICS_GROUPS = ("all", "good", "fair")


@dataclass
class ComparisonResult:
    """Result of :func:`compare_tables`.

    Attributes
    ----------
    table : astropy.table.Table
        One row per observed object: match, observed and predicted N2, the
        difference, grade and outcome.
    statistics : dict
        ``{"all"|"good"|"fair": {"n", "mae", "median_ae", "rms", "bias"}}``.
    band : float
        Half-width (dex) of the band around the one-to-one line used for outliers.
    band_source : str
        Where ``band`` came from (``"MAE of all detections"`` or configuration).
    censored : dict
        Counts of upper limits per outcome.
    km : dict
        Kaplan-Meier bias of N2_obs - N2_CNN over detections and upper limits
        (:func:`censored_statistics`), beside the detections-only ``statistics``.
    classes : dict
        Confirmation of the selection by the observed N2: for ``"xmp"`` and
        ``"mp"`` the threshold and the numbers confirmed (``yes``: detection
        or upper limit at or below it), rejected (``no``: detection above it)
        and ``undetermined`` (upper limit above it).
    report : list of str
        Human-readable notes: unmatched, ambiguous, duplicate names, ...
    n_catalogue : int
        Rows in the selection catalogue.
    """

    table: Table
    statistics: dict
    band: float
    band_source: str
    censored: dict
    report: list = field(default_factory=list)
    n_catalogue: int = 0
    classes: dict = field(default_factory=dict)
    km: dict = field(default_factory=dict)

    @property
    def matched(self) -> Table:
        """Rows matched to a catalogue entry."""
        return self.table[self.table["match_status"] == "matched"]


# ----------------------------------------------------------------------------- helpers

def compare_tables(observed: Table, catalogue: Table, radius: u.Quantity | None = None,
                   config: Config | None = None, band: float | None = None,
                   observed_source=None, catalogue_source=None,
                   exclude_flag: str | None = None) -> ComparisonResult:
    """Match observed objects to the selection catalogue and compare N2.

    Parameters
    ----------
    observed : astropy.table.Table
        Output of ``measure``/``derive`` or a user table with ``name``,
        ``n2``, ``n2_err``, ``n2_upper_limit``, ``significance`` and
        optionally ``ra``/``dec``.
    catalogue : astropy.table.Table
        Selection catalogue: ``name``, ``ra``, ``dec`` (degrees or
        sexagesimal), ``n2_cnn``, ``n2_cnn_err``, optional ``p_mp``, ``p_xmp``.
    radius : Quantity, optional
        Matching radius (default ``compare.match_radius_arcsec``).
    config : Config, optional
        Configuration (default: the active one).
    band : float, optional
        Half-width (dex) of the outlier band; default ``compare.band``, which
        is ``"mae"`` (the MAE of all matched detections) or a number.
    exclude_flag : str, optional
        Boolean column of the catalogue (or the observed table), e.g.
        ``hii_region``: flagged objects stay in the output table (column
        ``excluded``) but are left out of the statistics and outlier counts.

    Returns
    -------
    ComparisonResult

    Raises
    ------
    InputError
        Empty observed table, missing columns, or nothing matchable.
    """
    cfg = config if config is not None else get_active_config()
    ccfg = cfg["compare"]
    if radius is None:
        radius = float(ccfg["match_radius_arcsec"]) * u.arcsec
    if len(observed) == 0:
        raise InputError("the observed table has no rows: nothing to compare", observed_source)
    if len(catalogue) == 0:
        raise InputError("the selection catalogue has no rows", catalogue_source)
    cat = normalise_catalogue(catalogue, catalogue_source)
    obs = observed.copy(copy_data=False)
    name_col = _find_column(obs, "name")
    if name_col is not None and name_col != "name" and "name" not in obs.colnames:
        obs.rename_column(name_col, "name")
    for key in ("ra", "dec"):
        col = _find_column(obs, key)
        if col is not None and col != key and key not in obs.colnames:
            obs.rename_column(col, key)
    if "name" not in obs.colnames and not ("ra" in obs.colnames and "dec" in obs.colnames):
        raise InputError("observed table has neither 'name' nor 'ra'/'dec' columns",
                         observed_source)
    for key in ("n2", "n2_err", "significance"):  # numbers, or an error naming the row
        if key in obs.colnames:
            _float_column(obs, key, observed_source)

    positions = _positions(obs, cat, observed_source, catalogue_source)
    match, report = match_catalogue(obs, cat, radius, observed_source, catalogue_source,
                                    positions=positions)
    meas = observed_n2(obs, observed_source)
    meas_cfg = cfg["measure"]
    good = float(meas_cfg["good_significance"])
    gate = float(meas_cfg["significance_gate"])
    grade = _grade(meas["limit"], meas["has_n2"], meas["significance"], good, gate)

    n = len(obs)
    matched = match["match_status"] == "matched"
    j = np.where(matched, match["cat_index"], 0)

    def _cat_float(col):
        if col not in cat.colnames:
            return np.ma.masked_all(n)
        vals = _float_column(cat, col)[j]
        vals[~matched] = np.ma.masked
        return vals

    n2_cnn = _cat_float("n2_cnn")
    n2_cnn_err = _cat_float("n2_cnn_err")
    n2 = np.ma.array(meas["n2"], copy=True)
    n2[~meas["has_n2"]] = np.ma.masked
    delta = n2 - n2_cnn
    delta_err = np.ma.sqrt(np.ma.array(meas["n2_err"]) ** 2 + n2_cnn_err ** 2)
    delta_err[meas["limit"]] = np.ma.masked

    excluded = np.zeros(n, bool)
    if exclude_flag:
        if exclude_flag in cat.colnames:
            flag = as_bool(cat[exclude_flag], catalogue_source)[j]
            excluded = matched & flag
        elif exclude_flag in obs.colnames:
            excluded = as_bool(obs[exclude_flag], observed_source)
        else:
            raise InputError(f"no column '{exclude_flag}' (--exclude-flag) in the selection "
                             "catalogue nor in the observed table", catalogue_source)
    used = matched & ~excluded

    det_ok = used & meas["has_n2"] & ~meas["limit"] & ~np.ma.getmaskarray(delta)
    stats = {
        "all": n2_statistics(delta[det_ok]),
        "good": n2_statistics(delta[det_ok & (grade == "good")]),
        "fair": n2_statistics(delta[det_ok & (grade == "fair")]),
    }

    band_cfg = ccfg.get("band", "mae") if band is None else band
    if isinstance(band_cfg, str):
        if band_cfg.strip().lower() != "mae":
            raise ConfigError(f"compare.band must be 'mae' or a number of dex, got '{band_cfg}'")
        if stats["all"]["n"] == 0:
            band_val, band_source = 0.0, "no detections: no band"
        else:
            band_val, band_source = stats["all"]["mae"], "MAE of the detections in the statistics"
    else:
        band_val, band_source = float(band_cfg), "configured (compare.band)"
        if band_val < 0:
            raise ConfigError(f"compare.band must be >= 0, got {band_val}")

    outcome = classify_outcomes(n2, n2_cnn, meas["limit"], band_val)
    outcome[~matched] = "unmatched"
    outcome[matched & ~meas["has_n2"]] = "no_n2"
    outcome[matched & meas["has_n2"] & np.ma.getmaskarray(n2_cnn)] = "no_prediction"

    lim_ok = used & meas["limit"] & ~np.ma.getmaskarray(delta)
    censored = {
        "n": int(lim_ok.sum()),
        "consistent": int((lim_ok & (outcome == "consistent")).sum()),
        "lower_outlier": int((lim_ok & (outcome == "lower_outlier")).sum()),
        "upper_outlier": 0,
        # consistent but uninformative: the limit lies above prediction + band
        "above_band": int((lim_ok & (np.ma.getdata(delta) > band_val)).sum()),
    }

    # Kaplan-Meier: the distribution of N2_obs - N2_CNN with the limits as left-censored values
    km_use = used & meas["has_n2"] & ~np.ma.getmaskarray(delta)
    km = censored_statistics(np.ma.getdata(delta)[km_use], meas["limit"][km_use],
                             confidence=float(ccfg.get("km_confidence", 0.95)),
                             n_boot=int(ccfg.get("km_bootstrap", 2000)),
                             seed=int(ccfg.get("km_seed", 0)))

    # confirmed MP / XMP by the observed N2 (limits confirm only when below the threshold)
    classes = {}
    n2v = np.ma.getdata(n2)
    have = meas["has_n2"] & ~np.ma.getmaskarray(n2) & ~excluded
    for label, key in (("xmp", "xmp_n2"), ("mp", "mp_n2")):
        thr = float(cfg["classes"][key])
        yes = have & (n2v <= thr)
        no = have & ~meas["limit"] & (n2v > thr)
        classes[label] = {"threshold": thr, "n_with_n2": int(have.sum()), "yes": int(yes.sum()),
                          "no": int(no.sum()), "undetermined": int((have & ~yes & ~no).sum())}

    table = Table()
    if "name" in obs.colnames:
        table["name"] = [str(x) for x in obs["name"]]
    else:
        table["name"] = [f"row{i + 1}" for i in range(n)]
    cat_names = (np.array([str(x) for x in cat["name"]]) if "name" in cat.colnames
                 else np.array([f"row{k + 1}" for k in range(len(cat))]))
    table["cat_name"] = MaskedColumn(np.where(matched, cat_names[j], ""), mask=~matched)
    # positions: catalogue's when matched, else the observed table's
    ra = np.ma.masked_all(n)
    dec = np.ma.masked_all(n)
    oc, ov, cc, cv = positions
    if cc is not None:
        use = matched & cv[j]
        ra[use] = cc.ra.deg[j][use]
        dec[use] = cc.dec.deg[j][use]
    if oc is not None:
        use = np.ma.getmaskarray(ra) & ov
        ra[use] = oc.ra.deg[use]
        dec[use] = oc.dec.deg[use]
    table["ra"] = MaskedColumn(ra, unit=u.deg, format=".6f")
    table["dec"] = MaskedColumn(dec, unit=u.deg, format=".6f")
    for col in ("match_method", "match_status", "match_sep_arcsec", "match_note"):
        table[col] = match[col]
    table["match_sep_arcsec"].format = ".2f"
    table["n2"] = MaskedColumn(np.ma.getdata(n2), mask=np.ma.getmaskarray(n2), format=".3f")
    err = np.ma.array(meas["n2_err"], copy=True)
    err[meas["limit"] | ~meas["has_n2"]] = np.ma.masked
    table["n2_err"] = MaskedColumn(np.ma.getdata(err), mask=np.ma.getmaskarray(err), format=".3f")
    table["n2_upper_limit"] = meas["limit"]
    table["significance"] = MaskedColumn(np.ma.getdata(meas["significance"]),
                                         mask=np.ma.getmaskarray(meas["significance"]),
                                         format=".2f")
    table["grade"] = grade
    for col, vals in (("n2_cnn", n2_cnn), ("n2_cnn_err", n2_cnn_err),
                      ("p_mp", _cat_float("p_mp")), ("p_xmp", _cat_float("p_xmp"))):
        if col in cat.colnames:
            table[col] = MaskedColumn(np.ma.getdata(vals), mask=np.ma.getmaskarray(vals),
                                      format=".3f")
    table["delta_n2"] = MaskedColumn(np.ma.getdata(delta), mask=np.ma.getmaskarray(delta),
                                     format=".3f")
    table["delta_n2_err"] = MaskedColumn(np.ma.getdata(delta_err),
                                         mask=np.ma.getmaskarray(delta_err), format=".3f")
    # asymmetric N2 intervals (posterior percentiles of measure) carried into the differences
    if "n2_p16" in obs.colnames and "n2_p84" in obs.colnames:
        from ..lines.ratios import interval_errors
        p16, p84 = _float_column(obs, "n2_p16"), _float_column(obs, "n2_p84")
        p50 = _float_column(obs, "n2_p50") if "n2_p50" in obs.colnames else None
        n2_lo, n2_hi = interval_errors(n2, p16, p84, p50)
        cnn_e = np.ma.filled(n2_cnn_err, 0.0)
        lo = np.ma.sqrt(n2_lo ** 2 + cnn_e ** 2)
        hi = np.ma.sqrt(n2_hi ** 2 + cnn_e ** 2)
        for col, vals in (("n2_p16", p16), ("n2_p84", p84)):
            table[col] = MaskedColumn(np.ma.getdata(vals), mask=np.ma.getmaskarray(vals),
                                      format=".3f")
        for col, vals in (("delta_n2_err_lo", lo), ("delta_n2_err_hi", hi)):
            v = np.ma.array(vals, copy=True)
            v[meas["limit"] | ~matched] = np.ma.masked
            table[col] = MaskedColumn(np.ma.getdata(v), mask=np.ma.getmaskarray(v), format=".3f")
    table["outcome"] = outcome
    table["excluded"] = excluded
    table.meta["band_dex"] = band_val
    table.meta["band_source"] = band_source
    table.meta["match_radius_arcsec"] = float(radius.to_value(u.arcsec))
    table.meta["statistics"] = stats
    table.meta["censored"] = censored
    table.meta["km"] = km
    table.meta["classes"] = classes
    table.meta["exclude_flag"] = exclude_flag or ""

    n_unmatched = int((match["match_status"] == "unmatched").sum())
    n_amb = int((match["match_status"] == "ambiguous").sum())
    if n_unmatched or n_amb:
        log.warning("%d observed object(s) unmatched, %d ambiguous (see comparison.txt)",
                    n_unmatched, n_amb)
    return ComparisonResult(table=table, statistics=stats, band=band_val,
                            band_source=band_source, censored=censored, report=report,
                            n_catalogue=len(cat), classes=classes, km=km)


# ----------------------------------------------------------------------------- outputs
