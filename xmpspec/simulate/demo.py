"""A small simulated follow-up night for ``xmpspec demo``.

:func:`simulate_demo_night` writes what an observer has after a night of
CNN-selected XMP candidates: reduced, flux-calibrated spectra of about eight
targets on one or two set-ups (INT/IDS R632V and SOAR/Goodman 400 by default,
three exposures each, cosmic rays masked), the selection catalogue of the CNN
stage (more candidates than were observed), the targets table of the night,
and the truth catalogue of the simulation.

The CNN catalogue mimics the selection of science.md: observed targets have
P_MP > 0.99, P_XMP > 0.99 and N2_CNN < -1.8; their true N2 scatters around the
prediction by ``cnn_scatter`` dex (the published follow-up finds ~0.2 dex),
while N2_CNN_err is the (smaller) spread of the 9 models. Halpha fluxes span
the published range (1.3e-15 to 4e-15 erg/s/cm2), so the faint, most
metal-poor targets end as [NII] upper limits and the bright ones as detections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..config import Config, get_active_config
from ..errors import InputError
from ..provenance import provenance_lines, provenance_record
from ..tableio import write_table
from .spectra import _random_position, coordinate_name, simulate_spectrum
from .truth import targets_table, truth_table, write_spectrum_file

__all__ = ["DemoNight", "DemoRun", "simulate_demo_night", "run_demo", "recovery_table",
           "recovery_summary", "DEMO_SETUPS", "RECOVERY_LINES"]

#: (set-up, exposure time per exposure in s, number of exposures)
DEMO_SETUPS = {"int_ids_r632v": (1200.0, 3), "goodman_400": (800.0, 3)}
#: first night of each set-up's run (targets are spread over the following nights)
DEMO_RUN_START = {"int_ids_r632v": "2024-03-03", "goodman_400": "2023-10-06"}


@dataclass
class DemoNight:
    """Products of :func:`simulate_demo_night`.

    Attributes
    ----------
    outdir : Path
        Folder of the night.
    spectra : list of Path
        One reduced spectrum per target (``spectra/<name>.fits``).
    truth : Path
        Truth catalogue (``truth.ecsv``; also ``truth.fits``).
    targets : Path
        Targets table of the night (``targets.ecsv``).
    selection : Path
        CNN selection catalogue (``selection.ecsv``).
    observing_log : Path
        Observing log (``observing_log.ecsv``: name, ra, dec, n2_cnn,
        n2_cnn_err, instrument, obsdate, exptime_s, nexp), the columns of the
        published follow-up log.
    photometry : Path
        SDSS-like r, i AB magnitudes (``photometry.ecsv``: name, r, r_err, i,
        i_err; observed, i.e. with Galactic extinction) for the stellar masses;
        the injected ``log_mstar`` and ``r_i`` are in the truth table.
    truth_table : Table
        The truth catalogue in memory.
    """

    outdir: Path
    spectra: list[Path] = field(default_factory=list)
    truth: Path | None = None
    targets: Path | None = None
    selection: Path | None = None
    observing_log: Path | None = None
    photometry: Path | None = None
    truth_table: Table | None = None


def _unique_name(ra: float, dec: float, taken: set[str]) -> str:
    name = coordinate_name(ra, dec, "XMP")
    base, k = name, 1
    while name in taken:
        name = f"{base}{chr(ord('a') + k - 1)}"
        k += 1
    taken.add(name)
    return name


def simulate_demo_night(outdir: str | Path, seed: int = 2024, n_targets: int = 8,
                        setups: tuple[str, ...] = ("int_ids_r632v", "goodman_400"),
                        n_catalogue: int | None = None, cnn_scatter: float = 0.2,
                        fmt: str = "fits", progress=None,
                        config: Config | None = None) -> DemoNight:
    """Simulate a small follow-up run of CNN-selected XMP candidates.

    Parameters
    ----------
    outdir : path-like
        Output folder (created).
    seed : int
        Random seed; the same seed gives the same night.
    n_targets : int
        Number of observed targets (split over ``setups`` in turn).
    setups : tuple of str
        Set-ups of the night (keys of :data:`DEMO_SETUPS` or any set-up name,
        which then uses its typical exposure time x 3).
    n_catalogue : int, optional
        Rows of the CNN selection catalogue (default 3 x ``n_targets``).
    cnn_scatter : float
        Scatter (dex) of the true N2 around the CNN prediction.
    fmt : str
        Spectrum format, ``fits`` or ``ecsv``.
    progress : callable, optional
        Called with no argument after each spectrum is written (progress bars).
    config : Config, optional
        Configuration (default: active).

    Returns
    -------
    DemoNight
        Paths of the products and the truth table.

    Raises
    ------
    InputError
        ``n_targets`` < 1 or no set-up.
    """
    cfg = config if config is not None else get_active_config()
    if n_targets < 1:
        raise InputError(f"the demo needs at least one target (got {n_targets})")
    if not setups:
        raise InputError("the demo needs at least one set-up")
    outdir = Path(outdir)
    rng = np.random.default_rng(seed)
    n_cat = max(int(n_catalogue or 3 * n_targets), n_targets)
    gate = float(cfg["measure"]["significance_gate"])

    # ---- the CNN selection catalogue: observed targets first, then the rest
    taken: set[str] = set()
    rows = []
    for i in range(n_cat):
        ra, dec = _random_position(rng, (-30.0, 65.0))
        selected = i < n_targets
        if selected:
            n2_cnn = rng.uniform(-2.4, -1.85)
            p_mp = 1.0 - 10.0 ** rng.uniform(-5.0, -2.05)
            p_xmp = 1.0 - 10.0 ** rng.uniform(-4.0, -2.05)
        else:
            n2_cnn = rng.uniform(-2.4, -1.0)
            p_mp = 1.0 - 10.0 ** rng.uniform(-4.0, -0.5)
            p_xmp = 1.0 - 10.0 ** rng.uniform(-3.0, 0.0) if n2_cnn < -1.5 \
                else 10.0 ** rng.uniform(-3.0, -0.7)
        rows.append({"name": _unique_name(ra, dec, taken), "ra": round(ra, 6),
                     "dec": round(dec, 6), "n2_cnn": round(float(n2_cnn), 3),
                     "n2_cnn_err": round(float(np.exp(rng.normal(math.log(0.07), 0.4))), 3),
                     "p_mp": round(float(p_mp), 5), "p_xmp": round(float(p_xmp), 5),
                     "observed": selected})
    selection = Table(rows=rows)
    selection["ra"].unit = "deg"
    selection["dec"].unit = "deg"
    selection.meta["description"] = ("simulated CNN selection catalogue (median of 9 models); "
                                     "observed = followed up in the demo night")

    # ---- the observed targets: true N2 around the prediction, a realistic mix
    # of detections and limits (redrawn until both occur when n_targets >= 4)
    for _attempt in range(50):
        params = []
        for i in range(n_targets):
            st = setups[i % len(setups)]
            exptime, nexp = DEMO_SETUPS.get(st, (None, 3))
            n2_true = float(np.clip(rows[i]["n2_cnn"] + rng.normal(0.0, cnn_scatter), -2.8, -1.0))
            params.append({
                "setup": st, "exptime": exptime, "nexp": nexp, "n2": n2_true,
                "z": float(rng.uniform(0.008, 0.065)),
                "halpha_flux": float(math.exp(rng.uniform(math.log(130.0), math.log(4000.0)))),
                "ebv": float(rng.uniform(0.0, 0.2)), "ebv_mw": float(rng.uniform(0.01, 0.1)),
                "sigma_kms": float(rng.uniform(15.0, 45.0)),
                "ew_ha": float(math.exp(rng.uniform(math.log(80.0), math.log(1200.0)))),
                "ne": float(math.exp(rng.uniform(math.log(20.0), math.log(300.0)))),
                "cosmic_rays": int(rng.integers(2, 8)), "seed": int(rng.integers(0, 2**31 - 1)),
                "date_obs": _night_date(st, int(rng.integers(0, 4))),
            })
        sims = [simulate_spectrum(p["setup"], p["z"], n2=p["n2"], halpha_flux=p["halpha_flux"],
                                  ebv=p["ebv"], ebv_mw=p["ebv_mw"], sigma_kms=p["sigma_kms"],
                                  ew_ha=p["ew_ha"], ne=p["ne"], exptime=p["exptime"],
                                  nexp=p["nexp"], cosmic_rays=p["cosmic_rays"],
                                  mask_cosmics=True, seed=p["seed"], name=rows[i]["name"],
                                  ra=rows[i]["ra"], dec=rows[i]["dec"],
                                  date_obs=p["date_obs"], config=cfg)
                for i, p in enumerate(params)]
        det = [t["snr_nii6585"] >= gate for _, t in sims]
        if n_targets < 4 or (any(det) and not all(det)):
            break
    for (_, truth), p in zip(sims, params, strict=True):
        truth["seed"] = p["seed"]

    night = DemoNight(outdir=outdir)
    prov = provenance_record(step="demo", config=cfg, extra={"seed": seed,
                                                            "n_targets": n_targets,
                                                            "setups": list(setups)})
    truths = []
    for i, (spec, truth) in enumerate(sims):
        path = write_spectrum_file(spec, outdir / "spectra" / f"{spec.name}.{fmt}",
                                   provenance=prov)
        night.spectra.append(path)
        truth["n2_cnn"] = rows[i]["n2_cnn"]
        truth["n2_cnn_err"] = rows[i]["n2_cnn_err"]
        truth["file"] = str(path.relative_to(outdir))
        truths.append(truth)
        if progress is not None:
            progress()
    table = truth_table(truths, cfg)
    phot = _photometry(table, np.random.default_rng([seed, 1]), cfg)
    night.truth_table = table
    night.truth = write_table(table, outdir / "truth", provenance=prov,
                              formats=("ecsv", "fits"))[0]
    night.targets = write_table(targets_table(table), outdir / "targets.ecsv",
                                provenance=prov)[0]
    night.selection = write_table(selection, outdir / "selection.ecsv", provenance=prov)[0]
    night.photometry = write_table(phot, outdir / "photometry.ecsv", provenance=prov)[0]
    log = Table()
    for col in ("name", "ra", "dec", "n2_cnn", "n2_cnn_err", "instrument"):
        log[col] = table[col]
    log["obsdate"] = table["date_obs"]
    log["exptime_s"] = table["exptime"]
    log["nexp"] = table["nexp"]
    night.observing_log = write_table(log, outdir / "observing_log.ecsv", provenance=prov)[0]
    return night


def _photometry(truth: Table, rng: np.random.Generator, cfg: Config) -> Table:
    """r, i magnitudes of the targets from an injected stellar mass (Bell et al. 2003).

    log M* is drawn between 6 and 8.5 (XMP dwarfs) and r - i between -0.4 and
    0.2 (blue, line-dominated); the magnitudes invert the ``[mass]``
    relation of science.md at the luminosity distance of the injected
    redshift, are reddened by the Galactic E(B-V) of the target, and carry
    0.02-0.05 mag of noise. Adds ``log_mstar`` and ``r_i`` to ``truth``.
    """
    import astropy.units as u

    from ..physics.distances import luminosity_distance
    from ..physics.dust import mw_a_lambda
    m = cfg["mass"]
    n = len(truth)
    logm = rng.uniform(6.0, 8.5, n)
    ri = rng.uniform(-0.4, 0.2, n)
    dl, _ = luminosity_distance(np.asarray(truth["z"], float), config=cfg)
    log_li = logm - float(m["bell03_a"]) - float(m["bell03_b"]) * ri - float(m["chabrier_offset"])
    i0 = float(m["mi_sun"]) - 2.5 * log_li + 5 * np.log10(dl.to_value(u.pc) / 10.0)
    ebv = np.asarray(truth["ebv_mw"], float)
    a_r = mw_a_lambda(np.full(n, float(m["r_wave"])) * u.AA, ebv, cfg)
    a_i = mw_a_lambda(np.full(n, float(m["i_wave"])) * u.AA, ebv, cfg)
    r_err = rng.uniform(0.02, 0.05, n)
    i_err = rng.uniform(0.02, 0.05, n)
    phot = Table()
    phot["name"] = truth["name"]
    phot["r"] = np.round(i0 + ri + a_r + rng.normal(0.0, r_err), 3)
    phot["r_err"] = np.round(r_err, 3)
    phot["i"] = np.round(i0 + a_i + rng.normal(0.0, i_err), 3)
    phot["i_err"] = np.round(i_err, 3)
    for c in ("r", "r_err", "i", "i_err"):
        phot[c].unit = u.mag
    phot.meta["description"] = ("simulated SDSS r, i AB magnitudes (with Galactic extinction) "
                                "from the injected stellar mass, Bell et al. 2003")
    truth["log_mstar"] = logm
    truth["log_mstar"].description = "injected log10(M*/Msun), Chabrier"
    truth["r_i"] = ri
    truth["r_i"].description = "injected intrinsic r - i (AB)"
    return phot


def _night_date(setup: str, offset: int) -> str:
    import datetime as dt
    start = dt.date.fromisoformat(DEMO_RUN_START.get(setup, "2024-01-10"))
    return (start + dt.timedelta(days=offset)).isoformat()


#: Lines whose measured fluxes the recovery check compares with the truth.
RECOVERY_LINES = ("ha", "hb", "oiii5008", "nii6585")
#: Derived quantities compared with the truth: (derived column, truth column, label, unit).
DERIVED_CHECKS = (("ebv_balmer", "ebv", "E(B-V) Balmer", "mag"),
                  ("oh_n2", "oh_n2", "12+log(O/H) N2 (detections)", "dex"),
                  ("te_oiii", "te", "Te[OIII]", "K"),
                  ("log_mstar", "log_mstar", "log M*", "dex"))


def _col(table: Table, name: str) -> np.ma.MaskedArray:
    """Float column as a masked array (all masked when absent)."""
    if name not in table.colnames:
        return np.ma.masked_all(len(table))
    c = table[name]
    data = np.asarray(getattr(c, "value", c.data if hasattr(c, "data") else c), dtype=float)
    mask = np.asarray(getattr(c, "mask", np.zeros(len(c), bool)), dtype=bool) | ~np.isfinite(data)
    return np.ma.MaskedArray(data, mask=mask)


def _strs(table: Table, name: str) -> np.ndarray:
    if name not in table.colnames:
        return np.array([""] * len(table))
    c = table[name]
    vals = c.filled("") if hasattr(c, "filled") else c
    return np.array([str(v) for v in vals])


def recovery_table(measured: Table, truth: Table, nsigma: float = 3.0) -> Table:
    """Measured (and derived) values next to the injected ones, one row per object.

    Parameters
    ----------
    measured : Table
        Per-object table of ``measure`` or ``derive`` (``name``, ``z``, ``n2``,
        ``n2_err``, ``n2_upper_limit``, ``n2_state``, ``f_<key>``...; derived
        columns ``ebv_balmer``, ``oh_n2``, ``te_oiii`` are used when present).
    truth : Table
        Truth catalogue of the simulation (``truth.ecsv``).
    nsigma : float
        A detection is *recovered* when ``|N2 - N2_true| <= nsigma * n2_err``;
        an upper limit when it lies above the injected N2.

    Returns
    -------
    Table
        ``name``, ``instrument``, ``n2_state`` (measured), ``n2_state_expected``,
        ``snr_nii6585_expected``, ``z``/``z_true``, ``n2``, ``n2_err``,
        ``n2_upper_limit``, ``n2_true``, ``n2_pull``, ``n2_recovered``; for each
        of :data:`RECOVERY_LINES` ``f_<key>``, ``f_<key>_err``, ``f_<key>_true``,
        ``f_<key>_ratio``, ``f_<key>_pull`` (detections only); ``ebv_balmer``
        vs ``ebv_true``, ``oh_n2`` vs ``oh_n2_true``, ``te_oiii`` vs ``te_true``,
        ``log_mstar`` vs ``log_mstar_true`` (each with ``_err``).
        ``meta['nsigma']`` holds ``nsigma``.

    Raises
    ------
    InputError
        No object of ``measured`` is in the truth catalogue.
    """
    from astropy.table import MaskedColumn

    tnames = [str(n) for n in truth["name"]]
    idx = {n: i for i, n in enumerate(tnames)}
    names = [str(n) for n in measured["name"]]
    rows = [idx.get(n) for n in names]
    if all(r is None for r in rows):
        raise InputError("no measured object is in the truth catalogue (names differ)")
    keep = np.array([r is not None for r in rows])
    m = measured[keep]
    tr = truth[[r for r in rows if r is not None]]
    out = Table()
    out["name"] = [str(n) for n in m["name"]]
    out["instrument"] = _strs(tr, "instrument")
    out["n2_state"] = _strs(m, "n2_state")
    out["n2_state_expected"] = _strs(tr, "n2_state_expected")
    out["snr_nii6585_expected"] = np.asarray(tr["snr_nii6585"], float)

    def put(name, values, unit=None, desc=None):
        values = np.ma.asarray(values)
        out[name] = MaskedColumn(values.filled(np.nan), mask=np.ma.getmaskarray(values),
                                 unit=unit, description=desc)

    put("z", _col(m, "z"), desc="measured redshift")
    put("z_true", _col(tr, "z"), desc="injected redshift")
    n2, n2e, n2t = _col(m, "n2"), _col(m, "n2_err"), _col(tr, "n2")
    ul = np.asarray(m["n2_upper_limit"].filled(False) if hasattr(m["n2_upper_limit"], "filled")
                    else m["n2_upper_limit"], dtype=bool) if "n2_upper_limit" in m.colnames \
        else np.zeros(len(m), bool)
    det = (out["n2_state"] == "detected") & ~np.ma.getmaskarray(n2)
    put("n2", n2, desc="measured N2 (the 2-sigma limit for upper limits)")
    put("n2_err", n2e)
    out["n2_upper_limit"] = ul
    put("n2_true", n2t, desc="injected N2")
    put("n2_gaussian", _col(m, "n2_gaussian"),
        desc="N2 from the Gaussian fluxes (the measured N2 is integrated at high significance)")
    pull = np.ma.masked_where(~det | np.ma.getmaskarray(n2e) | (n2e.filled(0) <= 0),
                              (n2 - n2t) / np.ma.where(n2e > 0, n2e, 1.0))
    put("n2_pull", pull, desc="(N2 - N2_true) / n2_err, detections")
    recovered = np.ma.masked_all(len(m), dtype=bool)
    for i in range(len(m)):
        if det[i] and not np.ma.is_masked(pull[i]):
            recovered[i] = abs(float(pull[i])) <= nsigma
        elif ul[i] and not np.ma.is_masked(n2[i]) and not np.ma.is_masked(n2t[i]):
            recovered[i] = float(n2t[i]) <= float(n2[i])
    out["n2_recovered"] = MaskedColumn(recovered.filled(False), mask=np.ma.getmaskarray(recovered),
                                       description=f"detection within {nsigma:g} sigma of the "
                                                   "truth, or limit above the true N2")
    unit = m["f_ha"].unit if "f_ha" in m.colnames else None
    for k in RECOVERY_LINES:
        fk = "f_ha" if k == "ha" else f"f_{k}"
        f, fe, ft = _col(m, fk), _col(m, f"{fk}_err"), _col(tr, fk)
        state = _strs(m, f"{k}_state")
        if k == "ha":   # f_ha is the Halpha flux of N2: a detection whenever present
            dk = ~np.ma.getmaskarray(f)
        else:
            dk = (state == "detected") & ~np.ma.getmaskarray(f)
        f = np.ma.masked_where(~dk, f)
        put(fk, f, unit, f"measured {k} flux (detections)")
        put(f"{fk}_err", np.ma.masked_where(~dk, fe), unit)
        put(f"{fk}_true", ft, unit, f"injected {k} flux")
        put(f"{fk}_ratio", f / np.ma.masked_where(ft <= 0, ft), desc="measured / injected")
        put(f"{fk}_pull", np.ma.masked_where(fe.filled(0) <= 0, (f - ft) / fe),
            desc="(measured - injected) / error")
    units = {"mag": "mag", "K": "K"}
    for meas_col, true_col, _label, unit_ in DERIVED_CHECKS:
        unit_ = units.get(unit_)
        put(meas_col, _col(m, meas_col), unit_)
        put(f"{meas_col}_err", _col(m, f"{meas_col}_err"), unit_)
        put(f"{true_col}_true", _col(tr, true_col), unit_)
    out.meta["nsigma"] = nsigma
    out.meta["description"] = ("measured vs injected values of the simulated demo night; "
                               "pulls = (measured - injected) / error")
    return out


def recovery_summary(rec: Table) -> dict:
    """Summary numbers of a :func:`recovery_table`.

    Returns
    -------
    dict
        ``n_objects``; ``n_detected``, ``n_detected_recovered`` (N2 within
        ``nsigma``), ``n2_pull_mean``, ``n2_pull_std``, ``n2_bias_dex`` (median
        N2 - N2_true of detections); ``n_upper_limit``, ``n_limit_consistent``;
        ``n_state_as_expected`` (measured state = expected state at the gate);
        per line ``<key>_median_ratio`` and ``<key>_pull_std``; ``dz_max``; for
        each of :data:`DERIVED_CHECKS` ``<col>_n``, ``<col>_median_diff`` and
        ``<col>_pull_std``.
    """
    det = np.asarray(rec["n2_state"] == "detected")
    ul = np.asarray(rec["n2_upper_limit"], dtype=bool)
    rcv = rec["n2_recovered"].filled(False)
    pulls = rec["n2_pull"].compressed() if hasattr(rec["n2_pull"], "compressed") \
        else np.asarray(rec["n2_pull"])
    dn2 = (rec["n2"] - rec["n2_true"])[det]
    dn2 = np.asarray(dn2.filled(np.nan) if hasattr(dn2, "filled") else dn2, float)
    out = {"n_objects": len(rec), "nsigma": float(rec.meta.get("nsigma", 3.0)),
           "n_detected": int(det.sum()), "n_detected_recovered": int((rcv & det).sum()),
           "n2_pull_mean": float(np.mean(pulls)) if len(pulls) else float("nan"),
           "n2_pull_std": float(np.std(pulls, ddof=1)) if len(pulls) > 1 else float("nan"),
           "n2_bias_dex": float(np.nanmedian(dn2)) if np.isfinite(dn2).any() else float("nan"),
           "n_upper_limit": int(ul.sum()), "n_limit_consistent": int((rcv & ul).sum()),
           "n_state_as_expected": int(np.sum(np.asarray(rec["n2_state"])
                                             == np.asarray(rec["n2_state_expected"])))}
    for k in RECOVERY_LINES:
        fk = "f_ha" if k == "ha" else f"f_{k}"
        r = rec[f"{fk}_ratio"]
        r = r.compressed() if hasattr(r, "compressed") else np.asarray(r)
        p = rec[f"{fk}_pull"]
        p = p.compressed() if hasattr(p, "compressed") else np.asarray(p)
        out[f"{k}_n"] = int(len(r))
        out[f"{k}_median_ratio"] = float(np.median(r)) if len(r) else float("nan")
        out[f"{k}_pull_std"] = float(np.std(p, ddof=1)) if len(p) > 1 else float("nan")
    dz = np.abs(np.asarray((rec["z"] - rec["z_true"]).filled(np.nan)
                           if hasattr(rec["z"] - rec["z_true"], "filled")
                           else rec["z"] - rec["z_true"], float))
    out["dz_max"] = float(np.nanmax(dz)) if np.isfinite(dz).any() else float("nan")
    for meas, true, _label, _unit in DERIVED_CHECKS:
        v, e, t = _col(rec, meas), _col(rec, f"{meas}_err"), _col(rec, f"{true}_true")
        ok = ~(np.ma.getmaskarray(v) | np.ma.getmaskarray(t))
        if meas == "oh_n2":     # O/H from N2 detections only (limits are limits)
            ok &= det
        d = (v - t).filled(np.nan)[ok]
        good = ok & ~np.ma.getmaskarray(e) & (e.filled(0) > 0)
        pull = ((v - t) / np.ma.where(e > 0, e, 1.0)).filled(np.nan)[good]
        out[f"{meas}_n"] = int(ok.sum())
        out[f"{meas}_median_diff"] = float(np.median(d)) if len(d) else float("nan")
        out[f"{meas}_pull_std"] = float(np.std(pull, ddof=1)) if len(pull) > 1 else float("nan")
    return out


def recovery_text(summary: dict) -> str:
    """A few lines telling whether the chain recovered what was injected."""
    s = summary
    lines = [f"Recovery of the injected values ({s['n_objects']} objects)",
             f"N2 detections: {s['n_detected_recovered']}/{s['n_detected']} within "
             f"{s['nsigma']:g} sigma of the truth; pulls mean {s['n2_pull_mean']:+.2f}, "
             f"std {s['n2_pull_std']:.2f} (1 expected); median N2 - N2_true "
             f"{s['n2_bias_dex']:+.3f} dex",
             f"N2 upper limits: {s['n_limit_consistent']}/{s['n_upper_limit']} above the "
             "injected N2",
             f"N2 state as expected from the injected S/N: {s['n_state_as_expected']}/"
             f"{s['n_objects']}"]
    for k in RECOVERY_LINES:
        lines.append(f"F({k}): measured/injected median {s[f'{k}_median_ratio']:.3f}, pull std "
                     f"{s[f'{k}_pull_std']:.2f} ({s[f'{k}_n']} detections)")
    lines.append(f"redshift: max |z - z_true| = {s['dz_max']:.1e}")
    for meas, _true, label, unit in DERIVED_CHECKS:
        if s.get(f"{meas}_n"):
            lines.append(f"{label}: median measured - injected {s[f'{meas}_median_diff']:+.3g}"
                         f"{' ' + unit if unit else ''}, pull std {s[f'{meas}_pull_std']:.2f} "
                         f"({s[f'{meas}_n']} objects)")
    return "\n".join(lines) + "\n"


def recovery_figure(rec: Table, path_stem: str | Path,
                    formats=("png", "pdf")) -> list[Path]:
    """Measured vs injected N2 (left) and measured/injected line fluxes (right).

    Left: N2 detections with 1-sigma error bars, upper limits as downward
    arrows, the one-to-one line. Right: measured / injected flux of
    :data:`RECOVERY_LINES` against the injected flux, with error bars.

    Returns
    -------
    list of Path
        Files written.
    """
    from ..products.figures import (
        C_FAIR,
        C_GOOD,
        C_LIMIT,
        draw_upper_limits,
        figure_style,
        save_figure,
    )
    det = np.asarray(rec["n2_state"] == "detected")
    ul = np.asarray(rec["n2_upper_limit"], dtype=bool)
    n2 = rec["n2"].filled(np.nan) if hasattr(rec["n2"], "filled") else np.asarray(rec["n2"])
    n2e = rec["n2_err"].filled(np.nan) if hasattr(rec["n2_err"], "filled") \
        else np.asarray(rec["n2_err"])
    n2t = np.asarray(rec["n2_true"], float)
    with figure_style() as plt:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(7.0, 3.2))
        vals = np.concatenate([n2t, n2[np.isfinite(n2)]])
        lo, hi = np.nanmin(vals) - 0.3, np.nanmax(vals) + 0.3
        a1.plot([lo, hi], [lo, hi], color="k", lw=0.8, label="one-to-one")
        if det.any():
            a1.errorbar(n2t[det], n2[det], yerr=n2e[det], fmt="o", color=C_GOOD, ms=4,
                        capsize=2, label="detections")
        if ul.any():
            draw_upper_limits(a1, n2t[ul], n2[ul], 0.06 * (hi - lo), C_LIMIT,
                              label="upper limits")
        a1.set_xlim(lo, hi)
        a1.set_ylim(lo, hi)
        a1.set_xlabel(r"injected N2 = log([NII]6585/H$\alpha$)")
        a1.set_ylabel(r"measured N2 = log([NII]6585/H$\alpha$)")
        a1.legend(loc="upper left", fontsize=7)
        markers = {"ha": ("o", C_GOOD), "hb": ("s", C_FAIR), "oiii5008": ("^", "#009E73"),
                   "nii6585": ("D", "#D55E00")}
        labels = {"ha": r"H$\alpha$", "hb": r"H$\beta$", "oiii5008": "[OIII]5008",
                  "nii6585": "[NII]6585"}
        for k in RECOVERY_LINES:
            fk = "f_ha" if k == "ha" else f"f_{k}"
            r = rec[f"{fk}_ratio"]
            ok = ~np.ma.getmaskarray(r)
            if not ok.any():
                continue
            ft = np.asarray(rec[f"{fk}_true"], float)
            fe = np.ma.filled(rec[f"{fk}_err"], np.nan)
            m, c = markers[k]
            a2.errorbar(ft[ok], np.ma.filled(r, np.nan)[ok], yerr=(fe / ft)[ok], fmt=m,
                        color=c, ms=4, capsize=2, label=labels[k])
        a2.axhline(1.0, color="k", lw=0.8)
        a2.set_xscale("log")
        unit = rec["f_ha_true"].unit
        from ..lines.plots import flux_unit_label
        a2.set_xlabel(f"injected flux ({flux_unit_label(unit)})" if unit is not None
                      else "injected flux")
        a2.set_ylabel("measured / injected flux")
        a2.legend(fontsize=7)
        fig.tight_layout()
        return save_figure(fig, path_stem, formats)


@dataclass
class DemoRun:
    """Products of :func:`run_demo`.

    Attributes
    ----------
    night : DemoNight
        The simulated night.
    chain : xmpspec.workflows.chain.ChainResult
        The analysis chain's products.
    recovery : Path
        Measured-vs-injected table (``recovery.ecsv``; also ``.fits``).
    recovery_txt : Path
        Its summary (``recovery.txt``).
    recovery_figures : list of Path
        ``recovery.png``/``.pdf`` (:func:`recovery_figure`).
    recovery_table : Table
    recovery_summary : dict
        See :func:`recovery_summary`.
    timings : dict
        Stage -> (wall-clock s, CPU s of this process), simulation included.
    """

    night: DemoNight
    chain: object
    recovery: Path | None = None
    recovery_txt: Path | None = None
    recovery_figures: list = field(default_factory=list)
    recovery_table: Table | None = None
    recovery_summary: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def run_demo(outdir: str | Path, seed: int = 2024, n_targets: int = 8,
             setups: tuple[str, ...] = ("int_ids_r632v", "goodman_400"), fmt: str = "fits",
             fit_plots: bool = False, config: Config | None = None, progress=None,
             on_stage=None) -> DemoRun:
    """Simulate the demo night and run the whole analysis chain on it.

    Simulation (:func:`simulate_demo_night`), then
    :func:`xmpspec.workflows.chain.run_analysis_chain` (measure with the targets
    table, derive, compare with ``selection.ecsv``, paper tables with the
    observing log, figures), then the check against the truth
    (``recovery.ecsv``/``.fits``, ``recovery.txt``, ``recovery.png``/``.pdf``).

    Parameters
    ----------
    outdir, seed, n_targets, setups, fmt
        As :func:`simulate_demo_night`.
    fit_plots : bool
        Write the line-fit figure of every object (``measure/plots/``).
    config : Config, optional
        Configuration (default: active).
    progress : callable, optional
        ``progress(iterable, description, total)`` wrapping per-item loops.
    on_stage : callable, optional
        Called with each stage name: ``simulate``, the stages of
        :data:`xmpspec.workflows.chain.CHAIN_STAGES`, then ``recovery``.

    Returns
    -------
    DemoRun
    """
    import time

    from ..workflows.chain import run_analysis_chain
    cfg = config if config is not None else get_active_config()
    outdir = Path(outdir)
    timings = {}
    if on_stage is not None:
        on_stage("simulate")
    t0, c0 = time.perf_counter(), time.process_time()
    night = simulate_demo_night(outdir, seed=seed, n_targets=n_targets, setups=setups, fmt=fmt,
                                config=cfg)
    timings["simulate"] = (time.perf_counter() - t0, time.process_time() - c0)
    chain = run_analysis_chain(night.spectra, night.targets, night.selection, outdir, cfg,
                               observing_log=night.observing_log, fit_plots=fit_plots,
                               photometry=night.photometry,
                               progress=progress, on_stage=on_stage)
    timings.update(chain.timings)
    if on_stage is not None:
        on_stage("recovery")
    t0, c0 = time.perf_counter(), time.process_time()
    rec = recovery_table(chain.derived_table, night.truth_table)
    summ = recovery_summary(rec)
    prov = provenance_record(inputs=[str(chain.derived), str(night.truth)], config=cfg,
                             step="demo:recovery", extra={"summary": summ})
    run = DemoRun(night=night, chain=chain, recovery_table=rec, recovery_summary=summ)
    run.recovery = write_table(rec, outdir / "recovery", provenance=prov,
                               formats=("ecsv", "fits"))[0]
    from ..tableio import atomic_path
    with atomic_path(outdir / "recovery.txt") as tmp:   # provenance as '#' comment lines
        tmp.write_text("".join(f"# {ln}\n" for ln in provenance_lines(
            {k: v for k, v in prov.items() if k != "extra"})) + recovery_text(summ),
            encoding="utf-8")
    run.recovery_txt = outdir / "recovery.txt"
    run.recovery_figures = recovery_figure(rec, outdir / "recovery")
    timings["recovery"] = (time.perf_counter() - t0, time.process_time() - c0)
    run.timings = timings
    return run
