"""Simulated raw INT/IDS (Red+2, R632V) nights, laid out as xmpspec's IDS plug-in reads them.

Layout (ING conventions, see :mod:`xmpspec.reduce.spectrographs.int_ids`):
primary header with the observing cards and the image in extension 1, the
spectral axis along NAXIS2 (rows, wavelength increasing with the row), the
spatial axis along NAXIS1 with 20 overscan columns first (``BIASSEC
[1:20,1:4200]``, ``TRIMSEC [21:..,1:4200]``, FITS order), 1x1 binning.

Wavelengths follow the R632V template ``int_ids_red_637V_5500.fits``
(vacuum, 4200 pixels, 3559-7736 A): the truth solution is a quintic fit to
the template's wavelengths (the 4190-row chip sees template pixels 2-4191) and
arcs reproduce the template's CuAr+CuNe spectrum. The template has almost no
lines below ~4150 A and above ~7140 A; lines of PypeIt's CuI/ArI/ArII/NeI
lists (vacuum) are added at both ends so that the simulated arc constrains
the whole range (``lamp_lines_added`` in the truth metadata).
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np

from ..instruments import get_setup
from .night import (
    FWHM_TO_SIGMA,
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
)

__all__ = ["simulate_night", "ids_simulator", "load_template", "end_lamp_lines"]

TEMPLATE = "int_ids_red_637V_5500.fits"
OVERSCAN = 20
# detector pixel p sees template pixel p - SHIFT; with NSPEC < template size the
# arc stays inside PypeIt's template in full_template (no zero-padded snippets)
SHIFT = -2
NSPEC = 4190
BLUE_LIMIT, RED_LIMIT = 4150.0, 7140.0


def load_template() -> tuple[np.ndarray, np.ndarray]:
    """The R632V arc template (vacuum wavelength, flux) from PypeIt's data or cache."""
    return load_arc_template(TEMPLATE)


def end_lamp_lines(wmin: float, wmax: float, lists=("CuI", "ArI", "ArII", "NeI"),
                   blue: float = BLUE_LIMIT, red: float = RED_LIMIT,
                   min_amplitude: float = 1000.0) -> tuple[np.ndarray, np.ndarray]:
    """Lamp lines (vacuum A, relative amplitude) of PypeIt's lists outside [blue, red].

    Only lines within [wmin, wmax], at least 6 A from each other (unblended).
    """
    from astropy.table import vstack
    from pypeit.core.wavecal import waveio
    tabs = []
    for name in lists:
        try:
            tabs.append(waveio.load_line_list(f"{name}_lines.dat"))
        except Exception:  # noqa: BLE001
            continue
    if not tabs:
        return np.array([]), np.array([])
    t = vstack(tabs)
    w = np.asarray(t["wave"], float)
    a = np.asarray(t["amplitude"], float)
    sel = (w > wmin + 5) & (w < wmax - 5) & ((w < blue) | (w > red)) & (a >= min_amplitude)
    w, a = w[sel], a[sel]
    order = np.argsort(w)
    w, a = w[order], a[order]
    keep = np.ones(w.size, bool)
    for i in range(w.size):
        near = np.abs(w - w[i]) < 6.0
        near[i] = False
        if near.any():
            keep[i] = False
    return w[keep], a[keep]


def ids_simulator(nspat: int = 200, config=None, add_end_lines: bool = True
                  ) -> LongslitSimulator:
    """The IDS-specific pieces of a simulated night (see module docstring)."""
    from astropy.io import fits

    from ..reduce.spectrographs.int_ids import PLUGIN
    st = get_setup(PLUGIN.setup_name)
    twave, tflux = load_template()
    nspec = NSPEC
    # truth solution and arc from the template (SHIFT <= 0: the arc lies inside it)
    wave_of_pix, arc = detector_from_template(twave, tflux, nspec, SHIFT)

    from .spectra import effective_area

    def area(w):
        return effective_area(st, w, config).to_value(u.cm**2)

    model = LongslitModel(
        nspec=nspec, nspat=nspat, wave_of_pix=wave_of_pix, fwhm_A=st.fwhm_at,
        plate_scale=st.plate_scale * st.binning[1], slit_width=st.slit_arcsec,
        slit_lo=6.0, slit_hi=nspat - 6.0, effective_area=area,
        extinction=extinction_curve(st.site), gain=st.gain, read_noise=st.read_noise,
        bias_level=1500.0)
    peak = np.percentile(arc[arc > 0], 99.5)
    w = model.wave
    added = np.array([])
    if add_end_lines:
        lw, la = end_lamp_lines(w.min(), w.max())
        sig = 2.2 * FWHM_TO_SIGMA   # template lines: FWHM ~2.2 pixels of ~1 A
        disp = np.gradient(w)
        for c, a in zip(lw, la, strict=True):
            amp = peak * min(0.5, max(0.05, a / 2e4))
            arc += amp * np.exp(-0.5 * ((w - c) / (sig * disp)) ** 2)
        added = lw
    arc = arc / arc.max()
    lines_range = (max(w.min(), added.min() if added.size else BLUE_LIMIT),
                   min(w.max(), added.max() if added.size else RED_LIMIT))
    flat = 1 / (w**5 * (np.exp(1.4388e8 / (w * 3000.0)) - 1)) * area(w)
    flat = np.maximum(flat / flat.max(), 0.02)
    std = load_standard("calspec", "G191B2B")

    def header(kind, obj, exptime, airmass, ra, dec, date_obs):
        from astropy.coordinates import Angle
        h = fits.Header()
        h["RUN"] = 0
        h["OBSERVAT"] = "LPO"
        h["TELESCOP"] = "INT"
        h["INSTRUME"] = "IDS"
        h["DETECTOR"] = "REDPLUS2"
        h["OBJECT"] = obj
        h["IMAGETYP"] = {"bias": "BIAS", "flat": "FLAT", "arc": "ARC"}.get(kind, "OBJECT")
        h["RA"] = Angle(ra, u.deg).to_string(unit=u.hourangle, sep=":", precision=2)
        h["DEC"] = Angle(dec, u.deg).to_string(unit=u.deg, sep=":", precision=1,
                                               alwayssign=True)
        h["EQUINOX"] = 2000.0
        h["EXPTIME"] = float(exptime)
        h["AIRMASS"] = float(airmass)
        h["DATE-OBS"] = date_obs.split("T")[0]
        h["UTSTART"] = date_obs.split("T")[1]
        h["GRATNAME"] = "R632V"
        h["CENWAVE"] = 5500.0
        h["SLITWID"] = (st.slit_arcsec, "slit width (arcsec)")
        h["CCDSUM"] = "1 1"
        h["CAGLAMPS"] = {"arc": "CuAr+CuNe", "flat": "W"}.get(kind, "Off")
        h["SIMULATE"] = (True, "xmpspec simulated frame")
        return h

    def write(path, adu, hdr, rng):
        raw = model.bias_level + rng.normal(0, model.read_noise / model.gain,
                                            (nspec, OVERSCAN + nspat))
        raw[:, OVERSCAN:] = adu   # adu is (nspec, nspat): rows = spectral
        img = fits.ImageHDU(data=np.round(raw).astype(np.int32))
        img.header["CCDSUM"] = "1 1"
        img.header["TRIMSEC"] = f"[{OVERSCAN + 1}:{OVERSCAN + nspat},1:{nspec}]"
        img.header["BIASSEC"] = f"[1:{OVERSCAN},1:{nspec}]"
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        fits.HDUList([fits.PrimaryHDU(header=hdr), img]).writeto(tmp, overwrite=True)
        tmp.replace(path)
        return path

    sim = LongslitSimulator(instrument="int_ids", setup=st.name, model=model,
                            arc_spectrum=arc, arc_range=lines_range, flat_spectrum=flat,
                            standard=std, header=header, write=write, extension=".fits",
                            lamp_names="CuAr+CuNe")
    sim.model.extra["lamp_lines_added"] = [float(v) for v in added]
    return sim


def default_galaxies() -> list[Galaxy]:
    """The science target of a default simulated IDS night."""
    return [Galaxy(name="J0845+3312", z=0.0251, halpha_flux=1200.0, n2=-1.5,
                   ra=131.25, dec=33.2, scale_arcsec=1.2, offset_arcsec=2.5)]


def simulate_night(outdir: str | Path, seed: int = 0, galaxies: list[Galaxy] | None = None,
                   plan: NightPlan | None = None, nspat: int = 200,
                   boxcar_radius_arcsec: float | None = None, add_end_lines: bool = True,
                   config=None, progress=None) -> NightTruth:
    """Write a simulated raw IDS night (bias, flat, CuAr+CuNe arc, G191-B2B, science).

    Parameters
    ----------
    outdir : path-like
        Folder for the raw frames and the truth/targets tables.
    seed : int
        Random seed.
    galaxies : list of Galaxy, optional
        Science targets (default: one XMP-like galaxy).
    plan : NightPlan, optional
        Exposures (default: 11 biases, 2 x 1200 s science, 1.2" seeing).
    nspat : int
        Spatial columns of the data region.
    boxcar_radius_arcsec : float, optional
        Records the light fraction in this extraction radius (default: the
        IDS plug-in's tuned radius).
    add_end_lines : bool
        Add lamp lines below 4150 A and above 7140 A to the arc.

    Returns
    -------
    NightTruth
    """
    from ..reduce.spectrographs.int_ids import PLUGIN
    if boxcar_radius_arcsec is None:
        boxcar_radius_arcsec = PLUGIN.boxcar_radius
    # 11 biases, as an observer takes them: the master bias is subtracted from every
    # exposure, so its noise is common to them and not independent in a coadd; with one
    # bias (read-noise-dominated IDS frames) the coadd's errors were 1.25x too small
    plan = plan or NightPlan(science_exptime=1200.0, standard_exptime=60.0,
                             seeing_arcsec=1.2, date_obs="2023-10-02T23:00:00.000",
                             n_bias=11)
    sim = ids_simulator(nspat=nspat, config=config, add_end_lines=add_end_lines)
    return simulate_longslit_night(sim, outdir, galaxies or default_galaxies(), plan=plan,
                                   seed=seed, boxcar_radius_arcsec=boxcar_radius_arcsec,
                                   config=config, progress=progress)
