"""Distances, Halpha luminosity, star-formation rate and stellar mass (science.md).

* Luminosity distance from the redshift with ``astropy.cosmology.FlatLambdaCDM``
  (H0, Om0 from ``[cosmology]``). Its error adds in quadrature the redshift
  error (``dD/dz * sigma_z``, numerical derivative), a peculiar-velocity
  dispersion (``dD/dz * sigma_pv / c``, ``cosmology.sigma_pv_kms``), the H0 error
  (``D * sigma_H0 / H0``, as D_L is proportional to 1/H0) and the Om0 error
  (numerical derivative).
* A peculiar-velocity-corrected distance, when given, replaces D_L for
  luminosities; its error is the given error and the H0 term in quadrature.
* L(Halpha) = 4 pi D^2 F(Halpha); SFR = 7.9e-42 L / 1.8 (Kennicutt 1998,
  Chabrier 2003 IMF).
* log M* (Bell et al. 2003, i band): log(M/L_i) = a + b (r - i), L_i from
  M_i = i - 5 log10(D / 10 pc) and M_i,sun = 4.53, then -0.093 dex to
  Chabrier. No K-correction is applied (z < 0.1 targets; it changes r - i by
  a few hundredths). Indicative only for metal-poor dwarfs.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.cosmology import FlatLambdaCDM

from ..config import Config, get_active_config

__all__ = ["cosmology", "luminosity_distance", "halpha_luminosity", "sfr_kennicutt98",
           "stellar_mass_bell03"]

_DZ = 1e-5


def cosmology(config: Config | None = None, H0: float | None = None,
              Om0: float | None = None) -> FlatLambdaCDM:
    """The flat LambdaCDM cosmology of ``[cosmology]`` (optionally with other H0/Om0)."""
    cfg = config or get_active_config()
    c = cfg["cosmology"]
    return FlatLambdaCDM(H0=float(H0 if H0 is not None else c["H0"]),
                         Om0=float(Om0 if Om0 is not None else c["Om0"]))


def luminosity_distance(z, z_err=None, config: Config | None = None
                        ) -> tuple[u.Quantity, u.Quantity]:
    """Luminosity distance and its 1-sigma error.

    Parameters
    ----------
    z : array-like
        Redshifts (> 0; others give NaN, which callers mask).
    z_err : array-like, optional
        Redshift errors (NaN or absent: no redshift term).
    config : Config, optional
        ``[cosmology]`` H0, H0_err, Om0, Om0_err, sigma_pv_kms.

    Returns
    -------
    (Quantity, Quantity)
        D_L and its error in Mpc.

    Examples
    --------
    >>> d, e = luminosity_distance([0.02])
    >>> round(float(d[0].value), 1)
    90.0
    """
    cfg = config or get_active_config()
    c = cfg["cosmology"]
    z = np.atleast_1d(np.asarray(z, float))
    zerr = np.zeros_like(z) if z_err is None else np.atleast_1d(np.asarray(z_err, float))
    zerr = np.where(np.isfinite(zerr), zerr, 0.0)
    good = np.isfinite(z) & (z > 0)
    zz = np.where(good, z, 0.01)
    cosmo = cosmology(cfg)
    dl = cosmo.luminosity_distance(zz).to_value(u.Mpc)
    dplus = cosmo.luminosity_distance(zz + _DZ).to_value(u.Mpc)
    dminus = cosmo.luminosity_distance(np.maximum(zz - _DZ, 0.0)).to_value(u.Mpc)
    ddz = (dplus - dminus) / (zz + _DZ - np.maximum(zz - _DZ, 0.0))
    dOm = 1e-3
    d_om_p = cosmology(cfg, Om0=float(c["Om0"]) + dOm).luminosity_distance(zz).to_value(u.Mpc)
    d_om_m = cosmology(cfg, Om0=float(c["Om0"]) - dOm).luminosity_distance(zz).to_value(u.Mpc)
    ddom = (d_om_p - d_om_m) / (2 * dOm)
    zpv = float(c.get("sigma_pv_kms", 0.0)) / 299792.458
    err = np.sqrt((ddz * zerr) ** 2 + (ddz * zpv) ** 2
                  + (dl * float(c["H0_err"]) / float(c["H0"])) ** 2
                  + (ddom * float(c["Om0_err"])) ** 2)
    dl = np.where(good, dl, np.nan)
    err = np.where(good, err, np.nan)
    return dl * u.Mpc, err * u.Mpc


def halpha_luminosity(flux: u.Quantity, flux_err: u.Quantity, distance: u.Quantity,
                      distance_err: u.Quantity) -> tuple[u.Quantity, u.Quantity]:
    """L(Halpha) = 4 pi D^2 F with the flux and distance errors in quadrature.

    Parameters
    ----------
    flux, flux_err : Quantity
        Halpha flux (energy / time / area).
    distance, distance_err : Quantity
        Luminosity distance used.

    Returns
    -------
    (Quantity, Quantity)
        Luminosity and error in erg/s.
    """
    f = flux.to_value(u.erg / u.s / u.cm**2)
    fe = flux_err.to_value(u.erg / u.s / u.cm**2)
    d = distance.to_value(u.cm)
    de = distance_err.to_value(u.cm)
    lum = 4 * np.pi * d**2 * f
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.sqrt(np.where(np.isfinite(fe), fe / f, 0.0) ** 2
                      + np.where(np.isfinite(de), 2 * de / d, 0.0) ** 2)
    return lum * u.erg / u.s, np.abs(lum * rel) * u.erg / u.s


def sfr_kennicutt98(lum: u.Quantity, lum_err: u.Quantity | None = None,
                    config: Config | None = None) -> tuple[u.Quantity, u.Quantity]:
    """SFR = k L(Halpha) / divisor (Kennicutt 1998 Salpeter -> Chabrier 2003).

    Parameters
    ----------
    lum, lum_err : Quantity
        Halpha luminosity and error.
    config : Config, optional
        ``sfr.kennicutt98`` (7.9e-42 Msun/yr per erg/s) and
        ``sfr.chabrier_divisor`` (1.8).

    Returns
    -------
    (Quantity, Quantity)
        SFR and error in Msun/yr.

    Examples
    --------
    >>> import astropy.units as u
    >>> s, _ = sfr_kennicutt98(1.8e41 * u.erg / u.s)
    >>> round(float(s.value), 3)
    0.79
    """
    cfg = config or get_active_config()
    k = float(cfg["sfr"]["kennicutt98"]) / float(cfg["sfr"]["chabrier_divisor"])
    sfr = k * lum.to_value(u.erg / u.s)
    err = (np.full_like(sfr, np.nan) if lum_err is None
           else k * lum_err.to_value(u.erg / u.s))
    return sfr * u.Msun / u.yr, err * u.Msun / u.yr


def stellar_mass_bell03(r, r_err, i, i_err, distance: u.Quantity, distance_err: u.Quantity,
                        config: Config | None = None) -> tuple[np.ndarray, np.ndarray]:
    """log10(M*/Msun) from r, i AB magnitudes (Bell et al. 2003, Chabrier IMF).

    ``log M = log L_i + a + b (r - i) + chabrier_offset`` with
    ``log L_i = -0.4 (M_i - M_i,sun)``, ``M_i = i - 5 log10(D / 10 pc)``.

    Parameters
    ----------
    r, r_err, i, i_err : array-like
        Apparent AB magnitudes (already corrected for Galactic extinction if
        wanted) and errors.
    distance, distance_err : Quantity
        Luminosity distance used and its error.
    config : Config, optional
        ``[mass]`` bell03_a, bell03_b, chabrier_offset, mi_sun.

    Returns
    -------
    (ndarray, ndarray)
        log10(M*/Msun) and its error (dex); errors combine r, i (correlated
        through r - i) and the distance.
    """
    cfg = config or get_active_config()
    m = cfg["mass"]
    a, b = float(m["bell03_a"]), float(m["bell03_b"])
    r, i = np.asarray(r, float), np.asarray(i, float)
    re = np.where(np.isfinite(r_err), r_err, 0.0)
    ie = np.where(np.isfinite(i_err), i_err, 0.0)
    d = distance.to_value(u.pc)
    de = np.where(np.isfinite(distance_err.to_value(u.pc)), distance_err.to_value(u.pc), 0.0)
    abs_i = i - 5 * np.log10(d / 10.0)
    log_li = -0.4 * (abs_i - float(m["mi_sun"]))
    logm = log_li + a + b * (r - i) + float(m["chabrier_offset"])
    # d logM / d i = -0.4 - b ; d logM / d r = b ; d logM / d log D = 2
    err = np.sqrt(((0.4 + b) * ie) ** 2 + (b * re) ** 2 + (2 * de / d / np.log(10)) ** 2)
    return logm, err
