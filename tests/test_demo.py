"""``xmpspec demo``: a simulated follow-up night analysed end to end, checked against its truth."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import ascii as astropy_ascii
from astropy.table import MaskedColumn, Table

from xmpspec.cli import main
from xmpspec.io import read_spectrum
from xmpspec.simulate.demo import recovery_summary, recovery_table, simulate_demo_night
from xmpspec.tableio import read_table
from xmpspec.workflows.chain import run_analysis_chain


def _png_has_content(path):
    """A PNG that is readable, not tiny and not a blank canvas."""
    import matplotlib.image as mpimg
    assert path.stat().st_size > 5000, path
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200, path
    rgb = img[..., :3]
    # more than a few percent of the pixels are not background white
    assert np.mean(rgb.min(axis=2) < 0.9) > 0.01, path


@pytest.mark.slow
def test_demo_command_runs_the_whole_chain(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), "--seed", "2024"]) == 0
    _check_demo_products(out, capsys.readouterr().out)


def _check_demo_products(out, printed):

    # ---- the simulated night
    truth = read_table(out / "truth.ecsv")
    targets = read_table(out / "targets.ecsv")
    selection = read_table(out / "selection.ecsv")
    assert len(truth) == 8 and len(targets) == 8 and len(selection) == 24
    for col in ("name", "ra", "dec", "n2_cnn", "n2_cnn_err", "p_mp", "p_xmp"):
        assert col in selection.colnames
    for col in ("name", "z", "ra", "dec", "ebv_mw", "n2_cnn", "n2_cnn_err"):
        assert col in targets.colnames
    log = read_table(out / "observing_log.ecsv")
    assert list(log["name"]) == list(truth["name"])
    for col in ("instrument", "obsdate", "exptime_s", "nexp"):
        assert col in log.colnames
    assert set(log["exptime_s"]) == {1200.0, 800.0} and set(log["nexp"]) == {3}
    obs = selection[selection["observed"]]
    assert set(obs["name"]) == set(targets["name"])
    assert np.all(obs["p_mp"] > 0.99) and np.all(obs["p_xmp"] > 0.99)
    assert np.all(obs["n2_cnn"] < -1.8)
    assert set(truth["setup"]) == {"int_ids_r632v", "goodman_400"}
    assert {"detected", "upper_limit"} <= set(truth["n2_state_expected"])
    d = np.asarray(truth["n2"]) - np.asarray(truth["n2_cnn"])
    assert 0.02 < np.std(d) < 0.6
    for row in truth:
        spec = read_spectrum(out / row["file"])
        assert spec.name == row["name"]
        assert spec.mask.any()   # cosmic rays masked
        assert spec.meta["instrument"] == row["instrument"]

    # ---- every product of the chain exists and is readable
    names = set(truth["name"])
    objects = read_table(out / "measure" / "objects.ecsv")
    assert set(objects["name"]) == names
    assert set(read_table(out / "measure" / "objects.fits")["name"]) == names
    lines = read_table(out / "measure" / "lines.ecsv")
    assert set(lines["object"]) == names
    derived = read_table(out / "derived.ecsv")
    assert set(derived["name"]) == names
    assert len(read_table(out / "derived.fits")) == 8
    assert np.isfinite(np.ma.filled(derived["oh_n2"], np.nan)).all()   # O/H or its limit
    cmp = read_table(out / "comparison" / "comparison.ecsv")
    assert set(cmp["name"]) == names and set(cmp["match_status"]) == {"matched"}
    text = (out / "comparison" / "comparison.txt").read_text()
    assert "MAE" in text and "upper limits" in text
    for stem in ("observing_log", "line_measurements", "derived_properties"):
        tex = (out / "tables" / f"{stem}.tex").read_text()
        assert tex.count("{") == tex.count("}")
        assert sum(name in tex for name in names) == 8      # one row per object
        mrt = astropy_ascii.read(out / "tables" / f"{stem}.mrt", format="mrt")
        assert len(mrt) == 8
        assert len(read_table(out / "tables" / f"{stem}.ecsv")) == 8
    assert "<" in (out / "tables" / "line_measurements.tex").read_text()   # N2 limits
    pngs = [out / "comparison" / "comparison.png", out / "figures" / "oh_distribution.png",
            out / "figures" / "sfr_distribution.png", out / "figures" / "bpt.png",
            out / "figures" / "mstar_distribution.png",
            out / "recovery.png"]
    for p in pngs:
        _png_has_content(p)
        pdf = p.with_suffix(".pdf")
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 3000
    assert not (out / "measure" / "plots").exists()      # fit figures only with --fit-plots

    # ---- the chain recovers what was injected
    rec = read_table(out / "recovery.ecsv")
    assert len(rec) == 8
    det = rec["n2_state"] == "detected"
    assert det.sum() >= 2
    n2, n2e, n2t = (np.asarray(rec[c])[det] for c in ("n2", "n2_err", "n2_true"))
    assert np.all(np.abs(n2 - n2t) <= 3 * n2e)           # N2 of detections within errors
    assert np.all(rec["n2_recovered"][det])
    ul = np.asarray(rec["n2_upper_limit"], bool)
    assert ul.sum() >= 1 and np.all(np.asarray(rec["n2_true"])[ul] <= np.asarray(rec["n2"])[ul])
    # Halpha fluxes (bright, S/N > 20) within 5 % of the injected ones; redshifts exact
    assert np.all(np.abs(np.asarray(rec["f_ha_ratio"]) - 1) < 0.05)
    assert np.all(np.abs(np.asarray(rec["z"]) - np.asarray(rec["z_true"])) < 1e-4)
    # stellar masses from the simulated r, i photometry
    phot = read_table(out / "photometry.ecsv")
    assert list(phot["name"]) == list(truth["name"])
    lm, lme, lmt = (np.asarray(rec[c], float) for c in ("log_mstar", "log_mstar_err",
                                                        "log_mstar_true"))
    assert np.all(np.abs(lm - lmt) <= 3 * lme + 0.01)
    summary = (out / "recovery.txt").read_text()
    assert f"{int(det.sum())}/{int(det.sum())} within 3 sigma" in summary

    # ---- the summary says where everything is
    flat = " ".join(printed.split())
    for p in (out / "derived.ecsv", out / "comparison" / "comparison.txt", out / "tables",
              out / "figures" / "bpt.png", out / "recovery.txt", out / "measure" / "lines.ecsv"):
        assert str(p) in flat, p
    assert "within 3 sigma" in flat and "timings" in flat


def test_recovery_table_hand_computed():
    measured = Table()
    measured["name"] = ["A", "B", "C", "X"]
    measured["z"] = [0.0201, 0.03, 0.04, 0.05]
    measured["n2"] = MaskedColumn([-2.0, -1.6, -2.3, -2.0], mask=[False, False, False, False])
    measured["n2_err"] = MaskedColumn([0.1, 0.0, 0.05, 0.1], mask=[False, True, False, False])
    measured["n2_upper_limit"] = [False, True, False, False]
    measured["n2_state"] = ["detected", "upper_limit", "detected", "detected"]
    measured["f_ha"] = [100.0, 50.0, 200.0, 10.0]
    measured["f_ha_err"] = [2.0, 5.0, 4.0, 1.0]
    measured["f_nii6585"] = MaskedColumn([1.0, 0.0, 1.0, 1.0], mask=[False, True, False, False])
    measured["f_nii6585_err"] = MaskedColumn([0.2, 0.0, 0.1, 0.1], mask=[False, True, False, False])
    measured["nii6585_state"] = ["detected", "upper_limit", "detected", "detected"]
    truth = Table()
    truth["name"] = ["C", "B", "A"]                    # other order; X not simulated
    truth["instrument"] = ["i", "i", "i"]
    truth["z"] = [0.04, 0.03, 0.02]
    truth["n2"] = [-2.0, -1.8, -2.05]
    truth["n2_state_expected"] = ["detected", "upper_limit", "detected"]
    truth["snr_nii6585"] = [10.0, 1.0, 5.0]
    truth["f_ha"] = [200.0, 50.0, 104.0]
    truth["f_nii6585"] = [2.0, 0.8, 0.9]
    rec = recovery_table(measured, truth, nsigma=3.0)
    assert list(rec["name"]) == ["A", "B", "C"]
    assert rec["n2_pull"][0] == pytest.approx(0.5)      # (-2.0 + 2.05) / 0.1
    assert rec["n2_pull"][2] == pytest.approx(-6.0)     # (-2.3 + 2.0) / 0.05
    assert np.ma.is_masked(rec["n2_pull"][1])           # limit: no pull
    assert list(rec["n2_recovered"]) == [True, True, False]   # limit -1.6 above -1.8
    assert rec["f_ha_ratio"][0] == pytest.approx(100 / 104)
    assert rec["f_ha_pull"][0] == pytest.approx(-2.0)
    assert np.ma.is_masked(rec["f_nii6585_ratio"][1])   # undetected line: no ratio
    assert rec["z"][0] - rec["z_true"][0] == pytest.approx(1e-4)
    s = recovery_summary(rec)
    assert s["n_detected"] == 2 and s["n_detected_recovered"] == 1
    assert s["n_upper_limit"] == 1 and s["n_limit_consistent"] == 1
    assert s["n_state_as_expected"] == 3
    assert s["n2_bias_dex"] == pytest.approx(np.median([0.05, -0.3]))
    truth["name"] = ["P", "Q", "R"]
    from xmpspec.errors import InputError
    with pytest.raises(InputError, match="truth"):
        recovery_table(measured, truth)


@pytest.mark.slow
def test_chain_reports_a_bad_spectrum_and_runs_without_selection(tmp_path):
    night = simulate_demo_night(tmp_path / "n", seed=3, n_targets=2, setups=("goodman_400",),
                                fmt="ecsv")
    bad = tmp_path / "n" / "spectra" / "broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    res = run_analysis_chain(night.spectra + [bad], night.targets, None, tmp_path / "out",
                             observing_log=night.observing_log, fit_plots=True,
                             figure_formats=("png",))
    assert len(res.measurements) == 2
    assert len(res.failures) == 1 and "broken.fits" in res.failures[0][0]
    assert any("broken.fits" in p for p in res.problems)
    assert res.comparison is None and not res.comparison_files
    assert any("no selection catalogue" in n for n in res.notes)
    derived = read_table(res.derived)
    assert list(derived["name"]) == list(night.truth_table["name"])
    assert {p.name for p in res.table_files} >= {"observing_log.tex", "line_measurements.mrt"}
    assert res.figures and all(f.exists() for fs in res.figures.values() for f in fs)
    assert len(res.fit_figures) == 2
    for p in res.fit_figures:
        _png_has_content(p)
    assert set(res.timings) == {"measure", "derive", "compare", "tables", "figures"}
    with pytest.raises(Exception, match="no spectrum could be measured"):
        run_analysis_chain([bad], None, None, tmp_path / "out2")


def test_demo_night_is_deterministic(tmp_path):
    a = simulate_demo_night(tmp_path / "a", seed=5, n_targets=2, setups=("goodman_400",))
    b = simulate_demo_night(tmp_path / "b", seed=5, n_targets=2, setups=("goodman_400",))
    assert list(a.truth_table["name"]) == list(b.truth_table["name"])
    sa = read_spectrum(a.spectra[0])
    sb = read_spectrum(b.spectra[0])
    assert np.array_equal(sa.flux.value, sb.flux.value)
    assert np.array_equal(read_table(a.photometry)["r"], read_table(b.photometry)["r"])
    c = simulate_demo_night(tmp_path / "c", seed=6, n_targets=2, setups=("goodman_400",),
                            fmt="ecsv")
    assert c.spectra[0].suffix == ".ecsv"
    assert list(c.truth_table["name"]) != list(a.truth_table["name"])
