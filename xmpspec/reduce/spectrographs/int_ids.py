"""INT/IDS with the Red+2 detector and the R632V grating: a PypeIt plug-in spectrograph.

PypeIt 2.0.1 has no IDS support. :meth:`IDSPlugin.register_pypeit` defines
:class:`INTIDSRedPlus2Spectrograph` (``int_ids_redplus2``), adds it to
``pypeit.spectrographs.available_spectrographs`` and lets PypeIt's
``TelescopePar`` accept the telescope name ``INT``; PypeIt's classes
(setup, reduction, sensitivity function, fluxing, coadds) then find it in this
process. PypeIt's stand-alone scripts (``run_pypeit``...) start a fresh
interpreter and do not know it: use ``xmpspec setup/reduce/run``.

Raw IDS frames (ING conventions): image in extension 1 (primary header
cards are read from extensions 0 and 1), spectral axis along NAXIS2 (rows),
spatial axis along NAXIS1. Cards: OBJECT, IMAGETYP (``bias``/``zero``,
``flat``, ``arc``, ``object``/``sky``; any case), RA, DEC (sexagesimal),
EXPTIME, AIRMASS, DATE-OBS (+ UTSTART), GRATNAME (``R632V``), CENWAVE,
SLITWID (arcsec), CCDSUM (``"1 1"``), DETECTOR (``REDPLUS2``), CAGLAMPS
(``CuAr+CuNe`` for arcs, ``W`` for flats), TRIMSEC and BIASSEC (FITS order,
``[x1:x2,y1:y2]``). Detector: 0.44"/pix, gain 0.91 e-/ADU, read noise 3.5 e-.

Frame typing (xmpspec's lamp rules, :mod:`xmpspec.reduce.frametype`): the
lamps in CAGLAMPS decide, whatever IMAGETYP says (real ING arcs are often
``IMAGETYP = 'object'``, ``OBSTYPE = 'TARGET'`` with only ``CAGLAMPS =
'CuNe+CuAr'``): arc = an arc lamp on (Cu, Ar, Ne, ...) and no continuum lamp;
flat = the tungsten lamp (``W``) on and no arc lamp; bias = IMAGETYP
bias/zero or a 0 s exposure, lamps off; object frames (IMAGETYP object, sky,
target; every lamp off) are ``standard`` within 20' of a star of PypeIt's
flux-standard archives and ``science`` otherwise (exposure times overlap too
much at the INT to separate them). Raw files: ``.fit``, ``.fits``, ``.fts``,
plain or ``.gz``/``.fz``/``.bz2`` (ING's ``r1234567.fit.gz``).

Wavelengths: ``full_template`` with ``int_ids_red_637V_5500.fits`` (from an
unreleased PypeIt branch; its wavelengths are **vacuum**: Ne I peaks match
the vacuum lists to 0.1 A) and the CuI, ArI, ArII, NeI lists. The template
has almost no lines below ~4150 A or above ~7140 A, so the solution is an
extrapolation there.
"""

from __future__ import annotations

import re

import numpy as np

from ..frametype import parse_lamp_list
from ..registry import InstrumentPlugin, ReferenceFile, register

__all__ = ["IDSPlugin", "PLUGIN", "fits_sec_to_numpy"]

PYPEIT_NAME = "int_ids_redplus2"
#: Raw file endings (ING files are ``r1234567.fit``, often ``.fit.gz``).
RAW_EXTENSIONS = tuple(f".{a}{b}" for a in ("fits", "fit", "fts")
                       for b in ("", ".gz", ".fz", ".bz2"))
TEMPLATE = "int_ids_red_637V_5500.fits"
_SPEC_CLASS = None


def fits_sec_to_numpy(sec: str) -> str:
    """``'[x1:x2,y1:y2]'`` (FITS order) -> ``'[y1:y2,x1:x2]'`` (PypeIt's row, column order)."""
    m = re.match(r"^\s*\[\s*([^,\]]+)\s*,\s*([^\]]+)\s*\]\s*$", str(sec))
    if not m:
        raise ValueError(f"not a FITS section: {sec!r}")
    x, y = (p.replace(" ", "") for p in m.groups())
    return f"[{y},{x}]"


def _define_spectrograph():
    """Create (once) and return the PypeIt Spectrograph subclass for IDS Red+2."""
    global _SPEC_CLASS
    if _SPEC_CLASS is not None:
        return _SPEC_CLASS
    from astropy import units
    from astropy.coordinates import EarthLocation
    from astropy.time import Time
    from pypeit import PypeItError, telescopes
    from pypeit.core import framematch, parse
    from pypeit.images import detector_container
    from pypeit.par.pypeitpar import TelescopePar
    from pypeit.spectrographs import spectrograph

    if "INT" not in TelescopePar.valid_telescopes():
        _orig = TelescopePar.valid_telescopes

        def valid_telescopes():
            return list(_orig()) + ["INT"]
        TelescopePar.valid_telescopes = staticmethod(valid_telescopes)

    class INTTelescopePar(telescopes.TelescopePar):
        """Isaac Newton Telescope, Roque de los Muchachos."""

        def __init__(self):
            loc = EarthLocation.of_site("Roque de los Muchachos")
            super().__init__(name="INT", longitude=loc.lon.to(units.deg).value,
                             latitude=loc.lat.to(units.deg).value,
                             elevation=loc.height.to(units.m).value, diameter=2.54,
                             fratio=3.29)

    class INTIDSRedPlus2Spectrograph(spectrograph.Spectrograph):
        """INT/IDS, Red+2 detector (plug-in of xmpspec)."""

        ndet = 1
        name = PYPEIT_NAME
        telescope = INTTelescopePar()
        camera = "IDS"
        header_name = "IDS"
        supported = True
        comment = "INT/IDS Red+2, R632V (xmpspec plug-in)"
        url = "https://www.ing.iac.es/astronomy/instruments/ids/"
        allowed_extensions = list(RAW_EXTENSIONS)

        def init_meta(self):
            self.meta = {}
            self.meta["ra"] = dict(ext=0, card="RA")
            self.meta["dec"] = dict(ext=0, card="DEC")
            self.meta["target"] = dict(ext=0, card="OBJECT")
            self.meta["decker"] = dict(ext=0, card="SLITWID")
            self.meta["binning"] = dict(card=None, compound=True)
            self.meta["mjd"] = dict(card=None, compound=True)
            self.meta["exptime"] = dict(ext=0, card="EXPTIME")
            self.meta["airmass"] = dict(ext=0, card="AIRMASS")
            self.meta["dispname"] = dict(ext=0, card="GRATNAME")
            self.meta["dispangle"] = dict(ext=0, card="CENWAVE", rtol=1e-3)
            self.meta["idname"] = dict(ext=0, card="IMAGETYP")
            self.meta["lampstat01"] = dict(ext=0, card="CAGLAMPS")

        def compound_meta(self, headarr, meta_key):
            if meta_key == "binning":
                hdr = headarr[1] if len(headarr) > 1 and "CCDSUM" in headarr[1] else headarr[0]
                binspat, binspec = (int(v) for v in str(hdr["CCDSUM"]).split())
                return parse.binning2string(binspec, binspat)
            if meta_key == "mjd":
                hdr = headarr[0]
                if "MJD-OBS" in hdr:
                    return float(hdr["MJD-OBS"])
                date = str(hdr["DATE-OBS"])
                if "T" not in date and "UTSTART" in hdr:
                    date = f"{date}T{hdr['UTSTART']}"
                return Time(date, format="isot", scale="utc").mjd
            raise PypeItError(f"Not ready for compound meta {meta_key}")

        def configuration_keys(self):
            return ["dispname", "dispangle", "decker", "binning"]

        def raw_header_cards(self):
            return ["GRATNAME", "CENWAVE", "SLITWID", "CCDSUM"]

        def pypeit_file_keys(self):
            return super().pypeit_file_keys() + ["lampstat01"]

        def get_detector_par(self, det, hdu=None):
            if hdu is None:
                binning, datasec, oscansec = "1,1", None, None
            else:
                binning = self.get_meta_value(self.get_headarr(hdu), "binning")
                h = hdu[1].header if len(hdu) > 1 else hdu[0].header
                datasec = np.atleast_1d(fits_sec_to_numpy(h["TRIMSEC"]))
                oscansec = np.atleast_1d(fits_sec_to_numpy(h["BIASSEC"])) \
                    if "BIASSEC" in h else None
            return detector_container.DetectorContainer(
                binning=binning, det=1, dataext=1, specaxis=0, specflip=False,
                spatflip=False, platescale=0.44, darkcurr=0.0, saturation=65535.0,
                nonlinear=0.95, mincounts=-1e10, numamplifiers=1,
                gain=np.atleast_1d(0.91), ronoise=np.atleast_1d(3.5),
                datasec=datasec, oscansec=oscansec)

        @classmethod
        def default_pypeit_par(cls):
            par = super().default_pypeit_par()
            par["calibrations"]["slitedges"]["sync_predict"] = "nearest"
            par["calibrations"]["slitedges"]["bound_detector"] = True
            par["calibrations"]["wavelengths"]["method"] = "full_template"
            par["calibrations"]["wavelengths"]["reid_arxiv"] = TEMPLATE
            par["calibrations"]["wavelengths"]["lamps"] = ["CuI", "ArI", "ArII", "NeI"]
            par["calibrations"]["wavelengths"]["sigdetect"] = 10.0
            par["calibrations"]["wavelengths"]["n_first"] = 3
            par["calibrations"]["wavelengths"]["n_final"] = 5
            par["calibrations"]["biasframe"]["exprng"] = [None, 0.001]
            par["calibrations"]["darkframe"]["exprng"] = [999999, None]
            par["calibrations"]["pinholeframe"]["exprng"] = [999999, None]
            par["calibrations"]["arcframe"]["exprng"] = [None, 300]
            par["calibrations"]["standardframe"]["exprng"] = [None, 600]
            par["scienceframe"]["exprng"] = [30, None]
            par["sensfunc"]["polyorder"] = 7
            par["fluxcalib"]["extinct_file"] = "lapalmaextinct.dat"
            par["sensfunc"]["UVIS"]["extinct_file"] = "lapalmaextinct.dat"
            return par

        def config_specific_par(self, inp, inp_par=None):
            par = super().config_specific_par(inp, inp_par=inp_par)
            grating = str(self.get_meta_value(inp, "dispname") or "")
            if grating.upper().startswith("R632V"):
                par["calibrations"]["wavelengths"]["reid_arxiv"] = TEMPLATE
            return par

        def check_frame_type(self, ftype, fitstbl, exprng=None):
            # xmpspec's lamp rules (frametype.py): CAGLAMPS decides arcs and flats whatever
            # IMAGETYP says (real ISIS/IDS arcs are often IMAGETYP='object')
            good_exp = framematch.check_frame_exptime(fitstbl["exptime"], exprng)
            idname = np.char.lower(np.asarray(fitstbl["idname"], dtype=str))
            parsed = [parse_lamp_list(v) for v in np.asarray(fitstbl["lampstat01"], dtype=str)]
            arc_on = np.array([bool(a) for a, _ in parsed], dtype=bool)
            cont_on = np.array([bool(c) for _, c in parsed], dtype=bool)
            lamp_off = ~(arc_on | cont_on)
            if ftype in ("science", "standard"):
                obj = good_exp & lamp_off & np.isin(idname, ["object", "sky", "target"])
                std = np.array([_near_standard(ra, dec)
                                for ra, dec in zip(fitstbl["ra"], fitstbl["dec"], strict=True)],
                               dtype=bool)
                return obj & (std if ftype == "standard" else ~std)
            if ftype == "bias":
                zero = np.array([e is not None and float(e) <= 0.0 for e in fitstbl["exptime"]],
                                dtype=bool)
                return good_exp & lamp_off & (np.isin(idname, ["bias", "zero"]) | zero)
            if ftype in ("pixelflat", "trace", "illumflat"):
                return good_exp & cont_on & ~arc_on
            if ftype in ("arc", "tilt"):
                return good_exp & arc_on & ~cont_on
            return np.zeros(len(fitstbl), dtype=bool)

    _SPEC_CLASS = INTIDSRedPlus2Spectrograph
    return _SPEC_CLASS


def _near_standard(ra, dec, tol_arcmin: float = 20.0) -> bool:
    from pypeit.core import standard
    if ra is None or dec is None:
        return False
    try:
        return bool(standard.get_archive_standard(ra, dec, tol=tol_arcmin, check=True))
    except Exception:  # noqa: BLE001
        return False


class IDSPlugin(InstrumentPlugin):
    """INT/IDS Red+2, registered in PypeIt in-process."""

    def register_pypeit(self) -> None:
        """Define the spectrograph class and make PypeIt list it (idempotent)."""
        self.list_in_pypeit(_define_spectrograph())

    def pypeit_parameters(self, context: dict) -> dict:
        """IDS tuning (beyond the spectrograph defaults): none needed so far."""
        return {}


PLUGIN = register(IDSPlugin(
    name="int_ids",
    setup_name="int_ids_r632v",
    pypeit_name=PYPEIT_NAME,
    reference_files=(
        ReferenceFile("arc_lines/reid_arxiv", TEMPLATE,
                      "R632V full_template wavelength calibration (vacuum)"),
        ReferenceFile("standards/calspec", "g191b2b_stiswfcnic_004.fits.gz",
                      "flux standard G191-B2B"),
    ),
    raw_patterns=tuple(f"*{e}" for e in RAW_EXTENSIONS),
    simulator="xmpspec.simulate.night_ids:simulate_night",
    aliases=("ids", "int", "int_ids_r632v", "int_ids_redplus2"),
    standard_names=("G191-B2B",),
    instrume_patterns=(r"^IDS",),
    boxcar_radius=4.0,
))
