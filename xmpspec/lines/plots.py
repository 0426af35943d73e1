"""Figures of line fits: data, error, model and residuals around each group."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .measure import Measurement

__all__ = ["plot_measurement", "measurement_figure", "plot_corner", "flux_unit_label", "line_label", "label_levels"]

_GREEK = {"Halpha": r"H$\alpha$", "Hbeta": r"H$\beta$", "Hgamma": r"H$\gamma$",
          "Hdelta": r"H$\delta$", "Hepsilon": r"H$\epsilon$"}


def flux_unit_label(unit) -> str:
    r"""A flux unit as matplotlib mathtext: ``10$^{-17}$ erg s$^{-1}$ cm$^{-2}$ $\\AA^{-1}$``.

    The scale is a power of ten written ``10^n`` (never ``1x10^n``); unit
    names are those of astropy (Angstrom as the symbol, solar masses as M_sun).

    >>> flux_unit_label("1e-17 erg / (s cm2 Angstrom)")
    '$10^{-17}$ erg s$^{-1}$ cm$^{-2}$ $\\mathrm{\\AA}^{-1}$'
    """
    import math

    import astropy.units as u
    if unit is None:
        return ""
    unit = u.Unit(unit)
    scale = float(unit.scale) if hasattr(unit, "scale") else 1.0
    base = u.Unit(unit / scale) if scale != 1.0 else unit
    parts = []
    if scale != 1.0:
        lg = math.log10(abs(scale))
        if abs(lg - round(lg)) < 1e-9:
            parts.append(f"$10^{{{int(round(lg))}}}$")
        else:
            parts.append(f"{scale:g}")
    bases = getattr(base, "bases", [base])
    powers = getattr(base, "powers", [1])
    order = sorted(range(len(bases)),
                   key=lambda i: (powers[i] < 0, bases[i].to_string() == "Angstrom", i))
    for i in order:
        b, p = bases[i], powers[i]
        name = b.to_string()
        sym = {"Angstrom": r"\mathrm{\AA}", "solMass": r"M_\odot"}.get(name)
        if sym is not None:
            parts.append(f"${sym}$" if p == 1 else f"${sym}^{{{p:g}}}$")
        else:
            parts.append(name if p == 1 else f"{name}$^{{{p:g}}}$")
    return " ".join(parts)


def line_label(label: str) -> str:
    r"""Public line name for figures: ``Halpha`` -> H$\\alpha$, ``[OIII]4364`` unchanged."""
    return _GREEK.get(str(label), str(label))


def label_levels(positions, widths) -> list[int]:
    """Stack labels in levels so that none overlaps another of the same level.

    Parameters
    ----------
    positions : sequence of float
        Centres of the labels (data units along x).
    widths : sequence of float
        Widths of the labels in the same units.

    Returns
    -------
    list of int
        Level (0 = lowest) of each label, greedy from the left.

    >>> label_levels([0.0, 0.5, 3.0], [1.0, 1.0, 1.0])
    [0, 1, 0]
    """
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    right_edge: list[float] = []   # per level: right edge of its last label
    levels = [0] * len(positions)
    for i in order:
        left = positions[i] - 0.5 * widths[i]
        free = [k for k, edge in enumerate(right_edge) if left > edge]
        level = free[0] if free else len(right_edge)
        if not free:
            right_edge.append(-np.inf)
        right_edge[level] = positions[i] + 0.5 * widths[i]
        levels[i] = level
    return levels


def plot_measurement(meas: Measurement, path: str | Path, dpi: int = 110) -> Path:
    """One figure per object: a panel per fitted group (data, 1-sigma error band,
    model, continuum, line labels with their states) and the normalised
    residuals below (:func:`measurement_figure`, saved).

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
    import matplotlib.pyplot as plt
    fig = measurement_figure(meas)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def measurement_figure(meas: Measurement):
    """The figure of :func:`plot_measurement` (a matplotlib Figure, Agg backend).

    Panel titles are the public line names ("Hgamma + [OIII]4364"), the
    kinematics in small print at the right; line labels are stacked so that
    none overlaps another; the flux unit is written as mathtext
    (:func:`flux_unit_label`).
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
                             bottom=0.5 / height, top=1.0 - 1.1 / height)
    states = {r["line"]: r for r in meas.line_rows}
    unit = flux_unit_label(meas.flux_unit) if meas.flux_unit is not None else ""
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
        # line labels: two text lines each, stacked in levels so that none collide
        # (widths measured with the renderer, in data units)
        labs, mus, cols = [], [], []
        for i, key in enumerate(gf.keys):
            r = states.get(key, {})
            st = r.get("state", "")
            snr = r.get("snr")
            second = st.replace("_", " ")
            if snr is not None and np.isfinite(snr):
                second += f", S/N {snr:.1f}"
            labs.append(f"{line_label(r.get('label', key))}\n{second}")
            mus.append(m.rest[i] * (1 + fit.z))
            cols.append("C2" if st == "detected" else "C1")
        ax.set_xlim(m.wave[0], m.wave[-1])
        texts = [ax.text(mu, top, lab, fontsize=6, ha="center", va="bottom", linespacing=1.0)
                 for mu, lab in zip(mus, labs, strict=True)]
        renderer = fig.canvas.get_renderer()
        inv = ax.transData.inverted()
        widths, height_px = [], 0.0
        for t in texts:
            bb = t.get_window_extent(renderer)
            (x0, _), (x1, _) = inv.transform([(bb.x0, bb.y0), (bb.x1, bb.y1)])
            widths.append(abs(x1 - x0) * 1.08)
            height_px = max(height_px, bb.height)
        levels = label_levels(mus, widths)
        nlev = max(levels) + 1 if levels else 1
        # vertical step of one level: the label height as a fraction of the axes height
        frac = min(height_px / max(ax.get_window_extent(renderer).height, 1.0) * 1.1, 0.3)
        # ylim so that the data fill the lower part and the levels fit above
        total = 1.0 / max(1.0 - frac * nlev - 0.04, 0.3)
        ylo = bottom - 0.05 * span
        yhi = ylo + (top - ylo) * total
        ax.set_ylim(ylo, yhi)
        step = frac * (yhi - ylo)
        for t, mu, col, lev in zip(texts, mus, cols, levels, strict=True):
            ax.axvline(mu, color=col, lw=0.6, ls=":")
            t.set_y(top + 0.02 * (yhi - ylo) + lev * step)
        names = [line_label(states.get(k, {}).get("label", k)) for k in gf.keys
                 if states.get(k, {}).get("state") != "not_covered"] or \
            [line_label(states.get(k, {}).get("label", k)) for k in gf.keys]
        ax.set_title(" + ".join(names), fontsize=9, loc="left")
        kin = str(gf.kinematics or "")
        kin_text = {"free": "free kinematics"}.get(
            kin, kin.replace("tied:", "kinematics tied to ").replace("halpha", "H$\\alpha$")
            .replace("hbeta", "H$\\beta$").replace("oiii5008", "[OIII]5008"))
        if kin_text:
            ax.set_title(kin_text, fontsize=6, loc="right", color="0.4")
        ax.set_ylabel(f"flux ({unit})" if unit else "flux", fontsize=7)
        ax.tick_params(labelsize=7, labelbottom=False)
        if k == 0:
            handles, hlabels = ax.get_legend_handles_labels()
        res = np.where(good, (m.flux - model) / m.error, np.nan)
        axr.step(m.wave, res, where="mid", color="k", lw=0.7)
        axr.axhline(0, color="C3", lw=0.8)
        axr.set_ylabel("(d-m)/σ", fontsize=7)
        axr.set_xlabel(r"observed wavelength ($\mathrm{\AA}$)", fontsize=7)
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
    else:  # one legend for all panels, below the title (never over data or labels)
        fig.legend(handles, hlabels, loc="upper center", ncol=len(handles), fontsize=7,
                   frameon=False, bbox_to_anchor=(0.5, 1.0 - 0.45 / height))
    return fig


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
