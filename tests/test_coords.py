"""The core readers every command shares: sky coordinates (xmpspec.coords) and
true/false flags (xmpspec.boolparse), and that the older entry points delegate to them."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, Table

from xmpspec.boolparse import bool_array, column_bool, parse_bool
from xmpspec.coords import parse_angle, parse_angles, parse_coordinates, parse_position
from xmpspec.errors import InputError

# XMP0153-1413-like position written every way a table may carry it
RA_DEG = (2 + 24 / 60 + 16.71 / 3600) * 15.0
DEC_DEG = -(14 + 13 / 60 + 5.2 / 3600)


@pytest.mark.parametrize("ra, dec", [
    (RA_DEG, DEC_DEG),
    (f"{RA_DEG:.8f}", f"{DEC_DEG:.8f}"),
    ("02:24:16.71", "-14:13:05.2"),
    ("02 24 16.71", "-14 13 05.2"),
    ("2h24m16.71s", "-14d13m05.2s"),
    ("  02:24:16.71 ", "-14°13′05.2″"),
    (b"02:24:16.71", b"-14:13:05.2"),
    (RA_DEG * u.deg, DEC_DEG * u.deg),
    ((RA_DEG * u.deg).to(u.hourangle), (DEC_DEG * u.deg).to(u.rad)),
])
def test_every_form_gives_the_same_position(ra, dec):
    a, d = parse_position(ra, dec, "t.csv")
    assert a == pytest.approx(RA_DEG, abs=1e-7) and d == pytest.approx(DEC_DEG, abs=1e-7)


def test_sign_of_small_negative_declinations_and_ra_wrap():
    assert parse_angle("-00:30:00", "dec") == pytest.approx(-0.5)
    assert parse_angle("-00 00 30", "dec") == pytest.approx(-30 / 3600)
    assert parse_angle(-10.0, "ra") == pytest.approx(350.0)
    assert parse_angle("360", "ra") == pytest.approx(0.0)
    assert parse_angle("23:59:59.99", "ra") == pytest.approx(359.99995833, abs=1e-7)


@pytest.mark.parametrize("blank", [None, "", "  ", "--", "nan", "NaN", "None", float("nan"),
                                   np.ma.masked])
def test_empty_entries_are_no_position(blank):
    assert parse_angle(blank, "ra") is None
    assert parse_position(blank, "+01:00:00") is None


def test_errors_name_file_row_and_column():
    with pytest.raises(InputError) as e:
        parse_angles(np.array(["02:24:16.71", "12 xx 00"]), "ra", "targets.csv", column="RA")
    msg = str(e.value)
    assert msg.startswith("targets.csv: ") and "column 'RA'" in msg and "row 2" in msg
    assert "12 xx 00" in msg
    with pytest.raises(InputError, match=r"targets.csv: column 'dec' row 1: declination out"):
        parse_angles([95.0], "dec", "targets.csv")
    with pytest.raises(InputError, match=r"row 3: declination out of range"):
        parse_angles(["+10:00:00", "-10:00:00", "+91:00:00"], "dec", "t.csv", column="dec")
    with pytest.raises(InputError, match="not an angle"):
        parse_angles(Table({"ra": [1.0]}, units={"ra": u.m})["ra"], "ra", "t.csv")
    with pytest.raises(InputError, match="minutes|cannot read"):
        parse_angle("10:75:00", "ra", "t.csv")


def test_columns_with_units_masks_and_mixed_text():
    t = Table({"ra": [1.5, 2.0], "dec": [-10.0, 5.0]}, units={"ra": u.rad})
    c, ok = parse_coordinates(t["ra"], t["dec"])
    assert ok.all() and c.ra.deg[0] == pytest.approx(np.degrees(1.5))
    ra = MaskedColumn(["02:24:16.71", "x", f"{RA_DEG}"], mask=[False, True, False], name="ra")
    dec = MaskedColumn(["-14:13:05.2", "", f"{DEC_DEG}"], name="dec")
    c, ok = parse_coordinates(ra, dec, "t.csv")
    assert list(ok) == [True, False, True]
    assert c[0].separation(c[2]).arcsec < 1e-6
    assert parse_coordinates(["", "--"], ["", ""])[0] is None


def test_matches_astropy_skycoord_on_many_positions():
    rng = np.random.default_rng(1)
    ra = rng.uniform(0, 360, 200)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 200)))
    sc = SkyCoord(ra * u.deg, dec * u.deg)
    text_ra = sc.ra.to_string(unit=u.hourangle, sep=":", precision=4, pad=True)
    text_dec = sc.dec.to_string(unit=u.deg, sep=" ", precision=3, alwayssign=True, pad=True)
    c, ok = parse_coordinates(text_ra, text_dec)
    assert ok.all() and c.separation(sc).arcsec.max() < 0.01


def test_old_entry_points_delegate():
    from xmpspec.compare import parse_coordinates as compare_parse
    from xmpspec.io._common import position_deg
    c, ok = compare_parse(["02 24 16.71"], ["-14 13 05.2"], "cat.csv")
    assert c.ra.deg[0] == pytest.approx(RA_DEG)
    assert position_deg("2h24m16.71s", "-14d13m05.2s", None)[1] == pytest.approx(DEC_DEG)
    with pytest.raises(InputError, match="cat.csv: column 'dec' row 1"):
        compare_parse(["02 24 16.71"], ["-14 xx"], "cat.csv")


# ----------------------------------------------------------------------------- booleans

@pytest.mark.parametrize("value", [True, 1, 2.0, np.True_, "True", "true", " T ", "yes", "Y",
                                   "1", "1.0", "<", b"true"])
def test_true_spellings(value):
    assert parse_bool(value) is True


@pytest.mark.parametrize("value", [False, 0, 0.0, float("nan"), np.False_, "False", "f", "no",
                                   "N", "0", "", "--", "nan", "None", None, np.ma.masked])
def test_false_spellings(value):
    assert parse_bool(value) is False


def test_bool_columns_of_every_kind_and_errors():
    assert list(bool_array(MaskedColumn([True, True, False], mask=[False, True, False]))) == [
        True, False, False]
    assert list(bool_array(np.array([0, 3, -1]))) == [False, True, True]
    assert list(bool_array(np.array([np.nan, 1.0, 0.0]))) == [False, True, False]
    t = Table({"flag": ["yes", "no", "<", ""]})
    assert list(column_bool(t, "flag", "t.csv")) == [True, False, True, False]
    assert not column_bool(t, "absent").any() and len(column_bool(t, "absent")) == 4
    with pytest.raises(InputError, match=r"t.csv: column 'flag' row 2: cannot read 'maybe'"):
        column_bool(Table({"flag": ["yes", "maybe"]}), "flag", "t.csv")


def test_compare_and_physics_read_flags_the_same_way():
    """as_bool (compare, products) and column_bool (derive) once accepted different values."""
    from xmpspec.compare import as_bool
    from xmpspec.physics._columns import column_bool as physics_bool
    t = Table({"f": ["True", "0", "<", "--", "nan", "Y", "1.0"]})
    expected = [True, False, True, False, False, True, True]
    assert list(as_bool(t["f"], "t.csv")) == expected
    assert list(physics_bool(t, "f", "t.csv")) == expected
    for fn in (lambda: as_bool(Table({"f": ["x"]})["f"], "t.csv"),
               lambda: physics_bool(Table({"f": ["x"]}), "f", "t.csv")):
        with pytest.raises(InputError, match="column 'f' row 1"):
            fn()
