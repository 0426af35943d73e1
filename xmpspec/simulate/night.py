"""Instrument-generic pieces of simulated raw long-slit nights.

An instrument module (``night_goodman.py``, ``night_ids.py``) describes its
detector and wavelength solution with a :class:`LongslitModel` and calls the
renderers here, which work on an *electron image* oriented ``(nspec, nspat)``
(spectral axis first, the trimmed data region only); the instrument module then
lays it out as its raw frame (overscan, orientation, header, compression).

Physics of the scene (consistent between standard and science, so that a
sensitivity function from the simulated standard calibrates the science):

- detected electrons per spectral pixel = F_lambda x dlambda/dpix x area x
  efficiency(lambda) x t x lambda / (h c) x 10^(-0.4 k(lambda) X), with the
  site's extinction curve k (PypeIt's own file for the site) at the header
  airmass X;
- emission lines are Gaussians (instrumental FWHM from :mod:`xmpspec.instruments`
  plus an intrinsic velocity dispersion) integrated over pixel boundaries;
  continua are sampled at pixel centres and convolved with the instrumental
  profile;
- the galaxy is spatially extended (exponential profile convolved with the
  seeing), the standard a point source (seeing profile); fluxes are those that
  enter the slit (no slit losses), so the fluxed extraction of the whole
  source recovers the injected fluxes;
- sky: PypeIt's archived night-sky spectrum (``paranal_sky.fits``, the one
  its flexure correction correlates with) at the set-up's resolution, scaled
  to ``[simulate] sky_level`` at 5500 A, uniform along the slit
  (``NightPlan.sky = "lines"``: a continuum plus the single lines of
  :mod:`xmpspec.simulate.skylines`);
- slit illumination with soft edges, a fixed pixel-to-pixel response,
  Poisson noise, read noise, bias level, cosmic rays.

Examples
--------
>>> import numpy as np
>>> from xmpspec.simulate.night import exponential_profile
>>> prof = exponential_profile(np.arange(100), centre=50, scale_pix=3, seeing_pix=3)
>>> round(float(prof.sum()), 3)
1.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import erf

from ..errors import InputError

__all__ = ["LongslitModel", "exponential_profile", "seeing_profile", "slit_illumination",
           "electrons_per_flux", "smooth_to_resolution", "standard_flam", "galaxy_flam",
           "sky_flam_per_pixel", "archive_sky_surface", "render_2d", "add_noise", "add_cosmic_rays", "load_standard",
           "extinction_curve", "pixel_response", "write_fz", "load_arc_template",
           "detector_from_template", "template_line_range"]

H_C_ERG_A = 6.62607015e-27 * 2.99792458e18   # h c in erg Angstrom
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass
class LongslitModel:
    """Detector + optics of a long-slit night (trimmed data region).

    Attributes
    ----------
    nspec, nspat : int
        Size of the data region (spectral, spatial) in binned pixels.
    wave_of_pix : callable
        Vacuum wavelength (Angstrom) at a (fractional, 0-based) spectral pixel
        of the data region: the truth wavelength solution.
    fwhm_A : callable
        Instrumental FWHM (Angstrom) at a wavelength.
    plate_scale : float
        arcsec per binned spatial pixel.
    slit_width : float
        arcsec.
    slit_lo, slit_hi : float
        Spatial pixel edges of the illuminated slit.
    effective_area : callable
        Collecting area x end-to-end efficiency (cm2) at a wavelength.
    extinction : callable
        Atmospheric extinction (mag per airmass) at a wavelength.
    gain, read_noise, bias_level : float
        e-/ADU, e-, ADU.
    """

    nspec: int
    nspat: int
    wave_of_pix: Callable[[np.ndarray], np.ndarray]
    fwhm_A: Callable[[np.ndarray], np.ndarray]
    plate_scale: float
    slit_width: float
    slit_lo: float
    slit_hi: float
    effective_area: Callable[[np.ndarray], np.ndarray]
    extinction: Callable[[np.ndarray], np.ndarray]
    gain: float
    read_noise: float
    bias_level: float = 1000.0
    saturation: float = 65535.0
    extra: dict = field(default_factory=dict)

    @property
    def wave(self) -> np.ndarray:
        """Vacuum wavelength at each spectral pixel centre."""
        return self.wave_of_pix(np.arange(self.nspec, dtype=float))

    @property
    def wave_edges(self) -> np.ndarray:
        """Vacuum wavelength at the pixel boundaries (nspec + 1)."""
        return self.wave_of_pix(np.arange(self.nspec + 1, dtype=float) - 0.5)

    @property
    def dispersion(self) -> np.ndarray:
        """Angstrom per pixel at each spectral pixel."""
        return np.abs(np.diff(self.wave_edges))

    @property
    def spat_centre(self) -> float:
        """Spatial pixel at the centre of the slit."""
        return 0.5 * (self.slit_lo + self.slit_hi)


# ---------------------------------------------------------------- spatial profiles
def _integrate_on_pixels(y: np.ndarray, fine_x: np.ndarray, fine_prof: np.ndarray) -> np.ndarray:
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (fine_prof[1:] + fine_prof[:-1])
                                           * np.diff(fine_x))])
    edges = np.concatenate([y - 0.5, [y[-1] + 0.5]])
    c = np.interp(edges, fine_x, cum)
    return np.diff(c)


def seeing_profile(y: np.ndarray, centre: float, seeing_pix: float) -> np.ndarray:
    """Fraction of a point source's light in each spatial pixel (Gaussian seeing, FWHM)."""
    y = np.asarray(y, float)
    sig = seeing_pix * FWHM_TO_SIGMA
    edges = np.concatenate([y - 0.5, [y[-1] + 0.5]])
    cdf = 0.5 * (1 + erf((edges - centre) / (np.sqrt(2) * sig)))
    return np.diff(cdf)


def exponential_profile(y: np.ndarray, centre: float, scale_pix: float,
                        seeing_pix: float) -> np.ndarray:
    """Fraction of an extended galaxy's light in each spatial pixel.

    An exponential profile exp(-|y|/scale) along the slit convolved with a
    Gaussian seeing of FWHM ``seeing_pix``, normalised to a total of 1 over an
    infinite slit (so light falling off the detector is lost, as in reality).
    """
    y = np.asarray(y, float)
    if scale_pix <= 0 or seeing_pix <= 0:
        raise InputError("profile scale and seeing must be positive")
    half = 12 * scale_pix + 5 * seeing_pix
    x = np.linspace(centre - half, centre + half, 8001)
    dx = x[1] - x[0]
    expo = np.exp(-np.abs(x - centre) / scale_pix)
    sig = seeing_pix * FWHM_TO_SIGMA / dx
    prof = gaussian_filter1d(expo, sig, mode="constant")
    prof /= np.trapezoid(prof, x)
    return _integrate_on_pixels(y, x, prof)


def slit_illumination(nspat: int, lo: float, hi: float, edge_pix: float = 1.0) -> np.ndarray:
    """Slit illumination along the spatial axis: 1 inside [lo, hi], soft erf edges."""
    y = np.arange(nspat, dtype=float)
    s = np.sqrt(2) * edge_pix
    return 0.5 * (erf((y - lo) / s) - erf((y - hi) / s))


def pixel_response(shape: tuple[int, int], rng: np.random.Generator,
                   rms: float = 0.01) -> np.ndarray:
    """Fixed pixel-to-pixel sensitivity map (mean 1, ``rms`` scatter)."""
    return 1.0 + rms * rng.normal(size=shape)


# ---------------------------------------------------------------- spectra -> electrons
def electrons_per_flux(model: LongslitModel, airmass: float, exptime: float) -> np.ndarray:
    """Detected electrons per (1e-17 erg/s/cm2/A) of flux density, at each spectral pixel.

    ``area x efficiency x t x dlambda x lambda / (h c) x 10^(-0.4 k X)``; the
    area and efficiency are ``model.effective_area`` (cm2) at the pixel.
    """
    w = model.wave
    atm = 10 ** (-0.4 * model.extinction(w) * airmass)
    return (1e-17 * model.dispersion * model.effective_area(w) * exptime * w / H_C_ERG_A * atm)


def smooth_to_resolution(model: LongslitModel, flam: np.ndarray) -> np.ndarray:
    """Convolve a pixel-sampled continuum with the instrumental profile."""
    w = model.wave
    sig_pix = float(np.median(model.fwhm_A(w) / model.dispersion)) * FWHM_TO_SIGMA
    return gaussian_filter1d(np.asarray(flam, float), sig_pix, mode="nearest")


def standard_flam(model: LongslitModel, std: dict) -> np.ndarray:
    """A standard's flux density (1e-17 erg/s/cm2/A) on the pixel grid, LSF-convolved."""
    f = np.interp(model.wave, std["wave"], std["flam"] / 1e-17)
    return smooth_to_resolution(model, f)


def galaxy_flam(model: LongslitModel, setup, z: float, fluxes: dict, sigma_kms: float,
                continuum_at_ha: float, config=None) -> np.ndarray:
    """Galaxy spectrum (1e-17 erg/s/cm2/A) on the pixel grid: lines + continuum.

    Uses :func:`xmpspec.simulate.spectra.emission_line_model` (pixel-integrated
    Gaussian lines at the set-up's resolution) and
    :func:`~xmpspec.simulate.spectra.continuum_model`.
    """
    from .spectra import continuum_model, emission_line_model

    w = model.wave
    lines = emission_line_model(w, z, fluxes, sigma_kms, setup, config=config).value
    cont = continuum_model(w, z, continuum_at_ha).value
    return lines + smooth_to_resolution(model, cont)


def sky_flam_per_pixel(model: LongslitModel, setup, config=None,
                       kind: str = "archive") -> np.ndarray:
    """Night sky (1e-17 erg/s/cm2/A) falling on one spatial pixel of the slit.

    Parameters
    ----------
    model : LongslitModel
    setup : str or Setup
        Resolution of the sky.
    config : Config, optional
    kind : {"archive", "lines"}
        ``archive``: PypeIt's archived night-sky spectrum (:func:`archive_sky_surface`,
        the spectrum PypeIt's flexure correction correlates with: real skies
        have its blends and line ratios); ``lines``: a continuum plus the
        single lines of :mod:`xmpspec.simulate.skylines`
        (:func:`xmpspec.simulate.spectra.sky_spectrum`). With ``lines`` PypeIt's
        flexure correlation is off by a third of a pixel on Goodman nights
        (docs/reduce.md).
    """
    if kind == "archive":
        sb = archive_sky_surface(model.wave_edges, setup, config)
    elif kind == "lines":
        from .spectra import sky_spectrum
        sb = sky_spectrum(setup, model.wave, config=config).value   # per arcsec2
    else:
        raise InputError(f"sky must be 'archive' or 'lines', not '{kind}'", "simulate night")
    return sb * model.slit_width * model.plate_scale


def archive_sky_surface(edges: np.ndarray, setup, config=None) -> np.ndarray:
    """PypeIt's archived night sky at a set-up's resolution, averaged over pixels.

    ``paranal_sky.fits`` (vacuum, 0.05 A sampling, 3000-10000 A; read by
    :func:`xmpspec.reduce.skyprotect.archive_sky_spectrum`) is convolved with
    a Gaussian of the set-up's FWHM (in ~20 blocks of wavelength, each with its
    median FWHM), averaged over each pixel, and scaled so that its median over
    5450-5550 A equals ``[simulate] sky_level`` (the dark-sky continuum at
    5500 A, 1e-17 erg/s/cm2/A/arcsec2). Pixels outside the archive keep the
    scaled continuum level of its nearest end.

    Parameters
    ----------
    edges : ndarray
        Increasing (or decreasing) pixel-edge wavelengths (vacuum Angstrom).
    setup : str or Setup
    config : Config, optional

    Returns
    -------
    ndarray
        Mean surface brightness per pixel, 1e-17 erg/s/cm2/A/arcsec2.

    Raises
    ------
    ReferenceDataError
        The archived spectrum cannot be read.
    """
    from ..config import get_active_config
    from ..errors import ReferenceDataError
    from ..instruments import get_setup
    from ..reduce.skyprotect import archive_sky_spectrum

    arch = archive_sky_spectrum()
    if arch is None:
        raise ReferenceDataError("PypeIt's archived night-sky spectrum paranal_sky.fits "
                                 "cannot be read", "simulate night")
    aw, af = arch
    st = get_setup(setup) if isinstance(setup, str) else setup
    cfg = config if config is not None else get_active_config()
    level = float(cfg["simulate"]["sky_level"])
    ref = (aw > 5450) & (aw < 5550)
    af = af * (level / float(np.median(af[ref])))
    step = float(np.median(np.diff(aw)))
    edges = np.asarray(edges, float)
    lo, hi = float(edges.min()), float(edges.max())
    blocks = np.linspace(max(lo, aw[0]), min(hi, aw[-1]), 21)
    smooth = np.array(af, float)
    pad = 5 * float(np.max(st.fwhm_at(blocks)))
    for b0, b1 in zip(blocks[:-1], blocks[1:], strict=True):
        sel = (aw >= b0 - pad) & (aw <= b1 + pad)
        sig = float(st.fwhm_at(0.5 * (b0 + b1))) * FWHM_TO_SIGMA / step
        part = gaussian_filter1d(af[sel], sig, mode="nearest")
        inner = (aw[sel] >= b0) & (aw[sel] <= b1)
        smooth[np.flatnonzero(sel)[inner]] = part[inner]
    cum = np.concatenate([[0.0], np.cumsum(smooth * step)])
    cum_w = np.concatenate([[aw[0] - step / 2], aw + step / 2])
    e = np.clip(edges, cum_w[0], cum_w[-1])
    c = np.interp(e, cum_w, cum)
    width = np.abs(np.diff(edges))
    out = np.abs(np.diff(c)) / np.where(width > 0, width, 1.0)
    # beyond the archive: its end levels
    mid = 0.5 * (edges[1:] + edges[:-1])
    out = np.where(mid < aw[0], float(np.median(af[:200])), out)
    out = np.where(mid > aw[-1], float(np.median(af[-200:])), out)
    return out


def render_2d(spec_e: np.ndarray, spatial: np.ndarray) -> np.ndarray:
    """Outer product: electrons (nspec,) x fraction per spatial pixel (nspat,)."""
    return np.outer(np.asarray(spec_e, float), np.asarray(spatial, float))


def add_cosmic_rays(e: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Add ``n`` short cosmic-ray tracks (electrons) in place; returns ``e``."""
    ny, nx = e.shape
    for _ in range(int(n)):
        y, x = rng.integers(0, ny), rng.integers(0, nx)
        length = int(rng.integers(1, 5))
        ang = rng.uniform(0, np.pi)
        amp = rng.uniform(1000, 10000)
        for k in range(length):
            yy, xx = int(round(y + k * np.sin(ang))), int(round(x + k * np.cos(ang)))
            if 0 <= yy < ny and 0 <= xx < nx:
                e[yy, xx] += amp * rng.uniform(0.6, 1.0)
    return e


def add_noise(model: LongslitModel, electrons: np.ndarray, rng: np.random.Generator,
              response: np.ndarray | None = None) -> np.ndarray:
    """Electrons -> ADU with pixel response, Poisson noise, gain, bias and read noise."""
    e = np.clip(electrons, 0, None)
    if response is not None:
        e = e * response
    e = rng.poisson(e).astype(float)
    adu = e / model.gain + model.bias_level
    adu += rng.normal(0.0, model.read_noise / model.gain, adu.shape)
    return np.clip(adu, 0, model.saturation)


# ---------------------------------------------------------------- reference spectra
def load_standard(archive: str, name: str) -> dict:
    """A flux standard from PypeIt's archive: coordinates and spectrum.

    Parameters
    ----------
    archive : str
        PypeIt archive (``esofil``, ``calspec``, ...).
    name : str
        Name as in the archive's info table (``LTT3864``, ``G191B2B``).

    Returns
    -------
    dict
        ``name, ra, dec`` (sexagesimal strings), ``ra_deg, dec_deg``,
        ``wave`` (vacuum A), ``flam`` (erg/s/cm2/A), ``file``.
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from pypeit.core import standard

    try:
        row = standard.archive_entry(archive, name)
        spec = standard.get_standard_spectrum(ra=str(row["RA_2000"]), dec=str(row["DEC_2000"]),
                                              archives=[archive], tol=1.0)
    except Exception as exc:  # PypeItError, missing cache file
        raise InputError(f"cannot load the flux standard {name} from PypeIt's {archive} "
                         f"archive: {exc}", "simulate night") from exc
    c = SkyCoord(str(row["RA_2000"]), str(row["DEC_2000"]), unit=(u.hourangle, u.deg))
    wave = np.asarray(getattr(spec.wave, "value", spec.wave), float)
    flux = np.asarray(getattr(spec.flux, "value", spec.flux), float) * 1e-17
    return {"name": str(row["Name"]), "ra": str(row["RA_2000"]), "dec": str(row["DEC_2000"]),
            "ra_deg": float(c.ra.deg), "dec_deg": float(c.dec.deg), "wave": wave,
            "flam": flux, "file": str(row["File"])}


def load_arc_template(name: str) -> tuple[np.ndarray, np.ndarray]:
    """PypeIt's arc template ``arc_lines/reid_arxiv/<name>``: vacuum wavelength and flux.

    Read from PypeIt's installed data or its download cache (never fetched:
    offline runs get a clear error instead).

    Parameters
    ----------
    name : str
        File name, e.g. ``soar_goodman_blue_400_SYZY.fits``.

    Returns
    -------
    wave, flux : ndarray
        The template's ``wave`` (vacuum Angstrom) and ``flux`` columns, one
        value per template pixel.

    Raises
    ------
    ReferenceDataError
        The template is neither installed nor cached, or unreadable.
    """
    from astropy.io import fits
    from pypeit import dataPaths

    from ..errors import ReferenceDataError
    try:
        path = dataPaths.reid_arxiv.get_file_path(name)
        with fits.open(path) as hdul:
            d = hdul[1].data
            return np.asarray(d["wave"], float), np.asarray(d["flux"], float)
    except Exception as exc:  # noqa: BLE001  (PypeItError on a failed download, OSError, KeyError)
        raise ReferenceDataError(f"PypeIt arc template {name} not available ({exc}); import it "
                                 "with `xmpspec cache import ../shared/pypeit-data`",
                                 name) from exc


def detector_from_template(twave: np.ndarray, tflux: np.ndarray, nspec: int, shift: int,
                           deg: int = 5, background_percentile: float = 10.0
                           ) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """A simulated detector that sees an arc template: truth solution and arc spectrum.

    Detector pixel ``p`` sees template pixel ``p - shift``. The truth
    wavelength solution is a polynomial fit (degree ``deg``) to the template's
    wavelengths, evaluated at ``p - shift``; the arc is the template's flux on
    the same pixels, so arc lines, sky and science are placed with one and the
    same solution. ``shift <= 0`` and ``nspec - shift <= template size`` keep
    the arc inside the template: PypeIt 2.0.1's ``full_template`` pads the
    template with zero wavelengths beyond its ends, which poisons the
    reidentification.

    Parameters
    ----------
    twave, tflux : ndarray
        Template wavelengths (vacuum Angstrom) and flux per template pixel.
    nspec : int
        Spectral pixels of the simulated data region.
    shift : int
        Detector pixel minus template pixel.
    deg : int
        Degree of the polynomial fitted to the template wavelengths.
    background_percentile : float
        Percentile of the template flux subtracted as its background.

    Returns
    -------
    wave_of_pix : callable
        Vacuum wavelength (Angstrom) at a (fractional) detector pixel.
    arc : ndarray
        Arc flux per detector pixel (background-subtracted, >= 0, not normalised).

    Raises
    ------
    ValueError
        The detector would see pixels beyond the template's ends.
    """
    twave = np.asarray(twave, float)
    tflux = np.asarray(tflux, float)
    nt = twave.size
    if shift > 0 or nspec - shift > nt:
        raise ValueError(f"detector pixels 0-{nspec - 1} with shift {shift} see template pixels "
                         f"{-shift}-{nspec - 1 - shift}, outside the template's 0-{nt - 1}")
    coef = np.polynomial.polynomial.polyfit(np.arange(nt) - nt / 2, twave, deg)

    def wave_of_pix(p):
        return np.polynomial.polynomial.polyval(np.asarray(p, float) - shift - nt / 2, coef)

    tpix = np.arange(nspec) - shift
    arc = np.clip(tflux - np.percentile(tflux, background_percentile), 0, None)[tpix]
    return wave_of_pix, arc


def template_line_range(wave: np.ndarray, flux: np.ndarray, lamps, sigdetect: float = 10.0,
                        fwhm: float = 5.0, tol_pix: float = 0.3) -> tuple[float, float]:
    """Vacuum wavelength range spanned by the identifiable lamp lines of an arc spectrum.

    Lines are detected with PypeIt's own detector (``arc.detect_lines``) and
    kept when a line of PypeIt's lists for ``lamps`` lies within ``tol_pix``
    of its position on ``wave`` (blends and unlisted features are dropped).

    Parameters
    ----------
    wave, flux : ndarray
        Vacuum wavelength (Angstrom) and arc flux per pixel.
    lamps : sequence of str
        PypeIt line lists (``NeI``, ``ArI``, ``HgI``).
    sigdetect : float
        Detection threshold (sigma).
    fwhm : float
        Line FWHM in pixels for the detection.
    tol_pix : float
        Largest distance (pixels) between a detected line and a listed one.

    Returns
    -------
    (float, float)
        Bluest and reddest identified line.

    Raises
    ------
    ReferenceDataError
        Fewer than two lines identified (or no line list available).
    """
    from astropy.table import vstack
    from pypeit.core import arc as pypeit_arc
    from pypeit.core.wavecal import waveio

    from ..errors import ReferenceDataError
    tabs = []
    for name in lamps:
        try:
            tabs.append(waveio.load_line_list(f"{name}_lines.dat"))
        except Exception:  # noqa: BLE001  (missing list: judged by the count below)
            continue
    wave = np.asarray(wave, float)
    found = np.array([])
    if tabs:
        listed = np.sort(np.asarray(vstack(tabs)["wave"], float))
        out = pypeit_arc.detect_lines(np.asarray(flux, float), sigdetect=sigdetect, fwhm=fwhm)
        cent = out[2][out[5]]
        pix = np.arange(wave.size, dtype=float)
        lw = np.interp(cent, pix, wave)
        disp = np.interp(cent, pix, np.gradient(wave))
        near = np.abs(listed[np.clip(np.searchsorted(listed, lw), 1, listed.size - 1)
                             - np.array([[1], [0]])] - lw).min(axis=0)
        found = lw[near / np.abs(disp) < tol_pix]
    if found.size < 2:
        raise ReferenceDataError(f"fewer than 2 lines of {', '.join(lamps)} identified in the "
                                 "arc spectrum", "simulate night")
    return float(found.min()), float(found.max())


def extinction_curve(site: str) -> Callable[[np.ndarray], np.ndarray]:
    """Extinction (mag/airmass) of PypeIt's file nearest to an astropy site."""
    from astropy.coordinates import EarthLocation
    from pypeit.core.atmextinction import AtmosphericExtinction

    loc = EarthLocation.of_site(site)
    ext = AtmosphericExtinction.from_coordinates(loc.lon.deg, loc.lat.deg)
    w, m = np.asarray(ext.wave, float), np.asarray(ext.mag_ext, float)

    def k(wave):
        return np.interp(np.asarray(wave, float), w, m)
    return k


def write_fz(path: str | Path, data: np.ndarray, header) -> Path:
    """Write an fpack-style (tile-compressed, RICE) file: empty primary + compressed image."""
    from astropy.io import fits

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    prim = fits.PrimaryHDU(header=header.copy())
    comp = fits.CompImageHDU(data=np.round(data).astype(np.int32), header=header,
                             compression_type="RICE_1")
    fits.HDUList([prim, comp]).writeto(tmp, overwrite=True)
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- a whole night
@dataclass
class Galaxy:
    """A simulated emission-line galaxy (science target).

    Attributes
    ----------
    name : str
        Target name (header OBJECT).
    z : float
        Redshift.
    halpha_flux : float
        Observed Halpha flux, 1e-17 erg/s/cm2 (all other lines follow from
        :func:`xmpspec.simulate.hii.hii_line_fluxes` at ``n2``).
    n2 : float
        log10([NII]6585/Halpha).
    ra, dec : float
        Degrees.
    scale_arcsec : float
        Exponential scale length along the slit.
    offset_arcsec : float
        Offset of the galaxy centre from the slit centre.
    sigma_kms : float
        Intrinsic velocity dispersion.
    ew_ha : float
        Rest-frame EW(Halpha) setting the continuum level.
    """

    name: str
    z: float
    halpha_flux: float
    n2: float
    ra: float
    dec: float
    scale_arcsec: float = 1.0
    offset_arcsec: float = 2.0
    sigma_kms: float = 30.0
    ew_ha: float = 300.0


@dataclass
class NightPlan:
    """What one simulated night contains (exposure times, airmasses, seeing)."""

    date_obs: str = "2024-03-15T01:00:00.000"
    n_bias: int = 1
    n_flat: int = 1
    n_arc: int = 1
    n_science: int = 2
    n_standard: int = 1
    science_exptime: float = 800.0
    standard_exptime: float = 60.0
    flat_exptime: float = 5.0
    arc_exptime: float = 2.0
    science_airmass: float = 1.15
    standard_airmass: float = 1.05
    seeing_arcsec: float = 1.0
    cosmic_rays_per_1000s: float = 60.0
    flat_peak_e: float = 30000.0
    arc_peak_e: float = 25000.0
    #: night sky of long-slit nights: ``archive`` (PypeIt's paranal_sky.fits at the
    #: set-up's resolution) or ``lines`` (continuum + skylines.py); see sky_flam_per_pixel
    sky: str = "archive"


@dataclass
class LongslitSimulator:
    """Instrument-specific pieces for :func:`simulate_longslit_night`.

    Attributes
    ----------
    instrument : str
        xmpspec instrument name (``goodman``).
    setup : str
        :mod:`xmpspec.instruments` set-up (resolution, site).
    model : LongslitModel
        Detector, optics and truth wavelength solution.
    arc_spectrum : ndarray
        Relative arc-lamp spectrum on the spectral pixels (peak 1).
    arc_range : tuple of float
        Vacuum wavelength range constrained by arc lines.
    flat_spectrum : ndarray
        Relative quartz-lamp spectrum (peak 1).
    standard : dict
        From :func:`load_standard`.
    header : callable
        ``header(kind, obj, exptime, airmass, ra, dec, date_obs) -> fits.Header``.
    write : callable
        ``write(path, adu_data_region, header, rng) -> Path`` lays out the raw
        frame (overscan, orientation, file format); ``adu`` excludes bias.
    extension : str
        File-name extension (``.fits.fz``).
    """

    instrument: str
    setup: str
    model: LongslitModel
    arc_spectrum: np.ndarray
    arc_range: tuple[float, float]
    flat_spectrum: np.ndarray
    standard: dict
    header: Callable
    write: Callable
    extension: str = ".fits"
    lamp_names: str = ""


@dataclass
class NightTruth:
    """Files written by a simulated night."""

    raw_dir: Path
    frames: list[Path]
    truth_table: Path
    targets_table: Path
    wavelength_table: Path


def _frame_electrons(sim: LongslitSimulator, kind: str, plan: NightPlan, rng,
                     galaxy: Galaxy | None = None, fluxes: dict | None = None,
                     config=None) -> np.ndarray:
    m = sim.model
    illum = slit_illumination(m.nspat, m.slit_lo, m.slit_hi)
    seeing_pix = plan.seeing_arcsec / m.plate_scale
    y = np.arange(m.nspat, dtype=float)
    if kind == "bias":
        return np.zeros((m.nspec, m.nspat))
    if kind == "flat":
        return render_2d(sim.flat_spectrum * plan.flat_peak_e, illum)
    if kind == "arc":
        return render_2d(sim.arc_spectrum * plan.arc_peak_e, illum)
    sky = sky_flam_per_pixel(m, sim.setup, config, kind=plan.sky)
    if kind == "standard":
        exptime, airmass = plan.standard_exptime, plan.standard_airmass
        src = standard_flam(m, sim.standard)
        prof = seeing_profile(y, m.spat_centre, seeing_pix)
    else:
        exptime, airmass = plan.science_exptime, plan.science_airmass
        cont = galaxy.halpha_flux / galaxy.ew_ha / (1 + galaxy.z)
        src = galaxy_flam(m, sim.setup, galaxy.z, fluxes, galaxy.sigma_kms, cont, config)
        prof = exponential_profile(y, m.spat_centre + galaxy.offset_arcsec / m.plate_scale,
                                   galaxy.scale_arcsec / m.plate_scale, seeing_pix)
    conv = electrons_per_flux(m, airmass, exptime)
    # sky is emitted above the extinction: undo the airmass term for it
    conv_sky = electrons_per_flux(m, 0.0, exptime)
    e = render_2d(src * conv, prof * illum) + render_2d(sky * conv_sky, illum)
    n_cr = rng.poisson(plan.cosmic_rays_per_1000s * exptime / 1000.0 * m.nspat / 300.0)
    return add_cosmic_rays(e, n_cr, rng)


def boxcar_fraction(galaxy: Galaxy, seeing_arcsec: float, radius_arcsec: float,
                    plate_scale: float) -> float:
    """Fraction of a galaxy's light inside a boxcar of ``radius_arcsec`` centred on it."""
    y = np.arange(-400, 401, dtype=float)
    prof = exponential_profile(y, 0.0, galaxy.scale_arcsec / plate_scale,
                               seeing_arcsec / plate_scale)
    r = radius_arcsec / plate_scale
    w = np.clip(r + 0.5 - np.abs(y), 0.0, 1.0)
    return float((prof * w).sum())


def simulate_longslit_night(sim: LongslitSimulator, outdir: str | Path,
                            galaxies: list[Galaxy], plan: NightPlan | None = None,
                            seed: int = 0, boxcar_radius_arcsec: float | None = None,
                            config=None, progress=None) -> NightTruth:
    """Write the raw frames of a simulated long-slit night plus truth and targets tables.

    Parameters
    ----------
    sim : LongslitSimulator
        Instrument-specific pieces.
    outdir : path-like
        Raw-data folder to write.
    galaxies : list of Galaxy
        Science targets (each observed ``plan.n_science`` times).
    plan : NightPlan, optional
        Exposure times, airmasses, seeing, numbers of calibration frames.
    seed : int
        Random seed (noise, cosmic rays, pixel response).
    boxcar_radius_arcsec : float, optional
        Extraction radius for which the truth table records the fraction of
        each galaxy's light (``aperture_fraction``).
    progress : callable, optional
        ``progress(iterable, description)``.

    Returns
    -------
    NightTruth
        The frames written and the truth, targets and wavelength tables.
    """
    from astropy.table import Table

    from ..config import get_active_config
    from ..provenance import provenance_record
    from ..tableio import write_table
    from .hii import hii_line_fluxes

    cfg = config if config is not None else get_active_config()
    plan = plan or NightPlan()
    rng = np.random.default_rng(seed)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    m = sim.model
    response = pixel_response((m.nspec, m.nspat), rng)
    jobs = []
    for _ in range(plan.n_bias):
        jobs.append(("bias", "Bias", 0.0, 1.0, None))
    for _ in range(plan.n_flat):
        jobs.append(("flat", "Flat", plan.flat_exptime, 1.0, None))
    for _ in range(plan.n_arc):
        jobs.append(("arc", sim.lamp_names or "Arc", plan.arc_exptime, 1.0, None))
    for _ in range(plan.n_standard):
        jobs.append(("standard", sim.standard["name"], plan.standard_exptime,
                     plan.standard_airmass, None))
    truth_rows, fluxes_of = [], {}
    for g in galaxies:
        fl, params = hii_line_fluxes(g.halpha_flux, g.n2, z=g.z, config=cfg)
        fluxes_of[g.name] = fl
        row = {"name": g.name, "z": g.z, "ra": g.ra, "dec": g.dec,
               "instrument": sim.instrument, "n2": g.n2,
               "o3": float(np.log10(fl["oiii5008"] / fl["hb"])),
               "f_ha": fl["ha"], "exptime": plan.science_exptime,
               "n_exposures": plan.n_science, "scale_arcsec": g.scale_arcsec,
               "offset_arcsec": g.offset_arcsec, "sigma_kms": g.sigma_kms, "ew_ha": g.ew_ha,
               "seeing_arcsec": plan.seeing_arcsec}
        if boxcar_radius_arcsec:
            row["aperture_fraction"] = boxcar_fraction(g, plan.seeing_arcsec,
                                                       boxcar_radius_arcsec, m.plate_scale)
        for k, v in fl.items():
            row[f"f_{k}"] = v
        truth_rows.append(row)
        for _ in range(plan.n_science):
            jobs.append(("science", g.name, plan.science_exptime, plan.science_airmass, g))

    from datetime import datetime, timedelta
    t0 = datetime.fromisoformat(plan.date_obs)
    frames = []
    items = list(enumerate(jobs))
    for idx, (kind, obj, exptime, airmass, gal) in (progress(items, "writing raw frames")
                                                     if progress else items):
        e = _frame_electrons(sim, kind, plan, rng, gal,
                             fluxes_of.get(gal.name) if gal else None, cfg)
        adu = add_noise(m, e, rng, response)
        if kind == "standard":
            ra, dec = sim.standard["ra_deg"], sim.standard["dec_deg"]
        elif gal is not None:
            ra, dec = gal.ra, gal.dec
        else:
            ra, dec = (galaxies[0].ra, galaxies[0].dec) if galaxies else (0.0, 0.0)
        date = (t0 + timedelta(seconds=600 * idx)).isoformat(timespec="milliseconds")
        hdr = sim.header(kind, obj, exptime, airmass, ra, dec, date)
        path = outdir / f"{sim.instrument}_{idx + 1:04d}_{kind}{sim.extension}"
        frames.append(sim.write(path, adu, hdr, rng))

    prov = provenance_record(config=cfg, step="simulate night",
                             extra={"instrument": sim.instrument, "seed": seed})
    truth = Table(rows=truth_rows)
    for c in truth.colnames:
        if c.startswith("f_"):
            truth[c].unit = "1e-17 erg / (s cm2)"
    truth.meta["wavelength_range_arcs"] = [float(v) for v in sim.arc_range]
    truth_path = write_table(truth, outdir / "truth.ecsv", provenance=prov)[0]
    targets = Table({"name": [g.name for g in galaxies], "z": [g.z for g in galaxies],
                     "ra": [g.ra for g in galaxies], "dec": [g.dec for g in galaxies]})
    targets_path = write_table(targets, outdir / "targets.csv", provenance=prov)[0]
    wtab = Table({"pixel": np.arange(m.nspec), "wave_vac": m.wave})
    wtab["wave_vac"].unit = "Angstrom"
    wtab.meta["arc_range"] = [float(v) for v in sim.arc_range]
    wtab.meta["description"] = ("truth wavelength solution (vacuum Angstrom) at the centres "
                                "of the spectral pixels of the trimmed data region, 0-based")
    wpath = write_table(wtab, outdir / "wavelength_solution.ecsv", provenance=prov)[0]
    return NightTruth(outdir, frames, truth_path, targets_path, wpath)
