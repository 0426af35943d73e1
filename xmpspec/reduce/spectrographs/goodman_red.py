"""SOAR/Goodman red camera, 400 l/mm (M1 and M2): a PypeIt plug-in over ``soar_goodman_red``.

Obstacles of PypeIt 2.0.1's ``soar_goodman_red``, measured on the real
red-camera arcs of ``../shared/data/goodman_red_real_arcs`` (issue 13), and
what :class:`SOARGoodmanRedAnySpectrograph` (``soar_goodman_red_xmpspec``,
registered in-process like the INT/IDS plug-in) does about each:

- PypeIt reads only fpack ``.fz`` files with the image in extension 1; older
  and hand-saved frames are single-extension ``.fits``. The plug-in reads
  ``.fits``/``.fit``/``.fts``, plain or ``.gz``/``.fz``/``.bz2``, with the
  image and cards in extension 1 when there is one, else in the primary HDU;
- ``get_detector_par`` accepts only 2x2 binning. The plug-in takes any
  binning from CCDSUM, and any region of interest (rows read out): the data
  section is every column from unbinned column 51 on, the prescan columns
  6-48 are the overscan (the first columns of a read-out rise to ~1000 ADU);
- old headers spell the set-up ``GRATING = 'SYZY_400'`` and
  ``WAVMODE = '400 m1'``; PypeIt chooses the 400 l/mm template only for
  ``400_SYZY``: the plug-in normalises GRATING (``SYZY_400``, ``400``,
  ``400_SYZY``, any case -> ``400_SYZY``) and WAVMODE (``400 m1`` ->
  ``400_M1``), so both spellings form one configuration;
- arc lines saturate at about 56,000 ADU (measured: the brightest lines of
  both arcs flatten at 55,760-56,650 ADU), not 65535: ``saturation`` is
  56,000;
- PypeIt needs a trace frame (flat) or slit edges given by hand to find the
  slit: a night without flats is flagged by the night log with how to proceed.

Frame types follow PypeIt's lamp rules for Goodman (LAMP_* cards) and
xmpspec's lamp rules (:mod:`xmpspec.reduce.frametype`): the real arcs carry
``OBSTYPE = 'FOCUS'`` and are typed arcs from ``LAMP_HGA``/``LAMP_NE``.
Science frames: OBSTYPE ``SPECTRUM`` or ``OBJECT`` with every lamp off.

Wavelengths: ``full_template`` with PypeIt's ``soar_goodman_red_400_SYZY.fits``
(lamps NeI, ArI, HgI). On the two real arcs (1D cut of the slit centre,
:func:`xmpspec.reduce.verify.arc_wavelength_solution`) the fit reaches
about 0.03 pixel RMS (``tests/test_goodman_red.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..registry import InstrumentPlugin, ReferenceFile, register

__all__ = ["GoodmanRedPlugin", "PLUGIN", "normalise_grating", "normalise_mode", "PYPEIT_NAME",
           "RAW_EXTENSIONS", "SATURATION_ADU"]

PYPEIT_NAME = "soar_goodman_red_xmpspec"
TEMPLATE = "soar_goodman_red_400_SYZY.fits"
#: Raw file endings the plug-in reads.
RAW_EXTENSIONS = tuple(f".{a}{b}" for a in ("fits", "fit", "fts")
                       for b in ("", ".gz", ".fz", ".bz2")) + (".fz",)
#: Counts (ADU) where the red camera's arc lines saturate (measured ~56k).
SATURATION_ADU = 56000.0
#: First data column and the prescan columns used as overscan (unbinned, 1-based).
FIRST_DATA_COLUMN = 51
PRESCAN_COLUMNS = (6, 48)
_SPEC_CLASS = None


def normalise_grating(value) -> str:
    """GRATING spellings of the 400 l/mm grating -> PypeIt's ``400_SYZY`` (others unchanged)."""
    text = str(value or "").strip()
    if re.fullmatch(r"(?i)(SYZY[_ ]?400|400[_ ]?SYZY|400)", text):
        return "400_SYZY"
    return text


def normalise_mode(value) -> str:
    """WAVMODE ``'400 m1'`` / ``'400_M1'`` -> ``'400_M1'`` (upper case, underscores)."""
    text = str(value or "").strip()
    return re.sub(r"[\s_]+", "_", text).upper()


def _define_spectrograph():
    """Create (once) and return the PypeIt spectrograph class of the plug-in."""
    global _SPEC_CLASS
    if _SPEC_CLASS is not None:
        return _SPEC_CLASS
    from pypeit.core import framematch
    from pypeit.images import detector_container
    from pypeit.spectrographs.soar_goodman import SOARGoodmanRedSpectrograph

    class SOARGoodmanRedAnySpectrograph(SOARGoodmanRedSpectrograph):
        """SOAR/Goodman red camera, any binning, ROI and file layout (xmpspec plug-in)."""

        name = PYPEIT_NAME
        allowed_extensions = list(RAW_EXTENSIONS)
        comment = "xmpspec plug-in: 400_SYZY M1/M2, any binning, .fits or .fz"

        def init_meta(self):
            super().init_meta()
            self.meta["dispname"] = dict(card=None, compound=True)
            self.meta["mode"] = dict(card=None, compound=True)

        def get_headarr(self, inp, strict=True):
            hdrs = super().get_headarr(inp, strict=strict)
            if hdrs is not None and len(hdrs) == 1:
                hdrs = [hdrs[0], hdrs[0]]       # single-extension file: cards in the primary
            return hdrs

        def compound_meta(self, headarr, meta_key):
            if meta_key == "dispname":
                return normalise_grating(headarr[1].get("GRATING"))
            if meta_key == "mode":
                return normalise_mode(headarr[1].get("WAVMODE"))
            return super().compound_meta(headarr, meta_key)

        def get_detector_par(self, det, hdu=None):
            if hdu is None:
                return super().get_detector_par(det, hdu=None)
            ext = 1 if len(hdu) > 1 and hdu[1].data is not None else 0
            h = hdu[ext].header
            binning = self.get_meta_value(self.get_headarr(hdu), "binning")
            return detector_container.DetectorContainer(
                binning=binning, det=1, dataext=ext, specaxis=1, specflip=False,
                spatflip=False, platescale=0.15, darkcurr=0.0, saturation=SATURATION_ADU,
                nonlinear=1.0, mincounts=-1e10, numamplifiers=1,
                gain=np.atleast_1d(float(h.get("GAIN", 1.48))),
                ronoise=np.atleast_1d(float(h.get("RDNOISE", 3.89))),
                datasec=np.atleast_1d(f"[:,{FIRST_DATA_COLUMN}:]"),
                oscansec=np.atleast_1d(f"[:,{PRESCAN_COLUMNS[0]}:{PRESCAN_COLUMNS[1]}]"))

        @classmethod
        def default_pypeit_par(cls):
            par = super().default_pypeit_par()
            par["calibrations"]["wavelengths"]["method"] = "full_template"
            par["calibrations"]["wavelengths"]["reid_arxiv"] = TEMPLATE
            return par

        def check_frame_type(self, ftype, fitstbl, exprng=None):
            if ftype in ("science", "standard"):
                from pypeit.core import standard
                good_exp = framematch.check_frame_exptime(fitstbl["exptime"], exprng)
                idname = np.char.upper(np.asarray(fitstbl["idname"], dtype=str))
                std = np.array([bool(standard.get_archive_standard(ra, dec, tol=10., check=True))
                                for ra, dec in zip(fitstbl["ra"], fitstbl["dec"], strict=True)],
                               dtype=bool)
                base = good_exp & np.isin(idname, ["SPECTRUM", "OBJECT"]) \
                    & self.lamps(fitstbl, "off")
                return base & (std if ftype == "standard" else ~std)
            return super().check_frame_type(ftype, fitstbl, exprng=exprng)

    _SPEC_CLASS = SOARGoodmanRedAnySpectrograph
    return _SPEC_CLASS


class GoodmanRedPlugin(InstrumentPlugin):
    """SOAR/Goodman red camera, 400 l/mm, registered in PypeIt in-process."""

    def register_pypeit(self) -> None:
        """Define the spectrograph class and make PypeIt list it (idempotent)."""
        self.list_in_pypeit(_define_spectrograph())

    def check_raw_files(self, raw_dir: Path) -> list[str]:
        """Report old GRATING/WAVMODE spellings (normalised) and gratings without a template."""
        from ..frametype import read_headers
        notes, other, blue = [], [], []
        for p in sorted(Path(raw_dir).iterdir()):
            if not (p.is_file() and p.name.lower().endswith(RAW_EXTENSIONS)):
                continue
            try:
                hdrs = read_headers(p)
            except Exception:  # noqa: BLE001 - reported as unreadable by the screen
                continue
            if any(str(h.get("INSTCONF", "")).strip().lower() == "blue" for h in hdrs):
                blue.append(p.name)
            h = hdrs[1] if len(hdrs) > 1 and "GRATING" in hdrs[1] else hdrs[0]
            grat = str(h.get("GRATING", "")).strip()
            if not grat:
                continue
            norm = normalise_grating(grat)
            if norm != "400_SYZY":
                other.append(f"{p.name} ({grat})")
            elif grat != norm:
                notes.append(p.name)
        out = []
        if blue:
            out.append(f"{len(blue)} frame(s) from the blue camera (INSTCONF = 'Blue': "
                       f"{', '.join(blue[:4])}{', ...' if len(blue) > 4 else ''}): reduce them "
                       "with --instrument goodman")
        if notes:
            out.append(f"{len(notes)} frame(s) spell the grating the old way "
                       f"({', '.join(notes[:4])}{', ...' if len(notes) > 4 else ''}): "
                       "read as GRATING = '400_SYZY'")
        if other:
            out.append(f"{len(other)} frame(s) with a grating other than 400 l/mm "
                       f"({', '.join(other[:4])}): no xmpspec template, PypeIt falls back "
                       "to holy-grail")
        return out

    def frame_rules(self) -> str:
        """How the red camera's frames are typed."""
        return ("Goodman red frames are typed by their lamps (LAMP_* cards); science frames "
                "have OBSTYPE SPECTRUM or OBJECT with every lamp off")


PLUGIN = register(GoodmanRedPlugin(
    name="goodman_red",
    setup_name="goodman_red_400",
    pypeit_name=PYPEIT_NAME,
    reference_files=(
        ReferenceFile("arc_lines/reid_arxiv", TEMPLATE,
                      "400 l/mm red-camera full_template wavelength calibration (M1, M2)"),
    ),
    raw_patterns=tuple(f"*{e}" for e in RAW_EXTENSIONS),
    aliases=("soar_goodman_red", "goodman_red_400", "goodman_red_camera"),
    standard_names=("LTT 3864",),
    instrume_patterns=("ghts", "goodman"),
    boxcar_radius=4.0,
))
