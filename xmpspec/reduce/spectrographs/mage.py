"""Magellan/MagE echellette (PypeIt's ``magellan_mage``).

What PypeIt 2.0.1 needs for MagE (measured on simulated nights, see
``../shared/docs/pypeit-notes.md``):

- raw frames: one primary HDU, 2048 spectral columns + 128 overscan, spectral
  axis along the columns and flipped; frames are typed from ``EXPTYPE``
  (exactly ``Bias``, ``Flat``, ``ThAr-Lamp`` or ``Object``); ``Object``
  exposures of at most 20 s are standards, longer ones science;
- PypeIt's setup gives every ``Object`` frame a long list of types (align,
  illumflat, lampoffflats, slitless_pixflat, scattlight, tilt, sky, ...) and
  types arcs ``arc`` only and flats ``pixelflat,trace`` only: the run then
  stops ("No frames of type=illumflat"). :meth:`MagePlugin.fix_frametypes`
  sets arcs ``arc,tilt``, flats ``pixelflat,illumflat,trace``, standards
  ``standard`` and science frames ``science``;
- 12 orders (17 to 6) at fixed spatial positions; wavelengths by
  ``reidentify`` against ``magellan_mage.fits`` with the ``ThAr_MagE`` list
  (vacuum);
- the sensitivity function needs ``skisim/mktrans_zm_10_10.dat`` (UVIS
  algorithm, spectrum beyond 9100 A) and the standard's ``esofil`` spectrum;
  the extinction curve is the one PypeIt finds closest to Las Campanas;
- run time 14-16 min per night on 2 cores, about 10.5 min with
  ``no_local_sky`` and ``skip_second_find`` (xmpspec's defaults here).
"""

from __future__ import annotations

from pathlib import Path

from ..registry import InstrumentPlugin, ReferenceFile, register

__all__ = ["MagePlugin", "PLUGIN", "MAGE_EXPTYPES", "STANDARD_MAX_EXPTIME"]

#: ``EXPTYPE`` values PypeIt's ``magellan_mage`` types (anything else is never used).
MAGE_EXPTYPES = {"Bias": "bias", "Flat": "pixelflat,illumflat,trace", "ThAr-Lamp": "arc,tilt"}
#: Longest ``Object`` exposure PypeIt types as a standard (s).
STANDARD_MAX_EXPTIME = 20.0


def _near_archived_standard(ra, dec) -> bool | None:
    """True/False if (ra, dec) in degrees is within PypeIt's tolerance of an archived star."""
    try:
        from pypeit.core import standard
        return bool(standard.get_archive_standard(float(ra), float(dec), check=True))
    except Exception:  # noqa: BLE001 - missing coordinates or archive: unknown
        return None


class MagePlugin(InstrumentPlugin):
    """Magellan/MagE with PypeIt's ``magellan_mage``.

    PypeIt's first-pass sky is fitted to the whole 10" slit, so an extended
    galaxy centred in it is partly subtracted with the sky; the faint
    continuum of a metal-poor dwarf then has a median S/N per pixel below 1
    in every order and PypeIt's echelle cut (``ech_find_max_snr`` = 1,
    ``ech_find_min_snr`` = 0.3) purges it: no science spectrum. xmpspec
    lowers both cuts (objects are still limited to ``maxnumber_sci`` = 2 per
    order); the second global sky then masks the object. An exposure whose
    continuum still fails the cut keeps PypeIt's most significant candidate
    when its lines are detected (:mod:`xmpspec.reduce.forcefind`). (PypeIt's
    ``user_regions`` sky mask does not work for echelle orders in 2.0.1:
    every order is rejected as 96% masked.) In orders holding bright,
    extended emission lines (Halpha, [OII]) the object mask then covers
    more than 80% of the short slit and PypeIt rejects the order ("Bad fit
    to sky"): xmpspec allows 90% (``max_mask_frac``).
    """

    #: PypeIt ``[reduce][[skysub]] max_mask_frac`` (default 0.8).
    max_mask_frac = 0.9

    #: PypeIt ``[reduce][[findobj]]`` echelle S/N cuts (defaults 1.0 and 0.3).
    ech_find_max_snr = 0.5
    ech_find_min_snr = 0.2

    def check_raw_files(self, raw_dir: Path) -> list[str]:
        """Warn about MagE frames PypeIt cannot type or reduce with xmpspec's set-up."""
        from astropy.io import fits
        out, unknown, specbin = [], [], []
        for p in sorted(Path(raw_dir).iterdir()):
            if not (p.is_file() and p.name.lower().endswith((".fits", ".fits.gz", ".fit"))):
                continue
            try:
                hdr = fits.getheader(p, 0)
            except Exception:  # noqa: BLE001 - reported as unreadable by the screen
                continue
            if not str(hdr.get("INSTRUME", "")).strip().lower().startswith("mage"):
                continue
            exptype = str(hdr.get("EXPTYPE", "")).strip()
            if exptype not in (*MAGE_EXPTYPES, "Object"):
                unknown.append(f"{p.name} ({exptype or 'no EXPTYPE'})")
            binning = str(hdr.get("BINNING", "1x1")).lower().split("x")
            if len(binning) == 2 and binning[1].strip() not in ("1", ""):
                specbin.append(p.name)
        if unknown:
            out.append(f"{len(unknown)} MagE frame(s) with an EXPTYPE PypeIt does not type "
                       f"(expects Bias, Flat, ThAr-Lamp or Object): {', '.join(unknown[:6])}"
                       f"{', ...' if len(unknown) > 6 else ''}; they will not be used")
        if specbin:
            out.append(f"{len(specbin)} MagE frame(s) binned along the spectral axis "
                       f"({', '.join(specbin[:6])}): the ThAr template is unbinned, the "
                       "wavelength calibration may fail")
        return out

    def fix_frametypes(self, table) -> list[str]:
        """Set the frame types PypeIt's MagE reduction needs.

        Arcs become ``arc,tilt``; flats ``pixelflat,illumflat,trace``;
        ``Object`` frames PypeIt types as standards (at most 20 s) stay
        ``standard`` when they point within PypeIt's tolerance (20') of an
        archived flux standard, else they become ``science``; longer
        ``Object`` frames become ``science`` (PypeIt's extra types
        removed).

        Parameters
        ----------
        table : astropy.table.Table
            PypeIt's ``fitstbl.table`` (columns ``filename``, ``frametype``,
            ``idname``, ``exptime``, ``ra``, ``dec``); modified in place
            (``frametype`` and, when present, ``framebit``).

        Returns
        -------
        list of str
            One line per changed frame.
        """
        changes, new = [], []
        for row in table:
            old = str(row["frametype"]) if row["frametype"] is not None else ""
            types = [t for t in old.split(",") if t and t != "None"]
            idname = str(row["idname"]).strip() if "idname" in table.colnames else ""
            if idname in MAGE_EXPTYPES:
                ft = MAGE_EXPTYPES[idname]
            elif "standard" in types:
                near = _near_archived_standard(row["ra"], row["dec"]) \
                    if "ra" in table.colnames else None
                # a short exposure away from every archived flux standard cannot
                # calibrate anything: reduce it as science
                ft = "science" if near is False else "standard"
            elif "science" in types:
                ft = "science"
            else:
                ft = old
            if ft != old:
                changes.append(f"{row['filename']}: frame type '{old or 'None'}' -> '{ft}'")
            new.append(ft)
        if changes:
            table.replace_column("frametype", new)
            if "framebit" in table.colnames:
                from pypeit.core.framematch import FrameTypeBitMask
                bm = FrameTypeBitMask()
                zero = table["framebit"].dtype.type(0)
                table["framebit"] = [bm.turn_on(zero, flag=[t for t in ft.split(",") if t])
                                     if ft and ft != "None" else zero for ft in new]
        return changes

    def pypeit_parameters(self, context: dict) -> dict:
        """MagE tuning: ThAr reidentification, a fast sky/object search, echelle coadd."""
        return {
            "calibrations": {"wavelengths": {"method": "reidentify",
                                             "reid_arxiv": "magellan_mage.fits",
                                             "lamps": "ThAr_MagE"}},
            "reduce": {"skysub": {"no_local_sky": True,
                                  "max_mask_frac": self.max_mask_frac},
                       "findobj": {"skip_second_find": True,
                                   "ech_find_max_snr": self.ech_find_max_snr,
                                   "ech_find_min_snr": self.ech_find_min_snr}},
        }

    def frame_rules(self) -> str:
        """How MagE frames are typed."""
        return ("MagE frames are typed from EXPTYPE (Bias, Flat, ThAr-Lamp, Object); Object "
                f"exposures of at most {STANDARD_MAX_EXPTIME:g} s are flux standards, longer "
                "ones science")


PLUGIN = register(MagePlugin(
    name="mage",
    setup_name="mage",
    pypeit_name="magellan_mage",
    reference_files=(
        ReferenceFile("arc_lines/reid_arxiv", "magellan_mage.fits",
                      "ThAr echelle reidentification template"),
        ReferenceFile("standards/esofil", "ffeige56.dat", "flux standard Feige 56"),
        ReferenceFile("standards/esofil", "fcd32d9927.dat", "flux standard CD-32 9927"),
        ReferenceFile("skisim", "mktrans_zm_10_10.dat",
                      "sky transmission for the UVIS sensitivity function (> 9100 A)"),
    ),
    raw_patterns=("*.fits", "*.fits.gz", "*.fit"),
    simulator="xmpspec.simulate.night_mage:simulate_night",
    aliases=("magellan_mage", "magellan", "mage_echelle"),
    extraction="boxcar",
    boxcar_radius=2.5,
    echelle=True,
    standard_names=("CD-32 9927", "Feige 56"),
    instrume_patterns=(r"^mage",),
))
