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
  the boolean columns that have undetermined rows; a single chunk is kept
  for the second pass rather than read again), then each chunk's rows as
  astropy encodes them, then the ``PROVENANCE`` extension, exactly as
  :func:`~xmpspec.tableio.write_table` lays it out (``XMP*`` cards, masked
  booleans written False and named in ``XMPMBOOL``). For plain columns
  (numbers, booleans, strings with names and units) the header cards are
  formatted here (:func:`_table_cards`) and the rows packed with NumPy
  (:func:`_encode_rows`), byte for byte what astropy writes (tests compare
  them); anything else goes through astropy's ``table_to_hdu``.

Files are written atomically (temporary name + rename). Reading them back
with :func:`xmpspec.tableio.read_table` gives the same table as
:func:`~xmpspec.tableio.write_table` would have written.
"""

from __future__ import annotations

import functools
import io
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table

from .tableio import (
    TABLE_FORMATS,
    _ecsv_header,
    _fits_ascii_column,
    _fits_provenance_cards,
    _suffix,
    atomic_path,
    ecsv_data_lines,
    ecsv_fast_supported,
    fits_ascii,
)

__all__ = ["write_table_stream"]

_FITS_BLOCK = 2880


def write_table_stream(chunks: Callable[[], Iterable], path: str | Path,
                       provenance: dict | None = None,
                       formats: Sequence[str] = ("ecsv", "fits")) -> list[Path]:
    """Write a table given as chunks (same columns in each) in ECSV and/or FITS.

    Parameters
    ----------
    chunks : callable
        ``chunks()`` returns a fresh iterable of chunks with the same column
        names, types and units: :class:`astropy.table.Table` or
        :class:`pyarrow.Table` (the batch engine's layout,
        :func:`xmpspec.arrowio.table_to_arrow`, e.g. Parquet parts read with
        :func:`xmpspec.arrowio.iter_unified_parts`). It is called twice when
        FITS is written (a first pass counts the rows and measures the
        strings), so it must re-read its source rather than keep the chunks.
        Every format is written in one pass over the chunks.
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
    from contextlib import ExitStack
    path = Path(path)
    stem = path.with_suffix("") if _suffix(path) in TABLE_FORMATS else path
    writers, targets = [], []
    for fmt in formats:
        fmt = fmt.lstrip(".").lower()
        if fmt not in ("ecsv", "fits"):
            raise ValueError(f"streamed tables are written as ECSV or FITS, not '{fmt}'")
        targets.append(stem.with_name(f"{stem.name}.{fmt}"))
    layout = None
    if any(t.suffix == ".fits" for t in targets):
        *layout, only = _fits_layout(chunks)
        if only is not None:                    # a single chunk: not read a second time
            chunks = lambda: [only]             # noqa: E731
    with ExitStack() as stack:
        for target in targets:
            tmp = stack.enter_context(atomic_path(target))
            if target.suffix == ".ecsv":
                writers.append(_EcsvWriter(stack.enter_context(open(tmp, "w", encoding="utf-8",
                                                                    newline="")),
                                           target, provenance))
            else:
                writers.append(_FitsWriter(stack.enter_context(open(tmp, "wb")), target,
                                           provenance, *layout))
        n = 0
        for t in _nonempty(chunks):
            t = _astropy(t)
            for w in writers:
                w.write(t)
            n += len(t)
        if n == 0:
            raise ValueError(f"{stem}: no rows to write")
        for w in writers:
            w.close()
    return targets


def _num_rows(t) -> int:
    return t.num_rows if hasattr(t, "num_rows") else len(t)


def _nonempty(chunks: Callable[[], Iterable]):
    for t in chunks():
        if _num_rows(t):
            yield t


def _astropy(t) -> Table:
    if isinstance(t, Table):
        return t
    from .arrowio import arrow_to_table
    return arrow_to_table(t)


# --------------------------------------------------------------------------- ECSV
def _ecsv_text(table: Table, meta: dict) -> str:
    from .io._write import astropy_ecsv_text
    return astropy_ecsv_text(table, meta)


def _split_ecsv(text: str) -> tuple[str, str]:
    """(header incl. the column-names line, data lines) of an ECSV text."""
    pos = 0
    while text.startswith("#", pos):
        pos = text.index("\n", pos) + 1
    names_end = text.index("\n", pos) + 1
    return text[:names_end], text[names_end:]


class _EcsvWriter:
    """Header (with the provenance) from the first chunk, then every chunk's data lines.

    The data lines are formatted a whole column at a time
    (:func:`xmpspec.tableio.ecsv_data_lines`, the same bytes as astropy's writer)
    unless a chunk has columns only astropy can format.
    """

    def __init__(self, fh, target: Path, provenance: dict | None):
        self.fh, self.target = fh, target
        self.meta = {"provenance": provenance} if provenance is not None else {}
        self.reference = None

    def write(self, t: Table) -> None:
        fast = ecsv_fast_supported(t)
        if self.reference is None:
            # the first chunk's header is the file's; later chunks are compared with it
            self.reference = t[:0]
            self.fh.write(_ecsv_header(t, self.meta))
        else:
            if isinstance(self.reference, Table):
                self.reference = _ecsv_header(self.reference, {})
            if _ecsv_header(t, {}) != self.reference:
                raise ValueError(f"{self.target}: a chunk's columns differ from the first "
                                 "chunk's (ECSV header)")
        self.fh.write(ecsv_data_lines(t) if fast else _split_ecsv(_ecsv_text(t, {}))[1])

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- FITS
def _string_columns(t: Table) -> list[str]:
    return [n for n in t.colnames if t[n].dtype.kind in ("U", "S")]


def _bool_columns(t: Table) -> list[str]:
    return [n for n in t.colnames if t[n].dtype == bool]


def _fits_layout(chunks) -> tuple[int, dict, list, object]:
    """Total rows, widest string (bytes) per string column, bool columns with masked rows.

    The fourth item is the chunk itself when there is only one (the second
    pass then re-uses it instead of reading it again), else None.
    """
    nrows, widths, masked_bools, seen = 0, {}, [], []

    def wider(name, width):
        widths[name] = max(widths.get(name, 1), int(width or 0), 1)

    for t in _nonempty(chunks):
        seen = [t] if not seen else [None]
        nrows += _num_rows(t)
        if isinstance(t, Table):
            for name in _string_columns(t):
                data = np.ma.getdata(_fits_ascii_column(t[name]))
                wider(name, np.max(np.char.str_len(data)))
            bools = [n for n in _bool_columns(t) if np.any(np.ma.getmaskarray(t[n]))]
        else:                                   # Arrow: no conversion needed
            import pyarrow as pa
            bools = []
            for fld in t.schema:
                col = t.column(fld.name)
                if pa.types.is_string(fld.type) or pa.types.is_large_string(fld.type):
                    wider(fld.name, _arrow_ascii_width(col))
                elif pa.types.is_boolean(fld.type) and col.null_count:
                    bools.append(fld.name)
        masked_bools += [n for n in bools if n not in masked_bools]
    return nrows, widths, masked_bools, seen[0] if seen else None


def _arrow_ascii_width(col) -> int:
    """Widest value (bytes) of an Arrow string column in its FITS (ASCII) form.

    From the offsets buffers for ASCII text; other text is measured in the ASCII
    form of :func:`xmpspec.tableio.fits_ascii` (what the FITS file gets).
    """
    width = 0
    for chunk in col.chunks:
        if len(chunk) == 0:
            continue
        bufs = chunk.buffers()
        off_type = np.int64 if chunk.type.equals(_large_string()) else np.int32
        offsets = np.frombuffer(bufs[1], off_type, count=chunk.offset + len(chunk) + 1)
        offsets = offsets[chunk.offset:]
        data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        if np.any(data[offsets[0]:offsets[-1]] >= 128):
            width = max([width, *(len(fits_ascii(v)) for v in chunk.to_pylist()
                                  if v is not None)])
            continue
        lengths = np.diff(offsets)
        if chunk.null_count:                    # null slots may hold bytes: not written
            valid = np.unpackbits(np.frombuffer(bufs[0], np.uint8), bitorder="little")
            lengths = np.where(valid[chunk.offset:chunk.offset + len(chunk)] == 1, lengths, 0)
        width = max(width, int(lengths.max()))
    return width


def _large_string():
    import pyarrow as pa
    return pa.large_string()


def _fits_ready(t: Table, widths: dict, masked_bools: list) -> _Columns:
    """The chunk as written to FITS: ASCII strings of the file's widths, masked bools False."""
    cols = {}
    for name, col in zip(t.colnames, t.itercols(), strict=True):
        if col.dtype.kind in ("U", "S"):
            col = _fits_ascii_column(col)
            dtype = f"{col.dtype.kind}{widths.get(name, 1)}"
            if isinstance(col, MaskedColumn):
                col = MaskedColumn(np.ma.getdata(col).astype(dtype), mask=col.mask, name=name,
                                   unit=col.unit, description=col.description, copy=False)
            else:
                col = Column(np.asarray(col).astype(dtype), name=name, unit=col.unit,
                             description=col.description, copy=False)
        elif name in masked_bools:
            col = Column(np.ma.filled(col, False) if isinstance(col, np.ma.MaskedArray)
                         else np.asarray(col), name=name, unit=col.unit,
                         description=col.description, copy=False)
        cols[name] = col
    return _Columns(cols, len(t))


class _Columns:
    """A FITS-ready chunk: its columns by name (a Table is built only for astropy's encoder)."""

    def __init__(self, columns: dict, n: int):
        self.columns, self.colnames, self.n = columns, list(columns), n
        self.meta: dict = {}                    # (cleared, as the FITS writer wants it)

    def __getitem__(self, name):
        return self.columns[name]

    def __len__(self) -> int:
        return self.n

    def table(self) -> Table:
        return Table(list(self.columns.values()), names=self.colnames, copy=False)


def _fits_hdu_bytes(t: Table) -> tuple[list, bytes]:
    """(header cards, raw row bytes) of a FITS-ready chunk, encoded by astropy."""
    if isinstance(t, _Columns):
        t = t.table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdu = fits.table_to_hdu(t)
        buf = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    raw = buf.getvalue()
    with fits.open(io.BytesIO(raw)) as hdul:
        header = hdul[1].header
        start = hdul.fileinfo(1)["datLoc"]
        cards = [(c.keyword, c.value, c.image) for c in header.cards]
    size = header["NAXIS1"] * header["NAXIS2"]
    return cards, raw[start:start + size]


def _fits_chunk(t: Table, widths: dict, masked_bools: list) -> tuple[list, bytes]:
    """(header cards, raw row bytes) of a chunk encoded as a FITS binary table by astropy."""
    return _fits_hdu_bytes(_fits_ready(t, widths, masked_bools))


def _card(keyword: str, value, comment: str = "") -> tuple[str, object, str]:
    """(keyword, value, 80-character image) of a header card, formatted as astropy formats it.

    Printable-ASCII strings and integers on one card are formatted here (the
    rules of ``astropy.io.fits.Card``: strings quoted, at least 8 characters,
    the value field 20 wide); anything else (long strings, floats, other
    characters) by astropy's :class:`~astropy.io.fits.Card`.
    """
    if isinstance(value, str) and value.isascii() and value.isprintable() \
            and len(keyword) <= 8:
        text = "''" if value == "" else "'{:8}'".format(value.replace("'", "''"))
        image = f"{keyword:8}= {text:20}" + (f" / {comment}" if comment else "")
    elif isinstance(value, int) and not isinstance(value, bool) and len(keyword) <= 8:
        image = f"{keyword:8}= {value:>20d}" + (f" / {comment}" if comment else "")
    else:
        image = ""
    if not image or len(image) > 80:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = fits.Card(keyword, value, comment).image
    return keyword, value, f"{image:80}"


#: numpy dtype -> TFORM code of astropy's binary tables (no TZERO/TSCAL needed).
_TFORMS = {"f8": "D", "f4": "E", "i8": "K", "i4": "J", "i2": "I", "u1": "B", "b1": "L"}
_ROW_CODES = {"D": ">f8", "E": ">f4", "K": ">i8", "J": ">i4", "I": ">i2", "B": "u1"}


@functools.lru_cache(maxsize=256)
def _fits_unit(unit) -> str | None:
    """``unit`` as astropy's ``table_to_hdu`` writes it in ``TUNITn`` (None: not written)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return unit.to_string(format="fits")
        except ValueError:
            return None


def _table_cards(t: Table) -> list | None:
    """Binary-table header cards of a FITS-ready chunk, as ``fits.table_to_hdu`` writes them.

    For 1-D float, integer, boolean and string columns with at most names and
    units (and no table metadata); None for anything else (display formats,
    masked integers, scaled types, units astropy refuses, ...), which
    astropy's own header then describes. ``NAXIS2`` is the chunk's length.
    tests/test_tableio.py compares the cards with astropy's.
    """
    if t.meta or not t.colnames:
        return None
    cols, rowlen = [], 0
    for i, name in enumerate(t.colnames, 1):
        col = t[name]
        dtype = col.dtype
        if type(col) not in (Column, MaskedColumn) or col.ndim != 1 or col.info.format \
                or col.info.meta or not name.isascii() or not name.isprintable() \
                or len(name.replace("'", "''")) > 68:   # astropy refuses a name off one card
            return None
        masked = isinstance(col, MaskedColumn) and bool(np.any(col.mask))
        if dtype.kind in "SU":
            width = dtype.itemsize // (4 if dtype.kind == "U" else 1)
            form, size = f"{width}A", width
        elif dtype.str[1:] in _TFORMS:
            form, size = _TFORMS[dtype.str[1:]], dtype.itemsize
        else:
            return None
        if isinstance(col, MaskedColumn) and (dtype.kind in "iu" or masked and (
                dtype.kind == "b" or col.fill_value != np.ma.default_fill_value(dtype))):
            return None     # TNULL of masked integers, fill values other than NaN and ''
        rowlen += size
        cols.append(_card(f"TTYPE{i}", name))
        cols.append(_card(f"TFORM{i}", form))
        if col.unit is not None:
            unit = _fits_unit(col.unit)
            if unit is None:
                return None
            cols.append(_card(f"TUNIT{i}", unit))
    return [_card("XTENSION", "BINTABLE", "binary table extension"),
            _card("BITPIX", 8, "array data type"),
            _card("NAXIS", 2, "number of array dimensions"),
            _card("NAXIS1", rowlen, "length of dimension 1"),
            _card("NAXIS2", len(t), "length of dimension 2"),
            _card("PCOUNT", 0, "number of group parameters"),
            _card("GCOUNT", 1, "number of groups"),
            _card("TFIELDS", len(t.colnames), "number of table fields"),
            *cols]


def _header_cards(t: Table) -> list:
    """Binary-table header cards of a FITS-ready chunk (here, or by astropy)."""
    cards = _table_cards(t)
    if cards is None:
        cards = _fits_hdu_bytes(t.table()[:0] if isinstance(t, _Columns) else t[:0])[0]
    return cards


def _header_bytes(cards: list) -> bytes:
    text = "".join(image for _, _, image in cards) + f"{'END':80}"
    return (text + " " * ((-len(text)) % _FITS_BLOCK)).encode("ascii")


def _fits_signature(t: Table) -> list:
    """What the FITS header of a FITS-ready chunk depends on (names, types, units, formats)."""
    return [(n, t[n].dtype.str, str(t[n].unit), t[n].format) for n in t.colnames]


def _encode_rows(t: Table, header: dict) -> bytes | None:
    """Rows of a FITS-ready chunk as the binary-table bytes astropy writes for ``header``.

    ``header``: keyword -> value of the table's header cards. Floats (masked
    values as NaN), unmasked integers, booleans (``T``/``F``)
    and ASCII strings (masked as empty) are packed into a NumPy record array;
    None for anything else (scaled or null-valued columns, masked integers,
    arrays), which astropy then encodes. tests/test_tableio.py checks the
    bytes against astropy's.
    """
    n = len(t)
    if header.get("TFIELDS") != len(t.colnames):
        return None
    names, arrays = [], []
    for i, name in enumerate(t.colnames, 1):
        form = str(header.get(f"TFORM{i}", ""))
        repeat, code = form[:-1] or "1", form[-1:]
        if header.get(f"TTYPE{i}") != name or not repeat.isdigit() or any(
                f"{k}{i}" in header for k in ("TSCAL", "TZERO", "TNULL", "TDIM")):
            return None
        col = t[name]
        data = np.ma.getdata(col)
        mask = np.ma.getmaskarray(col) if isinstance(col, np.ma.MaskedArray) else None
        if data.ndim != 1:
            return None
        if code in ("D", "E") and repeat == "1" and data.dtype.kind == "f":
            v = data.astype(_ROW_CODES[code])
            if mask is not None and mask.any():
                v[mask] = np.nan
        elif code in ("K", "J", "I", "B") and repeat == "1" and data.dtype.kind in "iu":
            if mask is not None and mask.any():
                return None
            v = data.astype(_ROW_CODES[code])
        elif code == "L" and repeat == "1" and data.dtype == bool:
            if mask is not None and mask.any():
                return None
            v = np.where(data, b"T", b"F").astype("S1")
        elif code == "A" and data.dtype.kind == "S" and data.dtype.itemsize == int(repeat):
            v = data.copy()
            if mask is not None and mask.any():
                v[mask] = b""
        elif code == "A" and data.dtype.kind == "U" and data.dtype.itemsize // 4 == int(repeat):
            try:
                v = data.astype(f"S{repeat}")      # ASCII only: raises otherwise
            except UnicodeEncodeError:
                return None
            if mask is not None and mask.any():
                v[mask] = b""
        else:
            return None
        names.append(f"c{i}")
        arrays.append(v)
    rows = np.empty(n, dtype=[(nm, a.dtype) for nm, a in zip(names, arrays, strict=True)])
    if rows.dtype.itemsize != header.get("NAXIS1"):
        return None
    for nm, a in zip(names, arrays, strict=True):
        rows[nm] = a
    return rows.tobytes()


def _structure(cards: list) -> list:
    return [(k, v) for k, v, _ in cards if k != "NAXIS2"]


def _pad(n: int) -> bytes:
    return b"\0" * ((-n) % _FITS_BLOCK)


class _FitsWriter:
    """Primary HDU, the table header for all rows, each chunk's rows, then PROVENANCE."""

    def __init__(self, fh, target: Path, provenance: dict | None, nrows: int, widths: dict,
                 masked_bools: list):
        self.fh, self.target, self.provenance = fh, target, provenance
        self.nrows, self.widths, self.masked_bools = nrows, widths, masked_bools
        self.reference, self.rowlen, self.n_data = None, 0, 0
        fh.write(fits.PrimaryHDU().header.tostring().encode("ascii"))

    def write(self, t: Table) -> None:
        ready = _fits_ready(t, self.widths, self.masked_bools)
        signature = _fits_signature(ready)
        if self.reference is None:
            # the header from the columns alone, the rows packed with NumPy (_encode_rows:
            # the bytes astropy writes); astropy encodes what they cannot describe or pack
            cards = _header_cards(ready)
            data = _encode_rows(ready, {k: v for k, v, _ in cards})
            if data is None:
                cards, data = _fits_hdu_bytes(ready)
            self.signature, self.header = signature, {k: v for k, v, _ in cards}
            self.reference, self.rowlen = _structure(cards), self.header["NAXIS1"]
            cards = [_card("NAXIS2", self.nrows, "length of dimension 2") if k == "NAXIS2"
                     else (k, v, image) for k, v, image in cards]
            if self.masked_bools:
                cards.append(_card("XMPMBOOL", ",".join(self.masked_bools)[:68],
                                   "masked bools written False"))
            if self.provenance is not None:
                cards += [_card(key, value[:68], comment)
                          for key, value, comment in _fits_provenance_cards(self.provenance)]
            self.fh.write(_header_bytes(cards))
        else:
            # same columns (names, types, units, formats) -> same header: pack the rows
            data = _encode_rows(ready, self.header) if signature == self.signature else None
            if data is None:
                cards, data = _fits_hdu_bytes(ready)
                if _structure(cards) != self.reference:
                    raise ValueError(f"{self.target}: a chunk's columns differ from the first "
                                     "chunk's (FITS header)")
        self.fh.write(data)
        self.n_data += len(data)

    def close(self) -> None:
        if self.n_data != self.nrows * self.rowlen:
            raise ValueError(f"{self.target}: the chunks changed between passes "
                             f"({self.n_data} bytes of rows for {self.nrows} rows)")
        self.fh.write(_pad(self.n_data))
        if self.provenance is not None:
            text = json.dumps(self.provenance, default=str).encode("utf-8")
            prov = fits.ImageHDU(np.frombuffer(text, dtype=np.uint8), name="PROVENANCE")
            prov.header["XMPFMT"] = ("JSON-UTF8", "provenance record as UTF-8 JSON bytes")
            buf = io.BytesIO()
            fits.HDUList([fits.PrimaryHDU(), prov]).writeto(buf)
            self.fh.write(buf.getvalue()[_FITS_BLOCK:])
