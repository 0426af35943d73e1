"""``xmpspec setup``: PypeIt files with xmpspec's tuned parameters, and the night log.

:func:`setup_night` screens a folder of raw frames (unreadable files,
frames of another instrument, files PypeIt would silently skip), runs
PypeIt's own setup (:class:`pypeit.pypeitsetup.PypeItSetup`) in-process,
applies the instrument plug-in's frame-type corrections, and writes one
PypeIt file per configuration to ``<root>/pypeit_files/<instrument>/<night>/``.

The files are plain PypeIt files (editable, meant to be committed). Lines
starting with ``# xmpspec:`` carry xmpspec's own settings, which
``xmpspec reduce`` reads back (hand edits are honoured)::

    # xmpspec: instrument = goodman
    # xmpspec: sky_protect = 6690.2-6719.5, 5100.0-5127.4
    # xmpspec: extraction = boxcar

Paths in the files are relative to the PypeIt file's own folder (the data
block's ``path`` lines and ``# xmpspec: raw_dir``), so a committed file holds
no path of the machine it was written on and works in any checkout
(:func:`relative_path`; absolute only when no relative path exists, e.g. on
another drive, said in a comment). PypeIt itself reads a relative ``path``
against the working folder, so xmpspec never hands it the file itself:
:func:`read_pypeit_file` resolves every data path against the file's folder
(one rule, absolute paths written by PypeIt's own ``pypeit_setup`` or by hand
stay as they are) and :func:`write_run_copy` writes the copy PypeIt runs on
in the reduction folder.

Coadd groups are the science exposures of each ``target`` in the data
table: renaming a target (or retyping a frame) in the file changes them.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .registry import InstrumentPlugin, get_instrument

__all__ = ["RawScreen", "screen_raw_files", "setup_night", "SetupResult", "pypeit_cfg_lines",
           "read_xmpspec_settings", "protect_windows_for_targets", "protected_lines",
           "merge_windows", "default_night_name", "relative_path", "read_pypeit_file",
           "resolve_data_paths", "write_run_copy"]

log = logging.getLogger("xmpspec.reduce")

#: Lines protected from sky over-subtraction (catalogue keys).
PROTECTED_LINES = ("ha", "oiii5008", "hb")


@dataclass
class RawScreen:
    """Result of screening a raw folder before PypeIt sees it."""

    usable: list[Path] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)   # file name -> problem
    warnings: list[str] = field(default_factory=list)


def _header_instrument(path: Path) -> str | None:
    from astropy.io import fits
    with fits.open(path) as hdul:
        for h in hdul[:2]:
            val = h.header.get("INSTRUME")
            if val:
                return str(val).strip()
    return None


def screen_raw_files(raw_dir: str | Path, plugin: InstrumentPlugin) -> RawScreen:
    """Find the raw frames of ``plugin``'s instrument in ``raw_dir``.

    Unreadable files and frames whose INSTRUME belongs to another instrument
    are listed in ``problems`` (and left out); files PypeIt would ignore are
    reported in ``warnings``.

    Raises
    ------
    InputError
        ``raw_dir`` is not a folder or holds no FITS files at all.
    """
    from astropy.io import fits

    from .frametype import is_raw_name

    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError("raw-data folder not found", raw_dir)
    out = RawScreen()
    candidates = sorted(p for p in raw_dir.iterdir() if p.is_file() and is_raw_name(p.name))
    if not candidates:
        raise InputError("no raw FITS frames (*.fits, *.fit, *.fts, plain or .gz/.fz/.bz2) "
                         "in this folder", raw_dir)
    out.warnings.extend(plugin.check_raw_files(raw_dir))
    wanted = [re.compile(v, re.I) for v in plugin.instrume_patterns]
    for p in candidates:
        try:
            with fits.open(p) as hdul:
                hdul.verify("silentfix")
                for h in hdul:
                    _ = h.header
                    if h.data is not None:
                        _ = h.data.shape
            inst = _header_instrument(p)
        except Exception as exc:  # noqa: BLE001 - any failure means unreadable
            out.problems[p.name] = f"unreadable FITS file ({type(exc).__name__}: {exc})"
            continue
        if inst and wanted and not any(w.search(inst) for w in wanted):
            out.problems[p.name] = (f"INSTRUME = '{inst}' is not {plugin.name} "
                                    "(mixed instruments in one folder: left out)")
            continue
        if not any(p.match(pat) for pat in plugin.raw_patterns):
            continue   # reported by plugin.check_raw_files
        out.usable.append(p)
    if not out.usable:
        detail = "; ".join(f"{k}: {v}" for k, v in out.problems.items()) or "; ".join(out.warnings)
        raise InputError(f"no usable {plugin.name} raw frames ({detail})", raw_dir)
    return out


def default_night_name(raw_dir: str | Path) -> str:
    """Night name from the raw folder: its name as given.

    ``raw/n1``, ``raw/n1/`` and ``.`` inside it all name ``n1``; a symbolic
    link keeps its own name.
    """
    return Path(os.path.abspath(raw_dir)).name


def protected_lines(echelle: bool = False, config=None) -> tuple[str, ...]:
    """Catalogue keys of the lines whose sky is protected.

    Long slits: the bright, spatially extended lines (:data:`PROTECTED_LINES`),
    whose wings PypeIt's sky fit absorbs. Echelle orders: every line of the
    catalogue. There the object mask covers most of a short order, PypeIt's
    sky model diverges at every emission line of the target, and PypeIt's
    cosmic-ray mask (built from image - sky) flags the line cores. Measured on
    the simulated MagE night (docs/reduce.md): with Halpha, [OIII]5008, Hbeta
    and their fit groups protected, those came out within 1-3% of the injected
    fluxes while every unprotected line was low ([OII] 0.65-0.69, [NeIII]3870
    0.64, [OI]6302 0.63, HeI5877 0.71, Hdelta 0.80, Hgamma 0.82, [OIII]4364
    0.86, [SII]6718 0.85). The cost: a night-sky line on an emission line is
    not subtracted (``interpolate`` method; elsewhere in the windows PypeIt's
    sky model is kept at night-sky lines, :mod:`xmpspec.reduce.skyprotect`),
    so windows are as narrow as the lines.

    Parameters
    ----------
    echelle : bool
        An echelle set-up.
    config : Config, optional
        Line catalogue configuration.

    Returns
    -------
    tuple of str
    """
    if not echelle:
        return PROTECTED_LINES
    from ..lines.catalog import line_catalog
    return tuple(line.key for line in line_catalog(config))


def merge_windows(windows) -> list[tuple[float, float]]:
    """Sorted wavelength windows with overlapping ones merged."""
    out: list[tuple[float, float]] = []
    for lo, hi in sorted((float(a), float(b)) for a, b in windows):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def protect_windows_for_targets(targets, setup_name,
                                lines: tuple[str, ...] = PROTECTED_LINES,
                                config=None) -> list[tuple[float, float]]:
    """Observed vacuum wavelength windows of bright lines at each target's redshift.

    Half-width: 3 instrumental FWHM plus 300 km/s, so the full line (and
    redshift errors of a few 100 km/s) is covered. Overlapping windows (lines
    closer than their half-widths, or targets at similar redshifts) are merged,
    so that no window is interpolated from the inside of another.

    Parameters
    ----------
    targets : astropy.table.Table or None
        Targets table with a ``z`` column.
    setup_name : str or xmpspec.instruments.Setup
        :mod:`xmpspec.instruments` set-up (resolution), by name or itself.
    lines : tuple of str
        Catalogue keys (see :func:`protected_lines`).
    config : Config, optional
        Line catalogue configuration.

    Returns
    -------
    list of (float, float)
    """
    from ..instruments import C_KMS, Setup, get_setup
    from ..lines.catalog import line_catalog

    if targets is None or "z" not in targets.colnames:
        return []
    st = setup_name if isinstance(setup_name, Setup) else get_setup(setup_name)
    cat = line_catalog(config)
    out = []
    for z in np.unique(np.asarray(targets["z"], float)):
        if not np.isfinite(z):
            continue
        for key in lines:
            w = cat[key].wave * (1 + z)
            half = 3 * float(st.fwhm_at(w)) + w * 300.0 / C_KMS
            out.append((round(w - half, 2), round(w + half, 2)))
    return merge_windows(out)


def pypeit_cfg_lines(plugin: InstrumentPlugin, context: dict) -> list[str]:
    """PypeIt parameter lines: generic xmpspec tuning + the plug-in's own."""
    params: dict = {
        "rdx": {"spectrograph": plugin.pypeit_name},
        "reduce": {"extraction": {"boxcar_radius": context.get("boxcar_radius",
                                                               plugin.boxcar_radius)}},
        "sensfunc": {"extr": "BOX" if context.get("extraction", "boxcar") == "boxcar" else "OPT"},
        # PypeIt's default 3-sigma rejection between exposures drops the peak pixels of
        # bright, narrow emission lines (Halpha lost 40% of its flux on a simulated IDS
        # night); 10 sigma still rejects cosmic-ray residuals
        "coadd1d": {"lower": 10.0, "upper": 10.0},
    }
    if context.get("extraction", "boxcar") == "boxcar":
        params["reduce"]["extraction"]["skip_optimal"] = True
    if context.get("sky_protect"):
        # the protected global sky is the final one: no local re-fit that would undo it
        params["reduce"]["skysub"] = {"no_local_sky": True}
    _merge(params, plugin.pypeit_parameters(context))
    return _to_cfg(params)


def _merge(a: dict, b: dict) -> None:
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            _merge(a[k], v)
        else:
            a[k] = v


def _to_cfg(params: dict, depth: int = 1) -> list[str]:
    lines = []
    for k, v in params.items():
        if isinstance(v, dict):
            lines.append("    " * (depth - 1) + "[" * depth + k + "]" * depth)
            lines.extend(_to_cfg(v, depth + 1))
        else:
            if isinstance(v, (list, tuple)):
                v = ", ".join(str(x) for x in v)
            lines.append("    " * (depth - 1) + f"{k} = {v}")
    return lines


_SETTING = re.compile(r"^#\s*xmpspec:\s*(\w+)\s*=\s*(.*?)\s*$")


def read_xmpspec_settings(path: str | Path) -> dict[str, str]:
    """The ``# xmpspec: key = value`` lines of a PypeIt file."""
    out = {}
    for line in Path(path).read_text().splitlines():
        m = _SETTING.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def parse_windows(text: str) -> list[tuple[float, float]]:
    """Parse ``"6690.2-6719.5, 5100-5127"`` into wavelength windows."""
    out = []
    for part in filter(None, (t.strip() for t in text.split(","))):
        m = re.match(r"^([\d.]+)\s*-\s*([\d.]+)$", part)
        if not m:
            raise InputError(f"sky_protect window '{part}' is not 'wmin-wmax'")
        a, b = float(m.group(1)), float(m.group(2))
        out.append((min(a, b), max(a, b)))
    return out


def relative_path(target: str | Path, folder: str | Path) -> tuple[str, bool]:
    """``target`` written relative to ``folder``, or absolute when no relative path exists.

    Both are made absolute lexically (:func:`os.path.abspath`: symbolic links
    are not followed, ``..`` is removed by name), the way
    :func:`resolve_data_paths` reads the result back.

    Parameters
    ----------
    target, folder : path-like

    Returns
    -------
    path : str
        ``target`` relative to ``folder``, or its absolute path when there is
        none (another drive on Windows).
    relative : bool
        Whether ``path`` is relative.
    """
    try:
        return os.path.relpath(os.path.abspath(target), os.path.abspath(folder)), True
    except ValueError:      # another drive: no relative path
        return os.path.abspath(target), False


def resolve_data_paths(paths, pypeit_file: str | Path) -> list[str]:
    """The data paths of a PypeIt file, relative ones read from the file's own folder.

    The one rule of xmpspec for the ``path`` lines of a PypeIt file (PypeIt
    itself reads them from the working folder). The result spells the folder
    as ``pypeit_file`` is spelled (given relative: relative to the working
    folder; given absolute: absolute); absolute data paths (PypeIt's own
    ``pypeit_setup`` writes those) are kept. A file without ``path`` lines
    lists frames in its own folder. A relative path that is no folder beside
    the file but is one from the working folder (a file written by hand for
    PypeIt, whose convention that is) is read from the working folder, with a
    warning.

    Parameters
    ----------
    paths : sequence of str
        The ``path`` lines of the data block (``PypeItFile.file_paths``).
    pypeit_file : path-like
        The PypeIt file, as given.

    Returns
    -------
    list of str
    """
    folder = os.path.dirname(os.fspath(pypeit_file))
    out = []
    for p in (str(p).strip() for p in paths):
        if not p:
            continue
        path = os.path.normpath(os.path.join(folder, p))
        if not os.path.isabs(p) and not os.path.isdir(path) and os.path.isdir(p):
            # written by hand for PypeIt, whose convention is the working folder
            log.warning("%s: data path '%s' is not a folder beside the PypeIt file; read from "
                        "the working folder as PypeIt would (xmpspec writes paths relative to "
                        "the PypeIt file)", pypeit_file, p)
            path = os.path.normpath(p)
        out.append(path)
    return out or [os.path.normpath(folder or os.curdir)]


def read_pypeit_file(path: str | Path):
    """Read a PypeIt file with PypeIt's reader, its data paths resolved.

    Parameters
    ----------
    path : path-like
        The PypeIt file, as given.

    Returns
    -------
    pypeit.inputfiles.PypeItFile
        ``file_paths`` resolved by :func:`resolve_data_paths`, so
        ``filenames`` names the raw frames from any working folder.

    Raises
    ------
    InputError
        A file PypeIt cannot read as a PypeIt file.
    """
    from pypeit.inputfiles import PypeItFile
    try:
        pf = PypeItFile.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - PypeItError, parse errors
        raise InputError(f"not a valid PypeIt file: {exc}", path) from exc
    pf.file_paths = resolve_data_paths(pf.file_paths or [], path)
    return pf


def write_run_copy(pypeit_file: str | Path, dest: str | Path, data_paths) -> Path:
    """Write the copy of a PypeIt file that PypeIt runs on, ``path`` lines = ``data_paths``.

    Only the data block's ``path`` lines differ from the file: every
    parameter, setup, comment and data line is copied as written, so PypeIt
    reads the same file with data paths valid from the working folder
    (:func:`resolve_data_paths`). PypeIt writes its ``.calib`` and ``.par``
    files beside the copy. Written atomically.

    Parameters
    ----------
    pypeit_file : path-like
        The PypeIt file (as given; named in the copy's first line).
    dest : path-like
        The copy.
    data_paths : sequence of str
        Resolved data paths.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    InputError
        The file has no ``data read`` block.
    """
    dest = Path(dest)
    out = [f"# xmpspec: the copy of {pypeit_file} that PypeIt runs on, its data paths "
           "resolved against that file's folder: edit that file, not this one"]
    where = "before"
    for line in Path(pypeit_file).read_text().splitlines():
        words = line.split("#")[0].split()
        if where == "before" and words[:2] == ["data", "read"]:
            out.append(line)
            out += [f" path {p}" for p in data_paths]
            where = "paths"
            continue
        if where == "paths" and words:
            if words[0] == "path":
                continue        # replaced above
            where = "table"
        out.append(line)
    if where == "before":
        raise InputError("no 'data read' block in the PypeIt file", pypeit_file)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text("\n".join(out) + "\n")
    os.replace(tmp, dest)
    return dest


@dataclass
class SetupResult:
    """What ``xmpspec setup`` produced."""

    pypeit_files: list[Path]
    night_log: object            # astropy Table
    flags: list[str]
    screen: RawScreen
    night_log_path: Path | None = None


def setup_night(raw_dir: str | Path, instrument: str, night: str | None = None,
                root: str | Path = ".", targets=None, extraction: str | None = None,
                sky_protect: bool = True, boxcar_radius: float | None = None) -> SetupResult:
    """Run PypeIt's setup on a raw night and write xmpspec-tuned PypeIt files.

    Parameters
    ----------
    raw_dir : path-like
        Folder with the night's raw frames.
    instrument : str
        ``goodman``, ``int_ids``, ``mage`` (or an alias).
    night : str, optional
        Night name (default: the raw folder's name).
    root : path-like
        Files go to ``<root>/pypeit_files/<instrument>/<night>/``.
    targets : astropy.table.Table, optional
        Targets table (``name``, ``z``): bright lines at these redshifts are
        protected from sky over-subtraction.
    extraction : {'boxcar', 'optimal'}, optional
        Default: the plug-in's (boxcar).
    sky_protect : bool
        Write protection windows when redshifts are known.
    boxcar_radius : float, optional
        arcsec; default the plug-in's tuned radius.

    Returns
    -------
    SetupResult

    Raises
    ------
    InputError
        No usable raw frames; PypeIt found no configuration.
    """
    from .frametype import apply_lamp_rules
    from .nightlog import night_log
    from .runner import prepare_pypeit

    plugin = get_instrument(instrument)
    prepare_pypeit(plugin)
    from pypeit.pypeitsetup import PypeItSetup

    night = night or default_night_name(raw_dir)
    screen = screen_raw_files(raw_dir, plugin)
    try:
        ps = PypeItSetup.from_rawfiles([str(p) for p in screen.usable], plugin.pypeit_name)
        ps.run(setup_only=True, clean_config=False)
    except Exception as exc:  # PypeItError and friends
        raise InputError(f"PypeIt's setup failed: {exc}", raw_dir) from exc
    tbl = ps.fitstbl.table
    # the lamp state decides arcs and flats whatever OBSTYPE/IMAGETYP say (frametype.py)
    kinds = ("arc", "flat", "bias") if _uses_bias(plugin) else ("arc", "flat")
    reasons, changes = apply_lamp_rules(tbl, kinds=kinds)
    changes += plugin.fix_frametypes(tbl)
    log_tab, flags = night_log(ps.fitstbl, plugin, screen, changes, reasons)

    outdir = Path(root) / "pypeit_files" / plugin.name / night
    outdir.mkdir(parents=True, exist_ok=True)
    extraction = extraction or plugin.extraction
    windows = protect_windows_for_targets(
        targets, plugin.instrument_setup(),
        lines=protected_lines(plugin.echelle)) if sky_protect else []
    context = {"extraction": extraction, "sky_protect": windows,
               "boxcar_radius": boxcar_radius or plugin.boxcar_radius}
    cfg = pypeit_cfg_lines(plugin, context)
    configs = [c for c in ps.fitstbl.unique_configurations(copy=True, rm_none=True)]
    if not configs:
        raise InputError("PypeIt found no instrument configuration among the frames "
                         "(are science and calibration frames typed?)", raw_dir)
    # data paths relative to the PypeIt files' folder (module docstring)
    rel = {d: relative_path(d, outdir) for d in {str(d) for d in tbl["directory"]}}
    tbl.replace_column("directory", [rel[str(d)][0] for d in tbl["directory"]])
    raw_rel, raw_is_rel = relative_path(raw_dir, outdir)
    notes = [] if raw_is_rel and all(ok for _, ok in rel.values()) else [
        "# xmpspec: (a path below is absolute: no relative path leads from this folder to "
        "the raw frames, e.g. they are on another drive)"]
    written = []
    for setup in configs:
        files = ps.fitstbl.write_pypeit(output_path=str(outdir), cfg_lines=list(cfg),
                                        configs=[setup], config_subdir=False)
        for f in files:
            f = Path(f)
            groups = _coadd_groups(tbl, setup)
            header = [f"# xmpspec: instrument = {plugin.name}",
                      f"# xmpspec: night = {night}",
                      f"# xmpspec: raw_dir = {raw_rel}", *notes,
                      f"# xmpspec: extraction = {extraction}",
                      f"# xmpspec: sky_protect = "
                      f"{', '.join(f'{a:.2f}-{b:.2f}' for a, b in windows)}",
                      "# xmpspec: (coadd groups = science frames of each 'target' below;",
                      "# xmpspec:  edit targets/frametypes to change them)"]
            header += [f"#   coadd {t}: {', '.join(fs)}" for t, fs in groups.items()]
            f.write_text("\n".join(header) + "\n" + f.read_text())
            written.append(f)
    log_path = outdir / "night_log.ecsv"
    from ..provenance import provenance_record
    from ..tableio import write_table
    write_table(log_tab, log_path, provenance=provenance_record(
        inputs=[str(p) for p in screen.usable], step="setup",
        extra={"instrument": plugin.name, "night": night, "flags": flags}))
    return SetupResult(written, log_tab, flags, screen, log_path)


def _uses_bias(plugin: InstrumentPlugin) -> bool:
    """Whether PypeIt subtracts bias frames for this spectrograph (else bias typing is moot)."""
    try:
        from pypeit.spectrographs.util import load_spectrograph
        par = load_spectrograph(plugin.pypeit_name).default_pypeit_par()
        return bool(par["scienceframe"]["process"]["use_biasimage"])
    except Exception:  # noqa: BLE001
        return True


def _coadd_groups(tbl, setup: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for row in tbl:
        if "science" in str(row["frametype"]).split(",") and setup in str(row["setup"]).split(","):
            groups.setdefault(str(row["target"]), []).append(str(row["filename"]))
    return groups
