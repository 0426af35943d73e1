"""Comparison of observed N2 with the CNN selection stage's predictions.

science.md, "Comparison with the CNN selection stage": observed targets are
matched to the selection catalogue by name, else by sky position (astropy
``SkyCoord.match_to_catalog_sky``, 2 arcsec by default). For detections the
statistics of ``N2_obs - N2_CNN`` are reported (mean absolute error, median
absolute error, RMS, bias, N) for all detections, for good (S/N >= 3) and
for fair (2 <= S/N < 3) ones; detections beyond the MAE band are upper or
lower outliers. Upper limits are censored values: a limit is an outlier only
when it lies below the prediction minus the band (the true N2 is then
certainly below the band: a lower outlier); any other limit is consistent.

Nothing is dropped silently: every observed row appears in the output with a
``match_status`` (``matched``, ``unmatched``, ``ambiguous``) and a note, and
duplicate names on either side are reported.

Examples
--------
>>> from xmpspec.compare import compare_tables
>>> result = compare_tables(observed, catalogue)          # doctest: +SKIP
>>> result.statistics["all"]["mae"]                        # doctest: +SKIP
0.17
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.table import MaskedColumn, Table

from .config import Config, get_active_config
from .errors import ConfigError, InputError

__all__ = [
    "ComparisonResult",
    "compare_tables",
    "match_catalogue",
    "parse_coordinates",
    "n2_statistics",
    "censored_statistics",
    "classify_outcomes",
    "normalise_catalogue",
    "observed_n2",
    "as_bool",
    "summary_text",
    "run_comparison",
]

log = logging.getLogger(__name__)

#: accepted spellings of catalogue / observed columns (lower-cased), first is canonical
COLUMN_ALIASES = {
    "name": ("name", "object", "target", "id", "objname"),
    "ra": ("ra", "raj2000", "ra_deg", "ra_j2000", "_raj2000"),
    "dec": ("dec", "dej2000", "decj2000", "dec_deg", "dec_j2000", "_dej2000", "de"),
    "n2_cnn": ("n2_cnn", "n2_pred", "n2_predicted"),
    "n2_cnn_err": ("n2_cnn_err", "e_n2_cnn", "n2_pred_err"),
    "p_mp": ("p_mp",),
    "p_xmp": ("p_xmp",),
}

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

def as_bool(column, source=None) -> np.ndarray:
    """Flags written as bool, 0/1 or text: :func:`xmpspec.boolparse.bool_array`.

    Masked or empty entries are False.
    """
    from .boolparse import bool_array
    return bool_array(column, source)


def _float_column(table: Table, name: str, source=None) -> np.ma.MaskedArray:
    """A column as a masked float array (non-finite and empty values masked).

    Raises InputError naming ``source``, the column and the row of a cell that is
    not a number (e.g. ``n2_cnn = abc``).
    """
    col = table[name]
    unit = getattr(col, "unit", None)
    if hasattr(col, "to_value") and unit is not None:
        col = col.value
    try:
        return np.ma.masked_invalid(np.ma.asarray(col, dtype=float))
    except (TypeError, ValueError):
        pass
    mask = np.ma.getmaskarray(col)
    out = np.full(len(col), np.nan)
    for i, v in enumerate(np.ma.getdata(col)):
        text = v.decode() if isinstance(v, bytes) else str(v)
        if mask[i] or text.strip().lower() in ("", "--", "nan", "none"):
            continue
        try:
            out[i] = float(text)
        except ValueError:
            raise InputError(f"column '{name}' row {i + 1}: '{text.strip()}' is not a number",
                             source) from None
    return np.ma.masked_invalid(out)


def _norm_name(name) -> str:
    return "".join(str(name).split()).upper()


def _find_column(table: Table, key: str) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    for alias in COLUMN_ALIASES.get(key, (key,)):
        if alias in lower:
            return lower[alias]
    return None


def normalise_catalogue(catalogue: Table, source=None) -> Table:
    """Copy of a selection catalogue with canonical column names.

    Accepts the spellings of :data:`COLUMN_ALIASES` in any case (``RA``,
    ``RAJ2000``, ``N2_CNN`` ...). Requires ``name`` or coordinates, and ``n2_cnn``.

    Raises
    ------
    InputError
        ``n2_cnn`` is absent, or neither names nor coordinates are present.
    """
    cat = catalogue.copy(copy_data=False)
    for key in COLUMN_ALIASES:
        col = _find_column(cat, key)
        if col is not None and col != key:
            if key in cat.colnames:
                continue
            cat.rename_column(col, key)
    if "n2_cnn" not in cat.colnames:
        raise InputError("selection catalogue has no 'n2_cnn' column (predicted N2); "
                         f"present: {', '.join(cat.colnames)}", source)
    if "name" not in cat.colnames and not ("ra" in cat.colnames and "dec" in cat.colnames):
        raise InputError("selection catalogue has neither a 'name' column nor 'ra'/'dec'",
                         source)
    for key in ("n2_cnn", "n2_cnn_err", "p_mp", "p_xmp"):  # numbers, or an error naming the row
        if key in cat.colnames:
            _float_column(cat, key, source)
    return cat


def parse_coordinates(ra, dec, source=None) -> tuple[SkyCoord | None, np.ndarray]:
    """Sky positions from RA/Dec columns: :func:`xmpspec.coords.parse_coordinates`.

    Degrees (or the column's angular unit) or sexagesimal text (RA in hours);
    returns ``(SkyCoord or None, valid rows)``; InputError names file, row and column.
    """
    from .coords import parse_coordinates as _parse
    return _parse(ra, dec, source)


def _duplicates(names) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for i, nm in enumerate(names):
        key = _norm_name(nm)
        if key in ("", "--"):
            continue
        seen.setdefault(key, []).append(i)
    return {k: v for k, v in seen.items() if len(v) > 1}


# ----------------------------------------------------------------------------- matching

def _positions(observed: Table, catalogue: Table, observed_source=None,
               catalogue_source=None) -> tuple:
    obs_coord = cat_coord = None
    obs_valid = np.zeros(len(observed), bool)
    cat_valid = np.zeros(len(catalogue), bool)
    if "ra" in observed.colnames and "dec" in observed.colnames:
        obs_coord, obs_valid = parse_coordinates(observed["ra"], observed["dec"], observed_source)
    if "ra" in catalogue.colnames and "dec" in catalogue.colnames:
        cat_coord, cat_valid = parse_coordinates(catalogue["ra"], catalogue["dec"],
                                                 catalogue_source)
    return obs_coord, obs_valid, cat_coord, cat_valid


def match_catalogue(observed: Table, catalogue: Table, radius: u.Quantity,
                    observed_source=None, catalogue_source=None,
                    positions: tuple | None = None) -> tuple[Table, list[str]]:
    """Match observed rows to catalogue rows by name, else by sky position.

    A name is matched case- and whitespace-insensitively. A name present
    twice in the catalogue is ambiguous (unless the observed position picks
    exactly one of them within ``radius``). Without a name match, the
    nearest catalogue entry within ``radius`` is taken; two or more entries
    within ``radius`` make the match ambiguous. Ambiguous rows are reported,
    not resolved by guessing.

    Parameters
    ----------
    observed, catalogue : astropy.table.Table
        ``catalogue`` with canonical names (see :func:`normalise_catalogue`).
    radius : astropy.units.Quantity
        Matching radius (angle).
    positions : tuple, optional
        ``(obs_coord, obs_valid, cat_coord, cat_valid)`` from
        :func:`parse_coordinates` when already parsed (None entries: no positions).

    Returns
    -------
    match : astropy.table.Table
        One row per observed row: ``cat_index`` (-1 if none), ``match_method``
        (``name``, ``position`` or ``none``), ``match_status``
        (``matched``, ``unmatched``, ``ambiguous``), ``match_sep_arcsec``
        (masked when unknown) and ``match_note``.
    report : list of str
        Notes for the user (duplicates, unmatched, ambiguous, disagreements).

    Raises
    ------
    InputError
        No row can be matched: no common names and positions missing on one side.
    """
    radius = u.Quantity(radius, u.arcsec)
    if radius <= 0 * u.arcsec:
        raise ConfigError(f"match radius must be positive, got {radius}")
    n_obs = len(observed)
    report: list[str] = []

    obs_names = [str(x) for x in observed["name"]] if "name" in observed.colnames else None
    cat_names = [str(x) for x in catalogue["name"]] if "name" in catalogue.colnames else None

    for label, names, src in (("observed table", obs_names, observed_source),
                              ("selection catalogue", cat_names, catalogue_source)):
        if names is None:
            continue
        for rows in _duplicates(names).values():
            report.append(f"duplicate name in {label}{f' ({src})' if src else ''}: "
                          f"'{names[rows[0]]}' in rows {', '.join(str(r + 1) for r in rows)}")

    if positions is None:
        positions = _positions(observed, catalogue, observed_source, catalogue_source)
    obs_coord, obs_valid, cat_coord, cat_valid = positions

    cat_index_by_name: dict[str, list[int]] = {}
    if cat_names is not None:
        for j, nm in enumerate(cat_names):
            cat_index_by_name.setdefault(_norm_name(nm), []).append(j)

    can_position = obs_coord is not None and cat_coord is not None and cat_valid.any()
    cat_idx = np.full(n_obs, -1, int)
    method = np.full(n_obs, "none", dtype="U8")
    status = np.full(n_obs, "unmatched", dtype="U9")
    sep = np.ma.masked_all(n_obs, dtype=float)
    notes = ["" for _ in range(n_obs)]

    near_idx: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    nearest_sep = np.full(n_obs, np.nan)
    if can_position:
        # KD-tree searches (astropy): the nearest entry of every observed row, and all
        # entries within the radius (to detect ambiguous matches)
        cat_sub = cat_coord[cat_valid]
        cat_sub_index = np.flatnonzero(cat_valid)
        obs_rows = np.flatnonzero(obs_valid)
        if len(obs_rows):
            sub_obs = obs_coord[obs_rows]
            _, d_near, _ = sub_obs.match_to_catalog_sky(cat_sub)
            nearest_sep[obs_rows] = np.atleast_1d(d_near.to_value(u.arcsec))
            io, ic, d2d, _ = search_around_sky(sub_obs, cat_sub, radius)
            for k in np.unique(io):
                sel = io == k
                order = np.argsort(d2d[sel].to_value(u.arcsec))
                near_idx[int(obs_rows[k])] = (cat_sub_index[ic[sel]][order],
                                              d2d[sel].to_value(u.arcsec)[order])

    def _within(i: int) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue rows within radius of observed row i (indices, separations)."""
        return near_idx.get(i, (np.array([], int), np.array([])))

    for i in range(n_obs):
        name = obs_names[i] if obs_names is not None else ""
        candidates = cat_index_by_name.get(_norm_name(name), []) if name else []
        has_pos = can_position and obs_valid[i]
        if len(candidates) == 1:
            j = candidates[0]
            cat_idx[i], method[i], status[i] = j, "name", "matched"
            if has_pos and cat_valid[j]:
                d = obs_coord[i].separation(cat_coord[j]).to_value(u.arcsec)
                sep[i] = d
                if d > radius.to_value(u.arcsec):
                    notes[i] = (f"name match, but positions differ by {d:.1f} arcsec "
                                f"(> {radius.to_value(u.arcsec):g})")
                    report.append(f"{name}: {notes[i]}")
            continue
        if len(candidates) > 1:
            if has_pos:
                near = [j for j in candidates if cat_valid[j]
                        and obs_coord[i].separation(cat_coord[j]) <= radius]
                if len(near) == 1:
                    j = near[0]
                    cat_idx[i], method[i], status[i] = j, "name+pos", "matched"
                    sep[i] = obs_coord[i].separation(cat_coord[j]).to_value(u.arcsec)
                    notes[i] = (f"name appears {len(candidates)} times in the catalogue; "
                                "the one within the radius was taken")
                    report.append(f"{name}: {notes[i]}")
                    continue
            status[i] = "ambiguous"
            method[i] = "name"
            notes[i] = (f"name appears {len(candidates)} times in the catalogue (rows "
                        f"{', '.join(str(j + 1) for j in candidates)}); not matched")
            report.append(f"{name}: {notes[i]}")
            continue
        if has_pos:
            idx, d = _within(i)
            if len(idx) == 1:
                cat_idx[i], method[i], status[i] = idx[0], "position", "matched"
                sep[i] = d[0]
                if name and cat_names is not None:
                    notes[i] = f"matched by position to '{cat_names[idx[0]]}' ({d[0]:.2f} arcsec)"
            elif len(idx) > 1:
                status[i], method[i] = "ambiguous", "position"
                sep[i] = d[0]
                listing = ", ".join(
                    f"'{cat_names[j]}' at {dd:.2f}\"" if cat_names is not None
                    else f"row {j + 1} at {dd:.2f}\"" for j, dd in zip(idx, d, strict=True))
                notes[i] = (f"{len(idx)} catalogue entries within "
                            f"{radius.to_value(u.arcsec):g} arcsec ({listing}); not matched")
                report.append(f"{name or f'row {i + 1}'}: {notes[i]}")
            else:
                notes[i] = (f"no catalogue entry within {radius.to_value(u.arcsec):g} arcsec "
                            f"(nearest {nearest_sep[i]:.1f} arcsec)")
                report.append(f"{name or f'row {i + 1}'}: unmatched, {notes[i]}")
        else:
            why = ("no name match and no position" if obs_coord is None or not obs_valid[i]
                   else "no name match and the catalogue has no positions")
            notes[i] = why
            report.append(f"{name or f'row {i + 1}'}: unmatched, {why}")

    if n_obs and not (status == "matched").any() and not (status == "ambiguous").any():
        if not can_position:
            lacking = []
            if cat_coord is None:
                lacking.append("the selection catalogue has no usable ra/dec")
            if obs_coord is None:
                lacking.append("the observed table has no usable ra/dec")
            raise InputError(
                "no observed object matches the selection catalogue by name, and positional "
                f"matching is impossible ({'; '.join(lacking)})", catalogue_source)

    # one catalogue entry claimed by several observed rows
    taken = cat_idx[status == "matched"]
    for j in np.unique(taken):
        rows = np.flatnonzero((cat_idx == j) & (status == "matched"))
        if len(rows) > 1:
            who = ", ".join(obs_names[r] if obs_names else f"row {r + 1}" for r in rows)
            label = cat_names[j] if cat_names is not None else f"row {j + 1}"
            report.append(f"catalogue entry '{label}' matched by {len(rows)} observed rows: {who}")
            for r in rows:
                notes[r] = (notes[r] + "; " if notes[r] else "") + \
                    f"catalogue entry shared with {len(rows) - 1} other observed row(s)"

    out = Table()
    out["cat_index"] = cat_idx
    out["match_method"] = method
    out["match_status"] = status
    out["match_sep_arcsec"] = MaskedColumn(sep, unit=u.arcsec)
    out["match_note"] = np.array(notes, dtype=str) if n_obs else np.array([], dtype="U1")
    return out, report


# ----------------------------------------------------------------------------- statistics

def observed_n2(observed: Table, source=None) -> dict[str, np.ndarray]:
    """Observed N2, its error, limit flag and significance from a per-object table.

    Reads ``n2``, ``n2_err``, ``n2_upper_limit`` and, when present,
    ``n2_state`` (``detected``/``upper_limit``/``not_covered``/``failed``)
    and ``significance``.

    Returns
    -------
    dict
        ``n2``, ``n2_err`` (masked arrays), ``limit``, ``has_n2`` (bool arrays),
        ``significance`` (masked array).
    """
    if "n2" not in observed.colnames:
        raise InputError(f"observed table has no 'n2' column; present: "
                         f"{', '.join(observed.colnames)}", source)
    n2 = _float_column(observed, "n2")
    n2_err = (_float_column(observed, "n2_err") if "n2_err" in observed.colnames
              else np.ma.masked_all(len(observed)))
    limit = (as_bool(observed["n2_upper_limit"], source) if "n2_upper_limit" in observed.colnames
             else np.zeros(len(observed), bool))
    has_n2 = ~np.ma.getmaskarray(n2)
    if "n2_state" in observed.colnames:
        state = np.array([str(s).strip().lower() for s in np.ma.filled(
            np.ma.asarray(observed["n2_state"]).astype(str), "")])
        limit = limit | (state == "upper_limit")
        has_n2 &= np.isin(state, ["detected", "upper_limit"])
    sig = (_float_column(observed, "significance") if "significance" in observed.colnames
           else np.ma.masked_all(len(observed)))
    return {"n2": n2, "n2_err": n2_err, "limit": limit & has_n2, "has_n2": has_n2,
            "significance": sig}


def n2_statistics(delta) -> dict:
    """Mean absolute error, median absolute error, RMS, bias and N of differences.

    Parameters
    ----------
    delta : array-like
        ``N2_obs - N2_CNN`` of detections (masked/non-finite values ignored).

    Returns
    -------
    dict
        ``n``, ``mae``, ``median_ae``, ``rms``, ``bias`` (mean difference),
        ``median_bias``, ``std`` (sample standard deviation); values are None when ``n == 0``.
    """
    d = np.ma.compressed(np.ma.masked_invalid(np.ma.asarray(delta, dtype=float)))
    n = int(d.size)
    if n == 0:
        return {"n": 0, "mae": None, "median_ae": None, "rms": None, "bias": None,
                "median_bias": None, "std": None}
    return {
        "n": n,
        "mae": float(np.mean(np.abs(d))),
        "median_ae": float(np.median(np.abs(d))),
        "rms": float(np.sqrt(np.mean(d ** 2))),
        "bias": float(np.mean(d)),
        "median_bias": float(np.median(d)),
        "std": float(np.std(d, ddof=1)) if n > 1 else None,
    }


def _km_masses(values: np.ndarray, left: np.ndarray):
    """Kaplan-Meier distribution of left-censored values (scipy.stats.ecdf on the negation).

    ``scipy.stats.ecdf`` handles right-censored data: an upper limit ``d < L``
    is a right-censored ``-d > -L``. Returns the support (ascending in ``d``), the
    probability mass at each point, the leftover mass of the lowest limits
    (placed at the lowest value: Efron's convention, flagged by the caller) and
    the ecdf result of ``-d``.
    """
    from scipy.stats import CensoredData, ecdf
    data = CensoredData(uncensored=-values[~left], right=-values[left])
    res = ecdf(data)
    q = res.sf.quantiles                        # -d values (ascending) with an event
    surv = res.sf.probabilities                 # S(-d) just after each quantile
    prev = np.concatenate(([1.0], surv[:-1]))
    mass = prev - surv                          # KM jumps of -d
    leftover = float(surv[-1]) if surv.size else 1.0
    ev = mass > 0                               # scipy lists censored points too (no mass)
    return -q[ev][::-1], mass[ev][::-1], leftover, res


def _km_masses_fast(values: np.ndarray, left: np.ndarray):
    """The same Kaplan-Meier masses as :func:`_km_masses` in plain numpy (bootstrap speed)."""
    x = -values
    t, inv = np.unique(x, return_inverse=True)
    events = np.bincount(inv, weights=(~left).astype(float), minlength=t.size)
    total = np.bincount(inv, minlength=t.size).astype(float)
    at_risk = total[::-1].cumsum()[::-1]                  # x >= t (censored at t still at risk)
    ev = events > 0
    surv = np.cumprod(1.0 - events[ev] / at_risk[ev])
    prev = np.concatenate(([1.0], surv[:-1]))
    mass = prev - surv
    leftover = float(surv[-1]) if surv.size else 1.0
    return -t[ev][::-1], mass[::-1], leftover, None


def _km_summary(values, left, fast: bool = False) -> tuple[float, float, float, bool]:
    """KM median and mean of left-censored values, and whether the mean is restricted."""
    d, m, leftover, _ = (_km_masses_fast if fast else _km_masses)(values, left)
    restricted = leftover > 1e-12
    if restricted:                              # lowest value(s) censored: Efron, mass kept there
        low = float(np.min(values))
        d = np.concatenate(([low], d))
        m = np.concatenate(([leftover], m))
    cdf = np.cumsum(m)
    i = int(np.searchsorted(cdf, 0.5 - 1e-9))
    median = float(d[min(i, d.size - 1)])
    if abs(cdf[min(i, d.size - 1)] - 0.5) < 1e-9 and i + 1 < d.size:
        median = 0.5 * (median + float(d[i + 1]))  # flat at 0.5: midpoint, as np.median
    return median, float(np.sum(d * m)), float(np.min(values)), restricted


def censored_statistics(delta, upper_limit, confidence: float = 0.95, n_boot: int = 2000,
                        seed: int | None = 0) -> dict:
    """Kaplan-Meier bias of ``N2_obs - N2_CNN`` using detections and upper limits.

    An upper limit on N2_obs makes the difference left-censored (``d < d_lim``).
    The distribution of ``d`` is estimated by Kaplan-Meier with
    :func:`scipy.stats.ecdf` (on ``-d``, which is right-censored). Reported:
    the KM median with the confidence interval read from the pointwise
    log-log confidence band of the KM curve (``ECDFResult.sf.confidence_interval``),
    the KM mean (when the lowest difference is a limit, its left-over mass is
    placed at it: a restricted mean, flagged, an upper bound of the true mean)
    with a bootstrap interval (objects resampled ``n_boot`` times), and the
    detections-only mean/median for comparison.

    Parameters
    ----------
    delta : array_like
        Differences (limit values for censored rows); masked/NaN rows are ignored.
    upper_limit : array_like of bool
        True where ``delta`` is an upper limit.
    confidence : float
        Confidence level of the intervals.
    n_boot : int
        Bootstrap resamples of the mean interval (0: none).
    seed : int, optional
        Random seed of the bootstrap.

    Returns
    -------
    dict
        ``n``, ``n_detected``, ``n_censored``, ``km_median``, ``km_median_lo``,
        ``km_median_hi``, ``km_mean``, ``km_mean_lo``, ``km_mean_hi``,
        ``km_mean_restricted``, ``confidence``, ``method``; values None when
        there is no detection.
    """
    d = np.ma.filled(np.ma.masked_invalid(np.ma.asarray(delta, dtype=float)), np.nan)
    lim = np.asarray(upper_limit, bool)
    ok = np.isfinite(d)
    d, lim = d[ok], lim[ok]
    out = {"n": int(d.size), "n_detected": int((~lim).sum()), "n_censored": int(lim.sum()),
           "km_median": None, "km_median_lo": None, "km_median_hi": None, "km_mean": None,
           "km_mean_lo": None, "km_mean_hi": None, "km_mean_restricted": None,
           "confidence": float(confidence),
           "method": "Kaplan-Meier (scipy.stats.ecdf on -delta, limits right-censored); median "
                     "interval from the log-log KM band; mean interval: bootstrap"}
    if out["n_detected"] == 0:
        return out
    median, mean, _, restricted = _km_summary(d, lim)
    _, _, _, res = _km_masses(d, lim)
    out.update(km_median=median, km_mean=mean, km_mean_restricted=bool(restricted))
    # median interval: where the confidence band of S(-d) crosses 0.5
    try:
        with warnings.catch_warnings():   # undefined at the extreme points: NaN, handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            band = res.sf.confidence_interval(confidence_level=confidence, method="log-log")
        q = res.sf.quantiles
        # undefined where S is 0 or 1 (no information on its error there): the estimate itself
        est = res.sf.evaluate(q)
        lo_c = np.where(np.isfinite(band.low.evaluate(q)), band.low.evaluate(q), est)
        hi_c = np.where(np.isfinite(band.high.evaluate(q)), band.high.evaluate(q), est)
        # S(-d) = P(-d > x) = P(d < -x): the band on S gives a band on the median of d
        above = q[hi_c <= 0.5]
        below = q[lo_c <= 0.5]
        out["km_median_lo"] = float(-above[0]) if above.size else None
        out["km_median_hi"] = float(-below[0]) if below.size else None
        if out["km_median_lo"] is not None and out["km_median_hi"] is not None \
                and out["km_median_lo"] > out["km_median_hi"]:
            out["km_median_lo"], out["km_median_hi"] = out["km_median_hi"], out["km_median_lo"]
    except (ValueError, RuntimeError):
        pass
    if n_boot > 0 and d.size > 2:
        rng = np.random.default_rng(seed)
        means = []
        for _ in range(int(n_boot)):
            k = rng.integers(0, d.size, d.size)
            if lim[k].all():
                continue
            means.append(_km_summary(d[k], lim[k], fast=True)[1])
        if means:
            a = 0.5 * (1.0 - confidence)
            lo_m, hi_m = np.quantile(means, [a, 1.0 - a])
            out.update(km_mean_lo=float(lo_m), km_mean_hi=float(hi_m))
    return out


def classify_outcomes(n2, n2_cnn, limit, band: float) -> np.ndarray:
    """Outcome of each object against the band ``|N2_obs - N2_CNN| <= band``.

    Detections: ``consistent`` inside the band, ``upper_outlier`` above
    (observed N2 higher than predicted + band), ``lower_outlier`` below.
    Upper limits (censored): ``lower_outlier`` only when the limit is below
    the prediction minus the band, otherwise ``consistent`` (the true value
    may lie in the band). Missing values give ``no_data``.

    Parameters
    ----------
    n2, n2_cnn : array-like (masked allowed)
    limit : array-like of bool
    band : float
        Half-width of the band, dex.
    """
    n2 = np.ma.masked_invalid(np.ma.asarray(n2, dtype=float))
    cnn = np.ma.masked_invalid(np.ma.asarray(n2_cnn, dtype=float))
    limit = np.asarray(limit, bool)
    out = np.full(len(n2), "no_data", dtype="U13")
    ok = ~(np.ma.getmaskarray(n2) | np.ma.getmaskarray(cnn))
    d = np.ma.getdata(n2) - np.ma.getdata(cnn)
    det = ok & ~limit
    out[det] = "consistent"
    out[det & (d > band)] = "upper_outlier"
    out[det & (d < -band)] = "lower_outlier"
    lim = ok & limit
    out[lim] = "consistent"
    out[lim & (d < -band)] = "lower_outlier"
    return out


def _grade(limit, has_n2, sig, good: float, gate: float) -> np.ndarray:
    grade = np.full(len(limit), "none", dtype="U8")
    s = np.ma.getdata(sig).astype(float)
    s_ok = ~np.ma.getmaskarray(sig)
    det = has_n2 & ~limit
    grade[det] = "ungraded"
    grade[det & s_ok & (s >= good)] = "good"
    grade[det & s_ok & (s >= gate) & (s < good)] = "fair"
    grade[det & s_ok & (s < gate)] = "weak"
    grade[has_n2 & limit] = "limit"
    return grade


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
        p16, p84 = _float_column(obs, "n2_p16"), _float_column(obs, "n2_p84")
        cnn_e = np.ma.filled(n2_cnn_err, 0.0)
        lo = np.ma.sqrt((n2 - p16) ** 2 + cnn_e ** 2)
        hi = np.ma.sqrt((p84 - n2) ** 2 + cnn_e ** 2)
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
    from .provenance import provenance_record
    from .tableio import atomic_path, read_table, write_table
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
    with atomic_path(outdir / "comparison.txt") as tmp:
        tmp.write_text(summary_text(result, observed_path, selection_path))
    files.append(outdir / "comparison.txt")
    return result, files
