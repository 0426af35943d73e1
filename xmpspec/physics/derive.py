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
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, Table, join

from ..config import Config, get_active_config
from ..errors import ConfigError, InputError
from ..lines import ratios
from ..lines.catalog import LINE_DEFS
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

__all__ = ["derive_table", "REQUIRED_COLUMNS", "DERIVED_COLUMNS", "merge_by_name",
           "pivot_line_table", "object_rng"]

log = logging.getLogger("xmpspec.physics.derive")

REQUIRED_COLUMNS = ("name", "z")
LINE_KEYS = [d[0] for d in LINE_DEFS] + ["oii_blend"]
_CONFIG_WAVE = {d[0]: d[1] for d in LINE_DEFS}

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


# --------------------------------------------------------------------------- helpers
def object_rng(seed: int, name) -> np.random.Generator:
    """The random generator of one object's Monte Carlo: a function of (seed, name) only.

    The stream is seeded with a SHA-256 hash of the base seed and the object
    name (surrounding spaces ignored), so it does not depend on the other
    rows of a table, their order, or how a batch was chunked; Python's
    ``hash`` is not used (it changes between processes).

    Parameters
    ----------
    seed : int
        Base seed (``abundances.mc_seed``), a non-negative integer.
    name : object
        The object's identity (the ``name`` column).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    InputError
        A negative or non-integer seed.

    Examples
    --------
    >>> a = object_rng(1, "J0811+4730").standard_normal(3)
    >>> b = object_rng(1, " J0811+4730 ").standard_normal(3)
    >>> bool((a == b).all())
    True
    """
    try:
        valid = not isinstance(seed, bool) and float(seed).is_integer() and int(seed) >= 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise InputError(f"the random seed must be a non-negative integer, not {seed!r}")
    key = f"{int(seed)}:{str(name).strip()}".encode()
    entropy = int.from_bytes(hashlib.sha256(key).digest(), "little")
    return np.random.default_rng(np.random.SeedSequence(entropy))


def merge_by_name(table: Table, other: Table, source: str, what: str) -> Table:
    """Left-join ``other`` (which must have ``name``) onto ``table`` by name, keeping order.

    Columns of ``other`` replace same-named columns of ``table`` where
    ``other`` has a value.
    """
    if "name" not in other.colnames:
        raise InputError(f"{what} table has no 'name' column", source)
    names = [str(n).strip() for n in other["name"]]
    counts = Counter(names)
    dup = {n for n, c in counts.items() if c > 1}
    if dup:
        raise InputError(f"{what} table lists names more than once: {', '.join(sorted(dup))}",
                         source)
    other = other.copy()
    other["name"] = names
    base = table.copy()
    base["_row"] = np.arange(len(base))
    base["name"] = [str(n).strip() for n in base["name"]]
    cols = [c for c in other.colnames if c != "name"]
    renamed = {c: f"_{what}_{c}" for c in cols}
    for c, r in renamed.items():
        other.rename_column(c, r)
    # the joined table keeps the main table's metadata (provenance of either side may differ)
    merged = join(base, other, keys="name", join_type="left", metadata_conflicts="silent")
    merged.meta = base.meta
    merged.sort("_row")
    for c, r in renamed.items():
        new = merged[r]
        if c in merged.colnames:
            old = merged[c]
            have = ~np.ma.getmaskarray(new)
            if new.dtype.kind in "US" or old.dtype.kind in "US":
                data = np.array([str(v) for v in np.ma.getdata(old)], dtype=object)
                data[have] = [str(v) for v in np.ma.getdata(new)[have]]
                data = data.astype(str)
            else:
                data = np.ma.getdata(old).astype(np.result_type(old.dtype, new.dtype))
                data[have] = np.ma.getdata(new)[have]
            mask = np.ma.getmaskarray(old) & ~have
            merged[c] = MaskedColumn(data, mask=mask, unit=getattr(new, "unit", None))
        else:
            merged[c] = new
        merged.remove_column(r)
    unmatched = [n for n in table["name"] if str(n).strip() not in counts]
    if unmatched:
        log.warning("%s: no %s row for %d object(s): %s", source, what, len(unmatched),
                    ", ".join(map(str, unmatched[:5])) + (" ..." if len(unmatched) > 5 else ""))
    merged.remove_column("_row")
    return merged


def pivot_line_table(lines: Table, source: str | None = None) -> Table:
    """Per-line table of ``xmpspec measure`` to one row per object.

    Parameters
    ----------
    lines : Table
        One row per (object, line): ``object`` (or ``name``), ``line`` (or
        ``key``), ``flux``, optional ``flux_err``, ``flux_limit``, ``state``,
        ``rest_wave``/``obs_wave``/``obs_wave_err`` and ``z``.
    source : str, optional
        File name for messages.

    Returns
    -------
    Table
        ``name``, ``z`` (given, else the mean of ``obs_wave/rest_wave - 1`` over
        detected lines, weighted by ``obs_wave_err``), ``z_err``, and
        ``f_<key>``, ``f_<key>_err``, ``f_<key>_limit``, ``<key>_state`` per line.
    """
    name_col = "object" if "object" in lines.colnames else "name"
    key_col = "line" if "line" in lines.colnames else "key"
    for c in (name_col, key_col, "flux"):
        if c not in lines.colnames:
            raise InputError(f"per-line table needs column '{c}'", source)
    names = list(dict.fromkeys(str(n) for n in lines[name_col]))
    index = {n: i for i, n in enumerate(names)}
    rows = np.array([index[str(n)] for n in lines[name_col]])
    keys = np.array([str(k) for k in lines[key_col]])
    state = (column_state(lines, "state") if "state" in lines.colnames
             else np.full(len(lines), DETECTED))
    out = Table()
    out["name"] = names
    nobj = len(names)
    for c in ("z", "z_err", "ra", "dec", "instrument", "ebv_mw", "ne_fixed"):
        if c in lines.colnames:
            vals: dict = {}
            for i, v in zip(rows, lines[c], strict=True):
                if i not in vals and v is not np.ma.masked:
                    vals[i] = v
            out[c] = MaskedColumn([vals.get(i, 0) for i in range(nobj)],
                                  mask=[i not in vals for i in range(nobj)])
    if "z" not in out.colnames and {"obs_wave", "rest_wave"} <= set(lines.colnames):
        obs = column_float(lines, "obs_wave", u.AA, source)
        rest = column_float(lines, "rest_wave", u.AA, source)
        oerr = column_float(lines, "obs_wave_err", u.AA, source)
        zl = obs / rest - 1
        zw = np.where(np.isfinite(oerr) & (oerr > 0), (rest / np.where(oerr > 0, oerr, 1)) ** 2,
                      np.nan)
        z = np.full(nobj, np.nan)
        ze = np.full(nobj, np.nan)
        for i in range(nobj):
            sel = (rows == i) & (state == DETECTED) & np.isfinite(zl)
            if not sel.any():
                continue
            w = zw[sel]
            if np.all(np.isfinite(w)):
                z[i] = np.sum(w * zl[sel]) / np.sum(w)
                ze[i] = 1 / np.sqrt(np.sum(w))
            else:
                z[i] = np.mean(zl[sel])
        out["z"] = MaskedColumn(z, mask=~np.isfinite(z))
        out["z_err"] = MaskedColumn(ze, mask=~np.isfinite(ze))
    unit = getattr(lines["flux"], "unit", None)
    for key in dict.fromkeys(keys):
        cols = {"f": np.full(nobj, np.nan), "e": np.full(nobj, np.nan),
                "l": np.full(nobj, np.nan)}
        st = np.full(nobj, MISSING, dtype="U16")
        sel = np.flatnonzero(keys == key)
        for name, col in (("f", "flux"), ("e", "flux_err"), ("l", "flux_limit")):
            if col in lines.colnames:
                cols[name][rows[sel]] = column_float(lines, col, source=source)[sel]
        st[rows[sel]] = state[sel]
        for suffix, name in (("", "f"), ("_err", "e"), ("_limit", "l")):
            out[f"f_{key}{suffix}"] = MaskedColumn(cols[name], mask=~np.isfinite(cols[name]),
                                                   unit=unit)
        out[f"{key}_state"] = st
    return out


def _masked(values, mask=None, unit=None, description=None, dtype=float) -> MaskedColumn:
    values = np.asarray(values)
    if mask is None:
        mask = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(len(values), bool)
    data = np.where(mask, 0, values).astype(dtype) if values.dtype.kind == "f" else values
    return MaskedColumn(data, mask=mask, unit=unit, description=description)


def _str_col(values, description=None) -> MaskedColumn:
    arr = np.array([str(v) for v in values], dtype=str)
    if arr.size and arr.dtype.itemsize == 0:
        arr = arr.astype("U1")
    return MaskedColumn(arr, description=description)


def _bool_col(values, mask, description=None) -> MaskedColumn:
    # fill_value False: FITS has no masked booleans and astropy would write True
    return MaskedColumn(np.asarray(values, bool), mask=np.asarray(mask, bool),
                        description=description, fill_value=False)


def _line_wave(key: str, cfg: Config) -> float:
    lines = cfg["lines"]
    if key == "oii_blend":
        return 0.5 * (float(lines["OII_3727"]) + float(lines["OII_3730"]))
    return float(lines[_CONFIG_WAVE[key]])


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
        t = merge_by_name(t, photometry, photometry_source, "photometry")
    if distances_table is not None:
        t = merge_by_name(t, distances_table, distances_source, "distances")
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

