"""Parquet and Arrow I/O without pandas (xmpspec.arrowio; issue 14 "fresh installs")."""

from __future__ import annotations

import os
import sys

import astropy.units as u
import numpy as np
import pytest
from astropy.table import MaskedColumn, QTable, Table
from test_batch import assert_tables_equal

from xmpspec.arrowio import arrow_to_table, iter_unified_parts, table_to_arrow
from xmpspec.errors import InputError
from xmpspec.tableio import read_table


def run_without_pandas(tmp_path, code: str) -> str:
    """Run ``code`` in a fresh interpreter where ``import pandas`` fails (fresh install)."""
    import subprocess
    fake = tmp_path / "nopandas" / "pandas"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('pandas is not installed')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(fake.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def sample() -> Table:
    t = Table()
    t["name"] = ["J0845+1234", "Léo-P", "SIM 3"]
    t["f_ha"] = MaskedColumn([1.5, np.nan, 3.25], mask=[False, True, False], unit="1e-17 erg/(s cm2)",
                             description="Halpha flux")
    t["n2_state"] = MaskedColumn(["detected", "", "upper_limit"], mask=[False, True, False])
    t["n_pix"] = [10, 20, 30]
    t["ok"] = [True, False, True]
    t["z"] = [0.02, 0.03, 0.04] * u.dimensionless_unscaled
    return t


def test_astropy_written_parquet_read_without_pandas(tmp_path):
    t = sample()
    t.meta["survey"] = "xmp"
    path = tmp_path / "a.parquet"
    t.write(path, format="parquet")
    q = QTable({"wave": [6563.0, 6585.0] * u.AA})
    q.write(tmp_path / "q.parquet", format="parquet")
    code = f"""
import json
from xmpspec.arrowio import read_parquet
from xmpspec.tableio import read_table
import astropy.io.misc.parquet as astropy_parquet
from astropy.table import Table
astropy_parquet.HAS_PANDAS = False       # as astropy sees an environment without pandas
try:
    import pandas
    blocked = False
except ImportError:
    blocked = True
try:
    Table.read({str(path)!r})
    astropy_reads = True
except ModuleNotFoundError:
    astropy_reads = False
out = []
for got in (read_parquet({str(path)!r}), read_table({str(path)!r})):
    out.append(dict(meta=got.meta["survey"], unit=str(got["f_ha"].unit),
                    desc=got["f_ha"].description,
                    mask=[bool(m) for m in got["f_ha"].mask],
                    smask=[bool(m) for m in got["n2_state"].mask],
                    names=list(got["name"]), f=float(got["f_ha"][2]),
                    ok=[bool(v) for v in got["ok"]]))
wave = read_table({str(tmp_path / "q.parquet")!r}, qtable=True)["wave"]
print(json.dumps(dict(blocked=blocked, astropy_reads=astropy_reads, tables=out,
                      wave=str(wave.unit))))
"""
    import json
    res = json.loads(run_without_pandas(tmp_path, code).strip().splitlines()[-1])
    assert res["blocked"]          # pandas cannot be imported there,
    assert not res["astropy_reads"]  # astropy's reader refuses (the fresh-install failure)
    for got in res["tables"]:
        assert got["meta"] == "xmp"
        assert u.Unit(got["unit"]) == u.Unit("1e-17 erg/(s cm2)")
        assert got["desc"] == "Halpha flux"
        assert got["mask"] == [False, True, False] and got["smask"] == [False, True, False]
        assert got["names"] == ["J0845+1234", "Léo-P", "SIM 3"]
        assert got["f"] == 3.25 and got["ok"] == [True, False, True]
    assert u.Unit(res["wave"]) == u.AA


def test_engine_parquet_round_trip(tmp_path):
    import pyarrow.parquet as pq
    t = sample()
    pq.write_table(table_to_arrow(t), tmp_path / "p.parquet")
    got = read_table(tmp_path / "p.parquet")
    ref = arrow_to_table(table_to_arrow(t))
    assert_tables_equal(ref, got)
    assert got["f_ha"].unit == u.Unit("1e-17 erg/(s cm2)")
    # parts with different columns unify (missing -> masked), one part at a time
    pq.write_table(table_to_arrow(t[["name", "n_pix"]]), tmp_path / "p2.parquet")
    parts = list(iter_unified_parts([tmp_path / "p.parquet", tmp_path / "p2.parquet"]))
    assert parts[0].schema.names == parts[1].schema.names
    merged = arrow_to_table(parts[1])
    assert bool(np.all(np.ma.getmaskarray(merged["f_ha"])))


def test_bad_parquet_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="cannot read Parquet") as ei:
        read_table(bad)
    assert str(ei.value).startswith(str(bad))
