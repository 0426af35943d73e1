"""The night log of ``xmpspec setup``: one row per raw frame, suspicious things flagged."""

from __future__ import annotations

import numpy as np

from .registry import InstrumentPlugin

__all__ = ["night_log", "nearest_standard"]


def nearest_standard(ra, dec) -> tuple[str, float]:
    """Nearest star of PypeIt's flux-standard archives and its separation (arcmin)."""
    from pypeit.core import standard
    best, sep_min = "", np.inf
    for arch in standard.get_archive_sets():
        try:
            sep, row = standard.nearest_archive_entry(arch, ra, dec)
        except Exception:  # noqa: BLE001
            continue
        sep = float(sep.to_value("arcmin")) if hasattr(sep, "to_value") else float(sep)
        if sep < sep_min:
            best, sep_min = str(row["Name"]), sep
    return best, sep_min


def night_log(fitstbl, plugin: InstrumentPlugin, screen, changes: list[str],
              reasons: dict[str, str] | None = None):
    """Build the night log and the list of flags.

    Parameters
    ----------
    fitstbl : pypeit.metadata.PypeItMetaData
        After PypeIt's setup (frame types and configurations assigned).
    plugin : InstrumentPlugin
    screen : RawScreen
        Unreadable / foreign files found before PypeIt ran.
    changes : list of str
        Frame-type corrections made by the lamp rules and the plug-in.
    reasons : dict, optional
        File name -> why its type differs from its OBSTYPE/IMAGETYP
        (:func:`xmpspec.reduce.frametype.apply_lamp_rules`): the ``typing``
        column.

    Returns
    -------
    table : astropy.table.Table
        ``file, frametype, object, exptime, airmass, config, binning, typing,
        flag``.
    flags : list of str
        Night-level warnings (no arcs, no flats, no standard, standard far from
        any archived star, mixed binning, unreadable or foreign files, ...).
    """
    from astropy.table import Table

    t = fitstbl.table
    rows = []
    flags: list[str] = list(screen.warnings) + list(changes)
    types = [str(ft) for ft in t["frametype"]]
    for i, row in enumerate(t):
        ft = types[i]
        flag = []
        if ft in ("None", "", "--"):
            flag.append("no frame type: PypeIt will not use this frame")
        if "standard" in ft.split(","):
            name, sep = nearest_standard(row["ra"], row["dec"])
            if sep > 20.0:
                flag.append(f"standard {sep:.0f}' from the nearest archived star ({name}): "
                            "no archived spectrum to calibrate with")
        if "science" in ft.split(",") and row["exptime"] is not None \
                and float(row["exptime"]) <= 120:
            try:
                name, sep = nearest_standard(row["ra"], row["dec"])
            except Exception:  # noqa: BLE001
                name, sep = "", np.inf
            if sep < 60:
                flag.append(f"short exposure typed science, {sep:.0f}' from standard {name}: "
                            "if it is the flux standard, PypeIt did not recognise it")
        rows.append({"file": str(row["filename"]), "frametype": ft,
                     "object": str(row["target"]) if row["target"] is not None else "",
                     "exptime": float(row["exptime"]) if row["exptime"] is not None else np.nan,
                     "airmass": float(row["airmass"]) if row["airmass"] is not None else np.nan,
                     "config": str(row["setup"]) if "setup" in t.colnames else "",
                     "binning": str(row["binning"]) if "binning" in t.colnames else "",
                     "typing": (reasons or {}).get(str(row["filename"]), ""),
                     "flag": "; ".join(flag)})
    for name, problem in screen.problems.items():
        rows.append({"file": name, "frametype": "unusable", "object": "", "exptime": np.nan,
                     "airmass": np.nan, "config": "", "binning": "", "typing": "",
                     "flag": problem})
        flags.append(f"{name}: {problem}")
    for name, why in (reasons or {}).items():
        flags.append(f"{name}: frame type from the lamps: {why}")
    tab = Table(rows=rows, names=("file", "frametype", "object", "exptime", "airmass",
                                  "config", "binning", "typing", "flag"))
    tab["exptime"].unit = "s"

    def has(kind):
        return any(kind in ft.split(",") for ft in types)
    flags.extend(missing_calibration_flags(has, plugin))
    bins = {str(b) for b, ft in zip(t["binning"], types, strict=False) if ft not in ("None", "")} \
        if "binning" in t.colnames else set()
    if len(bins) > 1:
        flags.append(f"mixed binning ({', '.join(sorted(bins))}): frames of different binning "
                     "form separate configurations")
    return tab, flags


def missing_calibration_flags(has, plugin: InstrumentPlugin) -> list[str]:
    """What a night without arcs, flats, standard or science can still produce, and how.

    Parameters
    ----------
    has : callable
        ``has(frametype) -> bool``: the night has a frame of that PypeIt type.
    plugin : InstrumentPlugin

    Returns
    -------
    list of str
    """
    out = []
    if not has("arc"):
        out.append("no arc frames: no wavelength calibration possible, so nothing can be "
                   "reduced; add an arc of the same set-up (another night's arc works if the "
                   "instrument did not move: add it to the raw folder, it is typed by its "
                   "lamps)")
    if not (has("pixelflat") or has("trace") or has("illumflat")):
        out.append("no flat-field frames: PypeIt cannot trace the slit edges; the night can "
                   "still be reduced without flat-fielding by typing a bright, well-exposed "
                   "frame (the standard, a twilight) 'trace' in the PypeIt file, or by giving "
                   "the slit edges by hand ([calibrations][slitedges] add_slits = ...) and "
                   "[baseprocess] use_pixelflat = False, use_illumflat = False")
    if not has("standard"):
        out.append("no flux standard typed 'standard': spectra will be wavelength-calibrated "
                   "but not flux-calibrated (counts); ratios of nearby lines (N2, O3N2, "
                   "[SII]6718/6733) are still measured, absolute fluxes, luminosities and "
                   "SFR are not; to flux them, add a standard of the same set-up from another "
                   "night (typed 'standard') or retype a short exposure of a star of PypeIt's "
                   "archive")
    if not has("science"):
        out.append("no science frames: only calibrations (and the standard) can be reduced")
    if not has("bias") and plugin.generic:
        out.append("no bias frames: PypeIt subtracts the overscan only (fine for most CCDs)")
    return out
