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

Arcs are the real HgArNe comparison lamp of the Goodman pipeline's library
(``../shared/data/goodman_lamps/goodman_comp_400M1_HgArNe.fits``, unbinned
4060 pixels). Its GSP_Pnnn/GSP_Annn cards (0-based pixel, air wavelength)
give its wavelength scale (cubic fit, RMS 0.14 A), converted to vacuum. That
lamp was taken with the *red* camera, whose dispersion differs from the blue
camera's by up to ~10 pixels across the chip (enough to make PypeIt misidentify
the blue Hg lines), so the simulated detector follows the blue camera: its
truth wavelength solution is a quintic fit to the wavelengths of PypeIt's
blue-camera template ``soar_goodman_blue_400_SYZY.fits`` (shifted by a few
pixels), and the lamp spectrum is integrated over each pixel's wavelength
range.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np

from ..errors import InputError
from ..instruments import get_setup
from ..spectrum import air_to_vacuum
from .night import (
    Galaxy,
    LongslitModel,
    LongslitSimulator,
    NightPlan,
    NightTruth,
    extinction_curve,
    load_standard,
    simulate_longslit_night,
    write_fz,
)

__all__ = ["simulate_night", "goodman_simulator", "lamp_solution", "default_lamp_file"]

# PypeIt's blue-camera sections '[:,20:4112]' (data) and '[:,2:16]' (overscan) are
# divided by the binning: 2x2 data = columns 10-2056 (1-based), overscan 1-8.
NSPEC = 2040          # data columns (binned), 0-based columns 9..2048 (raw width 2049)
PRESCAN = 9           # columns before the data region (overscan)
POSTSCAN = 0
LAMP = "goodman_comp_400M1_HgArNe.fits"
# The detector's pixel p sees the template's pixel p - SHIFT. PypeIt 2.0.1's
# full_template pads the template with zero *wavelengths* when the arc is
# shifted beyond the template's ends (i0 < 0 or i0 + nspec > ntemplate), which
# poisons the reidentification of the padded snippet: keep the arc inside.
SHIFT = -2


def default_lamp_file() -> Path:
    """The 400 M1 HgArNe lamp of ``../shared/data/goodman_lamps`` (``XMPSPEC_SHARED`` honoured)."""
    import os
    root = Path(os.environ.get("XMPSPEC_SHARED", Path(__file__).resolve().parents[2].parent
                               / "shared"))
    return root / "data" / "goodman_lamps" / LAMP


def lamp_solution(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.poly1d, float]:
    """Read a Goodman lamp spectrum and its GSP pixel/wavelength pairs.

    Returns
    -------
    flux : ndarray
        The 1D lamp spectrum (unbinned pixels).
    pairs : ndarray, shape (n, 2)
        (0-based pixel, air wavelength) of the identified lines.
    air_poly : numpy.poly1d
        Cubic fit air wavelength(pixel).
    rms : float
        RMS of the fit (Angstrom).
    """
    from astropy.io import fits

    path = Path(path)
    try:
        with fits.open(path) as hdul:
            hdr = hdul[0].header
            flux = np.asarray(hdul[0].data, float)
    except (OSError, TypeError) as exc:
        raise InputError(f"cannot read the Goodman lamp spectrum: {exc}", path) from exc
    pairs = []
    for key in hdr:
        if key.startswith("GSP_P") and key[5:].isdigit():
            try:
                pairs.append((float(hdr[key]), float(hdr["GSP_A" + key[5:]])))
            except (TypeError, ValueError, KeyError):
                continue
    if len(pairs) < 6:
        raise InputError("fewer than 6 GSP_Pnnn/GSP_Annn line identifications", path)
    pairs = np.array(pairs)
    poly = np.poly1d(np.polyfit(pairs[:, 0], pairs[:, 1], 3))
    rms = float(np.std(pairs[:, 1] - poly(pairs[:, 0])))
    return flux, pairs, poly, rms


def goodman_simulator(lamp_file: str | Path | None = None, nspat: int = 250,
                      config=None) -> LongslitSimulator:
    """The Goodman-specific pieces of a simulated night (see module docstring)."""
    from astropy.io import fits

    st = get_setup("goodman_400")
    flux, pairs, poly, _ = lamp_solution(lamp_file or default_lamp_file())
    # The detector: the blue camera's dispersion, i.e. PypeIt's 400_SYZY template
    # wavelengths (vacuum) per binned pixel, shifted by SHIFT pixels on the chip.
    twave = _blue_template_wave()
    nt = twave.size
    coef = np.polynomial.polynomial.polyfit(np.arange(nt) - nt / 2, twave, 5)

    def wave_of_pix(p):
        return np.polynomial.polynomial.polyval(np.asarray(p, float) - SHIFT - nt / 2, coef)

    from .spectra import effective_area

    def area(w):
        return effective_area(st, w, config).to_value(u.cm**2)

    model = LongslitModel(
        nspec=NSPEC, nspat=nspat, wave_of_pix=wave_of_pix, fwhm_A=st.fwhm_at,
        plate_scale=st.plate_scale * st.binning[1], slit_width=st.slit_arcsec,
        slit_lo=12.0, slit_hi=nspat - 12.0, effective_area=area,
        extinction=extinction_curve(st.site), gain=st.gain, read_noise=st.read_noise,
        bias_level=700.0)
    # arc: the real lamp put on a vacuum wavelength scale by its GSP solution, then
    # integrated over the wavelength range of each detector pixel
    lamp = np.clip(flux - np.percentile(flux, 20), 0, None)
    u_edges = np.arange(lamp.size + 1) - 0.5
    lam_edges = air_to_vacuum(poly(u_edges) * u.AA).to_value(u.AA)
    cum = np.concatenate([[0.0], np.cumsum(lamp)])
    pix_edges = model.wave_edges
    arc = np.diff(np.interp(pix_edges, lam_edges, cum, left=0.0, right=cum[-1]))
    arc = np.clip(arc, 0, None) / arc.max()
    lines_vac = air_to_vacuum(pairs[:, 1] * u.AA).to_value(u.AA)
    inside = (lines_vac > pix_edges.min()) & (lines_vac < pix_edges.max())
    arc_range = (float(lines_vac[inside].min()), float(lines_vac[inside].max()))
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


def _blue_template_wave() -> np.ndarray:
    """Vacuum wavelengths per binned pixel of PypeIt's blue-camera 400_SYZY template."""
    from astropy.io import fits
    from pypeit import dataPaths

    from ..errors import ReferenceDataError
    try:
        path = dataPaths.reid_arxiv.get_file_path("soar_goodman_blue_400_SYZY.fits")
        with fits.open(path) as hdul:
            return np.asarray(hdul[1].data["wave"], float)
    except Exception as exc:  # noqa: BLE001
        raise ReferenceDataError(f"Goodman 400_SYZY template not available ({exc}); import it "
                                 "with `xmpspec cache import ../shared/pypeit-data`",
                                 "soar_goodman_blue_400_SYZY.fits") from exc


def default_galaxies() -> list[Galaxy]:
    """The science target of a default simulated Goodman night."""
    return [Galaxy(name="J1120-2000", z=0.0213, halpha_flux=1500.0, n2=-1.6,
                   ra=170.0, dec=-20.0, scale_arcsec=1.0, offset_arcsec=2.0)]


def simulate_night(outdir: str | Path, seed: int = 0, galaxies: list[Galaxy] | None = None,
                   plan: NightPlan | None = None, nspat: int = 250,
                   boxcar_radius_arcsec: float | None = None, lamp_file: str | Path | None = None,
                   config=None, progress=None) -> NightTruth:
    """Write a simulated raw Goodman night (bias, flat, arc, LTT 3864, science).

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
    lamp_file : path-like, optional
        Goodman comparison-lamp file (default: the 400 M1 HgArNe lamp).

    Returns
    -------
    NightTruth
    """
    if boxcar_radius_arcsec is None:
        from ..reduce.registry import get_instrument
        boxcar_radius_arcsec = get_instrument("goodman").boxcar_radius
    sim = goodman_simulator(lamp_file, nspat=nspat, config=config)
    return simulate_longslit_night(sim, outdir, galaxies or default_galaxies(), plan=plan,
                                   seed=seed, boxcar_radius_arcsec=boxcar_radius_arcsec,
                                   config=config, progress=progress)
