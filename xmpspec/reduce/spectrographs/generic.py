"""Any PypeIt spectrograph without a tuned xmpspec plug-in (``--instrument shane_kast_blue``).

:func:`generic_plugin` builds an :class:`~xmpspec.reduce.registry.InstrumentPlugin`
from PypeIt's own spectrograph class: PypeIt's default parameters and frame
typing, plus everything xmpspec adds for every instrument (the lamp rules of
:mod:`xmpspec.reduce.frametype`, the night log and its flags, the offline
reference-data check, sky protection of bright lines, fluxing, coadds, the
summary, measure and derive).

The reference files a night needs are derived from PypeIt itself: the
wavelength template (``reid_arxiv``) of PypeIt's default parameters and of
``config_specific_par`` for each raw frame (the grating decides it), the
flexure sky spectrum, and the archived spectrum of the flux standard nearest
to each lamp-off exposure (PypeIt's archives in PypeIt's priority order,
within its 20' tolerance). Without a night, ``xmpspec cache status`` lists the
templates of every grating the spectrograph's ``config_specific_par`` names,
as optional files.

There is no xmpspec set-up (resolution) for such an instrument:
``setup_name`` is None, the sky-protection windows assume a resolving power
of :data:`GENERIC_RESOLUTION` (wide windows), and ``measure`` takes the line
width floor from the spectrum's sampling.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from ..registry import InstrumentPlugin, ReferenceFile

__all__ = ["GenericPlugin", "generic_plugin", "pypeit_spectrograph_names",
           "GENERIC_RESOLUTION", "nearest_standard_file", "ALL_RAW_EXTENSIONS"]

#: Resolving power assumed for the sky-protection windows of an instrument
#: without an xmpspec set-up (low on purpose: the windows are then wide).
GENERIC_RESOLUTION = 1000.0

#: PypeIt's tolerance (arcmin) between a standard's pointing and an archived star.
STANDARD_TOL_ARCMIN = 20.0


def pypeit_spectrograph_names() -> tuple[list[str], str]:
    """PypeIt's spectrograph names, and why the list is empty when it is."""
    try:
        from ..cache import prepare_cache_dirs
        prepare_cache_dirs()
        import pypeit.spectrographs as ps
        return list(ps.available_spectrographs), ""
    except Exception as exc:  # noqa: BLE001 - e.g. astropy's site list not cached
        return [], (f"{type(exc).__name__}: {exc}; with no network import astropy's site list "
                    "first: `xmpspec cache import ../shared/astropy-data`")


def _spectrograph(name: str):
    from pypeit.spectrographs.util import load_spectrograph
    return load_spectrograph(name)


def _template_names_in_source(cls) -> list[str]:
    """Wavelength templates named in a spectrograph's ``config_specific_par``."""
    names: list[str] = []
    for klass in cls.__mro__:
        fn = klass.__dict__.get("config_specific_par")
        if fn is None:
            continue
        try:
            src = inspect.getsource(fn)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"\[['\"]reid_arxiv['\"]\]\s*=\s*['\"]([^'\"]+)['\"]", src):
            names.append(m.group(1))
    return list(dict.fromkeys(names))


def nearest_standard_file(ra, dec, tol_arcmin: float = STANDARD_TOL_ARCMIN):
    """The archived standard PypeIt would use for a pointing, as a ReferenceFile (or None).

    Archives are searched in PypeIt's priority order; the first one with a
    star within ``tol_arcmin`` wins, as in :func:`pypeit.core.standard.get_archive_standard`.
    """
    from pypeit.core import standard
    if ra is None or dec is None:
        return None
    for arch in standard.get_archive_sets():
        try:
            sep, row = standard.nearest_archive_entry(arch, ra, dec)
        except Exception:  # noqa: BLE001
            continue
        sep_arcmin = float(sep.to_value("arcmin")) if hasattr(sep, "to_value") \
            else float(sep)
        if sep_arcmin <= tol_arcmin:
            return ReferenceFile(f"standards/{arch}", str(row["File"]),
                                 f"flux standard {row['Name']} ({sep_arcmin:.1f}' from the "
                                 "pointing)")
    return None


#: Raw-file endings every plain-FITS reader of PypeIt is given (issue 13: ``.fit``,
#: ``.fits``, ``.fts``, plain or ``.gz``/``.bz2``). fpack ``.fz`` files are raw files
#: too, but their image sits in extension 1, where a plain-FITS reader does not look:
#: the night log names them (``funpack`` them first).
ALL_RAW_EXTENSIONS = tuple(f".{a}{b}" for a in ("fits", "fit", "fts")
                           for b in ("", ".gz", ".bz2"))


def _extended_extensions(cls) -> list[str]:
    """The suffixes xmpspec lets PypeIt's class read.

    A class that reads plain FITS (``.fits`` among its ``allowed_extensions``)
    reads every FITS suffix and compression (astropy opens them all, the
    layout is the same); a class restricted to other files (e.g. fpack-only
    ``.fz`` readers, whose image sits in extension 1) keeps its own list.
    """
    own = list(cls.allowed_extensions or [".fits", ".fits.gz"])
    if ".fits" not in own:
        return own
    return list(dict.fromkeys(own + list(ALL_RAW_EXTENSIONS)))


class GenericPlugin(InstrumentPlugin):
    """A PypeIt spectrograph reduced with PypeIt's defaults and xmpspec's generic steps."""

    def register_pypeit(self) -> None:
        """Let PypeIt's class read every FITS suffix (see :func:`_extended_extensions`)."""
        from pypeit.spectrographs.util import load_spectrograph
        cls = type(load_spectrograph(self.pypeit_name))
        cls.allowed_extensions = _extended_extensions(cls)

    def raw_suffixes(self) -> tuple[str, ...]:
        """The suffixes PypeIt's class reads once registered."""
        return tuple(_extended_extensions(type(_spectrograph(self.pypeit_name))))

    def check_raw_files(self, raw_dir: Path) -> list[str]:
        """Raw FITS files PypeIt's reader for this spectrograph would refuse (by suffix)."""
        from ..frametype import is_raw_name
        ok = self.raw_suffixes()
        other = sorted(p.name for p in Path(raw_dir).iterdir()
                       if p.is_file() and is_raw_name(p.name) and not p.name.endswith(ok))
        if not other:
            return []
        return [f"{len(other)} raw file(s) ({', '.join(other[:5])}{', ...' if len(other) > 5 else ''}"
                f") have a suffix PypeIt's {self.pypeit_name} does not read (it reads "
                f"{', '.join(ok)}): they are left out; convert them (fpack files: "
                "`funpack x.fits.fz`)"]

    def night_reference_files(self, raw_files) -> tuple[ReferenceFile, ...]:
        """The templates and standards this night needs (see module docstring)."""
        from ..frametype import decide_frame_type
        self.register_pypeit()          # every FITS suffix readable
        spec = _spectrograph(self.pypeit_name)
        out: list[ReferenceFile] = []
        seen_cfg: set = set()
        for f in raw_files:
            f = Path(f)
            try:
                headarr = spec.get_headarr(str(f))
                hdrs = headarr[:4]
                cfg = tuple(str(spec.get_meta_value(headarr, k, required=False))
                            for k in spec.configuration_keys())
            except Exception:  # noqa: BLE001 - unreadable: reported by the screen
                continue
            if cfg not in seen_cfg:
                seen_cfg.add(cfg)
                try:
                    par = spec.config_specific_par(str(f))
                    t = par["calibrations"]["wavelengths"]["reid_arxiv"]
                except Exception:  # noqa: BLE001 - e.g. "no reid_arxiv for grating X"
                    t = None
                if t:
                    out.append(ReferenceFile("arc_lines/reid_arxiv", str(t),
                                             f"wavelength template of {', '.join(cfg)}"))
            if decide_frame_type(hdrs).kind is not None:
                continue            # a lamp or bias frame: not a standard
            try:
                ra = spec.get_meta_value(headarr, "ra", required=False)
                dec = spec.get_meta_value(headarr, "dec", required=False)
                std = nearest_standard_file(ra, dec)
            except Exception:  # noqa: BLE001
                std = None
            if std is not None:
                out.append(std)
        return tuple(dict.fromkeys(out))

    def frame_rules(self) -> str:
        """How the frames are typed."""
        return (f"frames are typed by PypeIt's {self.pypeit_name} rules, then by xmpspec's "
                "lamp rules (an arc or continuum lamp on decides arc or flat)")


def generic_plugin(pypeit_name: str) -> GenericPlugin:
    """An instrument plug-in for any PypeIt spectrograph.

    Raises
    ------
    InputError
        IFU spectrographs (not reduced by xmpspec).
    """
    from ...errors import InputError
    spec = _spectrograph(pypeit_name)
    if spec.pypeline not in ("MultiSlit", "Echelle"):
        raise InputError(f"PypeIt's {pypeit_name} is a {spec.pypeline} spectrograph; xmpspec "
                         "reduces long slits and echelle orders only")
    par = spec.default_pypeit_par()
    refs: list[ReferenceFile] = []
    t = par["calibrations"]["wavelengths"]["reid_arxiv"]
    if t:
        refs.append(ReferenceFile("arc_lines/reid_arxiv", str(t), "wavelength template"))
    for name in _template_names_in_source(type(spec)):
        if name != t:
            refs.append(ReferenceFile("arc_lines/reid_arxiv", name,
                                      "wavelength template of one grating (needed only "
                                      "when the night uses it)", required=False))
    if str(par["flexure"]["spec_method"]).lower() != "skip" and par["flexure"]["spectrum"]:
        refs.append(ReferenceFile("sky_spec", str(par["flexure"]["spectrum"]),
                                  "night-sky spectrum for the flexure correction"))
    return GenericPlugin(
        name=pypeit_name, setup_name=None, pypeit_name=pypeit_name,
        reference_files=tuple(refs),
        raw_patterns=tuple(f"*{e}" for e in _extended_extensions(type(spec))),
        echelle=spec.pypeline == "Echelle", generic=True,
        boxcar_radius=4.0, extraction="boxcar")
