"""Matching observed rows to the selection catalogue: by name, else by sky position.

science.md, "Comparison with the CNN selection stage": astropy
``search_around_sky`` within the matching radius; every observed row gets a
``match_status`` (``matched``, ``unmatched``, ``ambiguous``) and a note.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.coordinates import search_around_sky
from astropy.table import MaskedColumn, Table

from ..errors import ConfigError, InputError
from .columns import _duplicates, _norm_name, parse_coordinates


def _positions(observed: Table, catalogue: Table, observed_source=None,
               catalogue_source=None) -> tuple:
    obs_coord = cat_coord = None
    obs_valid = np.zeros(len(observed), bool)
    cat_valid = np.zeros(len(catalogue), bool)
    if "ra" in observed.colnames and "dec" in observed.colnames:
        obs_coord, obs_valid = parse_coordinates(observed["ra"], observed["dec"], observed_source)
    if "ra" in catalogue.colnames and "dec" in catalogue.colnames:
        cat_coord, cat_valid = parse_coordinates(catalogue["ra"], catalogue["dec"],
                                                 catalogue_source)
    return obs_coord, obs_valid, cat_coord, cat_valid


def match_catalogue(observed: Table, catalogue: Table, radius: u.Quantity,
                    observed_source=None, catalogue_source=None,
                    positions: tuple | None = None) -> tuple[Table, list[str]]:
    """Match observed rows to catalogue rows by name, else by sky position.

    A name is matched case- and whitespace-insensitively. A name present
    twice in the catalogue is ambiguous (unless the observed position picks
    exactly one of them within ``radius``). Without a name match, the
    nearest catalogue entry within ``radius`` is taken; two or more entries
    within ``radius`` make the match ambiguous. Ambiguous rows are reported,
    not resolved by guessing.

    Parameters
    ----------
    observed, catalogue : astropy.table.Table
        ``catalogue`` with canonical names (see :func:`normalise_catalogue`).
    radius : astropy.units.Quantity
        Matching radius (angle).
    positions : tuple, optional
        ``(obs_coord, obs_valid, cat_coord, cat_valid)`` from
        :func:`parse_coordinates` when already parsed (None entries: no positions).

    Returns
    -------
    match : astropy.table.Table
        One row per observed row: ``cat_index`` (-1 if none), ``match_method``
        (``name``, ``position`` or ``none``), ``match_status``
        (``matched``, ``unmatched``, ``ambiguous``), ``match_sep_arcsec``
        (masked when unknown) and ``match_note``.
    report : list of str
        Notes for the user (duplicates, unmatched, ambiguous, disagreements).

    Raises
    ------
    InputError
        No row can be matched: no common names and positions missing on one side.
    """
    radius = u.Quantity(radius, u.arcsec)
    if radius <= 0 * u.arcsec:
        raise ConfigError(f"match radius must be positive, got {radius}")
    n_obs = len(observed)
    report: list[str] = []

    obs_names = [str(x) for x in observed["name"]] if "name" in observed.colnames else None
    cat_names = [str(x) for x in catalogue["name"]] if "name" in catalogue.colnames else None

    for label, names, src in (("observed table", obs_names, observed_source),
                              ("selection catalogue", cat_names, catalogue_source)):
        if names is None:
            continue
        for rows in _duplicates(names).values():
            report.append(f"duplicate name in {label}{f' ({src})' if src else ''}: "
                          f"'{names[rows[0]]}' in rows {', '.join(str(r + 1) for r in rows)}")

    if positions is None:
        positions = _positions(observed, catalogue, observed_source, catalogue_source)
    obs_coord, obs_valid, cat_coord, cat_valid = positions

    cat_index_by_name: dict[str, list[int]] = {}
    if cat_names is not None:
        for j, nm in enumerate(cat_names):
            cat_index_by_name.setdefault(_norm_name(nm), []).append(j)

    can_position = obs_coord is not None and cat_coord is not None and cat_valid.any()
    cat_idx = np.full(n_obs, -1, int)
    method = np.full(n_obs, "none", dtype="U8")
    status = np.full(n_obs, "unmatched", dtype="U9")
    sep = np.ma.masked_all(n_obs, dtype=float)
    notes = ["" for _ in range(n_obs)]

    near_idx: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    nearest_sep = np.full(n_obs, np.nan)
    if can_position:
        # KD-tree searches (astropy): the nearest entry of every observed row, and all
        # entries within the radius (to detect ambiguous matches)
        cat_sub = cat_coord[cat_valid]
        cat_sub_index = np.flatnonzero(cat_valid)
        obs_rows = np.flatnonzero(obs_valid)
        if len(obs_rows):
            sub_obs = obs_coord[obs_rows]
            _, d_near, _ = sub_obs.match_to_catalog_sky(cat_sub)
            nearest_sep[obs_rows] = np.atleast_1d(d_near.to_value(u.arcsec))
            io, ic, d2d, _ = search_around_sky(sub_obs, cat_sub, radius)
            for k in np.unique(io):
                sel = io == k
                order = np.argsort(d2d[sel].to_value(u.arcsec))
                near_idx[int(obs_rows[k])] = (cat_sub_index[ic[sel]][order],
                                              d2d[sel].to_value(u.arcsec)[order])

    def _within(i: int) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue rows within radius of observed row i (indices, separations)."""
        return near_idx.get(i, (np.array([], int), np.array([])))

    for i in range(n_obs):
        name = obs_names[i] if obs_names is not None else ""
        candidates = cat_index_by_name.get(_norm_name(name), []) if name else []
        has_pos = can_position and obs_valid[i]
        if len(candidates) == 1:
            j = candidates[0]
            cat_idx[i], method[i], status[i] = j, "name", "matched"
            if has_pos and cat_valid[j]:
                d = obs_coord[i].separation(cat_coord[j]).to_value(u.arcsec)
                sep[i] = d
                if d > radius.to_value(u.arcsec):
                    notes[i] = (f"name match, but positions differ by {d:.1f} arcsec "
                                f"(> {radius.to_value(u.arcsec):g})")
                    report.append(f"{name}: {notes[i]}")
            continue
        if len(candidates) > 1:
            if has_pos:
                near = [j for j in candidates if cat_valid[j]
                        and obs_coord[i].separation(cat_coord[j]) <= radius]
                if len(near) == 1:
                    j = near[0]
                    cat_idx[i], method[i], status[i] = j, "name+pos", "matched"
                    sep[i] = obs_coord[i].separation(cat_coord[j]).to_value(u.arcsec)
                    notes[i] = (f"name appears {len(candidates)} times in the catalogue; "
                                "the one within the radius was taken")
                    report.append(f"{name}: {notes[i]}")
                    continue
            status[i] = "ambiguous"
            method[i] = "name"
            notes[i] = (f"name appears {len(candidates)} times in the catalogue (rows "
                        f"{', '.join(str(j + 1) for j in candidates)}); not matched")
            report.append(f"{name}: {notes[i]}")
            continue
        if has_pos:
            idx, d = _within(i)
            if len(idx) == 1:
                cat_idx[i], method[i], status[i] = idx[0], "position", "matched"
                sep[i] = d[0]
                if name and cat_names is not None:
                    notes[i] = f"matched by position to '{cat_names[idx[0]]}' ({d[0]:.2f} arcsec)"
            elif len(idx) > 1:
                status[i], method[i] = "ambiguous", "position"
                sep[i] = d[0]
                listing = ", ".join(
                    f"'{cat_names[j]}' at {dd:.2f}\"" if cat_names is not None
                    else f"row {j + 1} at {dd:.2f}\"" for j, dd in zip(idx, d, strict=True))
                notes[i] = (f"{len(idx)} catalogue entries within "
                            f"{radius.to_value(u.arcsec):g} arcsec ({listing}); not matched")
                report.append(f"{name or f'row {i + 1}'}: {notes[i]}")
            else:
                notes[i] = (f"no catalogue entry within {radius.to_value(u.arcsec):g} arcsec "
                            f"(nearest {nearest_sep[i]:.1f} arcsec)")
                report.append(f"{name or f'row {i + 1}'}: unmatched, {notes[i]}")
        else:
            why = ("no name match and no position" if obs_coord is None or not obs_valid[i]
                   else "no name match and the catalogue has no positions")
            notes[i] = why
            report.append(f"{name or f'row {i + 1}'}: unmatched, {why}")

    if n_obs and not (status == "matched").any() and not (status == "ambiguous").any():
        if not can_position:
            lacking = []
            if cat_coord is None:
                lacking.append("the selection catalogue has no usable ra/dec")
            if obs_coord is None:
                lacking.append("the observed table has no usable ra/dec")
            raise InputError(
                "no observed object matches the selection catalogue by name, and positional "
                f"matching is impossible ({'; '.join(lacking)})", catalogue_source)

    # one catalogue entry claimed by several observed rows
    taken = cat_idx[status == "matched"]
    for j in np.unique(taken):
        rows = np.flatnonzero((cat_idx == j) & (status == "matched"))
        if len(rows) > 1:
            who = ", ".join(obs_names[r] if obs_names else f"row {r + 1}" for r in rows)
            label = cat_names[j] if cat_names is not None else f"row {j + 1}"
            report.append(f"catalogue entry '{label}' matched by {len(rows)} observed rows: {who}")
            for r in rows:
                notes[r] = (notes[r] + "; " if notes[r] else "") + \
                    f"catalogue entry shared with {len(rows) - 1} other observed row(s)"

    out = Table()
    out["cat_index"] = cat_idx
    out["match_method"] = method
    out["match_status"] = status
    out["match_sep_arcsec"] = MaskedColumn(sep, unit=u.arcsec)
    out["match_note"] = np.array(notes, dtype=str) if n_obs else np.array([], dtype="U1")
    return out, report


# ----------------------------------------------------------------------------- statistics
