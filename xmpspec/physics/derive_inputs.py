"""Inputs of ``xmpspec derive``: per-object random streams, joins by name, the
pivot of a lines table to one row per object, line wavelengths, and the
masked-column builders of the derived columns.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, Table, join

from ..config import Config
from ..errors import InputError
from ..lines.catalog import LINE_DEFS
from ._columns import (
    DETECTED,
    MISSING,
    column_float,
    column_state,
)

log = logging.getLogger('xmpspec.physics.derive')


LINE_KEYS = [d[0] for d in LINE_DEFS] + ["oii_blend"]
_CONFIG_WAVE = {d[0]: d[1] for d in LINE_DEFS}

# --------------------------------------------------------------------------- helpers
def object_rng(seed: int, name) -> np.random.Generator:
    """The random generator of one object's Monte Carlo: a function of (seed, name) only.

    The stream is seeded with a SHA-256 hash of the base seed and the object
    name (surrounding spaces ignored), so it does not depend on the other
    rows of a table, their order, or how a batch was chunked; Python's
    ``hash`` is not used (it changes between processes).

    Parameters
    ----------
    seed : int
        Base seed (``abundances.mc_seed``), a non-negative integer.
    name : object
        The object's identity (the ``name`` column).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    InputError
        A negative or non-integer seed.

    Examples
    --------
    >>> a = object_rng(1, "J0811+4730").standard_normal(3)
    >>> b = object_rng(1, " J0811+4730 ").standard_normal(3)
    >>> bool((a == b).all())
    True
    """
    try:
        valid = not isinstance(seed, bool) and float(seed).is_integer() and int(seed) >= 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise InputError(f"the random seed must be a non-negative integer, not {seed!r}")
    key = f"{int(seed)}:{str(name).strip()}".encode()
    entropy = int.from_bytes(hashlib.sha256(key).digest(), "little")
    return np.random.default_rng(np.random.SeedSequence(entropy))


def merge_by_name(table: Table, other: Table, source: str, what: str,
                  numeric: tuple[str, ...] = ()) -> Table:
    """Left-join ``other`` (which must have ``name``) onto ``table`` by name, keeping order.

    Columns of ``other`` replace same-named columns of ``table`` where
    ``other`` has a value. The columns ``numeric`` of ``other`` (where present)
    are checked here, so that a bad value is reported with ``other``'s file
    (:func:`column_float`: numbers, no negative error).
    """
    if "name" not in other.colnames:
        raise InputError(f"{what} table has no 'name' column", source)
    for c in numeric:
        column_float(other, c, source=source)
    names = [str(n).strip() for n in other["name"]]
    counts = Counter(names)
    dup = {n for n, c in counts.items() if c > 1}
    if dup:
        raise InputError(f"{what} table lists names more than once: {', '.join(sorted(dup))}",
                         source)
    other = other.copy()
    other["name"] = names
    base = table.copy()
    base["_row"] = np.arange(len(base))
    base["name"] = [str(n).strip() for n in base["name"]]
    cols = [c for c in other.colnames if c != "name"]
    renamed = {c: f"_{what}_{c}" for c in cols}
    for c, r in renamed.items():
        other.rename_column(c, r)
    # the joined table keeps the main table's metadata (provenance of either side may differ)
    merged = join(base, other, keys="name", join_type="left", metadata_conflicts="silent")
    merged.meta = base.meta
    merged.sort("_row")
    for c, r in renamed.items():
        new = merged[r]
        if c in merged.colnames:
            old = merged[c]
            have = ~np.ma.getmaskarray(new)
            if new.dtype.kind in "US" or old.dtype.kind in "US":
                data = np.array([str(v) for v in np.ma.getdata(old)], dtype=object)
                data[have] = [str(v) for v in np.ma.getdata(new)[have]]
                data = data.astype(str)
            else:
                data = np.ma.getdata(old).astype(np.result_type(old.dtype, new.dtype))
                data[have] = np.ma.getdata(new)[have]
            mask = np.ma.getmaskarray(old) & ~have
            merged[c] = MaskedColumn(data, mask=mask, unit=getattr(new, "unit", None))
        else:
            merged[c] = new
        merged.remove_column(r)
    unmatched = [n for n in table["name"] if str(n).strip() not in counts]
    if unmatched:
        log.warning("%s: no %s row for %d object(s): %s", source, what, len(unmatched),
                    ", ".join(map(str, unmatched[:5])) + (" ..." if len(unmatched) > 5 else ""))
    merged.remove_column("_row")
    return merged


def pivot_line_table(lines: Table, source: str | None = None) -> Table:
    """Per-line table of ``xmpspec measure`` to one row per object.

    Parameters
    ----------
    lines : Table
        One row per (object, line): ``object`` (or ``name``), ``line`` (or
        ``key``), ``flux``, optional ``flux_err``, ``flux_limit``, ``state``,
        ``rest_wave``/``obs_wave``/``obs_wave_err`` and ``z``.
    source : str, optional
        File name for messages.

    Returns
    -------
    Table
        ``name``, ``z`` (given, else the mean of ``obs_wave/rest_wave - 1`` over
        detected lines, weighted by ``obs_wave_err``), ``z_err``, and
        ``f_<key>``, ``f_<key>_err``, ``f_<key>_limit``, ``<key>_state`` per line.
    """
    name_col = "object" if "object" in lines.colnames else "name"
    key_col = "line" if "line" in lines.colnames else "key"
    for c in (name_col, key_col, "flux"):
        if c not in lines.colnames:
            raise InputError(f"per-line table needs column '{c}'", source)
    names = list(dict.fromkeys(str(n) for n in lines[name_col]))
    index = {n: i for i, n in enumerate(names)}
    rows = np.array([index[str(n)] for n in lines[name_col]])
    keys = np.array([str(k) for k in lines[key_col]])
    state = (column_state(lines, "state") if "state" in lines.colnames
             else np.full(len(lines), DETECTED))
    out = Table()
    out["name"] = names
    nobj = len(names)
    for c in ("z", "z_err", "ra", "dec", "instrument", "ebv_mw", "ne_fixed"):
        if c in lines.colnames:
            vals: dict = {}
            for i, v in zip(rows, lines[c], strict=True):
                if i not in vals and v is not np.ma.masked:
                    vals[i] = v
            out[c] = MaskedColumn([vals.get(i, 0) for i in range(nobj)],
                                  mask=[i not in vals for i in range(nobj)])
    if "z" not in out.colnames and {"obs_wave", "rest_wave"} <= set(lines.colnames):
        obs = column_float(lines, "obs_wave", u.AA, source)
        rest = column_float(lines, "rest_wave", u.AA, source)
        oerr = column_float(lines, "obs_wave_err", u.AA, source)
        zl = obs / rest - 1
        zw = np.where(np.isfinite(oerr) & (oerr > 0), (rest / np.where(oerr > 0, oerr, 1)) ** 2,
                      np.nan)
        z = np.full(nobj, np.nan)
        ze = np.full(nobj, np.nan)
        for i in range(nobj):
            sel = (rows == i) & (state == DETECTED) & np.isfinite(zl)
            if not sel.any():
                continue
            w = zw[sel]
            if np.all(np.isfinite(w)):
                z[i] = np.sum(w * zl[sel]) / np.sum(w)
                ze[i] = 1 / np.sqrt(np.sum(w))
            else:
                z[i] = np.mean(zl[sel])
        out["z"] = MaskedColumn(z, mask=~np.isfinite(z))
        out["z_err"] = MaskedColumn(ze, mask=~np.isfinite(ze))
    unit = getattr(lines["flux"], "unit", None)
    for key in dict.fromkeys(keys):
        cols = {"f": np.full(nobj, np.nan), "e": np.full(nobj, np.nan),
                "l": np.full(nobj, np.nan)}
        st = np.full(nobj, MISSING, dtype="U16")
        sel = np.flatnonzero(keys == key)
        for name, col in (("f", "flux"), ("e", "flux_err"), ("l", "flux_limit")):
            if col in lines.colnames:
                cols[name][rows[sel]] = column_float(lines, col, source=source)[sel]
        st[rows[sel]] = state[sel]
        for suffix, name in (("", "f"), ("_err", "e"), ("_limit", "l")):
            out[f"f_{key}{suffix}"] = MaskedColumn(cols[name], mask=~np.isfinite(cols[name]),
                                                   unit=unit)
        out[f"{key}_state"] = st
    return out


def _masked(values, mask=None, unit=None, description=None, dtype=float) -> MaskedColumn:
    values = np.asarray(values)
    if mask is None:
        mask = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(len(values), bool)
    data = np.where(mask, 0, values).astype(dtype) if values.dtype.kind == "f" else values
    return MaskedColumn(data, mask=mask, unit=unit, description=description)


def _str_col(values, description=None) -> MaskedColumn:
    arr = np.array([str(v) for v in values], dtype=str)
    if arr.size and arr.dtype.itemsize == 0:
        arr = arr.astype("U1")
    return MaskedColumn(arr, description=description)


def _bool_col(values, mask, description=None) -> MaskedColumn:
    # fill_value False: FITS has no masked booleans and astropy would write True
    return MaskedColumn(np.asarray(values, bool), mask=np.asarray(mask, bool),
                        description=description, fill_value=False)


def _line_wave(key: str, cfg: Config) -> float:
    lines = cfg["lines"]
    if key == "oii_blend":
        return 0.5 * (float(lines["OII_3727"]) + float(lines["OII_3730"]))
    return float(lines[_CONFIG_WAVE[key]])
