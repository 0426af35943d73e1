"""Registry of the instruments xmpspec reduces with PypeIt.

Each tuned instrument is described by an :class:`InstrumentPlugin` living in
its own module under :mod:`xmpspec.reduce.spectrographs` (``goodman.py``,
``goodman_red.py``, ``int_ids.py``, ``mage.py``, ...). A module registers its
plug-in at import with :func:`register`; :func:`get_instrument` imports every
module of that package once, so a new instrument is added by dropping a module
there. Any other PypeIt spectrograph name resolves to a generic plug-in built
from PypeIt's own class (:mod:`xmpspec.reduce.spectrographs.generic`), so
``setup``, ``reduce``, ``run`` and ``cache status`` take every PypeIt name; the
commands only pass the name here.

A plug-in knows:

- the PypeIt spectrograph name and how to make PypeIt know it
  (:meth:`InstrumentPlugin.register_pypeit`, for spectrographs that are not
  part of PypeIt's release, e.g. INT/IDS);
- the reference files (templates, standards, ...) a reduction needs offline;
- which raw files PypeIt will read (``raw_patterns``) and the traps of the
  raw format (:meth:`InstrumentPlugin.check_raw_files`);
- corrections to PypeIt's frame typing (:meth:`InstrumentPlugin.fix_frametypes`);
- xmpspec's tuned PypeIt parameters (:meth:`InstrumentPlugin.pypeit_parameters`);
- the raw-night simulator (``simulator``: ``"module:function"``).

Examples
--------
>>> from xmpspec.reduce.registry import get_instrument
>>> get_instrument("goodman").pypeit_name
'soar_goodman_blue'
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

__all__ = ["ReferenceFile", "InstrumentPlugin", "register", "get_instrument",
           "instrument_names", "all_instruments", "ASTROPY_SITES"]


@dataclass(frozen=True)
class ReferenceFile:
    """A reference file a reduction needs.

    Attributes
    ----------
    subdir : str
        Folder inside PypeIt's ``pypeit/data`` tree (``arc_lines/reid_arxiv``)
        or inside astropy-data (``coordinates``).
    name : str
        File name.
    purpose : str
        Why it is needed (shown by ``xmpspec cache status``).
    package : str
        ``"pypeit"`` or ``"astropy"``: whose download cache holds it.
    required : bool
        False for files needed only by some set-ups (e.g. the template of
        another grating): listed by ``xmpspec cache status``, not demanded.
    """

    subdir: str
    name: str
    purpose: str = ""
    package: str = "pypeit"
    required: bool = True

    @property
    def relpath(self) -> str:
        """Path inside the reference-data folder (``subdir/name``)."""
        return f"{self.subdir}/{self.name}"


#: astropy's observatory list; ``import pypeit.spectrographs`` needs it.
ASTROPY_SITES = ReferenceFile("coordinates", "sites.json",
                              "observatory sites (needed to import pypeit.spectrographs)",
                              package="astropy")


@dataclass
class InstrumentPlugin:
    """How xmpspec reduces one instrument with PypeIt.

    Subclass it in a module of :mod:`xmpspec.reduce.spectrographs` and call
    :func:`register` with an instance. Methods have generic defaults.

    Attributes
    ----------
    name : str
        xmpspec instrument name used on the command line (``goodman``).
    setup_name : str
        Key of :mod:`xmpspec.instruments` (resolution, plate scale, site).
    pypeit_name : str
        PypeIt spectrograph name.
    reference_files : tuple of ReferenceFile
        Files needed offline besides astropy's site list.
    raw_patterns : tuple of str
        Glob patterns of raw files PypeIt reads (``*.fits.fz``).
    simulator : str
        ``"module:function"`` writing a simulated raw night
        (signature ``f(outdir, seed=..., **kw) -> NightTruth``).
    aliases : tuple of str
        Other accepted names.
    extraction : str
        Default extraction (``boxcar`` or ``optimal``).
    boxcar_radius : float
        Boxcar radius (arcsec) of xmpspec's extraction: wide enough for an
        extended dwarf galaxy (PypeIt's default, 1.5", loses its outskirts).
    echelle : bool
        Echelle spectrograph (orders) rather than a long slit.
    standard_names : tuple of str
        Usual flux standards of the instrument.
    instrume_patterns : tuple of str
        Regular expressions matching the raw INSTRUME card; frames with
        another INSTRUME are left out as belonging to another instrument.
    generic : bool
        Built on the fly for a PypeIt spectrograph without a tuned plug-in
        (:mod:`xmpspec.reduce.spectrographs.generic`); ``setup_name`` is then
        None (no xmpspec set-up: resolution from the data).
    """

    name: str
    setup_name: str
    pypeit_name: str
    reference_files: tuple[ReferenceFile, ...] = ()
    raw_patterns: tuple[str, ...] = ("*.fits", "*.fits.gz", "*.fits.fz", "*.fit")
    simulator: str | None = None
    aliases: tuple[str, ...] = ()
    extraction: str = "boxcar"
    boxcar_radius: float = 4.0
    echelle: bool = False
    standard_names: tuple[str, ...] = field(default_factory=tuple)
    instrume_patterns: tuple[str, ...] = ()
    generic: bool = False

    # ------------------------------------------------------------------ hooks
    def register_pypeit(self) -> None:
        """Make PypeIt know this spectrograph (no-op for PypeIt's own ones)."""

    @staticmethod
    def list_in_pypeit(spectrograph_class) -> None:
        """Add an in-process spectrograph class's name to PypeIt's list (idempotent).

        Plug-ins defining their own PypeIt class call it from :meth:`register_pypeit`.
        """
        import pypeit.spectrographs as ps
        if spectrograph_class.name not in ps.available_spectrographs:
            ps.available_spectrographs.append(spectrograph_class.name)

    def all_reference_files(self, raw_files=None) -> tuple[ReferenceFile, ...]:
        """Every reference file needed offline, astropy's site list included.

        Parameters
        ----------
        raw_files : sequence of path-like, optional
            The night's raw frames: a generic plug-in then names exactly the
            templates and standards of that night (see
            :meth:`night_reference_files`).
        """
        extra = self.night_reference_files(raw_files) if raw_files else ()
        out = (ASTROPY_SITES,) + tuple(self.reference_files)
        return out + tuple(r for r in extra if r not in out)

    def night_reference_files(self, raw_files) -> tuple[ReferenceFile, ...]:
        """Reference files a given night needs beyond :attr:`reference_files`."""
        return ()

    def instrument_setup(self):
        """The :class:`xmpspec.instruments.Setup` of this instrument (resolution).

        Generic PypeIt spectrographs get a constant-R stand-in
        (:data:`~xmpspec.reduce.spectrographs.generic.GENERIC_RESOLUTION`).
        """
        from ..instruments import generic_setup, get_setup
        if self.setup_name:
            return get_setup(self.setup_name)
        from .spectrographs.generic import GENERIC_RESOLUTION
        return generic_setup(self.pypeit_name, GENERIC_RESOLUTION)

    def raw_suffixes(self) -> tuple[str, ...]:
        """File-name endings PypeIt's reader accepts for this instrument."""
        return tuple(p.lstrip("*") for p in self.raw_patterns)

    def check_raw_files(self, raw_dir: Path) -> list[str]:
        """Warnings about raw files PypeIt would ignore or misread.

        Parameters
        ----------
        raw_dir : Path
            Folder of raw frames.

        Returns
        -------
        list of str
            Human-readable warnings (each naming files); empty if none.
        """
        return []

    def fix_frametypes(self, table) -> list[str]:
        """Correct PypeIt's frame types in the ``fitstbl`` table in place.

        Parameters
        ----------
        table : astropy.table.Table
            PypeIt's metadata table (``PypeItMetaData.table``) with columns
            ``filename``, ``frametype``, ``target``, ``exptime``, ...

        Returns
        -------
        list of str
            What was changed (for the night log).
        """
        return []

    def pypeit_parameters(self, context: dict) -> dict:
        """xmpspec's tuned PypeIt parameters for this instrument.

        Parameters
        ----------
        context : dict
            ``{"extraction": "boxcar"|"optimal", "sky_protect": list of
            (wmin, wmax) observed-frame vacuum Angstrom windows, ...}``.

        Returns
        -------
        dict
            Nested dictionary in PypeIt's parameter layout
            (``{"rdx": {...}, "reduce": {"extraction": {...}}}``).
        """
        return {}

    def frame_rules(self) -> str:
        """One sentence about how PypeIt types this instrument's frames (for errors)."""
        return ""


_REGISTRY: dict[str, InstrumentPlugin] = {}
_GENERIC: dict[str, InstrumentPlugin] = {}
_DISCOVERED = False


def register(plugin: InstrumentPlugin) -> InstrumentPlugin:
    """Add (or replace) an instrument plug-in; returns it."""
    _REGISTRY[plugin.name] = plugin
    return plugin


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    from . import spectrographs
    for mod in pkgutil.iter_modules(spectrographs.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{spectrographs.__name__}.{mod.name}")


def all_instruments() -> list[InstrumentPlugin]:
    """Every registered instrument plug-in."""
    _discover()
    return list(_REGISTRY.values())


def instrument_names() -> list[str]:
    """Names of the registered instruments."""
    return [p.name for p in all_instruments()]


def get_instrument(name: str) -> InstrumentPlugin:
    """Look up an instrument plug-in by name, alias, PypeIt name or set-up name.

    A tuned plug-in (``goodman``, ``goodman_red``, ``int_ids``, ``mage``) wins;
    any other PypeIt spectrograph name (``shane_kast_blue``, ...) gets a
    generic plug-in (:mod:`xmpspec.reduce.spectrographs.generic`): PypeIt's own
    parameters and typing, xmpspec's lamp rules, night log, reference check,
    sky protection, fluxing and coadds.

    Raises
    ------
    InputError
        Unknown instrument; the message lists the tuned ones and where to find
        PypeIt's names.
    """
    _discover()
    key = str(name).strip().lower()
    for p in _REGISTRY.values():
        if key in (p.name, p.pypeit_name, p.setup_name) or key in p.aliases:
            return p
    if key in _GENERIC:
        return _GENERIC[key]
    from .spectrographs.generic import generic_plugin, pypeit_spectrograph_names
    names, why = pypeit_spectrograph_names()
    if key in names:
        _GENERIC[key] = generic_plugin(key)
        return _GENERIC[key]
    hint = (f" or any PypeIt spectrograph ({len(names)}, e.g. shane_kast_blue; "
            "`pypeit_setup -h` lists them)" if names else
            f" (PypeIt's spectrograph list is unavailable: {why})")
    raise InputError(f"unknown instrument '{name}'; known: {', '.join(sorted(_REGISTRY))}"
                     + hint)
