"""Row assembly of one measurement: per-line rows, the per-object row and its ratios.

:func:`_assemble` turns the group fits of :func:`~xmpspec.lines.measure.measure_spectrum`
into a :class:`~xmpspec.lines.results.Measurement`: line fluxes and states,
the N2 gate and posterior, the integrated Halpha+[NII] fluxes, O3 and O3N2
(rules of :mod:`xmpspec.lines.ratios`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..instruments import C_KMS
from .integrated import integrate_halpha_nii
from .model import GAUSS_FWHM
from .posterior import n2_from_samples, n2_posterior
from .ratios import RATIOS, difference_one, ratio_one, snr_label
from .results import LINE_KEYS, GroupFit, Measurement


# --------------------------------------------------------------------------- assembly
def _line_values(gf: GroupFit, mcmc: bool) -> dict[str, dict]:
    """Flux, error, limit for every line of a fitted group (Gaussian)."""
    fit, model = gf.fit, gf.model
    nfree = len(gf.free_keys)
    T = model.tie_matrix
    covth = fit.theta_cov[:nfree, :nfree]
    F = T @ fit.theta[:nfree]
    C = T @ covth @ T.T
    out = {}
    post = gf.mcmc if (mcmc and gf.mcmc is not None and gf.mcmc.get("ok")) else None
    for i, key in enumerate(gf.keys):
        d = {"flux": float(F[i]), "err": float(np.sqrt(max(C[i, i], 0.0))), "index": i}
        if post is not None:
            samp = post["line_flux"][:, i]
            p16, p50, p84, pul = np.percentile(samp, [16, 50, 84, post["upper_percentile"]])
            d.update(flux=float(p50), err=float(0.5 * (p84 - p16)), err_lo=float(p50 - p16),
                     err_hi=float(p84 - p50), mcmc_limit=float(pul))
        out[key] = d
    return out, F, C


def _assemble(name, src, spec, lines, gfits, z_fit, z_err, z_source, mcfg, notes, lunit,
              res_origin, setup_obj, mcmc, extra) -> Measurement:
    gate = float(mcfg["significance_gate"])
    ulsig = float(mcfg["upper_limit_sigma"])
    rows: dict[str, dict] = {}
    covmaps: dict[str, tuple] = {}
    for ln in lines:
        rows[ln.key] = dict(object=name, line=ln.key, label=ln.label, group=ln.group,
                            rest_wave=ln.rest, obs_wave=None, obs_wave_err=None, flux=None,
                            flux_err=None, flux_limit=None, method=None, snr=None,
                            state="not_covered" if not ln.covered else "failed",
                            gauss_flux=None, gauss_flux_err=None, ew=None, ew_err=None,
                            fwhm=None, fwhm_intrinsic=None, kinematics=None,
                            note=ln.reason if not ln.covered else "")
    for g, gf in gfits.items():
        if not gf.ok:
            reason = gf.message or (gf.fit.message if gf.fit is not None else "not fitted")
            for key in gf.keys:
                rows[key]["state"] = "failed"
                rows[key]["note"] = f"fit failed: {reason}"
            continue
        vals, F, C = _line_values(gf, mcmc)
        covmaps[g] = (gf, F, C)
        fit, model = gf.fit, gf.model
        sig_obs = model.observed_sigma(fit.z, fit.sigma_v)
        mus = model.rest * (1.0 + fit.z)
        fwhms = (GAUSS_FWHM * sig_obs / mus * C_KMS).tolist()
        # equivalent widths of every line at once: EW = F / C(mu), error from the covariance
        # of the flux and the continuum coefficients (delta method)
        nf, nc = len(gf.free_keys), model.n_cont
        basis = model.continuum_basis_at(mus)                           # (L, nc)
        conts = basis @ fit.theta[nf:nf + nc]
        fluxes = np.array([vals[k]["flux"] for k in gf.keys])
        with np.errstate(divide="ignore", invalid="ignore"):
            grad = np.zeros((len(gf.keys), model.n_lin))
            grad[:, :nf] = model.tie_matrix / conts[:, None]
            grad[:, nf:nf + nc] = -(fluxes / conts**2)[:, None] * basis
            ew_var = np.einsum("ij,jk,ik->i", grad, fit.theta_cov, grad)
        z_err_ok = np.isfinite(fit.z_err)
        for key, d in vals.items():
            i = d["index"]
            r = rows[key]
            mu = mus[i]
            r["obs_wave"] = mu
            r["obs_wave_err"] = model.rest[i] * fit.z_err if z_err_ok else None
            r["gauss_flux"], r["gauss_flux_err"] = d["flux"], d["err"]
            r["flux"], r["flux_err"], r["method"] = d["flux"], d["err"], "gaussian"
            r["snr"] = d["flux"] / d["err"] if d["err"] > 0 else None
            r["fwhm"] = fwhms[i]
            r["fwhm_intrinsic"] = GAUSS_FWHM * fit.sigma_v
            r["kinematics"] = gf.kinematics
            cont = float(conts[i])
            if cont > 0:
                r["ew"] = d["flux"] / cont / (1.0 + fit.z)
                r["ew_err"] = math.sqrt(max(float(ew_var[i]), 0.0)) / (1.0 + fit.z)
            _set_state(r, d, gate, ulsig)
            if gf.fallback:
                r["note"] = _join(r["note"], gf.fallback)
            elif gf.kinematics != "free":
                r["note"] = _join(r["note"], f"kinematics {gf.kinematics}")
        for key, d in gf.dropped.items():
            r = rows[key]
            r.update(obs_wave=d["obs_wave"], flux=d["flux"], flux_err=d["err"],
                     gauss_flux=d["flux"], gauss_flux_err=d["err"], method="gaussian",
                     snr=d["flux"] / d["err"] if d["err"] > 0 else None, fwhm=d["fwhm"],
                     fwhm_intrinsic=GAUSS_FWHM * fit.sigma_v, kinematics=gf.kinematics,
                     state="upper_limit", flux_limit=max(d["flux"], 0.0) + ulsig * d["err"],
                     note=_join(r["note"], d["note"]))
        if model.abs_mode == "fit" and model.n_abs:
            for j, li in enumerate(model.abs_lines):
                a = fit.theta[model.n_free + model.n_cont + j]
                rows[gf.keys[li]]["note"] = _join(rows[gf.keys[li]]["note"],
                                                  f"fitted absorption flux {a:.3g}")

    # ---- [OII] blend and its ratio
    blend = dict(object=name, line="oii_blend", label="[OII]3727+3730", group="oii",
                 rest_wave=0.5 * (rows["oii3727"]["rest_wave"] + rows["oii3730"]["rest_wave"]),
                 obs_wave=None, obs_wave_err=None, flux=None, flux_err=None, flux_limit=None,
                 method=None, snr=None, state="not_covered", gauss_flux=None,
                 gauss_flux_err=None, ew=None, ew_err=None, fwhm=None, fwhm_intrinsic=None,
                 kinematics=None, note="")
    if "oii" in covmaps and {"oii3727", "oii3730"} <= set(covmaps["oii"][0].keys):
        gf, F, C = covmaps["oii"]
        i, j = gf.keys.index("oii3727"), gf.keys.index("oii3730")
        fb = float(F[i] + F[j])
        eb = float(np.sqrt(max(C[i, i] + C[j, j] + 2 * C[i, j], 0.0)))
        d = {"flux": fb, "err": eb}
        if mcmc and gf.mcmc is not None and gf.mcmc.get("ok"):
            s = gf.mcmc["line_flux"][:, i] + gf.mcmc["line_flux"][:, j]
            p16, p50, p84, pul = np.percentile(s, [16, 50, 84, gf.mcmc["upper_percentile"]])
            d = {"flux": float(p50), "err": float(0.5 * (p84 - p16)), "mcmc_limit": float(pul)}
        blend.update(obs_wave=blend["rest_wave"] * (1 + gf.fit.z), flux=d["flux"],
                     flux_err=d["err"], gauss_flux=d["flux"], gauss_flux_err=d["err"],
                     method="gaussian", snr=d["flux"] / d["err"] if d["err"] > 0 else None,
                     kinematics=gf.kinematics)
        _set_state(blend, d, gate, ulsig)
        lo_r, hi_r = (float(v) for v in mcfg["oii_ratio_range"])
        if F[i] > 0 and rows["oii3727"]["state"] == "detected":
            ratio = F[j] / F[i]
            if not lo_r <= ratio <= hi_r:
                msg = (f"[OII]3730/3727 = {ratio:.2f} outside the physical range "
                       f"{lo_r:g}-{hi_r:g} (unresolved doublet?): use oii_blend")
                for k in ("oii3727", "oii3730"):
                    rows[k]["note"] = _join(rows[k]["note"], msg)
                notes.append(msg)
    elif rows["oii3727"]["state"] == "failed" or rows["oii3730"]["state"] == "failed":
        blend["state"] = "failed"
        blend["note"] = rows["oii3727"]["note"] or rows["oii3730"]["note"]
    else:
        blend["note"] = "a line of the doublet is not covered"

    # ---- N2 gate and integrated fluxes
    obj: dict[str, Any] = {}
    n2 = _n2(rows, covmaps, gfits, mcfg, gate, ulsig, mcmc, notes)
    obj.update(n2)

    # ---- O3 and O3N2
    obj.update(_ratio(rows["oiii5008"], rows["hb"], "o3", gate, ulsig))
    obj.update(_o3n2(obj))

    # ---- the object row
    rows["oii_blend"] = blend
    ordered = [rows[k] for k in LINE_KEYS]
    by_key = {r["line"]: r for r in ordered}
    row: dict[str, Any] = {
        "name": name, "source_file": str(spec.meta.get("source_file") or ""),
        "z": z_fit, "z_err": z_err if np.isfinite(z_err) else None, "z_source": z_source,
        "ra": spec.meta.get("ra"), "dec": spec.meta.get("dec"),
        "instrument": (setup_obj.label if setup_obj is not None
                       else str(spec.meta.get("instrument") or "")),
        "setup": setup_obj.name if setup_obj is not None else "",
        "resolution_from": res_origin,
        "uncertainties": "mcmc" if mcmc else "covariance",
    }
    row.update(obj)
    for key in LINE_KEYS:
        r = by_key[key]
        row[f"f_{key}"] = r["flux"]
        row[f"f_{key}_err"] = r["flux_err"]
        row[f"f_{key}_limit"] = r["flux_limit"]
        row[f"{key}_state"] = r["state"]
    if mcmc:
        row["mcmc_max_tau"], row["mcmc_converged"] = _mcmc_summary(gfits)
        if row["mcmc_converged"] is False:
            notes.append("MCMC chains shorter than 50 autocorrelation times")
    from .broad import broad_columns
    row.update(broad_columns(gfits, mcfg))
    from .gatebias import n2_gate_bias  # expected N2 offset of a detection at its significance
    row["n2_gate_bias"] = n2_gate_bias(row.get("significance"), row.get("setup"),
                                       str(row.get("n2_state")))
    row["notes"] = "; ".join(notes)
    if extra:
        for k, v in extra.items():
            if k not in row:
                row[k] = v
    for r in ordered:
        r["object"] = name
    return Measurement(name=name, line_rows=ordered, row=row, groups=list(gfits.values()),
                       notes=notes, line_flux_unit=lunit)


def _mcmc_summary(gfits):
    taus, conv = [], True
    for gf in gfits.values():
        if gf.mcmc is not None and gf.mcmc.get("ok"):
            taus.append(gf.mcmc["tau_max"])
            conv = conv and bool(gf.mcmc["converged"])
    return (float(max(taus)) if taus else None), (conv if taus else None)


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _set_state(r: dict, d: dict, gate: float, ulsig: float) -> None:
    f, e = d["flux"], d["err"]
    snr = f / e if e > 0 else -np.inf
    if snr >= gate:
        r["state"] = "detected"
        r["flux_limit"] = None
    else:
        r["state"] = "upper_limit"
        r["flux_limit"] = d.get("mcmc_limit", max(f, 0.0) + ulsig * e)


def _n2_empty() -> dict:
    out = {"f_ha": None, "f_ha_err": None, "significance": None, "n2": None, "n2_err": None,
           "n2_upper_limit": False, "n2_state": "not_covered", "n2_method": None,
           "n2_gaussian": None, "n2_integrated": None, "n2_label": "",
           "nii6585_snr_reported": None, "n2_flux_weaker_than_gate": None}
    out.update({f"n2_{k}": None for k in ("p16", "p50", "p84", "p977")})
    out["n2_posterior"] = ""
    return out


def _row_ratio(num: dict, den: dict, name: str, gate: float, ulsig: float) -> dict:
    """A ratio of two line rows by the rules of :mod:`xmpspec.lines.ratios` (derive uses them too)."""
    v, e, st, _ = ratio_one(_num(num["flux"]), _num(num["flux_err"]), _num(den["flux"]),
                            _num(den["flux_err"]), gate=gate, k=ulsig, num_state=num["state"],
                            den_state=den["state"], num_limit=_num(num.get("flux_limit")),
                            den_limit=_num(den.get("flux_limit")),
                            lower_limits=RATIOS[name].lower_limits)
    return _ratio_row(name, v, e, st)


def _ratio_row(name: str, v: float, e: float, st: str) -> dict:
    return {name: v if math.isfinite(v) else None, f"{name}_err": e if math.isfinite(e) else None,
            f"{name}_upper_limit": st == "upper_limit", f"{name}_state": st}


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _n2(rows, covmaps, gfits, mcfg, gate, ulsig, mcmc, notes) -> dict:
    """The N2 gate, the reported N2 (value or limit), its labels and its posterior.

    One rule (docs/n2.md): the gate is the amplitude-ratio significance of the
    Gaussian fit; at or above ``significance_gate`` N2 is detected and the
    reported Halpha/[NII]6585 fluxes are the integrated ones (``[measure] n2_flux
    = "integrated"``, default) or the Gaussian ones (``"gaussian"``); below it N2
    is a 2-sigma upper limit from the Gaussian fit. The value and its state then
    come from :func:`xmpspec.lines.ratios.log_ratio` on the reported line rows, as
    ``xmpspec derive`` computes them from a lines table.
    """
    out = _n2_empty()
    ha, nii = rows["ha"], rows["nii6585"]
    if ha["state"] == "not_covered" or nii["state"] == "not_covered":
        if ha["state"] not in ("not_covered", "failed"):
            out["f_ha"], out["f_ha_err"] = ha["flux"], ha["flux_err"]
        return out
    if "halpha" not in covmaps:
        out["n2_state"] = "failed"
        return out
    gf, F, C = covmaps["halpha"]
    i, j = gf.keys.index("ha"), gf.keys.index("nii6585")
    fh, fn = F[i], F[j]
    out["f_ha"], out["f_ha_err"] = ha["flux"], ha["flux_err"]
    post_mcmc = mcmc and gf.mcmc is not None and gf.mcmc.get("ok")
    # posterior of N2 for every object with a Halpha+[NII] fit (lines/posterior.py)
    if post_mcmc:
        s = gf.mcmc["line_flux"]
        post = n2_from_samples(s[:, i], s[:, j])
    else:
        post = n2_posterior(fh, fn, C[np.ix_([i, j], [i, j])])
    out.update(post.columns("n2"))
    out["n2_posterior"] = post["method"]
    if not (fh > 0 and ha["state"] == "detected"):
        out["n2_state"] = "failed"
        nii["note"] = _join(nii["note"], "Halpha not detected: no N2")
        notes.append("Halpha not detected: N2 undefined")
        return out
    # amplitude ratio A(NII)/A(Ha) and its error (delta method on the flux covariance)
    sig = gf.model.observed_sigma(gf.fit.z, gf.fit.sigma_v)
    ra = (fn / fh) * (sig[i] / sig[j])
    var_r = (sig[i] / sig[j]) ** 2 * (C[j, j] / fh**2 + fn**2 * C[i, i] / fh**4
                                       - 2 * fn * C[i, j] / fh**3)
    sig_n2 = ra / math.sqrt(var_r) if var_r > 0 else float("nan")
    if post_mcmc:
        s = gf.mcmc["line_flux"]
        ratio = s[:, j] / s[:, i] * (sig[i] / sig[j])
        p16, p50, p84 = np.percentile(ratio, [16, 50, 84])
        if p84 > p16:
            sig_n2 = float(p50 / (0.5 * (p84 - p16)))
    out["significance"] = sig_n2
    out["n2_label"] = str(snr_label(sig_n2, float(mcfg["good_significance"]), gate)[0])
    out["n2_gaussian"] = math.log10(fn / fh) if fn > 0 else None
    n2_flux = _n2_flux_choice(mcfg)
    if np.isfinite(sig_n2) and sig_n2 >= gate:
        method = "gaussian"
        if n2_flux == "integrated":
            integ = _integrated_n2(gf, F, sig, mcfg, notes)
            if integ is not None and integ.f_ha > 0 and integ.f_nii > 0:
                for r, f, e in ((ha, integ.f_ha, integ.f_ha_err),
                                (nii, integ.f_nii, integ.f_nii_err)):
                    r["flux"], r["flux_err"], r["method"] = f, e, "integrated"
                    r["snr"] = f / e if e > 0 else None
                    if integ.note:
                        r["note"] = _join(r["note"], integ.note)
                out["n2_integrated"] = math.log10(integ.f_nii / integ.f_ha)
                method = "integrated"
            elif integ is not None:
                notes.append("integrated [NII]6585 or Halpha flux not positive; Gaussian N2 used")
        nii["state"] = "detected"
        nii["flux_limit"] = None
        out.update(_row_ratio(nii, ha, "n2", gate, ulsig))
        out["f_ha"], out["f_ha_err"] = ha["flux"], ha["flux_err"]
        out["n2_method"] = method
        if post_mcmc and out["n2_p50"] is not None:
            # --mcmc: N2 and its error are the posterior's (median, half the 16-84 range)
            out["n2"] = out["n2_p50"]
            out["n2_err"] = 0.5 * (out["n2_p84"] - out["n2_p16"])
            out["n2_method"] = "mcmc"
        snr_rep = nii["flux"] / nii["flux_err"] if nii["flux_err"] else None
        out["nii6585_snr_reported"] = snr_rep
        weaker = snr_rep is None or not snr_rep >= gate
        out["n2_flux_weaker_than_gate"] = bool(weaker)
        if weaker:
            msg = (f"reported [NII]6585 flux S/N {snr_rep if snr_rep is not None else float('nan'):.2f}"
                   f" < {gate:g} although the gate significance is {sig_n2:.2f} (docs/n2.md)")
            nii["note"] = _join(nii["note"], msg)
            notes.append(msg)
        return out
    # below the gate: 2-sigma upper limit from the Gaussian fit
    if nii["state"] == "detected":
        nii["note"] = _join(nii["note"], f"N2 significance {sig_n2:.2f} < {gate:g}")
    nii["state"] = "upper_limit"
    lim = nii.get("flux_limit") or (max(fn, 0.0) + ulsig * nii["gauss_flux_err"])
    if mcmc and nii.get("flux_limit") is None:
        lim = max(fn, 0.0) + ulsig * nii["gauss_flux_err"]
    nii["flux_limit"] = lim
    out.update(_row_ratio(nii, ha, "n2", gate, ulsig))
    out["n2_method"] = "gaussian"
    out["nii6585_snr_reported"] = nii["flux"] / nii["flux_err"] if nii["flux_err"] else None
    out["n2_flux_weaker_than_gate"] = False
    return out


def _n2_flux_choice(mcfg: dict) -> str:
    """``[measure] n2_flux``: ``integrated`` or ``gaussian`` (else a ConfigError)."""
    n2_flux = str(mcfg.get("n2_flux", "integrated")).strip().lower()
    if n2_flux not in ("integrated", "gaussian"):
        raise ConfigError(f"[measure] n2_flux must be 'integrated' or 'gaussian', not '{n2_flux}'")
    return n2_flux


def _integrated_n2(gf, F, sig, mcfg, notes):
    """Integrated Halpha and [NII]6585 fluxes (:mod:`xmpspec.lines.integrated`) or None."""
    model, fit = gf.model, gf.fit
    prof = model.line_profiles(fit.z, fit.sigma_v, full=True)
    full_model = model.design(fit.z, fit.sigma_v, full=True, profiles=prof) @ fit.theta
    mu = {k: model.rest[gf.keys.index(k)] * (1 + fit.z) for k in gf.keys}
    sg = {k: sig[gf.keys.index(k)] for k in gf.keys}
    wing = sum(F[gf.keys.index(k)] * prof[gf.keys.index(k)]
               for k in ("ha", "nii6550") if k in gf.keys)
    try:
        return integrate_halpha_nii(model.wave, model.flux, model.error, model.good,
                                    full_model, mu, sg,
                                    float(mcfg["integration_halfwidth_sigma"]),
                                    int(mcfg["integrated_continuum_order"]),
                                    wing_model=wing,
                                    line_models={k: F[gf.keys.index(k)] * prof[gf.keys.index(k)]
                                                 for k in gf.keys})
    except (np.linalg.LinAlgError, ValueError) as exc:
        notes.append(f"integrated fluxes failed ({exc}); Gaussian fluxes used")
        return None


def _ratio(num: dict, den: dict, name: str, gate: float, ulsig: float) -> dict:
    return _row_ratio(num, den, name, gate, ulsig)


def _o3n2(obj: dict) -> dict:
    return _ratio_row("o3n2", *difference_one(_num(obj["o3"]), _num(obj["o3_err"]),
                                              obj["o3_state"], _num(obj["n2"]),
                                              _num(obj["n2_err"]), obj["n2_state"])[:3])
