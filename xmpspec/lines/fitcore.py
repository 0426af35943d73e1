"""Fast fitting core: Levenberg-Marquardt with the analytic Jacobian of a group model.

Minimises chi-square with the error spectrum for one :class:`GroupModel`.
Two modes:

* free kinematics: parameters ``[z, sigma_v, theta...]`` (LM, analytic
  Jacobian, starting from the exact linear solution at the initial kinematics);
* fixed kinematics: only the linear parameters ``theta`` (one weighted linear
  least-squares solve; the posterior of a linear model is exactly Gaussian).

Uncertainties are the covariance ``(J^T W J)^-1`` of the fit, *not* rescaled
by the reduced chi-square (the error spectrum is taken at face value; the
reduced chi-square is reported so a user can judge it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..instruments import C_KMS
from .model import GroupModel

__all__ = ["FitResult", "fit_linear", "fit_free", "safe_covariance"]


@dataclass
class FitResult:
    """Result of one group fit.

    Attributes
    ----------
    z, sigma_v : float
        Redshift and intrinsic velocity dispersion (km/s, >= 0).
    theta : ndarray
        Linear parameters (free fluxes, continuum, absorption).
    cov : ndarray
        Covariance of ``[z, t, theta]`` (``t = sigma_v**2``, the excess Gaussian
        variance over the instrumental width in (km/s)**2) if ``free_kinematics``,
        else of ``theta``. The ``t`` parametrisation keeps the covariance regular
        when the width sits at the instrumental floor, so flux errors always
        include the width uncertainty.
    free_kinematics : bool
    chi2 : float
    dof : int
    success : bool
    message : str
        Why a fit failed (empty on success).
    niter : int
    """

    z: float
    sigma_v: float
    theta: np.ndarray
    cov: np.ndarray
    free_kinematics: bool
    chi2: float
    dof: int
    success: bool = True
    message: str = ""
    niter: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def theta_cov(self) -> np.ndarray:
        """Covariance of the linear parameters."""
        return self.cov[2:, 2:] if self.free_kinematics else self.cov

    @property
    def z_err(self) -> float:
        """1-sigma error of z (NaN with fixed kinematics)."""
        return float(np.sqrt(self.cov[0, 0])) if self.free_kinematics else float("nan")

    @property
    def sigma_v_err(self) -> float:
        """1-sigma error of sigma_v (NaN with fixed kinematics or at the floor)."""
        if not self.free_kinematics:
            return float("nan")
        v = self.cov[1, 1]
        if not (np.isfinite(v) and v >= 0) or self.sigma_v <= 0:
            return float("nan")
        return float(np.sqrt(v) / (2.0 * self.sigma_v))

    @property
    def redchi2(self) -> float:
        """Reduced chi-square."""
        return self.chi2 / self.dof if self.dof > 0 else float("nan")


def safe_covariance(jtj: np.ndarray, drop_tol: float = 1e-10) -> tuple[np.ndarray, list[int]]:
    """Invert a normal matrix robustly.

    Parameters whose (scaled) column is numerically null are dropped from the
    inversion; their variance is NaN and their covariances zero.

    Returns
    -------
    cov : ndarray
    dropped : list of int
        Indices of unconstrained parameters.
    """
    n = jtj.shape[0]
    if n:   # the common case (every parameter constrained), with few numpy calls
        d_list = [math.sqrt(abs(v)) for v in jtj.diagonal().tolist()]
        thr = drop_tol * max(max(d_list), 1e-300)
        if all(v > thr for v in d_list):   # False for any NaN: the general path below
            d = np.array(d_list)
            dd = d[:, None] * d[None, :]
            try:
                return np.linalg.inv(jtj / dd) / dd, []
            except np.linalg.LinAlgError:
                pass
    d = np.sqrt(np.abs(np.diag(jtj)))
    dmax = d.max() if n else 1.0
    keep = np.where(d > drop_tol * max(dmax, 1e-300))[0]
    cov = np.zeros((n, n))
    dropped = [i for i in range(n) if i not in set(keep.tolist())]
    if keep.size:
        sub = jtj[np.ix_(keep, keep)] / np.outer(d[keep], d[keep])
        try:
            inv = np.linalg.inv(sub)
        except np.linalg.LinAlgError:
            inv = np.linalg.pinv(sub)
        cov[np.ix_(keep, keep)] = inv / np.outer(d[keep], d[keep])
    for i in dropped:
        cov[i, i] = np.nan
    return cov, dropped


def fit_linear(model: GroupModel, z: float, sigma_v: float,
               design: np.ndarray | None = None) -> FitResult:
    """Weighted linear least squares at fixed kinematics.

    Parameters
    ----------
    model : GroupModel
    z, sigma_v : float
        The fixed kinematics.
    design : ndarray, optional
        ``model.design(z, sigma_v)`` when the caller has it already.

    Returns
    -------
    FitResult
        With ``free_kinematics=False``; ``success`` is False (with a message)
        when the design matrix is singular.
    """
    B = model.design(z, sigma_v) if design is None else design
    Bw = B * model._wcol
    yw = model._yw
    dof = model.n_good - model.n_lin
    if dof < 1:
        return FitResult(z, abs(sigma_v), np.full(model.n_lin, np.nan),
                         np.full((model.n_lin, model.n_lin), np.nan), False, np.nan, dof,
                         False, f"too few unmasked pixels ({model.n_good}) for "
                                f"{model.n_lin} parameters")
    jtj = Bw.T @ Bw
    cov, dropped = safe_covariance(jtj)
    if dropped:
        return FitResult(z, abs(sigma_v), np.full(model.n_lin, np.nan), cov, False, np.nan, dof,
                         False, "singular design matrix (a line has no unmasked pixels)")
    theta = cov @ (Bw.T @ yw)
    r = yw - Bw @ theta
    return FitResult(z, abs(sigma_v), theta, cov, False, float(r @ r), dof, True, "", 1)


def fit_free(model: GroupModel, z0: float, sigma_v0: float, max_iter: int = 100,
             max_shift_kms: float = 1000.0, max_sigma_kms: float = 1000.0,
             atol: float = 1e-6, start: FitResult | None = None) -> FitResult:
    """Levenberg-Marquardt fit of ``[z, sigma_v, theta]`` with the analytic Jacobian.

    Parameters
    ----------
    model : GroupModel
    z0, sigma_v0 : float
        Starting kinematics (``sigma_v0`` should not be 0: its gradient vanishes there).
    max_iter : int
        Iteration limit; reaching it is a failed fit ("did not converge").
    max_shift_kms : float
        A solution further than this from ``z0`` is rejected (the fit ran to
        another feature or noise).
    max_sigma_kms : float
        A wider intrinsic dispersion is rejected.
    atol : float
        The iterations end when the Newton decrement (expected chi-square
        decrease of a full Gauss-Newton step) falls below this: 1e-6 leaves
        the parameters within ~0.1% of their errors of the minimum.
    start : FitResult, optional
        ``fit_linear(model, z0, sigma_v0)`` when the caller has it already (the
        starting linear solution).
    """
    lin = fit_linear(model, z0, sigma_v0) if start is None else start
    n = model.n_lin + 2
    if not lin.success:
        return FitResult(z0, abs(sigma_v0), lin.theta, np.full((n, n), np.nan), True, np.nan,
                         lin.dof - 2, False, lin.message)
    w = model.w
    y = model.y
    # parameters [z, t = sigma_v**2, theta]; t >= 0 by projection (instrumental floor)
    q = np.concatenate(([z0, sigma_v0 * sigma_v0], lin.theta))
    dof = model.n_good - n
    wcol = w[:, None]

    def jac_res(q):
        m, dz, dt, B = model.model_and_jacobian(q[0], np.sqrt(q[1]), q[2:])
        J = np.empty((m.size, n))
        J[:, 0] = dz
        J[:, 1] = dt
        J[:, 2:] = B
        J *= wcol
        return J, (y - m) * w

    keep = np.array([0, *range(2, n)])   # the parameters other than t (t fixed on its floor)

    def newton_step(jtj, g):
        """Undamped Gauss-Newton step ``H^-1 g`` (None if H is singular)."""
        try:
            return np.linalg.solve(jtj, g)
        except np.linalg.LinAlgError:
            return None

    def decrement(jtj, g, q, st):
        """Newton decrement g^T H^-1 g (t fixed when it sits on the floor and wants below)."""
        if st is None:
            return np.inf
        if q[1] <= 0.0 and st[1] < 0.0:
            try:
                st = np.linalg.solve(jtj[np.ix_(keep, keep)], g[keep])
            except np.linalg.LinAlgError:
                return np.inf
            return float(g[keep] @ st)
        return float(g @ st)

    J, r = jac_res(q)
    chi2 = float(r @ r)
    lam = 1e-3
    success = False
    message = "did not converge"
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        jtj = J.T @ J
        g = J.T @ r
        st = newton_step(jtj, g)
        if decrement(jtj, g, q, st) < atol:
            success, message = True, ""
            break
        dg = jtj.diagonal().copy()
        dg[dg <= 0] = 1e-30
        # active set: on the floor with the gradient pointing below it, t stays fixed
        on_floor = q[1] <= 0.0 and (st is None or st[1] < 0.0)
        if on_floor:
            jsub = jtj[np.ix_(keep, keep)]
            gsub = g[keep]
            dsub = dg[keep]
        else:
            jsub, gsub, dsub = jtj, g, dg
        improved = False
        for _ in range(15):
            A = jsub.copy()
            A.flat[::A.shape[0] + 1] += lam * dsub
            try:
                sub = np.linalg.solve(A, gsub)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            if on_floor:
                step = np.zeros(n)
                step[keep] = sub
            else:
                step = sub
            qn = q + step
            if qn[1] < 0.0:
                qn[1] = 0.0
            # the Jacobian at the trial point: kept when the step is taken (most steps)
            Jn, rn = jac_res(qn)
            chi2n = float(rn @ rn)
            if np.isfinite(chi2n) and chi2n <= chi2:
                improved = True
                break
            lam *= 10.0
        if not improved:
            # no downhill step at any damping: at the minimum to numerical precision
            success, message = True, ""
            break
        q, chi2 = qn, chi2n
        lam = max(lam / 10.0, 1e-12)
        J, r = Jn, rn
    sv = float(np.sqrt(max(q[1], 0.0)))
    # covariance in [z, t, theta]: regular at the instrumental floor (t = 0)
    cov, dropped = safe_covariance(J.T @ J)
    q = np.concatenate(([q[0], sv], q[2:]))
    res = FitResult(float(q[0]), float(q[1]), q[2:].copy(), cov, True, chi2, dof, success,
                    message, it)
    if res.success:
        shift = abs(q[0] - z0) / (1.0 + z0) * C_KMS
        if not np.isfinite(q).all():
            res.success, res.message = False, "non-finite parameters"
        elif shift > max_shift_kms:
            res.success, res.message = False, (f"centre moved {shift:.0f} km/s from the start "
                                               f"(limit {max_shift_kms:.0f})")
        elif q[1] > max_sigma_kms:
            res.success, res.message = False, (f"velocity dispersion {q[1]:.0f} km/s above "
                                               f"the limit {max_sigma_kms:.0f}")
        elif any(i >= 2 for i in dropped):
            res.success, res.message = False, "singular covariance (degenerate lines)"
    res.extra["dropped"] = dropped
    res.extra["weighted_residual"] = r   # (data - model) / error at the result (good pixels)
    return res
