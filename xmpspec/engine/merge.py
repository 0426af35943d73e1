"""Merge of Parquet parts into the final tables (ECSV, FITS, Parquet), in input order.

One merge for every command of the engine: ``xmpspec batch`` (parts named
in its manifest) and ``xmpspec measure`` (parts of its temporary folder).
Parts whose rows are already in input order are streamed part by part (one
part in memory); otherwise the rows are sorted in memory; above
``max_text_rows`` rows only Parquet is written (streamed, bounded memory).
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..arrowio import (
    PROVENANCE_META,
    arrow_to_table,
    cast_to,
    parts_schema,
    write_part,
)

__all__ = ["merge_parts", "order_parts", "iter_parts", "stream_parquet"]

log = logging.getLogger("xmpspec.engine")

#: Rows derived at once in a Parquet-only merge with derive (bounds the driver's memory;
#: results do not depend on it: derive seeds its Monte Carlo per object).
DERIVE_BLOCK_ROWS = 20_000


def order_parts(files: list[Path], order: dict) -> tuple[list[Path], bool]:
    """Parts in the input order of their first row, and whether their rows are then in order.

    Rows inside a part follow the input order; parts of a resumed or retried
    run may interleave (e.g. a retried input between two done ones), in
    which case the merge sorts the rows in memory.
    """
    import pyarrow.parquet as pq

    spans = {}
    for f in files:
        col = pq.ParquetFile(f).read(columns=["input_file"]).column(0).to_pylist()
        idx = [order.get(str(v), -1) for v in col]
        spans[f] = (idx[0] if idx else 0, idx[-1] if idx else 0,
                    all(a <= b for a, b in zip(idx, idx[1:], strict=False)))
    ordered = sorted(files, key=lambda f: spans[f][0])
    in_order = all(spans[f][2] for f in ordered) and all(
        spans[a][1] <= spans[b][0] for a, b in zip(ordered, ordered[1:], strict=False))
    return ordered, in_order


def iter_parts(files: list[Path], holder: dict | None = None, drop: Sequence[str] = ()):
    """Each part as Arrow, cast to one schema.

    Parameters
    ----------
    files : list of Path
        Parquet parts.
    holder : dict, optional
        Input -> chunk id holding it (a batch manifest): only rows of inputs
        a part's chunk holds are kept (an input retried in a later chunk is
        taken from that chunk only).
    drop : sequence of str
        Columns left out (``input_file`` in ``xmpspec measure`` tables).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    schema = parts_schema([pq.read_schema(f) for f in files])
    if drop:
        keep = [i for i, name in enumerate(schema.names) if name not in drop]
        schema = pa.schema([schema.field(i) for i in keep], metadata=schema.metadata)
    by_chunk: dict[str, list[str]] = {}
    for p, c in (holder or {}).items():
        by_chunk.setdefault(c, []).append(p)
    for f in files:
        t = pq.ParquetFile(f).read()  # not read_table: it imports pyarrow.dataset and pandas
        if holder is not None:
            import pyarrow.compute as pc  # imported here: 40 ms that `measure` does not need
            mine = pa.array(by_chunk.get(f.name.split(".")[0], []), pa.string())
            t = t.filter(pc.is_in(t.column("input_file"), value_set=mine))
        yield cast_to(t, schema)


def stream_parquet(tables, target: Path, prov: dict) -> Path:
    """Write Arrow tables (one schema) into one Parquet file, atomically."""
    import pyarrow.parquet as pq

    from ..tableio import atomic_path
    writer = None
    with atomic_path(target) as tmp:
        try:
            for t in tables:
                if writer is None:
                    meta = dict(t.schema.metadata or {})
                    meta[PROVENANCE_META] = json.dumps(prov, default=str).encode()
                    writer = pq.ParquetWriter(tmp, t.schema.with_metadata(meta))
                writer.write_table(t.replace_schema_metadata(writer.schema.metadata))
        finally:
            if writer is not None:
                writer.close()
    return target


def _stream_text(parts: Callable, stem: Path, prov: dict, formats: Sequence[str]) -> list[Path]:
    """ECSV/FITS (:mod:`xmpspec.tablestream`) and Parquet, written one part at a time."""
    from ..tablestream import write_table_stream
    out: list[Path] = []
    text = [f for f in formats if f in ("ecsv", "fits")]
    if text:
        out += write_table_stream(parts, stem, provenance=prov, formats=text)
    if "parquet" in formats:
        out.append(stream_parquet(parts(), stem.with_suffix(".parquet"), prov))
    return out


def _derive(table, config, source: str):
    """Derived properties of a merged objects table (as ``xmpspec derive`` computes them)."""
    from ..physics.derive import derive_table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return derive_table(table, config=config, source=source)


def _merge_large_derived(files, holder, target: Path, prov: dict, tmpdir: Path, block: int,
                         config, source: str) -> Path:
    """Parquet-only merge with derive: measured rows streamed, derived in fixed blocks.

    Blocks of at most ``block`` rows keep the driver's memory bounded; the
    derived values do not depend on the blocks (per-object Monte Carlo
    seeds, :func:`xmpspec.physics.derive.object_rng`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    shutil.rmtree(tmpdir, ignore_errors=True)
    tmpdir.mkdir(parents=True)
    try:
        measured = stream_parquet(iter_parts(files, holder), tmpdir / "measured.parquet", prov)
        pieces = []
        for k, batch in enumerate(pq.ParquetFile(measured).iter_batches(batch_size=block)):
            t = arrow_to_table(pa.Table.from_batches([batch]))
            piece = tmpdir / f"block{k:05d}.parquet"
            write_part(_derive(t, config, source), piece)
            pieces.append(piece)
        schema = parts_schema([pq.read_schema(f) for f in pieces])
        return stream_parquet((cast_to(pq.ParquetFile(f).read(), schema) for f in pieces), target,
                              prov)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def merge_parts(files: list[Path], stem: Path, prov: dict, *, order: dict,
                holder: dict | None = None, formats: Sequence[str] = ("ecsv", "fits", "parquet"),
                max_text_rows: int = 500_000, derive: bool = False, config=None,
                scratch: Path | None = None, drop: Sequence[str] = ()) -> list[Path]:
    """Merge Parquet parts into one table ``stem.<format>``, rows in input order.

    Parameters
    ----------
    files : list of Path
        The parts (each with an ``input_file`` column).
    stem : Path
        Output stem.
    prov : dict
        Provenance record of the merged table.
    order : dict
        Input -> its position; rows are written in this order.
    holder : dict, optional
        Input -> chunk holding it (see :func:`iter_parts`).
    formats : sequence of str
        ``ecsv``, ``fits``, ``parquet``.
    max_text_rows : int
        Above this many rows only Parquet is written (``batch.merge_text_max_rows``).
    derive : bool
        Add the derived properties (objects tables of ``batch --derive``).
    config : Config, optional
        Configuration of derive.
    scratch : Path, optional
        Temporary folder of a Parquet-only merge with derive.
    drop : sequence of str
        Columns left out of the merged table.

    Returns
    -------
    list of Path
        Files written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..tableio import write_table
    files, in_order = order_parts(list(files), order)
    nrows = sum(pq.read_metadata(f).num_rows for f in files)
    stem = Path(stem)
    if nrows <= max_text_rows and in_order and not derive:
        # rows already in input order: written part by part, one part in memory
        return _stream_text(lambda: iter_parts(files, holder, drop), stem, prov, formats)
    if nrows <= max_text_rows:
        merged = pa.concat_tables(list(iter_parts(files, holder)))
        table = arrow_to_table(merged)
        idx = np.array([order[str(p)] for p in table["input_file"]])
        table = table[np.argsort(idx, kind="stable")]
        if derive:
            table = _derive(table, config, str(stem))
        for name in drop:
            if name in table.colnames:
                table.remove_column(name)
        return write_table(table, stem, provenance=prov, formats=formats)
    log.info("%s: %d rows, writing Parquet only (batch.merge_text_max_rows = %d)",
             stem.name, nrows, max_text_rows)
    target = stem.with_suffix(".parquet")
    if derive:
        block = max(min(int(max_text_rows), DERIVE_BLOCK_ROWS), 1)
        out = [_merge_large_derived(files, holder, target, prov,
                                    scratch or stem.parent / f".{stem.name}-derive", block,
                                    config, str(stem))]
    else:
        out = [stream_parquet(iter_parts(files, holder, drop), target, prov)]
    for ext in ("ecsv", "fits"):  # do not leave stale copies of an earlier merge
        stem.with_suffix(f".{ext}").unlink(missing_ok=True)
    return out
