"""The emission-line catalogue of docs/science.md.

Each :class:`Line` has a short ``key`` used in table column names
(``f_<key>``, ``f_<key>_err``, ``<key>_state``), a label for figures, the
vacuum rest wavelength (from the configuration ``[lines]`` section) and the
fit group it belongs to. Groups share velocity and width in fits.

Examples
--------
>>> from xmpspec.lines.catalog import line_catalog
>>> cat = line_catalog()
>>> cat["nii6585"].wave
6585.27
>>> [l.key for l in cat.group("halpha")]
['nii6550', 'ha', 'nii6585']
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

from ..config import Config, get_active_config
from ..errors import InputError

__all__ = ["Line", "LineCatalog", "line_catalog", "LINE_DEFS", "OPTIONAL_LINE_DEFS", "GROUPS"]


@dataclass(frozen=True)
class Line:
    """One emission line.

    Attributes
    ----------
    key : str
        Column-name key (``ha``, ``nii6585``, ``oiii5008``, ...).
    config_name : str
        Name in the ``[lines]`` configuration section (``Halpha``, ``NII_6585``).
    label : str
        LaTeX-free label for figures and logs (``[NII]6585``).
    wave : float
        Vacuum rest wavelength, Angstrom.
    group : str
        Fit group (lines of a group share velocity and width).
    tie_to : str or None
        Key of the line whose flux fixes this one through a physical ratio.
    tie_ratio : float or None
        ``flux(tie_to) / flux(self)`` (e.g. 2.96 for [NII]6550 tied to 6585).
    """

    key: str
    config_name: str
    label: str
    wave: float
    group: str
    tie_to: str | None = None
    tie_ratio: float | None = None


# key, config name, label, group, tie_to, name of the doublet-ratio config key
LINE_DEFS = (
    ("oii3727", "OII_3727", "[OII]3727", "oii", None, None),
    ("oii3730", "OII_3730", "[OII]3730", "oii", None, None),
    ("neiii3870", "NeIII_3870", "[NeIII]3870", "neiii", None, None),
    ("hd", "Hdelta", "Hdelta", "hd", None, None),
    ("hg", "Hgamma", "Hgamma", "hg_oiii4364", None, None),
    ("oiii4364", "OIII_4364", "[OIII]4364", "hg_oiii4364", None, None),
    ("heii4687", "HeII_4687", "HeII4687", "heii", None, None),
    ("hb", "Hbeta", "Hbeta", "hbeta", None, None),
    ("oiii4960", "OIII_4960", "[OIII]4960", "hbeta", "oiii5008", "OIII_5008_over_4960"),
    ("oiii5008", "OIII_5008", "[OIII]5008", "hbeta", None, None),
    ("hei5877", "HeI_5877", "HeI5877", "hei", None, None),
    ("oi6302", "OI_6302", "[OI]6302", "oi", None, None),
    ("nii6550", "NII_6550", "[NII]6550", "halpha", "nii6585", "NII_6585_over_6550"),
    ("ha", "Halpha", "Halpha", "halpha", None, None),
    ("nii6585", "NII_6585", "[NII]6585", "halpha", None, None),
    ("sii6718", "SII_6718", "[SII]6718", "sii", None, None),
    ("sii6733", "SII_6733", "[SII]6733", "sii", None, None),
)

#: Optional lines (same fields): modelled by ``measure_spectrum`` when listed in
#: ``[measure] optional_lines`` and kept in a group's final model only when detected
#: (see xmpspec.lines.measure). They have no HII-region model in the simulator, so they
#: are not part of the default catalogue. [FeII]4360 (air 4359.34 A) blends with
#: [OIII]4364 at low resolution.
OPTIONAL_LINE_DEFS = (
    ("feii4360", "FeII_4360", "[FeII]4360", "hg_oiii4364", None, None),
)

#: fit groups in the order they are fitted (kinematics of 'hbeta' seed 'hg_oiii4364')
GROUPS = ("halpha", "hbeta", "hg_oiii4364", "oii", "sii", "hd", "neiii", "heii", "hei", "oi")


class LineCatalog:
    """Ordered collection of :class:`Line` objects, indexable by key."""

    def __init__(self, lines: list[Line]):
        self._lines = {line.key: line for line in lines}

    def __getitem__(self, key: str) -> Line:
        try:
            return self._lines[key]
        except KeyError:
            raise InputError(f"unknown line '{key}'; known: {', '.join(self._lines)}") from None

    def __contains__(self, key: str) -> bool:
        return key in self._lines

    def __iter__(self) -> Iterator[Line]:
        return iter(self._lines.values())

    def __len__(self) -> int:
        return len(self._lines)

    @property
    def keys(self) -> list[str]:
        """Line keys in wavelength order."""
        return list(self._lines)

    def group(self, name: str) -> list[Line]:
        """Lines of fit group ``name`` in wavelength order."""
        out = [line for line in self._lines.values() if line.group == name]
        if not out:
            raise InputError(f"unknown line group '{name}'; known: {', '.join(GROUPS)}")
        return out


def line_catalog(config: Config | None = None,
                 optional: bool | tuple[str, ...] | list[str] = False) -> LineCatalog:
    """Build the line catalogue from the configuration (wavelengths, doublet ratios).

    Parameters
    ----------
    config : Config, optional
        Defaults to the active configuration.
    optional : bool or sequence of str
        Also include the optional lines (:data:`OPTIONAL_LINE_DEFS`): all of them
        (True) or those whose keys are listed.

    Raises
    ------
    InputError
        An unknown optional line key.
    """
    cfg = config if config is not None else get_active_config()
    waves = cfg["lines"]
    ratios = cfg["doublets"]
    opt = optional if isinstance(optional, bool) else tuple(optional)
    try:   # the same wavelengths and ratios give the same (read-only) catalogue
        key = (tuple(waves.items()), tuple(ratios.items()), opt)
        return _catalog_cached(key)
    except TypeError:   # unhashable configuration values: built anew
        return _build_catalog(waves, ratios, opt)


@functools.lru_cache(maxsize=32)
def _catalog_cached(key) -> LineCatalog:
    waves, ratios, optional = key
    return _build_catalog(dict(waves), dict(ratios), optional)


def _build_catalog(waves, ratios, optional) -> LineCatalog:
    defs = list(LINE_DEFS)
    if optional is True:
        defs += list(OPTIONAL_LINE_DEFS)
    elif optional:
        known = {d[0]: d for d in OPTIONAL_LINE_DEFS}
        bad = [k for k in optional if k not in known]
        if bad:
            raise InputError(f"unknown optional line(s) {', '.join(bad)}; known: "
                             f"{', '.join(known)}")
        defs += [known[k] for k in optional]
    lines = []
    for key, cname, label, group, tie_to, ratio_key in defs:
        lines.append(Line(key=key, config_name=cname, label=label, wave=float(waves[cname]),
                          group=group, tie_to=tie_to,
                          tie_ratio=None if ratio_key is None else float(ratios[ratio_key])))
    lines.sort(key=lambda line: line.wave)
    return LineCatalog(lines)
