"""tableio: atomic writes with provenance, reading user tables, required columns."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import QTable, Table

from xmpspec import InputError
from xmpspec.provenance import provenance_record
from xmpspec.tableio import atomic_path, read_provenance, read_table, require_columns, write_table


def _table():
    t = Table()
    t["name"] = ["J0845+1234", "J1012-0001"]
    t["z"] = [0.01234, 0.0421]
    t["f_ha"] = [12.5, 3.25] * u.Unit(1e-17 * u.erg / u.s / u.cm**2)
    t["n2_upper_limit"] = [False, True]
    t.meta["comment_text"] = "x"
    return t


def test_write_both_formats_with_provenance(tmp_path):
    prov = provenance_record(inputs=["a.fits", "b.fits"], step="measure", extra={"seed": 3})
    written = write_table(_table(), tmp_path / "out", provenance=prov, formats=("ecsv", "fits"))
    assert [p.name for p in written] == ["out.ecsv", "out.fits"]
    for p in written:
        t = read_table(p)
        assert list(t["name"]) == ["J0845+1234", "J1012-0001"]
        assert np.allclose(t["z"], [0.01234, 0.0421])
        assert t["f_ha"].unit == u.Unit(1e-17 * u.erg / u.s / u.cm**2)
        assert list(t["n2_upper_limit"]) == [False, True]
        pr = read_provenance(p)
        assert pr["step"] == "measure"
        assert pr["inputs"] == prov["inputs"]
        assert pr["extra"]["seed"] == 3
        assert "astropy" in pr["versions"]
    # nothing temporary is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ecsv", "out.fits"]


def test_write_by_suffix_and_overwrite(tmp_path):
    p = tmp_path / "t.csv"
    assert write_table(_table(), p) == [p]
    assert read_table(p)["name"][1] == "J1012-0001"
    with pytest.raises(InputError, match="exists and overwrite is off"):
        write_table(_table(), p, overwrite=False)
    with pytest.raises(InputError, match="unknown table format '.xyz'"):
        write_table(_table(), tmp_path / "t.xyz")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "keep.ecsv"
    write_table(_table(), p)
    before = p.read_text()
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("killed")
    assert p.read_text() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["keep.ecsv"]


def test_read_table_formats(tmp_path):
    t = _table()
    t.write(tmp_path / "a.txt", format="ascii.basic")
    t.write(tmp_path / "a.tsv", format="ascii.tab")
    t.write(tmp_path / "a.parquet", format="parquet")
    for name in ("a.txt", "a.tsv", "a.parquet"):
        r = read_table(tmp_path / name)
        assert list(r["name"]) == ["J0845+1234", "J1012-0001"], name
    q = read_table(write_table(t, tmp_path / "q.ecsv")[0], qtable=True)
    assert isinstance(q, QTable) and isinstance(q["f_ha"], u.Quantity)
    # explicit format for an unusual suffix
    (tmp_path / "a.data").write_text((tmp_path / "a.txt").read_text())
    assert len(read_table(tmp_path / "a.data", format="ascii.basic")) == 2


@pytest.mark.parametrize("content, fragment", [
    (None, "file not found"),
    (b"", "file is empty"),
    (b"SIMPLE  =                    T\x00\x01garbage", "cannot read table"),
])
def test_read_table_bad_input(tmp_path, content, fragment):
    p = tmp_path / "bad.fits"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(InputError, match=fragment) as ei:
        read_table(p)
    assert str(ei.value).startswith(str(p))
    with pytest.raises(InputError, match="is a folder"):
        read_table(tmp_path)


def test_read_table_inconsistent_csv(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n1,2,3\n4,5,6,7\n")
    with pytest.raises(InputError, match="cannot read table"):
        read_table(p)


def test_require_columns():
    t = _table()
    require_columns(t, ["name", "z"])
    with pytest.raises(InputError, match=r"missing required column\(s\) 'ra', 'dec'; "
                                         r"present: name, z, f_ha, n2_upper_limit") as ei:
        require_columns(t, ["name", "ra", "dec"], source="targets.csv")
    assert str(ei.value).startswith("targets.csv: ")
