"""PypeIt outputs: ``spec1d_*.fits`` (SpecObjs) and coadd1d files (OneSpec).

Both are read with PypeIt's own classes
(:meth:`pypeit.specobjs.SpecObjs.from_fitsfile`,
:meth:`pypeit.onespec.OneSpec.from_file`). PypeIt wavelengths are vacuum
(heliocentric by default); fluxed spectra are in 1e-17 erg/s/cm2/A
(:data:`xmpspec.FLUX_UNIT`), unfluxed ones in counts. PypeIt masks are
True/1 = good; xmpspec masks are True = bad; pixels with inverse variance
<= 0 are masked too.

Object selection in a spec1d file (several objects per slit, several slits):

* ``obj``: PypeIt name (``SPAT0123-SLIT0456-DET01``; echelle ``OBJ0500-DET01``),
  slit-mask object name (``MASKDEF_OBJNAME``), or the target name of the
  header (``TARGET``/``OBJECT``; then the brightest object is the target);
* ``ra``/``dec``: the object whose PypeIt RA/Dec lies within the match radius
  (configuration ``measure.target_match_arcsec``, 2 arcsec), else, if the
  header pointing (``RA``/``DEC``) lies within it, the brightest;
* neither: the brightest object (highest median extracted counts).

Echelle objects are read order by order and joined: orders are sorted by
wavelength and, where two orders overlap, the cut is made at the middle of
the overlap (no resampling, so every pixel keeps its own error).
"""

from __future__ import annotations

import importlib
import logging
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np

from ..errors import InputError, ReferenceDataError
from ..spectrum import FLUX_UNIT, Spectrum
from ._common import (
    angular_sep_arcsec,
    coerce_meta,
    error_from,
    float_or_none,
    header_value,
    match_radius_arcsec,
    open_fits,
    position_deg,
    resolve_medium,
)

__all__ = ["read_spec1d", "read_coadd1d", "list_spec1d_objects", "angular_sep_arcsec",
           "position_deg"]

log = logging.getLogger("xmpspec.io")


def _import_pypeit(path: Path):
    """Import PypeIt's spectrum classes, with an actionable error when offline."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # order matters: importing onespec first hits a circular import in PypeIt 2.0.1
            specobjs = importlib.import_module("pypeit.specobjs")
            onespec = importlib.import_module("pypeit.onespec")
    except ImportError as exc:
        from ..extras import missing_extra
        raise ReferenceDataError(missing_extra(exc, "reading PypeIt files") or
                                 f"PypeIt cannot be imported ({exc})", path) from None
    except Exception as exc:  # URLError when astropy's site list is not cached
        if "sites.json" in str(exc) or type(exc).__name__ in ("URLError", "OSError"):
            raise ReferenceDataError(
                "PypeIt cannot be imported offline: astropy's observatory list "
                "(coordinates/sites.json) is not in the download cache; run 'xmpspec cache "
                "import <folder with coordinates/sites.json, e.g. shared/astropy-data>' first "
                f"({type(exc).__name__})", path) from None
        raise ReferenceDataError(f"PypeIt cannot be imported ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:160] if str(exc) else ''})",
                                 path) from None
    return onespec, specobjs


def _norm(name) -> str:
    return "".join(str(name).split()).lower()


def _instrument_meta(pyp_spec: str | None, header) -> dict:
    meta: dict = {}
    if pyp_spec:
        meta["pypeit_spectrograph"] = str(pyp_spec)
        try:
            from ..instruments import get_setup
            s = get_setup(pyp_spec)
            meta["setup"] = s.name
            meta["instrument"] = s.label
        except Exception:  # unknown to xmpspec: keep PypeIt's names
            pass
    if "instrument" not in meta:
        inst = header_value(header, "INSTRUME") or pyp_spec
        if inst:
            meta["instrument"] = str(inst)
    return meta


def _header_meta(header) -> dict:
    meta: dict = {}
    target = header_value(header, "TARGET", "OBJECT")
    if target is not None:
        meta["target"] = str(target)
    for key, cards in (("exptime", ("EXPTIME",)), ("airmass", ("AIRMASS",)),
                       ("mjd", ("MJD",))):
        v = float_or_none(header_value(header, *cards))
        if v is not None:
            meta[key] = v
    date = header_value(header, "DATETIME", "DATE-OBS")
    if date is not None:
        meta["date_obs"] = str(date)
    for key, card in (("dispname", "DISPNAME"), ("decker", "DECKER"),
                      ("binning", "BINNING"), ("raw_file", "FILENAME")):
        v = header_value(header, card)
        if v is not None:
            meta[key] = str(v)
    ra, dec = header_value(header, "RA"), header_value(header, "DEC")
    if ra is not None and dec is not None:
        try:
            meta["header_ra"], meta["header_dec"] = position_deg(ra, dec, None)
        except InputError:
            pass
    return meta


# ------------------------------------------------------------------- spec1d
class _Candidate:
    """One physical object of a spec1d file (one SpecObj, or the orders of an echelle object)."""

    def __init__(self, name: str, sobjs: list):
        self.name = name
        self.sobjs = sobjs

    @property
    def first(self):
        return self.sobjs[0]

    def attr(self, key):
        for s in self.sobjs:
            v = s[key]
            if v is not None:
                return v
        return None

    def has(self, extraction: str, fluxed: bool) -> bool:
        col = f"{extraction}_{'FLAM' if fluxed else 'COUNTS'}"
        return all(s[f"{extraction}_WAVE"] is not None and s[col] is not None
                   for s in self.sobjs)

    def available(self) -> list[str]:
        out = []
        for ext in ("BOX", "OPT"):
            for fl, label in ((True, "fluxed"), (False, "counts")):
                if self.has(ext, fl):
                    out.append(f"{ext} {label}")
        return out

    def brightness(self, extraction: str) -> float:
        """Median extracted counts over good pixels (the extraction asked for, else any)."""
        for ext in (extraction, "OPT" if extraction == "BOX" else "BOX"):
            vals = []
            for s in self.sobjs:
                c = s[f"{ext}_COUNTS"]
                if c is None:
                    c = s[f"{ext}_FLAM"]
                if c is None:
                    continue
                m = s[f"{ext}_MASK"]
                c = np.asarray(c, float)
                good = np.isfinite(c) if m is None else (np.asarray(m, bool) & np.isfinite(c))
                if good.any():
                    vals.append(c[good])
            if vals:
                return float(np.median(np.concatenate(vals)))
        s2n = self.attr("S2N")
        return float(s2n) if s2n is not None else -np.inf

    def position(self):
        ra, dec = self.attr("RA"), self.attr("DEC")
        if ra is None or dec is None:
            return None
        ra, dec = float_or_none(ra), float_or_none(dec)
        if ra is None or dec is None:
            return None
        return ra, dec

    def describe(self) -> str:
        parts = [self.name]
        mname = self.attr("MASKDEF_OBJNAME")
        if mname:
            parts.append(f"'{mname}'")
        pos = self.position()
        if pos:
            parts.append(f"RA={pos[0]:.5f} Dec={pos[1]:.5f}")
        return " ".join(parts)


def _candidates(sobjs) -> list[_Candidate]:
    groups: dict[str, list] = {}
    for s in sobjs.specobjs:
        if s is None:
            continue
        if s.PYPELINE == "Echelle":
            key = s.ECH_NAME or f"OBJ{s.ECH_OBJID}-{s.DET}"
        else:
            key = s.NAME
        groups.setdefault(str(key), []).append(s)
    return [_Candidate(k, v) for k, v in groups.items()]


def list_spec1d_objects(path: str | Path) -> list[dict]:
    """Objects of a PypeIt spec1d file (name, mask name, RA/Dec, S/N, extractions).

    Parameters
    ----------
    path : path-like
        A ``spec1d_*.fits`` file.

    Returns
    -------
    list of dict
        One dict per object, brightest first.
    """
    path = Path(path)
    sobjs, header = _load_spec1d(path)
    cands = _candidates(sobjs)
    out = []
    for c in sorted(cands, key=lambda c: -c.brightness("BOX")):
        pos = c.position()
        out.append({"name": c.name, "maskdef_objname": c.attr("MASKDEF_OBJNAME"),
                    "ra": None if pos is None else pos[0],
                    "dec": None if pos is None else pos[1],
                    "s2n": float_or_none(c.attr("S2N")),
                    "extractions": c.available(), "n_orders": len(c.sobjs),
                    "target": header_value(header, "TARGET", "OBJECT")})
    return out


def _load_spec1d(path: Path):
    with open_fits(path) as hdul:  # corrupt / truncated files fail here, named
        header = hdul[0].header.copy()
        if len(hdul) < 2:
            raise InputError("PypeIt spec1d file has no object extensions (no objects "
                             "were extracted)", path)
        n_obj_hdus = sum(1 for h in hdul[1:] if "DETECTOR" not in (h.name or ""))
        nspec = header.get("NSPEC")
        if isinstance(nspec, int) and n_obj_hdus < nspec:
            raise InputError(f"truncated PypeIt spec1d file: header NSPEC={nspec} but only "
                             f"{n_obj_hdus} object extension(s) present", path)
    _, specobjs = _import_pypeit(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sobjs = specobjs.SpecObjs.from_fitsfile(str(path), chk_version=False)
    except Exception as exc:
        raise InputError(f"cannot read PypeIt spec1d file ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''})",
                         path) from None
    if sobjs.nobj == 0:
        raise InputError("PypeIt spec1d file holds no objects", path)
    return sobjs, header


def _select(cands: list[_Candidate], header, obj, ra, dec, extraction: str,
            path: Path, radius: float) -> tuple[_Candidate, str]:
    """Choose one object; return it and how it was chosen."""
    present = "; ".join(c.describe() for c in cands)
    target = header_value(header, "TARGET", "OBJECT")
    by_brightness = sorted(cands, key=lambda c: -c.brightness(extraction))
    if obj is not None:
        key = _norm(obj)
        hits = [c for c in cands if key in (_norm(c.name), _norm(c.attr("NAME") or ""))
                or (c.attr("MASKDEF_OBJNAME") and key == _norm(c.attr("MASKDEF_OBJNAME")))
                or any(key == _norm(s.NAME) for s in c.sobjs)]
        if len(hits) == 1:
            return hits[0], "name"
        if len(hits) > 1:
            return sorted(hits, key=lambda c: -c.brightness(extraction))[0], "name"
        if target is not None and key == _norm(target):
            return by_brightness[0], "target"
        raise InputError(f"object '{obj}' not found; objects present (target "
                         f"'{target}'): {present}", path)
    if ra is not None or dec is not None:
        if ra is None or dec is None:
            raise InputError("give both RA and Dec to select an object by position", path)
        ra_d, dec_d = position_deg(ra, dec, path)
        with_pos = [(c, angular_sep_arcsec(ra_d, dec_d, *c.position()))
                    for c in cands if c.position() is not None]
        close = sorted([(c, s) for c, s in with_pos if s <= radius],
                       key=lambda cs: cs[1])
        if close:
            return close[0][0], "position"
        hra, hdec = header_value(header, "RA"), header_value(header, "DEC")
        if not with_pos and hra is not None and hdec is not None:
            h_ra, h_dec = position_deg(hra, hdec, path)
            sep = angular_sep_arcsec(ra_d, dec_d, h_ra, h_dec)
            if sep <= radius:
                return by_brightness[0], "pointing"
            raise InputError(
                f"no object within {radius:g} arcsec of RA={ra_d:.6f} "
                f"Dec={dec_d:.6f}: objects have no RA/Dec and the pointing (target "
                f"'{target}', RA={h_ra:.6f} Dec={h_dec:.6f}) is {sep:.1f} arcsec away; "
                f"objects present: {present}", path)
        raise InputError(f"no object within {radius:g} arcsec of RA={ra_d:.6f} "
                         f"Dec={dec_d:.6f}; objects present: {present}", path)
    return by_brightness[0], "brightest"


def _order_arrays(s, extraction: str, fluxed: bool, path: Path):
    fl = "FLAM" if fluxed else "COUNTS"
    wave = s[f"{extraction}_WAVE"]
    flux = s[f"{extraction}_{fl}"]
    ivar = s[f"{extraction}_{fl}_IVAR"]
    sig = s[f"{extraction}_{fl}_SIG"]
    gpm = s[f"{extraction}_MASK"]
    if wave is None or flux is None:
        raise InputError(f"object {s.NAME} has no {extraction}_WAVE/{extraction}_{fl} column",
                         path)
    if ivar is not None:
        err, bad = error_from("ivar", ivar)
    elif sig is not None:
        err, bad = error_from("sigma", sig)
    else:
        raise InputError(f"object {s.NAME} has neither {extraction}_{fl}_IVAR nor "
                         f"{extraction}_{fl}_SIG (no errors)", path)
    wave = np.asarray(wave, float)
    flux = np.asarray(flux, float)
    if not (wave.shape == flux.shape == err.shape):
        raise InputError(f"object {s.NAME}: {extraction} wave/flux/error lengths differ", path)
    mask = bad.copy()
    if gpm is not None:
        gpm = np.asarray(gpm)
        if gpm.shape != wave.shape:
            raise InputError(f"object {s.NAME}: {extraction}_MASK length differs from the "
                             "spectrum", path)
        mask |= ~gpm.astype(bool)
    keep = np.isfinite(wave) & (wave > 0)  # PypeIt leaves wave = 0 where nothing was extracted
    fwhm = s[f"{extraction}_FWHM"]
    fwhm = None if fwhm is None else np.asarray(fwhm, float)[keep]
    return wave[keep], flux[keep], err[keep], mask[keep], fwhm


def _join_orders(orders: list[tuple], path: Path):
    """Join echelle orders blue to red, cutting overlaps at their middle."""
    orders = sorted(orders, key=lambda o: np.nanmedian(o[0]))
    pieces = []
    lo_cut = -np.inf
    for i, (w, f, e, m, fw) in enumerate(orders):
        if w.size == 0:
            continue
        hi_cut = np.inf
        if i + 1 < len(orders) and orders[i + 1][0].size:
            nxt = orders[i + 1][0]
            if nxt.min() < w.max():  # overlap: cut at its middle
                hi_cut = 0.5 * (nxt.min() + w.max())
            else:
                hi_cut = w.max() + 0.5 * (nxt.min() - w.max()) + 1e-9
        sel = (w >= lo_cut) & (w < hi_cut)
        pieces.append((w[sel], f[sel], e[sel], m[sel], None if fw is None else fw[sel]))
        lo_cut = hi_cut
    if not pieces:
        raise InputError("echelle object has no extracted pixels", path)
    cat = [np.concatenate([p[k] for p in pieces]) for k in range(4)]
    fwhm = None if any(p[4] is None for p in pieces) else np.concatenate([p[4] for p in pieces])
    return (*cat, fwhm)


def read_spec1d(path: str | Path, obj: str | None = None, ra=None, dec=None,
                extraction: str = "BOX", fluxed: bool = True, medium: str | None = None,
                match_arcsec: float | None = None, **_) -> Spectrum:
    """Read one object from a PypeIt ``spec1d_*.fits`` file.

    Parameters
    ----------
    path : path-like
        The spec1d file.
    obj : str, optional
        PypeIt name, slit-mask object name or header target name.
    ra, dec : float, str or Quantity, optional
        Select by position; degrees if plain numbers.
    match_arcsec : float, optional
        Match radius (default: configuration ``measure.target_match_arcsec``, 2 arcsec).
    extraction : {'BOX', 'OPT'}
        Boxcar or optimal extraction.
    fluxed : bool
        ``*_FLAM`` (1e-17 erg/s/cm2/A) if true, ``*_COUNTS`` otherwise.
    medium : str, optional
        Override PypeIt's vacuum wavelengths (only if you know better).

    Returns
    -------
    Spectrum
        ``meta`` holds ``name`` (header target for the target object, else the
        PypeIt name), ``pypeit_name``, ``ra``/``dec``, ``instrument``,
        ``setup``, ``exptime``, ``airmass``, ``date_obs``, ``extraction``,
        ``fluxed``, ``selected_by``, ``det``, ``slitid``/``orders``, ``s2n``,
        ``fwhm`` (median spectral FWHM, Angstrom) when PypeIt measured it.

    Raises
    ------
    InputError
        Corrupt file, object not found (message lists the objects), requested
        extraction or fluxing absent (message lists what is available).
    ReferenceDataError
        PypeIt cannot be imported (offline without the astropy site list).
    """
    path = Path(path)
    extraction = extraction.upper()
    sobjs, header = _load_spec1d(path)
    cands = _candidates(sobjs)
    cand, how = _select(cands, header, obj, ra, dec, extraction, path,
                        match_radius_arcsec(match_arcsec))
    if not cand.has(extraction, fluxed):
        what = f"{extraction} {'fluxed (*_FLAM)' if fluxed else 'counts'}"
        avail = ", ".join(cand.available()) or "none"
        hint = " (not flux-calibrated: read counts with fluxed=False / --counts)" \
            if fluxed and cand.has(extraction, False) else ""
        raise InputError(f"object {cand.name} has no {what} extraction{hint}; available: "
                         f"{avail}", path)
    orders = [_order_arrays(s, extraction, fluxed, path) for s in cand.sobjs]
    if len(orders) == 1:
        wave, flux, err, mask, fwhm = orders[0]
    else:
        wave, flux, err, mask, fwhm = _join_orders(orders, path)
    if wave.size < 2:
        raise InputError(f"object {cand.name}: fewer than 2 extracted pixels", path)
    unit = FLUX_UNIT if fluxed else u.count
    brightest = max(cands, key=lambda c: c.brightness(extraction)) is cand
    target = header_value(header, "TARGET", "OBJECT")
    mname = cand.attr("MASKDEF_OBJNAME")
    if mname:
        name = str(mname)
    elif target is not None and (how in ("target", "pointing") or brightest):
        name = str(target)
    else:
        name = cand.name
    meta = {"name": name, "pypeit_name": cand.name, "source_file": str(path),
            "format": "pypeit-spec1d", "extraction": extraction, "fluxed": bool(fluxed),
            "selected_by": how, "n_objects_in_file": len(cands)}
    meta.update(_header_meta(header))
    meta.update(_instrument_meta(cand.attr("PYP_SPEC") or header_value(header, "PYP_SPEC"),
                                 header))
    pos = cand.position()
    if pos is not None:
        meta["ra"], meta["dec"] = pos
    elif "header_ra" in meta:
        meta["ra"], meta["dec"] = meta["header_ra"], meta["header_dec"]
    det = cand.attr("DET")
    if det is not None:
        meta["det"] = str(det)
    if cand.first.PYPELINE == "Echelle":
        meta["orders"] = [int(s.ECH_ORDER) for s in cand.sobjs if s.ECH_ORDER is not None]
    else:
        slitid = cand.attr("SLITID")
        if slitid is not None:
            meta["slitid"] = int(slitid)
    for key, attr in (("s2n", "S2N"), ("vel_corr", "VEL_CORR"), ("spat_fwhm_arcsec",
                                                                  "SPAT_FWHM"),
                      ("box_radius_arcsec", "BOX_R_ASEC")):
        v = float_or_none(cand.attr(attr))
        if v is not None:
            meta[key] = v
    vtype = cand.attr("VEL_TYPE")
    if vtype:
        meta["vel_type"] = str(vtype)
    if fwhm is not None and np.any(np.isfinite(fwhm) & (fwhm > 0)):
        meta["fwhm"] = float(np.median(fwhm[np.isfinite(fwhm) & (fwhm > 0)]))
    if how in ("brightest", "target", "pointing") and len(cands) > 1:
        others = ", ".join(c.name for c in cands if c is not cand)
        log.warning("%s: %d objects in the file; reading the brightest, %s (others: %s; "
                    "choose one with obj= / --object)", path, len(cands), cand.name, others)
    return Spectrum(wavelength=wave * u.AA, flux=flux * unit, error=err * unit, mask=mask,
                    medium=resolve_medium(medium, "vacuum", path), meta=coerce_meta(meta))


# ------------------------------------------------------------------ coadd1d
def read_coadd1d(path: str | Path, obj: str | None = None, ra=None, dec=None,
                 extraction: str = "BOX", fluxed: bool = True, medium: str | None = None,
                 **_) -> Spectrum:
    """Read a PypeIt coadd1d spectrum (``OneSpec``).

    Parameters
    ----------
    path : path-like
        The coadd1d FITS file.
    obj, ra, dec : optional
        Checked against the file's single object by :func:`xmpspec.io.read_spectrum`.
    extraction, fluxed : optional
        Ignored: a coadd holds one extraction, recorded in ``meta['extraction']``
        and ``meta['fluxed']`` from the file (a mismatch is logged).
    medium : str, optional
        Override PypeIt's vacuum wavelengths.

    Returns
    -------
    Spectrum
        Wavelengths from the ``wave`` column (pixels with ``wave <= 0``, which
        received no data, are dropped); if those are not increasing, the
        ``wave_grid_mid`` grid is used.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        header = hdul[0].header.copy()
        if len(hdul) < 2:
            raise InputError("PypeIt coadd1d file has no SPECTRUM extension", path)
    onespec, _ = _import_pypeit(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec = onespec.OneSpec.from_file(str(path), chk_version=False)
    except Exception as exc_file:
        # from_file also loads the spectrograph, which fails for plug-in spectrographs
        # unknown to this interpreter: read the data model directly.
        try:
            from astropy.io import fits
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with fits.open(path) as hdul:
                    spec = onespec.OneSpec.from_hdu(hdul, chk_version=False)
            log.debug("%s: OneSpec.from_file failed (%s); read the data model directly",
                      path, exc_file)
        except Exception as exc:
            raise InputError(f"cannot read PypeIt coadd1d file ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else ''})",
                             path) from None
    if spec.flux is None or spec.wave is None:
        raise InputError("PypeIt coadd1d file lacks wave or flux", path)
    wave = np.asarray(spec.wave, float)
    flux = np.asarray(spec.flux, float)
    if spec.ivar is not None:
        err, bad = error_from("ivar", spec.ivar)
    elif spec.sigma is not None:
        err, bad = error_from("sigma", spec.sigma)
    else:
        raise InputError("PypeIt coadd1d file has neither ivar nor sigma (no errors)", path)
    if not (wave.shape == flux.shape == err.shape):
        raise InputError(f"wave/flux/error lengths differ ({wave.size}, {flux.size}, "
                         f"{err.size})", path)
    mask = bad.copy()
    if spec.mask is not None:
        gpm = np.asarray(spec.mask)
        if gpm.shape != wave.shape:
            raise InputError("mask length differs from the spectrum", path)
        mask |= gpm == 0
    keep = np.isfinite(wave) & (wave > 0)
    wave_col = "wave"
    if keep.sum() < 2 or not np.all(np.diff(wave[keep]) > 0):
        grid = None if spec.wave_grid_mid is None else np.asarray(spec.wave_grid_mid, float)
        if grid is not None and grid.shape == wave.shape and np.all(np.diff(grid) > 0):
            wave, keep, wave_col = grid, np.ones(wave.size, bool), "wave_grid_mid"
            mask |= ~(np.isfinite(np.asarray(spec.wave, float)) & (np.asarray(spec.wave) > 0))
    wave, flux, err, mask = wave[keep], flux[keep], err[keep], mask[keep]
    file_fluxed = True if spec.fluxed is None else bool(spec.fluxed)
    if file_fluxed != bool(fluxed):
        log.info("%s: coadd is %s; reading it as such", path,
                 "fluxed" if file_fluxed else "in counts")
    ext_mode = spec.ext_mode or header_value(header, "EXT_MODE")
    if ext_mode and str(ext_mode).upper() != extraction.upper():
        log.info("%s: coadd holds the %s extraction", path, ext_mode)
    unit = FLUX_UNIT if file_fluxed else u.count
    meta = {"source_file": str(path), "format": "pypeit-coadd1d", "fluxed": file_fluxed,
            "wave_column": wave_col}
    if ext_mode:
        meta["extraction"] = str(ext_mode).upper()
    meta.update(_header_meta(header))
    if "target" in meta:
        meta["name"] = meta["target"]
    meta.update(_instrument_meta(spec.PYP_SPEC or header_value(header, "PYP_SPEC"), header))
    ra_h = header_value(header, "RA_OBJ", "RA")
    dec_h = header_value(header, "DEC_OBJ", "DEC")
    if ra_h is not None and dec_h is not None:
        try:
            meta["ra"], meta["dec"] = position_deg(ra_h, dec_h, path)
        except InputError:
            log.warning("%s: cannot parse header RA/Dec (%r, %r)", path, ra_h, dec_h)
    return Spectrum(wavelength=wave * u.AA, flux=flux * unit, error=err * unit, mask=mask,
                    medium=resolve_medium(medium, "vacuum", path), meta=coerce_meta(meta))
