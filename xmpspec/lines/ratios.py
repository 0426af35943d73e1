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
           "RATIOS", "RatioResult", "line_state", "line_states", "flux_bound", "ratio_one",
           "log_ratio",
           "difference_one", "combine_difference", "snr_label", "interval_errors"]

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


def line_state(flux: float, err: float, gate: float, state: str | None = None) -> str:
    """State of one line measurement (the rule of :func:`line_states`)."""
    if state is not None:
        st = str(state).strip().lower()
        st = NOT_COVERED if st == "missing" else st
        if st in STATES:
            return st
    if not math.isfinite(flux):
        return NOT_COVERED
    snr = flux / err if (math.isfinite(err) and err > 0) else math.inf
    return DETECTED if (snr >= gate and flux > 0) else UPPER


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
    given = _states(state, f.size)
    return np.array([line_state(float(f[i]), float(e[i]), gate,
                                None if given is None else given[i]) for i in range(f.size)],
                    dtype="U16")


def flux_bound(flux, err, k: float, limit=None) -> np.ndarray:
    """Upper limit of a flux: the measured ``limit`` where finite, else ``max(F,0) + k sigma``."""
    f = _arr(flux)
    e = _arr(err, f.size)
    lim = None if limit is None else _arr(limit, f.size)
    return np.array([_bound(float(f[i]), float(e[i]), k,
                            None if lim is None else float(lim[i])) for i in range(f.size)])


def _bound(f: float, e: float, k: float, lim: float | None) -> float:
    if lim is not None and math.isfinite(lim):
        return lim
    return max(f if math.isfinite(f) else 0.0, 0.0) + k * e


def ratio_one(num: float, num_err: float, den: float, den_err: float, *, gate: float, k: float,
              num_state: str | None = None, den_state: str | None = None,
              num_limit: float | None = None, den_limit: float | None = None,
              lower_limits: bool = True) -> tuple[float, float, str, str]:
    """One ratio by the rules of the module docstring: ``(value, err, state, reason)``.

    Arguments as :func:`log_ratio` for one row (scalars; NaN = not measured).
    ``value`` is NaN without a number, ``err`` NaN except for detections.
    """
    nan = float("nan")
    a = line_state(num, num_err, gate, num_state)
    b = line_state(den, den_err, gate, den_state)
    if NOT_COVERED in (a, b):
        return nan, nan, NOT_COVERED, ("numerator not covered" if a == NOT_COVERED
                                       else "denominator not covered")
    if FAILED in (a, b):
        return nan, nan, FAILED, ("numerator fit failed" if a == FAILED
                                  else "denominator fit failed")
    if b == DETECTED and not den > 0:
        return nan, nan, FAILED, "denominator not positive"
    if b == DETECTED:
        if a == DETECTED and num > 0:
            rel = ((num_err / num) ** 2 if math.isfinite(num_err) else 0.0) \
                + ((den_err / den) ** 2 if math.isfinite(den_err) else 0.0)
            return math.log10(num / den), math.sqrt(rel) / LN10, DETECTED, ""
        nb = _bound(num, num_err, k, num_limit)
        if nb > 0:
            why = ""
            if a == DETECTED:
                why = "numerator detected but not positive: upper limit"
            elif math.isfinite(num) and num <= 0:
                why = "negative/zero numerator flux -> upper limit"
            return math.log10(nb / den), nan, UPPER, why
        return nan, nan, FAILED, "numerator not detected and no error for a limit"
    if a == DETECTED and num > 0 and b == UPPER:
        db = _bound(den, den_err, k, den_limit)
        if lower_limits and db > 0:
            return math.log10(num / db), nan, LOWER, ""
        return nan, nan, FAILED, "denominator not detected"
    return nan, nan, FAILED, "denominator not detected" + (" (nor the numerator)"
                                                          if a != DETECTED else "")


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
    sn, sd = _states(num_state, m), _states(den_state, m)
    nl = None if num_limit is None else _arr(num_limit, m)
    dl = None if den_limit is None else _arr(den_limit, m)
    return _result([ratio_one(
        float(n_[i]), float(ne[i]), float(d[i]), float(de[i]), gate=gate, k=k,
        num_state=None if sn is None or not sn[i] else sn[i],
        den_state=None if sd is None or not sd[i] else sd[i],
        num_limit=None if nl is None else float(nl[i]),
        den_limit=None if dl is None else float(dl[i]), lower_limits=lower_limits)
        for i in range(m)])


def _result(rows: list[tuple[float, float, str, str]]) -> RatioResult:
    """Per-row ``(value, err, state, reason)`` tuples as a :class:`RatioResult`."""
    return RatioResult(np.array([r[0] for r in rows], float).reshape(-1),
                       np.array([r[1] for r in rows], float).reshape(-1),
                       np.array([r[2] for r in rows], dtype="U16").reshape(-1),
                       np.array([r[3] for r in rows], dtype=object).reshape(-1))


def difference_one(a_value: float, a_err: float, a_state: str, b_value: float, b_err: float,
                   b_state: str) -> tuple[float, float, str, str]:
    """One ``a - b`` of censored log quantities (rule of :func:`combine_difference`)."""
    nan = float("nan")
    x = NOT_COVERED if a_state in ("missing", "") else a_state
    y = NOT_COVERED if b_state in ("missing", "") else b_state
    if NOT_COVERED in (x, y):
        return nan, nan, NOT_COVERED, ""
    if FAILED in (x, y) or not (math.isfinite(a_value) and math.isfinite(b_value)):
        return nan, nan, FAILED, "an input failed or has no value"
    v = a_value - b_value
    if x == DETECTED and y == DETECTED:
        return v, math.hypot(a_err, b_err), DETECTED, ""
    if x in (DETECTED, LOWER) and y in (DETECTED, UPPER):
        return v, nan, LOWER, ""        # a >= x0 and b <= y0: a - b >= x0 - y0
    if x in (DETECTED, UPPER) and y in (DETECTED, LOWER):
        return v, nan, UPPER, ""
    return nan, nan, FAILED, "opposite limits: unconstrained"


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
    return _result([difference_one(float(av[i]), float(ae[i]), str(sa[i]), float(bv[i]),
                                   float(be[i]), str(sb[i])) for i in range(m)])


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


def interval_errors(value, p16, p84, p50=None):
    """Asymmetric 1-sigma errors of a reported value from its posterior's 68% interval.

    The reported value of a detection is the published estimator (integrated
    fluxes by default), while the posterior (``n2_p16``/``n2_p50``/``n2_p84``)
    is that of the Gaussian-fit likelihood; the two centres can differ by a
    fraction of the error. The errors attached to the reported value are the
    posterior's widths about its median, ``p50 - p16`` (lower) and
    ``p84 - p50`` (upper), so the interval never collapses or turns negative
    when the value sits off the posterior median. Without ``p50`` the widths
    are taken about the value itself. Every product (tables, report, compare)
    uses this one rule.

    Parameters
    ----------
    value, p16, p84 : array_like
        Reported value and posterior percentiles (masked or NaN where absent).
    p50 : array_like, optional
        Posterior median.

    Returns
    -------
    (numpy.ma.MaskedArray, numpy.ma.MaskedArray)
        Lower and upper errors, masked where not both positive and finite.

    Examples
    --------
    >>> lo, hi = interval_errors([-2.118], [-2.13], [-2.06], p50=[-2.09])
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.04, 0.03)
    """
    def arr(x):
        a = np.ma.masked_invalid(np.ma.asarray(x, dtype=float))
        return np.ma.atleast_1d(a)
    v, lo_p, hi_p = arr(value), arr(p16), arr(p84)
    centre = v if p50 is None else arr(p50)
    if p50 is not None:
        centre = np.ma.where(np.ma.getmaskarray(centre), v, centre)
    lo = centre - lo_p
    hi = hi_p - centre
    bad = (np.ma.getmaskarray(lo) | np.ma.getmaskarray(hi) | ~(np.ma.filled(lo, 0) > 0)
           | ~(np.ma.filled(hi, 0) > 0))
    return np.ma.array(np.ma.getdata(lo), mask=bad), np.ma.array(np.ma.getdata(hi), mask=bad)
