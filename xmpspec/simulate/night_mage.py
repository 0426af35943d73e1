"""Raw Magellan/MagE frames of a simulated night, laid out as PypeIt's ``magellan_mage`` reads them.

A MagE raw frame is one primary HDU of shape ``(1024 / binning_spatial, 2176)``:
2048 spectral columns plus 128 overscan columns, the spectral axis along the
columns and flipped (wavelength decreases with the column index), the spatial
axis along the rows. The echellette disperses a 10" long slit into 15 orders;
PypeIt 2.0.1 reduces orders 17 to 6, whose spatial centres at the central
spectral row are fixed in PypeIt (``order_spat_pos``, fractions of the
detector width). This module renders those 12 orders with a smooth curvature,
a spectral line tilt along the slit, soft slit edges and a blaze function, and
writes the header keywords PypeIt reads (``BINNING``, ``UT-DATE``,
``UT-TIME``, ``EXPTYPE``, ``OBJECT``, ``RA``, ``DEC``, ``SLITNAME``,
``EXPTIME``, ``AIRMASS``, ``INSTRUME``).

Wavelengths: the truth solution at the slit centre is a smooth echelle
dispersion relation (``m * lambda`` a 2D polynomial of pixel and order)
fitted to PypeIt's MagE ThAr template ``magellan_mage.fits`` (vacuum); arc
frames place the lines of PypeIt's
``ThAr_MagE`` list (with its amplitudes) exactly there, so PypeIt's
``reidentify`` recognises the template's pattern and the solution it fits can
be compared with the truth (``wavelength_solution.ecsv``).

Sources use the shared physics of :mod:`xmpspec.simulate.night`: electrons =
F_lambda x effective area (``[simulate.throughput.mage]``) x the order's blaze
x t x lambda / hc x 10^(-0.4 k X), with PypeIt's extinction curve for Las
Campanas; galaxy lines and continuum from
:func:`xmpspec.simulate.spectra.emission_line_model` and
:func:`~xmpspec.simulate.spectra.continuum_model`, line fluxes from
:func:`xmpspec.simulate.hii.hii_line_fluxes`, the standard from PypeIt's
``esofil`` archive (Feige 56 or CD-32 9927), sky from
:func:`~xmpspec.simulate.spectra.sky_spectrum`. Fluxes are those that enter
the slit (no slit losses), so a sensitivity function from the simulated
standard calibrates the science frames. Because the orders are curved and
the lines tilted, sources are rendered per unbinned spatial sub-pixel along
each order rather than as an outer product.

Examples
--------
>>> from xmpspec.simulate.night_mage import MageDetector
>>> MageDetector(binning_spatial=2).raw_shape
(512, 2176)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.special import erf

from ..errors import InputError, ReferenceDataError
from .night import (
    FWHM_TO_SIGMA,
    H_C_ERG_A,
    Galaxy,
    LongslitModel,
    NightPlan,
    NightTruth,
    add_cosmic_rays,
    add_noise,
    boxcar_fraction,
    extinction_curve,
    load_standard,
    pixel_response,
)

__all__ = ["MAGE_ORDERS", "MAGE_ORDER_SPAT_POS", "MageDetector", "MageOrderModel",
           "load_arc_template", "build_order_models", "blaze", "photon_rate", "pixel_counts",
           "render_orders", "to_raw", "mage_header", "write_raw_frame",
           "standard_archive_name", "load_arc_lines", "default_galaxies", "default_plan", "simulate_night"]

#: Echelle orders PypeIt 2.0.1 reduces for MagE (``MagellanMAGESpectrograph.orders``).
MAGE_ORDERS = np.arange(17, 5, -1, dtype=int)
#: Spatial centre of each order at the central spectral row, as a fraction of the
#: detector width (``MagellanMAGESpectrograph.order_spat_pos``, PypeIt 2.0.1).
MAGE_ORDER_SPAT_POS = np.array([0.316, 0.399, 0.475, 0.545, 0.609, 0.669, 0.723, 0.774,
                                0.823, 0.869, 0.915, 0.965])


@dataclass(frozen=True)
class MageDetector:
    """Geometry and noise of the MagE CCD (values of PypeIt's ``magellan_mage``).

    Attributes
    ----------
    binning_spatial : int
        On-chip binning along the slit (1 or 2); the spectral axis stays unbinned.
    nspec : int
        Spectral pixels (data columns).
    nspat_unbinned : int
        Unbinned spatial pixels (rows).
    noverscan : int
        Overscan columns after the data.
    gain : float
        e-/ADU.
    read_noise : float
        e- per (binned) pixel.
    bias_level : float
        ADU.
    saturation : float
        ADU.
    plate_scale : float
        arcsec per unbinned spatial pixel.
    slit_length : float
        arcsec.
    """

    binning_spatial: int = 2
    nspec: int = 2048
    nspat_unbinned: int = 1024
    noverscan: int = 128
    gain: float = 1.02
    read_noise: float = 2.9
    bias_level: float = 1000.0
    saturation: float = 65535.0
    plate_scale: float = 0.3
    slit_length: float = 10.0

    def __post_init__(self):
        if self.binning_spatial not in (1, 2, 4):
            raise InputError(f"spatial binning must be 1, 2 or 4, not {self.binning_spatial}",
                             "MagE simulator")

    @property
    def nspat(self) -> int:
        """Binned spatial pixels."""
        return self.nspat_unbinned // self.binning_spatial

    @property
    def raw_shape(self) -> tuple[int, int]:
        """Shape of the raw primary HDU (rows = spatial, columns = spectral + overscan)."""
        return (self.nspat, self.nspec + self.noverscan)

    @property
    def binning_card(self) -> str:
        """``BINNING`` header value, spatial x spectral (``'2x1'``)."""
        return f"{self.binning_spatial}x1"

    @property
    def pixel_arcsec(self) -> float:
        """Binned spatial pixel size in arcsec."""
        return self.plate_scale * self.binning_spatial


@dataclass
class MageOrderModel:
    """Geometry and wavelength truth of one echelle order.

    Coordinates: ``s`` is the spectral pixel of PypeIt's oriented frame
    (0..nspec-1, wavelength increasing), ``x`` the spatial position in
    unbinned pixels, ``y = x - centre(s)`` the offset along the slit.

    Attributes
    ----------
    order : int
        Echelle order number.
    x0 : float
        Slit centre at the central spectral row, unbinned pixels.
    curvature : tuple of float
        Linear and quadratic terms (unbinned pixels) of the centre versus
        ``t = (s - c) / c`` with ``c = (nspec - 1) / 2``.
    tilt : tuple of float
        Line tilt d(s)/d(y) at ``t = 0`` and its linear change with ``t``.
    wave_coeffs : ndarray
        Polynomial (``numpy.polynomial.Polynomial`` coefficients in ``t``) of
        the vacuum wavelength at the slit centre.
    arc_flux : ndarray
        Template ThAr counts per pixel (oriented frame).
    """

    order: int
    x0: float
    curvature: tuple[float, float]
    tilt: tuple[float, float]
    wave_coeffs: np.ndarray
    arc_flux: np.ndarray
    nspec: int = 2048

    def _t(self, s):
        c = 0.5 * (self.nspec - 1)
        return (np.asarray(s, float) - c) / c

    def centre(self, s) -> np.ndarray:
        """Slit centre (unbinned spatial pixels) at spectral pixel(s) ``s``."""
        t = self._t(s)
        return self.x0 + self.curvature[0] * t + self.curvature[1] * t ** 2

    def tilt_at(self, s) -> np.ndarray:
        """Line tilt d(s)/d(y) at spectral pixel(s) ``s``."""
        return self.tilt[0] + self.tilt[1] * self._t(s)

    def wavelength(self, s) -> np.ndarray:
        """Truth vacuum wavelength (Angstrom) at the slit centre for spectral pixel(s) ``s``."""
        return np.polynomial.Polynomial(self.wave_coeffs)(self._t(s))

    @property
    def wave_range(self) -> tuple[float, float]:
        """Wavelengths of the first and last pixel."""
        w = self.wavelength([0, self.nspec - 1])
        return float(w[0]), float(w[1])


# --------------------------------------------------------------------------- reference data
def _reference_path(subdir: str, name: str, reference_dir: str | Path | None) -> Path:
    """Locate a PypeIt reference file: ``reference_dir``, PypeIt's install, or its cache."""
    if reference_dir is not None:
        p = Path(reference_dir) / subdir / name
        if not p.is_file():
            raise ReferenceDataError(f"{subdir}/{name} not found in {reference_dir}", str(p))
        return p
    from ..reduce.cache import file_status
    from ..reduce.registry import ReferenceFile
    st = file_status(ReferenceFile(subdir, name))
    if not st.present:
        raise ReferenceDataError(
            f"PypeIt reference file {subdir}/{name} is neither installed nor cached: import it "
            "with `xmpspec cache import FOLDER` or pass its folder as reference_dir", name)
    return Path(st.where)


def load_arc_template(reference_dir: str | Path | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Read PypeIt's MagE ThAr template ``arc_lines/reid_arxiv/magellan_mage.fits``.

    Parameters
    ----------
    reference_dir : path-like, optional
        Folder laid out like PypeIt's data tree (``../shared/pypeit-data``);
        default: PypeIt's installation or download cache.

    Returns
    -------
    dict
        ``{order: (wave, flux)}``, vacuum Angstrom and counts per pixel, in
        PypeIt's oriented pixel order (wavelength increasing).
    """
    path = _reference_path("arc_lines/reid_arxiv", "magellan_mage.fits", reference_dir)
    try:
        with fits.open(path) as hdul:
            data = hdul[1].data
            out = {int(o): (np.array(w, float), np.array(f, float))
                   for w, f, o in zip(data["wave"], data["flux"], data["order"], strict=True)}
    except (OSError, KeyError, IndexError) as exc:
        raise ReferenceDataError(f"cannot read the MagE arc template: {exc}", str(path)) from exc
    return out


def build_order_models(detector: MageDetector, template: dict, rng: np.random.Generator,
                       curvature_pix: float = 6.0, tilt: float = 0.06,
                       dispersion_degrees: tuple[int, int] = (4, 4)) -> list[MageOrderModel]:
    """Order geometry and wavelength truth for the 12 orders PypeIt reduces.

    The truth wavelength solution is a smooth echelle dispersion relation:
    ``m * lambda`` as a 2D Legendre polynomial of the spectral pixel and the
    order number, fitted to the wavelengths of PypeIt's template. The
    template's per-order solutions scatter about such a smooth relation by
    0.1-0.5 pixel (fit noise of the archived real-data solutions); a real
    spectrograph's dispersion is smooth across orders. The default degrees
    are those of PypeIt's MagE 2D fit (``ech_nspec_coeff``,
    ``ech_norder_coeff`` = 4, 4).

    Parameters
    ----------
    detector : MageDetector
    template : dict
        Output of :func:`load_arc_template`.
    rng : numpy.random.Generator
        Draws small order-to-order differences of curvature and tilt.
    curvature_pix : float
        Typical amplitude (unbinned pixels) of the order curvature.
    tilt : float
        Typical spectral line tilt d(spec)/d(spat).
    dispersion_degrees : (int, int)
        Degrees in pixel and in order of the smooth dispersion relation.

    Returns
    -------
    list of MageOrderModel
        In PypeIt's order (17 first).
    """
    from numpy.polynomial import legendre

    c = 0.5 * (detector.nspec - 1)
    t = (np.arange(detector.nspec) - c) / c
    omin, omax = float(MAGE_ORDERS.min()), float(MAGE_ORDERS.max())

    def y_of(order):
        return 2.0 * (order - omin) / (omax - omin) - 1.0
    xs, ys, zs = [], [], []
    for order in MAGE_ORDERS:
        if int(order) not in template:
            raise ReferenceDataError(f"order {order} missing from the MagE arc template",
                                     "magellan_mage.fits")
        wave, _ = template[int(order)]
        if wave.size != detector.nspec:
            raise ReferenceDataError(f"order {order} of the MagE template has {wave.size} pixels, "
                                     f"expected {detector.nspec}", "magellan_mage.fits")
        xs.append(t)
        ys.append(np.full(t.size, y_of(order)))
        zs.append(wave * order)
    vander = legendre.legvander2d(np.concatenate(xs), np.concatenate(ys), list(dispersion_degrees))
    coef2d = np.linalg.lstsq(vander, np.concatenate(zs), rcond=None)[0]
    coef2d = coef2d.reshape(dispersion_degrees[0] + 1, dispersion_degrees[1] + 1)

    models = []
    for order, pos in zip(MAGE_ORDERS, MAGE_ORDER_SPAT_POS, strict=True):
        # the 2D relation at this order: a Legendre series in t, divided by m
        leg1d = coef2d @ legendre.legvander(np.array([y_of(order)]), dispersion_degrees[1])[0]
        coeffs = legendre.leg2poly(leg1d) / order
        curv = (curvature_pix * (0.6 + 0.4 * rng.random()),
                -curvature_pix * (0.8 + 0.4 * rng.random()))
        tl = (tilt * (0.8 + 0.4 * rng.random()), 0.3 * tilt * (rng.random() - 0.5))
        models.append(MageOrderModel(order=int(order), x0=pos * detector.nspat_unbinned,
                                     curvature=curv, tilt=tl, wave_coeffs=coeffs,
                                     arc_flux=np.clip(template[int(order)][1], 0, None),
                                     nspec=detector.nspec))
    return models


# --------------------------------------------------------------------------- rendering
def blaze(wave, order: MageOrderModel, floor: float = 0.05) -> np.ndarray:
    """Blaze function of an order, sinc^2(m (lambda - lambda_c) / lambda_c), peak 1.

    ``lambda_c`` is the centre of the order's wavelength range; ``floor``
    keeps the ends of the order illuminated.
    """
    lo, hi = order.wave_range
    wc = 0.5 * (lo + hi)
    x = order.order * (np.asarray(wave, float) - wc) / wc
    return np.maximum(np.sinc(x) ** 2, floor)


def photon_rate(wave, flam, order: MageOrderModel, airmass: float, setup, extinction,
                config=None) -> np.ndarray:
    """Detected electrons per second per Angstrom for a flux density in one order.

    Parameters
    ----------
    wave : array
        Vacuum wavelengths (Angstrom).
    flam : array
        Flux density entering the slit, 1e-17 erg/s/cm^2/A.
    order : MageOrderModel
        The order (its blaze multiplies the set-up's effective area).
    airmass : float
        Airmass (0 for light emitted above the atmosphere's extinction, i.e. the sky).
    setup : xmpspec.instruments.Setup
        MagE set-up (``[simulate.throughput.mage]`` effective area).
    extinction : callable
        Extinction (mag per airmass) versus wavelength.

    Returns
    -------
    ndarray
        e-/s/Angstrom.
    """
    from .spectra import effective_area
    wave = np.asarray(wave, float)
    area = effective_area(setup, wave, config=config).to_value("cm2")
    atm = 10 ** (-0.4 * extinction(wave) * airmass)
    return np.asarray(flam, float) * 1e-17 * wave / H_C_ERG_A * area * blaze(wave, order) * atm


def pixel_counts(order: MageOrderModel, spectrum, oversample: int = 8,
                 pad: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Counts per spectral pixel of an order, tabulated at fractional pixel positions.

    Parameters
    ----------
    order : MageOrderModel
    spectrum : callable
        ``spectrum(wave_centres) -> counts per Angstrom`` on a fine grid whose
        bins are 1/``oversample`` pixel wide (instrumental broadening
        included; pixel-integrated models are fine).
    oversample : int
        Fine bins per pixel.
    pad : int
        Extra pixels beyond both ends (room for the line tilt).

    Returns
    -------
    p, g : ndarray
        ``g(p)`` is the integral of the spectrum over ``[p - 1/2, p + 1/2]``
        (wavelengths at the slit centre), so a position ``d`` pixels along a
        tilted line receives ``g(s - d)``.
    """
    step = 1.0 / oversample
    edges = np.arange(-pad, order.nspec + pad + step / 2, step) - 0.5
    wave_e = order.wavelength(edges)
    centres = 0.5 * (wave_e[1:] + wave_e[:-1])
    cum = np.concatenate([[0.0], np.cumsum(spectrum(centres) * np.diff(wave_e))])
    p = edges[:-oversample] + 0.5
    g = cum[oversample:] - cum[:-oversample]
    return p, g


def render_orders(detector: MageDetector, orders: list[MageOrderModel], components,
                  edge_blur: float = 0.6) -> np.ndarray:
    """Render the orders in PypeIt's oriented frame ``(nspec, nspat_binned)``, in electrons.

    Parameters
    ----------
    detector : MageDetector
    orders : list of MageOrderModel
    components : list of (g_func, profile)
        ``g_func(order) -> (p, g)`` (see :func:`pixel_counts`): counts per
        spectral pixel of the whole source, or per arcsec of slit for a source
        filling the slit (``profile=None``); ``profile(y_arcsec)`` is the
        source's light per arcsec along the slit (integral 1).
    edge_blur : float
        Width (unbinned pixels) of the soft slit edges.

    Returns
    -------
    ndarray
        Electrons per binned pixel.
    """
    nspec, nspat, b = detector.nspec, detector.nspat, detector.binning_spatial
    img = np.zeros((nspec, nspat))
    s = np.arange(nspec, dtype=float)
    half = 0.5 * detector.slit_length / detector.plate_scale
    for om in orders:
        xc = om.centre(s)
        tl = om.tilt_at(s)
        jlo = max(int(np.floor((xc.min() - half - 4) / b)), 0)
        jhi = min(int(np.ceil((xc.max() + half + 4) / b)) + 1, nspat)
        if jhi <= jlo:
            continue
        jj = np.arange(jlo, jhi)
        block = np.zeros((nspec, jj.size))
        comps = [(gf(om), prof) for gf, prof in components]
        for k in np.arange(b) + 0.5:                  # unbinned sub-pixels of a binned pixel
            y = (jj[None, :] * b + k) - xc[:, None]   # offset along the slit (unbinned pix)
            w0 = 0.5 * (erf((y + half) / edge_blur) - erf((y - half) / edge_blur))
            w0 = w0 * detector.plate_scale            # arcsec of slit seen by the sub-pixel
            pos = s[:, None] - tl[:, None] * y        # tilted spectral position
            for (p, g), prof in comps:
                w = w0 if prof is None else w0 * prof(y * detector.plate_scale)
                block += np.interp(pos, p, g) * w
        img[:, jlo:jhi] += block
    return img


def to_raw(detector: MageDetector, adu: np.ndarray) -> np.ndarray:
    """Oriented ``(nspec, nspat)`` ADU image -> raw layout (spatial rows, flipped spectral columns).

    The overscan columns are left at zero for the caller to fill (bias level
    and read noise in :func:`simulate_night`).
    """
    raw = np.zeros(detector.raw_shape, np.float32)
    raw[:, :detector.nspec] = adu[::-1, :].T
    return raw


def mage_header(detector: MageDetector, exptype: str, obj: str, exptime: float,
                ut_date: str, ut_time: str, ra: str = "00:00:00.00", dec: str = "+00:00:00.0",
                airmass: float = 1.0, slitname: str = "1.0") -> fits.Header:
    """Header cards PypeIt's ``magellan_mage`` reads.

    Parameters
    ----------
    exptype : {'Bias', 'Flat', 'ThAr-Lamp', 'Object'}
        MagE ``EXPTYPE`` (exact spelling, PypeIt types frames from it).
    """
    if exptype not in ("Bias", "Flat", "ThAr-Lamp", "Object"):
        raise InputError(f"EXPTYPE must be Bias, Flat, ThAr-Lamp or Object, not {exptype!r}",
                         "MagE simulator")
    h = fits.Header()
    h["INSTRUME"] = ("MagE", "instrument")
    h["TELESCOP"] = ("Clay_Mag_2", "telescope")
    h["EXPTYPE"] = (exptype, "exposure type")
    h["OBJECT"] = (obj, "object name")
    h["EXPTIME"] = (float(exptime), "exposure time (s)")
    h["UT-DATE"] = (ut_date, "UT date at start")
    h["UT-TIME"] = (ut_time, "UT time at start")
    h["RA"] = (ra, "right ascension (hours)")
    h["DEC"] = (dec, "declination (degrees)")
    h["EQUINOX"] = 2000.0
    h["AIRMASS"] = (float(airmass), "airmass")
    h["SLITNAME"] = (slitname, "slit width (arcsec)")
    h["BINNING"] = (detector.binning_card, "binning spatial x spectral")
    h["GAIN"] = (detector.gain, "e-/ADU")
    h["RDNOISE"] = (detector.read_noise, "e-")
    h["SIMULATE"] = (True, "xmpspec simulated frame")
    return h


def write_raw_frame(path: str | Path, data: np.ndarray, header: fits.Header) -> Path:
    """Write one raw MagE frame (a single primary HDU) atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fits.PrimaryHDU(data=data, header=header).writeto(tmp, overwrite=True)
    tmp.replace(path)
    return path


def _profile_function(kind: str, seeing_arcsec: float, scale_arcsec: float,
                      centre_arcsec: float):
    """Light per arcsec along the slit (integral 1 over an infinite slit), as a callable.

    The orders are curved, so the profile is needed at arbitrary positions:
    it is tabulated finely once and interpolated.
    """
    half = 12 * max(scale_arcsec, 0.0) + 5 * seeing_arcsec
    y = np.linspace(centre_arcsec - half, centre_arcsec + half, 8001)
    sig = seeing_arcsec * FWHM_TO_SIGMA
    gauss = np.exp(-0.5 * ((y - centre_arcsec) / sig) ** 2)
    if kind == "point":
        prof = gauss
    else:
        expo = np.exp(-np.abs(y - centre_arcsec) / scale_arcsec)
        prof = np.convolve(expo, gauss / gauss.sum(), mode="same")
    prof = prof / np.trapezoid(prof, y)

    def f(yy):
        return np.interp(yy, y, prof, left=0.0, right=0.0)
    return f


# --------------------------------------------------------------------------- the night
def standard_archive_name(name: str) -> str:
    """Name of a flux standard in PypeIt's ``esofil`` archive (``'Feige 56'`` -> ``'Feige56'``).

    Raises
    ------
    InputError
        Not in the archive; the message lists the MagE standards.
    """
    from astropy.table import Table
    from pypeit import dataPaths
    info = Table.read(dataPaths.standards.get_file_path("esofil/esofil_info.txt"),
                      format="ascii", comment="#")

    def norm(v):
        return str(v).lower().replace(" ", "").replace("-", "").replace("d", "")
    for row in info:
        if norm(row["Name"]) == norm(name):
            return str(row["Name"])
    raise InputError(f"flux standard {name!r} is not in PypeIt's esofil archive "
                     "(MagE standards: Feige 56, CD-32 9927)", "simulate night")


def default_galaxies() -> list[Galaxy]:
    """The science target of a default simulated MagE night."""
    return [Galaxy(name="J1044+0353", z=0.0129, halpha_flux=800.0, n2=-1.7,
                   ra=161.2408, dec=3.8869, scale_arcsec=0.6, offset_arcsec=0.5)]


def default_plan() -> NightPlan:
    """A MagE night: 3 biases, 1 flat, 1 ThAr, a 15 s standard, 2 x 600 s per target.

    PypeIt types MagE ``Object`` exposures of at most 20 s as standards.
    """
    return NightPlan(date_obs="2026-03-15T23:30:00.000", n_bias=3, n_flat=1, n_arc=1,
                     n_science=2, science_exptime=600.0, standard_exptime=15.0,
                     flat_exptime=10.0, arc_exptime=30.0, science_airmass=1.12,
                     standard_airmass=1.25, seeing_arcsec=0.8, cosmic_rays_per_1000s=60.0,
                     flat_peak_e=25000.0, arc_peak_e=30000.0)


def simulate_night(outdir: str | Path, seed: int = 0, galaxies: list[Galaxy] | None = None,
                   plan: NightPlan | None = None, binning_spatial: int = 2,
                   standard: str = "Feige 56", boxcar_radius_arcsec: float | None = None,
                   reference_dir: str | Path | None = None, config=None,
                   progress=None) -> NightTruth:
    """Write a simulated raw MagE night plus its truth, targets and wavelength tables.

    Parameters
    ----------
    outdir : path-like
        Folder for the raw frames (``mage_NNNN_<kind>.fits``) and the tables.
    seed : int
        Random seed (noise, cosmic rays, pixel response, order curvature and tilt).
    galaxies : list of Galaxy, optional
        Science targets (default :func:`default_galaxies`).
    plan : NightPlan, optional
        Exposures (default :func:`default_plan`); the standard's exposure
        must be at most 20 s (PypeIt's MagE rule).
    binning_spatial : int
        Spatial binning (2 halves the reduction time); spectral stays 1.
    standard : str
        ``"Feige 56"`` or ``"CD-32 9927"`` (PypeIt's esofil spectra).
    boxcar_radius_arcsec : float, optional
        Records each galaxy's light fraction in this extraction radius
        (default: the radius of xmpspec's MagE reduction).
    reference_dir : path-like, optional
        Folder laid out like PypeIt's data tree holding
        ``arc_lines/reid_arxiv/magellan_mage.fits`` (default: PypeIt's
        installation or download cache).
    config : Config, optional
    progress : callable, optional
        ``progress(iterable, description)``.

    Returns
    -------
    NightTruth
        Frames written, ``truth.ecsv`` (injected line fluxes ``f_<key>``,
        ``aperture_fraction``), ``targets.csv`` and
        ``wavelength_solution.ecsv`` (``order, pixel, wave_vac``: vacuum
        wavelength at the slit centre of each spectral pixel of PypeIt's
        oriented frame, i.e. raw column ``2047 - pixel``).

    Raises
    ------
    InputError
        Standard exposure longer than 20 s or saturating the detector, bad binning.
    ReferenceDataError
        The ThAr template or the standard's spectrum is not available offline.
    """
    from astropy.table import Table

    from ..config import get_active_config
    from ..instruments import get_setup
    from ..provenance import provenance_record
    from ..tableio import write_table
    from .hii import hii_line_fluxes
    from .spectra import continuum_model, emission_line_model, sky_spectrum

    cfg = config if config is not None else get_active_config()
    setup = get_setup("mage")
    plan = plan or default_plan()
    galaxies = default_galaxies() if galaxies is None else list(galaxies)
    if plan.standard_exptime > 20.0:
        raise InputError(f"standard exposure {plan.standard_exptime} s: PypeIt types MagE "
                         "Object frames as standards only up to 20 s", "simulate night")
    if boxcar_radius_arcsec is None:
        from ..reduce.registry import get_instrument
        boxcar_radius_arcsec = get_instrument("mage").boxcar_radius
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    det = MageDetector(binning_spatial=binning_spatial, gain=setup.gain,
                       read_noise=setup.read_noise, plate_scale=setup.plate_scale)
    orders = build_order_models(det, load_arc_template(reference_dir), rng)
    arc_lines = load_arc_lines()
    ext = extinction_curve(setup.site)
    try:
        std = load_standard("esofil", standard_archive_name(standard))
    except InputError as exc:
        raise ReferenceDataError(str(exc), "simulate night") from exc
    noise_model = LongslitModel(nspec=det.nspec, nspat=det.nspat, wave_of_pix=np.asarray,
                                fwhm_A=setup.fwhm_at, plate_scale=det.pixel_arcsec,
                                slit_width=setup.slit_arcsec, slit_lo=0.0, slit_hi=det.nspat,
                                effective_area=np.asarray, extinction=ext, gain=det.gain,
                                read_noise=det.read_noise, bias_level=det.bias_level,
                                saturation=det.saturation)
    response = pixel_response((det.nspec, det.nspat), rng)

    def source(flam_fn, exptime, airmass):
        """g_func of a source given as flux density (1e-17 erg/s/cm2/A) versus wavelength."""
        def g(om):
            return pixel_counts(om, lambda w: photon_rate(w, flam_fn(w), om, airmass, setup,
                                                          ext, cfg) * exptime)
        return g

    def sky_flam(w):            # per arcsec of slit length: surface brightness x slit width
        return sky_spectrum(setup, w, config=cfg).value * setup.slit_arcsec

    def std_flam(w):
        return np.interp(w, std["wave"], std["flam"]) / 1e-17

    # frame list: (kind, EXPTYPE, OBJECT, exptime, airmass, galaxy)
    jobs = [("bias", "Bias", "Bias", 0.0, 1.0, None)] * plan.n_bias
    jobs += [("flat", "Flat", "Flat", plan.flat_exptime, 1.0, None)] * plan.n_flat
    jobs += [("arc", "ThAr-Lamp", "ThAr", plan.arc_exptime, 1.0, None)] * plan.n_arc
    jobs += [("standard", "Object", std["name"], plan.standard_exptime, plan.standard_airmass,
              None)]
    truth_rows, fluxes_of = [], {}
    for gal in galaxies:
        fl, params = hii_line_fluxes(gal.halpha_flux, gal.n2, z=gal.z, config=cfg)
        fluxes_of[gal.name] = fl
        row = {"name": gal.name, "z": gal.z, "ra": gal.ra, "dec": gal.dec,
               "instrument": "mage", "n2": gal.n2,
               "o3": float(np.log10(fl["oiii5008"] / fl["hb"])), "f_ha": fl["ha"],
               "exptime": plan.science_exptime, "n_exposures": plan.n_science,
               "scale_arcsec": gal.scale_arcsec, "offset_arcsec": gal.offset_arcsec,
               "sigma_kms": gal.sigma_kms, "ew_ha": gal.ew_ha,
               "seeing_arcsec": plan.seeing_arcsec,
               "aperture_fraction": boxcar_fraction(gal, plan.seeing_arcsec,
                                                    boxcar_radius_arcsec, setup.plate_scale)}
        row.update({f"f_{k}": v for k, v in fl.items()})
        truth_rows.append(row)
        jobs += [("science", "Object", gal.name, plan.science_exptime, plan.science_airmass,
                  gal)] * plan.n_science

    from datetime import datetime, timedelta
    t0 = datetime.fromisoformat(plan.date_obs)
    frames: list[Path] = []
    items = list(enumerate(jobs))
    for idx, (kind, exptype, obj, exptime, airmass, gal) in (
            progress(items, "writing raw MagE frames") if progress else items):
        if kind == "bias":
            e = np.zeros((det.nspec, det.nspat))
        elif kind == "flat":
            e = render_orders(det, orders, [(_flat_component(), None)])
            e *= plan.flat_peak_e / np.percentile(e[e > 0], 99.5)
        elif kind == "arc":
            e = render_orders(det, orders, [(_arc_component(det, setup, arc_lines), None)])
            e *= plan.arc_peak_e / e.max()
        else:
            comps = [(source(sky_flam, exptime, 0.0), None)]
            if kind == "standard":
                comps.append((source(std_flam, exptime, airmass),
                              _profile_function("point", plan.seeing_arcsec, 0.0, 0.0)))
            else:
                fl = fluxes_of[gal.name]
                cont = gal.halpha_flux / gal.ew_ha / (1 + gal.z)

                def gal_flam(w, fl=fl, gal=gal, cont=cont):
                    return (emission_line_model(w, gal.z, fl, gal.sigma_kms, setup,
                                                config=cfg).value
                            + continuum_model(w, gal.z, cont).value)
                comps.append((source(gal_flam, exptime, airmass),
                              _profile_function("exponential", plan.seeing_arcsec,
                                                gal.scale_arcsec, gal.offset_arcsec)))
            e = render_orders(det, orders, comps)
            if kind == "standard" and e.max() * 1.05 / det.gain + det.bias_level > 0.8 * det.saturation:
                raise InputError(f"the {plan.standard_exptime} s exposure of {std['name']} "
                                 "would saturate: shorten plan.standard_exptime",
                                 "simulate night")
            n_cr = rng.poisson(plan.cosmic_rays_per_1000s * exptime / 1000.0
                               * det.nspat_unbinned / 300.0)
            add_cosmic_rays(e, n_cr, rng)
        adu = add_noise(noise_model, e, rng, response if kind != "bias" else None)
        raw = to_raw(det, adu)
        # overscan: bias level and read noise only
        raw[:, det.nspec:] = (det.bias_level + rng.normal(0.0, det.read_noise / det.gain,
                                                          (det.nspat, det.noverscan)))
        when = t0 + timedelta(seconds=900 * idx)
        if kind == "standard":
            ra, dec = std["ra"], std["dec"]
        elif gal is not None:
            ra, dec = _sexagesimal(gal.ra, gal.dec)
        else:
            ra, dec = "00:00:00.00", "+00:00:00.0"
        hdr = mage_header(det, exptype, obj, exptime, when.strftime("%Y-%m-%d"),
                          when.strftime("%H:%M:%S.%f")[:-3], ra=ra, dec=dec, airmass=airmass,
                          slitname=f"{setup.slit_arcsec:.1f}")
        frames.append(write_raw_frame(outdir / f"mage_{idx + 1:04d}_{kind}.fits", raw, hdr))

    prov = provenance_record(config=cfg, step="simulate night",
                             extra={"instrument": "mage", "seed": seed,
                                    "binning_spatial": binning_spatial,
                                    "standard": std["name"],
                                    "standard_exptime": plan.standard_exptime})
    truth = Table(rows=truth_rows)
    for c in truth.colnames:
        if c.startswith("f_"):
            truth[c].unit = "1e-17 erg / (s cm2)"
    lo = min(om.wave_range[0] for om in orders)
    hi = max(om.wave_range[1] for om in orders)
    truth.meta["wavelength_range_arcs"] = [float(lo), float(hi)]
    truth_path = write_table(truth, outdir / "truth.ecsv", provenance=prov)[0]
    targets = Table({"name": [g.name for g in galaxies], "z": [g.z for g in galaxies],
                     "ra": [g.ra for g in galaxies], "dec": [g.dec for g in galaxies]})
    targets_path = write_table(targets, outdir / "targets.csv", provenance=prov)[0]
    pix = np.arange(det.nspec)
    wtab = Table({"order": np.repeat([om.order for om in orders], det.nspec),
                  "pixel": np.tile(pix, len(orders)),
                  "wave_vac": np.concatenate([om.wavelength(pix) for om in orders])})
    wtab["wave_vac"].unit = "Angstrom"
    wtab.meta["arc_range"] = [float(lo), float(hi)]
    wtab.meta["description"] = ("truth wavelength solution (vacuum Angstrom) at the slit "
                                "centre of each order, per spectral pixel of PypeIt's "
                                "oriented frame (raw column = 2047 - pixel), 0-based")
    wpath = write_table(wtab, outdir / "wavelength_solution.ecsv", provenance=prov)[0]
    return NightTruth(outdir, frames, truth_path, targets_path, wpath)


def _flat_component():
    """Quartz lamp (3200 K black body plus a blue floor) through the blaze, per arcsec."""
    def lamp(w):
        x = 1.4388e8 / (w * 3200.0)
        bb = (9000.0 / w) ** 5 * np.expm1(1.4388e8 / (9000.0 * 3200.0)) / np.expm1(x)
        return 0.3 + 0.7 * bb

    def g(om):
        return pixel_counts(om, lambda w: lamp(w) * blaze(w, om))
    return g


def load_arc_lines() -> tuple[np.ndarray, np.ndarray]:
    """ThAr lines PypeIt calibrates MagE with (``ThAr_MagE`` list, vacuum).

    Returns
    -------
    wave, amplitude : ndarray
        Vacuum wavelengths (Angstrom) and relative amplitudes of the lines.
    """
    from pypeit.core.wavecal import waveio
    try:
        tab = waveio.load_line_list("ThAr_MagE", use_ion=True)
    except Exception as exc:  # noqa: BLE001 - PypeIt installation without its line lists
        raise ReferenceDataError(f"cannot read PypeIt's ThAr_MagE line list: {exc}",
                                 "ThAr_MagE_lines.dat") from exc
    return np.asarray(tab["wave"], float), np.asarray(tab["amplitude"], float)


def _arc_component(det: MageDetector, setup, lines: tuple[np.ndarray, np.ndarray]):
    """ThAr lamp: the lines of PypeIt's list at the truth wavelengths, through the blaze.

    The lines sit exactly at the truth wavelength solution (the template's
    smooth solution), so the solution PypeIt fits to the line list can be
    compared with the truth; PypeIt identifies them by cross-correlating with
    its template, whose lines are the same.
    """
    lw, amp = lines

    def g(om):
        lo, hi = om.wave_range
        pad = 10 * setup.fwhm_at(hi)
        sel = (lw > lo - pad) & (lw < hi + pad)
        w_l, a_l = lw[sel], amp[sel] * blaze(lw[sel], om)
        sig = np.asarray(setup.fwhm_at(w_l), float) * FWHM_TO_SIGMA
        # the list's amplitudes are peak counts per pixel: area = amp x sqrt(2 pi) sigma / dispersion
        s_grid = np.arange(om.nspec, dtype=float)
        w_grid = om.wavelength(s_grid)
        disp = np.interp(w_l, w_grid, np.gradient(w_grid))
        a_l = a_l * np.sqrt(2 * np.pi) * sig / disp

        def spec(w):
            out = np.zeros_like(w)
            for c, a, sg in zip(w_l, a_l, sig, strict=True):
                m = np.abs(w - c) < 6 * sg
                out[m] += a / (np.sqrt(2 * np.pi) * sg) * np.exp(-0.5 * ((w[m] - c) / sg) ** 2)
            return out
        return pixel_counts(om, spec)
    return g


def _sexagesimal(ra_deg: float, dec_deg: float) -> tuple[str, str]:
    """Degrees -> MagE-style 'hh:mm:ss.ss', '+dd:mm:ss.s' strings."""
    import astropy.units as u
    from astropy.coordinates import Angle
    ra = Angle(ra_deg * u.deg).to_string(unit=u.hourangle, sep=":", precision=2, pad=True)
    dec = Angle(dec_deg * u.deg).to_string(unit=u.deg, sep=":", precision=1, pad=True,
                                           alwayssign=True)
    return ra, dec
