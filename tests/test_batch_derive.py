"""``xmpspec batch --derive`` at a few thousand spectra: streamed Parquet merge, derive in blocks.

The merge of a large run writes Parquet only and derives the objects table
block by block; the result must equal ``xmpspec derive`` run on the merged
measurement table, with every input exactly once, and the driver must never
hold more than a block (or a part) of the table: checked on every table the
merge converts or casts. (Monte Carlo draws lowered to 50 to keep it fast.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_batch import write_simulated

import xmpspec.engine.merge as merge_module
import xmpspec.physics.derive as derive_module
from xmpspec.arrowio import read_parquet
from xmpspec.cli import main as cli_main
from xmpspec.engine import MANIFEST_NAME
from xmpspec.physics.derive import DERIVED_COLUMNS
from xmpspec.tableio import read_table

N_SPECTRA = 2000
TEXT_MAX_ROWS = 200  # objects (2400 rows) and lines take the Parquet-only path, 12+ blocks


def _chunk_records(outdir: Path) -> list[dict]:
    return [r for r in (json.loads(x) for x in (outdir / MANIFEST_NAME).read_text().splitlines()
                        if x.strip()) if r["type"] == "chunk"]


def _assert_columns_equal(a, b, names) -> None:
    """Same values, masks and units; text compared with masked = '' (ECSV reads '' as masked)."""
    for name in names:
        ca, cb = a[name], b[name]
        if ca.dtype.kind in "USO":
            fa = [str(v) for v in np.ma.filled(np.ma.asarray(ca).astype(str), "")]
            fb = [str(v) for v in np.ma.filled(np.ma.asarray(cb).astype(str), "")]
            assert fa == fb, name
            continue
        ma, mb = np.ma.getmaskarray(ca), np.ma.getmaskarray(cb)
        np.testing.assert_array_equal(ma, mb, err_msg=name)
        va, vb = np.ma.getdata(ca)[~ma], np.ma.getdata(cb)[~mb]
        if va.dtype.kind == "f":
            np.testing.assert_array_equal(va, vb, err_msg=name)
        else:
            assert [str(v) for v in va] == [str(v) for v in vb], name
        assert getattr(ca, "unit", None) == getattr(cb, "unit", None), name


@pytest.mark.slow
def test_large_batch_derive_equals_derive_of_merged_table(tmp_path, monkeypatch):
    t0 = time.perf_counter()
    folder = tmp_path / "spectra"
    inputs = write_simulated(folder, N_SPECTRA, seed=21)
    t_sim = time.perf_counter() - t0
    cfg_file = tmp_path / "xmpspec.toml"
    cfg_file.write_text(f"[batch]\nmerge_text_max_rows = {TEXT_MAX_ROWS}\n"
                        "[abundances]\nmc_draws = 50\n")
    out = tmp_path / "out"
    # every table the merge derives, converts to astropy or casts (Arrow): bounded size
    rows_derived: list[int] = []
    rows_converted: list[int] = []
    rows_cast: list[int] = []
    real_derive, real_convert, real_cast = (derive_module.derive_table, merge_module.arrow_to_table,
                                            merge_module.cast_to)

    def spy_derive(table, *args, **kwargs):
        rows_derived.append(len(table))
        return real_derive(table, *args, **kwargs)

    def spy_convert(atable):
        rows_converted.append(atable.num_rows)
        return real_convert(atable)

    def spy_cast(atable, schema):
        rows_cast.append(atable.num_rows)
        return real_cast(atable, schema)

    monkeypatch.setattr(derive_module, "derive_table", spy_derive)
    monkeypatch.setattr(merge_module, "arrow_to_table", spy_convert)
    monkeypatch.setattr(merge_module, "cast_to", spy_cast)
    cmd = ["-q", "-c", str(cfg_file), "batch", str(folder), "--derive", "-w", "2",
           "--chunk-size", "100", "-o", str(out)]
    t1 = time.perf_counter()
    code = cli_main(cmd)
    t_batch = time.perf_counter() - t1
    monkeypatch.undo()

    # ---- complete, no duplicates, Parquet only -------------------------------------
    failed = read_table(out / "failed.ecsv")
    done = sorted(str(p) for p in inputs if str(p) not in
                  set(failed["input_file"]))
    assert code == (1 if len(failed) else 0)
    assert len(failed) <= 0.02 * N_SPECTRA, list(failed["reason"][:5])
    assert not (out / "objects.ecsv").exists() and not (out / "lines.fits").exists()
    derived = read_parquet(out / "objects.parquet")
    assert list(derived["input_file"]) == done  # input order, each input once
    lines = read_parquet(out / "lines.parquet")
    pairs = list(zip(lines["input_file"], lines["line"], strict=True))
    assert len(pairs) == len(set(pairs))
    assert sorted(set(lines["input_file"])) == done
    assert len(lines) >= 18 * len(done)
    assert set(DERIVED_COLUMNS) <= set(derived.colnames)
    n_direct = int(np.count_nonzero(~np.ma.getmaskarray(derived["oh_direct_err"])))
    assert n_direct > 20  # the Monte Carlo ran for many objects
    # the driver held at most a block of the objects table, or one part, at any time
    part_rows = max(pq.read_metadata(f).num_rows for f in (out / "parts").glob("*.parquet"))
    assert rows_derived and max(rows_derived) <= TEXT_MAX_ROWS
    assert sum(rows_derived) == len(done)
    assert max(rows_converted) <= TEXT_MAX_ROWS
    assert max(rows_cast) <= max(part_rows, TEXT_MAX_ROWS) < len(lines) / 10

    # ---- the same run without --derive: resumes (nothing to do), merges measurements only
    n_chunks = len(_chunk_records(out))
    code2 = cli_main([c for c in cmd if c != "--derive"])
    assert code2 == code and len(_chunk_records(out)) == n_chunks
    measured = read_parquet(out / "objects.parquet")
    assert "oh_n2" not in measured.colnames and len(measured) == len(done)

    # ---- xmpspec derive on the merged measurement table gives the same columns -----
    t2 = time.perf_counter()
    assert cli_main(["-q", "-c", str(cfg_file), "derive", str(out / "objects.parquet"),
                     "-o", str(tmp_path / "derived")]) == 0
    t_derive = time.perf_counter() - t2
    reference = read_table(tmp_path / "derived.ecsv")
    assert list(reference["input_file"]) == done
    _assert_columns_equal(reference, derived, DERIVED_COLUMNS)
    _assert_columns_equal(reference, derived, [c for c in measured.colnames])

    print(f"\n{N_SPECTRA} spectra: simulate {t_sim:.0f} s, batch --derive {t_batch:.0f} s, "
          f"derive {t_derive:.0f} s; largest table held by the merge: {max(rows_cast)} rows "
          f"(Arrow), {max(rows_converted)} rows (astropy) of {len(lines)} + {len(derived)}")
