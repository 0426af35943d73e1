"""Checks of a reduction against the truth of a simulated night.

Used by the end-to-end tests and handy when tuning: the wavelength solution
PypeIt derived versus the simulator's, in pixels, over the range the arc lines
constrain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["wavelength_accuracy"]


def wavelength_accuracy(redux_dir: str | Path, truth_wave_table: str | Path,
                        wave_range: tuple[float, float] | None = None) -> dict:
    """Compare PypeIt's wavelength solution with a simulated night's truth.

    Parameters
    ----------
    redux_dir : path-like
        ``reductions/<instrument>/<night>/<setup>`` (holds ``Calibrations/``).
    truth_wave_table : path-like
        ``wavelength_solution.ecsv`` of ``xmpspec simulate night`` (pixel of
        PypeIt's trimmed image -> vacuum wavelength).
    wave_range : (float, float), optional
        Range to judge (default: the table's ``arc_range``, the range
        constrained by arc lines).

    Returns
    -------
    dict
        ``rms_pix``, ``max_pix``, ``rms_A``, ``n_pix``, ``range``.
    """
    from astropy.table import Table
    from pypeit.wavecalib import WaveCalib

    files = sorted(Path(redux_dir, "Calibrations").glob("WaveCalib_*.fits"))
    if not files:
        raise InputError("no WaveCalib file", Path(redux_dir, "Calibrations"))
    wv = WaveCalib.from_file(str(files[0]), chk_version=False)
    fit = next(f for f in wv.wv_fits if f is not None and f.wave_soln is not None)
    sol = np.asarray(fit.wave_soln, float)
    truth = Table.read(truth_wave_table)
    tp = np.asarray(truth["pixel"], int)
    tw = np.asarray(truth["wave_vac"], float)
    n = min(sol.size, tp.max() + 1)
    pix = tp[tp < n]
    dw = sol[pix] - tw[tp < n]
    disp = np.abs(np.gradient(tw))[tp < n]
    lo, hi = wave_range or tuple(truth.meta.get("arc_range", (tw.min(), tw.max())))
    sel = (tw[tp < n] >= lo) & (tw[tp < n] <= hi)
    if not sel.any():
        raise InputError(f"no pixels within {lo:.0f}-{hi:.0f} A", truth_wave_table)
    res_pix = dw[sel] / disp[sel]
    return {"rms_pix": float(np.sqrt(np.mean(res_pix**2))),
            "max_pix": float(np.max(np.abs(res_pix))),
            "rms_A": float(np.sqrt(np.mean(dw[sel] ** 2))), "n_pix": int(sel.sum()),
            "range": (float(lo), float(hi))}
