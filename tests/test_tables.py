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
    body = "\n".join(_rows_between(lines, r"\startdata", r"\enddata"))
    assert body.count("$<") == 18  # the 18 N2 upper limits
    assert "marked $<$." in lines  # a '<' in text is typeset as math (not an inverted !)
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


# ----------------------------------------------------------------------------- journal-ready MRT

def _bbb(text: str) -> list[tuple[str, str, str, str]]:
    """(bytes, format, label, explanation start) of each byte-by-byte row."""
    rows = []
    body = text.split("Explanations", 1)[1].split("\n", 2)[2].split("-" * 20, 1)[0]
    for line in body.splitlines():
        m = re.match(r"^\s*(\d+(?:\s*-\s*\d+)?)\s+([AIFE][\d.]+)\s+\S+\s+(\S+)\s*(.*)$", line)
        if m:
            rows.append((m.group(1).replace(" ", ""), m.group(2), m.group(3), m.group(4)))
    return rows


def _check_mrt_limits(path):
    """Every [min/max] in the description equals the column's range as read back."""
    text = path.read_text()
    back = Table.read(path, format="ascii.mrt")
    labels = [r[2] for r in _bbb(text)]
    assert len(labels) == len(set(labels)), f"duplicate labels in {path.name}: {labels}"
    for nbytes, fmt, label, expl in _bbb(text):
        m = re.match(r"\[([^\]/]+)(?:/([^\]]+))?\]", expl)
        if fmt.startswith(("F", "E")) and label not in ("RAs", "DEs"):
            dec = int(fmt.split(".")[1])
            assert m, (path.name, label, "no limits")
            lo, hi = float(m.group(1)), float(m.group(2) or m.group(1))
            col = np.ma.compressed(np.ma.asarray(back[label], dtype=float))
            assert lo == pytest.approx(col.min()) and hi == pytest.approx(col.max()), label
            if fmt.startswith("F"):  # limits written with the column's decimals
                assert all(len(x.split(".")[1]) == dec if "." in x else dec == 0
                           for x in (m.group(1), m.group(2) or m.group(1))), (label, expl)
        if "-" in nbytes:
            a, b = (int(x) for x in nbytes.split("-"))
            width = b - a + 1
        else:
            width = 1
        assert int(re.match(r"[AIFE](\d+)", fmt).group(1)) == width, (label, nbytes, fmt)


def test_mrt_published_sample_reads_back_equal(tmp_path, shared_dir):
    """All 45 published targets: astropy's MRT reader gives back the input, signs included."""
    from astropy.coordinates import SkyCoord

    from xmpspec.products.tables import write_tables
    pub = shared_dir / PUB
    derived = tmp_path / "derived.ecsv"
    assert main(["-q", "derive", str(pub / "published_line_measurements.csv"),
                 "-o", str(tmp_path / "derived")]) == 0
    cfg = default_config().updated({"tables.title": "XMP follow-up of CNN candidates",
                                    "tables.authors": "Doe, J., Roe, R."})
    built, _, _ = write_tables(derived, tmp_path / "t", pub / "selection_and_observing_log.csv",
                               config=cfg)
    sel = Table.read(pub / "selection_and_observing_log.csv")
    truth = SkyCoord(sel["ra"], sel["dec"], unit=(u.hourangle, u.deg))
    path = tmp_path / "t" / "observing_log.mrt"
    text = path.read_text()
    assert text.startswith("Title: XMP follow-up of CNN candidates\nAuthors: Doe, J., Roe, R.\n")
    assert "Table: Observing log" in text
    assert text.count(" DE- ") == 1
    dbytes = {r[2]: r[0] for r in _bbb(text)}
    assert dbytes["DEd"].count("-") == 1  # two bytes, after the sign byte
    back = Table.read(path, format="ascii.mrt")
    assert len(back) == 45
    row = {str(n): i for i, n in enumerate(sel["name"])}
    j = [row[str(n)] for n in back["Name"]]
    sign = np.where(back["DE-"] == "-", -1.0, 1.0)
    dec = sign * (back["DEd"] + back["DEm"] / 60 + back["DEs"] / 3600)
    ra = 15 * (back["RAh"] + back["RAm"] / 60 + back["RAs"] / 3600)
    wrong = np.abs(dec - truth.dec.deg[j]) * 3600 > 0.05
    assert not wrong.any(), list(back["Name"][wrong])
    assert np.all(np.abs(ra - truth.ra.deg[j]) * 3600 < 0.01 * 15)
    assert (np.asarray(back["DE-"]) == "-").sum() == (truth.dec.deg < 0).sum()
    assert np.allclose(back["N2cnn"], np.asarray(sel["n2_cnn"], float)[j])
    assert list(back["texp"]) == [int(x) for x in np.asarray(sel["exptime_s"])[j]]
    # every table: read back equal to what was typeset (machine values), limits right
    for t in built:
        p = tmp_path / "t" / f"{t.name}.mrt"
        _check_mrt_limits(p)
        back = Table.read(p, format="ascii.mrt")
        want = t.to_machine(rounded=True)
        assert back.colnames == [c for c in want.colnames if c != "DE-"] or \
            back.colnames == want.colnames[:want.colnames.index("DEd")] + ["DE-"] + \
            want.colnames[want.colnames.index("DEd"):]
        for name in want.colnames:
            a, b = want[name], back[name]
            if name == "DEd":
                assert [abs(int(x)) if not np.ma.is_masked(x) else None for x in a] == \
                    [int(x) if not np.ma.is_masked(x) else None for x in b]
                continue
            assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), name
            ok = ~np.ma.getmaskarray(a)
            if a.dtype.kind in "iuf":
                assert np.allclose(np.asarray(a, float)[ok], np.asarray(b, float)[ok],
                                   rtol=1e-12, atol=0), (t.name, name)
            else:
                assert list(np.asarray(a, str)[ok]) == list(np.asarray(b, str)[ok]), name
    # no false precision: L(Halpha) and SFR cells carry only their own digits
    dtext = (tmp_path / "t" / "derived_properties.mrt").read_text()
    assert "0.0/" not in dtext and "0.900000" not in dtext


def _measured_like():
    from xmpspec.spectrum import LINE_FLUX_UNIT
    t = Table()
    t["name"] = ["A1", "A2", "A3"]
    t["ra"] = [10.0, 20.0, 30.0]
    t["dec"] = [-0.5, 1.0, -20.0]
    t["z"] = [0.01, 0.02, 0.03]
    states = {"hb": ["detected", "detected", "upper_limit"],
              "oiii4364": ["upper_limit", "detected", "not_covered"],
              "oiii4960": ["detected"] * 3, "oiii5008": ["detected"] * 3,
              "oii_blend": ["detected", "not_covered", "failed"],
              "hei5877": ["upper_limit", "detected", "detected"],
              "oi6302": ["upper_limit"] * 3, "ha": ["detected"] * 3,
              "nii6585": ["detected", "upper_limit", "detected"],
              "sii6718": ["detected"] * 3, "sii6733": ["detected", "detected", "upper_limit"]}
    rng = np.random.default_rng(1)
    for key, st in states.items():
        f = rng.uniform(10, 500, 3)
        t[f"f_{key}"] = MaskedColumn(f, unit=LINE_FLUX_UNIT)
        t[f"f_{key}_err"] = MaskedColumn(f / 20, unit=LINE_FLUX_UNIT)
        t[f"f_{key}_limit"] = MaskedColumn(f + 2 * f / 20 + 100, unit=LINE_FLUX_UNIT,
                                           mask=[s != "upper_limit" for s in st])
        t[f"{key}_state"] = st
    t["significance"] = [5.0, 1.0, 4.0]
    t["n2"] = [-1.8, -1.5, -2.1]
    t["n2_err"] = MaskedColumn([0.1, 0.0, 0.2], mask=[False, True, False])
    t["n2_upper_limit"] = [False, True, False]
    t["n2_state"] = ["detected", "upper_limit", "detected"]
    t["n2_p16"] = [-1.95, -2.5, -2.35]
    t["n2_p84"] = [-1.72, -1.7, -1.98]
    return t


def test_line_flux_table_every_line_and_limits(tmp_path):
    t = _measured_like()
    tabs, _ = build_tables(t, config=default_config())
    byname = {x.name: x for x in tabs}
    flux = byname["line_fluxes"]
    keys = [c.key for c in flux.columns]
    assert keys == ["Name", "FOII", "FHb", "FOIII4364", "FOIII4960", "FOIII5008",
                    "FHeI5877", "FOI6302", "FHa", "FNII6585", "FSII6718", "FSII6733"]
    col = flux.columns[keys.index("FHb")]
    assert [c.kind for c in col.cells] == ["value_err", "value_err", "upper"]
    # the limit is f_<key>_limit, not the flux
    assert col.cells[2].value == pytest.approx(float(t["f_hb_limit"][2]), abs=0.6)
    oii = flux.columns[keys.index("FOII")]
    assert [c.kind for c in oii.cells] == ["value_err", "missing", "missing"]
    tex = flux.to_latex("aastex")
    assert "H$\\beta$" in tex and "Fluxes in units of $10^{-17}$ erg s$^{-1}$ cm$^{-2}$" in tex
    # printed in two parts that fit a page (blue and red lines), each starting with the name
    assert tex.count("\\begin{deluxetable*}") == 2 and "\\tabletypesize{\\scriptsize}" in tex
    parts = tex.split("\\end{deluxetable*}")[:2]
    assert "[O\\,{\\sc iii}]$\\lambda$5008" in parts[0] and "H$\\alpha$" in parts[1]
    assert all("\\colhead{Name}" in p for p in parts)
    assert flux.to_latex("latex").count("\\begin{tabular}") == 2
    write_paper_table(flux, tmp_path, style="aastex")
    back = Table.read(tmp_path / "line_fluxes.mrt", format="ascii.mrt")
    assert list(back["l_FHb"].filled("")) == ["", "", "<"]
    _check_mrt_limits(tmp_path / "line_fluxes.mrt")
    # asymmetric N2 interval from the posterior columns
    lines = byname["line_measurements"]
    n2 = lines.columns[[c.key for c in lines.columns].index("N2")]
    assert [c.kind for c in n2.cells] == ["value_asym", "upper", "value_asym"]
    assert n2.cells[0].latex() == "$-1.800^{+0.080}_{-0.150}$"
    write_paper_table(lines, tmp_path, style="aastex")
    back = Table.read(tmp_path / "line_measurements.mrt", format="ascii.mrt")
    assert back["E_N2"][0] == pytest.approx(0.08) and back["e_N2"][0] == pytest.approx(0.15)
    assert np.ma.is_masked(back["e_N2"][1])
    # the same for O/H from N2 (derive's oh_n2_p16/p84)
    d = t.copy()
    d["oh_n2"] = [7.6, 7.9, 7.4]
    d["oh_n2_err"] = [0.05, 0.0, 0.1]
    d["oh_n2_upper_limit"] = [False, True, False]
    d["oh_n2_p16"] = [7.5, 7.0, np.nan]
    d["oh_n2_p84"] = [7.62, 7.95, np.nan]
    tabs, _ = build_tables(d, config=default_config())
    der = {x.name: x for x in tabs}["derived_properties"]
    oh = der.columns[[c.key for c in der.columns].index("OH_N2")]
    assert [c.kind for c in oh.cells] == ["value_asym", "upper", "value_err"]
    assert oh.cells[0].plain() == "7.600 +0.020/-0.100"


def test_aastex_tables_compile_with_pdflatex(tmp_path, shared_dir):
    """The AASTeX tables compile in an aastex631 document (pdflatex must be installed)."""
    import shutil
    import subprocess
    assert shutil.which("pdflatex"), "pdflatex is needed (Debian texlive-latex-base)"
    tabs, _ = build_tables(_measured_like(), config=default_config())
    pub, _ = build_tables(Table.read(shared_dir / PUB / "published_line_measurements.csv"),
                          Table.read(shared_dir / PUB / "selection_and_observing_log.csv"),
                          config=default_config())
    body = []
    for i, t in enumerate(tabs + pub):
        d = tmp_path / f"set{i}"
        write_paper_table(t, d, style="aastex")
        body.append(f"\\input{{set{i}/{t.name}.tex}}\n\\clearpage")
    doc = ("\\documentclass[twocolumn]{aastex631}\n\\begin{document}\n"
           + "\n".join(body) + "\n\\end{document}\n")
    (tmp_path / "paper.tex").write_text(doc)
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                          "paper.tex"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stdout[-3000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000
    assert "Undefined control sequence" not in res.stdout
