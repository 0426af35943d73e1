"""Reading user tables and writing output tables atomically with provenance.

Every table xmpspec writes goes through :func:`write_table`: the file is
written to a temporary name in the same folder and renamed into place, so an
interrupted run never leaves a half-written file. ECSV files carry the
provenance record in their YAML header; FITS files carry summary ``XMP*``
cards in the table header and the full record as UTF-8 JSON bytes in a
``PROVENANCE`` image extension.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import QTable, Table

from .errors import InputError

__all__ = [
    "atomic_path",
    "write_table",
    "read_table",
    "read_provenance",
    "provenance_from_hdu",
    "require_columns",
    "TABLE_FORMATS",
]

TABLE_FORMATS = {
    ".ecsv": "ascii.ecsv",
    ".csv": "ascii.csv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".parquet": "parquet",
    ".txt": "ascii",
    ".dat": "ascii",
    ".tsv": "ascii.tab",
    ".mrt": "ascii.mrt",
}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".fits.gz"):
        return ".fits.gz"
    return path.suffix.lower()


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final destination. Its folder is created if needed.

    Yields
    ------
    pathlib.Path
        Where to write. On an exception the temporary file is removed and the
        destination is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + _suffix(path),
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # writers refuse to overwrite; let them create it
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fits_provenance_cards(prov: dict) -> list[tuple[str, str, str]]:
    cards = [
        ("XMPVERS", str(prov.get("xmpspec_version", "")), "xmpspec version"),
        ("XMPSTEP", str(prov.get("step") or ""), "xmpspec step that wrote this table"),
        ("XMPDATE", str(prov.get("created_utc", "")), "creation time (UTC)"),
    ]
    for i, (name, ver) in enumerate(sorted(prov.get("versions", {}).items())):
        cards.append((f"XMPV{i:04d}"[:8], f"{name}={ver}", "package version"))
    return cards


def write_table(table: Table, path: str | Path, provenance: dict | None = None,
                formats: Sequence[str] | None = None, overwrite: bool = True) -> list[Path]:
    """Write ``table`` atomically, with provenance, in one or more formats.

    Parameters
    ----------
    table : astropy.table.Table or QTable
        The table (units in column units are kept).
    path : path-like
        Destination. If ``formats`` is given, ``path`` is a stem and one file
        per format is written (``stem.ecsv``, ``stem.fits``); otherwise the
        format follows the suffix.
    provenance : dict, optional
        Record from :func:`xmpspec.provenance.provenance_record`.
    formats : sequence of str, optional
        Suffixes such as ``("ecsv", "fits")``.
    overwrite : bool
        Replace existing files (default true).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    path = Path(path)
    if formats:
        stem = path.with_suffix("") if _suffix(path) in TABLE_FORMATS else path
        targets = [stem.with_name(stem.name + "." + f.lstrip(".")) for f in formats]
    else:
        targets = [path]
    written = []
    for target in targets:
        if target.exists() and not overwrite:
            raise InputError("exists and overwrite is off", target)
        suffix = _suffix(target)
        fmt = TABLE_FORMATS.get(suffix)
        if fmt is None:
            raise InputError(f"unknown table format '{suffix}'", target)
        out = table.copy(copy_data=False)
        if provenance is not None and fmt != "fits":
            out.meta["provenance"] = provenance
        with atomic_path(target) as tmp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nested meta cannot go into FITS cards
                if fmt == "fits":
                    _write_fits_table(out, tmp, provenance)
                else:
                    out.write(tmp, format=fmt)
        written.append(target)
    return written


def _write_fits_table(table: Table, tmp: Path, provenance: dict | None) -> None:
    simple_meta = {k: v for k, v in table.meta.items()
                   if isinstance(v, str | int | float | bool | np.generic) and len(str(k)) <= 8}
    t = table.copy(copy_data=True)
    t.meta.clear()
    t.meta.update(simple_meta)
    masked_bools = []
    for name in t.colnames:
        col = t[name]
        # FITS logical columns have no null: write undetermined booleans as False
        # (not their hidden data value); the ECSV copy keeps the mask.
        if getattr(col, "mask", None) is not None and col.dtype == bool and np.any(col.mask):
            t[name] = np.asarray(col.filled(False))
            masked_bools.append(name)
    hdu = fits.table_to_hdu(t)
    if masked_bools:
        hdu.header["XMPMBOOL"] = (",".join(masked_bools)[:68],
                                  "bool columns with undetermined rows written False")
    hdus = [fits.PrimaryHDU(), hdu]
    if provenance is not None:
        for key, value, comment in _fits_provenance_cards(provenance):
            hdu.header[key] = (value[:68], comment)
        # JSON as a byte image: a long string column costs ~0.1 s per write in astropy
        text = json.dumps(provenance, default=str).encode("utf-8")
        prov = fits.ImageHDU(np.frombuffer(text, dtype=np.uint8), name="PROVENANCE")
        prov.header["XMPFMT"] = ("JSON-UTF8", "provenance record as UTF-8 JSON bytes")
        hdus.append(prov)
    fits.HDUList(hdus).writeto(tmp)


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
    if fmt == "parquet" and _is_batch_parquet(path):
        # written by the batch engine with pyarrow (merged tables of `xmpspec batch`, parts):
        # astropy's reader would drop its units, descriptions and masks
        from .batch import read_parquet
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


def _is_batch_parquet(path: Path) -> bool:
    """True if a Parquet file carries the batch engine's column metadata (``xmpspec_columns``)."""
    try:
        import pyarrow.parquet as pq
        return b"xmpspec_columns" in (pq.read_schema(path).metadata or {})
    except Exception:  # noqa: BLE001 - not readable as Parquet: astropy reports it below
        return False


def require_columns(table: Table, columns: Iterable[str], source: str | Path | None = None) -> None:
    """Raise :class:`InputError` naming every required column that is absent."""
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise InputError(
            f"missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"present: {', '.join(table.colnames)}", source)
