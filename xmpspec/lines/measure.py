"""Measure the emission lines of one spectrum: science.md "Line measurement".

:func:`measure_spectrum` is the library entry point (the CLI and the batch
engine call it; it keeps no global state and its result pickles). Steps:

1. Input checks: NaN/inf pixels are masked; zero or negative errors are an
   :class:`~xmpspec.errors.InputError` unless ``ignore_bad_errors``.
2. Redshift: given, else found from the strongest lines
   (:func:`~xmpspec.lines.redshift.find_redshift`).
3. Coverage: a line whose pixels are outside the spectrum or masked is
   ``not_covered`` (never a zero flux). No covered line is a
   :class:`~xmpspec.errors.CoverageError`.
4. Gaussian fits per group (:mod:`~xmpspec.lines.model`): the group with the
   highest S/N sets the reference kinematics (free fit); other groups are fitted
   with free kinematics when their S/N allows, else tied to the reference;
   [OIII]4364 (with Hgamma) is always tied to the [OIII]5008 kinematics.
   (The S/N that decides is the one of a first linear fit at the starting
   redshift.)
   The redshift is the weighted mean of the free-kinematics groups.
   Before the fits the error spectrum is scaled by ``error_scale``, the robust
   scatter of the line-free continuum residuals (:mod:`~xmpspec.lines.noise`,
   ``[measure] apply_error_scale``).
5. States: S/N = F / sigma_F; ``detected`` if >= the gate, else a 2-sigma
   ``upper_limit`` = max(F, 0) + 2 sigma_F. The N2 gate is the amplitude
   ratio A([NII]6585)/A(Halpha) over its error (``significance``, graded
   ``n2_label`` good/fair/limit); at or above the gate the Halpha and
   [NII]6585 fluxes are the integrated ones (:mod:`~xmpspec.lines.integrated`;
   ``[measure] n2_flux = "gaussian"`` keeps the Gaussian ones), and
   ``nii6585_snr_reported`` / ``n2_flux_weaker_than_gate`` say whether the
   reported flux is as significant as the gate (docs/n2.md).
6. Ratios N2, O3, O3N2 with errors and censoring by the rules of
   :mod:`~xmpspec.lines.ratios` (the ones ``xmpspec derive`` applies to a
   lines table); equivalent widths. The N2 posterior of every object
   (``n2_p16``, ``n2_p50``, ``n2_p84``, ``n2_p977``; :mod:`~xmpspec.lines.posterior`).
7. Optionally an emcee posterior per group (:mod:`~xmpspec.lines.mcmc`); it
   then also gives N2, ``n2_err`` and the N2 percentiles.

This module is the fit orchestration and the file entry (:func:`measure_file`);
the result types are in :mod:`~xmpspec.lines.results`, the row assembly in
:mod:`~xmpspec.lines.measure_rows`, the tables in :mod:`~xmpspec.lines.measure_tables`
(their public names are importable from here).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np

from ..config import Config, get_active_config
from ..errors import ConfigError, CoverageError, InputError
from ..instruments import C_KMS, Setup, get_setup
from ..spectrum import FLUX_UNIT, Spectrum, as_spectrum
from .catalog import GROUPS, OPTIONAL_LINE_DEFS, line_catalog
from .fitcore import FitResult, fit_free, fit_linear
from .measure_rows import _assemble, _n2_flux_choice
from .measure_tables import lines_table, objects_table
from .model import GAUSS_FWHM, GroupModel
from .noise import error_scale, line_free_mask
from .redshift import find_redshift
from .results import LINE_KEYS, STATES, GroupFit, Measurement

__all__ = ["Measurement", "GroupFit", "measure_spectrum", "measure_file", "measure_for_target",
           "lines_table",
           "objects_table", "LINE_KEYS", "STATES"]

LN10 = math.log(10.0)
log = logging.getLogger("xmpspec.lines.measure")
OPTIONAL_KEYS = tuple(d[0] for d in OPTIONAL_LINE_DEFS)
BALMER = ("ha", "hb", "hg", "hd")


# --------------------------------------------------------------------------- helpers
def _measure_cfg(config: Config | None) -> dict:
    cfg = config if config is not None else get_active_config()
    return dict(cfg["measure"])


def _resolve_setup(spectrum: Spectrum, setup: str | Setup | None) -> Setup | None:
    if isinstance(setup, Setup):
        return setup
    name = setup or spectrum.meta.get("setup")
    if name:
        return get_setup(str(name))
    return None


def _instrument_sigma(spectrum: Spectrum, setup: Setup | None) -> tuple[float, float, str]:
    """Instrumental Gaussian sigma as ``a + b * wave`` (Angstrom) and its origin."""
    res = spectrum.meta.get("resolution")
    if setup is not None:
        if setup.constant == "fwhm":
            return setup.resolution_wave / setup.resolution / GAUSS_FWHM, 0.0, setup.name
        return 0.0, 1.0 / (setup.resolution * GAUSS_FWHM), setup.name
    if res:
        return 0.0, 1.0 / (float(res) * GAUSS_FWHM), f"R={float(res):g} from the spectrum"
    # unknown: the sampling limit (FWHM = 2 pixels) as the floor
    wv = spectrum.wavelength.value
    dl = np.diff(wv)
    if np.allclose(dl, dl[0], rtol=1e-3):
        return 2.0 * float(dl[0]) / GAUSS_FWHM, 0.0, "2-pixel FWHM (no set-up given)"
    dlog = float(np.median(dl / wv[1:]))
    return 0.0, 2.0 * dlog / GAUSS_FWHM, "2-pixel FWHM (no set-up given)"


def _flux_units(spectrum: Spectrum) -> tuple[Spectrum, Any, Any]:
    """Convert to FLUX_UNIT when possible; return (spectrum, flux unit, line-flux unit)."""
    try:
        spec = spectrum.with_flux_unit(FLUX_UNIT) if spectrum.flux.unit != FLUX_UNIT else spectrum
        return spec, FLUX_UNIT, FLUX_UNIT * u.AA
    except u.UnitConversionError:
        unit = spectrum.flux.unit
        return spectrum, unit, unit * u.AA


@dataclass
class _Line:
    key: str
    label: str
    rest: float
    group: str
    tie_to: str | None
    tie_ratio: float | None
    covered: bool = False
    reason: str = ""


def _coverage(lines: list[_Line], wave: np.ndarray, good: np.ndarray, z: float,
              sig_a: float, sig_b: float, min_frac: float) -> None:
    """Set ``covered``/``reason`` of every line: inside the spectrum (1.5 FWHM each side)
    with at least ``min_frac`` of the pixels within max(FWHM, 1 pixel) unmasked."""
    dpix = 1.01 * float(np.median(np.diff(wave)))
    mus = np.array([ln.rest for ln in lines]) * (1.0 + z)
    fwhms = GAUSS_FWHM * (sig_a + sig_b * mus)
    halves = np.maximum(fwhms, dpix)
    # pixels with |wave - mu| <= half: [first >= mu - half, last <= mu + half]
    i0 = np.searchsorted(wave, mus - halves, side="left")
    i1 = np.searchsorted(wave, mus + halves, side="right")
    ngood = np.concatenate(([0], np.cumsum(good)))
    w0, w1 = float(wave[0]), float(wave[-1])
    for ln, mu, fwhm, a, b in zip(lines, mus.tolist(), fwhms.tolist(), i0.tolist(), i1.tolist(),
                                  strict=True):
        if mu - 1.5 * fwhm < w0 or mu + 1.5 * fwhm > w1:
            ln.covered, ln.reason = False, (f"observed {mu:.1f} A outside the coverage "
                                            f"{w0:.0f}-{w1:.0f} A")
            continue
        frac = (ngood[b] - ngood[a]) / (b - a) if b > a else 0.0
        if frac < min_frac:
            ln.covered, ln.reason = False, (f"{100 * (1 - frac):.0f}% of the pixels at "
                                            f"{mu:.1f} A are masked")
        else:
            ln.covered = True


def _build_group(name: str, glines: list[_Line], spec_w, spec_f, spec_e, spec_good, z: float,
                 sig_a: float, sig_b: float, mcfg: dict, nuisance: list[float]):
    covered = [ln for ln in glines if ln.covered]
    if not covered:
        return None
    keys = [ln.key for ln in covered]
    # free fluxes: masters; a tied line whose master is not covered becomes free
    free_keys = [ln.key for ln in covered if not (ln.tie_to and ln.tie_to in keys)]
    T = np.zeros((len(covered), len(free_keys)))
    for i, ln in enumerate(covered):
        if ln.tie_to and ln.tie_to in keys:
            T[i, free_keys.index(ln.tie_to)] = 1.0 / ln.tie_ratio
        else:
            T[i, free_keys.index(ln.key)] = 1.0
    rest_list = [ln.rest for ln in covered]
    rest = np.array(rest_list)
    mus = [r * (1.0 + z) for r in rest_list]
    half = mcfg["window_kms"] / C_KMS
    lo, hi = min(mus) * (1 - half), max(mus) * (1 + half)
    i0, i1 = np.searchsorted(spec_w, [lo, hi]).tolist()
    i0, i1 = max(i0, 0), min(i1, spec_w.size)
    wave = spec_w[i0:i1]
    good = spec_good[i0:i1].copy()
    # mask neighbouring lines not modelled in this group (away from the group's own lines)
    near_nuisance = [mu_n for mu_n in (rest_n * (1.0 + z) for rest_n in nuisance)
                     if lo - 10 < mu_n < hi + 10]
    if near_nuisance:
        sig_inst = sig_a + sig_b * wave
        near_own = np.zeros(wave.size, bool)
        for mu in mus:
            near_own |= np.abs(wave - mu) < 4.0 * (sig_a + sig_b * mu) + 3.0 * mu * 100.0 / C_KMS
        for mu_n in near_nuisance:
            good &= ~((np.abs(wave - mu_n) < 3.0 * sig_inst + mu_n * 300.0 / C_KMS) & ~near_own)
    abs_idx = [i for i, ln in enumerate(covered) if ln.key in BALMER]
    mode = str(mcfg.get("balmer_absorption", "none"))
    model = GroupModel(wave, spec_f[i0:i1], spec_e[i0:i1], good, rest, T,
                       int(mcfg["local_continuum_order"]), sig_a, sig_b,
                       np.array(abs_idx, int), mode if abs_idx else "none",
                       float(mcfg.get("balmer_absorption_ew", 0.0)),
                       float(mcfg.get("balmer_absorption_sigma_kms", 1000.0)))
    return keys, free_keys, model


def _optional_keys(mcfg: dict) -> set[str]:
    """Optional lines enabled in ``[measure] optional_lines`` (unknown keys are an error)."""
    keys = [str(k) for k in mcfg.get("optional_lines", [])]
    bad = [k for k in keys if k not in OPTIONAL_KEYS]
    if bad:
        raise ConfigError(f"[measure] optional_lines: unknown line(s) {', '.join(bad)}; "
                          f"known: {', '.join(OPTIONAL_KEYS)}")
    return set(keys)


def _weak_optional(keys, free_keys, fit: FitResult, optional: set[str], min_snr: float):
    """Optional lines of a successful fit whose S/N is below ``min_snr``."""
    if fit is None or not fit.success:
        return []
    cov = fit.theta_cov
    weak = []
    for k in keys:
        if k in optional and k in free_keys:
            i = free_keys.index(k)
            e = math.sqrt(cov[i, i]) if cov[i, i] > 0 else float("nan")
            if not (np.isfinite(e) and fit.theta[i] / e >= min_snr):
                weak.append(k)
    return weak


def _dropped_values(weak, keys, free_keys, model: GroupModel, fit: FitResult,
                    min_snr: float) -> dict:
    """Flux, error and centre of optional lines dropped from a group's final model."""
    sig = model.observed_sigma(fit.z, fit.sigma_v)
    out = {}
    for k in weak:
        i, li = free_keys.index(k), keys.index(k)
        mu = model.rest[li] * (1.0 + fit.z)
        out[k] = {"flux": float(fit.theta[i]), "err": float(np.sqrt(max(fit.theta_cov[i, i], 0))),
                  "obs_wave": float(mu), "fwhm": float(GAUSS_FWHM * sig[li] / mu * C_KMS),
                  "note": (f"optional line below S/N {min_snr:g}: the group was refitted "
                           "without it; flux and limit from the fit that included it")}
    return out


def _add_redshift_error(model: GroupModel, fit: FitResult, z: float, sv: float,
                        z_err: float, z_sys: float, design=None) -> None:
    """Propagate the redshift uncertainty of tied kinematics into a linear fit's covariance.

    ``sigma_z**2 = z_err**2 + (z_sys (1 + z))**2`` (the reference group's error and the
    relative wavelength calibration between groups); ``d theta / dz`` from the
    derivative of the normal equations. Negligible for isolated lines, large for
    blended ones whose flux split depends on the centres ([OII] at low resolution,
    [FeII]4360 + [OIII]4364). ``design`` is ``model.design(z, sv, derivs=True)``
    when the caller has it.
    """
    var = (z_err**2 if np.isfinite(z_err) else 0.0) + (z_sys * (1.0 + z)) ** 2
    if not var > 0:
        return
    # d theta/dz of the normal equations (B^T W B) theta = B^T W y
    B, dB, _ = model.design(z, sv, derivs=True) if design is None else design
    w2 = model.w**2
    r = model.y - B @ fit.theta
    jz = fit.cov @ (dB.T @ (w2 * r) - B.T @ (w2 * (dB @ fit.theta)))
    if not np.all(np.isfinite(jz)):
        return
    fit.cov = fit.cov + np.outer(jz, jz) * var
    fit.extra["z_err_propagated"] = math.sqrt(var)


def _blended(model: GroupModel, keys: list[str], free_keys: list[str], z: float,
             fwhm_multiple: float) -> bool:
    """True if two lines with free fluxes are closer than ``fwhm_multiple`` x the
    instrumental FWHM (their ratio and the redshift are then degenerate)."""
    if len(free_keys) < 2:
        return False
    mu = sorted(float(model.rest[keys.index(k)]) * (1.0 + z) for k in free_keys)
    for lo, hi in zip(mu[:-1], mu[1:], strict=True):
        fwhm = GAUSS_FWHM * (model.inst_a + model.inst_b * (0.5 * (hi + lo)))
        if hi - lo < fwhm_multiple * fwhm:
            return True
    return False


def _snr(fit: FitResult, n_free: int) -> float:
    """Largest S/N of the free fluxes of a fit (0 for a failed fit)."""
    if fit is None or not fit.success:
        return 0.0
    th = fit.theta[:n_free].tolist()
    var = fit.theta_cov.diagonal()[:n_free].tolist()
    best = None
    for t, v in zip(th, var, strict=True):
        if not v > 0:
            continue   # th / sqrt(var) is not finite (0, negative or NaN variance)
        s = t / math.sqrt(v)
        if math.isfinite(s) and (best is None or s > best):
            best = s
    return float(best) if best is not None else 0.0


def _do_fit(model: GroupModel, z: float, sv: float, free: bool, mcfg: dict, fitter: str,
            start: FitResult | None = None, design: np.ndarray | None = None):
    """Fit one group model: free kinematics (LM from ``start``, the linear fit at
    ``z, sv`` if known) or fixed (linear, on ``design`` if given)."""
    if fitter == "lmfit":
        from .lmfit_model import fit_group_lmfit
        return fit_group_lmfit(model, z, sv, free=free,
                               max_shift_kms=float(mcfg["max_shift_kms"]),
                               max_sigma_kms=float(mcfg["max_sigma_kms"]))
    if free:
        return fit_free(model, z, sv, max_iter=int(mcfg["max_iterations"]),
                        max_shift_kms=float(mcfg["max_shift_kms"]),
                        max_sigma_kms=float(mcfg["max_sigma_kms"]), start=start)
    return fit_linear(model, z, sv, design=design)


def _error_scale(wv, fl, er, good, z, lines, nuisance, sig_a, sig_b, mcfg, notes, src=None):
    """Error scale of the spectrum (:func:`~xmpspec.lines.noise.error_scale`) and whether
    it is applied (``[measure] apply_error_scale``); a note and a logged warning when
    outside ``error_scale_warn``."""
    mus = [ln.rest * (1.0 + z) for ln in lines] + [w * (1.0 + z) for w in nuisance]
    free = line_free_mask(wv, mus, lambda w: sig_a + sig_b * w,
                          float(mcfg.get("error_scale_line_halfwidth_sigma", 5.0)),
                          float(mcfg.get("error_scale_line_halfwidth_kms", 300.0)))
    s, npix = error_scale(fl, er, good, free, int(mcfg.get("error_scale_window", 21)))
    if not np.isfinite(s) or s <= 0:
        notes.append(f"error scale not measurable ({npix} line-free pixels): errors as given")
        return float("nan"), False
    lo, hi = (float(v) for v in mcfg.get("error_scale_warn", (0.8, 1.25)))
    # not applied at or below error_scale_min_applied (default 0.5: a continuum scatter far
    # below the error spectrum means a noise-free or smoothed/resampled spectrum, where the
    # scale tends to 0 and would make every line significant); 1.0 = inflate only
    apply = (bool(mcfg.get("apply_error_scale", True))
             and s > float(mcfg.get("error_scale_min_applied", 1.0)))
    if not lo <= s <= hi:
        msg = (f"error spectrum x{s:.2f} off the continuum scatter (outside {lo:g}-{hi:g})"
               + ("; line errors scaled by it" if apply else "; errors as given"))
        notes.append(msg)
        log.warning("%s: %s", src or "spectrum", msg)
    return float(s), apply


# --------------------------------------------------------------------------- main
def measure_spectrum(spectrum: Spectrum, z: float | None = None, setup: str | Setup | None = None,
                     config: Config | None = None, mcmc: bool = False,
                     ignore_bad_errors: bool = False, name: str | None = None,
                     z_source: str | None = None, fitter: str = "fast",
                     seed: int | None = None, extra: dict | None = None,
                     keep_fits: bool = True) -> Measurement:
    """Measure every catalogue line of one spectrum.

    Parameters
    ----------
    spectrum : Spectrum or specutils spectrum
        The 1D spectrum (any medium; air wavelengths are converted to vacuum).
    z : float, optional
        Redshift. If omitted, ``spectrum.redshift`` is used, else the redshift
        is found from the strongest lines.
    setup : str or Setup, optional
        Observing set-up (instrumental resolution = floor of the line width).
        Defaults to ``spectrum.meta['setup']``, else ``meta['resolution']`` (R),
        else a 2-pixel FWHM.
    config : Config, optional
        Configuration (section ``[measure]``); default the active one.
    mcmc : bool
        Replace the covariance errors with emcee posteriors (median, 16/84
        percentiles; upper limits from the 97.7 percentile).
    ignore_bad_errors : bool
        Mask zero/negative-error pixels instead of raising.
    name : str, optional
        Object name (default ``spectrum.name``).
    z_source : str, optional
        Where a given redshift came from (``argument``, ``targets``...).
    fitter : {'fast', 'lmfit'}
        Fast analytic-Jacobian core (default) or lmfit on the same model.
    seed : int, optional
        Random seed of the MCMC.
    extra : dict, optional
        Values copied into the per-object row (e.g. columns of a targets table).
    keep_fits : bool
        Keep the group models and fits in ``Measurement.groups`` (needed for
        figures); False makes the result small (batch workers, big runs).

    Returns
    -------
    Measurement

    Raises
    ------
    InputError
        Bad errors, or every pixel masked.
    CoverageError
        The redshift puts no catalogue line in the coverage.
    FitError
        No redshift given and none could be found.
    """
    cfg = config if config is not None else get_active_config()
    mcfg = _measure_cfg(cfg)
    if fitter not in ("fast", "lmfit"):
        raise InputError(f"unknown fitter '{fitter}' (use 'fast' or 'lmfit')")
    _n2_flux_choice(mcfg)
    spec = as_spectrum(spectrum).copy()  # specutils spectra are converted at the entry
    spec.validate_errors(allow_nonpositive=ignore_bad_errors)
    spec = spec.to_vacuum()
    spec, funit, lunit = _flux_units(spec)
    name = name or spec.name
    src = spec.source
    setup_obj = _resolve_setup(spec, setup)
    sig_a, sig_b, res_origin = _instrument_sigma(spec, setup_obj)
    notes: list[str] = []
    wv = spec.wavelength.value
    fl = spec.flux.value
    er = np.where(spec.good, spec.error.value, 1.0)
    good = spec.good.copy()

    cat = line_catalog(cfg, optional=True)
    lines = [_Line(ln.key, ln.label, ln.wave, ln.group, ln.tie_to, ln.tie_ratio) for ln in cat]
    optional = _optional_keys(mcfg)
    rest = {ln.key: ln.rest for ln in lines}

    # ---- redshift
    if z is None and spec.redshift is not None:
        z, z_source = float(spec.redshift), z_source or "spectrum"
    if z is None:
        z, _ = find_redshift(wv, fl, er, good, rest, lambda w: GAUSS_FWHM * (sig_a + sig_b * w),
                             float(mcfg["z_min"]), float(mcfg["z_max"]),
                             float(mcfg["z_find_min_snr"]), source=src)
        z_source = "lines"
        notes.append(f"redshift found from the lines (z~{z:.5f})")
    else:
        z = float(z)
        z_source = z_source or "argument"
        if not np.isfinite(z) or z <= -1:
            raise InputError(f"invalid redshift {z}", src)
    z_start = z

    # ---- coverage
    _coverage(lines, wv, good, z, sig_a, sig_b, float(mcfg["min_line_coverage"]))
    for ln in lines:
        if ln.key in OPTIONAL_KEYS and ln.key not in optional:
            ln.covered, ln.reason = False, "optional line not modelled ([measure] optional_lines)"
    if not any(ln.covered for ln in lines):
        raise CoverageError(
            f"redshift z={z:.5f} puts no catalogue line in the coverage "
            f"{wv[0]:.0f}-{wv[-1]:.0f} A (unmasked); check the redshift", src)

    # ---- error scale from the continuum residuals away from the lines (lines/noise.py)
    nuisance = [float(v) for v in mcfg.get("nuisance_lines", [])]
    escale, escale_applied = _error_scale(wv, fl, er, good, z, lines, nuisance, sig_a, sig_b,
                                          mcfg, notes, src)
    if escale_applied:
        er = er * escale

    # ---- group models at the starting redshift
    by_group: dict[str, list[_Line]] = {}
    for ln in lines:
        by_group.setdefault(ln.group, []).append(ln)
    sv0 = float(mcfg["initial_sigma_kms"])
    built: dict[str, tuple] = {}
    for g in GROUPS:
        b = _build_group(g, by_group.get(g, []), wv, fl, er, good, z,
                         sig_a, sig_b, mcfg, nuisance)
        if b is not None:
            built[g] = b

    # S/N of each group at the starting kinematics (linear fits)
    first = {}
    for g, (_keys, _free, model) in built.items():
        if g != "hg_oiii4364":  # always tied to [OIII]5008's kinematics: no first fit needed
            first[g] = fit_linear(model, z, sv0)
    # groups whose free lines blend at this resolution (unresolved [OII] at R ~ 1000): z and
    # the flux ratio are degenerate, so they take the reference kinematics when there is one
    bl_fwhm = float(mcfg.get("blended_fwhm", 1.0))
    blended = {g: _blended(built[g][2], built[g][0], built[g][1], z, bl_fwhm) for g in built}
    thr = float(mcfg["free_kinematics_snr"])
    z_sys = float(mcfg.get("tied_z_sys_kms", 0.0)) / C_KMS
    first_snr = {g: _snr(first[g], len(built[g][1])) for g in first}
    order = sorted((g for g in built if g != "hg_oiii4364" and first_snr[g] >= thr),
                   key=lambda g: (blended[g], -first_snr[g]))
    gfits: dict[str, GroupFit] = {}
    opt_snr = float(mcfg.get("optional_line_snr", 2.0))

    def fit_group(g, kz, ksv, free, kz_err=float("nan")):
        """Fit group g; refit without its optional lines below ``optional_line_snr``.

        Tied fits (``free`` False) carry the redshift error ``kz_err`` of the reference
        and the calibration term ``tied_z_sys_kms`` in their covariance.
        """
        def one(model, start=None):
            if free or fitter != "fast":
                r = _do_fit(model, kz, ksv, free, mcfg, fitter, start=start)
                if not free and r.success:
                    _add_redshift_error(model, r, kz, ksv, kz_err, z_sys)
                return r
            # tied: one design matrix (with its derivatives) for the fit and the z error
            design = model.design(kz, ksv, derivs=True)
            r = _do_fit(model, kz, ksv, free, mcfg, fitter, design=design[0])
            if r.success:
                _add_redshift_error(model, r, kz, ksv, kz_err, z_sys, design=design)
            return r

        keys, free_keys, model = built[g]
        # the first linear fit was made on this model at (z, sv0): the LM fit's start
        same_start = free and kz == z and ksv == sv0 and fitter == "fast"
        res = one(model, first.get(g) if same_start else None)
        dropped = {}
        weak = _weak_optional(keys, free_keys, res, optional, opt_snr)
        if weak:
            b = _build_group(g, [ln for ln in lines if ln.group == g and ln.key not in weak],
                             wv, fl, er, good, z, sig_a, sig_b, mcfg, nuisance)
            if b is not None:
                res2 = one(b[2])
                if res2.success:
                    dropped = _dropped_values(weak, keys, free_keys, model, res, opt_snr)
                    keys, free_keys, model, res = b[0], b[1], b[2], res2
        return keys, free_keys, model, res, dropped
    ref: GroupFit | None = None
    for g in order:
        keys, free_keys, model, res, dropped = fit_group(g, z, sv0, True)
        if res.success:
            ref = GroupFit(g, keys, free_keys, model, res, "free", _snr(res, len(free_keys)),
                           dropped=dropped)
            gfits[g] = ref
            break
        notes.append(f"{g}: free-kinematics fit failed ({res.message})")
    if ref is None:
        notes.append("no group bright enough for free kinematics: all lines fitted at the "
                     f"{'given' if z_source != 'lines' else 'found'} redshift with a "
                     f"{sv0:g} km/s intrinsic dispersion")
        zr, svr, refname = z, sv0, "start"
    else:
        zr, svr, refname = ref.fit.z, ref.fit.sigma_v, ref.group

    for g in GROUPS:
        if g not in built or g in gfits:
            continue
        keys, free_keys, model = built[g]
        kz, ksv, kname = zr, svr, refname
        if g == "hg_oiii4364" and "hbeta" in gfits and gfits["hbeta"].kinematics == "free":
            kz, ksv, kname = gfits["hbeta"].fit.z, gfits["hbeta"].fit.sigma_v, "hbeta"
        if (g != "hg_oiii4364" and first[g].success and first_snr[g] >= thr
                and not blended[g]):
            fkeys, ffree, fmodel, res, dropped = fit_group(g, kz, ksv, True)
            if res.success:
                gfits[g] = GroupFit(g, fkeys, ffree, fmodel, res, "free",
                                    _snr(res, len(ffree)), dropped=dropped)
                continue
            fallback = (f"free-kinematics fit failed ({res.message}); kinematics tied to "
                        f"{kname}")
            notes.append(f"{g}: {fallback}")
        else:
            fallback = ""
        ref_err = gfits[kname].fit.z_err if kname in gfits else float("nan")
        keys, free_keys, model, lin, dropped = fit_group(g, kz, ksv, False, ref_err)
        gf = GroupFit(g, keys, free_keys, model, lin, f"tied:{kname}", _snr(lin, len(free_keys)),
                      "" if lin.success else lin.message, fallback=fallback, dropped=dropped)
        gfits[g] = gf

    # ---- optional broad (second) components ([measure] broad_components, lines/broad.py)
    from .broad import add_broad_components
    notes.extend(add_broad_components(gfits, mcfg))

    # ---- redshift from the free groups
    zs = [(gf.fit.z, gf.fit.z_err) for gf in gfits.values()
          if gf.ok and gf.kinematics == "free" and np.isfinite(gf.fit.z_err) and gf.fit.z_err > 0]
    if zs:
        zv = np.array([a for a, _ in zs])
        ze = np.array([b for _, b in zs])
        wts = 1.0 / ze**2
        z_fit = float(np.sum(wts * zv) / wts.sum())
        z_err = float(1.0 / np.sqrt(wts.sum()))
        if len(zs) > 1:
            chi = float(np.sum(wts * (zv - z_fit) ** 2) / (len(zs) - 1))
            z_err *= math.sqrt(max(chi, 1.0))
    else:
        z_fit, z_err = z_start, float("nan")

    # ---- MCMC
    if mcmc:
        from .mcmc import run_group_mcmc
        rng = np.random.default_rng(seed)
        for gf in gfits.values():
            if gf.ok:
                gf.mcmc = run_group_mcmc(gf.model, gf.fit, mcfg, rng)

    meas = _assemble(name, src, spec, lines, gfits, z_fit, z_err, z_source, mcfg, notes,
                     lunit, res_origin, setup_obj, mcmc, extra)
    meas.flux_unit = funit
    meas.row["error_scale"] = escale if np.isfinite(escale) else None
    meas.row["error_scale_applied"] = bool(escale_applied)
    if not keep_fits:
        meas.groups = []
    return meas


def measure_file(path: str | Path, target_row: dict | None = None, config: Config | None = None,
                 z: float | None = None, format: str | None = None, obj: str | None = None,
                 setup: str | None = None, **kwargs) -> Measurement:
    """Read a spectrum file and measure it.

    Parameters
    ----------
    path : path-like
        Spectrum file (any format :func:`xmpspec.io.read_spectrum` reads).
    target_row : dict, optional
        The matching row of a targets table: its ``z`` (if present and finite)
        is the starting redshift and its other columns are carried into the
        per-object row.
    config : Config, optional
    z : float, optional
        Redshift (overrides the targets row).
    format, obj : str, optional
        Passed to :func:`~xmpspec.io.read_spectrum`.
    setup : str, optional
        Observing set-up name.
    **kwargs
        Passed to :func:`measure_spectrum` (``mcmc``, ``ignore_bad_errors``...).
    """
    from ..io import read_spectrum
    spec = read_spectrum(path, format=format, obj=obj)
    return measure_for_target(spec, path, target_row, z=z, setup=setup, config=config, **kwargs)


def measure_for_target(spectrum: Spectrum, path: str | Path, target_row: dict | None, *,
                       z: float | None = None, targets_given: bool = False,
                       config: Config | None = None, **kwargs) -> Measurement:
    """Measure a spectrum read from ``path`` with its targets row: the one z/name choice.

    :func:`measure_file` and the engine's ``measure_input`` (every command that
    measures) both come here once the row is known. The name is the row's
    ``name``; the redshift is ``z`` if given (``z_source`` ``argument``), else
    the row's finite ``z`` (``targets``), else the spectrum's own, else found
    from the lines; the row's other columns are carried into the per-object row.

    Parameters
    ----------
    spectrum : Spectrum
        The spectrum read from ``path`` (its ``meta['source_file']`` is set to
        ``path`` when empty).
    path : path-like
        The file the spectrum was read from.
    target_row : dict or None
        The matching row of the targets table, if any.
    z : float, optional
        Redshift given by the user (overrides the row's).
    targets_given : bool
        A targets table was given: a spectrum without a row gets the note
        ``no targets row``.
    config : Config, optional
    **kwargs
        Passed to :func:`measure_spectrum` (``setup``, ``mcmc``, ``fitter``...).

    Returns
    -------
    Measurement
    """
    if not spectrum.meta.get("source_file"):
        spectrum.meta["source_file"] = str(path)
    z_source = "argument" if z is not None else None
    extra = name = None
    if target_row is not None:
        extra = {k: v for k, v in target_row.items() if k != "z"}
        name = str(target_row.get("name") or "") or None
        tz = target_row.get("z")
        if z is None and tz is not None and np.isfinite(float(tz)):
            z, z_source = float(tz), "targets"
    if z is None and spectrum.redshift is None:
        log.info("%s: no redshift given: finding it from the lines", path)
    meas = measure_spectrum(spectrum, z=z, config=config, name=name, z_source=z_source,
                            extra=extra, **kwargs)
    if targets_given and target_row is None:
        meas.row["notes"] = "; ".join(filter(None, [meas.row.get("notes"), "no targets row"]))
    return meas
