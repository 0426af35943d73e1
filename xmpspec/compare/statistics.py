"""Detections-only statistics of N2_obs - N2_CNN and the outcome of each object.

:func:`observed_n2` reads the observed N2, its limit flag and significance;
:func:`n2_statistics` gives MAE, median absolute error, RMS, bias and N;
:func:`classify_outcomes` places detections and limits against the band.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from ..errors import InputError
from .columns import _float_column, as_bool


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
