"""The line-group model shared by the fast core, lmfit and emcee.

A *group* is a set of emission lines fitted together in one wavelength
window: they share one redshift ``z`` and one intrinsic velocity dispersion
``sigma_v`` (km/s); the observed Gaussian width of a line at observed
centre ``mu`` is ``s = sqrt(s_inst(mu)**2 + (mu * sigma_v / c)**2)`` so the
instrumental resolution of the set-up is the floor of the width. Doublet
fluxes are tied by their physical ratio, a polynomial continuum of low order
is fitted with the lines, and Balmer lines may carry an underlying broad
absorption component (fixed equivalent width or fitted amplitude).

Each line is a Gaussian integrated over the pixel (difference of normal CDFs
at the pixel edges, divided by the pixel width), so the flux parameter is
the line flux whatever the sampling.

The model is linear in the *linear* parameters ``theta`` (free line fluxes,
continuum coefficients, fitted absorption fluxes) for fixed kinematics::

    model(z, sigma_v, theta) = B(z, sigma_v) @ theta

:class:`GroupModel` builds ``B`` and its derivatives with respect to ``z``
and ``sigma_v``; the fast core (:mod:`xmpspec.lines.fitcore`), the lmfit
model (:func:`xmpspec.lines.lmfit_model.group_lmfit_model`) and the emcee
sampler (:mod:`xmpspec.lines.mcmc`) all evaluate this same object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from ..instruments import C_KMS

__all__ = ["GroupModel", "pixel_edges", "GAUSS_FWHM"]

GAUSS_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def pixel_edges(wave: np.ndarray) -> np.ndarray:
    """Pixel edges (n + 1) from pixel-centre wavelengths (midpoints, ends mirrored)."""
    wave = np.asarray(wave, float)
    mid = 0.5 * (wave[1:] + wave[:-1])
    first = wave[0] - (mid[0] - wave[0])
    last = wave[-1] + (wave[-1] - mid[-1])
    return np.concatenate(([first], mid, [last]))


@dataclass
class GroupModel:
    """Model of one line group on one wavelength window.

    Parameters
    ----------
    wave : ndarray
        Pixel-centre wavelengths of the window (observed frame, vacuum, Angstrom),
        including masked pixels (they are dropped through ``good``).
    flux, error : ndarray
        Data and 1-sigma errors on ``wave``.
    good : ndarray of bool
        Pixels used in the fit.
    rest : ndarray
        Rest wavelengths of the group's lines (Angstrom).
    tie_matrix : ndarray, shape (n_lines, n_free)
        Line fluxes = ``tie_matrix @ free_fluxes`` (doublet ratios).
    cont_order : int
        Polynomial order of the local continuum.
    inst_a, inst_b : float
        Instrumental Gaussian sigma in Angstrom: ``s_inst(mu) = inst_a + inst_b * mu``
        (constant FWHM: ``inst_b = 0``; constant R: ``inst_a = 0``).
    abs_lines : ndarray of int
        Indices (into ``rest``) of lines with an underlying absorption component.
    abs_mode : {'none', 'fixed', 'fit'}
        'fixed': absorption flux = ``-abs_ew * continuum(mu)`` (rest-frame EW
        ``abs_ew`` times 1 + z); 'fit': one free flux per absorption line.
    abs_ew : float
        Rest-frame equivalent width of the absorption ('fixed' mode), Angstrom.
    abs_sigma_kms : float
        Intrinsic sigma of the absorption component, km/s.
    """

    wave: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    good: np.ndarray
    rest: np.ndarray
    tie_matrix: np.ndarray
    cont_order: int
    inst_a: float
    inst_b: float
    abs_lines: np.ndarray
    abs_mode: str = "none"
    abs_ew: float = 0.0
    abs_sigma_kms: float = 1000.0

    def __post_init__(self):
        self.wave = np.asarray(self.wave, float)
        self.rest = np.asarray(self.rest, float)
        self.good = np.asarray(self.good, bool)
        self.abs_lines = np.asarray(self.abs_lines, int)
        if self.abs_mode == "none":
            self.abs_lines = np.zeros(0, int)
        edges = pixel_edges(self.wave)
        self._edges = edges
        self._dpix = np.diff(edges)
        self._inv_dpix = 1.0 / self._dpix
        self._all_good = bool(self.good.all())
        self._good_idx = np.flatnonzero(self.good)
        self._n_good = int(self._good_idx.size)
        self.x0 = 0.5 * (self.wave[0] + self.wave[-1])
        self.xscale = max(0.5 * (self.wave[-1] - self.wave[0]), 1e-6)
        x = (self.wave - self.x0) / self.xscale
        self._cont_basis = np.vander(x, self.cont_order + 1, increasing=True)  # (npix, nc)
        self._cont_good = self._cont_basis[self.good]
        # pixels used in fits
        g = self.good
        self.y = np.asarray(self.flux, float)[g]
        self.sig = np.asarray(self.error, float)[g]
        self.w = 1.0 / self.sig
        self._wcol = self.w[:, None]
        self._yw = self.y * self.w
        self.n_lines = self.rest.size
        self.n_free = self.tie_matrix.shape[1]
        self.n_cont = self.cont_order + 1
        self.n_abs = self.abs_lines.size if self.abs_mode == "fit" else 0
        self.n_lin = self.n_free + self.n_cont + self.n_abs

    # ----------------------------------------------------------- parameters
    @property
    def n_good(self) -> int:
        """Number of pixels used in the fit."""
        return self._n_good

    def linear_names(self, line_keys: list[str], free_keys: list[str]) -> list[str]:
        """Names of the linear parameters (fluxes, continuum, absorption)."""
        names = [f"flux_{k}" for k in free_keys]
        names += [f"c{j}" for j in range(self.n_cont)]
        names += [f"abs_{line_keys[i]}" for i in self.abs_lines[: self.n_abs]]
        return names

    # ----------------------------------------------------------- profiles
    def _inst_sigma(self, mu):
        return self.inst_a + self.inst_b * mu

    def line_profiles(self, z: float, sigma_v: float, derivs: bool = False, full: bool = False):
        """Unit-flux pixel-integrated Gaussians of every line.

        Parameters
        ----------
        z, sigma_v : float
            Redshift and intrinsic velocity dispersion (km/s; its sign is irrelevant).
        derivs : bool
            Also return derivatives with respect to ``z`` and ``sigma_v``.
        full : bool
            Evaluate on every window pixel (not only the good ones).

        Returns
        -------
        prof : ndarray (n_lines, npix)
        dprof_dz, dprof_dsv : ndarray (n_lines, npix), only with ``derivs``
        """
        mu = self.rest * (1.0 + z)                                   # (L,)
        si = self._inst_sigma(mu)
        s = np.sqrt(si * si + (mu * sigma_v / C_KMS) ** 2)           # (L,)
        u = (self._edges - mu[:, None]) / s[:, None]                 # (L, n+1)
        cdf = ndtr(u)
        prof = (cdf[:, 1:] - cdf[:, :-1]) * self._inv_dpix
        if not (full or self._all_good):
            prof = prof[:, self._good_idx]
        if not derivs:
            return prof
        pdf = np.exp(-0.5 * u * u) * _INV_SQRT_2PI
        pu = pdf * u
        inv = self._inv_dpix / s[:, None]
        dmu = (pdf[:, :-1] - pdf[:, 1:]) * inv
        ds = (pu[:, :-1] - pu[:, 1:]) * inv
        if not (full or self._all_good):
            dmu = dmu[:, self._good_idx]
            ds = ds[:, self._good_idx]
        ds_dmu = (si * self.inst_b + mu * (sigma_v / C_KMS) ** 2) / s
        ds_dt = mu * mu / (2.0 * C_KMS * C_KMS * s)
        dz = (dmu + ds * ds_dmu[:, None]) * self.rest[:, None]
        dt = ds * ds_dt[:, None]
        return prof, dz, dt

    def _abs_profiles(self, z: float, derivs: bool = False, full: bool = False):
        """Unit-flux profiles of the absorption components (fixed width)."""
        rest = self.rest[self.abs_lines]
        mu = rest * (1.0 + z)
        si = self._inst_sigma(mu)
        s = np.sqrt(si * si + (mu * self.abs_sigma_kms / C_KMS) ** 2)
        u = (self._edges[None, :] - mu[:, None]) / s[:, None]
        sel = slice(None) if full else self.good
        prof = (np.diff(ndtr(u), axis=1) / self._dpix[None, :])[:, sel]
        if not derivs:
            return prof
        pdf = np.exp(-0.5 * u * u) * _INV_SQRT_2PI
        dmu = -np.diff(pdf, axis=1)[:, sel] / (s[:, None] * self._dpix[None, sel])
        dsd = -np.diff(pdf * u, axis=1)[:, sel] / (s[:, None] * self._dpix[None, sel])
        ds_dmu = (si * self.inst_b + mu * (self.abs_sigma_kms / C_KMS) ** 2) / s
        dz = (dmu + dsd * ds_dmu[:, None]) * rest[:, None]
        return prof, dz

    def _cont_at(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        """Continuum basis at the absorption-line centres and its z-derivative."""
        mu = self.rest[self.abs_lines] * (1.0 + z)
        x = (mu - self.x0) / self.xscale
        basis = np.vander(x, self.n_cont, increasing=True)           # (A, nc)
        j = np.arange(self.n_cont)
        dbasis = np.zeros_like(basis)
        if self.n_cont > 1:
            dbasis[:, 1:] = j[1:] * np.vander(x, self.n_cont - 1, increasing=True)
        dbasis *= (self.rest[self.abs_lines] / self.xscale)[:, None]
        return basis, dbasis

    # ----------------------------------------------------------- design
    def design(self, z: float, sigma_v: float, derivs: bool = False, full: bool = False,
               profiles: np.ndarray | None = None):
        """Design matrix ``B`` (npix, n_lin) so that ``model = B @ theta``.

        With ``derivs`` also ``dB/dz`` and ``dB/dt`` where ``t = sigma_v**2``
        (``dB/dsigma_v = 2 sigma_v dB/dt``). ``profiles``: the caller's
        ``line_profiles(z, sigma_v, full=full)`` (not with ``derivs``).
        """
        if profiles is not None and not derivs:
            out = profiles
        else:
            out = self.line_profiles(z, sigma_v, derivs=derivs, full=full)
        prof = out[0] if derivs else out
        T = self.tie_matrix
        cont = self._cont_basis if full else self._cont_good
        if self.abs_mode == "none" or not self.abs_lines.size:
            # the common case: line columns then the continuum, filled in place
            nf = self.n_free
            B = np.empty((prof.shape[1], self.n_lin))
            B[:, :nf] = prof.T @ T
            B[:, nf:] = cont
            if not derivs:
                return B
            dBz = np.zeros_like(B)
            dBt = np.zeros_like(B)
            dBz[:, :nf] = out[1].T @ T
            dBt[:, :nf] = out[2].T @ T
            return B, dBz, dBt
        cols = [prof.T @ T, cont]
        if derivs:
            dcols_z = [out[1].T @ T, np.zeros_like(cont)]
            dcols_s = [out[2].T @ T, np.zeros_like(cont)]
        if self.abs_mode != "none" and self.abs_lines.size:
            ap = self._abs_profiles(z, derivs=derivs, full=full)
            aprof = ap[0] if derivs else ap
            if self.abs_mode == "fit":
                cols.append(aprof.T)
                if derivs:
                    dcols_z.append(ap[1].T)
                    dcols_s.append(np.zeros_like(aprof.T))
            else:  # fixed EW: flux_abs = -EW (1+z) * C(mu), linear in the continuum
                basis, dbasis = self._cont_at(z)
                ew_obs = self.abs_ew * (1.0 + z)
                cols[1] = cont - ew_obs * (aprof.T @ basis)
                if derivs:
                    dcols_z[1] = -(ew_obs * (ap[1].T @ basis + aprof.T @ dbasis)
                                   + self.abs_ew * (aprof.T @ basis))
        B = np.hstack(cols)
        if not derivs:
            return B
        return B, np.hstack(dcols_z), np.hstack(dcols_s)

    def model_and_jacobian(self, z: float, sigma_v: float, theta: np.ndarray):
        """Model on the good pixels and its Jacobian columns.

        Returns
        -------
        model : ndarray (npix,)
        dm_dz, dm_dt : ndarray (npix,)
            Derivatives with respect to ``z`` and ``t = sigma_v**2``.
        B : ndarray (npix, n_lin)
            Design matrix (derivatives with respect to ``theta``).
        """
        if self.abs_mode != "none" and self.abs_lines.size:
            B, dBz, dBt = self.design(z, sigma_v, derivs=True)
            return B @ theta, dBz @ theta, dBt @ theta, B
        prof, dz, dt = self.line_profiles(z, sigma_v, derivs=True)
        nf = self.n_free
        F = self.tie_matrix @ theta[:nf]
        B = np.empty((prof.shape[1], self.n_lin))
        B[:, :nf] = prof.T @ self.tie_matrix
        B[:, nf:] = self._cont_good
        return B @ theta, F @ dz, F @ dt, B

    def evaluate(self, z: float, sigma_v: float, theta: np.ndarray, full: bool = True) -> np.ndarray:
        """Model flux density on the window (``full``) or on the good pixels."""
        return self.design(z, sigma_v, full=full) @ np.asarray(theta, float)

    def continuum(self, z: float, theta: np.ndarray, full: bool = True) -> np.ndarray:
        """The continuum part of the model (with a fixed-EW absorption included)."""
        sel = slice(None) if full else self.good
        c = np.asarray(theta, float)[self.n_free:self.n_free + self.n_cont]
        return self._cont_basis[sel] @ c

    def continuum_at(self, wave_obs: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """The polynomial continuum at observed wavelengths ``wave_obs``."""
        x = (np.atleast_1d(np.asarray(wave_obs, float)) - self.x0) / self.xscale
        c = np.asarray(theta, float)[self.n_free:self.n_free + self.n_cont]
        return np.vander(x, self.n_cont, increasing=True) @ c

    def continuum_basis_at(self, wave_obs: np.ndarray) -> np.ndarray:
        """Continuum basis rows at ``wave_obs`` (to propagate covariances)."""
        x = (np.atleast_1d(np.asarray(wave_obs, float)) - self.x0) / self.xscale
        return np.vander(x, self.n_cont, increasing=True)

    def observed_sigma(self, z: float, sigma_v: float) -> np.ndarray:
        """Observed Gaussian sigma of every line (Angstrom)."""
        mu = self.rest * (1.0 + z)
        si = self._inst_sigma(mu)
        return np.sqrt(si * si + (mu * sigma_v / C_KMS) ** 2)

    # ----------------------------------------------------------- vectorised (emcee)
    def line_design_many(self, z: np.ndarray, sigma_v: np.ndarray) -> np.ndarray:
        """Line columns of the design matrix for many kinematics: (n, npix_good, n_free).

        Each line is evaluated only on the pixels within 8 sigma of its centre
        (the rest of the window is zero to double precision).
        """
        z = np.asarray(z, float)
        mu = self.rest[None, :] * (1.0 + z[:, None])                         # (n, L)
        si = self._inst_sigma(mu)
        s = np.sqrt(si * si + (mu * np.asarray(sigma_v, float)[:, None] / C_KMS) ** 2)
        edges = self._edges
        npix = edges.size - 1
        prof = np.zeros((z.size, self.n_lines, npix))
        lo = np.searchsorted(edges, (mu - 8.0 * s).min(axis=0)) - 1
        hi = np.searchsorted(edges, (mu + 8.0 * s).max(axis=0)) + 1
        for j in range(self.n_lines):
            a, b = max(int(lo[j]), 0), min(int(hi[j]), edges.size)
            if b - a < 2:
                continue
            u = (edges[a:b] - mu[:, j:j + 1]) / s[:, j:j + 1]
            cdf = ndtr(u)
            prof[:, j, a:b - 1] = (cdf[:, 1:] - cdf[:, :-1]) * self._inv_dpix[a:b - 1]
        if not self._all_good:
            prof = prof[:, :, self.good]
        return np.transpose(prof, (0, 2, 1)) @ self.tie_matrix

    def design_many(self, z: np.ndarray, sigma_v: np.ndarray) -> np.ndarray:
        """Design matrices for many (z, sigma_v) at once: shape (n, npix_good, n_lin)."""
        z = np.asarray(z, float)
        sigma_v = np.asarray(sigma_v, float)
        n = z.size
        mu = self.rest[None, :] * (1.0 + z[:, None])                         # (n, L)
        si = self._inst_sigma(mu)
        s = np.sqrt(si * si + (mu * sigma_v[:, None] / C_KMS) ** 2)
        u = (self._edges[None, None, :] - mu[:, :, None]) / s[:, :, None]   # (n, L, e)
        prof = (np.diff(ndtr(u), axis=2) / self._dpix[None, None, :])[:, :, self.good]
        cols = [np.einsum("nlp,lf->npf", prof, self.tie_matrix)]
        cont = np.broadcast_to(self._cont_basis[self.good], (n,) + self._cont_basis[self.good].shape)
        cols.append(cont)
        if self.abs_mode != "none" and self.abs_lines.size:
            aprof = np.stack([self._abs_profiles(zz) for zz in z])           # (n, A, p)
            if self.abs_mode == "fit":
                cols.append(np.transpose(aprof, (0, 2, 1)))
            else:
                basis = np.stack([self._cont_at(zz)[0] for zz in z])         # (n, A, nc)
                ew = (self.abs_ew * (1.0 + z))[:, None, None]
                cols[1] = cont - ew * np.einsum("nap,anc->npc", aprof,
                                                np.transpose(basis, (1, 0, 2)))
        return np.concatenate(cols, axis=2)
