"""``xmpspec reduce``: run PypeIt in-process on a PypeIt file, then flux and coadd.

Steps (all in this Python process, so plug-in spectrographs such as INT/IDS
are known to every PypeIt class):

1. pre-flight: every reference file the instrument needs is installed or
   cached (imported from ``--reference-data`` folders if given), else a
   :class:`~xmpspec.errors.ReferenceDataError` lists what is missing;
2. :class:`pypeit.PypeIt` with ``reuse_calibs=True`` (calibrations, standard
   and science frames), with the sky protection of bright lines if the
   PypeIt file asks for it; PypeIt runs on a copy of the PypeIt file in the
   reduction folder whose data paths are resolved against the file's own
   folder (:func:`xmpspec.reduce.pypeitfile.read_pypeit_file`), so a night
   reduces the same from any working folder;
3. sensitivity function (:class:`pypeit.sensfunc.SensFunc`) from the night's
   standard;
4. flux calibration (:func:`pypeit.fluxcalibrate.flux_calibrate`) of every
   science spec1d;
5. coaddition of each target's exposures into ``<redux>/<target>.fits``
   (:class:`pypeit.coadd1d.CoAdd1D`; echelle: the fluxed orders stacked by
   inverse variance without rescaling, :mod:`xmpspec.reduce.echcoadd`);
6. a per-night summary table and QA plots.

Outputs: ``<root>/reductions/<instrument>/<night>/<setup>/`` (PypeIt's own
``Science/``, ``Calibrations/``, ``QA/`` folders, the sensitivity function,
the coadds) and ``<root>/reductions/<instrument>/<night>/summary.ecsv``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, XmpspecError
from .registry import InstrumentPlugin, get_instrument

__all__ = ["prepare_pypeit", "reduce_pypeit_file", "ReductionResult", "safe_name"]

log = logging.getLogger("xmpspec.reduce")


def prepare_pypeit(plugin: InstrumentPlugin) -> None:
    """Make PypeIt usable in this process: private caches honoured, plug-in registered."""
    from .cache import prepare_cache_dirs

    prepare_cache_dirs()
    try:
        import pypeit.spectrographs  # noqa: F401  (needs astropy's sites.json)
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "pypeit":
            raise  # not installed: the command line names the extra (xmpspec.extras)
        raise XmpspecError(
            f"cannot import PypeIt's spectrographs ({type(exc).__name__}: {exc}); with no "
            "network, import astropy's site list first: `xmpspec cache import "
            "../shared/astropy-data`") from exc
    plugin.register_pypeit()


def safe_name(name: str) -> str:
    """A file-name-safe version of a target name."""
    out = "".join(c if (c.isalnum() or c in "+-_.") else "_" for c in str(name).strip())
    return out or "target"


@dataclass
class TargetResult:
    """One target of a reduced set-up."""

    target: str
    spec1d: list[Path]
    coadd: Path | None
    n_exposures: int
    fluxed: bool
    status: str
    snr_ha: float = float("nan")


@dataclass
class ReductionResult:
    """What ``xmpspec reduce`` produced for one PypeIt file.

    ``problems`` lists everything worth telling the user (warnings and
    failures); ``errors`` only the failed steps or targets (sensitivity
    function, flux calibration, coadd, no spectrum extracted), which make
    ``xmpspec reduce`` and ``xmpspec run`` exit with code 1.
    """

    pypeit_file: Path
    redux_dir: Path
    instrument: str
    night: str
    setup: str
    targets: list[TargetResult] = field(default_factory=list)
    sensfunc: Path | None = None
    wave_rms_pix: float = float("nan")
    timings: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Record a problem that did not stop any product (e.g. no QA page)."""
        self.problems.append(message)

    def fail(self, message: str) -> None:
        """Record a failed step or target (also listed in ``problems``)."""
        self.problems.append(message)
        self.errors.append(message)


def reduce_pypeit_file(pypeit_file: str | Path, root: str | Path = ".",
                       reference_dirs=(), targets=None, progress=None) -> ReductionResult:
    """Reduce one night/set-up described by a PypeIt file (see module docstring).

    Parameters
    ----------
    pypeit_file : path-like
        Written by ``xmpspec setup`` (or by hand, with an
        ``# xmpspec: instrument = NAME`` line or a known spectrograph).
    root : path-like
        Outputs go to ``<root>/reductions/<instrument>/<night>/<setup>/``.
    reference_dirs : iterable of path-like
        Folders to import missing reference files from.
    targets : astropy.table.Table, optional
        Targets table (redshift for the S/N near Halpha in the summary).

    Returns
    -------
    ReductionResult

    Raises
    ------
    InputError
        Unreadable PypeIt file, unknown instrument, missing raw files.
    ReferenceDataError
        Reference files missing (before anything runs).
    """
    from .cache import ensure_reference_data, ensure_sites
    from .pypeitfile import parse_windows, read_pypeit_file, read_xmpspec_settings, write_run_copy
    from .skyprotect import install_pypeit_hook, sky_line_overlaps, uninstall_pypeit_hook

    pypeit_file = Path(pypeit_file)        # as given: results and outputs name it so
    if not pypeit_file.is_file():
        raise InputError("PypeIt file not found", pypeit_file)
    ensure_sites(reference_dirs)
    settings = read_xmpspec_settings(pypeit_file)
    if "instrument" in settings:
        plugin = get_instrument(settings["instrument"])
    else:   # a hand-written PypeIt file: the instrument from its spectrograph
        import re
        m = re.search(r"^\s*spectrograph\s*=\s*(\S+)", pypeit_file.read_text(), re.M)
        if not m:
            raise InputError("no '# xmpspec: instrument = ...' line and no spectrograph in "
                             "[rdx]", pypeit_file)
        plugin = get_instrument(m.group(1))
    ensure_reference_data(plugin.name, reference_dirs, pypeit_file)
    prepare_pypeit(plugin)
    pf = read_pypeit_file(pypeit_file)     # data paths read from the file's folder
    raw_files = pf.path_and_files("filename", check_exists=False) or []
    missing = [f for f in raw_files if not Path(f).is_file()]
    if missing:
        raise InputError(f"{len(missing)} raw file(s) listed in the PypeIt file do not exist: "
                         f"{', '.join(missing[:5])} (relative 'path' lines are read from the "
                         "PypeIt file's folder)", pypeit_file)
    if plugin.generic:      # the night's own templates and standards
        ensure_reference_data(plugin.name, reference_dirs, pypeit_file, raw_files=raw_files)
    night = settings.get("night") or Path(os.path.abspath(pypeit_file)).parent.name
    setup = pypeit_file.stem
    # as given (never resolved): coadds, summaries and measurements name these paths
    redux = Path(root) / "reductions" / plugin.name / night / setup
    redux.mkdir(parents=True, exist_ok=True)
    # PypeIt reads relative data paths from the working folder: it runs on a copy whose
    # paths are resolved against the PypeIt file's folder (its .calib/.par files go there)
    run_file = write_run_copy(pypeit_file, redux / pypeit_file.name, pf.file_paths)
    res = ReductionResult(pypeit_file, redux, plugin.name, night, setup)
    windows = parse_windows(settings.get("sky_protect", ""))
    method, radius = _protection_settings(settings, plugin, pypeit_file)

    from pypeit.pypeit import PypeIt

    from .pipeline import quiet_pypeit
    quiet_pypeit(logging.getLogger("xmpspec").getEffectiveLevel() <= logging.DEBUG,
                 log_file=redux / "pypeit.log")
    t0 = time.time()
    if windows:
        install_pypeit_hook(windows, method=method, radius_arcsec=radius,
                            fwhm=plugin.instrument_setup().fwhm_at,
                            lines=_protected_line_waves(targets, plugin, windows))
    from .forcefind import forced_records, install_forced_find_hook, uninstall_forced_find_hook
    try:
        pypeit = PypeIt(str(run_file), reuse_calibs=True, overwrite=True,
                        redux_path=str(redux))
        if windows and plugin.echelle:
            # a listed target whose continuum fails PypeIt's echelle S/N cut is kept if its
            # lines are detected (xmpspec.reduce.forcefind)
            install_forced_find_hook(_listed_science_frames(pypeit.fitstbl.table, targets),
                                     windows)
        pypeit.reduce_all()
        try:
            pypeit.build_qa()
        except Exception as exc:  # noqa: BLE001 - QA html is optional
            res.warn(f"PypeIt QA page not built: {exc}")
    except XmpspecError:
        raise
    except Exception as exc:  # noqa: BLE001
        cause = _diagnose_failure(redux)
        raise XmpspecError(f"PypeIt failed: {type(exc).__name__}: {exc}"
                           + (f" -- probable cause: {cause}" if cause else "")
                           + f" (full log: {redux / 'pypeit.log'})", pypeit_file) from exc
    finally:
        overlaps = sky_line_overlaps()
        uninstall_pypeit_hook()
        uninstall_forced_find_hook()
    for (lo, hi), w in overlaps:
        res.warn(f"sky protection: a night-sky line falls on the emission line at {w:.1f} A "
                 f"(window {lo:.1f}-{hi:.1f} A); the sky there is interpolated "
                 "(the sky line is not subtracted) and the line's flux is uncertain")
    res.timings["pypeit_s"] = time.time() - t0
    for rec in forced_records():
        res.warn(f"{rec['frame']}: no object passed PypeIt's echelle S/N cut "
                 + (f"(continuum median S/N {rec['median_snr']:.2f}); extracted its most "
                    f"significant candidate, whose boxcar shows the target's line at S/N "
                    f"{rec['line_snr']:.1f} in {rec['window'][0]:.1f}-{rec['window'][1]:.1f} A"
                    if rec["kept"] else f"and no object was extracted ({rec['reason']})"))

    tbl = pypeit.fitstbl
    science_dir = Path(pypeit.science_path)
    spec1d_of = _spec1d_files(pypeit, science_dir)
    res.wave_rms_pix = _wave_rms(redux)

    # -- sensitivity function from the standard(s)
    t1 = time.time()
    std_files = [f for f, ft in spec1d_of.items() if "standard" in ft]
    sens = None
    if not std_files:
        res.warn("no standard-star spectrum: spectra are not flux calibrated")
    else:
        try:
            sens = _sensfunc(std_files[0], redux, pf)
            res.sensfunc = sens
        except Exception as exc:  # noqa: BLE001
            res.fail(f"sensitivity function failed ({type(exc).__name__}: {exc}); "
                                "spectra are not flux calibrated")
    if sens is not None:
        # the standard fluxed with its own sensitivity function: a check of the
        # calibration against the archived spectrum (BOX_FLAM/OPT_FLAM of its spec1d)
        try:
            _flux(std_files[:1], sens, pf)
        except Exception as exc:  # noqa: BLE001
            res.warn(f"the standard's own spectrum was not fluxed ({type(exc).__name__}: {exc})")
    res.timings["sensfunc_s"] = time.time() - t1

    # -- flux calibration and coadds per target
    t2 = time.time()
    groups: dict[str, list[Path]] = {}
    for f, (_ftype, target) in ((f, v) for f, v in _science_targets(tbl, spec1d_of).items()):
        groups.setdefault(target, []).append(f)
    for frame, target in _frames_without_spec1d(tbl, spec1d_of):
        res.warn(f"{target}: no object extracted from {frame} (PypeIt wrote no spec1d); "
                 "the coadd holds the other exposures")
    if not groups:
        res.fail("no science spectrum was extracted")
    for target, files in groups.items():
        fluxed = False
        status = "not fluxed"
        if sens is not None:
            try:
                _flux(files, sens, pf)
                fluxed = True
                status = "fluxed"
            except Exception as exc:  # noqa: BLE001
                status = f"flux calibration failed: {exc}"
                res.fail(f"{target}: {status}")
        coadd = redux / f"{safe_name(target)}.fits"
        skipped: list[str] = []
        try:
            skipped = _coadd(files, coadd, pf, fluxed, sens=sens)
            for msg in skipped:
                res.warn(f"{target}: {msg}")
        except Exception as exc:  # noqa: BLE001
            res.fail(f"{target}: coadd failed ({type(exc).__name__}: {exc})")
            coadd = None
        tr = TargetResult(target, files, coadd, len(files) - len(skipped), fluxed, status)
        if coadd is not None:
            tr.snr_ha = _snr_near_halpha(coadd, target, targets)
            _plot_coadd(coadd, redux / "QA" / f"{safe_name(target)}_coadd.png", target)
        res.targets.append(tr)
    res.timings["flux_coadd_s"] = time.time() - t2
    return res


def _protected_line_waves(targets, plugin: InstrumentPlugin, windows) -> list[float] | None:
    """Observed wavelengths of the protected catalogue lines of the targets in the windows.

    ``None`` without a targets table with redshifts (the window centres stand in).
    """
    if targets is None or "z" not in getattr(targets, "colnames", ()):
        return None
    from ..lines.catalog import line_catalog
    from .pypeitfile import protected_lines
    cat = line_catalog()
    out = []
    for z in np.unique(np.asarray(targets["z"], float)):
        if np.isfinite(z):
            out += [cat[k].wave * (1 + z) for k in protected_lines(plugin.echelle)]
    return [float(w) for w in out if any(lo <= w <= hi for lo, hi in windows)]


def _protection_settings(settings: dict, plugin: InstrumentPlugin,
                         source: Path) -> tuple[str, float | None]:
    """Sky-protection method and radius from the ``# xmpspec:`` lines of a PypeIt file.

    ``sky_protect_method`` (``refit`` or ``interpolate``; default ``refit``
    for long slits, ``interpolate`` for echelle orders, too short to leave
    sky at their ends) and ``sky_protect_radius`` (arcsec; default 5 boxcar
    radii), see :mod:`xmpspec.reduce.skyprotect`.
    """
    from .skyprotect import METHODS
    method = settings.get("sky_protect_method", "").strip().lower() or (
        "interpolate" if plugin.echelle else "refit")
    if method not in METHODS:
        raise InputError(f"sky_protect_method must be one of {', '.join(METHODS)}, "
                         f"not '{method}'", source)
    radius = settings.get("sky_protect_radius", "").strip()
    if not radius:
        return method, None
    try:
        value = float(radius.split()[0].removesuffix('"').removesuffix("arcsec"))
    except ValueError:
        raise InputError(f"sky_protect_radius '{radius}' is not a number of arcsec",
                         source) from None
    if not value > 0:
        raise InputError(f"sky_protect_radius must be positive, not {value}", source)
    return method, value


def _diagnose_failure(redux: Path) -> str:
    """A human reason for a PypeIt failure, read from the calibrations it left."""
    calib = redux / "Calibrations"
    if not list(calib.glob("Slits_*")):
        return "no slit was traced (flat-field frames missing or unusable)"
    if not list(calib.glob("Arc_*")):
        return "no arc frame was processed (arc frames missing or mistyped)"
    waves = list(calib.glob("WaveCalib_*"))
    if not waves:
        return "the wavelength calibration did not run"
    try:
        from pypeit.wavecalib import WaveCalib
        wv = WaveCalib.from_file(str(waves[0]), chk_version=False)
        if not any(f is not None and getattr(f, "pypeitfit", None) is not None
                   for f in wv.wv_fits):
            return ("the wavelength calibration failed: no arc-line solution for any slit "
                    "(check the lamps, the grating keyword and the template)")
    except Exception:  # noqa: BLE001
        return ""
    return ""


def _spec1d_files(pypeit, science_dir: Path) -> dict[Path, str]:
    """spec1d file -> frame type, from PypeIt's metadata table."""
    out = {}
    for f in sorted(science_dir.glob("spec1d_*.fits")):
        out[f] = ""
    tbl = pypeit.fitstbl.table
    for f in out:
        for row in tbl:
            if f"spec1d_{_raw_stem(row['filename'])}-" in f.name:
                out[f] = str(row["frametype"])
                break
    return out


def _science_targets(tbl, spec1d_of: dict[Path, str]) -> dict[Path, tuple[str, str]]:
    from astropy.io import fits
    out = {}
    for f, ftype in spec1d_of.items():
        if "science" not in ftype.split(","):
            continue
        with fits.open(f) as hdul:
            target = str(hdul[0].header.get("TARGET", f.stem))
        out[f] = (ftype, target)
    return out


def _raw_stem(filename) -> str:
    """The start of PypeIt's output names for a raw file.

    PypeIt (``PypeItMetaData.construct_basename``) cuts the file name at its
    first ``.fits``: ``b1.fits.gz`` -> ``b1``, but ``r1234567.fit.gz`` stays
    ``r1234567.fit.gz`` (``spec1d_r1234567.fit.gz-...``).
    """
    return Path(str(filename)).name.split(".fits")[0]


def _science_rows(table):
    """(row, target) of the science frames of PypeIt's metadata table."""
    for row in table:
        if "science" in str(row["frametype"]).split(","):
            target = str(row["target"]).strip() if "target" in table.colnames else ""
            yield row, target


def _listed_science_frames(table, targets) -> list[str]:
    """Raw names of the science frames whose target is in the targets table (all if none)."""
    names = None
    if targets is not None and "name" in targets.colnames:
        names = {str(n).strip() for n in targets["name"]}
    return [Path(str(row["filename"])).name for row, target in _science_rows(table)
            if names is None or target in names]


def _frames_without_spec1d(tbl, spec1d_of: dict[Path, str]) -> list[tuple[str, str]]:
    """(raw file, target) of science frames PypeIt wrote no spec1d for (no object)."""
    table = tbl.table if hasattr(tbl, "table") else tbl
    out = []
    for row, target in _science_rows(table):
        stem = _raw_stem(row["filename"])
        if not any(f"spec1d_{stem}-" in f.name for f in spec1d_of):
            out.append((Path(str(row["filename"])).name, target or stem))
    return out


def _wave_rms(redux: Path) -> float:
    """Largest RMS (pixels) of the wavelength solutions in the Calibrations folder."""
    from astropy.io import fits
    rms = []
    for f in (redux / "Calibrations").glob("WaveCalib_*.fits"):
        try:
            with fits.open(f) as hdul:
                for h in hdul[1:]:
                    if "RMS" in h.header:
                        rms.append(float(h.header["RMS"]))
                    elif h.data is not None and hasattr(h.data, "names") and h.data.names \
                            and "RMS" in [n.upper() for n in h.data.names]:
                        rms.extend(np.atleast_1d(h.data["RMS"]).astype(float).tolist())
        except Exception:  # noqa: BLE001
            continue
    if not rms:
        from pypeit.wavecalib import WaveCalib
        for f in (redux / "Calibrations").glob("WaveCalib_*.fits"):
            try:
                wv = WaveCalib.from_file(str(f), chk_version=False)
                rms.extend(float(w.rms) for w in wv.wv_fits if w is not None and w.rms)
            except Exception:  # noqa: BLE001
                continue
    return float(max(rms)) if rms else float("nan")


def _par_from(pf, spec1d: Path):
    from astropy.io import fits
    from pypeit.par import pypeitpar
    from pypeit.spectrographs.util import load_spectrograph
    with fits.open(spec1d) as hdul:
        spectrograph = load_spectrograph(hdul[0].header["PYP_SPEC"])
        cpar = spectrograph.config_specific_par(hdul)
    par = pypeitpar.PypeItPar.from_cfg_lines(cfg_lines=cpar.to_config(),
                                             merge_with=(pf.cfg_lines,))
    return spectrograph, par


def _sensfunc(std_spec1d: Path, redux: Path, pf) -> Path:
    from astropy.io import fits
    from pypeit import io as pio
    from pypeit import sensfunc

    spectrograph, par = _par_from(pf, std_spec1d)
    out = redux / f"sens_{std_spec1d.name.removeprefix('spec1d_')}"
    primary_hdr = pio.initialize_header()
    with fits.open(std_spec1d) as hdul:
        keys = (["PYP_SPEC", "DATE-OBS", "TELESCOP", "INSTRUME", "DETECTOR"]
                + spectrograph.configuration_keys() + spectrograph.raw_header_cards())
        for k in keys:
            if k.upper() in hdul[0].header:
                primary_hdr[k.upper()] = hdul[0].header[k.upper()]
    sobj = sensfunc.SensFunc.get_instance([str(std_spec1d)], str(out), par["sensfunc"],
                                          par_fluxcalib=par["fluxcalib"], chk_version=False)
    sobj.run()
    sobj.to_file(str(out), primary_hdr=primary_hdr, overwrite=True)
    return out


def _flux(files: list[Path], sens: Path, pf) -> None:
    from pypeit import fluxcalibrate
    _, par = _par_from(pf, files[0])
    fluxcalibrate.flux_calibrate([str(f) for f in files], [str(sens)] * len(files),
                                 par=par["fluxcalib"], chk_version=False)


def _coadd(files: list[Path], out: Path, pf, fluxed: bool,
           sens: Path | None = None) -> list[str]:
    """Coadd the exposures of one target; returns the exposures left out (and why)."""
    from pypeit import coadd1d
    from pypeit.specobjs import SpecObjs

    spectrograph, par = _par_from(pf, files[0])
    extr = "BOX" if str(par["sensfunc"]["extr"]).upper() == "BOX" else "OPT"
    par["coadd1d"]["ex_value"] = extr
    par["coadd1d"]["flux_value"] = bool(fluxed)
    echelle = spectrograph.pypeline == "Echelle"
    if echelle and sens is None:
        raise InputError("the echelle coadd combines flux-calibrated orders and needs the "
                         "sensitivity function, and there is none", files[0])
    objids, used, skipped = [], [], []
    for f in files:
        sobjs = SpecObjs.from_fitsfile(str(f), chk_version=False)
        # the brightest object of the exposure (boxcar counts) is the target; an
        # echelle object is one spectrum per order, all sharing its ECH_NAME
        totals: dict[str, float] = {}
        for s in sobjs:
            cnt = s[f"{extr}_COUNTS"]
            if cnt is None:
                continue
            key = s.ECH_NAME if echelle else s.NAME
            totals[key] = totals.get(key, 0.0) + float(np.nansum(cnt))
        if not totals:
            skipped.append(f"{f.name}: no extracted object, left out of the coadd")
            continue
        objids.append(max(totals, key=totals.get))
        used.append(f)
    if not used:
        raise InputError("no extracted object in any exposure", files[0])
    files = used
    if echelle:
        # PypeIt's ech_combspec rescales orders and exposures to each other (+5..+14% on
        # MagE line fluxes): stack the fluxed orders by inverse variance instead
        from .echcoadd import coadd_echelle
        coadd_echelle(files, objids, out, spectrograph, par["coadd1d"], sens)
        return skipped
    co = coadd1d.CoAdd1D.get_instance([str(f) for f in files], objids, spectrograph=spectrograph,
                                      par=par["coadd1d"], chk_version=False)
    co.run()
    co.save(str(out))
    return skipped


def _snr_near_halpha(coadd: Path, target: str, targets) -> float:
    """Median S/N per pixel within +-50 A of Halpha (the continuum and line)."""
    from astropy.io import fits
    z = 0.0
    if targets is not None and "name" in targets.colnames and "z" in targets.colnames:
        m = np.asarray(targets["name"]).astype(str) == str(target)
        if m.any():
            z = float(np.asarray(targets["z"])[m][0])
    try:
        with fits.open(coadd) as hdul:
            d = hdul[1].data
            w, f, iv = d["wave"], d["flux"], d["ivar"]
    except Exception:  # noqa: BLE001
        return float("nan")
    sel = (np.abs(w - 6564.61 * (1 + z)) < 50) & (iv > 0)
    if not sel.any():
        return float("nan")
    return float(np.median(f[sel] * np.sqrt(iv[sel])))


def _plot_coadd(coadd: Path, png: Path, target: str) -> None:
    """QA plot of a coadded spectrum."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits
    try:
        with fits.open(coadd) as hdul:
            d = hdul[1].data
            w, f, iv = d["wave"], d["flux"], d["ivar"]
    except Exception:  # noqa: BLE001
        return
    png.parent.mkdir(parents=True, exist_ok=True)
    err = np.where(iv > 0, 1 / np.sqrt(np.where(iv > 0, iv, 1)), np.nan)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(w, f, lw=0.7, color="k", label="flux")
    ax.plot(w, err, lw=0.5, color="r", label="1-sigma error")
    good = iv > 0
    if good.any():
        lo, hi = np.nanpercentile(f[good], [1, 99.8])
        ax.set_ylim(min(lo, 0) * 1.2, hi * 1.3)
    ax.set_xlabel("vacuum wavelength (A, heliocentric)")
    ax.set_ylabel("flux (1e-17 erg/s/cm2/A)")
    ax.set_title(f"{target}: {coadd.name}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
