"""Match spectra to the rows of a targets table (science.md "Targets table").

A spectrum belongs to the row whose ``name`` equals the spectrum's object
name (header OBJECT, PypeIt's target name, or the file name without its
extension), or else whose ``ra``/``dec`` lies within the match radius
(2 arcsec) of the spectrum's position.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table

from ..errors import InputError
from ..tableio import read_table, require_columns

__all__ = ["read_targets", "match_target"]


def _norm(name) -> str:
    return "".join(str(name).split()).lower()


def read_targets(path: str | Path) -> Table:
    """Read a targets table (CSV, ECSV, FITS); ``name`` is required.

    Raises
    ------
    InputError
        Unreadable file, missing ``name`` column, or ``ra`` without ``dec``.
    """
    t = read_table(path)
    require_columns(t, ["name"], path)
    if ("ra" in t.colnames) != ("dec" in t.colnames):
        raise InputError("has only one of the 'ra'/'dec' columns", path)
    return t


def _value(v):
    if np.ma.is_masked(v):
        return None
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _positions(targets: Table) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec columns in degrees (numbers, or sexagesimal strings: RA in hours)."""
    try:
        return (np.ma.filled(np.ma.asarray(targets["ra"], float), np.nan),
                np.ma.filled(np.ma.asarray(targets["dec"], float), np.nan))
    except (TypeError, ValueError):
        from ..io._common import position_deg
        ra, dec = [], []
        for r, d in zip(targets["ra"], targets["dec"], strict=True):
            if np.ma.is_masked(r) or np.ma.is_masked(d) or str(r).strip() in ("", "--"):
                ra.append(np.nan)
                dec.append(np.nan)
                continue
            a, b = position_deg(_value(r), _value(d), None)
            ra.append(a)
            dec.append(b)
        return np.array(ra, float), np.array(dec, float)


def match_target(spec_name: str | None, ra: float | None, dec: float | None, spec_file: str | None,
                 targets: Table, radius_arcsec: float = 2.0) -> dict | None:
    """The targets row for one spectrum, as a dict (None if no row matches).

    Parameters
    ----------
    spec_name : str
        Object name of the spectrum.
    ra, dec : float, optional
        Position of the spectrum (deg).
    spec_file : str, optional
        File name; its stem (without extensions) is also tried as a name.
    targets : Table
        From :func:`read_targets`.
    radius_arcsec : float
        Position match radius.
    """
    names = [_norm(n) for n in targets["name"]]
    cands = []
    if spec_name:
        cands.append(_norm(spec_name))
    if spec_file:
        cands.append(_norm(Path(spec_file).name.split(".")[0]))
    for c in cands:
        if c in names:
            i = names.index(c)
            return {k: _value(targets[k][i]) for k in targets.colnames}
    if ra is None or dec is None or "ra" not in targets.colnames:
        return None
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    tra, tdec = _positions(targets)
    ok = np.isfinite(tra) & np.isfinite(tdec)
    if not ok.any():
        return None
    sep = SkyCoord(float(ra) * u.deg, float(dec) * u.deg).separation(
        SkyCoord(tra[ok] * u.deg, tdec[ok] * u.deg)).arcsec
    j = int(np.argmin(sep))
    if sep[j] <= radius_arcsec:
        i = int(np.where(ok)[0][j])
        return {k: _value(targets[k][i]) for k in targets.colnames}
    return None
