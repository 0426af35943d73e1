"""Redshift from the strongest emission lines (matched filter + line-pattern score).

The spectrum is continuum-subtracted with a running median, filtered with a
Gaussian of the instrumental width (the matched filter for an unresolved
line: signal-to-noise at every pixel), and every trial redshift on a grid
finer than the line width is scored by the clipped matched-filter S/N at the
expected positions of the strong lines (Halpha, [OIII]5008, Hbeta,
[OIII]4960, [OII], [NII]6585, [SII]). A single bright line is identified by
its companions (the [OIII] doublet and Hbeta, or [NII] and [SII] around
Halpha). The joint fit of the line groups refines the result.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

from ..errors import FitError

__all__ = ["find_redshift", "matched_filter_snr", "PATTERN_WEIGHTS"]

#: relative weights of the lines in the pattern score
PATTERN_WEIGHTS = {"ha": 1.0, "oiii5008": 1.0, "hb": 0.6, "oiii4960": 0.6, "oii3727": 0.3,
                   "oii3730": 0.3, "nii6585": 0.3, "sii6718": 0.2, "sii6733": 0.2,
                   "hg": 0.3, "neiii3870": 0.2}


def matched_filter_snr(wave: np.ndarray, flux: np.ndarray, error: np.ndarray, good: np.ndarray,
                       sigma_pix: float, cont_width_pix: int = 101) -> np.ndarray:
    """Matched-filter S/N per pixel for an unresolved emission line.

    Parameters
    ----------
    wave, flux, error : ndarray
        Spectrum (any units; ``error`` > 0 on good pixels).
    good : ndarray of bool
        Usable pixels.
    sigma_pix : float
        Instrumental Gaussian sigma in pixels.
    cont_width_pix : int
        Width of the running median that removes the continuum.

    Returns
    -------
    ndarray
        S/N of a Gaussian line centred on each pixel (0 where undefined).
    """
    n = wave.size
    idx = np.arange(n)
    f = np.interp(idx, idx[good], flux[good]) if good.sum() >= 2 else np.zeros(n)
    width = int(min(max(cont_width_pix, 11), max(n // 2 * 2 - 1, 3)))
    cont = median_filter(f, size=width, mode="nearest")
    ivar = np.where(good, 1.0 / np.where(good, error, 1.0) ** 2, 0.0)
    resid = np.where(good, f - cont, 0.0)
    half = int(np.ceil(4 * max(sigma_pix, 0.5)))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / max(sigma_pix, 0.5)) ** 2)
    num = np.convolve(resid * ivar, k, mode="same")
    den = np.sqrt(np.convolve(ivar, k * k, mode="same"))
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(den > 0, num / den, 0.0)
    return snr


def find_redshift(wave: np.ndarray, flux: np.ndarray, error: np.ndarray, good: np.ndarray,
                  rest_waves: dict[str, float], fwhm_at, z_min: float = 0.0,
                  z_max: float = 0.6, min_snr: float = 5.0,
                  source: str | None = None) -> tuple[float, float]:
    """Find the redshift from the strongest emission lines.

    Parameters
    ----------
    wave, flux, error, good : ndarray
        Spectrum (observed vacuum wavelengths, Angstrom).
    rest_waves : dict
        Rest wavelengths by line key (keys of :data:`PATTERN_WEIGHTS` are used).
    fwhm_at : callable
        Instrumental FWHM (Angstrom) at an observed wavelength.
    z_min, z_max : float
        Search range.
    min_snr : float
        Minimum matched-filter S/N of the best line for a redshift to be accepted.
    source : str, optional
        Name used in error messages.

    Returns
    -------
    z : float
        Redshift of the best pattern match.
    z_step : float
        Grid step (an upper bound on the error before the line fit refines it).

    Raises
    ------
    FitError
        No emission line with S/N >= ``min_snr`` matches the catalogue in the range.
    """
    wmid = float(np.median(wave))
    dlam = float(np.median(np.diff(wave)))
    fwhm = float(np.atleast_1d(fwhm_at(wmid))[0])
    sigma_pix = max(fwhm / 2.3548 / dlam, 0.5)
    snr = matched_filter_snr(wave, flux, error, good, sigma_pix)
    # grid in ln(1+z) with a step of a third of the instrumental sigma
    step = max(fwhm / 2.3548 / wmid / 3.0, 1e-5)
    lz = np.arange(np.log1p(z_min), np.log1p(z_max) + step, step)
    zgrid = np.expm1(lz)
    score = np.zeros(zgrid.size)
    fine = np.zeros(zgrid.size)       # unclipped: locates the peak inside a clipped plateau
    best_line = np.zeros(zgrid.size)
    clip = 25.0
    for key, weight in PATTERN_WEIGHTS.items():
        if key not in rest_waves:
            continue
        obs = rest_waves[key] * (1.0 + zgrid)
        inside = (obs > wave[0]) & (obs < wave[-1])
        s = np.interp(obs, wave, snr, left=0.0, right=0.0)
        s = np.where(inside, np.clip(s, 0.0, None), 0.0)
        fine += weight * s
        s = np.minimum(s, clip)
        score += weight * s
        best_line = np.maximum(best_line, s)
    ok = best_line >= min_snr
    if not ok.any():
        raise FitError(f"no emission line with matched-filter S/N >= {min_snr:g} found for "
                       f"0 <= z <= {z_max:g}; give the redshift (--z or a targets table)",
                       source)
    score = np.where(ok, score + 1e-6 * fine, -np.inf)
    i = int(np.argmax(score))
    # parabolic refinement of the unclipped score peak
    z = float(zgrid[i])
    if 0 < i < zgrid.size - 1 and np.all(np.isfinite(score[i - 1:i + 2])):
        a, b, c = fine[i - 1], fine[i], fine[i + 1]
        den = a - 2 * b + c
        if den < 0:
            off = 0.5 * (a - c) / den
            z = float(np.expm1(lz[i] + np.clip(off, -1, 1) * step))
    return z, float(step * (1.0 + z))
