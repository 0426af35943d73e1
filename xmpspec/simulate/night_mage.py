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

Wavelengths follow PypeIt's MagE ThAr template ``magellan_mage.fits``
(vacuum): the truth solution of order ``m`` at the slit centre is a smooth
polynomial fit to the template's wavelengths, and arc frames reproduce the
template's ThAr spectrum, so PypeIt's ``reidentify`` finds it. Sources are
converted to detected electrons with one efficiency model (telescope area,
peak efficiency, a smooth response and each order's blaze) and the Las
Campanas atmospheric extinction PypeIt itself uses, so a sensitivity function
from the simulated standard calibrates the simulated science frames.

Fluxes of the simulated galaxy and standard are the fluxes that enter the
slit (slit losses are not simulated), so the flux-calibrated extraction of the
whole source recovers the injected fluxes.

Examples
--------
>>> from xmpspec.simulate.night_mage import MageDetector
>>> MageDetector(binning_spatial=2).raw_shape
(512, 2176)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import erf

from ..errors import InputError, ReferenceDataError

__all__ = ["MAGE_ORDERS", "MAGE_ORDER_SPAT_POS", "MageDetector", "MageOrderModel",
           "MageEfficiency", "load_arc_template", "build_order_models", "render_orders",
           "raw_frame", "mage_header", "write_raw_frame", "photon_rate",
           "LCO_LONGITUDE", "LCO_LATITUDE"]

#: Echelle orders PypeIt 2.0.1 reduces for MagE (``MagellanMAGESpectrograph.orders``).
MAGE_ORDERS = np.arange(17, 5, -1, dtype=int)
#: Spatial centre of each order at the central spectral row, as a fraction of the
#: detector width (``MagellanMAGESpectrograph.order_spat_pos``, PypeIt 2.0.1).
MAGE_ORDER_SPAT_POS = np.array([0.316, 0.399, 0.475, 0.545, 0.609, 0.669, 0.723, 0.774,
                                0.823, 0.869, 0.915, 0.965])
#: Las Campanas Observatory (degrees; east-positive longitude), for PypeIt's extinction lookup.
LCO_LONGITUDE = -70.6926
LCO_LATITUDE = -29.0146
#: Planck constant times speed of light in erg Angstrom.
_HC = 1.98644586e-8
_FWHM_TO_SIGMA = 1.0 / 2.3548200450309493


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


@dataclass(frozen=True)
class MageEfficiency:
    """End-to-end efficiency model: counts = F_lambda * lambda / hc * area * eff * t.

    Attributes
    ----------
    area_cm2 : float
        Collecting area of the 6.5 m Magellan telescope (cm^2).
    peak : float
        Efficiency at the blaze peak of the best order (telescope, spectrograph, CCD).
    response_centre, response_width : float
        The smooth response is a Gaussian in ln(lambda) centred at
        ``response_centre`` (Angstrom) with this width.
    blaze_floor : float
        Lower bound of the blaze function (keeps order ends illuminated).
    """

    area_cm2: float = 2.9e5
    peak: float = 0.12
    response_centre: float = 6000.0
    response_width: float = 0.45
    blaze_floor: float = 0.05

    def blaze(self, wave, order: int, wave_centre: float) -> np.ndarray:
        """Blaze function sinc^2(m (lambda - lambda_c) / lambda_c) of one order."""
        x = order * (np.asarray(wave, float) - wave_centre) / wave_centre
        return np.maximum(np.sinc(x) ** 2, self.blaze_floor)

    def response(self, wave) -> np.ndarray:
        """Smooth response (peak 1) versus wavelength."""
        lw = np.log(np.asarray(wave, float) / self.response_centre)
        return np.exp(-0.5 * (lw / self.response_width) ** 2)

    def efficiency(self, wave, order: int, wave_centre: float) -> np.ndarray:
        """Total efficiency of ``order`` at ``wave``."""
        return self.peak * self.response(wave) * self.blaze(wave, order, wave_centre)


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
    return Path(st.path)


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
    from astropy.io import fits
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
                       wave_degree: int = 5) -> list[MageOrderModel]:
    """Order geometry for the 12 orders PypeIt reduces.

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
    wave_degree : int
        Degree of the polynomial fitted to the template wavelengths.

    Returns
    -------
    list of MageOrderModel
        In PypeIt's order (17 first).
    """
    models = []
    c = 0.5 * (detector.nspec - 1)
    t = (np.arange(detector.nspec) - c) / c
    for order, pos in zip(MAGE_ORDERS, MAGE_ORDER_SPAT_POS, strict=True):
        if int(order) not in template:
            raise ReferenceDataError(f"order {order} missing from the MagE arc template",
                                     "magellan_mage.fits")
        wave, flux = template[int(order)]
        if wave.size != detector.nspec:
            raise ReferenceDataError(f"order {order} of the MagE template has {wave.size} pixels, "
                                     f"expected {detector.nspec}", "magellan_mage.fits")
        coeffs = np.polynomial.Polynomial.fit(t, wave, wave_degree).convert().coef
        curv = (curvature_pix * (0.6 + 0.4 * rng.random()),
                -curvature_pix * (0.8 + 0.4 * rng.random()))
        tl = (tilt * (0.8 + 0.4 * rng.random()), 0.3 * tilt * (rng.random() - 0.5))
        models.append(MageOrderModel(order=int(order), x0=pos * detector.nspat_unbinned,
                                     curvature=curv, tilt=tl, wave_coeffs=coeffs,
                                     arc_flux=np.clip(flux, 0, None), nspec=detector.nspec))
    return models


# --------------------------------------------------------------------------- rendering
def photon_rate(wave, flux_density, order: MageOrderModel, efficiency: MageEfficiency,
                extinction_mag=None, airmass: float = 1.0) -> np.ndarray:
    """Detected electrons per second per Angstrom for a flux density.

    Parameters
    ----------
    wave : array
        Vacuum wavelengths (Angstrom).
    flux_density : array
        erg/s/cm^2/Angstrom entering the slit.
    order : MageOrderModel
        The order (blaze).
    efficiency : MageEfficiency
    extinction_mag : callable, optional
        Extinction in magnitudes per airmass versus wavelength.
    airmass : float

    Returns
    -------
    ndarray
        e-/s/Angstrom.
    """
    wave = np.asarray(wave, float)
    lo, hi = order.wave_range
    eff = efficiency.efficiency(wave, order.order, 0.5 * (lo + hi))
    rate = np.asarray(flux_density, float) * wave / _HC * efficiency.area_cm2 * eff
    if extinction_mag is not None:
        rate = rate * 10 ** (-0.4 * extinction_mag(wave) * airmass)
    return rate




def _pixel_counts_on_fine_grid(order: MageOrderModel, spectrum, oversample: int = 8,
                               pad: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Counts per spectral pixel (centred at fractional positions) for ``spectrum(wave)``.

    ``spectrum`` returns counts per Angstrom (e-/A) and must already include
    the instrumental broadening. The result ``g(p)`` is the integral of the
    spectrum over the pixel ``[p - 1/2, p + 1/2]`` on a grid of fractional
    pixel positions ``p``, so that a tilted line at offset ``d`` is
    ``g(s - d)``.
    """
    step = 1.0 / oversample
    edges = np.arange(-pad, order.nspec + pad + step, step) - 0.5
    wave_e = order.wavelength(edges)
    centres = 0.5 * (wave_e[1:] + wave_e[:-1])
    dl = np.diff(wave_e)
    cum = np.concatenate([[0.0], np.cumsum(spectrum(centres) * dl)])
    # pixel [p-1/2, p+1/2] = edges[k] .. edges[k + oversample]
    p = edges[:-oversample] + 0.5
    g = cum[oversample:] - cum[:-oversample]
    return p, g


def render_orders(detector: MageDetector, orders: list[MageOrderModel], components,
                  edge_blur: float = 0.6) -> np.ndarray:
    """Render order images in PypeIt's oriented frame (nspec, nspat_binned), in electrons.

    Parameters
    ----------
    detector : MageDetector
    orders : list of MageOrderModel
    components : list of (g_func, profile_func)
        ``g_func(order) -> (p, g)``: counts per pixel along the order at
        fractional pixel positions (see :func:`_pixel_counts_on_fine_grid`),
        for a source uniformly filling one arcsec of slit length or, for
        ``profile_func`` given, for the whole source;
        ``profile_func(y_arcsec) -> weight per arcsec`` (integral 1 over the
        slit) or ``None`` for a uniform slit illumination (per arcsec).
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
    # binned pixel j covers unbinned [j*b, (j+1)*b); sub-sample the bin
    sub = (np.arange(b) + 0.5)
    half = 0.5 * detector.slit_length / detector.plate_scale
    for om in orders:
        xc = om.centre(s)                               # (nspec,)
        tl = om.tilt_at(s)
        jlo = max(int(np.floor((xc.min() - half - 4) / b)), 0)
        jhi = min(int(np.ceil((xc.max() + half + 4) / b)) + 1, nspat)
        if jhi <= jlo:
            continue
        jj = np.arange(jlo, jhi)
        block = np.zeros((nspec, jj.size))
        comps = [(gf(om), prof) for gf, prof in components]
        for k in sub:
            x = jj[None, :] * b + k                     # unbinned position of sub-pixel centre
            y = x - xc[:, None]                          # offset along slit (unbinned pix)
            illum = 0.5 * (erf((y + half) / edge_blur) - erf((y - half) / edge_blur))
            y_arc = y * detector.plate_scale
            pos = s[:, None] - tl[:, None] * y           # tilted spectral position
            for (p, g), prof in comps:
                val = np.interp(pos, p, g)
                w = illum * detector.plate_scale         # arcsec covered by one unbinned pixel
                if prof is not None:
                    w = w * prof(y_arc)
                block += val * w
        img[:, jlo:jhi] += block
    return img


def raw_frame(detector: MageDetector, electrons: np.ndarray, rng: np.random.Generator,
              pixel_flat: np.ndarray | None = None, noise: bool = True,
              cosmic_rays: int = 0) -> np.ndarray:
    """Turn an oriented electron image into a raw MagE frame (ADU, float32).

    Adds Poisson noise, the pixel-to-pixel flat, cosmic rays, bias, read noise
    and the overscan, then flips and transposes to the raw layout.
    """
    e = np.clip(electrons, 0, None)
    if pixel_flat is not None:
        e = e * pixel_flat
    if noise:
        e = rng.poisson(e).astype(float)
    if cosmic_rays:
        _add_cosmic_rays(e, cosmic_rays, rng)
    adu = e / detector.gain
    raw = np.empty(detector.raw_shape, float)
    raw[:, :detector.nspec] = adu[::-1, :].T
    raw[:, detector.nspec:] = 0.0
    # bias: level, a gentle gradient along the rows, read noise everywhere (overscan too)
    rows = np.linspace(-1, 1, detector.nspat)[:, None]
    raw += detector.bias_level + 3.0 * rows
    if noise:
        raw += rng.normal(0.0, detector.read_noise / detector.gain, raw.shape)
    return np.clip(raw, 0, detector.saturation).astype(np.float32)


def _add_cosmic_rays(e: np.ndarray, n: int, rng: np.random.Generator) -> None:
    """Add ``n`` short cosmic-ray tracks (in electrons) to ``e`` in place."""
    ny, nx = e.shape
    for _ in range(n):
        y, x = rng.integers(0, ny), rng.integers(0, nx)
        length = rng.integers(1, 5)
        ang = rng.uniform(0, np.pi)
        amp = rng.uniform(800, 8000)
        for k in range(length):
            yy = int(round(y + k * np.sin(ang)))
            xx = int(round(x + k * np.cos(ang)))
            if 0 <= yy < ny and 0 <= xx < nx:
                e[yy, xx] += amp * rng.uniform(0.6, 1.0)


def mage_header(detector: MageDetector, exptype: str, obj: str, exptime: float,
                ut_date: str, ut_time: str, ra: str = "00:00:00.00", dec: str = "+00:00:00.0",
                airmass: float = 1.0, slitname: str = "1.0") -> "fits.Header":  # noqa: F821
    """Header cards PypeIt's ``magellan_mage`` reads.

    Parameters
    ----------
    exptype : {'Bias', 'Flat', 'ThAr-Lamp', 'Object'}
        MagE ``EXPTYPE`` (exact spelling, PypeIt types frames from it).
    """
    from astropy.io import fits
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


def write_raw_frame(path: str | Path, data: np.ndarray, header) -> Path:
    """Write one raw MagE frame (single primary HDU) atomically."""
    from astropy.io import fits
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fits.PrimaryHDU(data=data, header=header).writeto(tmp, overwrite=True)
    tmp.replace(path)
    return path


@dataclass
class _Scene:
    """Internal helper holding the pieces common to all frames of a night."""

    detector: MageDetector
    orders: list[MageOrderModel]
    efficiency: MageEfficiency
    extinction_mag: object
    pixel_flat: np.ndarray
    resolution: float
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- sources
def _extinction_function():
    """Las Campanas extinction curve (mag/airmass) from PypeIt's closest site file."""
    from pypeit.core.atmextinction import AtmosphericExtinction
    ext = AtmosphericExtinction.from_coordinates(LCO_LONGITUDE, LCO_LATITUDE)
    w, m = ext.wave, ext.mag_ext

    def mag(wave):
        return np.interp(wave, w, m)
    return mag


def standard_star_info(name: str) -> dict:
    """Archive entry (file, name, RA, Dec) of an ESO standard star known to PypeIt.

    Parameters
    ----------
    name : str
        ``"Feige 56"``, ``"CD-32 9927"`` (spaces, dashes and the ``d`` of
        ``CD-32d9927`` are ignored when matching).

    Raises
    ------
    InputError
        The star is not in PypeIt's ``esofil`` list.
    """
    from astropy.table import Table
    from pypeit import dataPaths
    info = Table.read(dataPaths.standards.get_file_path("esofil/esofil_info.txt"),
                      format="ascii", comment="#")

    def norm(s):
        return str(s).lower().replace(" ", "").replace("-", "").replace("d", "")
    for row in info:
        if norm(row["Name"]) == norm(name):
            return {"file": str(row["File"]), "name": str(row["Name"]),
                    "ra": str(row["RA_2000"]), "dec": str(row["DEC_2000"])}
    raise InputError(f"standard star {name!r} is not in PypeIt's esofil archive "
                     f"(known: {', '.join(map(str, info['Name']))})", "MagE simulator")


def load_standard_spectrum(name: str, reference_dir: str | Path | None = None
                           ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Spectrum of an ESO standard as PypeIt reads it (wave A, flux erg/s/cm^2/A)."""
    info = standard_star_info(name)
    path = _reference_path("standards/esofil", info["file"], reference_dir)
    try:
        tab = np.loadtxt(path)
    except (OSError, ValueError) as exc:
        raise ReferenceDataError(f"cannot read standard-star spectrum: {exc}", str(path)) from exc
    return tab[:, 0], tab[:, 1] * 1e-16, info


def _gaussian_lines(wave, centres, fluxes, sigmas):
    """Sum of Gaussian lines (flux units per Angstrom) evaluated at ``wave``."""
    out = np.zeros_like(wave, dtype=float)
    for c, f, s in zip(centres, fluxes, sigmas, strict=True):
        m = np.abs(wave - c) < 8 * s
        out[m] += f / (np.sqrt(2 * np.pi) * s) * np.exp(-0.5 * ((wave[m] - c) / s) ** 2)
    return out


def _spatial_profile(kind: str, seeing_fwhm: float, scale: float, centre: float,
                     half_length: float):
    """Profile along the slit (per arcsec, integral 1 within the slit) as a callable."""
    y = np.linspace(-half_length - 3, half_length + 3, 4001)
    sig = seeing_fwhm * _FWHM_TO_SIGMA
    gauss = np.exp(-0.5 * ((y - centre) / sig) ** 2)
    if kind == "point":
        prof = gauss
    else:
        expo = np.exp(-np.abs(y - centre) / scale)
        kern = np.exp(-0.5 * ((y - y.mean()) / sig) ** 2)
        prof = np.convolve(expo, kern / kern.sum(), mode="same")
    inside = np.abs(y) <= half_length
    prof = prof / np.trapezoid(prof[inside], y[inside])

    def f(yy):
        return np.interp(yy, y, prof, left=0.0, right=0.0)
    return f


def profile_fraction(profile, half_width: float, centre: float = 0.0) -> float:
    """Fraction of a slit profile within ``centre +/- half_width`` arcsec."""
    y = np.linspace(centre - half_width, centre + half_width, 2001)
    return float(np.trapezoid(profile(y), y))


# --------------------------------------------------------------------------- the night
@dataclass
class MageNight:
    """What :func:`simulate_night` wrote.

    Attributes
    ----------
    raw_dir : Path
    files : list of dict
        One entry per frame: ``filename, exptype, object, exptime, airmass``.
    targets : list of dict
        Science targets: ``name, ra, dec, z`` and injected line fluxes.
    orders : list of MageOrderModel
        Geometry and wavelength truth of each order.
    standard : dict
        Name, coordinates and exposure time of the flux standard.
    meta : dict
        Simulation parameters (seed, binning, seeing, profile, ...).
    """

    raw_dir: Path
    files: list[dict]
    targets: list[dict]
    orders: list[MageOrderModel]
    standard: dict
    meta: dict

    def wavelength_truth(self) -> dict[int, np.ndarray]:
        """``{order: vacuum wavelength of each spectral pixel at the slit centre}``."""
        s = np.arange(self.orders[0].nspec)
        return {om.order: om.wavelength(s) for om in self.orders}


def _galaxy_spectrum(line_fluxes: dict[str, float], z: float, sigma_kms: float, cfg, setup):
    """Flux density (erg/s/cm^2/A) of the galaxy versus observed vacuum wavelength."""
    from ..lines.catalog import line_catalog
    sim = cfg["simulate"]
    cat = line_catalog(cfg)
    keys = [k for k in line_fluxes if k in cat.keys and line_fluxes[k] > 0]
    cen = np.array([cat[k].wave for k in keys]) * (1 + z)
    flx = np.array([line_fluxes[k] for k in keys]) * 1e-17
    c = 299792.458
    ha = line_fluxes.get("ha", 0.0) * 1e-17
    cont0 = ha / float(sim["ew_ha"]) / (1 + z)        # observed-frame f_lambda at Halpha
    beta = float(sim["continuum_beta"])
    ha_obs = cat["ha"].wave * (1 + z)

    def f(wave):
        wave = np.asarray(wave, float)
        sig = np.sqrt((cen * sigma_kms / c) ** 2 + (np.asarray(setup.fwhm_at(cen)) * _FWHM_TO_SIGMA) ** 2)
        cont = cont0 * (wave / ha_obs) ** beta
        return cont + _gaussian_lines(wave, cen, flx, sig)
    return f


def _sky_spectrum(cfg, setup):
    """Sky surface brightness (erg/s/cm^2/A/arcsec^2) versus vacuum wavelength."""
    from .skylines import sky_line_list
    sim = cfg["simulate"]
    lw, lsb = sky_line_list(float(sim["sky_line_scale"]))
    level = float(sim["sky_level"]) * 1e-17
    sig = np.asarray(setup.fwhm_at(lw)) * _FWHM_TO_SIGMA

    def f(wave):
        wave = np.asarray(wave, float)
        cont = level * (5500.0 / wave) ** 2          # flat in f_nu
        return cont + _gaussian_lines(wave, lw, lsb * 1e-17, sig)
    return f


def simulate_night(outdir: str | Path, seed: int = 1, *, binning_spatial: int = 2,
                   n_bias: int = 3, n_flat: int = 1, n_arc: int = 1, n_science: int = 2,
                   science_exptime: float = 600.0, standard: str = "Feige 56",
                   target: str = "J1044+0353", target_ra: str = "10:44:57.8",
                   target_dec: str = "+03:53:13.0", z: float = 0.0129,
                   halpha_flux: float = 600.0, n2: float = -1.7, seeing: float = 0.8,
                   profile_scale: float = 0.5, profile_centre: float = 0.0,
                   ut_date: str = "2026-03-15", reference_dir: str | Path | None = None,
                   config=None) -> MageNight:
    """Write the raw frames of a simulated MagE night.

    Parameters
    ----------
    outdir : path-like
        Folder for the raw frames (created).
    seed : int
        Random seed (noise, cosmic rays, order geometry).
    binning_spatial : int
        Spatial binning (2 halves the reduction time; spectral stays 1).
    n_bias, n_flat, n_arc, n_science : int
        Number of frames of each kind.
    science_exptime : float
        Seconds per science exposure.
    standard : str
        ESO standard observed for fluxing (``"Feige 56"`` or ``"CD-32 9927"``).
    target, target_ra, target_dec : str
        Science target name and coordinates (sexagesimal).
    z : float
        Redshift of the galaxy.
    halpha_flux : float
        Observed Halpha flux entering the slit, 1e-17 erg/s/cm^2.
    n2 : float
        Observed log10([NII]6585/Halpha); other lines follow
        :func:`xmpspec.simulate.hii.hii_line_fluxes`.
    seeing : float
        FWHM in arcsec.
    profile_scale : float
        Exponential scale length of the galaxy along the slit (arcsec).
    profile_centre : float
        Galaxy centre offset from the slit centre (arcsec).
    ut_date : str
        ``YYYY-MM-DD``.
    reference_dir : path-like, optional
        PypeIt data folder holding ``magellan_mage.fits`` and the standard's
        spectrum; default PypeIt's install/cache.
    config : Config, optional
        Defaults to the active configuration (``[simulate]`` section).

    Returns
    -------
    MageNight
    """
    from ..config import get_active_config
    from ..instruments import get_setup
    from .hii import hii_line_fluxes

    cfg = config if config is not None else get_active_config()
    setup = get_setup("mage")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    det = MageDetector(binning_spatial=binning_spatial, gain=setup.gain,
                       read_noise=setup.read_noise, plate_scale=setup.plate_scale)
    orders = build_order_models(det, load_arc_template(reference_dir), rng)
    eff = MageEfficiency()
    ext = _extinction_function()
    half = 0.5 * det.slit_length
    pixel_flat = 1.0 + 0.01 * rng.standard_normal((det.nspec, det.nspat))
    files: list[dict] = []

    def emit(name, electrons, exptype, obj, exptime, ut_time, ra="00:00:00.0",
             dec="+00:00:00", airmass=1.0, crs=0, flat=True):
        raw = raw_frame(det, electrons, rng, pixel_flat=pixel_flat if flat else None,
                        cosmic_rays=crs)
        hdr = mage_header(det, exptype, obj, exptime, ut_date, ut_time, ra=ra, dec=dec,
                          airmass=airmass, slitname=f"{setup.slit_arcsec:.1f}")
        write_raw_frame(outdir / name, raw, hdr)
        files.append({"filename": name, "exptype": exptype, "object": obj,
                      "exptime": float(exptime), "airmass": float(airmass)})

    def per_arcsec(spec_fn, exptime, airmass):
        """Component of a source filling the slit uniformly (flux per arcsec of slit)."""
        def g(om):
            return _pixel_counts_on_fine_grid(
                om, lambda w: photon_rate(w, spec_fn(w), om, eff, ext, airmass) * exptime)
        return g

    # -- bias
    zero = np.zeros((det.nspec, det.nspat))
    for i in range(n_bias):
        emit(f"mage_{len(files) + 1:04d}.fits", zero, "Bias", "Bias", 0.0,
             f"20:{i:02d}:00.0", flat=False)
    # -- flats: a warm lamp through the blaze; scaled to ~25000 e- per pixel at peak
    def lamp(w):
        bb = 1.0 / (w ** 5 * (np.exp(1.4388e8 / (w * 3200.0)) - 1.0))
        bb /= 1.0 / (9000.0 ** 5 * (np.exp(1.4388e8 / (9000.0 * 3200.0)) - 1.0))
        return (0.3 + 0.7 * bb) * _HC / w        # photons flat-ish after photon_rate
    flat_g = per_arcsec(lamp, 1.0, 0.0)
    flat_img = render_orders(det, orders, [(flat_g, None)])
    flat_img *= 25000.0 / np.percentile(flat_img[flat_img > 0], 99.5)
    for i in range(n_flat):
        emit(f"mage_{len(files) + 1:04d}.fits", flat_img, "Flat", "Flat", 10.0,
             f"20:3{i}:00.0")
    # -- arcs: the template ThAr spectrum, brightest lines ~30000 e- per pixel
    def arc_g(om):
        return np.arange(om.nspec, dtype=float), om.arc_flux / det.slit_length
    arc_img = render_orders(det, orders, [(arc_g, None)])
    arc_img *= 30000.0 / arc_img.max()
    for i in range(n_arc):
        emit(f"mage_{len(files) + 1:04d}.fits", arc_img, "ThAr-Lamp", "ThAr", 30.0,
             f"20:4{i}:00.0")

    sky = _sky_spectrum(cfg, setup)
    sky_per_arcsec = lambda w: sky(w) * setup.slit_arcsec  # noqa: E731  (slit width)
    # -- flux standard: exposure chosen to stay well below saturation
    sw, sf, sinfo = load_standard_spectrum(standard, reference_dir)
    std_spec = lambda w: np.interp(w, sw, sf)  # noqa: E731
    std_prof = _spatial_profile("point", seeing, 0.0, 0.0, half)
    std_airmass = 1.25
    probe = render_orders(det, orders, [(per_arcsec(std_spec, 1.0, std_airmass), std_prof)])
    peak_adu = probe.max() * 1.02 / det.gain
    std_exptime = float(min(20.0, np.floor(10 * 0.45 * (det.saturation - det.bias_level)
                                           / peak_adu) / 10))
    if std_exptime < 0.1:
        std_exptime = 0.1
    std_img = render_orders(det, orders,
                            [(per_arcsec(std_spec, std_exptime, std_airmass), std_prof),
                             (per_arcsec(sky_per_arcsec, std_exptime, std_airmass), None)])
    emit(f"mage_{len(files) + 1:04d}.fits", std_img, "Object", sinfo["name"], std_exptime,
         "23:50:00.0", ra=sinfo["ra"], dec=sinfo["dec"], airmass=std_airmass,
         crs=max(1, int(std_exptime / 6)))

    # -- science: extended emission-line galaxy + sky
    fluxes, params = hii_line_fluxes(halpha_flux, n2, z=z, config=cfg)
    gal = _galaxy_spectrum(fluxes, z, float(cfg["simulate"]["sigma_kms"]), cfg, setup)
    gal_prof = _spatial_profile("exponential", seeing, profile_scale, profile_centre, half)
    airmasses = np.linspace(1.08, 1.3, max(n_science, 1))
    sci_files = []
    for i in range(n_science):
        am = float(airmasses[i])
        img = render_orders(det, orders,
                            [(per_arcsec(gal, science_exptime, am), gal_prof),
                             (per_arcsec(sky_per_arcsec, science_exptime, am), None)])
        name = f"mage_{len(files) + 1:04d}.fits"
        start = 3600 + int(i * (science_exptime + 120))
        emit(name, img, "Object", target, science_exptime,
             f"{start // 3600:02d}:{(start % 3600) // 60:02d}:{start % 60:02d}.0",
             ra=target_ra, dec=target_dec, airmass=am, crs=int(10 * science_exptime / 60))
        sci_files.append(name)

    targets = [{"name": target, "ra": target_ra, "dec": target_dec, "z": z, "n2": n2,
                "fluxes": fluxes, "params": params, "files": sci_files}]
    meta = {"seed": seed, "binning_spatial": binning_spatial, "seeing": seeing,
            "profile_scale": profile_scale, "profile_centre": profile_centre,
            "science_exptime": science_exptime, "efficiency_peak": eff.peak,
            "galaxy_profile": gal_prof}
    return MageNight(raw_dir=outdir, files=files, targets=targets, orders=orders,
                     standard={"name": sinfo["name"], "ra": sinfo["ra"], "dec": sinfo["dec"],
                               "exptime": std_exptime, "airmass": std_airmass},
                     meta=meta)
