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


def _awkward_table():
    """Every column kind xmpspec writes, with the values that need care in ECSV."""
    t = Table()
    t["name"] = ["a b", 'say "hi"', "", "  padded\t", "Léo-P", "plain"]
    t["x"] = [1.0, -0.0, np.nan, np.inf, 1e-5, 123456789012345678.0]
    t["tiny"] = [1e-300, 5e-324, 0.1 + 0.2, 1e16, 1e15, -2.5e-7]
    t["n"] = np.array([0, -3, 2**40, 7, 8, 9], dtype=np.int64)
    t["u8"] = np.array([0, 1, 2, 3, 4, 255], dtype=np.uint8)
    t["flag"] = [True, False, True, False, True, False]
    t["m"] = np.ma.MaskedArray([1.5, 2.5, 3.5, 4.5, 5.5, 6.5], mask=[0, 1, 0, 0, 1, 0])
    t["ms"] = np.ma.MaskedArray(["p", "q", "", "r s", "t", "u"], mask=[0, 0, 1, 0, 0, 1])
    t["mb"] = np.ma.MaskedArray([True, False, True, True, False, False],
                                mask=[0, 0, 0, 1, 0, 0])
    t["mi"] = np.ma.MaskedArray([1, 2, 3, 4, 5, 6], mask=[1, 0, 0, 0, 0, 1])
    t["f32"] = np.array([0.1, 1 / 3, np.nan, 2.5, -1e-8, 3e38], dtype=np.float32)
    t["x"].unit = "Angstrom"
    t["tiny"].format = ".3f"                     # ECSV ignores display formats
    t["n"].unit = "s"
    t["m"].description = "a masked float"
    t.meta["provenance"] = {"inputs": ["odd dir/ünïcødé spéc/spec ü 5.fits"], "step": "t"}
    return t


def test_ecsv_writer_matches_astropy_byte_for_byte(tmp_path):
    """The vectorised ECSV data writer gives astropy's file exactly, and reads back the same."""
    import io

    from xmpspec.tableio import ecsv_data_lines, ecsv_fast_supported, write_ecsv

    t = _awkward_table()
    assert ecsv_fast_supported(t)
    ref = io.StringIO()
    t.write(ref, format="ascii.ecsv")
    ours = io.StringIO()
    write_ecsv(t, ours)
    assert ours.getvalue() == ref.getvalue()
    assert ecsv_data_lines(t[:0]) == ""
    # through write_table: same values, masks, units, descriptions, meta as astropy's file
    path = write_table(t, tmp_path / "t.ecsv")[0]
    back = Table.read(path)
    theirs = Table.read(ref.getvalue(), format="ascii.ecsv")
    assert back.colnames == theirs.colnames
    for name in t.colnames:
        a, b = back[name], theirs[name]
        assert a.dtype == b.dtype and a.unit == b.unit and a.description == b.description
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
        assert np.array_equal(np.ma.filled(a, a.dtype.type(0)), np.ma.filled(b, b.dtype.type(0)),
                              equal_nan=a.dtype.kind == "f")
    assert back.meta["provenance"] == t.meta["provenance"]
    # mixin columns (Quantity) go through astropy's writer unchanged
    q = QTable(t[["name", "x"]])
    assert not ecsv_fast_supported(q)
    ours = io.StringIO()
    write_ecsv(q, ours)
    ref = io.StringIO()
    q.write(ref, format="ascii.ecsv")
    assert ours.getvalue() == ref.getvalue()


def test_streamed_ecsv_equals_write_table(tmp_path):
    from xmpspec.tablestream import write_table_stream

    t = _awkward_table()
    prov = provenance_record(inputs=["ü.fits"], step="test")
    write_table(t, tmp_path / "whole", provenance=prov, formats=("ecsv", "fits"))
    write_table_stream(lambda: [t[:2], t[2:5], t[5:]], tmp_path / "parts", provenance=prov)
    assert (tmp_path / "whole.ecsv").read_text("utf-8") == \
        (tmp_path / "parts.ecsv").read_text("utf-8")
    a, b = Table.read(tmp_path / "whole.fits"), Table.read(tmp_path / "parts.fits")
    assert a.colnames == b.colnames
    for name in a.colnames:
        assert np.array_equal(np.ma.filled(a[name], a[name].dtype.type(0)),
                              np.ma.filled(b[name], b[name].dtype.type(0)),
                              equal_nan=a[name].dtype.kind == "f")
    assert list(np.ma.filled(a["name"], "")) == ["a b", 'say "hi"', "", "  padded\t", "Leo-P", "plain"]


def test_fits_ascii_rules():
    from xmpspec.tableio import fits_ascii

    assert fits_ascii("J0845+1234") == "J0845+1234"
    assert fits_ascii("Léo-P") == "Leo-P"
    assert fits_ascii("odd dir/ünïcødé spéc/spec ü 5.fits") == "odd dir/unicode spec/spec u 5.fits"
    assert fits_ascii("Straße Ærø Łódź") == "Strasse AEro Lodz"
    assert fits_ascii("NGC 4214 – halo") == "NGC 4214 - halo"
    assert fits_ascii("天体") == "\\u5929\\u4f53"
    assert fits_ascii("x\U0001f600") == "x\\U0001f600"
    assert all(fits_ascii(s).isascii() for s in ("Léo-P", "天体", "ß", "\u0301"))


def test_unwritable_outputs_are_input_errors(tmp_path, monkeypatch):
    import tempfile

    from xmpspec.tableio import ensure_output_dir

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="a_file.*under an existing file"):
        write_table(_table(), blocker / "sub" / "out", formats=("ecsv",))
    with pytest.raises(InputError, match="a_file.*not a folder"):
        ensure_output_dir(blocker)
    folder = tmp_path / "dir"
    (folder / "t.ecsv").mkdir(parents=True)
    with pytest.raises(InputError, match="t.ecsv: is a folder"):
        write_table(_table(), folder / "t.ecsv")

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(InputError, match=r"dir: cannot write into the output folder "
                                         r"\(permission denied\)"):
        write_table(_table(), folder / "x.fits")
    monkeypatch.undo()
    monkeypatch.setattr("os.access", lambda *a, **k: False)
    with pytest.raises(InputError, match="dir: output folder is not writable"):
        write_table(_table(), folder / "x.fits")
    assert not list(folder.glob(".*part*"))


@pytest.mark.parametrize("drop", [[], ["mi"]])
def test_streamed_fits_rows_are_astropys_bytes(tmp_path, drop):
    """Rows packed with NumPy (tablestream._encode_rows) = the bytes astropy writes."""
    from astropy.io import fits

    from xmpspec.tablestream import write_table_stream

    t = _awkward_table()
    t.remove_columns(drop)
    write_table(t, tmp_path / "whole.fits")
    write_table_stream(lambda: [t[:2], t[2:5], t[5:]], tmp_path / "parts", formats=("fits",))
    with fits.open(tmp_path / "whole.fits") as a, fits.open(tmp_path / "parts.fits") as b:
        assert a[1].data.tobytes() == b[1].data.tobytes()
        ha, hb = a[1].header, b[1].header
        assert [(c.keyword, c.value) for c in ha.cards] == \
            [(c.keyword, c.value) for c in hb.cards if c.keyword in ha]


def test_fits_header_meta_is_ascii(tmp_path):
    """Non-ASCII or multi-line table metadata never breaks the FITS header; ECSV keeps it."""
    from astropy.io import fits

    t = _table()
    t.meta.update({"OBSERVER": "Zoë Ünal", "NOTE": "two\nlines", "ÄKEY": "x"})
    ecsv, fpath = write_table(t, tmp_path / "m", formats=("ecsv", "fits"))
    with fits.open(fpath) as hdul:
        assert hdul[1].header["OBSERVER"] == "Zoe Unal"
        assert hdul[1].header["NOTE"] == "two lines"
    back = Table.read(ecsv)
    assert back.meta["OBSERVER"] == "Zoë Ünal" and back.meta["ÄKEY"] == "x"


def _fits_ready_variants():
    """FITS-ready tables: the header-card builder describes some, astropy the others."""
    import astropy.units as u
    from astropy.table import MaskedColumn

    plain = Table()
    plain["name"] = np.array(["a", "b'c", ""], dtype="U7")
    plain["x"] = [1.0, np.nan, 2.0]
    plain["x"].unit = 1e-17 * u.erg / u.s / u.cm**2
    plain["v"] = np.array([1, 2, 3], dtype=np.int32)
    plain["v"].unit = "km / s"
    plain["f32"] = np.array([1, 2, 3], dtype=np.float32)
    plain["k"] = np.array([1, 2, 3], dtype=np.int64)
    plain["h"] = np.array([1, 2, 3], dtype=np.int16)
    plain["b"] = np.array([1, 2, 3], dtype=np.uint8)
    plain["ok"] = [True, False, True]
    plain["bytes"] = np.array([b"x", b"yy", b""], dtype="S4")
    plain["m"] = MaskedColumn([1.0, 2.0, 3.0], mask=[0, 1, 0], unit="Angstrom")
    plain["ms"] = MaskedColumn(np.array(["p", "q", "r"], dtype="U3"), mask=[1, 0, 0])
    plain["mb"] = MaskedColumn([True, False, True], mask=[0, 0, 0])
    plain["a_rather_long_column_name_that_still_fits_on_one_header_card_xx"] = [1.0, 2, 3]
    odd = []
    for change in ("masked int", "format", "fill value", "unit", "masked bool", "long name"):
        t = plain.copy()
        if change == "masked int":
            t["mi"] = MaskedColumn([1, 2, 3], mask=[0, 0, 0])
        elif change == "format":
            t["x"].format = ".3f"
        elif change == "fill value":
            t["m"].fill_value = -99.0
        elif change == "unit":
            t["x"].unit = u.def_unit("blob")
        elif change == "masked bool":
            t["mb"].mask[1] = True
        else:
            t["n" * 75] = [1.0, 2.0, 3.0]
        odd.append(t)
    return plain, odd


def test_fits_header_cards_are_astropys():
    """tablestream's binary-table header cards = the cards astropy's table_to_hdu writes."""
    import warnings

    from astropy.io import fits

    from xmpspec.tablestream import _card, _fits_hdu_bytes, _header_cards, _table_cards

    plain, odd = _fits_ready_variants()
    cards = _table_cards(plain)
    assert cards is not None                    # the direct path is taken for plain tables
    assert cards == _fits_hdu_bytes(plain)[0]   # keyword, value and the 80-character image
    for t in odd:
        try:
            ref = _fits_hdu_bytes(t)[0]
        except AssertionError:                  # astropy refuses a name > 68 characters
            assert _table_cards(t) is None
            with pytest.raises(AssertionError):
                _header_cards(t)
            continue
        assert _table_cards(t) is None or _table_cards(t) == ref
        assert _header_cards(t) == _fits_hdu_bytes(t[:0])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, value, comment in [("XMPSTEP", "measure", "xmpspec step"), ("K", "", ""),
                                    ("K", "it's", "c"), ("K", "x" * 68, "long comment"),
                                    ("K", "x" * 80, ""), ("NAXIS2", 3800, "rows"),
                                    ("K", -12, ""), ("K", "é", ""), ("K", True, ""),
                                    ("K", 2.5, "float")]:
            try:
                image = fits.Card(key, value, comment).image
            except ValueError:                  # not ASCII: refused by both
                with pytest.raises(ValueError):
                    _card(key, value, comment)
                continue
            assert _card(key, value, comment) == (key, value, image)


def test_ecsv_yaml_header_is_astropys(monkeypatch):
    """The ECSV YAML header (libyaml's emitter when available) = astropy's, header by header."""
    from collections import OrderedDict

    import astropy.table.meta as table_meta

    from xmpspec.io._write import _ColumnSpec, _yaml_header_lines

    t = _awkward_table()
    t["m"].description = "a: masked # float, 'quoted' " + "long " * 40
    metas = [
        {"provenance": {"command": "measure " + " ".join(f"dir/spec{i}.fits" for i in range(40)),
                        "created_utc": "2026-12-06T19:49:09Z", "n": 3, "x": 2.5,
                        "nan": float("nan"), "inf": float("inf"), "flag": True,
                        "none": None, "list": [1, "a", [2.0]], "tuple": (1, 2),
                        "nested": {"b": {"c": "d: e"}, "a": []}}},
        {"provenance": {"inputs": ["odd dir/ünïcødé spéc/spec ü 5.fits"] * 5}},  # quoted
        {"": "empty key", "k" * 120: "long key", "ok": {"": ""}},
        {},
    ]
    ref = table_meta.get_yaml_from_header
    for meta in metas:
        header = {"cols": [_ColumnSpec(c) for c in t.itercols()], "schema": "astropy-2.0"}
        if meta:
            header["meta"] = OrderedDict(meta)
        assert _yaml_header_lines(dict(header)) == ref(dict(header))
    # the plain header does not need astropy's emitter when libyaml is there
    import yaml

    if yaml.__with_libyaml__:
        monkeypatch.setattr(table_meta, "get_yaml_from_header", None)
        header = {"cols": [_ColumnSpec(c) for c in t.itercols()], "schema": "astropy-2.0",
                  "meta": OrderedDict(metas[0])}
        assert _yaml_header_lines(header) == ref(header)


def test_ecsv_plain_string_columns_are_astropys():
    """String columns with nothing to strip or quote (written as they are) = astropy's ECSV."""
    import io

    from astropy.table import MaskedColumn

    from xmpspec.tableio import write_ecsv

    t = Table()
    t["name"] = ["SIM00001", "J0845+1234", "x"]
    t["state"] = MaskedColumn(["detected", "upper_limit", "failed"], mask=[0, 1, 0])
    t["note"] = ["a", "b", "tab\there"]          # a tab: the general path for this column
    t["empty"] = ["a", "", "c"]                  # an empty value: quoted
    ref, ours = io.StringIO(), io.StringIO()
    t.write(ref, format="ascii.ecsv")
    write_ecsv(t, ours)
    assert ours.getvalue() == ref.getvalue()
