"""The one-dimensional spectrum exchanged between xmpspec stages.

A :class:`Spectrum` holds wavelength, flux and 1-sigma error as astropy
Quantities, a boolean mask (True = bad pixel), an optional redshift and
metadata. Wavelengths are vacuum Angstrom unless ``medium='air'`` is declared.
The default flux unit is 1e-17 erg s^-1 cm^-2 A^-1.
"""

from __future__ import annotations

import copy as _copy
from dataclasses import dataclass, field, replace
from typing import Any

import astropy.units as u
import numpy as np

from .errors import InputError

__all__ = ["Spectrum", "FLUX_UNIT", "LINE_FLUX_UNIT", "air_to_vacuum", "vacuum_to_air",
           "as_spectrum"]

FLUX_UNIT = u.Unit(1e-17 * u.erg / u.s / u.cm**2 / u.AA)
"""Default flux-density unit (a scaled astropy unit, not a Quantity)."""

LINE_FLUX_UNIT = u.Unit(1e-17 * u.erg / u.s / u.cm**2)
"""Default integrated line-flux unit."""


#: flux densities (f_lambda, f_nu, photon f_lambda and f_nu) and the units of unfluxed
#: spectra (also per second and/or per Angstrom); any other flux unit is an input error
_FLUX_DENSITY_UNITS = (FLUX_UNIT, u.Jy, u.photon / (u.s * u.cm**2 * u.AA),
                       u.photon / (u.s * u.cm**2 * u.Hz))
_RAW_UNITS = (u.count, u.adu, u.electron, u.photon, u.dimensionless_unscaled)


def is_flux_density(unit) -> bool:
    """Whether ``unit`` is an energy flux density (f_lambda or f_nu): a fluxed spectrum.

    Parameters
    ----------
    unit : str or astropy.units.UnitBase

    Returns
    -------
    bool
    """
    unit = u.Unit(unit)
    return bool(unit.is_equivalent(FLUX_UNIT) or unit.is_equivalent(u.Jy))


def _is_flux_unit(unit: u.UnitBase) -> bool:
    """Whether ``unit`` is a spectral flux density or a unit of counts, also per solid
    angle (surface brightness, e.g. MJy/sr or erg/s/cm2/A/arcsec2) and/or per pixel."""
    for per_area in (u.dimensionless_unscaled, u.sr, u.pix, u.sr * u.pix):
        un = unit * per_area
        if any(un.is_equivalent(d) for d in _FLUX_DENSITY_UNITS):
            return True
        if any(un.is_equivalent(r / per) for r in _RAW_UNITS
               for per in (1, u.s, u.AA, u.s * u.AA)):
            return True
    return False


META_KEYS = ("name", "ra", "dec", "instrument", "setup", "exptime", "source_file",
             "extraction", "fluxed", "resolution", "airmass", "date_obs")


def vacuum_to_air(wave_vac: u.Quantity) -> u.Quantity:
    """Vacuum to air wavelengths (IAU standard, Morton 2000 / Ciddor), same as SDSS.

    Parameters
    ----------
    wave_vac : Quantity
        Vacuum wavelengths (length units).
    """
    w = wave_vac.to_value(u.AA)
    s2 = (1e4 / w) ** 2
    n = 1.0 + 0.0000834254 + 0.02406147 / (130.0 - s2) + 0.00015998 / (38.9 - s2)
    return (w / n) * u.AA


def air_to_vacuum(wave_air: u.Quantity) -> u.Quantity:
    """Air to vacuum wavelengths (inverse of :func:`vacuum_to_air`, Piskunov/VALD formula)."""
    w = wave_air.to_value(u.AA)
    s2 = (1e4 / w) ** 2
    n = (1.0 + 0.00008336624212083 + 0.02408926869968 / (130.1065924522 - s2)
         + 0.0001599740894897 / (38.92568793293 - s2))
    return (w * n) * u.AA


@dataclass
class Spectrum:
    """A 1D spectrum with errors, mask, redshift and metadata.

    Parameters
    ----------
    wavelength : Quantity
        Pixel-centre wavelengths, strictly increasing (converted to Angstrom).
    flux : Quantity
        Flux density (any spectral flux-density unit, or counts for unfluxed data).
    error : Quantity
        1-sigma error, same unit as ``flux``.
    mask : ndarray of bool, optional
        True marks a bad pixel. NaN/inf flux or error pixels are added to it.
    redshift : float, optional
        Redshift (if known), with ``redshift_err``.
    medium : {'vacuum', 'air'}
        Wavelength medium; vacuum by default.
    meta : dict
        Object name, ``ra``/``dec`` (deg), ``instrument``, ``setup``,
        ``exptime`` (s), ``source_file``, ``extraction`` (BOX/OPT),
        ``fluxed``, ``resolution`` (R), ...

    Raises
    ------
    InputError
        Shapes differ, wavelengths are not strictly increasing, or the
        error has negative values outside the mask.
    """

    wavelength: u.Quantity
    flux: u.Quantity
    error: u.Quantity
    mask: np.ndarray | None = None
    redshift: float | None = None
    redshift_err: float | None = None
    medium: str = "vacuum"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        src = self.meta.get("source_file") or self.meta.get("name")
        if not isinstance(self.wavelength, u.Quantity):
            self.wavelength = np.asarray(self.wavelength, float) * u.AA
        try:
            self.wavelength = self.wavelength.to(u.AA, equivalencies=u.spectral())
        except u.UnitConversionError:
            raise InputError(f"wavelength unit '{self.wavelength.unit}' is not a length",
                             src) from None
        if not isinstance(self.flux, u.Quantity):
            self.flux = np.asarray(self.flux, float) * FLUX_UNIT
        if not _is_flux_unit(self.flux.unit):
            raise InputError(f"flux unit '{self.flux.unit}' is neither a flux density "
                             "(e.g. erg/s/cm2/A, Jy) nor counts", src)
        if not isinstance(self.error, u.Quantity):
            self.error = np.asarray(self.error, float) * self.flux.unit
        try:
            self.error = self.error.to(self.flux.unit)
        except u.UnitConversionError:
            raise InputError(f"error unit '{self.error.unit}' differs from flux unit "
                             f"'{self.flux.unit}'", src) from None
        n = self.wavelength.size
        if self.wavelength.ndim != 1 or self.flux.shape != (n,) or self.error.shape != (n,):
            raise InputError(
                f"wavelength, flux and error must be 1D of equal length "
                f"(got {self.wavelength.shape}, {self.flux.shape}, {self.error.shape})", src)
        if n < 2:
            raise InputError("spectrum has fewer than 2 pixels", src)
        if self.medium not in ("vacuum", "air"):
            raise InputError(f"medium must be 'vacuum' or 'air', not {self.medium!r}", src)
        mask = np.zeros(n, bool) if self.mask is None else np.asarray(self.mask, bool).copy()
        if mask.shape != (n,):
            raise InputError(f"mask shape {mask.shape} differs from spectrum length {n}", src)
        wv = self.wavelength.value
        if not np.all(np.isfinite(wv)):
            raise InputError("wavelength array contains NaN or inf", src)
        if not np.all(np.diff(wv) > 0):
            raise InputError("wavelengths are not strictly increasing", src)
        bad = ~np.isfinite(self.flux.value) | ~np.isfinite(self.error.value)
        mask |= bad
        self.mask = mask

    # ------------------------------------------------------------------ checks
    def validate_errors(self, allow_nonpositive: bool = False) -> None:
        """Check that unmasked errors are positive.

        Parameters
        ----------
        allow_nonpositive : bool
            If true, zero or negative errors are masked instead of raising.

        Raises
        ------
        InputError
            Zero or negative errors on unmasked pixels, no finite error at all,
        or every pixel masked.
        """
        finite = np.isfinite(self.error.value)
        if not finite.any():
            raise InputError("error array has no finite values (all NaN or inf)", self.source)
        bad = (self.error.value <= 0) & ~self.mask
        if bad.any():
            if allow_nonpositive:
                self.mask = self.mask | bad
            else:
                raise InputError(
                    f"{int(bad.sum())} unmasked pixel(s) have zero or negative errors "
                    "(use --ignore-bad-errors to mask them)", self.source)
        if self.mask.all():
            raise InputError("all pixels are masked", self.source)

    # ------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        """Object name (metadata ``name``, else the file stem, else 'spectrum')."""
        if self.meta.get("name"):
            return str(self.meta["name"])
        if self.meta.get("source_file"):
            from pathlib import Path
            return Path(str(self.meta["source_file"])).name.split(".")[0]
        return "spectrum"

    @property
    def source(self) -> str:
        """Source file (or object name) used in error messages."""
        return str(self.meta.get("source_file") or self.name)

    @property
    def good(self) -> np.ndarray:
        """Boolean array of usable pixels (not masked)."""
        return ~self.mask

    def vacuum_wavelength(self) -> u.Quantity:
        """Wavelengths in vacuum (converted from air if the spectrum declares air)."""
        if self.medium == "air":
            return air_to_vacuum(self.wavelength)
        return self.wavelength

    def to_vacuum(self) -> Spectrum:
        """A copy with vacuum wavelengths."""
        if self.medium == "vacuum":
            return self
        return replace(self, wavelength=air_to_vacuum(self.wavelength), medium="vacuum",
                       mask=self.mask.copy(), meta=dict(self.meta))

    def covers(self, wave_obs: float | u.Quantity, margin_pix: int = 3) -> bool:
        """True if ``wave_obs`` (observed frame, spectrum medium) lies on unmasked pixels."""
        w = u.Quantity(wave_obs, u.AA).value
        wv = self.wavelength.value
        i = np.searchsorted(wv, w)
        if i <= margin_pix or i >= wv.size - margin_pix:
            return False
        return bool(np.all(self.good[max(i - margin_pix, 0): i + margin_pix]))

    def with_flux_unit(self, unit: u.Unit) -> Spectrum:
        """A copy with flux and error converted to ``unit`` (spectral equivalencies)."""
        eq = u.spectral_density(self.wavelength)
        return replace(self, flux=self.flux.to(unit, eq), error=self.error.to(unit, eq),
                       mask=self.mask.copy(), meta=dict(self.meta))

    def copy(self) -> Spectrum:
        """A deep copy (arrays and metadata dict; the checks of a new spectrum are not rerun)."""
        new = _copy.copy(self)
        new.wavelength = self.wavelength.copy()
        new.flux = self.flux.copy()
        new.error = self.error.copy()
        new.mask = self.mask.copy()
        new.meta = dict(self.meta)
        return new

    # --------------------------------------------------------- specutils glue
    def to_specutils(self):
        """Convert to a specutils spectrum (``specutils.Spectrum``, formerly ``Spectrum1D``).

        Errors become a ``StdDevUncertainty``.

        The mask, redshift and metadata travel with it (``meta['xmpspec']``).
        """
        from astropy.nddata import StdDevUncertainty
        try:  # specutils >= 2 (Spectrum1D is a deprecated alias there)
            from specutils import Spectrum as Spectrum1D
        except ImportError:
            from specutils import Spectrum1D
        meta = {"xmpspec": dict(self.meta), "medium": self.medium,
                "redshift_err": self.redshift_err}
        kwargs = {}
        if self.redshift is not None:
            kwargs["redshift"] = self.redshift
        return Spectrum1D(spectral_axis=self.wavelength, flux=self.flux,
                          uncertainty=StdDevUncertainty(self.error.value), mask=self.mask.copy(),
                          meta=meta, **kwargs)

    @classmethod
    def from_specutils(cls, spec, **meta) -> Spectrum:
        """Build a :class:`Spectrum` from a :class:`specutils.Spectrum1D`.

        Parameters
        ----------
        spec : specutils.Spectrum1D
            Input spectrum; its uncertainty (std-dev, variance or inverse
            variance) becomes the 1-sigma error.
        **meta
            Extra metadata overriding what the spectrum carries.
        """
        from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
        flux = u.Quantity(spec.flux)
        unc = spec.uncertainty
        if unc is None:
            raise InputError("specutils spectrum has no uncertainty", meta.get("source_file"))
        if isinstance(unc, StdDevUncertainty):
            err = np.asarray(unc.array, float)
        elif isinstance(unc, VarianceUncertainty):
            err = np.sqrt(np.asarray(unc.array, float))
        elif isinstance(unc, InverseVariance):
            with np.errstate(divide="ignore"):
                err = 1.0 / np.sqrt(np.asarray(unc.array, float))
        else:
            raise InputError(f"unsupported uncertainty type {type(unc).__name__}",
                             meta.get("source_file"))
        m = dict(spec.meta.get("xmpspec", {})) if spec.meta else {}
        m.update(meta)
        z = float(spec.redshift.value) if getattr(spec, "redshift", None) is not None else None
        if z == 0.0 and "xmpspec" not in (spec.meta or {}):
            z = None
        mask = None if spec.mask is None else np.asarray(spec.mask, bool)
        return cls(wavelength=u.Quantity(spec.spectral_axis), flux=flux, error=err * flux.unit,
                   mask=mask, redshift=z,
                   redshift_err=(spec.meta or {}).get("redshift_err"),
                   medium=(spec.meta or {}).get("medium", "vacuum"), meta=m)

    def __repr__(self) -> str:
        wv = self.wavelength.value
        return (f"Spectrum(name={self.name!r}, {wv.size} px, {wv[0]:.1f}-{wv[-1]:.1f} A "
                f"{self.medium}, z={self.redshift}, unit={self.flux.unit})")


def as_spectrum(obj, source=None) -> Spectrum:
    """An xmpspec :class:`Spectrum` from a Spectrum or a specutils spectrum.

    The entry conversion of the measuring code (``measure_spectrum``,
    ``xmpspec.measure``): specutils ``Spectrum``/``Spectrum1D`` go through
    :meth:`Spectrum.from_specutils`; a Spectrum is returned as it is.

    Raises
    ------
    InputError
        ``obj`` is neither (the message names its type and ``source``).
    """
    if isinstance(obj, Spectrum):
        return obj
    if hasattr(obj, "spectral_axis") and hasattr(obj, "flux"):
        return Spectrum.from_specutils(obj)
    raise InputError(f"not a spectrum: a {type(obj).__name__} (give an xmpspec Spectrum or a "
                     "specutils spectrum)", source)
