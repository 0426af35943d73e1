"""Writing table files atomically, with provenance (ECSV, FITS, and astropy's other formats).

The writer behind :func:`xmpspec.tableio.write_table` (which re-exports
everything here) and :func:`xmpspec.io.write_spectrum`. It lives in the
spectrum layer so that the spectrum writers can use it without importing the
table layer above them.

* Atomic: each file is written to a temporary name in its folder and renamed
  into place (:func:`atomic_path`); an interrupted run never leaves a
  half-written file. Output folders that cannot be created or written, and
  output paths under an existing file, raise
  :class:`~xmpspec.errors.InputError` naming the path.
* ECSV: astropy's header (column definitions, units, descriptions, the
  provenance record as YAML) and data lines formatted a whole column at a
  time (:func:`ecsv_data_lines`): the same bytes as astropy's writer, which
  formats masked columns element by element. UTF-8, non-ASCII text kept.
* FITS: ``XMP*`` summary cards, the provenance record as UTF-8 JSON bytes in
  a ``PROVENANCE`` image extension; character columns and header values in
  the ASCII form of :func:`fits_ascii` (FITS strings are ASCII; the MRT writer of
  :mod:`xmpspec.products.tables` uses the same rule through :func:`ascii_table`).
"""

from __future__ import annotations

import functools
import io
import json
import os
import tempfile
import unicodedata
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table

from ..errors import InputError

__all__ = ["TABLE_FORMATS", "ascii_table", "atomic_path", "ensure_output_dir", "fits_ascii",
           "write_table",
           "write_ecsv", "ecsv_data_lines", "ecsv_fast_supported"]

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

    Raises
    ------
    InputError
        The folder cannot be created (a parent is a file, no permission) or
        is not writable, or ``path`` is a folder: one line naming the path.
    """
    path = Path(path)
    ensure_output_dir(path.parent)
    if path.is_dir():
        raise InputError("is a folder, cannot write a file there", path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + _suffix(path),
                                   dir=path.parent)
    except OSError as exc:
        raise InputError(_os_problem(exc, "cannot write into the output folder"),
                         path.parent) from None
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # writers refuse to overwrite; let them create it
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, path)
        except OSError as exc:
            raise InputError(_os_problem(exc, "cannot write"), path) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _os_problem(exc: OSError, what: str) -> str:
    reason = {PermissionError: "permission denied", NotADirectoryError: "a parent is a file",
              IsADirectoryError: "is a folder", FileExistsError: "a file is in the way"}
    return f"{what} ({reason.get(type(exc)) or exc.strerror or exc})"


def ensure_output_dir(folder: str | Path) -> Path:
    """Create the output folder ``folder`` (and its parents) if needed.

    Parameters
    ----------
    folder : path-like
        The folder.

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    InputError
        ``folder`` or one of its parents is an existing file, or the folder
        cannot be created or written into (permissions, read-only file
        system): one line naming the path.
    """
    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise InputError("output path is under an existing file (not a folder)"
                                 if p != folder else "exists and is not a folder", p)
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(_os_problem(exc, "cannot create the output folder"), folder) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError("output folder is not writable (permission denied)", folder)
    return folder


# FITS header cards and character columns hold ASCII only; ECSV keeps the original text.
_SPELLED_OUT = {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
                "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th",
                "Þ": "Th", "ı": "i", "‐": "-", "‑": "-", "–": "-", "—": "-", "’": "'",
                "‘": "'", "“": '"', "”": '"'}


def fits_ascii(text: str) -> str:
    """ASCII form of ``text`` for FITS header values and character columns, and MRT tables.

    FITS strings and AAS/CDS machine-readable tables are ASCII. Accents are dropped (Unicode NFKD decomposition
    without the combining marks: ``Léo-P`` -> ``Leo-P``, ``ü`` -> ``u``), a few
    letters without a decomposition are spelled out (``ß`` -> ``ss``,
    ``ø`` -> ``o``, ``æ`` -> ``ae``, ``ł`` -> ``l``; typographic dashes and
    quotes become ASCII ones) and any other character is written as a Python
    escape (``\\u4e2d``). ECSV files keep the original text; the FITS
    ``PROVENANCE`` extension is UTF-8 JSON and keeps it too.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        ``text`` itself when it is already ASCII.
    """
    if text.isascii():
        return text
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        if ch.isascii():
            out.append(ch)
        elif unicodedata.combining(ch):
            continue
        elif ch in _SPELLED_OUT:
            out.append(_SPELLED_OUT[ch])
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _fits_ascii_column(col):
    """``col`` with :func:`fits_ascii` applied if it is a unicode column with non-ASCII text."""
    data = np.ma.getdata(col)
    if data.dtype.kind != "U" or data.size == 0:
        return col
    codes = np.ascontiguousarray(data).view(np.uint32)
    if not codes.size or int(codes.max()) < 128:
        return col
    values = np.array([fits_ascii(v) for v in data.ravel().tolist()]).reshape(data.shape)
    if isinstance(col, MaskedColumn):
        return MaskedColumn(values, mask=col.mask, name=col.name, unit=col.unit,
                            description=col.description, format=col.format, meta=col.meta)
    return Column(values, name=col.name, unit=col.unit, description=col.description,
                  format=col.format, meta=col.meta)


def ascii_table(table: Table) -> Table:
    """``table`` with every unicode column in the ASCII form of :func:`fits_ascii`.

    For formats whose text must be ASCII (FITS character columns, the AAS/CDS
    machine-readable tables); the data are shared with ``table`` where nothing
    changes.

    Parameters
    ----------
    table : astropy.table.Table

    Returns
    -------
    astropy.table.Table
        A shallow copy (``table`` itself is not modified).
    """
    out = table.copy(copy_data=False)
    for name in out.colnames:
        col = _fits_ascii_column(out[name])
        if col is not out[name]:
            out[name] = col
    return out


_ECSV_QUOTE_CHARS = (" ", '"', "\r", "\n")


def _ecsv_column_strings(col) -> list[str]:
    """A column's ECSV cells exactly as astropy's ECSV writer formats and quotes them.

    astropy writes ``str(col[i])`` for each element (shortest round-trip repr
    for floats), an empty string for masked elements, strips spaces and tabs
    around each value and quotes (csv ``QUOTE_MINIMAL`` on a space delimiter,
    empty cells as ``""``). Doing this for a whole column at once with
    ``tolist()`` avoids astropy's element-by-element masked indexing, which
    dominated the time to write large tables.
    """
    data = np.ma.getdata(col)
    kind = data.dtype.kind
    if kind == "f" and data.dtype.itemsize == 8:
        vals = [repr(v) for v in data.tolist()]       # == str(np.float64(v))
    elif kind in "iub":
        vals = [str(v) for v in data.tolist()]        # == str(np.int64(v)), 'True'/'False'
    elif kind == "U":
        vals = data.tolist()
        text = "".join(vals)
        # the common column (no empty value, nothing to strip or quote) as it is
        if not all(vals) or "\t" in text or any(c in text for c in _ECSV_QUOTE_CHARS):
            vals = [v.strip(" \t") for v in vals]
            for i, v in enumerate(vals):
                if not v or any(c in v for c in _ECSV_QUOTE_CHARS):
                    vals[i] = '"' + v.replace('"', '""') + '"'
    else:  # float32/16, bytes, ...: astropy's own per-element formatting
        vals = []
        for i in range(len(col)):
            v = str(data[i]).strip(" \t")
            if not v or any(c in v for c in _ECSV_QUOTE_CHARS):
                v = '"' + v.replace('"', '""') + '"'
            vals.append(v)
    mask = np.ma.getmask(col)
    if mask is not np.ma.nomask and mask is not None:
        for i in np.flatnonzero(mask).tolist():
            vals[i] = '""'
    return vals


def ecsv_fast_supported(table: Table) -> bool:
    """True if :func:`ecsv_data_lines` reproduces astropy's ECSV data for ``table``.

    Plain and masked 1-D columns of numbers, booleans and unicode strings;
    mixins (Quantity, Time, SkyCoord), multi-dimensional and object columns go
    through astropy's writer.
    """
    for col in table.itercols():
        if type(col) not in (Column, MaskedColumn) or col.ndim != 1 \
                or col.dtype.kind not in "fiubU":
            return False
    return True


def ecsv_data_lines(table: Table) -> str:
    """The data lines of ``table`` as astropy's ECSV writer writes them (one per row).

    Parameters
    ----------
    table : astropy.table.Table
        A table for which :func:`ecsv_fast_supported` is true.

    Returns
    -------
    str
        Newline-terminated rows, byte for byte what ``table.write(...,
        format='ascii.ecsv')`` puts after the column-names line.
    """
    if len(table) == 0:
        return ""
    cols = [_ecsv_column_strings(c) for c in table.itercols()]
    return "\n".join(map(" ".join, zip(*cols, strict=True))) + "\n"


class _ColumnSpec:
    """What astropy's ECSV header serialiser reads of a column (``info`` and ``shape``)."""

    __slots__ = ("info", "shape")

    def __init__(self, col):
        info = col.info
        self.info = SimpleNamespace(name=info.name, dtype=col.dtype, unit=col.unit,
                                    format=col.format, description=col.description,
                                    meta=col.meta)
        self.shape = col.shape


def astropy_ecsv_text(table: Table, meta: dict) -> str:
    """The whole ECSV text of ``table`` by astropy's own writer, with ``meta`` as its metadata.

    The general path of the ECSV writers (any column type); the table's data are not copied.
    """
    t = table.copy(copy_data=False)
    t.meta.clear()
    t.meta.update(meta)
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.write(buf, format="ascii.ecsv")
    return buf.getvalue()


def _ecsv_header(table: Table, meta: dict | None = None) -> str:
    """ECSV header (comment lines and the column-names line) as astropy writes it.

    For tables :func:`ecsv_fast_supported` accepts, with plain column names,
    astropy's own YAML header serialiser (``astropy.table.meta.get_yaml_from_header``)
    is given the columns directly, skipping the copies its table writer makes
    first (most of the time for a table of ~130 columns); otherwise astropy's
    writer produces the header. ``meta`` (default ``table.meta``) is the
    table metadata written. tests/test_tableio.py compares the two.
    """
    names = table.colnames
    meta = table.meta if meta is None else meta
    plain = names and ecsv_fast_supported(table) and not any(
        n != n.strip() or n.startswith("#") or any(c in n for c in _ECSV_QUOTE_CHARS)
        for n in names)
    if not plain:
        return astropy_ecsv_text(table[:0], meta)
    from astropy.io.ascii.ecsv import ECSV_VERSION
    header = {"cols": [_ColumnSpec(c) for c in table.itercols()], "schema": "astropy-2.0"}
    if meta:
        header["meta"] = OrderedDict(meta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lines = [f"%ECSV {ECSV_VERSION}", "---", *_yaml_header_lines(header)]
    return "".join(f"# {line}\n" for line in lines) + " ".join(names) + "\n"


@functools.cache
def _c_table_dumper():
    """astropy's ECSV YAML dumper on libyaml's C emitter (None without libyaml).

    ``astropy.table.meta.get_yaml_from_header`` dumps with PyYAML's pure-Python
    emitter (most of the time of a ~130-column header). This class has the same
    representers (astropy's ``AstropyDumper`` ones, ``OrderedDict`` as
    ``!!omap``, column attributes in astropy's order) on PyYAML's ``CSafeDumper``;
    Headers with double-quoted scalars or unusual keys (:func:`_unusual_keys`) go
    through astropy's emitter (libyaml writes them differently);
    tests/test_tableio.py compares the headers.
    """
    import yaml
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    from astropy.io.misc.yaml import AstropyDumper
    from astropy.table import meta as table_meta

    class CTableDumper(yaml.CSafeDumper):
        yaml_representers = {**AstropyDumper.yaml_representers,
                             OrderedDict: table_meta._repr_odict,
                             table_meta.ColumnDict: table_meta._repr_column_dict}
        yaml_multi_representers = dict(AstropyDumper.yaml_multi_representers)
        _represent_tuple = AstropyDumper._represent_tuple
        represent_float = AstropyDumper.represent_float

        def represent_mapping(self, tag, mapping, flow_style=None):
            # as astropy's TableDumper: keys sorted, column attributes (ColumnOrderList)
            # in their own order
            if hasattr(mapping, "items"):
                items = mapping.items()
                if hasattr(items, "sort"):
                    items.sort()
                else:
                    try:
                        items = sorted(items)
                    except TypeError:
                        items = list(items)
                mapping = items
            return super().represent_mapping(tag, mapping, flow_style)

    return CTableDumper


def _yaml_header_lines(header: dict) -> list[str]:
    """The YAML lines of an ECSV header, as ``astropy.table.meta.get_yaml_from_header``."""
    dumper = _c_table_dumper()
    if dumper is None:
        from astropy.table.meta import get_yaml_from_header
        return get_yaml_from_header(header)
    import yaml
    from astropy.table.meta import _get_col_attributes, get_yaml_from_header
    data = dict(header)
    data["datatype"] = [_get_col_attributes(col) for col in data.pop("cols")]
    text = None if _unusual_keys(data) else yaml.dump(data, default_flow_style=None,
                                                      Dumper=dumper, width=130)
    if text is None or '"' in text:
        # libyaml folds long double-quoted scalars without PyYAML's "\" line ends
        return get_yaml_from_header(header)
    return text.splitlines()


def _unusual_keys(data) -> bool:
    """True if a mapping in ``data`` has a key that libyaml and PyYAML place differently.

    Empty and long (> 100 characters) keys, and keys that are not strings or
    numbers (PyYAML writes some of them as complex ``? key`` entries, libyaml not).
    """
    if isinstance(data, dict):
        return any(not isinstance(k, str | int | float) or isinstance(k, str)
                   and not 0 < len(k) <= 100 or _unusual_keys(v) for k, v in data.items())
    if isinstance(data, list | tuple):
        return any(_unusual_keys(v) for v in data)
    return False


def write_ecsv(table: Table, fh) -> None:
    """Write ``table`` as ECSV to the text file ``fh``: astropy's header, vectorised data.

    The file is the one astropy writes (tests compare them byte for byte); tables
    that :func:`ecsv_fast_supported` rejects are written by astropy entirely.
    """
    if not ecsv_fast_supported(table):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table.write(fh, format="ascii.ecsv")
        return
    fh.write(_ecsv_header(table))
    fh.write(ecsv_data_lines(table))


def _fits_provenance_cards(prov: dict) -> list[tuple[str, str, str]]:
    cards = [
        ("XMPVERS", str(prov.get("xmpspec_version", "")), "xmpspec version"),
        ("XMPSTEP", str(prov.get("step") or ""), "xmpspec step that wrote this table"),
        ("XMPDATE", str(prov.get("created_utc", "")), "creation time (UTC)"),
    ]
    for i, (name, ver) in enumerate(sorted(prov.get("versions", {}).items())):
        cards.append((f"XMPV{i:04d}"[:8], f"{name}={ver}", "package version"))
    return [(key, fits_ascii(value), comment) for key, value, comment in cards]


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
                elif fmt == "ascii.ecsv":
                    with open(tmp, "w", encoding="utf-8", newline="") as fh:
                        write_ecsv(out, fh)
                else:
                    out.write(tmp, format=fmt)
        written.append(target)
    return written


def _write_fits_table(table: Table, tmp: Path, provenance: dict | None) -> None:
    simple_meta = {k: v for k, v in table.meta.items()
                   if isinstance(v, str | int | float | bool | np.generic) and len(str(k)) <= 8
                   and str(k).isascii()}
    t = table.copy(copy_data=True)
    t.meta.clear()
    # header values are printable ASCII: the fits_ascii form, control characters as spaces
    t.meta.update({k: "".join(c if " " <= c <= "~" else " " for c in fits_ascii(v))
                   if isinstance(v, str) else v for k, v in simple_meta.items()})
    masked_bools = []
    for name in t.colnames:
        col = _fits_ascii_column(t[name])
        if col is not t[name]:
            t[name] = col
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
