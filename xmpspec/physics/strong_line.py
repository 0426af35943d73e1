"""Strong-line indices and abundances: N2, O3, O3N2; Yin et al. 2007 and PP04 calibrations.

Censoring rules (science.md "Abundances")
-----------------------------------------
* A flux ratio whose numerator is not detected (S/N below the measurement
  gate, or negative) is an upper limit
  ``log10((max(F, 0) + k sigma_F) / F_den)`` with ``k = measure.upper_limit_sigma``;
  a ratio whose denominator is not a positive detection has no value.
* ``O3N2 = O3 - N2``: an upper limit on N2 gives a *lower* limit on O3N2, an
  upper limit on O3 an upper limit on O3N2; both limits leave it unconstrained.
* A linear calibration ``y = a + b x`` keeps the kind of limit when ``b > 0``
  (N2 upper limit -> O/H upper limit) and flips it when ``b < 0``
  (O3N2 lower limit -> PP04 O3N2 O/H upper limit).

How the calibration scatter enters an O/H limit
-----------------------------------------------
The N2 upper limit is already a 2-sigma *measurement* limit. The O/H limit
reported in ``oh_n2`` (with ``oh_n2_upper_limit = True``) is the calibration
evaluated at that N2 limit, plus ``abundances.n2_limit_scatter_sigma`` times
the calibration scatter (0.159 dex for Yin et al. 2007). The default is 0:
the limit refers to the calibrated O/H scale, i.e. the value the relation
would give, and the scatter of individual galaxies around the relation
(0.159 dex) is reported separately in ``oh_n2_err_cal`` for every row,
detections and limits alike. Set the key to e.g. 2 for a limit that also
covers a 2-sigma calibration excursion (7.69 + 2 x 0.159 for a galaxy on the
EMPG threshold). The statistical error ``oh_n2_err`` = ``|slope| x n2_err``
is given for detections only.
"""

from __future__ import annotations

import numpy as np

from ..config import Config, get_active_config
from ..errors import ConfigError
from ..lines import ratios
from ._columns import DETECTED, LOWER, MISSING, UPPER, Measured, add_flag

__all__ = ["N2_CALIBRATIONS", "n2_calibration_names", "check_n2_calibration", "log_ratio",
           "to_measured", "n2_percentiles_to_oh",
           "linear_calibration", "oh_n2", "oh_pp04_o3n2", "o3n2_index"]

# name -> (intercept key, slope key, scatter key, reference); numbers in [abundances]
N2_CALIBRATIONS = {
    "Y07": ("y07_intercept", "y07_slope", "y07_scatter", "Yin et al. 2007, eq. 9"),
    "PP04": ("pp04_n2_intercept", "pp04_n2_slope", "pp04_n2_scatter",
             "Pettini & Pagel 2004, linear N2"),
}


def n2_calibration_names() -> list[str]:
    """Names accepted for the N2 calibration (``--n2-calibration``)."""
    return list(N2_CALIBRATIONS)


def check_n2_calibration(name: str) -> str:
    """Return the canonical calibration name or raise ConfigError listing the valid ones."""
    for key in N2_CALIBRATIONS:
        if str(name).strip().upper() == key:
            return key
    raise ConfigError(f"unknown N2 calibration '{name}'; valid: {', '.join(N2_CALIBRATIONS)}",
                      "n2_calibration")


def to_measured(res: ratios.RatioResult, name: str, reasons: bool = True) -> Measured:
    """A :class:`~xmpspec.lines.ratios.RatioResult` as a :class:`Measured`.

    ``not_covered`` and ``failed`` become ``missing`` with a flag (``missing
    <name>`` / ``<name> failed``, as :func:`read_measured` reads them from a
    table; with ``reasons`` the rule's reason is appended after a colon).
    """
    state = res.state.astype("U16").copy()
    flag = np.full(state.size, "", dtype=object)
    for k, st in enumerate(state):
        why = str(res.reason[k])
        if st == ratios.NOT_COVERED:
            flag[k] = f"missing {name}"
        elif st == ratios.FAILED:
            flag[k] = f"{name} failed" + (f": {why}" if reasons and why else "")
        elif why and reasons:
            flag[k] = f"{name}: {why}"
    state[np.isin(state, (ratios.NOT_COVERED, ratios.FAILED))] = MISSING
    out = Measured(res.value.copy(), res.err.copy(), state, flag)
    out.full_state = res.state.copy()     # the five states of xmpspec measure
    return out


def log_ratio(num: np.ndarray, num_err: np.ndarray, den: np.ndarray, den_err: np.ndarray,
              num_state: np.ndarray | None = None, name: str = "ratio",
              config: Config | None = None, num_limit: np.ndarray | None = None,
              den_state: np.ndarray | None = None, den_limit: np.ndarray | None = None,
              lower_limits: bool = True) -> Measured:
    """log10(num / den) with its error and censoring state.

    The rules are those of :func:`xmpspec.lines.ratios.log_ratio` (the same
    function ``xmpspec measure`` uses): a given line state decides (for
    [NII]6585 it is the N2 gate's decision), else the S/N gate.

    Parameters
    ----------
    num, num_err, den, den_err : ndarray
        Fluxes and 1-sigma errors on a common scale (NaN = not measured).
    num_state, den_state : ndarray of str, optional
        States of the lines (``<key>_state`` of ``xmpspec measure``).
    num_limit, den_limit : ndarray, optional
        Flux upper limits as measured (``f_<key>_limit``), used for limits where finite.
    name : str
        Name used in flags.
    config : Config, optional
        Uses ``measure.significance_gate`` and ``measure.upper_limit_sigma``.
    lower_limits : bool
        Detected numerator over an undetected denominator gives a lower limit
        (else no value).

    Returns
    -------
    Measured
        Detections: value and error ``0.4343 sqrt((s_n/n)^2 + (s_d/d)^2)``.
        Upper limits: ``log10((max(n,0) + k s_n)/d)`` (or the measured limit), error NaN.
    """
    cfg = config or get_active_config()
    res = ratios.log_ratio(num, num_err, den, den_err,
                           gate=float(cfg["measure"]["significance_gate"]),
                           k=float(cfg["measure"]["upper_limit_sigma"]), num_state=num_state,
                           den_state=den_state, num_limit=num_limit, den_limit=den_limit,
                           lower_limits=lower_limits)
    return to_measured(res, name)


def linear_calibration(x: Measured, intercept: float, slope: float, scatter: float = 0.0,
                       limit_scatter_sigma: float = 0.0) -> tuple[Measured, np.ndarray]:
    """Apply ``y = intercept + slope * x`` with censoring.

    Parameters
    ----------
    x : Measured
        Index with states.
    intercept, slope : float
        Calibration coefficients.
    scatter : float
        Calibration scatter (dex); returned per row as the systematic error.
    limit_scatter_sigma : float
        Limits are moved outward by this many ``scatter``: an upper limit by
        ``+n scatter``, a lower limit by ``-n scatter``.

    Returns
    -------
    (Measured, ndarray)
        The calibrated quantity (limits flipped when ``slope < 0``) and the
        calibration scatter per row (NaN where there is no value).
    """
    value = intercept + slope * x.value
    err = np.abs(slope) * x.err
    state = x.state.copy()
    if slope < 0:
        up, lo = x.state == UPPER, x.state == LOWER
        state[up], state[lo] = LOWER, UPPER
    err[state != DETECTED] = np.nan
    shift = limit_scatter_sigma * scatter
    value = np.where(state == UPPER, value + shift, value)
    value = np.where(state == LOWER, value - shift, value)
    value[state == MISSING] = np.nan
    cal = np.where(state == MISSING, np.nan, scatter)
    return Measured(value, err, state, x.flag.copy()), cal


def oh_n2(n2: Measured, calibration: str = "Y07", config: Config | None = None
          ) -> tuple[Measured, np.ndarray]:
    """12 + log(O/H) from N2 = log([NII]6585/Halpha).

    Parameters
    ----------
    n2 : Measured
        N2 with states (upper limits propagate to O/H upper limits).
    calibration : str
        ``Y07`` (Yin et al. 2007 eq. 9: 9.263 + 0.836 N2, scatter 0.159 dex) or
        ``PP04`` (Pettini & Pagel 2004: 8.90 + 0.57 N2, scatter 0.18 dex);
        coefficients from ``[abundances]``.
    config : Config, optional

    Returns
    -------
    (Measured, ndarray)
        O/H and the calibration scatter per row. See the module docstring for
        how the scatter enters limits (``abundances.n2_limit_scatter_sigma``).

    Examples
    --------
    >>> import numpy as np
    >>> from xmpspec.physics._columns import Measured
    >>> oh, cal = oh_n2(Measured([-2.0], [0.05], ["detected"]))
    >>> round(float(oh.value[0]), 3)
    7.591
    """
    cfg = config or get_active_config()
    name = check_n2_calibration(calibration)
    ab = cfg["abundances"]
    ki, ks, kc, _ = N2_CALIBRATIONS[name]
    out, cal = linear_calibration(n2, float(ab[ki]), float(ab[ks]), float(ab[kc]),
                                  float(ab["n2_limit_scatter_sigma"]))
    if name == "PP04":
        lo, hi = (float(v) for v in ab["pp04_n2_range"])
        outside = (out.state != MISSING) & ((n2.value < lo) | (n2.value > hi))
        add_flag(out.flag, outside & (n2.state == DETECTED),
                 f"N2 outside PP04 validity range [{lo}, {hi}]")
        add_flag(out.flag, outside & (n2.state == UPPER) & (n2.value < lo),
                 f"N2 limit below PP04 validity range [{lo}, {hi}]")
    return out, cal


def n2_percentiles_to_oh(n2_pct: dict, calibration: str = "Y07",
                         config: Config | None = None) -> dict:
    """O/H percentiles from N2 posterior percentiles through a linear N2 calibration.

    Parameters
    ----------
    n2_pct : dict
        ``{'p16': array, 'p50': ..., 'p84': ..., 'p977': ...}`` (NaN where absent).
    calibration : str
        ``Y07`` or ``PP04`` (coefficients from ``[abundances]``).
    config : Config, optional

    Returns
    -------
    dict
        Same keys, ``intercept + slope * N2`` (a monotonic map keeps the
        percentiles; with a negative slope p16 and p84 swap and p977 is NaN).
        The calibration scatter is not included (it is ``oh_n2_err_cal``).
    """
    cfg = config or get_active_config()
    ki, ks, _, _ = N2_CALIBRATIONS[check_n2_calibration(calibration)]
    a, b = float(cfg["abundances"][ki]), float(cfg["abundances"][ks])
    out = {k: a + b * np.asarray(v, float) for k, v in n2_pct.items()}
    if b < 0:
        out["p16"], out["p84"] = out.get("p84"), out.get("p16")
        if "p977" in out:
            out["p977"] = np.full_like(out["p977"], np.nan)
    return out


def o3n2_index(o3: Measured, n2: Measured) -> Measured:
    """O3N2 = O3 - N2 with censoring (:func:`xmpspec.lines.ratios.combine_difference`).

    An N2 upper limit gives an O3N2 lower limit, an O3 upper limit an upper
    limit; both limits (or a missing index) leave O3N2 without a value (state
    ``missing``, flagged).
    """
    res = ratios.combine_difference(o3.value, o3.err, o3.state, n2.value, n2.err, n2.state)
    state = np.where(np.isin(res.state, (DETECTED, UPPER, LOWER)), res.state, MISSING)
    out = Measured(res.value, res.err, state)
    both = (o3.state == UPPER) & (n2.state == UPPER)
    add_flag(out.flag, both, "O3 and N2 both upper limits: O3N2 unconstrained")
    add_flag(out.flag, (o3.state == LOWER) & (n2.state == LOWER), "O3 and N2 both lower limits: "
             "O3N2 unconstrained")
    add_flag(out.flag, o3.state == MISSING, "missing O3")
    add_flag(out.flag, n2.state == MISSING, "missing N2")
    return out


def oh_pp04_o3n2(o3n2: Measured, config: Config | None = None) -> tuple[Measured, np.ndarray]:
    """12 + log(O/H) = 8.73 - 0.32 O3N2 (Pettini & Pagel 2004), with censoring.

    A lower limit on O3N2 (from an N2 upper limit) gives an upper limit on
    O/H. Values with O3N2 above ``abundances.pp04_o3n2_max`` (2.0) lie outside
    the calibrated range and are flagged (reported alongside, not substituted).
    """
    cfg = config or get_active_config()
    ab = cfg["abundances"]
    out, cal = linear_calibration(o3n2, float(ab["pp04_o3n2_intercept"]),
                                  float(ab["pp04_o3n2_slope"]), float(ab["pp04_o3n2_scatter"]),
                                  float(ab["n2_limit_scatter_sigma"]))
    vmax = float(ab["pp04_o3n2_max"])
    beyond = (o3n2.state != MISSING) & (o3n2.value > vmax) & (o3n2.state != UPPER)
    add_flag(out.flag, beyond, f"O3N2 > {vmax}: outside the PP04 O3N2 calibration")
    return out, cal
