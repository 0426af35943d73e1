"""Write a table chunk by chunk: ECSV and FITS files larger than memory.

:func:`xmpspec.tableio.write_table` needs the whole table in memory. For
survey-size outputs (``xmpspec measure`` on 10^4-10^5 spectra writes a
per-line table of 18 rows per spectrum) :func:`write_table_stream` writes the
same files from a sequence of chunks that share their columns, holding one
chunk at a time:

* **ECSV**: the header (column definitions + the provenance record) comes
  from the first chunk; the data lines of every chunk follow. Each chunk's
  column definitions are checked against the first one's.
* **FITS**: one binary-table HDU whose header says the total number of rows
  (counted in a first pass, with the widest string of each string column and
  the boolean columns that have undetermined rows), then each chunk's rows
  as astropy encodes them, then the ``PROVENANCE`` extension, exactly as
  :func:`~xmpspec.tableio.write_table` lays it out (``XMP*`` cards, masked
  booleans written False and named in ``XMPMBOOL``).

Files are written atomically (temporary name + rename). Reading them back
with :func:`xmpspec.tableio.read_table` gives the same table as
:func:`~xmpspec.tableio.write_table` would have written.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table

from .tableio import TABLE_FORMATS, _fits_provenance_cards, _suffix, atomic_path

__all__ = ["write_table_stream"]

_FITS_BLOCK = 2880


def write_table_stream(chunks: Callable[[], Iterable[Table]], path: str | Path,
                       provenance: dict | None = None,
                       formats: Sequence[str] = ("ecsv", "fits")) -> list[Path]:
    """Write a table given as chunks (same columns in each) in ECSV and/or FITS.

    Parameters
    ----------
    chunks : callable
        ``chunks()`` returns a fresh iterable of :class:`~astropy.table.Table`
        chunks with the same column names, types and units (e.g. Parquet
        parts read with :func:`xmpspec.batch.iter_unified_parts` and
        :func:`xmpspec.batch.arrow_to_table`). It is called once per format
        (twice for FITS), so it must re-read its source rather than keep the
        chunks.
    path : path-like
        Stem: one file per format is written (``stem.ecsv``, ``stem.fits``).
    provenance : dict, optional
        Record from :func:`xmpspec.provenance.provenance_record`.
    formats : sequence of str
        ``"ecsv"`` and/or ``"fits"``.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    ValueError
        No chunk has a row, a format is not supported, or a chunk's columns
        differ from the first chunk's.
    """
    path = Path(path)
    stem = path.with_suffix("") if _suffix(path) in TABLE_FORMATS else path
    written = []
    for fmt in formats:
        fmt = fmt.lstrip(".").lower()
        target = stem.with_name(f"{stem.name}.{fmt}")
        if fmt == "ecsv":
            _write_ecsv(chunks, target, provenance)
        elif fmt in ("fits", "fit"):
            _write_fits(chunks, target, provenance)
        else:
            raise ValueError(f"streamed tables are written as ECSV or FITS, not '{fmt}'")
        written.append(target)
    return written


def _nonempty(chunks: Callable[[], Iterable[Table]]):
    for t in chunks():
        if len(t):
            yield t


# --------------------------------------------------------------------------- ECSV
def _ecsv_text(table: Table, meta: dict) -> str:
    t = table.copy(copy_data=False)
    t.meta.clear()
    t.meta.update(meta)
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.write(buf, format="ascii.ecsv")
    return buf.getvalue()


def _split_ecsv(text: str) -> tuple[str, str]:
    """(header incl. the column-names line, data lines) of an ECSV text."""
    pos = 0
    while text.startswith("#", pos):
        pos = text.index("\n", pos) + 1
    names_end = text.index("\n", pos) + 1
    return text[:names_end], text[names_end:]


def _write_ecsv(chunks, target: Path, provenance: dict | None) -> None:
    meta = {"provenance": provenance} if provenance is not None else {}
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            reference = None
            for t in _nonempty(chunks):
                header, data = _split_ecsv(_ecsv_text(t, {}))
                if reference is None:
                    reference = header
                    fh.write(_split_ecsv(_ecsv_text(t[:0], meta))[0])
                elif header != reference:
                    raise ValueError(f"{target}: a chunk's columns differ from the first "
                                     "chunk's (ECSV header)")
                fh.write(data)
            if reference is None:
                raise ValueError(f"{target}: no rows to write")


# --------------------------------------------------------------------------- FITS
def _string_columns(t: Table) -> list[str]:
    return [n for n in t.colnames if t[n].dtype.kind in ("U", "S")]


def _bool_columns(t: Table) -> list[str]:
    return [n for n in t.colnames if t[n].dtype == bool]


def _fits_layout(chunks) -> tuple[int, dict, list]:
    """Total rows, widest string per string column, bool columns with masked rows."""
    nrows, widths, masked_bools = 0, {}, []
    for t in _nonempty(chunks):
        nrows += len(t)
        for name in _string_columns(t):
            data = np.ma.getdata(t[name])
            if data.dtype.kind == "U":
                lens = np.char.str_len(np.char.encode(data, "utf-8")) if data.size else [0]
            else:
                lens = np.char.str_len(data) if data.size else [0]
            widths[name] = max(widths.get(name, 1), int(np.max(lens)) if len(lens) else 1)
        for name in _bool_columns(t):
            if name not in masked_bools and np.any(np.ma.getmaskarray(t[name])):
                masked_bools.append(name)
    return nrows, widths, masked_bools


def _fits_chunk(t: Table, widths: dict, masked_bools: list) -> tuple[fits.Header, bytes]:
    """(header, raw row bytes) of a chunk encoded as a FITS binary table."""
    t = t.copy(copy_data=False)
    t.meta.clear()
    for name in _string_columns(t):
        col = t[name]
        dtype = f"{col.dtype.kind}{widths.get(name, 1)}"
        if isinstance(col, MaskedColumn):
            t[name] = MaskedColumn(np.ma.getdata(col).astype(dtype), mask=col.mask,
                                   unit=col.unit, description=col.description)
        else:
            t[name] = Column(np.asarray(col).astype(dtype), unit=col.unit,
                             description=col.description)
    for name in masked_bools:
        col = t[name]
        t[name] = Column(np.ma.filled(col, False) if isinstance(col, np.ma.MaskedArray)
                         else np.asarray(col), unit=col.unit, description=col.description)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdu = fits.table_to_hdu(t)
        buf = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    raw = buf.getvalue()
    with fits.open(io.BytesIO(raw)) as hdul:
        header = hdul[1].header.copy()
        start = hdul.fileinfo(1)["datLoc"]
    size = header["NAXIS1"] * header["NAXIS2"]
    return header, raw[start:start + size]


def _structure(header: fits.Header) -> list:
    return [(c.keyword, c.value) for c in header.cards if c.keyword != "NAXIS2"]


def _pad(n: int) -> bytes:
    return b"\0" * ((-n) % _FITS_BLOCK)


def _write_fits(chunks, target: Path, provenance: dict | None) -> None:
    nrows, widths, masked_bools = _fits_layout(chunks)
    if nrows == 0:
        raise ValueError(f"{target}: no rows to write")
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(fits.PrimaryHDU().header.tostring().encode("ascii"))
            reference, n_data = None, 0
            for t in _nonempty(chunks):
                header, data = _fits_chunk(t, widths, masked_bools)
                if reference is None:
                    reference = _structure(header)
                    header["NAXIS2"] = nrows
                    if masked_bools:
                        header["XMPMBOOL"] = (",".join(masked_bools)[:68],
                                              "masked bools written False")
                    if provenance is not None:
                        for key, value, comment in _fits_provenance_cards(provenance):
                            header[key] = (value[:68], comment)
                    fh.write(header.tostring().encode("ascii"))
                elif _structure(header) != reference:
                    raise ValueError(f"{target}: a chunk's columns differ from the first "
                                     "chunk's (FITS header)")
                fh.write(data)
                n_data += len(data)
            if n_data != nrows * header["NAXIS1"]:
                raise ValueError(f"{target}: the chunks changed between passes "
                                 f"({n_data} bytes of rows for {nrows} rows)")
            fh.write(_pad(n_data))
            if provenance is not None:
                text = json.dumps(provenance, default=str).encode("utf-8")
                prov = fits.ImageHDU(np.frombuffer(text, dtype=np.uint8), name="PROVENANCE")
                prov.header["XMPFMT"] = ("JSON-UTF8", "provenance record as UTF-8 JSON bytes")
                buf = io.BytesIO()
                fits.HDUList([fits.PrimaryHDU(), prov]).writeto(buf)
                fh.write(buf.getvalue()[_FITS_BLOCK:])
