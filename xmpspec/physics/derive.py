"""Table-level derivation of physical properties (``xmpspec derive``).

:func:`derive_table` takes a per-object table (``xmpspec measure`` output or
a user table; only ``name`` and ``z`` are required) and returns it with the
derived columns appended. Each quantity is computed where its inputs are
present; otherwise its cells are masked and its ``*_flag`` column says what
was missing. Order of the chain:

1. Galactic extinction (CCM89, R_V = 3.1) of every line flux at its observed
   wavelength, when an E(B-V) column is present.
2. N2 and O3 (given columns, else from the observed line fluxes and their
   states by the rules of :mod:`xmpspec.lines.ratios`, as ``xmpspec measure``
   computes them), O3N2; strong-line O/H (Yin 2007 / PP04) with censoring;
   ``oh_n2_p16`` ... from the N2 posterior percentiles when given.
3. Luminosity distance (and the corrected distance when given).
4. Direct method (Te, ne, O+/H+, O++/H+, O/H) when [OIII]4364 is detected,
   iterated with the Balmer decrement (intrinsic ratios from PyNeb at the
   measured Te; 2.86 fallback): E(B-V) Calzetti 2000.
5. L(Halpha) (Galactic, and internal when measured, dust corrected), SFR,
   stellar mass, BPT class, MP/XMP/EMPG flags.

Monte Carlo errors are reproducible per object: each row draws from its own
random stream, seeded from the base seed (``abundances.mc_seed`` or
``seed``) and the row's ``name`` (:func:`object_rng`). A row therefore gets
the same result alone, in any order and in any table or batch chunk.

The inputs (random streams, joins, the lines-table pivot, column builders)
are in :mod:`~xmpspec.physics.derive_inputs` and the direct method with the
Balmer decrement in :mod:`~xmpspec.physics.derive_direct`; their public
names are importable from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, Table

from ..config import Config, get_active_config
from ..errors import ConfigError, InputError
from ..lines import ratios
from ..spectrum import LINE_FLUX_UNIT
from . import bpt, distances, dust, strong_line
from ._columns import (
    DETECTED,
    LOWER,
    MISSING,
    UPPER,
    Measured,
    add_flag,
    column_float,
    column_state,
    flux_column,
    read_measured,
)
from .derive_direct import _direct_and_dust
from .derive_inputs import (
    LINE_KEYS,
    _bool_col,
    _line_wave,
    _masked,
    _str_col,
    merge_by_name,
    object_rng,
    pivot_line_table,
)

__all__ = ["derive_table", "REQUIRED_COLUMNS", "DERIVED_COLUMNS", "merge_by_name",
           "pivot_line_table", "object_rng"]

log = logging.getLogger("xmpspec.physics.derive")

REQUIRED_COLUMNS = ("name", "z")
DERIVED_COLUMNS = (
    "ebv_mw_used", "dl_mpc", "dl_mpc_err", "dl_flag", "dl_used_mpc", "dl_used_mpc_err",
    "dl_source", "l_halpha", "l_halpha_err", "l_halpha_dust", "l_halpha_flag", "sfr", "sfr_err",
    "sfr_flag", "oh_n2", "oh_n2_err", "oh_n2_err_cal", "oh_n2_upper_limit", "oh_n2_flag",
    "oh_pp04_n2", "oh_pp04_n2_err", "oh_pp04_n2_err_cal", "oh_pp04_n2_upper_limit",
    "oh_pp04_n2_flag", "oh_n2_p16", "oh_n2_p50", "oh_n2_p84", "oh_n2_p977", "oh_pp04_n2_p16",
    "oh_pp04_n2_p50", "oh_pp04_n2_p84", "oh_pp04_n2_p977", "oh_pp04_o3n2", "oh_pp04_o3n2_err", "oh_pp04_o3n2_err_cal",
    "oh_pp04_o3n2_upper_limit", "oh_pp04_o3n2_lower_limit", "oh_pp04_o3n2_flag",
    "te_oiii", "te_oiii_err", "ne", "ne_err", "ne_source", "te_oii", "te_oii_err",
    "oplus_h", "oplus_h_err", "oplusplus_h", "oplusplus_h_err", "oh_direct", "oh_direct_err",
    "direct_flag", "ebv_balmer", "ebv_balmer_err", "ebv_balmer_lines", "balmer_ha_hb_intrinsic",
    "ebv_balmer_flag", "log_mstar", "log_mstar_err", "log_mstar_flag", "bpt_class", "bpt_flag",
    "low_z_agn_candidate", "is_mp", "is_xmp", "is_empg", "is_empg_source",
)


def _ratio_or_given(table: Table, name: str, num_key: str, den_key: str,
                    fluxes: dict, cfg: Config, source: str) -> Measured:
    """A log line ratio from its given columns; rows without one from the line fluxes."""
    n = len(table)
    given = read_measured(table, name, source) if name in table.colnames else None
    if num_key in fluxes and den_key in fluxes:
        (nu, nue, nus, nul), (d, de, ds, dl) = fluxes[num_key], fluxes[den_key]
        rdef = ratios.RATIOS.get(name)
        from_flux = strong_line.log_ratio(nu, nue, d, de, num_state=nus, name=name,
                                          config=cfg, num_limit=nul, den_state=ds, den_limit=dl,
                                          lower_limits=rdef.lower_limits if rdef else True)
    else:
        from_flux = None
    if given is None and from_flux is None:
        return Measured(np.full(n, np.nan), np.full(n, np.nan), np.full(n, MISSING),
                        np.full(n, f"missing {name} (and f_{num_key}/f_{den_key})",
                                dtype=object))
    if given is None:
        return from_flux
    if from_flux is None:
        return given
    fill = (given.state == MISSING) & (from_flux.state != MISSING)
    # measure's 'failed' ratio stays failed; only absent values are filled from the fluxes
    fill &= ~np.array([" failed" in str(f) for f in given.flag])
    for attr in ("value", "err", "state", "flag"):
        getattr(given, attr)[fill] = getattr(from_flux, attr)[fill]
    return given


# --------------------------------------------------------------------------- main
def derive_table(table: Table, config: Config | None = None, *,
                 photometry: Table | None = None, distances_table: Table | None = None,
                 ebv_column: str | None = None, mc_draws: int | None = None,
                 n2_calibration: str | None = None, seed: int | None = None,
                 source: str = "input table", progress: Callable | None = None,
                 photometry_source: str = "photometry table",
                 distances_source: str = "distances table") -> Table:
    """Derive physical properties for every row of a per-object table.

    Parameters
    ----------
    table : Table
        Per-object table (column names of DEVELOPERS.md; ``name``, ``z`` required).
    config : Config, optional
        Defaults to the active configuration.
    photometry : Table, optional
        ``name, r, r_err, i, i_err`` (AB mag), joined by name.
    distances_table : Table, optional
        ``name, dl_corr_mpc, dl_corr_mpc_err``, joined by name.
    ebv_column : str, optional
        Column with the Galactic E(B-V) (default ``ebv_mw``; an explicitly
        named column must exist).
    mc_draws : int, optional
        Monte Carlo draws of the direct method (default ``abundances.mc_draws``).
    n2_calibration : str, optional
        ``Y07`` or ``PP04`` for ``oh_n2`` (default ``abundances.n2_calibration``).
    seed : int, optional
        Base random seed (default ``abundances.mc_seed``). Each object draws
        from its own stream seeded from this seed and its ``name``
        (:func:`object_rng`): its results do not depend on the other rows.
    source : str
        Name of the input for messages.
    progress : callable, optional
        Wraps the per-object loop of the direct method (e.g. a progress bar):
        ``progress(iterable, description, total)``.
    photometry_source, distances_source : str
        Names of those tables (files) for messages.

    Returns
    -------
    Table
        Input columns followed by the derived ones (masked where not
        computable, with ``*_flag`` columns explaining why).

    Raises
    ------
    InputError
        Missing required or named columns, unreadable values.
    ConfigError
        Unknown N2 calibration.
    """
    cfg = config or get_active_config()
    missing = [c for c in REQUIRED_COLUMNS if c not in table.colnames]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(map(repr, missing))}; "
                         f"present: {', '.join(table.colnames) or '(none)'}", source)
    calib = strong_line.check_n2_calibration(n2_calibration or cfg["abundances"]["n2_calibration"])
    if ebv_column is not None and ebv_column not in table.colnames and (
            photometry is None or ebv_column not in photometry.colnames):
        raise InputError(f"E(B-V) column '{ebv_column}' not found; present: "
                         f"{', '.join(table.colnames)}", source)
    t = Table(table, masked=True, copy=True)
    overwritten = [c for c in DERIVED_COLUMNS if c in t.colnames]
    if overwritten:
        log.warning("%s: recomputing existing column(s) %s", source, ", ".join(overwritten))
        t.remove_columns(overwritten)
    if photometry is not None:
        t = merge_by_name(t, photometry, photometry_source, "photometry",
                          numeric=("r", "r_err", "i", "i_err"))
    if distances_table is not None:
        t = merge_by_name(t, distances_table, distances_source, "distances",
                          numeric=("dl_corr_mpc", "dl_corr_mpc_err"))
    n = len(t)
    z = column_float(t, "z", source=source)
    if np.any(~np.isfinite(z)):
        bad = [str(t["name"][k]) for k in np.flatnonzero(~np.isfinite(z))]
        log.warning("%s: no redshift for %s", source, ", ".join(bad[:5]))
    z_err = column_float(t, "z_err", source=source)

    # ---- Galactic extinction ------------------------------------------------
    ecol = ebv_column or "ebv_mw"
    ebv_mw = column_float(t, ecol, source=source)
    if ecol in t.colnames and str(cfg["dust"]["ebv_input_scale"]).upper() == "SFD":
        ebv_mw = ebv_mw * float(cfg["dust"]["sfd_to_sf11"])
    elif str(cfg["dust"]["ebv_input_scale"]).upper() not in ("SF11", "SFD"):
        raise ConfigError(f"dust.ebv_input_scale must be SF11 or SFD, not "
                          f"'{cfg['dust']['ebv_input_scale']}'")
    have_mw = np.isfinite(ebv_mw)
    ebv_mw0 = np.where(have_mw, ebv_mw, 0.0)
    ebv_mw_err = column_float(t, ecol + "_err", source=source)
    if ecol in t.colnames and str(cfg["dust"]["ebv_input_scale"]).upper() == "SFD":
        ebv_mw_err = ebv_mw_err * float(cfg["dust"]["sfd_to_sf11"])

    fluxes: dict[str, tuple] = {}
    observed: dict[str, tuple] = {}
    for key in LINE_KEYS:
        col = f"f_{key}"
        if col not in t.colnames:
            continue
        f = flux_column(t, col, source)
        fe = flux_column(t, col + "_err", source)
        st = column_state(t, f"{key}_state")
        wave_obs = _line_wave(key, cfg) * (1 + np.where(np.isfinite(z), z, 0.0)) * u.AA
        fac = dust.mw_correction_factor(wave_obs, ebv_mw0, cfg)
        lim = flux_column(t, col + "_limit", source)
        fluxes[key] = (f * fac, fe * fac, st, lim * fac)
        observed[key] = (f, fe, st, lim)

    # ---- strong-line indices and abundances -----------------------------------
    # N2 and O3 from the observed fluxes, as xmpspec measure computes them (it knows no
    # E(B-V)): a lines table and an objects table give the same indices (the Galactic
    # extinction across a line pair changes them by < 0.01 dex for E(B-V) < 0.2)
    n2 = _ratio_or_given(t, "n2", "nii6585", "ha", observed, cfg, source)
    o3 = _ratio_or_given(t, "o3", "oiii5008", "hb", observed, cfg, source)
    out: dict[str, MaskedColumn] = {}
    out["ebv_mw_used"] = _masked(ebv_mw, unit=u.mag,
                                 description=f"Galactic E(B-V) (SF11 scale) used, "
                                             f"{cfg['dust']['mw_curve']} R_V="
                                             f"{cfg['dust']['rv_mw']}")

    oh, cal = strong_line.oh_n2(n2, calib, cfg)
    _put_limit_quantity(out, "oh_n2", oh, cal,
                        f"12+log(O/H) from N2 ({strong_line.N2_CALIBRATIONS[calib][3]})")
    # asymmetric intervals: the N2 posterior percentiles of xmpspec measure (n2_p16 ...)
    n2_pct = {k: column_float(t, f"n2_{k}", source=source) for k in ("p16", "p50", "p84", "p977")}
    for col, cal_name in (("oh_n2", calib), ("oh_pp04_n2", "PP04")):
        for k, v in strong_line.n2_percentiles_to_oh(n2_pct, cal_name, cfg).items():
            out[f"{col}_{k}"] = _masked(v, description=f"12+log(O/H) from the N2 posterior {k} "
                                                        f"({cal_name}; calibration scatter not "
                                                        "included)")
    oh_pp, cal_pp = strong_line.oh_n2(n2, "PP04", cfg)
    _put_limit_quantity(out, "oh_pp04_n2", oh_pp, cal_pp, "12+log(O/H), PP04 N2")
    o3n2 = strong_line.o3n2_index(o3, n2)
    oh_o3n2, cal_o3n2 = strong_line.oh_pp04_o3n2(o3n2, cfg)
    _put_limit_quantity(out, "oh_pp04_o3n2", oh_o3n2, cal_o3n2, "12+log(O/H), PP04 O3N2",
                        lower=True)

    # ---- distances ----------------------------------------------------------------
    dl, dl_err = distances.luminosity_distance(z, z_err, cfg)
    dlf = np.full(n, "", dtype=object)
    add_flag(dlf, ~np.isfinite(z), "missing z")
    add_flag(dlf, np.isfinite(z) & (z <= 0), "z <= 0: no Hubble-flow distance")
    add_flag(dlf, np.isfinite(z) & (z > 0) & ~np.isfinite(z_err),
             "no z_err: error from cosmology and peculiar velocities only")
    out["dl_mpc"] = _masked(dl.value, unit=u.Mpc, description="luminosity distance from z")
    out["dl_mpc_err"] = _masked(dl_err.value, unit=u.Mpc,
                                description="error of dl_mpc (z_err, peculiar velocity, H0, Om0)")
    out["dl_flag"] = _str_col(dlf)
    dcorr = column_float(t, "dl_corr_mpc", u.Mpc, source)
    dcorr_err = column_float(t, "dl_corr_mpc_err", u.Mpc, source)
    use_corr = np.isfinite(dcorr) & (dcorr > 0)
    h_frac = float(cfg["cosmology"]["H0_err"]) / float(cfg["cosmology"]["H0"])
    dused = np.where(use_corr, dcorr, dl.value)
    dused_err = np.where(use_corr, np.hypot(np.where(np.isfinite(dcorr_err), dcorr_err, 0.0),
                                            dcorr * h_frac), dl_err.value)
    out["dl_used_mpc"] = _masked(dused, unit=u.Mpc,
                                 description="distance used for luminosities")
    out["dl_used_mpc_err"] = _masked(dused_err, unit=u.Mpc,
                                     description="error of dl_used_mpc (given error + H0)")
    out["dl_source"] = _str_col(np.where(use_corr, "corrected",
                                         np.where(np.isfinite(dl.value), "redshift", "")))

    # ---- direct method + Balmer decrement ----------------------------------------------
    direct = _direct_and_dust(t, fluxes, z, cfg, mc_draws, seed, source, progress)
    out.update(direct["columns"])
    ebv_b, ebv_b_err = direct["ebv"], direct["ebv_err"]

    # ---- L(Halpha), SFR ------------------------------------------------------------
    fha_col = "f_ha"
    if "ha" in fluxes:
        fha, fha_err, _, _ = fluxes["ha"]
    else:
        fha = np.full(n, np.nan)
        fha_err = np.full(n, np.nan)
    int_ok = np.isfinite(ebv_b) & bool(cfg["dust"]["correct_luminosity_internal"])
    k_ha = dust.calzetti_k(np.array([_line_wave("ha", cfg)]) * u.AA, cfg)[0]
    fac_int = np.where(int_ok, 10 ** (0.4 * k_ha * np.where(int_ok, ebv_b, 0.0)), 1.0)
    rel_int = np.where(int_ok & np.isfinite(ebv_b_err), 0.4 * np.log(10) * k_ha * ebv_b_err, 0.0)
    # Galactic E(B-V) error (column <ebv>_err), at the observed Halpha wavelength
    a_ha1 = dust.mw_a_lambda(_line_wave("ha", cfg) * (1 + np.where(np.isfinite(z), z, 0.0))
                             * u.AA, 1.0, cfg)
    rel_mw = np.where(have_mw & np.isfinite(ebv_mw_err), 0.4 * np.log(10) * a_ha1 * ebv_mw_err,
                      0.0)
    rel_int = np.hypot(rel_int, rel_mw)
    fcorr = fha * fac_int
    fcorr_err = np.hypot(np.where(np.isfinite(fha_err), fha_err, 0.0) * fac_int,
                         np.abs(fcorr) * rel_int)
    fcorr_err = np.where(np.isfinite(fha_err) | int_ok, fcorr_err, np.nan)
    lum, lum_err = distances.halpha_luminosity(fcorr * LINE_FLUX_UNIT, fcorr_err * LINE_FLUX_UNIT,
                                               dused * u.Mpc, dused_err * u.Mpc)
    lf = np.full(n, "", dtype=object)
    ha_state = fluxes["ha"][2] if "ha" in fluxes else None
    if ha_state is not None:
        not_det = np.isfinite(fha) & (ha_state != DETECTED)
        add_flag(lf, not_det, "Halpha not detected")
        fha = np.where(not_det, np.nan, fha)
    else:
        not_det = np.zeros(n, bool)
    add_flag(lf, ~np.isfinite(fha) & ~not_det, f"missing {fha_col}")
    add_flag(lf, np.isfinite(fha) & (fha <= 0), f"{fha_col} <= 0")
    add_flag(lf, ~np.isfinite(dused), "no distance")
    lok = np.isfinite(fha) & (fha > 0) & np.isfinite(dused)
    lum_v = np.where(lok, lum.value, np.nan)
    out["l_halpha"] = _masked(lum_v, unit=u.erg / u.s,
                              description="Halpha luminosity 4 pi D^2 F (dust corrected as "
                                          "l_halpha_dust says)")
    out["l_halpha_err"] = _masked(np.where(lok, lum_err.value, np.nan), unit=u.erg / u.s)
    out["l_halpha_dust"] = _str_col(np.where(
        have_mw & int_ok, "mw+balmer", np.where(have_mw, "mw", np.where(int_ok, "balmer",
                                                                         "none"))),
        description="dust corrections applied to L(Halpha): mw (CCM89), balmer (C00)")
    out["l_halpha_flag"] = _str_col(lf)
    sfr, sfr_err = distances.sfr_kennicutt98(lum_v * u.erg / u.s,
                                             np.where(lok, lum_err.value, np.nan) * u.erg / u.s,
                                             cfg)
    out["sfr"] = _masked(sfr.value, unit=u.Msun / u.yr,
                         description="SFR Kennicutt 1998 / 1.8 (Chabrier IMF)")
    out["sfr_err"] = _masked(sfr_err.value, unit=u.Msun / u.yr)
    out["sfr_flag"] = _str_col(lf)

    # ---- stellar mass ----------------------------------------------------------------
    r, r_err = column_float(t, "r", source=source), column_float(t, "r_err", source=source)
    i, i_err = column_float(t, "i", source=source), column_float(t, "i_err", source=source)
    if bool(cfg["mass"]["mw_correct_photometry"]):
        mw_r = dust.mw_a_lambda(np.full(n, float(cfg["mass"]["r_wave"])) * u.AA, ebv_mw0, cfg)
        mw_i = dust.mw_a_lambda(np.full(n, float(cfg["mass"]["i_wave"])) * u.AA, ebv_mw0, cfg)
        r, i = r - mw_r, i - mw_i
    logm, logm_err = distances.stellar_mass_bell03(r, r_err, i, i_err, dused * u.Mpc,
                                                   dused_err * u.Mpc, cfg)
    mf = np.full(n, "", dtype=object)
    add_flag(mf, ~np.isfinite(r), "missing r")
    add_flag(mf, ~np.isfinite(i), "missing i")
    add_flag(mf, ~np.isfinite(dused), "no distance")
    mok = np.isfinite(logm)
    out["log_mstar"] = _masked(np.where(mok, logm, np.nan),
                               description="log10(M*/Msun), Bell et al. 2003 i band, Chabrier")
    out["log_mstar_err"] = _masked(np.where(mok, logm_err, np.nan))
    out["log_mstar_flag"] = _str_col(mf)

    # ---- BPT and classes ---------------------------------------------------------
    cls, bflag = bpt.bpt_classify(n2, o3, cfg)
    out["bpt_class"] = _str_col(cls, description="star-forming / composite / AGN / "
                                                 "ambiguous-limit")
    out["bpt_flag"] = _str_col(bflag)
    agn = bpt.low_z_agn_candidate(n2, o3, cfg)
    out["low_z_agn_candidate"] = _bool_col(agn.filled(False), agn.mask,
                                           "XMP well below the Kewley+13 SF sequence")
    for name, key in (("is_mp", "mp_n2"), ("is_xmp", "xmp_n2")):
        thr = float(cfg["classes"][key])
        val, msk = _threshold_class(n2, thr)
        out[name] = _bool_col(val, msk, f"N2 <= {thr}")
    emp, emp_mask, emp_src = _empg(out, oh, cfg)
    out["is_empg"] = _bool_col(emp, emp_mask, f"12+log(O/H) < {cfg['abundances']['empg_oh']}")
    out["is_empg_source"] = _str_col(emp_src)

    for name in DERIVED_COLUMNS:
        t[name] = out[name]
    # indices computed from line fluxes (absent from the input) are added too
    for name, m in (("n2", n2), ("o3", o3)):
        if name not in t.colnames:
            ok = m.state != MISSING
            t[name] = _masked(np.where(ok, m.value, np.nan),
                              description=f"{name.upper()} from the line fluxes "
                                          "(value is the limit where censored)")
            t[name + "_err"] = _masked(np.where(ok, m.err, np.nan))
            # the state vocabulary of xmpspec measure (not_covered / failed, not 'missing')
            full = getattr(m, "full_state", None)
            t[name + "_upper_limit"] = _bool_col(m.state == UPPER, np.zeros(n, bool))
            t[name + "_state"] = _str_col(np.where(ok, m.state,
                                                   full if full is not None else "missing"))
    t.meta["oh_n2_calibration"] = calib
    t.meta["oh_n2_calibration_ref"] = strong_line.N2_CALIBRATIONS[calib][3]
    return t


def _put_limit_quantity(out: dict, name: str, m: Measured, cal: np.ndarray, desc: str,
                        lower: bool = False) -> None:
    ok = m.state != MISSING
    out[name] = _masked(np.where(ok, m.value, np.nan),
                        description=desc + " (value is the limit where censored)")
    out[name + "_err"] = _masked(np.where(ok, m.err, np.nan),
                                 description="statistical error (detections)")
    out[name + "_err_cal"] = _masked(cal, description="calibration scatter (dex)")
    out[name + "_upper_limit"] = _bool_col(m.state == UPPER, ~ok)
    if lower:
        out[name + "_lower_limit"] = _bool_col(m.state == LOWER, ~ok)
    out[name + "_flag"] = _str_col(m.flag)


def _threshold_class(x: Measured, thr: float) -> tuple[np.ndarray, np.ndarray]:
    """x <= thr: decided for detections; for upper limits only when the limit is below thr."""
    val = np.isfinite(x.value) & (x.value <= thr)
    decided = (x.state == DETECTED) | ((x.state == UPPER) & val) | ((x.state == LOWER) & ~val)
    return val & decided, ~decided


def _empg(out: dict, oh_n2: Measured, cfg: Config):
    thr = float(cfg["abundances"]["empg_oh"])
    n = len(oh_n2)
    val = np.zeros(n, bool)
    mask = np.ones(n, bool)
    src = np.full(n, "", dtype=object)
    for choice in reversed([str(s).lower() for s in cfg["abundances"]["empg_oh_source"]]):
        if choice == "direct":
            col = out["oh_direct"]
            have = ~np.ma.getmaskarray(col)
            v = np.ma.getdata(col) < thr
            val = np.where(have, v, val)
            mask = np.where(have, False, mask)
            src = np.where(have, "direct", src)
        elif choice == "n2":
            dec = (oh_n2.state == DETECTED) | ((oh_n2.state == UPPER) & (oh_n2.value < thr))
            v = oh_n2.value < thr
            val = np.where(dec, v, val)
            mask = np.where(dec, False, mask)
            src = np.where(dec, "n2", src)
            src = np.where(dec & (oh_n2.state == UPPER), "n2_upper_limit", src)
        else:
            raise ConfigError(f"abundances.empg_oh_source: unknown source '{choice}' "
                              "(valid: direct, n2)")
    return val, mask, src
