"""Per-spectrum error scale: is the error spectrum consistent with the pixel scatter?

:func:`error_scale` measures the robust standard deviation of
``(flux - running median) / error`` over the pixels away from emission lines
(every catalogue and nuisance line at the object's redshift, +- a few widths),
divided by what the same statistic gives for white noise with correct
errors (the running median takes part of the noise: about 0.95 for a 21-pixel
window, computed once by :func:`white_noise_factor`). The running median is
taken in blocks of ``window`` pixels and interpolated linearly between block
centres (fast, and exact for a linear continuum). A correct error spectrum
gives 1; reduced spectra whose errors are too small give > 1.

``xmpspec measure`` reports it per object (column ``error_scale``) and, with
``[measure] apply_error_scale = true`` (default), multiplies the error
spectrum by it before fitting, so every line error, the N2 gate significance,
the limits and the N2 posterior are scaled consistently. A warning note is
added when it is outside ``[measure] error_scale_warn`` (0.8-1.25).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..instruments import C_KMS

__all__ = ["error_scale", "white_noise_factor", "line_free_mask"]

_MAD = 1.482602218505602   # 1 / Phi^-1(3/4): MAD -> sigma for a Gaussian


def _med(x: np.ndarray) -> float:
    """Median (the upper one for an even count: one partition, no sort)."""
    k = x.size // 2
    return float(np.partition(x, k)[k])


def _robust_std(x: np.ndarray) -> float:
    return _MAD * _med(np.abs(x - _med(x)))


def _residual(x: np.ndarray, window: int) -> np.ndarray:
    """``x`` minus its running median, the median taken in blocks of ``window`` pixels
    and interpolated linearly between block centres (exact for a linear continuum;
    about 10x faster than a sliding median)."""
    n = x.size
    nb = n // window
    if nb < 2:
        return x - np.median(x)
    body = x[:nb * window].reshape(nb, window)
    h = window // 2
    med = np.partition(body, h, axis=1)[:, h] if window % 2 else np.median(body, axis=1)
    centre = (np.arange(nb) + 0.5) * window - 0.5
    return x - np.interp(np.arange(n), centre, med)


@lru_cache(maxsize=8)
def white_noise_factor(window: int) -> float:
    """Robust std of :func:`_residual` (``x`` minus its running median) for unit white noise.

    Computed once per window by simulation with a fixed seed (200,000
    pixels; statistical precision about 0.2%).
    """
    rng = np.random.default_rng(20261206)
    vals = [_robust_std(_residual(rng.standard_normal(4000), int(window))) for _ in range(50)]
    return float(np.mean(vals))


def line_free_mask(wave: np.ndarray, line_waves_obs, sigma_obs, halfwidth_sigma: float = 5.0,
                   halfwidth_kms: float = 300.0) -> np.ndarray:
    """True for pixels farther than ``halfwidth_sigma x sigma + halfwidth_kms`` from every line.

    Parameters
    ----------
    wave : ndarray
        Observed wavelengths (Angstrom), increasing.
    line_waves_obs : array_like
        Observed line centres (Angstrom).
    sigma_obs : callable or float
        Instrumental Gaussian sigma (Angstrom) at a wavelength (vectorised), or a constant.
    halfwidth_sigma, halfwidth_kms : float
        Half-width of the excluded region.
    """
    mu = np.atleast_1d(np.asarray(line_waves_obs, float))
    s = np.asarray(sigma_obs(mu), float) if callable(sigma_obs) else np.full(mu.size,
                                                                             float(sigma_obs))
    hw = halfwidth_sigma * s + mu * halfwidth_kms / C_KMS
    i0 = np.searchsorted(wave, mu - hw, side="right")
    i1 = np.searchsorted(wave, mu + hw, side="left")
    cover = np.zeros(wave.size + 1, int)
    np.add.at(cover, i0, 1)
    np.add.at(cover, i1, -1)
    return np.cumsum(cover[:-1]) <= 0


def error_scale(flux: np.ndarray, error: np.ndarray, good: np.ndarray, line_free: np.ndarray,
                window: int = 21, min_pixels: int = 50) -> tuple[float, int]:
    """Robust scale of the error spectrum from the continuum residuals away from lines.

    Parameters
    ----------
    flux, error : ndarray
        Flux and 1-sigma error per pixel.
    good : ndarray of bool
        Usable pixels.
    line_free : ndarray of bool
        Pixels away from emission lines (:func:`line_free_mask`).
    window : int
        Running-median width (pixels) of the continuum estimate.
    min_pixels : int
        Fewer usable line-free pixels: no estimate.

    Returns
    -------
    (float, int)
        The scale (NaN when not measurable) and the number of pixels used.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> f = 2.0 * rng.standard_normal(3000)
    >>> s, n = error_scale(f, np.ones(3000), np.ones(3000, bool), np.ones(3000, bool))
    >>> 1.9 < s < 2.1
    True
    """
    flux = np.asarray(flux, float)
    error = np.asarray(error, float)
    ok = np.asarray(good, bool) & np.isfinite(flux) & np.isfinite(error) & (error > 0)
    if ok.sum() < max(min_pixels, window):
        return float("nan"), int(ok.sum())
    # running median over the usable pixels only (masked pixels do not enter the median)
    idx = np.flatnonzero(ok)
    res = _residual(flux[idx], int(window))
    use = np.asarray(line_free, bool)[idx]
    if use.sum() < min_pixels:
        return float("nan"), int(use.sum())
    r = res[use] / error[idx][use]
    return _robust_std(r) / white_noise_factor(int(window)), int(use.sum())
