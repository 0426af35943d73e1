"""Noise of PypeIt's sky model in the boxcar extraction variance.

PypeIt subtracts a sky model fitted to the pixels of the slit outside the
object mask (:func:`pypeit.core.skysub.global_skysub`: a b-spline in
wavelength, breakpoints every ``bspline_spacing`` = 0.6 pixel, times a
Legendre polynomial along the slit) and sums ``image - sky`` over the boxcar.
The variance it gives that sum (``BOX_COUNTS_IVAR``) is the sum of the pixel
variances only: the sky model is treated as exact. It is not: it is a least
squares fit to the noisy sky pixels, and its error enters every boxcar pixel of
a spectral row *coherently*. For a fit that follows every pixel row the extra
variance of the boxcar sum is about ``N_box**2 * var_pix / N_sky`` (``N_box``
boxcar pixels, ``N_sky`` sky pixels per row), i.e. a factor ``N_box / N_sky``
of the pixel term. On long slits ``N_sky >> N_box`` and it hardly matters; on
short slits and echelle orders (MagE: 17 binned pixels along the 10" slit, an
extended target's object mask covering up to 90% of it, a 2.5" boxcar of ~8
pixels) it is comparable to or larger than the pixel term.

This module adds that term. The sky fit of each slit is known when PypeIt's
:func:`~pypeit.core.skysub.global_skysub` runs: its inputs (inverse variance,
tilts, slit, sky-pixel mask) and its model. After the extraction, the same
function is run again ``NREAL`` (6) times on the model plus Gaussian noise
drawn from that inverse variance (a parametric bootstrap, fixed seed; the
refits skip PypeIt's preliminary log-sky masking and its outlier rejection,
which Gaussian noise does not need: same variance, 10x faster, and no
rejection decision that a rounding difference could flip between runs).
The variance of the boxcar sum of ``image - refit`` over the realisations,
minus the pixel term, row by row and smoothed with a running mean over
``SMOOTH_ROWS`` (41) spectral rows, is the variance the sky subtraction adds:
the model's own variance plus twice its (negative) covariance with the
boxcar pixels, which matters when sky pixels of the fit lie inside the
boxcar (MagE: the object mask is narrower than the 2.5" boxcar, and only
2-4 pixels per row survive the 3-pixel edge trimming; the model's variance
alone overestimated the errors by 25-40%). That term
is added to ``BOX_COUNTS_IVAR`` / ``BOX_COUNTS_SIG`` of every object
extracted with the global sky (the boxcar of xmpspec's reductions:
``no_local_sky`` or boxcar-only). It is PypeIt's own fit, rejection and all,
so the result holds whatever the slit geometry, the spatial polynomial or the
masks. (A closed form of the model's variance, ``b^T (A^T W A)^-1 b`` with
the design matrix of PypeIt's final b-spline and its weights, matched on
synthetic slits but gave 3x the refitted scatter on an order of the
simulated MagE standard; it is not used.) Where PypeIt
fitted a local sky (optimal extraction), and for the optimal spectrum,
nothing is changed.

Inside the sky-protection windows (:mod:`xmpspec.reduce.skyprotect`) the
subtracted sky is not PypeIt's fit but an interpolation or a refit from the
slit ends; there the variance of PypeIt's fit is used as the estimate.

:func:`install_pypeit_hook` installs it (wrapping
:func:`pypeit.core.skysub.global_skysub` and
:meth:`pypeit.extraction.Extract.extract`); :func:`sky_model_box_variance`
is the computation.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["sky_model_box_variance", "boxcar_weights", "add_sky_variance", "refit_function",
           "install_pypeit_hook", "uninstall_pypeit_hook", "NREAL", "SMOOTH_ROWS"]

log = logging.getLogger("xmpspec.reduce")

#: noise realisations refitted per slit
NREAL = 6
#: spectral rows of the running mean that smooths the per-row variance
SMOOTH_ROWS = 41

_ORIGINAL: dict = {}
#: last sky fit of each slit (inputs and model), keyed by the slit's pixels
_FITS: dict = {}


def boxcar_weights(trace, radius, nspat):
    """Overlap of each spatial pixel with a boxcar ``[trace - radius, trace + radius]``.

    Parameters
    ----------
    trace : ndarray
        Spatial position of the trace per spectral row (nspec,).
    radius : float
        Boxcar radius in pixels.
    nspat : int
        Spatial pixels of the image.

    Returns
    -------
    rows, cols, weights : ndarray
        Pixels with a non-zero weight and their weights.
    """
    trace = np.asarray(trace, float)
    off = np.arange(-int(np.ceil(radius)) - 1, int(np.ceil(radius)) + 2)
    cols = np.round(trace)[:, None].astype(int) + off[None, :]
    lo = np.maximum(cols - 0.5, trace[:, None] - radius)
    hi = np.minimum(cols + 0.5, trace[:, None] + radius)
    w = np.clip(hi - lo, 0.0, 1.0)
    rows = np.broadcast_to(np.arange(trace.size)[:, None], cols.shape)
    ok = (w > 0) & (cols >= 0) & (cols < nspat)
    return rows[ok], cols[ok], w[ok]


def sky_model_box_variance(fit_sky, model, ivar, thismask, rows, cols, weights, nspec,
                           nreal: int = NREAL, smooth: int = SMOOTH_ROWS,
                           seed: int = 0) -> np.ndarray:
    """Variance the sky fit adds to a boxcar sum, by refitting noise realisations.

    In each realisation, image = model + noise (drawn from ``ivar``) on the
    slit, the sky is refitted and the boxcar sum of ``image - refit`` taken;
    its variance over the realisations minus the pixel term
    ``sum(w**2 / ivar)`` is returned: the sky model's variance *and* its
    covariance with the boxcar pixels (negative where sky pixels of the fit
    lie inside the boxcar, as on short echelle orders whose object mask is
    narrower than the boxcar).

    Parameters
    ----------
    fit_sky : callable
        ``fit_sky(image) -> model values on thismask``: the sky fit to repeat
        (:func:`refit_function`).
    model : ndarray
        Fitted sky on the pixels of ``thismask`` (the fit's result).
    ivar : ndarray
        Inverse variance image the fit used (noise is drawn from it).
    thismask : ndarray of bool
        The slit's pixels.
    rows, cols, weights : ndarray
        Boxcar pixels and weights (:func:`boxcar_weights`).
    nspec : int
        Spectral rows.
    nreal : int
        Noise realisations.
    smooth : int
        Running mean (rows) applied to the per-row result.
    seed : int
        Seed of the noise (results are reproducible).

    Returns
    -------
    ndarray
        Extra variance per spectral row (can be negative; 0 where the boxcar is empty).
    """
    from scipy.ndimage import uniform_filter1d

    rng = np.random.default_rng(seed)
    iv = ivar[thismask]
    sd = np.where(iv > 0, 1.0 / np.sqrt(np.where(iv > 0, iv, 1.0)), 0.0)
    img = np.zeros(thismask.shape)
    sky = np.zeros(thismask.shape)
    sdimg = np.zeros(thismask.shape)
    sdimg[thismask] = sd
    pix = np.bincount(rows, weights=(weights * sdimg[rows, cols]) ** 2, minlength=nspec)
    sums = []
    for _ in range(int(nreal)):
        img[thismask] = model + sd * rng.standard_normal(sd.size)
        sky[thismask] = fit_sky(img)
        sums.append(np.bincount(rows, weights=weights * (img - sky)[rows, cols],
                                minlength=nspec))
    extra = np.var(np.asarray(sums), axis=0, ddof=1) - pix
    inbox = np.bincount(rows, weights=weights, minlength=nspec) > 0
    if smooth and smooth > 1:
        num = uniform_filter1d(np.where(inbox, extra, 0.0), int(smooth), mode="nearest")
        den = uniform_filter1d(inbox.astype(float), int(smooth), mode="nearest")
        extra = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.where(inbox, extra, 0.0)


def _slit_key(thismask) -> tuple:
    idx = np.flatnonzero(thismask)
    if idx.size == 0:
        return (0, 0, 0, 0)
    return (int(idx.size), int(idx[0]), int(idx[-1]), int(idx[idx.size // 2]))


def install_pypeit_hook() -> None:
    """Add the sky model's variance to PypeIt's boxcar extraction (idempotent).

    Wraps :func:`pypeit.core.skysub.global_skysub` (to keep each slit's last
    fit: inputs and model) and :meth:`pypeit.extraction.Extract.extract` (to
    add the variance to the boxcar spectra of objects extracted with the
    global sky).
    """
    from pypeit import extraction
    from pypeit.core import skysub

    if (skysub, "global_skysub") not in _ORIGINAL:
        orig = skysub.global_skysub
        _ORIGINAL[(skysub, "global_skysub")] = orig

        def global_skysub(image, ivar, tilts, thismask, *args, _orig=orig, **kwargs):
            sky = _orig(image, ivar, tilts, thismask, *args, **kwargs)
            key = _slit_key(thismask)
            if np.any(sky):
                _FITS[key] = (np.array(sky, float), ivar, tilts, thismask, args, dict(kwargs))
            else:
                _FITS.pop(key, None)
            return sky

        skysub.global_skysub = global_skysub

    ext = extraction.Extract
    if (ext, "extract") not in _ORIGINAL:
        orig_extract = ext.extract
        _ORIGINAL[(ext, "extract")] = orig_extract

        def extract(self, global_sky, *args, _orig=orig_extract, **kwargs):
            out = _orig(self, global_sky, *args, **kwargs)
            par = self.par["reduce"]
            if par["skysub"]["no_local_sky"] or par["extraction"]["skip_optimal"]:
                try:
                    add_sky_variance(self)
                except Exception as exc:  # noqa: BLE001 - never lose a reduction over it
                    log.warning("sky-model variance not added to the boxcar errors: %s", exc)
            return out

        ext.extract = extract


def refit_function(record, global_skysub):
    """``fit_sky(image)``: a kept sky fit repeated on another image (for the bootstrap).

    Parameters
    ----------
    record : tuple
        ``(model, ivar, tilts, thismask, args, kwargs)`` as the hook keeps it.
    global_skysub : callable
        PypeIt's (unwrapped) :func:`~pypeit.core.skysub.global_skysub`.

    Returns
    -------
    callable
        The same fit (inputs, mask, spacing, polynomial) without PypeIt's
        preliminary log-sky masking and without outlier rejection.
    """
    _, ivar, tilts, fmask, args, kwargs = record
    # no rejection in the refits: Gaussian noise needs none, and a pixel rejected or kept
    # by a rounding difference (threads, BLAS) would make the result differ between runs
    kw = {**kwargs, "pos_mask": False, "maxiter": 3, "sigrej": 1e6, "show_fit": False}

    def fit_sky(img):
        return global_skysub(img, ivar, tilts, fmask, *args, **kw)
    return fit_sky


def add_sky_variance(extract) -> int:
    """Add the sky model's variance to the boxcar spectra of a PypeIt ``Extract``.

    Parameters
    ----------
    extract : pypeit.extraction.Extract
        After its extraction (``sobjs`` filled).

    Returns
    -------
    int
        Number of objects updated.
    """
    sobjs = getattr(extract, "sobjs", None)
    if sobjs is None or len(sobjs) == 0:
        return 0
    from pypeit.core import skysub
    orig = _ORIGINAL.get((skysub, "global_skysub"), skysub.global_skysub)
    nspec, nspat = extract.sciImg.image.shape
    good = extract.sciImg.select_flag(invert=True)
    n = 0
    for sobj in sobjs:
        if sobj.BOX_COUNTS_IVAR is None or sobj.TRACE_SPAT is None:
            continue
        thismask = extract.slitmask == sobj.SLITID
        rec = _FITS.get(_slit_key(thismask))
        if rec is None:
            continue
        model, ivar, _, fmask, _, _ = rec
        fit_sky = refit_function(rec, orig)
        rows, cols, w = boxcar_weights(sobj.TRACE_SPAT, float(sobj.BOX_R_PIX), nspat)
        keep = thismask[rows, cols] & good[rows, cols]
        var_sky = sky_model_box_variance(fit_sky, model, ivar, fmask, rows[keep], cols[keep],
                                         w[keep], nspec, seed=int(sobj.SLITID))
        ivar_box = np.asarray(sobj.BOX_COUNTS_IVAR, float)
        pos = ivar_box > 0
        new = np.zeros_like(ivar_box)
        var_old = 1.0 / ivar_box[pos]
        # the extra term can be negative (sky pixels of the fit inside the boxcar); never
        # let a noisy estimate take more than 90% of PypeIt's variance away
        new[pos] = 1.0 / np.maximum(var_old + var_sky[pos], 0.1 * var_old)
        ratio = float(np.median(np.sqrt(ivar_box[pos] / new[pos]))) if pos.any() else 1.0
        sobj.BOX_COUNTS_IVAR = new
        sobj.BOX_COUNTS_SIG = np.sqrt(np.where(new > 0, 1.0 / np.where(new > 0, new, 1.0), 0.0))
        log.info("sky-model noise added to the boxcar errors of %s: median error x %.3f",
                 getattr(sobj, "NAME", "?"), ratio)
        n += 1
    return n


def uninstall_pypeit_hook() -> None:
    """Restore PypeIt's original functions and forget the fits."""
    for (owner, name), orig in list(_ORIGINAL.items()):
        setattr(owner, name, orig)
        del _ORIGINAL[(owner, name)]
    _FITS.clear()
