"""Truth catalogues, targets tables and spectrum files of simulated objects.

Column names follow DEVELOPERS.md (``name, z, ra, dec, instrument, f_ha, n2,
o3, o3n2, f_<key>``) so that a truth table can be compared column by column
with what ``xmpspec measure`` writes. Simulation-only columns: ``setup``,
``<key>_covered`` (line on the grid), ``snr_<key>`` (expected matched-filter
S/N of the line), ``n2_state_expected`` (``detected`` when the expected
[NII]6585 S/N reaches the significance gate, else ``upper_limit``), and the
physical / observing parameters (te, ne, ebv, oh_n2, oh_direct, exptime, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..config import Config, get_active_config
from ..errors import InputError
from ..lines.catalog import line_catalog
from ..spectrum import FLUX_UNIT, LINE_FLUX_UNIT, Spectrum

__all__ = ["truth_table", "targets_table", "write_spectrum_file", "TRUTH_UNITS"]

TRUTH_UNITS = {
    "ra": u.deg, "dec": u.deg, "te": u.K, "te_oii": u.K, "ne": u.cm**-3, "sigma_kms": u.km / u.s,
    "ew_ha": u.AA, "balmer_abs_ew": u.AA, "exptime": u.s, "cont_at_ha": FLUX_UNIT,
    "sky_level": FLUX_UNIT / u.arcsec**2, "hb_intrinsic_flux": LINE_FLUX_UNIT,
}


def truth_table(truths: Iterable[Mapping], config: Config | None = None) -> Table:
    """Truth catalogue (one row per simulated object) as an astropy Table.

    Parameters
    ----------
    truths : iterable of dict
        Truth dictionaries from :func:`~xmpspec.simulate.simulate_spectrum`.
    config : Config, optional
        Configuration (significance gate for ``n2_state_expected``).

    Returns
    -------
    astropy.table.Table
        With units on fluxes (``xmpspec.LINE_FLUX_UNIT``), coordinates, Te, ...
    """
    rows = [dict(t) for t in truths]
    if not rows:
        raise InputError("no simulated objects to tabulate")
    cfg = config if config is not None else get_active_config()
    gate = float(cfg["measure"]["significance_gate"])
    names = list(rows[0])
    for r in rows[1:]:
        for k in r:
            if k not in names:
                names.append(k)
    table = Table()
    for col in names:
        vals = [r.get(col) for r in rows]
        if any(v is None for v in vals):
            raise InputError(f"truth column '{col}' missing for some objects")
        table[col] = vals
        if col in TRUTH_UNITS:
            table[col].unit = TRUTH_UNITS[col]
        elif col.startswith("f_"):
            table[col].unit = LINE_FLUX_UNIT
    if "snr_nii6585" in table.colnames:
        det = np.asarray(table["snr_nii6585"]) >= gate
        covered = np.asarray(table["nii6585_covered"], bool)
        state = np.where(~covered, "not_covered", np.where(det, "detected", "upper_limit"))
        table["n2_state_expected"] = state.astype(str)
    cat = line_catalog(cfg)
    table.meta["description"] = ("xmpspec simulated spectra: injected line fluxes f_<key> "
                                 "(1e-17 erg/s/cm2, observed frame), expected S/N snr_<key>")
    table.meta["lines"] = {line.key: line.wave for line in cat}
    return table


def targets_table(truth: Table, columns: Iterable[str] = ("n2_cnn", "n2_cnn_err")) -> Table:
    """Targets table of science.md ("Targets table") from a truth table.

    Parameters
    ----------
    truth : Table
        From :func:`truth_table`.
    columns : iterable of str
        Optional extra columns copied when present (e.g. CNN predictions).

    Returns
    -------
    Table
        ``name, z, ra, dec, ebv_mw, instrument, setup, exptime, nexp`` (+ extras).
    """
    out = Table()
    out["name"] = truth["name"]
    out["z"] = np.round(np.asarray(truth["z"], float), 6)
    out["ra"] = truth["ra"]
    out["dec"] = truth["dec"]
    ebv = np.asarray(truth["ebv_mw"], float) if "ebv_mw" in truth.colnames \
        else np.zeros(len(truth))
    out["ebv_mw"] = np.round(np.where(np.isfinite(ebv), ebv, 0.0), 4)
    for col in ("instrument", "setup", "exptime", "nexp", *columns):
        if col in truth.colnames:
            out[col] = truth[col]
    return out


def write_spectrum_file(spec: Spectrum, path: str | Path, provenance: dict | None = None,
                        fmt: str | None = None) -> Path:
    """Write a spectrum with :func:`xmpspec.io.write_spectrum` (ECSV or FITS).

    Parameters
    ----------
    spec : Spectrum
        The spectrum.
    path : path-like
        Destination; the suffix (``.ecsv`` / ``.fits``) sets the format unless
        ``fmt`` is given.
    provenance : dict, optional
        Provenance record.
    fmt : str, optional
        ``"ecsv"`` or ``"fits"``.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from ..io import write_spectrum
    path = Path(path)
    if fmt is not None:
        path = path.with_name(path.name.split(".")[0] + "." + fmt.lower().lstrip("."))
    return write_spectrum(spec, path, provenance=provenance)
