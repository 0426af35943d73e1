"""Targets tables: read, validate, and match spectra to their rows (science.md "Targets table").

The one matcher of xmpspec: ``xmpspec measure``, ``batch``, ``run`` and the demo all
find a spectrum's row here. A spectrum belongs to the row whose ``name`` equals the
spectrum's object name (header OBJECT, PypeIt's target name) or its file name without
extensions (case and spaces ignored); else to the nearest row whose ``ra``/``dec`` lies
within ``measure.target_match_arcsec`` (2 arcsec) of the spectrum's position (astropy
``SkyCoord`` separation; coordinates in any form :mod:`xmpspec.coords` reads: decimal
degrees, or sexagesimal ``02:24:16.71`` / ``02 24 16.71`` / ``2h24m16.71s``).

Validation when a table is read (:func:`read_targets`) or matched against
(:class:`TargetMatcher`); every problem is an :class:`~xmpspec.errors.InputError`
naming the file, the row(s) (1-based data rows) and the column:

* ``name`` column required; ``ra`` and ``dec`` come together;
* ``z`` must be a number >= 0 (``z = abc`` or ``z = -0.01`` are errors); an empty
  cell means "no redshift guess for this target" (found from the lines);
* two rows with the same name (case and spaces ignored) and different ``z`` are an
  error naming both rows; identical duplicates are a warning (the first row is used);
* ``ra``/``dec`` must be readable angles (Dec within [-90, 90]);
* an error column (``z_err``, any ``*_err``) holds numbers, none negative (the rule of
  every table column, :func:`xmpspec.io._common.check_error_values`).

A table **without a** ``z`` **column** is allowed, as science.md says ("``z`` required
unless the redshift is to be found"), with an explicit warning: each spectrum's redshift
then comes from its file's header (PypeIt/SDSS redshift, ``Z``/``REDSHIFT`` card) or, without
one, is found from its lines. ``read_targets(..., require_z=True)`` makes it an error.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..coords import parse_angle, parse_angles
from ..errors import InputError
from ..io._common import ColumnValueError, check_error_values, is_error_column
from ..tableio import read_table, require_columns

__all__ = ["read_targets", "validate_targets", "TargetMatcher", "match_target",
           "target_matcher"]

log = logging.getLogger("xmpspec.targets")


def _norm(name) -> str:
    """Name key: no whitespace, lower case ('XMP 0153-1413' == 'xmp0153-1413')."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return "".join(str(name).split()).lower()


def _value(v):
    """A table cell as a plain Python value (None when masked)."""
    if np.ma.is_masked(v):
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.generic):
        return v.item()
    return v


def _rows(idx) -> str:
    idx = [int(i) + 1 for i in idx]
    return ("row " if len(idx) == 1 else "rows ") + ", ".join(map(str, idx))


#: text of an empty cell
_EMPTY_CELLS = ("", "--", "nan", "none", "null", "n/a")


def _redshifts(targets: Table, source) -> np.ndarray:
    """The ``z`` column as floats (NaN where empty); InputError on text or z < 0."""
    col = targets["z"]
    arr = np.ma.asarray(col)
    mask = np.ma.getmaskarray(arr)
    data = np.ma.getdata(arr)
    unit = getattr(col, "unit", None)
    if unit is not None and str(unit) not in ("", "None"):
        try:
            if u.Unit(unit) != u.dimensionless_unscaled:
                raise InputError(f"column 'z' has unit '{unit}': a redshift has no unit",
                                 source)
        except ValueError:
            raise InputError(f"column 'z' has an unknown unit '{unit}'", source) from None
    z = np.full(len(data), np.nan)
    if data.dtype.kind in "iuf":
        z[~mask] = data[~mask].astype(float)
    elif data.dtype.kind == "b":
        raise InputError("column 'z' holds true/false values, not redshifts", source)
    else:
        for i, v in enumerate(data):
            if mask[i]:
                continue
            s = (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).strip()
            if s.lower() in _EMPTY_CELLS:
                continue
            try:
                z[i] = float(s)
            except ValueError:
                raise InputError(f"column 'z' row {i + 1}: '{s}' is not a number "
                                 "(a redshift, or empty to find it from the lines)",
                                 source) from None
    bad = np.isinf(z)
    if bad.any():
        raise InputError(f"column 'z' {_rows(np.flatnonzero(bad))}: infinite redshift", source)
    neg = np.isfinite(z) & (z < 0)
    if neg.any():
        k = np.flatnonzero(neg)
        shown = ", ".join(f"{z[i]:g}" for i in k[:5])
        raise InputError(f"column 'z' {_rows(k[:5])}{' ...' if len(k) > 5 else ''}: negative "
                         f"redshift ({shown}); blueshifts are not supported", source)
    return z


def _error_values(col, name: str, source) -> None:
    """An error column: numbers (empty cells allowed), none negative."""
    arr = np.ma.asarray(col)
    mask, data = np.ma.getmaskarray(arr), np.ma.getdata(arr)
    vals = np.full(len(data), np.nan)
    if data.dtype.kind in "iuf":
        vals[~mask] = data[~mask].astype(float)
    else:
        for i, v in enumerate(data):
            s = (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).strip()
            if mask[i] or s.lower() in _EMPTY_CELLS:
                continue
            try:
                vals[i] = float(s)
            except ValueError:
                raise ColumnValueError(f"column '{name}' row {i + 1}: '{s}' is not a number",
                                       source) from None
    check_error_values(vals, name, source)


def _duplicates(targets: Table, keys: list[str], z: np.ndarray | None, source) -> None:
    """Error for same-name rows with different z; warning for identical duplicates."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if k:
            groups.setdefault(k, []).append(i)
    for _key, idx in groups.items():
        if len(idx) < 2:
            continue
        name = _value(targets["name"][idx[0]])
        if z is not None:
            zz = z[idx]
            fin = zz[np.isfinite(zz)]
            if (np.isfinite(zz).any() and not np.isfinite(zz).all()) or (
                    fin.size and np.ptp(fin) > 0):
                shown = ", ".join("empty" if not np.isfinite(v) else f"{v:g}" for v in zz)
                raise InputError(f"column 'name' {_rows(idx)}: the name '{name}' appears "
                                 f"{len(idx)} times with different z ({shown}); keep one row",
                                 source)
        log.warning("%s: column 'name' %s: the name '%s' appears %d times (same z); the "
                    "first row is used", source, _rows(idx), name, len(idx))


def validate_targets(targets: Table, source: str | Path | None = None, *,
                     require_z: bool = False) -> Table:
    """Check a targets table (rules in the module docstring); return it unchanged.

    Parameters
    ----------
    targets : astropy.table.Table
        The targets table.
    source : str or path, optional
        File name for messages.
    require_z : bool
        Make a missing ``z`` column an error instead of a warning.

    Returns
    -------
    astropy.table.Table
        ``targets`` itself.

    Raises
    ------
    InputError
        Missing ``name``; only one of ``ra``/``dec``; non-numeric or negative ``z``;
        duplicate names with different ``z``; unreadable coordinates.
    """
    source = source or "targets table"
    if _already_validated(targets):
        if require_z and "z" not in targets.colnames:
            raise InputError("has no 'z' column (required here)", source)
        return targets
    require_columns(targets, ["name"], source)
    if ("ra" in targets.colnames) != ("dec" in targets.colnames):
        raise InputError("has only one of the 'ra'/'dec' columns", source)
    if "z" in targets.colnames:
        z = _redshifts(targets, source)
    else:
        z = None
        msg = ("has no 'z' column: each spectrum's redshift comes from its file's header, "
               "or is found from its lines (science.md: z is required unless the redshift "
               "is to be found)")
        if require_z:
            raise InputError(msg.split(":")[0] + " (required here)", source)
        log.warning("%s: %s", source, msg)
    keys = [_norm(n) if not np.ma.is_masked(n) else "" for n in targets["name"]]
    _duplicates(targets, keys, z, source)
    if "ra" in targets.colnames:
        parse_angles(targets["ra"], "ra", source, column="ra")
        parse_angles(targets["dec"], "dec", source, column="dec")
    for name in targets.colnames:
        if is_error_column(name):
            _error_values(targets[name], name, source)
    _VALIDATED[id(targets)] = (weakref.ref(targets), len(targets))
    return targets


# tables already validated (id -> (weakref, length)): each problem is reported once
_VALIDATED: dict[int, tuple[weakref.ref, int]] = {}


def _already_validated(targets: Table) -> bool:
    hit = _VALIDATED.get(id(targets))
    if hit is not None and hit[0]() is targets and hit[1] == len(targets):
        return True
    for k in [k for k, v in _VALIDATED.items() if v[0]() is None]:
        del _VALIDATED[k]
    return False


def read_targets(path: str | Path, *, require_z: bool = False) -> Table:
    """Read and validate a targets table (CSV, ECSV, FITS, ASCII).

    Parameters
    ----------
    path : path-like
        The file.
    require_z : bool
        Make a missing ``z`` column an error instead of a warning.

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    InputError
        Unreadable file, or a check of :func:`validate_targets` failed.
    """
    t = read_table(path)
    return validate_targets(t, path, require_z=require_z)


def _default_radius(config) -> float:
    if config is None:
        from ..config import get_active_config
        config = get_active_config()
    try:
        return float(config["measure"]["target_match_arcsec"])
    except (KeyError, TypeError):
        return 2.0


class TargetMatcher:
    """Finds the targets row of a spectrum: by name, else by position.

    Built once per table (a name index and an astropy ``SkyCoord`` catalogue), so
    matching stays fast for survey-size tables; picklable (batch workers).

    Parameters
    ----------
    targets : astropy.table.Table
        A targets table (validated here).
    source : str or path, optional
        Its file name for messages.
    radius_arcsec : float, optional
        Position match radius (default: ``measure.target_match_arcsec`` of ``config``).
    config : Config, optional
        Configuration for the default radius (default: the active one).
    validate : bool
        Run :func:`validate_targets` (skip only for a table just read by
        :func:`read_targets`).
    """

    def __init__(self, targets: Table, source: str | Path | None = None, *,
                 radius_arcsec: float | None = None, config=None, validate: bool = True):
        self.source = str(source) if source is not None else "targets table"
        if validate:
            validate_targets(targets, self.source)
        self.targets = targets
        self.radius_arcsec = (float(radius_arcsec) if radius_arcsec is not None
                              else _default_radius(config))
        self._index: dict[str, int] = {}
        for i, n in enumerate(targets["name"]):
            if not np.ma.is_masked(n) and _norm(n):
                self._index.setdefault(_norm(n), i)
        self._coords = None
        self._coord_rows = np.zeros(0, int)
        if "ra" in targets.colnames and len(targets):
            ra = parse_angles(targets["ra"], "ra", self.source, column="ra")
            dec = parse_angles(targets["dec"], "dec", self.source, column="dec")
            ok = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
            if ok.size:
                from astropy.coordinates import SkyCoord
                self._coords = SkyCoord(ra[ok] * u.deg, dec[ok] * u.deg, frame="icrs")
                self._coord_rows = ok

    def __len__(self) -> int:
        return len(self.targets)

    def row_index(self, spec_name: str | None = None, ra=None, dec=None,
                  spec_file: str | Path | None = None) -> int | None:
        """Index of the matching row, or None.

        Parameters
        ----------
        spec_name : str, optional
            Object name of the spectrum.
        ra, dec : float, str or Quantity, optional
            Position of the spectrum (degrees, or any form :mod:`xmpspec.coords` reads).
        spec_file : path-like, optional
            Spectrum file; its name without extensions is also tried as a name.
        """
        for cand in (spec_name, Path(str(spec_file)).name.split(".")[0] if spec_file else None):
            if cand is not None and _norm(cand) in self._index:
                return self._index[_norm(cand)]
        if self._coords is None or ra is None or dec is None:
            return None
        try:
            pos = (parse_angle(ra, "ra", spec_file), parse_angle(dec, "dec", spec_file))
        except InputError as exc:  # a bad header position: no positional match, say why
            log.warning("%s: position not used for target matching (%s)", spec_file,
                        exc.problem)
            return None
        if pos[0] is None or pos[1] is None:
            return None
        from astropy.coordinates import SkyCoord
        sep = SkyCoord(pos[0] * u.deg, pos[1] * u.deg).separation(self._coords).arcsec
        j = int(np.argmin(sep))
        if sep[j] <= self.radius_arcsec:
            return int(self._coord_rows[j])
        return None

    def match(self, spec_name: str | None = None, ra=None, dec=None,
              spec_file: str | Path | None = None) -> dict | None:
        """The matching row as a dict of plain values (None if no row matches).

        Same parameters as :meth:`row_index`.
        """
        i = self.row_index(spec_name, ra, dec, spec_file)
        if i is None:
            return None
        return {k: _value(self.targets[k][i]) for k in self.targets.colnames}

    def match_spectrum(self, spec, path: str | Path | None = None) -> dict | None:
        """The row of a :class:`~xmpspec.spectrum.Spectrum` (its name, meta ra/dec, file)."""
        meta: Mapping = getattr(spec, "meta", {}) or {}
        return self.match(getattr(spec, "name", None), meta.get("ra"), meta.get("dec"),
                          path if path is not None else meta.get("source_file"))


# one matcher per table object for match_target (callers pass the same Table each time)
_MATCHERS: dict[int, tuple[weakref.ref, int, float, TargetMatcher]] = {}


def target_matcher(targets: Table, source: str | Path | None = None,
                   radius_arcsec: float | None = None, config=None) -> TargetMatcher:
    """The :class:`TargetMatcher` of a table, built on first use and reused."""
    radius = float(radius_arcsec) if radius_arcsec is not None else _default_radius(config)
    key = id(targets)
    hit = _MATCHERS.get(key)
    if hit is not None and hit[0]() is targets and hit[1] == len(targets) and hit[2] == radius:
        return hit[3]
    m = TargetMatcher(targets, source, radius_arcsec=radius)
    for k in [k for k, v in _MATCHERS.items() if v[0]() is None]:
        del _MATCHERS[k]
    _MATCHERS[key] = (weakref.ref(targets), len(targets), radius, m)
    return m


def match_target(spec_name: str | None, ra, dec, spec_file: str | None,
                 targets: Table, radius_arcsec: float | None = None, *,
                 source: str | Path | None = None) -> dict | None:
    """The targets row for one spectrum, as a dict (None if no row matches).

    Parameters
    ----------
    spec_name : str
        Object name of the spectrum.
    ra, dec : float, optional
        Position of the spectrum (deg, or text/Quantity as :mod:`xmpspec.coords` reads).
    spec_file : str, optional
        File name; its stem (without extensions) is also tried as a name.
    targets : Table
        A targets table (validated on first use, see :func:`validate_targets`).
    radius_arcsec : float, optional
        Position match radius (default: ``measure.target_match_arcsec``).
    source : str or path, optional
        The table's file name for messages.

    Raises
    ------
    InputError
        The table fails validation.
    """
    return target_matcher(targets, source, radius_arcsec=radius_arcsec).match(
        spec_name, ra, dec, spec_file)
