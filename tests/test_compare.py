"""Tests of xmpspec.compare: matching, censored statistics, outputs, CLI."""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from xmpspec.cli import main
from xmpspec.compare import (
    as_bool,
    classify_outcomes,
    compare_tables,
    match_catalogue,
    n2_statistics,
    normalise_catalogue,
    parse_coordinates,
    summary_text,
)
from xmpspec.config import default_config
from xmpspec.errors import InputError

PUB = "data/xmp_followup_2023_2024"


def _catalogue():
    return Table({
        "name": ["A", "B", "C", "D", "E"],
        "ra": ["00 10 00.00", "01 00 00.00", "02 00 00.00", "03 00 00.00", "04 00 00.00"],
        "dec": ["+10 00 00.0", "-05 00 00.0", "+20 00 00.0", "+30 00 00.0", "-40 00 00.0"],
        "n2_cnn": [-2.0, -1.9, -2.1, -2.0, -1.8],
        "n2_cnn_err": [0.05, 0.05, 0.05, 0.05, 0.05],
    })


def _observed():
    # deltas of detections: A +0.1 (good), B -0.3 (fair), C +0.2 (good); D, E limits
    return Table({
        "name": ["A", "B", "C", "D", "E"],
        "n2": [-1.9, -2.2, -1.9, -2.5, -1.2],
        "n2_err": [0.05, 0.2, 0.1, np.nan, np.nan],
        "n2_upper_limit": ["False", "False", "False", "True", "True"],
        "significance": [5.0, 2.5, 3.0, 1.0, 0.5],
    })


def test_statistics_hand_computed():
    s = n2_statistics([0.1, -0.3, 0.2, -0.4])
    assert s["n"] == 4
    assert s["mae"] == pytest.approx(0.25)
    assert s["median_ae"] == pytest.approx(0.25)
    assert s["rms"] == pytest.approx(math.sqrt(0.075))
    assert s["bias"] == pytest.approx(-0.1)
    assert n2_statistics([])["mae"] is None


def test_compare_small_table_statistics_and_grades():
    r = compare_tables(_observed(), _catalogue(), config=default_config())
    st = r.statistics
    assert st["all"]["n"] == 3
    assert st["all"]["mae"] == pytest.approx((0.1 + 0.3 + 0.2) / 3)
    assert st["all"]["bias"] == pytest.approx(0.0, abs=1e-12)
    assert st["all"]["rms"] == pytest.approx(math.sqrt((0.01 + 0.09 + 0.04) / 3))
    assert st["good"]["n"] == 2 and st["good"]["mae"] == pytest.approx(0.15)
    assert st["good"]["bias"] == pytest.approx(0.15)
    assert st["fair"]["n"] == 1 and st["fair"]["mae"] == pytest.approx(0.3)
    assert r.band == pytest.approx(0.2)
    t = r.table
    out = dict(zip(t["name"], t["outcome"], strict=True))
    # B: -0.3 < -0.2 -> lower outlier; A inside; C exactly on the band edge -> consistent
    assert out == {"A": "consistent", "B": "lower_outlier", "C": "consistent",
                   "D": "lower_outlier", "E": "consistent"}
    assert list(t["grade"]) == ["good", "fair", "good", "limit", "limit"]
    assert r.censored == {"n": 2, "consistent": 1, "lower_outlier": 1, "upper_outlier": 0,
                          "above_band": 1}
    assert t["delta_n2_err"][0] == pytest.approx(math.hypot(0.05, 0.05))
    assert np.ma.is_masked(t["delta_n2_err"][3])
    text = summary_text(r)
    assert "lower outliers (observed below prediction): B" in text
    assert "lower-outlier limits: D" in text


def test_censoring_rules():
    n2 = [-1.7, -2.3, -1.8, -2.5, -2.1, -1.0]
    cnn = [-2.0, -2.0, -2.0, -2.0, -2.0, -2.0]
    lim = [False, False, False, True, True, True]
    out = classify_outcomes(n2, cnn, lim, band=0.2)
    assert list(out) == ["upper_outlier", "lower_outlier", "consistent",
                         "lower_outlier", "consistent", "consistent"]
    # a limit is never an upper outlier, however high
    assert classify_outcomes([5.0], [-2.0], [True], 0.1)[0] == "consistent"
    assert classify_outcomes(np.ma.masked_all(1), [-2.0], [False], 0.1)[0] == "no_data"


def test_fixed_band_from_argument():
    r = compare_tables(_observed(), _catalogue(), config=default_config(), band=0.5)
    assert r.band == 0.5
    assert set(r.table["outcome"]) == {"consistent"}


def test_name_matching_case_and_spaces():
    obs = _observed()
    obs["name"] = [" a", "b ", "C", "d", "E"]
    r = compare_tables(obs, _catalogue(), config=default_config())
    assert (r.table["match_status"] == "matched").all()
    assert (r.table["match_method"] == "name").all()


def test_position_matching_sexagesimal_catalogue_degree_observed():
    cat = _catalogue()
    obs = _observed()
    obs["name"] = ["x1", "x2", "x3", "x4", "x5"]
    coords, _ = parse_coordinates(cat["ra"], cat["dec"])
    # offsets of 1 arcsec in Dec: within the 2 arcsec default
    obs["ra"] = coords.ra.deg
    obs["dec"] = coords.dec.deg + 1.0 / 3600
    r = compare_tables(obs, cat, config=default_config())
    assert (r.table["match_method"] == "position").all()
    assert list(r.table["cat_name"]) == ["A", "B", "C", "D", "E"]
    assert r.table["match_sep_arcsec"][0] == pytest.approx(1.0, abs=1e-3)
    # a smaller radius leaves them unmatched, reported
    r2 = compare_tables(obs, cat, radius=0.5 * u.arcsec, config=default_config())
    assert (r2.table["match_status"] == "unmatched").all()
    assert len(r2.report) == 5 and "nearest 1.0 arcsec" in r2.report[0]
    assert r2.statistics["all"]["n"] == 0


def test_ambiguous_position_pair_reported_not_matched():
    cat = Table({"name": ["P1", "P2", "Q"], "ra": [150.0, 150.0 + 1.0 / 3600, 151.0],
                 "dec": [2.0, 2.0, 2.0], "n2_cnn": [-2.0, -1.5, -2.0]})
    obs = Table({"name": ["obs1", "obs2"], "ra": [150.0 + 0.5 / 3600, 151.0],
                 "dec": [2.0, 2.0], "n2": [-2.0, -2.1], "n2_err": [0.1, 0.1],
                 "n2_upper_limit": [False, False], "significance": [5.0, 5.0]})
    r = compare_tables(obs, cat, config=default_config())
    assert list(r.table["match_status"]) == ["ambiguous", "matched"]
    assert "P1" in r.table["match_note"][0] and "P2" in r.table["match_note"][0]
    assert any("obs1" in line and "2 catalogue entries" in line for line in r.report)
    assert r.statistics["all"]["n"] == 1  # the ambiguous object is not in the statistics
    assert r.table["outcome"][0] == "unmatched"


def test_duplicate_names_reported():
    cat = _catalogue()
    cat["name"][1] = "A"  # two catalogue rows named A
    r = compare_tables(_observed(), cat, config=default_config())
    assert any("duplicate name in selection catalogue" in line for line in r.report)
    # A has no position in the observed table: ambiguous, not guessed
    assert r.table["match_status"][0] == "ambiguous"
    obs = _observed()
    obs["name"][1] = "A"  # duplicate in the observed table
    r = compare_tables(obs, _catalogue(), config=default_config())
    assert any("duplicate name in observed table" in line for line in r.report)
    assert any("matched by 2 observed rows" in line for line in r.report)


def test_duplicate_name_resolved_by_position():
    cat = Table({"name": ["A", "A"], "ra": [10.0, 20.0], "dec": [0.0, 0.0],
                 "n2_cnn": [-2.0, -1.0]})
    obs = Table({"name": ["A"], "ra": [20.0], "dec": [0.0], "n2": [-1.1], "n2_err": [0.1],
                 "n2_upper_limit": [False], "significance": [4.0]})
    r = compare_tables(obs, cat, config=default_config())
    assert r.table["match_method"][0] == "name+pos"
    assert r.table["n2_cnn"][0] == -1.0


def test_no_coordinates_no_names_is_an_error():
    cat = Table({"name": ["X", "Y"], "n2_cnn": [-2.0, -1.9]})
    with pytest.raises(InputError, match="positional matching is impossible"):
        compare_tables(_observed(), cat, config=default_config(), catalogue_source="cat.csv")


def test_empty_observed_and_missing_columns():
    empty = _observed()[:0]
    with pytest.raises(InputError, match="no rows"):
        compare_tables(empty, _catalogue(), config=default_config(), observed_source="o.ecsv")
    with pytest.raises(InputError, match="n2_cnn"):
        normalise_catalogue(Table({"name": ["A"], "ra": [1.0], "dec": [1.0]}), "c.csv")
    with pytest.raises(InputError, match="cannot read ra"):
        parse_coordinates(["12 xx 00"], ["+01 00 00"], "c.csv")


def test_catalogue_aliases_and_degrees():
    cat = Table({"NAME": ["A"], "RAJ2000": [2.5], "DEJ2000": [10.0], "N2_CNN": [-2.0]})
    c = normalise_catalogue(cat)
    assert {"name", "ra", "dec", "n2_cnn"} <= set(c.colnames)


def test_as_bool():
    assert list(as_bool(["True", "false", "1", "", "yes"])) == [True, False, True, False, True]
    with pytest.raises(InputError):
        as_bool(["maybe"])


def test_published_sample_matches_direct_computation(shared_dir):
    from xmpspec.tableio import read_table
    obs = read_table(shared_dir / PUB / "published_line_measurements.csv")
    cat = read_table(shared_dir / PUB / "selection_and_observing_log.csv")
    r = compare_tables(obs, cat, config=default_config())
    assert (r.table["match_status"] == "matched").all()
    # independent computation by name
    pred = {str(n): float(v) for n, v in zip(cat["name"], cat["n2_cnn"], strict=True)}
    det = [str(x) == "False" for x in obs["n2_upper_limit"]]
    d = np.array([float(v) - pred[str(n)] for n, v, k in zip(obs["name"], obs["n2"], det,
                                                               strict=True) if k])
    assert r.statistics["all"]["n"] == len(d) == 27
    assert r.statistics["all"]["mae"] == pytest.approx(np.mean(np.abs(d)))
    assert r.statistics["all"]["rms"] == pytest.approx(np.sqrt(np.mean(d ** 2)))
    assert r.classes["xmp"] == {"threshold": -1.5, "n_with_n2": 45, "yes": 41, "no": 0,
                                "undetermined": 4}
    n_good = sum(1 for s, k in zip(obs["significance"], det, strict=True) if k and s >= 3)
    assert r.statistics["good"]["n"] == n_good
    assert r.statistics["good"]["n"] + r.statistics["fair"]["n"] == 27


def test_cli_compare_end_to_end(tmp_path, shared_dir):
    out = tmp_path / "cmp"
    bg = Table({"n2": np.linspace(-2.5, -1.0, 50), "n2_cnn": np.linspace(-2.4, -1.1, 50)})
    bg.write(tmp_path / "bg.csv")
    rc = main(["-q", "compare", str(shared_dir / PUB / "published_line_measurements.csv"),
               "--selection", str(shared_dir / PUB / "selection_and_observing_log.csv"),
               "-o", str(out), "--match-radius", "3arcsec", "--background",
               str(tmp_path / "bg.csv")])
    assert rc == 0
    for name in ("comparison.ecsv", "comparison.fits", "comparison.txt", "comparison.png",
                 "comparison.pdf"):
        assert (out / name).stat().st_size > 0, name
    t = Table.read(out / "comparison.ecsv")
    assert len(t) == 45
    assert t.meta["provenance"]["step"] == "compare"
    assert t.meta["match_radius_arcsec"] == 3.0
    assert "MAE" in (out / "comparison.txt").read_text()


def test_cli_compare_bad_inputs(tmp_path, shared_dir):
    obs = _observed()[:0]
    obs.write(tmp_path / "empty.ecsv")
    _catalogue().write(tmp_path / "cat.ecsv")
    rc = main(["-q", "compare", str(tmp_path / "empty.ecsv"), "-s", str(tmp_path / "cat.ecsv"),
               "-o", str(tmp_path / "out")])
    assert rc == 2
    assert not (tmp_path / "out" / "comparison.png").exists()
    rc = main(["-q", "compare", str(tmp_path / "cat.ecsv"), "-s", str(tmp_path / "cat.ecsv"),
               "-o", str(tmp_path / "out"), "--match-radius", "abc"])
    assert rc == 2


def test_match_catalogue_direct_columns():
    m, report = match_catalogue(_observed(), normalise_catalogue(_catalogue()), 2 * u.arcsec)
    assert list(m["cat_index"]) == [0, 1, 2, 3, 4]
    assert report == []


def test_large_catalogue_position_matching():
    rng = np.random.default_rng(1)
    n_cat = 20000
    cat = Table({"name": [f"C{i}" for i in range(n_cat)], "ra": rng.uniform(0, 360, n_cat),
                 "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n_cat))),
                 "n2_cnn": rng.uniform(-2.5, -1.5, n_cat)})
    pick = rng.choice(n_cat, 200, replace=False)
    obs = Table({"name": [f"o{i}" for i in range(200)],
                 "ra": np.asarray(cat["ra"])[pick], "dec": np.asarray(cat["dec"])[pick] + 0.3 / 3600,
                 "n2": np.asarray(cat["n2_cnn"])[pick] + 0.1, "n2_err": np.full(200, 0.05),
                 "n2_upper_limit": np.zeros(200, bool), "significance": np.full(200, 5.0)})
    r = compare_tables(obs, cat, config=default_config())
    assert (r.table["match_status"] == "matched").all()
    assert list(r.table["cat_name"]) == [f"C{i}" for i in pick]
    assert r.statistics["all"]["bias"] == pytest.approx(0.1)


def test_coordinate_formats():
    c, ok = parse_coordinates(np.array(["00 13 42.62", "23:59:59.99", "12h30m00s", ""]),
                              np.array(["-00 59 14.3", "+89:59:59", "-10d30m00s", "+1 0 0"]))
    assert list(ok) == [True, True, True, False]
    assert c.ra.deg[0] == pytest.approx((13 * 60 + 42.62) / 240.0)
    assert c.dec.deg[0] == pytest.approx(-(59 / 60 + 14.3 / 3600))
    assert c.ra.deg[2] == pytest.approx(187.5) and c.dec.deg[2] == pytest.approx(-10.5)
    c, ok = parse_coordinates(Table({"ra": [1.5]}, units={"ra": u.rad})["ra"], [-10.0])
    assert c.ra.deg[0] == pytest.approx(np.degrees(1.5))
    c, ok = parse_coordinates([-10.0], [0.0])
    assert c.ra.deg[0] == pytest.approx(350.0)
    with pytest.raises(InputError, match="declination out of range"):
        parse_coordinates([10.0], [95.0], "cat.csv")


def test_exclude_flag_keeps_rows_out_of_statistics(tmp_path):
    cat = _catalogue()
    cat["hii_region"] = ["False", "True", "False", "False", "True"]
    r = compare_tables(_observed(), cat, config=default_config(), exclude_flag="hii_region")
    assert list(r.table["excluded"]) == [False, True, False, False, True]
    assert len(r.table) == 5  # listed, not dropped
    assert r.statistics["all"]["n"] == 2  # A and C
    assert r.statistics["all"]["mae"] == pytest.approx(0.15)
    assert r.censored["n"] == 1
    assert "excluded (hii_region): B, E" in summary_text(r)
    with pytest.raises(InputError, match="no column 'nope'"):
        compare_tables(_observed(), cat, config=default_config(), exclude_flag="nope")
    from xmpspec.products.figures import comparison_plot
    files = comparison_plot(r, tmp_path / "cmp", formats=("png",))
    assert files[0].stat().st_size > 5000


# ----------------------------------------------------------------------------- censored (KM)

def test_km_without_limits_is_the_sample():
    from xmpspec.compare import censored_statistics
    d = np.random.default_rng(1).normal(0.1, 0.3, 40)
    s = censored_statistics(d, np.zeros(40, bool), n_boot=300)
    assert s["km_median"] == pytest.approx(np.median(d))
    assert s["km_mean"] == pytest.approx(np.mean(d))
    assert s["km_mean_restricted"] is False and s["n_censored"] == 0
    assert s["km_median_lo"] < s["km_median"] < s["km_median_hi"]
    assert s["km_mean_lo"] < s["km_mean"] < s["km_mean_hi"]
    # the median interval ~ +-2 x 1.25 sigma / sqrt(n)
    assert 0.5 * 0.12 < s["km_median_hi"] - s["km_median"] < 2 * 0.12


def test_km_recovers_a_censored_median_that_detections_alone_miss():
    from xmpspec.compare import censored_statistics
    rng = np.random.default_rng(2)
    n = 4000
    true = rng.normal(0.0, 1.0, n)
    cut = rng.uniform(-1.5, 2.0, n)          # below its own limit the value is not measured
    lim = true < cut
    obs = np.where(lim, cut, true)
    s = censored_statistics(obs, lim, n_boot=0)
    assert s["n_censored"] == int(lim.sum()) > 1000
    assert abs(s["km_median"]) < 0.06                      # truth 0
    assert np.median(obs[~lim]) > 0.5                       # detections only: far off
    assert s["km_median_lo"] < 0.0 < s["km_median_hi"]


def test_km_in_compare_tables_and_summary():
    r = compare_tables(_observed(), _catalogue(), config=default_config())
    assert r.km["n"] == 5 and r.km["n_censored"] == 2 and r.km["n_detected"] == 3
    assert r.km["km_median"] is not None
    assert r.table.meta["km"] == r.km
    assert "Kaplan-Meier" in summary_text(r)


def test_asymmetric_intervals_flow_into_differences():
    obs = _observed()
    obs["n2_p16"] = [-2.0, -2.5, -2.0, np.nan, np.nan]
    obs["n2_p84"] = [-1.85, -2.1, -1.8, np.nan, np.nan]
    t = compare_tables(obs, _catalogue(), config=default_config()).table
    assert t["delta_n2_err_lo"][0] == pytest.approx(math.hypot(0.1, 0.05))
    assert t["delta_n2_err_hi"][0] == pytest.approx(math.hypot(0.05, 0.05))
    assert np.ma.is_masked(t["delta_n2_err_lo"][3])


def test_published_sample_paper_numbers_and_km(shared_dir):
    from xmpspec.tableio import read_table
    obs = read_table(shared_dir / PUB / "published_line_measurements.csv")
    cat = read_table(shared_dir / PUB / "selection_and_observing_log.csv")
    r = compare_tables(obs, cat, config=default_config())
    # the paper's detections-only numbers
    assert round(r.statistics["all"]["mae"], 3) == 0.205
    assert round(r.statistics["all"]["median_ae"], 2) == 0.16
    # the Kaplan-Meier estimate uses all 45 objects, the 18 limits left-censored
    assert r.km["n"] == 45 and r.km["n_censored"] == 18
    assert r.km["km_mean_lo"] <= r.km["km_mean"] <= r.km["km_mean_hi"]
    # the band is undefined before the first event (S = 1): it must not open the interval
    assert r.km["km_median_lo"] <= r.km["km_median"] <= r.km["km_median_hi"]
    assert r.km["km_median_hi"] - r.km["km_median_lo"] < 0.5


def test_non_numeric_n2_cnn_is_an_input_error(tmp_path):
    _observed().write(tmp_path / "obs.ecsv")
    cat = _catalogue()
    cat["n2_cnn"] = np.array(["-2.0", "abc", "-2.1", "-2.0", "-1.8"])
    cat.write(tmp_path / "cat.csv")
    rc = main(["-q", "compare", str(tmp_path / "obs.ecsv"), "-s", str(tmp_path / "cat.csv"),
               "-o", str(tmp_path / "out")])
    assert rc == 2
    with pytest.raises(InputError, match="n2_cnn") as exc:
        compare_tables(_observed(), cat, config=default_config(), catalogue_source="cat.csv")
    assert "cat.csv" in str(exc.value)


def test_compare_imports_no_products():
    """compare is numbers only: the figure is drawn by products, called from the CLI/chain."""
    import ast
    import importlib
    mod = importlib.import_module("xmpspec.compare")
    with open(mod.__file__) as fh:
        tree = ast.parse(fh.read())
    names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in names if "products" in m or "matplotlib" in m]
