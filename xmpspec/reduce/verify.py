"""Checks of a reduction against the truth of a simulated night.

Used by the end-to-end tests and handy when tuning: the wavelength solution
PypeIt derived versus the simulator's, in pixels, over the range the arc lines
constrain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["wavelength_accuracy", "arc_wavelength_solution"]


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


def arc_wavelength_solution(raw_arc: str | Path, instrument: str, rows: int = 21) -> dict:
    """Wavelength solution of one raw arc frame, as the instrument's reduction finds it.

    The frame is read with the instrument's PypeIt spectrograph (plug-ins
    included: any binning, region of interest and file layout they accept),
    overscan-subtracted (median of the overscan columns of each row),
    trimmed to the data section and turned to PypeIt's orientation (spectral
    axis first); the median of ``rows`` spatial rows at the centre of the
    read-out is calibrated with the wavelength method, template, lamps and
    parameters PypeIt chooses for that frame (``config_specific_par``), e.g.
    ``full_template``.

    Parameters
    ----------
    raw_arc : path-like
        Raw arc frame.
    instrument : str
        xmpspec instrument (``goodman_red``, ``shane_kast_blue``, ...).
    rows : int
        Spatial rows (binned) of the central cut.

    Returns
    -------
    dict
        ``wave`` (vacuum Angstrom per spectral pixel of the trimmed frame),
        ``spectrum`` (the 1D cut, ADU), ``rms_pix`` (PypeIt's fit RMS),
        ``n_lines`` (lines in the final fit), ``pixel_fit``/``wave_fit``
        (those lines), ``first_column`` (0-based raw column of trimmed pixel
        0, unbinned), ``binning`` (spectral), ``method``, ``template``.

    Raises
    ------
    InputError
        Unreadable frame, or no solution found.
    """
    from pypeit.core.wavecal import autoid
    from pypeit.spectrographs.util import load_spectrograph

    from .registry import get_instrument
    from .runner import prepare_pypeit

    raw_arc = Path(raw_arc)
    plugin = get_instrument(instrument)
    prepare_pypeit(plugin)
    spec = load_spectrograph(plugin.pypeit_name)
    try:
        det, img, hdu, _exptime, datasec, oscan = spec.get_rawimage(str(raw_arc), 1)
        par = spec.config_specific_par(str(raw_arc))["calibrations"]["wavelengths"]
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot read the arc with {plugin.pypeit_name}: {exc}",
                         raw_arc) from exc
    img = np.asarray(img, float)
    data_rows = np.where(datasec.any(axis=1))[0]
    data_cols = np.where(datasec.any(axis=0))[0]
    if oscan.any():
        over = np.where(oscan > 0, img, np.nan)
        level = np.nanmedian(over, axis=1 if det["specaxis"] == 1 else 0)
        img = img - (level[:, None] if det["specaxis"] == 1 else level[None, :])
    img = img[np.ix_(data_rows, data_cols)]
    if det["specaxis"] == 1:
        img = img.T               # PypeIt's orientation: (spectral, spatial)
        first = int(data_cols[0])
    else:
        first = int(data_rows[0])
    if det["specflip"]:
        img = img[::-1]
    binspec = int(str(spec.get_meta_value(str(raw_arc), "binning")).split(",")[0])
    mid = img.shape[1] // 2
    half = max(rows // 2, 0)
    arc1d = np.median(img[:, max(mid - half, 0):mid + half + 1], axis=1)
    lamps = par["lamps"]
    if par["method"] != "full_template":
        raise InputError(f"wavelength method '{par['method']}' for this frame: only "
                         "full_template solutions are checked here", raw_arc)
    wv, _ = autoid.full_template(arc1d[:, None], lamps, par, np.array([0]), 1, binspec,
                                 nsnippet=par["nsnippet"], measured_fwhms=np.array([None]),
                                 nonlinear_counts=det["saturation"]
                                 * det["nonlinear"])
    fit = wv.get("0") if isinstance(wv, dict) else None
    if fit is None or getattr(fit, "pypeitfit", None) is None:
        raise InputError("no wavelength solution found for the central cut", raw_arc)
    pix = np.arange(arc1d.size, dtype=float)
    wave = fit.pypeitfit.eval(pix / (arc1d.size - 1)) if fit.wave_soln is None \
        else np.asarray(fit.wave_soln, float)
    return {"wave": np.asarray(wave, float), "spectrum": arc1d, "rms_pix": float(fit.rms),
            "n_lines": int(np.size(fit.pixel_fit)), "pixel_fit": np.asarray(fit.pixel_fit),
            "wave_fit": np.asarray(fit.wave_fit), "first_column": first * binspec,
            "binning": binspec, "method": par["method"], "template": par["reid_arxiv"]}
