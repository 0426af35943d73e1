"""Offline reference data: import into PypeIt's and astropy's download caches.

PypeIt 2.0.1 downloads its wavelength templates, standard-star spectra and
sky files on demand, and ``import pypeit.spectrographs`` needs astropy's site
list. With no network a reduction then fails midway. This module copies
folders laid out like PypeIt's ``pypeit/data`` tree (``arc_lines/...``,
``standards/...``, ``skisim/...``) or like astropy-data (``coordinates/...``)
into the two caches under the exact URLs the packages request, using the
packages' own cache API (:func:`pypeit.cache.write_file_to_cache` and
:func:`astropy.utils.data.import_file_to_cache`), and reports per instrument
which reference files are present.

The caches follow ``$XDG_CACHE_HOME`` when it is set: ``$XDG_CACHE_HOME/astropy``
and ``$XDG_CACHE_HOME/pypeit`` are created so that astropy uses them.

Examples
--------
>>> from xmpspec.reduce.cache import import_reference_data   # doctest: +SKIP
>>> import_reference_data(["../shared/pypeit-data", "../shared/astropy-data"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, ReferenceDataError
from .registry import ReferenceFile, get_instrument

__all__ = ["ImportedFile", "FileStatus", "prepare_cache_dirs", "detect_kind",
           "import_reference_data", "reference_status", "missing_reference_files",
           "ensure_reference_data", "ensure_sites", "cache_url"]

#: Top-level folders of PypeIt's ``pypeit/data`` tree that hold downloadable files.
PYPEIT_DATA_DIRS = ("arc_lines", "standards", "skisim", "sensfuncs", "telluric", "extinction",
                    "sky_spec", "filters", "static_calibs", "pixelflats", "spectrographs",
                    "templates", "tests")
#: Top-level folders of the astropy-data repository.
ASTROPY_DATA_DIRS = ("coordinates", "photometry", "tutorials", "io", "visualization",
                     "galactic_center", "allsky")
_SKIP_NAMES = {"README.md", "README", "README.txt", "PROVENANCE.txt", "LICENSE", ".gitignore"}


@dataclass(frozen=True)
class ImportedFile:
    """One file written into a download cache."""

    path: Path
    package: str
    url: str


@dataclass(frozen=True)
class FileStatus:
    """Availability of one reference file.

    ``state`` is ``installed`` (shipped inside the package), ``cached`` (in the
    download cache) or ``missing``.
    """

    ref: ReferenceFile
    state: str
    where: str

    @property
    def present(self) -> bool:
        """True unless missing."""
        return self.state != "missing"


def prepare_cache_dirs() -> None:
    """Create ``$XDG_CACHE_HOME/{astropy,pypeit}`` when ``XDG_CACHE_HOME`` is set.

    astropy only uses ``$XDG_CACHE_HOME/<pkg>`` if that folder exists; making it
    keeps a user's (or a test's) private cache private.
    """
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        for pkg in ("astropy", "pypeit"):
            Path(xdg, pkg).mkdir(parents=True, exist_ok=True)


def detect_kind(folder: str | Path) -> str:
    """Tell whether ``folder`` mirrors PypeIt's data tree or astropy-data.

    Returns
    -------
    str
        ``"pypeit"`` or ``"astropy"``.

    Raises
    ------
    InputError
        Not a folder, or neither layout recognised.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder", folder)
    tops = {p.name for p in folder.iterdir() if p.is_dir()}
    is_pypeit = bool(tops & set(PYPEIT_DATA_DIRS))
    is_astropy = bool(tops & set(ASTROPY_DATA_DIRS))
    if is_pypeit and not is_astropy:
        return "pypeit"
    if is_astropy and not is_pypeit:
        return "astropy"
    if is_pypeit and is_astropy:
        raise InputError("holds both PypeIt data folders and astropy-data folders "
                         f"({', '.join(sorted(tops))}); import them as separate folders", folder)
    raise InputError("layout not recognised: expected PypeIt data folders "
                     f"({', '.join(PYPEIT_DATA_DIRS[:4])}, ...) or astropy-data folders "
                     f"(coordinates, ...); found {', '.join(sorted(tops)) or 'no sub-folders'}",
                     folder)


def cache_url(ref: ReferenceFile) -> str:
    """The URL under which ``ref`` is stored in its package's download cache."""
    if ref.package == "astropy":
        from astropy.utils.data import conf
        return conf.dataurl + ref.relpath
    import pypeit.cache
    url, _ = pypeit.cache._build_remote_url(ref.name, ref.subdir, remote_host="github")
    return url


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.name not in _SKIP_NAMES and not p.name.startswith("."))


def import_reference_data(folders: Iterable[str | Path], progress=None) -> list[ImportedFile]:
    """Import reference-data folders into PypeIt's and astropy's download caches.

    Parameters
    ----------
    folders : iterable of path-like
        Folders laid out like PypeIt's ``pypeit/data`` tree or like astropy-data
        (detected per folder by :func:`detect_kind`).
    progress : callable, optional
        ``progress(iterable, description)`` wrapper (e.g. a progress bar).

    Returns
    -------
    list of ImportedFile
        Every file imported, with its cache URL.

    Raises
    ------
    InputError
        A folder is missing, of unknown layout, or holds no files.
    """
    from astropy.utils.data import import_file_to_cache

    prepare_cache_dirs()
    plan: list[tuple[Path, ReferenceFile]] = []
    for folder in folders:
        folder = Path(folder)
        kind = detect_kind(folder)
        files = [f for f in _files(folder) if f.relative_to(folder).parts[0] != f.name]
        if not files:
            raise InputError("no data files under its sub-folders", folder)
        for f in files:
            rel = f.relative_to(folder)
            plan.append((f, ReferenceFile(rel.parent.as_posix(), rel.name, package=kind)))
    out = []
    items = progress(plan, "importing reference files") if progress else plan
    for path, ref in items:
        url = cache_url(ref)
        if ref.package == "pypeit":
            import pypeit.cache
            pypeit.cache.write_file_to_cache(str(path), ref.name, ref.subdir)
        else:
            import_file_to_cache(url, str(path), remove_original=False, pkgname="astropy")
        out.append(ImportedFile(path, ref.package, url))
    return out


def file_status(ref: ReferenceFile) -> FileStatus:
    """Where ``ref`` is available: installed, cached or missing."""
    from astropy.utils.data import cache_contents

    prepare_cache_dirs()
    if ref.package == "pypeit":
        import pypeit.cache
        installed = Path(str(pypeit.cache.__PYPEIT_DATA__)) / ref.subdir / ref.name
        if installed.is_file():
            return FileStatus(ref, "installed", str(installed))
    url = cache_url(ref)
    contents = cache_contents(pkgname=ref.package)
    if url in contents:
        return FileStatus(ref, "cached", contents[url])
    return FileStatus(ref, "missing", url)


def reference_status(instrument: str, raw_files=None) -> list[FileStatus]:
    """Status of every reference file ``instrument`` needs (see ``xmpspec cache status``).

    Parameters
    ----------
    instrument : str
        Instrument name (a tuned plug-in or any PypeIt spectrograph).
    raw_files : sequence of path-like, optional
        A night's raw frames: the templates and standards of that night are
        added (generic PypeIt spectrographs).
    """
    plugin = get_instrument(instrument)
    return [file_status(r) for r in plugin.all_reference_files(raw_files)]


def missing_reference_files(instrument: str, raw_files=None) -> list[ReferenceFile]:
    """Required reference files of ``instrument`` that are neither installed nor cached."""
    return [s.ref for s in reference_status(instrument, raw_files)
            if not s.present and s.ref.required]


def ensure_sites(reference_dirs: Iterable[str | Path] = ()) -> None:
    """Import astropy's site list from ``reference_dirs`` if it is not cached yet.

    ``import pypeit.spectrographs`` (and so resolving any PypeIt spectrograph
    name) needs it; called before an instrument name is resolved.
    """
    from .registry import ASTROPY_SITES
    if file_status(ASTROPY_SITES).present:
        return
    for d in (Path(x) for x in reference_dirs if x):
        if d.is_dir() and (d / ASTROPY_SITES.relpath).is_file() and detect_kind(d) == "astropy":
            import_reference_data([d])
            return


def ensure_reference_data(instrument: str, reference_dirs: Iterable[str | Path] = (),
                          source: str | Path | None = None,
                          raw_files=None) -> list[FileStatus]:
    """Pre-flight check: every reference file of ``instrument`` is available.

    Missing files are imported from ``reference_dirs`` (folders laid out like
    ``../shared/pypeit-data`` / ``../shared/astropy-data``) when they hold them.
    With ``raw_files`` (the night's frames) the night's own templates and
    standards are checked too.

    Raises
    ------
    ReferenceDataError
        Files still missing; the message lists each one, what it is for, and
        how to import it.
    """
    ensure_sites(reference_dirs)
    missing = missing_reference_files(instrument, raw_files)
    dirs = [Path(d) for d in reference_dirs if d]
    if missing and dirs:
        wanted = {(m.package, m.relpath) for m in missing}
        usable = []
        for d in dirs:
            kind = detect_kind(d)
            if any(k == kind and (d / rel).is_file() for k, rel in wanted):
                usable.append(d)
        if usable:
            import_reference_data(usable)
        missing = missing_reference_files(instrument, raw_files)
    if missing:
        lines = "; ".join(f"{m.package}:{m.relpath} ({m.purpose})" for m in missing)
        raise ReferenceDataError(
            f"{len(missing)} reference file(s) needed by {instrument} are not installed or "
            f"cached: {lines}. Import them with `xmpspec cache import FOLDER` or pass "
            f"--reference-data FOLDER (folders laid out like PypeIt's data tree / astropy-data)",
            source)
    return reference_status(instrument, raw_files)
