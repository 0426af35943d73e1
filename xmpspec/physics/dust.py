"""Dust: Galactic foreground (CCM89) and internal Balmer-decrement (Calzetti 2000) corrections.

Curves come from packages, never typed in: the Cardelli, Clayton & Mathis
(1989) curve from ``dust_extinction.parameter_averages.CCM89`` and the
Calzetti et al. (2000) starburst attenuation curve from
``extinction.calzetti00`` (``dust_extinction`` ships extinction curves only;
its companion ``dust_attenuation``, which holds C00, is not on PyPI).

Internal E(B-V) from a Balmer decrement X/Hbeta (X = Halpha, Hgamma, Hdelta):

    E(B-V) = 2.5 / (k(Hbeta) - k(X)) * log10[(X/Hbeta)_obs / (X/Hbeta)_int]

with k = A_lambda / E(B-V) of the Calzetti curve (R_V = 4.05) and the
intrinsic case-B ratios from PyNeb at the measured Te (fallback 2.86 for
Halpha/Hbeta at 1e4 K, 1e2 cm^-3). Several decrements are combined by an
inverse-variance mean. A decrement below the intrinsic value gives
E(B-V) = 0, flagged (with its error kept).
"""

from __future__ import annotations

from functools import lru_cache

import astropy.units as u
import numpy as np

from ..config import Config, get_active_config
from ..errors import ConfigError
from ._columns import DETECTED, Measured, add_flag

__all__ = ["mw_a_lambda", "mw_correction_factor", "calzetti_k", "internal_correction_factor",
           "balmer_ebv"]


@lru_cache(maxsize=8)
def _mw_model(name: str, rv: float):
    import dust_extinction.parameter_averages as pa

    valid = [n for n in getattr(pa, "__all__", []) if n[0].isupper()]
    if name not in valid:
        raise ConfigError(f"dust.mw_curve: unknown curve '{name}'; valid (R_V-dependent "
                          f"curves of dust_extinction): {', '.join(valid)}")
    return getattr(pa, name)(Rv=rv)


def mw_a_lambda(wave: u.Quantity, ebv, config: Config | None = None) -> np.ndarray:
    """Galactic A_lambda (mag) at observed wavelengths for E(B-V) (CCM89, R_V from config).

    Parameters
    ----------
    wave : Quantity
        Observed-frame wavelengths (broadcast against ``ebv``).
    ebv : array-like
        E(B-V) on the Schlafly & Finkbeiner (2011) scale.
    config : Config, optional
        ``dust.rv_mw`` and ``dust.mw_curve`` (any R_V-dependent curve of
        ``dust_extinction.parameter_averages``; default CCM89).
    """
    cfg = config or get_active_config()
    rv = float(cfg["dust"]["rv_mw"])
    w = np.atleast_1d(wave.to(u.AA))
    shape = w.shape
    alav = np.asarray(_mw_model(str(cfg["dust"]["mw_curve"]), rv)(w.ravel())).reshape(shape)
    return alav * rv * np.asarray(ebv, float)


def mw_correction_factor(wave: u.Quantity, ebv, config: Config | None = None) -> np.ndarray:
    """Multiplicative flux correction 10^(0.4 A_lambda) for Galactic extinction."""
    return 10 ** (0.4 * mw_a_lambda(wave, ebv, config))


def calzetti_k(wave: u.Quantity, config: Config | None = None) -> np.ndarray:
    """k(lambda) = A_lambda / E(B-V) of Calzetti et al. (2000) at rest wavelengths.

    Examples
    --------
    >>> import astropy.units as u
    >>> round(float(calzetti_k([6564.61] * u.AA)[0]), 2)
    3.32
    """
    import extinction

    cfg = config or get_active_config()
    if str(cfg["dust"]["internal_curve"]).upper() != "C00":
        raise ConfigError(f"dust.internal_curve: '{cfg['dust']['internal_curve']}' is not "
                          "available; valid: C00 (Calzetti et al. 2000)")
    rv = float(cfg["dust"]["rv_internal"])
    w = np.atleast_1d(wave.to_value(u.AA)).astype(float)
    return extinction.calzetti00(w.ravel(), 1.0, rv).reshape(w.shape) * rv


def internal_correction_factor(wave: u.Quantity, ebv, config: Config | None = None
                               ) -> np.ndarray:
    """Flux correction 10^(0.4 k(lambda) E(B-V)) with the Calzetti curve (rest wavelengths)."""
    return 10 ** (0.4 * calzetti_k(wave, config) * np.asarray(ebv, float))


def balmer_ebv(ratios: dict[str, Measured], intrinsic: dict[str, np.ndarray],
               waves: dict[str, float], hbeta_wave: float, config: Config | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Internal E(B-V) from Balmer decrements.

    Parameters
    ----------
    ratios : dict
        ``{line key: Measured log10(X/Hbeta)}``; only detected ratios are used.
    intrinsic : dict
        ``{line key: intrinsic X/Hbeta per row}`` (linear).
    waves : dict
        Rest wavelengths (Angstrom) of the lines.
    hbeta_wave : float
        Rest wavelength of Hbeta.
    config : Config, optional

    Returns
    -------
    ebv, ebv_err, used, flag : ndarray
        E(B-V) (NaN where no decrement), its error, the decrements used
        (e.g. ``'ha'`` or ``'ha+hg'``) and flags.
    """
    cfg = config or get_active_config()
    n = len(next(iter(ratios.values())))
    used = np.full(n, "", dtype=object)
    flag = np.full(n, "", dtype=object)
    kb = calzetti_k(np.array([hbeta_wave]) * u.AA, cfg)[0]
    est, sig = [], []
    for key, ratio in ratios.items():
        kx = calzetti_k(np.array([waves[key]]) * u.AA, cfg)[0]
        coef = 2.5 / (kb - kx)
        ok = (ratio.state == DETECTED) & np.isfinite(ratio.value) & np.isfinite(intrinsic[key])
        with np.errstate(invalid="ignore", divide="ignore"):
            e = coef * (ratio.value - np.log10(intrinsic[key]))
        s = np.abs(coef) * ratio.err
        est.append(np.where(ok, e, np.nan))
        sig.append(np.where(ok, s, np.nan))
        for k in np.flatnonzero(ok):
            used[k] = key if not used[k] else f"{used[k]}+{key}"
    est, sig = np.array(est), np.array(sig)
    have = np.isfinite(est)
    weighted = have & np.isfinite(sig) & (sig > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(weighted, 1.0 / np.where(weighted, sig, 1.0) ** 2, 0.0)
        wsum = w.sum(axis=0)
        ebv_w = np.where(wsum > 0, (w * np.where(weighted, est, 0.0)).sum(axis=0) / wsum, np.nan)
        err = np.where(wsum > 0, 1.0 / np.sqrt(wsum), np.nan)
    # rows whose decrements all lack errors: plain mean, no error
    cnt = have.sum(axis=0)
    plain = np.where(cnt > 0, np.where(have, est, 0.0).sum(axis=0) / np.maximum(cnt, 1), np.nan)
    ebv = np.where(wsum > 0, ebv_w, plain)
    nothing = ~have.any(axis=0)
    ebv[nothing] = np.nan
    neg = np.isfinite(ebv) & (ebv < 0)
    within = neg & (np.abs(ebv) <= 2 * np.where(np.isfinite(err), err, 0.0))
    add_flag(flag, within, "Balmer decrement below intrinsic within errors: E(B-V) set to 0")
    add_flag(flag, neg & ~within,
             "Balmer decrement below intrinsic by > 2 sigma: E(B-V) set to 0 "
             "(check Balmer absorption / flux calibration)")
    ebv = np.where(neg, 0.0, ebv)
    add_flag(flag, nothing, "no detected Balmer decrement (needs Hbeta and Halpha/Hgamma/Hdelta)")
    return ebv, err, used, flag
