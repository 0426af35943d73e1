"""The group model as an :class:`lmfit.Model` with :class:`lmfit.Parameters`.

This is the user-facing, flexible form of the model of
:mod:`xmpspec.lines.model` (same function, same parametrisation): users can
add constraints, fix or bound parameters, add components, or call
``result.emcee``. The fast core reproduces lmfit's answers on the same model
(tested to 1% of the errors).

Examples
--------
>>> model, params = group_lmfit_model(group_model, z0=0.02, sigma_v0=30.0)  # doctest: +SKIP
>>> result = model.fit(group_model.y, params, weights=group_model.w,
...                    idx=np.arange(group_model.n_good), scale_covar=False)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from ..instruments import C_KMS
from .fitcore import FitResult, safe_covariance
from .model import GroupModel

__all__ = ["group_lmfit_model", "fit_group_lmfit"]


def _names(model: GroupModel) -> list[str]:
    return ([f"flux{i}" for i in range(model.n_free)] + [f"c{j}" for j in range(model.n_cont)]
            + [f"absflux{j}" for j in range(model.n_abs)])


def group_lmfit_model(model: GroupModel, z0: float, sigma_v0: float, free: bool = True,
                      theta0: np.ndarray | None = None):
    """Build the :class:`lmfit.Model` and its :class:`lmfit.Parameters` for a group.

    Parameters
    ----------
    model : GroupModel
    z0, sigma_v0 : float
        Starting (or, with ``free=False``, fixed) kinematics.
    free : bool
        Vary ``z`` and ``sigma_v``.
    theta0 : ndarray, optional
        Starting linear parameters (default: the linear solution at ``z0, sigma_v0``).

    Returns
    -------
    lmfit.Model, lmfit.Parameters
        The model's independent variable is ``idx`` (indices of the good pixels).
    """
    import lmfit

    names = _names(model)

    def func(idx, z, sigma_v, **kw):
        theta = np.array([kw[n] for n in names])
        return model.design(z, sigma_v) @ theta

    # lmfit inspects the signature: build one with explicit keyword parameters
    src = ("def _f(idx, z, sigma_v, " + ", ".join(f"{n}=0.0" for n in names) + "):\n"
           "    return func(idx, z, sigma_v, " + ", ".join(f"{n}={n}" for n in names) + ")\n")
    ns: dict = {"func": func}
    exec(src, ns)  # noqa: S102 - generated from internal parameter names only
    lm = lmfit.Model(ns["_f"], independent_vars=["idx"], name="xmpspec_group")
    if theta0 is None:
        from .fitcore import fit_linear
        lin = fit_linear(model, z0, sigma_v0)
        theta0 = lin.theta
    params = lm.make_params()
    params["z"].set(value=z0, vary=free)
    params["sigma_v"].set(value=sigma_v0, vary=free)
    for n, v in zip(names, theta0, strict=True):
        params[n].set(value=float(v), vary=True)
    return lm, params


def fit_group_lmfit(model: GroupModel, z0: float, sigma_v0: float, free: bool = True,
                    max_shift_kms: float = 1000.0, max_sigma_kms: float = 1000.0) -> FitResult:
    """Fit a group with lmfit (leastsq) and return a :class:`FitResult`.

    The covariance is lmfit's (numerical Jacobian, ``scale_covar=False``: not
    rescaled by the reduced chi-square), returned in the fast core's
    ``[z, t = sigma_v**2, theta]`` parametrisation.
    """
    lm, params = group_lmfit_model(model, z0, sigma_v0, free=free)
    idx = np.arange(model.n_good)
    res = lm.fit(model.y, params, idx=idx, weights=model.w, scale_covar=False,
                 method="leastsq", fit_kws={"xtol": 1e-12, "ftol": 1e-12})
    names = _names(model)
    theta = np.array([res.params[n].value for n in names])
    z, sv = res.params["z"].value, abs(res.params["sigma_v"].value)
    chi2 = float(res.chisqr)
    ok = bool(res.success)
    msg = "" if ok else str(res.message)
    if free:
        order = ["z", "sigma_v"] + names
        if res.covar is not None and list(res.var_names) == order and sv > 1e-3:
            # lmfit's own covariance (numerical Jacobian), moved to [z, t, theta]
            D = np.eye(len(order))
            D[1, 1] = 2.0 * sv
            cov = D @ np.asarray(res.covar) @ D
        else:
            # at the instrumental floor: analytic Jacobian in the [z, t, theta] parametrisation
            B, dBz, dBt = model.design(z, sv, derivs=True)
            J = np.column_stack((dBz @ theta, dBt @ theta, B)) * model.w[:, None]
            cov, _ = safe_covariance(J.T @ J)
        out = FitResult(z, sv, theta, cov, True, chi2, model.n_good - model.n_lin - 2, ok, msg,
                        int(res.nfev))
        shift = abs(z - z0) / (1 + z0) * C_KMS
        if ok and shift > max_shift_kms:
            out.success, out.message = False, f"centre moved {shift:.0f} km/s from the start"
        elif ok and sv > max_sigma_kms:
            out.success, out.message = False, f"velocity dispersion {sv:.0f} km/s above the limit"
        out.extra["lmfit_result"] = res
        return out
    if res.covar is not None and list(res.var_names) == names:
        cov = np.asarray(res.covar)
    else:
        Bw = model.design(z, sv) * model.w[:, None]
        cov, _ = safe_covariance(Bw.T @ Bw)
    out = FitResult(z, sv, theta, cov, False, chi2, model.n_good - model.n_lin, ok, msg,
                    int(res.nfev))
    out.extra["lmfit_result"] = res
    return out
