"""Protect bright, spatially extended emission lines from sky over-subtraction.

PypeIt fits the sky of a slit (:func:`pypeit.core.skysub.global_skysub`) as a
b-spline in wavelength times a Legendre polynomial along the slit (order 1-3
depending on the slit length) to every pixel outside the object mask. The
object mask is as wide as the object's *continuum* (its FWHM, and where the
model S/N of the continuum profile exceeds 1). The emission lines of an
extended star-forming galaxy (Halpha, [OIII]5008, Hbeta) extend further: their
wings fall on "sky" pixels, the sky model at those wavelengths rises (and,
with a spatial polynomial fitted to wings on both sides of the mask, bulges
under the object), and the extraction loses line flux: the known PypeIt
failure on these targets (science.md).

Two remedies, applied only inside wavelength windows around the bright lines
at the target's redshift (science frames only; standards are left alone):

``refit`` (default for long slits)
    The pixels of a window that lie within ``radius`` of an object trace are
    left out of PypeIt's global sky fit (its ``skymask``), and the sky inside
    the window is fitted again by PypeIt's own
    :func:`pypeit.core.skysub.global_skysub` from the remaining pixels (the
    slit's ends) with no spatial polynomial (flat along the slit, as the
    flat field leaves it), so the polynomial is not extrapolated from the
    ends to the object. Night-sky lines inside the window are still fitted
    and subtracted. ``radius`` defaults to 5 boxcar radii (20" with
    xmpspec's 4" boxcar); a slit whose ends would keep fewer than
    ``MIN_SKY_PIX`` sky pixels per row falls back to ``interpolate``.
``interpolate`` (echelle orders, slits too short for ``refit``)
    The sky *continuum* of every spatial column inside a window is replaced
    by a straight line between the median sky model of pixels on each side
    of the window; PypeIt's sky model is kept where it shows a
    night-sky line, so sky lines in a window are still subtracted. Where sky
    lines are is known without the science data: PypeIt's archived night-sky
    spectrum (``paranal_sky.fits``, vacuum, the one PypeIt uses for flexure;
    part of its package data) convolved to the set-up's resolution gives the
    lines adding at least ``MIN_LINE_FRAC`` (25%) of the continuum (its median
    over 40 A). The side pixels are all those within 6 FWHM of the window where
    the archive's lines add less than 5% (within +-0.5 FWHM), or the 5 least
    affected if fewer are free (the more pixels, the less the interpolation
    depends on the noise of PypeIt's model: on short echelle orders it
    scatters by +-100% of the sky continuum from pixel to pixel), and a peak of PypeIt's sky model over the interpolated continuum (by at least
    ``MIN_MODEL_FRAC``, 5%) within 0.5 FWHM of such an archived line is a sky
    line: its pixels, down to 5% or to the next local minimum, keep PypeIt's
    model (:func:`sky_line_pixels`). Peaks within ``LINE_CORE_FWHM`` (1.5
    FWHM) of the target's own emission lines are never taken for sky lines:
    there PypeIt's model is raised by the over-subtraction of the line itself.
    An archived sky line adding at least ``OVERLAP_FRAC`` (100%) of the
    continuum within 1 FWHM of an emission line is reported
    (:func:`sky_line_overlaps`, a warning of the reduction): there the sky is
    interpolated, the sky line not subtracted, and the line's flux is
    uncertain. Each window logs (info) how many pixels were interpolated and
    how many kept. Without a resolution (``fwhm``) the whole window is
    interpolated, as before: a sky line inside it is then not subtracted and
    one on its edge is interpolated across the window (Halpha at 6900 A with
    OH 6914/6925 A in and on the edge of its window: 40% of its flux).
    Windows are only as wide as the line (3 FWHM + 300 km/s on each side).

Measured with PypeIt's own sky code on a simulated Goodman frame
(``tests/test_reduce_skyprotect.py``; Halpha with an exponential scale of 4"
along the slit, continuum 1", PypeIt's object mask +-8 pixels = 2.4"):
PypeIt alone 0.885 of the flux in the boxcar (0.997 for a 1" scale),
``interpolate`` 1.000 in a window free of sky lines (1.001 without the sky-line
search), ``refit`` 0.997; with OH 6914/6925 A in / on the edge of the window
(true sky 0.995): ``interpolate`` 0.989 (0.405 without the sky-line search;
the OH 6914 boxcar residual +2.6 sigma, PypeIt's own sky +0.4 sigma),
``refit`` 0.993 (1 sigma 0.4%). On the simulated MagE night (13 windows, no
sky line in them) the tested lines stayed within 1-3% of the injected fluxes
with the sky-line search (Halpha 1.025, Hbeta 1.016, [OIII]5008 1.023,
[NII]6585 1.019; N2 -1.702 +- 0.022 for -1.700; with 5 side pixels instead
of every line-free one within 6 FWHM, [NII]6585 came out at 1.108: PypeIt's
model of a short order scatters by +-100% of the sky continuum between
pixels). Most of PypeIt's loss comes from the spatial Legendre term of its
sky model (order 3 on long slits), which follows the line's wings on both
sides of the mask and bulges under the object: with ``[reduce][skysub]
no_poly = True`` PypeIt alone loses 4.4% instead of 11.5%.

:func:`install_pypeit_hook` installs them into PypeIt (wrapping
:meth:`pypeit.find_objects.FindObjects.create_skymask` and
:meth:`~pypeit.find_objects.FindObjects.global_skysub` for ``refit``, and
:meth:`pypeit.extraction.Extract.extract` for ``interpolate``).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["protect_sky_model", "window_exclusion_mask", "refit_skymask", "fit_window_sky",
           "install_pypeit_hook", "sky_line_overlaps", "archive_sky_spectrum", "archive_line_fraction",
           "archive_line_centres", "sky_line_pixels", "MIN_LINE_FRAC", "MIN_MODEL_FRAC",
           "OVERLAP_FRAC",
           "uninstall_pypeit_hook", "METHODS", "MIN_SKY_PIX", "DEFAULT_RADIUS_BOXCARS"]

log = logging.getLogger("xmpspec.reduce")

#: protection methods (see module docstring)
METHODS = ("refit", "interpolate")
#: fewest sky pixels per spectral row that ``refit`` must keep at the slit ends
MIN_SKY_PIX = 12
#: default ``refit`` radius around each object trace, in boxcar radii
DEFAULT_RADIUS_BOXCARS = 5.0
#: fewest fraction of the sky continuum a night-sky line of the archived sky spectrum
#: must add at the resolution to be looked for (the archive's noise and the solar
#: absorption lines of its continuum make peaks of 0.1-0.2 every few A)
MIN_LINE_FRAC = 0.25
#: fewest fraction of the continuum PypeIt's sky model must exceed it by to be kept
MIN_MODEL_FRAC = 0.05
#: archived sky line (line / continuum at the resolution) reported when it falls on an
#: emission line
OVERLAP_FRAC = 1.0
#: half-width (instrumental FWHM) around the target's emission lines where an excess of
#: PypeIt's sky model is not taken for a sky line (it is PypeIt's over-subtraction there)
LINE_CORE_FWHM = 1.5
#: tolerance (instrumental FWHM) between a sky-line peak of the sky model and an archived line
LINE_MATCH_FWHM = 0.5


def protect_sky_model(skymodel: np.ndarray, waveimg: np.ndarray, windows,
                      inmask: np.ndarray | None = None, edge_pix: int = 5,
                      spec_axis: int = 0, fwhm=None, sky_spectrum=None, lines=None,
                      min_frac: float = MIN_LINE_FRAC, max_search_fwhm: float = 6.0,
                      report: list | None = None) -> tuple[np.ndarray, int]:
    """Replace the sky continuum inside wavelength windows by an interpolation.

    The ``interpolate`` method (see the module docstring). In every spatial
    column, the sky model inside a window is replaced by a straight line
    between the median sky model of ``edge_pix`` pixels on each side of the
    window. With ``fwhm``, night-sky lines are taken into account: the side
    pixels are those within ``max_search_fwhm`` of the window free of
    archived sky lines (or the ``edge_pix`` least affected), and
    PypeIt's sky model is kept where it has a night-sky line
    (:func:`sky_line_pixels`: a peak of the model over the interpolated
    continuum at the wavelength of a line of the archived sky spectrum).

    Parameters
    ----------
    skymodel : ndarray
        2D sky model (counts), spectral axis ``spec_axis``.
    waveimg : ndarray
        Wavelength of each pixel (same shape; 0 or NaN outside slits).
    windows : iterable of (float, float)
        Observed wavelength windows (same wavelength scale as ``waveimg``).
    inmask : ndarray of bool, optional
        Pixels that may be modified (e.g. inside the slit); default all with
        a positive wavelength.
    edge_pix : int
        Number of pixels on each side of a window averaged for the background
        (with ``fwhm``: the fewest).
    spec_axis : int
        Spectral axis of the images.
    fwhm : float or callable, optional
        Instrumental FWHM (A), or a function of wavelength giving it. Without
        it night-sky lines are not looked for (every pixel is interpolated).
    sky_spectrum : (ndarray, ndarray), optional
        Archived sky spectrum (wavelength, flux) in the wavelength scale of
        ``waveimg``; default :func:`archive_sky_spectrum`.
    lines : iterable of float, optional
        Wavelengths of the target's emission lines (default: the window
        centres). Within ``LINE_CORE_FWHM`` of them no sky line is kept (PypeIt's
        model is raised by the line there); an archived sky line of at least
        ``OVERLAP_FRAC`` within 1 FWHM of one is reported (``overlap``).
    min_frac : float
        Smallest peak of an archived sky line, as a fraction of the sky
        continuum at the resolution.
    max_search_fwhm : float
        Range beyond a window (instrumental FWHM) searched for the side pixels.
    report : list, optional
        Receives one dict per window: ``window``, ``interpolated`` and ``kept``
        (pixels), ``overlap`` (emission lines with an archived sky line within 1 FWHM).

    Returns
    -------
    protected : ndarray
        Copy of ``skymodel`` with the windows replaced.
    n_pixels : int
        Number of pixels changed.
    """
    sky = np.array(skymodel, dtype=float, copy=True)
    wav = np.asarray(waveimg, float)
    if spec_axis == 1:
        sky, wav = sky.T, wav.T
        inmask = None if inmask is None else np.asarray(inmask).T
    orig = sky.copy()
    ok = np.isfinite(wav) & (wav > 0)
    if inmask is not None:
        ok &= np.asarray(inmask, bool)
    if fwhm is not None and sky_spectrum is None:
        sky_spectrum = archive_sky_spectrum()
    nspec = sky.shape[0]
    changed = 0
    for lo, hi in windows:
        inwin = ok & (wav >= lo) & (wav <= hi)
        cols = np.where(inwin.any(axis=0))[0]
        if cols.size == 0:
            continue
        centres, tol, fw, dirty = np.zeros(0), 0.0, 0.0, None
        if fwhm is not None and sky_spectrum is not None:
            mid = 0.5 * (lo + hi)
            fw = float(fwhm(mid)) if callable(fwhm) else float(fwhm)
            tol = LINE_MATCH_FWHM * fw
            band = ok[:, cols] & (np.abs(wav[:, cols] - mid) < 0.5 * (hi - lo) + 60 * fw)
            wb = wav[:, cols][band]
            aw, af = archive_line_fraction(wb.min(), wb.max(), fw, *sky_spectrum)
            centres = archive_line_centres(wb.min(), wb.max(), fw, *sky_spectrum,
                                           min_frac=min_frac)
            if aw.size:
                def dirty(w, _aw=aw, _af=af, _t=tol):
                    return np.max([np.interp(w + d, _aw, _af) for d in (-_t, 0.0, _t)],
                                  axis=0)
        elines = np.array([0.5 * (lo + hi)] if lines is None else
                          [w for w in lines if lo - 2 * fw <= w <= hi + 2 * fw], float)
        n_int = n_kept = 0
        for j in cols:
            rows = np.where(inwin[:, j])[0]
            r0, r1 = rows.min(), rows.max()
            below = np.arange(max(r0 - edge_pix, 0), r0)
            above = np.arange(r1 + 1, min(r1 + 1 + edge_pix, nspec))
            below = below[ok[below, j]]
            above = above[ok[above, j]]
            if dirty is not None:      # the side pixels least affected by sky lines
                disp = abs(wav[r1, j] - wav[r0, j]) / max(r1 - r0, 1)
                search = max(int(np.ceil(max_search_fwhm * fw / max(disp, 1e-6))), edge_pix)
                far_b = np.arange(r0 - 1, max(r0 - 1 - search, -1), -1)
                far_a = np.arange(r1 + 1, min(r1 + 1 + search, nspec))
                far_b, far_a = far_b[ok[far_b, j]], far_a[ok[far_a, j]]
                below = _side_pixels(far_b, dirty(wav[far_b, j]), edge_pix, below)
                above = _side_pixels(far_a, dirty(wav[far_a, j]), edge_pix, above)
            if below.size == 0 and above.size == 0:
                continue
            if below.size and above.size:
                y0, y1 = np.median(orig[below, j]), np.median(orig[above, j])
                x0, x1 = below.mean(), above.mean()
            else:
                x0, x1 = 0.0, 1.0
                y0 = y1 = np.median(orig[below if below.size else above, j])
            b0 = int(min(below.min() if below.size else r0, r0))
            b1 = int(max(above.max() if above.size else r1, r1))
            seg = np.arange(b0, b1 + 1)
            cont = y0 + (y1 - y0) * (seg - x0) / (x1 - x0)
            keep = np.zeros(seg.size, bool)
            if centres.size:
                good = ok[seg, j]
                wg = wav[seg[good], j]
                core = (np.abs(wg[:, None] - elines[None, :]) < LINE_CORE_FWHM * fw).any(axis=1)
                keep[good] = sky_line_pixels(orig[seg[good], j], cont[good], wg, centres, tol,
                                             MIN_MODEL_FRAC, exclude=core)
            win = (seg >= r0) & (seg <= r1)
            new = np.where(keep, orig[seg, j], cont)
            sky[r0:r1 + 1, j] = new[win]
            k = int((keep & win).sum())
            n_kept += k
            n_int += int(win.sum()) - k
            changed += r1 - r0 + 1
        strong = centres
        if centres.size:
            strong = centres[np.interp(centres, aw, af) >= OVERLAP_FRAC]
        overlap = [float(w) for w in elines if lo <= w <= hi and strong.size
                   and np.any(np.abs(strong - w) < fw)]
        if fwhm is not None:
            log.info("sky protection: window %.1f-%.1f: %d pixels interpolated, %d kept "
                     "(night-sky lines)%s", lo, hi, n_int, n_kept,
                     "; a night-sky line overlaps the emission line at " + ", ".join(
                         f"{w:.1f}" for w in overlap) + " A (its flux is uncertain)"
                     if overlap else "")
        if report is not None:
            report.append({"window": (float(lo), float(hi)), "interpolated": n_int,
                           "kept": n_kept, "overlap": overlap})
    if spec_axis == 1:
        sky = sky.T
    return sky, changed


# ------------------------------------------------------------------ night-sky lines
_ARCHIVE: dict = {}


def archive_sky_spectrum():
    """PypeIt's archived night-sky spectrum (``paranal_sky.fits``, vacuum, 0.05 A).

    The spectrum PypeIt uses for flexure, read with PypeIt's own reader
    (:func:`pypeit.core.skyspec.load_sky_spectrum`); it comes with PypeIt's
    package data (no download).

    Returns
    -------
    (ndarray, ndarray) or None
        Wavelength (A) and flux; ``None`` if the file cannot be read.
    """
    if "paranal" not in _ARCHIVE:
        try:
            import pypeit.spectrographs  # noqa: F401  (before onespec: circular import)
            from pypeit.core.skyspec import load_sky_spectrum
            spec = load_sky_spectrum("paranal_sky.fits")
            _ARCHIVE["paranal"] = (np.asarray(spec.wave, float), np.asarray(spec.flux, float))
        except Exception as exc:  # noqa: BLE001 - protection degrades to plain interpolation
            log.warning("sky protection: PypeIt's archived sky spectrum not readable (%s); "
                        "night-sky lines in the windows are not detected", exc)
            _ARCHIVE["paranal"] = None
    return _ARCHIVE["paranal"]


def archive_line_fraction(wmin: float, wmax: float, fwhm: float, sky_wave: np.ndarray,
                          sky_flux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Night-sky line contribution relative to the sky continuum, at a resolution.

    The archived spectrum is convolved with a Gaussian of ``fwhm``; its
    continuum is the median of the unconvolved spectrum over 40 A (the lines
    of an archived sky spectrum are narrow and cover a small part of any
    40 A), smoothed the same way. Below ~4500 A the solar absorption lines of
    the continuum make spurious peaks of 0.3-0.8.

    Parameters
    ----------
    wmin, wmax : float
        Wavelength range (A).
    fwhm : float
        Instrumental FWHM (A).
    sky_wave, sky_flux : ndarray
        Archived sky spectrum (e.g. :func:`archive_sky_spectrum`), uniform sampling.

    Returns
    -------
    wave, frac : ndarray
        Wavelengths of the archive in the range and (line / continuum) there.
    """
    from scipy.ndimage import gaussian_filter1d, percentile_filter

    dw = float(np.median(np.diff(sky_wave[:1000])))
    pad = 40.0 + 5 * fwhm
    sel = (sky_wave >= wmin - pad) & (sky_wave <= wmax + pad)
    w, f = sky_wave[sel], sky_flux[sel]
    if w.size < 10:
        return w, np.zeros_like(w)
    sig = fwhm / (2 * np.sqrt(2 * np.log(2))) / dw
    cont = percentile_filter(f, 50, size=max(int(40.0 / dw), 3), mode="nearest")
    cont = gaussian_filter1d(cont, sig, mode="nearest")
    conv = gaussian_filter1d(f, sig, mode="nearest")
    frac = (conv - cont) / np.where(cont > 0, cont, np.inf)
    keep = (w >= wmin) & (w <= wmax)
    return w[keep], frac[keep]


def archive_line_centres(wmin: float, wmax: float, fwhm: float, sky_wave: np.ndarray,
                         sky_flux: np.ndarray, min_frac: float = MIN_LINE_FRAC) -> np.ndarray:
    """Wavelengths of the night-sky lines (blends) that add ``min_frac`` of the continuum.

    Local maxima of :func:`archive_line_fraction` above ``min_frac``.

    Parameters
    ----------
    wmin, wmax, fwhm, sky_wave, sky_flux
        As :func:`archive_line_fraction`.
    min_frac : float
        Smallest peak line / continuum at the resolution.

    Returns
    -------
    ndarray
        Line centres (A), sorted.
    """
    w, frac = archive_line_fraction(wmin, wmax, fwhm, sky_wave, sky_flux)
    if w.size < 3:
        return np.zeros(0)
    peak = (frac[1:-1] > frac[:-2]) & (frac[1:-1] >= frac[2:]) & (frac[1:-1] > min_frac)
    return w[1:-1][peak]


def sky_line_pixels(sky: np.ndarray, cont: np.ndarray, wave: np.ndarray,
                    line_centres: np.ndarray, tol: float,
                    min_frac: float = MIN_MODEL_FRAC,
                    exclude: np.ndarray | None = None) -> np.ndarray:
    """Pixels of one spatial column where the sky model is a night-sky line.

    A peak of the sky model over its interpolated continuum (``sky - cont``
    larger than ``min_frac`` of ``cont``) is a night-sky line if an archived
    line lies within ``tol`` of it; the pixels kept are those around the peak
    down to ``min_frac`` or to the next local minimum (so that the flank of a
    neighbouring excess, e.g. PypeIt's over-subtraction of the target's own
    emission line, is not taken with it). An excess with no archived line at
    its peak is not a sky line and is interpolated, and so is any peak in
    ``exclude`` (the cores of the target's emission lines, where PypeIt's
    model is raised by the line itself); the kept pixels do not extend into
    ``exclude``.

    Parameters
    ----------
    sky, cont : ndarray
        Sky model and its continuum along the spectral axis (1D, same length).
    wave : ndarray
        Wavelengths of the pixels (increasing or decreasing).
    line_centres : ndarray
        Archived sky-line wavelengths (:func:`archive_line_centres`).
    tol : float
        Largest peak - archive distance (A).
    min_frac : float
        Smallest excess / continuum.
    exclude : ndarray of bool, optional
        Pixels never taken for a sky line.

    Returns
    -------
    ndarray of bool
    """
    sky, cont, wave = (np.asarray(a, float) for a in (sky, cont, wave))
    n = sky.size
    out = np.zeros(n, bool)
    if n < 3 or len(line_centres) == 0:
        return out
    exc = sky - cont
    sig = exc > min_frac * np.abs(cont)
    if exclude is not None:
        sig &= ~np.asarray(exclude, bool)
    lc = np.asarray(line_centres, float)
    for i in np.where(sig)[0]:
        if (i > 0 and exc[i - 1] > exc[i]) or (i < n - 1 and exc[i + 1] > exc[i]):
            continue                                  # not a local maximum
        if np.min(np.abs(lc - wave[i])) > tol:
            continue
        lo = i
        while lo > 0 and sig[lo - 1] and exc[lo - 1] <= exc[lo]:
            lo -= 1
        hi = i
        while hi < n - 1 and sig[hi + 1] and exc[hi + 1] <= exc[hi]:
            hi += 1
        out[lo:hi + 1] = True
    return out


def _side_pixels(cand, dirt, edge_pix, default):
    """Side pixels of a window: every candidate free of sky lines (dirtiness below
    ``MIN_MODEL_FRAC``), or the ``edge_pix`` least affected if fewer are free."""
    if cand.size == 0:
        return default
    clean = dirt < MIN_MODEL_FRAC
    if clean.sum() >= edge_pix:
        return np.sort(cand[clean])
    return np.sort(cand[np.argsort(dirt, kind="stable")[:edge_pix]])


def window_exclusion_mask(waveimg: np.ndarray, windows, traces, radius_pix: float,
                          thismask: np.ndarray | None = None) -> np.ndarray:
    """Pixels to leave out of the sky fit: inside a window and near an object.

    The ``refit`` method (see the module docstring): AND the complement of
    this mask into PypeIt's ``skymask`` (True = usable for the sky fit).

    Parameters
    ----------
    waveimg : ndarray
        Wavelength of each pixel, shape ``(nspec, nspat)`` (spectral axis 0, as
        PypeIt's images).
    windows : iterable of (float, float)
        Observed wavelength windows (same scale as ``waveimg``).
    traces : iterable of ndarray
        Spatial position (pixels) of each object's trace at every spectral
        row (PypeIt's ``TRACE_SPAT``).
    radius_pix : float
        Half-width (pixels) of the region left out around each trace.
    thismask : ndarray of bool, optional
        Pixels of the slit; the mask is limited to them.

    Returns
    -------
    ndarray of bool
        True where the pixel must not enter the sky fit.
    """
    wav = np.asarray(waveimg, float)
    nspec, nspat = wav.shape
    inwin = np.zeros(wav.shape, bool)
    good = np.isfinite(wav) & (wav > 0)
    for lo, hi in windows:
        inwin |= good & (wav >= lo) & (wav <= hi)
    near = np.zeros(wav.shape, bool)
    spat = np.arange(nspat, dtype=float)[None, :]
    for tr in traces:
        tr = np.asarray(tr, float).reshape(-1)
        if tr.size != nspec:
            raise ValueError(f"trace has {tr.size} rows, image {nspec}")
        near |= np.abs(spat - tr[:, None]) < radius_pix
    out = inwin & near
    if thismask is not None:
        out &= np.asarray(thismask, bool)
    return out


# ------------------------------------------------------------------ PypeIt hooks
_ORIGINAL: dict = {}
_STATE: dict = {"windows": [], "method": "refit", "radius_arcsec": None,
                "fallback_slits": set(), "fwhm": None, "lines": None, "overlaps": set()}


def _protect(sky, waveimg, inmask):
    """:func:`protect_sky_model` with the hook's settings; records sky-line overlaps."""
    report: list = []
    out, n = protect_sky_model(sky, waveimg, _STATE["windows"], inmask=inmask,
                               fwhm=_STATE["fwhm"], lines=_STATE["lines"], report=report)
    for r in report:
        for w in r["overlap"]:
            _STATE["overlaps"].add((r["window"], w))
    return out, n


def sky_line_overlaps() -> list[tuple[tuple[float, float], float]]:
    """Emission lines of the protected windows on which an archived night-sky line falls.

    Collected by the ``interpolate`` hook since :func:`install_pypeit_hook`;
    the sky-subtracted flux of those lines is uncertain.

    Returns
    -------
    list of ((float, float), float)
        Window and emission-line wavelength (A), sorted.
    """
    return sorted(_STATE["overlaps"])


def refit_skymask(findobj, sobjs_obj, skymask: np.ndarray, windows,
                  radius_arcsec: float | None = None, fallback: set | None = None) -> np.ndarray:
    """``refit``: leave the window pixels near the objects out of PypeIt's sky fit.

    What the hook does inside :meth:`pypeit.find_objects.FindObjects.create_skymask`.

    Parameters
    ----------
    findobj : pypeit.find_objects.FindObjects
        PypeIt's object-finding instance (or an object with its attributes
        ``waveimg`` or ``wv_calib``/``tilts``, ``slits``, ``slitmask``,
        ``reduce_bpm``, ``par``, ``get_platescale``).
    sobjs_obj : pypeit.specobjs.SpecObjs
        The objects found.
    skymask : ndarray of bool
        PypeIt's sky mask (True = usable for the sky fit).
    windows : iterable of (float, float)
        Observed wavelength windows.
    radius_arcsec : float, optional
        Half-width around each trace left out (default
        ``DEFAULT_RADIUS_BOXCARS`` boxcar radii).
    fallback : set, optional
        Receives the ``spat_id`` of slits too short to keep ``MIN_SKY_PIX``
        sky pixels per row; their mask is left unchanged.

    Returns
    -------
    ndarray of bool
        The sky mask with the excluded pixels set to False.
    """
    fallback = set() if fallback is None else fallback
    if not windows or sobjs_obj is None or sobjs_obj.nobj == 0:
        return skymask
    waveimg = getattr(findobj, "waveimg", None)
    if waveimg is None:
        if getattr(findobj, "wv_calib", None) is None:
            log.warning("sky protection: no wavelength calibration in object finding; "
                        "falling back to interpolating the sky model")
            fallback.update(int(s) for s in findobj.slits.spat_id)
            return skymask
        waveimg = findobj.wv_calib.build_waveimg(findobj.tilts, findobj.slits,
                                                 spat_flexure=findobj.spat_flexure_shift)
    skymask = np.array(skymask, bool, copy=True)
    if radius_arcsec is None:
        radius_arcsec = DEFAULT_RADIUS_BOXCARS * findobj.par["reduce"]["extraction"][
            "boxcar_radius"]
    for slit_idx in np.where(np.logical_not(findobj.reduce_bpm))[0]:
        slit_spat = int(findobj.slits.spat_id[slit_idx])
        thismask = findobj.slitmask == slit_spat
        objs = sobjs_obj[sobjs_obj.SLITID == slit_spat]
        if len(objs) == 0:
            continue
        pscale = findobj.get_platescale(slitord_id=findobj.slits.slitord_id[slit_idx])
        excl = window_exclusion_mask(waveimg, windows, [o.TRACE_SPAT for o in objs],
                                     radius_arcsec / pscale, thismask)
        if not excl.any():
            continue
        rows = np.where(excl.any(axis=1))[0]
        left = (thismask & skymask & ~excl)[rows].sum(axis=1)
        if np.median(left) < MIN_SKY_PIX:
            log.warning("sky protection: slit %d keeps only %d sky pixels per row beyond "
                        "%.1f\" of the object; interpolating the sky model in the line "
                        "windows instead", slit_spat, int(np.median(left)), radius_arcsec)
            fallback.add(slit_spat)
            continue
        skymask[excl] = False
        log.info("sky protection: slit %d, %d pixels within %.1f\" of the object left out "
                 "of the sky fit in %d window(s)", slit_spat, int(excl.sum()), radius_arcsec,
                 len(windows))
    return skymask


def fit_window_sky(image, ivar, tilts, thismask, slit_left, slit_right, inmask, waveimg,
                   windows, sky, bsp: float = 0.6, trim_edg=(3, 3), sigrej: float = 3.0,
                   max_mask_frac: float = 0.8, pad_pix: int = 10):
    """``refit``: PypeIt's sky re-fitted in each window with no spatial polynomial.

    PypeIt's global sky model multiplies its b-spline by a Legendre polynomial
    along the slit (order 3 on long slits). With the window pixels near the
    object left out (:func:`refit_skymask`), that polynomial would be
    extrapolated from the slit ends to the object, which adds noise and lets
    residual line wings at the ends bulge under the object. Inside each window
    (plus ``pad_pix`` rows on each side for the b-spline's ends) the sky is
    therefore fitted again with :func:`pypeit.core.skysub.global_skysub`,
    ``no_poly=True`` (flat along the slit: the flat field has taken out the
    slit illumination), on the same pixels (``inmask``), and the model inside
    the windows replaced.

    Parameters
    ----------
    image, ivar, tilts : ndarray
        PypeIt's science image, inverse variance and tilts (nspec, nspat).
    thismask : ndarray of bool
        Pixels of the slit.
    slit_left, slit_right : ndarray
        Slit edges (nspec,).
    inmask : ndarray of bool
        Pixels usable for the sky fit (PypeIt's bad-pixel mask, the slit and
        the sky mask with the window exclusions).
    waveimg : ndarray
        Wavelengths.
    windows : iterable of (float, float)
        Observed wavelength windows.
    sky : ndarray
        PypeIt's global sky model; a copy is returned with the windows replaced.
    bsp, trim_edg, sigrej, max_mask_frac
        As PypeIt's global sky fit (``bspline_spacing``, ``trim_edge``, ...).

    Returns
    -------
    ndarray
        The sky model.
    """
    from pypeit.core import skysub

    out = np.array(sky, dtype=float, copy=True)
    wav = np.asarray(waveimg, float)
    good = thismask & np.isfinite(wav) & (wav > 0)
    for lo, hi in windows:
        inwin = good & (wav >= lo) & (wav <= hi)
        if not inwin.any():
            continue
        rows = np.where(inwin.any(axis=1))[0]
        r0, r1 = max(rows.min() - pad_pix, 0), min(rows.max() + pad_pix, wav.shape[0] - 1)
        band = np.zeros_like(thismask)
        band[r0:r1 + 1] = thismask[r0:r1 + 1]
        fit_in = band & inmask
        if fit_in.sum() < MIN_SKY_PIX * (r1 - r0 + 1):
            log.warning("sky protection: too few sky pixels to re-fit the window %.1f-%.1f; "
                        "PypeIt's sky model kept there", lo, hi)
            continue
        model = skysub.global_skysub(image, ivar, tilts, band, slit_left, slit_right,
                                     inmask=fit_in, bsp=bsp, sigrej=sigrej,
                                     trim_edg=tuple(trim_edg), no_poly=True, pos_mask=True,
                                     max_mask_frac=max_mask_frac)
        if not np.any(model):
            log.warning("sky protection: the window %.1f-%.1f could not be re-fitted; "
                        "PypeIt's sky model kept there", lo, hi)
            continue
        full = np.zeros_like(out)
        full[band] = model
        out[inwin] = full[inwin]
        log.info("sky protection: sky in %.1f-%.1f re-fitted from %d pixels beyond the "
                 "object (no spatial polynomial)", lo, hi, int(fit_in.sum()))
    return out


def install_pypeit_hook(windows, method: str = "refit",
                        radius_arcsec: float | None = None, fwhm=None, lines=None) -> None:
    """Protect the given windows in PypeIt's sky model of science frames.

    Parameters
    ----------
    windows : iterable of (float, float)
        Observed vacuum wavelength windows (Angstrom).
    method : {"refit", "interpolate"}
        See the module docstring.
    radius_arcsec : float, optional
        ``refit``: half-width of the region around each object left out of
        the sky fit inside the windows (default 5 boxcar radii).
    fwhm : float or callable, optional
        ``interpolate``: instrumental FWHM (A) or function of wavelength; with
        it night-sky lines in the windows are kept (see :func:`protect_sky_model`).
    lines : iterable of float, optional
        ``interpolate``: observed wavelengths of the target's emission lines.

    Notes
    -----
    Wraps :meth:`pypeit.find_objects.FindObjects.create_skymask` and
    ``global_skysub`` (``refit``) and :meth:`pypeit.extraction.Extract.extract`
    (``interpolate``, and the
    ``refit`` fallback on slits too short for it). Idempotent: the settings
    are replaced on each call. Standard-star frames are left alone.
    """
    from pypeit import extraction, find_objects

    from .skyvar import install_pypeit_hook as install_sky_variance

    if method not in METHODS:
        from ..errors import InputError
        raise InputError(f"sky protection method must be one of {', '.join(METHODS)}, "
                         f"not '{method}'")
    _STATE.update(windows=[tuple(map(float, w)) for w in windows], method=method,
                  radius_arcsec=radius_arcsec, fallback_slits=set(), fwhm=fwhm,
                  lines=None if lines is None else [float(w) for w in lines],
                  overlaps=set())
    # the sky model's noise in the boxcar errors (xmpspec.reduce.skyvar): installed first,
    # so that its wrapper of Extract.extract sits inside this module's
    install_sky_variance()

    ext = extraction.Extract
    if (ext, "extract") not in _ORIGINAL:
        orig_extract = ext.extract
        _ORIGINAL[(ext, "extract")] = orig_extract

        def extract(self, global_sky, *args, _orig=orig_extract, **kwargs):
            # Extract.extract() is the single entry of both boxcar-only (global sky)
            # and local-sky/optimal extractions: protect the sky model it receives
            if (_STATE["windows"] and not getattr(self, "std_redux", False)
                    and self.waveimg is not None):
                if _STATE["method"] == "interpolate":
                    inmask = None
                else:
                    fb = _STATE["fallback_slits"]
                    inmask = np.isin(self.slitmask, list(fb)) if fb else None
                if _STATE["method"] == "interpolate" or inmask is not None:
                    global_sky, n = _protect(global_sky, self.waveimg, inmask)
                    log.info("sky protection: %d pixels in %d window(s) set to the "
                             "neighbouring background", n, len(_STATE["windows"]))
            return _orig(self, global_sky, *args, **kwargs)

        ext.extract = extract

    fo = find_objects.FindObjects
    if (fo, "create_skymask") not in _ORIGINAL:
        orig_mask = fo.create_skymask
        _ORIGINAL[(fo, "create_skymask")] = orig_mask

        def create_skymask(self, sobjs_obj, _orig=orig_mask):
            skymask = _orig(self, sobjs_obj)
            if (_STATE["windows"] and _STATE["method"] == "refit"
                    and not getattr(self, "std_redux", False)):
                skymask = refit_skymask(self, sobjs_obj, skymask, _STATE["windows"],
                                        _STATE["radius_arcsec"], _STATE["fallback_slits"])
            return skymask

        fo.create_skymask = create_skymask

    if (fo, "global_skysub") not in _ORIGINAL:
        orig_sky = fo.global_skysub
        _ORIGINAL[(fo, "global_skysub")] = orig_sky

        def global_skysub(self, skymask=None, bkg_redux_sciimg=None, *args, _orig=orig_sky,
                          **kwargs):
            science = (_STATE["windows"] and skymask is not None and bkg_redux_sciimg is None
                       and not getattr(self, "std_redux", False)
                       and not getattr(self, "bkg_redux", False))
            interp = _interpolate_mask(self) if science else None
            if interp is None:
                sky = _orig(self, skymask, bkg_redux_sciimg, *args, **kwargs)
            else:
                # PypeIt builds its cosmic-ray mask from image - sky inside this call; where
                # the object mask covers nearly a short slit, its sky model diverges at the
                # bright lines (+-1e4 e- on MagE orders) and the line cores are flagged as
                # cosmic rays (then left out of the boxcar): build the mask from the
                # protected sky instead
                if args:
                    update_crmask, args = bool(args[0]), (False, *args[1:])
                else:
                    update_crmask = bool(kwargs.get("update_crmask", True))
                    kwargs["update_crmask"] = False
                sky = _orig(self, skymask, bkg_redux_sciimg, *args, **kwargs)
                sky, n = _protect(sky, _waveimg(self), None if interp is True else interp)
                log.info("sky protection: %d pixels of the sky model used for the cosmic-ray "
                         "mask set to the neighbouring background", n)
                if update_crmask and self.par["scienceframe"]["process"]["mask_cr"]:
                    self.sciImg.build_crmask(self.par["scienceframe"]["process"],
                                             subtract_img=sky)
            if science and _STATE["method"] == "refit":
                sky = _refit_windows(self, sky, skymask, kwargs.get("previous_sky"))
            return sky

        fo.global_skysub = global_skysub


def _waveimg(findobj):
    """Wavelength image of a FindObjects instance (built from its calibration if needed)."""
    if findobj.waveimg is not None or getattr(findobj, "wv_calib", None) is None:
        return findobj.waveimg
    return findobj.wv_calib.build_waveimg(findobj.tilts, findobj.slits,
                                          spat_flexure=findobj.spat_flexure_shift)


def _interpolate_mask(findobj):
    """Pixels whose sky model ``interpolate`` protects in FindObjects' global sky.

    ``True`` (every slit, ``interpolate`` method), a boolean image (the ``refit``
    fallback slits) or ``None`` (nothing to interpolate, or no wavelengths).
    """
    if _waveimg(findobj) is None:
        return None
    if _STATE["method"] == "interpolate":
        return True
    fb = _STATE["fallback_slits"]
    return np.isin(findobj.slitmask, list(fb)) if fb else None


def _refit_windows(findobj, sky, skymask, previous_sky):
    """Apply :func:`fit_window_sky` to every good slit of a FindObjects instance."""
    waveimg = findobj.waveimg
    if waveimg is None:
        if getattr(findobj, "wv_calib", None) is None:
            return sky
        waveimg = findobj.wv_calib.build_waveimg(findobj.tilts, findobj.slits,
                                                 spat_flexure=findobj.spat_flexure_shift)
    ivar = findobj.sciImg.ivar
    if previous_sky is not None:      # as PypeIt's own final pass
        from pypeit import utils
        from pypeit.core import procimg
        ivar = utils.inverse(procimg.variance_model(
            findobj.sciImg.base_var, counts=previous_sky, count_scale=findobj.sciImg.img_scale,
            noise_floor=findobj.sciImg.noise_floor))
    par = findobj.par["reduce"]
    gpm = findobj.sciImg.select_flag(invert=True)
    for slit_idx in np.where(np.logical_not(findobj.reduce_bpm))[0]:
        slit_spat = int(findobj.slits.spat_id[slit_idx])
        if slit_spat in _STATE["fallback_slits"]:
            continue
        thismask = findobj.slitmask == slit_spat
        sky = fit_window_sky(findobj.sciImg.image, ivar, findobj.tilts, thismask,
                             findobj.slits_left[:, slit_idx], findobj.slits_right[:, slit_idx],
                             gpm & thismask & skymask, waveimg, _STATE["windows"], sky,
                             bsp=par["skysub"]["bspline_spacing"], trim_edg=par["trim_edge"],
                             max_mask_frac=par["skysub"]["max_mask_frac"])
    return sky


def uninstall_pypeit_hook() -> None:
    """Restore PypeIt's original methods (and remove the sky-variance hook)."""
    from .skyvar import uninstall_pypeit_hook as uninstall_sky_variance

    for (cls, name), orig in list(_ORIGINAL.items()):
        setattr(cls, name, orig)
        del _ORIGINAL[(cls, name)]
    uninstall_sky_variance()
    _STATE.update(windows=[], method="refit", radius_arcsec=None, fallback_slits=set(),
                  fwhm=None, lines=None)
