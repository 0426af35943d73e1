"""emcee posteriors of a group fit (``--mcmc``).

The likelihood is the chi-square of the same :class:`GroupModel` as the fast
core; priors are flat (fluxes may be negative, so upper limits come out
right), with the same limits on the centre shift and velocity dispersion as
the least-squares fit.

The model is linear in the fluxes and continuum coefficients ``theta`` for
given kinematics, so with flat priors their conditional posterior is exactly
Gaussian, ``N(theta_hat(z, s), (B^T W B)^-1)``, and they marginalise
analytically: ``p(z, s | data) ~ exp(-chi2_min(z, s) / 2) |B^T W B|^-1/2``.
emcee samples this two-parameter marginal posterior (redshift and intrinsic
dispersion; all walkers evaluated at once with ``vectorize=True`` on the
vectorised design matrices of the model), and each kept sample draws
``theta`` from its conditional Gaussian: the joint posterior samples are
exact. Groups with kinematics tied to another group are linear models whose
posterior is exactly Gaussian: they are sampled directly.

Moves: an independence Metropolis-Hastings proposal (a bivariate Student-t,
folded at sigma_v = 0 when the posterior reaches the instrumental floor) mixed
with emcee's stretch move (``mcmc_stretch_fraction``). The proposal starts as
the widened Laplace approximation of the least-squares fit (``mcmc_burn``
burn-in steps) and is then re-centred on the burn-in samples (mean and
covariance, z-sigma_v correlation included) and frozen for the kept chain, so
the autocorrelation time is 1-3 steps.

Convergence: the kept chain runs in blocks of ``mcmc_check_steps`` until it
is longer than ``mcmc_min_tau_multiple`` times the integrated autocorrelation
time (emcee's estimator; the larger of the last two estimates, and at least
``mcmc_min_tau_multiple`` steps), or ``mcmc_steps``; a chain that ends shorter than that is reported as not
converged (``converged`` False, ``tau_max`` and ``n_steps`` given).
"""

from __future__ import annotations

import numpy as np

from ..instruments import C_KMS
from .fitcore import FitResult
from .model import GroupModel

__all__ = ["run_group_mcmc"]

def _conditional(model: GroupModel, z: np.ndarray, sv: np.ndarray):
    """Conditional Gaussian of theta for many kinematics: (theta_hat, chol, scale, log marginal)."""
    w = model.w
    yw = model.y * w
    if model.abs_mode != "none" and model.abs_lines.size:
        B = model.design_many(z, sv) * w[None, :, None]                # (n, p, k)
        Bt = np.transpose(B, (0, 2, 1))
        A = Bt @ B
        b = Bt @ yw
    else:
        # only the line columns depend on the kinematics; the continuum block is fixed
        P = model.line_design_many(z, sv) * w[None, :, None]           # (n, p, f)
        Cw = model._cont_good * w[:, None]                              # (p, c)
        nf = P.shape[2]
        Pt = np.transpose(P, (0, 2, 1))
        A = np.empty((z.size, model.n_lin, model.n_lin))
        A[:, :nf, :nf] = Pt @ P
        pc = Pt @ Cw
        A[:, :nf, nf:] = pc
        A[:, nf:, :nf] = np.transpose(pc, (0, 2, 1))
        A[:, nf:, nf:] = Cw.T @ Cw
        b = np.empty((z.size, model.n_lin))
        b[:, :nf] = Pt @ yw
        b[:, nf:] = Cw.T @ yw
    d = np.sqrt(np.einsum("nkk->nk", A))
    As = A / (d[:, :, None] * d[:, None, :])
    L = np.linalg.cholesky(As)                                          # As = L L^T
    th = np.linalg.solve(As, (b / d)[:, :, None])[:, :, 0] / d
    chi2 = yw @ yw - np.einsum("nk,nk->n", b, th)
    logdet = 2.0 * np.sum(np.log(np.einsum("nkk->nk", L)), axis=1) + 2.0 * np.sum(np.log(d), 1)
    return th, L, d, -0.5 * chi2 - 0.5 * logdet


def _autocorr_time(chain: np.ndarray, c: float = 5.0) -> np.ndarray:
    """Integrated autocorrelation time per parameter (emcee's estimator: the
    normalised autocorrelation function averaged over walkers, Sokal window ``c``).

    Walkers that never moved in the chain (zero variance) are left out of the
    average (emcee's own estimate is NaN then); if none moved, the time is the
    chain length.
    """
    from emcee.autocorr import auto_window
    n, nw, nd = chain.shape
    m = 1 << (2 * n - 1).bit_length()
    tau = np.empty(nd)
    for k in range(nd):
        x = chain[:, :, k] - chain[:, :, k].mean(axis=0)
        f = np.fft.rfft(x, n=m, axis=0)
        acf = np.fft.irfft(f * np.conj(f), n=m, axis=0)[:n]
        moving = acf[0] > 0
        if not moving.any():
            tau[k] = float(n)
            continue
        rho = np.mean(acf[:, moving] / acf[0, moving], axis=1)
        taus = 2.0 * np.cumsum(rho) - 1.0
        tau[k] = taus[auto_window(taus, c)]
    return tau


def _draw(th: np.ndarray, L: np.ndarray, d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """theta = theta_hat + (D L^T)^-1 eps  (covariance (D L L^T D)^-1)."""
    eps = rng.standard_normal(th.shape)
    x = np.linalg.solve(np.transpose(L, (0, 2, 1)), eps[:, :, None])[:, :, 0]
    return th + x / d


class _StudentProposal:
    """Bivariate Student-t over (z, sigma_v), optionally folded at sigma_v = 0 (normalised)."""

    def __init__(self, mean, cov, folded: bool, nu: float = 5.0):
        from scipy.special import gammaln
        self.mean = np.asarray(mean, float)
        self.folded = bool(folded)
        self.nu = float(nu)
        cov = np.asarray(cov, float)
        self.L = np.linalg.cholesky(cov)
        self.Linv = np.linalg.inv(self.L)
        self.lognorm = (gammaln(0.5 * (self.nu + 2)) - gammaln(0.5 * self.nu)
                        - np.log(self.nu * np.pi) - np.sum(np.log(np.diag(self.L))))

    def _logt(self, P):
        d = (P - self.mean) @ self.Linv.T
        return self.lognorm - 0.5 * (self.nu + 2.0) * np.log1p(np.sum(d * d, axis=1) / self.nu)

    def logq(self, P):
        """Normalised log density (on sigma_v >= 0 when folded)."""
        if not self.folded:
            return self._logt(P)
        Q = P.copy()
        Q[:, 1] = -Q[:, 1]
        return np.logaddexp(self._logt(P), self._logt(Q))

    def draw(self, n: int, random) -> np.ndarray:
        g = random.standard_normal((n, 2)) @ self.L.T
        w = np.sqrt(random.chisquare(self.nu, n) / self.nu)
        P = self.mean + g / w[:, None]
        if self.folded:
            P[:, 1] = np.abs(P[:, 1])
        return P

    def move(self, coords, random):
        """emcee MH proposal function: (proposed coords, log q(x) - log q(x'))."""
        q = self.draw(coords.shape[0], random)
        return q, self.logq(coords) - self.logq(q)


class _GridProposal:
    """Independence proposal from the marginal posterior tabulated on a (z, sigma_v) grid.

    A piecewise-constant density (the posterior at the cell centres) mixed with a
    Student-t (weight ``1 - w_grid``) so that the proposal covers every point.
    """

    def __init__(self, ez: np.ndarray, es: np.ndarray, logp_centres: np.ndarray,
                 tail: _StudentProposal, w_grid: float = 0.9):
        self.ez, self.es = ez, es
        lp = np.where(np.isfinite(logp_centres), logp_centres, -np.inf)
        P = np.exp(lp - lp.max())
        self.P = (P / P.sum()).ravel()
        self.cdf = np.cumsum(self.P)
        self.cdf[-1] = 1.0
        self.area = float((ez[1] - ez[0]) * (es[1] - es[0]))
        self.tail = tail
        self.w = float(w_grid)
        self.nz, self.ns = ez.size - 1, es.size - 1

    def logq(self, X):
        iz = np.floor((X[:, 0] - self.ez[0]) / (self.ez[1] - self.ez[0])).astype(int)
        js = np.floor((X[:, 1] - self.es[0]) / (self.es[1] - self.es[0])).astype(int)
        inside = (iz >= 0) & (iz < self.nz) & (js >= 0) & (js < self.ns)
        g = np.zeros(X.shape[0])
        g[inside] = self.P[iz[inside] * self.ns + js[inside]] / self.area
        with np.errstate(divide="ignore"):
            return np.logaddexp(np.log(self.w * g), np.log1p(-self.w) + self.tail.logq(X))

    def draw(self, n: int, random) -> np.ndarray:
        X = self.tail.draw(n, random)
        use = random.rand(n) < self.w
        k = int(use.sum())
        if k:
            cell = np.searchsorted(self.cdf, random.rand(k), side="right")
            cell = np.minimum(cell, self.P.size - 1)
            iz, js = np.divmod(cell, self.ns)
            dz, ds = self.ez[1] - self.ez[0], self.es[1] - self.es[0]
            X[use, 0] = self.ez[0] + (iz + random.rand(k)) * dz
            X[use, 1] = self.es[0] + (js + random.rand(k)) * ds
        return X

    def move(self, coords, random):
        """emcee MH proposal function: (proposed coords, log q(x) - log q(x'))."""
        q = self.draw(coords.shape[0], random)
        return q, self.logq(coords) - self.logq(q)


def _laplace_proposal(fit: FitResult, widen: float) -> _StudentProposal:
    """Widened Laplace approximation of the least-squares fit (folded at sigma_v = 0)."""
    sd_z = fit.z_err if np.isfinite(fit.z_err) and fit.z_err > 0 else 1e-5
    sd_sv = fit.sigma_v_err if np.isfinite(fit.sigma_v_err) else 0.0
    sd_sv = max(sd_sv, 0.1)
    var_t = fit.cov[1, 1] if np.isfinite(fit.cov[1, 1]) and fit.cov[1, 1] > 0 else 100.0**2
    s_sv = max(sd_sv if fit.sigma_v > 2 * sd_sv else np.sqrt(np.sqrt(var_t)), 0.1)
    cov = np.diag([(widen * sd_z) ** 2, (widen * s_sv) ** 2])
    return _StudentProposal([fit.z, fit.sigma_v], cov, folded=True)


def _adapted_proposal(X: np.ndarray, widen: float, prev: _StudentProposal) -> _StudentProposal:
    """Student-t matched to samples ``X`` (n, 2) of (z, sigma_v)."""
    m = X.mean(axis=0)
    S = np.cov(X, rowvar=False)
    if not (np.all(np.isfinite(S)) and S[0, 0] > 0 and S[1, 1] > 0):
        return prev
    sd = np.sqrt(np.diag(S))
    if m[1] < 2.5 * sd[1]:
        # posterior reaching sigma_v = 0: folded, centred on the floor, second moment matched
        mean = np.array([m[0], 0.0])
        cov = np.diag([S[0, 0], np.mean(X[:, 1] ** 2)])
        folded = True
    else:
        mean, cov, folded = m, S, False
    try:
        return _StudentProposal(mean, widen**2 * cov, folded)
    except np.linalg.LinAlgError:
        return prev


def _grid_proposal(logp, X: np.ndarray, tail: _StudentProposal, n_grid: int,
                   z_lim: tuple[float, float], sv_max: float) -> _GridProposal | None:
    """Tabulate the marginal posterior around samples ``X``; widen the box while the
    posterior at its edge is not negligible (at most twice)."""
    zlo, zhi = np.percentile(X[:, 0], [0.5, 99.5])
    shi = float(np.percentile(X[:, 1], 99.5))
    pad_z = max(0.5 * (zhi - zlo), 1e-9)
    zlo, zhi, shi = zlo - pad_z, zhi + pad_z, 1.5 * shi + 1e-6
    for _ in range(3):
        zlo, zhi = max(zlo, z_lim[0]), min(zhi, z_lim[1])
        shi = min(shi, sv_max)
        ez = np.linspace(zlo, zhi, n_grid + 1)
        es = np.linspace(0.0, shi, n_grid + 1)
        cz, cs = 0.5 * (ez[1:] + ez[:-1]), 0.5 * (es[1:] + es[:-1])
        G = np.column_stack([np.repeat(cz, n_grid), np.tile(cs, n_grid)])
        lp = logp(G).reshape(n_grid, n_grid)
        if not np.isfinite(lp).any():
            return None
        high = lp > np.nanmax(lp) - 9.0          # cells within exp(-9) of the peak
        grow_z_lo = bool(high[0, :].any()) and zlo > z_lim[0]
        grow_z_hi = bool(high[-1, :].any()) and zhi < z_lim[1]
        grow_s = bool(high[:, -1].any()) and shi < sv_max
        if not (grow_z_lo or grow_z_hi or grow_s):
            break
        w = zhi - zlo
        zlo -= w if grow_z_lo else 0.0
        zhi += w if grow_z_hi else 0.0
        shi *= 2.0 if grow_s else 1.0
    return _GridProposal(ez, es, lp, tail)


def run_group_mcmc(model: GroupModel, fit: FitResult, mcfg: dict,
                   rng: np.random.Generator | None = None) -> dict:
    """Sample the posterior of one group's parameters.

    Parameters
    ----------
    model : GroupModel
    fit : FitResult
        Least-squares solution (starting point; free or fixed kinematics).
    mcfg : dict
        The ``[measure]`` configuration (``mcmc_walkers``, ``mcmc_steps`` (the
        most steps of the kept chain), ``mcmc_burn``, ``mcmc_check_steps``,
        ``mcmc_grid``, ``mcmc_samples``, ``mcmc_upper_percentile``,
        ``mcmc_min_tau_multiple``, ``mcmc_proposal_scale``, ``mcmc_stretch_fraction``,
        ``max_shift_kms``, ``max_sigma_kms``).
    rng : numpy.random.Generator, optional

    Returns
    -------
    dict
        ``ok``, ``line_flux`` (samples x lines), ``theta`` samples, ``z`` and
        ``sigma_v`` samples (free kinematics), ``tau`` (per sampled parameter),
        ``tau_max``, ``converged``, ``n_steps`` (kept chain), ``n_burn``,
        ``n_walkers``, ``acceptance``, ``upper_percentile``, ``method``;
        ``message`` on failure.
    """
    import emcee

    rng = rng if rng is not None else np.random.default_rng()
    nsamp = int(mcfg.get("mcmc_samples", 4000))
    out = {"ok": True, "upper_percentile": float(mcfg["mcmc_upper_percentile"]), "message": ""}
    T = model.tie_matrix
    if not fit.free_kinematics:
        # linear model, flat priors: the posterior is exactly N(theta_hat, cov)
        cov = fit.theta_cov
        try:
            Lc = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            return {"ok": False, "message": "covariance not positive definite"}
        th = fit.theta[None, :] + rng.standard_normal((nsamp, fit.theta.size)) @ Lc.T
        out.update(theta=th, line_flux=th[:, :model.n_free] @ T.T, tau=np.zeros(0),
                   tau_max=0.0, converged=True, n_steps=0, n_burn=0, acceptance=1.0,
                   method="exact Gaussian (linear model)")
        return out
    max_steps = int(mcfg["mcmc_steps"])
    burn = max(int(mcfg["mcmc_burn"]), 4)
    check = max(int(mcfg.get("mcmc_check_steps", 20)), 5)
    mult = float(mcfg["mcmc_min_tau_multiple"])
    nwalk = max(int(mcfg["mcmc_walkers"]), 6)
    nwalk += nwalk % 2
    widen = float(mcfg.get("mcmc_proposal_scale", 1.5))
    f_stretch = float(mcfg.get("mcmc_stretch_fraction", 0.2))
    max_dz = float(mcfg["max_shift_kms"]) / C_KMS * (1 + fit.z)
    max_sv = float(mcfg["max_sigma_kms"])
    z0 = fit.z

    def logp(P):
        z, sv = P[:, 0], P[:, 1]
        bad = (np.abs(z - z0) > max_dz) | (sv < 0) | (sv > max_sv)
        lp = np.full(P.shape[0], -np.inf)
        okp = ~bad
        if okp.any():
            try:
                lp[okp] = _conditional(model, z[okp], sv[okp])[3]
            except np.linalg.LinAlgError:
                # a singular point (e.g. a line off the window): the others one by one
                for i in np.where(okp)[0]:
                    try:
                        lp[i] = _conditional(model, z[i:i + 1], sv[i:i + 1])[3][0]
                    except np.linalg.LinAlgError:
                        pass
        lp[~np.isfinite(lp)] = -np.inf
        return lp

    def sampler_for(prop):
        moves = [(emcee.moves.MHMove(prop.move, ndim=2), 1.0 - f_stretch)]
        if f_stretch > 0:
            moves.append((emcee.moves.StretchMove(), f_stretch))
        smp = emcee.EnsembleSampler(nwalk, 2, logp, vectorize=True, moves=moves)
        smp.random_state = np.random.RandomState(int(rng.integers(2**31 - 1))).get_state()
        return smp

    prop = _laplace_proposal(fit, widen)
    rs = np.random.RandomState(int(rng.integers(2**31 - 1)))
    p0 = prop.draw(nwalk, rs)
    for _ in range(5):     # start every walker inside the prior and where the model is regular
        bad = ~np.isfinite(logp(p0))
        if not bad.any():
            break
        p0[bad] = prop.draw(int(bad.sum()), rs)
    else:
        p0[bad] = [fit.z, max(fit.sigma_v, 0.0)] + np.abs(rs.standard_normal((int(bad.sum()), 2))) \
            * [1e-3 * max_dz, 1e-3 * max_sv]
    try:
        # burn-in with the Laplace proposal, then the proposal matched to the burn-in samples
        s_burn = sampler_for(prop)
        state = s_burn.run_mcmc(p0, burn, progress=False)
        X = s_burn.get_chain(flat=True)
        tail = _adapted_proposal(X, widen, prop)
        grid = _grid_proposal(logp, X, tail, int(mcfg.get("mcmc_grid", 30)),
                              (z0 - max_dz, z0 + max_dz), max_sv)
        prop = grid if grid is not None else tail
        sampler = sampler_for(prop)
        tau_prev = np.inf
        n = 0
        while True:
            state = sampler.run_mcmc(state, check, progress=False)
            n += check
            tau = _autocorr_time(sampler.get_chain())
            tau_max = float(np.max(tau))
            # at least mult steps (tau >= 1 assumed), and the last two estimates agree
            if n >= mult * max(tau_max, tau_prev if np.isfinite(tau_prev) else 0.0, 1.0) \
                    or n + check > max_steps:
                break
            tau_prev = tau_max
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        return {"ok": False, "message": f"emcee failed: {exc}"}
    chain = sampler.get_chain(flat=True)
    # kinematic samples (at most nsamp / 4) and several flux draws from each conditional
    nk = min(chain.shape[0], max(nsamp // 4, 1))
    pick = rng.choice(chain.shape[0], size=nk, replace=False)
    zs, svs = chain[pick, 0], chain[pick, 1]
    try:
        th_hat, L, d, _ = _conditional(model, zs, svs)
    except np.linalg.LinAlgError as exc:
        return {"ok": False, "message": f"singular conditional posterior: {exc}"}
    rep = int(np.ceil(nsamp / nk))
    idx = np.repeat(np.arange(nk), rep)[:nsamp]
    th = _draw(th_hat[idx], L[idx], d[idx], rng)
    out.update(theta=th, line_flux=th[:, :model.n_free] @ T.T, z=zs[idx], sigma_v=np.abs(svs[idx]),
               tau=tau, tau_max=tau_max, converged=bool(n >= mult * tau_max),
               n_steps=n, n_burn=burn, n_walkers=nwalk,
               acceptance=float(np.mean(sampler.acceptance_fraction)),
               method="emcee on (z, sigma_v), fluxes and continuum from their exact "
                      "conditional Gaussian")
    return out
