"""Censored statistics of N2_obs - N2_CNN: Kaplan-Meier over detections and upper limits.

:func:`censored_statistics` gives the Kaplan-Meier median and mean (with
bootstrap intervals) of the differences, treating upper limits as
left-censored values.
"""

from __future__ import annotations

import warnings

import numpy as np


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
