"""Tests of the paper tables: rounding, limits, LaTeX, MRT, CLI."""

from __future__ import annotations

import re

import astropy.units as u
import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from xmpspec.cli import main
from xmpspec.config import default_config
from xmpspec.errors import InputError
from xmpspec.products.formatting import (
    Cell,
    error_decimals,
    format_number,
    format_value_error,
    latex_escape,
    unit_latex,
    unit_text,
)
from xmpspec.products.tables import build_tables, value_column, write_paper_table

PUB = "data/xmp_followup_2023_2024"


def test_error_rounding_rules():
    assert error_decimals(0.21) == 2
    assert error_decimals(48) == 0
    assert error_decimals(0.005) == 4
    assert error_decimals(1234) == -2
    assert error_decimals(0.0996) == 2  # rounds up to 0.10: two digits, two decimals
    assert format_value_error(-1.9912, 0.2109) == ("-1.99", "0.21", 2)
    assert format_value_error(2921.3, 48.2) == ("2921", "48", 0)
    assert format_value_error(12345, 1234) == ("12300", "1200", -2)
    assert format_value_error(0.828, 0.005, sig=1) == ("0.828", "0.005", 3)
    # PDG: 2 digits for leading 100-354, else 1
    assert format_value_error(0.828, 0.005, sig="pdg") == ("0.828", "0.005", 3)
    assert format_value_error(-1.99, 0.21, sig="pdg") == ("-1.99", "0.21", 2)
    assert format_number(-0.0001, 2) == "0.00"
    with pytest.raises(ValueError):
        error_decimals(0.0)


def test_cells_and_units():
    assert Cell("upper", value=-1.5, decimals=2).latex() == "$<-1.50$"
    assert Cell("upper", value=-1.5, decimals=2).plain() == "<-1.50"
    assert Cell("missing").plain() == "..."
    assert Cell("missing").latex("aastex") == r"\nodata"
    assert Cell("missing").latex("latex") == "..."
    assert Cell("value_err", value=-1.99, err=0.21).latex() == r"$-1.99 \pm 0.21$"
    assert unit_text(u.erg / u.s / u.cm ** 2, -17) == "x1e-17 erg s^-1 cm^-2"
    assert unit_latex(u.erg / u.s, 40) == "$10^{40}$ erg s$^{-1}$"
    assert latex_escape("a_b&c%") == r"a\_b\&c\%"


def test_value_column_limits_and_scale():
    col = value_column("L", "L", np.array([2.05e41, 5.5e40, 3.3e39, np.nan]),
                       np.array([4.5e39, 8.6e38, 5.1e37, np.nan]), unit=u.erg / u.s)
    assert col.exponent == 40
    assert [c.plain() for c in col.cells] == ["20.50 +- 0.45", "5.500 +- 0.086",
                                              "0.3300 +- 0.0051", "..."]
    col = value_column("N2", "N2", [-1.99, -1.5], [0.21, np.nan], upper=[False, True])
    assert [c.plain() for c in col.cells] == ["-1.99 +- 0.21", "<-1.50"]


def _derived_small():
    t = Table()
    t["name"] = ["G3", "G1", "G2"]
    t["ra"] = [30.0, 10.0, 20.0]
    t["dec"] = [-1.0, 5.5, 2.25]
    t["z"] = [0.0312, 0.0524, 0.0085]
    t["f_ha"] = [244.1, 2921.0, 1947.6]
    t["f_ha_err"] = [6.1, 48.0, 6.6]
    t["significance"] = [0.26, 2.41, 17.28]
    t["n2"] = [-1.89, -1.99, -2.24]
    t["n2_err"] = MaskedColumn([0, 0.21, 0.04], mask=[True, False, False])
    t["n2_upper_limit"] = [True, False, False]
    t["o3"] = MaskedColumn([0.890, 0.0, 0.716], mask=[False, True, False])
    t["o3_err"] = MaskedColumn([0.018, 0.0, 0.004], mask=[False, True, False])
    t["oh_n2"] = [7.683, 7.599, 7.390]
    t["oh_n2_err"] = MaskedColumn([0, 0.176, 0.033], mask=[True, False, False])
    t["oh_n2_upper_limit"] = [True, False, False]
    t["dl_mpc"] = MaskedColumn([141.0, 242.2, 38.05], unit=u.Mpc)
    t["dl_mpc_err"] = MaskedColumn([1.1, 1.8, 0.28], unit=u.Mpc)
    t["dl_used_mpc"] = MaskedColumn([141.0, 242.2, 40.0], unit=u.Mpc)
    t["dl_used_mpc_err"] = MaskedColumn([1.1, 1.8, 3.0], unit=u.Mpc)
    t["dl_source"] = ["redshift", "redshift", "corrected"]
    t["l_halpha"] = MaskedColumn([5.9e39, 2.05e41, 3.37e39], unit=u.erg / u.s)
    t["l_halpha_err"] = MaskedColumn([1.5e38, 4.5e39, 5.1e37], unit=u.erg / u.s)
    t["sfr"] = MaskedColumn([0.0259, 0.900, 0.0148], unit=u.Msun / u.yr)
    t["sfr_err"] = MaskedColumn([0.00075, 0.020, 0.00023], unit=u.Msun / u.yr)
    t["log_mstar"] = MaskedColumn([7.1, 0.0, 6.52], mask=[False, True, False])
    t["log_mstar_err"] = MaskedColumn([0.12, 0.0, 0.1], mask=[False, True, False])
    return t


def _rows_between(tex: str, start: str, end: str) -> list[str]:
    body = tex.split(start, 1)[1].split(end, 1)[0]
    return [line for line in body.strip().splitlines() if line.strip()]


def _balanced(text: str) -> bool:
    depth = 0
    for i, ch in enumerate(text):
        if ch == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def test_tables_latex_and_mrt(tmp_path):
    tabs, notes = build_tables(_derived_small(), sort="ra", config=default_config())
    names = [t.name for t in tabs]
    assert names == ["observing_log", "line_measurements", "derived_properties"]
    lines, derived = tabs[1], tabs[2]
    for t in tabs:
        for style in ("aastex", "latex"):
            tex = t.to_latex(style)
            assert _balanced(tex), (t.name, style)
            assert tex.count("$") % 2 == 0
        rows = _rows_between(t.to_latex("aastex"), r"\startdata", r"\enddata")
        assert len(rows) == 3  # one row per object
        assert [r.split(" & ")[0] for r in rows] == ["G1", "G2", "G3"]  # sorted by RA
        for r in rows:
            assert r.count(" & ") == len(t.columns) - 1
        rows = _rows_between(t.to_latex("latex"), r"\hline" + "\n", r"\hline" + "\n\\end")
        assert len([r for r in rows if r.startswith("G")]) == 3
    tex = lines.to_latex("aastex")
    assert r"\begin{deluxetable*}" in tex and r"\tablehead{" in tex
    g3 = [r for r in tex.splitlines() if r.startswith("G3")][0]
    assert "$<-1.89$" in g3
    g1 = [r for r in tex.splitlines() if r.startswith("G1")][0]
    assert r"\nodata" in g1  # O3 not covered
    assert "$2921 \\pm 48$" in g1
    assert "$10^{-17}$ erg s$^{-1}$ cm$^{-2}$" in tex
    tex = lines.to_latex("latex")
    assert r"\begin{tabular}" in tex and "..." in tex
    dtex = derived.to_latex("aastex")
    assert "$10^{39}$ erg s$^{-1}$" in dtex  # median L = 5.9e39
    assert "$<7.68$" in dtex
    # corrected distance only where given
    keys = [c.key for c in derived.columns]
    assert keys == ["Name", "OH_N2", "DL", "DLcorr", "LHa", "SFR", "logM"]
    dl_corr = derived.columns[keys.index("DLcorr")]
    assert [c.kind for c in dl_corr.cells] == ["missing", "value_err", "missing"]

    from xmpspec.provenance import provenance_record
    prov = provenance_record(["derived.ecsv"], default_config(), step="tables:lines")
    files = write_paper_table(lines, tmp_path, style="aastex", provenance=prov)
    assert {f.suffix for f in files} == {".tex", ".txt", ".mrt", ".ecsv", ".fits"}
    back = Table.read(tmp_path / "line_measurements.mrt", format="ascii.mrt")
    assert len(back) == 3
    assert list(back["Name"]) == ["G1", "G2", "G3"]
    assert back["l_N2"][2] == "<" and np.ma.is_masked(back["l_N2"][0])
    assert back["N2"][2] == pytest.approx(-1.89)
    assert back["FHa"][0] == pytest.approx(2921)
    assert back["FHa"].unit.to(u.erg / u.s / u.cm ** 2) == pytest.approx(1e-17)
    assert np.ma.is_masked(back["O3"][0])
    ecsv = Table.read(tmp_path / "line_measurements.ecsv")
    assert ecsv.meta["provenance"]["step"] == "tables:lines"
    assert ecsv["N2"][2] == pytest.approx(-1.89) and ecsv["FHa"].unit == u.erg / u.s / u.cm ** 2


def test_observing_log_mrt_coordinates(tmp_path):
    tabs, _ = build_tables(_derived_small(), config=default_config())
    write_paper_table(tabs[0], tmp_path, style="mrt")
    assert not (tmp_path / "observing_log.tex").exists()
    back = Table.read(tmp_path / "observing_log.mrt", format="ascii.mrt")
    assert list(back["RAh"]) == [0, 1, 2]
    assert back["DE-"][2] == "-"
    assert back["DEm"][1] == 15  # +02:15:00


def test_missing_inputs():
    t = _derived_small()
    t.remove_columns(["ra", "dec"])
    with pytest.raises(InputError, match="cannot sort by RA"):
        build_tables(t, sort="ra", config=default_config())
    with pytest.raises(InputError, match="predicted N2"):
        build_tables(t, sort="n2_cnn", config=default_config())
    tabs, _ = build_tables(t, sort="name", config=default_config())
    assert [t.nrows for t in tabs] == [3, 3, 3]
    with pytest.raises(InputError, match="no rows"):
        build_tables(t[:0], sort="name", config=default_config())


def test_published_tables_cli(tmp_path, shared_dir):
    out = tmp_path / "tabs"
    rc = main(["-q", "tables", str(shared_dir / PUB / "published_line_measurements.csv"),
               "--selection", str(shared_dir / PUB / "selection_and_observing_log.csv"),
               "--sort", "n2_cnn", "-o", str(out)])
    assert rc == 0
    tex = (out / "observing_log.tex").read_text()
    rows = _rows_between(tex, r"\startdata", r"\enddata")
    assert len(rows) == 45
    assert rows[0].startswith("XMP1631+4426")  # lowest predicted N2 (-2.42) first
    assert "SOAR/Goodman" in tex and "21-Aug-2023" in tex
    log = Table.read(out / "observing_log.mrt", format="ascii.mrt")
    assert log["texp"].dtype.kind == "i" and log["Nexp"].dtype.kind == "i"
    assert log[log["Name"] == "XMP0219-0059"]["Refs"][0] == "1,7"
    assert re.search(r"16:31:14\.25 & \+44:26:04\.7", rows[0])
    lines = (out / "line_measurements.tex").read_text()
    assert lines.count("$<") == 18  # the 18 N2 upper limits
    mrt = Table.read(out / "line_measurements.mrt", format="ascii.mrt")
    assert len(mrt) == 45 and (mrt["l_N2"] == "<").sum() == 18
    # derived-property table is skipped (published table has no derived columns)
    assert not (out / "derived_properties.tex").exists()
    rc = main(["-q", "tables", str(shared_dir / PUB / "published_line_measurements.csv"),
               "-o", str(out), "--style", "word"])
    assert rc == 2
    rc = main(["-q", "tables", str(shared_dir / PUB / "published_line_measurements.csv"),
               "--selection", str(shared_dir / PUB / "selection_and_observing_log.csv"),
               "-o", str(tmp_path / "pdg"), "--style", "latex", "--error-digits", "pdg"])
    assert rc == 0
    tex = (tmp_path / "pdg" / "line_measurements.tex").read_text()
    assert r"\begin{tabular}" in tex
    row = [r for r in tex.splitlines() if r.startswith("XMP0124+0838")][0]
    assert "$-2.01 \\pm 0.05$" in row and "$0.828 \\pm 0.005$" in row  # as published


def test_measure_style_table_states_and_units(tmp_path):
    """A table as `xmpspec measure` writes it: states, flux units, z errors."""
    from xmpspec.spectrum import LINE_FLUX_UNIT
    t = Table()
    t["name"] = ["M1", "M2"]
    t["ra"] = MaskedColumn([150.0, 0.0], mask=[False, True])
    t["dec"] = MaskedColumn([2.0, 0.0], mask=[False, True])
    t["z"] = [0.052412, 0.0311]
    t["z_err"] = [0.000012, 0.00021]
    t["f_ha"] = MaskedColumn([912.7, 50.0], unit=LINE_FLUX_UNIT)
    t["f_ha_err"] = MaskedColumn([4.4, 3.1], unit=LINE_FLUX_UNIT)
    t["significance"] = [9.5, 1.2]
    t["n2"] = MaskedColumn([-2.01, -1.6])
    t["n2_err"] = MaskedColumn([0.05, 0.0], mask=[False, True])
    t["n2_upper_limit"] = [False, True]
    t["n2_state"] = ["detected", "upper_limit"]
    t["o3"] = MaskedColumn([0.83, 0.0], mask=[False, True])
    t["o3_err"] = MaskedColumn([0.01, 0.0], mask=[False, True])
    t["o3_upper_limit"] = [False, False]
    t["o3_state"] = ["detected", "not_covered"]
    tabs, notes = build_tables(t, sort="none", config=default_config())
    lines = {c.key: [cell.plain() for cell in c.cells] for c in tabs[1].columns}
    assert lines["z"] == ["0.052412 +- 0.000012", "0.03110 +- 0.00021"]
    assert lines["FHa"] == ["912.7 +- 4.4", "50.0 +- 3.1"]
    # limits take the most common precision of the column's detections
    assert lines["N2"] == ["-2.010 +- 0.050", "<-1.600"]
    assert lines["O3"][1] == "..."
    obslog = {c.key: [cell.plain() for cell in c.cells] for c in tabs[0].columns}
    assert obslog["RA"] == ["10:00:00.00", "..."]
    with pytest.raises(InputError, match="cannot sort by predicted N2"):
        build_tables(t, sort="n2_cnn", config=default_config())
