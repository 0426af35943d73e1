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
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, QTable, Table

from ..config import Config, get_active_config
from ..errors import ConfigError, CoverageError, InputError
from ..instruments import C_KMS, Setup, get_setup
from ..spectrum import FLUX_UNIT, Spectrum, as_spectrum
from .catalog import GROUPS, OPTIONAL_LINE_DEFS, line_catalog
from .fitcore import FitResult, fit_free, fit_linear
from .integrated import integrate_halpha_nii
from .model import GAUSS_FWHM, GroupModel
from .noise import error_scale, line_free_mask
from .posterior import n2_from_samples, n2_posterior
from .ratios import RATIOS, difference_one, ratio_one, snr_label
from .redshift import find_redshift

__all__ = ["Measurement", "GroupFit", "measure_spectrum", "measure_file", "lines_table",
           "objects_table", "LINE_KEYS", "STATES"]

LN10 = math.log(10.0)
log = logging.getLogger("xmpspec.lines.measure")
OPTIONAL_KEYS = tuple(d[0] for d in OPTIONAL_LINE_DEFS)
STATES = ("detected", "upper_limit", "lower_limit", "not_covered", "failed")
BALMER = ("ha", "hb", "hg", "hd")
LINE_KEYS = ("oii3727", "oii3730", "oii_blend", "neiii3870", "hd", "hg", "feii4360", "oiii4364",
             "heii4687", "hb", "oiii4960", "oiii5008", "hei5877", "oi6302", "nii6550",
             "ha", "nii6585", "sii6718", "sii6733")


# --------------------------------------------------------------------------- results
@dataclass
class GroupFit:
    """One group's fit, kept for figures and MCMC.

    Attributes
    ----------
    group : str
    keys : list of str
        Covered lines of the group (in model order).
    model : GroupModel
    fit : FitResult or None
    kinematics : str
        ``free`` or ``tied:<group>``.
    snr : float
        Highest line S/N of the group.
    message : str
        Failure reason (empty on success).
    """

    group: str
    keys: list[str]
    free_keys: list[str]
    model: GroupModel
    fit: FitResult | None
    kinematics: str
    snr: float = 0.0
    message: str = ""
    mcmc: dict | None = None
    fallback: str = ""
    dropped: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True if the group was fitted successfully."""
        return self.fit is not None and self.fit.success


@dataclass
class Measurement:
    """The measurement of one spectrum.

    Attributes
    ----------
    name : str
        Object name.
    line_rows : list of dict
        One dict per catalogue line; :attr:`lines` is the same as a QTable
        (see :func:`lines_table` for the columns).
    row : dict
        The per-object values (column names of DEVELOPERS.md).
    groups : list of GroupFit
        Fits, for figures.
    notes : list of str
        Warnings about this object (also in ``row['notes']``).
    """

    name: str
    line_rows: list[dict]
    row: dict
    groups: list[GroupFit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flux_unit: Any = None
    line_flux_unit: Any = None

    @property
    def lines(self) -> QTable:
        """The per-line table (built on access; see :func:`lines_table`)."""
        return _lines_qtable(self.line_rows, self.line_flux_unit)

    def object_table(self) -> QTable:
        """The per-object row as a one-row :class:`~astropy.table.QTable`."""
        return objects_table([self])


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
    dpix = 1.01 * float(np.median(np.diff(wave)))
    for ln in lines:
        mu = ln.rest * (1.0 + z)
        fwhm = GAUSS_FWHM * (sig_a + sig_b * mu)
        lo, hi = mu - 1.5 * fwhm, mu + 1.5 * fwhm
        if lo < wave[0] or hi > wave[-1]:
            ln.covered, ln.reason = False, (f"observed {mu:.1f} A outside the coverage "
                                            f"{wave[0]:.0f}-{wave[-1]:.0f} A")
            continue
        i0, i1 = np.searchsorted(wave, [mu - max(fwhm, dpix), mu + max(fwhm, dpix)],
                                 side="right")
        i0 = max(i0 - 1, 0)
        near = np.abs(wave[i0:i1 + 1] - mu) <= max(fwhm, dpix)
        frac = good[i0:i1 + 1][near].mean() if near.any() else 0.0
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
    rest = np.array([ln.rest for ln in covered])
    mus = rest * (1.0 + z)
    half = mcfg["window_kms"] / C_KMS
    lo, hi = mus.min() * (1 - half), mus.max() * (1 + half)
    i0, i1 = np.searchsorted(spec_w, [lo, hi])
    i0, i1 = max(i0, 0), min(i1, spec_w.size)
    wave = spec_w[i0:i1]
    good = spec_good[i0:i1].copy()
    sig_inst = sig_a + sig_b * wave
    # mask neighbouring lines not modelled in this group (away from the group's own lines)
    near_own = np.zeros(wave.size, bool)
    for mu in mus:
        near_own |= np.abs(wave - mu) < 4.0 * (sig_a + sig_b * mu) + 3.0 * mu * 100.0 / C_KMS
    for rest_n in nuisance:
        mu_n = rest_n * (1.0 + z)
        if lo - 10 < mu_n < hi + 10:
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
                        z_err: float, z_sys: float) -> None:
    """Propagate the redshift uncertainty of tied kinematics into a linear fit's covariance.

    ``sigma_z**2 = z_err**2 + (z_sys (1 + z))**2`` (the reference group's error and the
    relative wavelength calibration between groups); ``d theta / dz`` from the
    derivative of the normal equations. Negligible for isolated lines, large for
    blended ones whose flux split depends on the centres ([OII] at low resolution,
    [FeII]4360 + [OIII]4364).
    """
    var = (z_err**2 if np.isfinite(z_err) else 0.0) + (z_sys * (1.0 + z)) ** 2
    if not var > 0:
        return
    # d theta/dz of the normal equations (B^T W B) theta = B^T W y
    B, dB, _ = model.design(z, sv, derivs=True)
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
    idx = [keys.index(k) for k in free_keys]
    if len(idx) < 2:
        return False
    mu = np.sort(model.rest[idx] * (1.0 + z))
    sep = np.diff(mu)
    mid = 0.5 * (mu[1:] + mu[:-1])
    fwhm = GAUSS_FWHM * (model.inst_a + model.inst_b * mid)
    return bool(np.any(sep < fwhm_multiple * fwhm))


def _snr(fit: FitResult, n_free: int) -> float:
    if fit is None or not fit.success:
        return 0.0
    th = fit.theta[:n_free]
    var = np.diag(fit.theta_cov)[:n_free]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = th / np.sqrt(var)
    s = s[np.isfinite(s)]
    return float(s.max()) if s.size else 0.0


def _do_fit(model: GroupModel, z: float, sv: float, free: bool, mcfg: dict, fitter: str):
    if fitter == "lmfit":
        from .lmfit_model import fit_group_lmfit
        return fit_group_lmfit(model, z, sv, free=free,
                               max_shift_kms=float(mcfg["max_shift_kms"]),
                               max_sigma_kms=float(mcfg["max_sigma_kms"]))
    if free:
        return fit_free(model, z, sv, max_iter=int(mcfg["max_iterations"]),
                        max_shift_kms=float(mcfg["max_shift_kms"]),
                        max_sigma_kms=float(mcfg["max_sigma_kms"]))
    return fit_linear(model, z, sv)


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
    # never shrink the errors below error_scale_min_applied (default 1: a continuum scatter
    # below the error spectrum - noise-free or smoothed/resampled spectra - does not make
    # the lines more significant); only a larger scatter inflates them
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
    sv0 = float(mcfg["initial_sigma_kms"])
    built: dict[str, tuple] = {}
    for g in GROUPS:
        b = _build_group(g, [ln for ln in lines if ln.group == g], wv, fl, er, good, z,
                         sig_a, sig_b, mcfg, nuisance)
        if b is not None:
            built[g] = b

    # S/N of each group at the starting kinematics (linear fits)
    first = {}
    for g, (_keys, _free, model) in built.items():
        first[g] = fit_linear(model, z, sv0)
    # groups whose free lines blend at this resolution (unresolved [OII] at R ~ 1000): z and
    # the flux ratio are degenerate, so they take the reference kinematics when there is one
    bl_fwhm = float(mcfg.get("blended_fwhm", 1.0))
    blended = {g: _blended(built[g][2], built[g][0], built[g][1], z, bl_fwhm) for g in built}
    thr = float(mcfg["free_kinematics_snr"])
    z_sys = float(mcfg.get("tied_z_sys_kms", 0.0)) / C_KMS
    order = sorted((g for g in built if g != "hg_oiii4364"
                    and _snr(first[g], len(built[g][1])) >= thr),
                   key=lambda g: (blended[g], -_snr(first[g], len(built[g][1]))))
    gfits: dict[str, GroupFit] = {}
    opt_snr = float(mcfg.get("optional_line_snr", 2.0))

    def fit_group(g, kz, ksv, free, kz_err=float("nan")):
        """Fit group g; refit without its optional lines below ``optional_line_snr``.

        Tied fits (``free`` False) carry the redshift error ``kz_err`` of the reference
        and the calibration term ``tied_z_sys_kms`` in their covariance.
        """
        def one(model):
            r = _do_fit(model, kz, ksv, free, mcfg, fitter)
            if not free and r.success:
                _add_redshift_error(model, r, kz, ksv, kz_err, z_sys)
            return r

        keys, free_keys, model = built[g]
        res = one(model)
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
        if (g != "hg_oiii4364" and first[g].success and _snr(first[g], len(free_keys)) >= thr
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
        for key, d in vals.items():
            i = d["index"]
            r = rows[key]
            mu = model.rest[i] * (1.0 + fit.z)
            r["obs_wave"] = mu
            r["obs_wave_err"] = model.rest[i] * fit.z_err if np.isfinite(fit.z_err) else None
            r["gauss_flux"], r["gauss_flux_err"] = d["flux"], d["err"]
            r["flux"], r["flux_err"], r["method"] = d["flux"], d["err"], "gaussian"
            r["snr"] = d["flux"] / d["err"] if d["err"] > 0 else None
            r["fwhm"] = GAUSS_FWHM * sig_obs[i] / mu * C_KMS
            r["fwhm_intrinsic"] = GAUSS_FWHM * fit.sigma_v
            r["kinematics"] = gf.kinematics
            cont = float(model.continuum_at(mu, fit.theta)[0])
            if cont > 0:
                basis = model.continuum_basis_at(mu)[0]
                nf = len(gf.free_keys)
                grad = np.zeros(model.n_lin)
                grad[:nf] = model.tie_matrix[i] / cont
                grad[nf:nf + model.n_cont] = -d["flux"] * basis / cont**2
                var = float(grad @ fit.theta_cov @ grad)
                r["ew"] = d["flux"] / cont / (1.0 + fit.z)
                r["ew_err"] = math.sqrt(max(var, 0.0)) / (1.0 + fit.z)
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
    full_model = model.evaluate(fit.z, fit.sigma_v, fit.theta, full=True)
    mu = {k: model.rest[gf.keys.index(k)] * (1 + fit.z) for k in gf.keys}
    sg = {k: sig[gf.keys.index(k)] for k in gf.keys}
    prof = model.line_profiles(fit.z, fit.sigma_v, full=True)
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


# --------------------------------------------------------------------------- tables
_LINE_COLS = [
    ("object", str, None), ("line", str, None), ("label", str, None), ("group", str, None),
    ("rest_wave", float, u.AA), ("obs_wave", float, u.AA), ("obs_wave_err", float, u.AA),
    ("flux", float, "L"), ("flux_err", float, "L"), ("flux_limit", float, "L"),
    ("method", str, None), ("snr", float, None), ("state", str, None),
    ("gauss_flux", float, "L"), ("gauss_flux_err", float, "L"),
    ("ew", float, u.AA), ("ew_err", float, u.AA), ("fwhm", float, u.km / u.s),
    ("fwhm_intrinsic", float, u.km / u.s), ("kinematics", str, None), ("note", str, None),
]


def _column(name, values, dtype, unit):
    mask = [v is None or (isinstance(v, float) and not np.isfinite(v)) for v in values]
    if dtype is str:
        data = ["" if v is None else str(v) for v in values]
        return MaskedColumn(data, name=name, mask=mask if any(mask) else None, dtype=str)
    if dtype is bool:
        return MaskedColumn([bool(v) if v is not None else False for v in values], name=name,
                            mask=mask, dtype=bool)
    data = np.array([np.nan if m else float(v) for v, m in zip(values, mask, strict=True)])
    return MaskedColumn(data, name=name, mask=mask, unit=unit, dtype=float)


def _lines_qtable(rows: list[dict], lunit) -> QTable:
    t = Table()
    for name, dtype, unit in _LINE_COLS:
        t[name] = _column(name, [r.get(name) for r in rows], dtype,
                          lunit if unit == "L" else unit)
    return QTable(t)


def lines_table(measurements: list[Measurement]) -> QTable:
    """Stack the per-line tables of several measurements.

    Columns: ``object, line, label, group, rest_wave, obs_wave, obs_wave_err,
    flux, flux_err, flux_limit, method (gaussian/integrated), snr, state
    (detected/upper_limit/not_covered/failed), gauss_flux, gauss_flux_err,
    ew (rest frame), ew_err, fwhm (observed, km/s), fwhm_intrinsic, kinematics, note``.
    """
    rows = [r for m in measurements for r in m.line_rows]
    unit = next((m.line_flux_unit for m in measurements if m.line_flux_unit is not None),
                u.dimensionless_unscaled)
    units = {str(m.line_flux_unit) for m in measurements if m.line_flux_unit is not None}
    if len(units) > 1:
        raise InputError(f"measurements have different flux units ({', '.join(sorted(units))}); "
                         "write them to separate tables")
    return _lines_qtable(rows, unit)


_BOOL_COLS = ("n2_upper_limit", "o3_upper_limit", "o3n2_upper_limit", "mcmc_converged",
              "n2_flux_weaker_than_gate", "error_scale_applied")
_FLOAT_COLS = ("z_err", "n2", "n2_err", "o3", "o3_err", "o3n2", "o3n2_err", "significance", "ra",
               "dec", "n2_gaussian", "n2_integrated", "n2_p16", "n2_p50", "n2_p84", "n2_p977",
               "nii6585_snr_reported", "error_scale", "n2_gate_bias")


def objects_table(measurements: list[Measurement]) -> QTable:
    """One row per measurement with the column names of DEVELOPERS.md.

    Fluxes ``f_<key>``, ``f_<key>_err``, ``f_<key>_limit`` carry the line-flux
    unit; states are strings; undefined values are masked.
    """
    keys: list[str] = []
    for m in measurements:
        for k in m.row:
            if k not in keys:
                keys.append(k)
    t = Table()
    lunit = next((m.line_flux_unit for m in measurements if m.line_flux_unit is not None), None)
    for k in keys:
        vals = [m.row.get(k) for m in measurements]
        nonnull = [v for v in vals if v is not None]
        if k in _BOOL_COLS:
            t[k] = _column(k, vals, bool, None)
        elif nonnull and all(isinstance(v, bool | np.bool_) for v in nonnull):
            t[k] = _column(k, vals, bool, None)
        elif nonnull and all(isinstance(v, int | float | np.integer | np.floating)
                             for v in nonnull):
            unit = None
            if k.startswith("f_") or k in ("f_ha", "f_ha_err"):
                unit = lunit
            t[k] = _column(k, vals, float, unit)
        elif not nonnull and (k.startswith("f_") or k in _FLOAT_COLS):
            t[k] = _column(k, vals, float, lunit if k.startswith("f_") else None)
        else:
            t[k] = _column(k, vals, str, None)
    for k in ("ra", "dec"):
        if k in t.colnames and t[k].dtype.kind == "f":
            t[k].unit = u.deg
    return QTable(t)


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
    spec.meta.setdefault("source_file", str(path))
    if not spec.meta.get("source_file"):
        spec.meta["source_file"] = str(path)
    z_source = "argument" if z is not None else None
    extra = None
    name = None
    if target_row is not None:
        extra = {k: v for k, v in target_row.items() if k not in ("z",)}
        name = str(target_row.get("name") or "") or None
        tz = target_row.get("z")
        if z is None and tz is not None and np.isfinite(float(tz)):
            z, z_source = float(tz), "targets"
    return measure_spectrum(spec, z=z, setup=setup, config=config, name=name,
                            z_source=z_source, extra=extra, **kwargs)
