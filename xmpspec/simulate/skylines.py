"""Bright night-sky emission lines for the spectrum simulator.

Air wavelengths (Angstrom) and typical dark-sky intensities (Rayleigh) of the
brightest lines between 3600 and 9100 A: the [OI] airglow lines, NaD, the
Hg I street-light lines, [NI]5200 and the strongest OH Meinel-band lines.
Wavelengths follow the sky atlases of Osterbrock et al. (1996, PASP 108, 277)
and Hanuschik (2003, A&A 407, 1157); intensities are rounded representative
values (the airglow varies by a factor of a few from night to night, scale
them with ``[simulate] sky_line_scale`` or ``sky_line_scale=``).

Examples
--------
>>> from xmpspec.simulate.skylines import sky_line_list
>>> wave, surf = sky_line_list()
>>> round(float(wave[surf.argmax()]), 1)   # [OI]5577 in vacuum
5578.9
"""

from __future__ import annotations

import numpy as np

from ..spectrum import air_to_vacuum

__all__ = ["SKY_LINES_AIR", "sky_line_list", "RAYLEIGH_TO_SB"]

#: (air wavelength A, intensity in Rayleigh, identification)
SKY_LINES_AIR: tuple[tuple[float, float, str], ...] = (
    (4046.56, 10.0, "Hg I"),
    (4358.34, 25.0, "Hg I"),
    (5197.90, 10.0, "[N I]"),
    (5200.26, 10.0, "[N I]"),
    (5460.74, 30.0, "Hg I"),
    (5577.34, 250.0, "[O I]"),
    (5889.95, 50.0, "Na I D2"),
    (5895.92, 30.0, "Na I D1"),
    (6257.96, 10.0, "OH 9-3"),
    (6287.43, 10.0, "OH 9-3"),
    (6300.30, 150.0, "[O I]"),
    (6329.93, 8.0, "OH 9-3"),
    (6363.78, 50.0, "[O I]"),
    (6498.73, 15.0, "OH 6-1"),
    (6533.04, 20.0, "OH 6-1"),
    (6553.62, 15.0, "OH 6-1"),
    (6577.18, 12.0, "OH 6-1"),
    (6604.28, 10.0, "OH 6-1"),
    (6863.96, 40.0, "OH 7-2"),
    (6912.62, 20.0, "OH 7-2"),
    (6923.22, 40.0, "OH 7-2"),
    (6939.52, 25.0, "OH 7-2"),
    (6948.94, 35.0, "OH 7-2"),
    (6969.93, 15.0, "OH 7-2"),
    (7276.41, 40.0, "OH 8-3"),
    (7284.44, 15.0, "OH 8-3"),
    (7316.28, 60.0, "OH 8-3"),
    (7340.88, 70.0, "OH 8-3"),
    (7369.25, 40.0, "OH 8-3"),
    (7401.69, 15.0, "OH 8-3"),
    (7571.75, 100.0, "OH 4-0"),
    (7750.64, 80.0, "OH 9-4"),
    (7794.11, 70.0, "OH 9-4"),
    (7821.50, 60.0, "OH 9-4"),
    (7853.23, 40.0, "OH 9-4"),
    (7913.71, 70.0, "OH 5-1"),
    (7964.65, 120.0, "OH 5-1"),
    (7993.33, 120.0, "OH 5-1"),
    (8344.60, 200.0, "OH 5-1"),
    (8399.17, 200.0, "OH 5-1"),
    (8430.17, 150.0, "OH 5-1"),
    (8465.21, 150.0, "OH 5-1"),
    (8493.39, 150.0, "OH 5-1"),
    (8504.63, 50.0, "OH 5-1"),
    (8761.31, 150.0, "OH 6-2"),
    (8767.91, 200.0, "OH 6-2"),
    (8791.19, 150.0, "OH 6-2"),
    (8827.10, 300.0, "OH 6-2"),
    (8885.85, 250.0, "OH 6-2"),
    (8919.63, 120.0, "OH 6-2"),
    (8943.40, 180.0, "OH 6-2"),
    (8958.08, 150.0, "OH 6-2"),
    (8988.38, 100.0, "OH 6-2"),
    (9001.37, 100.0, "OH 6-2"),
    (9037.98, 70.0, "OH 6-2"),
)

_HC_ERG_A = 1.98644586e-8          # h c in erg Angstrom
_ARCSEC2_PER_SR = 4.254517e10
#: 1 Rayleigh = 1e6 / (4 pi) photons s^-1 cm^-2 sr^-1; times h c / lambda gives
#: erg s^-1 cm^-2 arcsec^-2 (divide by lambda in A, result in 1e-17 units below)
RAYLEIGH_TO_SB = 1e6 / (4.0 * np.pi) / _ARCSEC2_PER_SR * _HC_ERG_A / 1e-17


def sky_line_list(scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Vacuum wavelengths and surface brightnesses of the night-sky lines.

    Parameters
    ----------
    scale : float
        Multiplies every intensity.

    Returns
    -------
    wave_vac : ndarray
        Vacuum wavelengths (Angstrom).
    surface_brightness : ndarray
        Line surface brightness in 1e-17 erg s^-1 cm^-2 arcsec^-2.
    """
    import astropy.units as u
    air = np.array([w for w, _, _ in SKY_LINES_AIR])
    rayleigh = np.array([r for _, r, _ in SKY_LINES_AIR])
    vac = air_to_vacuum(air * u.AA).to_value(u.AA)
    return vac, scale * rayleigh * RAYLEIGH_TO_SB / vac
