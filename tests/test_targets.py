"""Targets tables: validation when read, and the one matcher (name, else position)."""

from __future__ import annotations

import logging
import pickle

import pytest
from astropy.table import Table

from xmpspec.config import default_config
from xmpspec.errors import InputError
from xmpspec.lines.targets import (
    TargetMatcher,
    match_target,
    read_targets,
    target_matcher,
    validate_targets,
)


def _csv(tmp_path, text, name="targets.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_non_numeric_z_names_file_row_and_column(tmp_path):
    p = _csv(tmp_path, "name,z\nA,0.01\nB,abc\n")
    with pytest.raises(InputError) as e:
        read_targets(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and "column 'z' row 2" in msg and "'abc'" in msg


def test_negative_z_is_an_error(tmp_path):
    p = _csv(tmp_path, "name,z\nA,0.01\nB,0.02\nC,-0.003\n")
    with pytest.raises(InputError, match=r"column 'z' row 3: negative redshift \(-0.003\)"):
        read_targets(p)


def test_duplicate_names_with_different_z_name_both_rows(tmp_path):
    p = _csv(tmp_path, "name,z\nXMP 0153-1413,0.01\nB,0.02\nxmp0153-1413,0.05\n")
    with pytest.raises(InputError) as e:
        read_targets(p)
    msg = str(e.value)
    assert "rows 1, 3" in msg and "different z" in msg and "0.01, 0.05" in msg


def test_identical_duplicates_warn_and_first_row_wins(tmp_path, caplog):
    p = _csv(tmp_path, "name,z,n2_cnn\nA,0.01,-2.0\nB,0.02,-1.9\nA,0.01,-2.5\n")
    with caplog.at_level(logging.WARNING, logger="xmpspec.targets"):
        t = read_targets(p)
    assert "rows 1, 3" in caplog.text and "first row is used" in caplog.text
    assert match_target("A", None, None, None, t)["n2_cnn"] == -2.0


def test_missing_z_column_is_an_explicit_warning_or_an_error(tmp_path, caplog):
    p = _csv(tmp_path, "name,n2_cnn\nA,-2.0\n")
    with caplog.at_level(logging.WARNING, logger="xmpspec.targets"):
        t = read_targets(p)
    assert "no 'z' column" in caplog.text and "found from its lines" in caplog.text
    assert match_target("A", None, None, None, t) == {"name": "A", "n2_cnn": -2.0}
    with pytest.raises(InputError, match="no 'z' column"):
        read_targets(p, require_z=True)


def test_empty_z_cell_is_allowed(tmp_path):
    t = read_targets(_csv(tmp_path, "name,z\nA,\nB,0.02\n"))
    assert match_target("A", None, None, None, t)["z"] is None


def test_bad_coordinates_and_half_positions(tmp_path):
    p = _csv(tmp_path, "name,z,ra,dec\nA,0.01,02:24:16.71,-14:13:05.2\nB,0.02,2:99:00,+01:00:00\n")
    with pytest.raises(InputError, match=r"column 'ra' row 2: cannot read ra value '2:99:00'"):
        read_targets(p)
    p = _csv(tmp_path, "name,z,ra\nA,0.01,10.0\n", "half.csv")
    with pytest.raises(InputError, match="only one of the 'ra'/'dec'"):
        read_targets(p)
    with pytest.raises(InputError, match="name"):
        read_targets(_csv(tmp_path, "target,z\nA,0.01\n", "noname.csv"))


def test_tables_in_memory_are_validated_too():
    t = Table({"name": ["A", "B"], "z": ["0.1", "x"]})
    with pytest.raises(InputError, match="my table: column 'z' row 2"):
        TargetMatcher(t, "my table")
    with pytest.raises(InputError, match="column 'z' row 2"):
        match_target("A", None, None, None, t)
    ok = Table({"name": ["A"], "z": [0.1]})
    assert validate_targets(ok) is ok


@pytest.mark.parametrize("ra, dec", [
    (["11:01:00.0", "10:00:00.0", "10:01:00.02"], ["+02:30:00", "+02:30:00", "+02:30:01"]),
    (["11 01 00.0", "10 00 00.0", "10 01 00.02"], ["+02 30 00", "+02 30 00", "+02 30 01"]),
    ([165.25, 150.0, 150.25008333], [2.5, 2.5, 2.50027778]),
])
def test_matching_by_name_file_and_position(ra, dec):
    t = Table({"name": ["a b", "far", "near"], "z": [0.1, 0.2, 0.3], "ra": ra, "dec": dec})
    m = TargetMatcher(t, "t.csv", radius_arcsec=2.0)
    assert m.match("A B")["z"] == 0.1                     # case and spaces ignored
    assert m.match(None, spec_file="/data/far.spec1d.fits")["name"] == "far"  # file stem
    assert m.match("unknown", 150.25, 2.5)["name"] == "near"                 # position
    assert m.match("unknown", "10:01:00.0", "+02:30:00")["name"] == "near"   # header text
    assert m.match("unknown", 150.25, 2.51) is None                          # 36 arcsec away
    assert m.match("unknown", None, None) is None
    # the same through the function API and after pickling (batch workers)
    assert match_target("x", 150.25, 2.5, "file.fits", t, 2.0)["name"] == "near"
    assert pickle.loads(pickle.dumps(m)).match("x", 150.25, 2.5)["name"] == "near"


def test_nearest_row_within_the_configured_radius():
    arcsec = 1 / 3600
    t = Table({"name": ["A", "B"], "z": [0.1, 0.2], "ra": [0.0, 0.0],
               "dec": [0.0, 10 * arcsec]})
    # default radius from the configuration (measure.target_match_arcsec = 2)
    assert TargetMatcher(t, config=default_config()).match("x", 0.0, 2.5 * arcsec) is None
    assert TargetMatcher(t, config=default_config()).match("x", 0.0, 1.5 * arcsec)["name"] == "A"
    wide = default_config().updated({"measure.target_match_arcsec": 6.0})
    m = TargetMatcher(t, config=wide)
    assert m.radius_arcsec == 6.0
    assert m.match("x", 0.0, 2.5 * arcsec)["name"] == "A"
    assert m.match("x", 0.0, 4.9 * arcsec)["name"] == "A"   # both within 6": the nearest
    assert m.match("x", 0.0, 5.1 * arcsec)["name"] == "B"


def test_matcher_is_reused_for_the_same_table():
    t = Table({"name": ["A"], "z": [0.1], "ra": [10.0], "dec": [1.0]})
    assert target_matcher(t, radius_arcsec=2.0) is target_matcher(t, radius_arcsec=2.0)
    assert target_matcher(t, radius_arcsec=3.0).radius_arcsec == 3.0


def test_bad_header_position_does_not_break_name_matching(caplog):
    t = Table({"name": ["A"], "z": [0.1], "ra": [10.0], "dec": [1.0]})
    m = TargetMatcher(t)
    assert m.match("A", "garbage", "1")["name"] == "A"
    with caplog.at_level(logging.WARNING, logger="xmpspec.targets"):
        assert m.match("B", "garbage", "1", "b.fits") is None
    assert "position not used" in caplog.text


def test_non_ascii_names_match(tmp_path):
    p = tmp_path / "cibles é.csv"
    p.write_text("name,z\nLéo P,0.0009\nÜnïcødé 5,0.02\n", encoding="utf-8")
    t = read_targets(p)
    m = TargetMatcher(t, p)
    assert m.match("léo p")["z"] == 0.0009
    assert m.match(None, spec_file="odd dir/ünïcødé 5.fits")["name"] == "Ünïcødé 5"
    bad = tmp_path / "mauvais é.csv"
    bad.write_text("name,z\nLéo P,abc\n", encoding="utf-8")
    with pytest.raises(InputError, match="mauvais é.csv: column 'z' row 1"):
        read_targets(bad)
