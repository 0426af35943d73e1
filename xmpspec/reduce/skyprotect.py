"""Protect bright, spatially extended emission lines from sky over-subtraction.

PypeIt fits the sky as a smooth function of wavelength to every pixel of the
slit outside the object mask. The wings of an extended galaxy's bright lines
(Halpha, [OIII]5008, Hbeta) extend beyond that mask, so the sky model at those
wavelengths absorbs part of the line and the extraction loses flux: the known
PypeIt failure on these targets (science.md).

The remedy (the one used for MagE): inside a window around each bright line at
the target's redshift, the sky model of every spatial column is replaced by a
background interpolated linearly between the median sky model of the
neighbouring pixels on each side of the window (``edge_pix`` pixels). Night-sky
lines that fall inside a window are then not subtracted there: windows are
only as wide as the line (3 FWHM + 300 km/s on each side).

:func:`install_pypeit_hook` applies this to PypeIt's global sky model right
before extraction (with ``no_local_sky = True`` so that a local re-fit, used by
optimal extraction, does not undo it).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["protect_sky_model", "install_pypeit_hook", "uninstall_pypeit_hook"]

log = logging.getLogger("xmpspec.reduce")


def protect_sky_model(skymodel: np.ndarray, waveimg: np.ndarray, windows,
                      inmask: np.ndarray | None = None, edge_pix: int = 5,
                      spec_axis: int = 0) -> tuple[np.ndarray, int]:
    """Replace the sky model inside wavelength windows by a flat neighbour average.

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
        Number of pixels on each side of a window averaged for the background.
    spec_axis : int
        Spectral axis of the images.

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
    ok = np.isfinite(wav) & (wav > 0)
    if inmask is not None:
        ok &= np.asarray(inmask, bool)
    nspec = sky.shape[0]
    changed = 0
    for lo, hi in windows:
        inwin = ok & (wav >= lo) & (wav <= hi)
        cols = np.where(inwin.any(axis=0))[0]
        for j in cols:
            rows = np.where(inwin[:, j])[0]
            r0, r1 = rows.min(), rows.max()
            below = np.arange(max(r0 - edge_pix, 0), r0)
            above = np.arange(r1 + 1, min(r1 + 1 + edge_pix, nspec))
            below = below[ok[below, j]]
            above = above[ok[above, j]]
            if below.size == 0 and above.size == 0:
                continue
            if below.size and above.size:
                y0, y1 = np.median(sky[below, j]), np.median(sky[above, j])
                x0, x1 = below.mean(), above.mean()
                seg = np.arange(r0, r1 + 1)
                sky[r0:r1 + 1, j] = y0 + (y1 - y0) * (seg - x0) / (x1 - x0)
            else:
                sky[r0:r1 + 1, j] = np.median(sky[below if below.size else above, j])
            changed += r1 - r0 + 1
    if spec_axis == 1:
        sky = sky.T
    return sky, changed


_ORIGINAL = {}
_WINDOWS: list[tuple[float, float]] = []


def install_pypeit_hook(windows) -> None:
    """Protect the given windows in PypeIt's sky model before every extraction.

    Wraps :meth:`pypeit.extraction.Extract.extract` (used by boxcar-only
    extraction with the global sky and by local-sky/optimal extraction;
    idempotent, the windows are replaced on each call). Standard-star frames
    are left alone.
    """
    from pypeit import extraction

    _WINDOWS[:] = [tuple(map(float, w)) for w in windows]
    cls = extraction.Extract
    if cls in _ORIGINAL:
        return
    orig = cls.extract
    _ORIGINAL[cls] = orig

    def wrapped(self, global_sky, *args, _orig=orig, **kwargs):
        # Extract.extract() is the single entry of both boxcar-only (global sky)
        # and local-sky/optimal extractions: protect the sky model it receives
        if _WINDOWS and not getattr(self, "std_redux", False) and self.waveimg is not None:
            global_sky, n = protect_sky_model(global_sky, self.waveimg, _WINDOWS)
            log.info("sky protection: %d pixels in %d window(s) set to the neighbouring "
                     "background", n, len(_WINDOWS))
        return _orig(self, global_sky, *args, **kwargs)

    cls.extract = wrapped


def uninstall_pypeit_hook() -> None:
    """Restore PypeIt's original extraction methods."""
    for cls, orig in list(_ORIGINAL.items()):
        cls.extract = orig
        del _ORIGINAL[cls]
    _WINDOWS.clear()
