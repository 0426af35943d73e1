"""Simulated raw SOAR/Goodman (blue camera, 400 l/mm, 2x2) nights as PypeIt reads them.

Layout (PypeIt's ``soar_goodman_blue``): fpack-compressed files (``.fits.fz``)
with an empty primary HDU and the image plus every header card in extension
1; spectral axis along the columns (NAXIS1, wavelength increasing with the
column), spatial axis along the rows; 2x2 binning; 2049 columns, of which
PypeIt's fixed sections for the blue camera (``[:,20:4112]`` data,
``[:,2:16]`` overscan, in unbinned pixels, divided by the binning) take
binned columns 10-2049 as data and 1-8 as overscan; the truth wavelength
solution is indexed like PypeIt's trimmed image. (Real 2x2 frames are wider;
the simulated chip is cut so that the arc stays inside PypeIt's template, see
``SHIFT``.) Header: OBJECT, OBSTYPE (BIAS/FLAT/COMP/SPECTRUM), RA, DEC, SLIT,
CCDSUM, EXPTIME, DATE-OBS, AIRMASS, GRATING ``400_SYZY`` (the spelling that
selects PypeIt's template), WAVMODE ``400_M1``, GRT_ANG, CAM_ANG, GAIN,
RDNOISE and the LAMP_* switches ('TRUE'/'FALSE').

Arcs are PypeIt's own blue-camera HgArNe template
``arc_lines/reid_arxiv/soar_goodman_blue_400_SYZY.fits`` (vacuum, 2046
pixels at BINSPEC=2, 3031-7108 A), the template that PypeIt's
``full_template`` method uses for this set-up. The simulated chip sees
template pixels 2-2041 (``SHIFT``): its truth wavelength solution is the
template's (a quintic fit to its ``wave`` column, exact to 1e-11 A), and the
arc, sky, standard and science are all placed with that one solution. The arc
lines identifiable in PypeIt's NeI/ArI/HgI lists span 3651-7034 A
(``arc_range``). (The real red-camera lamps of ``../shared/data/goodman_lamps``
are not used: placed on the blue camera's dispersion their lines fall up to
~10 pixels from where the blue template has them, and PypeIt's
reidentification fails.)
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np

from ..instruments import get_setup
from .night import (
    Galaxy,
    LongslitModel,
    LongslitSimulator,
    NightPlan,
    NightTruth,
    detector_from_template,
    extinction_curve,
    load_arc_template,
    load_standard,
    simulate_longslit_night,
    template_line_range,
    write_fz,
)

__all__ = ["simulate_night", "goodman_simulator", "TEMPLATE", "LAMP_LISTS"]

# PypeIt's blue-camera sections '[:,20:4112]' (data) and '[:,2:16]' (overscan) are
# divided by the binning: 2x2 data = columns 10-2056 (1-based), overscan 1-8.
NSPEC = 2040          # data columns (binned), 0-based columns 9..2048 (raw width 2049)
PRESCAN = 9           # columns before the data region (overscan)
POSTSCAN = 0
TEMPLATE = "soar_goodman_blue_400_SYZY.fits"   # PypeIt's 400_SYZY full_template
LAMP_LISTS = ("NeI", "ArI", "HgI")              # PypeIt's line lists for soar_goodman_blue
# The detector's pixel p sees the template's pixel p - SHIFT. PypeIt 2.0.1's
# full_template pads the template with zero *wavelengths* when the arc is
# shifted beyond the template's ends (i0 < 0 or i0 + nspec > ntemplate), which
# poisons the reidentification of the padded snippet: keep the arc inside
# (template pixels 2..2041 of 0..2045).
SHIFT = -2


def goodman_simulator(nspat: int = 250, config=None) -> LongslitSimulator:
    """The Goodman-specific pieces of a simulated night (see module docstring).

    Parameters
    ----------
    nspat : int
        Spatial rows (binned).
    config : optional
        xmpspec configuration (effective area, sky).

    Returns
    -------
    LongslitSimulator

    Raises
    ------
    ReferenceDataError
        PypeIt's 400_SYZY template or the LTT 3864 spectrum is not available.
    """
    from astropy.io import fits

    st = get_setup("goodman_400")
    # The detector: the blue camera's dispersion and arc, i.e. PypeIt's 400_SYZY
    # template (vacuum, per binned pixel), shifted by SHIFT pixels on the chip.
    twave, tflux = load_arc_template(TEMPLATE)
    wave_of_pix, arc = detector_from_template(twave, tflux, NSPEC, SHIFT)
    arc = arc / arc.max()

    from .spectra import effective_area

    def area(w):
        return effective_area(st, w, config).to_value(u.cm**2)

    model = LongslitModel(
        nspec=NSPEC, nspat=nspat, wave_of_pix=wave_of_pix, fwhm_A=st.fwhm_at,
        plate_scale=st.plate_scale * st.binning[1], slit_width=st.slit_arcsec,
        slit_lo=12.0, slit_hi=nspat - 12.0, effective_area=area,
        extinction=extinction_curve(st.site), gain=st.gain, read_noise=st.read_noise,
        bias_level=700.0)
    arc_range = template_line_range(model.wave, arc, LAMP_LISTS)
    # quartz lamp: a 3200 K black body times the throughput shape
    w = model.wave
    bb = 1 / (w**5 * (np.exp(1.4388e8 / (w * 3200.0)) - 1))
    flat = bb * area(w)
    flat = np.maximum(flat / flat.max(), 0.02)
    std = load_standard("esofil", "LTT3864")
    lamps_on = {"flat": ("LAMP_QUA",), "arc": ("LAMP_HGA", "LAMP_NE")}

    def header(kind, obj, exptime, airmass, ra, dec, date_obs):
        from astropy.coordinates import Angle
        h = fits.Header()
        h["INSTRUME"] = ("ghts_blue", "Goodman blue camera")
        h["TELESCOP"] = "SOAR 4.1m"
        h["OBJECT"] = obj
        h["OBSTYPE"] = {"bias": "BIAS", "flat": "FLAT", "arc": "COMP"}.get(kind, "SPECTRUM")
        h["RA"] = (Angle(ra, u.deg).to_string(unit=u.hourangle, sep=":", precision=2), "hours")
        h["DEC"] = (Angle(dec, u.deg).to_string(unit=u.deg, sep=":", precision=1,
                                                alwayssign=True), "degrees")
        h["EXPTIME"] = float(exptime)
        h["DATE-OBS"] = date_obs
        h["AIRMASS"] = float(airmass)
        h["SLIT"] = "1.0_LONG_SLIT"
        h["CCDSUM"] = "2 2"
        h["GRATING"] = "400_SYZY"
        h["WAVMODE"] = "400_M1"
        h["GRT_ANG"] = 5.8
        h["CAM_ANG"] = 11.6
        h["FILTER"] = "NO_FILTER"
        h["FILTER2"] = "NO_FILTER"
        h["GAIN"] = st.gain
        h["RDNOISE"] = st.read_noise
        h["TRIMSEC"] = f"[{PRESCAN + 1}:{PRESCAN + NSPEC},1:{nspat}]"
        for lamp_key in ("LAMP_HGA", "LAMP_NE", "LAMP_AR", "LAMP_FE", "LAMP_CU", "LAMP_QUA",
                         "LAMP_BUL", "LAMP_DOM"):
            h[lamp_key] = "TRUE" if lamp_key in lamps_on.get(kind, ()) else "FALSE"
        h["SIMULATE"] = (True, "xmpspec simulated frame")
        return h

    def write(path, adu, hdr, rng):
        raw = model.bias_level + rng.normal(0, model.read_noise / model.gain,
                                            (nspat, PRESCAN + NSPEC + POSTSCAN))
        raw[:, PRESCAN:PRESCAN + NSPEC] = adu.T
        path = Path(str(path).removesuffix(".fits.fz") + ".fits.fz")
        return write_fz(path, raw, hdr)

    return LongslitSimulator(instrument="goodman", setup=st.name, model=model,
                             arc_spectrum=arc, arc_range=arc_range, flat_spectrum=flat,
                             standard=std, header=header, write=write, extension=".fits.fz",
                             lamp_names="HgArNe")


def default_galaxies() -> list[Galaxy]:
    """The science target of a default simulated Goodman night."""
    return [Galaxy(name="J1120-2000", z=0.0213, halpha_flux=1500.0, n2=-1.6,
                   ra=170.0, dec=-20.0, scale_arcsec=1.0, offset_arcsec=2.0)]


def simulate_night(outdir: str | Path, seed: int = 0, galaxies: list[Galaxy] | None = None,
                   plan: NightPlan | None = None, nspat: int = 250,
                   boxcar_radius_arcsec: float | None = None, config=None,
                   progress=None) -> NightTruth:
    """Write a simulated raw Goodman night (bias, flat, HgArNe arc, LTT 3864, science).

    Parameters
    ----------
    outdir : path-like
        Folder for the raw frames and the truth/targets tables.
    seed : int
        Random seed.
    galaxies : list of Galaxy, optional
        Science targets (default: one XMP-like galaxy).
    plan : NightPlan, optional
        Exposures of the night.
    nspat : int
        Spatial rows (binned).
    boxcar_radius_arcsec : float, optional
        Records the galaxy light fraction in this extraction radius; default
        the tuned radius of xmpspec's Goodman reduction.
    config : optional
        xmpspec configuration.
    progress : callable, optional
        ``progress(iterable, description)``.

    Returns
    -------
    NightTruth
    """
    if boxcar_radius_arcsec is None:
        from ..reduce.registry import get_instrument
        boxcar_radius_arcsec = get_instrument("goodman").boxcar_radius
    sim = goodman_simulator(nspat=nspat, config=config)
    return simulate_longslit_night(sim, outdir, galaxies or default_galaxies(), plan=plan,
                                   seed=seed, boxcar_radius_arcsec=boxcar_radius_arcsec,
                                   config=config, progress=progress)
