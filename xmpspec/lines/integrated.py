"""Integrated (direct-sum) fluxes of Halpha and [NII]6585, science.md step 4.

1. A quartic continuum is fitted (error-weighted) to the window pixels
   outside every line of the Halpha group.
2. Halpha + [NII]6585 are integrated together above it, from
   ``mu(Halpha) - k sigma`` to ``mu([NII]6585) + k sigma`` (they may blend).
3. The continuum between Halpha and [NII]6585 is refitted with a quartic and
   [NII]6585 is integrated alone above it within ``mu +- k sigma``. The
   Gaussian-fit profiles of Halpha and [NII]6550 are removed from the data of
   this refit (and from the [NII]6585 range) first: at low resolution
   (Goodman: Halpha and [NII]6585 are ~7 sigma apart) the pixels "between"
   the lines sit in the Halpha wing, and a quartic through them overestimates
   the continuum under [NII]6585 (by ~3% of its flux on noise-free Goodman
   spectra), while a quartic constrained on one side only extrapolates with a
   noise several times the line's Gaussian error. With the wing removed, the
   refit uses every window pixel outside the [NII]6585 range (both sides,
   through Halpha), so it interpolates under [NII]6585.
4. ``F(Halpha) = F(total) - F([NII]6585)``.

With the Gaussian fit's line profiles (``line_models``, what ``measure``
uses), both continua are fitted to the data minus the fitted lines (the wings
beyond the integration ranges otherwise lift the quartic under the lines:
-0.35% of the Halpha flux on noise-free Goodman spectra, -0.6 sigma at
EW(Halpha) = 5000 A), [NII]6550 is removed from the joint integral, and the
profiles' flux outside the integration ranges (0.05% at 3.5 sigma) is added.
The pixels of both continuum fits are iteratively clipped at ``clip_sigma``
(4): the refit under [NII]6585 runs through the Halpha core, and where the
Gaussian misfits the core (non-Gaussian profiles: +-50 sigma residuals on a
real MaNGA spaxel of SHOC 579) the unclipped quartic took 9% of the
[NII]6585 flux at significance 250. Simulated at high S/N with a second
kinematic component (50% of the flux at +200 km/s, same width, fitted
narrow-only) the unclipped integrated [NII]6585 was 1.27x the truth at SDSS
and 1.06x at Goodman, the clipped one 1.00-1.02x and 0.98x; at 25% and +120 km/s
MagE went from 1.035-1.046x to 0.996-1.007x. Broad wings no quartic can follow
(simulated SDSS, 30% of the Halpha flux in a 400 km/s component, no broad
fit: ~15% of the [NII]6585 flux left); they are fitted and removed upstream
(:mod:`xmpspec.lines.broad`), so at high S/N the integrated and Gaussian
fluxes agree within their errors (tests/test_broad.py). Refitting on one
continuum outside every line (instead of both sides of [NII]6585 through
Halpha) was as robust but gave 28% larger [NII]6585 errors at Goodman
(S/N 5). ``benchmarks/bench_nii_integrated.py`` compares this with the
literal science.md step on the same realisations (README section).

Every flux is a linear function of the pixel values, so variances and the
covariance of F(Halpha) and F([NII]6585) follow exactly from the error
spectrum (continuum-fit uncertainty included). Masked pixels inside an
integration range are replaced by the Gaussian-fit model (reported).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import pixel_edges

__all__ = ["IntegratedFluxes", "integrate_halpha_nii"]


@dataclass
class IntegratedFluxes:
    """Integrated fluxes of Halpha and [NII]6585 (units of flux density x Angstrom)."""

    f_ha: float
    f_ha_err: float
    f_nii: float
    f_nii_err: float
    cov_ha_nii: float
    f_total: float
    f_total_err: float
    n_filled: int
    note: str = ""


def _overlap(edges: np.ndarray, a: float, b: float) -> np.ndarray:
    """Fraction of each pixel inside [a, b] times the pixel width."""
    lo = np.maximum(edges[:-1], a)
    hi = np.minimum(edges[1:], b)
    return np.clip(hi - lo, 0.0, None)


def _weighted_polyfit(A: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Least-squares operator of a small weighted design ``A`` (npix, k).

    Returns ``pinv(A) @ b`` (or ``pinv(A)`` when ``b`` is None) from the normal
    equations (Cholesky) when ``A`` is well conditioned (Cholesky diagonal
    ratio above 1e-3; the quartic continua of 600 simulated spectra over four
    set-ups: >= 0.05, results equal to the SVD's to 4e-13), else from numpy's SVD.
    """
    ata = A.T @ A
    rhs = A.T if b is None else A.T @ b
    try:
        L = np.linalg.cholesky(ata)
        d = np.abs(L.diagonal())
        if d.min() > 1e-3 * d.max():
            y = np.linalg.solve(L, rhs)
            return np.linalg.solve(L.T, y)
    except np.linalg.LinAlgError:
        pass
    return np.linalg.pinv(A) if b is None else np.linalg.lstsq(A, b, rcond=None)[0]


def _median(a: np.ndarray) -> float:
    """Median of a 1D array (same value as ``np.median``, without its overhead)."""
    n = a.size
    k = n // 2
    if n % 2:
        return float(np.partition(a, k)[k])
    p = np.partition(a, (k - 1, k))
    return float((p[k - 1] + p[k]) / 2.0)


def _poly_projector(x: np.ndarray, err: np.ndarray, sel: np.ndarray, order: int) -> np.ndarray:
    """Matrix M (npix, npix) so that ``continuum = M @ flux`` (weighted fit on ``sel``)."""
    order = int(min(order, max(sel.sum() - 2, 0)))
    V = np.vander(x, order + 1, increasing=True)
    Vs = V[sel] / err[sel, None]
    # coefficients = pinv(Vs) @ (flux[sel] / err[sel])
    P = _weighted_polyfit(Vs) / err[sel][None, :]          # (order+1, nsel)
    M = np.zeros((x.size, x.size))
    M[:, sel] = V @ P
    return M


def _clipped(x: np.ndarray, err: np.ndarray, resid: np.ndarray, sel: np.ndarray, order: int,
             clip_sigma: float, max_iter: int = 5) -> np.ndarray:
    """Continuum pixels ``sel`` without outliers of a weighted polynomial fit.

    Pixels whose residual from the fit to ``resid`` exceeds ``clip_sigma``
    errors (and 1.4826 x the median absolute normalised residual x
    ``clip_sigma``, so a globally underestimated error spectrum does not clip
    noise) are dropped, iteratively. The returned selection is fixed before the
    fluxes are computed, so they stay linear in the pixel values.
    """
    if not clip_sigma or clip_sigma <= 0:
        return sel
    sel = sel.copy()
    V = np.vander(x, order + 1, increasing=True)
    for _ in range(max_iter):
        if sel.sum() < 2 * (order + 2):
            break
        coef = _weighted_polyfit(V[sel] / err[sel, None], resid[sel] / err[sel])
        cont = V @ coef
        z = (resid - cont) / err
        scale = max(1.0, 1.4826 * _median(np.abs(z[sel])))
        bad = sel & (np.abs(z) > clip_sigma * scale)
        if not bad.any():
            break
        sel &= ~bad
    return sel


def integrate_halpha_nii(wave: np.ndarray, flux: np.ndarray, error: np.ndarray,
                         good: np.ndarray, model_flux: np.ndarray, mu: dict[str, float],
                         sigma: dict[str, float], halfwidth_sigma: float = 3.5,
                         order: int = 4, wing_model: np.ndarray | None = None,
                         line_models: dict[str, np.ndarray] | None = None,
                         clip_sigma: float = 4.0) -> IntegratedFluxes:
    """Integrated Halpha and [NII]6585 fluxes as science.md step 4.

    Parameters
    ----------
    wave, flux, error, good : ndarray
        The Halpha-group window (observed wavelengths, Angstrom).
    model_flux : ndarray
        The Gaussian-fit model on ``wave`` (fills masked pixels).
    mu, sigma : dict
        Observed centres and Gaussian sigmas (Angstrom) of ``nii6550``, ``ha``,
        ``nii6585`` from the Gaussian fit.
    halfwidth_sigma : float
        Integration half-width in units of each line's sigma.
    order : int
        Polynomial order of both continuum fits (4: quartic).
    wing_model : ndarray, optional
        Gaussian-fit profiles of Halpha + [NII]6550 on ``wave``, removed before
        the [NII]6585 continuum refit and integration (treated as fixed).
    line_models : dict, optional
        Gaussian-fit flux density of each line of the group on ``wave``
        (``nii6550``, ``ha``, ``nii6585``). When given: the line wings are
        removed from the pixels both continua are fitted to, [NII]6550 is
        removed from the Halpha + [NII]6585 integral, and the fitted profiles'
        flux outside the integration ranges (0.05% at 3.5 sigma) is added.
        Both integrals then share one continuum, fitted outside every line's
        integration range (with ``clip_sigma`` clipping). Without them the
        integrals are science.md's literal step 4.
    clip_sigma : float
        With ``line_models``: continuum pixels deviating from the quartic by
        more than this many sigma (misfit line wings, residual sky) are left
        out of it (0: no clipping).

    Returns
    -------
    IntegratedFluxes
    """
    k = halfwidth_sigma
    edges = pixel_edges(wave)
    centres = wave
    x = (centres - centres.mean()) / max(np.ptp(centres) / 2.0, 1e-6)
    err = np.where(good, error, np.inf)
    data = np.where(good, flux, model_flux)
    in_line = np.zeros(wave.size, bool)
    for key in ("nii6550", "ha", "nii6585"):
        if key in mu:
            in_line |= np.abs(centres - mu[key]) < k * sigma[key]
    sel1 = good & ~in_line
    a_tot, b_tot = mu["ha"] - k * sigma["ha"], mu["nii6585"] + k * sigma["nii6585"]
    a_n, b_n = mu["nii6585"] - k * sigma["nii6585"], mu["nii6585"] + k * sigma["nii6585"]
    if wing_model is not None:
        # Halpha and [NII]6550 removed: every pixel outside the [NII]6585 range carries
        # the continuum, on both sides, so the quartic interpolates instead of extrapolating
        sel2 = good & ((centres < a_n) | (centres > b_n))
    else:
        ha_hi = mu["ha"] + k * sigma["ha"]
        sel2 = good & (((centres > ha_hi) & (centres < a_n)) | (centres > b_n))
    notes = []
    ew = np.where(good, error, 1.0)
    if line_models:
        # both continua are fitted to the data minus the fitted lines, with outliers clipped:
        # pixels inside the Halpha/[NII]6550 profiles carry every misfit of the Gaussian model
        # (non-Gaussian cores: +-50 sigma on a real MaNGA spaxel), and a quartic through them
        # under [NII]6585 took 9% of its flux at significance 250
        resid = data - sum(line_models.values())
        sel1 = _clipped(x, ew, resid, sel1, order, clip_sigma)
        sel2 = _clipped(x, ew, resid, sel2, order, clip_sigma)
    if sel2.sum() < order + 2:
        notes.append(f"only {int(sel2.sum())} continuum pixels beside [NII]6585")
    M1 = _poly_projector(x, ew, sel1, order)
    M2 = _poly_projector(x, ew, sel2, order)
    w_tot = _overlap(edges, a_tot, b_tot)
    w_n = _overlap(edges, a_n, b_n)
    # F = w . (f - M f) = (w - M^T w) . f ; model-filled pixels carry no variance
    g_tot = w_tot - M1.T @ w_tot
    g_n = w_n - M2.T @ w_n
    g_ha = g_tot - g_n
    var = np.where(good, err, 0.0) ** 2
    data_n = data - wing_model if wing_model is not None else data
    if line_models:
        # F = w . (f - other) - w . M (f - lines): the continuum sees the data without
        # the Gaussian wings (their tails beyond k sigma otherwise lift the quartic under
        # the lines by ~0.3% of the Halpha flux); the models are fixed, the variance the same
        lines = sum(line_models.values())
        other = line_models.get("nii6550", 0.0)
        dpix = np.diff(edges)

        def outside(key, w):
            m = line_models.get(key)
            return 0.0 if m is None else float(m @ (dpix - w))
        f_tot = float(w_tot @ (data - other) - (M1.T @ w_tot) @ (data - lines)) \
            + outside("ha", w_tot) + outside("nii6585", w_tot)
        wing = wing_model if wing_model is not None else 0.0
        f_n = float(w_n @ (data - wing) - (M2.T @ w_n) @ (data - lines)) \
            + outside("nii6585", w_n)
    else:
        f_tot, f_n = float(g_tot @ data), float(g_n @ data_n)
    f_ha = f_tot - f_n
    v_tot, v_n, v_ha = float(g_tot**2 @ var), float(g_n**2 @ var), float(g_ha**2 @ var)
    cov = float((g_ha * g_n) @ var)
    filled = int(((w_tot > 0) & ~good).sum())
    if filled:
        notes.append(f"{filled} masked pixel(s) in the integration range filled with the fit model")
    return IntegratedFluxes(f_ha, np.sqrt(v_ha), f_n, np.sqrt(v_n), cov, f_tot, np.sqrt(v_tot),
                            filled, "; ".join(notes))
