"""Arrow and Parquet I/O of astropy tables (tableio layer), without pandas.

The batch engine ships tables between processes as :class:`pyarrow.Table`
(:func:`table_to_arrow` / :func:`arrow_to_table`: masks as nulls, units,
descriptions and numpy dtypes kept in the metadata), writes them as Parquet
parts (:func:`write_part`, atomic and fsync'ed) and merges parts with one
schema (:func:`iter_unified_parts`). :func:`read_parquet` reads any Parquet
file into an astropy :class:`~astropy.table.Table` with pyarrow only: the
engine's own files (``xmpspec_columns`` metadata) and files written by
astropy's Parquet writer (``table_meta_yaml`` metadata: units, masks and
mixin columns restored), so a fresh environment without pandas reads them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table

from .errors import InputError

__all__ = ["COLUMNS_META", "table_to_arrow", "arrow_to_table", "read_parquet", "write_part",
           "iter_unified_parts", "unified_schema", "cast_to", "merged_columns_meta",
           "null_empty_columns"]

#: Schema metadata key holding the astropy column metadata (JSON).
COLUMNS_META = b"xmpspec_columns"
#: Schema metadata key holding the provenance record of a merged table (JSON).
PROVENANCE_META = b"xmpspec_provenance"


def table_to_arrow(table: Table):
    """An astropy table as a :class:`pyarrow.Table` (masks as nulls, units kept).

    Units, descriptions and numpy dtypes go into the field metadata (``unit``)
    and the schema metadata (``xmpspec_columns``, JSON), so that
    :func:`arrow_to_table` restores the table; any Arrow reader (polars,
    DuckDB, pandas) reads the values and nulls directly.

    Parameters
    ----------
    table : astropy.table.Table or QTable

    Returns
    -------
    pyarrow.Table
    """
    import astropy.units as u
    import pyarrow as pa
    arrays, fields, colmeta = [], [], {}
    for name in table.colnames:
        col = table[name]
        unit = getattr(col, "unit", None)
        if hasattr(col, "unmasked"):  # astropy Masked (e.g. a masked Quantity)
            mask, base = np.asarray(col.mask, bool), col.unmasked
        elif isinstance(col, np.ma.MaskedArray):
            mask, base = np.ma.getmaskarray(col), np.ma.getdata(col)
        else:
            mask, base = None, col
        values = base.value if isinstance(base, u.Quantity) else np.asarray(base)
        if mask is not None and not mask.any():
            mask = None
        if values.dtype.kind == "S":
            values = np.char.decode(values, "utf-8", "replace")
        if values.dtype.kind == "O":
            values = np.array(["" if v is None else str(v) for v in values], dtype=str)
        if values.ndim > 1:
            arr = pa.array(list(values.tolist()), mask=mask)
        else:
            arr = _numpy_to_arrow(values, mask)
        meta = {}
        text = _unit_text(unit) if unit is not None else None
        if text is not None and text not in ("", "dimensionless"):
            meta[b"unit"] = text.encode()
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, metadata=meta or None))
        colmeta[name] = {"unit": text,
                         "description": getattr(col.info, "description", None),
                         "dtype": values.dtype.str, "masked": mask is not None
                         or isinstance(col, np.ma.MaskedArray) or hasattr(col, "unmasked")}
    schema = pa.schema(fields, metadata={COLUMNS_META: json.dumps(colmeta).encode()})
    return pa.Table.from_arrays(arrays, schema=schema)


def _unit_text(unit) -> str:
    """``str(unit)``, formatted once per unit (a chunk has ~100 columns in a few units)."""
    try:
        return _cached_unit_text(unit)
    except TypeError:                           # not hashable
        return str(unit)


@functools.lru_cache(maxsize=512)
def _cached_unit_text(unit) -> str:
    return str(unit)


def _numpy_to_arrow(values: np.ndarray, mask: np.ndarray | None):
    """A :class:`pyarrow.Array` of a 1-D numpy array, built from its buffers.

    Same result as ``pa.array(values, mask=mask)`` for numeric, boolean and
    unicode arrays, without ``pa.array``'s pandas checks (which import pandas,
    a quarter of a second per process, on the first conversion); other dtypes
    go through ``pa.array``.
    """
    import pyarrow as pa
    n = len(values)
    validity, null_count = None, 0
    if mask is not None:
        null_count = int(np.count_nonzero(mask))
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
    kind = values.dtype.kind
    if kind == "b":
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), n, [validity, pa.py_buffer(bits)], null_count)
    if kind == "U":
        encoded = [s.encode("utf-8") for s in values.tolist()]
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        typ = pa.string() if offsets[-1] < 2**31 else pa.large_string()
        if typ == pa.string():
            offsets = offsets.astype(np.int32)
        return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(offsets),
                                              pa.py_buffer(b"".join(encoded))], null_count)
    if kind in "iuf":
        data = np.ascontiguousarray(values)
        if not data.dtype.isnative:
            data = data.astype(data.dtype.newbyteorder("="))
        return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), n,
                                     [validity, pa.py_buffer(data)], null_count)
    return pa.array(values, mask=mask)


@functools.lru_cache(maxsize=512)
def _parse_unit(text: str):
    """``astropy.units.Unit(text)``, parsed once per unit string (None if unparseable)."""
    import astropy.units as u
    try:
        return u.Unit(text)
    except ValueError:
        return None


def _null_mask(chunked, n: int) -> np.ndarray:
    """Boolean null mask of an Arrow column, from its validity bitmaps.

    (``is_null().to_numpy()`` would do, but pyarrow's ``to_numpy`` imports
    pandas, a quarter of a second per process.)
    """
    if not chunked.null_count:
        return np.zeros(n, bool)
    parts = []
    for c in chunked.chunks:
        bitmap = c.buffers()[0]
        if c.null_count == 0 or bitmap is None:
            parts.append(np.full(len(c), c.null_count == len(c) and len(c) > 0))
            continue
        bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")
        parts.append(bits[c.offset:c.offset + len(c)] == 0)
    return np.concatenate(parts) if parts else np.zeros(n, bool)


def _numeric_values(chunked, typ, n: int) -> np.ndarray | None:
    """Values of a fixed-width integer/float column from its buffers, nulls as 0
    (None for other types)."""
    import pyarrow as pa
    if pa.types.is_floating(typ):
        kind = "f"
    elif pa.types.is_signed_integer(typ):
        kind = "i"
    elif pa.types.is_unsigned_integer(typ):
        kind = "u"
    else:
        return None
    dtype = np.dtype(f"{kind}{typ.bit_width // 8}")
    parts = []
    for c in chunked.chunks:
        data = c.buffers()[1]
        if len(c) == 0:
            continue
        if data is None:
            parts.append(np.zeros(len(c), dtype))
            continue
        parts.append(np.frombuffer(data, dtype, count=c.offset + len(c))[c.offset:])
    values = np.concatenate(parts) if parts else np.zeros(n, dtype)  # a copy: writable
    if chunked.null_count:
        values[_null_mask(chunked, n)] = 0
    return values


def _column_values(chunked, typ, want: str | None, n: int) -> np.ndarray:
    """Numpy values of an Arrow column (nulls filled; the mask is taken separately).

    Strings, booleans and fixed-width numbers are converted without pyarrow's
    ``to_numpy``/``fill_null`` (which import pandas).
    """
    import pyarrow as pa
    if pa.types.is_null(typ):
        dtype = np.dtype(want) if want else np.dtype(float)
        return np.zeros(n, dtype if dtype.kind != "U" else "U1")
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        # through an object array, as to_numpy gave: numpy sizes the unicode dtype of an
        # object array's cast differently from a list's (e.g. U2 for [""])
        obj = np.empty(n, dtype=object)
        obj[:] = ["" if v is None else v for v in chunked.to_pylist()]
        return np.asarray(obj, dtype=str)
    if pa.types.is_boolean(typ):
        return np.asarray([False if v is None else v for v in chunked.to_pylist()], dtype=bool)
    numeric = _numeric_values(chunked, typ, n)
    if numeric is not None:
        return numeric
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        return np.asarray(chunked.fill_null(b"").to_numpy(zero_copy_only=False), dtype=bytes)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        values = np.array([np.asarray(v) for v in chunked.to_pylist()], dtype=object)
        try:
            return np.stack(list(values))
        except ValueError:
            return values
    return chunked.fill_null(0).to_numpy(zero_copy_only=False)


def arrow_to_table(atable) -> Table:
    """An astropy :class:`~astropy.table.Table` from :func:`table_to_arrow` output.

    Nulls become masked entries; units and descriptions are restored from the
    metadata (field metadata ``unit`` also works for other writers).

    Parameters
    ----------
    atable : pyarrow.Table

    Returns
    -------
    astropy.table.Table
    """
    from astropy.table import Column, MaskedColumn
    raw = (atable.schema.metadata or {}).get(COLUMNS_META)
    colmeta = json.loads(raw) if raw else {}
    cols = []
    n = atable.num_rows
    for field_ in atable.schema:
        name = field_.name
        meta = colmeta.get(name, {})
        chunked = atable.column(name)
        nulls = _null_mask(chunked, n)
        values = _column_values(chunked, field_.type, meta.get("dtype"), n)
        unit = meta.get("unit") or (field_.metadata or {}).get(b"unit", b"").decode() or None
        if unit is not None:
            unit = _parse_unit(unit)
        desc = meta.get("description")
        if nulls.any() or meta.get("masked"):
            cols.append(MaskedColumn(values, name=name, mask=nulls, unit=unit, description=desc,
                                     copy=False))
        else:
            cols.append(Column(values, name=name, unit=unit, description=desc, copy=False))
    return Table(cols, copy=False)   # one construction per column (Table[name] = col copies)


def _astropy_parquet_to_table(atable, yaml_text: str) -> Table:
    """A table written by astropy's Parquet writer, rebuilt without pandas.

    The ``table_meta_yaml`` header (the ECSV header) gives units,
    descriptions, formats, the table meta and serialized columns (masks as
    ``<name>.mask``, Quantity/Time/SkyCoord mixins), restored as astropy's
    own ECSV reader restores them.
    """
    from astropy.table import Column, serialize
    from astropy.table.meta import get_header_from_yaml
    header = get_header_from_yaml(yaml_text.splitlines())
    info = {d["name"]: d for d in header.get("datatype", [])}
    t = Table()
    n = atable.num_rows
    for field_ in atable.schema:
        name = field_.name
        chunked = atable.column(name)
        values = _column_values(chunked, field_.type, None, n)
        d = info.get(name, {})
        col = Column(values, name=name)
        for attr in ("unit", "description", "format"):
            if d.get(attr) is not None:
                setattr(col.info, attr, d[attr])
        if d.get("meta"):
            col.info.meta = d["meta"]
        if chunked.null_count:
            from astropy.table import MaskedColumn
            col = MaskedColumn(col, mask=np.asarray(
                chunked.is_null().to_numpy(zero_copy_only=False), bool))
        t[name] = col
    t.meta.update(header.get("meta", {}) or {})
    if "__serialized_columns__" in t.meta:
        t = serialize._construct_mixins_from_columns(t)
    return t


def read_parquet(path: str | Path) -> Table:
    """Read a Parquet file into an astropy table with pyarrow only (no pandas).

    Files of the batch engine (parts, large merged tables): units, masks
    (Arrow nulls) and descriptions are restored; the provenance record, if
    any, is in ``table.meta['provenance']``. Files written by astropy
    (``Table.write(..., format='parquet')``, :func:`xmpspec.tableio.write_table`):
    units, masks, table meta and mixin columns are restored from astropy's
    header. Any other Parquet file: its columns, nulls as masked entries.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    InputError
        Missing or unreadable file.
    """
    import pyarrow.parquet as pq
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        atable = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for bad files
        raise InputError(f"cannot read Parquet ({type(exc).__name__}: {exc})", path) from None
    meta = atable.schema.metadata or {}
    try:
        if COLUMNS_META not in meta and b"table_meta_yaml" in meta:
            return _astropy_parquet_to_table(atable, meta[b"table_meta_yaml"].decode())
        table = arrow_to_table(atable)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt header or an unknown layout
        raise InputError(f"cannot read Parquet ({type(exc).__name__}: {exc})", path) from None
    if PROVENANCE_META in meta:
        table.meta["provenance"] = json.loads(meta[PROVENANCE_META])
    return table


def null_empty_columns(atable):
    """Columns without any value become Arrow nulls, so parts unify to the typed ones.

    Parameters
    ----------
    atable : pyarrow.Table

    Returns
    -------
    pyarrow.Table
    """
    import pyarrow as pa
    if atable.num_rows == 0:
        return atable
    for i, fld in enumerate(atable.schema):
        if atable.column(i).null_count == atable.num_rows and not pa.types.is_null(fld.type):
            atable = atable.set_column(i, pa.field(fld.name, pa.null(), metadata=fld.metadata),
                                       pa.nulls(atable.num_rows))
    return atable


def write_part(table, path: str | Path) -> None:
    """Write a Parquet part (astropy or Arrow table) atomically and durably (fsync, rename).

    Parameters
    ----------
    table : astropy.table.Table or pyarrow.Table
    path : path-like
    """
    import pyarrow.parquet as pq

    from .tableio import atomic_path
    path = Path(path)
    atable = table if not isinstance(table, Table) else table_to_arrow(table)
    with atomic_path(path) as tmp:
        pq.write_table(atable, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def unified_schema(schemas):
    """One Arrow schema for all parts: missing fields nullable, conflicting types as strings.

    Parameters
    ----------
    schemas : sequence of pyarrow.Schema

    Returns
    -------
    pyarrow.Schema
        Without metadata.
    """
    import pyarrow as pa
    plain = [s.remove_metadata() for s in schemas]
    try:
        return pa.unify_schemas(plain, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
        pass
    fields: dict[str, list] = {}
    for s in plain:
        for fld in s:
            fields.setdefault(fld.name, []).append(fld.type)
    out = []
    for name, types in fields.items():
        try:
            typ = pa.unify_schemas([pa.schema([(name, t)]) for t in types],
                                   promote_options="permissive").field(name).type
        except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
            typ = pa.string()
        out.append(pa.field(name, typ))
    return pa.schema(out)


def merged_columns_meta(schemas) -> dict:
    """Column metadata (unit, description, dtype) over all parts; first value wins."""
    out: dict = {}
    for s in schemas:
        raw = (s.metadata or {}).get(COLUMNS_META)
        for name, meta in (json.loads(raw) if raw else {}).items():
            have = out.setdefault(name, dict(meta))
            for key, value in meta.items():
                if have.get(key) in (None, "") and value not in (None, ""):
                    have[key] = value
            have["masked"] = bool(have.get("masked")) or bool(meta.get("masked"))
    return out


def parts_schema(schemas):
    """The unified schema of parts, with their merged column metadata."""
    return unified_schema(schemas).with_metadata(
        {COLUMNS_META: json.dumps(merged_columns_meta(schemas)).encode()})


def cast_to(table, schema):
    """An Arrow table with exactly ``schema``'s fields (missing ones null)."""
    import pyarrow as pa
    names = set(table.column_names)
    cols = [pa.nulls(len(table), fld.type) if fld.name not in names
            else table.column(fld.name) if table.schema.field(fld.name).type == fld.type
            else table.column(fld.name).cast(fld.type)   # (cast imports pyarrow.compute)
            for fld in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def iter_unified_parts(files: Sequence[str | Path]):
    """Read Parquet parts one at a time, each cast to one schema shared by all.

    A column missing from a part is null there; types that differ between
    parts are promoted (or become strings). Only the schemas are read up
    front, so memory holds one part at a time.

    Parameters
    ----------
    files : sequence of path-like
        Parquet parts written with :func:`table_to_arrow` tables.

    Yields
    ------
    pyarrow.Table
        Each part, in the order given, with the unified schema (column
        units and descriptions in its metadata; :func:`arrow_to_table`).
    """
    import pyarrow.parquet as pq
    schemas = [pq.read_schema(f) for f in files]
    if not schemas:
        return
    schema = parts_schema(schemas)
    for f in files:
        yield cast_to(pq.read_table(f), schema)
