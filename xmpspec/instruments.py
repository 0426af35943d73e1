"""Observing set-ups of docs/science.md: resolution, sampling, coverage, detector.

One registry used by the simulator (to make realistic spectra), by the line
fitter (instrumental width as the floor of a line's width) and by the
reduction layer (PypeIt spectrograph names, standards, extinction sites).

Examples
--------
>>> from xmpspec.instruments import get_setup
>>> s = get_setup("goodman_400")
>>> round(s.fwhm_at(5500.0), 2)   # Angstrom
6.47
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

__all__ = ["Setup", "SETUPS", "get_setup", "setup_names", "generic_setup", "C_KMS"]

C_KMS = 299792.458


@dataclass(frozen=True)
class Setup:
    """An instrument + disperser configuration.

    Attributes
    ----------
    name : str
        xmpspec name (``int_ids_r632v``, ``goodman_400``, ``goodman_red_400``, ``mage``,
        ``sdss``).
    label : str
        Human-readable instrument name used in tables (``INT/IDS``).
    wave_min, wave_max : float
        Usable coverage of the reduced 1D spectrum (vacuum Angstrom).
    sampling : str
        ``"linear"`` (constant ``dispersion`` in A/pix) or ``"log"``
        (constant ``velocity_step`` in km/s per pixel).
    dispersion : float
        A/pix for linear sampling.
    velocity_step : float
        km/s per pixel for log sampling.
    resolution : float
        Resolving power R at ``resolution_wave``.
    resolution_wave : float
        Wavelength at which ``resolution`` is quoted.
    constant : str
        ``"fwhm"`` if the instrumental FWHM in Angstrom is constant along the
        spectrum (grating long-slits), ``"R"`` if R is constant (echelle, SDSS).
    gain, read_noise : float
        e-/ADU and e- (per pixel of the extracted spectrum).
    plate_scale : float
        arcsec per (unbinned) spatial pixel.
    binning : tuple of int
        (spectral, spatial) binning.
    pypeit_name : str or None
        PypeIt spectrograph name.
    standards : tuple of str
        Usual flux standards.
    site : str
        Observatory (astropy site name).
    """

    name: str
    label: str
    wave_min: float
    wave_max: float
    sampling: str
    resolution: float
    resolution_wave: float
    constant: str = "fwhm"
    dispersion: float = 1.0
    velocity_step: float = 0.0
    gain: float = 1.0
    read_noise: float = 3.5
    plate_scale: float = 0.2
    binning: tuple[int, int] = (1, 1)
    pypeit_name: str | None = None
    standards: tuple[str, ...] = ()
    site: str = ""
    arcs: tuple[str, ...] = ()
    slit_arcsec: float = 1.0
    typical_exptime: float = 600.0
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def fwhm_at(self, wave: float | np.ndarray) -> float | np.ndarray:
        """Instrumental FWHM (Angstrom) at observed wavelength(s) ``wave``."""
        wave = np.asarray(wave, float)
        if self.constant == "fwhm":
            out = np.full_like(wave, self.resolution_wave / self.resolution)
        else:
            out = wave / self.resolution
        return out if out.ndim else float(out)

    def sigma_kms_at(self, wave: float | np.ndarray) -> float | np.ndarray:
        """Instrumental Gaussian sigma in km/s at observed wavelength(s)."""
        return C_KMS * np.asarray(self.fwhm_at(wave)) / np.asarray(wave, float) / 2.3548200450309493

    def wavelength_grid(self, wave_min: float | None = None,
                        wave_max: float | None = None) -> np.ndarray:
        """Pixel-centre wavelengths (vacuum Angstrom) of a reduced 1D spectrum."""
        lo = self.wave_min if wave_min is None else wave_min
        hi = self.wave_max if wave_max is None else wave_max
        if self.sampling == "linear":
            n = int(np.floor((hi - lo) / self.dispersion)) + 1
            return lo + self.dispersion * np.arange(n)
        dlog = np.log10(1.0 + self.velocity_step / C_KMS)
        n = int(np.floor(np.log10(hi / lo) / dlog)) + 1
        return lo * 10.0 ** (dlog * np.arange(n))


SETUPS: dict[str, Setup] = {
    s.name: s
    for s in (
        Setup(name="int_ids_r632v", label="INT/IDS", wave_min=5370.0, wave_max=7540.0,
              sampling="linear", dispersion=1.0, resolution=2270.0, resolution_wave=4500.0,
              constant="fwhm", gain=0.91, read_noise=3.5, plate_scale=0.44, binning=(1, 1),
              pypeit_name="int_ids_redplus2", standards=("G191-B2B",),
              site="Roque de los Muchachos", arcs=("CuAr", "CuNe"), slit_arcsec=1.0,
              typical_exptime=1200.0, aliases=("int_ids", "ids", "int")),
        Setup(name="goodman_400", label="SOAR/Goodman", wave_min=3100.0, wave_max=7100.0,
              sampling="linear", dispersion=2.0, resolution=850.0, resolution_wave=5500.0,
              constant="fwhm", gain=1.48, read_noise=3.89, plate_scale=0.15, binning=(2, 2),
              pypeit_name="soar_goodman_blue", standards=("LTT 3864",), site="Cerro Pachon",
              arcs=("HgAr", "Ne", "Cu"), slit_arcsec=1.0, typical_exptime=800.0,
              aliases=("goodman", "soar", "soar_goodman")),
        # red camera, same grating and 1" slit as goodman_400 (so the same resolution);
        # 400 M1 covers ~3000-7070 A, 400 M2 (GG455) ~4940-8990 A at 0.99 A/pix unbinned
        # (measured on the real arcs of ../shared/data/goodman_red_real_arcs)
        Setup(name="goodman_red_400", label="SOAR/Goodman red", wave_min=3000.0,
              wave_max=9000.0, sampling="linear", dispersion=1.0, resolution=850.0,
              resolution_wave=5500.0, constant="fwhm", gain=1.45, read_noise=5.27,
              plate_scale=0.15, binning=(1, 1), pypeit_name="soar_goodman_red_xmpspec",
              standards=("LTT 3864",), site="Cerro Pachon", arcs=("HgAr", "Ne"),
              slit_arcsec=1.0, typical_exptime=800.0,
              aliases=("goodman_red", "soar_goodman_red")),
        Setup(name="mage", label="Magellan/MagE", wave_min=3100.0, wave_max=10000.0,
              sampling="log", velocity_step=25.0, resolution=4000.0, resolution_wave=5500.0,
              constant="R", gain=1.02, read_noise=2.9, plate_scale=0.3, binning=(1, 1),
              pypeit_name="magellan_mage", standards=("CD-32 9927", "Feige 56"),
              site="Las Campanas Observatory", arcs=("ThAr",), slit_arcsec=1.0,
              typical_exptime=600.0, aliases=("magellan_mage", "magellan")),
        Setup(name="sdss", label="SDSS", wave_min=3800.0, wave_max=9200.0,
              sampling="log", velocity_step=69.0, resolution=2000.0, resolution_wave=5500.0,
              constant="R", gain=1.0, read_noise=4.0, plate_scale=0.4, binning=(1, 1),
              pypeit_name=None, standards=(), site="Apache Point", arcs=(),
              slit_arcsec=3.0, typical_exptime=2700.0, aliases=("boss", "sdss_boss")),
    )
}


def setup_names() -> list[str]:
    """Names of the known set-ups."""
    return list(SETUPS)


def get_setup(name: str) -> Setup:
    """Look up a set-up by name or alias (case-insensitive).

    Raises
    ------
    InputError
        Unknown name; the message lists the valid ones.
    """
    key = str(name).strip().lower()
    if key in SETUPS:
        return SETUPS[key]
    for s in SETUPS.values():
        if key in s.aliases or key == (s.pypeit_name or "").lower():
            return s
    raise InputError(f"unknown instrument set-up '{name}'; valid: {', '.join(SETUPS)} "
                     f"(aliases: {', '.join(a for s in SETUPS.values() for a in s.aliases)})")


def generic_setup(name: str, resolution: float, label: str | None = None) -> Setup:
    """A set-up for an instrument xmpspec has no tuned set-up for (constant R).

    Used by the reduction layer for PypeIt spectrographs without a plug-in
    (sky-protection windows); not registered in :data:`SETUPS`.

    Parameters
    ----------
    name : str
        Instrument name (the PypeIt spectrograph name).
    resolution : float
        Resolving power assumed at every wavelength.
    label : str, optional
        Human-readable name (default ``name``).
    """
    return Setup(name=name, label=label or name, wave_min=3000.0, wave_max=11000.0,
                 sampling="log", velocity_step=C_KMS / resolution / 2.0, resolution=resolution,
                 resolution_wave=5500.0, constant="R", pypeit_name=name)
