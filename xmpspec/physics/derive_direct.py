"""The direct-method and internal-dust step of ``xmpspec derive``.

Te([OIII]), ne, O+/H+, O++/H+ and 12+log(O/H) with Monte Carlo errors (one
random stream per object, :func:`~xmpspec.physics.derive_inputs.object_rng`),
iterated with the Balmer decrement (intrinsic ratios from PyNeb at the
measured Te) for E(B-V) (Calzetti 2000).
"""

from __future__ import annotations

from collections.abc import Callable

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, Table

from ..config import Config
from ..errors import ConfigError, InputError
from . import dust, strong_line
from ._columns import (
    DETECTED,
    add_flag,
    column_float,
)
from .derive_inputs import _line_wave, _masked, _str_col, object_rng


# --------------------------------------------------------------------------- direct + dust
def _direct_and_dust(t: Table, fluxes: dict, z: np.ndarray, cfg: Config,
                     mc_draws: int | None, seed: int | None, source: str,
                     progress: Callable | None) -> dict:
    n = len(t)
    gate = float(cfg["measure"]["significance_gate"])
    nd = int(cfg["abundances"]["mc_draws"] if mc_draws is None else mc_draws)
    if nd < 0:
        raise InputError(f"the number of Monte Carlo draws must be >= 0, not {nd}", source)
    base_seed = cfg["abundances"]["mc_seed"] if seed is None else seed
    object_rng(base_seed, "")  # validates the seed before any work
    names = t["name"]

    def det(key):
        if key not in fluxes:
            return np.zeros(n, bool)
        f, fe, st, _ = fluxes[key]
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = np.where(np.isfinite(fe) & (fe > 0), f / fe, np.inf)
        ok = np.isfinite(f) & (f > 0) & (snr >= gate)
        if st is not None:
            ok &= st == DETECTED
        return ok

    cols: dict[str, MaskedColumn] = {}
    hb_ok = det("hb")
    oiii_ok = det("oiii5008") | det("oiii4960")
    o4364_ok = det("oiii4364")
    dens = {"OII": det("oii3727") & det("oii3730"), "SII": det("sii6718") & det("sii6733")}
    oii_ok = (det("oii3727") & det("oii3730")) | det("oii_blend")
    ne_fixed = column_float(t, "ne_fixed", u.cm**-3, source)
    te_possible = o4364_ok & oiii_ok

    grid = None
    if np.any(te_possible) or any(k in fluxes for k in ("hg", "hd")) or "hb" in fluxes:
        from .direct_te import get_grid
        grid = get_grid(cfg)

    dflag = np.full(n, "", dtype=object)
    if "oiii4364" not in fluxes:
        add_flag(dflag, np.ones(n, bool), "no [OIII]4364 measurement: no direct Te")
    else:
        f4364 = fluxes["oiii4364"][0]
        add_flag(dflag, ~o4364_ok & np.isfinite(f4364),
                 "[OIII]4364 not detected: no direct Te")
        add_flag(dflag, ~np.isfinite(f4364), "no [OIII]4364 measurement: no direct Te")
    add_flag(dflag, o4364_ok & ~oiii_ok, "no [OIII]4960/5008 detection")
    add_flag(dflag, te_possible & ~hb_ok, "no Hbeta detection: no ionic abundances")
    add_flag(dflag, te_possible & hb_ok & ~oii_ok, "no [OII]3727,3730: no O+ and no O/H")

    diag_order = [str(d).upper() for d in cfg["abundances"]["density_diagnostics"]]
    for d in diag_order:
        if d not in ("OII", "SII"):
            raise ConfigError(f"abundances.density_diagnostics: unknown '{d}' (valid: OII, SII)")

    # Balmer decrement set-up
    hb_wave = _line_wave("hb", cfg)
    balmer_keys = [k for k in cfg["dust"]["balmer_lines"] if k in fluxes and "hb" in fluxes]
    ratios = {}
    for k in balmer_keys:
        (f, fe, st, fl), (fb, fbe, _, _) = fluxes[k], fluxes["hb"]
        ratios[k] = strong_line.log_ratio(f, fe, fb, fbe, num_state=st,
                                          name=f"{k}/hb", config=cfg, num_limit=fl)
    waves = {k: _line_wave(k, cfg) for k in balmer_keys}
    te_def, ne_def = float(cfg["dust"]["te_default"]), float(cfg["dust"]["ne_default"])
    fallback_ha = float(cfg["dust"]["halpha_hbeta_intrinsic"])

    def intrinsic(te, ne):
        res = {}
        for k in balmer_keys:
            measured_te = np.isfinite(te)
            tt = np.where(measured_te, te, te_def)
            nn = np.where(np.isfinite(ne), ne, ne_def)
            if grid is not None:
                from .direct_te import BALMER_GRID
                val = grid.emissivity(BALMER_GRID[k], tt, nn) / grid.emissivity("H1_4_2", tt, nn)
            else:
                val = np.full(n, np.nan)
            if k == "ha":
                val = np.where(measured_te, val, fallback_ha)
            res[k] = val
        return res

    def compute_ebv(te, ne):
        if not balmer_keys:
            return (np.full(n, np.nan), np.full(n, np.nan), np.full(n, "", dtype=object),
                    np.full(n, "no Hbeta with Halpha/Hgamma/Hdelta", dtype=object), {})
        intr = intrinsic(te, ne)
        e, ee, used, fl = dust.balmer_ebv(ratios, intr, waves, hb_wave, cfg)
        return e, ee, used, fl, intr

    k_lines = {key: dust.calzetti_k(np.array([_line_wave(key, cfg)]) * u.AA, cfg)[0]
               for key in fluxes}
    te = np.full(n, np.nan)
    ne = np.full(n, np.nan)
    res_rows: dict[int, tuple] = {}
    ebv, ebv_err, used, eflag, intr = compute_ebv(te, ne)
    direct_keys = [k for k in ("oiii4364", "oiii4960", "oiii5008", "hb", "oii3727", "oii3730",
                               "oii_blend", "sii6718", "sii6733") if k in fluxes]
    rows = np.flatnonzero(te_possible)

    def run_row(k, n_draws):
        diag = next((d for d in diag_order if dens[d][k]), None)
        nf = ne_fixed[k] if diag is None and np.isfinite(ne_fixed[k]) else None
        vals = {key: float(fluxes[key][0][k]) for key in direct_keys}
        errs = {key: float(fluxes[key][1][k]) for key in direct_keys}
        e0 = ebv[k] if np.isfinite(ebv[k]) else 0.0
        s0 = ebv_err[k] if np.isfinite(ebv[k]) and np.isfinite(ebv_err[k]) else 0.0
        rng = object_rng(base_seed, names[k])  # per object: independent of the other rows

        def dust_factor(m):
            if m == 0:
                e = np.array([e0])
            else:
                e = np.maximum(e0 + s0 * rng.standard_normal(m), 0.0)
            return {key: 10 ** (0.4 * k_lines[key] * e) for key in direct_keys}

        return _direct_mc(vals, errs, n_draws, rng, nf, diag, dust_factor, cfg, grid)

    # iterate Te <-> E(B-V) on the nominal fluxes (no draws), then the final MC run
    if grid is not None and rows.size:
        for _ in range(2):
            for k in rows:
                res, _ = run_row(k, 0)
                te[k], ne[k] = res.te_oiii[0], res.ne[0]
            ebv, ebv_err, used, eflag, intr = compute_ebv(te, ne)
        it = rows if progress is None else progress(rows, "direct Te (Monte Carlo)", len(rows))
        for k in it:
            res_rows[k] = run_row(k, nd)

    names = ("te_oiii", "te_oii", "ne", "oplus", "oplusplus", "oh")
    vals = {nm: np.full(n, np.nan) for nm in names}
    errs = {nm: np.full(n, np.nan) for nm in names}
    ne_src = np.full(n, "", dtype=object)
    for k, (res, err) in res_rows.items():
        for nm in names:
            vals[nm][k] = getattr(res, nm)[0]
            errs[nm][k] = err.get(nm, (np.nan, 1.0))[0]
        ne_src[k] = res.ne_source
        if res.te_clipped[0]:
            add_flag(dflag, np.arange(n) == k, "[OIII] ratio outside the Te grid: Te at grid edge")
        if res.ne_clipped[0]:
            add_flag(dflag, np.arange(n) == k,
                     "density ratio outside the grid: ne at the grid edge (low/high-density limit)")
        frac = err.get("oh", (np.nan, 1.0))[1]
        if frac < 0.9 and nd > 0:
            add_flag(dflag, np.arange(n) == k,
                     f"only {100 * frac:.0f}% of Monte Carlo draws valid")
    if not hb_ok.all():
        for nm in ("oplus", "oplusplus", "oh"):
            vals[nm][~hb_ok] = np.nan
    cols["te_oiii"] = _masked(vals["te_oiii"], unit=u.K, description="Te([OIII]) (PyNeb grid)")
    cols["te_oiii_err"] = _masked(errs["te_oiii"], unit=u.K)
    cols["ne"] = _masked(vals["ne"], unit=u.cm**-3, description="electron density")
    cols["ne_err"] = _masked(np.where(np.isin(ne_src, ("OII", "SII")), errs["ne"], np.nan),
                             unit=u.cm**-3)
    cols["ne_source"] = _str_col(ne_src, "OII / SII diagnostic, fixed (ne_fixed) or default")
    cols["te_oii"] = _masked(vals["te_oii"], unit=u.K, description="Te([OII]) = 0.7 Te([OIII]) "
                                                                   "+ 3000 K (Garnett 1992)")
    cols["te_oii_err"] = _masked(errs["te_oii"], unit=u.K)
    cols["oplus_h"] = _masked(vals["oplus"], description="O+/H+")
    cols["oplus_h_err"] = _masked(errs["oplus"])
    cols["oplusplus_h"] = _masked(vals["oplusplus"], description="O++/H+")
    cols["oplusplus_h_err"] = _masked(errs["oplusplus"])
    cols["oh_direct"] = _masked(vals["oh"], description="12+log(O/H), direct Te method")
    cols["oh_direct_err"] = _masked(np.where(np.isfinite(vals["oh"]), errs["oh"], np.nan))
    cols["direct_flag"] = _str_col(dflag)

    cols["ebv_balmer"] = _masked(ebv, unit=u.mag, description="internal E(B-V), Balmer "
                                                              "decrement, Calzetti 2000")
    cols["ebv_balmer_err"] = _masked(np.where(np.isfinite(ebv), ebv_err, np.nan), unit=u.mag)
    cols["ebv_balmer_lines"] = _str_col(used, "decrements used (X/Hbeta)")
    ha_int = intr.get("ha", np.full(n, np.nan)) if intr else np.full(n, np.nan)
    cols["balmer_ha_hb_intrinsic"] = _masked(np.where(np.isfinite(ebv), ha_int, np.nan),
                                             description="intrinsic Halpha/Hbeta used "
                                                         "(PyNeb at Te, or fallback)")
    cols["ebv_balmer_flag"] = _str_col(eflag)
    return {"columns": cols, "ebv": ebv, "ebv_err": ebv_err}


def _direct_mc(vals, errs, n_draws, rng, ne_fixed, diag, dust_factor, cfg, grid):
    from .direct_te import direct_abundance_mc
    return direct_abundance_mc(vals, errs, n_draws, rng, ne_fixed=ne_fixed, density_diag=diag,
                               dust_factor=dust_factor, config=cfg, grid=grid)
