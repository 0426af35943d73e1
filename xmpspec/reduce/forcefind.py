"""Keep a listed target that PypeIt's echelle S/N cut would drop, if its lines are there.

PypeIt's echelle object finding (:func:`pypeit.core.findobj_skymask.ech_objfind`)
keeps a candidate only if the median S/N per pixel of a quick boxcar
extraction exceeds ``ech_find_max_snr`` in one order or ``ech_find_min_snr``
in ``ech_find_nabove_min_snr`` orders. The median is set by the *continuum*:
the faint continuum of a metal-poor emission-line galaxy, after PypeIt's
first-pass sky (fitted with the object unmasked) has absorbed part of it,
can have a median S/N near zero in every order although the galaxy's lines
are detected at high S/N. The exposure is then written without any object
(measured on the simulated MagE night: the second of two 600 s exposures was
dropped, median S/N 0.04).

:func:`install_forced_find_hook` wraps
:meth:`pypeit.find_objects.EchelleFindObjects.find_objects_pypeline`. When
PypeIt keeps no object in a science frame listed in the hook (the frames of
targets in the targets table), the search is repeated with the S/N cut
removed and at most one object per order, i.e. PypeIt's own most significant
candidate (highest median S/N over the orders, traced as usual). That
candidate is kept only if its quick boxcar spectrum shows the target's
emission lines: in at least one of the observed line windows (the sky
protection windows, at the target's redshift) the line flux above the local
continuum must reach ``min_line_snr`` (default 5) times its error
(:func:`window_line_snr`). Otherwise the frame stays without object. Every
decision is recorded (:func:`forced_records`) and reported in the night
summary, so no exposure is dropped silently.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

__all__ = ["window_line_snr", "install_forced_find_hook", "uninstall_forced_find_hook",
           "forced_records", "MIN_LINE_SNR"]

log = logging.getLogger("xmpspec.reduce")

#: S/N of the target's brightest line (in the quick boxcar) required to keep a
#: candidate that failed PypeIt's continuum S/N cut.
MIN_LINE_SNR = 5.0

_ORIGINAL: dict = {}
_STATE: dict = {"frames": set(), "windows": [], "min_line_snr": MIN_LINE_SNR, "records": []}


def window_line_snr(wave, flux, var, windows, side_frac: float = 1.0) -> tuple[float, tuple]:
    """S/N of the emission-line flux in wavelength windows of a 1D spectrum.

    In each window the flux summed over its pixels minus a continuum (the
    median of the pixels within ``side_frac`` window widths on both sides),
    divided by the error of the sum and of the continuum. The per-pixel error
    is the larger of the one from ``var`` and the scatter of the side-band
    pixels (1.4826 x their median absolute deviation), so pixels with a
    meaningless variance (e.g. a boxcar partly off the order at its ends, where
    PypeIt's quick variance gave a line S/N of 1e6 on the MagE night) cannot
    fake a detection.

    Parameters
    ----------
    wave, flux, var : ndarray
        One spectrum (any pixel order); ``var <= 0`` or non-finite = unusable.
    windows : iterable of (float, float)
        Observed wavelength windows.
    side_frac : float
        Width of each continuum band, in window widths.

    Returns
    -------
    snr : float
        The largest S/N over the windows (``-inf`` if no window holds data).
    window : tuple
        The window that gave it (``()`` if none).
    """
    wave = np.asarray(wave, float)
    flux = np.asarray(flux, float)
    var = np.asarray(var, float)
    good = np.isfinite(wave) & np.isfinite(flux) & np.isfinite(var) & (var > 0)
    best, best_w = -np.inf, ()
    for lo, hi in windows:
        width = hi - lo
        inw = good & (wave >= lo) & (wave <= hi)
        side = good & (((wave >= lo - side_frac * width) & (wave < lo))
                       | ((wave > hi) & (wave <= hi + side_frac * width)))
        if inw.sum() < 3 or side.sum() < 3:
            continue
        cont = float(np.median(flux[side]))
        n, nside = int(inw.sum()), int(side.sum())
        line = float(np.sum(flux[inw]) - n * cont)
        # error of the median ~ 1.25 x error of the mean of the side pixels
        cont_var = 1.25 ** 2 * float(np.sum(var[side])) / nside ** 2
        err = float(np.sqrt(np.sum(var[inw]) + n ** 2 * cont_var))
        scatter = 1.4826 * float(np.median(np.abs(flux[side] - cont)))
        err = max(err, scatter * float(np.sqrt(n + n ** 2 * 1.25 ** 2 / nside)))
        snr = line / err if err > 0 else -np.inf
        if snr > best:
            best, best_w = snr, (float(lo), float(hi))
    return best, best_w


def _frame_names(findobj) -> list[str]:
    files = getattr(findobj.sciImg, "files", None) or []
    return [Path(str(f)).name for f in files]


def _candidate_line_snr(findobj, image, ivar, sobjs) -> tuple[float, tuple]:
    """Largest line S/N in the windows over the orders of the (single) candidate."""
    from pypeit.core.moment import moment1d

    from .skyprotect import _waveimg

    waveimg = _waveimg(findobj)
    if waveimg is None:
        return -np.inf, ()
    gpm = findobj.sciImg.select_flag(invert=True) & (ivar > 0)
    var = np.where(gpm, 1.0 / np.where(ivar > 0, ivar, 1.0), 0.0)
    box = findobj.par["reduce"]["extraction"]["boxcar_radius"]
    # the plate scale of every order at once, as PypeIt's echelle object finding gets it
    # (MagE's order_platescale fails for a single order in PypeIt 2.0.1)
    orders = np.asarray(findobj.order_vec)
    pscales = np.atleast_1d(findobj.spectrograph.order_platescale(orders,
                                                                  binning=findobj.binning))
    best, best_w = -np.inf, ()
    for sobj in sobjs:
        inslit = findobj.slitmask == sobj.SLITID
        pscale = float(pscales[orders == sobj.ECH_ORDER][0])
        width = 2 * box / pscale
        trace = np.asarray(sobj.TRACE_SPAT, float)
        rows = np.arange(trace.size)
        use = gpm & inslit
        f = moment1d(np.where(use, image, 0.0), trace, width, row=rows)[0]
        v = moment1d(np.where(use, var, 0.0), trace, width, row=rows)[0]
        cols = np.clip(np.rint(trace).astype(int), 0, waveimg.shape[1] - 1)
        w = waveimg[rows, cols]
        snr, win = window_line_snr(w, f, np.where(v > 0, v, np.nan), _STATE["windows"])
        if snr > best:
            best, best_w = snr, win
    return best, best_w


def install_forced_find_hook(frames, windows, min_line_snr: float = MIN_LINE_SNR) -> None:
    """Keep the most significant candidate of listed science frames PypeIt would drop.

    Parameters
    ----------
    frames : iterable of str
        Raw file names (no folder) of the science frames of listed targets.
    windows : iterable of (float, float)
        Observed wavelength windows of the targets' bright lines.
    min_line_snr : float
        Line S/N a candidate must show in a window (see module docstring).

    Notes
    -----
    Only echelle object finding is wrapped; standards and negative images are
    left alone. Idempotent; :func:`uninstall_forced_find_hook` restores PypeIt.
    """
    from pypeit import find_objects

    _STATE.update(frames={Path(str(f)).name for f in frames},
                  windows=[tuple(map(float, w)) for w in windows],
                  min_line_snr=float(min_line_snr), records=[])
    cls = find_objects.EchelleFindObjects
    if (cls, "find_objects_pypeline") in _ORIGINAL:
        return
    orig = cls.find_objects_pypeline
    _ORIGINAL[(cls, "find_objects_pypeline")] = orig

    def find_objects_pypeline(self, image, ivar, *args, _orig=orig, **kwargs):
        sobjs, nobj = _orig(self, image, ivar, *args, **kwargs)
        names = _frame_names(self)
        if (nobj > 0 or kwargs.get("neg", False) or getattr(self, "std_redux", False)
                or not _STATE["windows"] or not any(n in _STATE["frames"] for n in names)):
            return sobjs, nobj
        fpar = self.par["reduce"]["findobj"]
        saved = {k: fpar[k] for k in ("ech_find_max_snr", "ech_find_min_snr",
                                      "maxnumber_sci")}
        try:
            fpar["ech_find_max_snr"] = -1e30     # every candidate passes the S/N cut ...
            fpar["ech_find_min_snr"] = -1e30
            fpar["maxnumber_sci"] = 1            # ... and only the most significant is kept
            cand, ncand = _orig(self, image, ivar, *args, **kwargs)
        finally:
            for k, v in saved.items():
                fpar[k] = v
        frame = ", ".join(names) or "?"
        rec = {"frame": frame, "kept": False, "line_snr": float("nan"), "window": (),
               "median_snr": float("nan")}
        if ncand == 0:
            rec["reason"] = "no candidate at all"
            _STATE["records"].append(rec)
            log.warning("%s: no object found, not even below PypeIt's echelle S/N cut",
                        frame)
            return sobjs, nobj
        try:
            snr, win = _candidate_line_snr(self, image, ivar, cand)
        except Exception as exc:  # noqa: BLE001 - never break PypeIt's reduction
            rec["reason"] = f"line check failed ({type(exc).__name__}: {exc})"
            _STATE["records"].append(rec)
            log.warning("%s: the line check of the candidate failed (%s): no object",
                        frame, exc)
            return sobjs, nobj
        ech = [getattr(s, "ech_snr", None) for s in cand]
        med = float(np.nanmedian([e for e in ech if e is not None])) if any(
            e is not None for e in ech) else float("nan")
        rec.update(line_snr=float(snr), window=win, median_snr=med)
        if snr >= _STATE["min_line_snr"]:
            rec.update(kept=True, reason="kept below PypeIt's echelle S/N cut: the target's "
                       "lines are detected")
            _STATE["records"].append(rec)
            log.warning("%s: no object passed PypeIt's echelle S/N cut (continuum median S/N "
                        "%.2f); its most significant candidate shows the target's line at "
                        "S/N %.1f in %.1f-%.1f A and is extracted", frame, med, snr, *win)
            return cand, ncand
        rec["reason"] = (f"candidate below PypeIt's echelle S/N cut and no line at S/N >= "
                         f"{_STATE['min_line_snr']:g}")
        _STATE["records"].append(rec)
        log.warning("%s: no object passed PypeIt's echelle S/N cut and its best candidate "
                    "shows no target line (best S/N %.1f): no object", frame, snr)
        return sobjs, nobj

    cls.find_objects_pypeline = find_objects_pypeline


def forced_records() -> list[dict]:
    """What the hook decided for each frame it acted on (since it was installed)."""
    return list(_STATE["records"])


def uninstall_forced_find_hook() -> None:
    """Restore PypeIt's original method (the records are kept until the next install)."""
    for (cls, name), orig in list(_ORIGINAL.items()):
        setattr(cls, name, orig)
        del _ORIGINAL[(cls, name)]
