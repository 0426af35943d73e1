"""Figures of line fits: data, error, model and residuals around each group."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .measure import Measurement

__all__ = ["plot_measurement", "plot_corner"]


def plot_measurement(meas: Measurement, path: str | Path, dpi: int = 110) -> Path:
    """One figure per object: a panel per fitted group (data, 1-sigma error band,
    model, continuum, line labels with their states) and the normalised
    residuals below.

    Parameters
    ----------
    meas : Measurement
    path : path-like
        Output image (PNG/PDF by suffix).
    dpi : int

    Returns
    -------
    pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    groups = [g for g in meas.groups if g.fit is not None and g.fit.success]
    n = max(len(groups), 1)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    height = 3.9 * nrow + 0.8
    fig = plt.figure(figsize=(4.6 * ncol, height))
    outer = fig.add_gridspec(nrow, ncol, hspace=0.45, wspace=0.3, left=0.07, right=0.98,
                             bottom=0.5 / height, top=1.0 - 0.9 / height)
    states = {r["line"]: r for r in meas.line_rows}
    unit = meas.flux_unit.to_string() if meas.flux_unit is not None else ""
    for k, gf in enumerate(groups):
        inner = outer[k // ncol, k % ncol].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.05)
        ax = fig.add_subplot(inner[0])
        axr = fig.add_subplot(inner[1], sharex=ax)
        m, fit = gf.model, gf.fit
        model = m.evaluate(fit.z, fit.sigma_v, fit.theta, full=True)
        cont = m.continuum(fit.z, fit.theta, full=True)
        good = m.good
        ax.fill_between(m.wave, m.flux - m.error, m.flux + m.error, step="mid", color="0.85",
                        lw=0, label="1σ error")
        ax.step(m.wave, np.where(good, m.flux, np.nan), where="mid", color="k", lw=0.8,
                label="data")
        if (~good).any():
            ax.step(m.wave, np.where(good, np.nan, m.flux), where="mid", color="0.6", lw=0.8,
                    label="masked")
        ax.plot(m.wave, model, color="C3", lw=1.2, label="model")
        ax.plot(m.wave, cont, color="C0", lw=0.8, ls="--", label="continuum")
        top = float(np.nanmax(np.where(good, np.maximum(m.flux, model), np.nan)))
        bottom = float(np.nanmin(np.where(good, m.flux - m.error, np.nan)))
        span = max(top - bottom, 1e-30)
        ax.set_ylim(bottom - 0.05 * span, top + 0.55 * span)
        for i, key in enumerate(gf.keys):
            mu = m.rest[i] * (1 + fit.z)
            r = states.get(key, {})
            st = r.get("state", "")
            snr = r.get("snr")
            lab = f"{r.get('label', key)}\n{st.replace('_', ' ')}"
            if snr is not None and np.isfinite(snr):
                lab += f" S/N={snr:.1f}"
            ax.axvline(mu, color="C2" if st == "detected" else "C1", lw=0.6, ls=":")
            ax.text(mu, top + (0.04 + 0.25 * (i % 2)) * span, lab, fontsize=6, ha="center",
                    va="bottom")
        ax.set_title(f"{gf.group} ({gf.kinematics})", fontsize=9)
        ax.set_ylabel(f"flux [{unit}]" if unit else "flux", fontsize=7)
        ax.tick_params(labelsize=7, labelbottom=False)
        if k == 0:
            ax.legend(fontsize=6, loc="upper left")
        res = np.where(good, (m.flux - model) / m.error, np.nan)
        axr.step(m.wave, res, where="mid", color="k", lw=0.7)
        axr.axhline(0, color="C3", lw=0.8)
        axr.set_ylabel("(d-m)/σ", fontsize=7)
        axr.set_xlabel("observed wavelength [Å]", fontsize=7)
        axr.tick_params(labelsize=7)
    row = meas.row
    n2 = row.get("n2")
    n2s = "-" if n2 is None else (f"{'<' if row.get('n2_upper_limit') else ''}{n2:.2f}")
    fig.suptitle(f"{meas.name}  z={row.get('z', float('nan')):.5f}  N2={n2s} "
                 f"({row.get('n2_state')}, significance "
                 f"{row.get('significance') if row.get('significance') is None else round(row['significance'], 1)})",
                 fontsize=10, y=1.0 - 0.25 / height)
    if not groups:
        fig.text(0.5, 0.5, "no group fitted", ha="center")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_corner(meas: Measurement, path: str | Path, group: str | None = None,
                dpi: int = 100) -> Path | None:
    """Corner plot of the MCMC posterior of one group (default: the Halpha group,
    else the first group with a posterior): line fluxes, and redshift and
    intrinsic dispersion when they were sampled.

    Returns
    -------
    pathlib.Path or None
        None when no group carries MCMC samples.
    """
    import corner
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cands = [g for g in meas.groups if g.mcmc is not None and g.mcmc.get("ok")]
    if group is not None:
        cands = [g for g in cands if g.group == group]
    else:
        cands.sort(key=lambda g: g.group != "halpha")
    if not cands:
        return None
    gf = cands[0]
    post = gf.mcmc
    cols, labels = [], []
    for i, key in enumerate(gf.keys):
        if key in gf.free_keys:
            cols.append(post["line_flux"][:, i])
            labels.append(f"F({key})")
    if "z" in post:
        cols += [post["z"], post["sigma_v"]]
        labels += ["z", "sigma_v [km/s]"]
    data = np.column_stack(cols)
    fig = corner.corner(data, labels=labels, quantiles=[0.16, 0.5, 0.84], show_titles=True,
                        title_fmt=".3g", title_kwargs={"fontsize": 8},
                        label_kwargs={"fontsize": 8})
    fig.suptitle(f"{meas.name}: {gf.group} posterior (tau_max={post['tau_max']:.1f}, "
                 f"{'converged' if post['converged'] else 'NOT converged'})", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
