"""Echelle coadd without rescaling: inverse-variance stack of fluxed orders.

PypeIt's echelle coadd (:func:`pypeit.core.coadd.ech_combspec`, called by
:class:`pypeit.coadd1d.EchelleCoAdd1D`) rescales every order of every
exposure to a preliminary stack before combining them, with two median
rescalings that it applies whatever ``scale_method`` says. On a faint
emission-line galaxy (continuum S/N ~1 per pixel) those scale factors are
set by the noise and by the lines themselves: on the simulated MagE night the
coadd came out 5-14% above the per-order fluxed spectra (coadd / order 1.052
at Halpha in order 9, 1.136 and 1.14 in orders 12 and 13; still 1.05-1.09
with ``scale_method = none``; docs/reduce.md).

Once every order is flux calibrated by the sensitivity function, the orders
and exposures are measurements of the same flux density and need no
rescaling. :func:`stack_spectra` therefore combines them as they are, with
PypeIt's own functions:

- the common wavelength grid is :func:`pypeit.core.wavecal.wvutils.get_wave_grid`
  (``log10`` by default: constant velocity pixels, the native sampling of an
  echelle);
- the stack is :func:`pypeit.core.coadd.spec_reject_comb` (iterated
  :func:`~pypeit.core.coadd.compute_stack` with rejection of outliers between
  the spectra, e.g. cosmic-ray residuals) with per-pixel weights equal to the
  inverse variance of each order of each exposure, so overlapping orders and
  exposures are weighted by their noise and nothing is scaled.
  ``compute_stack`` puts every input pixel into the output bin holding its
  wavelength (nearest grid point, no interpolation) and averages the flux
  *densities* of a bin with the weights: a flux density is preserved, so the
  integral of a line over the output pixels equals the input's (within the
  noise), and the errors of different output pixels stay independent. An
  output bin that receives no input pixel is masked (``wave = 0``; the
  readers drop it).

:func:`coadd_echelle` applies it to the boxcar (or optimal) extraction of
PypeIt spec1d files and writes the result as PypeIt writes its own coadds
(:class:`pypeit.onespec.OneSpec`, via a subclass of
:class:`~pypeit.coadd1d.EchelleCoAdd1D` whose only change is the
combination), so :func:`xmpspec.io.read_spectrum` and ``xmpspec measure``
read it unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["StackResult", "stack_spectra", "coadd_echelle"]

log = logging.getLogger("xmpspec.reduce")


@dataclass
class StackResult:
    """An inverse-variance stack of 1D spectra (see :func:`stack_spectra`).

    Attributes
    ----------
    wave_grid_mid : ndarray
        Centres of the output bins (uniform in ``log10`` or linear wavelength).
    wave, flux, ivar : ndarray
        Weighted mean wavelength, flux density and inverse variance of each
        bin (``wave = 0`` and ``ivar = 0`` where no input pixel landed).
    gpm : ndarray of bool
        Bins holding data.
    nused : ndarray of int
        Input pixels averaged in each bin.
    input_gpms : list of ndarray
        Good-pixel mask of each input spectrum after the outlier rejection.
    n_rejected : int
        Input pixels rejected as outliers.
    """

    wave_grid_mid: np.ndarray
    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    gpm: np.ndarray
    nused: np.ndarray
    input_gpms: list
    n_rejected: int


def stack_spectra(waves, fluxes, ivars, gpms=None, wave_method: str = "log10",
                  dv: float | None = None, dwave: float | None = None,
                  dloglam: float | None = None, spec_samp_fact: float = 1.0,
                  wave_grid_min: float | None = None, wave_grid_max: float | None = None,
                  lower: float = 10.0, upper: float = 10.0, maxiter_reject: int = 5,
                  sn_clip: float = 30.0, maxrej: int | None = None) -> StackResult:
    """Combine 1D spectra (orders x exposures) by inverse variance, without rescaling.

    Parameters
    ----------
    waves, fluxes, ivars : sequence of ndarray
        One array per input spectrum (e.g. every order of every exposure),
        wavelengths in Angstrom (``<= 1`` = no data), flux densities in one
        unit for all spectra, inverse variances.
    gpms : sequence of ndarray of bool, optional
        Good pixels of each spectrum (default: all). Pixels with ``ivar <= 0``,
        a non-finite flux or no wavelength are never used.
    wave_method, dv, dwave, dloglam, spec_samp_fact, wave_grid_min, wave_grid_max
        The output grid, as :func:`pypeit.core.wavecal.wvutils.get_wave_grid`
        (default: uniform in ``log10`` wavelength with the inputs' median
        pixel).
    lower, upper : float
        Rejection thresholds (sigma) of a pixel against the stack
        (:func:`pypeit.core.coadd.spec_reject_comb`); xmpspec uses 10 (a
        3-sigma cut removes the peaks of bright narrow lines).
    maxiter_reject : int
        Rejection iterations; 0 = a single stack, no rejection.
    sn_clip, maxrej
        As :func:`~pypeit.core.coadd.spec_reject_comb`.

    Returns
    -------
    StackResult

    Raises
    ------
    ValueError
        No spectra, mismatched lengths, or no usable pixel.
    """
    from pypeit.core import coadd
    from pypeit.core.wavecal import wvutils

    if len(waves) == 0:
        raise ValueError("no spectra to stack")
    if not (len(waves) == len(fluxes) == len(ivars)):
        raise ValueError("waves, fluxes and ivars must have one array per spectrum")
    if gpms is None:
        gpms = [None] * len(waves)
    w_l, f_l, iv_l, g_l = [], [], [], []
    for w, f, iv, g in zip(waves, fluxes, ivars, gpms, strict=True):
        w = np.asarray(w, float).ravel()
        f = np.asarray(f, float).ravel()
        iv = np.asarray(iv, float).ravel()
        if not (w.shape == f.shape == iv.shape):
            raise ValueError(f"spectrum arrays differ in length ({w.size}, {f.size}, {iv.size})")
        good = np.isfinite(w) & (w > 1.0) & np.isfinite(f) & np.isfinite(iv) & (iv > 0)
        if g is not None:
            good &= np.asarray(g, bool).ravel()
        w_l.append(np.where(np.isfinite(w), w, 0.0))
        f_l.append(np.where(good, f, 0.0))
        iv_l.append(np.where(good, iv, 0.0))
        g_l.append(good)
    keep = [i for i, g in enumerate(g_l) if g.any()]
    if not keep:
        raise ValueError("no usable pixel in any spectrum")
    w_l, f_l, iv_l, g_l = ([a[i] for i in keep] for a in (w_l, f_l, iv_l, g_l))
    wave_grid, wave_grid_mid, _ = wvutils.get_wave_grid(
        waves=w_l, gpms=g_l, wave_method=wave_method, dv=dv, dwave=dwave, dloglam=dloglam,
        spec_samp_fact=spec_samp_fact, wave_grid_min=wave_grid_min,
        wave_grid_max=wave_grid_max)
    # the weight of a pixel is its inverse variance: no scale factor anywhere
    weights = [iv.copy() for iv in iv_l]
    if maxiter_reject > 0 and len(w_l) > 1:
        wave, flux, ivar, gpm, nused, out_gpms = coadd.spec_reject_comb(
            wave_grid, wave_grid_mid, w_l, f_l, iv_l, g_l, weights, sn_clip=sn_clip,
            lower=lower, upper=upper, maxrej=maxrej, maxiter_reject=maxiter_reject)
    else:
        wave, flux, ivar, gpm, nused = coadd.compute_stack(wave_grid, w_l, f_l, iv_l, g_l,
                                                           weights)
        out_gpms = [g.copy() for g in g_l]
    nrej = int(sum((g & ~np.asarray(o, bool)).sum() for g, o in zip(g_l, out_gpms, strict=True)))
    # report the masks on the caller's list (spectra without data: all False)
    full = [np.zeros(np.asarray(w).size, bool) for w in waves]
    for i, o in zip(keep, out_gpms, strict=True):
        full[i] = np.asarray(o, bool)
    gpm = np.asarray(gpm, bool)
    return StackResult(wave_grid_mid=np.asarray(wave_grid_mid, float),
                       wave=np.where(gpm, wave, 0.0), flux=np.where(gpm, flux, 0.0),
                       ivar=np.where(gpm, ivar, 0.0), gpm=gpm,
                       nused=np.asarray(nused, int), input_gpms=full, n_rejected=nrej)


def _coadd_class():
    """:class:`pypeit.coadd1d.EchelleCoAdd1D` with :func:`stack_spectra` as its combination."""
    from pypeit.coadd1d import EchelleCoAdd1D

    class IvarEchelleCoAdd1D(EchelleCoAdd1D):
        """PypeIt's echelle coadd (loading, saving) with an unscaled inverse-variance stack."""

        def coadd(self):
            # load() -> per set-up arrays of shape (nspec, norders, nexp); the
            # sensitivity-function weights it also returns are not used
            self.waves, self.fluxes, self.ivars, self.gpms, self.weights_sens, \
                self.headers = self.load()
            waves, fluxes, ivars, gpms = [], [], [], []
            for w3, f3, i3, g3 in zip(self.waves, self.fluxes, self.ivars, self.gpms,
                                      strict=True):
                for iexp in range(w3.shape[2]):
                    for iord in range(w3.shape[1]):
                        waves.append(w3[:, iord, iexp])
                        fluxes.append(f3[:, iord, iexp])
                        ivars.append(i3[:, iord, iexp])
                        gpms.append(g3[:, iord, iexp])
            p = self.par
            res = stack_spectra(waves, fluxes, ivars, gpms, wave_method=p["wave_method"],
                                dv=p["dv"], dwave=p["dwave"], dloglam=p["dloglam"],
                                spec_samp_fact=p["spec_samp_fact"],
                                wave_grid_min=p["wave_grid_min"],
                                wave_grid_max=p["wave_grid_max"], lower=p["lower"],
                                upper=p["upper"], maxiter_reject=p["maxiter_reject"],
                                sn_clip=p["sn_clip"], maxrej=p["maxrej"])
            self.n_rejected = res.n_rejected
            self.n_spectra = len(waves)
            return res.wave_grid_mid, res.wave, res.flux, res.ivar, res.gpm, None

    return IvarEchelleCoAdd1D


def coadd_echelle(spec1d_files, objids, out, spectrograph, par, sensfunc_file) -> dict:
    """Coadd the echelle spectra of one object from PypeIt spec1d files (no rescaling).

    Parameters
    ----------
    spec1d_files : list of path-like
        Flux-calibrated (if ``par['flux_value']``) PypeIt spec1d files.
    objids : list of str
        The object (``ECH_NAME``, e.g. ``OBJ0001``) to take from each file.
    out : path-like
        Output coadd (:class:`pypeit.onespec.OneSpec`).
    spectrograph : pypeit.spectrographs.spectrograph.Spectrograph
        The spectrograph.
    par : pypeit.par.pypeitpar.Coadd1DPar
        PypeIt's coadd parameters (``ex_value``, ``flux_value``, grid,
        ``lower``/``upper``/``maxiter_reject``/``sn_clip``/``maxrej``);
        the scaling parameters are ignored.
    sensfunc_file : path-like
        The sensitivity function (PypeIt's echelle loader requires it).

    Returns
    -------
    dict
        ``n_spectra`` (orders x exposures combined) and ``n_rejected``
        (input pixels rejected as outliers).
    """
    cls = _coadd_class()
    co = cls([str(f) for f in spec1d_files], list(objids), spectrograph=spectrograph,
             par=par, sensfuncfile=str(sensfunc_file), chk_version=False)
    co.run()
    co.save(str(out))
    log.info("echelle coadd %s: %d order spectra stacked by inverse variance (no "
             "rescaling), %d outlier pixels rejected", out, co.n_spectra, co.n_rejected)
    return {"n_spectra": co.n_spectra, "n_rejected": co.n_rejected}
