"""Synthetic 1D spectra of emission-line dwarf galaxies for a named set-up.

The simulator builds, on the reduced-spectrum wavelength grid of a set-up
(:mod:`xmpspec.instruments`):

1. a smooth stellar-like continuum (power law in f_lambda with a small Balmer
   break and optional stellar Balmer absorption of a given equivalent width),
   normalised by the rest-frame EW of Halpha;
2. Gaussian emission lines at redshift ``z``, with the intrinsic velocity
   dispersion added in quadrature to the instrumental resolution at each
   observed wavelength, **integrated over each pixel** (not point-sampled), so
   that ``sum(model * pixel_width)`` equals each line's flux exactly for a
   line that lies on the grid;
3. noise: the source, sky continuum and (optional) night-sky lines are
   converted to electrons with an effective-area model of the set-up
   (``[simulate.throughput.<setup>]``) and the exposure time; Poisson noise on
   source + sky, Gaussian read noise (and ADU digitisation, gain^2/12) over
   the spatial pixels of the extraction aperture for every exposure; the sky is then subtracted
   perfectly (sky lines leave only their noise). The error spectrum is the
   exact 1-sigma of that noise (from the noise-free expectation);
4. optional cosmic-ray hits (masked or left in the data).

The spectrum is returned flux-calibrated in ``xmpspec.FLUX_UNIT`` together
with a flat truth dictionary (input fluxes ``f_<key>``, coverage, expected
line S/N, physical parameters).

Examples
--------
>>> from xmpspec.simulate import simulate_spectrum
>>> spec, truth = simulate_spectrum("goodman_400", z=0.03, n2=-1.8, halpha_flux=500.0,
...                                 exptime=2400.0, seed=1)
>>> round(truth["n2"], 2)
-1.8
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import astropy.units as u
import numpy as np
from scipy.special import ndtr

from ..config import Config, get_active_config
from ..errors import InputError
from ..instruments import C_KMS, Setup, get_setup
from ..lines.catalog import line_catalog
from ..spectrum import FLUX_UNIT, LINE_FLUX_UNIT, Spectrum
from .skylines import sky_line_list

__all__ = ["pixel_edges", "emission_line_model", "continuum_model", "effective_area",
           "atmospheric_extinction",
           "sky_spectrum", "line_snr", "simulate_spectrum", "iter_batch", "simulate_batch",
           "coordinate_name"]

_HC_ERG_A = 1.98644586e-8     # h c (erg Angstrom)
_FWHM_TO_SIGMA = 1.0 / 2.3548200450309493
_BALMER_LIMIT = 3646.0        # rest Angstrom (air ~ vacuum to 1 A: only shapes a smooth step)
_NSIG_WINDOW = 8.0


# --------------------------------------------------------------------------- helpers
def _as_setup(setup: Setup | str) -> Setup:
    return setup if isinstance(setup, Setup) else get_setup(setup)


def _wave_array(wave) -> np.ndarray:
    if isinstance(wave, u.Quantity):
        return wave.to_value(u.AA, equivalencies=u.spectral())
    return np.asarray(wave, float)


def pixel_edges(wave: np.ndarray | u.Quantity) -> np.ndarray:
    """Pixel boundaries (Angstrom) of a grid of pixel-centre wavelengths.

    Inner edges are the mid-points of neighbouring centres; the outer edges
    mirror the first and last inner edges. ``np.diff(pixel_edges(w))`` is the
    pixel width used to integrate the models.

    Parameters
    ----------
    wave : array_like or Quantity
        Strictly increasing pixel centres (Angstrom if no unit).
    """
    w = _wave_array(wave)
    if w.ndim != 1 or w.size < 2:
        raise InputError("wavelength grid must be 1D with at least 2 pixels")
    if not np.all(np.diff(w) > 0):
        raise InputError("wavelength grid is not strictly increasing")
    mid = 0.5 * (w[1:] + w[:-1])
    return np.concatenate(([w[0] - (mid[0] - w[0])], mid, [w[-1] + (w[-1] - mid[-1])]))


def _profiles(edges: np.ndarray, centres: np.ndarray,
              sigmas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of unit-flux Gaussians falling in each pixel near their centres.

    Vectorised over lines: returns ``pix`` (n_lines x W pixel indices) and
    ``frac`` (same shape, the exact integral of each Gaussian over each
    pixel). Only pixels within 8 sigma are computed (the rest hold < 1e-15 of
    the flux); padding entries have ``frac = 0``.
    """
    centres = np.atleast_1d(np.asarray(centres, float))
    sigmas = np.atleast_1d(np.asarray(sigmas, float))
    n_edge = edges.size
    lo = np.clip(np.searchsorted(edges, centres - _NSIG_WINDOW * sigmas) - 1, 0, n_edge - 1)
    hi = np.clip(np.searchsorted(edges, centres + _NSIG_WINDOW * sigmas) + 1, 0, n_edge - 1)
    width = int(max(int((hi - lo).max(initial=0)), 1))
    cols = np.arange(width + 1)
    idx = np.minimum(lo[:, None] + cols[None, :], hi[:, None])  # repeat the last edge
    cdf = ndtr((edges[idx] - centres[:, None]) / sigmas[:, None])
    frac = np.diff(cdf, axis=1)
    pix = np.minimum(lo[:, None] + cols[None, :-1], n_edge - 2)
    return pix, frac


def _line_sigmas(setup: Setup, centres_obs: np.ndarray, sigma_kms: float) -> np.ndarray:
    inst = np.asarray(setup.fwhm_at(centres_obs), float) * _FWHM_TO_SIGMA
    intr = centres_obs * float(sigma_kms) / C_KMS
    return np.sqrt(inst**2 + intr**2)


def _flux_values(fluxes: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in fluxes.items():
        if isinstance(value, u.Quantity):
            value = value.to_value(LINE_FLUX_UNIT)
        value = float(value)
        if not np.isfinite(value):
            raise InputError(f"line flux of '{key}' is not finite ({value})")
        out[key] = value
    return out


# ------------------------------------------------------------------------ models
def emission_line_model(wave_obs_vac: np.ndarray | u.Quantity, z: float,
                        fluxes: Mapping[str, float | u.Quantity], sigma_kms_intrinsic: float,
                        setup: Setup | str, config: Config | None = None) -> u.Quantity:
    """Noise-free emission-line spectrum, pixel-integrated, resolution included.

    Parameters
    ----------
    wave_obs_vac : array_like or Quantity
        Observed vacuum pixel-centre wavelengths (Angstrom if no unit).
    z : float
        Redshift of the lines.
    fluxes : mapping
        ``{line key: flux}``; keys of :func:`xmpspec.lines.catalog.line_catalog`,
        fluxes in 1e-17 erg s^-1 cm^-2 (floats) or Quantities.
    sigma_kms_intrinsic : float
        Intrinsic Gaussian velocity dispersion of the gas (km/s), added in
        quadrature to the instrumental sigma of ``setup`` at each line.
    setup : Setup or str
        Instrument set-up giving the resolution.
    config : Config, optional
        Configuration for the line wavelengths (default: active).

    Returns
    -------
    Quantity
        Flux density in ``xmpspec.FLUX_UNIT`` (1e-17 erg s^-1 cm^-2 A^-1). For
        a line entirely on the grid, ``sum(model * diff(pixel_edges(wave)))``
        equals its flux to rounding.

    Raises
    ------
    InputError
        Unknown line key, negative dispersion, bad grid.
    """
    st = _as_setup(setup)
    edges = pixel_edges(wave_obs_vac)
    if not sigma_kms_intrinsic >= 0:
        raise InputError(f"intrinsic velocity dispersion must be >= 0 (got {sigma_kms_intrinsic})")
    cat = line_catalog(config)
    vals = _flux_values(fluxes)
    keys = list(vals)
    centres = np.array([cat[k].wave for k in keys]) * (1.0 + z)
    sigmas = _line_sigmas(st, centres, sigma_kms_intrinsic)
    model = _lines_on_edges(edges, centres, sigmas, np.array([vals[k] for k in keys]))
    return model * FLUX_UNIT


def _lines_on_edges(edges: np.ndarray, centres: np.ndarray, sigmas: np.ndarray,
                    fluxes: np.ndarray) -> np.ndarray:
    width = np.diff(edges)
    fluxes = np.atleast_1d(np.asarray(fluxes, float))
    keep = fluxes != 0.0
    if not keep.any():
        return np.zeros(width.size)
    pix, frac = _profiles(edges, np.atleast_1d(centres)[keep], np.atleast_1d(sigmas)[keep])
    out = np.bincount(pix.ravel(), weights=(fluxes[keep, None] * frac).ravel(),
                      minlength=width.size)
    return out / width


def continuum_model(wave_obs_vac: np.ndarray | u.Quantity, z: float, level_at_ha: float,
                    beta: float = -1.5, balmer_break: float = 0.1,
                    balmer_abs_ew: float = 0.0, balmer_abs_sigma: float = 10.0,
                    balmer_abs_waves: tuple[float, ...] = (6564.61, 4862.69, 4341.69, 4102.89),
                    ) -> u.Quantity:
    """Smooth stellar-like continuum with optional stellar Balmer absorption.

    Parameters
    ----------
    wave_obs_vac : array_like or Quantity
        Observed pixel-centre wavelengths (Angstrom).
    z : float
        Redshift.
    level_at_ha : float
        Continuum flux density at observed Halpha (1e-17 erg s^-1 cm^-2 A^-1).
    beta : float
        Power-law slope, f_lambda ~ lambda^beta.
    balmer_break : float
        Fractional drop blueward of the Balmer limit (rest 3646 A), smoothed
        over 30 A.
    balmer_abs_ew : float
        Rest-frame equivalent width (A, positive = absorption) of each Balmer
        absorption line in ``balmer_abs_waves``.
    balmer_abs_sigma : float
        Rest-frame Gaussian sigma of the absorption troughs (A).
    balmer_abs_waves : tuple of float
        Rest vacuum wavelengths of the absorbed Balmer lines.

    Returns
    -------
    Quantity
        Flux density in ``xmpspec.FLUX_UNIT`` (pixel-integrated absorption).
    """
    w = _wave_array(wave_obs_vac)
    rest = w / (1.0 + z)
    cont = level_at_ha * (rest / 6564.61) ** beta
    if balmer_break:
        step = 0.5 * (1.0 - np.tanh((_BALMER_LIMIT - rest) / 30.0))
        cont = cont * (1.0 - balmer_break * (1.0 - step))
    if balmer_abs_ew:
        edges = pixel_edges(w)
        centres = np.asarray(balmer_abs_waves, float) * (1.0 + z)
        sig = np.full(centres.size, balmer_abs_sigma * (1.0 + z))
        # absorbed flux of each line = EW_obs x local continuum
        depth = _lines_on_edges(edges, centres, sig,
                                np.full(centres.size, balmer_abs_ew * (1.0 + z)))
        cont = cont * np.clip(1.0 - depth, 0.0, None)
    return cont * FLUX_UNIT


def effective_area(setup: Setup | str, wave: np.ndarray | u.Quantity,
                   config: Config | None = None, airmass: float | None = None) -> u.Quantity:
    """Effective collecting area (telescope x efficiency x atmosphere) of a set-up.

    A Gaussian efficiency envelope of ``[simulate.throughput.<setup>]``
    (``area_m2 * peak * exp(-(lambda - center)^2 / (2 sigma^2))``) times the
    atmospheric transmission at ``airmass`` (:func:`atmospheric_extinction`).

    Parameters
    ----------
    setup : Setup or str
        The set-up.
    wave : array_like or Quantity
        Observed wavelength(s) (Angstrom).
    config : Config, optional
        Configuration (default: active).
    airmass : float, optional
        Airmass (default ``[simulate] airmass``).

    Returns
    -------
    Quantity
        Area in cm^2.
    """
    st = _as_setup(setup)
    cfg = config if config is not None else get_active_config()
    try:
        tp = cfg["simulate"]["throughput"][st.name]
    except KeyError:
        raise InputError(f"no throughput model for set-up '{st.name}' in "
                         "[simulate.throughput] of the configuration") from None
    w = _wave_array(wave)
    eff = float(tp["peak"]) * np.exp(-0.5 * ((w - float(tp["center"])) / float(tp["sigma"])) ** 2)
    am = float(cfg["simulate"]["airmass"] if airmass is None else airmass)
    if not am >= 1.0:
        raise InputError(f"airmass must be >= 1 (got {am})")
    eff = eff * 10.0 ** (-0.4 * am * atmospheric_extinction(w, cfg))
    return float(tp["area_m2"]) * 1e4 * eff * u.cm**2


def atmospheric_extinction(wave: np.ndarray | u.Quantity,
                           config: Config | None = None) -> np.ndarray:
    """Atmospheric extinction in magnitudes per airmass (smooth site-average model).

    Rayleigh scattering ``a (lambda/5500)^-4.05``, aerosols
    ``b (lambda/5500)^-alpha`` and the ozone UV cut-off ``c exp((3400 - lambda)/120)``
    with a, b, alpha, c from ``[simulate]`` (about 0.15 mag at 5500 A and
    0.9 mag at 3200 A, as at La Palma or Cerro Pachon).

    Parameters
    ----------
    wave : array_like or Quantity
        Wavelength (Angstrom).
    config : Config, optional
        Configuration (default: active).
    """
    cfg = config if config is not None else get_active_config()
    sim = cfg["simulate"]
    x = _wave_array(wave) / 5500.0
    return (float(sim["extinction_rayleigh_5500"]) * x**-4.05
            + float(sim["extinction_aerosol_5500"]) * x ** -float(sim["extinction_aerosol_alpha"])
            + float(sim["extinction_ozone_3400"]) * np.exp((3400.0 - 5500.0 * x) / 120.0))


def sky_spectrum(setup: Setup | str, wave_obs_vac: np.ndarray | u.Quantity,
                 sky_level: float | u.Quantity | None = None, sky_lines: bool = True,
                 sky_line_scale: float | None = None, config: Config | None = None) -> u.Quantity:
    """Night-sky surface brightness on a grid: continuum plus emission lines.

    Parameters
    ----------
    setup : Setup or str
        Set-up (resolution of the sky lines).
    wave_obs_vac : array_like or Quantity
        Pixel-centre wavelengths (Angstrom).
    sky_level : float or Quantity, optional
        Sky continuum at 5500 A in 1e-17 erg s^-1 cm^-2 A^-1 arcsec^-2
        (default ``[simulate] sky_level``, a dark sky); flat in f_nu.
    sky_lines : bool
        Add the night-sky lines of :mod:`xmpspec.simulate.skylines`.
    sky_line_scale : float, optional
        Multiplies the line intensities (default ``[simulate] sky_line_scale``).
    config : Config, optional
        Configuration (default: active).

    Returns
    -------
    Quantity
        Surface brightness in 1e-17 erg s^-1 cm^-2 A^-1 arcsec^-2 (pixel-integrated lines).
    """
    st = _as_setup(setup)
    cfg = config if config is not None else get_active_config()
    sim = cfg["simulate"]
    level = _sky_level_value(sky_level, sim)
    w = _wave_array(wave_obs_vac)
    sb = level * (5500.0 / w) ** 2
    if sky_lines:
        scale = float(sim["sky_line_scale"] if sky_line_scale is None else sky_line_scale)
        sb = sb + _sky_line_spectrum(st, w, scale)
    return sb * FLUX_UNIT / u.arcsec**2


_SKY_CACHE: dict[tuple, np.ndarray] = {}


def _sky_line_spectrum(st: Setup, w: np.ndarray, scale: float) -> np.ndarray:
    """Night-sky lines on grid ``w`` (cached: batches reuse the same grid)."""
    key = (st.name, st.resolution, st.constant, float(w[0]), float(w[-1]), w.size, scale)
    hit = _SKY_CACHE.get(key)
    if hit is not None:
        return hit
    lw, lsb = sky_line_list(scale)
    edges = pixel_edges(w)
    inside = (lw > edges[0] - 20) & (lw < edges[-1] + 20)
    lw, lsb = lw[inside], lsb[inside]
    sig = np.atleast_1d(np.asarray(st.fwhm_at(lw), float)) * _FWHM_TO_SIGMA
    out = _lines_on_edges(edges, lw, sig, lsb)
    out.setflags(write=False)
    if len(_SKY_CACHE) > 64:
        _SKY_CACHE.clear()
    _SKY_CACHE[key] = out
    return out


def _sky_level_value(sky_level, sim) -> float:
    if sky_level is None:
        return float(sim["sky_level"])
    if isinstance(sky_level, u.Quantity):
        return float(sky_level.to_value(FLUX_UNIT / u.arcsec**2))
    value = float(sky_level)
    if not value >= 0:
        raise InputError(f"sky level must be >= 0 (got {sky_level})")
    return value


def line_snr(wave: np.ndarray, error: np.ndarray, z: float, fluxes: Mapping[str, float],
             sigma_kms: float, setup: Setup | str, mask: np.ndarray | None = None,
             config: Config | None = None) -> dict[str, float]:
    """Expected (matched-filter) S/N of each line for a given error spectrum.

    ``S/N = F sqrt(sum_i p_i^2 / sigma_i^2)`` with ``p_i`` the pixel-integrated
    profile per unit flux (in flux density): the S/N of the line amplitude
    when its position and width are known. Lines off the grid get 0.

    Parameters
    ----------
    wave, error : ndarray
        Pixel centres (Angstrom) and 1-sigma error (1e-17 erg/s/cm2/A).
    z, fluxes, sigma_kms, setup, config
        As :func:`emission_line_model`.
    mask : ndarray of bool, optional
        Pixels to ignore (True = bad).
    """
    st = _as_setup(setup)
    edges = pixel_edges(wave)
    width = np.diff(edges)
    error = np.asarray(error, float)
    good = np.ones(width.size, bool) if mask is None else ~np.asarray(mask, bool)
    good = good & (error > 0) & np.isfinite(error)
    cat = line_catalog(config)
    vals = _flux_values(fluxes)
    keys = list(vals)
    if not keys:
        return {}
    centres = np.array([cat[k].wave for k in keys]) * (1.0 + z)
    pix, frac = _profiles(edges, centres, _line_sigmas(st, centres, sigma_kms))
    inv = np.where(good, 1.0 / np.where(good, error, 1.0), 0.0)
    info = np.sum((frac / width[pix] * inv[pix]) ** 2, axis=1)
    return {k: float(abs(vals[k]) * math.sqrt(i)) for k, i in zip(keys, info, strict=True)}


def _covered(edges: np.ndarray, centre: float, sigma: float) -> bool:
    return bool(centre - 3.0 * sigma >= edges[0] and centre + 3.0 * sigma <= edges[-1])


def coordinate_name(ra: float, dec: float, prefix: str = "XMP") -> str:
    """IAU-style short name ``<prefix>HHMM+DDMM`` from J2000 RA/Dec in degrees."""
    ra_h = (ra % 360.0) / 15.0
    hh = int(ra_h)
    mm = int((ra_h - hh) * 60.0)
    sign = "+" if dec >= 0 else "-"
    ad = abs(dec)
    dd = int(ad)
    dm = int((ad - dd) * 60.0)
    return f"{prefix}{hh:02d}{mm:02d}{sign}{dd:02d}{dm:02d}"


def _random_position(rng: np.random.Generator, dec_range=(-30.0, 70.0)) -> tuple[float, float]:
    lo, hi = np.sin(np.radians(dec_range))
    return float(rng.uniform(0.0, 360.0)), float(np.degrees(np.arcsin(rng.uniform(lo, hi))))


# -------------------------------------------------------------------- simulation
def simulate_spectrum(setup: Setup | str, z: float,
                      line_fluxes: Mapping[str, float | u.Quantity] | None = None, *,
                      n2: float = -1.8, o3: float | None = None, halpha_flux: float = 300.0,
                      ebv: float = 0.0, ebv_mw: float = 0.0, te: float | None = None,
                      ne: float | None = None, oplus_fraction: float | None = None,
                      s2: float | None = None, sigma_kms: float | None = None,
                      ew_ha: float | None = None, continuum_beta: float | None = None,
                      balmer_break: float | None = None, balmer_abs_ew: float = 0.0,
                      exptime: float | None = None, nexp: int = 1,
                      sky_level: float | u.Quantity | None = None, sky_lines: bool = True,
                      sky_line_scale: float | None = None, airmass: float | None = None,
                      cosmic_rays: int = 0, mask_cosmics: bool = True, seed: int | None = None,
                      rng: np.random.Generator | None = None, name: str | None = None,
                      ra: float | None = None, dec: float | None = None,
                      date_obs: str | None = None, wave_range: tuple[float, float] | None = None,
                      config: Config | None = None, return_model: bool = False,
                      ) -> tuple[Spectrum, dict] | tuple[Spectrum, dict, u.Quantity]:
    """Simulate one reduced, flux-calibrated 1D spectrum of an HII galaxy.

    Parameters
    ----------
    setup : Setup or str
        ``int_ids_r632v``, ``goodman_400``, ``mage``, ``sdss`` (or an alias).
    z : float
        Redshift.
    line_fluxes : mapping, optional
        Explicit observed line fluxes ``{key: flux}`` (1e-17 erg/s/cm2 or
        Quantities); lines not given are absent. If omitted, every catalogue
        line comes from :func:`xmpspec.simulate.hii.hii_line_fluxes` with the
        physical parameters below.
    n2, o3, halpha_flux, ebv, ebv_mw, te, ne, oplus_fraction, s2
        Physical parameters of the nebula (see ``hii_line_fluxes``):
        observed N2 and O3, observed Halpha flux (1e-17 erg/s/cm2), internal
        and Milky Way E(B-V), Te([OIII]) (K, default solved from N2), ne
        (cm^-3), O+/O, log([SII]/Halpha).
    sigma_kms : float, optional
        Intrinsic velocity dispersion (km/s); default ``[simulate] sigma_kms``.
    ew_ha : float, optional
        Rest-frame Halpha equivalent width (A) setting the continuum level:
        continuum at Halpha = F(Halpha) / (EW (1 + z)), with F(Halpha) from
        ``line_fluxes['ha']`` if given, else ``halpha_flux``.
    continuum_beta, balmer_break : float, optional
        Continuum slope and Balmer-break depth.
    balmer_abs_ew : float
        Rest-frame EW (A) of the stellar Balmer absorption lines (0 = none).
        The truth fluxes are the *emission* fluxes.
    exptime : float, optional
        Exposure time of one exposure (s); default the set-up's typical value.
    nexp : int
        Number of exposures (read noise is paid ``nexp`` times).
    sky_level : float or Quantity, optional
        Sky continuum at 5500 A (1e-17 erg/s/cm2/A/arcsec2).
    sky_lines : bool
        Include the noise of the night-sky emission lines.
    sky_line_scale : float, optional
        Scale of the sky-line intensities.
    airmass : float, optional
        Airmass of the observation (atmospheric extinction costs photons);
        default ``[simulate] airmass``.
    cosmic_rays : int
        Number of cosmic-ray hits in the extracted spectrum.
    mask_cosmics : bool
        Mask the hit pixels (True) or leave them in the data.
    seed : int, optional
        Random seed (ignored if ``rng`` is given).
    rng : numpy.random.Generator, optional
        Random generator.
    name, ra, dec : optional
        Object name and J2000 position (deg); drawn at random if absent.
    date_obs : str, optional
        Observing date (ISO) recorded in the metadata and the truth.
    wave_range : (float, float), optional
        Restrict the grid to this observed range (Angstrom).
    config : Config, optional
        Configuration (default: active).
    return_model : bool
        Also return the noise-free model (continuum + lines) of the spectrum.

    Returns
    -------
    spectrum : Spectrum
        Flux-calibrated spectrum in ``xmpspec.FLUX_UNIT`` with 1-sigma error,
        mask (cosmic rays), redshift ``z`` and metadata.
    truth : dict
        Flat dictionary: name, setup, z, ``f_<key>`` (injected flux),
        ``<key>_covered``, ``snr_<key>`` (expected matched-filter S/N), n2, o3,
        o3n2, and every physical and observing parameter.
    model : Quantity
        Only with ``return_model``: the noise-free flux density (the
        expectation of ``spectrum.flux`` outside cosmic-ray hits).

    Raises
    ------
    InputError
        Invalid parameters (negative flux, exposure time, ...).
    """
    st = _as_setup(setup)
    cfg = config if config is not None else get_active_config()
    sim = cfg["simulate"]
    if rng is None:
        rng = np.random.default_rng(seed)
    if not (z > -0.01 and np.isfinite(z)):
        raise InputError(f"redshift must be finite and > -0.01 (got {z})")
    exptime = float(st.typical_exptime if exptime is None else exptime)
    if not exptime > 0:
        raise InputError(f"exposure time must be positive (got {exptime})")
    nexp = int(nexp)
    if nexp < 1:
        raise InputError(f"number of exposures must be >= 1 (got {nexp})")
    if cosmic_rays < 0:
        raise InputError(f"number of cosmic rays must be >= 0 (got {cosmic_rays})")
    sigma_kms = float(sim["sigma_kms"] if sigma_kms is None else sigma_kms)
    ew_ha = float(sim["ew_ha"] if ew_ha is None else ew_ha)
    if not ew_ha > 0:
        raise InputError(f"Halpha equivalent width must be positive (got {ew_ha})")
    beta = float(sim["continuum_beta"] if continuum_beta is None else continuum_beta)
    bbreak = float(sim["balmer_break"] if balmer_break is None else balmer_break)

    cat = line_catalog(cfg)
    params: dict[str, Any]
    if line_fluxes is None:
        fluxes, params = hii_fluxes(halpha_flux, n2, o3, z=z, ebv=ebv, ebv_mw=ebv_mw, ne=ne,
                                    te=te, oplus_fraction=oplus_fraction, s2=s2, config=cfg)
        model_kind = "hii"
    else:
        fluxes = _flux_values(line_fluxes)
        for key in fluxes:
            cat[key]  # raises InputError on unknown keys
        neg = [k for k, v in fluxes.items() if v < 0]
        if neg:
            raise InputError(f"negative line flux for {', '.join(neg)}")
        fluxes = {k: fluxes.get(k, 0.0) for k in cat.keys}
        params = {"ebv": float("nan"), "ebv_mw": float("nan")}
        model_kind = "explicit"

    wave = st.wavelength_grid(*(wave_range or (None, None)))
    edges = pixel_edges(wave)
    width = np.diff(edges)
    keys = cat.keys
    centres = np.array([cat[k].wave for k in keys]) * (1.0 + z)
    sigmas = _line_sigmas(st, centres, sigma_kms)
    fvals = np.array([fluxes[k] for k in keys])
    lines = _lines_on_edges(edges, centres, sigmas, fvals)

    f_ha_cont = fluxes.get("ha", 0.0) or float(halpha_flux)
    level = f_ha_cont / (ew_ha * (1.0 + z))
    absw = tuple(float(x) for x in sim["balmer_absorption_waves"])
    cont = continuum_model(wave, z, level, beta=beta, balmer_break=bbreak,
                           balmer_abs_ew=balmer_abs_ew,
                           balmer_abs_sigma=float(sim["balmer_absorption_sigma"]),
                           balmer_abs_waves=absw).value
    model = cont + lines

    # ---- electrons per pixel
    tp = cfg["simulate"]["throughput"][st.name] if st.name in cfg["simulate"]["throughput"] \
        else None
    if tp is None:
        raise InputError(f"no throughput model for set-up '{st.name}'")
    airmass = float(sim["airmass"] if airmass is None else airmass)
    aeff = effective_area(st, wave, cfg, airmass).to_value(u.cm**2)
    ttot = exptime * nexp
    # e- per (1e-17 erg/s/cm2/A) in each pixel
    conv = 1e-17 * aeff * ttot * width * wave / _HC_ERG_A
    area = float(st.slit_arcsec) * float(tp["aperture_arcsec"])  # arcsec2 of sky
    n_spatial = float(tp["aperture_arcsec"]) / (st.plate_scale * st.binning[1])
    sky_sb = sky_spectrum(st, wave, sky_level, sky_lines, sky_line_scale, cfg).value
    src_e = np.clip(model, 0.0, None) * conv
    sky_e = sky_sb * area * conv
    # read noise and ADU digitisation (gain^2/12) of every spatial pixel, every exposure
    rn_var = n_spatial * nexp * (st.read_noise**2 + st.gain**2 / 12.0)
    var_e = src_e + sky_e + rn_var
    counts = rng.poisson(src_e + sky_e).astype(float) - sky_e + rng.normal(0.0, math.sqrt(rn_var),
                                                                          wave.size)
    flux = counts / conv
    error = np.sqrt(var_e) / conv
    mask = np.zeros(wave.size, bool)

    cr_pix: list[int] = []
    if cosmic_rays:
        lo_e, hi_e = (float(x) for x in sim["cosmic_ray_electrons"])
        for _ in range(int(cosmic_rays)):
            i = int(rng.integers(0, wave.size))
            npx = int(rng.integers(1, 3))
            dep = math.exp(rng.uniform(math.log(lo_e), math.log(hi_e)))
            share = rng.dirichlet(np.ones(npx))
            for j in range(npx):
                k = min(i + j, wave.size - 1)
                flux[k] += dep * share[j] / conv[k]
                cr_pix.append(k)
        if mask_cosmics:
            mask[cr_pix] = True

    snr = line_snr(wave, error, z, fluxes, sigma_kms, st, mask=mask, config=cfg)

    if ra is None or dec is None:
        ra, dec = _random_position(rng)
    if name is None:
        name = coordinate_name(ra, dec, prefix="SIM")

    truth: dict[str, Any] = {
        "name": name, "setup": st.name, "instrument": st.label, "ra": float(ra),
        "dec": float(dec), "z": float(z), "model": model_kind,
    }
    fha, fhb = fluxes.get("ha", 0.0), fluxes.get("hb", 0.0)
    fn2, fo3 = fluxes.get("nii6585", 0.0), fluxes.get("oiii5008", 0.0)
    truth["f_ha"] = fha
    truth["n2"] = math.log10(fn2 / fha) if fn2 > 0 and fha > 0 else float("nan")
    truth["o3"] = math.log10(fo3 / fhb) if fo3 > 0 and fhb > 0 else float("nan")
    truth["o3n2"] = truth["o3"] - truth["n2"]
    for key, c, s in zip(keys, centres, sigmas, strict=True):
        truth[f"f_{key}"] = float(fluxes[key])
        truth[f"{key}_covered"] = _covered(edges, float(c), float(s))
        truth[f"snr_{key}"] = snr[key] if truth[f"{key}_covered"] else 0.0
    # the [OII] doublet as one blended line (low-resolution set-ups measure the sum)
    truth["f_oii_blend"] = truth["f_oii3727"] + truth["f_oii3730"]
    truth["oii_blend_covered"] = truth["oii3727_covered"] and truth["oii3730_covered"]
    for key in ("ebv", "ebv_mw", "te", "te_oii", "ne", "oplus_fraction", "oh_n2", "oh_direct",
                "s2", "halpha_hbeta_intrinsic", "hb_intrinsic_flux"):
        truth[key] = float(params.get(key, float("nan")))
    truth.update({
        "sigma_kms": sigma_kms, "ew_ha": ew_ha, "continuum_beta": beta,
        "balmer_break": bbreak, "balmer_abs_ew": float(balmer_abs_ew),
        "cont_at_ha": level, "exptime": exptime, "nexp": nexp,
        "sky_level": _sky_level_value(sky_level, sim), "sky_lines": bool(sky_lines),
        "airmass": airmass,
        "n_cosmic": int(cosmic_rays), "cosmics_masked": bool(mask_cosmics),
        "seed": -1 if seed is None else int(seed),
    })

    meta = {"name": name, "ra": float(ra), "dec": float(dec), "instrument": st.label,
            "setup": st.name, "exptime": ttot, "nexp": nexp, "fluxed": True,
            "extraction": "BOX", "resolution": float(st.resolution), "airmass": airmass,
            "simulated": True}
    if date_obs:
        meta["date_obs"] = str(date_obs)
        truth["date_obs"] = str(date_obs)
    spec = Spectrum(wavelength=wave * u.AA, flux=flux * FLUX_UNIT, error=error * FLUX_UNIT,
                    mask=mask, redshift=float(z), medium="vacuum", meta=meta)
    if return_model:
        return spec, truth, model * FLUX_UNIT
    return spec, truth


def hii_fluxes(*args, **kwargs):
    """Thin wrapper around :func:`xmpspec.simulate.hii.hii_line_fluxes` (lazy import)."""
    from .hii import hii_line_fluxes
    return hii_line_fluxes(*args, **kwargs)


# ------------------------------------------------------------------------- batch
def _draw_parameters(rng: np.random.Generator, dist: Mapping[str, Any]) -> dict[str, float]:
    def lin(key):
        lo, hi = dist[key]
        return float(rng.uniform(lo, hi))

    def log(key):
        lo, hi = dist[key]
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    return {"z": lin("z_range"), "n2": lin("n2_range"), "halpha_flux": log("halpha_flux_range"),
            "ebv": lin("ebv_range"), "sigma_kms": lin("sigma_kms_range"),
            "ew_ha": log("ew_ha_range"), "ne": log("ne_range"),
            "oplus_fraction": lin("oplus_fraction_range"),
            "o3_delta": float(rng.normal(0.0, dist["o3_scatter"])),
            "s2_delta": float(rng.normal(0.0, dist["s2_scatter"]))}


def iter_batch(n: int, setup: Setup | str | list, seed: int = 0, *, start: int = 0,
               exptime: float | None = None, nexp: int = 1, sky_lines: bool = True,
               cosmic_rays: int = 0, mask_cosmics: bool = True, name_prefix: str = "SIM",
               config: Config | None = None, **distribution) -> Iterator[tuple[Spectrum, dict]]:
    """Iterate over ``n`` simulated spectra drawn from a distribution of galaxies.

    Object ``i`` uses its own random stream (``SeedSequence(seed, spawn_key=(i,))``),
    so any object (or chunk, with ``start``) can be regenerated alone.

    Parameters
    ----------
    n : int
        Number of spectra.
    setup : Setup, str or list
        Set-up, or a list drawn from at random per object.
    seed : int
        Master seed.
    start : int
        Index of the first object (for chunked generation).
    exptime, nexp, sky_lines, cosmic_rays, mask_cosmics
        Observing parameters passed to :func:`simulate_spectrum`.
    name_prefix : str
        Names are ``<prefix><index:05d>``.
    config : Config, optional
        Configuration (default: active).
    **distribution
        Overrides of ``[simulate.batch]``: ``z_range``, ``n2_range`` (uniform),
        ``halpha_flux_range`` (log-uniform, 1e-17 erg/s/cm2), ``ebv_range``,
        ``sigma_kms_range``, ``ew_ha_range`` (log-uniform), ``ne_range``
        (log-uniform), ``oplus_fraction_range``, ``o3_scatter`` and
        ``s2_scatter`` (dex around the default O3(N2) and S2(N2) relations).
        N2 from -2.6 to -0.5 and Halpha down to 30e-17 make many [NII] lines
        weak or undetected (see ``snr_nii6585`` in the truth).

    Yields
    ------
    (Spectrum, dict)
        The spectrum and its truth dictionary.
    """
    from .hii import o3_sequence
    cfg = config if config is not None else get_active_config()
    dist = dict(cfg["simulate"]["batch"])
    unknown = set(distribution) - set(dist)
    if unknown:
        raise InputError(f"unknown batch distribution option(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(dist))}")
    dist.update({k: v for k, v in distribution.items() if v is not None})
    setups = [_as_setup(s) for s in (setup if isinstance(setup, list | tuple) else [setup])]
    sim = cfg["simulate"]
    for i in range(start, start + int(n)):
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(i,)))
        st = setups[int(rng.integers(0, len(setups)))] if len(setups) > 1 else setups[0]
        p = _draw_parameters(rng, dist)
        o3 = o3_sequence(p["n2"], cfg) + p["o3_delta"]
        s2 = float(sim["s2_intercept"]) + float(sim["s2_slope"]) * p["n2"] + p["s2_delta"]
        spec, truth = simulate_spectrum(
            st, p["z"], n2=p["n2"], o3=o3, s2=s2, halpha_flux=p["halpha_flux"], ebv=p["ebv"],
            ne=p["ne"], oplus_fraction=p["oplus_fraction"], sigma_kms=p["sigma_kms"],
            ew_ha=p["ew_ha"], exptime=exptime, nexp=nexp, sky_lines=sky_lines,
            cosmic_rays=cosmic_rays, mask_cosmics=mask_cosmics, rng=rng,
            name=f"{name_prefix}{i:05d}", config=cfg)
        truth["seed"] = int(seed)
        truth["index"] = i
        yield spec, truth


def simulate_batch(n: int, setup: Setup | str | list, seed: int = 0,
                   **kwargs) -> list[tuple[Spectrum, dict]]:
    """List of ``n`` simulated spectra and truths (see :func:`iter_batch`).

    Examples
    --------
    >>> from xmpspec.simulate import simulate_batch, truth_table
    >>> pairs = simulate_batch(5, "sdss", seed=1)
    >>> len(truth_table([t for _, t in pairs]))
    5
    """
    return list(iter_batch(n, setup, seed, **kwargs))
