"""BPT classification on log([OIII]5008/Hbeta) vs log([NII]6585/Halpha), with limits.

Curves (coefficients from ``[bpt]``, ``y = a / (x - b) + c``):

* Kauffmann et al. 2003 (star-forming below/left),
* Kewley et al. 2001 maximum starburst (AGN above/right),
* Kewley et al. 2013 z~0 star-forming sequence (+- width).

A point is ``star-forming`` when ``x < b_K03`` and ``y < K03(x)``, ``AGN``
when ``x >= b_K01`` or ``y > K01(x)``, else ``composite``. A censored point
(N2 and/or O3 upper limit) is classified only when the whole allowed range
(from the limit down to ``bpt.n2_limit_floor`` / ``bpt.o3_limit_floor``)
falls in one class; otherwise it is ``ambiguous-limit``.

Low-metallicity AGN candidates: XMPs (N2 <= classes.xmp_n2, detections or
limits) whose O3 lies below the Kewley 2013 sequence minus its width minus
``bpt.low_z_agn_margin`` by more than ``bpt.low_z_agn_sigma`` times the O3
error. For an N2 upper limit the test is made at the limit, where the
(decreasing) sequence is lowest, so it holds for the whole allowed range.
"""

from __future__ import annotations

import numpy as np

from ..config import Config, get_active_config
from ._columns import DETECTED, MISSING, UPPER, Measured

__all__ = ["BPT_CLASSES", "curve", "classify_point", "bpt_classify", "low_z_agn_candidate"]

SF, COMP, AGN, AMBIG = "star-forming", "composite", "AGN", "ambiguous-limit"
BPT_CLASSES = (SF, COMP, AGN, AMBIG)
_NGRID = 201


def curve(name: str, x, config: Config | None = None) -> np.ndarray:
    """Evaluate ``kauffmann03``, ``kewley01`` or ``kewley13`` at N2 = x.

    Examples
    --------
    >>> round(float(curve("kauffmann03", -1.0)), 3)
    0.719
    """
    cfg = config or get_active_config()
    a, b, c = (float(v) for v in cfg["bpt"][name])
    x = np.asarray(x, float)
    with np.errstate(divide="ignore"):
        return a / (x - b) + c


def _classes(x: np.ndarray, y: np.ndarray, cfg: Config) -> np.ndarray:
    bk03 = float(cfg["bpt"]["kauffmann03"][1])
    bk01 = float(cfg["bpt"]["kewley01"][1])
    sf = (x < bk03) & (y < curve("kauffmann03", x, cfg))
    agn = (x >= bk01) | (y > curve("kewley01", x, cfg))
    out = np.full(x.shape, COMP, dtype=object)
    out[sf] = SF
    out[agn & ~sf] = AGN
    return out


def classify_point(x: float, y: float, x_upper: bool = False, y_upper: bool = False,
                   config: Config | None = None) -> str:
    """Class of one point; limits are classified only if unambiguous.

    Parameters
    ----------
    x, y : float
        N2 and O3 (values or upper limits).
    x_upper, y_upper : bool
        Whether x / y are upper limits.
    config : Config, optional

    Returns
    -------
    str
        ``star-forming``, ``composite``, ``AGN`` or ``ambiguous-limit``.
    """
    cfg = config or get_active_config()
    xs = (np.linspace(min(float(cfg["bpt"]["n2_limit_floor"]), x), x, _NGRID)
          if x_upper else np.array([x]))
    ys = (np.linspace(min(float(cfg["bpt"]["o3_limit_floor"]), y), y, _NGRID)
          if y_upper else np.array([y]))
    gx, gy = np.meshgrid(xs, ys)
    classes = set(_classes(gx.ravel(), gy.ravel(), cfg))
    return classes.pop() if len(classes) == 1 else AMBIG


def bpt_classify(n2: Measured, o3: Measured, config: Config | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """BPT class per row.

    Returns
    -------
    (ndarray, ndarray)
        Class strings ('' where N2 or O3 is missing) and flags.
    """
    cfg = config or get_active_config()
    n = len(n2)
    out = np.full(n, "", dtype=object)
    flag = np.full(n, "", dtype=object)
    for k in range(n):
        if n2.state[k] == MISSING or o3.state[k] == MISSING:
            miss = [nm for nm, m in (("N2", n2), ("O3", o3)) if m.state[k] == MISSING]
            flag[k] = "missing " + " and ".join(miss)
            continue
        if n2.state[k] not in (DETECTED, UPPER) or o3.state[k] not in (DETECTED, UPPER):
            flag[k] = "lower limits are not classified"
            continue
        out[k] = classify_point(n2.value[k], o3.value[k], n2.state[k] == UPPER,
                                o3.state[k] == UPPER, cfg)
        if out[k] == AMBIG:
            flag[k] = "allowed range of the limit spans more than one class"
    return out, flag


def low_z_agn_candidate(n2: Measured, o3: Measured, config: Config | None = None
                        ) -> np.ndarray:
    """Masked boolean: XMP well below the Kewley 2013 star-forming sequence.

    Returns
    -------
    numpy.ma.MaskedArray of bool
        Masked where N2 or O3 is missing, or O3 is only an upper limit that
        does not decide.
    """
    cfg = config or get_active_config()
    b = cfg["bpt"]
    xmp = float(cfg["classes"]["xmp_n2"])
    thresh = (curve("kewley13", n2.value, cfg) - float(b["kewley13_width"])
              - float(b["low_z_agn_margin"]))
    yerr = np.where(np.isfinite(o3.err), o3.err, 0.0)
    below = o3.value + float(b["low_z_agn_sigma"]) * yerr < thresh
    n2_ok = np.isin(n2.state, (DETECTED, UPPER)) & (n2.value <= xmp)
    n2_not_xmp = (n2.state == DETECTED) & (n2.value > xmp)
    have = np.isin(n2.state, (DETECTED, UPPER)) & np.isin(o3.state, (DETECTED, UPPER))
    value = n2_ok & below
    decided = have & (n2_not_xmp | (o3.state == DETECTED) | value)
    # an N2 limit above the XMP threshold cannot say whether it is an XMP
    decided &= ~((n2.state == UPPER) & (n2.value > xmp))
    return np.ma.array(value, mask=~decided)
