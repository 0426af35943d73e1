"""Optional broad (second) Gaussian component of a line group, as LiMe fits it.

Bright HII galaxies often have faint broad wings under Halpha, Hbeta and
[OIII]5008 (hundreds of km/s). A narrow-only fit then leaves residuals of
tens of sigma and biases the narrow fluxes, the integrated fluxes and N2. Per
group (``[measure] broad_groups``) this module:

1. measures how significant the narrow-only residuals near the lines are
   (``residual_excess``: chi-square excess of the pixels within
   ``broad_region_kms`` of a line, in sigma of its chi-square distribution);
2. in ``"auto"`` mode, only when that excess is above
   ``broad_trigger_sigma`` (so spectra without wings pay nothing but this
   check), fits narrow + broad: each line whose narrow S/N is at least
   ``broad_line_snr`` gets a second Gaussian with its own redshift and
   velocity dispersion shared by the group's broad lines (doublet ratios tied
   as in the narrow model); the linear parameters are solved with the
   kinematics by bounded least squares with the analytic Jacobian of
   :class:`~xmpspec.lines.model.GroupModel`;
3. keeps the broad component when the Bayesian information criterion drops
   by more than ``broad_bic_threshold`` (``BIC = chi2 + k ln n``), the broad
   lines are wider than ``broad_min_width_ratio`` x the narrow ones, and the
   summed broad flux has S/N >= ``broad_min_snr``. ``"always"`` fits it for
   every group of ``broad_groups`` with enough S/N and keeps it whenever the
   fit succeeds.

An accepted broad component is subtracted from the group's data, and the
group's fit becomes the narrow part of the two-component fit (its covariance
the marginal of the full one, so the narrow errors include the broad
degeneracy). Everything downstream (narrow fluxes, integrated fluxes, N2,
MCMC, figures) then sees the narrow lines only; broad fluxes are reported
separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..instruments import C_KMS
from .fitcore import FitResult, safe_covariance
from .model import GroupModel

__all__ = ["BroadFit", "BROAD_MODES", "residual_excess", "fit_broad", "broad_settings"]

BROAD_MODES = ("auto", "off", "always")


@dataclass
class BroadFit:
    """Broad component of one group (fluxes in the group's flux-density x Angstrom units).

    Attributes
    ----------
    group : str
    accepted : bool
        Kept (subtracted from the data, fluxes reported).
    reason : str
        Why it was or was not kept.
    keys : list of str
        Lines with a broad component.
    flux, flux_err : dict
        Broad flux and 1-sigma error per line key.
    z, sigma_v, sigma_v_err : float
        Broad-component redshift and intrinsic dispersion (km/s).
    delta_bic : float
        BIC(narrow) - BIC(narrow + broad) (positive favours the broad component).
    excess_sigma : float
        Significance of the narrow-only residuals that triggered the fit.
    """

    group: str
    accepted: bool
    reason: str
    keys: list[str] = field(default_factory=list)
    flux: dict = field(default_factory=dict)
    flux_err: dict = field(default_factory=dict)
    z: float = float("nan")
    sigma_v: float = float("nan")
    sigma_v_err: float = float("nan")
    delta_bic: float = float("nan")
    excess_sigma: float = float("nan")


def broad_settings(mcfg: dict) -> dict:
    """The ``[measure] broad_*`` settings with their defaults, validated."""
    mode = str(mcfg.get("broad_components", "auto")).lower()
    if mode not in BROAD_MODES:
        from ..errors import ConfigError
        raise ConfigError(f"[measure] broad_components = '{mode}': use one of "
                          f"{', '.join(BROAD_MODES)}")
    return dict(mode=mode,
                groups=[str(g) for g in mcfg.get("broad_groups", ["halpha", "hbeta"])],
                trigger=float(mcfg.get("broad_trigger_sigma", 5.0)),
                region_kms=float(mcfg.get("broad_region_kms", 1500.0)),
                line_snr=float(mcfg.get("broad_line_snr", 10.0)),
                bic=float(mcfg.get("broad_bic_threshold", 10.0)),
                width_ratio=float(mcfg.get("broad_min_width_ratio", 1.5)),
                min_snr=float(mcfg.get("broad_min_snr", 3.0)),
                sigma_start=float(mcfg.get("broad_sigma_start_kms", 300.0)),
                max_sigma=float(mcfg.get("broad_max_sigma_kms", 3000.0)),
                max_shift=float(mcfg.get("broad_max_shift_kms", 500.0)))


def residual_excess(model: GroupModel, fit: FitResult, region_kms: float) -> float:
    """Significance of the narrow-only residuals near the lines.

    ``(chi2 - n) / sqrt(2 n)`` over the ``n`` good pixels within
    ``region_kms`` of a line centre (0 when no pixel qualifies).
    """
    r = fit.extra.get("weighted_residual")   # kept by fitcore.fit_free
    if r is None or r.shape != model.y.shape:
        r = (model.y - model.evaluate(fit.z, fit.sigma_v, fit.theta, full=False)) * model.w
    mu = model.rest * (1.0 + fit.z)
    wave = model.wave[model.good]
    near = (np.abs(wave[:, None] - mu[None, :]) < mu[None, :] * region_kms / C_KMS).any(axis=1)
    n = int(near.sum())
    if n < 3:
        return 0.0
    return float((r[near] @ r[near] - n) / np.sqrt(2.0 * n))


def _broad_lines(model: GroupModel, fit: FitResult, line_snr: float):
    """Free fluxes that get a broad component, and the lines they carry (tie matrix)."""
    nf = model.n_free
    F = fit.theta[:nf]
    err = np.sqrt(np.clip(np.diag(fit.theta_cov)[:nf], 0.0, None))
    chosen = [j for j in range(nf) if err[j] > 0 and F[j] / err[j] >= line_snr]
    if not chosen:
        return [], np.zeros((0, 0)), []
    T = model.tie_matrix[:, chosen]
    rows = [i for i in range(T.shape[0]) if np.any(T[i] != 0)]
    return chosen, T[rows], rows


def fit_broad(group: str, keys: list[str], model: GroupModel, fit: FitResult, settings: dict,
              excess: float = float("nan")) -> tuple[BroadFit, GroupModel | None,
                                                     FitResult | None]:
    """Fit narrow + broad Gaussians to a group and decide whether to keep the broad one.

    Parameters
    ----------
    group : str
        Group name.
    keys : list of str
        Line keys of the group (model order).
    model : GroupModel
        The group model (narrow lines, continuum, absorption).
    fit : FitResult
        The narrow-only fit (free kinematics).
    settings : dict
        :func:`broad_settings`.
    excess : float
        Residual significance of the narrow fit (reported).

    Returns
    -------
    broad : BroadFit
    narrow_model : GroupModel or None
        With an accepted broad component: the group model on the data minus the
        fitted broad lines.
    narrow_fit : FitResult or None
        The narrow part of the two-component fit (marginal covariance).
    """
    chosen, Tb, rows = _broad_lines(model, fit, settings["line_snr"])
    if not chosen:
        return BroadFit(group, False, f"no line with narrow S/N >= {settings['line_snr']:g}",
                        excess_sigma=excess), None, None
    bkeys = [keys[i] for i in rows]
    bm = GroupModel(model.wave, model.flux, model.error, model.good, model.rest[rows], Tb, 0,
                    model.inst_a, model.inst_b, np.zeros(0, int))
    nl, nb = model.n_lin, Tb.shape[1]
    y, w = model.y, model.w

    def split(p):
        return p[0], np.sqrt(max(p[1], 0.0)), p[2], np.sqrt(max(p[3], 0.0)), p[4:4 + nl], p[4 + nl:]

    def resid(p):
        zn, sn, zb, sb, tn, fb = split(p)
        m = model.design(zn, sn) @ tn + bm.line_profiles(zb, sb).T @ (Tb @ fb)
        return (y - m) * w

    def jac(p):
        zn, sn, zb, sb, tn, fb = split(p)
        B, dBz, dBt = model.design(zn, sn, derivs=True)
        pb, dzb, dtb = bm.line_profiles(zb, sb, derivs=True)
        Fb = Tb @ fb
        J = np.empty((y.size, 4 + nl + nb))
        J[:, 0], J[:, 1] = dBz @ tn, dBt @ tn
        J[:, 2], J[:, 3] = Fb @ dzb, Fb @ dtb
        J[:, 4:4 + nl] = B
        J[:, 4 + nl:] = pb.T @ Tb
        return -J * w[:, None]

    # start: narrow as fitted, broad centred on it, sigma_start wide; linear parts solved
    sb0 = max(settings["sigma_start"], 3.0 * fit.sigma_v)
    B0 = np.hstack([model.design(fit.z, fit.sigma_v), bm.line_profiles(fit.z, sb0).T @ Tb])
    lin0 = np.linalg.lstsq(B0 * w[:, None], y * w, rcond=None)[0]
    p0 = np.concatenate(([fit.z, fit.sigma_v**2, fit.z, sb0**2], lin0))
    dz = settings["max_shift"] / C_KMS * (1.0 + fit.z)
    lo = np.full(p0.size, -np.inf)
    hi = np.full(p0.size, np.inf)
    lo[0], hi[0] = fit.z - dz, fit.z + dz
    lo[1], hi[1] = 0.0, settings["max_sigma"] ** 2
    lo[2], hi[2] = fit.z - dz, fit.z + dz
    lo[3], hi[3] = 0.0, settings["max_sigma"] ** 2
    p0[1] = max(p0[1], 1.0)
    p0[:4] = np.clip(p0[:4], lo[:4], hi[:4])
    # imported here: scipy.optimize takes ~0.3 s to import and most spectra never get this far
    from scipy.optimize import least_squares
    try:
        sol = least_squares(resid, p0, jac=jac, bounds=(lo, hi), x_scale="jac", method="trf",
                            max_nfev=200)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return BroadFit(group, False, f"broad fit failed ({exc})", bkeys,
                        excess_sigma=excess), None, None
    p = sol.x
    zn, sn, zb, sb, tn, fb = split(p)
    chi2b = float(2.0 * sol.cost)
    npar_n = 2 + nl
    npar_b = npar_n + 2 + nb
    n = model.n_good
    dbic = float(fit.chi2 - chi2b - (npar_b - npar_n) * np.log(n))
    J = jac(p)
    # columns differ by ~1e10 in scale (z vs t = sigma^2): the inversion is done on the
    # correlation-scaled matrix, so only numerically null columns are dropped
    cov, dropped = safe_covariance(J.T @ J, drop_tol=1e-15)
    Fb = Tb @ fb
    Cb = Tb @ cov[4 + nl:, 4 + nl:] @ Tb.T
    ferr = np.sqrt(np.clip(np.diag(Cb), 0.0, None))
    tot, tot_err = float(fb.sum()), float(np.sqrt(max(np.sum(cov[4 + nl:, 4 + nl:]), 0.0)))
    sig_n = model.observed_sigma(zn, sn)
    sig_b = bm.observed_sigma(zb, sb)
    ratio = float(np.min(sig_b / sig_n[rows]))
    vb = cov[3, 3]
    sb_err = float(np.sqrt(vb) / (2.0 * sb)) if np.isfinite(vb) and vb >= 0 and sb > 0 \
        else float("nan")
    out = BroadFit(group, False, "", bkeys, {k: float(f) for k, f in zip(bkeys, Fb, strict=True)},
                   {k: float(e) for k, e in zip(bkeys, ferr, strict=True)}, float(zb), float(sb),
                   sb_err, dbic, excess)
    if not sol.success or dropped or not np.all(np.isfinite(p)):
        out.reason = "broad fit did not converge" if not sol.success else "degenerate broad fit"
        return out, None, None
    always = settings["mode"] == "always"
    if not always:
        if dbic <= settings["bic"]:
            out.reason = f"delta BIC {dbic:.1f} <= {settings['bic']:g}"
            return out, None, None
        if ratio < settings["width_ratio"]:
            out.reason = (f"second component only {ratio:.2f}x the narrow width "
                          f"(< {settings['width_ratio']:g})")
            return out, None, None
        if not (tot_err > 0 and tot / tot_err >= settings["min_snr"]):
            out.reason = f"broad flux S/N {tot / tot_err if tot_err > 0 else 0:.1f} too low"
            return out, None, None
    out.accepted = True
    out.reason = (f"broad component kept (delta BIC {dbic:.0f}, sigma {sb:.0f} km/s)"
                  if not always else f"broad component fitted (sigma {sb:.0f} km/s)")
    broad_full = bm.line_profiles(zb, sb, full=True).T @ Fb
    nmodel = GroupModel(model.wave, np.asarray(model.flux, float) - broad_full, model.error,
                        model.good, model.rest, model.tie_matrix, model.cont_order,
                        model.inst_a, model.inst_b, model.abs_lines, model.abs_mode,
                        model.abs_ew, model.abs_sigma_kms)
    idx = np.r_[0, 1, 4:4 + nl]
    ncov = cov[np.ix_(idx, idx)]
    nfit = FitResult(float(zn), float(sn), np.asarray(tn, float).copy(), ncov, True, chi2b,
                     n - npar_b, True, "", int(sol.nfev))
    nfit.extra["broad"] = out
    return out, nmodel, nfit


def add_broad_components(gfits: dict, mcfg: dict) -> list[str]:
    """Try a broad component on every eligible group fit; update accepted ones in place.

    Parameters
    ----------
    gfits : dict
        ``group -> GroupFit`` of :func:`xmpspec.lines.measure.measure_spectrum`
        (objects with ``keys``, ``model``, ``fit``, ``kinematics``, ``ok``).
    mcfg : dict
        ``[measure]`` configuration.

    Returns
    -------
    list of str
        Notes for the object (accepted components, failures).
    """
    st = broad_settings(mcfg)
    notes: list[str] = []
    if st["mode"] == "off":
        return notes
    for g in st["groups"]:
        gf = gfits.get(g)
        if gf is None or not gf.ok or gf.kinematics != "free":
            continue
        excess = residual_excess(gf.model, gf.fit, st["region_kms"])
        if st["mode"] == "auto" and excess < st["trigger"]:
            continue
        bf, nmodel, nfit = fit_broad(g, gf.keys, gf.model, gf.fit, st, excess)
        gf.fit.extra["broad"] = bf
        if bf.accepted:
            gf.model, gf.fit = nmodel, nfit
            notes.append(f"{g}: {bf.reason}")
        elif st["mode"] == "always":
            notes.append(f"{g}: no broad component ({bf.reason})")
    return notes


def broad_columns(gfits: dict, mcfg: dict) -> dict:
    """Per-object columns of the broad components (none when ``broad_components = "off"``).

    For every group of ``broad_groups``: ``broad_<group>`` (True when a broad
    component was kept) and, for each of the group's catalogue lines,
    ``f_<key>_broad`` / ``f_<key>_broad_err`` (None where no broad component).
    The set of columns depends only on the configuration, so tables of many
    objects share one schema.
    """
    from .catalog import LINE_DEFS
    st = broad_settings(mcfg)
    out: dict = {}
    if st["mode"] == "off":
        return out
    for g in st["groups"]:
        gf = gfits.get(g)
        bf = gf.fit.extra.get("broad") if gf is not None and gf.fit is not None else None
        ok = bf is not None and bf.accepted
        out[f"broad_{g}"] = bool(ok)
        for d in LINE_DEFS:
            if d[3] != g:
                continue
            key = d[0]
            out[f"f_{key}_broad"] = bf.flux.get(key) if ok else None
            out[f"f_{key}_broad_err"] = bf.flux_err.get(key) if ok else None
    return out
