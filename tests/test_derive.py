"""xmpspec derive: the published table end to end, full-line tables, bad input."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from xmpspec.cli import main
from xmpspec.config import load_config
from xmpspec.physics import dust
from xmpspec.physics.derive import derive_table, pivot_line_table
from xmpspec.physics.direct_te import get_grid
from xmpspec.tableio import read_provenance


@pytest.fixture(scope="module")
def cfg():
    return load_config(search_cwd=False)


@pytest.fixture(scope="module")
def published(shared_dir):
    return shared_dir / "data" / "xmp_followup_2023_2024" / "published_line_measurements.csv"


def test_published_table_cli(published, tmp_path):
    out = tmp_path / "derived"
    assert main(["-q", "derive", str(published), "-o", str(out), "--mc-draws", "50"]) == 0
    t = Table.read(tmp_path / "derived.ecsv")
    assert len(t) == 45
    assert t["dl_mpc"].unit == u.Mpc and t["l_halpha"].unit == u.erg / u.s
    assert t["sfr"].unit == u.Msun / u.yr
    row = t[t["name"] == "XMP0219-0059"][0]
    # hand: 9.263 + 0.836 * -2.24 ; L = 4 pi D^2 F with F = 1947.6e-17
    assert row["oh_n2"] == pytest.approx(9.263 - 0.836 * 2.24)
    d_cm = (row["dl_mpc"] * u.Mpc).to_value(u.cm)
    assert row["l_halpha"] == pytest.approx(4 * np.pi * d_cm**2 * 1947.6e-17, rel=1e-9)
    assert row["sfr"] == pytest.approx(7.9e-42 * row["l_halpha"] / 1.8)
    assert row["dl_used_mpc"] == row["dl_mpc"] and row["dl_source"] == "redshift"
    assert row["bpt_class"] == "star-forming" and row["is_xmp"]
    # upper limits stay upper limits
    lim = t[t["name"] == "XMP0742+1103"][0]
    assert lim["n2_upper_limit"] and lim["oh_n2_upper_limit"]
    assert lim["oh_n2"] == pytest.approx(9.263 - 0.836 * 1.5)
    assert lim["oh_pp04_o3n2_upper_limit"]
    assert np.ma.is_masked(lim["oh_n2_err"])
    # no O3: BPT masked with a reason; no [OIII]4364: direct O/H masked and flagged
    noo3 = t[t["name"] == "XMP0013+1354"][0]
    assert noo3["bpt_class"] in ("", np.ma.masked) and "missing O3" in noo3["bpt_flag"]
    assert np.all(t["oh_direct"].mask)
    assert all("4364" in f for f in t["direct_flag"])
    assert np.all(t["log_mstar"].mask) and "missing r" in t["log_mstar_flag"][0]
    # N2 limit whose range spans two BPT classes
    amb = t[t["name"] == "XMP1032+5035"][0]
    assert amb["bpt_class"] == "ambiguous-limit"
    # classes from limits: N2 < -1.46 is MP for sure, XMP undetermined (masked)
    up = t[t["name"] == "XMP2048-0559"][0]
    assert up["is_mp"] and up["is_xmp"] is np.ma.masked
    # O/H < 7.29 (N2 limit) is an EMPG; O/H < 8.01 is undetermined
    assert t[t["name"] == "XMP1347+0755"][0]["is_empg"]
    assert t[t["name"] == "XMP1347+0755"][0]["is_empg_source"] == "n2_upper_limit"
    assert lim["is_empg"] is np.ma.masked
    # detection above the EMPG threshold: 9.263 - 0.836 * 1.82 = 7.74 >= 7.69
    assert not t[t["name"] == "XMP0801+2640"][0]["is_empg"]
    prov = read_provenance(tmp_path / "derived.fits")
    assert prov["step"] == "derive"
    assert Table.read(tmp_path / "derived.fits", hdu=1)["dl_mpc"].unit == u.Mpc


def test_calibration_option_and_distances(published, tmp_path):
    dist = Table({"name": ["XMP1238+3246"], "dl_corr_mpc": [8.5], "dl_corr_mpc_err": [1.2]})
    dist.write(tmp_path / "dist.csv")
    out = tmp_path / "d2"
    assert main(["-q", "derive", str(published), "-o", str(out), "--n2-calibration", "PP04",
                 "--distances", str(tmp_path / "dist.csv")]) == 0
    t = Table.read(tmp_path / "d2.ecsv")
    assert t.meta["oh_n2_calibration"] == "PP04"
    assert np.allclose(t["oh_n2"], t["oh_pp04_n2"])
    row = t[t["name"] == "XMP1238+3246"][0]
    assert row["dl_used_mpc"] == pytest.approx(8.5) and row["dl_source"] == "corrected"
    assert row["dl_used_mpc_err"] == pytest.approx(np.hypot(1.2, 8.5 * 0.5 / 67.4))
    other = t[t["name"] == "XMP0219-0059"][0]
    assert other["dl_used_mpc"] == other["dl_mpc"]


def test_bad_input(tmp_path, capsys, published):
    Table({"name": ["a"], "f_ha": [10.0]}).write(tmp_path / "noz.csv")
    assert main(["derive", str(tmp_path / "noz.csv"), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "'z'" in err and "noz.csv" in err
    assert main(["derive", str(published), "-o", str(tmp_path / "x"),
                 "--n2-calibration", "D16"]) == 2
    err = capsys.readouterr().err
    assert "Y07" in err and "PP04" in err
    assert main(["derive", str(published), "-o", str(tmp_path / "x"),
                 "--ebv-column", "EBV_SFD"]) == 2
    assert "EBV_SFD" in capsys.readouterr().err


def test_negative_fluxes_give_flagged_limits(cfg):
    t = Table({"name": ["neg", "det", "noha"], "z": [0.02, 0.02, 0.02],
               "f_ha": [100.0, 100.0, -3.0], "f_ha_err": [2.0, 2.0, 2.0],
               "f_nii6585": [-4.0, 5.0, 1.0], "f_nii6585_err": [2.0, 1.0, 1.0]})
    out = derive_table(t, cfg, mc_draws=0)
    assert out["n2_upper_limit"][0] and out["n2"][0] == pytest.approx(np.log10(4.0 / 100))
    assert "negative" in out["oh_n2_flag"][0] and out["oh_n2_upper_limit"][0]
    assert not out["n2_upper_limit"][1] and out["n2"][1] == pytest.approx(np.log10(0.05))
    assert out["n2"].mask[2] and out["oh_n2"].mask[2] and "denominator" in out["oh_n2_flag"][2]
    assert out["l_halpha"].mask[2] and "f_ha <= 0" in out["l_halpha_flag"][2]


def _synthetic_lines(cfg, te=15000.0, ne=80.0, opp=4e-5, op=1e-5, ebv=0.15):
    """Line fluxes of a nebula computed from the same PyNeb emissivities, reddened (C00)."""
    g = get_grid(cfg)

    def e(key, t):
        return float(g.emissivity(key, np.array([t]), np.array([ne]))[0])

    t2 = 0.7 * te + 3000.0
    hb = 100.0
    intr = {
        "oiii4364": opp * hb * e("O3_4363", te) / e("H1_4_2", te),
        "oiii4960": opp * hb * e("O3_4959", te) / e("H1_4_2", te),
        "oiii5008": opp * hb * e("O3_5007", te) / e("H1_4_2", te),
        "hb": hb,
        "oii3727": op * hb * e("O2_3726", t2) / e("H1_4_2", t2),
        "oii3730": op * hb * e("O2_3729", t2) / e("H1_4_2", t2),
        "ha": hb * e("H1_3_2", te) / e("H1_4_2", te),
        "hg": hb * e("H1_5_2", te) / e("H1_4_2", te),
    }
    waves = {k: float(cfg["lines"][n]) for k, n in
             (("oiii4364", "OIII_4364"), ("oiii4960", "OIII_4960"), ("oiii5008", "OIII_5008"),
              ("hb", "Hbeta"), ("oii3727", "OII_3727"), ("oii3730", "OII_3729"
                                                         if "OII_3729" in cfg["lines"]
                                                         else "OII_3730"),
              ("ha", "Halpha"), ("hg", "Hgamma"))}
    obs = {k: v * 10 ** (-0.4 * dust.calzetti_k(np.array([waves[k]]) * u.AA, cfg)[0] * ebv)
           for k, v in intr.items()}
    return obs, 12 + np.log10(op + opp)


def test_full_line_table_direct_method_and_dust(cfg):
    obs, oh_true = _synthetic_lines(cfg)
    t = Table({"name": ["A", "B"], "z": [0.02, 0.03], "z_err": [1e-4, 1e-4]})
    for k, v in obs.items():
        t[f"f_{k}"] = [v, v]
        t[f"f_{k}_err"] = [0.02 * v, 0.02 * v]
    t["f_oiii4364"][1] = 0.3 * t["f_oiii4364_err"][1]   # B: [OIII]4364 not detected
    t["f_nii6585"] = [0.01 * obs["ha"]] * 2
    t["f_nii6585_err"] = [0.001 * obs["ha"]] * 2
    out = derive_table(t, cfg, mc_draws=200)
    a, b = out[0], out[1]
    assert a["te_oiii"] == pytest.approx(15000.0, abs=50.0)
    assert a["oh_direct"] == pytest.approx(oh_true, abs=0.005)
    assert a["ebv_balmer"] == pytest.approx(0.15, abs=0.005)
    assert a["ebv_balmer_lines"] == "ha+hg"
    # intrinsic Halpha/Hbeta at the measured Te, not the 2.86 fallback
    assert a["balmer_ha_hb_intrinsic"] < 2.83
    assert a["ne_source"] == "OII" and a["ne"] == pytest.approx(80.0, rel=0.1)
    assert 0 < a["oh_direct_err"] < 0.1 and 0 < a["te_oiii_err"] < 1000
    assert a["oplus_h"] == pytest.approx(1e-5, rel=0.02)
    assert a["l_halpha_dust"] == "balmer"
    assert b["oh_direct"] is np.ma.masked and "4364 not detected" in b["direct_flag"]
    # B uses the 2.86 fallback (1e4 K) instead of 2.79 at 15,000 K: E(B-V) biased low by
    # 2.5 / (k(Hb) - k(Ha)) log10(2.86 / 2.79) ~ 0.02 (Hgamma pulls the same way)
    assert 0.11 < b["ebv_balmer"] < a["ebv_balmer"] - 0.01
    assert a["is_empg_source"] == "direct"


def test_photometry_mass_and_galactic_dust(cfg):
    t = Table({"name": ["A", "B"], "z": [0.02, 0.02], "f_ha": [100.0, 100.0],
               "f_ha_err": [1.0, 1.0], "ebv_mw": [0.1, 0.0]})
    phot = Table({"name": ["B", "A"], "r": [17.0, 17.0], "r_err": [0.02, 0.02],
                  "i": [16.8, 16.8], "i_err": [0.02, 0.02]})
    out = derive_table(t, cfg, photometry=phot)
    a_ha = dust.mw_a_lambda(np.array([6564.61 * 1.02]) * u.AA, 0.1, cfg)[0]
    assert out["l_halpha"][0] / out["l_halpha"][1] == pytest.approx(10 ** (0.4 * a_ha))
    assert out["l_halpha_dust"][0] == "mw"
    t["ebv_mw_err"] = [0.02, 0.0]
    out2 = derive_table(t, cfg, photometry=phot)
    rel = 0.4 * np.log(10) * (a_ha / 0.1) * 0.02          # a_ha is A(Halpha) for E(B-V) = 0.1
    assert out2["l_halpha_err"][0] / out2["l_halpha"][0] == pytest.approx(
        np.hypot(out["l_halpha_err"][0] / out["l_halpha"][0], rel))
    assert np.isfinite(out["log_mstar"][1]) and out["log_mstar"][0] > out["log_mstar"][1]
    d = out["dl_used_mpc"][1]
    expected = -0.4 * (16.8 - 5 * np.log10(d * 1e5) - 4.53) + 0.006 + 1.114 * 0.2 - 0.093
    assert out["log_mstar"][1] == pytest.approx(expected)


def test_pivot_line_table():
    # the per-line layout of `xmpspec measure` (no z column: z from the wavelengths)
    z = 0.02
    lines = Table({"object": ["A", "A", "B"], "line": ["ha", "nii6585", "ha"],
                   "rest_wave": [6564.61, 6585.27, 6564.61],
                   "obs_wave": [6564.61 * (1 + z), 6585.27 * (1 + z), 6564.61 * 1.03],
                   "obs_wave_err": [0.1, 1.0, 0.1],
                   "flux": [100.0, 2.0, 50.0], "flux_err": [1.0, 1.5, 1.0],
                   "flux_limit": [np.nan, 4.5, np.nan],
                   "state": ["detected", "upper_limit", "detected"]})
    t = pivot_line_table(lines)
    assert list(t["name"]) == ["A", "B"]
    assert t["z"][0] == pytest.approx(z, abs=1e-9) and t["z"][1] == pytest.approx(0.03)
    assert t["f_ha"][1] == 50.0 and t["nii6585_state"][0] == "upper_limit"
    assert t["f_nii6585"].mask[1] and t["nii6585_state"][1] == "missing"
    out = derive_table(t, load_config(search_cwd=False))
    assert out["n2_upper_limit"][0]
    # the measured flux limit is used for the N2 limit
    assert out["n2"][0] == pytest.approx(np.log10(4.5 / 100.0))
    assert out["n2"].mask[1]


def test_fixed_density_sfd_scale_and_row_fallback(cfg):
    obs, _ = _synthetic_lines(cfg, ebv=0.0)
    t = Table({"name": ["A", "B"], "z": [0.02, 0.02], "ne_fixed": [300.0, np.nan],
               "ebv_sfd": [0.1, 0.1]})
    for k, v in obs.items():
        if k in ("oii3727", "oii3730"):
            continue
        t[f"f_{k}"] = [v, v]
        t[f"f_{k}_err"] = [0.02 * v, 0.02 * v]
    t["f_oii_blend"] = [obs["oii3727"] + obs["oii3730"]] * 2
    t["f_oii_blend_err"] = [0.02 * obs["oii3727"]] * 2
    # row A has a given N2, row B only line fluxes
    t["n2"] = np.ma.array([-2.0, 0.0], mask=[False, True])
    t["n2_err"] = np.ma.array([0.05, 0.0], mask=[False, True])
    t["f_nii6585"] = [0.02 * obs["ha"]] * 2
    t["f_nii6585_err"] = [0.001 * obs["ha"]] * 2
    sfd = cfg.updated({"dust.ebv_input_scale": "SFD"})
    out = derive_table(t, sfd, mc_draws=20, ebv_column="ebv_sfd")
    assert out["ne_source"][0] == "fixed" and out["ne"][0] == pytest.approx(300.0)
    assert out["ne_source"][1] == "default" and out["ne"][1] == pytest.approx(100.0)
    assert out["ne_err"].mask[0]
    assert out["ebv_mw_used"][0] == pytest.approx(0.086)          # 0.86 x SFD
    assert out["oh_direct"][0] > 7.0                                # O+ from the [OII] blend
    assert out["n2"][0] == -2.0
    assert out["oh_n2"][0] == pytest.approx(9.263 - 0.836 * 2.0)
    # (Galactic correction differs by 3e-4 dex between 6585 and 6565 A)
    assert out["oh_n2"][1] == pytest.approx(9.263 + 0.836 * np.log10(0.02), abs=1e-3)


def test_photometry_merge_overlapping_columns_writes_fits(cfg, tmp_path):
    from xmpspec.tableio import write_table

    t = Table({"name": ["A", "B"], "z": [0.02, 0.03], "f_ha": [100.0, 50.0],
               "instrument": ["IDS", "Goodman"]})
    phot = Table({"name": ["A"], "instrument": ["MagE"], "r": [16.5], "i": [16.4],
                  "r_err": [0.02], "i_err": [0.03]})
    out = derive_table(t, cfg, photometry=phot)
    assert list(out["instrument"]) == ["MagE", "Goodman"]
    assert np.isfinite(out["log_mstar"][0]) and out["log_mstar"].mask[1]
    write_table(out, tmp_path / "m", formats=("ecsv", "fits"))
    back = Table.read(tmp_path / "m.fits", hdu=1)
    assert back["log_mstar"].mask[1] and back["sfr"].unit == u.Msun / u.yr
    dup = Table({"name": ["A", "A"], "r": [1.0, 2.0]})
    with pytest.raises(Exception, match="more than once"):
        derive_table(t, cfg, photometry=dup)


def test_oh_percentiles_from_the_n2_posterior(cfg):
    t = Table({"name": ["a", "b"], "z": [0.02, 0.02], "n2": [-2.0, -1.9], "n2_err": [0.1, np.nan],
               "n2_state": ["detected", "upper_limit"], "n2_p16": [-2.12, -2.9],
               "n2_p50": [-2.01, -2.4], "n2_p84": [-1.9, -2.1], "n2_p977": [-1.8, -1.95]})
    out = derive_table(t, cfg, mc_draws=0)
    ab = cfg["abundances"]
    for k in ("p16", "p50", "p84", "p977"):
        expect = float(ab["y07_intercept"]) + float(ab["y07_slope"]) * np.asarray(t[f"n2_{k}"])
        assert np.allclose(out[f"oh_n2_{k}"], expect)
        pp = float(ab["pp04_n2_intercept"]) + float(ab["pp04_n2_slope"]) * np.asarray(t[f"n2_{k}"])
        assert np.allclose(out[f"oh_pp04_n2_{k}"], pp)
    # without posterior columns they are masked, never invented
    plain = derive_table(Table({"name": ["c"], "z": [0.02], "n2": [-2.0], "n2_err": [0.1]}), cfg,
                         mc_draws=0)
    assert plain["oh_n2_p16"].mask[0] and plain["oh_n2_p977"].mask[0]


def test_states_from_measure_decide_in_a_lines_table(cfg):
    """A [NII]6585 detected by the gate stays detected although its flux S/N is < 2."""
    t = Table({"name": ["g"], "z": [0.02], "f_ha": [100.0], "f_ha_err": [2.0],
               "ha_state": ["detected"], "f_nii6585": [1.0], "f_nii6585_err": [0.8],
               "nii6585_state": ["detected"], "f_oiii5008": [30.0], "f_oiii5008_err": [1.0],
               "oiii5008_state": ["detected"], "f_hb": [3.0], "f_hb_err": [2.0],
               "hb_state": ["upper_limit"], "f_hb_limit": [7.0]})
    out = derive_table(t, cfg, mc_draws=0)
    assert out["n2_state"][0] == "detected" and out["n2"][0] == pytest.approx(-2.0)
    # O3 over an undetected Hbeta: a lower limit at the measured Hbeta limit
    assert out["o3_state"][0] == "lower_limit" and out["o3"][0] == pytest.approx(np.log10(30 / 7))
