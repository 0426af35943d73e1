"""Relations of xmpspec.physics against hand-computed and published numbers (fast)."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM

from xmpspec.config import load_config
from xmpspec.errors import ConfigError
from xmpspec.physics import bpt, distances, dust, strong_line
from xmpspec.physics._columns import DETECTED, LOWER, MISSING, UPPER, Measured


@pytest.fixture(scope="module")
def cfg():
    return load_config(search_cwd=False)


def M(values, errs=None, states=None):
    values = np.atleast_1d(np.asarray(values, float))
    errs = np.full(values.shape, np.nan) if errs is None else np.asarray(errs, float)
    states = [DETECTED] * len(values) if states is None else states
    return Measured(values, errs, np.array(states))


# --------------------------------------------------------------- strong lines
def test_yin2007_hand_values(cfg):
    oh, cal = strong_line.oh_n2(M([-2.0, -1.0], [0.05, 0.1]), "Y07", cfg)
    # 9.263 + 0.836 N2 (Yin et al. 2007 eq. 9)
    assert oh.value == pytest.approx([9.263 - 1.672, 9.263 - 0.836])
    assert oh.err == pytest.approx([0.836 * 0.05, 0.836 * 0.1])
    assert cal == pytest.approx([0.159, 0.159])


def test_n2_upper_limit_gives_oh_upper_limit(cfg):
    oh, cal = strong_line.oh_n2(M([-1.5], None, [UPPER]), "Y07", cfg)
    assert oh.state[0] == UPPER
    assert oh.value[0] == pytest.approx(9.263 - 0.836 * 1.5)
    assert np.isnan(oh.err[0])
    assert cal[0] == pytest.approx(0.159)
    # the calibration scatter moves the limit outward only when asked
    cfg2 = cfg.updated({"abundances.n2_limit_scatter_sigma": 2.0})
    oh2, _ = strong_line.oh_n2(M([-1.5], None, [UPPER]), "Y07", cfg2)
    assert oh2.value[0] == pytest.approx(9.263 - 0.836 * 1.5 + 2 * 0.159)


def test_pp04_n2_and_o3n2(cfg):
    oh, cal = strong_line.oh_n2(M([-1.0]), "PP04", cfg)
    assert oh.value[0] == pytest.approx(8.90 - 0.57)
    assert cal[0] == pytest.approx(0.18)
    o3n2 = strong_line.o3n2_index(M([0.5]), M([-1.0]))
    assert o3n2.value[0] == pytest.approx(1.5)
    oho, _ = strong_line.oh_pp04_o3n2(o3n2, cfg)
    assert oho.value[0] == pytest.approx(8.73 - 0.32 * 1.5)
    assert oho.flag[0] == ""


def test_o3n2_censoring_flips(cfg):
    o3 = M([0.8, 0.8, 0.3, 0.3], [0.01, 0.01, np.nan, np.nan],
           [DETECTED, DETECTED, UPPER, UPPER])
    n2 = M([-2.0, -1.8, -2.0, -1.8], [0.05, np.nan, 0.05, np.nan],
           [DETECTED, UPPER, DETECTED, UPPER])
    o3n2 = strong_line.o3n2_index(o3, n2)
    assert list(o3n2.state) == [DETECTED, LOWER, UPPER, MISSING]
    oh, _ = strong_line.oh_pp04_o3n2(o3n2, cfg)
    # O3N2 lower limit -> O/H upper limit, and vice versa
    assert list(oh.state) == [DETECTED, UPPER, LOWER, MISSING]
    assert oh.value[1] == pytest.approx(8.73 - 0.32 * 2.6)
    assert "outside the PP04" in oh.flag[0]   # O3N2 = 2.8 > 2
    assert "unconstrained" in o3n2.flag[3]


def test_unknown_calibration_lists_valid():
    with pytest.raises(ConfigError, match="Y07, PP04"):
        strong_line.check_n2_calibration("M13")
    assert strong_line.check_n2_calibration("pp04") == "PP04"


def test_log_ratio_negative_numerator_is_limit(cfg):
    r = strong_line.log_ratio(np.array([-3.0, 10.0, 1.0, 5.0]), np.array([2.0, 1.0, 1.0, 1.0]),
                              np.array([100.0, 100.0, 100.0, -5.0]),
                              np.array([1.0, 1.0, 1.0, 1.0]), name="N2", config=cfg,
                              lower_limits=False)
    assert list(r.state) == [UPPER, DETECTED, UPPER, MISSING]
    assert r.value[0] == pytest.approx(np.log10(4.0 / 100))      # (max(F,0) + 2 sigma)/Ha
    assert r.value[1] == pytest.approx(-1.0)
    assert r.err[1] == pytest.approx(np.hypot(0.1, 0.01) / np.log(10))
    assert r.value[2] == pytest.approx(np.log10(3.0 / 100))      # S/N = 1 < 2
    assert "negative" in r.flag[0]
    assert "denominator" in r.flag[3]
    # O3-like ratios: a detected numerator over an undetected denominator is a lower limit
    lo = strong_line.log_ratio(np.array([5.0]), np.array([1.0]), np.array([-5.0]),
                               np.array([1.0]), name="O3", config=cfg)
    assert lo.state[0] == LOWER and lo.value[0] == pytest.approx(np.log10(5.0 / 2.0))


# --------------------------------------------------------------- distances, L, SFR, mass
def test_luminosity_distance_matches_astropy(cfg):
    z = np.array([0.0085, 0.05])
    d, e = distances.luminosity_distance(z, None, cfg)
    ref = FlatLambdaCDM(H0=67.4, Om0=0.315).luminosity_distance(z).to_value(u.Mpc)
    assert d.to_value(u.Mpc) == pytest.approx(ref, rel=1e-10)
    # without z_err the error is the cosmology: H0 term D*0.5/67.4 and the Om0 term
    h_only = ref * 0.5 / 67.4
    assert np.all(e.to_value(u.Mpc) >= h_only)
    cfg_h = cfg.updated({"cosmology.Om0_err": 0.0, "cosmology.sigma_pv_kms": 0.0})
    _, e_h = distances.luminosity_distance(z, None, cfg_h)
    assert e_h.to_value(u.Mpc) == pytest.approx(h_only, rel=1e-6)
    # redshift error: dD/dz ~ c/H0 at low z
    cfg0 = cfg.updated({"cosmology.Om0_err": 0.0, "cosmology.H0_err": 0.0,
                        "cosmology.sigma_pv_kms": 0.0})
    _, e_z = distances.luminosity_distance([0.01], [1e-4], cfg0)
    assert e_z.to_value(u.Mpc)[0] == pytest.approx(299792.458 / 67.4 * 1e-4, rel=0.03)
    # peculiar velocities: 300 km/s -> c/H0 * 300/c = 300/67.4 Mpc at low z
    _, e_pv = distances.luminosity_distance([0.002], None,
                                            cfg0.updated({"cosmology.sigma_pv_kms": 300.0}))
    assert e_pv.to_value(u.Mpc)[0] == pytest.approx(300 / 67.4, rel=0.01)
    dbad, _ = distances.luminosity_distance([0.0, np.nan], None, cfg)
    assert np.all(np.isnan(dbad.value))


def test_halpha_luminosity_and_sfr_hand_values(cfg):
    lum, lerr = distances.halpha_luminosity(1e-14 * u.erg / u.s / u.cm**2,
                                            1e-15 * u.erg / u.s / u.cm**2,
                                            100 * u.Mpc, 0 * u.Mpc)
    d_cm = 100 * 3.0856775814913673e24
    assert lum.to_value(u.erg / u.s) == pytest.approx(4 * np.pi * d_cm**2 * 1e-14)
    assert lerr.value == pytest.approx(0.1 * lum.value)
    # Kennicutt (1998): SFR = 7.9e-42 L; Chabrier /1.8
    sfr, serr = distances.sfr_kennicutt98(1e41 * u.erg / u.s, 1e40 * u.erg / u.s, cfg)
    assert sfr.to_value(u.Msun / u.yr) == pytest.approx(0.79 / 1.8)
    assert serr.value == pytest.approx(0.079 / 1.8)


def test_bell03_mass_hand_value(cfg):
    logm, err = distances.stellar_mass_bell03(np.array([17.0]), np.array([0.02]),
                                              np.array([16.8]), np.array([0.02]),
                                              np.array([100.0]) * u.Mpc, np.array([0.0]) * u.Mpc,
                                              cfg)
    # M_i = 16.8 - 35 = -18.2 ; log L_i = -0.4 (-18.2 - 4.53) = 9.092
    # log M/L = 0.006 + 1.114 * 0.2 = 0.2288 ; Chabrier -0.093
    assert logm[0] == pytest.approx(9.092 + 0.2288 - 0.093, abs=1e-9)
    assert err[0] == pytest.approx(np.hypot((0.4 + 1.114) * 0.02, 1.114 * 0.02))


# --------------------------------------------------------------- dust
def test_ccm89_from_dust_extinction(cfg):
    # A_V / E(B-V) = R_V = 3.1 at V (5495 A), A(Halpha)/E(B-V) ~ 2.53 for CCM89
    av = dust.mw_a_lambda(np.array([5495.0]) * u.AA, 1.0, cfg)[0]
    assert av == pytest.approx(3.1, rel=0.01)
    aha = dust.mw_a_lambda(np.array([6564.61]) * u.AA, 1.0, cfg)[0]
    assert aha == pytest.approx(2.53, abs=0.03)
    f = dust.mw_correction_factor(np.array([6564.61]) * u.AA, 0.1, cfg)[0]
    assert f == pytest.approx(10 ** (0.4 * aha * 0.1))


def test_calzetti_published_k(cfg):
    # Calzetti et al. 2000: k(Halpha) = 3.33, k(Hbeta) = 4.60 (R_V = 4.05)
    k = dust.calzetti_k(np.array([6564.61, 4862.69]) * u.AA, cfg)
    assert k == pytest.approx([3.33, 4.60], abs=0.02)


def test_balmer_ebv_recovers_and_clips(cfg):
    kha, khb = dust.calzetti_k(np.array([6564.61, 4862.69]) * u.AA, cfg)
    obs = 2.86 * 10 ** (0.4 * (khb - kha) * np.array([0.2, -0.03, -0.5]))  # sigma = 0.0197
    ratio = M(np.log10(obs), [0.01, 0.01, 0.01])
    ebv, err, used, flag = dust.balmer_ebv({"ha": ratio}, {"ha": np.full(3, 2.86)},
                                           {"ha": 6564.61}, 4862.69, cfg)
    assert ebv[0] == pytest.approx(0.2, abs=1e-9)
    assert err[0] == pytest.approx(2.5 / (khb - kha) * 0.01)
    assert ebv[1] == 0.0 and "within errors" in flag[1]
    assert ebv[2] == 0.0 and "> 2 sigma" in flag[2]
    assert used[0] == "ha"


# --------------------------------------------------------------- BPT
def test_bpt_curves_published_form(cfg):
    assert bpt.curve("kauffmann03", -1.0, cfg) == pytest.approx(0.61 / -1.05 + 1.30)
    assert bpt.curve("kewley01", 0.0, cfg) == pytest.approx(0.61 / -0.47 + 1.19)


def test_bpt_classes_and_limits(cfg):
    c = bpt.classify_point
    assert c(-2.0, 0.8, config=cfg) == "star-forming"
    assert c(-0.2, 0.0, config=cfg) == "composite"      # above K03 (-1.14), below K01 (0.28)
    assert c(0.0, 1.0, config=cfg) == "AGN"
    assert c(0.6, -0.5, config=cfg) == "AGN"            # right of the K01 asymptote
    # an N2 upper limit inside the SF region: the whole range x <= limit is SF
    assert c(-1.8, 0.8, x_upper=True, config=cfg) == "star-forming"
    # a limit in the composite region can be SF further left: ambiguous
    assert c(-0.2, 0.0, x_upper=True, config=cfg) == "ambiguous-limit"
    # O3 above 1.30 never star-forming, left of K01 at high O3 always AGN
    assert c(-1.0, 1.5, x_upper=True, config=cfg) == "AGN"


def test_bpt_table_and_agn_candidates(cfg):
    n2 = M([-2.0, -1.9, -1.2, -2.0, -2.0], [0.05, np.nan, 0.05, 0.05, 0.05],
           [DETECTED, UPPER, DETECTED, DETECTED, MISSING])
    o3 = M([0.8, 0.2, 0.8, 0.2, 0.8], [0.01, 0.02, 0.01, 0.02, 0.01])
    cls, flag = bpt.bpt_classify(n2, o3, cfg)
    assert list(cls[:4]) == ["star-forming"] * 4 and cls[4] == ""
    assert "missing N2" in flag[4]
    agn = bpt.low_z_agn_candidate(n2, o3, cfg)
    # Kewley+13 at N2 = -2: 0.61/(-2.02) + 1.2 = 0.898; minus 0.1 width, 0.3 margin -> 0.498
    assert list(agn.filled(False)) == [False, True, False, True, False]
    assert agn.mask[4] and not agn.mask[2]


def test_dust_curve_names_from_config(cfg):
    f99 = cfg.updated({"dust.mw_curve": "F99"})
    a_ccm = dust.mw_a_lambda(np.array([4400.0]) * u.AA, 1.0, cfg)[0]
    a_f99 = dust.mw_a_lambda(np.array([4400.0]) * u.AA, 1.0, f99)[0]
    assert a_f99 == pytest.approx(4.1, abs=0.1) and a_ccm == pytest.approx(4.1, abs=0.1)
    assert a_f99 != a_ccm
    with pytest.raises(ConfigError, match="CCM89"):
        dust.mw_a_lambda(np.array([5000.0]) * u.AA, 0.1, cfg.updated({"dust.mw_curve": "XYZ"}))
    with pytest.raises(ConfigError, match="C00"):
        dust.calzetti_k(np.array([5000.0]) * u.AA, cfg.updated({"dust.internal_curve": "SMC"}))
