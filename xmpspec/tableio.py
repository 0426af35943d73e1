"""Reading user tables and writing output tables atomically with provenance.

Every table xmpspec writes goes through :func:`write_table`: the file is
written to a temporary name in the same folder and renamed into place, so an
interrupted run never leaves a half-written file. ECSV files carry the
provenance record in their YAML header; FITS files carry summary ``XMP*``
cards in the table header and the full record as UTF-8 JSON bytes in a
``PROVENANCE`` image extension. The writers are defined in
:mod:`xmpspec.io._write` (spectrum layer, so that the spectrum writers use the
same code) and re-exported here.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import QTable, Table

from .errors import InputError
from .io._write import (  # noqa: F401 - writers live in the spectrum layer, re-exported
    TABLE_FORMATS,
    _ecsv_header,
    _fits_ascii_column,
    _fits_provenance_cards,
    _suffix,
    _write_fits_table,
    ascii_table,
    atomic_path,
    ecsv_data_lines,
    ecsv_fast_supported,
    ensure_output_dir,
    fits_ascii,
    write_ecsv,
    write_table,
)

__all__ = [
    "ascii_table",
    "atomic_path",
    "ensure_output_dir",
    "fits_ascii",
    "write_table",
    "read_table",
    "read_provenance",
    "provenance_from_hdu",
    "require_columns",
    "TABLE_FORMATS",
]


def provenance_from_hdu(hdu) -> str:
    """JSON text of a ``PROVENANCE`` extension (byte image, or the older JSON column)."""
    if isinstance(hdu, fits.BinTableHDU):
        return str(hdu.data["JSON"][0])
    return np.asarray(hdu.data, dtype=np.uint8).tobytes().decode("utf-8")


def read_provenance(path: str | Path) -> dict | None:
    """Provenance record of a table written by :func:`write_table` (None if absent)."""
    path = Path(path)
    if _suffix(path) in (".fits", ".fit", ".fits.gz"):
        with fits.open(path) as hdul:
            if "PROVENANCE" in hdul:
                return json.loads(provenance_from_hdu(hdul["PROVENANCE"]))
        return None
    return read_table(path).meta.get("provenance")


def read_table(path: str | Path, qtable: bool = False, format: str | None = None) -> Table:
    """Read a user or xmpspec table (CSV, ECSV, FITS, Parquet, whitespace ASCII).

    Parameters
    ----------
    path : path-like
        The file.
    qtable : bool
        Return a :class:`~astropy.table.QTable` (columns with units become Quantities).
    format : str, optional
        astropy format name overriding the suffix.

    Raises
    ------
    InputError
        Missing, empty, unreadable or corrupt file (the message names it).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a folder, not a table", path)
    if path.stat().st_size == 0:
        raise InputError("file is empty", path)
    fmt = format or TABLE_FORMATS.get(_suffix(path))
    cls = QTable if qtable else Table
    if fmt == "parquet":
        # read with pyarrow only (astropy's reader needs pandas, not a dependency): the batch
        # engine's files keep units, descriptions and masks, astropy-written files are rebuilt
        # from their header
        from .arrowio import read_parquet
        table = read_parquet(path)
        return QTable(table) if qtable else table
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "fits":
                table = cls.read(path, format="fits", hdu=1)
            elif fmt is None:
                table = cls.read(path, format="ascii")
            else:
                table = cls.read(path, format=fmt)
    except InputError:
        raise
    except Exception as exc:  # astropy raises many types for bad files
        raise InputError(f"cannot read table ({type(exc).__name__}: {exc})", path) from None
    return table


def require_columns(table: Table, columns: Iterable[str], source: str | Path | None = None) -> None:
    """Raise :class:`InputError` naming every required column that is absent."""
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise InputError(
            f"missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"present: {', '.join(table.colnames)}", source)
