"""Censored strong-line ratios: the one place of the state rules (N2, O3, O3N2, ...).

``xmpspec measure`` (:mod:`xmpspec.lines.measure`) and ``xmpspec derive``
(:mod:`xmpspec.physics.derive`, through :mod:`xmpspec.physics.strong_line`)
both compute their indices here, so a lines table, an objects table and
``batch --derive`` give the same values, states and limits.

States (DEVELOPERS.md)
----------------------
``detected``, ``upper_limit``, ``lower_limit``, ``not_covered``, ``failed``.

Line states
-----------
A line's state is the one it was measured with when it is given (``xmpspec
measure`` writes it: for [NII]6585 that is the *N2 gate* decision, the
amplitude-ratio significance, not the S/N of the reported flux). Only when no
state is given (a user table) is it decided here from the flux S/N:
``F / sigma_F >= gate`` is ``detected``, else ``upper_limit``. A limit is the
measured one (``f_<key>_limit``, e.g. an MCMC percentile) where given, else
``max(F, 0) + k sigma_F`` (``k = [measure] upper_limit_sigma``).

Ratio rules (:func:`log_ratio`)
-------------------------------
* Either line ``not_covered`` -> ``not_covered``; either ``failed`` -> ``failed``.
* Both detected (positive) -> ``detected``, ``log10(num/den)``, error
  ``sqrt((s_n/n)^2 + (s_d/d)^2) / ln 10``.
* Numerator a limit, denominator detected -> ``upper_limit`` at ``log10(limit/den)``.
* Numerator detected, denominator a limit -> ``lower_limit`` at
  ``log10(num/limit_den)`` for ratios that allow it (O3); ``failed`` for N2,
  whose gate needs a detected Halpha.
* Both limits, a non-positive detected denominator, or a limit without a
  positive bound -> ``failed`` (the reason says which).

``O3N2 = O3 - N2`` (:func:`combine_difference`): detected when both are; an N2
upper limit (or an O3 lower limit) with the other detected or bounded the
same way gives a lower limit; the mirror case an upper limit; opposite bounds
leave it unconstrained (``failed``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DETECTED", "UPPER", "LOWER", "NOT_COVERED", "FAILED", "STATES", "RatioDef",
           "RATIOS", "RatioResult", "line_states", "flux_bound", "log_ratio",
           "combine_difference", "snr_label"]

DETECTED = "detected"
UPPER = "upper_limit"
LOWER = "lower_limit"
NOT_COVERED = "not_covered"
FAILED = "failed"
STATES = (DETECTED, UPPER, LOWER, NOT_COVERED, FAILED)
LN10 = math.log(10.0)


@dataclass(frozen=True)
class RatioDef:
    """A strong-line ratio ``log10(num/den)``.

    Attributes
    ----------
    num, den : str
        Line keys of the numerator and the denominator.
    lower_limits : bool
        Whether a detected numerator over an undetected denominator gives a
        lower limit (else the ratio is ``failed``).
    """

    num: str
    den: str
    lower_limits: bool


#: The ratios of the per-object tables.
RATIOS = {
    "n2": RatioDef("nii6585", "ha", lower_limits=False),
    "o3": RatioDef("oiii5008", "hb", lower_limits=True),
}


@dataclass
class RatioResult:
    """Value, 1-sigma error, state and reason per row (arrays).

    ``value`` is the limit for censored rows and NaN where there is no
    number; ``err`` is NaN except for detections; ``reason`` is '' when fine.
    """

    value: np.ndarray
    err: np.ndarray
    state: np.ndarray
    reason: np.ndarray

    def row(self, i: int = 0, name: str = "ratio") -> dict:
        """Row ``i`` as the per-object dict of ``xmpspec measure`` (``None`` for no number)."""
        v, e = float(self.value[i]), float(self.err[i])
        return {name: v if np.isfinite(v) else None, f"{name}_err": e if np.isfinite(e) else None,
                f"{name}_upper_limit": bool(self.state[i] == UPPER),
                f"{name}_state": str(self.state[i])}


def _arr(x, n: int | None = None) -> np.ndarray:
    a = np.atleast_1d(np.asarray(x, float))
    return np.broadcast_to(a, (n,)).copy() if n is not None and a.size == 1 and n != 1 else a


def _states(x, n: int) -> np.ndarray | None:
    if x is None:
        return None
    a = np.atleast_1d(np.asarray(x, dtype=object))
    if a.size == 1 and n != 1:
        a = np.full(n, a[0], dtype=object)
    out = np.array(["" if v is None else str(v).strip().lower() for v in a], dtype="U16")
    out[out == "missing"] = NOT_COVERED
    return out


def line_states(flux, err, gate: float, state=None) -> np.ndarray:
    """States of line measurements.

    Parameters
    ----------
    flux, err : array_like
        Fluxes and 1-sigma errors (NaN = not measured).
    gate : float
        S/N at or above which a line without a given state is ``detected``.
    state : array_like of str, optional
        Measured states; a known state is kept as given ('' or absent: decided
        from the S/N).

    Returns
    -------
    ndarray of str
    """
    f = _arr(flux)
    e = _arr(err, f.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(np.isfinite(e) & (e > 0), f / e, np.where(np.isfinite(f), np.inf, np.nan))
    out = np.where(np.isfinite(f), np.where((snr >= gate) & (f > 0), DETECTED, UPPER),
                   NOT_COVERED).astype("U16")
    given = _states(state, f.size)
    if given is not None:
        known = np.isin(given, STATES)
        out[known] = given[known]
    return out


def flux_bound(flux, err, k: float, limit=None) -> np.ndarray:
    """Upper limit of a flux: the measured ``limit`` where finite, else ``max(F,0) + k sigma``."""
    f = _arr(flux)
    e = _arr(err, f.size)
    bound = np.maximum(np.where(np.isfinite(f), f, 0.0), 0.0) + k * e
    if limit is not None:
        lim = _arr(limit, f.size)
        bound = np.where(np.isfinite(lim), lim, bound)
    return bound


def log_ratio(num, num_err, den, den_err, *, gate: float, k: float, num_state=None,
              den_state=None, num_limit=None, den_limit=None,
              lower_limits: bool = True) -> RatioResult:
    """``log10(num / den)`` with its error and censoring state (rules in the module docstring).

    Parameters
    ----------
    num, num_err, den, den_err : array_like
        Fluxes and 1-sigma errors on a common scale (NaN = not measured).
    gate : float
        ``[measure] significance_gate``, used for lines without a given state.
    k : float
        ``[measure] upper_limit_sigma``.
    num_state, den_state : array_like of str, optional
        Measured line states (see :func:`line_states`).
    num_limit, den_limit : array_like, optional
        Measured flux limits (used for limits where finite).
    lower_limits : bool
        Detected numerator over an undetected denominator: lower limit (True)
        or ``failed``.

    Returns
    -------
    RatioResult
    """
    n_ = _arr(num)
    m = n_.size
    ne, d, de = _arr(num_err, m), _arr(den, m), _arr(den_err, m)
    sn = line_states(n_, ne, gate, num_state)
    sd = line_states(d, de, gate, den_state)
    value = np.full(m, np.nan)
    err = np.full(m, np.nan)
    state = np.full(m, FAILED, dtype="U16")
    reason = np.full(m, "", dtype=object)
    nb = flux_bound(n_, ne, k, num_limit)
    db = flux_bound(d, de, k, den_limit)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(m):
            a, b = sn[i], sd[i]
            if NOT_COVERED in (a, b):
                state[i] = NOT_COVERED
                reason[i] = "numerator not covered" if a == NOT_COVERED else \
                    "denominator not covered"
                continue
            if FAILED in (a, b):
                reason[i] = "numerator fit failed" if a == FAILED else "denominator fit failed"
                continue
            if b == DETECTED and not d[i] > 0:
                reason[i] = "denominator not positive"
                continue
            if b == DETECTED:
                if a == DETECTED and n_[i] > 0:
                    value[i] = math.log10(n_[i] / d[i])
                    rel = ((ne[i] / n_[i]) ** 2 if np.isfinite(ne[i]) else 0.0) \
                        + ((de[i] / d[i]) ** 2 if np.isfinite(de[i]) else 0.0)
                    err[i] = math.sqrt(rel) / LN10
                    state[i] = DETECTED
                elif nb[i] > 0:
                    value[i] = math.log10(nb[i] / d[i])
                    state[i] = UPPER
                    if a == DETECTED:
                        reason[i] = "numerator detected but not positive: upper limit"
                    elif np.isfinite(n_[i]) and n_[i] <= 0:
                        reason[i] = "negative/zero numerator flux -> upper limit"
                else:
                    reason[i] = "numerator not detected and no error for a limit"
                continue
            if a == DETECTED and n_[i] > 0 and b == UPPER:
                if lower_limits and db[i] > 0:
                    value[i] = math.log10(n_[i] / db[i])
                    state[i] = LOWER
                else:
                    reason[i] = "denominator not detected"
                continue
            reason[i] = "denominator not detected" + (" (nor the numerator)" if a != DETECTED
                                                      else "")
    return RatioResult(value, err, state, reason)


def combine_difference(a_value, a_err, a_state, b_value, b_err, b_state) -> RatioResult:
    """``a - b`` of two censored log quantities (O3N2 = O3 - N2).

    Returns
    -------
    RatioResult
        ``detected`` when both are; ``lower_limit`` when ``a`` is detected or a
        lower limit and ``b`` detected or an upper limit (not both detected);
        ``upper_limit`` in the mirror case; ``not_covered`` if either is;
        ``failed`` otherwise (opposite bounds, a failed input or no value).
    """
    av = _arr(a_value)
    m = av.size
    ae, bv, be = _arr(a_err, m), _arr(b_value, m), _arr(b_err, m)
    sa, sb = _states(a_state, m), _states(b_state, m)
    value = av - bv
    err = np.hypot(ae, be)
    state = np.full(m, FAILED, dtype="U16")
    reason = np.full(m, "", dtype=object)
    for i in range(m):
        x, y = sa[i], sb[i]
        if NOT_COVERED in (x, y):
            state[i] = NOT_COVERED
        elif FAILED in (x, y) or not (np.isfinite(av[i]) and np.isfinite(bv[i])):
            reason[i] = "an input failed or has no value"
        elif x == DETECTED and y == DETECTED:
            state[i] = DETECTED
        elif x in (DETECTED, LOWER) and y in (DETECTED, UPPER):
            state[i] = LOWER        # a >= x0 and b <= y0: a - b >= x0 - y0
        elif x in (DETECTED, UPPER) and y in (DETECTED, LOWER):
            state[i] = UPPER
        else:
            reason[i] = "opposite limits: unconstrained"
    err[state != DETECTED] = np.nan
    value[~np.isin(state, (DETECTED, UPPER, LOWER))] = np.nan
    return RatioResult(value, err, state, reason)


def snr_label(significance, good: float, gate: float) -> np.ndarray:
    """Grade of a gate significance: ``good`` (>= good), ``fair`` (gate..good), ``limit``.

    No finite significance gives ''.
    """
    s = _arr(significance)
    out = np.full(s.size, "", dtype="U5")
    fin = np.isfinite(s)
    out[fin & (s >= good)] = "good"
    out[fin & (s >= gate) & (s < good)] = "fair"
    out[fin & (s < gate)] = "limit"
    return out
